//! The HTTP upgrade both sockets go through once their caller is known (the dashboard's
//! `events_socket`, the modules' `module_socket`): the `max_sessions` bound (503
//! `too_many_sessions` with `Retry-After`), the handshake with the subprotocol echoed,
//! the codec bounded by `max_frame_bytes`, and the session actor run in its own task
//! behind a pipe (see the `ws` module doc for why).

use actix::{Actor, StreamHandler};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use std::sync::Arc;

use super::pipe::{self, Meter};
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Upgrades `req` to a WebSocket served by the actor `session` makes; it is given the
/// pipe's `Meter` (the bytes the HTTP writer took, `Writer::new`). `protocol`: the
/// subprotocol the credential came in, echoed.
pub(crate) fn upgrade<A>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    protocol: Option<String>,
    session: impl FnOnce(Arc<Meter>) -> A,
) -> Result<HttpResponse, actix_web::Error>
where
    A: Actor<Context = ws::WebsocketContext<A>> + StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    let cfg = &state.settings.websocket;
    if state.sessions.active() >= cfg.max_sessions {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::TooManySessions,
            format!("at most {} WebSocket sessions at once", cfg.max_sessions),
        );
        e.retry_after = Some(1);
        return Err(e.into());
    }
    let mut res = ws::handshake(req)?;
    if let Some(p) = protocol {
        // A browser only accepts the upgrade if the chosen subprotocol is echoed.
        res.insert_header((header::SEC_WEBSOCKET_PROTOCOL, p));
    }
    let flushed = Arc::new(Meter::default());
    let codec = actix_http::ws::Codec::new().max_size(cfg.max_frame_bytes);
    let frames = ws::WebsocketContext::with_codec(session(flushed.clone()), payload, codec);
    // The response is fed by the session's own task: the session keeps running while its
    // client does not read, and `flushed` counts the bytes the HTTP writer took.
    Ok(res.streaming(pipe::spawn_pipe(frames, flushed)))
}

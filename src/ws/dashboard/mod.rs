//! The dashboard socket, `/ws/gns3/events/`: one `WsSession` per connection (frames in
//! `protocol.rs`, the principal's view of the topology in `topology.rs`).

pub mod protocol;
pub mod session;
pub mod topology;

use actix_web::{get, web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::{authorize, piped};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use session::WsSession;

/// Upgrades to a WebSocket session (protocol: README "WebSocket protocol").
#[get("/ws/gns3/events/")]
pub async fn events_socket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (principal, protocol) = authorize(&req, &state)?;
    let cfg = state.settings.websocket.clone();
    if state.sessions.active() >= cfg.max_sessions {
        let mut e = ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            Code::TooManySessions,
            format!("at most {} WebSocket sessions at once", cfg.max_sessions),
        );
        e.retry_after = Some(1);
        return Err(e.into());
    }
    let mut res = ws::handshake(&req)?;
    if let Some(p) = protocol {
        // A browser only accepts the upgrade if the chosen subprotocol is echoed.
        res.insert_header((actix_web::http::header::SEC_WEBSOCKET_PROTOCOL, p));
    }
    let flushed = Arc::new(AtomicU64::new(0));
    let session = WsSession::new(state.clone(), principal, flushed.clone());
    let codec = actix_http::ws::Codec::new().max_size(cfg.max_frame_bytes);
    let frames = ws::WebsocketContext::with_codec(session, payload, codec);
    Ok(piped(res, frames, flushed))
}

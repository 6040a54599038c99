//! The dashboard socket, `/ws/gns3/events/`: one `WsSession` per connection (frames in
//! `protocol.rs`); the caller is an API or dashboard token's principal (`ws::authorize`).

pub mod protocol;
pub mod session;

use actix_web::{get, web, HttpRequest, HttpResponse};

use super::authorize;
use super::upgrade::upgrade;
use crate::state::AppState;
use session::WsSession;

/// Upgrades to a WebSocket session (protocol: docs/websocket.md).
#[get("/ws/gns3/events/")]
pub async fn events_socket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (principal, protocol) = authorize(&req, &state)?;
    upgrade(&req, payload, &state, protocol, |flushed| WsSession::new(state.clone(), principal, flushed))
}

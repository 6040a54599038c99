//! The WebSocket edge: `/ws/gns3/events/` upgrades to one dashboard `WsSession` per
//! connection (`dashboard/`), `/ws/modules/{name}` to one `ModuleSession` (`module/`).
//! What both share is the core here: the upgrade (`upgrade.rs`), the frame helpers
//! (`frames.rs`), the session glue and connection state (`session.rs`), the writer and
//! its bounded outbound buffer (`writer.rs`, `outbound.rs`), the pipe (`pipe.rs`), the
//! `replay` frame of a resumed subscription (`replay.rs`) and the principal's view of the
//! topology (`topology.rs`); `dashboard/` and `module/` import
//! from the core, never from each other, and the core imports neither.
//! This module owns what lives outside a session: the `[websocket]` settings, the
//! caller's identity (`authorize`, the one seam access control replaces), the registry
//! that closes every session with 1001 on shutdown, and the counters of
//! `GET /api/v2/ws/stats`.
//!
//! Why a pipe between the session and the HTTP response: with actix-web-actors the actor
//! is polled by the response body stream, and the HTTP writer stops polling it while the
//! socket is blocked; a session behind a stalled client would then freeze (no heartbeat,
//! no shedding, no 4008). The session runs in its own task instead and hands encoded
//! chunks to the response through a pipe (`pipe.rs`); the response side counts the bytes it took
//! (`flushed`), so the session knows what is in flight and keeps the rest in its own
//! bounded queue.

pub mod dashboard;
pub mod frames;
pub mod module;
pub mod outbound;
mod pipe;
pub mod replay;
pub(crate) mod session;
pub mod topology;
pub(crate) mod upgrade;
pub(crate) mod writer;

pub use crate::config::websocket::{WsSettings, CLIENT_TIMEOUT, HEARTBEAT_INTERVAL};
pub use crate::state::sessions::{SessionRegistry, Shutdown, WsCounters, WsStats};

use actix_web::{web, HttpRequest};
use serde::Serialize;
use std::collections::BTreeSet;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// What a session's caller may do. Built by `authorize` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SessionPrincipal {
    pub name: String,
    pub role: Role,
    /// The projects it may see and act on; `None`: every project.
    pub projects: Option<BTreeSet<Uuid>>,
}

pub use crate::auth::Role;

impl SessionPrincipal {
    /// Node actions are for admins and operators.
    pub fn may_act(&self) -> bool {
        self.role >= Role::Operator
    }

    pub fn may_see(&self, project: Uuid) -> bool {
        self.projects.as_ref().is_none_or(|p| p.contains(&project))
    }
}

/// The caller's identity (`auth::authenticate_ws`: the origin is checked, then the token
/// from the `Authorization` header, `?token=`, or the `bearer.<token>` subprotocol), and
/// the subprotocol to echo in the handshake when the token came that way.
pub fn authorize(req: &HttpRequest, state: &AppState) -> Result<(SessionPrincipal, Option<String>), ApiError> {
    let ws = crate::auth::authenticate_ws(req, &state.auth).inspect_err(|e| state.auth.refused.count(e))?;
    let p = ws.principal;
    Ok((SessionPrincipal { name: p.name, role: p.role, projects: p.projects }, ws.protocol))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard::events_socket).service(module::module_socket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_rights() {
        let p = Uuid::new_v4();
        let viewer = SessionPrincipal { name: "v".into(), role: Role::Viewer, projects: Some(BTreeSet::from([p])) };
        assert!(!viewer.may_act());
        assert!(viewer.may_see(p) && !viewer.may_see(Uuid::new_v4()));
        let admin = SessionPrincipal { name: "a".into(), role: Role::Admin, projects: None };
        assert!(admin.may_act() && admin.may_see(Uuid::new_v4()));
    }
}

//! The WebSocket edge: `/ws/gns3/events/` upgrades to one `WsSession` actor per
//! connection (frames in `protocol.rs`, the bounded outbound buffer in `outbound.rs`, the
//! principal's view of the topology in `topology.rs`).
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

pub mod module_protocol;
pub mod module_session;
pub mod modules;
pub mod outbound;
mod pipe;
pub mod protocol;
pub mod session;
pub mod topology;
pub(crate) mod writer;

use actix::{Message, Recipient};
use actix_web::{get, web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use session::WsSession;

/// Default ping period of a session.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Default silence after which a client is closed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// `[websocket]` settings; see config/default.toml for each one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub actions_per_second: f64,
    pub action_burst: u32,
    pub queue_frames: usize,
    pub queue_bytes: usize,
    pub unflushed_bytes: usize,
    pub max_replay: usize,
    pub max_sessions: usize,
    pub shutdown_grace_ms: u64,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
            client_timeout_ms: CLIENT_TIMEOUT.as_millis() as u64,
            max_frame_bytes: 65536,
            max_subscriptions: 64,
            actions_per_second: 5.0,
            action_burst: 10,
            queue_frames: 1024,
            queue_bytes: 4 * 1024 * 1024,
            unflushed_bytes: 256 * 1024,
            max_replay: 10_000,
            max_sessions: 10_000,
            shutdown_grace_ms: 2000,
        }
    }
}

impl WsSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let positive = [
            ("heartbeat_interval_ms", self.heartbeat_interval_ms as usize),
            ("client_timeout_ms", self.client_timeout_ms as usize),
            ("max_subscriptions", self.max_subscriptions),
            ("action_burst", self.action_burst as usize),
            ("queue_frames", self.queue_frames),
            ("max_sessions", self.max_sessions),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("{prefix}.{key}: must be greater than 0"));
            }
        }
        if self.client_timeout_ms <= self.heartbeat_interval_ms {
            return Err(format!("{prefix}.client_timeout_ms: must be longer than heartbeat_interval_ms"));
        }
        if self.max_frame_bytes < 256 {
            return Err(format!("{prefix}.max_frame_bytes: must be at least 256"));
        }
        if self.queue_bytes < 1024 || self.unflushed_bytes < 1024 {
            return Err(format!("{prefix}.queue_bytes and unflushed_bytes: must be at least 1024"));
        }
        if !(self.actions_per_second.is_finite() && self.actions_per_second > 0.0) {
            return Err(format!("{prefix}.actions_per_second: must be a positive number"));
        }
        Ok(())
    }
}

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

/// Sent to every session when the service stops: close with 1001.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Counters of `GET /api/v2/ws/stats`.
#[derive(Debug, Default)]
pub struct WsCounters {
    pub opened: AtomicU64,
    pub shed_low: AtomicU64,
    pub shed_normal: AtomicU64,
    pub closed_slow: AtomicU64,
    pub closed_timeout: AtomicU64,
    pub closed_oversized: AtomicU64,
    pub rate_limited: AtomicU64,
    pub error_frames: AtomicU64,
    pub actions: AtomicU64,
    pub peak_queued_bytes: AtomicU64,
    pub peak_unflushed_bytes: AtomicU64,
}

/// The live sessions, by id, as the recipients of `Shutdown` (a std Mutex: held for a map
/// insert or remove, never across an await).
#[derive(Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<Uuid, Recipient<Shutdown>>>,
    pub counters: WsCounters,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WsStats {
    /// Sessions open now.
    pub active: usize,
    /// Sessions opened since start.
    pub opened: u64,
    /// LOW events shed for slow clients.
    pub shed_low: u64,
    /// NORMAL events shed for slow clients.
    pub shed_normal: u64,
    /// Sessions closed with 4008 (slow consumer).
    pub closed_slow: u64,
    /// Sessions closed for silence past the client timeout.
    pub closed_timeout: u64,
    /// Sessions closed with 1009 (frame too large).
    pub closed_oversized: u64,
    /// Node actions refused with `rate_limited`.
    pub rate_limited: u64,
    /// Error frames sent.
    pub error_frames: u64,
    /// Node actions run.
    pub actions: u64,
    /// The most bytes one session's outbound buffer held (bounded by `queue_bytes`, or
    /// one frame when it was empty).
    pub peak_queued_bytes: u64,
    /// The most bytes one session had handed to its writer and not seen taken (bounded
    /// by `unflushed_bytes` plus one frame).
    pub peak_unflushed_bytes: u64,
}

impl SessionRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Recipient<Shutdown>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, id: Uuid, r: Recipient<Shutdown>) {
        self.lock().insert(id, r);
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unregister(&self, id: Uuid) {
        self.lock().remove(&id);
    }

    pub fn active(&self) -> usize {
        self.lock().len()
    }

    /// Tells every session to close with 1001; returns how many were told.
    pub fn close_all(&self) -> usize {
        let all: Vec<_> = self.lock().values().cloned().collect();
        for r in &all {
            r.do_send(Shutdown);
        }
        all.len()
    }

    /// Closes every session and waits (at most `grace`) until they are gone.
    pub async fn shutdown(&self, grace: Duration) {
        let told = self.close_all();
        if told == 0 {
            return;
        }
        tracing::info!(sessions = told, "Closing WebSocket sessions.");
        let deadline = tokio::time::Instant::now() + grace;
        while self.active() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the close frames reach the sockets before the server drops connections.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    pub fn stats(&self) -> WsStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WsStats {
            active: self.active(),
            opened: get(&c.opened),
            shed_low: get(&c.shed_low),
            shed_normal: get(&c.shed_normal),
            closed_slow: get(&c.closed_slow),
            closed_timeout: get(&c.closed_timeout),
            closed_oversized: get(&c.closed_oversized),
            rate_limited: get(&c.rate_limited),
            error_frames: get(&c.error_frames),
            actions: get(&c.actions),
            peak_queued_bytes: get(&c.peak_queued_bytes),
            peak_unflushed_bytes: get(&c.peak_unflushed_bytes),
        }
    }
}

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
            "too_many_sessions",
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

/// The response of an upgrade, fed by the session's own task (see the module doc): the
/// session keeps running while its client does not read, and `flushed` counts the bytes
/// the HTTP writer took.
pub(crate) fn piped(
    mut res: actix_web::HttpResponseBuilder,
    frames: impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
    flushed: Arc<AtomicU64>,
) -> HttpResponse {
    res.streaming(pipe::spawn_pipe(frames, flushed))
}

/// WebSocket session counters.
#[utoipa::path(get, path = "/api/v2/ws/stats", tag = "events",
    responses((status = 200, description = "Sessions and their shedding, closing and rate-limit counters",
        body = WsStats), (status = 500, description = "Internal error", body = ErrorBody)))]
#[get("/api/v2/ws/stats")]
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.sessions.stats())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(events_socket).service(stats).service(modules::module_socket);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_matches_the_defaults() {
        let s = crate::configuration::Settings::load_with(None, &|_| None, vec![]).expect("defaults load");
        assert_eq!(s.websocket, WsSettings::default());
        assert!(WsSettings::default().validate("websocket").is_ok());
    }

    #[test]
    fn environment_overrides_websocket_settings() {
        let vars = vec![
            ("GNS3_CENTRAL__WEBSOCKET__MAX_FRAME_BYTES".to_owned(), "4096".to_owned()),
            ("GNS3_CENTRAL__WEBSOCKET__CLIENT_TIMEOUT_MS".to_owned(), "30000".to_owned()),
        ];
        let s = crate::configuration::Settings::load_with(None, &|_| None, vars).expect("loads");
        assert_eq!((s.websocket.max_frame_bytes, s.websocket.client_timeout_ms), (4096, 30000));
        let vars = vec![("GNS3_CENTRAL__WEBSOCKET__CLIENT_TIMEOUT_MS".to_owned(), "10".to_owned())];
        let e = crate::configuration::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("websocket.client_timeout_ms"), "{e}");
    }

    #[test]
    fn every_session_can_hold_a_subscriber() {
        // The defaults once allowed 10,000 sessions and 4,096 subscribers: sessions past
        // 4,095 opened but got subscribe_failed (found by benches/ws_load.rs).
        let s = crate::configuration::Settings::load_with(None, &|_| None, vec![]).expect("defaults load");
        assert!(s.events.max_subscribers > s.websocket.max_sessions + s.modules.max_modules);
        let vars = vec![("GNS3_CENTRAL__WEBSOCKET__MAX_SESSIONS".to_owned(), "20000".to_owned())];
        let e = crate::configuration::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("events.max_subscribers"), "{e}");
        // Modules hold subscribers too: 16,384 > 10,000 sessions, but not with 8,000 modules.
        let vars = vec![("GNS3_CENTRAL__MODULES__MAX_MODULES".to_owned(), "8000".to_owned())];
        let e = crate::configuration::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("events.max_subscribers") && e.contains("18000"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_key() {
        let bad = WsSettings { client_timeout_ms: 100, heartbeat_interval_ms: 200, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("websocket.client_timeout_ms"));
        let bad = WsSettings { actions_per_second: f64::NAN, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("actions_per_second"));
        let bad = WsSettings { queue_frames: 0, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("queue_frames"));
    }

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

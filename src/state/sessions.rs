//! The open WebSocket sessions (dashboard and module sockets) as the recipients of
//! `Shutdown`, and the counters of `GET /api/v2/ws/stats`. The sessions register here; the
//! shutdown sequence and the metrics read it.

use actix::{Message, Recipient};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

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

//! Stopping in order (`ShutdownHandle`), the stop signals, and SIGHUP (the configuration
//! read again).

use actix_web::dev::ServerHandle;
use actix_web::web;
use std::time::Instant;

use crate::state::AppState;

/// Stops the service in order (docs/operations.md#graceful-shutdown): ingestion off (GNS3 streams
/// closed), queued CRITICAL/HIGH events delivered (`shutdown.flush_ms`), WebSocket
/// sessions closed with 1001 after their buffered frames (`websocket.shutdown_grace_ms`),
/// the shared bus's consumer leases released (what the connections held given back),
/// Redis leases released, the HTTP server stopped gracefully, the audit writer closed
/// (its spool written to Redis if it can be); all within
/// `shutdown.timeout_secs`, past which the HTTP server is stopped at once.
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    state: web::Data<AppState>,
}

impl ShutdownHandle {
    pub(super) fn new(server: ServerHandle, state: web::Data<AppState>) -> Self {
        Self { server, state }
    }

    pub async fn shutdown(&self) {
        let bound = std::time::Duration::from_secs_f64(self.state.settings.shutdown.timeout_secs);
        let began = Instant::now();
        if tokio::time::timeout(bound, self.steps()).await.is_err() {
            tracing::warn!(bound_secs = bound.as_secs_f64(), "Shutdown took too long; stopping now.");
            self.server.stop(false).await;
        }
        tracing::info!(ms = began.elapsed().as_millis() as u64, "Stopped.");
    }

    async fn steps(&self) {
        let st = &self.state;
        for addr in st.servers.values() {
            let _ = addr.send(gns3_central_actors::connector::StopIngest).await;
        }
        if let Some(d) = &st.dispatcher {
            let flush = std::time::Duration::from_millis(st.settings.shutdown.flush_ms);
            if let Ok((sent, pending)) = d.send(gns3_central_actors::dispatcher::FlushUrgent(flush)).await {
                tracing::info!(dispatched = sent, undelivered = pending, "Urgent events flushed.");
            }
        }
        let grace = std::time::Duration::from_millis(st.settings.websocket.shutdown_grace_ms);
        st.sessions.shutdown(grace).await;
        // Shared bus: what the modules' connections held back in Redis, leases given up.
        st.modules.registry.release_shared(grace).await;
        if let Some(c) = &st.cluster {
            let _ = c.send(gns3_central_actors::cluster::ReleaseLeases).await;
        }
        self.server.stop(true).await;
        // Nothing records any more: the audit spool gets a last chance to reach Redis.
        st.audit.close().await;
    }
}

/// Reads the configuration file again at every SIGHUP (runtime configuration).
pub(super) async fn reload_on_sighup(state: web::Data<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be handled here; reload with PATCH /api/v2/config.");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again.");
            state.live.reload(state.get_ref()).await;
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub(super) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `AppState`: what every HTTP handler can reach. The connectors are held only as
//! addresses (`Addr` is `Send`, so actix-web's worker threads can share them); handlers
//! never own GNS3 connections themselves.

use actix::{Addr, Handler, Message};
use chrono::{DateTime, Utc};
use gns3_central_actors::cache::CacheActor;
use gns3_central_actors::cluster::ClusterBridge;
use gns3_central_actors::connector::{ConnectorError, Gns3Connector};
use gns3_central_actors::dispatcher::PriorityDispatcher;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::error::{ApiError, Code};

pub mod live;
pub mod module_store;
pub mod sessions;

pub struct AppState {
    pub servers: BTreeMap<String, Addr<Gns3Connector>>,
    /// The server used when a request names none (`default` if configured, else the first).
    pub default_server: String,
    pub settings: Arc<Settings>,
    pub started_at: DateTime<Utc>,
    pub started: Instant,
    /// `serve --no-events`: ingestion and dispatch are off.
    pub events_enabled: bool,
    /// Whether the connectors follow GNS3's notifications (`gns3.auto_monitor`, not `--no-events`).
    pub ingest_enabled: bool,
    /// The event dispatcher (absent with `--no-events`).
    pub dispatcher: Option<Addr<PriorityDispatcher>>,
    pub cache: Addr<CacheActor>,
    /// The bridge to the other instances (Redis enabled and `cluster.enabled`).
    pub cluster: Option<Addr<ClusterBridge>>,
    /// The accepted credentials (the HTTP middleware and `auth::authenticate_ws` use them).
    pub auth: Arc<crate::auth::Auth>,
    /// Open WebSocket sessions (closed with 1001 on shutdown) and their counters.
    pub sessions: Arc<sessions::SessionRegistry>,
    /// Registered modules, the bus, and what they reach (`gns3_central_actors::modules`).
    pub modules: gns3_central_actors::modules::ModuleContext,
    /// The notification sinks (the built-in `notifications` module).
    pub sinks: Vec<gns3_central_actors::sinks::SinkHandle>,
    /// What `/metrics` exposes that no actor owns (HTTP durations, connected modules).
    pub metrics: Arc<crate::observe::metrics::Metrics>,
    /// The effective configuration with its live changes (`PATCH /api/v2/config`, SIGHUP).
    pub live: Arc<crate::config::live::Live>,
    /// Restarts of the supervised actors and restart storms (`/readyz`, `/metrics`).
    pub supervision: Arc<gns3_central_actors::supervise::Supervision>,
    /// The audit trail (`crate::observe::audit`): `state.audit.record(…)` for every action.
    pub audit: Arc<crate::observe::audit::Audit>,
}

impl AppState {
    /// The connector of a server, or 404 `unknown_server`.
    pub fn connector(&self, name: &str) -> Result<&Addr<Gns3Connector>, ApiError> {
        self.servers.get(name).ok_or_else(|| ApiError::unknown_server(name))
    }

    /// Sends a message to a server's connector and flattens both failure layers.
    pub async fn ask<M, T>(&self, server: &str, msg: M) -> Result<T, ApiError>
    where
        M: Message<Result = Result<T, ConnectorError>> + Send + 'static,
        T: Send + 'static,
        Gns3Connector: Handler<M>,
    {
        let addr = self.connector(server)?;
        Ok(addr.send(msg).await??)
    }

    /// How long a resume (`since`) ahead of this instance's history waits for it to catch
    /// up with the shared log (docs/events.md#resuming-on-another-instance): twice
    /// `cluster.redis_timeout_ms` when clustered; without the cluster, nothing (answered at
    /// once: no other instance numbers events).
    pub fn resume_wait(&self) -> std::time::Duration {
        match self.cluster {
            Some(_) => self.settings.cluster.redis_timeout() * 2,
            None => std::time::Duration::ZERO,
        }
    }

    /// The dispatcher, or 503 `events_disabled` when the service runs with `--no-events`.
    pub fn dispatcher(&self) -> Result<&Addr<PriorityDispatcher>, ApiError> {
        self.dispatcher.as_ref().ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                Code::EventsDisabled,
                "live events are off (the service runs with --no-events)",
            )
        })
    }

    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

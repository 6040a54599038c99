//! Service status and the configured GNS3 servers: `/api/v2/status`, `/api/v2/servers`.

use actix::Addr;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use gns3_central_actors::connector::{
    CircuitState, CircuitStatus, GetServerStatus, Gns3Connector, LatencyStats, ListComputes, Reconnect, ServerStatus,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use gns3_central_actors::cache::GetCacheStats;
use gns3_central_actors::dispatcher::GetStats;
use gns3_central_actors::gns3::Compute;

#[derive(Serialize, ToSchema)]
pub struct ServiceStatus {
    pub service: ServiceInfo,
    /// True when every configured GNS3 server is connected.
    pub ready: bool,
    pub servers: Vec<ServerStatus>,
    pub cache: ComponentStatus,
    pub events: ComponentStatus,
}

impl ServiceStatus {
    /// The event statistics cover every project, so a project-scoped credential does not
    /// get them (as `/api/v2/events/stats` answers it 403 `project_out_of_scope`).
    pub fn for_principal(mut self, principal: &Principal) -> Self {
        if principal.is_scoped() {
            self.events.details = None;
            self.events.note.push_str(" (statistics cover every project: not shown to a project-scoped credential)");
        }
        self
    }
}

#[derive(Serialize, ToSchema)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub started_at: DateTime<Utc>,
    pub uptime_secs: f64,
}

/// State of a subsystem. `implemented: false` marks a placeholder for a part that is not
/// built yet, so clients can tell "off" from "not there".
#[derive(Serialize, ToSchema)]
pub struct ComponentStatus {
    pub implemented: bool,
    pub enabled: bool,
    pub note: String,
    /// The component's own statistics (cache: `CacheStats`; events: `DispatcherStats`);
    /// `null` when the component does not answer or is off.
    #[schema(value_type = Option<Object>, required = true)]
    pub details: Option<serde_json::Value>,
}

/// Asks every connector for its status, concurrently. A connector that does not answer
/// (restarting) is reported as disconnected rather than failing the whole answer.
pub async fn collect_statuses(state: &AppState) -> Vec<ServerStatus> {
    join_all(state.servers.iter().map(|(name, addr)| status_of(state, name, addr))).await
}

/// One connector's status, or a "disconnected" one when it does not answer (restarting).
async fn status_of(state: &AppState, name: &str, addr: &Addr<Gns3Connector>) -> ServerStatus {
    match addr.send(GetServerStatus).await {
        Ok(s) => s,
        Err(e) => unreachable_status(state, name, &e.to_string()),
    }
}

fn unreachable_status(state: &AppState, name: &str, why: &str) -> ServerStatus {
    let url = state.settings.gns3.servers.get(name).map(|s| s.base_url()).unwrap_or_default();
    ServerStatus {
        name: name.to_owned(),
        url,
        connected: false,
        gns3_version: None,
        api_version: None,
        authenticated: false,
        circuit: CircuitStatus {
            state: CircuitState::Closed,
            consecutive_failures: 0,
            times_opened: 0,
            retry_after_secs: None,
        },
        last_error: Some(format!("connector not answering: {why}")),
        last_error_at: Some(Utc::now()),
        connected_since: None,
        disconnects: 0,
        actor_restarts: 0,
        latency: LatencyStats::default(),
    }
}

pub async fn build_status(state: &AppState) -> ServiceStatus {
    let servers = collect_statuses(state).await;
    ServiceStatus {
        service: ServiceInfo {
            name: "gns3-central",
            version: env!("CARGO_PKG_VERSION"),
            started_at: state.started_at,
            uptime_secs: state.uptime_secs(),
        },
        ready: servers.iter().all(|s| s.connected),
        servers,
        cache: cache_status(state).await,
        events: events_status(state).await,
    }
}

async fn cache_status(state: &AppState) -> ComponentStatus {
    match state.cache.send(GetCacheStats).await {
        Ok(stats) => ComponentStatus {
            implemented: true,
            enabled: true,
            note: format!("backend {:?}, {} hits, {} misses", stats.backend, stats.hits, stats.misses).to_lowercase(),
            details: serde_json::to_value(stats).ok(),
        },
        Err(e) => ComponentStatus {
            implemented: true,
            enabled: false,
            note: format!("the cache does not answer: {e}"),
            details: None,
        },
    }
}

async fn events_status(state: &AppState) -> ComponentStatus {
    let Some(d) = &state.dispatcher else {
        return ComponentStatus { implemented: true, enabled: false, note: "off (--no-events)".into(), details: None };
    };
    match d.send(GetStats).await {
        Ok(stats) => ComponentStatus {
            implemented: true,
            enabled: true,
            note: format!(
                "epoch {}, last seq {}, ingestion {}",
                stats.epoch,
                stats.last_seq,
                if state.ingest_enabled { "on" } else { "off (gns3.auto_monitor = false)" }
            ),
            details: serde_json::to_value(stats).ok(),
        },
        Err(e) => ComponentStatus {
            implemented: true,
            enabled: false,
            note: format!("the dispatcher does not answer: {e}"),
            details: None,
        },
    }
}

/// Service version and uptime, each GNS3 server's connection, circuit and latency.
#[utoipa::path(get, path = "/api/v2/status", tag = "status",
    responses((status = 200, description = "Service status", body = ServiceStatus)))]
#[get("/api/v2/status")]
pub async fn service_status(state: web::Data<AppState>, principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(build_status(&state).await.for_principal(&principal))
}

/// The configured GNS3 servers and their connection state.
#[utoipa::path(get, path = "/api/v2/servers", tag = "servers",
    responses((status = 200, description = "Every configured server", body = Vec<ServerStatus>)))]
#[get("/api/v2/servers")]
pub async fn list_servers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(collect_statuses(&state).await)
}

/// One GNS3 server's connection state.
#[utoipa::path(get, path = "/api/v2/servers/{server}", tag = "servers",
    params(("server" = String, Path, description = "Configured server name, e.g. `default`", example = "default")),
    responses(
        (status = 200, description = "The server's status", body = ServerStatus),
        (status = 404, description = "No such server", body = ErrorBody)))]
#[get("/api/v2/servers/{server}")]
pub async fn get_server(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let addr = state.connector(&name)?;
    Ok(HttpResponse::Ok().json(status_of(&state, &name, addr).await))
}

/// Drops the server's connection state (HTTP connections, v3 login, circuit) and connects
/// anew: the connector actor is restarted by its supervisor (`actor_restarts` counts it).
/// Calls in flight on the old connection answer 503 `connector_unavailable`.
#[utoipa::path(post, path = "/api/v2/servers/{server}/reconnect", tag = "servers",
    params(("server" = String, Path, description = "Configured server name", example = "default")),
    responses(
        (status = 202, description = "The connector is restarting; poll the server's status", body = ServerStatus),
        (status = 404, description = "No such server", body = ErrorBody),
        (status = 503, description = "The connector did not take the request", body = ErrorBody)))]
#[post("/api/v2/servers/{server}/reconnect")]
pub async fn reconnect(
    state: web::Data<AppState>,
    path: web::Path<String>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("a reconnect")?;
    let name = path.into_inner();
    let addr = state.connector(&name)?;
    let sent = addr.send(Reconnect).await.map_err(ApiError::from);
    state.audit.record(
        crate::observe::audit::AuditRecord::new(&principal.name, principal.role.as_str(), "rest", "server.reconnect")
            .target(&name, None, None)
            .result(&sent, |_| ""),
    );
    sent?;
    Ok(HttpResponse::Accepted().json(status_of(&state, &name, addr).await))
}

/// The computes of a GNS3 server, as GNS3 lists them. GNS3 v3 hides its local compute, so
/// the list can be empty there although nodes run on `local`.
#[utoipa::path(get, path = "/api/v2/servers/{server}/computes", tag = "servers",
    params(("server" = String, Path, description = "Configured server name", example = "default")),
    responses(
        (status = 200, description = "Computes as GNS3 lists them", body = Vec<Compute>),
        (status = 404, description = "No such server", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/computes")]
pub async fn list_computes(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.ask(&path.into_inner(), ListComputes).await?))
}

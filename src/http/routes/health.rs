//! `/healthz` (the process answers) and `/readyz` (every configured GNS3 server is
//! reachable; otherwise 503 with the names of those that are not). `/readyz` also shows
//! the cache's backend and Redis state, without gating on them: reads are served from
//! memory while Redis is down. A supervised actor in a restart storm makes it unready
//! until the storm calms (`supervise.rs`).

use actix_web::{get, http::header, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::servers::collect_statuses;
use crate::state::AppState;
use gns3_central_actors::cache::GetCacheStats;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// Servers that are not reachable now (empty when ready).
    pub not_ready: Vec<String>,
    pub servers: Vec<ServerReadiness>,
    pub cache: CacheReadiness,
    /// Supervised actors in a restart storm (empty when calm); any makes the service unready.
    pub restart_storms: Vec<String>,
}

/// The cache never makes the service unready: while Redis is down it serves from memory.
#[derive(Serialize, ToSchema)]
pub struct CacheReadiness {
    /// `memory` or `redis`: where reads are served from now.
    pub backend: String,
    /// `disabled`, `up` or `down`.
    pub redis: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServerReadiness {
    pub name: String,
    pub connected: bool,
    pub last_error: Option<String>,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: every configured GNS3 server is reachable.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Every GNS3 server is reachable", body = Readiness),
        (status = 503, description = "At least one GNS3 server is not reachable", body = Readiness)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let statuses = collect_statuses(&state).await;
    let servers: Vec<ServerReadiness> = statuses
        .into_iter()
        .map(|s| ServerReadiness { name: s.name, connected: s.connected, last_error: s.last_error })
        .collect();
    let mut not_ready: Vec<String> = servers.iter().filter(|s| !s.connected).map(|s| s.name.clone()).collect();
    let restart_storms: Vec<String> = state
        .supervision
        .report()
        .into_iter()
        .filter(|a| a.storming)
        .map(|a| format!("{}:{}", a.actor, a.name))
        .collect();
    not_ready.extend(restart_storms.iter().map(|a| format!("restart storm: {a}")));
    let cache = match state.cache.send(GetCacheStats).await {
        Ok(c) => CacheReadiness {
            backend: serde_json::to_value(c.backend)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            redis: serde_json::to_value(c.redis).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        },
        Err(_) => CacheReadiness { backend: "unavailable".into(), redis: "unknown".into() },
    };
    let body = Readiness { ready: not_ready.is_empty(), not_ready, servers, cache, restart_storms };
    if body.ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().insert_header((header::RETRY_AFTER, "1")).json(body)
    }
}

/// Refused credentials since start, by reason (admin).
#[utoipa::path(get, path = "/api/v2/auth/stats", tag = "health",
    responses((status = 200, description = "Refusals counted", body = crate::auth::RefusalStats)))]
#[actix_web::get("/api/v2/auth/stats")]
pub async fn auth_stats(state: actix_web::web::Data<crate::state::AppState>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(state.auth.refused.snapshot())
}

//! The event system over HTTP: history (`GET /api/v2/events`), statistics
//! (`/api/v2/events/stats` and the original `/api/common/api/gns3-events/stats/`) and
//! dead letters. History replies are assembled from each event's JSON as the dispatcher
//! serialized it once, not serialized again.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use gns3_central_actors::cluster::{ClusterStatus, GetClusterStatus};
use gns3_central_actors::dispatcher::{
    DeadLetter, DispatcherStats, GetDeadLetters, GetHistory, GetStats, SubscriptionFilter, Unrecoverable,
};
use gns3_central_actors::events::Event;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::{parse_uuid, ApiError, Code, ErrorBody};
use crate::state::AppState;

/// Most events one history page may hold.
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Events after this event id (`EPOCH-SEQ`); without it, the most recent ones.
    #[param(pattern = r"^.+-[0-9]{1,19}$", example = "k3x9-42")]
    pub since: Option<String>,
    /// Events per page, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Comma-separated groups, types or globs (`node_status,link.*`); default: all. Empty
    /// entries and spaces around them are ignored; a name is `all`, a group, an event or
    /// module type (`node.started`, `monitoring.alert`) or a glob (`link.*`). A type in a
    /// built-in namespace that is not one (`node.strated`) fits the pattern but is refused
    /// (`invalid_filter`).
    #[param(
        pattern = r"^[ ,]*(?:(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|[A-Za-z0-9_.*-]*\*[A-Za-z0-9_.*-]*|all|node_status|topology_changes|project_status|server_status)(?: *,[ ,]*(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|[A-Za-z0-9_.*-]*\*[A-Za-z0-9_.*-]*|all|node_status|topology_changes|project_status|server_status))*)?[ ,]*$",
        example = "node_status,link.*"
    )]
    pub types: Option<String>,
    /// Comma-separated project UUIDs (empty entries and spaces around them ignored).
    #[param(
        pattern = r"^[ ,]*(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?: *,[ ,]*[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*)?[ ,]*$",
        example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"
    )]
    pub projects: Option<String>,
}

/// The shape of a history page (documentation; the body is assembled from raw JSON).
#[derive(Serialize, ToSchema)]
pub struct HistoryBody {
    pub epoch: String,
    pub latest_seq: u64,
    pub oldest_seq: Option<u64>,
    /// More matching events exist beyond this page.
    pub truncated: bool,
    /// Oldest first.
    pub events: Vec<Event>,
}

fn filter_of(q: &HistoryQuery, principal: &Principal) -> Result<Option<SubscriptionFilter>, ApiError> {
    // Only spaces around an entry are ignored, as the patterns of `HistoryQuery` say.
    let split = |s: &str| -> Vec<String> {
        s.split(',').map(|p| p.trim_matches(' ')).filter(|p| !p.is_empty()).map(str::to_owned).collect()
    };
    let names = q.types.as_deref().map(split).unwrap_or_default();
    if let Some(bad) = names.iter().find(|n| !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.*".contains(&b))) {
        let shown: String = bad.chars().take(64).collect();
        return Err(ApiError::bad_request(Code::InvalidFilter, format!("'{shown}' is not a group, type or glob")));
    }
    let projects = q
        .projects
        .as_deref()
        .map(split)
        .unwrap_or_default()
        .iter()
        .map(|p| parse_uuid("projects", p))
        .collect::<Result<Vec<_>, _>>()?;
    // A project-scoped credential asks for its own projects, or gets them all by default.
    let projects = match &principal.projects {
        None => projects,
        Some(scope) if projects.is_empty() => scope.iter().copied().collect(),
        Some(_) => {
            for p in &projects {
                principal.check_project(p)?;
            }
            projects
        }
    };
    if names.is_empty() && projects.is_empty() {
        return Ok(None);
    }
    let names = if names.is_empty() { vec!["all".to_owned()] } else { names };
    SubscriptionFilter::new(names, projects)
        .map(Some)
        .map_err(|e| ApiError::bad_request(Code::InvalidFilter, e.to_string()))
}

/// Past events, oldest first: after `since`, or the most recent `limit`.
#[utoipa::path(get, path = "/api/v2/events", tag = "events", params(HistoryQuery),
    responses(
        (status = 200, description = "A page of history", body = HistoryBody),
        (status = 400, description = "Bad id, limit or filter", body = ErrorBody),
        (status = 410, description = "`since` is from another epoch or older than the history kept: rebuild from the topology", body = ErrorBody),
        (status = 503, description = "Live events are off (--no-events)", body = ErrorBody)))]
#[get("/api/v2/events")]
pub async fn history(
    state: web::Data<AppState>,
    query: web::Query<HistoryQuery>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(Code::InvalidLimit, format!("limit must be 1-{MAX_LIMIT}, got {limit}")));
    }
    let filter = filter_of(&query, &principal)?;
    let page = state
        .dispatcher()?
        .send(GetHistory { since: query.since.clone(), limit, filter, wait_ahead: state.resume_wait() })
        .await?
        .map_err(unrecoverable)?;
    let mut body = Vec::with_capacity(128 + page.entries.iter().map(|e| e.json.len() + 1).sum::<usize>());
    let head = serde_json::json!({
        "epoch": page.epoch, "latest_seq": page.latest_seq,
        "oldest_seq": page.oldest_seq, "truncated": page.truncated,
    });
    let head = serde_json::to_vec(&head)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.to_string()))?;
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(b",\"events\":[");
    for (i, e) in page.entries.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&e.json);
    }
    body.extend_from_slice(b"]}");
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

fn unrecoverable(e: Unrecoverable) -> ApiError {
    let message = e.to_string();
    match e {
        Unrecoverable::OtherEpoch { .. } | Unrecoverable::TooOld { .. } => {
            ApiError::new(StatusCode::GONE, Code::HistoryLost, message)
        }
        _ => ApiError::bad_request(Code::InvalidSince, message),
    }
}

/// Counts per type and priority, queue depths, latency, epoch and last seq, subscribers.
#[utoipa::path(get, path = "/api/v2/events/stats", tag = "events",
    responses(
        (status = 200, description = "Event statistics", body = DispatcherStats),
        (status = 503, description = "Live events are off (--no-events)", body = ErrorBody)))]
#[get("/api/v2/events/stats")]
pub async fn stats(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("the event statistics")?;
    Ok(HttpResponse::Ok().json(state.dispatcher()?.send(GetStats).await?))
}

/// Event statistics (the original service's path; same body as `/api/v2/events/stats`).
#[utoipa::path(get, path = "/api/common/api/gns3-events/stats/", tag = "original API",
    responses(
        (status = 200, description = "Event statistics", body = DispatcherStats),
        (status = 503, description = "Live events are off (--no-events)", body = ErrorBody)))]
#[get("/api/common/api/gns3-events/stats/")]
pub async fn legacy_stats(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("the event statistics")?;
    Ok(HttpResponse::Ok().json(state.dispatcher()?.send(GetStats).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct DeadLetterQuery {
    /// How many, 1-1000 (default 100), the most recent ones.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Deliveries given up after their retries (slow or gone subscribers), oldest first.
#[utoipa::path(get, path = "/api/v2/events/dead-letters", tag = "events", params(DeadLetterQuery),
    responses(
        (status = 200, description = "Dead letters", body = Vec<DeadLetter>),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 503, description = "Live events are off (--no-events)", body = ErrorBody)))]
#[get("/api/v2/events/dead-letters")]
pub async fn dead_letters(
    state: web::Data<AppState>,
    query: web::Query<DeadLetterQuery>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("the dead letters")?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(Code::InvalidLimit, format!("limit must be 1-{MAX_LIMIT}, got {limit}")));
    }
    Ok(HttpResponse::Ok().json(state.dispatcher()?.send(GetDeadLetters { limit }).await?))
}

/// Where this instance stands among several on one Redis: whether events go through the
/// shared log, its epoch, which GNS3 servers this instance ingests (holds the lease of),
/// and counts of events appended and received (own / other instances').
#[utoipa::path(get, path = "/api/v2/cluster", tag = "events",
    responses(
        (status = 200, description = "Cluster status", body = ClusterStatus),
        (status = 404, description = "Not in cluster mode (Redis off, cluster.enabled false, or --no-events)", body = ErrorBody)))]
#[get("/api/v2/cluster")]
pub async fn cluster(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some(bridge) = &state.cluster else {
        return Err(ApiError::not_found(
            Code::NotClustered,
            "this instance does not share events through Redis (enable [redis] and [cluster])",
        ));
    };
    Ok(HttpResponse::Ok().json(bridge.send(GetClusterStatus).await?))
}

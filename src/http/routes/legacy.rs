//! The original service's paths, kept working for existing scripts:
//! `/api/common/api/gns3-central/{status,topology,start_node,stop_node,restart_node,
//! start_project,refresh_topology}/`
//! (`create_module_interface/` is in `modules.rs`),
//! and the older `/api/gns3/status/`,
//! `/api/gns3/nodes/start/`, `/api/gns3/topology/`. They answer with the same objects as
//! the `/api/v2/` equivalents; action bodies are `{"project_id","node_id"}` plus an
//! optional `"server"` (default: the default server).

use actix_web::{get, post, web, HttpResponse};
use gns3_central_actors::connector::{NodeActionOutcome, ProjectActionOutcome, RunNodeAction, RunProjectAction};
use gns3_central_actors::gns3::{NodeAction, ProjectAction, ServerTopology};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::{self, Checked, MaybeChecked};
use super::cached::ReadOptions;
use super::servers::{build_status, ServiceStatus};
use super::topology::{query_reply, refresh_scoped, RefreshRequest, Topology, TopologyQuery};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(status)
        .service(topology)
        .service(start_node)
        .service(stop_node)
        .service(restart_node)
        .service(start_project)
        .service(refresh_topology)
        .service(old_status)
        .service(old_start_node)
        .service(old_topology);
}

/// Body of the node actions of the original API (no other field is taken).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"project_id": "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3",
    "node_id": "e19f73a6-0000-4000-8000-000000000001", "server": "default"}))]
pub struct NodeRequest {
    pub project_id: Uuid,
    pub node_id: Uuid,
    /// Configured server name; absent or null: the default server.
    pub server: Option<String>,
}

/// Body of `start_project` (no other field is taken).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"project_id": "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"}))]
pub struct ProjectRequest {
    pub project_id: Uuid,
    /// Configured server name; absent or null: the default server.
    pub server: Option<String>,
}

async fn node_action(
    state: &AppState,
    body: &Value,
    action: NodeAction,
    principal: &Principal,
) -> Result<NodeActionOutcome, ApiError> {
    let project_id = body::required_uuid(body, "project_id")?;
    principal.check_project(&project_id)?;
    let node_id = body::required_uuid(body, "node_id")?;
    let server = body::optional_str(body, "server")?.unwrap_or(&state.default_server);
    let outcome = state.ask(server, RunNodeAction { project_id, node_id, action }).await;
    state.audit.record(
        crate::observe::audit::AuditRecord::new(
            &principal.name,
            principal.role.as_str(),
            "rest",
            format!("node.{}", action.as_str()),
        )
        .target(server, Some(project_id), Some(node_id))
        .result(&outcome, |o| &o.correlation_id),
    );
    outcome
}

/// Service status (same body as `/api/v2/status`).
#[utoipa::path(get, path = "/api/common/api/gns3-central/status/", tag = "original API",
    responses((status = 200, description = "Service status", body = ServiceStatus)))]
#[get("/api/common/api/gns3-central/status/")]
pub async fn status(state: web::Data<AppState>, principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(build_status(&state).await.for_principal(&principal))
}

/// Topology of the default server (or `?server=`), optionally one project (`?project_id=`).
#[utoipa::path(get, path = "/api/common/api/gns3-central/topology/", tag = "original API",
    params(TopologyQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The topology", body = ServerTopology,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/common/api/gns3-central/topology/")]
pub async fn topology(
    state: web::Data<AppState>,
    query: web::Query<TopologyQuery>,
    principal: Principal,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    query_reply(&state, &query, &principal, &opts).await
}

macro_rules! node_action_route {
    ($fn:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "original API",
            request_body = NodeRequest,
            responses(
                (status = 200, description = "Done; steps and the node afterwards", body = NodeActionOutcome),
                (status = 400, description = "Malformed body, missing field, wrong type or non-UUID id", body = ErrorBody),
                (status = 403, description = "GNS3 refused (project not opened)", body = ErrorBody),
                (status = 404, description = "Unknown server, project or node", body = ErrorBody),
                (status = 409, description = "GNS3 refused; details.node has the true status", body = ErrorBody),
                (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
        #[post($path)]
        pub async fn $fn(
            state: web::Data<AppState>,
            body: Checked<NodeRequest>,
            principal: Principal,
        ) -> Result<HttpResponse, ApiError> {
            Ok(HttpResponse::Ok().json(node_action(&state, &body, $action, &principal).await?))
        }
    };
}

node_action_route!(start_node, "/api/common/api/gns3-central/start_node/", NodeAction::Start, "Starts a node.");
node_action_route!(stop_node, "/api/common/api/gns3-central/stop_node/", NodeAction::Stop, "Stops a node.");
node_action_route!(
    restart_node,
    "/api/common/api/gns3-central/restart_node/",
    NodeAction::Restart,
    "Restarts a node (stop, then start), reported as one outcome with both steps."
);
node_action_route!(
    old_start_node,
    "/api/gns3/nodes/start/",
    NodeAction::Start,
    "Starts a node (oldest compatibility path)."
);

/// Opens a project when it is closed, then starts all of its nodes.
#[utoipa::path(post, path = "/api/common/api/gns3-central/start_project/", tag = "original API",
    request_body = ProjectRequest,
    responses(
        (status = 200, description = "Opened (if needed) and started; one outcome per step", body = Vec<ProjectActionOutcome>),
        (status = 400, description = "Malformed body or bad id", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 409, description = "GNS3 refused; its message is passed through", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[post("/api/common/api/gns3-central/start_project/")]
pub async fn start_project(
    state: web::Data<AppState>,
    body: Checked<ProjectRequest>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let project_id = body::required_uuid(&body, "project_id")?;
    principal.check_project(&project_id)?;
    let server = body::optional_str(&body, "server")?.unwrap_or(&state.default_server);
    let mut outcomes = Vec::with_capacity(2);
    for action in [ProjectAction::Open, ProjectAction::Start] {
        let outcome = state.ask(server, RunProjectAction { project_id, action }).await;
        state.audit.record(
            crate::observe::audit::AuditRecord::new(
                &principal.name,
                principal.role.as_str(),
                "rest",
                format!("project.{}", action.as_str()),
            )
            .target(server, Some(project_id), None)
            .result(&outcome, |o| &o.correlation_id),
        );
        outcomes.push(outcome?);
    }
    Ok(HttpResponse::Ok().json(outcomes))
}

/// Re-reads the topology from GNS3 now; optional body `{"server","project_id"}`.
#[utoipa::path(post, path = "/api/common/api/gns3-central/refresh_topology/", tag = "original API",
    request_body(content = Option<RefreshRequest>, description = "Optional scope; an empty body refreshes everything"),
    responses(
        (status = 200, description = "The fresh topology", body = Topology),
        (status = 400, description = "Malformed body or bad id", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[post("/api/common/api/gns3-central/refresh_topology/")]
pub async fn refresh_topology(
    state: web::Data<AppState>,
    body: MaybeChecked<RefreshRequest>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("a refresh")?;
    Ok(refresh_scoped(&state, body.0.as_ref()).await?.respond())
}

/// Service status (oldest compatibility path).
#[utoipa::path(get, path = "/api/gns3/status/", tag = "original API",
    responses((status = 200, description = "Service status", body = ServiceStatus)))]
#[get("/api/gns3/status/")]
pub async fn old_status(state: web::Data<AppState>, principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(build_status(&state).await.for_principal(&principal))
}

/// Topology (oldest compatibility path; same query as the `gns3-central/topology/` path).
#[utoipa::path(get, path = "/api/gns3/topology/", tag = "original API",
    params(TopologyQuery,
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The topology", body = ServerTopology,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/gns3/topology/")]
pub async fn old_topology(
    state: web::Data<AppState>,
    query: web::Query<TopologyQuery>,
    principal: Principal,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    query_reply(&state, &query, &principal, &opts).await
}

//! A project's nodes and links (slices of the cached project topology, conditional:
//! `cached.rs`), and the node actions start/stop/restart/suspend/reload.

use actix_web::{get, post, web, HttpResponse};
use gns3_central_actors::cache::TopologyPart;
use gns3_central_actors::connector::{NodeActionOutcome, RunNodeAction};
use gns3_central_actors::gns3::{Link, Node, NodeAction};

use super::cached::{self, ReadOptions};
use crate::error::{parse_uuid, ApiError, Code, ErrorBody};
use crate::observe::audit::AuditRecord;
use crate::state::AppState;

/// The nodes of a project (also of a closed one: GNS3 lists them as stopped).
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}/nodes", tag = "nodes",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "Nodes as GNS3 reports them", body = Vec<Node>,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}/nodes")]
pub async fn list_nodes(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    Ok(cached::project_part(&state, &server, project_id, TopologyPart::Nodes, &opts).await?.respond(&opts))
}

/// One node.
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}",
    tag = "nodes",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("node_id" = uuid::Uuid, Path, description = "Node UUID", example = "e19f73a6-0000-4000-8000-000000000001"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The node", body = Node,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "An id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server, project or node", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}")]
pub async fn get_node(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project, node) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    let node_id = parse_uuid("node_id", &node)?;
    let part = TopologyPart::Node(node_id);
    Ok(cached::project_part(&state, &server, project_id, part, &opts).await?.respond(&opts))
}

/// Runs a node action. `restart` is a stop then a start, reported as one outcome with
/// both steps. When GNS3 refuses, its status and message are passed through and
/// `details.node` holds the node as GNS3 reports it afterwards.
#[utoipa::path(post,
    path = "/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}/actions/{action}",
    tag = "nodes",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("node_id" = uuid::Uuid, Path, description = "Node UUID", example = "e19f73a6-0000-4000-8000-000000000001"),
           ("action" = NodeAction, Path, description = "`start`, `stop`, `restart`, `suspend` or `reload`", example = "stop")),
    responses(
        (status = 200, description = "Done; steps and the node afterwards", body = NodeActionOutcome),
        (status = 400, description = "Unknown action or bad id", body = ErrorBody),
        (status = 403, description = "GNS3 refused (e.g. project not opened)", body = ErrorBody),
        (status = 404, description = "Unknown server, project or node", body = ErrorBody),
        (status = 409, description = "GNS3 refused; its message is passed through, details.node has the true status", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[post("/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}/actions/{action}")]
pub async fn node_action(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String, String)>,
    principal: crate::auth::Principal,
) -> Result<HttpResponse, ApiError> {
    let (server, project, node, action) = path.into_inner();
    let action: NodeAction = action.parse().map_err(|m: String| ApiError::bad_request(Code::InvalidAction, m))?;
    let project_id = parse_uuid("project_id", &project)?;
    let node_id = parse_uuid("node_id", &node)?;
    let outcome = state.ask(&server, RunNodeAction { project_id, node_id, action }).await;
    state.audit.record(
        AuditRecord::new(&principal.name, principal.role.as_str(), "rest", format!("node.{}", action.as_str()))
            .target(&server, Some(project_id), Some(node_id))
            .result(&outcome, |o| &o.correlation_id),
    );
    Ok(HttpResponse::Ok().json(outcome?))
}

/// The links of a project.
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}/links", tag = "links",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "Links as GNS3 reports them", body = Vec<Link>,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}/links")]
pub async fn list_links(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    Ok(cached::project_part(&state, &server, project_id, TopologyPart::Links, &opts).await?.respond(&opts))
}

//! A server's projects: list, read (from the cache, conditional: `cached.rs`), and the
//! project actions open/close/start/stop (start/stop are GNS3's bulk calls on every node
//! of the project).

use actix_web::{get, post, web, HttpResponse};
use gns3_central_actors::cache::TopologyPart;
use gns3_central_actors::connector::{ProjectActionOutcome, RunProjectAction};
use gns3_central_actors::gns3::{Project, ProjectAction};

use super::cached::{self, ReadOptions};
use crate::auth::Principal;
use crate::error::{parse_uuid, ApiError, Code, ErrorBody};
use crate::state::AppState;

/// Every project of a GNS3 server (opened and closed).
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects", tag = "projects",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "Projects as GNS3 reports them", body = Vec<Project>,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 404, description = "Unknown server", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open (see Retry-After)", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects")]
pub async fn list_projects(
    state: web::Data<AppState>,
    path: web::Path<String>,
    principal: Principal,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    // A project-scoped credential sees only its projects.
    Ok(cached::project_list(&state, &path.into_inner(), &opts, &principal).await?.respond(&opts))
}

/// One project.
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}", tag = "projects",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The project", body = Project,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project (GNS3's message)", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}")]
pub async fn get_project(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    Ok(cached::project_part(&state, &server, project_id, TopologyPart::Project, &opts).await?.respond(&opts))
}

/// Opens or closes a project, or starts/stops all of its nodes.
#[utoipa::path(post, path = "/api/v2/servers/{server}/projects/{project_id}/actions/{action}",
    tag = "projects",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("action" = ProjectAction, Path, description = "`open`, `close`, `start` or `stop`", example = "open")),
    responses(
        (status = 200, description = "Done; the project as GNS3 reports it afterwards", body = ProjectActionOutcome),
        (status = 400, description = "Unknown action or bad id", body = ErrorBody),
        (status = 403, description = "GNS3 refused (e.g. project not opened)", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 409, description = "GNS3 refused; its message is passed through", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[post("/api/v2/servers/{server}/projects/{project_id}/actions/{action}")]
pub async fn project_action(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    principal: crate::auth::Principal,
) -> Result<HttpResponse, ApiError> {
    let (server, project, action) = path.into_inner();
    let action: ProjectAction = action.parse().map_err(|m: String| ApiError::bad_request(Code::InvalidAction, m))?;
    let project_id = parse_uuid("project_id", &project)?;
    let outcome = state.ask(&server, RunProjectAction { project_id, action }).await;
    state.audit.record(
        crate::observe::audit::AuditRecord::new(
            &principal.name,
            principal.role.as_str(),
            "rest",
            format!("project.{}", action.as_str()),
        )
        .target(&server, Some(project_id), None)
        .result(&outcome, |o| &o.correlation_id),
    );
    Ok(HttpResponse::Ok().json(outcome?))
}

//! Topology reads: every server, one server, or one project, and the refresh call.
//! Reads are served from the cache when it holds them; a refresh drops the cached
//! entries first, so it always reads GNS3.

use actix_web::{get, post, web, HttpResponse};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use gns3_central_actors::cache::{
    GetProjectTopologyJson, GetProjects, Invalidate, ProjectList, PutProjectTopology, PutProjects,
};
use gns3_central_actors::connector::{FetchTopology, GetServerStatus};
use gns3_central_actors::gns3::ServerTopology;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body;
use crate::auth::Principal;
use crate::error::{parse_uuid, ApiError, Code, ErrorBody, ErrorDetail};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Topology {
    /// One entry per reachable server.
    pub servers: Vec<ServerTopology>,
    /// Servers that could not be read, with the error of each.
    pub unavailable: Vec<UnavailableServer>,
}

#[derive(Serialize, ToSchema)]
pub struct UnavailableServer {
    pub server: String,
    pub error: ErrorDetail,
}

#[derive(Deserialize, IntoParams)]
pub struct TopologyQuery {
    /// Limit to one server (default: every server).
    #[param(example = "default")]
    pub server: Option<String>,
    /// Limit to one project (UUID); needs `server` when several servers are configured.
    #[param(value_type = Option<uuid::Uuid>)]
    pub project_id: Option<String>,
}

/// A topology answer as JSON, ready to send (cached parts are concatenated as the cache
/// holds them, not parsed and serialized again).
pub struct Rendered(pub Bytes);

impl Rendered {
    pub fn respond(self) -> HttpResponse {
        HttpResponse::Ok().content_type("application/json").body(self.0)
    }

    /// Only the projects a project-scoped credential may see (parsed and written again,
    /// which only scoped credentials pay for).
    pub fn scoped(self, principal: &Principal) -> Result<Rendered, ApiError> {
        if !principal.is_scoped() {
            return Ok(self);
        }
        let internal = |e: serde_json::Error| {
            ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.to_string())
        };
        let mut v: serde_json::Value = serde_json::from_slice(&self.0).map_err(internal)?;
        let keep = |projects: &mut serde_json::Value| {
            if let Some(list) = projects.as_array_mut() {
                list.retain(|p| {
                    p["project"]["project_id"]
                        .as_str()
                        .and_then(|id| Uuid::parse_str(id).ok())
                        .is_some_and(|id| principal.allows_project(&id))
                });
            }
        };
        match v.get_mut("servers").and_then(|s| s.as_array_mut()) {
            Some(servers) => servers.iter_mut().for_each(|s| keep(&mut s["projects"])),
            None => keep(&mut v["projects"]),
        }
        Ok(Rendered(Bytes::from(serde_json::to_vec(&v).map_err(internal)?)))
    }
}

/// Reads every server's topology concurrently. Fails only when no server could be read
/// (then with the first server's error, e.g. 503 when GNS3 is down).
pub async fn read_all(state: &AppState) -> Result<Rendered, ApiError> {
    let results =
        join_all(state.servers.keys().map(|name| async move { (name.clone(), read_one(state, name, None).await) }))
            .await;
    let mut servers = Vec::new();
    let mut unavailable = Vec::new();
    let mut first_error = None;
    for (server, result) in results {
        match result {
            Ok(t) => servers.push(t),
            Err(e) => {
                unavailable.push(UnavailableServer {
                    server,
                    error: ErrorDetail {
                        code: e.code.as_str().to_owned(),
                        message: e.message.clone(),
                        details: e.details.clone(),
                    },
                });
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if servers.is_empty() => Err(e),
        _ => Ok(render_all(servers, &unavailable)),
    }
}

/// `{"servers":[...],"unavailable":[...]}` from rendered server topologies.
fn render_all(servers: Vec<Rendered>, unavailable: &[UnavailableServer]) -> Rendered {
    let mut out = Vec::with_capacity(64 + servers.iter().map(|s| s.0.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"servers\":[");
    for (i, s) in servers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&s.0);
    }
    out.extend_from_slice(b"],\"unavailable\":");
    out.extend_from_slice(&serde_json::to_vec(unavailable).unwrap_or_else(|_| b"[]".to_vec()));
    out.push(b'}');
    Rendered(out.into())
}

/// One server, optionally one project of it: from the cache when it holds every part
/// (kept fresh by events, else valid for `cache.ttl`), otherwise from GNS3, and the
/// answer is cached. The reply is a `ServerTopology` as JSON.
pub async fn read_one(state: &AppState, server: &str, project_id: Option<Uuid>) -> Result<Rendered, ApiError> {
    let addr = state.connector(server)?;
    if let Some((fetched_at, projects)) = cached(state, server, project_id).await {
        let status = addr.send(GetServerStatus).await?;
        let head = serde_json::json!({
            "server": server,
            "gns3_version": status.gns3_version,
            "api_version": status.api_version,
            "fetched_at": fetched_at,
        });
        let head = serde_json::to_vec(&head).unwrap_or_else(|_| b"{}".to_vec());
        let mut out = Vec::with_capacity(head.len() + 16 + projects.iter().map(|p| p.len() + 1).sum::<usize>());
        out.extend_from_slice(&head[..head.len() - 1]);
        out.extend_from_slice(b",\"projects\":[");
        for (i, p) in projects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"]}");
        return Ok(Rendered(out.into()));
    }
    let started = Instant::now();
    let topology = state.ask(server, FetchTopology { project_id }).await?;
    for p in &topology.projects {
        state.cache.do_send(PutProjectTopology::new(server, p.clone()).fetched_since(started));
    }
    if project_id.is_none() {
        let list = ProjectList {
            fetched_at: topology.fetched_at,
            projects: topology.projects.iter().map(|p| p.project.clone()).collect(),
        };
        state.cache.do_send(PutProjects::new(server, list).fetched_since(started));
    }
    let json = serde_json::to_vec(&topology).map_err(|e| {
        ApiError::new(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.to_string())
    })?;
    Ok(Rendered(json.into()))
}

/// The cached parts as JSON, when every one is there: (when read, projects).
async fn cached(state: &AppState, server: &str, project_id: Option<Uuid>) -> Option<(DateTime<Utc>, Vec<Bytes>)> {
    let get = |project_id| GetProjectTopologyJson { server: server.to_owned(), project_id };
    match project_id {
        Some(id) => {
            let t = state.cache.send(get(id)).await.ok()??;
            Some((Utc::now(), vec![t]))
        }
        None => {
            let list = state.cache.send(GetProjects { server: server.to_owned() }).await.ok()??;
            let parts = join_all(list.projects.iter().map(|p| state.cache.send(get(p.project_id)))).await;
            let projects = parts.into_iter().map(|r| r.ok().flatten()).collect::<Option<Vec<_>>>()?;
            Some((list.fetched_at, projects))
        }
    }
}

/// Everything: each server with its projects, nodes and links.
#[utoipa::path(get, path = "/api/v2/topology", tag = "topology",
    responses(
        (status = 200, description = "Topology of every reachable server", body = Topology),
        (status = 503, description = "No server could be read", body = ErrorBody)))]
#[get("/api/v2/topology")]
pub async fn all_topology(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    Ok(read_all(&state).await?.scoped(&principal)?.respond())
}

/// One server's topology.
#[utoipa::path(get, path = "/api/v2/servers/{server}/topology", tag = "topology",
    params(("server" = String, Path, description = "Configured server name", example = "default")),
    responses(
        (status = 200, description = "The server's projects with nodes and links", body = ServerTopology),
        (status = 404, description = "Unknown server", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/topology")]
pub async fn server_topology(
    state: web::Data<AppState>,
    path: web::Path<String>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    Ok(read_one(&state, &path.into_inner(), None).await?.scoped(&principal)?.respond())
}

/// One project's topology.
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}/topology",
    tag = "topology",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3")),
    responses(
        (status = 200, description = "The project with nodes and links", body = ServerTopology),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}/topology")]
pub async fn project_topology(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    Ok(read_one(&state, &server, Some(project_id)).await?.respond())
}

/// Body of a refresh: both fields optional, no other field taken.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"server": "default"}))]
pub struct RefreshRequest {
    /// Configured server name (default: the default server when `project_id` is given,
    /// else every server).
    pub server: Option<String>,
    pub project_id: Option<Uuid>,
}

/// Re-reads the topology from GNS3 now (all servers, one server, or one project).
#[utoipa::path(post, path = "/api/v2/topology/refresh", tag = "topology",
    request_body(content = Option<RefreshRequest>, description = "Optional scope; an empty body refreshes everything"),
    responses(
        (status = 200, description = "The fresh topology", body = Topology),
        (status = 400, description = "Malformed body or bad id", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[post("/api/v2/topology/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: body::MaybeChecked<RefreshRequest>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_unscoped("a refresh")?;
    Ok(refresh_scoped(&state, body.0.as_ref()).await?.respond())
}

/// Shared by the v2 and the original refresh paths: no body means everything.
pub async fn refresh_scoped(state: &AppState, value: Option<&serde_json::Value>) -> Result<Rendered, ApiError> {
    let Some(value) = value else {
        invalidate_all(state);
        return read_all(state).await;
    };
    let server = body::optional_str(value, "server")?;
    let project_id = body::optional_uuid(value, "project_id")?;
    match (server, project_id) {
        (None, None) => {
            invalidate_all(state);
            read_all(state).await
        }
        (server, project_id) => {
            let name = server.unwrap_or(&state.default_server);
            state.connector(name)?;
            // A refresh re-reads the whole server's entries, project list included.
            state.cache.do_send(Invalidate { server: name.to_owned(), project_id: None });
            let t = read_one(state, name, project_id).await?;
            Ok(render_all(vec![t], &[]))
        }
    }
}

fn invalidate_all(state: &AppState) {
    for server in state.servers.keys() {
        state.cache.do_send(Invalidate { server: server.clone(), project_id: None });
    }
}

impl TopologyQuery {
    /// Parses the query into (server, project) with 400s naming the bad field.
    pub fn scope(&self, default_server: &str, principal: &Principal) -> Result<(String, Option<Uuid>), ApiError> {
        let project_id = self.project_id.as_deref().map(|p| parse_uuid("project_id", p)).transpose()?;
        // Without a project, a scoped credential gets its projects only (`Rendered::scoped`).
        if let Some(p) = &project_id {
            principal.check_project(p)?;
        }
        Ok((self.server.clone().unwrap_or_else(|| default_server.to_owned()), project_id))
    }
}

//! Topology reads: every server, one server, or one project, and the refresh call.
//! Reads are served from the cache when it holds them (conditional and cache-aware as
//! `cached.rs` says: weak `ETag`, `If-None-Match`, `Cache-Control: no-cache`, `X-Cache`);
//! a refresh drops the cached entries first, so it always reads GNS3.

use actix_web::{get, post, web, HttpResponse};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use gns3_central_actors::cache::{
    fingerprint_all, CachedJson, GetProjects, GetTopologyPart, Invalidate, PartLookup, ProjectList, PutProjectTopology,
    PutProjects, TopologyPart,
};
use gns3_central_actors::connector::{FetchTopology, GetServerStatus};
use gns3_central_actors::gns3::{ApiVersion, ServerTopology};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body;
use super::cached::{internal, CachedReply, ReadOptions, Source};
use crate::auth::Principal;
use crate::error::{parse_uuid, ApiError, ErrorBody, ErrorDetail};
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

/// One server's topology as read: the server's head and each project's JSON with its
/// fingerprint. Scoping drops parts instead of parsing the body again, and the (weak) ETag
/// is made of the head without `fetched_at` and the parts' fingerprints.
pub struct ServerRead {
    server: String,
    gns3_version: Option<String>,
    api_version: Option<ApiVersion>,
    fetched_at: DateTime<Utc>,
    projects: Vec<(Uuid, CachedJson)>,
    pub source: Source,
}

impl ServerRead {
    fn head(&self, with_time: bool) -> Vec<u8> {
        let mut head = serde_json::json!({
            "server": self.server,
            "gns3_version": self.gns3_version,
            "api_version": self.api_version,
        });
        if with_time {
            head["fetched_at"] = serde_json::json!(self.fetched_at);
        }
        serde_json::to_vec(&head).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Keeps the projects `keep` accepts.
    pub fn retain(mut self, keep: impl Fn(&Uuid) -> bool) -> Self {
        self.projects.retain(|(id, _)| keep(id));
        self
    }

    /// Only the projects the credential may see.
    pub fn scoped(self, principal: &Principal) -> Self {
        if principal.is_scoped() {
            self.retain(|id| principal.allows_project(id))
        } else {
            self
        }
    }

    /// The `ServerTopology` JSON (the cached parts concatenated as the cache holds them).
    pub fn body(&self) -> Bytes {
        let head = self.head(true);
        let mut out =
            Vec::with_capacity(head.len() + 16 + self.projects.iter().map(|(_, p)| p.json.len() + 1).sum::<usize>());
        // The head is a non-empty object: its closing brace gives way to the projects.
        out.extend_from_slice(&head[..head.len() - 1]);
        out.extend_from_slice(if head.len() > 2 { &b",\"projects\":["[..] } else { &b"\"projects\":["[..] });
        for (i, (_, p)) in self.projects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&p.json);
        }
        out.extend_from_slice(b"]}");
        out.into()
    }

    fn tag(&self) -> String {
        let head = self.head(false);
        fingerprint_all(std::iter::once(&head[..]).chain(self.projects.iter().map(|(_, p)| p.tag.as_bytes())))
    }

    pub fn reply(&self) -> CachedReply {
        CachedReply { json: self.body(), tag: self.tag(), weak: true, source: self.source }
    }
}

/// Every server's topology as read, and the servers that could not be read.
pub struct AllRead {
    servers: Vec<ServerRead>,
    unavailable: Vec<UnavailableServer>,
}

impl AllRead {
    pub fn scoped(mut self, principal: &Principal) -> Self {
        self.servers = self.servers.into_iter().map(|s| s.scoped(principal)).collect();
        self
    }

    /// `{"servers":[...],"unavailable":[...]}`.
    pub fn body(&self) -> Bytes {
        let servers: Vec<Bytes> = self.servers.iter().map(ServerRead::body).collect();
        let mut out = Vec::with_capacity(64 + servers.iter().map(|s| s.len() + 1).sum::<usize>());
        out.extend_from_slice(b"{\"servers\":[");
        for (i, s) in servers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(s);
        }
        out.extend_from_slice(b"],\"unavailable\":");
        out.extend_from_slice(&self.unavailable_json());
        out.push(b'}');
        out.into()
    }

    fn unavailable_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.unavailable).unwrap_or_else(|_| b"[]".to_vec())
    }

    pub fn reply(&self) -> CachedReply {
        let tags: Vec<String> = self.servers.iter().map(ServerRead::tag).collect();
        let unavailable = self.unavailable_json();
        let tag = fingerprint_all(tags.iter().map(|t| t.as_bytes()).chain(std::iter::once(&unavailable[..])));
        let hit = self.unavailable.is_empty() && self.servers.iter().all(|s| s.source == Source::Hit);
        CachedReply { json: self.body(), tag, weak: true, source: if hit { Source::Hit } else { Source::Miss } }
    }

    /// A plain 200 with the body (the refresh answers: not a cacheable GET).
    pub fn respond(&self) -> HttpResponse {
        HttpResponse::Ok().content_type("application/json").body(self.body())
    }
}

/// Reads every server's topology concurrently. Fails only when no server could be read
/// (then with the first server's error, e.g. 503 when GNS3 is down).
pub async fn read_all(state: &AppState, opts: &ReadOptions) -> Result<AllRead, ApiError> {
    let results = join_all(
        state.servers.keys().map(|name| async move { (name.clone(), read_one(state, name, None, opts).await) }),
    )
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
        _ => Ok(AllRead { servers, unavailable }),
    }
}

/// One server, optionally one project of it: from the cache when it holds every part
/// (kept fresh by events, else valid for `cache.ttl`) and the request does not say
/// `no-cache`, otherwise from GNS3, and the answer is cached.
pub async fn read_one(
    state: &AppState,
    server: &str,
    project_id: Option<Uuid>,
    opts: &ReadOptions,
) -> Result<ServerRead, ApiError> {
    let addr = state.connector(server)?;
    let hit = if opts.no_cache { None } else { cached(state, server, project_id).await };
    if let Some((fetched_at, projects)) = hit {
        let status = addr.send(GetServerStatus).await?;
        return Ok(ServerRead {
            server: server.to_owned(),
            gns3_version: status.gns3_version,
            api_version: status.api_version,
            fetched_at,
            projects,
            source: Source::Hit,
        });
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
    let mut projects = Vec::with_capacity(topology.projects.len());
    for p in &topology.projects {
        let json = TopologyPart::Whole.render(p).ok_or_else(|| internal("a topology could not be written as JSON"))?;
        projects.push((p.project.project_id, CachedJson::new(json)));
    }
    Ok(ServerRead {
        server: topology.server,
        gns3_version: topology.gns3_version,
        api_version: topology.api_version,
        fetched_at: topology.fetched_at,
        projects,
        source: Source::Miss,
    })
}

/// The cached parts, when every one is there: (when read, projects).
async fn cached(
    state: &AppState,
    server: &str,
    project_id: Option<Uuid>,
) -> Option<(DateTime<Utc>, Vec<(Uuid, CachedJson)>)> {
    let get = |project_id| GetTopologyPart { server: server.to_owned(), project_id, part: TopologyPart::Whole };
    match project_id {
        Some(id) => {
            let t = state.cache.send(get(id)).await.ok()?.hit()?;
            Some((Utc::now(), vec![(id, t)]))
        }
        None => {
            let list = state.cache.send(GetProjects { server: server.to_owned() }).await.ok()??;
            let ids: Vec<Uuid> = list.projects.iter().map(|p| p.project_id).collect();
            let parts = join_all(ids.iter().map(|id| state.cache.send(get(*id)))).await;
            let projects = parts.into_iter().map(|r| r.ok().and_then(PartLookup::hit)).collect::<Option<Vec<_>>>()?;
            Some((list.fetched_at, ids.into_iter().zip(projects).collect()))
        }
    }
}

/// The topology route of the original API's paths (`?server=&project_id=`).
pub async fn query_reply(
    state: &AppState,
    query: &TopologyQuery,
    principal: &Principal,
    opts: &ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = query.scope(&state.default_server, principal)?;
    Ok(read_one(state, &server, project, opts).await?.scoped(principal).reply().respond(opts))
}

/// Everything: each server with its projects, nodes and links.
#[utoipa::path(get, path = "/api/v2/topology", tag = "topology",
    params(("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "Topology of every reachable server", body = Topology,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 503, description = "No server could be read", body = ErrorBody)))]
#[get("/api/v2/topology")]
pub async fn all_topology(
    state: web::Data<AppState>,
    principal: Principal,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    Ok(read_all(&state, &opts).await?.scoped(&principal).reply().respond(&opts))
}

/// One server's topology.
#[utoipa::path(get, path = "/api/v2/servers/{server}/topology", tag = "topology",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The server's projects with nodes and links", body = ServerTopology,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 404, description = "Unknown server", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/topology")]
pub async fn server_topology(
    state: web::Data<AppState>,
    path: web::Path<String>,
    principal: Principal,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    Ok(read_one(&state, &path.into_inner(), None, &opts).await?.scoped(&principal).reply().respond(&opts))
}

/// One project's topology.
#[utoipa::path(get, path = "/api/v2/servers/{server}/projects/{project_id}/topology",
    tag = "topology",
    params(("server" = String, Path, description = "Configured server name", example = "default"),
           ("project_id" = uuid::Uuid, Path, description = "Project UUID", example = "5b462b32-2cd8-4f87-a12d-b3af88e9b1e3"),
           ("If-None-Match" = Option<String>, Header, description = "ETags held; a match answers 304"),
           ("Cache-Control" = Option<String>, Header, description = "`no-cache` reads GNS3, not the cache")),
    responses(
        (status = 200, description = "The project with nodes and links", body = ServerTopology,
            headers(("ETag" = String, description = "Fingerprint of the body (weak on topology answers)"),
                    ("X-Cache" = String, description = "`hit`: from the cache; `miss`: read from GNS3"))),
        (status = 304, description = "Not modified: If-None-Match named the ETag; no body",
            headers(("ETag" = String), ("X-Cache" = String))),
        (status = 400, description = "project_id is not a UUID", body = ErrorBody),
        (status = 404, description = "Unknown server or project", body = ErrorBody),
        (status = 503, description = "GNS3 unreachable or circuit open", body = ErrorBody)))]
#[get("/api/v2/servers/{server}/projects/{project_id}/topology")]
pub async fn project_topology(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    opts: ReadOptions,
) -> Result<HttpResponse, ApiError> {
    let (server, project) = path.into_inner();
    let project_id = parse_uuid("project_id", &project)?;
    Ok(read_one(&state, &server, Some(project_id), &opts).await?.reply().respond(&opts))
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
pub async fn refresh_scoped(state: &AppState, value: Option<&serde_json::Value>) -> Result<AllRead, ApiError> {
    let fresh = ReadOptions::fresh();
    let Some(value) = value else {
        invalidate_all(state);
        return read_all(state, &fresh).await;
    };
    let server = body::optional_str(value, "server")?;
    let project_id = body::optional_uuid(value, "project_id")?;
    match (server, project_id) {
        (None, None) => {
            invalidate_all(state);
            read_all(state, &fresh).await
        }
        (server, project_id) => {
            let name = server.unwrap_or(&state.default_server);
            state.connector(name)?;
            // A refresh re-reads the whole server's entries, project list included.
            state.cache.do_send(Invalidate { server: name.to_owned(), project_id: None });
            let t = read_one(state, name, project_id, &fresh).await?;
            Ok(AllRead { servers: vec![t], unavailable: Vec::new() })
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
        // Without a project, a scoped credential gets its projects only (`ServerRead::scoped`).
        if let Some(p) = &project_id {
            principal.check_project(p)?;
        }
        Ok((self.server.clone().unwrap_or_else(|| default_server.to_owned()), project_id))
    }
}

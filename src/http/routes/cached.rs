//! Cache-aware, conditional reads: what every cacheable GET shares (the v2 routes and
//! the original API's paths alike), so a handler is "parse the path, read, reply".
//!
//! A read is served from the cache while it holds the answer (kept fresh by events, else
//! valid for `cache.ttl`); the per-resource reads (one project, its nodes, its links, one
//! node) are slices of the project's cached topology, and a miss reads the whole project
//! from GNS3 and caches it, so the next read of any slice is a hit. The request can
//! force a read from GNS3 with `Cache-Control: no-cache` (or `max-age=0`, or
//! `Pragma: no-cache`); that read refreshes the cache.
//!
//! Every answer carries an `ETag` (a fingerprint of the body, `gns3_central_actors::
//! cache::fingerprint`) and `X-Cache: hit|miss`; an `If-None-Match` that matches gives
//! 304 with no body. The ETag of a topology answer is weak (`W/"…"`): it covers
//! everything but `fetched_at`, so an unchanged topology keeps its tag.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use bytes::Bytes;
use gns3_central_actors::cache::{
    fingerprint, GetProjects, GetTopologyPart, PartLookup, ProjectList, PutProjectTopology, PutProjects, TopologyPart,
};
use gns3_central_actors::connector::{FetchTopology, GetNode, GetProject, ListLinks, ListNodes, ListProjects};
use gns3_central_actors::gns3::{Project, ProjectTopology};
use serde::Serialize;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::time::Instant;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// The response header saying where an answer came from.
pub const X_CACHE: &str = "x-cache";

/// What a request asks of the cache (an extractor that never fails).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Read GNS3 even when the cache holds the answer.
    pub no_cache: bool,
    /// The raw `If-None-Match`, when sent.
    if_none_match: Option<String>,
}

impl ReadOptions {
    /// Straight from GNS3, unconditional (a refresh).
    pub fn fresh() -> Self {
        Self { no_cache: true, if_none_match: None }
    }

    pub fn from_headers(headers: &HeaderMap) -> Self {
        let directives = |name| {
            headers
                .get_all(name)
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|d| d.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let no_cache = directives(header::CACHE_CONTROL).iter().any(|d| d == "no-cache" || d == "max-age=0")
            || directives(header::PRAGMA).iter().any(|d| d == "no-cache");
        let if_none_match =
            headers.get_all(header::IF_NONE_MATCH).filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
        Self { no_cache, if_none_match: Some(if_none_match).filter(|s| !s.trim().is_empty()) }
    }

    /// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 §13.1.2 wants for
    /// it) or is `*`.
    fn matches(&self, tag: &str) -> bool {
        let Some(list) = &self.if_none_match else { return false };
        list.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == tag)
    }
}

impl FromRequest for ReadOptions {
    type Error = Infallible;
    type Future = Ready<Result<Self, Infallible>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::from_headers(req.headers())))
    }
}

/// Where an answer came from (`X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hit,
    Miss,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Hit => "hit",
            Source::Miss => "miss",
        }
    }

    /// A hit only when every part was one.
    pub fn and(self, other: Source) -> Source {
        if self == Source::Hit && other == Source::Hit {
            Source::Hit
        } else {
            Source::Miss
        }
    }
}

/// An answer ready to send: the JSON, its entity tag, where it came from.
#[derive(Debug, Clone)]
pub struct CachedReply {
    pub json: Bytes,
    /// The opaque tag (32 hex digits), without quotes.
    pub tag: String,
    /// A weak tag (`W/"…"`): the body may differ in bytes that do not matter (`fetched_at`).
    pub weak: bool,
    pub source: Source,
}

impl CachedReply {
    /// A strong tag over exactly `json`.
    pub fn new(json: Bytes, source: Source) -> Self {
        let tag = fingerprint(&json);
        Self { json, tag, weak: false, source }
    }

    /// `value` as JSON, with a strong tag.
    pub fn of(value: &impl Serialize, source: Source) -> Result<Self, ApiError> {
        Ok(Self::new(serde_json::to_vec(value).map_err(internal)?.into(), source))
    }

    fn etag(&self) -> String {
        if self.weak {
            format!("W/\"{}\"", self.tag)
        } else {
            format!("\"{}\"", self.tag)
        }
    }

    /// 200 with the body, or 304 without one when `If-None-Match` names the tag; both with
    /// `ETag`, `X-Cache` and `Cache-Control: private, no-cache` (a client may keep the
    /// answer but must revalidate it, which a 304 makes cheap).
    pub fn respond(self, opts: &ReadOptions) -> HttpResponse {
        let status = if opts.matches(&self.tag) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
        let mut res = HttpResponse::build(status);
        res.insert_header((header::ETAG, self.etag()))
            .insert_header((X_CACHE, HeaderValue::from_static(self.source.as_str())))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache")));
        if status == StatusCode::NOT_MODIFIED {
            return res.finish();
        }
        res.content_type("application/json").body(self.json)
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e.to_string())
}

/// One project read from GNS3 with its nodes and links, and cached (`fetched_since` keeps
/// a read that an event overtook out of the cache).
pub async fn fetch_project(state: &AppState, server: &str, project_id: Uuid) -> Result<ProjectTopology, ApiError> {
    let started = Instant::now();
    let topology = state.ask(server, FetchTopology { project_id: Some(project_id) }).await?;
    let project = topology
        .projects
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(Code::NotFound, format!("Project ID {project_id} doesn't exist")))?;
    state.cache.do_send(PutProjectTopology::new(server, project.clone()).fetched_since(started));
    Ok(project)
}

/// One part of a project's topology: from the cache, else from GNS3 (the whole project,
/// then cached; with caching off, only the part).
pub async fn project_part(
    state: &AppState,
    server: &str,
    project_id: Uuid,
    part: TopologyPart,
    opts: &ReadOptions,
) -> Result<CachedReply, ApiError> {
    state.connector(server)?;
    let lookup = if opts.no_cache {
        PartLookup::Miss
    } else {
        let msg = GetTopologyPart { server: server.to_owned(), project_id, part };
        state.cache.send(msg).await.unwrap_or(PartLookup::Miss)
    };
    match lookup {
        PartLookup::Hit(c) => Ok(CachedReply { json: c.json, tag: c.tag, weak: false, source: Source::Hit }),
        PartLookup::Off => part_from_gns3(state, server, project_id, part).await,
        PartLookup::Miss => {
            let topology = fetch_project(state, server, project_id).await?;
            match part.render(&topology) {
                Some(json) => Ok(CachedReply::new(json, Source::Miss)),
                // A node the fresh topology does not hold: GNS3's own answer (its 404, or
                // a node created since).
                None => part_from_gns3(state, server, project_id, part).await,
            }
        }
    }
}

/// The part straight from GNS3, one call, not cached.
async fn part_from_gns3(
    state: &AppState,
    server: &str,
    project_id: Uuid,
    part: TopologyPart,
) -> Result<CachedReply, ApiError> {
    match part {
        TopologyPart::Nodes => CachedReply::of(&state.ask(server, ListNodes { project_id }).await?, Source::Miss),
        TopologyPart::Links => CachedReply::of(&state.ask(server, ListLinks { project_id }).await?, Source::Miss),
        TopologyPart::Node(node_id) => {
            CachedReply::of(&state.ask(server, GetNode { project_id, node_id }).await?, Source::Miss)
        }
        TopologyPart::Project => CachedReply::of(&state.ask(server, GetProject { project_id }).await?, Source::Miss),
        TopologyPart::Whole => {
            let topology = state.ask(server, FetchTopology { project_id: Some(project_id) }).await?;
            let project = topology.projects.into_iter().next();
            let json = project.and_then(|p| part.render(&p)).ok_or_else(|| internal("GNS3 returned no project"))?;
            Ok(CachedReply::new(json, Source::Miss))
        }
    }
}

/// A server's projects as the principal may see them: from the cached list, else from
/// GNS3 (and cached).
pub async fn project_list(
    state: &AppState,
    server: &str,
    opts: &ReadOptions,
    principal: &Principal,
) -> Result<CachedReply, ApiError> {
    state.connector(server)?;
    let cached = if opts.no_cache {
        None
    } else {
        state.cache.send(GetProjects { server: server.to_owned() }).await.ok().flatten()
    };
    let (mut projects, source): (Vec<Project>, _) = match cached {
        Some(list) => (list.projects, Source::Hit),
        None => {
            let started = Instant::now();
            let projects = state.ask(server, ListProjects).await?;
            let list = ProjectList { fetched_at: chrono::Utc::now(), projects: projects.clone() };
            state.cache.do_send(PutProjects::new(server, list).fetched_since(started));
            (projects, Source::Miss)
        }
    };
    projects.retain(|p| principal.allows_project(&p.project_id));
    CachedReply::of(&projects, source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn opts(headers: &[(&str, &str)]) -> ReadOptions {
        let mut req = TestRequest::default();
        for h in headers {
            req = req.append_header(*h);
        }
        ReadOptions::from_headers(req.to_http_request().headers())
    }

    #[test]
    fn no_cache_is_read_from_cache_control_and_pragma() {
        assert!(!opts(&[]).no_cache);
        assert!(opts(&[("Cache-Control", "no-cache")]).no_cache);
        assert!(opts(&[("Cache-Control", "private, No-Cache")]).no_cache);
        assert!(opts(&[("Cache-Control", "max-age=0")]).no_cache);
        assert!(opts(&[("Pragma", "no-cache")]).no_cache);
        assert!(!opts(&[("Cache-Control", "max-age=60")]).no_cache);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "0123456789abcdef0123456789abcdef";
        assert!(!opts(&[]).matches(tag));
        assert!(opts(&[("If-None-Match", &format!("\"{tag}\""))]).matches(tag));
        assert!(opts(&[("If-None-Match", &format!("W/\"{tag}\""))]).matches(tag));
        assert!(opts(&[("If-None-Match", &format!("\"other\", W/\"{tag}\""))]).matches(tag));
        assert!(opts(&[("If-None-Match", "\"a\""), ("If-None-Match", &format!("\"{tag}\""))]).matches(tag));
        assert!(opts(&[("If-None-Match", "*")]).matches(tag));
        assert!(!opts(&[("If-None-Match", "\"0123\"")]).matches(tag));
    }

    #[test]
    fn a_matching_tag_answers_304_without_a_body() {
        let reply = CachedReply::new(Bytes::from_static(b"[1]"), Source::Hit);
        let tag = reply.tag.clone();
        let res = reply.clone().respond(&opts(&[("If-None-Match", &format!("\"{tag}\""))]));
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers().get(header::ETAG).unwrap(), &format!("\"{tag}\""));
        assert_eq!(res.headers().get(X_CACHE).unwrap(), "hit");
        let res = reply.respond(&opts(&[]));
        assert_eq!(res.status(), StatusCode::OK);
        let weak = CachedReply { weak: true, ..CachedReply::new(Bytes::from_static(b"{}"), Source::Miss) };
        let res = weak.respond(&opts(&[]));
        assert!(res.headers().get(header::ETAG).unwrap().to_str().unwrap().starts_with("W/\""));
        assert_eq!(res.headers().get(X_CACHE).unwrap(), "miss");
    }
}

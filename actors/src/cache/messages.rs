//! What the `CacheActor` answers. Reads never fail: a miss (or an unusable Redis) is
//! `None`, and the caller goes to GNS3 and `Put`s what it read. Writes are fire-and-forget
//! (`do_send` is fine) but are applied in the order they arrive, before any later read.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;
use uuid::Uuid;

use super::stats::CacheStats;
use crate::events::Event;
use crate::gns3::{Project, ProjectTopology};

/// A server's project list as cached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectList {
    /// When the list was read from GNS3.
    pub fetched_at: DateTime<Utc>,
    pub projects: Vec<Project>,
}

/// One project's topology; counted as a hit or a miss.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<ProjectTopology>")]
pub struct GetProjectTopology {
    pub server: String,
    pub project_id: Uuid,
}

/// One project's topology as JSON bytes (the hot path of topology reads: no clone, no
/// serialization); counted as a hit or a miss like `GetProjectTopology`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<bytes::Bytes>")]
pub struct GetProjectTopologyJson {
    pub server: String,
    pub project_id: Uuid,
}

/// One part of a project's cached topology (the project, its nodes, its links, one node)
/// as JSON with its fingerprint; counted as a hit or a miss like `GetProjectTopology`. A
/// node the cached topology does not hold is a miss.
#[derive(Debug, Clone, Message)]
#[rtype(result = "super::parts::PartLookup")]
pub struct GetTopologyPart {
    pub server: String,
    pub project_id: Uuid,
    pub part: super::parts::TopologyPart,
}

/// Caches a topology just read from GNS3 for `cache.ttl`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PutProjectTopology {
    pub server: String,
    pub topology: ProjectTopology,
    /// When the caller started reading GNS3 (`Instant::now()` before the request). If an
    /// event for this project was applied since, the value may miss it and is not stored.
    pub fetch_started: Option<Instant>,
}

impl PutProjectTopology {
    pub fn new(server: impl Into<String>, topology: ProjectTopology) -> Self {
        Self { server: server.into(), topology, fetch_started: None }
    }

    pub fn fetched_since(mut self, started: Instant) -> Self {
        self.fetch_started = Some(started);
        self
    }
}

/// The server's project list; counted as a hit or a miss.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<ProjectList>")]
pub struct GetProjects {
    pub server: String,
}

/// Caches a server's project list for `cache.ttl`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct PutProjects {
    pub server: String,
    pub list: ProjectList,
    /// As in `PutProjectTopology`.
    pub fetch_started: Option<Instant>,
}

impl PutProjects {
    pub fn new(server: impl Into<String>, list: ProjectList) -> Self {
        Self { server: server.into(), list, fetch_started: None }
    }

    pub fn fetched_since(mut self, started: Instant) -> Self {
        self.fetch_started = Some(started);
        self
    }
}

/// Drops one project's topology, or (`project_id: None`) everything cached for the
/// server, project list included (`refresh_topology`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Invalidate {
    pub server: String,
    pub project_id: Option<Uuid>,
}

/// This instance's connector for `server` has connected to GNS3 (sent at every connect).
/// The first one after start drops what Redis holds of the server, written before the
/// restart, and from then on its entries are served (see `CacheActor::holding`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ServerConnected {
    pub server: String,
}

/// Updates the cached entries an event concerns, in place (see `apply.rs`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ApplyEvent(pub Arc<Event>);

#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "CacheStats")]
pub struct GetCacheStats;

/// Runtime configuration: a new `cache.ttl` (seconds; 0 = no caching) for the entries
/// written from now on; entries already cached keep their expiry.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct SetTtl(pub f64);

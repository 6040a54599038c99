//! `CacheActor`: the one cache of the service. The HTTP edge, the connectors and the
//! module proxies read topologies and project lists through it; whoever reads GNS3 on a
//! miss `Put`s the result; the dispatcher forwards every event as `ApplyEvent` so cached
//! entries are updated in place and a read right after an event is already fresh.
//!
//! Backend: memory (default) or Redis (deadpool-redis) when configured. If Redis fails,
//! reads and writes fall back to memory at once (a read never fails because of Redis),
//! the outage is logged once and counted, and Redis is checked again with a capped
//! backoff. When it answers, the keys written meanwhile are deleted in Redis (their copy
//! there may be stale, see `health.rs`), memory is cleared and Redis is used again.
//!
//! Ordering: writes (`Put*`, `Invalidate`, `ApplyEvent`) are `AtomicResponse`s, so they
//! run one at a time in arrival order and a read sent after a write sees it. Reads run
//! concurrently. Every Redis call is bounded by `cache.redis_timeout_ms`, so a hung Redis
//! costs the operation that finds it one timeout, after which the cache stops using it.
//!
//! Several instances on one Redis: only the instance that ingests a server (the lease
//! holder) should send that server's `ApplyEvent`s. Applying an event is idempotent but
//! not commutative, so the same events re-applied late by another instance could undo a
//! newer change. The stale-`Put` guard (`fetch_started`) is per instance; the TTL bounds
//! what it cannot see.
//!
//! After a restart: what Redis holds of a server was written before it, and nobody may
//! have followed that server's events meanwhile (a lone instance, stopped for a while), so
//! it may be stale. With Redis, each configured server is *held* from start (`holding`):
//! its reads are misses (they go to GNS3) until this instance's connector for it has
//! connected (`ServerConnected`, sent by the connector itself, not the event that travels
//! through the dispatcher and, with several instances, through Redis). That first connect
//! drops the server's entries (memory and Redis) before the next read is served; entries
//! written after it, by any instance, are shared as before.
//!
//! The actor never fails, so it needs no supervisor. Its logic lives in plain parts
//! (`memory.rs` TTL map, `apply.rs` events, `health.rs` outage state, `redis_store.rs`);
//! `ops.rs` holds the operations and `recovery.rs` the outage handling.

pub mod apply;
pub mod config;
pub mod error;
pub mod health;
pub mod keys;
pub mod memory;
pub mod messages;
mod ops;
pub mod parts;
mod recovery;
mod redis_store;
pub mod stats;

pub use config::{CacheConfig, RedisConfig, RedisTarget, SentinelTarget};
pub use error::CacheError;
pub use memory::{Clock, ManualClock, SystemClock};
pub use messages::*;
pub use parts::{fingerprint, fingerprint_all, CachedJson, PartLookup, TopologyPart};
pub use stats::{Backend, CacheStats, RedisState};

use actix::prelude::*;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::health::RedisHealth;
use self::keys::Keys;
use self::memory::MemoryStore;
use self::redis_store::RedisStore;
use self::stats::Counters;
use crate::gns3::ProjectTopology;

/// How often Redis is pinged while it is up, so an outage is noticed without traffic.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// How long "an event changed this key" is remembered for the stale-put check, and how
/// many such keys at most.
const RECENT_HORIZON: Duration = Duration::from_secs(300);
const RECENT_MAX: usize = 10_000;

/// A value of the memory backend. A topology keeps its JSON (whole and sliced, with their
/// fingerprints) beside it, rendered at the first read after a change, so the hot read
/// paths (`GetProjectTopologyJson`, `GetTopologyPart`) hand out shared bytes instead of
/// cloning and serializing ~100 KB per request, and a burst of events on a large project
/// (500 nodes started at once) costs one rendering, not one per event.
#[derive(Debug, Clone)]
enum Cached {
    Topology(ProjectTopology, Box<parts::Renders>),
    Projects(ProjectList),
}

/// The two kinds of cached values, for code shared by both.
trait Entry: Serialize + DeserializeOwned + Clone + 'static {
    fn from_cached(c: &Cached) -> Option<&Self>;
    fn into_cached(self) -> Cached;
}

impl Entry for ProjectTopology {
    fn from_cached(c: &Cached) -> Option<&Self> {
        match c {
            Cached::Topology(t, _) => Some(t),
            Cached::Projects(_) => None,
        }
    }
    fn into_cached(self) -> Cached {
        Cached::Topology(self, Box::default())
    }
}

impl Entry for ProjectList {
    fn from_cached(c: &Cached) -> Option<&Self> {
        match c {
            Cached::Projects(l) => Some(l),
            Cached::Topology(..) => None,
        }
    }
    fn into_cached(self) -> Cached {
        Cached::Projects(self)
    }
}

/// One entry an event concerns.
#[derive(Debug, Clone)]
enum Target {
    Topology(String),
    List(String),
    /// Delete it (`project.deleted`).
    Drop(String),
}

impl Target {
    fn key(&self) -> &str {
        match self {
            Target::Topology(k) | Target::List(k) | Target::Drop(k) => k,
        }
    }
}

pub struct CacheActor {
    cfg: CacheConfig,
    ttl: Option<Duration>,
    keys: Keys,
    memory: MemoryStore<Cached>,
    redis: Option<RedisStore>,
    health: RedisHealth,
    counters: Counters,
    /// When an event last touched each key (real time, compared with `fetch_started`).
    recent: HashMap<String, Instant>,
    /// A Redis check is scheduled or running.
    probing: bool,
    /// Servers whose connector has not connected since start: their reads are misses.
    held: HashSet<String>,
}

impl CacheActor {
    /// `redis: None` runs on memory only. Fails only on settings that cannot work.
    pub fn new(cfg: CacheConfig, redis: Option<RedisConfig>) -> Result<Self, CacheError> {
        Self::with_clock(cfg, redis, Arc::new(SystemClock))
    }

    /// As `new`, with the clock the memory backend's TTL follows (tests).
    pub fn with_clock(cfg: CacheConfig, redis: Option<RedisConfig>, clock: Arc<dyn Clock>) -> Result<Self, CacheError> {
        cfg.validate("cache").map_err(CacheError::Config)?;
        let redis = match redis {
            Some(r) => {
                r.validate("redis").map_err(CacheError::Config)?;
                Some(RedisStore::new(&r, &cfg)?)
            }
            None => None,
        };
        Ok(Self {
            ttl: cfg.ttl(),
            keys: Keys::new(&cfg.prefix),
            memory: MemoryStore::new(cfg.max_memory_entries, clock),
            health: RedisHealth::new(
                Duration::from_millis(cfg.redis_retry_initial_ms),
                Duration::from_millis(cfg.redis_retry_max_ms),
                cfg.max_memory_entries,
            ),
            redis,
            counters: Counters::default(),
            recent: HashMap::new(),
            probing: false,
            held: HashSet::new(),
            cfg,
        })
    }

    /// With Redis: `servers`' entries are not served until their connector's first
    /// `ServerConnected`, which drops them (they were written before this start and may
    /// be stale). Without Redis there is nothing from before the start; nothing is held.
    pub fn holding(mut self, servers: impl IntoIterator<Item = String>) -> Self {
        if self.redis.is_some() {
            self.held.extend(servers);
        }
        self
    }

    /// A read of a held server: a miss, without looking at Redis or memory.
    fn held_miss(&mut self, server: &str) -> bool {
        let held = self.held.contains(server);
        if held {
            self.counters.misses += 1;
        }
        held
    }

    fn stats(&mut self) -> CacheStats {
        self.memory.purge_expired();
        let redis = match (&self.redis, self.health.is_up()) {
            (None, _) => RedisState::Disabled,
            (Some(_), true) => RedisState::Up,
            (Some(_), false) => RedisState::Down,
        };
        CacheStats {
            backend: if redis == RedisState::Up { Backend::Redis } else { Backend::Memory },
            redis,
            redis_address: self.redis.as_ref().map(|r| r.address().to_owned()),
            redis_down_since: self.health.down_since(),
            ttl_secs: self.ttl.map(|d| d.as_secs_f64()).unwrap_or(0.0),
            hits: self.counters.hits,
            misses: self.counters.misses,
            redis_hits: self.counters.redis_hits,
            redis_misses: self.counters.redis_misses,
            entries: self.memory.len(),
            max_entries: self.memory.max_entries(),
            evictions: self.memory.evictions(),
            fallbacks: self.health.fallbacks,
            fallback_ops: self.health.fallback_ops,
            recoveries: self.health.recoveries,
            redis_errors: self.health.errors,
            events_applied: self.counters.events_applied,
            events_invalidated: self.counters.events_invalidated,
            stale_puts: self.counters.stale_puts,
        }
    }
}

/// Messages the cache's mailbox holds (mostly `Deliver`s during a burst of events).
const MAILBOX_CAPACITY: usize = 4096;

impl Actor for CacheActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // It follows every event (`Deliver`): a burst must fit in its mailbox, or the
        // dispatcher's retries give up and a cached topology misses a change until its TTL.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if let Some(store) = &self.redis {
            tracing::info!(redis = %store.address(), prefix = %self.cfg.prefix, ttl_secs = self.cfg.ttl,
                "Cache uses Redis.");
            self.check_health(ctx);
            ctx.run_interval(HEALTH_INTERVAL, |act, ctx| act.check_health(ctx));
        } else {
            tracing::info!(ttl_secs = self.cfg.ttl, max_entries = self.cfg.max_memory_entries, "Cache uses memory.");
        }
    }
}

impl Handler<GetProjectTopology> for CacheActor {
    type Result = ResponseActFuture<Self, Option<ProjectTopology>>;
    fn handle(&mut self, msg: GetProjectTopology, _: &mut Context<Self>) -> Self::Result {
        if self.held_miss(&msg.server) {
            return Box::pin(fut::ready(None));
        }
        let key = self.keys.topology(&msg.server, msg.project_id);
        self.read(key)
    }
}

impl Handler<GetProjectTopologyJson> for CacheActor {
    type Result = ResponseActFuture<Self, Option<Bytes>>;
    fn handle(&mut self, msg: GetProjectTopologyJson, _: &mut Context<Self>) -> Self::Result {
        if self.held_miss(&msg.server) {
            return Box::pin(fut::ready(None));
        }
        let key = self.keys.topology(&msg.server, msg.project_id);
        Box::pin(self.read_part(key, TopologyPart::Whole).map(|part, _, _| part.map(|p| p.json)))
    }
}

impl Handler<GetTopologyPart> for CacheActor {
    type Result = ResponseActFuture<Self, PartLookup>;
    fn handle(&mut self, msg: GetTopologyPart, _: &mut Context<Self>) -> Self::Result {
        if self.ttl.is_none() {
            self.counters.misses += 1;
            return Box::pin(fut::ready(PartLookup::Off));
        }
        if self.held_miss(&msg.server) {
            return Box::pin(fut::ready(PartLookup::Miss));
        }
        let key = self.keys.topology(&msg.server, msg.project_id);
        Box::pin(self.read_part(key, msg.part).map(|part, _, _| part.map_or(PartLookup::Miss, PartLookup::Hit)))
    }
}

impl Handler<PutProjectTopology> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: PutProjectTopology, _: &mut Context<Self>) -> Self::Result {
        let key = self.keys.topology(&msg.server, msg.topology.project.project_id);
        self.write(key, msg.topology, msg.fetch_started)
    }
}

impl Handler<GetProjects> for CacheActor {
    type Result = ResponseActFuture<Self, Option<ProjectList>>;
    fn handle(&mut self, msg: GetProjects, _: &mut Context<Self>) -> Self::Result {
        if self.held_miss(&msg.server) {
            return Box::pin(fut::ready(None));
        }
        let key = self.keys.projects(&msg.server);
        self.read(key)
    }
}

impl Handler<PutProjects> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: PutProjects, _: &mut Context<Self>) -> Self::Result {
        let key = self.keys.projects(&msg.server);
        self.write(key, msg.list, msg.fetch_started)
    }
}

impl Handler<Invalidate> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: Invalidate, _: &mut Context<Self>) -> Self::Result {
        self.invalidate(&msg.server, msg.project_id)
    }
}

impl Handler<ServerConnected> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: ServerConnected, _: &mut Context<Self>) -> Self::Result {
        if !self.held.remove(&msg.server) {
            return ops::done();
        }
        // Atomic: no read is served before the entries from before the start are gone.
        tracing::info!(server = %msg.server, "Connected since start: dropping the server's cache entries from before it.");
        self.invalidate(&msg.server, None)
    }
}

impl Handler<ApplyEvent> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: ApplyEvent, _: &mut Context<Self>) -> Self::Result {
        self.apply_event(msg.0)
    }
}

/// The cache subscribes to the dispatcher like any consumer: every event is applied.
impl Handler<crate::dispatcher::Deliver> for CacheActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: crate::dispatcher::Deliver, _: &mut Context<Self>) -> Self::Result {
        self.apply_event(msg.event)
    }
}

impl Handler<SetTtl> for CacheActor {
    type Result = ();
    fn handle(&mut self, msg: SetTtl, _: &mut Context<Self>) {
        self.cfg.ttl = msg.0;
        self.ttl = self.cfg.ttl();
        tracing::info!(ttl_secs = msg.0, "Cache TTL changed.");
    }
}

impl Handler<GetCacheStats> for CacheActor {
    type Result = MessageResult<GetCacheStats>;
    fn handle(&mut self, _: GetCacheStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stats())
    }
}

#[cfg(test)]
mod tests;

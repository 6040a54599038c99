//! What `GetCacheStats` answers: the backend in use, Redis's state and the counters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where reads and writes go right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Memory,
    Redis,
}

/// Redis as the cache sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisState {
    /// Not configured: the cache is memory only.
    Disabled,
    Up,
    /// Unreachable: the cache runs on memory and checks Redis again with backoff.
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CacheStats {
    pub backend: Backend,
    pub redis: RedisState,
    /// `host:port/db` of the configured Redis (no credentials).
    pub redis_address: Option<String>,
    /// Since when Redis has been down (absent when it is up or disabled).
    pub redis_down_since: Option<DateTime<Utc>>,
    /// Seconds an entry lives; 0 means caching is off.
    pub ttl_secs: f64,
    pub hits: u64,
    pub misses: u64,
    /// The part of `hits` and `misses` that Redis answered (the rest memory served).
    #[serde(default)]
    pub redis_hits: u64,
    #[serde(default)]
    pub redis_misses: u64,
    /// Live entries of the memory backend.
    pub entries: usize,
    pub max_entries: usize,
    /// Memory entries evicted because the memory backend was full.
    pub evictions: u64,
    /// Outages: times Redis was found down and memory took over.
    pub fallbacks: u64,
    /// Reads and writes served by memory while Redis was down.
    pub fallback_ops: u64,
    /// Times the cache went back to Redis after an outage.
    pub recoveries: u64,
    /// Failed Redis calls (timeouts, refused connections, error replies).
    pub redis_errors: u64,
    /// Events that changed a cached entry in place.
    pub events_applied: u64,
    /// Entries dropped because an event could not be applied safely.
    pub events_invalidated: u64,
    /// Writes skipped because an event for the same entry arrived while the caller was
    /// reading GNS3 (the value would have been stale).
    pub stale_puts: u64,
}

/// The counters the actor keeps itself (the rest comes from its parts).
#[derive(Debug, Default, Clone)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub redis_hits: u64,
    pub redis_misses: u64,
    pub events_applied: u64,
    pub events_invalidated: u64,
    pub stale_puts: u64,
}

//! Settings of the `CacheActor` (`[cache]` in the config file) and the Redis it may use.
//!
//! `CacheConfig` is serde-ready with defaults so the edge can embed it as its `cache`
//! section. `RedisConfig` is built by the edge from its own `[redis]` settings (a URL, or
//! host/port/db/password) and never shows the password: not in `Debug`, not in logs.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::secret::Secret;

/// The longest TTL accepted (one year): keeps `Instant` arithmetic far from overflow.
const MAX_TTL_SECS: f64 = 365.0 * 24.0 * 3600.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Seconds a cached read stays valid (`GNS3_CACHE_TTL`); 0 turns caching off.
    pub ttl: f64,
    /// First segment of every key (`<prefix>:topo:<server>:<project_id>`), so several
    /// deployments can share one Redis.
    pub prefix: String,
    /// Milliseconds one Redis call (connection included) may take before it counts as a
    /// failure and the cache falls back to memory.
    pub redis_timeout_ms: u64,
    /// Entries the in-memory backend holds at most; beyond it the entry closest to expiry
    /// is evicted.
    pub max_memory_entries: usize,
    /// While Redis is down, the first delay before checking it again, milliseconds
    /// (doubled after each failed check).
    pub redis_retry_initial_ms: u64,
    /// Cap on that delay, milliseconds.
    pub redis_retry_max_ms: u64,
    /// Connections in the Redis pool.
    pub redis_pool_size: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: 30.0,
            prefix: "gns3central".into(),
            redis_timeout_ms: 500,
            max_memory_entries: 10_000,
            redis_retry_initial_ms: 1_000,
            redis_retry_max_ms: 30_000,
            redis_pool_size: 16,
        }
    }
}

impl CacheConfig {
    /// How long an entry lives; `None` when caching is off (`ttl = 0`).
    pub fn ttl(&self) -> Option<Duration> {
        if self.ttl.is_finite() && self.ttl > 0.0 {
            Some(Duration::from_secs_f64(self.ttl.min(MAX_TTL_SECS)))
        } else {
            None
        }
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }

    /// Checks what a config file or the environment can get wrong; the error names the key
    /// (`prefix` is the section's path, e.g. `cache`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if !(self.ttl.is_finite() && (0.0..=MAX_TTL_SECS).contains(&self.ttl)) {
            return Err(format!("{prefix}.ttl: must be between 0 and {MAX_TTL_SECS} seconds, got {}", self.ttl));
        }
        validate_key_prefix(&self.prefix).map_err(|e| format!("{prefix}.prefix: {e}"))?;
        if !(10..=60_000).contains(&self.redis_timeout_ms) {
            return Err(format!("{prefix}.redis_timeout_ms: must be 10-60000, got {}", self.redis_timeout_ms));
        }
        if !(1..=10_000_000).contains(&self.max_memory_entries) {
            return Err(format!("{prefix}.max_memory_entries: must be 1-10000000, got {}", self.max_memory_entries));
        }
        if !(10..=600_000).contains(&self.redis_retry_initial_ms) {
            return Err(format!(
                "{prefix}.redis_retry_initial_ms: must be 10-600000, got {}",
                self.redis_retry_initial_ms
            ));
        }
        if self.redis_retry_max_ms < self.redis_retry_initial_ms || self.redis_retry_max_ms > 600_000 {
            return Err(format!(
                "{prefix}.redis_retry_max_ms: must be between redis_retry_initial_ms ({}) and 600000, got {}",
                self.redis_retry_initial_ms, self.redis_retry_max_ms
            ));
        }
        if !(1..=1024).contains(&self.redis_pool_size) {
            return Err(format!("{prefix}.redis_pool_size: must be 1-1024, got {}", self.redis_pool_size));
        }
        Ok(())
    }
}

/// Letters, digits and `_ - . :`; no glob characters, since the prefix ends up in `SCAN`
/// patterns.
fn validate_key_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 64 {
        return Err(format!("must be 1-64 characters, got '{p}'"));
    }
    if p.ends_with(':') {
        return Err(format!("must not end with ':' (it is added), got '{p}'"));
    }
    if !p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')) {
        return Err(format!("use letters, digits, '_', '-', '.' and ':' only, got '{p}'"));
    }
    Ok(())
}

/// Where the Redis is: a full URL, or its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisTarget {
    /// `redis://[[user]:password@]host:port[/db]` (or `redis+unix://`).
    Url(Secret),
    Tcp {
        host: String,
        port: u16,
        db: i64,
        password: Secret,
    },
}

/// The Redis the cache uses. Build it with `from_url`, `from_parts` or `from_settings`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisConfig {
    pub target: RedisTarget,
    /// Reach the master through Redis Sentinel (then `target` gives only the db and the
    /// password of the master and replicas, its address is not used).
    pub sentinel: Option<SentinelTarget>,
}

/// Redis Sentinel: where the sentinels are and which master to ask them for.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelTarget {
    /// `host:port` of each sentinel (or `redis://host:port`).
    pub sentinels: Vec<String>,
    pub master_name: String,
    /// The sentinels' own password (empty: none).
    pub password: Secret,
}

impl SentinelTarget {
    /// The sentinels' addresses as the redis client takes them.
    pub fn urls(&self) -> Result<Vec<redis::ConnectionInfo>, String> {
        use redis::IntoConnectionInfo;
        if self.sentinels.is_empty() {
            return Err("sentinels: at least one".into());
        }
        if self.master_name.trim().is_empty() {
            return Err("master_name: must not be empty with sentinels".into());
        }
        self.sentinels
            .iter()
            .map(|s| {
                let s = s.trim();
                let url = if s.contains("://") { s.to_owned() } else { format!("redis://{s}") };
                let info = url.as_str().into_connection_info().map_err(|e| format!("sentinels: '{s}': {e}"))?;
                Ok(if self.password.is_empty() {
                    info
                } else {
                    let settings = info.redis_settings().clone().set_password(self.password.expose());
                    info.set_redis_settings(settings)
                })
            })
            .collect()
    }
}

impl RedisConfig {
    pub fn from_url(url: impl Into<String>) -> Self {
        Self { target: RedisTarget::Url(Secret::new(url)), sentinel: None }
    }

    /// `password` empty means none.
    pub fn from_parts(host: impl Into<String>, port: u16, db: i64, password: impl Into<String>) -> Self {
        Self {
            target: RedisTarget::Tcp { host: host.into(), port, db, password: Secret::new(password) },
            sentinel: None,
        }
    }

    /// Through these sentinels.
    pub fn with_sentinel(mut self, sentinel: Option<SentinelTarget>) -> Self {
        self.sentinel = sentinel;
        self
    }

    /// The edge's `[redis]` values: a non-empty `url` wins over host/port/db/password.
    pub fn from_settings(url: &Secret, host: &str, port: u16, db: i64, password: &Secret) -> Self {
        if url.expose().trim().is_empty() {
            Self::from_parts(host.trim(), port, db, password.expose())
        } else {
            Self::from_url(url.expose().trim())
        }
    }

    /// What the redis client connects with; the error says what is wrong (never the password).
    pub fn connection_info(&self) -> Result<redis::ConnectionInfo, String> {
        use redis::IntoConnectionInfo;
        match &self.target {
            // redis's parse errors name what is wrong, never the URL itself.
            RedisTarget::Url(url) => {
                url.expose().into_connection_info().map_err(|e| format!("not a usable Redis URL: {e}"))
            }
            RedisTarget::Tcp { host, port, db, password } => {
                if host.is_empty() {
                    return Err("host: must not be empty".into());
                }
                if *port == 0 {
                    return Err("port: must be 1-65535".into());
                }
                if *db < 0 {
                    return Err(format!("db: must be 0 or more, got {db}"));
                }
                let mut settings = redis::RedisConnectionInfo::default().set_db(*db);
                if !password.is_empty() {
                    settings = settings.set_password(password.expose());
                }
                redis::ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()
                    .map(|info| info.set_redis_settings(settings))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Where it points, for logs and stats: `host:port/db`, no credentials.
    pub fn describe(&self) -> String {
        if let Some(s) = &self.sentinel {
            let db = self.connection_info().map(|i| i.redis_settings().db()).unwrap_or(0);
            return format!("sentinel {} via {}/{db}", s.master_name, s.sentinels.join(","));
        }
        match self.connection_info() {
            Ok(info) => {
                let db = info.redis_settings().db();
                match info.addr() {
                    redis::ConnectionAddr::Tcp(h, p) => format!("{h}:{p}/{db}"),
                    redis::ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}/{db} (tls)"),
                    redis::ConnectionAddr::Unix(path) => format!("unix:{}/{db}", path.display()),
                    _ => format!("redis/{db}"),
                }
            }
            Err(_) => "redis (invalid address)".into(),
        }
    }

    /// Checks the address; the error names the key under `prefix` (e.g. `redis`).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if let Some(s) = &self.sentinel {
            s.urls().map_err(|e| format!("{prefix}.{e}"))?;
        }
        match &self.target {
            RedisTarget::Url(_) => self.connection_info().map(drop).map_err(|e| format!("{prefix}.url: {e}")),
            RedisTarget::Tcp { .. } => self.connection_info().map(drop).map_err(|e| format!("{prefix}.{e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = CacheConfig::default();
        c.validate("cache").unwrap();
        assert_eq!(c.ttl(), Some(Duration::from_secs(30)));
        assert_eq!(c.redis_timeout(), Duration::from_millis(500));
        assert_eq!(CacheConfig { ttl: 0.0, ..c }.ttl(), None, "ttl 0 turns caching off");
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = |c: CacheConfig| c.validate("cache").unwrap_err();
        let d = CacheConfig::default;
        assert!(bad(CacheConfig { ttl: -1.0, ..d() }).starts_with("cache.ttl:"));
        assert!(bad(CacheConfig { ttl: f64::NAN, ..d() }).starts_with("cache.ttl:"));
        assert!(bad(CacheConfig { prefix: String::new(), ..d() }).starts_with("cache.prefix:"));
        assert!(bad(CacheConfig { prefix: "a*b".into(), ..d() }).starts_with("cache.prefix:"));
        assert!(bad(CacheConfig { prefix: "a:".into(), ..d() }).starts_with("cache.prefix:"));
        assert!(bad(CacheConfig { redis_timeout_ms: 0, ..d() }).starts_with("cache.redis_timeout_ms:"));
        assert!(bad(CacheConfig { max_memory_entries: 0, ..d() }).starts_with("cache.max_memory_entries:"));
        assert!(bad(CacheConfig { redis_retry_max_ms: 5, ..d() }).starts_with("cache.redis_retry_max_ms:"));
        assert!(bad(CacheConfig { redis_pool_size: 0, ..d() }).starts_with("cache.redis_pool_size:"));
    }

    #[test]
    fn unknown_keys_are_rejected_and_missing_ones_defaulted() {
        let c: CacheConfig = serde_json::from_value(serde_json::json!({"ttl": 5})).unwrap();
        assert_eq!(c.ttl, 5.0);
        assert_eq!(c.prefix, "gns3central");
        assert!(serde_json::from_value::<CacheConfig>(serde_json::json!({"tll": 5})).is_err());
    }

    #[test]
    fn redis_from_parts_and_url() {
        let parts = RedisConfig::from_parts("10.0.0.5", 6380, 2, "pw");
        let info = parts.connection_info().unwrap();
        assert_eq!(info.redis_settings().db(), 2);
        assert_eq!(info.redis_settings().password(), Some("pw"));
        assert_eq!(parts.describe(), "10.0.0.5:6380/2");

        let url = RedisConfig::from_url("redis://:s3cret@127.0.0.1:6390/3");
        assert_eq!(url.describe(), "127.0.0.1:6390/3");
        assert_eq!(url.connection_info().unwrap().redis_settings().password(), Some("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"), "Debug never shows the password");
    }

    #[test]
    fn url_wins_over_parts_in_settings() {
        let s = RedisConfig::from_settings(&Secret::new("redis://h:1/0"), "other", 2, 0, &Secret::default());
        assert_eq!(s.describe(), "h:1/0");
        let s = RedisConfig::from_settings(&Secret::default(), "other", 2, 5, &Secret::default());
        assert_eq!(s.describe(), "other:2/5");
    }

    #[test]
    fn bad_redis_address_names_the_key() {
        let e = RedisConfig::from_url("http://nope").validate("redis").unwrap_err();
        assert!(e.starts_with("redis.url:"), "{e}");
        let e = RedisConfig::from_parts("", 6379, 0, "").validate("redis").unwrap_err();
        assert!(e.starts_with("redis.host:"), "{e}");
        let e = RedisConfig::from_parts("h", 6379, -1, "").validate("redis").unwrap_err();
        assert!(e.starts_with("redis.db:"), "{e}");
    }
}

//! `RedisStore`: the Redis backend, a deadpool-redis pool plus the few commands the cache
//! needs. Every call, taking a connection from the pool included, is bounded by
//! `cache.redis_timeout_ms`: a Redis that hangs costs one timeout, after which the actor
//! stops calling it until a check succeeds.
//!
//! In-place updates write with `SET ... XX KEEPTTL` (Redis 6.0 or later): the key keeps
//! the expiry it was given when fetched from GNS3, and a key that expired between the read
//! and the write is not brought back without a TTL.

use deadpool_redis::{BuildError, Connection, Manager, Pool, PoolConfig, Runtime, Timeouts};
use redis::AsyncConnectionConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CacheConfig, RedisConfig};
use super::error::CacheError;

/// Keys deleted per `DEL` and asked per `SCAN` round.
const BATCH: usize = 500;

#[derive(Clone)]
pub struct RedisStore {
    pool: Pools,
    timeout: Duration,
    address: Arc<str>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("address", &self.address).finish()
    }
}

/// One address, or the master Sentinel names (deadpool-redis's Sentinel pool asks the
/// sentinels at every new connection: after a failover the next one reaches the new master).
#[derive(Clone)]
enum Pools {
    Direct(Pool),
    Sentinel(deadpool_redis::sentinel::Pool),
}

/// A pooled connection of either kind.
enum Conn {
    Direct(Connection),
    Sentinel(deadpool_redis::sentinel::Connection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Direct(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Direct(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}

/// What both kinds of pool share (their builders are two types of one generic deadpool
/// builder, which deadpool-redis does not name): the size, every wait bounded by `timeout`.
fn pool_config(cache: &CacheConfig, timeout: Duration) -> PoolConfig {
    let bound = Some(timeout);
    PoolConfig {
        timeouts: Timeouts { wait: bound, create: bound, recycle: bound },
        ..PoolConfig::new(cache.redis_pool_size)
    }
}

fn pool_error(e: BuildError) -> CacheError {
    CacheError::Config(format!("redis pool: {e}"))
}

impl RedisStore {
    /// Builds the pool; nothing is connected until the first call.
    pub fn new(redis: &RedisConfig, cache: &CacheConfig) -> Result<Self, CacheError> {
        let info = redis.connection_info().map_err(CacheError::Config)?;
        let timeout = cache.redis_timeout();
        if let Some(s) = &redis.sentinel {
            use deadpool_redis::sentinel::{Manager, Pool, SentinelNodeConnectionInfo, SentinelServerType};
            let settings = info.redis_settings();
            let node = SentinelNodeConnectionInfo {
                tls_mode: None,
                redis_connection_info: Some(deadpool_redis::RedisConnectionInfo {
                    db: settings.db(),
                    username: settings.username().map(str::to_owned),
                    password: settings.password().map(str::to_owned),
                    protocol: deadpool_redis::ProtocolVersion::RESP2,
                }),
            };
            let urls = s.urls().map_err(CacheError::Config)?;
            let manager = Manager::new(urls, s.master_name.clone(), Some(node), SentinelServerType::Master)
                .map_err(|e| CacheError::Config(format!("redis sentinel: {e}")))?;
            let pool = Pool::builder(manager)
                .config(pool_config(cache, timeout))
                .runtime(Runtime::Tokio1)
                .build()
                .map_err(pool_error)?;
            return Ok(Self { pool: Pools::Sentinel(pool), timeout, address: redis.describe().into() });
        }
        let conn_cfg =
            AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
        let manager =
            Manager::new_with_config(info, conn_cfg).map_err(|e| CacheError::Config(format!("redis: {e}")))?;
        let pool = Pool::builder(manager)
            .config(pool_config(cache, timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(pool_error)?;
        Ok(Self { pool: Pools::Direct(pool), timeout, address: redis.describe().into() })
    }

    /// `host:port/db`, for logs.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(CacheError::Command(format!("PING answered '{pong}'")))
            }
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            Ok(redis::cmd("GET").arg(key).query_async(&mut conn).await?)
        })
        .await
    }

    /// `SET key value PX ttl`.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.bounded(async {
            let mut conn = self.conn().await?;
            let () = redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ms).query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    /// Replaces the value of an existing key, keeping its TTL; `false` if the key is gone.
    pub async fn replace(&self, key: &str, value: &[u8]) -> Result<bool, CacheError> {
        self.bounded(async {
            let mut conn = self.conn().await?;
            let done: Option<String> =
                redis::cmd("SET").arg(key).arg(value).arg("XX").arg("KEEPTTL").query_async(&mut conn).await?;
            Ok(done.is_some())
        })
        .await
    }

    /// Deletes `keys`; returns how many existed.
    pub async fn del(&self, keys: &[String]) -> Result<u64, CacheError> {
        let mut deleted = 0;
        for chunk in keys.chunks(BATCH) {
            deleted += self
                .bounded(async {
                    let mut conn = self.conn().await?;
                    Ok(redis::cmd("DEL").arg(chunk).query_async::<u64>(&mut conn).await?)
                })
                .await?;
        }
        Ok(deleted)
    }

    /// Deletes every key matching `pattern` (`SCAN` in rounds, each bounded by the timeout).
    pub async fn del_matching(&self, pattern: &str) -> Result<u64, CacheError> {
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .bounded(async {
                    let mut conn = self.conn().await?;
                    Ok(redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(BATCH)
                        .query_async(&mut conn)
                        .await?)
                })
                .await?;
            if !keys.is_empty() {
                deleted += self.del(&keys).await?;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn conn(&self) -> Result<Conn, CacheError> {
        match &self.pool {
            Pools::Direct(p) => p.get().await.map(Conn::Direct).map_err(|e| match e {
                deadpool_redis::PoolError::Backend(e) => CacheError::from(e),
                other => CacheError::Unavailable(other.to_string()),
            }),
            Pools::Sentinel(p) => p.get().await.map(Conn::Sentinel).map_err(|e| match e {
                deadpool_redis::sentinel::PoolError::Backend(e) => CacheError::from(e),
                other => CacheError::Unavailable(other.to_string()),
            }),
        }
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T, CacheError>>) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CacheError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }
}

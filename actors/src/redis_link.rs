//! `RedisLink`: how every Redis user of the service reaches Redis (the event log and its
//! Pub/Sub, the ingestion leases, the audit trail; the cache's pool is built from the same
//! `RedisConfig`, see `cache/redis_store.rs`). One place decides whether that is one
//! address (`[redis] url` or host/port) or the master that Redis Sentinel names
//! (`[redis] sentinels`, `master_name`).
//!
//! With Sentinel, every new connection asks the sentinels for the current master (the
//! redis crate's `SentinelClient`). Users keep connections and open new ones when a call
//! fails, as they already do for an outage: after a failover the old master's connection
//! breaks (or refuses writes as a replica), the next connection goes to the promoted one.
//!
//! Usage: build one with `RedisLink::new(&redis_config)` and clone it (cheap, shared);
//! `multiplexed()` for commands, `pubsub()` for subscriptions.

use std::sync::Arc;

use redis::aio::{MultiplexedConnection, PubSub};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

use crate::cache::RedisConfig;

#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
    describe: Arc<str>,
}

enum Inner {
    Direct(redis::Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").field("to", &self.describe).finish()
    }
}

impl RedisLink {
    /// Nothing is connected yet; the error says what is wrong with the configuration.
    pub fn new(cfg: &RedisConfig) -> Result<Self, String> {
        let info = cfg.connection_info()?;
        let inner = match &cfg.sentinel {
            None => Inner::Direct(redis::Client::open(info).map_err(|e| format!("redis: {e}"))?),
            Some(s) => {
                let node =
                    SentinelNodeConnectionInfo::default().set_redis_connection_info(info.redis_settings().clone());
                let client =
                    SentinelClient::build(s.urls()?, s.master_name.clone(), Some(node), SentinelServerType::Master)
                        .map_err(|e| format!("redis sentinel: {e}"))?;
                Inner::Sentinel(tokio::sync::Mutex::new(client))
            }
        };
        Ok(Self { inner: Arc::new(inner), describe: cfg.describe().into() })
    }

    /// A client for the Redis to use now (with Sentinel: the current master).
    pub async fn client(&self) -> redis::RedisResult<redis::Client> {
        match &*self.inner {
            Inner::Direct(c) => Ok(c.clone()),
            Inner::Sentinel(s) => s.lock().await.async_get_client().await,
        }
    }

    pub async fn multiplexed(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.client().await?.get_multiplexed_async_connection().await
    }

    pub async fn pubsub(&self) -> redis::RedisResult<PubSub> {
        self.client().await?.get_async_pubsub().await
    }

    /// Where it points, for logs (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }
}

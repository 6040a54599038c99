//! `[redis]`: the Redis that the cache, the event log and the cluster share.

use gns3_central_actors::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub enabled: bool,
    pub url: Secret,
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub password: Secret,
    /// Redis Sentinel: `host:port` of each sentinel; non-empty: the master is asked of them
    /// (`master_name`), url/host/port are not used (db and password still are).
    #[serde(default)]
    pub sentinels: Vec<String>,
    #[serde(default)]
    pub master_name: String,
    /// The sentinels' own password (empty: none).
    #[serde(default)]
    pub sentinel_password: Secret,
}

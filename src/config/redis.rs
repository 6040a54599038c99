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
}

//! Settings of the cluster bridge (`[cluster]` in the config file). The cluster is on when
//! Redis is configured and `enabled` is true: events then go through the shared log in
//! Redis and each GNS3 server is ingested by the instance holding its lease.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Share events, history and ingestion with the other instances on the same Redis.
    pub enabled: bool,
    /// This instance's id in the shared log and in leases; empty: a random one per start.
    pub instance_id: String,
    /// Milliseconds a GNS3 server's ingestion lease lasts unless renewed (renewed every
    /// third of it). A dead holder's servers are taken over within about this time.
    pub lease_ms: u64,
    /// Events kept in the Redis Stream (approximately: trimmed with `MAXLEN ~`).
    pub stream_max_len: u64,
    /// Events numbered in one Redis call at most.
    pub batch: usize,
    /// Milliseconds one Redis call may take before the shared log counts as unreachable.
    pub redis_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            instance_id: String::new(),
            lease_ms: 10_000,
            stream_max_len: 100_000,
            batch: 64,
            redis_timeout_ms: 2_000,
        }
    }
}

impl ClusterConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }

    /// The id to use: the configured one, else a random one.
    pub fn resolved_instance_id(&self) -> String {
        if self.instance_id.is_empty() {
            format!("i{:08x}", rand::random::<u32>())
        } else {
            self.instance_id.clone()
        }
    }

    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if !(300..=600_000).contains(&self.lease_ms) {
            return Err(format!("{prefix}.lease_ms: must be 300-600000, got {}", self.lease_ms));
        }
        if !(100..=100_000_000).contains(&self.stream_max_len) {
            return Err(format!("{prefix}.stream_max_len: must be 100-100000000, got {}", self.stream_max_len));
        }
        if !(1..=1000).contains(&self.batch) {
            return Err(format!("{prefix}.batch: must be 1-1000, got {}", self.batch));
        }
        if !(10..=60_000).contains(&self.redis_timeout_ms) {
            return Err(format!("{prefix}.redis_timeout_ms: must be 10-60000, got {}", self.redis_timeout_ms));
        }
        if self.instance_id.len() > 64
            || !self.instance_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("{prefix}.instance_id: up to 64 letters, digits, '_' or '-'"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        assert!(ClusterConfig::default().validate("cluster").is_ok());
        let bad = ClusterConfig { lease_ms: 5, ..Default::default() };
        assert!(bad.validate("cluster").unwrap_err().starts_with("cluster.lease_ms"));
        let bad = ClusterConfig { instance_id: "a b".into(), ..Default::default() };
        assert!(bad.validate("cluster").unwrap_err().contains("instance_id"));
        assert_ne!(ClusterConfig::default().resolved_instance_id(), "");
    }
}

//! Settings of one GNS3 server's connector (`[gns3.servers.<name>]` in the config file;
//! the `GNS3_*` environment variables set the server named `default`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::secret::Secret;

/// Which API to speak: detected (`/v3/version`, then `/v2/version`) or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersionSetting {
    #[default]
    Auto,
    V2,
    V3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Filled from the table key; not read from the file.
    #[serde(skip_deserializing)]
    pub name: String,
    /// `false` keeps the table in the file but starts no connector for it.
    pub enabled: bool,
    /// `http` or `https`.
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// v3: the user to log in as; v2: HTTP basic auth user (empty: none).
    pub username: String,
    pub password: Secret,
    pub api_version: ApiVersionSetting,
    /// Seconds before one HTTP call to GNS3 is abandoned (`GNS3_TIMEOUT`).
    pub timeout: f64,
    pub retry: RetryConfig,
    pub breaker: BreakerConfig,
    pub reconnect: ReconnectConfig,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            enabled: true,
            protocol: "http".into(),
            host: "127.0.0.1".into(),
            port: 3080,
            username: String::new(),
            password: Secret::default(),
            api_version: ApiVersionSetting::Auto,
            timeout: 10.0,
            retry: RetryConfig::default(),
            breaker: BreakerConfig::default(),
            reconnect: ReconnectConfig::default(),
        }
    }
}

impl ConnectorConfig {
    /// `http://host:port` (IPv6 hosts bracketed).
    pub fn base_url(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{}:{}", self.protocol, host, self.port)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// Checks values a config file or the environment can get wrong; the error names the key.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.protocol != "http" && self.protocol != "https" {
            return Err(format!("{prefix}.protocol: must be 'http' or 'https', got '{}'", self.protocol));
        }
        if self.host.trim().is_empty() {
            return Err(format!("{prefix}.host: must not be empty"));
        }
        if self.port == 0 {
            return Err(format!("{prefix}.port: must be 1-65535"));
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 3600.0) {
            return Err(format!("{prefix}.timeout: must be between 0 and 3600 seconds, got {}", self.timeout));
        }
        self.retry.validate(&format!("{prefix}.retry"))?;
        self.breaker.validate(&format!("{prefix}.breaker"))?;
        self.reconnect.validate(&format!("{prefix}.reconnect"))?;
        Ok(())
    }
}

/// Retries of idempotent reads and of calls that never reached GNS3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry, milliseconds; doubled each time.
    pub initial_backoff_ms: u64,
    /// Cap on the delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Random spread of each delay, 0.0-1.0 (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_attempts: 3, initial_backoff_ms: 100, max_backoff_ms: 2000, jitter: 0.2 }
    }
}

impl RetryConfig {
    fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(format!("{prefix}.max_attempts: must be 1-20, got {}", self.max_attempts));
        }
        if self.initial_backoff_ms > self.max_backoff_ms {
            return Err(format!("{prefix}.initial_backoff_ms: must not exceed max_backoff_ms"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!("{prefix}.jitter: must be between 0.0 and 1.0, got {}", self.jitter));
        }
        Ok(())
    }
}

/// The circuit breaker in front of one GNS3 server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive transport failures that open the circuit.
    pub failure_threshold: u32,
    /// Seconds the circuit stays open before probes are let through.
    pub open_secs: f64,
    /// Successful probes in half-open state needed to close it again.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failure_threshold: 5, open_secs: 5.0, half_open_probes: 1 }
    }
}

impl BreakerConfig {
    pub fn open_duration(&self) -> Duration {
        Duration::from_secs_f64(self.open_secs)
    }
    fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.failure_threshold == 0 {
            return Err(format!("{prefix}.failure_threshold: must be at least 1"));
        }
        if !(self.open_secs.is_finite() && self.open_secs > 0.0 && self.open_secs <= 3600.0) {
            return Err(format!("{prefix}.open_secs: must be between 0 and 3600, got {}", self.open_secs));
        }
        if self.half_open_probes == 0 {
            return Err(format!("{prefix}.half_open_probes: must be at least 1"));
        }
        Ok(())
    }
}

/// How the connector probes a GNS3 server it has lost (capped exponential backoff),
/// and how often it checks one it is connected to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectConfig {
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Seconds between health checks (`GET /version`) while connected.
    pub health_interval_secs: f64,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self { initial_backoff_ms: 200, max_backoff_ms: 2000, health_interval_secs: 5.0 }
    }
}

impl ReconnectConfig {
    fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.initial_backoff_ms == 0 || self.initial_backoff_ms > self.max_backoff_ms {
            return Err(format!("{prefix}.initial_backoff_ms: must be 1..=max_backoff_ms"));
        }
        if !(self.health_interval_secs.is_finite() && self.health_interval_secs > 0.0) {
            return Err(format!("{prefix}.health_interval_secs: must be positive"));
        }
        Ok(())
    }
}

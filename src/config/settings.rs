//! The `Settings` tree: one section per component. The engine's sections are its own
//! types (`gns3_central_actors::*::…Config`), the edge's are the files beside this one.
//! Loading is in `load.rs`, the checks in `validate.rs`.

use gns3_central_actors::cache::{CacheConfig, RedisConfig};
use gns3_central_actors::cluster::ClusterConfig;
use gns3_central_actors::connector::ConnectorConfig;
use gns3_central_actors::dispatcher::DispatcherConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use super::gns3::{Gns3Settings, IngestModeSetting};
use super::http::HttpSettings;
use super::log::LogSettings;
use super::redis::RedisSettings;
use super::service::{AuditSettings, ShutdownSettings, SupervisionSettings};
use super::websocket::WsSettings;

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Prefix of the structured environment variables (`GNS3_CENTRAL__HTTP__BIND`).
pub const ENV_PREFIX: &str = "GNS3_CENTRAL";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub log: LogSettings,
    pub gns3: Gns3Settings,
    /// The `PriorityDispatcher` (queues, history, delivery, priorities).
    pub events: DispatcherConfig,
    pub cache: CacheConfig,
    pub redis: RedisSettings,
    /// Several instances on one Redis (used only when Redis is enabled).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Access control: API tokens, JWT, origins (`crate::auth`).
    pub auth: crate::auth::AuthSettings,
    /// WebSocket sessions (`/ws/gns3/events/`): heartbeat, limits, outbound buffer.
    #[serde(default)]
    pub websocket: WsSettings,
    /// Modules and their bus (`/ws/modules/{name}`, `/api/v2/modules`, `/api/v2/bus`).
    #[serde(default)]
    pub modules: gns3_central_actors::modules::ModulesConfig,
    /// Notification sinks (`[[sinks]]`): webhooks for chosen events.
    #[serde(default)]
    pub sinks: Vec<gns3_central_actors::sinks::SinkConfig>,
    /// Supervised actors: what counts as a restart storm.
    #[serde(default)]
    pub supervision: SupervisionSettings,
    /// The audit trail (`crate::observe::audit`).
    #[serde(default)]
    pub audit: AuditSettings,
    /// Stopping on SIGTERM/SIGINT.
    #[serde(default)]
    pub shutdown: ShutdownSettings,
    /// Which GNS3 paths the passthrough forwards (`/api/v2/servers/{server}/gns3/{path}`).
    #[serde(default)]
    pub passthrough: super::passthrough::PassthroughSettings,
}

/// A configuration that cannot be used; the message names the key or variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// The Redis to use, when enabled.
    pub fn redis_config(&self) -> Option<RedisConfig> {
        let r = &self.redis;
        let sentinel = (!r.sentinels.is_empty()).then(|| gns3_central_actors::cache::SentinelTarget {
            sentinels: r.sentinels.clone(),
            master_name: r.master_name.clone(),
            password: r.sentinel_password.clone(),
        });
        r.enabled
            .then(|| RedisConfig::from_settings(&r.url, &r.host, r.port, r.db, &r.password).with_sentinel(sentinel))
    }

    /// Whether events, history and ingestion are shared with other instances through Redis.
    pub fn cluster_enabled(&self) -> bool {
        self.redis.enabled && self.cluster.enabled
    }

    /// How the connectors ingest notifications.
    pub fn ingest_config(&self) -> gns3_central_actors::connector::IngestConfig {
        use gns3_central_actors::connector::{IngestConfig, IngestMode};
        IngestConfig {
            mode: match self.gns3.ingest {
                IngestModeSetting::Streams => IngestMode::Streams,
                IngestModeSetting::Poll => IngestMode::Poll,
            },
            poll_interval: std::time::Duration::from_secs_f64(self.gns3.monitor_interval),
            silence: std::time::Duration::from_secs_f64(self.gns3.stream_silence_secs),
            follow_projects: self.gns3.follow_projects,
            topology_burst: std::time::Duration::from_millis(self.gns3.topology_burst_ms),
        }
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.http.bind.parse().map_err(|_| {
            ConfigError(format!("http.bind: expected an address like 127.0.0.1:8000, got '{}'", self.http.bind))
        })
    }

    /// The enabled GNS3 servers.
    pub fn servers(&self) -> impl Iterator<Item = &ConnectorConfig> {
        self.gns3.servers.values().filter(|s| s.enabled)
    }

    /// The effective configuration as TOML, secrets masked (`check-config`).
    pub fn to_masked_toml(&self) -> String {
        toml_from_json(&serde_json::to_value(self).unwrap_or_default(), "")
    }
}

fn toml_from_json(value: &serde_json::Value, path: &str) -> String {
    use serde_json::Value;
    let Value::Object(map) = value else { return String::new() };
    let mut out = String::new();
    let mut tables = Vec::new();
    let mut table_arrays = Vec::new();
    for (k, v) in map {
        match v {
            Value::Object(_) => tables.push((k, v)),
            // `[[auth.tokens]]`: a non-empty array of tables.
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                table_arrays.push((k, items))
            }
            Value::Null => {}
            other => out.push_str(&format!("{k} = {other}\n")),
        }
    }
    for (k, v) in tables {
        let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        let body = toml_from_json(v, &sub);
        out.push_str(&format!("\n[{sub}]\n{body}"));
    }
    for (k, items) in table_arrays {
        let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        for item in items {
            out.push_str(&format!("\n[[{sub}]]\n{}", toml_from_json(item, &sub)));
        }
    }
    out
}

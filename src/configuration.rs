//! The one typed `Settings` tree, loaded in layers: `config/default.toml` (built into the
//! binary), the `--config` file, the original service's environment variables
//! (`GNS3_HOST`...), then `GNS3_CENTRAL__SECTION__KEY` variables. Each actor owns its
//! section's type (the connector's lives in the actors crate). Every value is checked
//! once here, and a bad one is reported with the key that holds it.

use config::{Config, Environment, File, FileFormat};
use gns3_central_actors::cache::{CacheConfig, RedisConfig};
use gns3_central_actors::cluster::ClusterConfig;
use gns3_central_actors::connector::ConnectorConfig;
use gns3_central_actors::dispatcher::DispatcherConfig;
use gns3_central_actors::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

pub use crate::settings_ops::{AuditSettings, ShutdownSettings, SupervisionSettings};

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

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
    pub websocket: crate::ws::WsSettings,
    /// Modules and their bus (`/ws/modules/{name}`, `/api/v2/modules`, `/api/v2/bus`).
    #[serde(default)]
    pub modules: gns3_central_actors::modules::ModulesConfig,
    /// Notification sinks (`[[sinks]]`): webhooks for chosen events.
    #[serde(default)]
    pub sinks: Vec<gns3_central_actors::sinks::SinkConfig>,
    /// Supervised actors: what counts as a restart storm.
    #[serde(default)]
    pub supervision: SupervisionSettings,
    /// The audit trail (`crate::audit`).
    #[serde(default)]
    pub audit: AuditSettings,
    /// Stopping on SIGTERM/SIGINT.
    #[serde(default)]
    pub shutdown: ShutdownSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: String,
    /// Directory of the log files (`gns3_central_service.log`, `realtime_events.log`);
    /// empty: no files, stderr only.
    #[serde(default)]
    pub dir: String,
    /// `daily` or `size` (past `max_size_mb`).
    #[serde(default = "crate::settings_ops::default_rotation")]
    pub rotation: String,
    #[serde(default = "crate::settings_ops::default_max_size_mb")]
    pub max_size_mb: u64,
    /// Rotated parts kept per file.
    #[serde(default = "crate::settings_ops::default_max_files")]
    pub max_files: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gns3Settings {
    pub auto_monitor: bool,
    pub monitor_interval: f64,
    /// `streams` (follow GNS3's notifications) or `poll` (read every `monitor_interval`).
    pub ingest: IngestModeSetting,
    /// Seconds of silence after which a notification stream counts as dead.
    pub stream_silence_secs: f64,
    /// Follow the stream of every open project (keeps GNS3 from auto-closing it).
    pub follow_projects: bool,
    /// One `topology.changed` per burst of structural changes this long (milliseconds).
    pub topology_burst_ms: u64,
    pub servers: BTreeMap<String, ConnectorConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestModeSetting {
    Streams,
    Poll,
}

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

/// A configuration that cannot be used; the message names the key or variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The original service's variables and the keys they set. Values are checked here so the
/// message names the variable the user actually wrote.
const LEGACY_ENV: &[(&str, &str, Kind)] = &[
    ("GNS3_HOST", "gns3.servers.default.host", Kind::Text),
    ("GNS3_PORT", "gns3.servers.default.port", Kind::Port),
    ("GNS3_PROTOCOL", "gns3.servers.default.protocol", Kind::Text),
    ("GNS3_USERNAME", "gns3.servers.default.username", Kind::Text),
    ("GNS3_PASSWORD", "gns3.servers.default.password", Kind::Text),
    ("GNS3_TIMEOUT", "gns3.servers.default.timeout", Kind::Seconds),
    ("GNS3_AUTO_MONITOR", "gns3.auto_monitor", Kind::Bool),
    ("GNS3_MONITOR_INTERVAL", "gns3.monitor_interval", Kind::Seconds),
    ("GNS3_CACHE_TTL", "cache.ttl", Kind::Seconds),
    ("REDIS_HOST", "redis.host", Kind::Text),
    ("REDIS_PORT", "redis.port", Kind::Port),
    ("REDIS_DB", "redis.db", Kind::Int),
];

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Port,
    Seconds,
    Bool,
    Int,
}

impl Settings {
    /// Loads the layers, reading the environment through `env` (tests pass their own).
    pub fn load_with(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        env_vars: Vec<(String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config file {}: not found (or not a file)", path.display())));
            }
            // The file is TOML whatever its name (`lab.conf`, a temp file...).
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        // Overrides beat every source in the config crate, so a legacy variable is applied
        // only where no GNS3_CENTRAL__ variable sets the same key (those must win).
        let structured = |key: &str| {
            let name = format!("{ENV_PREFIX}__{}", key.to_ascii_uppercase().replace('.', "__"));
            env_vars.iter().any(|(k, _)| k.eq_ignore_ascii_case(&name))
        };
        for (var, key, kind) in LEGACY_ENV {
            let Some(raw) = env(var) else { continue };
            if structured(key) {
                continue;
            }
            let value = check_legacy(var, &raw, *kind)?;
            builder = builder.set_override(*key, value).map_err(|e| ConfigError(format!("{var}: {e}")))?;
        }
        // REDIS_HOST alone means "use this Redis" for users of the original service.
        if env("REDIS_HOST").is_some() && !structured("redis.enabled") {
            builder =
                builder.set_override("redis.enabled", true).map_err(|e| ConfigError(format!("REDIS_HOST: {e}")))?;
        }
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // Only this key is a comma-separated list (`https://a,https://b`).
                .list_separator(",")
                .with_list_parse_key("auth.allowed_origins")
                .source(Some(env_vars.into_iter().collect())),
        );
        let raw = builder.build().map_err(|e| ConfigError(describe(e, file)))?;
        let mut settings: Settings = raw.try_deserialize().map_err(|e| ConfigError(describe(e, file)))?;
        for (name, server) in settings.gns3.servers.iter_mut() {
            server.name = name.clone();
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Loads from the real process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Settings::load_with(file, &|k| std::env::var(k).ok(), vars)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError("http.max_body_bytes: must be at least 1024".into()));
        }
        match self.log.level.to_ascii_lowercase().as_str() {
            "trace" | "debug" | "info" | "warn" | "error" => {}
            other => {
                return Err(ConfigError(format!("log.level: must be trace, debug, info, warn or error, got '{other}'")))
            }
        }
        if self.log.format != "text" && self.log.format != "json" {
            return Err(ConfigError(format!("log.format: must be 'text' or 'json', got '{}'", self.log.format)));
        }
        crate::settings_ops::validate(self)?;
        if !(self.gns3.monitor_interval.is_finite() && self.gns3.monitor_interval >= 0.5) {
            return Err(ConfigError(format!(
                "gns3.monitor_interval: must be at least 0.5 seconds, got {}",
                self.gns3.monitor_interval
            )));
        }
        if !(self.gns3.stream_silence_secs.is_finite() && self.gns3.stream_silence_secs >= 6.0) {
            return Err(ConfigError(format!(
                "gns3.stream_silence_secs: must be at least 6 seconds (GNS3 pings every 5 s), got {}",
                self.gns3.stream_silence_secs
            )));
        }
        if self.gns3.topology_burst_ms == 0 || self.gns3.topology_burst_ms > 60_000 {
            return Err(ConfigError(format!(
                "gns3.topology_burst_ms: must be 1-60000, got {}",
                self.gns3.topology_burst_ms
            )));
        }
        self.cache.validate("cache").map_err(ConfigError)?;
        self.events.validate("events").map_err(ConfigError)?;
        self.cluster.validate("cluster").map_err(ConfigError)?;
        self.websocket.validate("websocket").map_err(ConfigError)?;
        // Every WebSocket session, module and notification sink holds one dispatcher
        // subscriber: with fewer subscribers, those past the limit open but cannot subscribe.
        let needed = self.websocket.max_sessions + self.modules.max_modules + self.sinks.len();
        if self.events.max_subscribers <= needed {
            return Err(ConfigError(format!(
                "events.max_subscribers: must be greater than websocket.max_sessions + modules.max_modules + \
                 the sinks ({needed}), got {}",
                self.events.max_subscribers
            )));
        }
        self.modules.validate("modules").map_err(ConfigError)?;
        gns3_central_actors::sinks::validate_all(&self.sinks).map_err(ConfigError)?;
        if let Some(redis) = self.redis_config() {
            redis.validate("redis").map_err(ConfigError)?;
        }
        let enabled: Vec<_> = self.gns3.servers.values().filter(|s| s.enabled).collect();
        if enabled.is_empty() {
            return Err(ConfigError("gns3.servers: no enabled GNS3 server; configure at least one".into()));
        }
        for (name, server) in &self.gns3.servers {
            if !valid_server_name(name) {
                return Err(ConfigError(format!(
                    "gns3.servers.{name}: server names use letters, digits, '-' and '_' only"
                )));
            }
            server.validate(&format!("gns3.servers.{name}")).map_err(ConfigError)?;
        }
        self.auth.validate().map_err(ConfigError)?;
        if self.redis.enabled && self.redis.url.is_empty() && self.redis.host.trim().is_empty() {
            return Err(ConfigError("redis.host: must not be empty when redis is enabled".into()));
        }
        Ok(())
    }

    /// The Redis to use, when enabled.
    pub fn redis_config(&self) -> Option<RedisConfig> {
        let r = &self.redis;
        r.enabled.then(|| RedisConfig::from_settings(&r.url, &r.host, r.port, r.db, &r.password))
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

fn valid_server_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_legacy(var: &str, raw: &str, kind: Kind) -> Result<config::Value, ConfigError> {
    let v = raw.trim();
    let bad = |what: &str| ConfigError(format!("{var}: expected {what}, got '{raw}'"));
    Ok(match kind {
        Kind::Text => config::Value::from(raw.to_owned()),
        Kind::Port => {
            let p: u16 = v.parse().map_err(|_| bad("a port number 1-65535"))?;
            if p == 0 {
                return Err(bad("a port number 1-65535"));
            }
            config::Value::from(i64::from(p))
        }
        Kind::Seconds => {
            let s: f64 = v.parse().map_err(|_| bad("a number of seconds"))?;
            if !s.is_finite() || s < 0.0 {
                return Err(bad("a non-negative number of seconds"));
            }
            config::Value::from(s)
        }
        Kind::Int => config::Value::from(v.parse::<i64>().map_err(|_| bad("a whole number"))?),
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => config::Value::from(true),
            "0" | "false" | "no" | "off" => config::Value::from(false),
            _ => return Err(bad("true or false")),
        },
    })
}

/// Turns a config-crate error into a sentence that names the file and key.
fn describe(err: config::ConfigError, file: Option<&Path>) -> String {
    let text = err.to_string();
    match file {
        Some(f) if text.contains(&*f.to_string_lossy()) => format!("invalid configuration: {text}"),
        Some(f) => format!("invalid configuration (defaults, {}, environment): {text}", f.display()),
        None => format!("invalid configuration (defaults, environment): {text}"),
    }
}

/// Minimal TOML writer for the masked dump: tables of scalars, nested tables.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let owned: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = owned.clone();
        let structured = owned.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        Settings::load_with(None, &move |k| lookup.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()), structured)
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = load(&[]).unwrap();
        assert_eq!(s.http.bind, "127.0.0.1:8000");
        let d = &s.gns3.servers["default"];
        assert_eq!(d.name, "default");
        assert_eq!(d.port, 3080);
        assert_eq!(s.cache.ttl, 30.0);
        assert!(!s.redis.enabled);
    }

    #[test]
    fn legacy_variables_set_the_default_server() {
        let s = load(&[
            ("GNS3_HOST", "10.1.2.3"),
            ("GNS3_PORT", "3081"),
            ("GNS3_PASSWORD", "pw"),
            ("GNS3_TIMEOUT", "2.5"),
            ("GNS3_AUTO_MONITOR", "false"),
            ("GNS3_CACHE_TTL", "7"),
            ("REDIS_HOST", "127.0.0.1"),
            ("REDIS_PORT", "6380"),
        ])
        .unwrap();
        let d = &s.gns3.servers["default"];
        assert_eq!((d.host.as_str(), d.port, d.timeout), ("10.1.2.3", 3081, 2.5));
        assert_eq!(d.password.expose(), "pw");
        assert!(!s.gns3.auto_monitor);
        assert_eq!(s.cache.ttl, 7.0);
        assert!(s.redis.enabled);
        assert_eq!(s.redis.port, 6380);
    }

    #[test]
    fn structured_variables_win_over_legacy_ones() {
        let s = load(&[
            ("GNS3_PORT", "3081"),
            ("GNS3_CENTRAL__GNS3__SERVERS__DEFAULT__PORT", "3090"),
            ("GNS3_CENTRAL__HTTP__BIND", "127.0.0.1:9000"),
        ])
        .unwrap();
        assert_eq!(s.gns3.servers["default"].port, 3090);
        assert_eq!(s.http.bind, "127.0.0.1:9000");
    }

    #[test]
    fn bad_legacy_value_names_the_variable() {
        let e = load(&[("GNS3_PORT", "eighty")]).unwrap_err().to_string();
        assert!(e.contains("GNS3_PORT") && e.contains("eighty"), "{e}");
        let e = load(&[("GNS3_TIMEOUT", "-1")]).unwrap_err().to_string();
        assert!(e.contains("GNS3_TIMEOUT"), "{e}");
        let e = load(&[("GNS3_AUTO_MONITOR", "maybe")]).unwrap_err().to_string();
        assert!(e.contains("GNS3_AUTO_MONITOR"), "{e}");
    }

    #[test]
    fn bad_structured_value_names_the_key() {
        let e = load(&[("GNS3_CENTRAL__HTTP__BIND", "not-an-address")]).unwrap_err().to_string();
        assert!(e.contains("http.bind"), "{e}");
        let e = load(&[("GNS3_CENTRAL__GNS3__SERVERS__DEFAULT__PROTOCOL", "ftp")]).unwrap_err().to_string();
        assert!(e.contains("gns3.servers.default.protocol"), "{e}");
    }

    #[test]
    fn auth_settings_come_from_the_environment() {
        let s = load(&[
            ("GNS3_CENTRAL__AUTH__ALLOWED_ORIGINS", "https://a.example,https://b.example"),
            ("GNS3_CENTRAL__AUTH__METRICS_OPEN", "true"),
            ("GNS3_CENTRAL__AUTH__JWT__ALGORITHM", "HS256"),
            ("GNS3_CENTRAL__AUTH__JWT__SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(s.auth.allowed_origins, vec!["https://a.example", "https://b.example"]);
        assert!(s.auth.metrics_open);
        assert_eq!(s.auth.jwt.algorithm, "HS256");
        let e = load(&[("GNS3_CENTRAL__AUTH__JWT__ALGORITHM", "HS256")]).unwrap_err().to_string();
        assert!(e.contains("auth.jwt") && e.contains("32 bytes"), "{e}");
    }

    #[test]
    fn masked_dump_writes_tokens_as_an_array_of_tables() {
        let mut s = load(&[]).unwrap();
        s.auth.tokens.push(crate::auth::TokenSetting {
            name: "grafana".into(),
            role: "viewer".into(),
            hash: crate::auth::token::hash("t"),
            projects: vec![],
        });
        let dump = s.to_masked_toml();
        assert!(dump.contains("\n[[auth.tokens]]\n"), "{dump}");
        assert!(dump.contains("name = \"grafana\""), "{dump}");
    }

    #[test]
    fn masked_dump_hides_secrets() {
        let s = load(&[("GNS3_PASSWORD", "s3cret-value")]).unwrap();
        let dump = s.to_masked_toml();
        assert!(!dump.contains("s3cret-value"));
        assert!(dump.contains("[gns3.servers.default]"));
        assert!(dump.contains("password = \"***\""));
    }
}

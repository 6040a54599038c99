//! Loading the `Settings` in layers: `config/default.toml` (built into the binary), the
//! `--config` file, the original service's environment variables (`GNS3_HOST`...), then
//! `GNS3_CENTRAL__SECTION__KEY` variables. The result is checked once (`validate.rs`), and a
//! bad value is reported with the key or variable that holds it.

use ::config::{Config, Environment, File, FileFormat};
use std::path::Path;

use super::settings::{ConfigError, Settings, DEFAULT_TOML, ENV_PREFIX};

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
}

fn check_legacy(var: &str, raw: &str, kind: Kind) -> Result<::config::Value, ConfigError> {
    let v = raw.trim();
    let bad = |what: &str| ConfigError(format!("{var}: expected {what}, got '{raw}'"));
    Ok(match kind {
        Kind::Text => ::config::Value::from(raw.to_owned()),
        Kind::Port => {
            let p: u16 = v.parse().map_err(|_| bad("a port number 1-65535"))?;
            if p == 0 {
                return Err(bad("a port number 1-65535"));
            }
            ::config::Value::from(i64::from(p))
        }
        Kind::Seconds => {
            let s: f64 = v.parse().map_err(|_| bad("a number of seconds"))?;
            if !s.is_finite() || s < 0.0 {
                return Err(bad("a non-negative number of seconds"));
            }
            ::config::Value::from(s)
        }
        Kind::Int => ::config::Value::from(v.parse::<i64>().map_err(|_| bad("a whole number"))?),
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => ::config::Value::from(true),
            "0" | "false" | "no" | "off" => ::config::Value::from(false),
            _ => return Err(bad("true or false")),
        },
    })
}

/// Turns a config-crate error into a sentence that names the file and key.
fn describe(err: ::config::ConfigError, file: Option<&Path>) -> String {
    let text = err.to_string();
    match file {
        Some(f) if text.contains(&*f.to_string_lossy()) => format!("invalid configuration: {text}"),
        Some(f) => format!("invalid configuration (defaults, {}, environment): {text}", f.display()),
        None => format!("invalid configuration (defaults, environment): {text}"),
    }
}

/// Minimal TOML writer for the masked dump: tables of scalars, nested tables.
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

//! The checks that types alone cannot make, each naming the key at fault.

use super::settings::{ConfigError, Settings};

impl Settings {
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
        validate_operations(self)?;
        super::passthrough::PathRules::from_settings(&self.passthrough).map_err(ConfigError)?;
        // Bounded above too: the interval becomes a `Duration`, which a huge float cannot be.
        if !(self.gns3.monitor_interval.is_finite() && (0.5..=86_400.0).contains(&self.gns3.monitor_interval)) {
            return Err(ConfigError(format!(
                "gns3.monitor_interval: must be 0.5 to 86400 seconds, got {}",
                self.gns3.monitor_interval
            )));
        }
        if !(self.gns3.stream_silence_secs.is_finite() && (6.0..=86_400.0).contains(&self.gns3.stream_silence_secs)) {
            return Err(ConfigError(format!(
                "gns3.stream_silence_secs: must be 6 to 86400 seconds (GNS3 pings every 5 s), got {}",
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
}

fn valid_server_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks the operating settings of `s`.
fn validate_operations(s: &Settings) -> Result<(), ConfigError> {
    if s.log.rotation != "daily" && s.log.rotation != "size" {
        return Err(ConfigError(format!("log.rotation: must be 'daily' or 'size', got '{}'", s.log.rotation)));
    }
    if s.log.max_size_mb == 0 || s.log.max_files > 1000 {
        return Err(ConfigError("log.max_size_mb: must be at least 1; log.max_files: at most 1000".into()));
    }
    if s.audit.max_records == 0 || s.audit.max_records > 10_000_000 {
        return Err(ConfigError(format!("audit.max_records: must be 1-10000000, got {}", s.audit.max_records)));
    }
    if !(1..=65_536).contains(&s.audit.spool_max_mb) {
        return Err(ConfigError(format!("audit.spool_max_mb: must be 1-65536, got {}", s.audit.spool_max_mb)));
    }
    let sd = &s.shutdown;
    if !(sd.timeout_secs.is_finite() && sd.timeout_secs >= 1.0 && sd.timeout_secs <= 3600.0) || sd.flush_ms > 600_000 {
        return Err(ConfigError(format!(
            "shutdown: timeout_secs must be 1-3600 and flush_ms at most 600000, got {} and {}",
            sd.timeout_secs, sd.flush_ms
        )));
    }
    let sv = &s.supervision;
    if sv.storm_restarts == 0
        || !(sv.storm_window_secs.is_finite() && sv.storm_window_secs > 0.0 && sv.storm_window_secs <= 86400.0)
    {
        return Err(ConfigError(format!(
            "supervision: storm_restarts must be at least 1 and storm_window_secs 0-86400, got {} and {}",
            sv.storm_restarts, sv.storm_window_secs
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_operating_settings_name_their_key() {
        let ok = Settings::load_with(None, &|_| None, vec![]).expect("defaults");
        type Break = fn(&mut Settings);
        let cases: [(Break, &str); 8] = [
            (
                |s| {
                    s.redis.enabled = true;
                    s.redis.sentinels = vec!["127.0.0.1:26379".into()];
                },
                "redis.master_name",
            ),
            (
                |s| {
                    s.redis.enabled = true;
                    s.redis.master_name = "m".into();
                    s.redis.sentinels = vec!["not a host:port".into()];
                },
                "redis.sentinels",
            ),
            (|s| s.log.rotation = "weekly".into(), "log.rotation"),
            (|s| s.log.max_size_mb = 0, "log.max_size_mb"),
            (|s| s.audit.max_records = 0, "audit.max_records"),
            (|s| s.audit.spool_max_mb = 0, "audit.spool_max_mb"),
            (|s| s.shutdown.timeout_secs = 0.0, "shutdown"),
            (|s| s.supervision.storm_restarts = 0, "supervision"),
        ];
        for (break_it, key) in cases {
            let mut s = ok.clone();
            break_it(&mut s);
            let e = s.validate().expect_err(key).0;
            assert!(e.contains(key), "{e}");
        }
        assert!(ok.validate().is_ok());
    }
}

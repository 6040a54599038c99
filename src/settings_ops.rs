//! The settings of operating the service, beside `configuration.rs` (which holds the
//! `Settings` tree): log files and their rotation, supervision (restart storms), the audit
//! trail's store, and the shutdown bounds; with their checks (`validate`, called by
//! `Settings::validate`, naming the key at fault).

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::configuration::{ConfigError, LogSettings, Settings};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// Bound on the whole stop; past it the service exits anyway (with a warning).
    pub timeout_secs: f64,
    /// Time given to deliver the queued CRITICAL and HIGH events.
    pub flush_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { timeout_secs: 20.0, flush_ms: 2000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Without Redis: directory of `audit.jsonl`; empty: memory only (lost at exit).
    pub dir: String,
    /// Records kept in the Redis Stream (approximate cap) or held in memory for queries.
    pub max_records: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { dir: String::new(), max_records: 100_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSettings {
    /// Restarts of one actor within `storm_window_secs` that make a storm.
    pub storm_restarts: usize,
    pub storm_window_secs: f64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self { storm_restarts: 5, storm_window_secs: 60.0 }
    }
}

impl SupervisionSettings {
    pub fn policy(&self) -> gns3_central_actors::supervise::StormPolicy {
        gns3_central_actors::supervise::StormPolicy {
            restarts: self.storm_restarts,
            window: std::time::Duration::from_secs_f64(self.storm_window_secs),
        }
    }
}

pub(crate) fn default_rotation() -> String {
    "daily".into()
}
pub(crate) fn default_max_size_mb() -> u64 {
    100
}
pub(crate) fn default_max_files() -> usize {
    7
}

impl LogSettings {
    /// How the log files rotate.
    pub fn rotation(&self) -> crate::logfile::Rotation {
        match self.rotation.as_str() {
            "size" => crate::logfile::Rotation::Size(self.max_size_mb.saturating_mul(1024 * 1024)),
            _ => crate::logfile::Rotation::Daily,
        }
    }

    /// Opens `name` in `log.dir`, when a directory is configured.
    pub fn open_file(&self, name: &str) -> std::io::Result<Option<crate::logfile::RollingFile>> {
        if self.dir.trim().is_empty() {
            return Ok(None);
        }
        crate::logfile::RollingFile::open(Path::new(&self.dir), name, self.rotation(), self.max_files).map(Some)
    }
}

/// Checks the operating settings of `s`.
pub fn validate(s: &Settings) -> Result<(), ConfigError> {
    if s.log.rotation != "daily" && s.log.rotation != "size" {
        return Err(ConfigError(format!("log.rotation: must be 'daily' or 'size', got '{}'", s.log.rotation)));
    }
    if s.log.max_size_mb == 0 || s.log.max_files > 1000 {
        return Err(ConfigError("log.max_size_mb: must be at least 1; log.max_files: at most 1000".into()));
    }
    if s.audit.max_records == 0 || s.audit.max_records > 10_000_000 {
        return Err(ConfigError(format!("audit.max_records: must be 1-10000000, got {}", s.audit.max_records)));
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
        let cases: [(Break, &str); 5] = [
            (|s| s.log.rotation = "weekly".into(), "log.rotation"),
            (|s| s.log.max_size_mb = 0, "log.max_size_mb"),
            (|s| s.audit.max_records = 0, "audit.max_records"),
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

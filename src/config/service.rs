//! The settings of operating the service: supervision (restart storms), the audit
//! trail's store, and the shutdown bounds (checked in `validate.rs`).

use serde::{Deserialize, Serialize};

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
    /// With Redis: MiB of records the spool (`<dir>/audit-spool.jsonl`) holds while Redis
    /// is unreachable; when full, new records are refused (logged and counted).
    pub spool_max_mb: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { dir: String::new(), max_records: 100_000, spool_max_mb: 64 }
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

//! `[log]`: level, format and the log files (opened by `crate::observe::logfile`).

use serde::{Deserialize, Serialize};

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
    #[serde(default = "self::default_rotation")]
    pub rotation: String,
    #[serde(default = "self::default_max_size_mb")]
    pub max_size_mb: u64,
    /// Rotated parts kept per file.
    #[serde(default = "self::default_max_files")]
    pub max_files: usize,
}

fn default_rotation() -> String {
    "daily".into()
}
fn default_max_size_mb() -> u64 {
    100
}
fn default_max_files() -> usize {
    7
}

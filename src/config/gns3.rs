//! `[gns3]`: the GNS3 servers (each a connector's own `ConnectorConfig`) and how their
//! notifications are followed.

use gns3_central_actors::connector::ConnectorConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

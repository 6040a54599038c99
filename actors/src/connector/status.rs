//! The connector's report on itself, for `/status`, `/readyz` and the CLI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::gns3::ApiVersion;
use crate::metrics::HistogramSnapshot;

/// Calls to GNS3 of one operation (`GetCallStats`, `/metrics`): every attempt counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallStats {
    pub duration: HistogramSnapshot,
    /// Attempts that failed (transport failures and GNS3 error answers alike).
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CircuitStatus {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// How many times the circuit opened since start.
    pub times_opened: u64,
    /// While open: seconds until probes are let through.
    pub retry_after_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct LatencyStats {
    /// Duration of the last completed call to GNS3, milliseconds.
    pub last_ms: Option<f64>,
    /// Mean and maximum over the recent calls (`samples` of them).
    pub mean_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerStatus {
    pub name: String,
    pub url: String,
    pub connected: bool,
    pub gns3_version: Option<String>,
    pub api_version: Option<ApiVersion>,
    /// v3 only: whether a login token is held.
    pub authenticated: bool,
    pub circuit: CircuitStatus,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub connected_since: Option<DateTime<Utc>>,
    /// Times the connection was lost since start.
    pub disconnects: u64,
    /// Times the supervisor restarted the connector actor.
    pub actor_restarts: u64,
    pub latency: LatencyStats,
}

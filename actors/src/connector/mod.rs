//! `Gns3Connector`: one supervised actor per configured GNS3 server.
//! (Skeleton: implemented by the connector work item.)

pub mod backoff;
pub mod breaker;
pub mod config;
pub mod error;
pub mod messages;
pub mod status;

pub use config::{ApiVersionSetting, BreakerConfig, ConnectorConfig, ReconnectConfig, RetryConfig};
pub use error::ConnectorError;
pub use messages::*;
pub use status::{CircuitState, CircuitStatus, LatencyStats, ServerStatus};

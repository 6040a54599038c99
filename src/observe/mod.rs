//! Operating the service: logs (`logs.rs`, to stderr and rolling files), the events log
//! file, the figures that no actor owns (`metrics/`, rendered by `GET /metrics`, and the
//! process's memory, `memory.rs`), and the
//! audit trail (`audit/`).

pub mod audit;
pub mod events_log;
pub mod logfile;
pub mod logs;
pub mod memory;
pub mod metrics;

//! gns3-central's edge: configuration, CLI, HTTP routes and start-up. The engine (GNS3
//! client, connector actor) lives in the `gns3-central-actors` crate.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod configuration;
pub mod dashboard;
pub mod error;
pub mod events_cmd;
pub mod events_log;
pub mod logfile;
pub mod metrics;
pub mod module_store;
pub mod openapi;
pub mod routes;
pub mod runtime_config;
pub mod settings_ops;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod status_cmd;
pub mod telemetry;
pub mod ws;

pub use gns3_central_actors as actors;

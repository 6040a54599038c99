//! Integration tests: the real service started on port 0 (`app::spawn_app`), real
//! gns3-server v2 and v3 from `scripts/gns3-testbed` (`helpers::testbed`), a real Redis
//! when needed (`helpers::redis`).

mod app;
mod helpers;

mod audit;
mod auth;
mod bad_input;
mod cache_reads;
mod cache_restart;
mod churn;
mod cli;
mod cli_tail;
mod cluster;
mod config;
mod contract;
mod dashboard;
mod docs;
mod events;
mod grafana;
mod logs;
mod metrics;
mod modules;
mod openapi;
mod ops_cli;
mod outage;
mod packaging;
mod passthrough;
mod prompt;
mod real_gns3;
mod redis_outage;
mod shutdown;
mod supervision;
mod testbed_selftest;
mod ws;

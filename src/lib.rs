//! gns3-central's edge: configuration, CLI, the HTTP and WebSocket edges and start-up.
//! The engine (GNS3 client, connectors, dispatcher, cache, modules) lives in the
//! `gns3-central-actors` crate.
//!
//! Layers, each using only the ones before it: `error` and `config`; `auth` and `observe`;
//! `state` (what handlers share); `http`, `ws`, `dashboard`; `startup`; `cli`.
//! `simulate` (the GNS3 stand-in) stands apart. `tests/layers.rs` checks that no import
//! goes back up.

pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod http;
pub mod observe;
pub mod simulate;
pub mod startup;
pub mod state;
pub mod ws;

pub use gns3_central_actors as actors;

//! `serve --test-mode`: the in-process GNS3 stand-in, used as the `default` server.

use gns3_central_actors::connector::{ApiVersionSetting, ConnectorConfig};
use std::collections::BTreeMap;

use crate::config::Settings;
use crate::simulate::{Simulator, SimulatorOptions};

/// Starts the stand-in (two projects, light background activity) and points the
/// configuration's servers at it, replacing any others.
pub(super) async fn start_stand_in(settings: &mut Settings) -> std::io::Result<Simulator> {
    let sim = Simulator::start(SimulatorOptions {
        bind: "127.0.0.1:0".parse().map_err(std::io::Error::other)?,
        projects: 2,
        nodes: 6,
        links: true,
        activity: 0.2,
        seed: None,
    })
    .await?;
    tracing::info!(url = %sim.url(), "Test mode: using the built-in GNS3 stand-in.");
    let server = ConnectorConfig {
        name: "default".into(),
        host: "127.0.0.1".into(),
        port: sim.port(),
        api_version: ApiVersionSetting::V2,
        ..ConnectorConfig::default()
    };
    settings.gns3.servers = BTreeMap::from([("default".to_owned(), server)]);
    Ok(sim)
}

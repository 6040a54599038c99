//! Carrying out a live configuration change (`PATCH /api/v2/config`, SIGHUP): each change
//! goes to the actor that owns it (`crate::config::live` plans and checks them).

use gns3_central_actors::cache::SetTtl;
use gns3_central_actors::connector::{SetPollInterval, SetTimeout};
use gns3_central_actors::dispatcher::SetPriorities;
use std::time::Duration;

use super::AppState;
use crate::config::live::{ApplyChanges, Change};

impl ApplyChanges for AppState {
    /// Sends each change to its owner.
    async fn apply(&self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Timeout { server, secs } => {
                    if let Some(addr) = self.servers.get(server) {
                        let _ = addr.send(SetTimeout(Duration::from_secs_f64(*secs))).await;
                    }
                }
                Change::MonitorInterval(secs) => {
                    for addr in self.servers.values() {
                        let _ = addr.send(SetPollInterval(Duration::from_secs_f64(*secs))).await;
                    }
                }
                Change::CacheTtl(secs) => {
                    let _ = self.cache.send(SetTtl(*secs)).await;
                }
                Change::LogLevel(level) => {
                    crate::observe::logs::set_level(level);
                }
                Change::Priorities(map) => {
                    if let Some(d) = &self.dispatcher {
                        let _ = d.send(SetPriorities(map.clone())).await;
                    }
                }
            }
            tracing::info!(key = %c.key(), "Runtime configuration changed.");
        }
    }
}

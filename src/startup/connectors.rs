//! One supervised `Gns3Connector` per enabled GNS3 server, publishing into the dispatcher
//! when ingestion is on; with several instances on one Redis, each server is ingested only
//! while this instance holds its lease (the gate), and the `ClusterBridge` joins the
//! dispatcher to the shared log.

use actix::{Actor, Addr};
use gns3_central_actors::cache::{CacheActor, ServerConnected};
use gns3_central_actors::cluster::{ClusterBridge, WaitJoined};
use gns3_central_actors::connector::publish::{dispatcher_sink, gated};
use gns3_central_actors::connector::{EventsSetup, Gns3Connector, OnConnected};
use gns3_central_actors::supervise::{self, Supervision};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::events::{subscribe, Events};
use crate::config::Settings;

pub(super) struct Connectors {
    pub servers: BTreeMap<String, Addr<Gns3Connector>>,
    /// The server used when a request names none (`default` if configured, else the first).
    pub default_server: String,
    /// Whether the connectors follow GNS3's notifications (`gns3.auto_monitor`, not `--no-events`).
    pub ingest_enabled: bool,
    pub cluster: Option<Addr<ClusterBridge>>,
}

pub(super) async fn start(
    settings: &Settings,
    events: &Events,
    supervision: &Arc<Supervision>,
    cache: &Addr<CacheActor>,
) -> std::io::Result<Connectors> {
    let dispatcher = &events.dispatcher;
    let lane = &events.lane;
    let ingest_enabled = dispatcher.is_some() && settings.gns3.auto_monitor;
    // Several instances on one Redis: each server is ingested only while this instance
    // holds its lease (the gate); the bridge joins the dispatcher to the shared log.
    let clustered = dispatcher.is_some() && settings.cluster_enabled();
    let mut gates = Vec::new();
    let mut servers = BTreeMap::new();
    for cfg in settings.servers() {
        let cfg = cfg.clone();
        tracing::info!(server = %cfg.name, url = %cfg.base_url(), events = ingest_enabled,
            "Starting GNS3 connector.");
        let name = cfg.name.clone();
        // The cache serves this server's entries from before the start only once they are
        // dropped at the first connect (`CacheActor::holding`): told by the connector at once.
        let on_connected: OnConnected = {
            let (cache, server) = (cache.clone(), name.clone());
            Rc::new(move || cache.do_send(ServerConnected { server: server.clone() }))
        };
        let addr = match (&dispatcher, ingest_enabled) {
            (Some(d), true) => {
                let (d, lane, ingest) = (d.clone(), lane.clone(), settings.ingest_config());
                let gate = clustered.then(|| {
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    gates.push((name.clone(), tx));
                    rx
                });
                let addr = supervise::start(supervision, "gns3_connector", &name, move |_| {
                    let sink = dispatcher_sink(d, lane);
                    let setup = match &gate {
                        // Only the ingesting instance speaks for the server (its
                        // connection events included): no event is published twice.
                        Some(g) => EventsSetup::new(&cfg.name, ingest, gated(sink, g.clone())).with_gate(g.clone()),
                        None => EventsSetup::new(&cfg.name, ingest, sink),
                    };
                    Gns3Connector::with_events(cfg, setup).with_on_connected(on_connected)
                });
                if clustered {
                    if let Some(d) = dispatcher {
                        subscribe(d, &format!("connector:{name}"), addr.clone().recipient().into()).await?;
                    }
                }
                addr
            }
            _ => supervise::start(supervision, "gns3_connector", &name, move |_| {
                Gns3Connector::new(cfg).with_on_connected(on_connected)
            }),
        };
        servers.insert(name, addr);
    }
    let cluster = match (dispatcher, clustered, settings.redis_config()) {
        (Some(d), true, Some(redis)) => {
            let link = gns3_central_actors::redis_link::RedisLink::new(&redis).map_err(std::io::Error::other)?;
            let bridge = ClusterBridge::new(
                settings.cluster.clone(),
                link,
                &settings.cache.prefix,
                settings.events.history_size,
                d.clone(),
                gates,
            )
            .map_err(std::io::Error::other)?;
            tracing::info!(instance = %bridge.instance_id(), "Cluster mode: sharing events and leases through Redis.");
            let bridge = bridge.start();
            // Serve only once the shared history and epoch are loaded (bounded: with Redis
            // unreachable the instance numbers events locally, as it would anyway).
            let bound = settings.cluster.redis_timeout() * 2;
            if !bridge.send(WaitJoined(bound)).await.unwrap_or(false) {
                tracing::warn!(
                    waited_ms = bound.as_millis() as u64,
                    "Shared event log not joined yet; serving meanwhile."
                );
            }
            Some(bridge)
        }
        _ => None,
    };
    let default_server = if servers.contains_key("default") {
        "default".to_owned()
    } else {
        servers.keys().next().cloned().unwrap_or_else(|| "default".to_owned())
    };
    Ok(Connectors { servers, default_server, ingest_enabled, cluster })
}

//! The event dispatcher (absent with `--no-events`), on its own thread so a flood of
//! events never slows the HTTP workers or the connectors down; the cache and the events
//! log file follow it, and the connectors publish urgent events through its express lane.

use actix::{Actor, Addr};
use gns3_central_actors::cache::CacheActor;
use gns3_central_actors::dispatcher::{
    ExpressLane, GetExpressLane, PriorityDispatcher, Sink, Subscribe, SubscriptionFilter,
};

use crate::config::Settings;
use crate::observe::events_log::{EventLog, FILE_NAME};

/// The dispatcher and its express lane, when live events are on.
pub(super) struct Events {
    pub dispatcher: Option<Addr<PriorityDispatcher>>,
    pub lane: Option<ExpressLane>,
}

pub(super) async fn start(settings: &Settings, no_events: bool, cache: &Addr<CacheActor>) -> std::io::Result<Events> {
    if no_events {
        return Ok(Events { dispatcher: None, lane: None });
    }
    let d = PriorityDispatcher::new(settings.events.clone()).start_on_own_thread();
    // The cache follows every event, so topology reads are fresh without a TTL wait.
    subscribe(&d, "cache", cache.clone().recipient().into()).await?;
    if let Some(file) = settings.log.open_file(FILE_NAME)? {
        // One line per dispatched event in <log.dir>/realtime_events.log.
        subscribe(&d, "events-log", EventLog::new(file).start().recipient().into()).await?;
    }
    let lane = d.send(GetExpressLane).await.map_err(std::io::Error::other)?;
    Ok(Events { dispatcher: Some(d), lane: Some(lane) })
}

/// Subscribes `sink` to every event.
pub(super) async fn subscribe(d: &Addr<PriorityDispatcher>, label: &str, sink: Sink) -> std::io::Result<()> {
    d.send(Subscribe { label: label.into(), filter: SubscriptionFilter::all(), sink })
        .await
        .map_err(std::io::Error::other)?
        .map(|_| ())
        .map_err(std::io::Error::other)
}

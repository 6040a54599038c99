//! The cluster tests' harness: an "instance" is a dispatcher with a recording subscriber
//! and a cluster bridge on a real Redis (`redis.rs`), as the service wires them.

#![allow(dead_code)]

use actix::prelude::*;
use gns3_central_actors::cluster::{ClusterBridge, ClusterConfig, ClusterStatus, GetClusterStatus};
use gns3_central_actors::dispatcher::*;
use gns3_central_actors::events::{Event, EventKind, NewEvent, Source};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis_server::RedisServer;

pub const WAIT: Duration = Duration::from_secs(15);

pub fn event(kind: EventKind, n: u64) -> NewEvent {
    NewEvent::new(kind, "default", Source::Gns3, serde_json::json!({"n": n}))
}

pub async fn conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// Polls `probe` until it gives `Some`, or fails the test after `WAIT`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records what a subscriber receives.
pub struct Collector(Arc<Mutex<Vec<Arc<Event>>>>);
impl Actor for Collector {
    type Context = Context<Self>;
}
impl Handler<Deliver> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        self.0.lock().unwrap().push(msg.event);
    }
}

pub struct Instance {
    pub dispatcher: Addr<PriorityDispatcher>,
    pub bridge: Addr<ClusterBridge>,
    pub seen: Arc<Mutex<Vec<Arc<Event>>>>,
}

impl Instance {
    /// An instance that follows the shared log (waits until it does).
    pub async fn start(redis: &RedisServer, prefix: &str, id: &str) -> Instance {
        let me = Self::start_unjoined(redis, prefix, id).await;
        me.until_status("joined", |s| s.shared).await;
        me
    }

    /// An instance started without waiting for Redis (it may be down).
    pub async fn start_unjoined(redis: &RedisServer, prefix: &str, id: &str) -> Instance {
        let dispatcher = PriorityDispatcher::new(DispatcherConfig::default()).start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(seen.clone()).start();
        dispatcher
            .send(Subscribe {
                label: "t".into(),
                filter: SubscriptionFilter::all(),
                sink: collector.recipient().into(),
            })
            .await
            .unwrap()
            .unwrap();
        let cfg = ClusterConfig { instance_id: id.into(), redis_timeout_ms: 500, ..Default::default() };
        let info = redis::IntoConnectionInfo::into_connection_info(redis.url()).unwrap();
        let bridge = ClusterBridge::new(cfg, info, prefix, 1000, dispatcher.clone(), Vec::new()).unwrap().start();
        Instance { dispatcher, bridge, seen }
    }

    pub async fn until_status(&self, what: &str, pred: impl Fn(&ClusterStatus) -> bool) -> ClusterStatus {
        until(what, || {
            let b = self.bridge.clone();
            let pred = &pred;
            async move { b.send(GetClusterStatus).await.ok().filter(|s| pred(s)) }
        })
        .await
    }

    pub async fn publish(&self, e: NewEvent) {
        self.dispatcher.send(Publish(e)).await.unwrap().unwrap();
    }

    pub fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().iter().map(|e| (e.id.clone(), e.kind.clone())).collect()
    }

    pub async fn until_seen(&self, n: usize) -> Vec<(String, String)> {
        until("events to arrive", || async {
            let s = self.seen();
            (s.len() >= n).then_some(s)
        })
        .await
    }

    pub async fn history(&self) -> HistoryPage {
        self.dispatcher.send(GetHistory { since: None, limit: 100, filter: None }).await.unwrap().unwrap()
    }
}

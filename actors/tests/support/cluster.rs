//! The cluster tests' harness: an "instance" is a dispatcher with a recording subscriber
//! and a cluster bridge on a real Redis (`redis.rs`), as the service wires them.

#![allow(dead_code)]

use actix::prelude::*;
use gns3_central_actors::cache::RedisConfig;
use gns3_central_actors::cluster::{ClusterBridge, ClusterConfig, ClusterStatus, GetClusterStatus};
use gns3_central_actors::dispatcher::*;
use gns3_central_actors::events::{Event, EventKind, NewEvent, Source};
use gns3_central_actors::redis_link::RedisLink;
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
        let link = RedisLink::new(&RedisConfig::from_url(redis.url())).unwrap();
        Self::start_with_link(link, prefix, id).await
    }

    /// An instance reaching Redis through `link` (e.g. through Sentinel), not waited for.
    pub async fn start_with_link(link: RedisLink, prefix: &str, id: &str) -> Instance {
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
        let bridge = ClusterBridge::new(cfg, link, prefix, 1000, dispatcher.clone(), Vec::new()).unwrap().start();
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
        self.dispatcher
            .send(GetHistory { since: None, limit: 100, filter: None, wait_ahead: std::time::Duration::ZERO })
            .await
            .unwrap()
            .unwrap()
    }
}

/// Every event `0..n` (`data.n`) once, in order, in one epoch numbered without a gap;
/// returns the epoch.
pub fn once_in_order(inst: &Instance, n: u64) -> String {
    let seen = inst.seen.lock().unwrap().clone();
    let got: Vec<u64> = seen.iter().filter_map(|e| e.data["n"].as_u64()).collect();
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "every event once, in order");
    let epoch = seen[0].epoch.clone();
    assert!(seen.iter().all(|e| e.epoch == epoch), "one epoch: {:?}", seen.iter().map(|e| &e.id).collect::<Vec<_>>());
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + n).collect::<Vec<_>>(), "no gap in the numbering");
    epoch
}

/// Publishes events `from..to` on `inst`, one every `every`, from a task.
pub fn flow(inst: &Instance, from: u64, to: u64, every: Duration) -> tokio::task::JoinHandle<()> {
    let d = inst.dispatcher.clone();
    actix_rt::spawn(async move {
        for n in from..to {
            d.send(Publish(event(EventKind::NodeStarted, n))).await.expect("dispatcher").expect("accepted");
            actix_rt::time::sleep(every).await;
        }
    })
}

/// What the shared log in Redis at `url` holds: its epoch, last seq and the events' ids.
pub async fn log_in(url: &str, prefix: &str) -> (Option<String>, u64, Vec<String>) {
    use gns3_central_actors::cluster::log::{Keys, SharedLog};
    let log = SharedLog::new(Keys::new(prefix), "probe", 100_000, Duration::from_secs(2));
    let mut c = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let loaded = log.load(&mut c, 10_000).await.expect("the log loads");
    (loaded.epoch, loaded.last_seq, loaded.events.into_iter().map(|(e, _)| e.id).collect())
}

//! Shared event log benchmark (several instances on one Redis): two instances (dispatcher +
//! `ClusterBridge` each, one actix system) on a redis-server started here on a free
//! loopback port. Bounded: `CLUSTER_BENCH_EVENTS` events (default 20,000, max 200,000)
//! and `CLUSTER_BENCH_PROBES` single events (default 2,000, max 20,000).
//!
//! 1. Throughput: events published on instance A as fast as its dispatcher takes them;
//!    time until instance B's subscriber has received them all (numbered by the Lua
//!    script, through the Stream and Pub/Sub, injected and fanned out on B).
//! 2. Latency: one event at a time published on A; time from `Publish` to B's subscriber
//!    (p50 / p99 / max).
//!
//! cargo bench --bench cluster

#[path = "../actors/tests/support/redis.rs"]
mod redis_server;

use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gns3_central_actors::cluster::{ClusterBridge, ClusterConfig, GetClusterStatus};
use gns3_central_actors::dispatcher::{
    Deliver, DispatcherConfig, PriorityDispatcher, Publish, PublishBatch, Subscribe, SubscriptionFilter,
};
use gns3_central_actors::events::{EventKind, NewEvent, Source};

struct Counter {
    n: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<Instant>>>,
}
impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        // A fast consumer: the dispatcher's retries to a full mailbox are not measured here.
        ctx.set_mailbox_capacity(1024);
    }
}
impl Handler<Deliver> for Counter {
    type Result = ();
    fn handle(&mut self, _: Deliver, _: &mut Self::Context) {
        self.n.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(Instant::now());
    }
}

fn env_count(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).clamp(1, max)
}

async fn instance(url: &str, id: &str) -> (Addr<PriorityDispatcher>, Addr<ClusterBridge>) {
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start_on_own_thread();
    let cfg = ClusterConfig { instance_id: id.into(), ..Default::default() };
    let link = gns3_central_actors::redis_link::RedisLink::new(&gns3_central_actors::cache::RedisConfig::from_url(url))
        .expect("redis url");
    let b = ClusterBridge::new(cfg, link, "bench", 10_000, d.clone(), Vec::new()).expect("bridge").start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.send(GetClusterStatus).await.expect("bridge").shared {
        assert!(Instant::now() < deadline, "bridge {id} did not join the shared log");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    (d, b)
}

fn event(n: usize) -> NewEvent {
    NewEvent::new(EventKind::NodeUpdated, "default", Source::Gns3, serde_json::json!({"n": n, "name": "R1"}))
}

fn main() {
    let events = env_count("CLUSTER_BENCH_EVENTS", 20_000, 200_000);
    let probes = env_count("CLUSTER_BENCH_PROBES", 2_000, 20_000);
    let redis = redis_server::RedisServer::start();
    let url = redis.url();
    System::new().block_on(async move {
        let (a, _ba) = instance(&url, "a").await;
        let (b, _bb) = instance(&url, "b").await;
        let n = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new(None));
        let counter = Counter { n: n.clone(), last: last.clone() }.start();
        b.send(Subscribe { label: "bench".into(), filter: SubscriptionFilter::all(), sink: counter.recipient().into() })
            .await
            .expect("dispatcher")
            .expect("subscribe");

        // 1. Throughput.
        let start = Instant::now();
        let mut sent = 0;
        while sent < events {
            let chunk: Vec<NewEvent> = (sent..(sent + 500).min(events)).map(event).collect();
            let len = chunk.len();
            let out = a.send(PublishBatch(chunk)).await.expect("dispatcher");
            assert!(out.refused.is_empty() && out.shed == 0, "LOW events shed: raise the queue capacity");
            sent += len;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while n.load(Ordering::SeqCst) < events {
            assert!(Instant::now() < deadline, "only {} of {events} arrived", n.load(Ordering::SeqCst));
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        let took = last.lock().unwrap().expect("received").duration_since(start);
        println!(
            "cluster/throughput: {events} events A -> Redis -> B in {:.2} s = {:.0} events/s",
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64()
        );

        // 2. Latency, one event at a time.
        let mut lat = Vec::with_capacity(probes);
        for i in 0..probes {
            let before = n.load(Ordering::SeqCst);
            let t0 = Instant::now();
            a.send(Publish(event(i))).await.expect("dispatcher").expect("published");
            loop {
                if n.load(Ordering::SeqCst) > before {
                    break;
                }
                tokio::task::yield_now().await;
                assert!(t0.elapsed() < Duration::from_secs(10), "probe {i} lost");
            }
            lat.push(last.lock().unwrap().expect("received").duration_since(t0));
        }
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
        println!(
            "cluster/latency: {probes} single events, Publish on A -> B's subscriber: p50 {:.0} us, p99 {:.0} us, max {:.0} us",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        System::current().stop();
    });
}

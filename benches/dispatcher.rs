//! Dispatcher benchmarks (live-events issue, Performance):
//!
//! 1. `core/four_queues`: publish + dispatch through the four priority queues on one core
//!    (priority lookup, queueing, numbering, one serialization, history), no subscriber.
//!    Target: >= 1,000,000 events/s.
//! 2. `fanout/1000_subscribers`: one event handed to 1,000 matching subscribers by the
//!    core (filter match, shared `Arc` + `Bytes` per subscriber). Target: >= 200,000
//!    deliveries/s.
//! 3. After criterion, bounded load runs of the real actor (its own arbiter; subscriber
//!    actors and the flood on a second one; probes from the System thread): a LOW flood
//!    keeps the dispatcher busy while one CRITICAL probe is published per millisecond,
//!    through the express lane for the first half of the run and through `Publish` for
//!    the second. Prints the actix fan-out rate and the probes' latency percentiles:
//!    lane push -> handed to every subscriber (the dispatcher's own stats), -> the probe
//!    subscriber's handler (registered last, on another thread), and `Publish` sent ->
//!    its reply (a CRITICAL `Publish` is fanned out inside its handler). Target: p99 < 1 ms.
//!    Floods: `Publishers(32)`, 32 tasks each awaiting its `send` (as connectors do);
//!    `Bursts`, `PublishBatch`es of 64 pushed with `try_send` as fast as the mailbox takes
//!    them (fills the queues).
//!
//! cargo bench --bench dispatcher                 # all (about 40 s)
//! DISPATCHER_BENCH=latency cargo bench --bench dispatcher   # only the load run
//! DISPATCHER_LOAD_SECONDS=5 ...                  # length of each load run (max 60)
//! DISPATCHER_SINK=actor ...                      # subscribers get one `Deliver` message per
//!                                                # event instead of an `Inbox` (for comparison)

use actix::prelude::*;
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput};
use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use gns3_central_actors::dispatcher::{
    Deliver, DeliveryConfig, DispatcherConfig, DispatcherCore, EventSink, GetExpressLane, GetStats, Inbox, InboxReady,
    Origin, Priority, PriorityDispatcher, PriorityQueues, Publish, PublishBatch, SharedEvent, Sink, SinkStatus,
    Subscribe, SubscriptionFilter,
};
use gns3_central_actors::events::{Event, EventKind, NewEvent, Source};

/// A GNS3-like payload: a node's main fields.
fn node_event(kind: EventKind, project: Uuid, node: Uuid) -> NewEvent {
    let data = serde_json::json!({
        "name": "R1", "node_id": node, "node_type": "qemu", "status": "started",
        "console": 5000, "console_type": "telnet", "x": -120, "y": 45, "z": 1
    });
    NewEvent::new(kind, "default", Source::Gns3, data).project(Some(project)).node(Some(node))
}

/// 5 % CRITICAL, 25 % HIGH, 30 % NORMAL, 40 % LOW.
fn mixed_batch(n: usize) -> Vec<NewEvent> {
    let (p, node) = (Uuid::new_v4(), Uuid::new_v4());
    (0..n)
        .map(|i| {
            let kind = match i % 20 {
                0 => EventKind::ServerConnected,
                1..=5 => EventKind::NodeStarted,
                6..=11 => EventKind::LinkCreated,
                _ => EventKind::NodeUpdated,
            };
            node_event(kind, p, node)
        })
        .collect()
}

/// What a cheap in-process subscriber does: keep the shared event and bytes (dropping
/// the previous ones), count.
#[derive(Default)]
struct KeepLast {
    last: RefCell<Option<(Arc<Event>, Bytes)>>,
    count: Cell<u64>,
}

impl EventSink for KeepLast {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        *self.last.borrow_mut() = Some((entry.event.clone(), entry.json.clone()));
        self.count.set(self.count.get() + 1);
        SinkStatus::Delivered
    }
}

impl EventSink for &'static KeepLast {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        (*self).try_deliver(entry)
    }
}

fn core_cfg() -> DispatcherConfig {
    DispatcherConfig { queue_capacity: 100_000, ..Default::default() }
}

fn bench_core(c: &mut Criterion) {
    const BATCH: usize = 4096;
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut core: DispatcherCore<KeepLast> = DispatcherCore::new(core_cfg(), Origin::fresh());
    g.bench_function("four_queues", |b| {
        b.iter_batched(
            || mixed_batch(BATCH),
            |events| {
                let now = Instant::now();
                for e in events {
                    let _ = black_box(core.publish(e, now));
                }
                while core.drain(1024, None) > 0 {}
            },
            BatchSize::LargeInput,
        )
    });
    // The queues alone, for reference: push and pop of a small item.
    let mut q: PriorityQueues<u64> = PriorityQueues::new(100_000, 8);
    g.bench_function("queues_only", |b| {
        b.iter(|| {
            for i in 0..BATCH as u64 {
                q.push(Priority::ALL[(i % 4) as usize], i);
            }
            while let Some(x) = q.pop() {
                black_box(x);
            }
        })
    });
    g.finish();
}

fn bench_fanout(c: &mut Criterion) {
    const SUBSCRIBERS: usize = 1000;
    const EVENTS: usize = 16;
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements((SUBSCRIBERS * EVENTS) as u64));
    let mut core: DispatcherCore<&'static KeepLast> = DispatcherCore::new(core_cfg(), Origin::fresh());
    let sinks: Vec<&'static KeepLast> = (0..SUBSCRIBERS).map(|_| &*Box::leak(Box::default())).collect();
    // Dashboards' usual mix; every one of them matches node.started.
    let names: [&[&str]; 4] = [&["all"], &["node_status"], &["node.*"], &["node_status", "topology_changes"]];
    for (i, s) in sinks.iter().enumerate() {
        let f = SubscriptionFilter::new(names[i % 4].iter().copied(), []).unwrap();
        core.subscribe(format!("bench:{i}"), f, *s).unwrap();
    }
    g.bench_function("1000_subscribers", |b| {
        b.iter_batched(
            || {
                let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
                (0..EVENTS).map(|_| node_event(EventKind::NodeStarted, p, n)).collect::<Vec<_>>()
            },
            |events| {
                let now = Instant::now();
                for e in events {
                    let _ = core.publish(e, now);
                }
                while core.drain(1024, None) > 0 {}
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let delivered: u64 = sinks.iter().map(|s| s.count.get()).sum();
    assert!(delivered > 0);
}

// ---- 3. load run of the actor ----

/// How the load run's subscribers are reached: an `Inbox` each (as sessions and module
/// proxies are), or with `DISPATCHER_SINK=actor` one `Deliver` message per event.
fn use_inbox() -> bool {
    std::env::var("DISPATCHER_SINK").map_or(true, |v| v != "actor")
}

/// Starts `make`'s actor on `arbiter` (`None`: this thread) and returns its address and
/// the sink to subscribe.
fn start_subscriber<A, F>(arbiter: Option<&ArbiterHandle>, make: F) -> (Addr<A>, Sink)
where
    A: Actor<Context = Context<A>> + Handler<Deliver> + Handler<InboxReady>,
    F: FnOnce(Option<Arc<Inbox>>) -> A + Send + 'static,
{
    let inbox = use_inbox();
    let (tx, rx) = std::sync::mpsc::channel();
    let start = move |ctx: &mut Context<A>| {
        let i = inbox.then(|| Inbox::new(ctx.address().recipient()));
        let _ = tx.send(i.clone());
        make(i)
    };
    let addr = match arbiter {
        Some(a) => A::start_in_arbiter(a, start),
        None => A::create(start),
    };
    let sink = match rx.recv().ok().flatten() {
        Some(i) => Sink::from(i),
        None => Sink::from(addr.clone().recipient::<Deliver>()),
    };
    (addr, sink)
}

/// A flood subscriber: counts what it gets.
struct Counter {
    count: Arc<AtomicU64>,
    inbox: Option<Arc<Inbox>>,
}

impl Handler<InboxReady> for Counter {
    type Result = ();
    fn handle(&mut self, _: InboxReady, _: &mut Self::Context) {
        if let Some(i) = &self.inbox {
            for e in i.take() {
                black_box(e.json.len());
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Deliver> for Counter {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        black_box(msg.json.len());
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Receives the CRITICAL probes and measures their latency, per path (express lane or
/// `Publish`).
struct Probe {
    inbox: Option<Arc<Inbox>>,
    base: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
    via_lane: Arc<Vec<AtomicBool>>,
    latencies: Arc<Mutex<[Vec<u64>; 2]>>,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<InboxReady> for Probe {
    type Result = ();
    fn handle(&mut self, _: InboxReady, ctx: &mut Self::Context) {
        let Some(i) = self.inbox.clone() else { return };
        for e in i.take() {
            self.handle(Deliver { event: e.event.clone(), json: e.json.clone() }, ctx);
        }
    }
}

impl Handler<Deliver> for Probe {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        let now = self.base.elapsed().as_nanos() as u64;
        let Some(n) = msg.event.data.get("probe").and_then(|v| v.as_u64()) else { return };
        if let Some(sent) = self.sent_at.get(n as usize) {
            let sent = sent.load(Ordering::Acquire);
            let path = if self.via_lane.get(n as usize).is_some_and(|v| v.load(Ordering::Relaxed)) { 0 } else { 1 };
            if let Ok(mut l) = self.latencies.lock() {
                l[path].push(now.saturating_sub(sent));
            }
        }
    }
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1e6
}

#[derive(Clone, Copy, Debug)]
enum Flood {
    Publishers(usize),
    Bursts,
}

async fn load_run(subscribers: usize, flood: Flood, seconds: f64) {
    let cfg = DispatcherConfig {
        delivery: DeliveryConfig { max_retries: 5, ..Default::default() },
        max_subscribers: 10_000,
        ..Default::default()
    };
    let d = PriorityDispatcher::new(cfg).start_on_own_thread();
    let subs_arbiter = Arbiter::new();
    let received = Arc::new(AtomicU64::new(0));
    for i in 0..subscribers {
        let count = received.clone();
        let (_a, sink) = start_subscriber(Some(&subs_arbiter.handle()), move |inbox| Counter { count, inbox });
        let f = SubscriptionFilter::all();
        d.send(Subscribe { label: format!("load:{i}"), filter: f, sink }).await.unwrap().unwrap();
    }
    let max_probes = ((seconds * 1000.0) as usize).clamp(10, 60_000);
    let base = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..max_probes).map(|_| AtomicU64::new(0)).collect());
    let latencies = Arc::new(Mutex::new([Vec::with_capacity(max_probes), Vec::with_capacity(max_probes)]));
    let lane = d.send(GetExpressLane).await.unwrap();
    // On this (the System's) thread, which only sends the probes and sleeps otherwise.
    let via_lane: Arc<Vec<AtomicBool>> = Arc::new((0..max_probes).map(|_| AtomicBool::new(false)).collect());
    let (sa, vl, lt) = (sent_at.clone(), via_lane.clone(), latencies.clone());
    let (_probe, sink) =
        start_subscriber(None, move |inbox| Probe { inbox, base, sent_at: sa, via_lane: vl, latencies: lt });
    let f = SubscriptionFilter::new(["server_status"], []).unwrap();
    d.send(Subscribe { label: "probe".into(), filter: f, sink }).await.unwrap().unwrap();

    // The LOW flood, from the subscribers' arbiter (two busy threads on two cores: the
    // dispatcher and everything else).
    let stop = Arc::new(AtomicBool::new(false));
    let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
    let template = node_event(EventKind::NodeUpdated, p, n);
    match flood {
        // Publishers as connectors are: each waits for its `send` (32 in flight at most).
        Flood::Publishers(k) => {
            for _ in 0..k {
                let (d, stop, t) = (d.clone(), stop.clone(), template.clone());
                subs_arbiter.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = d.send(Publish(t.clone())).await;
                    }
                });
            }
        }
        // Bursts of 64 events per message, as fast as the mailbox takes them: the
        // queues stay full and LOW events are shed.
        Flood::Bursts => {
            let (d, stop) = (d.clone(), stop.clone());
            subs_arbiter.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..4 {
                        let _ = d.try_send(PublishBatch(vec![template.clone(); 64]));
                    }
                    tokio::task::yield_now().await;
                }
            });
        }
    }
    actix_rt::time::sleep(Duration::from_millis(300)).await; // saturate first
    let st0 = d.send(GetStats).await.unwrap();
    let t0 = Instant::now();
    // First half: probes through the express lane; second half: through `Publish`.
    let mut probes = 0;
    let mut replies = Vec::with_capacity(max_probes);
    let mut lane_stats = None;
    while probes < max_probes && t0.elapsed().as_secs_f64() < seconds {
        let lane_phase = t0.elapsed().as_secs_f64() < seconds / 2.0;
        if !lane_phase && lane_stats.is_none() {
            lane_stats = Some(d.send(GetStats).await.unwrap());
        }
        let e = NewEvent::new(
            EventKind::ServerDisconnected,
            "default",
            Source::Central,
            serde_json::json!({"probe": probes}),
        );
        let sent = base.elapsed().as_nanos() as u64;
        sent_at[probes].store(sent, Ordering::Release);
        if lane_phase {
            let _ = lane.publish(e);
            via_lane[probes].store(true, Ordering::Relaxed);
        } else {
            // A CRITICAL `Publish` is fanned out inside its handler: the reply comes once
            // every subscriber's mailbox has it.
            let _ = d.send(Publish(e)).await;
            replies.push((base.elapsed().as_nanos() as u64).saturating_sub(sent));
        }
        probes += 1;
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    replies.sort_unstable();
    let elapsed = t0.elapsed().as_secs_f64();
    let st1 = d.send(GetStats).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let [mut lat_lane, mut lat_publish] = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat_lane.sort_unstable();
    lat_publish.sort_unstable();
    let dispatched = st1.totals.dispatched - st0.totals.dispatched;
    let delivered = st1.totals.delivered - st0.totals.delivered;
    println!(
        "load run, {subscribers} subscribers (all events, {}) + 1 probe, flood {flood:?}, {elapsed:.1} s: \
         {:.0} events dispatched/s, {:.0} deliveries/s; LOW queued at end {}, shed {}, retried {}, dead-lettered {}",
        if use_inbox() { "inboxes" } else { "Deliver messages" },
        dispatched as f64 / elapsed,
        delivered as f64 / elapsed,
        st1.queues.low,
        st1.totals.shed - st0.totals.shed,
        st1.totals.retried - st0.totals.retried,
        st1.totals.dead_lettered - st0.totals.dead_lettered,
    );
    let line = |what: &str, v: &[u64]| {
        println!(
            "  CRITICAL {what}: {} probes, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            pct(v, 1.0)
        )
    };
    if let Some(c) = lane_stats.as_ref().and_then(|s| s.latency_by_priority.get("CRITICAL")) {
        println!(
            "  CRITICAL express lane -> handed to every subscriber (dispatcher's stats, {} probes): \
             p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            c.samples,
            c.p50_ms.unwrap_or(f64::NAN),
            c.p90_ms.unwrap_or(f64::NAN),
            c.p99_ms.unwrap_or(f64::NAN),
            c.max_ms.unwrap_or(f64::NAN)
        );
    }
    line("express lane -> probe's handler, another thread (registered last)", &lat_lane);
    line("Publish -> handed to every subscriber (send returns)", &replies);
    line("Publish -> probe's handler", &lat_publish);
    subs_arbiter.stop();
}

fn run_load(seconds: f64) {
    let sys = System::new();
    sys.block_on(async move {
        load_run(1000, Flood::Publishers(32), seconds).await;
        load_run(10, Flood::Bursts, seconds).await;
        load_run(1000, Flood::Bursts, seconds).await;
    });
}

fn main() {
    let mode = std::env::var("DISPATCHER_BENCH").unwrap_or_default();
    let benching = std::env::args().any(|a| a == "--bench");
    if mode != "latency" {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .sample_size(20)
            .configure_from_args();
        bench_core(&mut c);
        bench_fanout(&mut c);
        c.final_summary();
    }
    if mode != "criterion" {
        // `cargo test --benches` runs this once, briefly.
        let seconds = if benching {
            std::env::var("DISPATCHER_LOAD_SECONDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(5.0f64)
                .clamp(0.5, 60.0)
        } else {
            0.3
        };
        run_load(seconds);
    }
}

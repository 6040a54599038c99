//! Dispatcher benchmarks (live-events issue, Performance):
//!
//! 1. `core/four_queues`: publish + dispatch through the four priority queues on one core
//!    (priority lookup, queueing, numbering, one serialization, history), no subscriber.
//!    Target: >= 1,000,000 events/s.
//! 2. `fanout/1000_subscribers`: one event handed to 1,000 matching subscribers by the
//!    core (filter match, shared `Arc` + `Bytes` per subscriber). Target: >= 200,000
//!    deliveries/s.
//! 3. After criterion, a bounded load run of the real actor: a LOW flood keeps the
//!    dispatcher saturated while CRITICAL probes are published every millisecond; prints
//!    the probes' latency percentiles (from `Publish` sent to the probe subscriber's
//!    handler, the probe registered last) and the actix fan-out rate. Target: p99 < 1 ms.
//!
//! cargo bench --bench dispatcher                 # all (about 40 s)
//! DISPATCHER_BENCH=latency cargo bench --bench dispatcher   # only the load run
//! DISPATCHER_LOAD_SECONDS=5 ...                  # length of each load run (max 60)

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
    Deliver, DeliveryConfig, DispatcherConfig, DispatcherCore, EventSink, GetStats, Origin, SharedEvent,
    Priority, PriorityDispatcher, PriorityQueues, Publish, SinkStatus, Subscribe, SubscriptionFilter,
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

/// A flood subscriber: counts what it gets.
struct Counter {
    count: Arc<AtomicU64>,
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

/// Receives the CRITICAL probes and measures their latency.
struct Probe {
    base: Instant,
    sent_at: Arc<Vec<AtomicU64>>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<Deliver> for Probe {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        let now = self.base.elapsed().as_nanos() as u64;
        let Some(n) = msg.event.data.get("probe").and_then(|v| v.as_u64()) else { return };
        if let Some(sent) = self.sent_at.get(n as usize) {
            let sent = sent.load(Ordering::Acquire);
            if let Ok(mut l) = self.latencies.lock() {
                l.push(now.saturating_sub(sent));
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
    Spin,
}

async fn load_run(subscribers: usize, flood: Flood, seconds: f64) {
    let cfg = DispatcherConfig {
        delivery: DeliveryConfig { max_retries: 5, ..Default::default() },
        max_subscribers: 10_000,
        ..Default::default()
    };
    let d = PriorityDispatcher::new(cfg).start_on_own_thread();
    let subs_arbiter = Arbiter::new();
    let probe_arbiter = Arbiter::new();
    let received = Arc::new(AtomicU64::new(0));
    for i in 0..subscribers {
        let count = received.clone();
        let a = Counter::start_in_arbiter(&subs_arbiter.handle(), move |_| Counter { count });
        let f = SubscriptionFilter::all();
        d.send(Subscribe { label: format!("load:{i}"), filter: f, recipient: a.recipient() }).await.unwrap().unwrap();
    }
    let max_probes = ((seconds * 1000.0) as usize).clamp(10, 60_000);
    let base = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..max_probes).map(|_| AtomicU64::new(0)).collect());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(max_probes)));
    let probe = {
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        Probe::start_in_arbiter(&probe_arbiter.handle(), move |_| Probe { base, sent_at, latencies })
    };
    let f = SubscriptionFilter::new(["server_status"], []).unwrap();
    d.send(Subscribe { label: "probe".into(), filter: f, recipient: probe.recipient() }).await.unwrap().unwrap();

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
        // An abusive publisher keeping the dispatcher's mailbox full with `try_send`.
        Flood::Spin => {
            let (d, stop) = (d.clone(), stop.clone());
            subs_arbiter.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let _ = d.try_send(Publish(template.clone()));
                    }
                    tokio::task::yield_now().await;
                }
            });
        }
    }
    actix_rt::time::sleep(Duration::from_millis(300)).await; // saturate first
    let st0 = d.send(GetStats).await.unwrap();
    let t0 = Instant::now();
    let mut probes = 0;
    while probes < max_probes && t0.elapsed().as_secs_f64() < seconds {
        let e = NewEvent::new(EventKind::ServerDisconnected, "default", Source::Central, serde_json::json!({"probe": probes}));
        sent_at[probes].store(base.elapsed().as_nanos() as u64, Ordering::Release);
        let _ = d.send(Publish(e)).await;
        probes += 1;
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let st1 = d.send(GetStats).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_unstable();
    let dispatched = st1.totals.dispatched - st0.totals.dispatched;
    let delivered = st1.totals.delivered - st0.totals.delivered;
    println!(
        "load run, {subscribers} subscribers (all events) + 1 probe, flood {flood:?}, {elapsed:.1} s: \
         {:.0} events dispatched/s, {:.0} deliveries/s; LOW queued {}, shed {}, retried {}, dead-lettered {}",
        dispatched as f64 / elapsed,
        delivered as f64 / elapsed,
        st1.queues.low,
        st1.totals.shed - st0.totals.shed,
        st1.totals.retried - st0.totals.retried,
        st1.totals.dead_lettered - st0.totals.dead_lettered,
    );
    println!(
        "  CRITICAL probes {}/{probes} received; publish -> probe handler: p50 {:.3} ms, p90 {:.3} ms, \
         p99 {:.3} ms, max {:.3} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
    );
    let c = &st1.latency_by_priority["CRITICAL"];
    println!(
        "  dispatcher's own CRITICAL latency (accepted -> handed to every subscriber): p50 {:.3} ms, p99 {:.3} ms",
        c.p50_ms.unwrap_or(f64::NAN),
        c.p99_ms.unwrap_or(f64::NAN)
    );
    subs_arbiter.stop();
    probe_arbiter.stop();
}

fn run_load(seconds: f64) {
    let sys = System::new();
    sys.block_on(async move {
        load_run(1000, Flood::Publishers(32), seconds).await;
        load_run(10, Flood::Publishers(32), seconds).await;
        load_run(1000, Flood::Spin, seconds).await;
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
            std::env::var("DISPATCHER_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0f64).clamp(0.5, 60.0)
        } else {
            0.3
        };
        run_load(seconds);
    }
}

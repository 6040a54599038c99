//! The `PriorityDispatcher` actor with real actix recipients: turns, the replay seam,
//! retries of full mailboxes, closed recipients.

use actix::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::events::{EventKind, NewEvent, Source};

/// Records the seqs it receives; optionally blocks its thread on the first one (a stuck
/// subscriber, so its mailbox fills).
pub(super) struct Collector {
    seen: Arc<Mutex<Vec<u64>>>,
    mailbox: usize,
    stall_first: Option<Duration>,
}

impl Actor for Collector {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox);
    }
}

impl Handler<Deliver> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        if let Some(d) = self.stall_first.take() {
            std::thread::sleep(d);
        }
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&msg.json).unwrap()["seq"], msg.event.seq);
        self.seen.lock().unwrap().push(msg.event.seq);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct StopNow;

impl Handler<StopNow> for Collector {
    type Result = ();
    fn handle(&mut self, _: StopNow, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

pub(super) fn collector(mailbox: usize) -> (Addr<Collector>, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let addr = Collector { seen: seen.clone(), mailbox, stall_first: None }.start();
    (addr, seen)
}

pub(super) fn ev(kind: EventKind) -> NewEvent {
    NewEvent::new(kind, "default", Source::Gns3, serde_json::json!({"x": 1}))
}

/// Waits (bounded) until `done` holds.
pub(super) async fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_rt::test]
async fn critical_overtakes_the_low_events_queued_before_it() {
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start();
    let (c, seen) = collector(100_000);
    let filter = SubscriptionFilter::new(["server_status"], []).unwrap();
    d.send(Subscribe { label: "crit".into(), filter, sink: c.recipient().into() }).await.unwrap().unwrap();
    // All in the mailbox before the dispatcher runs (it shares this thread). Reading
    // them, it also dispatches some LOW events in turns of its own.
    for _ in 0..20_000 {
        d.do_send(Publish(ev(EventKind::NodeUpdated)));
    }
    d.do_send(Publish(ev(EventKind::ServerDisconnected)));
    wait_for(|| !seen.lock().unwrap().is_empty(), "the CRITICAL event").await;
    let crit_seq = seen.lock().unwrap()[0];
    let st = d.send(GetStats).await.unwrap();
    assert!(crit_seq < 20_000, "the CRITICAL event went ahead of queued LOW ones (seq {crit_seq})");
    assert!(st.last_seq > crit_seq || st.queues.low > 0, "LOW events were still waiting behind it");
    assert_eq!(st.by_type["server.disconnected"].delivered, 1);
}

#[actix_rt::test]
async fn subscribe_with_replay_has_no_gap_and_no_duplicate_at_the_seam() {
    const N: u64 = 3000;
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start_on_own_thread();
    for _ in 0..N / 2 {
        d.send(Publish(ev(EventKind::NodeStarted))).await.unwrap().unwrap();
    }
    let epoch = d.send(GetPosition).await.unwrap().epoch;
    // The rest is published while the subscription is made.
    let publisher = {
        let d = d.clone();
        actix_rt::spawn(async move {
            for _ in N / 2..N {
                d.send(Publish(ev(EventKind::NodeStopped))).await.unwrap().unwrap();
            }
        })
    };
    actix_rt::time::sleep(Duration::from_micros(300)).await;
    let (c, seen) = collector(100_000);
    let sub = d
        .send(SubscribeWithReplay {
            label: "ws:test".into(),
            filter: SubscriptionFilter::all(),
            sink: c.recipient().into(),
            since: Some(format!("{epoch}-0")),
            max_replay: N as usize,
            wait_ahead: Duration::ZERO,
        })
        .await
        .unwrap()
        .unwrap();
    publisher.await.unwrap();
    let replay: Vec<u64> = sub.replay.unwrap().iter().map(HistoryEntry::seq).collect();
    let expected_live = N - sub.latest_seq;
    wait_for(|| seen.lock().unwrap().len() as u64 >= expected_live, "live events").await;
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    let live = seen.lock().unwrap().clone();
    assert_eq!(replay, (1..=sub.latest_seq).collect::<Vec<_>>(), "replay is everything up to the seam");
    assert_eq!(live, (sub.latest_seq + 1..=N).collect::<Vec<_>>(), "live is everything after it, once");
    // `send` returns once an event is queued, not dispatched: the seam lies anywhere.
    assert!(sub.latest_seq > 0);
}

#[actix_rt::test]
async fn a_stuck_subscriber_gets_retries_then_dead_letters() {
    let cfg = DispatcherConfig {
        delivery: DeliveryConfig { max_retries: 2, initial_backoff_ms: 5, max_backoff_ms: 20, ..Default::default() },
        ..Default::default()
    };
    let d = PriorityDispatcher::new(cfg).start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stuck = {
        let seen = seen.clone();
        Collector::start_in_arbiter(&Arbiter::new().handle(), move |_| Collector {
            seen,
            mailbox: 1,
            stall_first: Some(Duration::from_millis(400)),
        })
    };
    d.send(Subscribe { label: "slow".into(), filter: SubscriptionFilter::all(), sink: stuck.recipient().into() })
        .await
        .unwrap()
        .unwrap();
    for _ in 0..6 {
        d.send(Publish(ev(EventKind::NodeStarted))).await.unwrap().unwrap();
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    // Every event ends delivered or dead-lettered, nothing left waiting.
    let deadline = Instant::now() + Duration::from_secs(5);
    let st = loop {
        let st = d.send(GetStats).await.unwrap();
        let settled = seen.lock().unwrap().len() as u64 + st.totals.dead_lettered == 6;
        if (st.pending_retries == 0 && settled) || Instant::now() > deadline {
            break st;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(st.pending_retries, 0);
    let dead = d.send(GetDeadLetters { limit: 100 }).await.unwrap();
    assert!(!dead.is_empty(), "events that failed every retry are dead letters");
    assert!(dead.iter().all(|l| &*l.subscriber_label == "slow" && l.attempts == 3));
    assert!(st.totals.retried >= 2);
    assert_eq!(st.totals.dead_lettered, dead.len() as u64);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len() as u64 + st.totals.dead_lettered, 6, "each event delivered or dead-lettered");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "delivered in order: {got:?}");
}

#[actix_rt::test]
async fn a_closed_recipient_is_unsubscribed() {
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start();
    let (c, _) = collector(16);
    d.send(Subscribe { label: "gone".into(), filter: SubscriptionFilter::all(), sink: c.clone().recipient().into() })
        .await
        .unwrap()
        .unwrap();
    c.send(StopNow).await.unwrap();
    drop(c);
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    d.send(Publish(ev(EventKind::NodeStarted))).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = d.send(GetStats).await.unwrap();
        if st.subscribers == 0 {
            assert_eq!(st.last_seq, 1);
            break;
        }
        assert!(Instant::now() < deadline, "the closed subscriber was not removed");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(d.send(GetDeadLetters { limit: 10 }).await.unwrap().is_empty());
}

#[actix_rt::test]
async fn backpressure_reaches_the_publisher() {
    // A long turn budget: no turn runs between these publishes, so the queues stay full.
    let cfg = DispatcherConfig { queue_capacity: 2, turn_budget_us: 1_000_000, ..Default::default() };
    let d = PriorityDispatcher::new(cfg).start();
    // Sent without awaiting: all three are handled before any turn runs.
    let r1 = d.send(Publish(ev(EventKind::NodeStarted)));
    let r2 = d.send(Publish(ev(EventKind::NodeStopped)));
    let r3 = d.send(Publish(ev(EventKind::NodeSuspended)));
    assert!(r1.await.unwrap().is_ok() && r2.await.unwrap().is_ok());
    assert!(matches!(r3.await.unwrap(), Err(DispatchError::Backpressure { priority: Priority::High, .. })));
    let st = d.send(GetStats).await.unwrap();
    assert_eq!(st.by_priority["HIGH"].refused, 1);
}

#[actix_rt::test]
async fn a_batch_hands_back_what_backpressure_refused() {
    // A long turn budget: no turn runs between these publishes, so the queues stay full.
    let cfg = DispatcherConfig { queue_capacity: 2, turn_budget_us: 1_000_000, ..Default::default() };
    let d = PriorityDispatcher::new(cfg).start();
    let mut bad = ev(EventKind::NodeStarted);
    bad.kind = "no dots".into();
    let batch = vec![
        ev(EventKind::NodeStarted),
        ev(EventKind::NodeStopped),
        ev(EventKind::NodeUpdated),
        ev(EventKind::NodeSuspended),
        bad,
    ];
    let out = d.send(PublishBatch(batch)).await.unwrap();
    assert_eq!((out.queued, out.shed, out.invalid), (2, 1, 1));
    assert_eq!(out.refused.len(), 1);
    assert_eq!(out.refused[0].kind, "node.suspended");
    assert!(out.retry_after.is_some());
}

#[actix_rt::test]
async fn the_express_lane_goes_past_a_full_mailbox() {
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start();
    let lane = d.send(GetExpressLane).await.unwrap();
    let (c, seen) = collector(100_000);
    let filter = SubscriptionFilter::new(["server_status"], []).unwrap();
    d.send(Subscribe { label: "crit".into(), filter, sink: c.recipient().into() }).await.unwrap().unwrap();
    for _ in 0..20_000 {
        d.do_send(Publish(ev(EventKind::NodeUpdated)));
    }
    lane.publish(ev(EventKind::ServerDisconnected)).unwrap();
    wait_for(|| !seen.lock().unwrap().is_empty(), "the CRITICAL event").await;
    assert_eq!(seen.lock().unwrap()[0], 1, "taken at the first publish handled, ahead of 20,000");
    let mut bad = ev(EventKind::ServerConnected);
    bad.kind = "bad type".into();
    assert!(matches!(lane.publish(bad), Err(DispatchError::InvalidEvent(_))));
}

#[actix_rt::test]
async fn the_express_lane_wakes_an_idle_dispatcher() {
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start_on_own_thread();
    let lane = d.send(GetExpressLane).await.unwrap();
    let (c, seen) = collector(16);
    d.send(Subscribe { label: "all".into(), filter: SubscriptionFilter::all(), sink: c.recipient().into() })
        .await
        .unwrap()
        .unwrap();
    for i in 1..=3u64 {
        lane.publish(ev(EventKind::CircuitClosed)).unwrap();
        wait_for(|| seen.lock().unwrap().len() as u64 == i, "the event").await;
    }
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
}

/// Takes its inbox on every `InboxReady`, on its own thread, and records the seqs.
struct InboxCollector {
    inbox: Arc<Inbox>,
    seen: Arc<Mutex<Vec<u64>>>,
    wakes: Arc<std::sync::atomic::AtomicU64>,
}

impl Actor for InboxCollector {
    type Context = Context<Self>;
}

impl Handler<InboxReady> for InboxCollector {
    type Result = ();
    fn handle(&mut self, _: InboxReady, _: &mut Self::Context) {
        self.wakes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batch = self.inbox.take();
        let mut seen = self.seen.lock().unwrap();
        for e in batch {
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&e.json).unwrap()["seq"], e.seq());
            seen.push(e.seq());
        }
    }
}

#[actix_rt::test]
async fn an_inbox_on_another_thread_gets_every_event_once_in_order_with_few_wake_ups() {
    // 20,000 events in batches, while the collector takes them on its thread: every push
    // races with a take, which is what the wake-up protocol must survive.
    const N: u64 = 20_000;
    let d = PriorityDispatcher::new(DispatcherConfig::default()).start_on_own_thread();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let wakes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let arbiter = Arbiter::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let (s, w) = (seen.clone(), wakes.clone());
    let _c = InboxCollector::start_in_arbiter(&arbiter.handle(), move |ctx| {
        // Room for the whole run: this test is about the wake-ups, not about a full inbox.
        let inbox = Inbox::with_capacity(ctx.address().recipient(), N as usize);
        tx.send(inbox.clone()).unwrap();
        InboxCollector { inbox, seen: s, wakes: w }
    });
    let inbox = actix_rt::task::spawn_blocking(move || rx.recv().unwrap()).await.unwrap();
    d.send(Subscribe { label: "inbox".into(), filter: SubscriptionFilter::all(), sink: inbox.into() })
        .await
        .unwrap()
        .unwrap();
    for _ in 0..(N / 100) {
        let out = d.send(PublishBatch((0..100).map(|_| ev(EventKind::NodeUpdated)).collect())).await.unwrap();
        assert_eq!(out.queued, 100);
    }
    wait_for(|| seen.lock().unwrap().len() as u64 >= N, "every event through the inbox").await;
    {
        let got = seen.lock().unwrap();
        let first_wrong = got.iter().zip(1..).find(|(s, want)| **s != *want);
        assert_eq!((got.len() as u64, first_wrong), (N, None), "each event once, in seq order");
    }
    let stats = d.send(GetStats).await.unwrap();
    assert_eq!((stats.totals.delivered, stats.dead_letters_total), (N, 0));
    let w = wakes.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..N).contains(&w), "one wake-up per batch taken, not per event ({w})");
    // Many short bursts, each waited for: the last event of a burst must never be left in
    // the inbox without a wake-up on its way.
    for round in 1..=300u64 {
        let out = d.send(PublishBatch((0..3).map(|_| ev(EventKind::NodeUpdated)).collect())).await.unwrap();
        assert_eq!(out.queued, 3);
        let want = N + 3 * round;
        wait_for(|| seen.lock().unwrap().last().copied() == Some(want), "the end of a short burst").await;
    }
    assert_eq!(seen.lock().unwrap().len() as u64, N + 900);
    arbiter.stop();
}

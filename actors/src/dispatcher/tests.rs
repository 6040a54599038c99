//! Behaviour of the dispatcher core, without actix: ordering, shedding, backpressure,
//! fan-out, filters, replay, retries and dead letters.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::*;
use crate::events::{Event, EventKind, NewEvent, Source};

#[derive(Clone)]
struct TestSink {
    inbox: Rc<RefCell<Vec<SharedEvent>>>,
    mode: Rc<Cell<SinkStatus>>,
}

impl TestSink {
    fn new() -> Self {
        Self { inbox: Rc::default(), mode: Rc::new(Cell::new(SinkStatus::Delivered)) }
    }
    fn seqs(&self) -> Vec<u64> {
        self.inbox.borrow().iter().map(SharedEvent::seq).collect()
    }
    fn kinds(&self) -> Vec<String> {
        self.inbox.borrow().iter().map(|e| e.event.kind.clone()).collect()
    }
}

impl EventSink for TestSink {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        let mode = self.mode.get();
        if mode == SinkStatus::Delivered {
            self.inbox.borrow_mut().push(entry.clone());
        }
        mode
    }
}

fn core_with(cfg: DispatcherConfig) -> DispatcherCore<TestSink> {
    DispatcherCore::new(cfg, Origin::resume("ep", 0).unwrap())
}

fn core(capacity: usize, burst: u32) -> DispatcherCore<TestSink> {
    core_with(DispatcherConfig { queue_capacity: capacity, starvation_burst: burst, ..Default::default() })
}

fn ev(kind: EventKind) -> NewEvent {
    NewEvent::new(kind, "default", Source::Gns3, serde_json::json!({}))
}

fn all_sink(c: &mut DispatcherCore<TestSink>) -> TestSink {
    let s = TestSink::new();
    c.subscribe("test".into(), SubscriptionFilter::all(), s.clone()).unwrap();
    s
}

fn drain_all(c: &mut DispatcherCore<TestSink>) {
    while c.drain(1000, None) > 0 {}
}

#[test]
fn dispatches_by_priority_and_numbers_in_delivery_order() {
    let mut c = core(100, 0);
    let s = all_sink(&mut c);
    let now = Instant::now();
    for k in [EventKind::NodeUpdated, EventKind::LinkCreated, EventKind::NodeStarted, EventKind::ServerDisconnected] {
        assert!(c.publish(ev(k), now).is_ok());
    }
    drain_all(&mut c);
    assert_eq!(s.kinds(), ["server.disconnected", "node.started", "link.created", "node.updated"]);
    assert_eq!(s.seqs(), [1, 2, 3, 4], "seq is given at dispatch: history order is delivery order");
    let prios: Vec<Priority> = s.inbox.borrow().iter().map(|e| e.event.priority).collect();
    assert_eq!(prios, Priority::ALL);
    let page = c.history_page(None, 10, None).unwrap();
    assert_eq!(page.entries.iter().map(HistoryEntry::seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(s.inbox.borrow()[0].event.id, "ep-1");
}

#[test]
fn starvation_guard_lets_low_through_a_high_flood() {
    let mut c = core(1000, 3);
    let s = all_sink(&mut c);
    let now = Instant::now();
    for _ in 0..100 {
        c.publish(ev(EventKind::NodeStarted), now).unwrap();
    }
    c.publish(ev(EventKind::NodeUpdated), now).unwrap();
    c.drain(4, None);
    assert_eq!(s.kinds(), ["node.started", "node.started", "node.started", "node.updated"]);
}

#[test]
fn sheds_oldest_low_then_normal_and_counts_per_type() {
    let mut c = core(3, 0);
    let now = Instant::now();
    c.publish(ev(EventKind::NodeUpdated), now).unwrap();
    c.publish(ev(EventKind::LinkUpdated), now).unwrap();
    c.publish(ev(EventKind::LinkCreated), now).unwrap();
    assert_eq!(
        c.publish(ev(EventKind::NodeStarted), now),
        Ok(Published::QueuedShedding { priority: Priority::High, shed: Priority::Low })
    );
    assert_eq!(
        c.publish(ev(EventKind::ServerConnected), now),
        Ok(Published::QueuedShedding { priority: Priority::Critical, shed: Priority::Low })
    );
    assert_eq!(
        c.publish(ev(EventKind::NodeStopped), now),
        Ok(Published::QueuedShedding { priority: Priority::High, shed: Priority::Normal })
    );
    // Full of HIGH/CRITICAL: a LOW is shed on arrival, not an error for its publisher.
    assert_eq!(c.publish(ev(EventKind::ProjectUpdated), now), Ok(Published::Shed(Priority::Low)));
    let st = c.stats();
    assert_eq!(st.by_type["node.updated"].shed, 1);
    assert_eq!(st.by_type["link.updated"].shed, 1);
    assert_eq!(st.by_type["link.created"].shed, 1);
    assert_eq!(st.by_type["project.updated"].shed, 1);
    assert_eq!(st.by_type["project.updated"].published, 0);
    assert_eq!(st.by_priority["LOW"].shed, 3);
    assert_eq!(st.by_priority["NORMAL"].shed, 1);
    assert_eq!(st.totals.published, 6);
    assert_eq!((st.queues.critical, st.queues.high, st.queues.total), (1, 2, 3));
}

#[test]
fn high_is_refused_with_backpressure_when_nothing_can_be_shed() {
    let mut c = core(2, 0);
    let now = Instant::now();
    c.publish(ev(EventKind::NodeStarted), now).unwrap();
    c.publish(ev(EventKind::CircuitOpened), now).unwrap();
    let err = c.publish(ev(EventKind::NodeStopped), now).unwrap_err();
    assert!(matches!(err, DispatchError::Backpressure { priority: Priority::High, .. }), "{err:?}");
    assert!(err.retry_after().is_some());
    assert!(matches!(
        c.publish(ev(EventKind::ServerDisconnected), now),
        Err(DispatchError::Backpressure { priority: Priority::Critical, .. })
    ));
    let st = c.stats();
    assert_eq!(st.by_type["node.stopped"].refused, 1);
    assert_eq!(st.by_priority["CRITICAL"].refused, 1);
    // Once drained, the publisher's retry goes through.
    drain_all(&mut c);
    assert!(c.publish(ev(EventKind::NodeStopped), now).is_ok());
}

#[test]
fn no_critical_event_is_lost_under_a_low_flood() {
    let mut c = core(100, 8);
    let crit = TestSink::new();
    let server = SubscriptionFilter::new(["server_status"], []).unwrap();
    c.subscribe("crit".into(), server, crit.clone()).unwrap();
    let now = Instant::now();
    let mut published = 0;
    for round in 0..2000 {
        for _ in 0..10 {
            c.publish(ev(EventKind::NodeUpdated), now).unwrap();
        }
        if round % 7 == 0 {
            c.publish(ev(EventKind::ServerDisconnected), now).expect("CRITICAL accepted while LOW can be shed");
            published += 1;
        }
        c.drain(5, None);
    }
    drain_all(&mut c);
    assert_eq!(crit.seqs().len(), published);
    let st = c.stats();
    assert_eq!(st.by_type["server.disconnected"].delivered, published as u64);
    assert!(st.by_type["node.updated"].shed > 9_000);
}

#[test]
fn every_subscriber_gets_the_same_bytes_and_event() {
    let mut c = core(10, 0);
    let sinks: Vec<TestSink> = (0..3).map(|_| all_sink(&mut c)).collect();
    c.publish(ev(EventKind::NodeCreated), Instant::now()).unwrap();
    c.drain(10, None);
    let first = sinks[0].inbox.borrow()[0].clone();
    for s in &sinks {
        let got = &s.inbox.borrow()[0];
        assert_eq!(got.json.as_ptr(), first.json.as_ptr(), "one serialization shared");
        assert!(Arc::ptr_eq(&got.event, &first.event));
    }
    let page = c.history_page(None, 1, None).unwrap();
    assert_eq!(page.entries[0].json.as_ptr(), first.json.as_ptr(), "history keeps the same bytes");
    assert_eq!(c.stats().by_type["node.created"].delivered, 3);
}

#[test]
fn filters_route_by_group_glob_type_and_project() {
    let mut c = core(100, 0);
    let (pa, pb) = (Uuid::new_v4(), Uuid::new_v4());
    let mut sub = |names: &[&str], projects: Vec<Uuid>| {
        let s = TestSink::new();
        let f = SubscriptionFilter::new(names.iter().copied(), projects).unwrap();
        c.subscribe("t".into(), f, s.clone()).unwrap();
        s
    };
    let status = sub(&["node_status"], vec![]);
    let deleted = sub(&["*.deleted"], vec![]);
    let only_a = sub(&["all"], vec![pa]);
    let alerts = sub(&["alert.raised"], vec![]);
    let now = Instant::now();
    c.publish(ev(EventKind::NodeStarted).project(Some(pa)), now).unwrap();
    c.publish(ev(EventKind::NodeDeleted).project(Some(pb)), now).unwrap();
    c.publish(ev(EventKind::ServerDisconnected), now).unwrap();
    let mut alert = ev(EventKind::NodeCreated).project(Some(pb));
    alert.kind = "alert.raised".into();
    c.publish(alert, now).unwrap();
    drain_all(&mut c);
    assert_eq!(status.kinds(), ["node.started"]);
    assert_eq!(deleted.kinds(), ["node.deleted"]);
    assert_eq!(only_a.kinds(), ["server.disconnected", "node.started"], "no project: passes the project filter");
    assert_eq!(alerts.kinds(), ["alert.raised"]);
}

#[test]
fn priority_overrides_apply_and_module_types_default_to_normal() {
    let mut cfg = DispatcherConfig::default();
    cfg.priorities.insert("node.updated".into(), Priority::High);
    cfg.priorities.insert("alert.raised".into(), Priority::Critical);
    let c = core_with(cfg);
    assert_eq!(c.priority_of(Some(EventKind::NodeUpdated), "node.updated"), Priority::High);
    assert_eq!(c.priority_of(Some(EventKind::NodeStarted), "node.started"), Priority::High);
    assert_eq!(c.priority_of(Some(EventKind::LinkUpdated), "link.updated"), Priority::Low);
    assert_eq!(c.priority_of(None, "alert.raised"), Priority::Critical);
    assert_eq!(c.priority_of(None, "scan.finished"), Priority::Normal);
}

#[test]
fn priorities_can_be_replaced_at_runtime() {
    let mut cfg = DispatcherConfig::default();
    cfg.priorities.insert("node.updated".into(), Priority::High);
    let mut c = core_with(cfg);
    let mut next = std::collections::BTreeMap::new();
    next.insert("link.updated".into(), Priority::Critical);
    next.insert("alert.raised".into(), Priority::Low);
    c.set_priorities(next);
    // The old override is gone (back to its default), the new ones apply.
    assert_eq!(c.priority_of(Some(EventKind::NodeUpdated), "node.updated"), Priority::Low);
    assert_eq!(c.priority_of(Some(EventKind::LinkUpdated), "link.updated"), Priority::Critical);
    assert_eq!(c.priority_of(None, "alert.raised"), Priority::Low);
}

#[test]
fn invalid_event_types_are_refused() {
    let mut c = core(10, 0);
    let mut e = ev(EventKind::NodeStarted);
    e.kind = String::new();
    assert!(matches!(c.publish(e.clone(), Instant::now()), Err(DispatchError::InvalidEvent(_))));
    e.kind = "x".repeat(MAX_TYPE_LEN + 1);
    assert!(matches!(c.publish(e, Instant::now()), Err(DispatchError::InvalidEvent(_))));
}

#[test]
fn history_replays_after_an_id_and_reports_a_gap() {
    let mut c = core_with(DispatcherConfig { history_size: 5, ..Default::default() });
    let now = Instant::now();
    for _ in 0..8 {
        c.publish(ev(EventKind::NodeStarted), now).unwrap();
    }
    drain_all(&mut c);
    let seqs = |p: &HistoryPage| p.entries.iter().map(HistoryEntry::seq).collect::<Vec<_>>();
    let page = c.history_page(Some("ep-5"), 100, None).unwrap();
    assert_eq!((seqs(&page), page.truncated, page.latest_seq), (vec![6, 7, 8], false, 8));
    let page = c.history_page(Some("ep-3"), 2, None).unwrap();
    assert_eq!((seqs(&page), page.truncated), (vec![4, 5], true), "paged with limit");
    let page = c.history_page(None, 2, None).unwrap();
    assert_eq!((seqs(&page), page.truncated), (vec![7, 8], true), "latest events without since");
    assert_eq!(page.oldest_seq, Some(4));
    assert!(matches!(c.history_page(Some("ep-1"), 10, None), Err(Unrecoverable::TooOld { requested: 1, oldest: 4 })));
    assert!(matches!(c.history_page(Some("zz-7"), 10, None), Err(Unrecoverable::OtherEpoch { .. })));
    assert!(matches!(c.history_page(Some("7"), 10, None), Err(Unrecoverable::InvalidId { .. })));
    let f = SubscriptionFilter::new(["project_status"], []).unwrap();
    assert!(c.history_page(Some("ep-5"), 10, Some(&f)).unwrap().entries.is_empty());
}

#[test]
fn subscribe_with_replay_returns_only_matching_events_bounded() {
    let mut c = core(100, 0);
    let now = Instant::now();
    for k in [EventKind::NodeStarted, EventKind::LinkCreated, EventKind::NodeStopped, EventKind::NodeSuspended] {
        c.publish(ev(k), now).unwrap();
        c.drain(10, None);
    }
    let f = SubscriptionFilter::new(["node_status"], []).unwrap();
    let sub = c.subscribe_with_replay("t".into(), f.clone(), TestSink::new(), Some("ep-1"), 10).unwrap();
    let replayed: Vec<u64> = sub.replay.unwrap().iter().map(HistoryEntry::seq).collect();
    assert_eq!((replayed, sub.latest_seq), (vec![3, 4], 4));
    let sub = c.subscribe_with_replay("t".into(), f.clone(), TestSink::new(), Some("ep-0"), 2).unwrap();
    assert_eq!(sub.replay.unwrap_err(), Unrecoverable::TooMany { count: 3, limit: 2 });
    let sub = c.subscribe_with_replay("t".into(), f, TestSink::new(), Some("old-1"), 2).unwrap();
    assert!(matches!(sub.replay, Err(Unrecoverable::OtherEpoch { .. })));
    assert_eq!(c.subscriber_count(), 3, "registered even when the replay is unrecoverable");
}

#[test]
fn full_mailbox_is_retried_with_backoff_then_dead_lettered() {
    let mut c = core(10, 0); // max_retries 3, backoff 10, 20, 40 ms
    let s = all_sink(&mut c);
    s.mode.set(SinkStatus::Full);
    let t0 = Instant::now();
    c.publish(ev(EventKind::NodeStarted), t0).unwrap();
    c.drain(10, None);
    let mut gaps = vec![];
    let mut at = Instant::now();
    while let Some(next) = c.next_retry_at() {
        gaps.push((next - at).as_millis() as u64);
        at = next;
        c.retry_due(next, None);
    }
    assert_eq!(gaps.len(), 3);
    assert!(gaps[0] <= 10 && gaps[1] == 20 && gaps[2] == 40, "{gaps:?}");
    let st = c.stats();
    assert_eq!(st.by_type["node.started"].retried, 3);
    assert_eq!(st.by_type["node.started"].dead_lettered, 1);
    assert_eq!(st.by_type["node.started"].delivered, 0);
    assert_eq!(st.pending_retries, 0);
    let dead = c.dead_letters(10);
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].reason, dead[0].event.seq), (4, DeadLetterReason::MailboxFull, 1));
    assert_eq!(&*dead[0].subscriber_label, "test");
    assert_eq!(c.subscriber_count(), 1, "a full subscriber stays subscribed");
}

#[test]
fn retries_deliver_in_order_once_the_mailbox_frees() {
    let mut c = core(10, 0);
    let s = all_sink(&mut c);
    let id = SubscriberId(1);
    s.mode.set(SinkStatus::Full);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(10, None);
    s.mode.set(SinkStatus::Delivered);
    for _ in 0..3 {
        c.publish(ev(EventKind::NodeStopped), Instant::now()).unwrap();
    }
    c.drain(10, None);
    assert!(s.seqs().is_empty(), "newer events wait behind the backlog");
    assert_eq!(c.backlog_of(id), Some(4));
    c.retry_due(c.next_retry_at().unwrap(), None);
    assert_eq!(s.seqs(), [1, 2, 3, 4]);
    assert_eq!(c.next_retry_at(), None);
    let st = c.stats();
    assert_eq!(st.totals.delivered, 4);
    assert_eq!(st.totals.retried, 1, "only the event that had failed counts a retry");
}

#[test]
fn a_full_backlog_dead_letters_its_oldest_event() {
    let mut cfg = DispatcherConfig::default();
    cfg.delivery.backlog = 2;
    let mut c = core_with(cfg);
    let s = all_sink(&mut c);
    s.mode.set(SinkStatus::Full);
    for _ in 0..4 {
        c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    }
    c.drain(10, None);
    assert_eq!(c.backlog_of(SubscriberId(1)), Some(2));
    let dead: Vec<(u64, DeadLetterReason)> = c.dead_letters(10).iter().map(|d| (d.event.seq, d.reason)).collect();
    assert_eq!(dead, [(1, DeadLetterReason::BacklogFull), (2, DeadLetterReason::BacklogFull)]);
    assert_eq!(c.stats().pending_retries, 2);
}

#[test]
fn zero_retries_dead_letters_at_once() {
    let mut cfg = DispatcherConfig::default();
    cfg.delivery.max_retries = 0;
    let mut c = core_with(cfg);
    all_sink(&mut c).mode.set(SinkStatus::Full);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(10, None);
    assert_eq!(c.dead_letters(10).len(), 1);
    assert_eq!(c.next_retry_at(), None);
}

#[test]
fn closed_subscriber_is_removed() {
    let mut c = core(10, 0);
    let gone = all_sink(&mut c);
    let alive = all_sink(&mut c);
    gone.mode.set(SinkStatus::Closed);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(10, None);
    assert_eq!(c.subscriber_count(), 1);
    assert_eq!(alive.seqs(), [1]);
    assert!(!c.unsubscribe(SubscriberId(1)), "already removed");
    assert!(c.unsubscribe(SubscriberId(2)));
    assert_eq!(c.subscriber_count(), 0);
}

#[test]
fn a_subscriber_closed_during_retries_is_removed() {
    let mut c = core(10, 0);
    let s = all_sink(&mut c);
    s.mode.set(SinkStatus::Full);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(10, None);
    s.mode.set(SinkStatus::Closed);
    c.retry_due(c.next_retry_at().unwrap(), None);
    assert_eq!(c.subscriber_count(), 0);
    assert_eq!(c.stats().pending_retries, 0);
    assert!(c.dead_letters(10).is_empty());
}

#[test]
fn subscriptions_are_bounded_and_updatable() {
    let mut c = core_with(DispatcherConfig { max_subscribers: 1, ..Default::default() });
    let s = all_sink(&mut c);
    assert!(matches!(
        c.subscribe("x".into(), SubscriptionFilter::all(), TestSink::new()),
        Err(DispatchError::TooManySubscribers(1))
    ));
    let only_links = SubscriptionFilter::new(["link.*"], []).unwrap();
    c.update_subscription(SubscriberId(1), only_links).unwrap();
    assert_eq!(
        c.update_subscription(SubscriberId(9), SubscriptionFilter::all()),
        Err(DispatchError::UnknownSubscriber(SubscriberId(9)))
    );
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.publish(ev(EventKind::LinkCreated), Instant::now()).unwrap();
    drain_all(&mut c);
    assert_eq!(s.kinds(), ["link.created"]);
}

#[test]
fn stats_report_position_depths_and_latency() {
    let mut c = core(10, 0);
    all_sink(&mut c);
    let past = Instant::now() - Duration::from_millis(5);
    c.publish(ev(EventKind::ServerConnected), past).unwrap();
    c.publish(ev(EventKind::NodeUpdated), past).unwrap();
    c.drain(1, None);
    let st = c.stats();
    assert_eq!((st.epoch.as_str(), st.last_seq, st.subscribers), ("ep", 1, 1));
    assert_eq!((st.queues.low, st.queues.total, st.queues.capacity), (1, 1, 10));
    let crit = &st.latency_by_priority["CRITICAL"];
    assert_eq!(crit.samples, 1);
    assert!(crit.p99_ms.unwrap() >= 5.0);
    assert_eq!(st.history.len, 1);
    assert_eq!(st.totals.published, 2);
    assert_eq!(st.totals.dispatched, 1);
    let v = serde_json::to_value(&st).unwrap();
    assert!(v["by_priority"]["LOW"]["published"].is_u64());
}

#[test]
fn a_resumed_origin_continues_its_numbering() {
    let mut c: DispatcherCore<TestSink> =
        DispatcherCore::new(DispatcherConfig::default(), Origin::resume("abc", 41).unwrap());
    let s = all_sink(&mut c);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(1, None);
    assert_eq!(s.inbox.borrow()[0].event.id, "abc-42");
    assert!(c.history_page(Some("abc-41"), 10, None).is_ok());
    assert!(matches!(c.history_page(Some("abc-40"), 10, None), Err(Unrecoverable::TooOld { .. })));
}

#[test]
fn drain_stops_at_its_batch_size() {
    let mut c = core(100, 0);
    for _ in 0..50 {
        c.publish(ev(EventKind::NodeUpdated), Instant::now()).unwrap();
    }
    assert_eq!(c.drain(20, None), 20);
    assert_eq!(c.queued(), 30);
    // A deadline already passed ends the turn after one event.
    assert_eq!(c.drain(100, Some(Instant::now() - Duration::from_millis(1))), 1);
}

#[test]
fn critical_is_drained_at_once_whatever_the_starvation_guard() {
    let mut c = core(100, 1);
    let s = all_sink(&mut c);
    let now = Instant::now();
    c.publish(ev(EventKind::NodeStarted), now).unwrap();
    c.publish(ev(EventKind::NodeStarted), now).unwrap();
    c.publish(ev(EventKind::NodeUpdated), now).unwrap();
    c.drain(1, None); // one HIGH while LOW waits: the guard now owes LOW a turn
    c.publish(ev(EventKind::ServerDisconnected), now).unwrap();
    assert_eq!(c.drain_critical(), 1);
    assert_eq!(s.kinds(), ["node.started", "server.disconnected"]);
    c.drain(1, None);
    assert_eq!(s.kinds().last().map(String::as_str), Some("node.updated"), "the guard still serves LOW next");
}

#[test]
fn a_retry_pass_stops_at_its_deadline_and_the_rest_stay_due() {
    let mut c = core(10, 0);
    let sinks: Vec<TestSink> = (0..100).map(|_| all_sink(&mut c)).collect();
    sinks.iter().for_each(|s| s.mode.set(SinkStatus::Full));
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.drain(1, None);
    sinks.iter().for_each(|s| s.mode.set(SinkStatus::Delivered));
    let later = c.next_retry_at().unwrap() + Duration::from_secs(1); // all of them due
    c.retry_due(later, Some(Instant::now() - Duration::from_millis(1)));
    let delivered = sinks.iter().filter(|s| !s.seqs().is_empty()).count();
    assert!(delivered > 0 && delivered < 100, "cut short: {delivered}");
    assert!(c.next_retry_at().is_some_and(|t| t <= later), "the others are still due");
    c.retry_due(later, None);
    assert!(sinks.iter().all(|s| s.seqs() == [1]));
    assert_eq!(c.stats().pending_retries, 0);
}

#[test]
fn the_express_lane_is_taken_between_two_dispatched_events() {
    let mut c = core(100, 0);
    let s = all_sink(&mut c);
    for _ in 0..3 {
        c.publish(ev(EventKind::NodeUpdated), Instant::now()).unwrap();
    }
    c.lane().push(ev(EventKind::ServerDisconnected)).unwrap();
    c.drain(2, None);
    assert_eq!(s.kinds(), ["node.updated", "server.disconnected", "node.updated"]);
    assert_eq!(c.stats().by_type["server.disconnected"].published, 1);
}

#[test]
fn express_events_refused_for_backpressure_wait_in_the_lane() {
    let mut c = core(1, 0);
    let s = all_sink(&mut c);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    c.lane().push(ev(EventKind::CircuitOpened)).unwrap();
    assert_eq!(c.absorb_lane(), 0, "queues full of HIGH: nothing can be shed");
    assert!(c.lane_waiting());
    assert_eq!(c.stats().queues.express, 1);
    c.drain(10, None);
    assert_eq!(s.kinds(), ["node.started", "circuit.opened"], "taken as soon as there was room");
    assert!(!c.lane_waiting());
}

#[test]
fn replay_filters_module_types_and_projects_from_the_stored_entries() {
    let mut c = core(100, 0);
    let (pa, pb) = (Uuid::new_v4(), Uuid::new_v4());
    for (kind, project) in [("alert.raised", Some(pa)), ("alert.raised", Some(pb)), ("scan.done", None)] {
        let mut e = ev(EventKind::NodeCreated).project(project);
        e.kind = kind.into();
        c.publish(e, Instant::now()).unwrap();
    }
    c.publish(ev(EventKind::ServerConnected), Instant::now()).unwrap();
    drain_all(&mut c);
    let f = SubscriptionFilter::new(["alert.*", "server_status"], [pa]).unwrap();
    let sub = c.subscribe_with_replay("m".into(), f, TestSink::new(), Some("ep-0"), 10).unwrap();
    let kinds: Vec<String> = sub.replay.unwrap().iter().map(|e| e.kind_str().to_owned()).collect();
    assert_eq!(kinds, ["server.connected", "alert.raised"]);
}

/// A numbered event as the shared log hands it back.
fn numbered(e: Event, epoch: &str, seq: u64) -> (Arc<Event>, bytes::Bytes) {
    let p = e.priority;
    let event = Event::stamp(e.into_new(), epoch, seq, p);
    let json = bytes::Bytes::from(serde_json::to_vec(&event).unwrap());
    (Arc::new(event), json)
}

#[test]
fn with_an_uplink_events_leave_in_priority_order_unnumbered_and_wait_while_it_is_full() {
    let mut c = core(100, 100);
    let s = all_sink(&mut c);
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    c.set_uplink(Some(tx));
    c.publish(ev(EventKind::NodeUpdated), Instant::now()).unwrap();
    c.publish(ev(EventKind::LinkCreated), Instant::now()).unwrap();
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    assert_eq!(c.drain(100, None), 2, "the uplink holds 2");
    assert!(!c.can_drain());
    assert_eq!(c.queued(), 1, "the third waits in the queues");
    assert!(s.seqs().is_empty(), "nothing is delivered before the log numbers it");
    let a = rx.try_recv().unwrap();
    let b = rx.try_recv().unwrap();
    assert_eq!((a.kind.as_str(), a.seq, a.epoch.as_str()), ("node.started", 0, ""));
    assert_eq!(b.kind, "link.created");
    assert!(c.can_drain());
    assert_eq!(c.drain(100, None), 1);
    assert_eq!(rx.try_recv().unwrap().kind, "node.updated");
    // Back from the log, numbered: delivered in the log's order, duplicates dropped.
    for (seq, e) in [(7, a.clone()), (8, b.clone())] {
        let (e, j) = numbered(e, "shared", seq);
        assert_eq!(c.inject(e, j), if seq == 7 { Injected::NewEpoch } else { Injected::Dispatched });
    }
    let (e, j) = numbered(b, "shared", 8);
    assert_eq!(c.inject(e, j), Injected::Duplicate);
    assert_eq!(s.seqs(), [7, 8]);
    assert_eq!((c.epoch(), c.latest_seq()), ("shared", 8));
    let page = c.history_page(Some("shared-7"), 10, None).unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].kind_str(), "link.created", "the type is found in bytes from elsewhere");
}

#[test]
fn losing_the_uplink_numbers_locally_in_the_same_epoch() {
    let mut c = core(100, 100);
    let s = all_sink(&mut c);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    c.set_uplink(Some(tx));
    let (e, j) = numbered(Event::stamp(ev(EventKind::NodeStarted), "", 0, Priority::High), "shared", 41);
    c.inject(e, j);
    drop(rx);
    c.publish(ev(EventKind::NodeStopped), Instant::now()).unwrap();
    drain_all(&mut c);
    assert!(!c.has_uplink(), "a closed uplink is dropped");
    assert_eq!(c.epoch(), "shared", "numbering goes on in the epoch subscribers follow");
    assert_eq!(s.seqs(), [41, 42]);
    assert_eq!(s.kinds(), ["node.started", "node.stopped"]);
}

#[test]
fn withdrawing_numbers_what_was_in_flight_first_in_order_and_rejoin_snapshots() {
    let mut c = core(100, 100);
    let s = all_sink(&mut c);
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    c.set_uplink(Some(tx.clone()));
    let (e, j) = numbered(Event::stamp(ev(EventKind::NodeStarted), "", 0, Priority::High), "shared", 7);
    c.inject(e, j);
    c.publish(ev(EventKind::NodeCreated), Instant::now()).unwrap();
    c.publish(ev(EventKind::LinkCreated), Instant::now()).unwrap();
    drain_all(&mut c);
    // The first went to Redis (no echo yet), the second still waits in the channel.
    let in_flight = rx.try_recv().unwrap();
    assert_eq!((in_flight.seq, in_flight.epoch.as_str()), (0, ""));
    assert!(s.seqs() == [7], "nothing numbered while the uplink takes events");
    c.publish(ev(EventKind::NodeStopped), Instant::now()).unwrap();
    assert_eq!(c.withdraw_uplink(vec![in_flight], Some(rx)), 2);
    drain_all(&mut c);
    assert_eq!(s.seqs(), [7, 8, 9, 10]);
    assert_eq!(s.kinds(), ["node.started", "node.created", "link.created", "node.stopped"]);
    assert_eq!(c.epoch(), "shared");
    let snap = c.rejoin(tx);
    assert!(c.has_uplink());
    assert_eq!((snap.epoch.as_str(), snap.latest_seq, snap.entries.len()), ("shared", 10, 4));
}

#[test]
fn preload_fills_the_history_without_delivering_and_numbering_continues() {
    let mut c = core(100, 100);
    let s = all_sink(&mut c);
    let entries: Vec<_> = (5..=7)
        .map(|seq| {
            let (e, j) = numbered(Event::stamp(ev(EventKind::LinkCreated), "", 0, Priority::Normal), "kept", seq);
            ((*e).clone(), j)
        })
        .collect();
    c.preload(Origin::resume("kept", 9).unwrap(), entries);
    assert!(s.seqs().is_empty());
    assert_eq!((c.epoch(), c.latest_seq()), ("kept", 9));
    let page = c.history_page(Some("kept-4"), 10, None).unwrap();
    assert_eq!(page.entries.iter().map(HistoryEntry::seq).collect::<Vec<_>>(), [5, 6, 7]);
    c.publish(ev(EventKind::NodeStarted), Instant::now()).unwrap();
    drain_all(&mut c);
    assert_eq!(s.seqs(), [10]);
}

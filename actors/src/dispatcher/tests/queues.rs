//! Priority queues: ordering, the starvation guard, shedding, backpressure, draining
//! in batches, the express lane, the statistics.

use super::*;

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

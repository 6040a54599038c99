//! Fan-out and routing: the same bytes for every subscriber, filters, priorities and
//! their overrides, event type checks, subscription bounds.

use super::*;

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

//! History and replay: after an id, gaps, filtered replays.

use super::*;

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

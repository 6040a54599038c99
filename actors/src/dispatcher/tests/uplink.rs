//! Numbering: a resumed origin, the uplink to the shared log (several instances), losing
//! and withdrawing it, the preloaded history.

use super::*;

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

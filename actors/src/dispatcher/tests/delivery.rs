//! Delivery: a full mailbox retried with backoff, then dead letters; closed subscribers.

use super::*;

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

//! Resuming from a seq the dispatcher has not reached yet (`ahead.rs`): the events come
//! through `Inject`, as the cluster bridge hands them over from the shared log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::actor_tests::{collector, ev, wait_for};
use super::*;
use crate::events::{Event, EventKind};

const EPOCH: &str = "shared";

/// Events `from..=to` numbered by the shared log.
fn logged(from: u64, to: u64) -> Inject {
    Inject(
        (from..=to)
            .map(|seq| {
                let e = Event::stamp(ev(EventKind::NodeStarted), EPOCH, seq, Priority::Normal);
                let json = bytes::Bytes::from(serde_json::to_vec(&e).unwrap());
                (Arc::new(e), json)
            })
            .collect(),
    )
}

async fn dispatcher_at(last: u64) -> Addr<PriorityDispatcher> {
    let d = PriorityDispatcher::with_origin(DispatcherConfig::default(), Origin::resume(EPOCH.to_owned(), 0).unwrap())
        .start();
    d.send(logged(1, last)).await.unwrap();
    d
}

fn seqs(r: &Result<Vec<HistoryEntry>, Unrecoverable>) -> Vec<u64> {
    r.as_ref().unwrap().iter().map(HistoryEntry::seq).collect()
}

#[actix_rt::test]
async fn a_resume_ahead_waits_for_the_log_then_replays_exactly_what_follows() {
    let d = dispatcher_at(3).await;
    let (c, seen) = collector(1_000);
    // Sent before the events it names arrive (the mailbox keeps the order).
    let sub = d.send(SubscribeWithReplay {
        label: "ws:moved".into(),
        filter: SubscriptionFilter::all(),
        sink: c.recipient().into(),
        since: Some(format!("{EPOCH}-5")),
        max_replay: 100,
        wait_ahead: Duration::from_secs(30),
    });
    let replay = d.send(GetReplay {
        filter: SubscriptionFilter::all(),
        since: format!("{EPOCH}-4"),
        max_replay: 100,
        wait_ahead: Duration::from_secs(30),
    });
    let page = d.send(GetHistory {
        since: Some(format!("{EPOCH}-6")),
        limit: 100,
        filter: None,
        wait_ahead: Duration::from_secs(30),
    });
    let started = Instant::now();
    d.send(logged(4, 4)).await.unwrap();
    d.send(logged(5, 7)).await.unwrap();
    let sub = sub.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "answered when reached, not at the bound");
    assert_eq!((sub.epoch.as_str(), sub.latest_seq), (EPOCH, 7));
    assert_eq!(seqs(&sub.replay), vec![6, 7], "exactly the events after since");
    let replay = replay.await.unwrap();
    assert_eq!(seqs(&replay.replay), (5..=replay.latest_seq).collect::<Vec<_>>());
    let page = page.await.unwrap().unwrap();
    assert_eq!(page.entries.iter().map(HistoryEntry::seq).collect::<Vec<_>>(), vec![7]);
    // Live delivery takes over after the replay: no gap, no duplicate at the seam.
    d.send(logged(8, 9)).await.unwrap();
    wait_for(|| seen.lock().unwrap().len() >= 2, "live events").await;
    assert_eq!(*seen.lock().unwrap(), vec![8, 9]);
}

#[actix_rt::test]
async fn a_seq_that_never_comes_is_ahead_after_the_bound_and_blocks_nothing() {
    let d = dispatcher_at(3).await;
    let bound = Duration::from_millis(300);
    let started = Instant::now();
    let far = d.send(GetReplay {
        filter: SubscriptionFilter::all(),
        since: format!("{EPOCH}-1000000000000"),
        max_replay: 100,
        wait_ahead: bound,
    });
    // Meanwhile the dispatcher goes on: events, reads.
    d.send(logged(4, 5)).await.unwrap();
    let stats = d.send(GetStats).await.unwrap();
    assert_eq!(stats.last_seq, 5);
    assert!(started.elapsed() < bound, "the waiting read holds nothing up");
    let far = far.await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= bound, "answered before the bound ({waited:?})");
    assert!(waited < bound + Duration::from_secs(5), "answered long after the bound ({waited:?})");
    assert_eq!(far.replay.unwrap_err(), Unrecoverable::Ahead { requested: 1_000_000_000_000, latest: 5 });
}

#[actix_rt::test]
async fn without_a_wait_an_ahead_resume_is_answered_at_once() {
    let d = dispatcher_at(3).await;
    let started = Instant::now();
    let (c, _) = collector(1_000);
    let sub = d
        .send(SubscribeWithReplay {
            label: "ws:single".into(),
            filter: SubscriptionFilter::all(),
            sink: c.recipient().into(),
            since: Some(format!("{EPOCH}-5")),
            max_replay: 100,
            wait_ahead: Duration::ZERO,
        })
        .await
        .unwrap()
        .unwrap();
    // The event arriving later does not change the answer already given.
    d.send(logged(4, 5)).await.unwrap();
    assert_eq!(sub.replay.unwrap_err(), Unrecoverable::Ahead { requested: 5, latest: 3 });
    assert!(started.elapsed() < Duration::from_secs(2));
    // Neither do other reasons wait: another epoch is answered at once with a wait.
    let other = d
        .send(GetReplay {
            filter: SubscriptionFilter::all(),
            since: "other-99".into(),
            max_replay: 100,
            wait_ahead: Duration::from_secs(30),
        })
        .await
        .unwrap();
    assert!(matches!(other.replay, Err(Unrecoverable::OtherEpoch { .. })));
    assert!(started.elapsed() < Duration::from_secs(2));
}

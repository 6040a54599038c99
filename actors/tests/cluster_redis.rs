//! Several instances on one real Redis (a redis-server started by the test, see
//! `support/redis.rs`): the shared log numbers, stores and publishes events in one order;
//! leases go to one instance at a time; two dispatchers joined by bridges deliver every
//! event to their subscribers exactly once with the same id; history and epoch survive a
//! restart of an instance (Redis outages: `cluster_outage.rs`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/redis.rs"]
mod redis_server;

use cluster::*;
use gns3_central_actors::cluster::lease::Lease;
use gns3_central_actors::cluster::log::{Keys, SharedLog};
use gns3_central_actors::events::{Event, EventKind, Priority};
use redis_server::RedisServer;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[actix_rt::test]
async fn the_shared_log_numbers_stores_and_publishes_in_one_order() {
    let redis = RedisServer::start();
    let mut c = conn(&redis).await;
    let log = SharedLog::new(Keys::new("t1"), "i1", 1000, Duration::from_secs(2));
    let mut sub = redis::Client::open(redis.url()).unwrap().get_async_pubsub().await.unwrap();
    sub.subscribe("t1:ev:live").await.unwrap();
    let blank = |k, n| Event::stamp(event(k, n), "", 0, Priority::High);
    let (epoch, seqs) = log
        .append(&mut c, &[blank(EventKind::NodeStarted, 1), blank(EventKind::NodeStopped, 2)], "first", 0)
        .await
        .unwrap();
    assert_eq!((epoch.as_str(), seqs.as_slice()), ("first", &[1, 2][..]));
    let (epoch, seqs) = log.append(&mut c, &[blank(EventKind::LinkCreated, 3)], "ignored", 0).await.unwrap();
    assert_eq!((epoch.as_str(), seqs.as_slice()), ("first", &[3][..]), "the epoch in Redis is kept");

    let loaded = log.load(&mut c, 10).await.unwrap();
    assert_eq!((loaded.epoch.as_deref(), loaded.last_seq), (Some("first"), 3));
    let ids: Vec<_> = loaded.events.iter().map(|(e, _)| e.id.clone()).collect();
    assert_eq!(ids, ["first-1", "first-2", "first-3"]);
    assert_eq!(loaded.events[1].0.data["n"], 2);
    assert_eq!(loaded.events[2].0.kind, "link.created");
    let parsed: Event = serde_json::from_slice(&loaded.events[0].1).unwrap();
    assert_eq!(parsed, loaded.events[0].0, "the stored bytes are the envelope");
    let after: Vec<_> = log.after(&mut c, "first", 1, 10).await.unwrap().into_iter().map(|(e, _)| e.seq).collect();
    assert_eq!(after, [2, 3]);

    let mut stream = sub.on_message();
    use futures_util::StreamExt;
    for want in ["first-1", "first-2", "first-3"] {
        let msg = tokio::time::timeout(WAIT, stream.next()).await.unwrap().unwrap();
        let (origin, e, _) = gns3_central_actors::cluster::log::parse_message(msg.get_payload_bytes()).unwrap();
        assert_eq!((origin.as_str(), e.id.as_str()), ("i1", want));
    }
    drop(stream);

    // The position gone (a flushed Redis): numbering continues the position the appender
    // gives (the one it followed), old entries gone.
    redis::cmd("DEL").arg("t1:ev:pos").query_async::<()>(&mut c).await.unwrap();
    let (epoch, seqs) = log.append(&mut c, &[blank(EventKind::NodeCreated, 4)], "second", 7).await.unwrap();
    assert_eq!((epoch.as_str(), seqs.as_slice()), ("second", &[8][..]));
    assert_eq!(log.load(&mut c, 10).await.unwrap().events.len(), 1);
}

#[actix_rt::test]
async fn a_lease_has_one_holder_until_released_or_expired() {
    let redis = RedisServer::start();
    let mut c = conn(&redis).await;
    let lease = |me: &str, ms| Lease {
        key: "t2:lease:default".into(),
        me: me.into(),
        ttl: Duration::from_millis(ms),
        timeout: Duration::from_secs(2),
    };
    let (a, b) = (lease("a", 60_000), lease("b", 60_000));
    assert!(a.take_or_renew(&mut c, false).await.unwrap());
    assert!(!b.take_or_renew(&mut c, false).await.unwrap(), "held by a");
    assert!(a.take_or_renew(&mut c, true).await.unwrap(), "renewed by its holder");
    assert!(!b.release(&mut c).await.unwrap(), "only the holder releases");
    assert_eq!(a.holder(&mut c).await.unwrap().as_deref(), Some("a"));
    assert!(a.release(&mut c).await.unwrap());
    assert!(b.take_or_renew(&mut c, false).await.unwrap());
    assert!(!a.take_or_renew(&mut c, true).await.unwrap(), "a lost it: no renewal");
    // Expiry hands it over without a release.
    b.release(&mut c).await.unwrap();
    let short = lease("a", 300);
    assert!(short.take_or_renew(&mut c, false).await.unwrap());
    let got = until("the lease to expire", || {
        let (b, mut c) = (&b, c.clone());
        async move { b.take_or_renew(&mut c, false).await.unwrap().then_some(()) }
    })
    .await;
    assert_eq!(got, ());
}

#[actix_rt::test]
async fn two_instances_deliver_every_event_once_with_the_same_ids() {
    let redis = RedisServer::start();
    let a = Instance::start(&redis, "t3", "a").await;
    let b = Instance::start(&redis, "t3", "b").await;
    a.publish(event(EventKind::NodeStarted, 1)).await;
    b.publish(event(EventKind::LinkCreated, 2)).await;
    a.publish(event(EventKind::NodeStopped, 3)).await;
    let on_a = a.until_seen(3).await;
    let on_b = b.until_seen(3).await;
    assert_eq!(on_a, on_b, "same events, same ids, same order on both");
    let kinds: Vec<_> = on_a.iter().map(|(_, k)| k.as_str()).collect();
    assert!(kinds.contains(&"node.started") && kinds.contains(&"link.created") && kinds.contains(&"node.stopped"));
    let seqs: Vec<u64> = on_a.iter().map(|(id, _)| Event::parse_id(id).unwrap().1).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // Nothing more arrives (no loop, no double): the next event is the next seq.
    a.publish(event(EventKind::NodeSuspended, 4)).await;
    let on_b = b.until_seen(4).await;
    assert_eq!(on_b.len(), 4, "{on_b:?}");
    assert_eq!(on_b[3].0, format!("{}-4", Event::parse_id(&on_b[0].0).unwrap().0));
    let sa = a.until_status("counts", |s| s.received_own + s.received_others == 4).await;
    assert_eq!((sa.appended, sa.received_own, sa.received_others), (3, 3, 1));
    assert_eq!(a.seen().len(), 4);
}

#[actix_rt::test]
async fn history_and_epoch_survive_a_restart_of_an_instance() {
    let redis = RedisServer::start();
    let a = Instance::start(&redis, "t4", "a").await;
    for n in 0..3 {
        a.publish(event(EventKind::NodeStarted, n)).await;
    }
    let before = a.until_seen(3).await;
    let epoch = Event::parse_id(&before[0].0).unwrap().0.to_owned();
    // A new instance (new dispatcher, new bridge: nothing of `a` carried over) on the same
    // Redis, as after a restart of the service (the API test kills a real process).
    drop(a);
    let c = Instance::start(&redis, "t4", "c").await;
    let page = c.history().await;
    assert_eq!(page.epoch, epoch);
    let ids: Vec<_> = page.entries.iter().map(|e| e.event().unwrap().id).collect();
    assert_eq!(ids, before.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>());
    assert!(c.seen().is_empty(), "loaded history is not delivered again");
    c.publish(event(EventKind::NodeStopped, 9)).await;
    let after = c.until_seen(1).await;
    assert_eq!(after[0].0, format!("{epoch}-4"), "numbering continues");
}

//! Redis outages under a steady flow of events, against a real redis-server killed and
//! started again (`support/redis.rs`): a subscriber connected through the outage gets
//! every event once, in one epoch, with no gap; the shared log in Redis ends up holding
//! what the subscriber saw (so a client resuming later is served from it). One case per
//! guarantee of docs/events.md#redis-outages: Redis restarted with its data, Redis
//! restarted empty (flushed), two instances numbering on their own during one outage,
//! an instance restarted while Redis was away.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/redis.rs"]
mod redis_server;

use cluster::*;
use gns3_central_actors::events::{Event, EventKind};
use redis_server::RedisServer;
use std::time::Duration;

/// What the shared log in Redis holds: its epoch, last seq and the events' ids.
async fn in_redis(redis: &RedisServer, prefix: &str) -> (Option<String>, u64, Vec<String>) {
    log_in(&redis.url(), prefix).await
}

/// Kills Redis while `inst` gets a steady flow of `n` events, waits for events numbered
/// during the outage, then lets `restart` bring Redis back; returns when all arrived.
async fn outage_under_flow(inst: &Instance, redis: &mut RedisServer, n: u64, restart: impl FnOnce(&mut RedisServer)) {
    let flowing = flow(inst, 0, n, Duration::from_millis(4));
    inst.until_seen(40).await;
    redis.kill();
    inst.until_status("the outage noticed", |s| !s.shared).await;
    let during = inst.seen().len();
    inst.until_seen(during + 30).await;
    restart(redis);
    inst.until_status("back on the shared log", |s| s.shared).await;
    flowing.await.expect("the flow ends");
    inst.until_seen(n as usize).await;
}

#[actix_rt::test]
async fn redis_restarted_with_its_data_costs_the_subscriber_nothing() {
    let mut redis = RedisServer::start_persistent();
    let a = Instance::start(&redis, "o1", "a").await;
    outage_under_flow(&a, &mut redis, 200, RedisServer::restart).await;
    let epoch = once_in_order(&a, 200);
    let ids: Vec<String> = a.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(in_redis(&redis, "o1").await, (Some(epoch.clone()), 200, ids.clone()), "the log holds what was seen");
    // Another instance joining now has the whole history (a resume from any of these ids
    // is served) and numbers on.
    let c = Instance::start(&redis, "o1", "c").await;
    let page = c.history().await;
    assert_eq!((page.epoch.as_str(), page.latest_seq), (epoch.as_str(), 200));
    c.publish(event(EventKind::NodeStopped, 999)).await;
    assert_eq!(a.until_seen(201).await[200].0, format!("{epoch}-201"));
}

#[actix_rt::test]
async fn redis_restarted_empty_gets_the_instances_history_back() {
    let mut redis = RedisServer::start();
    let a = Instance::start(&redis, "o2", "a").await;
    outage_under_flow(&a, &mut redis, 200, RedisServer::restart).await;
    let epoch = once_in_order(&a, 200);
    let (in_epoch, last, ids) = in_redis(&redis, "o2").await;
    assert_eq!((in_epoch.as_deref(), last), (Some(epoch.as_str()), 200), "the epoch continues in the new log");
    let seen: Vec<String> = a.seen().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, seen, "the history is written back");
}

#[actix_rt::test]
async fn two_instances_numbering_on_their_own_meet_in_a_new_epoch_with_every_event() {
    let mut redis = RedisServer::start_persistent();
    let a = Instance::start(&redis, "o3", "a").await;
    let b = Instance::start(&redis, "o3", "b").await;
    a.publish(event(EventKind::NodeStarted, 0)).await;
    b.until_seen(1).await;
    let old = a.until_seen(1).await[0].0.clone();
    let old_epoch = Event::parse_id(&old).unwrap().0.to_owned();
    redis.kill();
    a.until_status("a cut off", |s| !s.shared).await;
    b.until_status("b cut off", |s| !s.shared).await;
    a.publish(event(EventKind::NodeStarted, 1)).await;
    b.publish(event(EventKind::NodeStarted, 2)).await;
    let (x, y) = (a.until_seen(2).await[1].0.clone(), b.until_seen(2).await[1].0.clone());
    assert_eq!(x, y, "both numbered the same seq on their own");
    redis.restart();
    let sa = a.until_status("a back", |s| s.shared && s.epoch.as_deref() != Some(old_epoch.as_str())).await;
    let sb = b.until_status("b on a's epoch", |s| s.shared && s.epoch == sa.epoch).await;
    let new_epoch = sb.epoch.clone().expect("an epoch");
    // Each instance's subscriber gets the other's event in the new epoch (its own may come
    // again there too: the epoch change tells clients to re-sync).
    for inst in [&a, &b] {
        until("both events in the new epoch", || async {
            let seen = inst.seen.lock().unwrap().clone();
            let n: Vec<u64> =
                seen.iter().filter(|e| e.epoch == new_epoch).filter_map(|e| e.data["n"].as_u64()).collect();
            (n.contains(&1) && n.contains(&2)).then_some(())
        })
        .await;
    }
    a.publish(event(EventKind::NodeStopped, 3)).await;
    let last = |i: &Instance| i.seen.lock().unwrap().last().map(|e| (e.id.clone(), e.data["n"].as_u64()));
    until("the next event on both with one id", || async {
        (last(&a) == last(&b) && last(&a).is_some_and(|l| l.1 == Some(3))).then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn an_instance_restarted_while_redis_was_away_joins_the_old_epoch_with_its_events() {
    let mut redis = RedisServer::start_persistent();
    let a = Instance::start(&redis, "o4", "a").await;
    for n in 0..3 {
        a.publish(event(EventKind::NodeStarted, n)).await;
    }
    let epoch = Event::parse_id(&a.until_seen(3).await[0].0).unwrap().0.to_owned();
    redis.kill();
    drop(a);
    // The restarted instance cannot reach Redis: a fresh local epoch.
    let c = Instance::start_unjoined(&redis, "o4", "c").await;
    c.publish(event(EventKind::NodeStarted, 3)).await;
    let local = c.until_seen(1).await[0].0.clone();
    assert_ne!(Event::parse_id(&local).unwrap().0, epoch);
    redis.restart();
    c.until_status("c joined", |s| s.shared).await;
    // It follows the old epoch, and its event is appended there (delivered once more,
    // under that epoch).
    let again = c.until_seen(2).await[1].0.clone();
    assert_eq!(again, format!("{epoch}-4"));
    let (in_epoch, last, ids) = in_redis(&redis, "o4").await;
    assert_eq!((in_epoch, last, ids.len()), (Some(epoch.clone()), 4, 4));
    assert_eq!(c.history().await.epoch, epoch);
}

//! One module bus across instances on a real Redis (a redis-server started by the test,
//! `support/redis.rs`): two registries with two instance ids, as two processes would
//! have, in one process. Registrations are seen by both and taken once; messages flow
//! both ways in order, broadcasts and request/reply cross; the offline queue is in Redis
//! and drained from the other instance; overflow and expiry are dead-lettered with their
//! reason; a holder that dies without releasing anything is taken over after its lease
//! and what it held is delivered again; Redis stopped gives `bus_unavailable`, and Redis
//! restarted empty gets the registrations back. After each: for every module, `sent` =
//! `received` + `refused` + `dead_lettered` + `waiting` (docs/modules.md#several-instances).

#[path = "support/bus.rs"]
mod bus;
#[path = "support/redis.rs"]
mod redis_server;

use bus::*;
use futures_util::future::join_all;
use gns3_central_actors::modules::{AuthFailure, BusDeadReason, BusError, BusMessage, ModulesConfig};
use redis_server::RedisServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[actix_rt::test]
async fn registrations_are_seen_by_every_instance_and_taken_once() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    let slot = a.register_remote("monitoring", digest(1)).await.unwrap();
    let again = b.register_remote("monitoring", digest(2)).await.unwrap_err();
    assert_eq!(again, BusError::AlreadyRegistered("monitoring".into()));
    assert_eq!(a.register_remote("monitoring", digest(3)).await.unwrap_err().code(), "module_exists");
    // Known on B by its notice; a third instance that never heard of it looks it up.
    until("B mirrors the registration", || b.get("monitoring").is_some()).await;
    let c = instance(&redis, "ic", ModulesConfig::default());
    let on_c = c.authenticate_shared("monitoring", &digest(1)).await.expect("the token works on C");
    assert_eq!((on_c.id, on_c.created_at), (slot.id, slot.created_at));
    assert!(c.authenticate_shared("monitoring", &digest(9)).await.is_err(), "another token does not");
    let b_status = b.status_of("monitoring").await.unwrap().unwrap();
    assert_eq!((b_status.id, b_status.stats.connected), (slot.id.to_string(), false));
    // Deleted on B: gone from A and C, and the name is free again.
    assert!(b.remove_remote("monitoring").await.unwrap());
    until("A drops it", || a.get("monitoring").is_none()).await;
    until("C drops it", || c.get("monitoring").is_none()).await;
    assert!(a.status_of("monitoring").await.unwrap().is_none());
    assert!(!a.remove_remote("monitoring").await.unwrap(), "already gone");
    a.register_remote("monitoring", digest(4)).await.unwrap();
}

#[actix_rt::test]
async fn targeted_messages_cross_both_ways_in_order() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("left", digest(1)).await.unwrap();
    b.register_remote("right", digest(2)).await.unwrap();
    let on_a = connect(&a, "left", all, false).await;
    let on_b = connect(&b, "right", all, false).await;
    const N: u64 = 1500;
    // Pushed in call order, answered later: every send is accepted.
    let to_b: Vec<_> = (0..N).map(|n| a.send(msg("left", "right", n))).collect();
    let to_a: Vec<_> = (0..N).map(|n| b.send(msg("right", "left", n))).collect();
    for r in join_all(to_b).await.into_iter().chain(join_all(to_a).await) {
        assert_eq!(r.unwrap().accepted, 1);
    }
    until("both got everything", || on_a.count() == N as usize && on_b.count() == N as usize).await;
    let want: Vec<Value> = (0..N).map(|n| json!(n)).collect();
    assert_eq!(on_b.payloads(), want, "order from left to right");
    assert_eq!(on_a.payloads(), want, "order from right to left");
    assert!(on_b.got.lock().unwrap().iter().all(|m| m.from == "left" && m.to == "right"));
    // The same account from either instance.
    let acc = settled(&a, "right", N, N).await;
    assert_eq!(acc, settled(&b, "right", N, N).await);
    settled(&b, "left", N, N).await;
    assert_eq!(b.status_of("left").await.unwrap().unwrap().stats.sent, N, "what it sent");
    // Unknown targets and a module that is not connected with ttl 0: today's errors.
    assert_eq!(a.send(msg("left", "nobody", 0)).await.unwrap_err().code(), "unknown_module");
    b.register_remote("offline", digest(3)).await.unwrap();
    let mut zero = msg("left", "offline", 0);
    zero.ttl = 0;
    assert_eq!(a.send(zero).await.unwrap_err().code(), "module_offline");
    let off = settled(&b, "offline", 1, 0).await;
    assert_eq!(off.refused, 1);
}

#[actix_rt::test]
async fn broadcasts_reach_every_other_module_on_every_instance() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("one", digest(1)).await.unwrap();
    b.register_remote("two", digest(2)).await.unwrap();
    b.register_remote("three", digest(3)).await.unwrap();
    let one = connect(&a, "one", all, false).await;
    let two = connect(&b, "two", all, false).await;
    let r = a.send(msg("one", "*", 7)).await.unwrap();
    assert_eq!((r.accepted, r.refused.len()), (2, 0), "two connected, three queued");
    until("two gets it", || two.count() == 1).await;
    assert_eq!(two.payloads(), [json!(7)]);
    settled(&a, "two", 1, 1).await;
    let three = settled(&a, "three", 1, 0).await;
    assert_eq!(three.waiting, 1);
    assert_eq!(one.count(), 0, "not to its sender");
    let stats = b.bus_stats().await.unwrap();
    assert_eq!(stats["broadcasts"], 1);
}

#[actix_rt::test]
async fn requests_get_their_reply_from_another_instance_or_time_out() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("asker", digest(1)).await.unwrap();
    b.register_remote("answerer", digest(2)).await.unwrap();
    b.register_remote("silent", digest(3)).await.unwrap();
    let _asker = connect(&a, "asker", all, false).await;
    let _answerer = connect(&b, "answerer", all, true).await;
    let _silent = connect(&b, "silent", all, false).await;
    for n in 0..20u64 {
        let reply = a.request(msg("asker", "answerer", n), Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply.payload, json!({"answer": n}));
        assert_eq!((reply.from.as_str(), reply.to.as_str()), ("answerer", "asker"));
    }
    let e = a.request(msg("asker", "silent", 0), Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.code(), "reply_timeout");
    // The replies are in the asker's account (received when handed to its request).
    settled(&b, "asker", 20, 20).await;
    settled(&a, "answerer", 20, 20).await;
    let stats = a.bus_stats().await.unwrap();
    assert_eq!(
        (stats["requests"].as_u64(), stats["replies"].as_u64(), stats["timeouts"].as_u64()),
        (Some(21), Some(20), Some(1))
    );
    assert_eq!(a.pending_requests(), 0);
}

#[actix_rt::test]
async fn the_offline_queue_is_in_redis_and_drained_from_the_other_instance() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("away", digest(1)).await.unwrap();
    for n in 0..5 {
        a.send(msg("api", "away", n)).await.unwrap();
    }
    assert_eq!(redis.command(&["LLEN", "t:bus:q:away"]).unwrap(), ":5", "kept in Redis");
    let acc = settled(&b, "away", 5, 0).await;
    assert_eq!(acc.waiting, 5);
    let on_b = connect(&b, "away", all, false).await;
    until("B drains the queue", || on_b.count() == 5).await;
    assert_eq!(on_b.payloads(), (0..5).map(|n| json!(n)).collect::<Vec<_>>());
    settled(&a, "away", 5, 5).await;
    assert_eq!(redis.command(&["LLEN", "t:bus:q:away"]).unwrap(), ":0");
}

#[actix_rt::test]
async fn overflow_and_expiry_are_dead_lettered_with_their_reason() {
    let redis = RedisServer::start();
    let cfg = ModulesConfig { offline_queue: 3, ..ModulesConfig::default() };
    let a = instance(&redis, "ia", cfg.clone());
    let b = instance(&redis, "ib", cfg);
    a.register_remote("small", digest(1)).await.unwrap();
    for n in 0..5 {
        a.send(msg("api", "small", n)).await.unwrap();
    }
    let acc = settled(&b, "small", 5, 0).await;
    assert_eq!((acc.dead_lettered, acc.waiting), (2, 3));
    let dead = b.dead_letters_recent(10).await.unwrap();
    let gone: Vec<(BusDeadReason, Value)> =
        dead.iter().map(|d| (d.reason, d.message.as_ref().unwrap().payload.clone())).collect();
    assert_eq!(gone, [(BusDeadReason::OfflineQueueFull, json!(0)), (BusDeadReason::OfflineQueueFull, json!(1))]);
    // A short ttl: swept while nobody holds the module.
    a.register_remote("brief", digest(2)).await.unwrap();
    let mut m = msg("api", "brief", 9);
    m.ttl = 100;
    a.send(m).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let st = b.status_of("brief").await.unwrap().unwrap();
        if st.stats.expired == 1 {
            identity(&st.stats.messages);
            assert_eq!(st.stats.messages.dead_lettered, 1);
            break;
        }
        assert!(Instant::now() < deadline, "not expired: {:?}", st.stats);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = a.dead_letters_recent(10).await.unwrap();
    assert!(dead.iter().any(|d| d.module == "brief" && d.reason == BusDeadReason::Expired), "{dead:?}");
    assert_eq!(b.bus_stats().await.unwrap()["dead_letters"], 3);
}

fn below_four(m: &BusMessage) -> bool {
    m.payload.as_u64().is_some_and(|n| n < 4)
}

#[actix_rt::test]
async fn a_killed_holder_is_taken_over_after_its_lease_and_what_it_held_comes_again() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("victim", digest(1)).await.unwrap();
    // Connected on A, which confirms only 0..3 of what it gets.
    let on_a = connect(&a, "victim", below_four, false).await;
    for n in 0..10 {
        b.send(msg("api", "victim", n)).await.unwrap();
    }
    until("A got all ten", || on_a.count() == 10).await;
    let acc = settled(&b, "victim", 10, 4).await;
    assert_eq!(acc.waiting, 6, "held by A, not confirmed");
    // A dies: nothing released, nothing given back.
    a.halt();
    let killed = Instant::now();
    let on_b = connect(&b, "victim", all, false).await;
    for n in 10..15 {
        b.send(msg("api", "victim", n)).await.unwrap();
    }
    until("B got what A held, then the rest", || on_b.count() == 11).await;
    assert!(killed.elapsed() < LEASE * 10, "taken over within about a lease: {:?}", killed.elapsed());
    assert_eq!(on_b.payloads(), (4..15).map(|n| json!(n)).collect::<Vec<_>>(), "redelivered first, in order");
    // Counted once: received by A (0..3) plus by B (4..14).
    let acc = settled(&b, "victim", 15, 15).await;
    assert_eq!((acc.dead_lettered, acc.waiting), (0, 0));
}

#[actix_rt::test]
async fn a_connection_on_another_instance_replaces_the_first_in_order() {
    let redis = RedisServer::start();
    // A long lease: the handover must not wait for it to expire.
    let lease = Duration::from_secs(30);
    let a = instance_with_lease(&redis, "ia", ModulesConfig::default(), lease);
    let b = instance_with_lease(&redis, "ib", ModulesConfig::default(), lease);
    a.register_remote("mover", digest(1)).await.unwrap();
    let on_a = connect(&a, "mover", below_four, false).await;
    for n in 0..6 {
        a.send(msg("api", "mover", n)).await.unwrap();
    }
    until("A got six", || on_a.count() == 6).await;
    let started = Instant::now();
    let on_b = connect(&b, "mover", all, false).await;
    until("A's connection is told it is replaced", || *on_a.closed.lock().unwrap()).await;
    for n in 6..8 {
        a.send(msg("api", "mover", n)).await.unwrap();
    }
    // What A's connection did not confirm (4, 5) first, then the rest, without duplicates.
    until("B got 4..7", || on_b.count() == 4).await;
    assert!(started.elapsed() < lease / 2, "handed over, not expired: {:?}", started.elapsed());
    assert_eq!(on_b.payloads(), (4..8).map(|n| json!(n)).collect::<Vec<_>>());
    settled(&a, "mover", 8, 8).await;
    assert_eq!(on_a.count(), 6, "nothing more went to the replaced connection");
}

#[actix_rt::test]
async fn redis_down_is_a_clear_error_and_an_empty_redis_gets_the_registrations_back() {
    let mut redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("steady", digest(1)).await.unwrap();
    a.send(msg("api", "steady", 0)).await.unwrap();
    redis.kill();
    let started = Instant::now();
    let e = a.send(msg("api", "steady", 1)).await.unwrap_err();
    assert_eq!(e.code(), "bus_unavailable", "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "at once, not after retries");
    assert_eq!(a.status_of("steady").await.unwrap_err().code(), "bus_unavailable");
    assert_eq!(a.status_of("elsewhere").await.unwrap_err().code(), "bus_unavailable", "not 'unknown'");
    assert_eq!(a.register_remote("other", digest(2)).await.unwrap_err().code(), "bus_unavailable");
    assert!(a.dead_letters_recent(10).await.is_err());
    assert!(
        matches!(a.authenticate_shared("elsewhere", &digest(5)).await, Err(AuthFailure::BusUnavailable(_))),
        "a name not known here cannot be looked up"
    );
    assert!(a.authenticate_shared("steady", &digest(1)).await.is_ok(), "a known one still authenticates");
    // Redis back without its data: the mirror gives the registration back, sends work.
    redis.restart();
    let deadline = Instant::now() + WAIT;
    loop {
        if a.send(msg("api", "steady", 2)).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the bus did not come back");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let b = instance(&redis, "ib", ModulesConfig::default());
    assert!(b.authenticate_shared("steady", &digest(1)).await.is_ok(), "the token works again");
    let acc = account(&b, "steady").await;
    identity(&acc);
}

#[actix_rt::test]
async fn queues_survive_a_restart_of_redis_with_its_data() {
    let mut redis = RedisServer::start_persistent();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("patient", digest(1)).await.unwrap();
    for n in 0..3 {
        a.send(msg("api", "patient", n)).await.unwrap();
    }
    redis.kill();
    redis.restart();
    // The uplink connects again by itself; the queue is where it was.
    let b = instance(&redis, "ib", ModulesConfig::default());
    let on_b = connect(&b, "patient", all, false).await;
    until("the queue, after Redis came back", || on_b.count() == 3).await;
    assert_eq!(on_b.payloads(), [json!(0), json!(1), json!(2)]);
    let deadline = Instant::now() + WAIT;
    while a.send(msg("api", "patient", 3)).await.is_err() {
        assert!(Instant::now() < deadline, "A never reached Redis again");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    until("then A's next one", || on_b.count() == 4).await;
    settled(&a, "patient", 4, 4).await;
}

#[actix_rt::test]
async fn a_lease_redis_lost_is_taken_again_and_the_connection_kept() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("kept", digest(1)).await.unwrap();
    let on_a = connect(&a, "kept", all, false).await;
    a.send(msg("api", "kept", 0)).await.unwrap();
    until("the first one", || on_a.count() == 1).await;
    // What a failover to a replica that lacks the key, or an expiry during an outage, does.
    assert_eq!(redis.command(&["DEL", "t:bus:at:kept"]).unwrap(), ":1");
    until("the holder takes its lease again", || redis.command(&["GET", "t:bus:at:kept"]).is_ok_and(|r| r == "$2"))
        .await;
    for n in 1..4 {
        a.send(msg("api", "kept", n)).await.unwrap();
    }
    until("the rest", || on_a.count() == 4).await;
    assert!(!*on_a.closed.lock().unwrap(), "not closed as replaced");
    assert_eq!(on_a.payloads(), (0..4).map(|n| json!(n)).collect::<Vec<_>>());
    settled(&a, "kept", 4, 4).await;
}

#[actix_rt::test]
async fn a_stopping_instance_releases_its_leases_so_another_takes_over_at_once() {
    let redis = RedisServer::start();
    let lease = Duration::from_secs(30);
    let a = instance_with_lease(&redis, "ia", ModulesConfig::default(), lease);
    let b = instance_with_lease(&redis, "ib", ModulesConfig::default(), lease);
    a.register_remote("leaving", digest(1)).await.unwrap();
    let on_a = connect(&a, "leaving", below_four, false).await;
    for n in 0..6 {
        a.send(msg("api", "leaving", n)).await.unwrap();
    }
    until("A got six", || on_a.count() == 6).await;
    let started = Instant::now();
    // Its connection never ends by itself here: after the wait, given back anyway.
    a.release_shared(Duration::from_millis(200)).await;
    assert_eq!(redis.command(&["EXISTS", "t:bus:at:leaving"]).unwrap(), ":0", "the lease is released");
    let on_b = connect(&b, "leaving", all, false).await;
    until("B gets what A's connection held", || on_b.count() == 2).await;
    assert!(started.elapsed() < lease / 2, "not after the lease: {:?}", started.elapsed());
    assert_eq!(on_b.payloads(), [json!(4), json!(5)]);
    settled(&b, "leaving", 6, 6).await;
}

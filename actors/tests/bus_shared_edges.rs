//! Edges of the shared bus found in review (docs/modules.md#several-instances), on a real
//! redis-server: a give-back Redis did not get while it was down is done again, so what a
//! connection held is delivered, not stuck (and later counted received by mistake); a
//! late reply that crossed instances is counted once; a take or a renewal racing a
//! deletion writes no key; `ttl: 0` messages queued while connected do not wait for a
//! later connection. After each: `sent` = `received` + `refused` +
//! `dead_lettered` + `waiting`.

#[path = "support/bus.rs"]
mod bus;
#[path = "support/redis.rs"]
mod redis_server;

use bus::*;
use gns3_central_actors::cache::RedisConfig;
use gns3_central_actors::modules::shared::scripts::{Lua, Scripts};
use gns3_central_actors::modules::{BusDeadReason, BusMessage, Delivered, Detach, ModulesConfig};
use gns3_central_actors::redis_link::RedisLink;
use redis_server::RedisServer;
use serde_json::json;
use std::time::Instant;

fn none(_: &BusMessage) -> bool {
    false
}

#[actix_rt::test]
async fn what_a_connection_held_comes_back_when_its_give_back_met_redis_down() {
    let mut redis = RedisServer::start_persistent();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("blip", digest(1)).await.unwrap();
    // Connected on A, confirming nothing: three held in Redis.
    let first = connect(&a, "blip", none, false).await;
    for n in 0..3 {
        a.send(msg("api", "blip", n)).await.unwrap();
    }
    until("the first connection got three", || first.count() == 3).await;
    // Redis goes away; the connection ends then: the give-back (`leave`) fails.
    redis.kill();
    first.proxy.send(Detach { session: first.session, delivered_upto: None }).await.unwrap();
    // Behind the give-back in the uplink: answered once it was (failed).
    assert_eq!(a.send(msg("api", "blip", 99)).await.unwrap_err().code(), "bus_unavailable");
    redis.restart();
    let deadline = Instant::now() + WAIT;
    while a.send(msg("api", "blip", 3)).await.is_err() {
        assert!(Instant::now() < deadline, "A never reached Redis again");
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The module comes back to the same instance: what the first connection held first.
    let second = connect(&a, "blip", all, false).await;
    until("the second connection got four", || second.count() >= 4).await;
    assert_eq!(second.payloads(), (0..4).map(|n| json!(n)).collect::<Vec<_>>());
    let acc = settled(&a, "blip", 4, 4).await;
    assert_eq!((acc.dead_lettered, acc.waiting), (0, 0));
}

#[actix_rt::test]
async fn a_reply_published_to_an_instance_whose_request_timed_out_is_counted_once() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    let b = instance(&redis, "ib", ModulesConfig::default());
    a.register_remote("asker", digest(1)).await.unwrap();
    b.register_remote("answerer", digest(2)).await.unwrap();
    // A follows the notices once it has seen B's registration by one.
    until("A follows the notices", || a.get("answerer").is_some()).await;
    // The state a request of `asker` waiting on A leaves when A's timer fired just before
    // the reply came: Redis still has the request (its key expires a little later), A
    // does not. Written as the `send` script writes it.
    assert_eq!(redis.command(&["SET", "t:bus:pending:req-1", "ia asker", "PX", "60000"]).unwrap(), "+OK");
    let mut reply = msg("answerer", "asker", 7);
    reply.correlation_id = Some("req-1".into());
    b.send(reply).await.unwrap();
    // A sends it on as a late reply: queued for the asker, counted once.
    let acc = settled(&b, "asker", 1, 0).await;
    assert_eq!(acc.waiting, 1);
    let on_a = connect(&a, "asker", all, false).await;
    until("the late reply", || on_a.count() == 1).await;
    assert_eq!(on_a.payloads(), [json!(7)]);
    settled(&b, "asker", 1, 1).await;
    assert_eq!(b.status_of("answerer").await.unwrap().unwrap().stats.sent, 1, "sent once");
    let stats = a.bus_stats().await.unwrap();
    assert_eq!((stats["replies"].as_u64(), stats["late_replies"].as_u64()), (Some(1), Some(1)));
}

#[actix_rt::test]
async fn a_take_or_a_renewal_after_a_deletion_leaves_no_key_behind() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("short", digest(1)).await.unwrap();
    a.send(msg("api", "short", 0)).await.unwrap();
    assert!(a.remove_remote("short").await.unwrap());
    // What a proxy that has not yet heard of the deletion runs next (its take or its
    // renewal queued behind the deletion in the uplink), as the uplink runs it.
    let link = RedisLink::new(&RedisConfig::from_url(redis.url())).unwrap();
    let mut c = link.multiplexed().await.unwrap();
    let scripts = Scripts::new();
    let take: Vec<String> = redis::cmd("EVALSHA")
        .arg(scripts.sha(Lua::Take))
        .arg(0)
        .arg("t")
        .arg("short")
        .arg("ia")
        .arg(10)
        .arg(100)
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(take, ["gone"]);
    let renew: i64 = redis::cmd("EVALSHA")
        .arg(scripts.sha(Lua::Renew))
        .arg(0)
        .arg("t")
        .arg("short")
        .arg("ia")
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(renew, 3);
    let left: Vec<String> = redis::cmd("KEYS").arg("t:bus:*short*").query_async(&mut c).await.unwrap();
    assert!(left.is_empty(), "keys left behind: {left:?}");
}

#[actix_rt::test]
async fn ttl_zero_messages_queued_while_connected_do_not_outlive_the_connection() {
    let redis = RedisServer::start();
    // A window of one: the first is handed (held), the others wait in the queue.
    let cfg = ModulesConfig { session_mailbox: 2, ..ModulesConfig::default() };
    let a = instance(&redis, "ia", cfg.clone());
    let b = instance(&redis, "ib", cfg);
    a.register_remote("now", digest(1)).await.unwrap();
    let first = connect(&a, "now", none, false).await;
    for n in 0..3 {
        let mut m = msg("api", "now", n);
        m.ttl = 0;
        a.send(m).await.unwrap();
    }
    until("the first is handed", || first.count() == 1).await;
    assert_eq!(redis.command(&["LLEN", "t:bus:q:now"]).unwrap(), ":2");
    first.proxy.send(Detach { session: first.session, delivered_upto: None }).await.unwrap();
    // All three were for a connected module only: expired, as on one instance.
    let mut acc = settled(&a, "now", 3, 0).await;
    let deadline = Instant::now() + WAIT;
    while acc.dead_lettered != 3 {
        assert!(Instant::now() < deadline, "not dead-lettered: {acc:?}");
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        acc = account(&a, "now").await;
    }
    identity(&acc);
    assert_eq!(acc.waiting, 0);
    let later = connect(&b, "now", all, false).await;
    let mut m = msg("api", "now", 9);
    m.ttl = 60_000;
    b.send(m).await.unwrap();
    until("the next one", || later.count() == 1).await;
    assert_eq!(later.payloads(), [json!(9)], "none of the ttl 0 ones, hours later");
}

#[actix_rt::test]
async fn a_failed_handler_whose_confirmation_redis_missed_is_still_dead_lettered() {
    let mut redis = RedisServer::start_persistent();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("fragile", digest(1)).await.unwrap();
    let on_a = connect(&a, "fragile", none, false).await;
    a.send(msg("api", "fragile", 0)).await.unwrap();
    until("handed", || on_a.count() == 1).await;
    // Its handler failed; the confirmation saying so meets Redis down.
    redis.kill();
    on_a.proxy.send(Delivered { session: on_a.session, upto: 1, failed: true }).await.unwrap();
    assert_eq!(a.send(msg("api", "fragile", 99)).await.unwrap_err().code(), "bus_unavailable");
    redis.restart();
    // Sent again by the tick, still naming the failed one.
    let deadline = Instant::now() + WAIT;
    let acc = loop {
        if let Ok(Some(st)) = a.status_of("fragile").await {
            if st.stats.messages.waiting == 0 {
                break st.stats.messages;
            }
        }
        assert!(Instant::now() < deadline, "the confirmation never reached Redis");
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    identity(&acc);
    assert_eq!((acc.sent, acc.received, acc.dead_lettered), (1, 0, 1), "{acc:?}");
    let dead = a.dead_letters_recent(10).await.unwrap();
    assert!(dead.iter().any(|d| d.module == "fragile" && d.reason == BusDeadReason::HandlerFailed), "{dead:?}");
}

#[actix_rt::test]
async fn redis_keeps_a_request_at_least_as_long_as_its_requester_waits() {
    let redis = RedisServer::start();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("asker", digest(1)).await.unwrap();
    a.register_remote("silent", digest(2)).await.unwrap();
    let m = msg("asker", "silent", 0);
    let key = format!("t:bus:pending:{}", m.id);
    let waiting = {
        let a = a.clone();
        actix_rt::spawn(async move { a.request(m, std::time::Duration::from_millis(1500)).await })
    };
    until("the request is in Redis", || redis.command(&["EXISTS", &key]).is_ok_and(|r| r == ":1")).await;
    let pttl = redis_pttl(&redis, &key);
    // The requester's timer (1500 ms) starts only once Redis answered the send: a reply
    // must find the request in Redis until then, or it is queued as a late one while the
    // requester still waits, and the requester gets `reply_timeout`.
    assert!(pttl > 1500, "the request is kept {pttl} ms, less than its requester waits");
    assert_eq!(waiting.await.unwrap().unwrap_err().code(), "reply_timeout");
}

fn redis_pttl(redis: &RedisServer, key: &str) -> i64 {
    let r = redis.command(&["PTTL", key]).unwrap();
    r.trim_start_matches(':').parse().unwrap()
}

#[actix_rt::test]
async fn a_replaced_connection_whose_give_back_met_redis_down_loses_nothing_to_the_new_one() {
    let mut redis = RedisServer::start_persistent();
    let a = instance(&redis, "ia", ModulesConfig::default());
    a.register_remote("twice", digest(1)).await.unwrap();
    let first = connect(&a, "twice", none, false).await;
    for n in 0..3 {
        a.send(msg("api", "twice", n)).await.unwrap();
    }
    until("the first connection got three", || first.count() == 3).await;
    // Redis goes away; the module connects again here: the first connection is replaced
    // and ends (its give-back fails), the second stays.
    redis.kill();
    let second = connect(&a, "twice", all, false).await;
    until("the first is told it is replaced", || *first.closed.lock().unwrap()).await;
    assert_eq!(a.send(msg("api", "twice", 99)).await.unwrap_err().code(), "bus_unavailable");
    redis.restart();
    let deadline = Instant::now() + WAIT;
    while a.send(msg("api", "twice", 3)).await.is_err() {
        assert!(Instant::now() < deadline, "A never reached Redis again");
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    until("the second connection got four", || second.count() >= 4).await;
    assert_eq!(second.payloads(), (0..4).map(|n| json!(n)).collect::<Vec<_>>(), "what the first held first");
    let acc = settled(&a, "twice", 4, 4).await;
    assert_eq!((acc.dead_lettered, acc.waiting), (0, 0));
}

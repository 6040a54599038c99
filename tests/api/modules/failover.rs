//! A Redis Sentinel failover under a flow of events and bus messages
//! (docs/modules.md#several-instances): one instance reaching Redis through a real
//! redis-sentinel, a real master and replica on loopback, the GNS3 stand-in changing its
//! topology steadily. One module sends numbered messages to another (each acknowledged;
//! one refused while Redis is unreachable is sent again, as a client must), the other
//! also takes every event. The master is SIGKILLed mid-flow; the sentinel promotes the
//! replica. Nothing is lost: every message arrives (in order of first arrival; a repeat
//! only of one the sender had to send again), every event once with no gap in one epoch,
//! and the receiver's account adds up, read from the promoted master.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{connect, register, status_until, Got, ModuleClient};
use crate::app::{spawn_app, test_settings, Target};
use crate::helpers::redis_server::RedisServer;
use crate::helpers::sentinel::{self, Sentinel};
use gns3_central::simulate::{Simulator, SimulatorOptions};
use gns3_central_actors::connector::ApiVersionSetting;

const WAIT: Duration = Duration::from_secs(30);

async fn promoted(sentinel: &Sentinel, port: u16) {
    let deadline = Instant::now() + WAIT;
    while sentinel.master_port().await != Some(port) {
        assert!(Instant::now() < deadline, "the sentinel never promoted {port}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `from..=to` to `sink`, each acknowledged, `pace` apart; one refused is sent again
/// after a pause. Adds the numbers that had to be sent more than once to `again`.
async fn send_all(src: &mut ModuleClient, from: u64, to: u64, pace: Duration, again: &mut BTreeSet<u64>) {
    for n in from..=to {
        actix_rt::time::sleep(pace).await;
        let deadline = Instant::now() + WAIT;
        loop {
            let rid = format!("m{n}-{}", again.len());
            src.send(json!({"type":"send","request_id":rid,"message":{"to":"sink","type":"flow","payload":{"n":n}}}))
                .await;
            let ack = src.until(WAIT, |v| v["request_id"] == rid.as_str()).await;
            if ack["type"] == "sent" && ack["accepted"] == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "message {n} never accepted: {ack}");
            again.insert(n);
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[actix_rt::test]
async fn a_sentinel_failover_under_events_and_bus_messages_loses_nothing() {
    let sim = Simulator::start(SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 4,
        links: true,
        activity: 25.0,
        seed: Some(21),
    })
    .await
    .expect("the stand-in starts");
    let mut master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port());
    let sentinel = Sentinel::start(master.port());
    promoted(&sentinel, master.port()).await;
    let target = Target {
        host: "127.0.0.1".into(),
        port: sim.port(),
        api: ApiVersionSetting::V2,
        username: "".into(),
        password: "".into(),
    };
    let app = spawn_app(test_settings(&target, |s| {
        s.redis.enabled = true;
        s.redis.sentinels = vec![sentinel.address()];
        s.redis.master_name = sentinel::MASTER_NAME.into();
        s.cluster.redis_timeout_ms = 300;
    }))
    .await;
    app.wait_server(WAIT, |s| s["connected"] == true).await;
    let src_t = register(&app, "src").await;
    let sink_t = register(&app, "sink").await;
    let mut src = connect(&app, "src", &src_t).await;
    let mut sink = connect(&app, "sink", &sink_t).await;
    sink.send(json!({"type":"subscribe","request_id":"s","subscriptions":["all"]})).await;
    let s = sink.until(WAIT, |v| v["request_id"] == "s").await;
    assert_eq!(s["type"], "subscribed", "{s}");

    // Before, during (until the replica is promoted) and after the failover, a message
    // every 5 ms (the pace is the flow's shape, not a wait for anything).
    let pace = Duration::from_millis(5);
    let mut again = BTreeSet::new();
    send_all(&mut src, 1, 200, pace, &mut again).await;
    master.kill();
    let mut sent = 200;
    let deadline = Instant::now() + WAIT;
    while sentinel.master_port().await != Some(replica.port()) {
        assert!(Instant::now() < deadline, "the sentinel never promoted the replica");
        send_all(&mut src, sent + 1, sent + 20, pace, &mut again).await;
        sent += 20;
    }
    send_all(&mut src, sent + 1, sent + 200, pace, &mut again).await;
    let total = sent + 200;

    // The sink reads until it has every message (and events meanwhile).
    let mut firsts: Vec<u64> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut repeats = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < total as usize {
        assert!(Instant::now() < deadline, "only {} of {total} messages; again: {again:?}", seen.len());
        match sink.read(WAIT).await {
            Got::Json(v) if v["type"] == "message" => {
                let n = v["message"]["payload"]["n"].as_u64().expect("n");
                if seen.insert(n) {
                    firsts.push(n);
                } else {
                    repeats.push(n);
                }
            }
            Got::Json(v) if v["seq"].is_u64() => events.push(v),
            Got::Json(_) => {}
            Got::Closed(code) => panic!("the sink's socket closed ({code:?})"),
        }
    }
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "in order: {firsts:?}");
    assert!(
        repeats.iter().all(|n| again.contains(n)),
        "a repeat of a message sent once: {repeats:?} (again {again:?})"
    );

    // Events: one epoch, no gap, no duplicate, across the failover.
    assert!(events.len() > 10, "events flowed: {}", events.len());
    let epoch = events[0]["epoch"].clone();
    assert!(events.iter().all(|e| e["epoch"] == epoch), "one epoch");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>(), "a gap or a duplicate in the events");

    // The account adds up (the sink has read everything, so nothing waits).
    let s = status_until(&app, "sink", WAIT, |s| {
        let m = &s["messages"];
        let n = |k: &str| m[k].as_u64().unwrap_or(u64::MAX / 8);
        n("waiting") == 0 && n("sent") == n("received") + n("refused") + n("dead_lettered")
    })
    .await;
    assert!(s["messages"]["received"].as_u64() >= Some(total), "{s}");
    app.stop().await;
    sim.stop().await;
}

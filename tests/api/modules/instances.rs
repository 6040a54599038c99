//! One bus across two service processes on one real redis-server (docs/modules.md#several-instances):
//! a module registered on one instance connects to the other with its token; targeted
//! messages, broadcasts and request/reply cross in both directions with the envelope and
//! the errors of one instance, in order; offline messages wait in Redis through a restart
//! of both instances and are drained from either; an instance SIGKILLed while requests
//! wait for its module leaves no requester in silence (a reply or `reply_timeout` for
//! each); every module's account (`messages`) adds up, and reads the same on both.
//!
//! Real processes (the binary), because "killed" must mean killed.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::{connect_at, is_message, ModuleClient};
use crate::app::ADMIN_TOKEN;
use crate::helpers::process::Service;
use crate::helpers::redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(30);

/// One `serve` process of the pair: Redis on (cache, cluster and bus on one prefix), no
/// GNS3 server reachable (the bus needs none).
async fn instance(name: &str, redis: &RedisServer, prefix: &str) -> Service {
    let closed = crate::helpers::free_port();
    let config = format!(
        r#"
[http]
bind = "127.0.0.1:{{PORT}}"
workers = 1

[gns3.servers.default]
host = "127.0.0.1"
port = {closed}

[cache]
prefix = "{prefix}"

[redis]
enabled = true
url = "{url}"

[cluster]
instance_id = "{name}"
lease_ms = 1500

[modules]
request_timeout_ms = 3000

[[auth.tokens]]
name = "test-admin"
role = "admin"
hash = "{hash}"
"#,
        url = redis.url(),
        hash = gns3_central::auth::token::hash(ADMIN_TOKEN),
    );
    Service::start(&config, &[], &[("RUST_LOG", "info")]).await
}

fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(10)).bearer_auth(ADMIN_TOKEN).finish()
}

async fn get(s: &Service, path: &str) -> (u16, Value) {
    let mut res = client().get(format!("{}{path}", s.base)).send().await.expect("the instance answers");
    let body = res.json::<Value>().limit(16 << 20).await.unwrap_or(Value::Null);
    (res.status().as_u16(), body)
}

async fn post(s: &Service, path: &str, body: &Value) -> (u16, Value) {
    let mut res = client().post(format!("{}{path}", s.base)).send_json(body).await.expect("the instance answers");
    let body = res.json::<Value>().limit(16 << 20).await.unwrap_or(Value::Null);
    (res.status().as_u16(), body)
}

async fn register(s: &Service, name: &str) -> String {
    let (status, body) = post(s, "/api/v2/modules", &json!({"name": name})).await;
    assert_eq!(status, 201, "register {name}: {body}");
    body["token"].as_str().expect("a token").to_owned()
}

/// The module's account on `s`, once it satisfies `pred`.
async fn account_until(s: &Service, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(s, &format!("/api/v2/modules/{name}")).await;
        assert_eq!(status, 200, "{body}");
        if pred(&body["messages"]) {
            return body;
        }
        assert!(Instant::now() < deadline, "{name}'s account not reached: {body}\n{}", s.stderr());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn adds_up(m: &Value) -> bool {
    let n = |k: &str| m[k].as_u64().unwrap_or(u64::MAX / 8);
    n("sent") == n("received") + n("refused") + n("dead_lettered") + n("waiting")
}

fn payloads(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["message"]["payload"]["n"].as_u64()).collect()
}

/// Reads `n` bus messages of `kind` (other frames are kept for later reads).
async fn messages(c: &mut ModuleClient, kind: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(c.until(WAIT, |v| is_message(v, kind)).await);
    }
    got
}

/// `asker` requests, `answerer` (on the other instance) replies, `asker` gets the reply.
async fn ask(asker: &mut ModuleClient, answerer: &mut ModuleClient, asker_name: &str, answerer_name: &str) {
    asker
        .send(json!({"type":"request","request_id":"r1","timeout_ms":5000,"message":{"to":answerer_name,"type":"ping.check","payload":7}}))
        .await;
    let req = answerer.until(WAIT, |v| is_message(v, "ping.check")).await;
    assert_eq!(req["message"]["reply_to"], asker_name, "{req}");
    let rid = req["message"]["id"].as_str().expect("id").to_owned();
    answerer.send(json!({"type":"reply","message":{"to":asker_name,"correlation_id":rid,"payload":{"pong":7}}})).await;
    let reply = asker.until(WAIT, |v| v["type"] == "reply").await;
    assert_eq!(reply["request_id"], "r1", "{reply}");
    assert_eq!(
        (reply["message"]["payload"]["pong"].as_u64(), reply["message"]["correlation_id"].as_str()),
        (Some(7), Some(rid.as_str())),
        "{reply}"
    );
}

#[actix_rt::test]
async fn modules_on_two_instances_use_every_bus_pattern_with_the_same_envelope_and_errors() {
    let redis = RedisServer::start();
    let prefix = format!("b{}", Uuid::new_v4().simple());
    let a = instance("a", &redis, &prefix).await;
    let b = instance("b", &redis, &prefix).await;

    // Registered on one instance each; the name is taken on both.
    let alpha_token = register(&a, "alpha").await;
    let beta_token = register(&b, "beta").await;
    let (status, body) = post(&a, "/api/v2/modules", &json!({"name": "beta"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("module_exists")), "{body}");
    for s in [&a, &b] {
        let (_, list) = get(s, "/api/v2/modules").await;
        let names: Vec<&str> =
            list["modules"].as_array().expect("modules").iter().filter_map(|m| m["name"].as_str()).collect();
        assert!(names.contains(&"alpha") && names.contains(&"beta"), "both on each instance: {list}");
    }

    // Each connects to the instance it was NOT registered on, with its own token; a token
    // for the other name is refused there as on one instance.
    let refused = super::upgrade_at(&a.base, "alpha", |r| r.bearer_auth(&beta_token)).await.err();
    assert_eq!(refused, Some(403), "beta's token for alpha");
    let mut alpha = connect_at(&b.base, "alpha", &alpha_token).await;
    let mut beta = connect_at(&a.base, "beta", &beta_token).await;

    // Targeted, acknowledged; the envelope is the one-instance envelope.
    alpha
        .send(json!({"type":"send","request_id":"s1","message":{"to":"beta","type":"scan.request","payload":{"n":0}}}))
        .await;
    let ack = alpha.until(WAIT, |v| v["type"] == "sent").await;
    assert_eq!((ack["request_id"].as_str(), ack["accepted"].as_u64()), (Some("s1"), Some(1)), "{ack}");
    let got = beta.until(WAIT, |v| is_message(v, "scan.request")).await;
    let m = &got["message"];
    assert_eq!((m["from"].as_str(), m["to"].as_str(), &m["id"]), (Some("alpha"), Some("beta"), &ack["id"]), "{got}");
    assert!(m["timestamp"].is_string() && m["ttl"].as_u64() == Some(60_000) && m["reply_to"].is_null(), "{m}");

    // Order per sender -> receiver, both ways at once.
    const N: u64 = 1000;
    for n in 1..=N {
        alpha.send(json!({"type":"send","message":{"to":"beta","type":"seq","payload":{"n":n}}})).await;
        beta.send(json!({"type":"send","message":{"to":"alpha","type":"seq","payload":{"n":n}}})).await;
    }
    let at_beta = payloads(&messages(&mut beta, "seq", N as usize).await);
    let at_alpha = payloads(&messages(&mut alpha, "seq", N as usize).await);
    let want: Vec<u64> = (1..=N).collect();
    assert_eq!(at_beta, want, "alpha -> beta in order, each once");
    assert_eq!(at_alpha, want, "beta -> alpha in order, each once");

    // Broadcast: the other module, on the other instance.
    alpha.send(json!({"type":"broadcast","request_id":"b1","message":{"type":"hello","payload":"all"}})).await;
    let ack = alpha.until(WAIT, |v| v["type"] == "sent" && v["request_id"] == "b1").await;
    assert_eq!(ack["accepted"], 1, "beta (the sinks take no bus messages): {ack}");
    let got = beta.until(WAIT, |v| is_message(v, "hello")).await;
    assert_eq!((got["message"]["to"].as_str(), got["message"]["from"].as_str()), (Some("*"), Some("alpha")));

    // Request/reply both ways.
    ask(&mut alpha, &mut beta, "alpha", "beta").await;
    ask(&mut beta, &mut alpha, "beta", "alpha").await;

    // A REST request on one instance, answered by a module connected to the other.
    let base = b.base.clone();
    let asking = actix_rt::spawn(async move {
        let mut res = client()
            .post(format!("{base}/api/v2/bus/messages"))
            .send_json(&json!({"to":"beta","type":"rest.ask","payload":1,"timeout_ms":5000}))
            .await
            .expect("answers");
        (res.status().as_u16(), res.json::<Value>().await.unwrap_or(Value::Null))
    });
    let req = beta.until(WAIT, |v| is_message(v, "rest.ask")).await;
    let id = req["message"]["id"].as_str().expect("id").to_owned();
    beta.send(json!({"type":"reply","message":{"to":"api","correlation_id":id,"payload":"done"}})).await;
    let (status, body) = asking.await.expect("joined");
    assert_eq!((status, body["payload"].as_str()), (200, Some("done")), "{body}");

    // Errors as on one instance: an unknown target, nobody answering.
    alpha.send(json!({"type":"send","request_id":"u1","message":{"to":"nobody","type":"x","payload":null}})).await;
    let e = alpha.until(WAIT, |v| v["type"] == "error" && v["request_id"] == "u1").await;
    assert_eq!(e["code"], "unknown_module", "{e}");
    alpha.send(json!({"type":"request","request_id":"t1","timeout_ms":300,"message":{"to":"beta","type":"ignored","payload":null}})).await;
    let e = alpha.until(WAIT, |v| v["type"] == "error" && v["request_id"] == "t1").await;
    assert_eq!(e["code"], "reply_timeout", "{e}");
    beta.until(WAIT, |v| is_message(v, "ignored")).await;

    // Every message accounted for, the same on both instances.
    for name in ["alpha", "beta"] {
        let on_a = account_until(&a, name, |m| adds_up(m) && m["waiting"] == 0).await;
        let on_b = account_until(&b, name, |m| adds_up(m) && m["waiting"] == 0).await;
        assert_eq!(on_a["messages"], on_b["messages"], "{name}: the account reads the same on both");
        assert_eq!(on_a["connected"], true, "{name} is connected (to the other instance): {on_a}");
    }
    // beta received: s1, N seq, hello, ping.check, rest.ask, ignored (+ its replies counted for alpha).
    let beta_s = account_until(&a, "beta", adds_up).await;
    assert!(beta_s["messages"]["received"].as_u64() >= Some(N + 5), "{beta_s}");
}

#[actix_rt::test]
async fn offline_messages_wait_in_redis_through_a_restart_of_both_instances() {
    let redis = RedisServer::start();
    let prefix = format!("b{}", Uuid::new_v4().simple());
    let mut a = instance("a", &redis, &prefix).await;
    let mut b = instance("b", &redis, &prefix).await;
    let alpha_token = register(&a, "alpha").await;
    let beta_token = register(&a, "beta").await;
    let mut alpha = connect_at(&a.base, "alpha", &alpha_token).await;
    for n in 1..=5u64 {
        alpha
            .send(json!({"type":"send","request_id":format!("q{n}"),"message":{"to":"beta","type":"queued","payload":{"n":n}}}))
            .await;
        let ack = alpha.until(WAIT, |v| v["type"] == "sent").await;
        assert_eq!(ack["accepted"], 1, "queued for the offline module: {ack}");
    }
    account_until(&b, "beta", |m| m["waiting"] == 5 && adds_up(m)).await;
    drop(alpha);

    // Both instances die without a word; two new ones start on the same Redis.
    for s in [&mut a, &mut b] {
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    let b2 = instance("b", &redis, &prefix).await;
    let _a2 = instance("a", &redis, &prefix).await;
    // The registration and the token came back from Redis (no state file here).
    let mut beta = connect_at(&b2.base, "beta", &beta_token).await;
    let got = payloads(&messages(&mut beta, "queued", 5).await);
    assert_eq!(got, [1, 2, 3, 4, 5], "in order, once");
    account_until(&b2, "beta", |m| m["waiting"] == 0 && m["received"].as_u64() >= Some(5) && adds_up(m)).await;
}

#[actix_rt::test]
async fn an_instance_killed_while_requests_wait_leaves_no_requester_in_silence() {
    let redis = RedisServer::start();
    let prefix = format!("b{}", Uuid::new_v4().simple());
    let a = instance("a", &redis, &prefix).await;
    let mut b = instance("b", &redis, &prefix).await;
    let alpha_token = register(&a, "alpha").await;
    let beta_token = register(&a, "beta").await;
    let mut alpha = connect_at(&a.base, "alpha", &alpha_token).await;
    let mut beta = connect_at(&b.base, "beta", &beta_token).await;

    // 40 requests; beta answers the first 10, then its instance is SIGKILLed.
    const R: usize = 40;
    for i in 0..R {
        alpha
            .send(json!({"type":"request","request_id":format!("r{i}"),"timeout_ms":2000,"message":{"to":"beta","type":"job","payload":{"n":i}}}))
            .await;
    }
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let req = beta.until(WAIT, |v| is_message(v, "job")).await;
        reached.insert(req["message"]["payload"]["n"].as_u64().expect("n"));
        let id = req["message"]["id"].as_str().expect("id").to_owned();
        beta.send(json!({"type":"reply","message":{"to":"alpha","correlation_id":id,"payload":"ok"}})).await;
    }
    // The replies were sent; wait until they are through before killing (they are the
    // ones that must arrive), then kill.
    let mut outcomes = std::collections::BTreeMap::<String, String>::new();
    while outcomes.len() < 10 {
        let f = alpha.until(WAIT, |v| v["type"] == "reply" || v["type"] == "error").await;
        let rid = f["request_id"].as_str().expect("request_id").to_owned();
        assert!(outcomes.insert(rid, f["type"].as_str().unwrap_or("?").to_owned()).is_none(), "twice: {f}");
    }
    let _ = b.child.kill();
    let _ = b.child.wait();
    // What the killed instance had written to beta's socket before dying still arrives.
    loop {
        match beta.read(WAIT).await {
            super::Got::Json(v) if is_message(&v, "job") => {
                reached.insert(v["message"]["payload"]["n"].as_u64().expect("n"));
            }
            super::Got::Json(_) => {}
            super::Got::Closed(_) => break,
        }
    }
    drop(beta);

    // Every other request ends too: a reply (beta came back elsewhere) or reply_timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    while outcomes.len() < R {
        assert!(Instant::now() < deadline, "silence for {} requests: {outcomes:?}", R - outcomes.len());
        let f = alpha.until(WAIT, |v| v["type"] == "reply" || v["type"] == "error").await;
        let rid = f["request_id"].as_str().expect("request_id").to_owned();
        let what = if f["type"] == "error" { f["code"].as_str().unwrap_or("?").to_owned() } else { "reply".into() };
        assert!(what == "reply" || what == "reply_timeout", "{f}");
        assert!(outcomes.insert(rid, what).is_none(), "one outcome per request: {f}");
    }
    assert_eq!(outcomes.values().filter(|w| *w == "reply").count(), 10, "{outcomes:?}");

    // beta comes back on the surviving instance: what the killed one held for it and had
    // not written is delivered again (at least once), and its account adds up there.
    let mut beta = connect_at(&a.base, "beta", &beta_token).await;
    let all: std::collections::BTreeSet<u64> = (0..R as u64).collect();
    let deadline = Instant::now() + WAIT;
    while reached.len() < R {
        assert!(Instant::now() < deadline, "never reached beta: {:?}", all.difference(&reached).collect::<Vec<_>>());
        let v = beta.until(WAIT, |v| is_message(v, "job")).await;
        reached.insert(v["message"]["payload"]["n"].as_u64().expect("n"));
    }
    account_until(&a, "beta", |m| adds_up(m) && m["waiting"] == 0).await;
}

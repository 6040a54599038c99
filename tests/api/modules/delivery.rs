//! No bus message disappears (docs/modules.md#status), against the real binary: a module
//! sending as fast as it can to one that reads slowly, which is closed with 4008 — at the
//! end every message is accounted for, exactly (`sent = received + refused +
//! dead_lettered + waiting` in `GET /api/v2/modules/{name}`), what the reader got on the
//! wire is `received`, and what waited reaches it, in order, when it connects again; and a
//! module whose TCP connection is cut while its session holds messages gets them back, in
//! order, on its next connection.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{upgrade_at, Got, ModuleClient};
use crate::helpers::process::Service;

const TOKEN: &str = "g3c_delivery-admin-token-0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

fn config(websocket: &str, modules: &str) -> String {
    format!(
        r#"
[http]
bind = "127.0.0.1:{{PORT}}"
workers = 1
[gns3.servers.default]
port = {gns3}
[websocket]
{websocket}
[modules]
{modules}
[[auth.tokens]]
name = "delivery-admin"
role = "admin"
hash = "{admin}"
"#,
        gns3 = crate::helpers::free_port(),
        admin = gns3_central::auth::token::hash(TOKEN),
    )
}

struct Api {
    base: String,
    client: awc::Client,
}

impl Api {
    fn new(svc: &Service) -> Api {
        let client = awc::Client::builder().timeout(WAIT).bearer_auth(TOKEN).finish();
        Api { base: svc.base.clone(), client }
    }

    async fn call(&self, method: awc::http::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self.client.request(method, format!("{}{path}", self.base));
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("the service answers");
        let bytes = res.body().limit(16 << 20).await.expect("a body");
        (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn register(&self, name: &str) -> String {
        let (status, body) = self.call(awc::http::Method::POST, "/api/v2/modules", Some(json!({"name": name}))).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    async fn module(&self, name: &str) -> Value {
        let (status, body) = self.call(awc::http::Method::GET, &format!("/api/v2/modules/{name}"), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the module's state until `pred` holds (every 20 ms, at most `WAIT`).
    async fn module_until(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.module(name).await;
            if pred(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "module state not reached in {WAIT:?}: {m}");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn connect(svc: &Service, name: &str, token: &str) -> ModuleClient {
    let mut c = upgrade_at(&svc.base, name, |r| r.bearer_auth(token)).await.expect("upgraded");
    assert_eq!(c.json().await["type"], "welcome");
    c
}

/// The `n` of a bus message frame.
fn seq_of(v: &Value) -> Option<u64> {
    (v["type"] == "message").then(|| v["message"]["payload"]["n"].as_u64()).flatten()
}

/// Sends `n` in `range` to `target` (with `pad` in the payload), `window` at a time, each
/// acknowledged (`sent`) or refused (an error frame); returns the refused ones.
async fn send_all(sender: &mut ModuleClient, target: &str, range: std::ops::Range<u64>, pad: &str) -> BTreeSet<u64> {
    let window = 100;
    let mut refused = BTreeSet::new();
    let mut next = range.start;
    while next < range.end {
        let batch = next..(next + window).min(range.end);
        for n in batch.clone() {
            let m = json!({"to": target, "type": "load.tick", "payload": {"n": n, "pad": pad}});
            sender.send(json!({"type": "send", "request_id": n, "message": m})).await;
        }
        for _ in batch.clone() {
            let v = sender.json().await;
            let n = v["request_id"].as_u64().unwrap_or_else(|| panic!("an answer to a send: {v}"));
            match v["type"].as_str() {
                Some("sent") => assert_eq!(v["accepted"], 1, "{v}"),
                Some("error") => {
                    refused.insert(n);
                }
                _ => panic!("unexpected answer {v}"),
            }
        }
        next = batch.end;
    }
    refused
}

fn account(m: &Value) -> (u64, u64, u64, u64, u64) {
    let a = &m["messages"];
    let g = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("messages.{k} in {m}"));
    (g("sent"), g("received"), g("refused"), g("dead_lettered"), g("waiting"))
}

fn balanced(m: &Value) -> bool {
    let (sent, received, refused, dead, waiting) = account(m);
    sent == received + refused + dead + waiting
}

#[actix_rt::test]
async fn a_slow_reader_closed_with_4008_loses_nothing() {
    /// With 1 KiB each, three times what the socket's buffers on loopback take.
    const N: u64 = 12_000;
    const OFFLINE: u64 = 200;
    let svc = Service::start(
        &config("queue_frames = 256\nunflushed_bytes = 16384", &format!("offline_queue = {OFFLINE}")),
        &[],
        &[],
    )
    .await;
    let api = Api::new(&svc);
    let (fast_token, slow_token) = (api.register("fast").await, api.register("slow").await);
    let mut fast = connect(&svc, "fast", &fast_token).await;
    let mut slow = connect(&svc, "slow", &slow_token).await;

    // The slow reader: one frame per millisecond, until its connection closes.
    let reader = actix_rt::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match slow.read(WAIT).await {
                Got::Json(v) => seen.extend(seq_of(&v)),
                Got::Closed(code) => return (seen, code),
            }
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let refused = send_all(&mut fast, "slow", 0..N, &"x".repeat(1024)).await;
    let (wire, code) = reader.await.expect("the reader ends");
    assert_eq!(code, Some(4008), "the slow reader is closed as a slow consumer");
    assert!(wire.windows(2).all(|w| w[0] < w[1]), "in order, no duplicate");

    // Every message accounted for, and `received` is what the reader got on the wire.
    let m = api.module_until("slow", |m| m["connected"] == false && m["messages"]["received"] == wire.len()).await;
    let (sent, received, refused_n, dead, waiting) = account(&m);
    assert_eq!((sent, refused_n), (N, refused.len() as u64), "{m}");
    assert!(balanced(&m), "sent = received + refused + dead_lettered + waiting: {m}");
    assert!(waiting <= OFFLINE && waiting > 0 && dead > 0, "{m}");
    assert_eq!(m["delivered"], received);

    // The rest: given up (each with a dead letter), or waiting and delivered, in order,
    // after what it got before, when it connects again.
    let mut slow = connect(&svc, "slow", &slow_token).await;
    let mut after = Vec::new();
    while after.len() < waiting as usize {
        after.extend(seq_of(&slow.json().await));
    }
    assert!(after.windows(2).all(|w| w[0] < w[1]) && after[0] > *wire.last().expect("some on the wire"));
    let m = api.module_until("slow", |m| m["messages"]["waiting"] == 0).await;
    assert_eq!(account(&m), (N, wire.len() as u64 + waiting, refused.len() as u64, dead, 0), "{m}");

    let got: BTreeSet<u64> = wire.iter().chain(&after).copied().collect();
    let lost: BTreeSet<u64> = (0..N).filter(|n| !got.contains(n) && !refused.contains(n)).collect();
    assert_eq!(lost.len() as u64, dead, "the ones neither received nor refused are the dead-lettered ones");
    let (_, letters) = api.call(awc::http::Method::GET, "/api/v2/bus/dead-letters?limit=1000", None).await;
    // The account is in the OpenAPI schema of the module's state.
    let (_, schema) = api.call(awc::http::Method::GET, "/api/schema/", None).await;
    let props = &schema["components"]["schemas"]["MessageAccount"]["properties"];
    for field in ["sent", "received", "refused", "dead_lettered", "waiting"] {
        assert!(props[field].is_object(), "MessageAccount.{field} in {props}");
    }
    let letters = letters.as_array().expect("a list");
    assert_eq!(letters.len() as u64, dead.min(1000));
    for l in letters {
        let n = l["message"]["payload"]["n"].as_u64().expect("the message");
        assert!(lost.contains(&n) && l["module"] == "slow" && l["reason"] == "offline_queue_full", "{l}");
    }
}

#[actix_rt::test]
async fn a_module_cut_off_mid_stream_gets_back_what_its_session_held_in_order() {
    /// With 1 KiB each, twice what the socket's buffers on loopback take (at most ~4 MiB).
    const M: u64 = 8_000;
    let svc = Service::start(
        &config(
            "queue_frames = 100000\nqueue_bytes = 67108864\nunflushed_bytes = 16384",
            "offline_queue = 10000\nsession_mailbox = 10000",
        ),
        &[],
        &[],
    )
    .await;
    let api = Api::new(&svc);
    let (a_token, b_token) = (api.register("sender").await, api.register("cut").await);
    let mut a = connect(&svc, "sender", &a_token).await;
    // Connected, and reading nothing more: the socket's buffers fill, then the session's.
    let b = connect(&svc, "cut", &b_token).await;
    assert!(send_all(&mut a, "cut", 0..M, &"x".repeat(1024)).await.is_empty());
    let held = api.module_until("cut", |m| m["messages"]["sent"] == M && m["mailbox_depth"].as_u64() > Some(0)).await;
    assert!(balanced(&held), "{held}");
    // The TCP connection is cut (closed with unread data: a reset), as when a module dies.
    drop(b);
    api.module_until("cut", |m| m["connected"] == false).await;

    let mut b = connect(&svc, "cut", &b_token).await;
    let mut back = Vec::new();
    while back.last() != Some(&(M - 1)) {
        back.extend(seq_of(&b.json().await));
    }
    let first = back[0];
    assert_eq!(back, (first..M).collect::<Vec<_>>(), "what the session held, in order, nothing twice");
    let m = api.module_until("cut", |m| m["messages"]["waiting"] == 0).await;
    // Before the cut, `first` messages were written to the socket (counted delivered then).
    assert_eq!(account(&m), (M, M, 0, 0, 0), "{m}");
    assert!(first < M, "the session held some");
}

#[actix_rt::test]
async fn a_reply_its_requester_could_not_be_written_waits_for_it_in_the_offline_queue() {
    /// With 1 KiB each, twice what the socket's buffers on loopback take: the reply,
    /// behind them, is still in the session's buffer when the connection is cut.
    const M: u64 = 8_000;
    let svc = Service::start(
        &config(
            "queue_frames = 100000\nqueue_bytes = 67108864\nunflushed_bytes = 16384",
            "offline_queue = 10000\nsession_mailbox = 10000",
        ),
        &[],
        &[],
    )
    .await;
    let api = Api::new(&svc);
    let (a_token, b_token) = (api.register("asker").await, api.register("answerer").await);
    let mut a = connect(&svc, "asker", &a_token).await;
    let mut b = connect(&svc, "answerer", &b_token).await;
    // The asker requests, then reads nothing more.
    let ask = json!({"to": "answerer", "type": "q.ask", "payload": {"q": 1}});
    a.send(json!({"type": "request", "request_id": "r1", "timeout_ms": 60_000, "message": ask})).await;
    let request = b.until(WAIT, |v| v["type"] == "message").await;
    let id = request["message"]["id"].as_str().expect("the request's id").to_owned();
    // The answerer fills the asker's socket and session, then replies.
    assert!(send_all(&mut b, "asker", 0..M, &"x".repeat(1024)).await.is_empty());
    let answer = json!({"to": "asker", "correlation_id": id, "payload": {"a": 2}});
    b.send(json!({"type": "reply", "request_id": "ok", "message": answer})).await;
    assert_eq!(b.until(WAIT, |v| v["request_id"] == "ok").await["type"], "sent");
    let held = api.module_until("asker", |m| m["messages"]["sent"] == M + 1).await;
    assert!(balanced(&held), "{held}");
    // Cut (a reset, unread data): the reply frame was never written.
    drop(a);
    let cut =
        api.module_until("asker", |m| m["connected"] == false && m["messages"]["waiting"].as_u64() > Some(0)).await;
    assert!(balanced(&cut), "{cut}");
    assert!(account(&cut).1 <= M, "the reply is not received: {cut}");

    // On its next connection the asker gets what waited, in order, then the reply as a
    // plain message with its correlation id.
    let mut a = connect(&svc, "asker", &a_token).await;
    let mut back = Vec::new();
    let reply = loop {
        let v = a.json().await;
        if v["type"] == "message" && v["message"]["correlation_id"] == id.as_str() {
            break v;
        }
        back.extend(seq_of(&v));
    };
    assert_eq!(reply["message"]["payload"], json!({"a": 2}), "{reply}");
    assert!(!back.is_empty() && back.last() == Some(&(M - 1)), "the reply came after the messages before it");
    assert_eq!(back, (back[0]..M).collect::<Vec<_>>(), "what the session held, in order, nothing twice");
    let m = api.module_until("asker", |m| m["messages"]["waiting"] == 0).await;
    assert_eq!(account(&m), (M + 1, M + 1, 0, 0, 0), "{m}");
}

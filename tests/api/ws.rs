//! `/ws/gns3/events/` over real sockets (awc's WebSocket client): the welcome, every
//! client frame and its reply, bad frames answered with error frames on a session that
//! keeps working, resume with `since` (exactly the missed events, none twice at the
//! seam), unrecoverable resumes, node actions against real GNS3 v2, and the limits:
//! oversized frames (1009), the action rate limit, slow consumers (shedding, then 4008),
//! the heartbeat timeout and shutdown (1001). Events are published straight into the
//! service's dispatcher where GNS3 would add nothing.

use actix_http::ws::{CloseCode, Frame, Item, Message};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gns3_central::config::Settings;
use gns3_central::startup::ServeOptions;
use gns3_central_actors::dispatcher::{GetDeadLetters, Priority, PublishBatch};
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::{spawn_app, spawn_with, test_settings, Target, TestApp};
use crate::helpers::testbed::{self, Flavor};

type Framed = actix_codec::Framed<BoxedSocket, actix_http::ws::Codec>;

struct WsClient {
    framed: Framed,
    /// Replies to the server's pings (a client that does not is "silent").
    answer_pings: bool,
}

/// What a read gave.
#[derive(Debug)]
enum Got {
    Json(Value),
    Closed(Option<u16>),
}

impl WsClient {
    async fn connect(app: &TestApp) -> (WsClient, Value) {
        WsClient::connect_to(&app.base, crate::app::ADMIN_TOKEN).await
    }

    async fn connect_to(base: &str, token: &str) -> (WsClient, Value) {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let (res, framed) = client
            .ws(format!("{base}/ws/gns3/events/"))
            .bearer_auth(token)
            .max_frame_size(64 * 1024 * 1024)
            .connect()
            .await
            .expect("the WebSocket upgrade succeeds");
        assert_eq!(res.status().as_u16(), 101);
        let mut ws = WsClient { framed, answer_pings: true };
        let welcome = ws.json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (ws, welcome)
    }

    async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    async fn send_text(&mut self, t: &str) {
        self.framed.send(Message::Text(t.to_owned().into())).await.expect("the frame is sent");
    }

    /// The next frame that is not a ping (pings are answered unless told otherwise).
    async fn read(&mut self, limit: Duration) -> Got {
        let deadline = Instant::now() + limit;
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = actix_rt::time::timeout(left, self.framed.next()).await;
            let frame = match next {
                Err(_) => panic!("no frame within {limit:?}"),
                Ok(None) => return Got::Closed(None),
                Ok(Some(Err(e))) => panic!("protocol error: {e}"),
                Ok(Some(Ok(f))) => f,
            };
            match frame {
                Frame::Text(b) => return Got::Json(parse(&b)),
                Frame::Continuation(Item::FirstText(b)) | Frame::Continuation(Item::Continue(b)) => {
                    partial.extend_from_slice(&b)
                }
                Frame::Continuation(Item::Last(b)) => {
                    partial.extend_from_slice(&b);
                    return Got::Json(parse(&partial));
                }
                Frame::Ping(p) => {
                    if self.answer_pings {
                        let _ = self.framed.send(Message::Pong(p)).await;
                    }
                }
                Frame::Close(reason) => return Got::Closed(reason.map(|r| u16::from(r.code))),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn json(&mut self) -> Value {
        match self.read(Duration::from_secs(10)).await {
            Got::Json(v) => v,
            Got::Closed(code) => panic!("closed ({code:?}) while a frame was expected"),
        }
    }

    /// Reads until a frame satisfies `pred`; returns the frames before it and the frame.
    async fn until(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "frame not seen within {limit:?}; got {before:?}");
            match self.read(left).await {
                Got::Json(v) if pred(&v) => return (before, v),
                Got::Json(v) => before.push(v),
                Got::Closed(code) => panic!("closed ({code:?}); got {before:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code and the frames before it.
    async fn close_code(&mut self, limit: Duration) -> (Option<u16>, Vec<Value>) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "not closed within {limit:?}");
            match self.read(left).await {
                Got::Json(v) => before.push(v),
                Got::Closed(code) => return (code, before),
            }
        }
    }
}

fn parse(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    test_settings(&Target::nowhere(), |s| {
        s.events.priorities.insert("test.low".into(), Priority::Low);
        s.events.priorities.insert("test.high".into(), Priority::High);
        tweak(s)
    })
}

fn event(kind: &str, n: usize, pad: usize) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        server: "default".into(),
        project_id: None,
        node_id: None,
        timestamp: chrono::Utc::now(),
        correlation_id: None,
        source: Source::Module,
        data: json!({"n": n, "pad": "x".repeat(pad)}),
    }
}

/// Publishes into the service's dispatcher, as a connector or a module would.
async fn publish(app: &TestApp, kind: &str, range: std::ops::Range<usize>, pad: usize) {
    let d = app.state.dispatcher.clone().expect("events are on");
    let out = d.send(PublishBatch(range.map(|n| event(kind, n, pad)).collect())).await.expect("dispatcher runs");
    assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");
}

fn n_of(e: &Value) -> u64 {
    e["data"]["n"].as_u64().unwrap_or_else(|| panic!("no data.n: {e}"))
}

#[actix_rt::test]
async fn welcome_ping_and_bad_frames_leave_the_session_working() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, welcome) = WsClient::connect(&app).await;
    assert!(Uuid::parse_str(welcome["session_id"].as_str().unwrap_or("")).is_ok(), "{welcome}");
    assert!(welcome["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{welcome}");
    assert!(welcome["last_seq"].is_u64(), "{welcome}");
    assert_eq!(welcome["limits"]["max_frame_bytes"], 65536);
    assert_eq!(welcome["principal"]["role"], "admin");

    let bad: [(&str, &str, Option<&str>); 8] = [
        ("{nope", "invalid_json", None),
        ("[1,2]", "invalid_frame", None),
        (r#"{"request_id":"r1"}"#, "missing_field", Some("r1")),
        (r#"{"type":"dance","request_id":"r2"}"#, "unknown_type", Some("r2")),
        (r#"{"type":"node_action","request_id":"r3","action":"start"}"#, "missing_field", Some("r3")),
        (r#"{"type":"subscribe","subscriptions":"all","request_id":"r4"}"#, "invalid_field", Some("r4")),
        (
            r#"{"type":"subscribe","subscriptions":["node.stated"],"request_id":"r5"}"#,
            "invalid_subscription",
            Some("r5"),
        ),
        (
            r#"{"type":"node_action","request_id":"r6","action":"fly","project_id":"x","node_id":"y"}"#,
            "invalid_action",
            Some("r6"),
        ),
    ];
    for (text, code, rid) in bad {
        ws.send_text(text).await;
        let e = ws.json().await;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(code)), "{text} -> {e}");
        assert_eq!(e["request_id"].as_str(), rid, "{text} -> {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let bad_uuid =
        json!({"type":"node_action","request_id":7,"action":"start","project_id":"nope","node_id":Uuid::new_v4()});
    ws.send(bad_uuid).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_u64()), (Some("invalid_id"), Some(7)), "{e}");
    let p = Uuid::new_v4();
    ws.send(
        json!({"type":"node_action","request_id":"s1","action":"start","project_id":p,"node_id":p,"server":"nope"}),
    )
    .await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("unknown_server"), Some("s1")), "{e}");
    ws.framed.send(Message::Binary(Bytes::from_static(b"\x00\x01"))).await.expect("sent");
    assert_eq!(ws.json().await["code"], "unsupported_frame");

    ws.send(json!({"type":"ping","request_id":"p1"})).await;
    assert_eq!(ws.json().await, json!({"type":"pong","request_id":"p1"}));
    let stats = app.get("/api/v2/ws/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["active"], 1, "{}", stats.text);
    assert!(stats.body["error_frames"].as_u64() >= Some(11), "{}", stats.text);
}

#[actix_rt::test]
async fn subscribed_events_arrive_and_others_do_not() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.*"],"request_id":"s"})).await;
    let sub = ws.json().await;
    assert_eq!((sub["type"].as_str(), sub["request_id"].as_str()), (Some("subscribed"), Some("s")), "{sub}");
    assert_eq!(sub["subscriptions"], json!(["test.*"]));
    publish(&app, "other.kind", 0..3, 0).await;
    publish(&app, "test.one", 0..3, 0).await;
    for want in 0..3 {
        let e = ws.json().await;
        assert_eq!((e["type"].as_str(), n_of(&e)), (Some("test.one"), want), "{e}");
        assert!(e["id"].as_str().is_some_and(|id| id.ends_with(&format!("-{}", e["seq"]))), "{e}");
    }
    // Unsubscribed: nothing more arrives, the next frame is the pong.
    ws.send(json!({"type":"unsubscribe","subscriptions":["test.*"]})).await;
    assert_eq!(ws.json().await["subscriptions"], json!([]));
    publish(&app, "test.one", 3..5, 0).await;
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[actix_rt::test]
async fn oversized_frame_closes_with_1009() {
    let app = spawn_app(settings(|s| s.websocket.max_frame_bytes = 1024)).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send_text(&format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(2000))).await;
    let (code, _) = ws.close_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(u16::from(CloseCode::Size)));
    // A frame under the limit is fine on a new session.
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send_text(&format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(500))).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[actix_rt::test]
async fn resume_replays_exactly_the_missed_events_without_a_seam() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.resume"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    publish(&app, "test.resume", 0..1, 0).await;
    let first = ws.json().await;
    assert_eq!(n_of(&first), 0);
    let last_seen = first["id"].as_str().expect("id").to_owned();
    drop(ws);

    // Missed while away, with events of another type between them.
    publish(&app, "test.resume", 1..4, 0).await;
    publish(&app, "test.other", 0..2, 0).await;
    // More are published while the client resubscribes: each must come exactly once,
    // in the replay or live.
    let publisher = {
        let d = app.state.dispatcher.clone().expect("events");
        actix_rt::spawn(async move {
            for n in 4..200 {
                let _ = d.send(PublishBatch(vec![event("test.resume", n, 0)])).await;
                if n % 10 == 0 {
                    actix_rt::task::yield_now().await;
                }
            }
        })
    };
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.resume"],"since":last_seen,"request_id":"again"})).await;
    let (_, _) = ws.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await;
    let (early, replay) = ws.until(Duration::from_secs(10), |v| v["type"] == "replay").await;
    assert!(early.is_empty(), "live events before the replay: {early:?}");
    assert_eq!(replay["recovered"], true, "{replay}");
    let mut got: Vec<u64> = replay["events"].as_array().expect("events").iter().map(n_of).collect();
    assert_eq!(replay["count"].as_u64(), Some(got.len() as u64));
    assert!(got.len() >= 3 && got[..3] == [1, 2, 3], "{got:?}");
    publisher.await.expect("publisher ran");
    while got.last() != Some(&199) {
        let e = ws.json().await;
        assert_eq!(e["type"], "test.resume", "{e}");
        got.push(n_of(&e));
    }
    assert_eq!(got, (1..200).collect::<Vec<_>>(), "a gap or a duplicate at the seam");
}

#[actix_rt::test]
async fn unrecoverable_resume_sends_a_fresh_topology() {
    let app = spawn_with(settings(|_| {}), ServeOptions { test_mode: true, ..Default::default() }).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let (mut ws, welcome) = WsClient::connect(&app).await;
    let epoch = welcome["epoch"].as_str().expect("epoch").to_owned();
    let other = if epoch == "deadbeef" { "cafebabe" } else { "deadbeef" };
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":format!("{other}-3")})).await;
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    let outcome = (replay["recovered"].as_bool(), replay["reason"].as_str());
    assert_eq!(outcome, (Some(false), Some("other_epoch")), "{replay}");
    assert_eq!(replay["epoch"], epoch.as_str());
    let servers = replay["topology"]["servers"].as_array().expect("a topology");
    assert_eq!(servers[0]["server"], "default");
    assert_eq!(servers[0]["projects"].as_array().map(Vec::len), Some(2), "the stand-in's two projects");

    // A malformed id is unrecoverable too; the session goes on.
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":"garbage"})).await;
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    assert_eq!(replay["reason"], "invalid_id", "{replay}");
    ws.send(json!({"type":"request_topology","request_id":"t"})).await;
    let (_, topo) = ws.until(Duration::from_secs(20), |v| v["type"] == "topology").await;
    assert_eq!(topo["request_id"], "t");
    assert!(topo["topology"]["servers"].is_array(), "{topo}");
}

#[actix_rt::test]
async fn node_actions_are_rate_limited_per_session() {
    let app = spawn_app(settings(|s| {
        s.websocket.action_burst = 2;
        s.websocket.actions_per_second = 0.01;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..3 {
        ws.send(json!({"type":"node_action","action":"stop","project_id":p,"node_id":n,"request_id":i})).await;
    }
    let (_, limited) = ws.until(Duration::from_secs(20), |v| v["type"] == "error").await;
    assert_eq!((limited["code"].as_str(), limited["request_id"].as_u64()), (Some("rate_limited"), Some(2)));
    // The two allowed ones ran: GNS3 is down here, so they fail with its error.
    for _ in 0..2 {
        let (_, r) = ws.until(Duration::from_secs(20), |v| v["type"] == "action_result").await;
        assert_eq!((r["ok"].as_bool(), r["error"]["status"].as_u64()), (Some(false), Some(503)), "{r}");
    }
    assert_eq!(app.get("/api/v2/ws/stats").await.body["rate_limited"], 1);
}

/// The first event of `kind`, among the frames already read or the next ones.
async fn event_of(ws: &mut WsClient, seen: &[Value], kind: &str) -> Value {
    if let Some(e) = seen.iter().find(|v| v["type"] == kind) {
        return e.clone();
    }
    ws.until(Duration::from_secs(30), |v| v["type"] == kind).await.1
}

#[actix_rt::test]
async fn node_action_against_real_gns3_v2_correlates_its_events() {
    let env = testbed::gns3(Flavor::V2).await;
    let app = spawn_app(test_settings(&env.target(), |_| {})).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let project = env.create_project("ws-actions").await;
    let pid = project.id;
    let node = env.create_qemu_node(pid, "W").await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["node_status"],"projects":[pid]})).await;
    assert_eq!(ws.json().await["projects"], json!([pid]));

    // GNS3 starts the node but reports an error without ubridge: the error comes back
    // with the correlation id, and the node.started event carries it.
    ws.send(json!({"type":"node_action","action":"start","project_id":pid,"node_id":node,"request_id":"a1"})).await;
    let (seen, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!((r["request_id"].as_str(), r["ok"].as_bool()), (Some("a1"), Some(false)), "{r}");
    assert_eq!(r["error"]["status"], 409, "{r}");
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let started = event_of(&mut ws, &seen, "node.started").await;
    let node_s = node.to_string();
    assert_eq!((started["node_id"].as_str(), started["correlation_id"].as_str()), (Some(&*node_s), Some(&*cid)));

    ws.send(json!({"type":"node_action","action":"suspend","project_id":pid,"node_id":node,"request_id":"a2"})).await;
    let (seen, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!((r["request_id"].as_str(), r["ok"].as_bool()), (Some("a2"), Some(true)), "{r}");
    assert_eq!(r["outcome"]["node"]["status"], "suspended", "{r}");
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let suspended = event_of(&mut ws, &seen, "node.suspended").await;
    assert_eq!(suspended["correlation_id"].as_str(), Some(&*cid));

    ws.send(json!({"type":"node_action","action":"stop","project_id":pid,"node_id":node,"request_id":"a3"})).await;
    let (_, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(env.node_status(pid, node).await, "stopped");

    // A node stopped through REST: the subscribed client gets its node.stopped, tagged
    // with the REST answer's correlation id; then the whole topology on request.
    ws.send(json!({"type":"node_action","action":"start","project_id":pid,"node_id":node,"request_id":"a4"})).await;
    let (seen, _) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    event_of(&mut ws, &seen, "node.started").await;
    let base = format!("/api/v2/servers/default/projects/{pid}/nodes/{node}/actions/stop");
    let stop = app.post_json(&base, &json!({})).await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    let stopped = event_of(&mut ws, &[], "node.stopped").await;
    assert_eq!(stopped["node_id"].as_str(), Some(&*node_s));
    assert_eq!(stopped["correlation_id"], stop.body["correlation_id"], "{stopped}");
    ws.send(json!({"type":"request_topology","project_id":pid,"request_id":"t"})).await;
    let (_, t) = ws.until(Duration::from_secs(30), |v| v["type"] == "topology").await;
    let text = t.to_string();
    assert!(text.contains(&node_s) && text.contains("\"stopped\""), "{t}");
    project.delete().await;
}

#[actix_rt::test]
async fn slow_consumer_is_shed_then_told_and_keeps_its_session() {
    let app = spawn_app(settings(|s| {
        s.websocket.queue_frames = 32;
        s.websocket.queue_bytes = 256 * 1024;
        s.websocket.unflushed_bytes = 64 * 1024;
        s.events.delivery.dead_letter_capacity = 100_000;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.low"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    // The client reads nothing while ~32 MB of LOW events are published: far more than
    // the socket buffers and the session's queue hold.
    let published = 4000;
    for from in (0..published).step_by(200) {
        publish(&app, "test.low", from..from + 200, 8 * 1024).await;
    }
    let d = app.state.dispatcher.clone().expect("events");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ds = d.send(gns3_central_actors::dispatcher::GetStats).await.expect("stats");
        let c = ds.by_type.get("test.low").cloned().unwrap_or_default();
        // Nothing lost before the session, and the cache (which follows every event) kept up.
        let letters = d.send(GetDeadLetters { limit: 100_000 }).await.expect("dead letters");
        let ours = letters.iter().filter(|l| l.subscriber_label.starts_with("ws:")).count();
        let cache = letters.iter().filter(|l| &*l.subscriber_label == "cache").count();
        assert_eq!((c.shed, ours, cache), (0, 0, 0), "lost before the session or the cache: {c:?}");
        if c.dispatched == published as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "not dispatched in 60 s: {c:?}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Reading again: events and `missed` frames that count the others, then the session
    // still answers.
    let (mut events, mut missed, mut last) = (0u64, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while events + missed < published as u64 {
        assert!(Instant::now() < deadline, "{events} events and {missed} missed of {published}");
        let v = ws.json().await;
        match v["type"].as_str() {
            Some("test.low") => {
                let n = n_of(&v);
                assert!(last < Some(n), "out of order: {n} after {last:?}");
                last = Some(n);
                events += 1;
            }
            Some("missed") => missed += v["count"].as_u64().expect("count"),
            _ => panic!("unexpected frame {v}"),
        }
    }
    assert!(missed > 0 && events > 0, "{events} events, {missed} missed");
    ws.send(json!({"type":"ping","request_id":"after"})).await;
    assert_eq!(ws.json().await["request_id"], "after");
    let stats = app.get("/api/v2/ws/stats").await.body;
    assert_eq!(stats["shed_low"].as_u64(), Some(missed), "{stats}");
    // What waited for this client stayed within its bounds all along (one event is ~8.3 KB;
    // a `missed` frame may precede it).
    assert!(stats["peak_queued_bytes"].as_u64() <= Some(256 * 1024), "{stats}");
    assert!(stats["peak_unflushed_bytes"].as_u64() <= Some(64 * 1024 + 9 * 1024), "{stats}");
    assert!(stats["peak_unflushed_bytes"].as_u64() > Some(32 * 1024), "the writer was used: {stats}");
    assert_eq!(stats["active"], 1, "{stats}");
}

#[actix_rt::test]
async fn slow_consumer_of_high_events_is_closed_with_4008() {
    let app = spawn_app(settings(|s| {
        s.websocket.queue_frames = 32;
        s.websocket.queue_bytes = 256 * 1024;
        s.websocket.unflushed_bytes = 64 * 1024;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.high"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = 0;
    loop {
        publish(&app, "test.high", published..published + 200, 8 * 1024).await;
        published += 200;
        let stats = app.get("/api/v2/ws/stats").await.body;
        if stats["closed_slow"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not closed after {published} events: {stats}");
    }
    let (code, _) = ws.close_code(Duration::from_secs(60)).await;
    assert_eq!(code, Some(4008));
}

#[actix_rt::test]
async fn silent_client_is_closed_after_the_timeout() {
    let app = spawn_app(settings(|s| {
        s.websocket.heartbeat_interval_ms = 100;
        s.websocket.client_timeout_ms = 500;
    }))
    .await;
    // A client that answers pings outlives the timeout several times over.
    let (mut alive, _) = WsClient::connect(&app).await;
    let stay = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < stay {
        alive.send(json!({"type":"ping"})).await;
        assert_eq!(alive.json().await["type"], "pong");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    drop(alive);
    // Timed from before the upgrade: the session counts its silence from its creation,
    // and a connect slowed down by a loaded machine must not eat into the bound.
    let began = Instant::now();
    let (mut silent, _) = WsClient::connect(&app).await;
    silent.answer_pings = false;
    let (code, _) = silent.close_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(u16::from(CloseCode::Policy)));
    assert!(began.elapsed() >= Duration::from_millis(400), "{:?}", began.elapsed());
    assert_eq!(app.get("/api/v2/ws/stats").await.body["closed_timeout"], 1);
}

#[actix_rt::test]
async fn shutdown_closes_sessions_with_1001() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut a, _) = WsClient::connect(&app).await;
    let (mut b, _) = WsClient::connect(&app).await;
    let began = Instant::now();
    let stopping = actix_rt::spawn({
        let s = app.shutdown.clone();
        async move { s.shutdown().await }
    });
    assert_eq!(a.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    assert_eq!(b.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    stopping.await.expect("shutdown ran");
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    assert!(app.client.get(app.url("/healthz")).send().await.is_err(), "the server still answers");
}

#[actix_rt::test]
async fn subscription_limit_and_disabled_events_are_error_frames() {
    let app = spawn_app(settings(|s| s.websocket.max_subscriptions = 2)).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["node_status","test.a"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    ws.send(json!({"type":"subscribe","subscriptions":["test.b"],"request_id":"third"})).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("too_many_subscriptions"), Some("third")), "{e}");
    // The session keeps its two names: their events still arrive.
    publish(&app, "test.a", 0..1, 0).await;
    assert_eq!(ws.json().await["type"], "test.a");

    let off = spawn_with(settings(|_| {}), ServeOptions { no_events: true, ..Default::default() }).await;
    let (mut ws, welcome) = WsClient::connect(&off).await;
    assert_eq!((welcome["events_enabled"].as_bool(), welcome["epoch"].as_str()), (Some(false), None));
    ws.send(json!({"type":"subscribe","subscriptions":["all"]})).await;
    assert_eq!(ws.json().await["code"], "events_disabled");
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong");
}

/// SIGTERM to the real binary: the session gets 1001, then the process exits.
#[actix_rt::test]
async fn sigterm_closes_sessions_with_1001_then_the_process_exits() {
    let port = crate::helpers::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gns3-central"))
        .args(["serve", "--test-mode"])
        .env("GNS3_CENTRAL__HTTP__BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    // Without configured tokens, on loopback, the admin token for this run is printed once.
    let stdout = child.stdout.take().expect("stdout");
    let token = actix_rt::task::spawn_blocking(move || {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(stdout).lines().map_while(Result::ok);
        // `export TOKEN=g3c_…` (docs/access-control.md); bounded: the line comes first or never.
        lines.take(20).find_map(|l| l.strip_prefix("export TOKEN=").map(str::to_owned))
    })
    .await
    .expect("reader")
    .expect("the generated admin token on stdout");
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the service did not come up");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut ws, _) = WsClient::connect_to(&base, &token).await;
    let began = Instant::now();
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM failed");
    assert_eq!(ws.close_code(Duration::from_secs(10)).await.0, Some(u16::from(CloseCode::Away)));
    let exited = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if began.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the process did not exit within 15 s of SIGTERM");
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}");
}

/// The upgrade's status (and the echoed subprotocol) for a request built by `build`.
async fn upgrade(
    app: &TestApp,
    build: impl FnOnce(awc::ws::WebsocketsRequest) -> awc::ws::WebsocketsRequest,
) -> (u16, Option<String>, Option<WsClient>) {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let req = build(client.ws(format!("{}/ws/gns3/events/", app.base)));
    match req.connect().await {
        Ok((res, framed)) => {
            let proto = res.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (res.status().as_u16(), proto, Some(WsClient { framed, answer_pings: true }))
        }
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => (s.as_u16(), None, None),
        Err(e) => panic!("upgrade failed unexpectedly: {e}"),
    }
}

#[actix_rt::test]
async fn the_upgrade_needs_a_valid_token_from_an_allowed_origin_and_roles_and_projects_apply() {
    const VIEWER: &str = "g3c_ws-viewer-token-00000000000000000000000000000000";
    const SCOPED: &str = "g3c_ws-scoped-token-00000000000000000000000000000000";
    let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
    let app = spawn_app(settings(|s| {
        s.auth.tokens.push(crate::app::token_setting("viewer", "viewer", VIEWER, &[]));
        s.auth.tokens.push(crate::app::token_setting("scoped", "operator", SCOPED, &[mine.to_string()]));
    }))
    .await;
    let admin = crate::app::ADMIN_TOKEN;

    // No token, a wrong token: 401 before the upgrade.
    assert_eq!(upgrade(&app, |r| r).await.0, 401);
    assert_eq!(upgrade(&app, |r| r.bearer_auth("g3c_wrong")).await.0, 401);
    // A foreign origin: 403 before the upgrade, even with a good token; the own host is fine.
    assert_eq!(upgrade(&app, |r| r.bearer_auth(admin).origin("http://evil.example")).await.0, 403);
    let own = app.base.clone();
    assert_eq!(upgrade(&app, |r| r.bearer_auth(admin).origin(own.as_str())).await.0, 101);
    let counted = app.get("/api/v2/auth/stats").await.body;
    assert_eq!(counted, json!({"unauthenticated": 2, "forbidden": 0, "origin_not_allowed": 1}), "refusals counted");
    // The token in the query, or as the `bearer.<token>` subprotocol (echoed back).
    let base = app.base.clone();
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let (res, _framed) =
        client.ws(format!("{base}/ws/gns3/events/?token={admin}")).connect().await.expect("query token");
    assert_eq!(res.status().as_u16(), 101);
    let proto = format!("bearer.{admin}");
    let (status, echoed, _) = upgrade(&app, |r| r.protocols([proto.as_str()])).await;
    assert_eq!((status, echoed.as_deref()), (101, Some(proto.as_str())));

    // A viewer subscribes but may not act.
    let (status, _, ws) = upgrade(&app, |r| r.bearer_auth(VIEWER)).await;
    assert_eq!(status, 101);
    let mut ws = ws.expect("session");
    let welcome = ws.json().await;
    assert_eq!(welcome["principal"]["role"], "viewer", "{welcome}");
    let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
    ws.send(json!({"type":"node_action","action":"start","project_id":p,"node_id":n,"request_id":"x"})).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("forbidden"), Some("x")), "{e}");

    // A project-scoped token gets its project's events only.
    let (_, _, ws) = upgrade(&app, |r| r.bearer_auth(SCOPED)).await;
    let mut ws = ws.expect("session");
    assert_eq!(ws.json().await["principal"]["projects"], json!([mine.to_string()]));
    ws.send(json!({"type":"subscribe","subscriptions":["all"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let d = app.state.dispatcher.clone().expect("events are on");
    let mut batch = Vec::new();
    for (i, project) in [other, mine, other, mine].into_iter().enumerate() {
        let mut e = event("test.high", i, 0);
        e.project_id = Some(project);
        batch.push(e);
    }
    d.send(PublishBatch(batch)).await.expect("dispatcher runs");
    for want in [1, 3] {
        let e = ws.json().await;
        assert_eq!((e["project_id"].as_str(), n_of(&e)), (Some(mine.to_string().as_str()), want), "{e}");
    }
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong", "nothing of the other project came in between");
}

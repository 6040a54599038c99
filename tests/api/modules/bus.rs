//! The bus between two remote modules over real WebSockets and one in-process module:
//! targeted, broadcast, request/reply both ways, the reply timeout, the offline queue
//! (TTL expiry, delivery on reconnect), REST senders, and the status of each module.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{connect, is_message, register, status_until};
use crate::app::{spawn_app, test_settings, Target};

#[actix_rt::test]
async fn remote_and_in_process_modules_talk_targeted_broadcast_and_request_reply() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let alpha_token = register(&app, "alpha").await;
    // The original path registers too (body {"module_name"}).
    let r =
        app.post_json("/api/common/api/gns3-central/create_module_interface/", &json!({"module_name": "beta"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let beta_token = r.body["token"].as_str().expect("token").to_owned();
    assert!(beta_token.starts_with("g3m_") && beta_token != alpha_token);

    // An in-process module: records what it gets, answers requests.
    let gamma = app.state.modules.module("gamma").expect("in-process module");
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = seen.clone();
    gamma
        .on_message(move |m| {
            s.lock().unwrap().push(json!({"from": m.from, "type": m.kind, "payload": m.payload}));
            let answer = (m.kind == "ask").then(|| json!({"gamma_says": m.payload}));
            async move { Ok(answer) }
        })
        .await
        .expect("gamma listens");

    let mut alpha = connect(&app, "alpha", &alpha_token).await;
    let mut beta = connect(&app, "beta", &beta_token).await;

    // Targeted, acknowledged because it carries a request_id.
    alpha
        .send(json!({"type":"send","request_id":"s1","message":{"to":"beta","type":"scan.request","payload":{"n":1}}}))
        .await;
    let ack = alpha.until(Duration::from_secs(10), |v| v["type"] == "sent").await;
    assert_eq!((ack["request_id"].as_str(), ack["accepted"].as_u64()), (Some("s1"), Some(1)), "{ack}");
    let got = beta.until(Duration::from_secs(10), |v| is_message(v, "scan.request")).await;
    let m = &got["message"];
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str(), m["payload"]["n"].as_u64()),
        (Some("alpha"), Some("beta"), Some(1)),
        "{got}"
    );
    assert_eq!(m["id"], ack["id"]);
    assert!(m["timestamp"].is_string() && m["ttl"].as_u64() == Some(60_000) && m["reply_to"].is_null(), "{m}");

    // Broadcast: every other module, not the sender.
    alpha.send(json!({"type":"broadcast","request_id":"b1","message":{"type":"hello","payload":"all"}})).await;
    let ack = alpha.until(Duration::from_secs(10), |v| v["type"] == "sent").await;
    assert_eq!(ack["accepted"], 2, "beta and gamma: {ack}");
    let got = beta.until(Duration::from_secs(10), |v| is_message(v, "hello")).await;
    assert_eq!(got["message"]["to"], "*");
    wait_for(|| seen.lock().unwrap().iter().any(|v| v["type"] == "hello")).await;

    // Request from alpha, answered by beta over its socket.
    alpha.send(json!({"type":"request","request_id":"r1","timeout_ms":5000,"message":{"to":"beta","type":"ping.check","payload":7}})).await;
    let req = beta.until(Duration::from_secs(10), |v| is_message(v, "ping.check")).await;
    assert_eq!(req["message"]["reply_to"], "alpha", "{req}");
    let rid = req["message"]["id"].as_str().expect("id").to_owned();
    beta.send(json!({"type":"reply","message":{"to":"alpha","correlation_id":rid,"payload":{"pong":7}}})).await;
    let reply = alpha.until(Duration::from_secs(10), |v| v["type"] == "reply").await;
    assert_eq!(reply["request_id"], "r1");
    assert_eq!(
        (reply["message"]["payload"]["pong"].as_u64(), reply["message"]["correlation_id"].as_str()),
        (Some(7), Some(rid.as_str()))
    );
    assert_eq!(reply["message"]["type"], "reply");

    // Request to the in-process module (answered by its handler) ...
    alpha.send(json!({"type":"request","request_id":"r2","message":{"to":"gamma","type":"ask","payload":"q"}})).await;
    let reply = alpha.until(Duration::from_secs(10), |v| v["type"] == "reply").await;
    assert_eq!(reply["message"]["payload"], json!({"gamma_says": "q"}), "{reply}");
    // ... and from it to a remote module.
    let g = gamma.clone();
    let asking =
        actix_rt::spawn(async move { g.request("beta", "inventory", json!({}), Duration::from_secs(5)).await });
    let req = beta.until(Duration::from_secs(10), |v| is_message(v, "inventory")).await;
    let id = req["message"]["id"].as_str().expect("id").to_owned();
    beta.send(
        json!({"type":"reply","message":{"to":"gamma","correlation_id":id,"type":"inventory.result","payload":[1,2]}}),
    )
    .await;
    let answer = asking.await.expect("joined").expect("beta answers gamma");
    assert_eq!((answer.kind.as_str(), answer.payload.clone()), ("inventory.result", json!([1, 2])));

    // Nobody answers: the typed timeout, in about the time asked.
    let t0 = Instant::now();
    alpha.send(json!({"type":"request","request_id":"r3","timeout_ms":200,"message":{"to":"beta","type":"ignored","payload":null}})).await;
    let e = alpha.until(Duration::from_secs(10), |v| v["type"] == "error").await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("reply_timeout"), Some("r3")), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    beta.until(Duration::from_secs(10), |v| is_message(v, "ignored")).await;

    // A REST sender (`api`): a plain message, and a request answered by beta.
    let r = app.post_json("/api/v2/bus/messages", &json!({"to":"beta","type":"from.rest","payload":{"k":1}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = beta.until(Duration::from_secs(10), |v| is_message(v, "from.rest")).await;
    assert_eq!(got["message"]["from"], "api");
    let base = app.base.clone();
    let asking = actix_rt::spawn(async move {
        let client =
            awc::Client::builder().timeout(Duration::from_secs(30)).bearer_auth(crate::app::ADMIN_TOKEN).finish();
        let mut res = client
            .post(format!("{base}/api/v2/bus/messages"))
            .send_json(&json!({"to":"beta","type":"rest.ask","payload":1,"timeout_ms":5000}))
            .await
            .expect("answers");
        (res.status().as_u16(), res.json::<Value>().await.expect("json"))
    });
    let req = beta.until(Duration::from_secs(10), |v| is_message(v, "rest.ask")).await;
    let id = req["message"]["id"].as_str().expect("id").to_owned();
    beta.send(json!({"type":"reply","message":{"to":"api","correlation_id":id,"payload":"done"}})).await;
    let (status, body) = asking.await.expect("joined");
    assert_eq!((status, body["payload"].as_str()), (200, Some("done")), "{body}");

    // Status of each module.
    let list = app.get("/api/v2/modules").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["connected"], 3, "{}", list.text);
    let alpha_s = status_until(&app, "alpha", Duration::from_secs(5), |s| s["sent"].as_u64() >= Some(5)).await;
    assert_eq!((alpha_s["connected"].as_bool(), alpha_s["kind"].as_str()), (Some(true), Some("remote")), "{alpha_s}");
    let beta_s = app.get("/api/v2/modules/beta").await.body;
    assert!(beta_s["delivered"].as_u64() >= Some(6) && beta_s["failed"] == 0, "{beta_s}");
    assert_eq!(app.get("/api/v2/modules/gamma").await.body["kind"], "in_process");
    let stats = app.get("/api/v2/bus/stats").await.body;
    assert!(stats["timeouts"].as_u64() >= Some(1) && stats["replies"].as_u64() >= Some(4), "{stats}");
}

async fn wait_for(f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "not reached in 10 s");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn offline_messages_expire_at_their_ttl_and_the_rest_arrive_on_reconnect() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let sender_token = register(&app, "sender").await;
    let late_token = register(&app, "late").await;
    let mut sender = connect(&app, "sender", &sender_token).await;
    for (n, ttl) in [(1, 60_000), (2, 150), (3, 60_000)] {
        let frame = json!({"type":"send","request_id":n,"message":{"to":"late","type":"queued","payload":n,"ttl":ttl}});
        sender.send(frame).await;
        let ack = sender.until(Duration::from_secs(10), |v| v["type"] == "sent" || v["type"] == "error").await;
        assert_eq!(ack["type"], "sent", "{ack}");
    }
    // ttl 0 means "only if connected now".
    sender
        .send(json!({"type":"send","request_id":"z","message":{"to":"late","type":"queued","payload":0,"ttl":0}}))
        .await;
    let e = sender.until(Duration::from_secs(10), |v| v["type"] == "error").await;
    assert_eq!(e["code"], "module_offline", "{e}");
    let s = status_until(&app, "late", Duration::from_secs(10), |s| s["expired"] == 1).await;
    assert_eq!((s["connected"].as_bool(), s["mailbox_depth"].as_u64()), (Some(false), Some(2)), "{s}");

    let mut late = connect(&app, "late", &late_token).await;
    let first = late.until(Duration::from_secs(10), |v| is_message(v, "queued")).await;
    let second = late.until(Duration::from_secs(10), |v| is_message(v, "queued")).await;
    assert_eq!((first["message"]["payload"].as_u64(), second["message"]["payload"].as_u64()), (Some(1), Some(3)));
    late.send(json!({"type":"ping","request_id":"p"})).await;
    let pong = late.json().await;
    assert_eq!(pong["type"], "pong", "nothing else was queued: {pong}");
    // Delivered once written to the socket (confirmed a moment after the frames went out).
    let s = status_until(&app, "late", Duration::from_secs(5), |s| s["messages"]["waiting"] == 0).await;
    assert_eq!((s["delivered"].as_u64(), s["connections"].as_u64()), (Some(2), Some(1)), "{s}");

    // Reconnecting replaces the old connection (4009); messages keep flowing to the new one.
    let mut again = connect(&app, "late", &late_token).await;
    assert_eq!(late.close_code(Duration::from_secs(10)).await, Some(4009));
    sender.send(json!({"type":"send","message":{"to":"late","type":"after","payload":9}})).await;
    let got = again.until(Duration::from_secs(10), |v| is_message(v, "after")).await;
    assert_eq!(got["message"]["payload"], 9);
}

//! Memory that does not grow with reconnections: the real binary (a process of its own,
//! so the figure is the service's alone), fed by a GNS3 stand-in with steady activity, has
//! a few thousand dashboard and module sockets opened and closed against it — each
//! subscribing, half of them resuming with `since`, some running a node action or a bus
//! ping — and the allocator's bytes in use (`gns3central_heap_bytes` of `/metrics`,
//! glibc's `mallinfo2`) must come back within 1 MiB of the figure after warm-up (figures:
//! docs/benchmarks.md).

use actix_http::ws::{Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::process::Service;

type Framed = actix_codec::Framed<BoxedSocket, actix_http::ws::Codec>;

const TOKEN: &str = "g3c_churn-admin-token-0123456789abcdef0123456789abcdef";
/// Connections opened after warm-up: dashboards and module sockets.
const DASHBOARDS: usize = 3000;
const MODULE_SOCKETS: usize = 600;
/// Bytes the heap may have grown by once every client has gone: 1 MiB, ~290 bytes per
/// connection (the leak the issue reported was ~1,600 per connection, 5.8 MB here).
/// Measured: 0.45-0.6 MB right after the churn, falling over the following seconds (the
/// stand-in's activity keeps changing the topology and the events history meanwhile).
const GROWTH_BOUND: f64 = 1024.0 * 1024.0;

fn config(sim_port: u16) -> String {
    format!(
        r#"
[http]
bind = "127.0.0.1:{{PORT}}"
workers = 1
[gns3.servers.default]
port = {sim_port}
api_version = "v2"
[events]
history_size = 200
[audit]
max_records = 50
[websocket]
actions_per_second = 1000.0
action_burst = 1000
[[auth.tokens]]
name = "churn-admin"
role = "admin"
hash = "{admin}"
"#,
        admin = gns3_central::auth::token::hash(TOKEN),
    )
}

/// The next text frame as JSON (pings answered); `None` once closed.
async fn next_json(ws: &mut Framed) -> Option<Value> {
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(20), ws.next()).await.expect("a frame within 20 s");
        match frame? {
            Ok(Frame::Text(b)) => return Some(serde_json::from_slice(&b).expect("JSON")),
            Ok(Frame::Ping(p)) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Ok(Frame::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until a frame of `kind` (events and other frames in between are skipped).
async fn until(ws: &mut Framed, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await.unwrap_or_else(|| panic!("closed before a '{kind}' frame"));
        if v["type"] == kind {
            return v;
        }
    }
}

/// Sends a close frame and waits for the service's (or the end of the stream).
async fn close(mut ws: Framed) {
    let _ = ws.send(Message::Close(None)).await;
    while let Ok(Some(Ok(frame))) = actix_rt::time::timeout(Duration::from_secs(10), ws.next()).await {
        if matches!(frame, Frame::Close(_)) {
            break;
        }
    }
}

/// One dashboard session: welcome, subscribe (resume from a few events back when `resume`),
/// a node action when `node` is given, then a clean close.
async fn dashboard(client: &awc::Client, base: &str, resume: bool, node: Option<&(String, String)>) {
    let (_, mut ws) = client.ws(format!("{base}/ws/gns3/events/")).bearer_auth(TOKEN).connect().await.expect("upgrade");
    let welcome = until(&mut ws, "welcome").await;
    let mut sub = json!({"type": "subscribe", "subscriptions": ["all"], "request_id": "s"});
    if resume {
        let seq = welcome["last_seq"].as_u64().unwrap_or(0).saturating_sub(3);
        sub["since"] = json!(format!("{}-{seq}", welcome["epoch"].as_str().unwrap_or("")));
    }
    ws.send(Message::Text(sub.to_string().into())).await.expect("sent");
    until(&mut ws, if resume { "replay" } else { "subscribed" }).await;
    if let Some((project, node)) = node {
        let action = json!({"type": "node_action", "action": "suspend", "project_id": project, "node_id": node, "request_id": "a"});
        ws.send(Message::Text(action.to_string().into())).await.expect("sent");
        until(&mut ws, "action_result").await;
    }
    close(ws).await;
}

/// One module socket: welcome, subscribe, a bus ping, close.
async fn module(client: &awc::Client, base: &str, token: &str) {
    let (_, mut ws) =
        client.ws(format!("{base}/ws/modules/churn")).bearer_auth(token).connect().await.expect("upgrade");
    until(&mut ws, "welcome").await;
    let sub = json!({"type": "subscribe", "subscriptions": ["node_status"], "request_id": "s"});
    ws.send(Message::Text(sub.to_string().into())).await.expect("sent");
    until(&mut ws, "subscribed").await;
    ws.send(Message::Text(json!({"type": "ping", "request_id": "p"}).to_string().into())).await.expect("sent");
    until(&mut ws, "pong").await;
    close(ws).await;
}

/// `dashboards` dashboard sessions over 4 concurrent clients and `modules` module
/// sessions one after the other, all at once.
async fn churn(base: &str, module_token: &str, node: &(String, String), dashboards: usize, modules: usize) {
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (base, node) = (base.to_owned(), node.clone());
        tasks.push(actix_rt::spawn(async move {
            let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
            for i in (t..dashboards).step_by(4) {
                dashboard(&client, &base, i % 2 == 0, (i % 10 == 1).then_some(&node)).await;
            }
        }));
    }
    let (base, token) = (base.to_owned(), module_token.to_owned());
    tasks.push(actix_rt::spawn(async move {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        for _ in 0..modules {
            module(&client, &base, &token).await;
        }
    }));
    for t in tasks {
        t.await.expect("a churn task");
    }
}

/// Scrapes `/metrics` until no session and no module is connected; the heap and resident
/// figures then.
async fn settled(client: &awc::Client, base: &str) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut r = client.get(format!("{base}/metrics")).bearer_auth(TOKEN).send().await.expect("metrics");
        let text = String::from_utf8(r.body().limit(8 << 20).await.expect("a body").to_vec()).expect("UTF-8");
        let scrape = crate::helpers::prom::parse(&text);
        let open = scrape.value("gns3central_websocket_sessions", &[]).unwrap_or(-1.0);
        let modules = scrape.value("gns3central_modules_connected", &[]).unwrap_or(-1.0);
        if open == 0.0 && modules == 0.0 {
            let rss = scrape.value("gns3central_resident_bytes", &[]).expect("gns3central_resident_bytes on Linux");
            return (scrape.value("gns3central_heap_bytes", &[]).expect("gns3central_heap_bytes on glibc"), rss);
        }
        assert!(Instant::now() < deadline, "sessions still open: {open}, modules {modules}");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn reconnecting_clients_leave_no_memory_behind() {
    let sim = gns3_central::simulate::Simulator::start(gns3_central::simulate::SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 4,
        links: false,
        activity: 30.0,
        seed: Some(15),
    })
    .await
    .expect("the stand-in starts");
    let svc = Service::start(&config(sim.port()), &[], &[]).await;
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).bearer_auth(TOKEN).finish();
    let mut r = client.post(format!("{}/api/v2/modules", svc.base)).send_json(&json!({"name": "churn"})).await.unwrap();
    assert_eq!(r.status(), 201);
    let module_token = r.json::<Value>().await.unwrap()["token"].as_str().expect("a token").to_owned();
    // A node of the stand-in for the actions (its activity leaves alone nodes a client changed).
    let deadline = Instant::now() + Duration::from_secs(20);
    let node = loop {
        let mut r = client.get(format!("{}/api/v2/topology", svc.base)).send().await.expect("topology");
        let t: Value = r.json().limit(8 << 20).await.expect("JSON");
        let project = &t["servers"][0]["projects"][0];
        if let (Some(p), Some(n)) = (project["project"]["project_id"].as_str(), project["nodes"][0]["node_id"].as_str())
        {
            break (p.to_owned(), n.to_owned());
        }
        assert!(Instant::now() < deadline, "no project with a node in the topology");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };

    // Warm-up: pools, caches and the history ring reach their working size.
    churn(&svc.base, &module_token, &node, 600, 100).await;
    let (before, rss_before) = settled(&client, &svc.base).await;
    let began = Instant::now();
    churn(&svc.base, &module_token, &node, DASHBOARDS, MODULE_SOCKETS).await;
    let took = began.elapsed();
    let (after, rss_after) = settled(&client, &svc.base).await;
    let connections = (DASHBOARDS + MODULE_SOCKETS) as f64;
    let per_connection = (after - before) / connections;
    eprintln!(
        "churn: {connections} connections in {took:?}; heap {before} → {after} ({per_connection:.1} B/connection); \
         resident {rss_before} → {rss_after}"
    );
    assert!(
        after - before < GROWTH_BOUND,
        "the heap grew by {:.0} bytes over {connections} connections ({per_connection:.1} per connection)",
        after - before
    );
    sim.stop().await;
}

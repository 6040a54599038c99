//! The GNS3 passthrough (`/api/v2/servers/{server}/gns3/{path}`) against real gns3-server
//! v2 and v3: reads on the server's own API, a node created and deleted through it (and its
//! events on `/ws/gns3/events/`), GNS3's errors mapped as on every route, the audit trail of
//! every call but a GET, v3 with no GNS3 credential on the consumer's side, role and project
//! scope refusals, the refused notification streams, the deny list, a streamed image upload
//! and download (v2) compared byte for byte, a project export with its query string, other
//! methods 405, and GNS3 down: 503 with `Retry-After`.

use actix_http::ws::{Frame, Message};
use awc::http::Method;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::{error_code, spawn_app, test_settings, token_setting, Reply, Target, TestApp, ADMIN_TOKEN};
use crate::helpers::testbed::{self, Flavor, Gns3Env};

const VIEWER: &str = "g3c_passthrough-viewer-0000000000000000000000000000";
const SCOPED: &str = "g3c_passthrough-scoped-0000000000000000000000000000";
const GNS3: &str = "/api/v2/servers/default/gns3";

async fn app_for(env: &Gns3Env, tweak: impl FnOnce(&mut gns3_central::config::Settings)) -> TestApp {
    let app = spawn_app(test_settings(&env.target(), |s| {
        s.auth.tokens.push(token_setting("pt-viewer", "viewer", VIEWER, &[]));
        tweak(s);
    }))
    .await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    app
}

/// One call with `token` (any method, optional JSON body); the reply and its `X-Gns3-Api`.
async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<&Value>) -> (Reply, String) {
    let req = app.anon.request(method, app.url(path)).bearer_auth(token);
    let res = match body {
        Some(b) => req.send_json(b).await,
        None => req.send().await,
    };
    let api = res.as_ref().ok().and_then(|r| r.headers().get("x-gns3-api")).and_then(|v| v.to_str().ok());
    let api = api.unwrap_or("").to_owned();
    (crate::app::read(res).await, api)
}

/// A WebSocket on `/ws/gns3/events/` subscribed to every event of `project`.
async fn subscribe(app: &TestApp, project: Uuid) -> actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec> {
    let (_, mut ws) =
        awc::Client::new().ws(app.url("/ws/gns3/events/")).bearer_auth(ADMIN_TOKEN).connect().await.expect("upgrade");
    let frame = json!({"type": "subscribe", "subscriptions": ["all"], "projects": [project], "request_id": "s"});
    ws.send(Message::Text(frame.to_string().into())).await.expect("sent");
    until(&mut ws, |v| v["type"] == "subscribed").await;
    ws
}

/// Reads frames until one satisfies `done` (panics after 30 s); every event seen on the way.
async fn until(
    ws: &mut actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = actix_rt::time::timeout(left, ws.next()).await;
        let frame = next.unwrap_or_else(|_| panic!("no such frame in 30 s; seen {seen:?}"));
        match frame {
            Some(Ok(Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).expect("JSON frame");
                let hit = done(&v);
                seen.push(v);
                if hit {
                    return seen;
                }
            }
            Some(Ok(Frame::Ping(p))) => ws.send(Message::Pong(p)).await.expect("pong"),
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}; seen {seen:?}"),
        }
    }
}

/// Audit records of the passthrough (newest first), once at least `n` are there.
async fn audit(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/api/v2/audit?action=gns3.").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let records = r.body["records"].as_array().cloned().unwrap_or_default();
        if records.len() >= n {
            return records;
        }
        assert!(Instant::now() < deadline, "fewer than {n} passthrough audit records: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reads_writes_events_and_audit(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let app = app_for(&env, |_| {}).await;
    let project = env.create_project("passthrough").await;
    let pid = project.id;

    // Reads, on the server's own API version, with the hub's GNS3 credentials only.
    let (r, api) = call(&app, VIEWER, Method::GET, &format!("{GNS3}/version"), None).await;
    assert_eq!((r.status, api.as_str()), (200, flavor.api()), "{}", r.text);
    assert!(r.body["version"].as_str().unwrap_or_default().starts_with(flavor.version_prefix()), "{}", r.text);
    let (r, _) = call(&app, VIEWER, Method::GET, &format!("{GNS3}/projects/{pid}"), None).await;
    assert_eq!((r.status, r.body["name"].as_str()), (200, Some(project.name.as_str())), "{}", r.text);
    if flavor == Flavor::V3 {
        // The consumer holds no GNS3 credential; GNS3 itself would refuse the same read.
        assert_eq!(env.status_with_token(&format!("/projects/{pid}"), "").await, 401);
    }
    // GNS3's 404, mapped as on every route, GNS3's own body kept.
    let unknown = Uuid::new_v4();
    let (r, _) = call(&app, VIEWER, Method::GET, &format!("{GNS3}/projects/{unknown}/nodes"), None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "not_found"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["gns3_status"], 404, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("doesn't exist"), "{}", r.text);

    // A node created and deleted through the passthrough, and its events on the WebSocket.
    let mut ws = subscribe(&app, pid).await;
    let node = json!({"name": "PT", "node_type": "qemu", "compute_id": "local",
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1}});
    let (r, _) = call(&app, ADMIN_TOKEN, Method::POST, &format!("{GNS3}/projects/{pid}/nodes"), Some(&node)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let nid: Uuid = r.body["node_id"].as_str().and_then(|s| s.parse().ok()).expect("GNS3's node");
    assert_eq!(env.node_status(pid, nid).await, "stopped", "the node is in GNS3");
    until(&mut ws, |v| v["type"] == "node.created" && v["node_id"] == nid.to_string()).await;
    let (r, _) = call(&app, ADMIN_TOKEN, Method::DELETE, &format!("{GNS3}/projects/{pid}/nodes/{nid}"), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let (code, _) = env.call(Method::GET, &format!("/projects/{pid}/nodes/{nid}"), None).await;
    assert_eq!(code, 404, "the node is gone from GNS3");
    until(&mut ws, |v| v["type"] == "node.deleted" && v["node_id"] == nid.to_string()).await;

    // Every call but the GETs is in the audit trail, with GNS3's status.
    let records = audit(&app, 2).await;
    assert_eq!(records.len(), 2, "GETs are not audited: {records:?}");
    let (delete, post) = (&records[0], &records[1]);
    assert_eq!((post["action"].as_str(), post["outcome"].as_str()), (Some("gns3.post"), Some("ok")), "{post}");
    assert_eq!(post["who"], "test-admin");
    assert_eq!(post["project_id"], pid.to_string());
    assert_eq!(post["details"]["path"], format!("/projects/{pid}/nodes"));
    assert_eq!(post["details"]["gns3_status"], 201);
    assert_eq!((delete["action"].as_str(), delete["node_id"].as_str()), (Some("gns3.delete"), Some(&*nid.to_string())));
    assert_eq!(delete["details"]["gns3_status"], 204);
    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn passthrough_reads_writes_events_and_audit_v2() {
    reads_writes_events_and_audit(Flavor::V2).await;
}

#[actix_rt::test]
async fn passthrough_reads_writes_events_and_audit_v3() {
    reads_writes_events_and_audit(Flavor::V3).await;
}

async fn refusals(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let mine = env.create_project("pt-mine").await;
    let other = env.create_project("pt-other").await;
    let (pid, oid) = (mine.id, other.id);
    let app = app_for(&env, |s| {
        s.auth.tokens.push(token_setting("pt-scoped", "operator", SCOPED, &[pid.to_string()]));
        s.passthrough.deny = vec!["DELETE projects/*".into(), "computes".into()];
    })
    .await;
    let code = |r: &Reply| (r.status, error_code(r));

    // Roles: a viewer reads, and may not write.
    let (r, _) = call(&app, VIEWER, Method::GET, &format!("{GNS3}/projects/{pid}/nodes"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (r, _) = call(&app, VIEWER, Method::POST, &format!("{GNS3}/projects/{pid}/drawings"), Some(&json!({}))).await;
    assert_eq!(code(&r), (403, "insufficient_role".into()), "{}", r.text);

    // A project-scoped credential: its project yes; other projects, the list, and
    // project-less changes no; project-less reads yes.
    let drawing = json!({"svg": "<svg height=\"10\" width=\"10\"></svg>", "x": 1, "y": 2});
    let (r, _) = call(&app, SCOPED, Method::POST, &format!("{GNS3}/projects/{pid}/drawings"), Some(&drawing)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (method, path) in [
        (Method::GET, format!("{GNS3}/projects/{oid}")),
        (Method::POST, format!("{GNS3}/projects/{oid}/drawings")),
        (Method::GET, format!("{GNS3}/projects")),
        (Method::POST, format!("{GNS3}/projects")),
    ] {
        let (r, _) = call(&app, SCOPED, method.clone(), &path, Some(&json!({"name": "x"}))).await;
        assert_eq!(code(&r), (403, "project_out_of_scope".into()), "{method} {path}: {}", r.text);
    }
    let (r, _) = call(&app, SCOPED, Method::GET, &format!("{GNS3}/version"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // GNS3's notification streams point to the hub's own.
    for path in ["notifications", "notifications/ws", &format!("projects/{pid}/notifications/ws")] {
        let (r, _) = call(&app, ADMIN_TOKEN, Method::GET, &format!("{GNS3}/{path}"), None).await;
        assert_eq!(code(&r), (400, "use_event_stream".into()), "{path}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["use"], "/ws/gns3/events/");
    }
    // The deny list: the project stays.
    let (r, _) = call(&app, ADMIN_TOKEN, Method::DELETE, &format!("{GNS3}/projects/{oid}"), None).await;
    assert_eq!(code(&r), (403, "passthrough_denied".into()), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["rule"], "DELETE projects/*");
    assert_eq!(env.call(Method::GET, &format!("/projects/{oid}"), None).await.0, 200);
    let (r, _) = call(&app, ADMIN_TOKEN, Method::GET, &format!("{GNS3}/computes"), None).await;
    assert_eq!(code(&r), (403, "passthrough_denied".into()), "{}", r.text);

    // Refused calls other than GETs are audited too, as refused.
    let records = audit(&app, 4).await;
    let refused = records.iter().filter(|r| r["outcome"] == "error").count();
    // The viewer's POST was refused by the gate, before the passthrough (not audited).
    assert_eq!(refused, 3, "the two scoped POSTs and the denied DELETE: {records:?}");
    let denied = records.iter().find(|r| r["error_code"] == "passthrough_denied").expect("the denied DELETE");
    assert_eq!((denied["action"].as_str(), denied["status"].as_u64()), (Some("gns3.delete"), Some(403)));
    mine.delete().await;
    other.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn passthrough_refusals_v2() {
    refusals(Flavor::V2).await;
}

#[actix_rt::test]
async fn passthrough_refusals_v3() {
    refusals(Flavor::V3).await;
}

/// `n` bytes that differ from block to block (a wrong offset shows).
fn payload(n: usize) -> Bytes {
    (0..n).map(|i| (i as u64).wrapping_mul(2654435761).to_le_bytes()[3]).collect::<Vec<u8>>().into()
}

#[actix_rt::test]
async fn large_bodies_stream_both_ways_v2() {
    let env = testbed::gns3(Flavor::V2).await;
    let app = app_for(&env, |_| {}).await;
    let data = payload(6 * 1024 * 1024 + 123);
    for chunked in [false, true] {
        let name = format!("pt-{}.img", Uuid::new_v4().simple());
        let url = app.url(&format!("{GNS3}/compute/qemu/images/{name}"));
        let req = app.client.post(&url).insert_header(("Content-Type", "application/octet-stream"));
        let res = if chunked {
            // No Content-Length: the body goes on chunk by chunk.
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                data.chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            req.send_stream(futures_util::stream::iter(chunks)).await
        } else {
            req.send_body(data.clone()).await
        };
        let r = crate::app::read(res).await;
        assert_eq!(r.status, 204, "upload (chunked: {chunked}): {}", r.text);
        let mut res = app.client.get(&url).send().await.expect("the download answers");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("content-length").and_then(|v| v.to_str().ok()), Some(&*data.len().to_string()));
        let back = res.body().limit(64 << 20).await.expect("the whole body");
        assert!(back == data, "the image came back different ({} bytes, sent {})", back.len(), data.len());
    }
    // A project export (GNS3 streams a zip of unknown length), its query passed on: the
    // first entry's compression method is the one asked for (0 stored, 12 bzip2).
    let project = env.create_project("pt-export").await;
    env.create_qemu_node(project.id, "E").await;
    for (compression, method) in [("none", 0u8), ("bzip2", 12)] {
        let url = app.url(&format!("{GNS3}/projects/{}/export?compression={compression}", project.id));
        let mut res = app.client.get(&url).send().await.expect("the export answers");
        assert_eq!(res.status(), 200, "export ({compression})");
        let zip = res.body().limit(64 << 20).await.expect("the whole export");
        assert!(zip.starts_with(b"PK\x03\x04") && zip.len() > 30, "not a zip: {} bytes", zip.len());
        assert_eq!(zip[8], method, "compression={compression} reached GNS3");
    }
    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn gns3_down_is_503_with_retry_after() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    for method in [Method::GET, Method::POST] {
        let (r, _) = call(&app, ADMIN_TOKEN, method.clone(), &format!("{GNS3}/projects"), Some(&json!({}))).await;
        let code = error_code(&r);
        assert_eq!(r.status, 503, "{method}: {}", r.text);
        assert!(code == "gns3_unavailable" || code == "circuit_open", "{code}");
        let secs: u64 = r.retry_after.as_deref().and_then(|s| s.parse().ok()).expect("Retry-After in seconds");
        assert!(secs >= 1, "{secs}");
    }
    app.stop().await;
}

#[actix_rt::test]
async fn other_methods_get_405_with_allow() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    for method in [Method::OPTIONS, Method::TRACE] {
        let res = app.client.request(method.clone(), app.url(&format!("{GNS3}/projects"))).send().await;
        let allow = res.as_ref().ok().and_then(|r| r.headers().get("allow")).and_then(|v| v.to_str().ok());
        assert_eq!(allow, Some("GET, HEAD, POST, PUT, PATCH, DELETE"), "{method}");
        let r = crate::app::read(res).await;
        assert_eq!((r.status, error_code(&r).as_str()), (405, "method_not_allowed"), "{method}: {}", r.text);
    }
    app.stop().await;
}

/// A consumer that stops sending mid-body: after the timeout (5 s here) the call ends with
/// 400 `invalid_body`, and GNS3 is not blamed (still connected, circuit closed).
#[actix_rt::test]
async fn a_stalled_upload_is_the_clients_fault_v2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = testbed::gns3(Flavor::V2).await;
    let app = app_for(&env, |_| {}).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let name = format!("pt-stall-{}.img", Uuid::new_v4().simple());
    let head = format!(
        "POST {GNS3}/compute/qemu/images/{name} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.expect("head sent");
    sock.write_all(&payload(200_000)).await.expect("part of the body sent");
    let begin = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}}") {
        let n = actix_rt::time::timeout(Duration::from_secs(30), sock.read(&mut buf))
            .await
            .expect("an answer within 30 s")
            .expect("read");
        assert!(n > 0, "closed without an answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"invalid_body\"") && text.contains("stalled"), "{text}");
    assert!(begin.elapsed() >= Duration::from_secs(4), "answered before the timeout: {:?}", begin.elapsed());
    let s = app.get("/api/v2/servers/default").await.body;
    assert_eq!((s["connected"].as_bool(), s["circuit"]["consecutive_failures"].as_u64()), (Some(true), Some(0)), "{s}");
    app.stop().await;
}

//! The audit trail: node and project actions over REST (both APIs) and WebSocket,
//! refused ones included, recorded with who, what, target, outcome and correlation id;
//! `GET /api/v2/audit` paged and filtered, admin only; kept across a restart of the
//! service both in the JSON-lines file and in Redis (a real redis-server); a Redis that
//! is gone counts the lost write and answers 503.

use crate::helpers::redis_server;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{error_code, TestApp, ADMIN_TOKEN};
use crate::metrics::{quiet_app, VIEWER};

async fn first_node(app: &TestApp) -> (String, String) {
    let projects = app.get("/api/v2/servers/default/projects").await.body;
    let project = projects[0]["project_id"].as_str().expect("a project").to_owned();
    let nodes = app.get(&format!("/api/v2/servers/default/projects/{project}/nodes")).await.body;
    (project, nodes[0]["node_id"].as_str().expect("a node").to_owned())
}

/// Polls the audit until it holds `n` records (writes are asynchronous).
async fn audit_len(app: &TestApp, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/api/v2/audit").await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["records"].as_array().is_some_and(|a| a.len() >= n) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "audit has not {n} records: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A WebSocket node action; its `action_result`.
async fn ws_action(app: &TestApp, project: &str, node: &str) -> Value {
    let (_res, mut ws) = awc::Client::new()
        .ws(app.url("/ws/gns3/events/"))
        .bearer_auth(ADMIN_TOKEN)
        .connect()
        .await
        .expect("the upgrade succeeds");
    let frame =
        json!({"type": "node_action", "action": "start", "project_id": project, "node_id": node, "request_id": "a1"});
    ws.send(actix_http::ws::Message::Text(frame.to_string().into())).await.expect("sent");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = actix_rt::time::timeout(left, ws.next()).await.expect("a frame in time");
        if let Some(Ok(actix_http::ws::Frame::Text(t))) = next {
            let v: Value = serde_json::from_slice(&t).expect("JSON");
            if v["type"] == "action_result" {
                return v;
            }
        }
    }
}

/// Runs the scenario's actions; the correlation ids of the successful REST and WS ones.
async fn act(app: &TestApp) -> (String, String, String, String) {
    let (project, node) = first_node(app).await;
    let r = app
        .post_json(&format!("/api/v2/servers/default/projects/{project}/nodes/{node}/actions/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rest = r.body["correlation_id"].as_str().expect("a correlation id").to_owned();
    let r = app
        .post_json("/api/common/api/gns3-central/stop_node/", &json!({"project_id": project, "node_id": node}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // GNS3 refuses: an unknown node.
    let unknown = uuid::Uuid::new_v4();
    let r = app
        .post_json(&format!("/api/v2/servers/default/projects/{project}/nodes/{unknown}/actions/start"), &json!({}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let ws = ws_action(app, &project, &node).await;
    assert_eq!(ws["ok"], true, "{ws}");
    let ws = ws["correlation_id"].as_str().expect("a correlation id").to_owned();
    (project, node, rest, ws)
}

async fn check_records(app: &TestApp, project: &str, node: &str, rest: &str, ws: &str) {
    let body = audit_len(app, 4).await;
    let r = body["records"].as_array().expect("records");
    assert_eq!(r.len(), 4, "{body}");
    // Newest first: ws start, refused start, legacy stop, v2 stop.
    let actions: Vec<&str> = r.iter().filter_map(|x| x["action"].as_str()).collect();
    assert_eq!(actions, ["node.start", "node.start", "node.stop", "node.stop"]);
    for x in r {
        assert_eq!((x["who"].as_str(), x["role"].as_str()), (Some("test-admin"), Some("admin")), "{x}");
        assert_eq!(x["server"], "default");
        assert_eq!(x["project_id"], project);
    }
    assert_eq!(
        (r[0]["via"].as_str(), r[0]["correlation_id"].as_str(), r[0]["outcome"].as_str()),
        (Some("websocket"), Some(ws), Some("ok"))
    );
    assert_eq!(
        (r[1]["outcome"].as_str(), r[1]["error_code"].as_str(), r[1]["status"].as_u64()),
        (Some("error"), Some("not_found"), Some(404))
    );
    assert_eq!(
        (r[3]["via"].as_str(), r[3]["correlation_id"].as_str(), r[3]["node_id"].as_str()),
        (Some("rest"), Some(rest), Some(node))
    );
}

async fn check_queries(app: &TestApp) {
    let r = app.get("/api/v2/audit?action=node.stop").await;
    assert_eq!(r.body["records"].as_array().map(Vec::len), Some(2), "{}", r.text);
    let r = app.get("/api/v2/audit?via=websocket").await;
    assert_eq!(r.body["records"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let r = app.get("/api/v2/audit?outcome=error&action=node.").await;
    assert_eq!(r.body["records"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let r = app.get("/api/v2/audit?who=someone-else").await;
    assert_eq!(r.body["records"], json!([]), "{}", r.text);
    // Pages of 3 then 1, no overlap.
    let p1 = app.get("/api/v2/audit?limit=3").await.body;
    let cursor = p1["next_before"].as_str().expect("a cursor").to_owned();
    let p2 = app.get(&format!("/api/v2/audit?limit=3&before={cursor}")).await.body;
    let ids: Vec<&str> = p1["records"]
        .as_array()
        .into_iter()
        .chain(p2["records"].as_array())
        .flatten()
        .filter_map(|x| x["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "{p1} {p2}");
    assert_eq!(ids.iter().collect::<std::collections::BTreeSet<_>>().len(), 4);
    assert!(p2["next_before"].is_null(), "{p2}");
    // Bad queries and access.
    let r = app.get("/api/v2/audit?before=not-an-id").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_query"), "{}", r.text);
    let r = app.get("/api/v2/audit?limit=0").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(app.get_as(Some(VIEWER), "/api/v2/audit").await.status, 403);
}

#[actix_rt::test]
async fn the_audit_file_records_every_action_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().to_str().expect("utf-8").to_owned();
    let (sim, app) = quiet_app(|s| s.audit.dir = path.clone()).await;
    let (project, node, rest, ws) = act(&app).await;
    check_records(&app, &project, &node, &rest, &ws).await;
    check_queries(&app).await;
    assert_eq!(app.get("/api/v2/audit").await.body["backend"], "file");
    let lines = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("the file");
    assert_eq!(lines.lines().count(), 4);
    app.stop().await;
    sim.stop().await;

    // A new service on the same directory (and a new GNS3 stand-in): the records are there.
    let (sim, app) = quiet_app(|s| s.audit.dir = path.clone()).await;
    let body = audit_len(&app, 4).await;
    assert_eq!(body["records"][0]["correlation_id"], ws.as_str());
    let (p2, n2) = first_node(&app).await;
    let r =
        app.post_json(&format!("/api/v2/servers/default/projects/{p2}/nodes/{n2}/actions/suspend"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = audit_len(&app, 5).await;
    assert_eq!(
        (body["records"][0]["action"].as_str(), body["records"][0]["id"].as_str()),
        (Some("node.suspend"), Some("5"))
    );
    app.stop().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn the_audit_stream_in_redis_survives_a_restart() {
    let redis = redis_server::RedisServer::start();
    let url = redis.url();
    let with_redis = |s: &mut gns3_central::config::Settings| {
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(url.clone());
        s.cluster.enabled = false;
    };
    let (sim, app) = quiet_app(with_redis).await;
    let (project, node, rest, ws) = act(&app).await;
    check_records(&app, &project, &node, &rest, &ws).await;
    check_queries(&app).await;
    assert_eq!(app.get("/api/v2/audit").await.body["backend"], "redis");
    app.stop().await;
    sim.stop().await;

    let (sim, app) = quiet_app(with_redis).await;
    check_records(&app, &project, &node, &rest, &ws).await;
    app.stop().await;
    sim.stop().await;
}

/// Waits until the audit says `spooled` records wait, and returns that page.
async fn audit_spooled(app: &TestApp, spooled: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.get("/api/v2/audit").await;
        if r.status == 200 && r.body["spooled"] == spooled {
            return r.body;
        }
        assert!(Instant::now() < deadline, "never {spooled} spooled: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis killed: the actions of the outage are spooled (in the file of `audit.dir`), shown
/// by the audit meanwhile, kept across a restart of the service, and written to Redis in
/// order once it returns, behind what it held.
#[actix_rt::test]
async fn audit_records_are_spooled_while_redis_is_down_and_written_in_order_when_it_returns() {
    let mut redis = redis_server::RedisServer::start_persistent();
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("g3c-audit-spool-{}", uuid::Uuid::new_v4()));
    let with_redis = |s: &mut gns3_central::config::Settings| {
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(url.clone());
        s.cluster.enabled = false;
        s.cluster.redis_timeout_ms = 300;
        s.audit.dir = dir.to_string_lossy().into_owned();
    };
    let (sim, app) = quiet_app(with_redis).await;
    let (p0, n0, rest0, ws0) = act(&app).await;
    check_records(&app, &p0, &n0, &rest0, &ws0).await;

    redis.kill();
    let (p1, n1, rest1, ws1) = act(&app).await;
    let page = audit_spooled(&app, 4).await;
    assert_eq!(page["partial"], true, "Redis cannot be read: only the spool: {page}");
    let ids: Vec<&str> = page["records"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["s4", "s3", "s2", "s1"], "{page}");
    check_records(&app, &p1, &n1, &rest1, &ws1).await;
    check_queries(&app).await;
    let m = crate::helpers::prom::parse(&app.get("/metrics").await.text);
    assert_eq!(m.value("gns3central_audit_spooled", &[]), Some(4.0));
    assert_eq!(m.value("gns3central_audit_write_failures_total", &[("backend", "redis")]), Some(0.0));
    // Stopped as on SIGTERM: the audit writer is closed with the rest (its spool stays on disk).
    app.shutdown.shutdown().await;
    sim.stop().await;

    // Restarted while Redis is still down: the spool is read back.
    let (sim, app) = quiet_app(with_redis).await;
    let page = audit_spooled(&app, 4).await;
    assert_eq!(page["records"][0]["correlation_id"].as_str(), Some(ws1.as_str()), "{page}");

    redis.restart();
    let page = audit_spooled(&app, 0).await;
    assert_eq!(page["partial"], false, "{page}");
    let r = page["records"].as_array().expect("records");
    let ids: Vec<&str> = r.iter().filter_map(|x| x["id"].as_str()).collect();
    assert_eq!(r.len(), 8, "the outage's four behind the four Redis held: {ids:?}");
    assert!(r.iter().all(|x| x["id"].as_str().is_some_and(|id| !id.starts_with('s'))), "stream ids now: {page}");
    let corr: Vec<Option<&str>> = r.iter().map(|x| x["correlation_id"].as_str()).collect();
    assert_eq!(
        (corr[0], corr[3], corr[4], corr[7]),
        (Some(ws1.as_str()), Some(rest1.as_str()), Some(ws0.as_str()), Some(rest0.as_str()))
    );
    let spool = std::fs::read_to_string(dir.join(gns3_central::observe::audit::spool::FILE_NAME)).unwrap_or_default();
    assert_eq!(spool, "", "the spool file is emptied once written");
    app.stop().await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

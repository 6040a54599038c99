//! Live events against real gns3-server v2 and v3: changes made in GNS3 (directly, or as
//! actions through the service) come out as typed events, each exactly once, in order,
//! with their priorities, ids and the correlation ids of the actions that caused them;
//! and a GNS3 crash gives `server.disconnected`, then `server.connected` and the
//! transitions missed meanwhile. Events are read through `GET /api/v2/events`.

use awc::http::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::{spawn_app, test_settings, TestApp};
use crate::helpers::testbed::{self, Flavor, Gns3Env};

async fn app_with_events(env: &Gns3Env) -> TestApp {
    let app = spawn_app(test_settings(&env.target(), |s| s.gns3.topology_burst_ms = 200)).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    app
}

/// Polls the history of one project until `done` holds; panics with what came otherwise.
async fn events_until(app: &TestApp, project: Uuid, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get(&format!("/api/v2/events?limit=1000&projects={project}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let events = r.body["events"].as_array().cloned().unwrap_or_default();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "events did not arrive in 30 s; got {:?}", kinds(&events));
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("?").to_owned()).collect()
}

fn find<'a>(events: &'a [Value], kind: &str, node: Option<Uuid>) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind && node.is_none_or(|n| e["node_id"] == n.to_string())).collect()
}

async fn node_lifecycle_events(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let app = app_with_events(&env).await;
    let project = env.create_project("events").await;
    let pid = project.id;
    let a = env.create_qemu_node(pid, "A").await;
    let b = env.create_qemu_node(pid, "B").await;
    let link = env.create_link(pid, a, b).await;
    let base = format!("/api/v2/servers/default/projects/{pid}");

    // Actions through the service: each answer carries the correlation id.
    let start = app.post_json(&format!("{base}/nodes/{a}/actions/start"), &json!({})).await;
    assert_eq!(start.status, 409, "real GNS3 without ubridge: {}", start.text);
    let start_cid = start.body["error"]["details"]["correlation_id"].as_str().expect("correlation id").to_owned();
    let suspend = app.post_json(&format!("{base}/nodes/{a}/actions/suspend"), &json!({})).await;
    assert_eq!(suspend.status, 200, "{}", suspend.text);
    let stop = app.post_json(&format!("{base}/nodes/{a}/actions/stop"), &json!({})).await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    // Changes made straight in GNS3.
    let (code, _) = env.call(Method::DELETE, &format!("/projects/{pid}/links/{link}"), None).await;
    assert_eq!(code, 204);
    let (code, _) = env.call(Method::DELETE, &format!("/projects/{pid}/nodes/{b}"), None).await;
    assert_eq!(code, 204);
    let close = app.post_json(&format!("{base}/actions/close"), &json!({})).await;
    assert_eq!(close.status, 200, "{}", close.text);

    // Closing is structural too: a coalesced topology.changed must follow project.closed.
    let events = events_until(&app, pid, |e| {
        e.iter().skip_while(|x| x["type"] != "project.closed").any(|x| x["type"] == "topology.changed")
    })
    .await;
    // This project's node, link and status events (server events pass a project filter;
    // project.created may precede the service's first read, which then seeds it).
    let typed: Vec<String> = events
        .iter()
        .filter(|e| e["project_id"] == pid.to_string())
        .map(|e| e["type"].as_str().unwrap_or("?").to_owned())
        .filter(|k| !matches!(k.as_str(), "topology.changed" | "node.updated" | "link.updated" | "project.created"))
        .collect();
    assert_eq!(
        typed,
        [
            "node.created",
            "node.created",
            "link.created",
            "node.started",
            "node.suspended",
            "node.stopped",
            "link.deleted",
            "node.deleted",
            "project.closed"
        ],
        "{:?}",
        kinds(&events)
    );
    // Exactly once, about the right node, with the right priority and correlation id.
    let one = |kind: &str, node: Option<Uuid>| {
        let found = find(&events, kind, node);
        assert_eq!(found.len(), 1, "{kind} for {node:?}: {:?}", kinds(&events));
        found[0].clone()
    };
    let started = one("node.started", Some(a));
    assert_eq!(
        (started["priority"].as_str(), started["correlation_id"].as_str()),
        (Some("HIGH"), Some(start_cid.as_str()))
    );
    assert_eq!(started["data"]["status"], "started");
    assert_eq!(started["project_id"], pid.to_string());
    assert_eq!(started["server"], "default");
    assert_eq!(one("node.suspended", Some(a))["correlation_id"], suspend.body["correlation_id"]);
    assert_eq!(one("node.stopped", Some(a))["correlation_id"], stop.body["correlation_id"]);
    assert_eq!(one("node.deleted", Some(b))["priority"], "NORMAL");
    assert_eq!(one("link.created", None)["priority"], "NORMAL");
    let closed = one("project.closed", None);
    assert_eq!(
        (closed["priority"].as_str(), closed["correlation_id"].as_str()),
        (Some("HIGH"), close.body["correlation_id"].as_str())
    );
    let changed = find(&events, "topology.changed", None);
    assert!(changed.iter().all(|e| e["priority"] == "NORMAL"), "{:?}", kinds(&events));
    // Coalesced: far fewer than the structural changes (2 creates, a link, 2 deletes, a close).
    assert!(changed.len() < 6, "{:?}", kinds(&events));
    // Ids: epoch-seq, seq strictly increasing in history order.
    let epoch = events[0]["epoch"].as_str().unwrap().to_owned();
    let mut last = 0;
    for e in &events {
        let seq = e["seq"].as_u64().unwrap();
        assert!(seq > last, "seq not increasing: {:?}", events.iter().map(|e| &e["seq"]).collect::<Vec<_>>());
        assert_eq!(e["id"], format!("{epoch}-{seq}"));
        last = seq;
    }

    // A reopened project is read again in full (the cache drops the reduced closed form).
    let open = app.post_json(&format!("{base}/actions/open"), &json!({})).await;
    assert_eq!(open.status, 200, "{}", open.text);
    events_until(&app, pid, |e| !find(e, "project.opened", None).is_empty()).await;
    let t = app.get(&format!("{base}/topology")).await;
    assert_eq!(t.body["projects"][0]["nodes"][0]["status"], "stopped", "{}", t.text);
    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn node_lifecycle_gives_typed_events_once_in_order_v2() {
    node_lifecycle_events(Flavor::V2).await;
}

#[actix_rt::test]
async fn node_lifecycle_gives_typed_events_once_in_order_v3() {
    node_lifecycle_events(Flavor::V3).await;
}

async fn restart_gives_the_missed_transitions(flavor: Flavor) {
    let mut gns3 = testbed::dedicated(flavor, "ev-restart").await;
    let env = gns3.env();
    let app = app_with_events(&env).await;
    let project = env.create_project("restart").await;
    let pid = project.id;
    let a = env.create_qemu_node(pid, "A").await;
    // Started straight in GNS3 (409 without ubridge, but the node runs).
    env.call(Method::POST, &format!("/projects/{pid}/nodes/{a}/start"), Some(&json!({}))).await;
    assert_eq!(env.node_status(pid, a).await, "started");
    events_until(&app, pid, |e| !find(e, "node.started", Some(a)).is_empty()).await;

    gns3.kill().await;
    app.wait_server(Duration::from_secs(15), |s| s["connected"] == false).await;
    gns3.start().await;
    app.wait_server(Duration::from_secs(15), |s| s["connected"] == true).await;

    // Server events carry no project: read the whole history.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let r = app.get("/api/v2/events?limit=1000").await;
        let events = r.body["events"].as_array().cloned().unwrap_or_default();
        let after_kill: Vec<Value> =
            events.iter().skip_while(|e| e["type"] != "server.disconnected").cloned().collect();
        if !find(&after_kill, "node.stopped", Some(a)).is_empty() {
            break after_kill;
        }
        assert!(Instant::now() < deadline, "missed transitions did not arrive: {:?}", kinds(&events));
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let order: Vec<String> = kinds(&events).into_iter().filter(|k| k != "topology.changed").collect();
    assert_eq!(order[..2], ["server.disconnected", "server.connected"], "{order:?}");
    assert_eq!(events[0]["priority"], "CRITICAL");
    let closed = find(&events, "project.closed", None);
    assert_eq!(closed.len(), 1, "{order:?}");
    assert_eq!(closed[0]["project_id"], pid.to_string());
    assert_eq!(closed[0]["source"], "resync");
    let stopped = find(&events, "node.stopped", Some(a));
    assert_eq!(stopped.len(), 1, "{order:?}");
    assert_eq!(stopped[0]["source"], "resync");
    // No project.delete(): GNS3 v2 answers 500 to deleting a project right after its
    // restart; the dedicated instance is thrown away with its state anyway.
    let _ = project;
    app.stop().await;
}

#[actix_rt::test]
async fn gns3_restart_gives_disconnect_connect_and_the_missed_transitions_v2() {
    restart_gives_the_missed_transitions(Flavor::V2).await;
}

#[actix_rt::test]
async fn gns3_restart_gives_disconnect_connect_and_the_missed_transitions_v3() {
    restart_gives_the_missed_transitions(Flavor::V3).await;
}

/// Bad history queries get clear 400/410 answers.
#[actix_rt::test]
async fn history_queries_are_checked() {
    let app = spawn_app(test_settings(&crate::app::Target::nowhere(), |_| {})).await;
    let r = app.get("/api/v2/events?limit=0").await;
    assert_eq!((r.status, crate::app::error_code(&r).as_str()), (400, "invalid_limit"), "{}", r.text);
    let r = app.get("/api/v2/events?since=garbage").await;
    assert_eq!((r.status, crate::app::error_code(&r).as_str()), (400, "invalid_since"), "{}", r.text);
    let r = app.get("/api/v2/events?since=otherepoch-5").await;
    assert_eq!((r.status, crate::app::error_code(&r).as_str()), (410, "history_lost"), "{}", r.text);
    let r = app.get("/api/v2/events?projects=nope").await;
    assert_eq!((r.status, crate::app::error_code(&r).as_str()), (400, "invalid_id"), "{}", r.text);
    let r = app.get("/api/v2/events?types=no_such_group").await;
    assert_eq!((r.status, crate::app::error_code(&r).as_str()), (400, "invalid_filter"), "{}", r.text);
    let r = app.get("/api/v2/events/stats").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["epoch"].is_string(), "{}", r.text);
    let r = app.get("/api/common/api/gns3-events/stats/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.stop().await;
}

//! `/metrics`: after known activity against a quiet GNS3 stand-in (no random activity) —
//! REST reads, cached topology reads, a node action, a refused request, a WebSocket
//! session, events published straight into the dispatcher — the exposition parses
//! strictly as Prometheus text and its numbers are those of the activity and of the
//! service's own statistics routes. Also: who may scrape it.

use futures_util::StreamExt;
use gns3_central::simulate::{Simulator, SimulatorOptions};
use gns3_central_actors::dispatcher::PublishBatch;
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, token_setting, Target, TestApp};
use crate::helpers::prom::{self, Scrape};

pub const VIEWER: &str = "g3c_metrics-viewer-0123456789abcdef0123456789abcdef";

/// A stand-in with one project of three nodes and no activity, and the service on it.
pub async fn quiet_app(tweak: impl FnOnce(&mut gns3_central::config::Settings)) -> (Simulator, TestApp) {
    let sim = Simulator::start(SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 3,
        links: true,
        activity: 0.0,
        seed: Some(7),
    })
    .await
    .expect("the stand-in starts");
    let target = Target::stand_in(sim.port());
    let app = spawn_app(test_settings(&target, |s| {
        s.auth.tokens.push(token_setting("prometheus", "viewer", VIEWER, &[]));
        tweak(s);
    }))
    .await;
    app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    (sim, app)
}

pub async fn scrape(app: &TestApp) -> (Scrape, String) {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"), "{}", r.content_type);
    (prom::parse(&r.text), r.text)
}

/// Polls until the dispatcher's statistics stop changing (every published event handed
/// out), then returns them with a scrape taken after them.
async fn settled(app: &TestApp) -> (Value, Scrape) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = Value::Null;
    loop {
        let stats = app.get("/api/v2/events/stats").await.body;
        let (metrics, _) = scrape(app).await;
        let again = app.get("/api/v2/events/stats").await.body;
        let quiet = stats["queues"]["total"] == 0 && stats["pending_retries"] == 0;
        if quiet && stats["totals"] == again["totals"] && stats["totals"] == last["totals"] {
            return (stats, metrics);
        }
        assert!(Instant::now() < deadline, "event statistics never settled: {stats}");
        last = stats;
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_count(m: &Scrape, method: &str, route: &str, status: &str) -> f64 {
    m.value(
        "gns3central_http_request_duration_seconds_count",
        &[("method", method), ("route", route), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[actix_rt::test]
async fn metrics_parse_and_count_what_happened() {
    let (sim, app) = quiet_app(|_| {}).await;
    let projects = app.get("/api/v2/servers/default/projects").await;
    let project = projects.body[0]["project_id"].as_str().expect("a project").to_owned();
    let (before, _) = scrape(&app).await;

    // Three reads of one route: one series, by pattern.
    for _ in 0..3 {
        assert_eq!(app.get("/api/v2/servers/default").await.status, 200);
    }
    // Cached topology: three reads through the cache.
    let topo = format!("/api/v2/servers/default/projects/{project}/topology");
    for _ in 0..3 {
        let r = app.get(&topo).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let node = app.get(&topo).await.body["projects"][0]["nodes"][0]["node_id"].as_str().expect("a node").to_owned();
    // A node action (two GNS3 calls: the action, then the node read back).
    let r = app
        .post_json(&format!("/api/v2/servers/default/projects/{project}/nodes/{node}/actions/stop"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A refused request, and a path no route matches.
    assert_eq!(app.get_as(None, "/api/v2/status").await.status, 401);
    assert_eq!(app.get("/api/v2/servers/default/no/such/thing").await.status, 404);
    // Module events straight into the dispatcher.
    let d = app.state.dispatcher.clone().expect("events are on");
    let batch: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent {
            kind: "probe.tick".into(),
            server: "default".into(),
            project_id: None,
            node_id: None,
            timestamp: chrono::Utc::now(),
            correlation_id: None,
            source: Source::Module,
            data: json!({"i": i}),
        })
        .collect();
    let out = d.send(PublishBatch(batch)).await.expect("the dispatcher runs");
    assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");

    // A WebSocket session open during one scrape.
    let (_res, mut ws) = awc::Client::new()
        .ws(app.url("/ws/gns3/events/"))
        .bearer_auth(crate::app::ADMIN_TOKEN)
        .connect()
        .await
        .expect("the upgrade succeeds");
    let welcome = ws.next().await.expect("a frame").expect("a good frame");
    assert!(matches!(welcome, actix_http::ws::Frame::Text(_)), "{welcome:?}");
    let (during, _) = scrape(&app).await;
    assert_eq!(during.value("gns3central_websocket_sessions", &[]), Some(1.0));
    assert_eq!(during.value("gns3central_websocket_sessions_opened_total", &[]), Some(1.0));
    drop(ws);

    let (stats, after) = settled(&app).await;
    // HTTP: by pattern, never the raw path; the delta is exactly what was sent.
    let route = "/api/v2/servers/{server}";
    assert_eq!(http_count(&after, "GET", route, "200") - http_count(&before, "GET", route, "200"), 3.0);
    let topo_route = "/api/v2/servers/{server}/projects/{project_id}/topology";
    assert_eq!(http_count(&after, "GET", topo_route, "200"), 4.0);
    let action_route = "/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}/actions/{action}";
    assert_eq!(http_count(&after, "POST", action_route, "200"), 1.0);
    assert_eq!(http_count(&after, "GET", "/api/v2/status", "401"), 1.0);
    assert_eq!(http_count(&after, "GET", "(unmatched)", "404"), 1.0);
    assert!(
        after.samples.iter().all(|s| !s.labels.get("route").is_some_and(|r| r.contains(&project))),
        "a raw path leaked into a label"
    );
    // Cache: 4 topology reads, the first a miss.
    let hits =
        after.value("gns3central_cache_requests_total", &[("backend", "memory"), ("result", "hit")]).unwrap_or(-1.0);
    let misses =
        after.value("gns3central_cache_requests_total", &[("backend", "memory"), ("result", "miss")]).unwrap_or(-1.0);
    let before_reads = before.sum("gns3central_cache_requests_total", &[]);
    assert_eq!(hits + misses - before_reads, 4.0, "hits {hits} misses {misses}");
    assert!(hits >= 3.0, "hits {hits}");
    let status = app.get("/api/v2/status").await.body;
    assert_eq!(status["cache"]["details"]["hits"].as_f64(), Some(hits));
    assert_eq!(after.value("gns3central_redis_up", &[]), Some(0.0));
    assert_eq!(after.value("gns3central_redis_enabled", &[]), Some(0.0));
    // GNS3 calls: the action once, per server and operation; the circuit closed; connected.
    let calls = "gns3central_gns3_call_duration_seconds_count";
    assert_eq!(after.value(calls, &[("server", "default"), ("operation", "node_action")]), Some(1.0));
    assert!(after.value(calls, &[("server", "default"), ("operation", "get_node")]).unwrap_or(0.0) >= 1.0);
    assert_eq!(
        after.value("gns3central_gns3_call_errors_total", &[("server", "default"), ("operation", "node_action")]),
        Some(0.0)
    );
    assert_eq!(after.value("gns3central_circuit_state", &[("server", "default"), ("state", "closed")]), Some(1.0));
    assert_eq!(after.value("gns3central_circuit_state", &[("server", "default"), ("state", "open")]), Some(0.0));
    assert_eq!(after.value("gns3central_gns3_up", &[("server", "default")]), Some(1.0));
    assert_eq!(
        after.value("gns3central_actor_restarts_total", &[("actor", "gns3_connector"), ("name", "default")]),
        Some(0.0)
    );
    assert_eq!(after.value("gns3central_modules_connected", &[]), Some(0.0));
    assert_eq!(after.value("gns3central_auth_refused_total", &[("reason", "unauthenticated")]), Some(1.0));
    // WebSocket: gone again (its unregistering may trail the close), one opened in all.
    let deadline = Instant::now() + Duration::from_secs(5);
    while scrape(&app).await.0.value("gns3central_websocket_sessions", &[]) != Some(0.0) {
        assert!(Instant::now() < deadline, "the session never went away");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Events: the same numbers as /api/v2/events/stats, per type and per priority.
    for (kind, c) in stats["by_type"].as_object().expect("by_type") {
        for outcome in ["published", "dispatched", "delivered", "shed", "refused", "retried", "dead_lettered"] {
            let got = after.value("gns3central_events_total", &[("type", kind), ("outcome", outcome)]);
            assert_eq!(got, c[outcome].as_f64(), "{kind} {outcome}");
        }
    }
    for (p, c) in stats["by_priority"].as_object().expect("by_priority") {
        let got = after.value("gns3central_events_by_priority_total", &[("priority", p), ("outcome", "dispatched")]);
        assert_eq!(got, c["dispatched"].as_f64(), "{p}");
        let n = c["dispatched"].as_f64().unwrap_or(0.0);
        let hist = after.value("gns3central_event_dispatch_seconds_count", &[("priority", p)]);
        assert_eq!(hist, Some(n), "dispatch latency samples of {p}");
    }
    assert_eq!(after.value("gns3central_events_total", &[("type", "probe.tick"), ("outcome", "published")]), Some(5.0));
    assert!(
        after.value("gns3central_events_total", &[("type", "node.stopped"), ("outcome", "dispatched")]).unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(after.value("gns3central_event_queue_depth", &[("priority", "LOW")]), Some(0.0));
    assert_eq!(after.value("gns3central_event_subscribers", &[]), stats["subscribers"].as_f64());
    // A remote module connected: the gauge follows the modules registry.
    let token = crate::modules::register(&app, "metrics-probe").await;
    let module = crate::modules::connect(&app, "metrics-probe", &token).await;
    crate::modules::status_until(&app, "metrics-probe", Duration::from_secs(5), |s| s["connected"] == true).await;
    assert_eq!(scrape(&app).await.0.value("gns3central_modules_connected", &[]), Some(1.0));
    drop(module);
    app.stop().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn metrics_need_a_viewer_unless_opened() {
    let (sim, app) = quiet_app(|_| {}).await;
    let r = app.get_as(None, "/metrics").await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app.get_as(Some(VIEWER), "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    prom::parse(&r.text);
    app.stop().await;
    sim.stop().await;

    let (sim, app) = quiet_app(|s| s.auth.metrics_open = true).await;
    let r = app.get_as(None, "/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(prom::parse(&r.text).families.contains_key("gns3central_http_request_duration_seconds"));
    app.stop().await;
    sim.stop().await;
}

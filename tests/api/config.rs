//! Runtime configuration: `GET /api/v2/config` (admin, secrets masked) and `PATCH`
//! (live keys change at once in the parts that use them; a bad value, an unknown key or
//! a key that needs a restart changes nothing), and SIGHUP to the real binary (the file's
//! live changes applied, restart-only ones reported and left, a broken file ignored).

use gns3_central_actors::dispatcher::PublishBatch;
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{error_code, ADMIN_TOKEN};
use crate::helpers::process::Service;
use crate::metrics::{quiet_app, VIEWER};

async fn patch(app: &crate::app::TestApp, body: &Value) -> crate::app::Reply {
    let res = app.client.patch(app.url("/api/v2/config")).send_json(body).await;
    let mut res = res.expect("the service answers");
    let status = res.status().as_u16();
    let bytes = res.body().await.expect("a body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    crate::app::Reply { status, www_authenticate: None, retry_after: None, content_type, body, text }
}

#[actix_rt::test]
async fn config_is_for_admins_with_secrets_masked() {
    let (sim, app) = quiet_app(|s| {
        s.gns3.servers.get_mut("default").expect("default").password =
            gns3_central_actors::secret::Secret::new("pw-4711");
    })
    .await;
    let r = app.get("/api/v2/config").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["gns3"]["servers"]["default"]["password"], "***");
    assert!(!r.text.contains("pw-4711"));
    assert_eq!(r.body["cache"]["ttl"], 30.0);
    assert_eq!(app.get_as(Some(VIEWER), "/api/v2/config").await.status, 403);
    let r =
        app.anon.patch(app.url("/api/v2/config")).bearer_auth(VIEWER).send_json(&json!({"cache": {"ttl": 1}})).await;
    assert_eq!(r.expect("an answer").status().as_u16(), 403);
    assert_eq!(app.get("/api/v2/config").await.body["cache"]["ttl"], 30.0);
    app.stop().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn patch_changes_live_settings_and_refuses_the_rest_changing_nothing() {
    let (sim, app) = quiet_app(|_| {}).await;
    let before = app.get("/api/v2/config").await.body;
    // Refusals: nothing changes, each with its code.
    for (body, code) in [
        (json!({"cache": {"ttl": -1}}), "invalid_config"),
        (json!({"cache": {"ttl": "soon"}}), "invalid_config"),
        (json!({"gns3": {"monitor_interval": 0.01}}), "invalid_config"),
        (json!({"log": {"level": "loud"}}), "invalid_config"),
        (json!({"events": {"priorities": {"node.updated": "URGENT"}}}), "invalid_config"),
        (json!({"events": {"priorities": {"node.stated": "HIGH"}}}), "invalid_config"),
        (json!({"cache": {"ttl": 5}, "http": {"bind": "0.0.0.0:1"}}), "restart_required"),
        (json!({"cache": {"ttl": 5}, "cache_size": 3}), "unknown_key"),
        (json!([1, 2]), "invalid_config"),
    ] {
        let r = patch(&app, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(error_code(&r), code, "{body}: {}", r.text);
        if code == "restart_required" {
            assert_eq!(r.body["error"]["details"]["restart_required"], json!(["http.bind"]));
        }
        assert_eq!(app.get("/api/v2/config").await.body, before, "{body} changed something");
    }
    let r = app
        .client
        .patch(app.url("/api/v2/config"))
        .insert_header(("Content-Type", "application/json"))
        .send_body("{nope")
        .await;
    assert_eq!(r.expect("an answer").status().as_u16(), 400);
    assert_eq!(app.get("/api/v2/status").await.body["cache"]["details"]["ttl_secs"], 30.0);

    // Live changes, all at once.
    let r = patch(&app, &json!({"cache": {"ttl": 0}, "log": {"level": "warn"}, "gns3": {"monitor_interval": 2,
        "servers": {"default": {"timeout": 2.5}}}, "events": {"priorities": {"node.updated": "HIGH", "probe.tick": "CRITICAL"}}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let applied: Vec<&str> = r.body["applied"].as_array().expect("applied").iter().filter_map(Value::as_str).collect();
    assert_eq!(
        applied,
        ["gns3.servers.default.timeout", "gns3.monitor_interval", "cache.ttl", "log.level", "events.priorities"]
    );
    let now = app.get("/api/v2/config").await.body;
    assert_eq!((now["cache"]["ttl"].as_f64(), now["log"]["level"].as_str()), (Some(0.0), Some("warn")));
    assert_eq!(now["gns3"]["servers"]["default"]["timeout"], 2.5);
    // The cache took it: TTL 0, so reads miss.
    assert_eq!(app.get("/api/v2/status").await.body["cache"]["details"]["ttl_secs"], 0.0);
    // The dispatcher took it: a module type published now gets CRITICAL.
    let d = app.state.dispatcher.clone().expect("events are on");
    let ev = NewEvent {
        kind: "probe.tick".into(),
        server: "default".into(),
        project_id: None,
        node_id: None,
        timestamp: chrono::Utc::now(),
        correlation_id: None,
        source: Source::Module,
        data: json!({}),
    };
    d.send(PublishBatch(vec![ev])).await.expect("the dispatcher runs");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let h = app.get("/api/v2/events?types=probe.tick").await.body;
        if let Some(e) = h["events"].as_array().and_then(|a| a.first()) {
            assert_eq!(e["priority"], "CRITICAL", "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "the event never reached the history");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // null removes an override.
    let r = patch(&app, &json!({"events": {"priorities": {"probe.tick": null}}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["config"]["events"]["priorities"], json!({"node.updated": "HIGH"}));
    app.stop().await;
    sim.stop().await;
}

const FILE: &str = r#"
[http]
bind = "127.0.0.1:{PORT}"
workers = 1
[cache]
ttl = TTL
[[auth.tokens]]
name = "admin"
role = "admin"
hash = "HASH"
"#;

fn file(ttl: &str, workers: u32) -> String {
    FILE.replace("TTL", ttl)
        .replace("workers = 1", &format!("workers = {workers}"))
        .replace("HASH", &gns3_central::auth::token::hash(ADMIN_TOKEN))
}

/// Polls `/metrics` until the reload counter for `result` reaches `n`.
async fn wait_reloads(svc: &Service, result: &str, n: f64) {
    let client = awc::Client::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut r =
            client.get(format!("{}/metrics", svc.base)).bearer_auth(ADMIN_TOKEN).send().await.expect("an answer");
        let text = String::from_utf8_lossy(&r.body().await.expect("a body")).into_owned();
        let m = crate::helpers::prom::parse(&text);
        if m.value("gns3central_config_reloads_total", &[("result", result)]) == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "no {result} reload counted:\n{}", svc.stderr());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn config_of(svc: &Service) -> Value {
    let mut r = awc::Client::default()
        .get(format!("{}/api/v2/config", svc.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("an answer");
    r.json().await.expect("JSON")
}

#[actix_rt::test]
async fn sighup_reloads_the_file_applying_live_keys_and_ignoring_a_broken_file() {
    let mut svc = Service::start(&file("30", 1), &["--test-mode"], &[]).await;
    assert_eq!(config_of(&svc).await["cache"]["ttl"], 30.0);
    let path = svc.path("config.toml");
    let port = svc.base.rsplit(':').next().expect("a port").to_owned();
    std::fs::write(&path, file("7", 2).replace("{PORT}", &port)).expect("rewritten");
    svc.signal("HUP");
    wait_reloads(&svc, "ok", 1.0).await;
    let c = config_of(&svc).await;
    assert_eq!(c["cache"]["ttl"], 7.0, "the live key changed");
    assert_eq!(c["http"]["workers"], 1, "a restart key keeps its running value");
    assert!(svc.stderr().contains("need a restart") && svc.stderr().contains("http.workers"), "{}", svc.stderr());

    std::fs::write(&path, file("\"soon\"", 2).replace("{PORT}", &port)).expect("rewritten");
    svc.signal("HUP");
    wait_reloads(&svc, "failed", 1.0).await;
    assert_eq!(config_of(&svc).await["cache"]["ttl"], 7.0, "a broken file changes nothing");
    assert!(svc.stderr().contains("reload failed"), "{}", svc.stderr());
    svc.signal("TERM");
    let (status, _) = svc.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
}

//! Supervision against the real service: a GNS3 connector made to panic (the
//! `--test-mode` debug hook) is restarted, counted and serves again; three panics within
//! the storm window flip `/readyz` to 503 naming the storm, until it calms.

use std::time::{Duration, Instant};

use crate::app::{spawn_with, test_settings, Target, TestApp};
use crate::helpers::prom;
use crate::metrics::quiet_app;

async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let r = app.get("/metrics").await;
    prom::parse(&r.text).value(name, &[("actor", "gns3_connector"), ("name", "default")])
}

async fn panic_connector(app: &TestApp) {
    let r = app.post_json("/api/v2/debug/servers/default/panic", &serde_json::json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[actix_rt::test]
async fn a_panicking_connector_is_restarted_and_a_storm_makes_the_service_unready_until_it_calms() {
    let settings = test_settings(&Target::nowhere(), |s| {
        s.supervision.storm_restarts = 3;
        s.supervision.storm_window_secs = 4.0;
    });
    let opts = gns3_central::startup::ServeOptions { test_mode: true, ..Default::default() };
    let app = spawn_with(settings, opts).await;
    app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    assert_eq!(app.get("/readyz").await.status, 200);
    assert_eq!(metric(&app, "gns3central_actor_restarts_total").await, Some(0.0));

    panic_connector(&app).await;
    // Restarted (after its delay), counted, connected and answering again.
    let s = app.wait_server(Duration::from_secs(10), |s| s["connected"] == true && s["actor_restarts"] == 1).await;
    assert_eq!(s["name"], "default");
    assert_eq!(metric(&app, "gns3central_actor_restarts_total").await, Some(1.0));
    assert_eq!(metric(&app, "gns3central_actor_panics_total").await, Some(1.0));
    assert_eq!(app.get("/api/v2/servers/default/projects").await.status, 200);
    assert_eq!(metric(&app, "gns3central_actor_restart_storm").await, Some(0.0));

    // Two more within the window: a storm.
    panic_connector(&app).await;
    panic_connector(&app).await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["restart_storms"], serde_json::json!(["gns3_connector:default"]), "{}", r.text);
    assert_eq!(metric(&app, "gns3central_actor_restart_storm").await, Some(1.0));
    assert_eq!(metric(&app, "gns3central_actor_panics_total").await, Some(3.0));
    // Calm again once the restarts leave the window (and the connector reconnected).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/readyz").await;
        if r.status == 200 {
            assert_eq!(r.body["restart_storms"], serde_json::json!([]));
            break;
        }
        assert!(Instant::now() < deadline, "still not ready: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get("/api/v2/servers/default/projects").await.status, 200);
    app.stop().await;
}

#[actix_rt::test]
async fn the_debug_hook_exists_only_in_test_mode() {
    let (sim, app) = quiet_app(|_| {}).await;
    let r = app.post_json("/api/v2/debug/servers/default/panic", &serde_json::json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(crate::app::error_code(&r), "unknown_route");
    let r = app
        .post_json_as(Some(crate::metrics::VIEWER), "/api/v2/debug/servers/default/panic", &serde_json::json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(metric(&app, "gns3central_actor_restarts_total").await, Some(0.0));
    app.stop().await;
    sim.stop().await;
}

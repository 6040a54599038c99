//! GNS3 killed with SIGKILL mid-run: requests answer 503 with `Retry-After` within the
//! timeout, the circuit opens after the configured failures, the status says
//! disconnected; GNS3 started again: the service reconnects by itself within a few
//! seconds of GNS3 listening, and the API works again without restarting the service.

use std::time::{Duration, Instant};

use crate::app::{error_code, spawn_app, test_settings};
use crate::helpers::testbed::{self, Flavor};

async fn survives_a_gns3_crash(flavor: Flavor) {
    let mut gns3 = testbed::dedicated(flavor, "outage").await;
    let env = gns3.env();
    let timeout = 3.0;
    let threshold = 3;
    let app = spawn_app(test_settings(&env.target(), |s| {
        let d = s.gns3.servers.get_mut("default").unwrap();
        d.timeout = timeout;
        d.breaker.failure_threshold = threshold;
        d.breaker.open_secs = 30.0; // longer than the test: only the probe may close it
    }))
    .await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let project = env.create_project("outage").await;
    let path = format!("/api/v2/servers/default/projects/{}/nodes", project.id);
    assert_eq!(app.get(&path).await.status, 200);
    // A read the cache never answers: every one of them reaches the connector.
    let uncached = "/api/v2/servers/default/computes";

    gns3.kill().await;

    // Requests fail fast with 503 + Retry-After, first as unavailable, then circuit open.
    let mut codes = Vec::new();
    for _ in 0..(threshold + 2) {
        let begin = Instant::now();
        let r = app.get(uncached).await;
        let took = begin.elapsed();
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(
            r.retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)),
            "Retry-After: {:?}",
            r.retry_after
        );
        assert!(took < Duration::from_secs_f64(timeout + 1.0), "answered after {took:?}");
        codes.push(error_code(&r));
    }
    assert_eq!(codes.last().map(String::as_str), Some("circuit_open"), "{codes:?}");
    let s = app.wait_server(Duration::from_secs(10), |s| s["connected"] == false).await;
    assert_eq!(s["circuit"]["state"], "open", "{s}");
    assert!(s["circuit"]["times_opened"].as_u64() >= Some(1), "{s}");
    assert!(s["last_error"].is_string(), "{s}");
    assert_eq!(app.get("/readyz").await.status, 503);
    // The cached node list goes with the connection (no events reach the cache while GNS3
    // is away): once `server.disconnected` is applied, that read is a 503 too.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.get(&path).await;
        if r.status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "the cached read still answers after the disconnect: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }

    // GNS3 comes back: the service reconnects by itself. "Listening" is the first moment
    // GNS3 answers its /version, watched while the test-bed starts it; "connected" is the
    // service's own `connected_since`.
    let version_url = format!("{}/version", env.api);
    let watch = async {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(res) = client.get(&version_url).send().await {
                if res.status() == 200 {
                    return chrono::Utc::now();
                }
            }
            assert!(Instant::now() < deadline, "GNS3 did not answer at {version_url}");
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((), listening) = futures_util::future::join(gns3.start(), watch).await;
    let s =
        app.wait_server(Duration::from_secs(15), |s| s["connected"] == true && s["circuit"]["state"] == "closed").await;
    let connected: chrono::DateTime<chrono::Utc> =
        s["connected_since"].as_str().and_then(|t| t.parse().ok()).expect("connected_since is set");
    let reconnect = (connected - listening).to_std().unwrap_or(Duration::ZERO);
    eprintln!(
        "MEASURE reconnect {:?}: {:.3} s from GNS3 answering /version to the service connected",
        flavor,
        reconnect.as_secs_f64()
    );
    assert!(reconnect < Duration::from_secs(5), "reconnected only after {reconnect:?}: {s}");
    let r = app.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/readyz").await.status, 200);
    assert!(s["disconnects"].as_u64() >= Some(1), "{s}");
    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn survives_a_gns3_crash_v2() {
    survives_a_gns3_crash(Flavor::V2).await;
}

#[actix_rt::test]
async fn survives_a_gns3_crash_v3() {
    survives_a_gns3_crash(Flavor::V3).await;
}

/// `serve --test-mode` works with nothing else installed: the built-in stand-in serves a
/// topology, and node actions succeed against it.
#[actix_rt::test]
async fn test_mode_serves_the_stand_in() {
    let settings = test_settings(&crate::app::Target::nowhere(), |_| {});
    let app =
        crate::app::spawn_with(settings, gns3_central::startup::ServeOptions { test_mode: true, ..Default::default() })
            .await;
    app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    let r = app.get("/api/v2/topology").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let projects = r.body["servers"][0]["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2);
    let p = &projects[0];
    let (pid, nid) = (p["project"]["project_id"].as_str().unwrap(), p["nodes"][0]["node_id"].as_str().unwrap());
    let r = app
        .post_json(
            &format!("/api/v2/servers/default/projects/{pid}/nodes/{nid}/actions/restart"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["steps"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["node"]["status"], "started");
    app.stop().await;
}

//! Against real gns3-server v2 and v3 (started by `scripts/gns3-testbed`): version
//! detection and login, topology with qemu nodes and links, the node lifecycle with
//! GNS3's real 409 (no ubridge here: start answers 409 while the node does start),
//! GNS3's 404 and 403 passed through, and re-login after the v3 token stops being valid.

use serde_json::json;
use std::time::Duration;

use crate::app::{error_code, spawn_app, test_settings, TestApp};
use crate::helpers::testbed::{self, Flavor, Gns3Env};

pub async fn app_for(env: &Gns3Env) -> TestApp {
    let app = spawn_app(test_settings(&env.target(), |_| {})).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    app
}

async fn detects_version_and_logs_in(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let app = app_for(&env).await;
    let s = app.get("/api/v2/servers/default").await.body;
    assert_eq!(s["api_version"], flavor.api(), "{s}");
    let v = s["gns3_version"].as_str().unwrap_or_default();
    assert!(v.starts_with(flavor.version_prefix()), "{s}");
    assert_eq!(s["authenticated"], flavor == Flavor::V3, "{s}");
    assert_eq!(s["circuit"]["state"], "closed");
    // v2 lists its local compute; v3 hides it (an empty list is the right answer there).
    let r = app.get("/api/v2/servers/default/computes").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let has_local = r.body.as_array().expect("a list").iter().any(|c| c["compute_id"] == "local");
    assert_eq!(has_local, flavor == Flavor::V2, "{}", r.text);
    let r = app.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["cache"]["backend"].as_str(), r.body["cache"]["redis"].as_str()),
        (Some("memory"), Some("disabled")),
        "{}",
        r.text
    );
    app.stop().await;
}

#[actix_rt::test]
async fn detects_version_and_logs_in_v2() {
    detects_version_and_logs_in(Flavor::V2).await;
}

#[actix_rt::test]
async fn detects_version_and_logs_in_v3() {
    detects_version_and_logs_in(Flavor::V3).await;
}

async fn topology_and_node_lifecycle(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let app = app_for(&env).await;
    let project = env.create_project("lifecycle").await;
    let pid = project.id;
    let a = env.create_qemu_node(pid, "A").await;
    let b = env.create_qemu_node(pid, "B").await;
    let link = env.create_link(pid, a, b).await;

    // Topology of the project, through the service.
    let r = app.get(&format!("/api/v2/servers/default/projects/{pid}/topology")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = &r.body["projects"][0];
    assert_eq!(t["project"]["project_id"], pid.to_string());
    let mut names: Vec<_> =
        t["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(t["nodes"][0]["node_type"], "qemu");
    assert!(t["nodes"][0]["ports"].is_array(), "GNS3's own fields are passed through");
    assert_eq!(t["links"][0]["link_id"], link.to_string());
    assert_eq!(t["links"][0]["nodes"].as_array().unwrap().len(), 2);
    let all = app.get("/api/v2/topology").await;
    assert_eq!(all.status, 200);
    assert!(all.text.contains(&pid.to_string()));
    let legacy = app.get(&format!("/api/common/api/gns3-central/topology/?project_id={pid}")).await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.body["projects"][0]["nodes"].as_array().unwrap().len(), 2);

    // Start: GNS3 answers 409 (no ubridge) although the node starts.
    let r = app.post_json("/api/common/api/gns3-central/start_node/", &json!({"project_id": pid, "node_id": a})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (409, "gns3_conflict"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("uBridge"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["gns3_status"], 409);
    assert_eq!(r.body["error"]["details"]["node"]["status"], "started", "true status after the 409: {}", r.text);
    let r = app.get(&format!("/api/v2/servers/default/projects/{pid}/nodes/{a}")).await;
    assert_eq!(r.body["status"], "started", "{}", r.text);
    assert_eq!(env.node_status(pid, a).await, "started");

    // Suspend, then stop, through the versioned API.
    let base = format!("/api/v2/servers/default/projects/{pid}/nodes/{a}/actions");
    let r = app.post_json(&format!("{base}/suspend"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["node"]["status"], "suspended", "{}", r.text);
    assert_eq!(r.body["steps"][0]["ok"], true);
    let r = app.post_json(&format!("{base}/stop"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["node"]["status"], "stopped", "{}", r.text);
    assert_eq!(env.node_status(pid, a).await, "stopped");

    // Restart = stop then start, reported as one action: start fails with GNS3's 409.
    let r = app.post_json(&format!("{base}/restart"), &json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let steps = r.body["error"]["details"]["steps"].as_array().expect("both steps reported");
    assert_eq!(steps.len(), 2, "{}", r.text);
    assert_eq!((steps[0]["action"].as_str(), steps[0]["ok"].as_bool()), (Some("stop"), Some(true)));
    assert_eq!((steps[1]["action"].as_str(), steps[1]["ok"].as_bool()), (Some("start"), Some(false)));
    assert_eq!(steps[1]["gns3_status"], 409);
    let r = app.post_json("/api/common/api/gns3-central/stop_node/", &json!({"project_id": pid, "node_id": a})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["node"]["status"], "stopped");

    // GNS3's 404s, passed through with its message.
    let unknown = uuid::Uuid::new_v4();
    let r = app.get(&format!("/api/v2/servers/default/projects/{pid}/nodes/{unknown}")).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "not_found"), "{}", r.text);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains(&format!("Node ID {unknown} doesn't exist")),
        "{}",
        r.text
    );
    let r =
        app.post_json(&format!("/api/v2/servers/default/projects/{unknown}/nodes/{a}/actions/stop"), &json!({})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains(&format!("Project ID {unknown} doesn't exist")),
        "{}",
        r.text
    );

    // A closed project: GNS3's 403 passed through.
    let r = app.post_json(&format!("/api/v2/servers/default/projects/{pid}/actions/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["project"]["status"], "closed", "{}", r.text);
    let r = app.post_json(&format!("{base}/start"), &json!({})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (403, "gns3_forbidden"), "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("not opened"), "{}", r.text);
    let r = app.post_json(&format!("/api/v2/servers/default/projects/{pid}/actions/open"), &json!({})).await;
    assert_eq!((r.status, r.body["project"]["status"].as_str()), (200, Some("opened")), "{}", r.text);

    project.delete().await;
    app.stop().await;
}

#[actix_rt::test]
async fn topology_and_node_lifecycle_v2() {
    topology_and_node_lifecycle(Flavor::V2).await;
}

#[actix_rt::test]
async fn topology_and_node_lifecycle_v3() {
    topology_and_node_lifecycle(Flavor::V3).await;
}

/// The v3 signing secret is regenerated when the state is reset, so the token the service
/// holds stops being valid: the next call gets 401 and the service must log in again.
#[actix_rt::test]
async fn logs_in_again_when_the_v3_token_stops_being_valid() {
    let mut gns3 = testbed::dedicated(Flavor::V3, "relogin").await;
    let env = gns3.env();
    let app = app_for(&env).await;
    let r = app.get("/api/v2/servers/default/projects").await;
    assert_eq!(r.status, 200, "{}", r.text);

    gns3.stop().await;
    gns3.reset().await;
    gns3.start().await;
    // The old token is now refused by GNS3 itself...
    assert_eq!(env.status_with_token("/projects", &env.token).await, 401);
    // ...and the service still answers, having logged in again.
    let mut last = None;
    for _ in 0..100 {
        let r = app.get("/api/v2/servers/default/projects").await;
        if r.status == 200 {
            last = Some(r);
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let r = last.expect("the service recovered with a new token within 10 s");
    assert!(r.body.is_array(), "{}", r.text);
    let s = app.get("/api/v2/servers/default").await.body;
    assert_eq!((s["connected"].as_bool(), s["authenticated"].as_bool()), (Some(true), Some(true)), "{s}");
    app.stop().await;
}

/// `POST /api/v2/servers/{server}/reconnect` restarts the supervised connector: the
/// restart is counted, the connection comes back by itself, and the API works again.
#[actix_rt::test]
async fn reconnect_restarts_the_supervised_connector() {
    let env = testbed::gns3(Flavor::V3).await;
    let app = app_for(&env).await;
    let r = app.post_json("/api/v2/servers/default/reconnect", &json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["actor_restarts"], 1, "{}", r.text);
    let s = app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    assert_eq!((s["actor_restarts"].as_u64(), s["authenticated"].as_bool()), (Some(1), Some(true)), "{s}");
    let r = app.get("/api/v2/servers/default/projects").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post_json("/api/v2/servers/nope/reconnect", &json!({})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_server"), "{}", r.text);
    app.stop().await;
}

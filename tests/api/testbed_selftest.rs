//! The test-bed helpers themselves, against real gns3-server v2 and v3: the shared server
//! answers with the right version, scenarios can be set up straight on GNS3, and a
//! dedicated server comes back on the same port after a crash, with its state, or
//! without it after a reset. These do not involve the service, so a failure here points
//! at the test-bed rather than at gns3-central.

use awc::http::Method;
use std::net::TcpStream;
use std::process::Command;

use crate::helpers::testbed::{self, Flavor, Gns3Env};

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

async fn shared_server_answers_with_its_version(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let (status, v) = env.call(Method::GET, "/version", None).await;
    assert_eq!(status, 200, "{v}");
    let version = v["version"].as_str().unwrap_or_default();
    assert!(version.starts_with(flavor.version_prefix()), "{v}");
    assert_eq!(version, env.version);
    assert_eq!(env.api, format!("{}/{}", env.url, flavor.api()));
    assert_eq!(env.url, format!("http://127.0.0.1:{}", env.port));
    assert!(env.log.is_file(), "server log at {}", env.log.display());
    // Shared: a second call gives the same server.
    assert_eq!(testbed::gns3(flavor).await.pid, env.pid);
    let target = env.target();
    assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", env.port));
    if flavor == Flavor::V3 {
        assert_eq!((env.user.as_str(), target.username.as_str()), ("admin", "admin"));
        assert_eq!(env.status_with_token("/projects", &env.token).await, 200);
        assert_eq!(env.status_with_token("/projects", "").await, 401);
        assert_eq!(env.status_with_token("/projects", "not-a-token").await, 401);
    } else {
        assert!(env.token.is_empty() && target.username.is_empty() && target.password.is_empty());
    }
}

#[actix_rt::test]
async fn shared_server_answers_with_its_version_v2() {
    shared_server_answers_with_its_version(Flavor::V2).await;
}

#[actix_rt::test]
async fn shared_server_answers_with_its_version_v3() {
    shared_server_answers_with_its_version(Flavor::V3).await;
}

async fn scenario_is_set_up_straight_on_gns3(flavor: Flavor) {
    let env = testbed::gns3(flavor).await;
    let project = env.create_project("selftest").await;
    let other = env.create_project("selftest").await;
    assert_ne!(project.name, other.name, "project names are unique");
    let pid = project.id;
    let a = env.create_qemu_node(pid, "A").await;
    let b = env.create_qemu_node(pid, "B").await;
    let link = env.create_link(pid, a, b).await;
    assert_eq!(env.node_status(pid, a).await, "stopped");
    assert_eq!(env.node_status(pid, b).await, "stopped");
    let (status, links) = env.call(Method::GET, &format!("/projects/{pid}/links"), None).await;
    assert_eq!(status, 200, "{links}");
    assert_eq!(links[0]["link_id"], link.to_string(), "{links}");
    let (status, node) = env.call(Method::GET, &format!("/projects/{pid}/nodes/{a}"), None).await;
    assert_eq!((status, node["node_type"].as_str()), (200, Some("qemu")), "{node}");
    project.delete().await;
    other.delete().await;
    let (status, _) = env.call(Method::GET, &format!("/projects/{pid}"), None).await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn scenario_is_set_up_straight_on_gns3_v2() {
    scenario_is_set_up_straight_on_gns3(Flavor::V2).await;
}

#[actix_rt::test]
async fn scenario_is_set_up_straight_on_gns3_v3() {
    scenario_is_set_up_straight_on_gns3(Flavor::V3).await;
}

async fn project_exists(env: &Gns3Env, id: uuid::Uuid) -> bool {
    env.call(Method::GET, &format!("/projects/{id}"), None).await.0 == 200
}

async fn dedicated_server_survives_kill_and_reset(flavor: Flavor) {
    let mut gns3 = testbed::dedicated(flavor, "selftest").await;
    let before = gns3.env();
    assert_ne!(before.port, testbed::gns3(flavor).await.port, "not the shared server");
    let project = before.create_project("survivor").await;

    gns3.kill().await;
    assert!(!listening(before.port), "still listening after kill");
    gns3.start().await;
    let after = gns3.env();
    assert_eq!(after.port, before.port);
    assert_ne!(after.pid, before.pid);
    assert!(project_exists(&after, project.id).await, "state kept across a crash");
    if flavor == Flavor::V3 {
        // Same signing secret: the old token still works.
        assert_eq!(after.status_with_token("/projects", &before.token).await, 200);
    }

    gns3.stop().await;
    assert!(!listening(before.port), "still listening after stop");
    gns3.reset().await;
    gns3.start().await;
    let reset = gns3.env();
    assert_eq!(reset.port, before.port);
    assert!(!project_exists(&reset, project.id).await, "state gone after reset");
    if flavor == Flavor::V3 {
        assert_eq!(reset.status_with_token("/projects", &before.token).await, 401, "new secret after reset");
        assert_eq!(reset.status_with_token("/projects", &reset.token).await, 200);
    }
}

#[actix_rt::test]
async fn dedicated_server_survives_kill_and_reset_v2() {
    dedicated_server_survives_kill_and_reset(Flavor::V2).await;
}

#[actix_rt::test]
async fn dedicated_server_survives_kill_and_reset_v3() {
    dedicated_server_survives_kill_and_reset(Flavor::V3).await;
}

/// Without an install, `start` fails and names the command to run.
#[test]
fn missing_install_names_the_install_command() {
    let empty = tempfile::tempdir().expect("temp dir");
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gns3-testbed"))
        .args(["start", "v2"])
        .env("GNS3_TESTBED_DIR", empty.path())
        .env("GNS3_TESTBED_INSTANCE", "selftest-missing")
        .output()
        .expect("the script runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not installed") && err.contains("scripts/gns3-testbed install"), "{err}");
    assert!(out.stdout.is_empty(), "no env lines on failure");
}

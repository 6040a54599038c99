//! The stand-in may not drift from the real thing: one scenario is run against
//! `gns3-central simulate` and against real gns3-server v2, and the status codes, the key
//! sets of the replies and the notification frames (action + key set of the event) must
//! be the same. The one documented difference, node start succeeding in the stand-in, is
//! not part of the scenario.

use futures_util::{SinkExt, StreamExt};
use gns3_central::simulate::{Simulator, SimulatorOptions};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::testbed::{self, Flavor};

/// What one step produced: label, status, key set(s).
#[derive(Debug, PartialEq, Eq, Clone)]
struct Step {
    label: &'static str,
    status: u16,
    keys: String,
}

fn keys_of(v: &Value) -> String {
    match v {
        Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(","),
        Value::Array(a) => {
            let sets: BTreeSet<String> = a.iter().map(keys_of).collect();
            format!("[{}]", sets.into_iter().collect::<Vec<_>>().join(" | "))
        }
        Value::Null => "-".into(),
        _ => "scalar".into(),
    }
}

struct Runner {
    api: String,
    client: awc::Client,
    steps: Vec<Step>,
}

impl Runner {
    async fn call(&mut self, label: &'static str, method: &str, path: &str, body: Option<&str>) -> Value {
        let url = format!("{}{}", self.api, path);
        let req = match method {
            "GET" => self.client.get(&url),
            "POST" => self.client.post(&url),
            "PUT" => self.client.put(&url),
            "DELETE" => self.client.delete(&url),
            _ => unreachable!(),
        };
        let mut res = match body {
            Some(b) => req.insert_header(("Content-Type", "application/json")).send_body(b.to_owned()).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{label}: {method} {url}: {e}"));
        let bytes = res.body().limit(16 << 20).await.expect("body");
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.steps.push(Step { label, status: res.status().as_u16(), keys: keys_of(&v) });
        v
    }
}

/// Runs the scenario against a v2 API root (`http://host:port/v2`); returns the REST steps
/// and the notification frames seen on the controller and project streams.
async fn scenario(api: &str) -> (Vec<Step>, BTreeSet<String>, Option<String>) {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let mut r = Runner { api: api.to_owned(), client: client.clone(), steps: vec![] };
    let ws_base = api.replacen("http", "ws", 1);
    let (_, mut controller) = client.ws(format!("{ws_base}/notifications/ws")).connect().await.expect("controller ws");
    let first = next_frame(&mut controller).await;
    assert_eq!(first["action"], "ping", "first controller frame: {first}");

    let name = format!("contract-{}", uuid::Uuid::new_v4().simple());
    r.call("version", "GET", "/version", None).await;
    let p = r.call("create project", "POST", "/projects", Some(&json!({"name": name}).to_string())).await;
    let pid = p["project_id"].as_str().expect("project id").to_owned();
    let (_, mut project) =
        client.ws(format!("{ws_base}/projects/{pid}/notifications/ws")).connect().await.expect("project ws");
    let first = next_frame(&mut project).await;
    assert_eq!(first["action"], "ping", "first project frame: {first}");

    r.call("duplicate project", "POST", "/projects", Some(&json!({"name": name}).to_string())).await;
    r.call("get project", "GET", &format!("/projects/{pid}"), None).await;
    let qemu = |n: &str| {
        json!({"name": n, "node_type": "qemu", "compute_id": "local",
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1}})
        .to_string()
    };
    let a = r.call("create node", "POST", &format!("/projects/{pid}/nodes"), Some(&qemu("A"))).await;
    let b = r.call("create node 2", "POST", &format!("/projects/{pid}/nodes"), Some(&qemu("B"))).await;
    let (na, nb) = (a["node_id"].as_str().unwrap().to_owned(), b["node_id"].as_str().unwrap().to_owned());
    let link = json!({"nodes": [{"node_id": na, "adapter_number": 0, "port_number": 0},
                                {"node_id": nb, "adapter_number": 0, "port_number": 0}]})
    .to_string();
    let l = r.call("create link", "POST", &format!("/projects/{pid}/links"), Some(&link)).await;
    let lid = l["link_id"].as_str().unwrap().to_owned();
    r.call("list nodes", "GET", &format!("/projects/{pid}/nodes"), None).await;
    r.call("list links", "GET", &format!("/projects/{pid}/links"), None).await;
    r.call("get node", "GET", &format!("/projects/{pid}/nodes/{na}"), None).await;
    r.call("update node", "PUT", &format!("/projects/{pid}/nodes/{na}"), Some(r#"{"name":"A2"}"#)).await;
    r.call("stop node", "POST", &format!("/projects/{pid}/nodes/{na}/stop"), Some("{}")).await;
    r.call("bulk stop", "POST", &format!("/projects/{pid}/nodes/stop"), Some("{}")).await;
    r.call("update link", "PUT", &format!("/projects/{pid}/links/{lid}"), Some(r#"{"suspend":true}"#)).await;
    let unknown = uuid::Uuid::new_v4();
    r.call("unknown node", "GET", &format!("/projects/{pid}/nodes/{unknown}"), None).await;
    r.call("unknown project", "GET", &format!("/projects/{unknown}"), None).await;
    r.call("non-uuid project", "GET", "/projects/not-a-uuid", None).await;
    r.call("node missing fields", "POST", &format!("/projects/{pid}/nodes"), Some(r#"{"name":"X"}"#)).await;
    r.call("malformed json", "POST", &format!("/projects/{pid}/nodes"), Some("not json")).await;
    r.call("delete link", "DELETE", &format!("/projects/{pid}/links/{lid}"), None).await;
    r.call("delete node", "DELETE", &format!("/projects/{pid}/nodes/{nb}"), None).await;
    r.call("close project", "POST", &format!("/projects/{pid}/close"), Some("{}")).await;
    r.call("create node closed", "POST", &format!("/projects/{pid}/nodes"), Some(&qemu("C"))).await;
    r.call("list nodes closed", "GET", &format!("/projects/{pid}/nodes"), None).await;
    r.call("open project", "POST", &format!("/projects/{pid}/open"), Some("{}")).await;
    // The controller stream up to the reopening's project.opened before the delete: real
    // GNS3 v2 once answered the open, then the delete, and never sent that frame.
    let mut frames = BTreeSet::new();
    let mut compute_keys = None;
    controller_frames(&mut controller, &mut frames, &mut compute_keys, ("project.opened", &pid)).await;
    r.call("delete project", "DELETE", &format!("/projects/{pid}"), None).await;

    // The frames: the project stream until node B's two deletions and the link's,
    // the controller stream until project.deleted. Awaited, with a bound.
    let mut deleted = 0;
    while deleted < 2 {
        let f = next_frame(&mut project).await;
        let action = f["action"].as_str().unwrap_or("").to_owned();
        if action == "node.deleted" {
            deleted += 1;
        }
        if action != "ping" && !action.starts_with("log.") {
            frames.insert(format!("project {action} {}", keys_of(&f["event"])));
        }
    }
    controller_frames(&mut controller, &mut frames, &mut compute_keys, ("project.deleted", &pid)).await;
    let _ = controller.close().await;
    let _ = project.close().await;
    (r.steps, frames, compute_keys)
}

/// Reads the controller stream into `frames` up to and including the frame `until`
/// (action, project id): the shared GNS3 instance also streams other tests' projects.
async fn controller_frames<S>(
    controller: &mut S,
    frames: &mut BTreeSet<String>,
    compute_keys: &mut Option<String>,
    until: (&str, &str),
) where
    S: futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>> + Unpin,
{
    loop {
        let f = next_frame(controller).await;
        let action = f["action"].as_str().unwrap_or("").to_owned();
        // compute.updated comes on a timer (about 1/s), so whether one falls inside the
        // scenario is chance: its key set is compared only when both sides saw one.
        if action == "compute.updated" {
            compute_keys.get_or_insert_with(|| keys_of(&f["event"]));
        } else if action != "ping" {
            frames.insert(format!("controller {action} {}", keys_of(&f["event"])));
        }
        if action == until.0 && f["event"]["project_id"].as_str() == Some(until.1) {
            return;
        }
    }
}

async fn next_frame<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<awc::ws::Frame, awc::error::WsProtocolError>> + Unpin,
{
    loop {
        let f = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a notification within 20 s")
            .expect("stream open")
            .expect("valid frame");
        if let awc::ws::Frame::Text(t) = f {
            return serde_json::from_slice(&t).expect("notification is JSON");
        }
    }
}

#[actix_rt::test]
async fn stand_in_matches_real_gns3_v2() {
    let real = testbed::gns3(Flavor::V2).await;
    let sim =
        Simulator::start(SimulatorOptions { bind: "127.0.0.1:0".parse().unwrap(), ..SimulatorOptions::default() })
            .await
            .expect("stand-in starts");

    let (real_steps, real_frames, real_compute) = scenario(&real.api).await;
    let (sim_steps, sim_frames, sim_compute) = scenario(&format!("{}/v2", sim.url())).await;
    if let (Some(r), Some(s)) = (&real_compute, &sim_compute) {
        assert_eq!(r, s, "compute.updated key sets differ");
    }
    sim.stop().await;

    let mut diffs = Vec::new();
    for (r, s) in real_steps.iter().zip(&sim_steps) {
        if r != s {
            diffs.push(format!("{}:\n  real {} {}\n  sim  {} {}", r.label, r.status, r.keys, s.status, s.keys));
        }
    }
    assert_eq!(real_steps.len(), sim_steps.len());
    for f in real_frames.symmetric_difference(&sim_frames) {
        let side = if real_frames.contains(f) { "only real" } else { "only sim " };
        diffs.push(format!("frame {side}: {f}"));
    }
    assert!(diffs.is_empty(), "the stand-in differs from gns3-server v2:\n{}", diffs.join("\n"));
    // The comparison must have had something to compare.
    assert!(real_frames.iter().any(|f| f.contains("node.deleted")), "{real_frames:?}");
    assert!(real_frames.iter().any(|f| f.contains("project.closed")), "{real_frames:?}");
}

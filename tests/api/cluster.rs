//! Two service processes on one real Redis and one real gns3-server v2: a change in GNS3
//! reaches each instance's history (what its subscribers get) exactly once, with the same
//! id on both; the lease holder is killed (SIGKILL), a change is made while nobody ingests,
//! and the other instance takes the lease over, resyncs, and reports it, once.
//!
//! Real processes (the binary), because "killed" must mean killed: no graceful release.

use crate::helpers::redis_server;

use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::ADMIN_TOKEN;
use crate::helpers::free_port;
use crate::helpers::testbed::{self, Flavor, Gns3Env};

const WAIT: Duration = Duration::from_secs(40);

/// One `gns3-central serve` process, killed on drop.
struct Instance {
    name: String,
    base: String,
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Instance {
    fn start(name: &str, env: &Gns3Env, redis: &redis_server::RedisServer, prefix: &str) -> Instance {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = format!(
            r#"
[http]
bind = "127.0.0.1:{port}"
workers = 1

[gns3]
topology_burst_ms = 200

[gns3.servers.default]
host = "127.0.0.1"
port = {gport}
username = "{user}"
password = "{password}"
timeout = 5.0

[gns3.servers.default.reconnect]
initial_backoff_ms = 100
max_backoff_ms = 1000
health_interval_secs = 1.0

[cache]
prefix = "{prefix}"

[redis]
enabled = true
url = "{url}"

[cluster]
instance_id = "{name}"
lease_ms = 1500

[[auth.tokens]]
name = "test-admin"
role = "admin"
hash = "{hash}"
"#,
            gport = env.port,
            user = env.user,
            password = env.password,
            url = redis.url(),
            hash = gns3_central::auth::token::hash(ADMIN_TOKEN),
        );
        let path = dir.path().join("config.toml");
        std::fs::File::create(&path).and_then(|mut f| f.write_all(config.as_bytes())).expect("write config");
        let log = dir.path().join("service.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
        for (k, _) in std::env::vars() {
            if k.starts_with("GNS3_") || k.starts_with("REDIS_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn gns3-central");
        Instance { name: name.into(), base: format!("http://127.0.0.1:{port}"), child, log, _dir: dir }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
        let mut res = client.get(format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN).send().await.ok()?;
        if res.status() != 200 {
            return None;
        }
        res.json::<Value>().limit(64 << 20).await.ok()
    }

    /// Polls `path` until `pred` holds; fails with the instance's logs otherwise.
    async fn until(&self, what: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = self.get(path).await {
                if pred(&v) {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "{}: {what} not reached in {WAIT:?}; logs:\n{}", self.name, self.logs());
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn events_until(&self, project: Uuid, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let path = format!("/api/v2/events?limit=1000&projects={project}");
        let v = self.until("the expected events", &path, |v| pred(v["events"].as_array().map_or(&[], |a| a))).await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `id type node` of each event, for failure messages.
fn brief(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| format!("{} {} {} {}", e["id"], e["type"], e["node_id"], e["source"])).collect()
}

fn created(events: &[Value], node: Uuid) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "node.created" && e["node_id"] == node.to_string()).collect()
}

#[actix_rt::test]
async fn two_instances_deliver_each_change_once_and_a_killed_lease_holder_loses_nothing() {
    let env = testbed::gns3(Flavor::V2).await;
    let redis = redis_server::RedisServer::start();
    let prefix = format!("c{}", Uuid::new_v4().simple());
    let project = env.create_project("cluster").await;
    let pid = project.id;

    let mut a = Instance::start("a", &env, &redis, &prefix);
    a.until("holding the lease", "/api/v2/cluster", |v| v["shared"] == true && v["ingesting"]["default"] == true).await;
    let b = Instance::start("b", &env, &redis, &prefix);
    let status = b
        .until("joined, not ingesting", "/api/v2/cluster", |v| {
            v["shared"] == true && v["ingesting"]["default"] == false
        })
        .await;
    assert_eq!(status["instance_id"], "b");

    // A change while `a` ingests: once on each instance, same id.
    let n1 = env.create_qemu_node(pid, "N1").await;
    // A later change as a marker: the log is ordered, so once it is there, any double of
    // the first would be too.
    let n2 = env.create_qemu_node(pid, "N2").await;
    for inst in [&a, &b] {
        let events = inst.events_until(pid, |e| !created(e, n2).is_empty()).await;
        assert_eq!(created(&events, n1).len(), 1, "{}: {:?}", inst.name, brief(&events));
        assert_eq!(created(&events, n2).len(), 1, "{}: {:?}", inst.name, brief(&events));
    }
    let on_a = a.events_until(pid, |e| !created(e, n2).is_empty()).await;
    let on_b = b.events_until(pid, |e| !created(e, n2).is_empty()).await;
    assert_eq!(created(&on_a, n1)[0]["id"], created(&on_b, n1)[0]["id"], "the same id on both");
    let epoch = created(&on_b, n1)[0]["epoch"].clone();

    // The holder dies; a change happens before anyone else ingests.
    a.kill();
    let n3 = env.create_qemu_node(pid, "N3").await;
    b.until("taking the lease over", "/api/v2/cluster", |v| v["ingesting"]["default"] == true).await;
    let n4 = env.create_qemu_node(pid, "N4").await;
    let events = b.events_until(pid, |e| !created(e, n4).is_empty() && !created(e, n3).is_empty()).await;
    assert_eq!(created(&events, n3).len(), 1, "the change missed during the takeover, once: {events:?}");
    assert_eq!(created(&events, n4).len(), 1, "{:?}", brief(&events));
    assert_eq!(created(&events, n1).len(), 1, "what subscribers saw is not reported again: {events:?}");
    assert_eq!(created(&events, n2).len(), 1, "{:?}", brief(&events));
    assert_eq!(created(&events, n3)[0]["epoch"], epoch, "numbering goes on in the shared epoch");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The killed instance starts again: its history and epoch come back from Redis.
    let a = Instance::start("a", &env, &redis, &prefix);
    a.until("joined", "/api/v2/cluster", |v| v["shared"] == true).await;
    let again = a.events_until(pid, |e| !created(e, n4).is_empty()).await;
    let ids = |ev: &[Value]| ev.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    // (`b` may have published more since, e.g. the burst's topology.changed: a prefix.)
    let (before, after) = (ids(&events), ids(&again));
    assert!(
        after.len() >= before.len() && after[..before.len()] == before[..],
        "the same history after a restart: {:?} then {:?}",
        brief(&events),
        brief(&again)
    );
    project.delete().await;
}

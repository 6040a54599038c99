//! `gns3-central events tail` (the binary) against a running service whose history lives
//! in a real Redis: the service is stopped in the middle, events are published meanwhile
//! by a second instance on the same Redis, and the service comes back on the same port.
//! The tail reconnects by itself and prints every event once, in order: no gap, no
//! duplicate. Also its exit codes against no instance and with a refused token.

use gns3_central::config::Settings;
use gns3_central_actors::dispatcher::PublishBatch;
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use crate::app::{spawn_app, test_settings, Target, TestApp, ADMIN_TOKEN};
use crate::helpers::{free_port, redis_server};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GNS3_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    c
}

fn settings(port: u16, instance: &str, redis: &str, prefix: &str) -> Settings {
    test_settings(&Target::nowhere(), |s| {
        s.http.bind = format!("127.0.0.1:{port}");
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(redis.to_owned());
        s.cache.prefix = prefix.to_owned();
        s.cluster.enabled = true;
        s.cluster.instance_id = instance.to_owned();
    })
}

/// Publishes `probe.tick` events `{"n": n}` into the instance's dispatcher, as a module
/// would (numbered in Redis by its cluster bridge).
async fn publish(app: &TestApp, ns: std::ops::RangeInclusive<u64>) {
    publish_kind(app, "probe.tick", ns).await;
}

async fn publish_kind(app: &TestApp, kind: &str, ns: std::ops::RangeInclusive<u64>) {
    let events = ns
        .map(|n| NewEvent {
            kind: kind.into(),
            server: "default".into(),
            project_id: None,
            node_id: None,
            timestamp: chrono::Utc::now(),
            correlation_id: None,
            source: Source::Module,
            data: json!({ "n": n }),
        })
        .collect::<Vec<_>>();
    let d = app.state.dispatcher.clone().expect("events are on");
    let out = d.send(PublishBatch(events)).await.expect("the dispatcher runs");
    assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");
}

/// The next `n` lines the tail printed, each within 20 s (awaited: the service runs on
/// this thread too).
async fn lines(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let line = actix_rt::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("line {i} of {n} not printed within 20 s"))
            .unwrap_or_else(|| panic!("the tail's stdout closed before line {i} of {n}"));
        out.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")));
    }
    out
}

/// Polls until `pred` holds on `path` of `app`, 20 s at most.
async fn until(app: &TestApp, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get(path).await;
        if r.status == 200 && pred(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "{path} never satisfied the test: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn tail_resumes_after_the_service_restarts_with_no_gap_and_no_duplicate() {
    let redis = redis_server::RedisServer::start();
    let prefix = format!("tail{}", std::process::id());
    let port = free_port();
    let app = spawn_app(settings(port, "tail-a", &redis.url(), &prefix)).await;
    // The shared log's epoch is made with its first event.
    until(&app, "/api/v2/cluster", |c| c["shared"] == true).await;
    publish_kind(&app, "setup.done", 0..=0).await;
    let cluster = until(&app, "/api/v2/cluster", |c| c["epoch"].is_string()).await;
    let epoch = cluster["epoch"].as_str().unwrap_or_default().to_owned();
    let stats = until(&app, "/api/v2/events/stats", |s| s["epoch"] == epoch.as_str()).await;
    let last = stats["last_seq"].as_u64().expect("last_seq");

    let mut child = bin()
        .args(["events", "tail", "--url", &app.base, "--token", ADMIN_TOKEN, "--types", "probe.*", "--json"])
        .args(["--count", "9", "--since", &format!("{epoch}-{last}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn events tail");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());

    publish(&app, 1..=3).await;
    let mut got = lines(&mut rx, 3).await;

    // The service stops (its sessions are closed with 1001); while it is away another
    // instance on the same Redis publishes 4..6 into the shared log.
    app.shutdown.shutdown().await;
    app.stop().await;
    let other = spawn_app(settings(free_port(), "tail-b", &redis.url(), &prefix)).await;
    until(&other, "/api/v2/cluster", |c| c["shared"] == true && c["epoch"] == epoch.as_str()).await;
    publish(&other, 4..=6).await;
    until(&other, "/api/v2/events?types=probe.*", |e| e["events"].as_array().is_some_and(|a| a.len() == 6)).await;
    other.shutdown.shutdown().await;
    other.stop().await;

    // Back on the same port: the tail resumes after 3 and gets 4..6 from the history.
    let app = spawn_app(settings(port, "tail-a", &redis.url(), &prefix)).await;
    got.extend(lines(&mut rx, 3).await);
    publish(&app, 7..=9).await;
    got.extend(lines(&mut rx, 3).await);

    let status = actix_rt::task::spawn_blocking(move || child.wait().expect("the tail exits")).await.expect("waited");
    let err = err_reader.join().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "exit after --count 9: {err}");
    assert!(err.contains("reconnecting in"), "the reconnect was reported: {err}");
    let ns: Vec<u64> = got.iter().map(|e| e["data"]["n"].as_u64().unwrap_or(0)).collect();
    assert_eq!(ns, (1..=9).collect::<Vec<_>>(), "every event once, in order");
    let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(got.iter().all(|e| e["epoch"] == epoch.as_str() && e["type"] == "probe.tick"), "{got:?}");
    app.stop().await;
}

#[actix_rt::test]
async fn tail_exits_2_when_no_instance_answers_or_the_token_is_refused() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = bin().args(["events", "tail", "--url", &url, "--timeout", "2"]).output().expect("run events tail");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no instance answers"), "{o:?}");

    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let base = app.base.clone();
    let o = actix_rt::task::spawn_blocking(move || {
        bin().args(["events", "tail", "--url", &base, "--token", "g3c_wrong"]).output().expect("run events tail")
    })
    .await
    .expect("the command ran");
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("refused"), "{o:?}");
    let base = app.base.clone();
    let o = actix_rt::task::spawn_blocking(move || {
        bin()
            .args(["events", "tail", "--url", &base, "--token", ADMIN_TOKEN, "--types", "node.stated"])
            .output()
            .expect("run events tail")
    })
    .await
    .expect("the command ran");
    assert_eq!(o.status.code(), Some(2), "a refused filter: {o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid_subscription"), "{o:?}");
    app.stop().await;
}

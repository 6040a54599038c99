//! `gns3-central status` and `gns3-central events stats` against a running instance
//! (ready, events on and off), with `--json`, with a refused token, and against none.

use std::process::{Command, Output};

use crate::app::{spawn_with, test_settings, Target, ADMIN_TOKEN};
use crate::metrics::quiet_app;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GNS3_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs the binary off the test's thread (the service's actors live on it).
async fn run(args: Vec<String>) -> Output {
    actix_rt::task::spawn_blocking(move || bin().args(&args).output())
        .await
        .expect("the blocking task runs")
        .expect("the binary runs")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[actix_rt::test]
async fn status_and_events_stats_summarise_a_ready_instance() {
    let (sim, app) = quiet_app(|_| {}).await;
    let url = app.base.as_str();
    let o = run(args(&["status", "--url", url, "--token", ADMIN_TOKEN])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("READY") && text(&o).contains("connected"), "{}", text(&o));

    let o = run(args(&["events", "stats", "--url", url, "--token", ADMIN_TOKEN])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    for part in ["events at", "epoch", "CRITICAL", "HIGH", "NORMAL", "LOW", "total", "queues", "history"] {
        assert!(out.contains(part), "'{part}' missing in:\n{out}");
    }
    let o = run(args(&["events", "stats", "--json", "--url", url, "--token", ADMIN_TOKEN])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    let direct = app.get("/api/v2/events/stats").await.body;
    assert_eq!(v["epoch"], direct["epoch"]);
    assert!(v["by_priority"]["CRITICAL"]["dispatched"].as_u64().is_some_and(|n| n >= 1), "{v}");

    let o = run(args(&["events", "stats", "--url", url, "--token", "g3c_not-a-token"])).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("refused") && text(&o).contains("--token"), "{}", text(&o));
    app.stop().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn events_stats_says_when_live_events_are_off() {
    let opts = gns3_central::startup::ServeOptions { no_events: true, ..Default::default() };
    let app = spawn_with(test_settings(&Target::nowhere(), |_| {}), opts).await;
    let o = run(args(&["events", "stats", "--url", &app.base, "--token", ADMIN_TOKEN])).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--no-events"), "{}", text(&o));
    app.stop().await;
}

#[test]
fn events_stats_without_a_running_instance_fails_clearly() {
    let port = crate::helpers::free_port();
    let o = bin().args(["events", "stats", "--url", &format!("http://127.0.0.1:{port}")]).output().expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no instance answers"), "{}", text(&o));
}

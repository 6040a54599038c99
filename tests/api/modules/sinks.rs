//! Notification sinks against a local HTTP receiver on 127.0.0.1: Slack- and
//! Teams-shaped payloads for the matching events only; a receiver that fails gets the
//! retries, then the event is dead-lettered; one that refuses (4xx) is not retried.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use gns3_central_actors::events::Priority;
use gns3_central_actors::sinks::{SinkConfig, SinkFormat};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, Target};

/// (path, body, when) of every POST received.
type Hits = Arc<Mutex<Vec<(String, Value, Instant)>>>;

/// A webhook receiver: `/fail` answers 500, `/gone` 404, anything else 200; every POST recorded.
async fn receiver() -> (String, Hits, actix_web::dev::ServerHandle) {
    let hits: Hits = Arc::default();
    let h = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("port").port();
    let server = HttpServer::new(move || {
        let h = h.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let h = h.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                h.lock().unwrap().push((req.path().to_owned(), v, Instant::now()));
                match req.path() {
                    "/fail" => HttpResponse::InternalServerError().finish(),
                    "/gone" => HttpResponse::NotFound().finish(),
                    _ => HttpResponse::Ok().finish(),
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), hits, handle)
}

fn sink(name: &str, url: String, format: SinkFormat, types: &[&str]) -> SinkConfig {
    let mut s: SinkConfig = serde_json::from_value(json!({"name": name, "url": url})).expect("a sink");
    s.format = format;
    s.types = types.iter().map(|t| t.to_string()).collect();
    s.max_retries = 2;
    s.initial_backoff_ms = 10;
    s.max_backoff_ms = 50;
    s
}

fn hits_at(hits: &Hits, path: &str) -> Vec<Value> {
    hits.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, v, _)| v.clone()).collect()
}

#[actix_rt::test]
async fn sinks_post_slack_and_teams_payloads_and_dead_letter_after_retries() {
    let (base, hits, server) = receiver().await;
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.events.priorities.insert("probe.alert".into(), Priority::High);
        s.events.priorities.insert("probe.note".into(), Priority::Low);
        let mut slack = sink("slack", format!("{base}/slack"), SinkFormat::Slack, &["probe.*"]);
        slack.min_priority = Priority::Normal;
        s.sinks = vec![
            slack,
            sink("teams", format!("{base}/teams"), SinkFormat::Teams, &["probe.alert"]),
            sink("broken", format!("{base}/fail"), SinkFormat::Json, &["probe.alert"]),
            sink("refused", format!("{base}/gone"), SinkFormat::Json, &["probe.alert"]),
        ];
    }))
    .await;
    let probe = app.state.modules.module("probe").expect("in-process module");
    probe.publish("probe.note", json!({"name": "quiet"})).await.expect("published");
    probe.publish("probe.alert", json!({"name": "R1 down"})).await.expect("published");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let letters = app.get("/api/v2/bus/dead-letters").await.body;
        let done = letters.as_array().is_some_and(|l| l.len() == 2);
        if done && !hits_at(&hits, "/slack").is_empty() && !hits_at(&hits, "/teams").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "sinks did not finish: {:?} {letters}", hits.lock().unwrap());
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }

    // Slack: only the HIGH alert (the LOW note is under its least priority).
    let slack = hits_at(&hits, "/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text = slack[0]["text"].as_str().expect("text");
    assert!(text.starts_with("[HIGH] probe.alert on default: R1 down"), "{text}");
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    // Teams: a MessageCard.
    let teams = hits_at(&hits, "/teams");
    assert_eq!(teams.len(), 1, "{teams:?}");
    assert_eq!((teams[0]["@type"].as_str(), teams[0]["themeColor"].as_str()), (Some("MessageCard"), Some("F57C00")));
    assert!(teams[0]["sections"][0]["facts"].to_string().contains("probe.alert"), "{}", teams[0]);
    // The failing receiver: the first try and two retries, then a dead letter; the
    // refusing one: one try.
    let failed = hits_at(&hits, "/fail");
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0]["type"], "probe.alert", "json sinks send the envelope: {}", failed[0]);
    assert_eq!(hits_at(&hits, "/gone").len(), 1);
    let letters = app.get("/api/v2/bus/dead-letters").await.body;
    let mut sinks: Vec<&str> = letters.as_array().unwrap().iter().filter_map(|l| l["sink"].as_str()).collect();
    sinks.sort();
    assert_eq!(sinks, ["broken", "refused"], "{letters}");
    assert!(letters
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["reason"] == "webhook_failed" && l["module"] == "notifications"));

    let status = app.get("/api/v2/sinks").await.body;
    let broken = status.as_array().unwrap().iter().find(|s| s["name"] == "broken").expect("listed").clone();
    assert_eq!(
        (broken["attempts"].as_u64(), broken["retried"].as_u64(), broken["dead_lettered"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{broken}"
    );
    assert!(!status.to_string().contains(&base), "URLs are not shown: {status}");
    let m = app.get("/api/v2/modules/notifications").await.body;
    assert_eq!(
        (m["kind"].as_str(), m["delivered"].as_u64(), m["dead_lettered"].as_u64()),
        (Some("builtin"), Some(2), Some(2)),
        "{m}"
    );
    server.stop(false).await;
}

#[actix_rt::test]
async fn a_sink_is_paced_by_its_rate_limit() {
    let (base, hits, server) = receiver().await;
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        let mut paced = sink("paced", format!("{base}/paced"), SinkFormat::Json, &["probe.*"]);
        paced.rate_per_minute = 120.0; // one every 500 ms after a burst of 1
        paced.burst = 1;
        s.sinks = vec![paced];
    }))
    .await;
    let probe = app.state.modules.module("probe").expect("in-process module");
    for n in 0..3 {
        probe.publish("probe.tick", json!({"n": n})).await.expect("published");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hits_at(&hits, "/paced").len() < 3 {
        assert!(Instant::now() < deadline, "{:?}", hits.lock().unwrap());
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let times: Vec<Instant> = hits.lock().unwrap().iter().map(|(_, _, t)| *t).collect();
    let order: Vec<u64> = hits_at(&hits, "/paced").iter().filter_map(|v| v["data"]["n"].as_u64()).collect();
    assert_eq!(order, [0, 1, 2], "in order");
    // The sink waited for its tokens twice (counted where it happens)...
    let status = app.get("/api/v2/sinks").await.body;
    assert!(status[0]["rate_limited"].as_u64() >= Some(2), "{status}");
    // ... so the receiver saw them about 500 ms apart (1 s in all; the margin absorbs
    // delivery jitter on a loaded machine).
    let span = times[2] - times[0];
    assert!(span >= Duration::from_millis(700), "paced at 2 per second: {span:?}");
    server.stop(false).await;
}

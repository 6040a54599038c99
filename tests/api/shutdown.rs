//! Graceful shutdown: HIGH events still queued when the stop begins reach a WebSocket
//! client before its 1001; SIGTERM to the real binary in cluster mode releases its Redis
//! ingestion lease at once (no waiting for expiry), closes its GNS3 streams, and exits 0
//! within the configured bound.

use crate::helpers::redis_server;

use futures_util::{SinkExt, StreamExt};
use gns3_central_actors::dispatcher::{Priority, PublishBatch};
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, Target, ADMIN_TOKEN};
use crate::helpers::process::Service;

const N: usize = 3000;

#[actix_rt::test]
async fn queued_high_events_reach_websocket_clients_before_the_1001() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.events.priorities.insert("probe.urgent".into(), Priority::High);
        // Ordinary delivery must lose nothing to this slow-ish subscriber (no dead letters
        // under CPU load), so only the stop sequence could drop an event.
        s.events.delivery.max_retries = 20;
        s.events.delivery.max_backoff_ms = 1000;
        s.events.delivery.backlog = 10_000;
        s.shutdown.flush_ms = 20_000;
    }))
    .await;
    let (_res, mut ws) = awc::Client::new()
        .ws(app.url("/ws/gns3/events/"))
        .bearer_auth(ADMIN_TOKEN)
        .max_frame_size(16 * 1024 * 1024)
        .connect()
        .await
        .expect("the upgrade succeeds");
    let sub = json!({"type": "subscribe", "subscriptions": ["probe.urgent"], "request_id": "s"});
    ws.send(actix_http::ws::Message::Text(sub.to_string().into())).await.expect("sent");
    loop {
        match ws.next().await {
            Some(Ok(actix_http::ws::Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).expect("JSON");
                if v["type"] == "subscribed" {
                    break;
                }
            }
            other => assert!(matches!(other, Some(Ok(_))), "{other:?}"),
        }
    }
    let events: Vec<NewEvent> = (0..N)
        .map(|n| NewEvent {
            kind: "probe.urgent".into(),
            server: "default".into(),
            project_id: None,
            node_id: None,
            timestamp: chrono::Utc::now(),
            correlation_id: None,
            source: Source::Module,
            data: json!({"n": n}),
        })
        .collect();
    let d = app.state.dispatcher.clone().expect("events are on");
    let out = d.send(PublishBatch(events)).await.expect("the dispatcher runs");
    assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");
    // Stop at once, while most of them are still queued.
    let stopper = app.shutdown.clone();
    actix_rt::spawn(async move { stopper.shutdown().await });
    let (mut got, mut close) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while close.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match actix_rt::time::timeout(left, ws.next()).await.expect("frames until the close") {
            Some(Ok(actix_http::ws::Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).expect("JSON");
                if v["type"] == "probe.urgent" {
                    got.push(v["data"]["n"].as_u64().expect("n"));
                }
            }
            Some(Ok(actix_http::ws::Frame::Close(reason))) => close = Some(reason.map(|r| u16::from(r.code))),
            Some(Ok(_)) => {}
            other => panic!("the stream ended without a close frame: {other:?}"),
        }
    }
    assert_eq!(close, Some(Some(1001)));
    assert_eq!(got.len(), N, "every queued HIGH event arrives before the close");
    let stats = app
        .state
        .dispatcher
        .clone()
        .expect("events are on")
        .send(gns3_central_actors::dispatcher::GetStats)
        .await
        .expect("stats");
    assert_eq!(stats.dead_letters_total, 0);
    assert!(got.windows(2).all(|w| w[0] + 1 == w[1]), "in order, none twice");
}

#[actix_rt::test]
async fn sigterm_releases_the_lease_closes_gns3_streams_and_exits_0_within_the_bound() {
    let redis = redis_server::RedisServer::start();
    let prefix = format!("sd{}", std::process::id());
    let config = format!(
        "[http]\nbind = \"127.0.0.1:{{PORT}}\"\nworkers = 1\n[cache]\nprefix = \"{prefix}\"\n[redis]\nenabled = true\nurl = \"{}\"\n\
         [cluster]\ninstance_id = \"ops-a\"\nlease_ms = 60000\n[shutdown]\ntimeout_secs = 10\n\
         [[auth.tokens]]\nname = \"admin\"\nrole = \"admin\"\nhash = \"{}\"\n",
        redis.url(),
        gns3_central::auth::token::hash(ADMIN_TOKEN)
    );
    let mut svc = Service::start(&config, &["--test-mode"], &[]).await;
    let client = redis::Client::open(redis.url()).expect("a redis client");
    let mut conn = client.get_connection().expect("a redis connection");
    let key = format!("{prefix}:lease:default");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
        if holder.as_deref() == Some("ops-a") {
            break;
        }
        assert!(Instant::now() < deadline, "the lease was never taken:\n{}", svc.stderr());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    svc.signal("TERM");
    let (status, took) = svc.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}\n{}", svc.stderr());
    assert!(took < Duration::from_secs(10), "took {took:?}, beyond shutdown.timeout_secs");
    // Released, not expired: the lease time is a minute.
    let holder: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
    assert_eq!(holder, None);
    let err = svc.stderr();
    for line in ["Stopped following GNS3's notifications.", "Released the ingestion lease.", "Stopped."] {
        assert!(err.contains(line), "'{line}' not logged:\n{err}");
    }
}

#[actix_rt::test]
async fn the_stop_closes_the_gns3_notification_streams() {
    let (sim, app) = crate::metrics::quiet_app(|_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // The controller stream and the open project's.
    while sim.stream_clients() < 2 {
        assert!(Instant::now() < deadline, "the service never followed GNS3 ({} streams)", sim.stream_clients());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown.shutdown().await;
    // The actors outlive the HTTP server here (same process): only the stop closed them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stream_clients() > 0 {
        assert!(Instant::now() < deadline, "{} GNS3 streams still open after the stop", sim.stream_clients());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    sim.stop().await;
}

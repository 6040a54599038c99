//! Resuming from an id this instance has not received from the shared log yet
//! (docs/events.md#resuming-on-another-instance): clustered (one real redis-server), the
//! resume waits for the log, then replays exactly what follows; a seq that never comes is
//! `ahead` after the bound (twice `cluster.redis_timeout_ms`); without the cluster it is
//! `ahead` at once. The id names seqs the dispatcher reaches a moment later, as a dashboard
//! coming from an instance further along the log would.

use super::*;
use crate::helpers::redis_server::RedisServer;

const TIMEOUT_MS: u64 = 500;

fn clustered(redis: &RedisServer) -> Settings {
    settings(|s| {
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(redis.url());
        s.cluster.redis_timeout_ms = TIMEOUT_MS;
    })
}

async fn position(welcome: &Value) -> (String, u64) {
    (welcome["epoch"].as_str().expect("epoch").to_owned(), welcome["last_seq"].as_u64().expect("last_seq"))
}

#[actix_rt::test]
async fn clustered_resume_ahead_waits_for_the_log_then_replays_exactly_what_follows() {
    let redis = RedisServer::start();
    let app = spawn_app(clustered(&redis)).await;
    assert!(app.state.cluster.is_some(), "the instance is clustered");
    let (mut ws, welcome) = WsClient::connect(&app).await;
    let (epoch, last) = position(&welcome).await;
    let since = last + 2;
    ws.send(json!({"type":"subscribe","subscriptions":["test.ahead"],"since":format!("{epoch}-{since}")})).await;
    // Nothing outside the dispatcher shows the subscribe waiting there: a moment for it to
    // arrive. (Were the events numbered first, the resume would not be ahead: the test
    // would pass without exercising the wait, never fail because of it.)
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    publish(&app, "test.ahead", 0..6, 0).await;
    let (_, _) = ws.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await;
    let (early, replay) = ws.until(Duration::from_secs(10), |v| v["type"] == "replay").await;
    assert!(early.is_empty(), "live events before the replay: {early:?}");
    assert_eq!(replay["recovered"], true, "{replay}");

    // What the log numbered: every test.ahead event after `since`, once, replayed or live.
    let page = app.get(&format!("/api/v2/events?since={epoch}-{last}&limit=500")).await;
    let expected: Vec<u64> = page.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "test.ahead" && e["seq"].as_u64() > Some(since))
        .map(n_of)
        .collect();
    assert!(!expected.is_empty(), "{}", page.text);
    let mut got: Vec<u64> = replay["events"].as_array().expect("events").iter().map(n_of).collect();
    while got.len() < expected.len() {
        let e = ws.json().await;
        assert_eq!(e["type"], "test.ahead", "{e}");
        got.push(n_of(&e));
    }
    assert_eq!(got, expected, "a gap or a duplicate at the seam");
}

#[actix_rt::test]
async fn clustered_resume_from_a_seq_that_never_comes_is_ahead_after_the_bound() {
    let redis = RedisServer::start();
    let app = spawn_app(clustered(&redis)).await;
    let (mut ws, welcome) = WsClient::connect(&app).await;
    let (epoch, _) = position(&welcome).await;
    let bound = Duration::from_millis(2 * TIMEOUT_MS);
    let started = Instant::now();
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":format!("{epoch}-1000000000000")})).await;
    // Meanwhile the instance serves others: its history reads answer at once.
    let page = app.get("/api/v2/events?limit=1").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(started.elapsed() < bound, "a waiting resume holds up the history reads");
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    let waited = started.elapsed();
    assert_eq!((replay["recovered"].as_bool(), replay["reason"].as_str()), (Some(false), Some("ahead")), "{replay}");
    // As before the wait: a fresh topology (here its error: no GNS3 server to read).
    assert!(replay["topology"].is_object() || replay["topology_error"].is_object(), "{replay}");
    assert!(waited >= bound && waited < bound + Duration::from_secs(5), "answered after {waited:?}");

    // GET /api/v2/events?since= waits the same way, then is 400 invalid_since.
    let started = Instant::now();
    let r = app.get(&format!("/api/v2/events?since={epoch}-1000000000000")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(started.elapsed() >= bound, "answered before the bound");
}

#[actix_rt::test]
async fn without_the_cluster_a_resume_ahead_is_answered_at_once() {
    // A long bound, were it applied.
    let app = spawn_app(settings(|s| s.cluster.redis_timeout_ms = 5_000)).await;
    assert!(app.state.cluster.is_none());
    let (mut ws, welcome) = WsClient::connect(&app).await;
    let (epoch, last) = position(&welcome).await;
    let started = Instant::now();
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":format!("{epoch}-{}", last + 1)})).await;
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    assert_eq!(replay["reason"], "ahead", "{replay}");
    assert!(started.elapsed() < Duration::from_secs(3), "waited {:?} without a cluster", started.elapsed());
}

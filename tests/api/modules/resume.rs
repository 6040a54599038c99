//! A module's `subscribe` with `since` (docs/modules.md#resuming-events): the events
//! published while it was away are replayed in order, then live ones follow with no gap
//! and no duplicate, even while events keep coming; an id it cannot resume from gives
//! `recovered: false` with a topology; a malformed `since` is refused and changes nothing.

use serde_json::{json, Value};
use std::time::Duration;

use super::{connect, connect_at, register, status_until, upgrade, ModuleClient};
use crate::app::{spawn_app, spawn_with, test_settings, Target, TestApp};
use gns3_central::startup::ServeOptions;

const T: Duration = Duration::from_secs(15);

fn is_tick(v: &Value) -> bool {
    v["type"] == "src.tick"
}

fn n_of(v: &Value) -> u64 {
    v["data"]["n"].as_u64().unwrap_or_else(|| panic!("no data.n: {v}"))
}

async fn publish(src: &mut ModuleClient, n: u64) {
    src.send(json!({"type":"publish","request_id":n,"event":{"type":"src.tick","data":{"n":n}}})).await;
    let r = src.until(T, |v| v["request_id"] == n).await;
    assert_eq!(r["type"], "published", "{r}");
}

async fn subscribe(m: &mut ModuleClient, frame: Value) -> Value {
    m.send(frame).await;
    m.until(T, |v| v["type"] == "subscribed" || v["type"] == "error").await
}

/// A module `watcher` subscribed to `src.*` (and its token), `src` connected (and its token).
async fn setup(app: &TestApp) -> (ModuleClient, String, ModuleClient, String) {
    let src_t = register(app, "src").await;
    let w_t = register(app, "watcher").await;
    let src = connect(app, "src", &src_t).await;
    let mut w = connect(app, "watcher", &w_t).await;
    let s = subscribe(&mut w, json!({"type":"subscribe","request_id":"s","subscriptions":["src.*"]})).await;
    assert_eq!(s["type"], "subscribed", "{s}");
    (w, w_t, src, src_t)
}

#[actix_rt::test]
async fn a_module_resuming_with_since_gets_what_it_missed_in_order_then_live() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let (mut w, w_t, mut src, _) = setup(&app).await;
    for n in 1..=3 {
        publish(&mut src, n).await;
    }
    let mut last = Value::Null;
    for n in 1..=3 {
        last = w.until(T, is_tick).await;
        assert_eq!(n_of(&last), n);
    }
    drop(w);
    status_until(&app, "watcher", T, |s| s["connected"] == false).await;
    for n in 4..=8 {
        publish(&mut src, n).await;
    }

    let mut w = upgrade(&app, "watcher", |r| r.bearer_auth(&w_t)).await.expect("connected");
    // The welcome names the position: where a module that has handled nothing resumes from.
    let welcome = w.json().await;
    assert_eq!((welcome["type"].as_str(), welcome["epoch"].as_str()), (Some("welcome"), last["epoch"].as_str()));
    assert_eq!(welcome["last_seq"].as_u64(), last["seq"].as_u64().map(|s| s + 5), "{welcome}");
    let since = last["id"].as_str().expect("an event id").to_owned();
    let frame = json!({"type":"subscribe","request_id":"r","subscriptions":["src.*"],"since":since});
    let s = subscribe(&mut w, frame).await;
    assert_eq!((s["type"].as_str(), s["request_id"].as_str()), (Some("subscribed"), Some("r")), "{s}");
    let replay = w.json().await;
    assert_eq!((replay["type"].as_str(), replay["recovered"].as_bool()), (Some("replay"), Some(true)), "{replay}");
    let events = replay["events"].as_array().expect("events");
    assert_eq!(events.iter().map(n_of).collect::<Vec<_>>(), [4, 5, 6, 7, 8], "{replay}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]) && seqs[0] > last["seq"].as_u64().unwrap_or(0), "{seqs:?}");
    assert_eq!((replay["count"].as_u64(), replay["latest_seq"].as_u64()), (Some(5), seqs.last().copied()));

    publish(&mut src, 9).await;
    let live = w.json().await;
    assert_eq!((live["type"].as_str(), n_of(&live)), (Some("src.tick"), 9), "the next frame is the live event");
    // Resuming from the last event leaves nothing to replay.
    let frame = json!({"type":"subscribe","request_id":"u","subscriptions":["src.*"],"since":live["id"]});
    assert_eq!(subscribe(&mut w, frame).await["type"], "subscribed");
    let replay = w.json().await;
    assert_eq!((replay["recovered"].as_bool(), replay["count"].as_u64()), (Some(true), Some(0)), "{replay}");
}

#[actix_rt::test]
async fn the_seam_between_replay_and_live_has_no_gap_and_no_duplicate_while_events_flow() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| s.websocket.queue_frames = 8192)).await;
    let (mut w, w_t, mut src, src_t) = setup(&app).await;
    publish(&mut src, 0).await;
    let first = w.until(T, is_tick).await;
    drop(w);
    status_until(&app, "watcher", T, |s| s["connected"] == false).await;
    for n in 1..=50 {
        publish(&mut src, n).await;
    }
    drop(src);
    // A steady flow from another thread while the watcher comes back and resumes.
    const LAST: u64 = 5000;
    let base = app.base.clone();
    let mut w = connect(&app, "watcher", &w_t).await;
    let flow = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut s2 = connect_at(&base, "src", &src_t).await;
            for n in 51..=LAST {
                s2.send(json!({"type":"publish","event":{"type":"src.tick","data":{"n":n}}})).await;
            }
            s2.send(json!({"type":"ping","request_id":"done"})).await;
            s2.until(Duration::from_secs(60), |v| v["type"] == "pong").await;
        })
    });
    // Resume once the flow is under way (events of the subscription kept from the last
    // connection arrive): some events are then published while the session waits for
    // the replay. Those that come before the replay are in it too
    // (docs/modules.md#resuming-events): skipped here.
    w.until(Duration::from_secs(60), |v| is_tick(v) && n_of(v) > 100).await;
    let frame = json!({"type":"subscribe","request_id":"r","subscriptions":["src.*"],"since":first["id"]});
    w.send(frame).await;
    let replay = w.until(T, |v| v["type"] == "replay").await;
    assert_eq!(replay["recovered"], true, "{replay}");
    let mut got: Vec<u64> = replay["events"].as_array().expect("events").iter().map(n_of).collect();
    w.pending.clear();
    while got.last() != Some(&LAST) {
        let v = w.until(Duration::from_secs(60), is_tick).await;
        got.push(n_of(&v));
    }
    flow.join().expect("the publisher finished");
    let want: Vec<u64> = (1..=LAST).collect();
    let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
    assert!(got == want, "every event once, in order: {} events, first wrong at {first_wrong:?}", got.len());
}

#[actix_rt::test]
async fn an_id_it_cannot_resume_from_gives_recovered_false_with_a_topology() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| s.websocket.max_replay = 2)).await;
    let (mut w, _, mut src, _) = setup(&app).await;
    publish(&mut src, 1).await;
    let one = w.until(T, is_tick).await;
    let id = one["id"].as_str().expect("an id");
    let (epoch, seq) = id.rsplit_once('-').expect("EPOCH-SEQ");
    let seq: u64 = seq.parse().expect("a seq");
    for n in 2..=4 {
        publish(&mut src, n).await;
        w.until(T, is_tick).await;
    }
    let cases = [
        ("ffffffff-1".to_owned(), "other_epoch"),
        (format!("{epoch}-{}", seq + 1000), "ahead"),
        (id.to_owned(), "too_many"), // 3 events after it, 2 at most
    ];
    for (since, reason) in cases {
        let frame = json!({"type":"subscribe","request_id":reason,"subscriptions":["src.*"],"since":since});
        assert_eq!(subscribe(&mut w, frame).await["type"], "subscribed", "{since}");
        let r = w.until(T, |v| v["type"] == "replay").await;
        assert_eq!((r["recovered"].as_bool(), r["reason"].as_str()), (Some(false), Some(reason)), "{r}");
        assert_eq!(r["epoch"], epoch, "{r}");
        // GNS3 is down here: the topology read fails, and says so.
        assert!(r.get("topology").is_some() || r["topology_error"]["code"].is_string(), "{r}");
    }
    // Live events follow.
    publish(&mut src, 5).await;
    assert_eq!(n_of(&w.until(T, is_tick).await), 5);
}

#[actix_rt::test]
async fn a_malformed_since_is_refused_and_changes_nothing() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let (mut w, _, mut src, _) = setup(&app).await;
    let cases = [
        (json!(7), "invalid_field"),
        (json!(["a-1"]), "invalid_field"),
        (json!("garbage"), "invalid_since"),
        (json!(""), "invalid_since"),
        (json!("-5"), "invalid_since"),
        (json!("abc-"), "invalid_since"),
        (json!("abc-x1"), "invalid_since"),
        (json!("abc-99999999999999999999999"), "invalid_since"),
    ];
    for (i, (since, code)) in cases.iter().enumerate() {
        let frame = json!({"type":"subscribe","request_id":i,"subscriptions":["node_status"],"since":since});
        let e = subscribe(&mut w, frame).await;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(*code)), "{since}: {e}");
        assert_eq!(e["request_id"], i, "{e}");
        assert!(e["message"].as_str().is_some_and(|m| m.len() < 300), "a short message: {e}");
    }
    // Nothing changed: the names are those before, and events of the old filter flow.
    let s = status_until(&app, "watcher", T, |_| true).await;
    assert_eq!(s["subscriptions"], json!(["src.*"]), "{s}");
    publish(&mut src, 1).await;
    assert_eq!(n_of(&w.until(T, is_tick).await), 1);
}

#[actix_rt::test]
async fn without_events_the_welcome_has_no_position_and_since_is_refused() {
    let opts = ServeOptions { no_events: true, ..Default::default() };
    let app = spawn_with(test_settings(&Target::nowhere(), |_| {}), opts).await;
    let tok = register(&app, "quiet").await;
    let mut m = upgrade(&app, "quiet", |r| r.bearer_auth(&tok)).await.expect("connected");
    let welcome = m.json().await;
    assert_eq!((welcome["events_enabled"].as_bool(), welcome["epoch"].as_str()), (Some(false), None), "{welcome}");
    assert!(welcome["last_seq"].is_null(), "{welcome}");
    let frame = json!({"type":"subscribe","request_id":"s","subscriptions":["all"],"since":"abcd-1"});
    let e = subscribe(&mut m, frame).await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("events_disabled"), Some("s")), "{e}");
    m.send(json!({"type":"ping","request_id":"p"})).await;
    assert_eq!(m.json().await["type"], "pong");
}

/// Clustered on a real redis-server, the module resumes from an id this instance reaches a
/// moment later (docs/events.md#resuming-on-another-instance): recovered, exactly what follows.
#[actix_rt::test]
async fn a_clustered_resume_ahead_waits_for_the_log_then_replays_what_follows() {
    let redis = crate::helpers::redis_server::RedisServer::start();
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.redis.enabled = true;
        s.redis.url = gns3_central_actors::secret::Secret::new(redis.url());
        s.cluster.redis_timeout_ms = 1_000;
    }))
    .await;
    assert!(app.state.cluster.is_some(), "the instance is clustered");
    let (mut w, _, mut src, _) = setup(&app).await;
    let stats = app.get("/api/v2/events/stats").await;
    let (epoch, last) = (stats.body["epoch"].as_str().expect("epoch").to_owned(), stats.body["last_seq"].as_u64());
    let since = last.expect("last_seq") + 2;
    w.send(json!({"type":"subscribe","request_id":"r","subscriptions":["src.*"],"since":format!("{epoch}-{since}")}))
        .await;
    // Nothing outside the dispatcher shows the read waiting: a moment for it to get there
    // (published first, the id would not be ahead: the test could pass without the wait,
    // never fail because of it).
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    for n in 1..=5 {
        publish(&mut src, n).await;
    }
    let s = w.until(T, |v| v["type"] == "subscribed" || v["type"] == "error").await;
    assert_eq!(s["type"], "subscribed", "{s}");
    let replay = w.until(T, |v| v["type"] == "replay").await;
    assert_eq!(replay["recovered"], true, "{replay}");
    let page = app.get(&format!("/api/v2/events?since={epoch}-{}&limit=500", since - 2)).await;
    let expected: Vec<u64> = page.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| is_tick(e) && e["seq"].as_u64() > Some(since))
        .map(n_of)
        .collect();
    assert!(!expected.is_empty(), "{}", page.text);
    let mut got: Vec<u64> = replay["events"].as_array().expect("events").iter().map(n_of).collect();
    while got.len() < expected.len() {
        got.push(n_of(&w.until(T, is_tick).await));
    }
    assert_eq!(got, expected, "a gap or a duplicate at the seam");
}

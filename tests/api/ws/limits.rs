//! The limits: oversized frames (1009), slow consumers (shedding, then 4008), the
//! heartbeat timeout.

use super::*;

#[actix_rt::test]
async fn oversized_frame_closes_with_1009() {
    let app = spawn_app(settings(|s| s.websocket.max_frame_bytes = 1024)).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send_text(&format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(2000))).await;
    let (code, _) = ws.close_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(u16::from(CloseCode::Size)));
    // A frame under the limit is fine on a new session.
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send_text(&format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(500))).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[actix_rt::test]
async fn slow_consumer_is_shed_then_told_and_keeps_its_session() {
    let app = spawn_app(settings(|s| {
        s.websocket.queue_frames = 32;
        s.websocket.queue_bytes = 256 * 1024;
        s.websocket.unflushed_bytes = 64 * 1024;
        s.events.delivery.dead_letter_capacity = 100_000;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.low"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    // The client reads nothing while ~32 MB of LOW events are published: far more than
    // the socket buffers and the session's queue hold.
    let published = 4000;
    for from in (0..published).step_by(200) {
        publish(&app, "test.low", from..from + 200, 8 * 1024).await;
    }
    let d = app.state.dispatcher.clone().expect("events");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ds = d.send(gns3_central_actors::dispatcher::GetStats).await.expect("stats");
        let c = ds.by_type.get("test.low").cloned().unwrap_or_default();
        // Nothing lost before the session, and the cache (which follows every event) kept up.
        let letters = d.send(GetDeadLetters { limit: 100_000 }).await.expect("dead letters");
        let ours = letters.iter().filter(|l| l.subscriber_label.starts_with("ws:")).count();
        let cache = letters.iter().filter(|l| &*l.subscriber_label == "cache").count();
        assert_eq!((c.shed, ours, cache), (0, 0, 0), "lost before the session or the cache: {c:?}");
        if c.dispatched == published as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "not dispatched in 60 s: {c:?}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Reading again: events and `missed` frames that count the others, then the session
    // still answers.
    let (mut events, mut missed, mut last) = (0u64, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while events + missed < published as u64 {
        assert!(Instant::now() < deadline, "{events} events and {missed} missed of {published}");
        let v = ws.json().await;
        match v["type"].as_str() {
            Some("test.low") => {
                let n = n_of(&v);
                assert!(last < Some(n), "out of order: {n} after {last:?}");
                last = Some(n);
                events += 1;
            }
            Some("missed") => missed += v["count"].as_u64().expect("count"),
            _ => panic!("unexpected frame {v}"),
        }
    }
    assert!(missed > 0 && events > 0, "{events} events, {missed} missed");
    ws.send(json!({"type":"ping","request_id":"after"})).await;
    assert_eq!(ws.json().await["request_id"], "after");
    let stats = app.get("/api/v2/ws/stats").await.body;
    assert_eq!(stats["shed_low"].as_u64(), Some(missed), "{stats}");
    // What waited for this client stayed within its bounds all along (one event is ~8.3 KB;
    // a `missed` frame may precede it).
    assert!(stats["peak_queued_bytes"].as_u64() <= Some(256 * 1024), "{stats}");
    assert!(stats["peak_unflushed_bytes"].as_u64() <= Some(64 * 1024 + 9 * 1024), "{stats}");
    assert!(stats["peak_unflushed_bytes"].as_u64() > Some(32 * 1024), "the writer was used: {stats}");
    assert_eq!(stats["active"], 1, "{stats}");
}

#[actix_rt::test]
async fn slow_consumer_of_high_events_is_closed_with_4008() {
    let app = spawn_app(settings(|s| {
        s.websocket.queue_frames = 32;
        s.websocket.queue_bytes = 256 * 1024;
        s.websocket.unflushed_bytes = 64 * 1024;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.high"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = 0;
    loop {
        publish(&app, "test.high", published..published + 200, 8 * 1024).await;
        published += 200;
        let stats = app.get("/api/v2/ws/stats").await.body;
        if stats["closed_slow"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not closed after {published} events: {stats}");
    }
    let (code, _) = ws.close_code(Duration::from_secs(60)).await;
    assert_eq!(code, Some(4008));
}

#[actix_rt::test]
async fn silent_client_is_closed_after_the_timeout() {
    let app = spawn_app(settings(|s| {
        s.websocket.heartbeat_interval_ms = 100;
        s.websocket.client_timeout_ms = 500;
    }))
    .await;
    // A client that answers pings outlives the timeout several times over.
    let (mut alive, _) = WsClient::connect(&app).await;
    let stay = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < stay {
        alive.send(json!({"type":"ping"})).await;
        assert_eq!(alive.json().await["type"], "pong");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    drop(alive);
    // Timed from before the upgrade: the session counts its silence from its creation,
    // and a connect slowed down by a loaded machine must not eat into the bound.
    let began = Instant::now();
    let (mut silent, _) = WsClient::connect(&app).await;
    silent.answer_pings = false;
    let (code, _) = silent.close_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(u16::from(CloseCode::Policy)));
    assert!(began.elapsed() >= Duration::from_millis(400), "{:?}", began.elapsed());
    assert_eq!(app.get("/api/v2/ws/stats").await.body["closed_timeout"], 1);
}

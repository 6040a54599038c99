//! The welcome, client frames and their replies, bad frames answered with error frames
//! on a session that keeps working, subscriptions and their limits.

use super::*;

#[actix_rt::test]
async fn welcome_ping_and_bad_frames_leave_the_session_working() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, welcome) = WsClient::connect(&app).await;
    assert!(Uuid::parse_str(welcome["session_id"].as_str().unwrap_or("")).is_ok(), "{welcome}");
    assert!(welcome["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{welcome}");
    assert!(welcome["last_seq"].is_u64(), "{welcome}");
    assert_eq!(welcome["limits"]["max_frame_bytes"], 65536);
    assert_eq!(welcome["principal"]["role"], "admin");

    let bad: [(&str, &str, Option<&str>); 8] = [
        ("{nope", "invalid_json", None),
        ("[1,2]", "invalid_frame", None),
        (r#"{"request_id":"r1"}"#, "missing_field", Some("r1")),
        (r#"{"type":"dance","request_id":"r2"}"#, "unknown_type", Some("r2")),
        (r#"{"type":"node_action","request_id":"r3","action":"start"}"#, "missing_field", Some("r3")),
        (r#"{"type":"subscribe","subscriptions":"all","request_id":"r4"}"#, "invalid_field", Some("r4")),
        (
            r#"{"type":"subscribe","subscriptions":["node.stated"],"request_id":"r5"}"#,
            "invalid_subscription",
            Some("r5"),
        ),
        (
            r#"{"type":"node_action","request_id":"r6","action":"fly","project_id":"x","node_id":"y"}"#,
            "invalid_action",
            Some("r6"),
        ),
    ];
    for (text, code, rid) in bad {
        ws.send_text(text).await;
        let e = ws.json().await;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(code)), "{text} -> {e}");
        assert_eq!(e["request_id"].as_str(), rid, "{text} -> {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    let bad_uuid =
        json!({"type":"node_action","request_id":7,"action":"start","project_id":"nope","node_id":Uuid::new_v4()});
    ws.send(bad_uuid).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_u64()), (Some("invalid_id"), Some(7)), "{e}");
    let p = Uuid::new_v4();
    ws.send(
        json!({"type":"node_action","request_id":"s1","action":"start","project_id":p,"node_id":p,"server":"nope"}),
    )
    .await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("unknown_server"), Some("s1")), "{e}");
    ws.framed.send(Message::Binary(Bytes::from_static(b"\x00\x01"))).await.expect("sent");
    assert_eq!(ws.json().await["code"], "unsupported_frame");

    ws.send(json!({"type":"ping","request_id":"p1"})).await;
    assert_eq!(ws.json().await, json!({"type":"pong","request_id":"p1"}));
    let stats = app.get("/api/v2/ws/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["active"], 1, "{}", stats.text);
    assert!(stats.body["error_frames"].as_u64() >= Some(11), "{}", stats.text);
}

#[actix_rt::test]
async fn subscribed_events_arrive_and_others_do_not() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.*"],"request_id":"s"})).await;
    let sub = ws.json().await;
    assert_eq!((sub["type"].as_str(), sub["request_id"].as_str()), (Some("subscribed"), Some("s")), "{sub}");
    assert_eq!(sub["subscriptions"], json!(["test.*"]));
    publish(&app, "other.kind", 0..3, 0).await;
    publish(&app, "test.one", 0..3, 0).await;
    for want in 0..3 {
        let e = ws.json().await;
        assert_eq!((e["type"].as_str(), n_of(&e)), (Some("test.one"), want), "{e}");
        assert!(e["id"].as_str().is_some_and(|id| id.ends_with(&format!("-{}", e["seq"]))), "{e}");
    }
    // Unsubscribed: nothing more arrives, the next frame is the pong.
    ws.send(json!({"type":"unsubscribe","subscriptions":["test.*"]})).await;
    assert_eq!(ws.json().await["subscriptions"], json!([]));
    publish(&app, "test.one", 3..5, 0).await;
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[actix_rt::test]
async fn subscription_limit_and_disabled_events_are_error_frames() {
    let app = spawn_app(settings(|s| s.websocket.max_subscriptions = 2)).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["node_status","test.a"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    ws.send(json!({"type":"subscribe","subscriptions":["test.b"],"request_id":"third"})).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("too_many_subscriptions"), Some("third")), "{e}");
    // The session keeps its two names: their events still arrive.
    publish(&app, "test.a", 0..1, 0).await;
    assert_eq!(ws.json().await["type"], "test.a");

    let off = spawn_with(settings(|_| {}), ServeOptions { no_events: true, ..Default::default() }).await;
    let (mut ws, welcome) = WsClient::connect(&off).await;
    assert_eq!((welcome["events_enabled"].as_bool(), welcome["epoch"].as_str()), (Some(false), None));
    ws.send(json!({"type":"subscribe","subscriptions":["all"]})).await;
    assert_eq!(ws.json().await["code"], "events_disabled");
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong");
}

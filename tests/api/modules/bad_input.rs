//! Bad input to modules: malformed frames, unknown targets, oversized frames, bad
//! registration and bus bodies give clear errors; nothing changes and the sessions and
//! the service keep working.

use serde_json::json;
use std::time::Duration;

use super::{code_of, connect, register, status_until, upgrade};
use crate::app::{spawn_app, test_settings, Target};

#[actix_rt::test]
async fn bad_frames_and_bodies_get_clear_errors_and_change_nothing() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.websocket.max_frame_bytes = 4096;
        s.websocket.action_burst = 2;
        s.websocket.actions_per_second = 0.01;
    }))
    .await;
    let tok = register(&app, "checker").await;
    let mut c = connect(&app, "checker", &tok).await;
    let cases = [
        ("{nope", "invalid_json"),
        ("[1,2]", "invalid_frame"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"type":"send"}"#, "missing_field"),
        (r#"{"type":"send","message":{"type":"x"}}"#, "invalid_message"),
        (r#"{"type":"send","message":{"to":"nobody","type":"x"}}"#, "unknown_module"),
        (r#"{"type":"send","message":{"to":"Bad Name","type":"x"}}"#, "invalid_message"),
        (r#"{"type":"send","message":{"to":"checker","type":"a b"}}"#, "invalid_message"),
        (r#"{"type":"send","message":{"to":"checker","type":"x","ttl":99999999999}}"#, "invalid_message"),
        (r#"{"type":"request","timeout_ms":0,"message":{"to":"checker","type":"x"}}"#, "invalid_message"),
        (r#"{"type":"request","message":{"to":"*","type":"x"}}"#, "invalid_message"),
        (r#"{"type":"reply","message":{"to":"checker","payload":1}}"#, "invalid_message"),
        (r#"{"type":"subscribe","subscriptions":["node.stated"]}"#, "invalid_subscription"),
        (r#"{"type":"node_action","action":"explode","project_id":"x","node_id":"y"}"#, "invalid_action"),
        (r#"{"type":"node_action","action":"start","project_id":"x","node_id":"y"}"#, "invalid_id"),
        (r#"{"type":"publish","event":{"type":"checker.x","project_id":"nope"}}"#, "invalid_id"),
    ];
    for (i, (frame, code)) in cases.iter().enumerate() {
        let text = match serde_json::from_str::<serde_json::Value>(frame) {
            Ok(mut v) if v.is_object() => {
                v["request_id"] = json!(i);
                v.to_string()
            }
            _ => frame.to_string(),
        };
        c.send_text(&text).await;
        let e = c.until(Duration::from_secs(10), |v| v["type"] == "error").await;
        assert_eq!(e["code"], *code, "{frame}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    // Actions are rate-limited as on the dashboard (here: bursts of 2); GNS3 is down.
    let (p, n) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for i in 0..2 {
        c.send(json!({"type":"node_action","action":"start","project_id":p,"node_id":n,"request_id":i})).await;
        let r = c.until(Duration::from_secs(30), |v| v["type"] == "action_result").await;
        assert_eq!((r["ok"].as_bool(), r["error"]["status"].as_u64()), (Some(false), Some(503)), "{r}");
    }
    c.send(json!({"type":"node_action","action":"stop","project_id":p,"node_id":n,"request_id":"third"})).await;
    let e = c.until(Duration::from_secs(10), |v| v["type"] == "error").await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("rate_limited"), Some("third")), "{e}");
    c.send(json!({"type":"ping","request_id":"alive"})).await;
    assert_eq!(c.until(Duration::from_secs(10), |v| v["type"] == "pong").await["request_id"], "alive");
    let s = status_until(&app, "checker", Duration::from_secs(5), |s| s["connected"] == true).await;
    assert_eq!((s["sent"].as_u64(), s["delivered"].as_u64()), (Some(0), Some(0)), "nothing was sent: {s}");
    assert_eq!(s["actions"], 2, "{s}");

    // An oversized frame closes the session with 1009; the module can connect again.
    c.send_text(&format!(
        r#"{{"type":"send","message":{{"to":"checker","type":"x","payload":"{}"}}}}"#,
        "x".repeat(8192)
    ))
    .await;
    assert_eq!(c.close_code(Duration::from_secs(10)).await, Some(1009));
    let mut c = connect(&app, "checker", &tok).await;
    c.send(json!({"type":"ping"})).await;
    assert_eq!(c.json().await["type"], "pong");

    // Registration bodies.
    let before = app.get("/api/v2/modules").await.body["modules"].as_array().map(Vec::len);
    for (body, status, code) in [
        (json!({}), 400, "missing_field"),
        (json!({"name": 5}), 400, "invalid_type"),
        (json!({"name": "Bad Name"}), 400, "invalid_module_name"),
        (json!({"name": "node"}), 400, "invalid_module_name"),
        // `module_name` is the original path's field; this one takes `name` only.
        (json!({"name": "a", "module_name": "b"}), 400, "unknown_field"),
        (json!({"name": "checker"}), 409, "module_exists"),
        (json!([1]), 400, "invalid_body"),
    ] {
        let r = app.post_json("/api/v2/modules", &body).await;
        assert_eq!((r.status, code_of(&r).as_str()), (status, code), "{body}: {}", r.text);
    }
    let r = app.post_raw("/api/v2/modules", "application/json", "{nope").await;
    assert_eq!((r.status, code_of(&r).as_str()), (400, "invalid_json"));
    let r = app.post_raw("/api/common/api/gns3-central/create_module_interface/", "text/plain", "x").await;
    assert_eq!((r.status, code_of(&r).as_str()), (400, "invalid_content_type"));
    // Bus bodies.
    for (body, status, code) in [
        (json!({"to": "checker"}), 400, "invalid_body"),
        (json!({"to": "nobody", "type": "x"}), 404, "unknown_module"),
        (json!({"to": "checker", "type": "x", "timeout_ms": 0}), 400, "invalid_message"),
        (json!({"to": "checker", "type": "x", "ttl": -1}), 400, "invalid_body"),
    ] {
        let r = app.post_json("/api/v2/bus/messages", &body).await;
        assert_eq!((r.status, code_of(&r).as_str()), (status, code), "{body}: {}", r.text);
    }
    assert_eq!(app.get("/api/v2/modules/nobody").await.status, 404);
    let r = app.client.delete(app.url("/api/v2/modules/nobody")).send().await.expect("answers");
    assert_eq!(r.status().as_u16(), 404);
    let after = app.get("/api/v2/modules").await.body["modules"].as_array().map(Vec::len);
    assert_eq!(before, after, "nothing was registered or deleted");
    assert!(upgrade(&app, "checker", |r| r.bearer_auth(&tok)).await.is_ok());
}

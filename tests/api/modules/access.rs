//! A module token acts only as its module: it cannot connect as another module, publish
//! in another namespace, pass for another sender, or be used as an API token; a
//! dashboard (API) token cannot connect as a module; registration needs an admin.

use serde_json::json;
use std::time::Duration;

use super::{code_of, connect, register, status_until, upgrade};
use crate::app::{spawn_app, test_settings, token_setting, Target, ADMIN_TOKEN};

const OPERATOR: &str = "g3c_mod-operator-token-000000000000000000000000000000";
const VIEWER: &str = "g3c_mod-viewer-token-0000000000000000000000000000000";

#[actix_rt::test]
async fn a_module_token_acts_only_as_its_module_and_a_dashboard_token_is_no_module() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.auth.tokens.push(token_setting("ops", "operator", OPERATOR, &[]));
        s.auth.tokens.push(token_setting("viewer", "viewer", VIEWER, &[]));
    }))
    .await;
    let mon = register(&app, "monitoring").await;
    let sec = register(&app, "security").await;

    // Registration and deletion are for admins; reading the status is for viewers.
    let r = app.post_json_as(Some(OPERATOR), "/api/v2/modules", &json!({"name": "x"})).await;
    assert_eq!((r.status, code_of(&r).as_str()), (403, "insufficient_role"));
    let r = app
        .post_json_as(
            Some(VIEWER),
            "/api/common/api/gns3-central/create_module_interface/",
            &json!({"module_name": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.get_as(Some(VIEWER), "/api/v2/modules").await.status, 200);
    // Sending over REST needs an operator.
    let r = app.post_json_as(Some(VIEWER), "/api/v2/bus/messages", &json!({"to": "security", "type": "x"})).await;
    assert_eq!(r.status, 403);

    // Another module's token, an API token, no token, a wrong token: refused before the upgrade.
    assert_eq!(upgrade(&app, "security", |r| r.bearer_auth(&mon)).await.err(), Some(403));
    assert_eq!(upgrade(&app, "monitoring", |r| r.bearer_auth(ADMIN_TOKEN)).await.err(), Some(403));
    assert_eq!(upgrade(&app, "monitoring", |r| r.bearer_auth(OPERATOR)).await.err(), Some(403));
    assert_eq!(upgrade(&app, "monitoring", |r| r).await.err(), Some(401));
    assert_eq!(upgrade(&app, "monitoring", |r| r.bearer_auth("g3m_wrong")).await.err(), Some(401));
    assert_eq!(upgrade(&app, "nobody", |r| r.bearer_auth("g3m_wrong")).await.err(), Some(401));
    // A module token is no API token: not on REST, not on the dashboard socket.
    assert_eq!(app.get_as(Some(&mon), "/api/v2/modules").await.status, 401);
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let dash = client.ws(format!("{}/ws/gns3/events/", app.base)).bearer_auth(&mon).connect().await;
    assert!(matches!(dash, Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s.as_u16() == 401));
    let refused = app.get("/api/v2/auth/stats").await.body;
    assert!(refused["forbidden"].as_u64() >= Some(3) && refused["unauthenticated"].as_u64() >= Some(4), "{refused}");

    // The three transports for the right token.
    let q = format!("{}/ws/modules/monitoring?token={mon}", app.base);
    let (res, _q) = client.ws(q).connect().await.expect("query token");
    assert_eq!(res.status().as_u16(), 101);
    let proto = format!("bearer.{sec}");
    let (res, _p) = client
        .ws(format!("{}/ws/modules/security", app.base))
        .protocols([proto.as_str()])
        .connect()
        .await
        .expect("protocol");
    assert_eq!(res.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()), Some(proto.as_str()));

    let mut m = connect(&app, "monitoring", &mon).await;
    let mut s = connect(&app, "security", &sec).await;
    // Its own namespace only: not another module's, not GNS3's.
    for kind in ["security.alert", "node.started", "monitoring"] {
        m.send(json!({"type":"publish","request_id":kind,"event":{"type":kind,"data":{}}})).await;
        let e = m.until(Duration::from_secs(10), |v| v["type"] == "error").await;
        assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("forbidden_namespace"), Some(kind)), "{e}");
    }
    // `from` is not the sender's to choose.
    m.send(json!({"type":"send","request_id":"f","message":{"to":"security","from":"security","type":"x"}})).await;
    let e = m.until(Duration::from_secs(10), |v| v["type"] == "error").await;
    assert_eq!(e["code"], "invalid_field", "{e}");
    m.send(json!({"type":"send","message":{"to":"security","type":"real"}})).await;
    let got = s.until(Duration::from_secs(10), |v| v["type"] == "message").await;
    assert_eq!((got["message"]["from"].as_str(), got["message"]["type"].as_str()), (Some("monitoring"), Some("real")));

    // Its own events reach dashboards and other modules.
    let (_, framed) = client
        .ws(format!("{}/ws/gns3/events/", app.base))
        .bearer_auth(VIEWER)
        .connect()
        .await
        .expect("a dashboard connects");
    let mut dash = super::ModuleClient { framed, pending: Vec::new() };
    assert_eq!(dash.json().await["type"], "welcome");
    dash.send(json!({"type":"subscribe","subscriptions":["monitoring.*"]})).await;
    assert_eq!(dash.json().await["type"], "subscribed");
    s.send(json!({"type":"subscribe","request_id":"sub","subscriptions":["monitoring.*"]})).await;
    let sub = s.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await;
    assert_eq!(sub["subscriptions"], json!(["monitoring.*"]));
    m.send(json!({"type":"publish","request_id":"p","event":{"type":"monitoring.alert","data":{"cpu":97}}})).await;
    m.until(Duration::from_secs(10), |v| v["type"] == "published").await;
    let ev = s.until(Duration::from_secs(10), |v| v["type"] == "monitoring.alert").await;
    assert_eq!(
        (ev["source"].as_str(), ev["data"]["cpu"].as_u64(), ev["priority"].as_str()),
        (Some("module"), Some(97), Some("NORMAL")),
        "{ev}"
    );
    let seen = dash.until(Duration::from_secs(10), |v| v["type"] == "monitoring.alert").await;
    assert_eq!(seen["id"], ev["id"], "the same event for the dashboard");
    status_until(&app, "security", Duration::from_secs(5), |v| v["subscriptions"] == json!(["monitoring.*"])).await;

    // Deleting a module closes its connection (4004) and its token stops working.
    let r = app.client.delete(app.url("/api/v2/modules/monitoring")).send().await.expect("answers");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(m.close_code(Duration::from_secs(10)).await, Some(4004));
    assert_eq!(upgrade(&app, "monitoring", |r| r.bearer_auth(&mon)).await.err(), Some(401));
    assert_eq!(app.get("/api/v2/modules/monitoring").await.status, 404);
}

#[actix_rt::test]
async fn registrations_and_their_tokens_survive_a_restart_with_a_state_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("modules.json").to_string_lossy().into_owned();
    let f = file.clone();
    let first = spawn_app(test_settings(&Target::nowhere(), move |s| s.modules.state_file = f)).await;
    let tok = register(&first, "keeper").await;
    let id = first.get("/api/v2/modules/keeper").await.body["id"].clone();
    first.stop().await;
    let f = file.clone();
    let second = spawn_app(test_settings(&Target::nowhere(), move |s| s.modules.state_file = f)).await;
    let s = second.get("/api/v2/modules/keeper").await;
    assert_eq!((s.status, s.body["id"].clone(), s.body["connected"].as_bool()), (200, id, Some(false)), "{}", s.text);
    let mut c = connect(&second, "keeper", &tok).await;
    c.send(json!({"type":"ping"})).await;
    assert_eq!(c.json().await["type"], "pong");
    let r = second.client.delete(second.url("/api/v2/modules/keeper")).send().await.expect("answers");
    assert_eq!(r.status().as_u16(), 204);
    let text = std::fs::read_to_string(&file).expect("the file");
    assert!(!text.contains("keeper") && !text.contains(&tok), "{text}");
}

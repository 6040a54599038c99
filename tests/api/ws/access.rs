//! The upgrade: a valid token from an allowed origin; roles and projects apply.

use super::*;

/// The upgrade's status (and the echoed subprotocol) for a request built by `build`.
async fn upgrade(
    app: &TestApp,
    build: impl FnOnce(awc::ws::WebsocketsRequest) -> awc::ws::WebsocketsRequest,
) -> (u16, Option<String>, Option<WsClient>) {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let req = build(client.ws(format!("{}/ws/gns3/events/", app.base)));
    match req.connect().await {
        Ok((res, framed)) => {
            let proto = res.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
            (res.status().as_u16(), proto, Some(WsClient { framed, answer_pings: true }))
        }
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => (s.as_u16(), None, None),
        Err(e) => panic!("upgrade failed unexpectedly: {e}"),
    }
}

#[actix_rt::test]
async fn the_upgrade_needs_a_valid_token_from_an_allowed_origin_and_roles_and_projects_apply() {
    const VIEWER: &str = "g3c_ws-viewer-token-00000000000000000000000000000000";
    const SCOPED: &str = "g3c_ws-scoped-token-00000000000000000000000000000000";
    let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
    let app = spawn_app(settings(|s| {
        s.auth.tokens.push(crate::app::token_setting("viewer", "viewer", VIEWER, &[]));
        s.auth.tokens.push(crate::app::token_setting("scoped", "operator", SCOPED, &[mine.to_string()]));
    }))
    .await;
    let admin = crate::app::ADMIN_TOKEN;

    // No token, a wrong token: 401 before the upgrade.
    assert_eq!(upgrade(&app, |r| r).await.0, 401);
    assert_eq!(upgrade(&app, |r| r.bearer_auth("g3c_wrong")).await.0, 401);
    // A foreign origin: 403 before the upgrade, even with a good token; the own host is fine.
    assert_eq!(upgrade(&app, |r| r.bearer_auth(admin).origin("http://evil.example")).await.0, 403);
    let own = app.base.clone();
    assert_eq!(upgrade(&app, |r| r.bearer_auth(admin).origin(own.as_str())).await.0, 101);
    let counted = app.get("/api/v2/auth/stats").await.body;
    assert_eq!(counted, json!({"unauthenticated": 2, "forbidden": 0, "origin_not_allowed": 1}), "refusals counted");
    // The token in the query, or as the `bearer.<token>` subprotocol (echoed back).
    let base = app.base.clone();
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let (res, _framed) =
        client.ws(format!("{base}/ws/gns3/events/?token={admin}")).connect().await.expect("query token");
    assert_eq!(res.status().as_u16(), 101);
    let proto = format!("bearer.{admin}");
    let (status, echoed, _) = upgrade(&app, |r| r.protocols([proto.as_str()])).await;
    assert_eq!((status, echoed.as_deref()), (101, Some(proto.as_str())));

    // A viewer subscribes but may not act.
    let (status, _, ws) = upgrade(&app, |r| r.bearer_auth(VIEWER)).await;
    assert_eq!(status, 101);
    let mut ws = ws.expect("session");
    let welcome = ws.json().await;
    assert_eq!(welcome["principal"]["role"], "viewer", "{welcome}");
    let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
    ws.send(json!({"type":"node_action","action":"start","project_id":p,"node_id":n,"request_id":"x"})).await;
    let e = ws.json().await;
    assert_eq!((e["code"].as_str(), e["request_id"].as_str()), (Some("forbidden"), Some("x")), "{e}");

    // A project-scoped token gets its project's events only.
    let (_, _, ws) = upgrade(&app, |r| r.bearer_auth(SCOPED)).await;
    let mut ws = ws.expect("session");
    assert_eq!(ws.json().await["principal"]["projects"], json!([mine.to_string()]));
    ws.send(json!({"type":"subscribe","subscriptions":["all"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let d = app.state.dispatcher.clone().expect("events are on");
    let mut batch = Vec::new();
    for (i, project) in [other, mine, other, mine].into_iter().enumerate() {
        let mut e = event("test.high", i, 0);
        e.project_id = Some(project);
        batch.push(e);
    }
    d.send(PublishBatch(batch)).await.expect("dispatcher runs");
    for want in [1, 3] {
        let e = ws.json().await;
        assert_eq!((e["project_id"].as_str(), n_of(&e)), (Some(mine.to_string().as_str()), want), "{e}");
    }
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.json().await["type"], "pong", "nothing of the other project came in between");
}

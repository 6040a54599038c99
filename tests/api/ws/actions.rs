//! Node actions: the per-session rate limit, and against real GNS3 v2 with their events
//! correlated.

use super::*;

#[actix_rt::test]
async fn node_actions_are_rate_limited_per_session() {
    let app = spawn_app(settings(|s| {
        s.websocket.action_burst = 2;
        s.websocket.actions_per_second = 0.01;
    }))
    .await;
    let (mut ws, _) = WsClient::connect(&app).await;
    let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..3 {
        ws.send(json!({"type":"node_action","action":"stop","project_id":p,"node_id":n,"request_id":i})).await;
    }
    let (_, limited) = ws.until(Duration::from_secs(20), |v| v["type"] == "error").await;
    assert_eq!((limited["code"].as_str(), limited["request_id"].as_u64()), (Some("rate_limited"), Some(2)));
    // The two allowed ones ran: GNS3 is down here, so they fail with its error.
    for _ in 0..2 {
        let (_, r) = ws.until(Duration::from_secs(20), |v| v["type"] == "action_result").await;
        assert_eq!((r["ok"].as_bool(), r["error"]["status"].as_u64()), (Some(false), Some(503)), "{r}");
    }
    assert_eq!(app.get("/api/v2/ws/stats").await.body["rate_limited"], 1);
}

/// The first event of `kind`, among the frames already read or the next ones.
async fn event_of(ws: &mut WsClient, seen: &[Value], kind: &str) -> Value {
    if let Some(e) = seen.iter().find(|v| v["type"] == kind) {
        return e.clone();
    }
    ws.until(Duration::from_secs(30), |v| v["type"] == kind).await.1
}

#[actix_rt::test]
async fn node_action_against_real_gns3_v2_correlates_its_events() {
    let env = testbed::gns3(Flavor::V2).await;
    let app = spawn_app(test_settings(&env.target(), |_| {})).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let project = env.create_project("ws-actions").await;
    let pid = project.id;
    let node = env.create_qemu_node(pid, "W").await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["node_status"],"projects":[pid]})).await;
    assert_eq!(ws.json().await["projects"], json!([pid]));

    // GNS3 starts the node but reports an error without ubridge: the error comes back
    // with the correlation id, and the node.started event carries it.
    ws.send(json!({"type":"node_action","action":"start","project_id":pid,"node_id":node,"request_id":"a1"})).await;
    let (seen, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!((r["request_id"].as_str(), r["ok"].as_bool()), (Some("a1"), Some(false)), "{r}");
    assert_eq!(r["error"]["status"], 409, "{r}");
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let started = event_of(&mut ws, &seen, "node.started").await;
    let node_s = node.to_string();
    assert_eq!((started["node_id"].as_str(), started["correlation_id"].as_str()), (Some(&*node_s), Some(&*cid)));

    ws.send(json!({"type":"node_action","action":"suspend","project_id":pid,"node_id":node,"request_id":"a2"})).await;
    let (seen, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!((r["request_id"].as_str(), r["ok"].as_bool()), (Some("a2"), Some(true)), "{r}");
    assert_eq!(r["outcome"]["node"]["status"], "suspended", "{r}");
    let cid = r["correlation_id"].as_str().expect("correlation id").to_owned();
    let suspended = event_of(&mut ws, &seen, "node.suspended").await;
    assert_eq!(suspended["correlation_id"].as_str(), Some(&*cid));

    ws.send(json!({"type":"node_action","action":"stop","project_id":pid,"node_id":node,"request_id":"a3"})).await;
    let (_, r) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(env.node_status(pid, node).await, "stopped");

    // A node stopped through REST: the subscribed client gets its node.stopped, tagged
    // with the REST answer's correlation id; then the whole topology on request.
    ws.send(json!({"type":"node_action","action":"start","project_id":pid,"node_id":node,"request_id":"a4"})).await;
    let (seen, _) = ws.until(Duration::from_secs(60), |v| v["type"] == "action_result").await;
    event_of(&mut ws, &seen, "node.started").await;
    let base = format!("/api/v2/servers/default/projects/{pid}/nodes/{node}/actions/stop");
    let stop = app.post_json(&base, &json!({})).await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    let stopped = event_of(&mut ws, &[], "node.stopped").await;
    assert_eq!(stopped["node_id"].as_str(), Some(&*node_s));
    assert_eq!(stopped["correlation_id"], stop.body["correlation_id"], "{stopped}");
    ws.send(json!({"type":"request_topology","project_id":pid,"request_id":"t"})).await;
    let (_, t) = ws.until(Duration::from_secs(30), |v| v["type"] == "topology").await;
    let text = t.to_string();
    assert!(text.contains(&node_s) && text.contains("\"stopped\""), "{t}");
    project.delete().await;
}

//! The stand-in over the wire: started on port 0 and driven with awc as a client would.
//! Every wait is on an awaited frame or reply, bounded by a timeout.

use awc::ws::{CloseCode, Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use super::{Simulator, SimulatorOptions, AUTO_CLOSE_DELAY};

async fn start() -> Simulator {
    let opts = SimulatorOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        nodes: 2,
        seed: Some(3),
        ..SimulatorOptions::default()
    };
    Simulator::start(opts).await.expect("stand-in starts")
}

/// The next JSON frame whose action is `action` (others skipped), within `within`.
async fn frame_with<S>(ws: &mut S, action: &str, within: Duration) -> Value
where
    S: futures_util::Stream<Item = Result<Frame, awc::error::WsProtocolError>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let f = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {action} within {within:?}"))
            .expect("stream open")
            .expect("valid frame");
        if let Frame::Text(t) = f {
            let v: Value = serde_json::from_slice(&t).expect("JSON frame");
            if v["action"] == action {
                return v;
            }
        }
    }
}

async fn call(client: &awc::Client, method: &str, url: &str, body: &str) -> (u16, Option<String>, Value) {
    let req = client.request(awc::http::Method::from_bytes(method.as_bytes()).unwrap(), url);
    // v2 ignores the Content-Type: send a wrong one on purpose.
    let mut res = req.insert_header(("Content-Type", "text/plain")).send_body(body.to_owned()).await.expect("reply");
    let ctype = res.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = res.body().await.expect("body");
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (res.status().as_u16(), ctype, v)
}

#[actix_rt::test]
async fn streams_greet_with_ping_carry_events_and_close_on_stop() {
    let sim = start().await;
    let (api, ws) = (format!("{}/v2", sim.url()), format!("ws://127.0.0.1:{}/v2", sim.port()));
    let client = awc::Client::default();
    let (_, mut ctl) = client.ws(format!("{ws}/notifications/ws")).connect().await.expect("controller ws");
    let first = frame_with(&mut ctl, "ping", Duration::from_secs(1)).await;
    assert_eq!(first["event"].as_object().unwrap().len(), 2);

    let (status, _, project) = call(&client, "POST", &format!("{api}/projects"), r#"{"name": "wire"}"#).await;
    assert_eq!(status, 201, "{project}");
    let pid = project["project_id"].as_str().unwrap().to_owned();
    let created = frame_with(&mut ctl, "project.created", Duration::from_secs(2)).await;
    assert_eq!(created["event"], project);
    let compute = frame_with(&mut ctl, "compute.updated", Duration::from_secs(3)).await;
    assert_eq!(compute["event"]["port"], sim.port());

    let (_, mut prj) = client.ws(format!("{ws}/projects/{pid}/notifications/ws")).connect().await.expect("project ws");
    frame_with(&mut prj, "ping", Duration::from_secs(1)).await;
    let qemu = json!({"name": "A", "node_type": "qemu", "compute_id": "local", "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64"}});
    let (status, _, node) = call(&client, "POST", &format!("{api}/projects/{pid}/nodes"), &qemu.to_string()).await;
    assert_eq!(status, 201, "{node}");
    assert_eq!(frame_with(&mut prj, "node.created", Duration::from_secs(2)).await["event"], node);

    let mut http = client.get(format!("{api}/notifications")).send().await.expect("http stream");
    assert_eq!(http.status(), 200);
    let line =
        tokio::time::timeout(Duration::from_secs(2), http.next()).await.expect("a line").expect("open").expect("chunk");
    assert!(line.starts_with(br#"{"action": "ping", "event": {"#) && line.ends_with(b"}}\n"), "{line:?}");

    tokio::time::timeout(Duration::from_secs(5), sim.stop()).await.expect("stop within 5 s");
    for ws in [&mut ctl, &mut prj] {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed within 5 s") {
                Some(Ok(Frame::Close(reason))) => {
                    assert_eq!(reason.map(|r| r.code), Some(CloseCode::Away));
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
}

#[actix_rt::test]
async fn a_project_is_auto_closed_after_its_last_stream_client_leaves() {
    let sim = start().await;
    let (api, ws) = (format!("{}/v2", sim.url()), format!("ws://127.0.0.1:{}/v2", sim.port()));
    let client = awc::Client::default();
    let (status, _, project) = call(&client, "POST", &format!("{api}/projects"), r#"{"name": "ac"}"#).await;
    assert_eq!((status, &project["auto_close"]), (201, &json!(true)));
    let pid = project["project_id"].as_str().unwrap().to_owned();
    let (_, mut ctl) = client.ws(format!("{ws}/notifications/ws")).connect().await.expect("controller ws");
    let (_, mut prj) = client.ws(format!("{ws}/projects/{pid}/notifications/ws")).connect().await.expect("project ws");
    frame_with(&mut prj, "ping", Duration::from_secs(1)).await;
    prj.send(Message::Close(None)).await.expect("close sent");
    let left = Instant::now();
    let closed = frame_with(&mut ctl, "project.closed", AUTO_CLOSE_DELAY + Duration::from_secs(3)).await;
    assert!(left.elapsed() >= AUTO_CLOSE_DELAY - Duration::from_millis(100), "closed too early: {:?}", left.elapsed());
    assert_eq!(
        (closed["event"]["project_id"].as_str(), closed["event"]["status"].as_str()),
        (Some(pid.as_str()), Some("closed"))
    );
    // The initial project never had a listener (and has auto_close off): still open.
    let (_, _, listed) = call(&client, "GET", &format!("{api}/projects"), "").await;
    assert_eq!(listed.as_array().unwrap().iter().find(|p| p["name"] == "lab-1").unwrap()["status"], "opened");
    sim.stop().await;
}

#[actix_rt::test]
async fn errors_have_the_v2_shapes() {
    let sim = start().await;
    let api = format!("{}/v2", sim.url());
    let client = awc::Client::default();
    let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>().join(",")).unwrap_or_default();

    let (status, ctype, body) = call(&client, "GET", &format!("{api}/bogus"), "").await;
    assert_eq!((status, ctype.as_deref(), body), (404, Some("text/plain; charset=utf-8"), json!("404: Not Found")));
    let (status, _, body) = call(&client, "PATCH", &format!("{api}/projects"), "").await;
    assert_eq!((status, body), (405, json!("405: Method Not Allowed")));
    let (status, _, body) = call(&client, "GET", &format!("{api}/projects/not-a-uuid"), "").await;
    assert_eq!((status, body), (404, json!({"message": "Project ID not-a-uuid doesn't exist", "status": 404})));

    let (_, _, listed) = call(&client, "GET", &format!("{api}/projects"), "").await;
    let pid = listed[0]["project_id"].as_str().unwrap().to_owned();
    let nodes = format!("{api}/projects/{pid}/nodes");
    let (status, _, body) = call(&client, "POST", &nodes, "not json").await;
    assert_eq!((status, keys(&body).as_str()), (400, "message,method,path,request,status"));
    assert_eq!(body["request"], json!({"malformed_json": "not json"}));
    assert_eq!(body["message"], "Invalid JSON Expecting value: line 1 column 1 (char 0)");
    let (status, _, body) = call(&client, "POST", &nodes, r#"{"name": "X"}"#).await;
    assert_eq!((status, body["path"].as_str()), (400, Some("/v2/projects/{project_id}/nodes")));
    assert!(body["message"].as_str().unwrap().ends_with("'node_type' is a required property"), "{body}");

    let (status, _, _) = call(&client, "POST", &format!("{api}/projects/{pid}/close"), "").await;
    assert_eq!(status, 204);
    let qemu = json!({"name": "C", "node_type": "qemu", "compute_id": "local", "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64"}});
    let (status, _, body) = call(&client, "POST", &nodes, &qemu.to_string()).await;
    assert_eq!((status, body), (403, json!({"message": "The project is not opened", "status": 403})));
    let (status, _, body) = call(&client, "GET", &nodes, "").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));
    sim.stop().await;
}

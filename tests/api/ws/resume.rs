//! Resume with `since`: exactly the missed events, none twice at the seam; an
//! unrecoverable resume gets a fresh topology.

use super::*;

#[actix_rt::test]
async fn resume_replays_exactly_the_missed_events_without_a_seam() {
    let app = spawn_app(settings(|_| {})).await;
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.resume"]})).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    publish(&app, "test.resume", 0..1, 0).await;
    let first = ws.json().await;
    assert_eq!(n_of(&first), 0);
    let last_seen = first["id"].as_str().expect("id").to_owned();
    drop(ws);

    // Missed while away, with events of another type between them.
    publish(&app, "test.resume", 1..4, 0).await;
    publish(&app, "test.other", 0..2, 0).await;
    // More are published while the client resubscribes: each must come exactly once,
    // in the replay or live.
    let publisher = {
        let d = app.state.dispatcher.clone().expect("events");
        actix_rt::spawn(async move {
            for n in 4..200 {
                let _ = d.send(PublishBatch(vec![event("test.resume", n, 0)])).await;
                if n % 10 == 0 {
                    actix_rt::task::yield_now().await;
                }
            }
        })
    };
    let (mut ws, _) = WsClient::connect(&app).await;
    ws.send(json!({"type":"subscribe","subscriptions":["test.resume"],"since":last_seen,"request_id":"again"})).await;
    let (_, _) = ws.until(Duration::from_secs(10), |v| v["type"] == "subscribed").await;
    let (early, replay) = ws.until(Duration::from_secs(10), |v| v["type"] == "replay").await;
    assert!(early.is_empty(), "live events before the replay: {early:?}");
    assert_eq!(replay["recovered"], true, "{replay}");
    let mut got: Vec<u64> = replay["events"].as_array().expect("events").iter().map(n_of).collect();
    assert_eq!(replay["count"].as_u64(), Some(got.len() as u64));
    assert!(got.len() >= 3 && got[..3] == [1, 2, 3], "{got:?}");
    publisher.await.expect("publisher ran");
    while got.last() != Some(&199) {
        let e = ws.json().await;
        assert_eq!(e["type"], "test.resume", "{e}");
        got.push(n_of(&e));
    }
    assert_eq!(got, (1..200).collect::<Vec<_>>(), "a gap or a duplicate at the seam");
}

#[actix_rt::test]
async fn unrecoverable_resume_sends_a_fresh_topology() {
    let app = spawn_with(settings(|_| {}), ServeOptions { test_mode: true, ..Default::default() }).await;
    app.wait_server(Duration::from_secs(30), |s| s["connected"] == true).await;
    let (mut ws, welcome) = WsClient::connect(&app).await;
    let epoch = welcome["epoch"].as_str().expect("epoch").to_owned();
    let other = if epoch == "deadbeef" { "cafebabe" } else { "deadbeef" };
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":format!("{other}-3")})).await;
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    let outcome = (replay["recovered"].as_bool(), replay["reason"].as_str());
    assert_eq!(outcome, (Some(false), Some("other_epoch")), "{replay}");
    assert_eq!(replay["epoch"], epoch.as_str());
    let servers = replay["topology"]["servers"].as_array().expect("a topology");
    assert_eq!(servers[0]["server"], "default");
    assert_eq!(servers[0]["projects"].as_array().map(Vec::len), Some(2), "the stand-in's two projects");

    // A malformed id is unrecoverable too; the session goes on.
    ws.send(json!({"type":"subscribe","subscriptions":["all"],"since":"garbage"})).await;
    let (_, replay) = ws.until(Duration::from_secs(20), |v| v["type"] == "replay").await;
    assert_eq!(replay["reason"], "invalid_id", "{replay}");
    ws.send(json!({"type":"request_topology","request_id":"t"})).await;
    let (_, topo) = ws.until(Duration::from_secs(20), |v| v["type"] == "topology").await;
    assert_eq!(topo["request_id"], "t");
    assert!(topo["topology"]["servers"].is_array(), "{topo}");
}

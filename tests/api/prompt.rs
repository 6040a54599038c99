//! Small frames leave at once on an idle session, on both sockets (issue 17): the second
//! of two frames written back to back reaches the client within a few milliseconds. With
//! Nagle's algorithm on the accepted socket it waits instead for the client's ACK of the
//! first, which Linux delays by 40 ms or more once the client's connection is interactive
//! (it sent something of its own right after receiving, as a client answering pings or
//! asking for things does).
//!
//! Each round is driven by events, not sleeps: frame A reaches the client, which answers
//! with an unsolicited pong (RFC 6455 5.5.3: a heartbeat the server does not answer); then
//! frame B is written and read, and frame C is written at once after it and timed on the
//! client's clock, from the write to its receipt.

use actix_http::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use gns3_central_actors::dispatcher::PublishBatch;
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{spawn_app, test_settings, Target, ADMIN_TOKEN};
use crate::modules::{connect, is_message, register};

/// Rounds per socket (each a few hundred µs when frames leave at once).
const ROUNDS: usize = 10;

/// "A few milliseconds" on a shared 2-core machine running a debug build; a delayed ACK
/// is 40 ms or more.
const PROMPT: Duration = Duration::from_millis(20);

fn assert_prompt(socket: &str, delays: &[Duration]) {
    let slow: Vec<_> = delays.iter().filter(|d| **d > PROMPT).collect();
    assert!(
        slow.is_empty(),
        "on the {socket} socket, the second of two back-to-back frames took longer than {PROMPT:?} to reach an \
         idle client in {} of {} rounds ({slow:?}; all: {delays:?}); the usual cause is Nagle's algorithm \
         (no TCP_NODELAY on the accepted socket) waiting for the client's delayed ACK (40 ms on Linux)",
        slow.len(),
        delays.len()
    );
}

fn event(n: usize) -> NewEvent {
    NewEvent {
        kind: "test.prompt".into(),
        server: "default".into(),
        project_id: None,
        node_id: None,
        timestamp: chrono::Utc::now(),
        correlation_id: None,
        source: Source::Module,
        data: json!({ "n": n }),
    }
}

type Framed = actix_codec::Framed<awc::BoxedSocket, actix_http::ws::Codec>;

/// The next text frame as JSON, answering pings; panics after 10 s.
async fn next_json(framed: &mut Framed) -> Value {
    loop {
        let frame = actix_rt::time::timeout(Duration::from_secs(10), framed.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            Frame::Text(b) => return serde_json::from_slice(&b).expect("JSON"),
            Frame::Ping(p) => framed.send(Message::Pong(p)).await.expect("pong"),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn back_to_back_events_reach_an_idle_dashboard_at_once() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let (_, mut ws) =
        client.ws(format!("{}/ws/gns3/events/", app.base)).bearer_auth(ADMIN_TOKEN).connect().await.expect("upgrade");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    ws.send(Message::Text(r#"{"type":"subscribe","subscriptions":["test.prompt"]}"#.into())).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    let dispatcher = app.state.dispatcher.clone().expect("events are on");
    let mut delays = Vec::with_capacity(ROUNDS);
    for n in 0..3 * ROUNDS {
        let begin = Instant::now();
        let out = dispatcher.send(PublishBatch(vec![event(n)])).await.expect("dispatcher runs");
        assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");
        let e = next_json(&mut ws).await;
        assert_eq!(e["data"]["n"], n, "{e}");
        match n % 3 {
            0 => ws.send(Message::Pong(Default::default())).await.expect("pong"),
            2 => delays.push(begin.elapsed()),
            _ => {}
        }
    }
    assert_prompt("dashboard", &delays);
}

#[actix_rt::test]
async fn back_to_back_bus_messages_reach_an_idle_module_at_once() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let token = register(&app, "beta").await;
    let mut beta = connect(&app, "beta", &token).await;
    // An in-process module sends, so nothing but the service writes to beta's socket.
    let gamma = app.state.modules.module("gamma").expect("in-process module");
    let mut delays = Vec::with_capacity(ROUNDS);
    for n in 0..3 * ROUNDS {
        let begin = Instant::now();
        gamma.send("beta", "prompt", json!({ "n": n })).expect("routed to beta");
        let got = beta.until(Duration::from_secs(10), |v| is_message(v, "prompt")).await;
        assert_eq!(got["message"]["payload"]["n"], n, "{got}");
        match n % 3 {
            0 => beta.pong().await,
            2 => delays.push(begin.elapsed()),
            _ => {}
        }
    }
    assert_prompt("module", &delays);
}

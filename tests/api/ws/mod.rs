//! `/ws/gns3/events/` over real sockets (awc's WebSocket client): the welcome, every
//! client frame and its reply, bad frames answered with error frames on a session that
//! keeps working, resume with `since` (exactly the missed events, none twice at the
//! seam), unrecoverable resumes, node actions against real GNS3 v2, and the limits:
//! oversized frames (1009), the action rate limit, slow consumers (shedding, then 4008),
//! the heartbeat timeout and shutdown (1001). Events are published straight into the
//! service's dispatcher where GNS3 would add nothing.

use actix_http::ws::{CloseCode, Frame, Item, Message};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gns3_central::config::Settings;
use gns3_central::startup::ServeOptions;
use gns3_central_actors::dispatcher::{GetDeadLetters, Priority, PublishBatch};
use gns3_central_actors::events::{NewEvent, Source};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::app::{spawn_app, spawn_with, test_settings, Target, TestApp};
use crate::helpers::testbed::{self, Flavor};

mod access;
mod actions;
mod ahead;
mod frames;
mod limits;
mod resume;
mod shutdown;

type Framed = actix_codec::Framed<BoxedSocket, actix_http::ws::Codec>;

struct WsClient {
    framed: Framed,
    /// Replies to the server's pings (a client that does not is "silent").
    answer_pings: bool,
}

/// What a read gave.
#[derive(Debug)]
enum Got {
    Json(Value),
    Closed(Option<u16>),
}

impl WsClient {
    async fn connect(app: &TestApp) -> (WsClient, Value) {
        WsClient::connect_to(&app.base, crate::app::ADMIN_TOKEN).await
    }

    async fn connect_to(base: &str, token: &str) -> (WsClient, Value) {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let (res, framed) = client
            .ws(format!("{base}/ws/gns3/events/"))
            .bearer_auth(token)
            .max_frame_size(64 * 1024 * 1024)
            .connect()
            .await
            .expect("the WebSocket upgrade succeeds");
        assert_eq!(res.status().as_u16(), 101);
        let mut ws = WsClient { framed, answer_pings: true };
        let welcome = ws.json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (ws, welcome)
    }

    async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    async fn send_text(&mut self, t: &str) {
        self.framed.send(Message::Text(t.to_owned().into())).await.expect("the frame is sent");
    }

    /// The next frame that is not a ping (pings are answered unless told otherwise).
    async fn read(&mut self, limit: Duration) -> Got {
        let deadline = Instant::now() + limit;
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = actix_rt::time::timeout(left, self.framed.next()).await;
            let frame = match next {
                Err(_) => panic!("no frame within {limit:?}"),
                Ok(None) => return Got::Closed(None),
                Ok(Some(Err(e))) => panic!("protocol error: {e}"),
                Ok(Some(Ok(f))) => f,
            };
            match frame {
                Frame::Text(b) => return Got::Json(parse(&b)),
                Frame::Continuation(Item::FirstText(b)) | Frame::Continuation(Item::Continue(b)) => {
                    partial.extend_from_slice(&b)
                }
                Frame::Continuation(Item::Last(b)) => {
                    partial.extend_from_slice(&b);
                    return Got::Json(parse(&partial));
                }
                Frame::Ping(p) => {
                    if self.answer_pings {
                        let _ = self.framed.send(Message::Pong(p)).await;
                    }
                }
                Frame::Close(reason) => return Got::Closed(reason.map(|r| u16::from(r.code))),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn json(&mut self) -> Value {
        match self.read(Duration::from_secs(10)).await {
            Got::Json(v) => v,
            Got::Closed(code) => panic!("closed ({code:?}) while a frame was expected"),
        }
    }

    /// Reads until a frame satisfies `pred`; returns the frames before it and the frame.
    async fn until(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "frame not seen within {limit:?}; got {before:?}");
            match self.read(left).await {
                Got::Json(v) if pred(&v) => return (before, v),
                Got::Json(v) => before.push(v),
                Got::Closed(code) => panic!("closed ({code:?}); got {before:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code and the frames before it.
    async fn close_code(&mut self, limit: Duration) -> (Option<u16>, Vec<Value>) {
        let deadline = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "not closed within {limit:?}");
            match self.read(left).await {
                Got::Json(v) => before.push(v),
                Got::Closed(code) => return (code, before),
            }
        }
    }
}

fn parse(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    test_settings(&Target::nowhere(), |s| {
        s.events.priorities.insert("test.low".into(), Priority::Low);
        s.events.priorities.insert("test.high".into(), Priority::High);
        tweak(s)
    })
}

fn event(kind: &str, n: usize, pad: usize) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        server: "default".into(),
        project_id: None,
        node_id: None,
        timestamp: chrono::Utc::now(),
        correlation_id: None,
        source: Source::Module,
        data: json!({"n": n, "pad": "x".repeat(pad)}),
    }
}

/// Publishes into the service's dispatcher, as a connector or a module would.
async fn publish(app: &TestApp, kind: &str, range: std::ops::Range<usize>, pad: usize) {
    let d = app.state.dispatcher.clone().expect("events are on");
    let out = d.send(PublishBatch(range.map(|n| event(kind, n, pad)).collect())).await.expect("dispatcher runs");
    assert!(out.refused.is_empty() && out.invalid == 0, "{out:?}");
}

fn n_of(e: &Value) -> u64 {
    e["data"]["n"].as_u64().unwrap_or_else(|| panic!("no data.n: {e}"))
}

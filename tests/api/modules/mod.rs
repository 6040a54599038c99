//! Modules over real sockets: remote modules on `/ws/modules/{name}` (awc's WebSocket
//! client), in-process ones through `ModuleContext` from the service's own state, the
//! REST routes, real GNS3 v2 for actions, and local HTTP receivers for the sinks.

mod access;
mod bad_input;
mod bus;
mod delivery;
mod failover;
mod gns3;
mod instances;
mod isolation;
mod resume;
mod sinks;

use actix_http::ws::{Frame, Item, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::app::{error_code, TestApp};

type Framed = actix_codec::Framed<BoxedSocket, actix_http::ws::Codec>;

pub struct ModuleClient {
    framed: Framed,
    /// Frames read while looking for another one, handed out first by `until`.
    pending: Vec<Value>,
}

#[derive(Debug)]
pub enum Got {
    Json(Value),
    Closed(Option<u16>),
}

/// Registers a remote module over REST; returns its token.
pub async fn register(app: &TestApp, name: &str) -> String {
    let r = app.post_json("/api/v2/modules", &json!({"name": name})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["websocket"], format!("/ws/modules/{name}"));
    r.body["token"].as_str().expect("a token").to_owned()
}

/// The upgrade's status, or the connected client.
pub async fn upgrade(
    app: &TestApp,
    name: &str,
    build: impl FnOnce(awc::ws::WebsocketsRequest) -> awc::ws::WebsocketsRequest,
) -> Result<ModuleClient, u16> {
    upgrade_at(&app.base, name, build).await
}

pub async fn upgrade_at(
    base: &str,
    name: &str,
    build: impl FnOnce(awc::ws::WebsocketsRequest) -> awc::ws::WebsocketsRequest,
) -> Result<ModuleClient, u16> {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let req = build(client.ws(format!("{base}/ws/modules/{name}")).max_frame_size(64 * 1024 * 1024));
    match req.connect().await {
        Ok((res, framed)) => {
            assert_eq!(res.status().as_u16(), 101);
            Ok(ModuleClient { framed, pending: Vec::new() })
        }
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => Err(s.as_u16()),
        Err(e) => panic!("upgrade failed unexpectedly: {e}"),
    }
}

/// Connects with the module's token and reads the welcome.
pub async fn connect(app: &TestApp, name: &str, token: &str) -> ModuleClient {
    connect_at(&app.base, name, token).await
}

pub async fn connect_at(base: &str, name: &str, token: &str) -> ModuleClient {
    let mut c =
        upgrade_at(base, name, |r| r.bearer_auth(token)).await.unwrap_or_else(|s| panic!("upgrade refused: {s}"));
    let welcome = c.json().await;
    assert_eq!((welcome["type"].as_str(), welcome["module"].as_str()), (Some("welcome"), Some(name)), "{welcome}");
    c
}

fn parse(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(b)))
}

impl ModuleClient {
    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: &str) {
        self.framed.send(Message::Text(t.to_owned().into())).await.expect("the frame is sent");
    }

    /// An unsolicited pong (a heartbeat the server does not answer, RFC 6455 5.5.3).
    pub async fn pong(&mut self) {
        self.framed.send(Message::Pong(Default::default())).await.expect("the pong is sent");
    }

    pub async fn read(&mut self, limit: Duration) -> Got {
        if !self.pending.is_empty() {
            return Got::Json(self.pending.remove(0));
        }
        let deadline = Instant::now() + limit;
        let mut partial = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match actix_rt::time::timeout(left, self.framed.next()).await {
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
                    let _ = self.framed.send(Message::Pong(p)).await;
                }
                Frame::Close(reason) => return Got::Closed(reason.map(|r| u16::from(r.code))),
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    pub async fn json(&mut self) -> Value {
        match self.read(Duration::from_secs(10)).await {
            Got::Json(v) => v,
            Got::Closed(code) => panic!("closed ({code:?}) while a frame was expected"),
        }
    }

    /// The first frame satisfying `pred` (within `limit`); frames before it are kept for
    /// later reads.
    pub async fn until(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + limit;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "frame not seen within {limit:?}; got {skipped:?}");
            let got = {
                let saved = std::mem::take(&mut self.pending);
                let g = self.read(left).await;
                self.pending = saved;
                g
            };
            match got {
                Got::Json(v) if pred(&v) => {
                    self.pending.extend(skipped);
                    return v;
                }
                Got::Json(v) => skipped.push(v),
                Got::Closed(code) => panic!("closed ({code:?}); got {skipped:?}"),
            }
        }
    }

    /// Reads until the close frame; returns its code.
    pub async fn close_code(&mut self, limit: Duration) -> Option<u16> {
        self.pending.clear();
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "not closed within {limit:?}");
            if let Got::Closed(code) = self.read(left).await {
                return code;
            }
        }
    }
}

/// A frame of type `message` carrying a bus message of `kind`.
pub fn is_message(v: &Value, kind: &str) -> bool {
    v["type"] == "message" && v["message"]["type"] == kind
}

/// Polls `GET /api/v2/modules/{name}` until `pred` holds.
pub async fn status_until(app: &TestApp, name: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let r = app.get(&format!("/api/v2/modules/{name}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if pred(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "module state not reached in {limit:?}: {}", r.text);
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn code_of(r: &crate::app::Reply) -> String {
    error_code(r)
}

//! The notification streams, controller (`/v2/notifications[/ws]`) and project
//! (`/v2/projects/{id}/notifications[/ws]`): one JSON object per WebSocket text frame or
//! per line of a chunked HTTP body. Like gns3 v2, every new stream starts with a `ping`,
//! and a `ping` follows whenever the stream has been idle for `PING_IDLE`; v2 sends no
//! WebSocket ping frames (it answers the client's). The WebSocket is framed by hand with
//! actix-http's parser, so both transports share one `Feed` and need no actor per client.
//! A stream ends when its client goes, or with close code 1001 when the stand-in stops.

use actix_http::ws::{hash_key, CloseCode, CloseReason, OpCode, Parser};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::collections::VecDeque;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::Scope;
use super::{lock, Shared, PING_IDLE};

/// Largest client frame accepted (clients only send close/ping/pong).
const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// One listener's view of a stream: its queued notifications plus the idle pings.
/// Dropping it unsubscribes (which may start a project's auto-close countdown).
pub struct Feed {
    shared: Shared,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
    greeted: bool,
    idle_until: Instant,
}

impl Feed {
    /// Subscribes to `scope`; `None` when the stand-in is stopping.
    pub fn open(shared: &Shared, scope: Scope) -> Option<Feed> {
        let (id, rx) = lock(shared).hub.subscribe(scope)?;
        Some(Feed { shared: shared.clone(), id, rx, greeted: false, idle_until: Instant::now() + PING_IDLE })
    }

    /// The next frame to send; `None` once the stand-in dropped this listener. Cancel-safe.
    pub async fn next(&mut self) -> Option<Bytes> {
        if !self.greeted {
            self.greeted = true;
            return Some(self.ping());
        }
        tokio::select! {
            msg = self.rx.recv() => {
                self.idle_until = Instant::now() + PING_IDLE;
                msg
            }
            _ = tokio::time::sleep_until(self.idle_until) => Some(self.ping()),
        }
    }

    fn ping(&mut self) -> Bytes {
        self.idle_until = Instant::now() + PING_IDLE;
        lock(&self.shared).ping()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        lock(&self.shared).hub.unsubscribe(self.id);
    }
}

/// The HTTP variant: `200`, `application/json`, chunked, one object per line.
pub fn http_stream(feed: Feed) -> HttpResponse {
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next().await?;
        let mut line = BytesMut::with_capacity(frame.len() + 1);
        line.extend_from_slice(&frame);
        line.extend_from_slice(b"\n");
        Some((Ok::<_, actix_web::Error>(line.freeze()), feed))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::SERVER, super::routes::SERVER_HEADER))
        .streaming(body)
}

/// actix's own 400-class answer when `req` is not a valid WebSocket handshake.
pub fn handshake_refusal(req: &HttpRequest) -> Option<HttpResponse> {
    actix_http::ws::verify_handshake(req.head()).err().map(|e| HttpResponse::from_error(actix_web::Error::from(e)))
}

/// The WebSocket variant (handshake already checked with `handshake_refusal`).
pub fn websocket(req: &HttpRequest, payload: web::Payload, feed: Feed) -> HttpResponse {
    let accept = req.headers().get(header::SEC_WEBSOCKET_KEY).map(|k| hash_key(k.as_bytes())).unwrap_or([b'='; 28]);
    let accept = String::from_utf8_lossy(&accept).into_owned();
    let session = Session { feed, payload, inbox: BytesMut::new(), out: VecDeque::new(), done: false };
    let body = futures_util::stream::unfold(session, |mut s| async move {
        let frame = s.next_frame().await?;
        Some((Ok::<_, actix_web::Error>(frame), s))
    });
    HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS)
        .upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, accept))
        .streaming(body)
}

struct Session {
    feed: Feed,
    payload: web::Payload,
    inbox: BytesMut,
    out: VecDeque<Bytes>,
    done: bool,
}

impl Session {
    /// The next encoded frame for the client; `None` ends the connection.
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.out.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                msg = self.feed.next() => match msg {
                    Some(text) => return Some(encode(OpCode::Text, &text)),
                    None => self.close(CloseCode::Away),
                },
                chunk = self.payload.next() => match chunk {
                    Some(Ok(bytes)) => {
                        self.inbox.extend_from_slice(&bytes);
                        self.read_client_frames();
                    }
                    // The client went away: nothing more to send.
                    _ => self.done = true,
                },
            }
        }
    }

    /// Answers pings, echoes a close (then ends); text from the client is ignored.
    fn read_client_frames(&mut self) {
        while !self.done {
            match Parser::parse(&mut self.inbox, true, MAX_CLIENT_FRAME) {
                Ok(Some((_, OpCode::Ping, data))) => {
                    self.out.push_back(encode(OpCode::Pong, data.as_deref().unwrap_or_default()))
                }
                Ok(Some((_, OpCode::Close, _))) => self.close(CloseCode::Normal),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => self.close(CloseCode::Protocol),
            }
        }
    }

    fn close(&mut self, code: CloseCode) {
        let mut buf = BytesMut::new();
        Parser::write_close(&mut buf, Some(CloseReason { code, description: None }), false);
        self.out.push_back(buf.freeze());
        self.done = true;
    }
}

fn encode(op: OpCode, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut buf, payload, op, true, false);
    buf.freeze()
}

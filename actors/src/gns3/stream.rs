//! GNS3's notification streams over WebSocket: the controller stream
//! (`/{v}/notifications/ws`) and one per project (`/{v}/projects/{id}/notifications/ws`),
//! one JSON object `{"action","event"}` per text frame.
//!
//! `NotificationStream::next` hands out one message at a time and treats a stream that
//! stays silent longer than the given bound as dead: GNS3 sends a `ping` message after 5 s
//! of idleness on every stream, so silence means the connection is gone even when no
//! close frame came (a killed server). WebSocket pings (v3 sends one every 20 s) are
//! answered. v3 takes the token only as `?token=`; with a bad one it sends a `log.error`
//! message and closes with 1008, reported as `StreamEnd::AuthRejected`.

use actix_http::ws::Item;
use awc::ws::{CloseCode, Frame, Message};
use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

use super::client::{error_message, Gns3Client};
use super::error::Gns3Error;

/// Largest message accepted from a stream (a node object is a few KB).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

trait WsConn:
    Stream<Item = Result<Frame, awc::error::WsProtocolError>> + Sink<Message, Error = awc::error::WsProtocolError> + Unpin
{
}
impl<T> WsConn for T where
    T: Stream<Item = Result<Frame, awc::error::WsProtocolError>>
        + Sink<Message, Error = awc::error::WsProtocolError>
        + Unpin
{
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// GNS3 closed it (code and reason when it gave them).
    Closed(Option<u16>, String),
    /// Nothing arrived within the silence bound.
    Silent(Duration),
    /// The connection broke (killed server, protocol error).
    Broken(String),
    /// v3 refused the token (close code 1008).
    AuthRejected(String),
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::Closed(code, reason) => write!(f, "closed by GNS3 (code {code:?}) {reason}"),
            StreamEnd::Silent(d) => write!(f, "silent for {:.1} s", d.as_secs_f64()),
            StreamEnd::Broken(e) => write!(f, "broken: {e}"),
            StreamEnd::AuthRejected(m) => write!(f, "token refused: {m}"),
        }
    }
}

pub struct NotificationStream {
    conn: Box<dyn WsConn>,
    /// A fragmented text message being put together.
    partial: Option<BytesMut>,
    /// The last `log.error` message, reported if a 1008 close follows.
    last_error: Option<String>,
}

impl Gns3Client {
    /// Opens the controller stream (`None`) or a project's stream.
    pub async fn open_stream(&self, project_id: Option<Uuid>) -> Result<NotificationStream, Gns3Error> {
        let url = self
            .notification_url(project_id)
            .ok_or_else(|| Gns3Error::Protocol("the API version is not known yet".into()))?;
        // The URL may carry the v3 token: never log it whole.
        let shown = url.split('?').next().unwrap_or_default().to_owned();
        let connect = self.http().ws(url.as_str()).max_frame_size(MAX_MESSAGE_BYTES).connect();
        let (_res, framed) = match actix_rt::time::timeout(self.config().timeout, connect).await {
            Err(_) => return Err(Gns3Error::Timeout(self.config().timeout)),
            Ok(r) => r.map_err(|e| ws_error(&shown, e))?,
        };
        Ok(NotificationStream { conn: Box::new(framed), partial: None, last_error: None })
    }
}

fn ws_error(url: &str, e: awc::error::WsClientError) -> Gns3Error {
    use awc::error::WsClientError as W;
    match e {
        W::InvalidResponseStatus(status) => {
            Gns3Error::Status { status: status.as_u16(), message: error_message(status, b"") }
        }
        W::SendRequest(awc::error::SendRequestError::Connect(c)) => {
            Gns3Error::Connect { url: url.to_owned(), reason: format!("connect: {c}") }
        }
        other => Gns3Error::Connect { url: url.to_owned(), reason: format!("io: {other}") },
    }
}

impl NotificationStream {
    /// The next message, or why the stream ended. Messages that are not JSON objects are
    /// skipped (they still prove the stream alive).
    pub async fn next(&mut self, silence: Duration) -> Result<Value, StreamEnd> {
        loop {
            let frame = match actix_rt::time::timeout(silence, self.conn.next()).await {
                Err(_) => return Err(StreamEnd::Silent(silence)),
                Ok(None) => return Err(StreamEnd::Broken("connection ended without a close frame".into())),
                Ok(Some(Err(e))) => return Err(StreamEnd::Broken(e.to_string())),
                Ok(Some(Ok(f))) => f,
            };
            let text = match frame {
                Frame::Text(b) => b,
                Frame::Continuation(item) => match self.assemble(item) {
                    Ok(Some(b)) => b,
                    Ok(None) => continue,
                    Err(end) => return Err(end),
                },
                Frame::Ping(p) => {
                    self.conn.send(Message::Pong(p)).await.map_err(|e| StreamEnd::Broken(e.to_string()))?;
                    continue;
                }
                Frame::Pong(_) | Frame::Binary(_) => continue,
                Frame::Close(reason) => {
                    let code = reason.as_ref().map(|r| u16::from(r.code));
                    let text = reason.and_then(|r| r.description).unwrap_or_default();
                    if code == Some(u16::from(CloseCode::Policy)) {
                        let why = self.last_error.take().unwrap_or(text);
                        return Err(StreamEnd::AuthRejected(why));
                    }
                    return Err(StreamEnd::Closed(code, text));
                }
            };
            match serde_json::from_slice::<Value>(&text) {
                Ok(v) if v.is_object() => {
                    if v["action"] == "log.error" {
                        self.last_error = v["event"]["message"].as_str().map(str::to_owned);
                    }
                    return Ok(v);
                }
                _ => tracing::debug!(len = text.len(), "Skipped a notification that is not a JSON object."),
            }
        }
    }

    fn assemble(&mut self, item: Item) -> Result<Option<Bytes>, StreamEnd> {
        let too_big = || StreamEnd::Broken(format!("message larger than {MAX_MESSAGE_BYTES} bytes"));
        match item {
            Item::FirstText(b) => {
                self.partial = Some(BytesMut::from(&b[..]));
                Ok(None)
            }
            Item::FirstBinary(_) => {
                self.partial = None;
                Ok(None)
            }
            Item::Continue(b) => {
                if let Some(p) = &mut self.partial {
                    if p.len() + b.len() > MAX_MESSAGE_BYTES {
                        return Err(too_big());
                    }
                    p.extend_from_slice(&b);
                }
                Ok(None)
            }
            Item::Last(b) => match self.partial.take() {
                Some(mut p) => {
                    if p.len() + b.len() > MAX_MESSAGE_BYTES {
                        return Err(too_big());
                    }
                    p.extend_from_slice(&b);
                    Ok(Some(p.freeze()))
                }
                None => Ok(None),
            },
        }
    }

    /// Closes the stream politely (best effort).
    pub async fn close(mut self) {
        let _ = self.conn.send(Message::Close(None)).await;
    }
}

//! Passthrough calls: one request of any method, query and body sent to `/{v}{path}` as the
//! consumer wrote it, with the hub's own credentials (v3 token, v2 basic auth), and GNS3's
//! answer handed back as it came.
//!
//! Bodies are streamed both ways through bounded channels (`BODY_CHUNKS` chunks), so a
//! project export or an image upload of hundreds of MB passes with flat memory: the HTTP
//! worker that holds the consumer's connection pumps its payload into one channel, this
//! client (on the connector's arbiter: awc is not `Send`) pumps GNS3's reply body into the
//! other. Small bodies (`INLINE_BYTES` or less) are carried whole instead: one hop fewer for
//! the common small call, and a whole body can be sent again after a v3 re-login.
//!
//! Timeouts: the client's timeout bounds the wait for GNS3's reply head after the request
//! body was sent, and any pause of a streamed body in either direction (no progress for that
//! long ends the call); a long upload or download that keeps moving is never cut.

use awc::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use awc::http::{Method, StatusCode};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::client::{error_message, send_error, Gns3Client};
use super::error::Gns3Error;
use super::types::ApiVersion;

/// Bodies up to this size travel whole (no streaming).
pub const INLINE_BYTES: usize = 64 * 1024;
/// Chunks in flight per streamed body and direction (the memory bound with the chunk size).
pub const BODY_CHUNKS: usize = 8;
/// Largest GNS3 error body read (it is passed on in the error's details).
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// awc's own bound on a streamed upload; the watchdog (`head_deadline`) bounds it really.
const UPLOAD_CAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// One piece of a streamed body. A channel that closes without `End` is a body cut short.
#[derive(Debug)]
pub enum BodyChunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// The request line and headers of a passthrough call.
#[derive(Debug, Clone)]
pub struct ForwardHead {
    pub method: Method,
    /// Below the API root, percent-encoded, starting with `/` (`/projects/{id}/nodes`).
    pub path: String,
    /// The raw query string, without `?` (empty: none).
    pub query: String,
    /// Request headers to pass on (the edge keeps the end-to-end ones it allows).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The consumer's request body.
#[derive(Debug)]
pub enum ForwardBody {
    Empty,
    Full(Bytes),
    /// Read from the consumer while GNS3 takes it: `prefix` (already read), then the channel.
    Stream {
        prefix: Bytes,
        rest: mpsc::Receiver<BodyChunk>,
        len: Option<u64>,
    },
}

#[derive(Debug)]
pub struct ForwardRequest {
    pub head: ForwardHead,
    pub body: ForwardBody,
}

/// GNS3's successful (or redirecting) answer.
#[derive(Debug)]
pub struct ForwardReply {
    pub status: u16,
    /// GNS3's end-to-end headers (hop-by-hop ones, `Content-Length`, `Date`, `Server` removed).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub api: ApiVersion,
    pub body: ReplyBody,
}

#[derive(Debug)]
pub enum ReplyBody {
    Full(Bytes),
    Stream { len: Option<u64>, chunks: mpsc::Receiver<BodyChunk> },
}

/// What one passthrough call came to, when GNS3 was reached.
#[derive(Debug)]
pub enum Forwarded {
    Reply(ForwardReply),
    /// GNS3 answered with an error status: its message and its body (JSON when it was).
    Refused {
        status: u16,
        message: String,
        body: Value,
    },
    /// The consumer's body broke off or stalled; GNS3 may have got part of it.
    ClientBodyFailed(String),
}

enum Once {
    Done(Forwarded),
    /// v3 refused the token: log in again (and repeat when the body allows).
    Unauthorized,
}

impl Gns3Client {
    /// Forwards one call; logs in first on v3 when no token is held, and once more on a 401
    /// (repeating the call when its body is whole; a streamed body cannot be sent twice).
    pub async fn forward(&self, head: &ForwardHead, body: ForwardBody) -> Result<Forwarded, Gns3Error> {
        let api = match self.api_version() {
            Some(api) => api,
            None => self.identify().await?.0,
        };
        let mut body = Some(body);
        let mut logged_in = false;
        loop {
            let generation = self.login_generation();
            if api == ApiVersion::V3 && !self.has_token() {
                self.login().await?;
                logged_in = true;
            }
            let this = body.take().unwrap_or(ForwardBody::Empty);
            let again = match &this {
                ForwardBody::Empty => Some(ForwardBody::Empty),
                ForwardBody::Full(b) => Some(ForwardBody::Full(b.clone())),
                ForwardBody::Stream { .. } => None,
            };
            match self.forward_once(api, head, this).await? {
                Once::Done(f) => return Ok(f),
                Once::Unauthorized if logged_in => {
                    return Err(Gns3Error::Auth("GNS3 refused the token it had just given".into()));
                }
                Once::Unauthorized => {
                    tracing::info!(url = %self.config().base_url, "GNS3 refused the token; logging in again.");
                    if self.login_generation() == generation {
                        self.login().await?;
                    }
                    logged_in = true;
                    match again {
                        Some(b) => body = Some(b),
                        None => {
                            return Err(Gns3Error::Auth(
                                "GNS3 had dropped the hub's session and the streamed body cannot be sent twice; \
                                 the hub has logged in again: send the request again"
                                    .into(),
                            ))
                        }
                    }
                }
            }
        }
    }

    async fn forward_once(&self, api: ApiVersion, head: &ForwardHead, body: ForwardBody) -> Result<Once, Gns3Error> {
        let base = &self.config().base_url;
        let mut url = format!("{base}/{}{}", api.prefix(), head.path);
        if !head.query.is_empty() {
            url.push('?');
            url.push_str(&head.query);
        }
        let timeout = self.timeout();
        let mut req = self.authorize(self.http().request(head.method.clone(), &url), api).no_decompress();
        for (name, value) in &head.headers {
            req = req.insert_header((name.clone(), value.clone()));
        }
        let sent = match body {
            ForwardBody::Empty => bounded(timeout, req.timeout(timeout).send()).await,
            ForwardBody::Full(b) => bounded(timeout, req.timeout(timeout).send_body(b)).await,
            ForwardBody::Stream { prefix, rest, len } => {
                let watch = Rc::new(UploadWatch::default());
                let stream = Upload { prefix: (!prefix.is_empty()).then_some(prefix), rest, watch: watch.clone() };
                let req = req.timeout(UPLOAD_CAP);
                let send = match len {
                    Some(n) => req.send_body(actix_http::body::SizedStream::new(n, stream)),
                    None => req.send_stream(stream),
                };
                tokio::select! {
                    r = send => {
                        if let Some(why) = watch.failed.borrow_mut().take() {
                            return Ok(Once::Done(Forwarded::ClientBodyFailed(why)));
                        }
                        Some(r)
                    }
                    stalled_client = head_deadline(&watch, timeout) => {
                        if stalled_client {
                            let why = format!("the request body stalled: nothing came for {:.1}s", timeout.as_secs_f64());
                            return Ok(Once::Done(Forwarded::ClientBodyFailed(why)));
                        }
                        None
                    }
                }
            }
        };
        let mut res = match sent {
            Some(r) => r.map_err(|e| send_error(&url, timeout, e))?,
            None => return Err(Gns3Error::Timeout(timeout)),
        };
        let status = res.status();
        if status == StatusCode::UNAUTHORIZED && api == ApiVersion::V3 {
            return Ok(Once::Unauthorized);
        }
        if status.as_u16() >= 400 {
            let bytes = match actix_rt::time::timeout(timeout, res.body().limit(MAX_ERROR_BYTES)).await {
                Ok(Ok(b)) => b,
                _ => Bytes::new(),
            };
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(error_message(status, &bytes).chars().take(2000).collect()));
            let message = error_message(status, &bytes);
            return Ok(Once::Done(Forwarded::Refused { status: status.as_u16(), message, body }));
        }
        let headers = end_to_end(res.headers());
        let len =
            res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let empty =
            head.method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
        let body = if empty {
            ReplyBody::Full(Bytes::new())
        } else if len.is_some_and(|n| n <= INLINE_BYTES as u64) {
            match actix_rt::time::timeout(timeout, res.body().limit(INLINE_BYTES)).await {
                Ok(Ok(b)) => ReplyBody::Full(b),
                Ok(Err(e)) => {
                    return Err(Gns3Error::Connect { url, reason: format!("io: reply body cut short: {e}") });
                }
                Err(_) => return Err(Gns3Error::Timeout(timeout)),
            }
        } else {
            let (tx, rx) = mpsc::channel(BODY_CHUNKS);
            actix_rt::spawn(pump_reply(res, tx, timeout));
            ReplyBody::Stream { len, chunks: rx }
        };
        Ok(Once::Done(Forwarded::Reply(ForwardReply { status: status.as_u16(), headers, api, body })))
    }
}

/// `fut` bounded by `timeout`; `None` when it ran out.
async fn bounded<F: std::future::Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    actix_rt::time::timeout(timeout, fut).await.ok()
}

/// GNS3's reply headers without the hop-by-hop ones and those the edge sets itself.
fn end_to_end(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    const DROP: &[&str] = &[
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
        "set-cookie",
        "www-authenticate",
    ];
    headers
        .iter()
        .filter(|(name, _)| !DROP.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Copies GNS3's reply body into the channel until it ends, fails, pauses longer than
/// `idle`, or the consumer goes away or takes nothing for `idle` (the GNS3 connection is
/// then dropped).
async fn pump_reply<S>(mut res: awc::ClientResponse<S>, tx: mpsc::Sender<BodyChunk>, idle: Duration)
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    loop {
        let chunk = match actix_rt::time::timeout(idle, res.next()).await {
            Ok(Some(Ok(b))) => BodyChunk::Data(b),
            Ok(Some(Err(e))) => BodyChunk::Failed(format!("GNS3's reply body was cut short: {e}")),
            Ok(None) => BodyChunk::End,
            Err(_) => BodyChunk::Failed(format!("GNS3 sent nothing for {:.1}s", idle.as_secs_f64())),
        };
        let last = !matches!(chunk, BodyChunk::Data(_));
        // A consumer that takes nothing for `idle` is let go too (its chunks would wait forever).
        match actix_rt::time::timeout(idle, tx.send(chunk)).await {
            Ok(Ok(())) if !last => {}
            _ => return,
        }
    }
}

/// What the upload watchdog needs to know of a streamed request body.
#[derive(Default)]
struct UploadWatch {
    /// When a chunk was last handed to awc (`None`: none yet; the watchdog's start counts).
    progress: Cell<Option<Instant>>,
    /// When the body ended (the reply head is then due within the timeout).
    done: Cell<Option<Instant>>,
    /// True while GNS3 waits for the consumer (the channel was empty when polled).
    waiting_for_client: Cell<bool>,
    failed: RefCell<Option<String>>,
}

/// Returns when the streamed call made no progress for `timeout` (no chunk moved, or no
/// reply head after the body ended): `true` when the consumer was the one stalling.
async fn head_deadline(watch: &UploadWatch, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        let since = watch.done.get().or(watch.progress.get()).unwrap_or(start);
        let deadline = since + timeout;
        if Instant::now() >= deadline {
            return watch.done.get().is_none() && watch.waiting_for_client.get();
        }
        actix_rt::time::sleep_until(deadline.into()).await;
    }
}

/// The consumer's body as awc sends it: the prefix, then the channel's chunks.
struct Upload {
    prefix: Option<Bytes>,
    rest: mpsc::Receiver<BodyChunk>,
    watch: Rc<UploadWatch>,
}

impl Upload {
    fn fail(&self, why: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let err = std::io::Error::other(why.clone());
        *self.watch.failed.borrow_mut() = Some(why);
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for Upload {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // awc polls the body again whenever its task wakes, data or not: only a chunk
        // handed over counts as progress.
        if let Some(p) = this.prefix.take() {
            this.watch.progress.set(Some(Instant::now()));
            return Poll::Ready(Some(Ok(p)));
        }
        match this.rest.poll_recv(cx) {
            Poll::Ready(Some(BodyChunk::Data(b))) => {
                this.watch.progress.set(Some(Instant::now()));
                this.watch.waiting_for_client.set(false);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(BodyChunk::End)) => {
                this.watch.done.set(Some(Instant::now()));
                Poll::Ready(None)
            }
            Poll::Ready(Some(BodyChunk::Failed(why))) => this.fail(why),
            Poll::Ready(None) => this.fail("the client went away before the request body ended".into()),
            Poll::Pending => {
                this.watch.waiting_for_client.set(true);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_not_passed_on() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(header::SERVER, HeaderValue::from_static("Python/3.11 GNS3/2.2.61"));
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=a.gns3project"));
        let kept: Vec<String> = end_to_end(&h).into_iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.contains(&"content-type".to_owned()) && kept.contains(&"content-disposition".to_owned()));
    }
}

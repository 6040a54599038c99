//! The bodies of a passthrough call on the HTTP worker's side.
//!
//! The consumer's body is read up to `INLINE_BYTES`: when it ends there it travels whole,
//! otherwise the part read and a bounded channel (`BODY_CHUNKS`) that `pump` keeps filling
//! from the socket while the connector sends it to GNS3. GNS3's reply body comes back the same
//! way. Memory per call is so bounded by the chunks in flight, whatever the body's size.

use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::future::{self, Either, LocalBoxFuture};
use futures_util::{FutureExt, StreamExt};
use gns3_central_actors::gns3::forward::{BodyChunk, ForwardBody, ReplyBody, BODY_CHUNKS, INLINE_BYTES};
use tokio::sync::mpsc;

use crate::error::{ApiError, Code};

/// The consumer's body, and the future that streams the rest of it (when it is long).
pub(super) async fn request_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<(ForwardBody, Option<LocalBoxFuture<'static, ()>>), ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut prefix = BytesMut::new();
    while prefix.len() <= INLINE_BYTES {
        match payload.next().await {
            None if prefix.is_empty() => return Ok((ForwardBody::Empty, None)),
            None => return Ok((ForwardBody::Full(prefix.freeze()), None)),
            Some(Ok(chunk)) => prefix.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    Code::InvalidBody,
                    format!("the request body could not be read: {e}"),
                ))
            }
        }
    }
    let (tx, rx) = mpsc::channel(BODY_CHUNKS);
    let pump = async move {
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(b) => BodyChunk::Data(b),
                Err(e) => BodyChunk::Failed(format!("the request body could not be read: {e}")),
            };
            let failed = matches!(item, BodyChunk::Failed(_));
            // A closed channel: GNS3 answered (or the call failed) before taking it all.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
        let _ = tx.send(BodyChunk::End).await;
    };
    Ok((ForwardBody::Stream { prefix: prefix.freeze(), rest: rx, len: declared }, Some(pump.boxed_local())))
}

/// Awaits `call` while `pump` streams the request body; an answer that comes first (GNS3
/// answered early, or refused) ends the pumping.
pub(super) async fn while_pumping<F: std::future::Future>(
    call: F,
    pump: Option<LocalBoxFuture<'static, ()>>,
) -> F::Output {
    let Some(pump) = pump else { return call.await };
    let call = std::pin::pin!(call);
    match future::select(call, pump).await {
        Either::Left((out, _pump)) => out,
        Either::Right(((), call)) => call.await,
    }
}

/// The response with GNS3's reply body, whole or streamed.
pub(super) fn reply_body(mut res: HttpResponseBuilder, body: ReplyBody) -> HttpResponse {
    match body {
        ReplyBody::Full(bytes) => res.body(bytes),
        ReplyBody::Stream { len, chunks } => {
            let stream = futures_util::stream::unfold(Some(chunks), |state| async move {
                let mut rx = state?;
                match rx.recv().await {
                    Some(BodyChunk::Data(b)) => Some((Ok::<Bytes, std::io::Error>(b), Some(rx))),
                    Some(BodyChunk::End) => None,
                    Some(BodyChunk::Failed(why)) => Some((Err(std::io::Error::other(why)), None)),
                    None => Some((Err(std::io::Error::other("GNS3's reply body ended early")), None)),
                }
            });
            match len {
                Some(n) => res.body(actix_web::body::SizedStream::new(n, Box::pin(stream))),
                None => res.streaming(stream),
            }
        }
    }
}

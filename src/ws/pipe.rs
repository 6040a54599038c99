//! The pipe between a session's task and its HTTP response (why there is one: the module
//! doc of `ws`). Both ends live on the same worker thread (the session's task is spawned
//! on the thread that serves the connection), so a `RefCell` queue and one waker are
//! enough: a tokio channel cost about 1.8 KiB per session, this costs a few dozen bytes
//! plus the frames in flight (bounded by the session's `unflushed_bytes` accounting).
//!
//! No batching is needed here for the socket's sake (issue 17, `TCP_NODELAY` in
//! `startup/http.rs`): each chunk is already every frame the session wrote in one turn
//! (actix-web-actors encodes them into one buffer), and actix-http's dispatcher reads every
//! chunk waiting here into its write buffer before it writes to the socket, in one `write`.
//!
//! `Meter` is what the session sees of the pipe: the bytes the HTTP writer took (`flushed`),
//! whether the response is over (`gone`: `flushed` is final), and `discard`, which drops
//! what the writer has not taken (it is never written) and ends the response, so a module
//! session knows exactly which of its messages went out (`module/delivery.rs`).

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

type Chunk = Result<Bytes, actix_web::Error>;

#[derive(Default)]
struct Shared {
    queue: VecDeque<Chunk>,
    /// The response side, waiting for a chunk.
    reader: Option<Waker>,
    /// The session's stream ended: the response ends once the queue is read.
    ended: bool,
    /// The response is gone (connection closed): chunks are dropped, not kept.
    reader_gone: bool,
}

/// What the session knows of its pipe (both ends are on its thread).
#[derive(Debug, Default)]
pub struct Meter {
    flushed: AtomicU64,
    gone: AtomicBool,
    discard: AtomicBool,
}

impl Meter {
    /// Bytes the HTTP writer took.
    pub fn flushed(&self) -> u64 {
        self.flushed.load(Ordering::Relaxed)
    }

    /// The response is over (read to its end, or dropped with the connection): nothing
    /// more will be taken.
    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Drops what the HTTP writer has not taken yet and ends the response at once:
    /// `flushed` is final from now on.
    pub fn discard(&self) {
        self.discard.store(true, Ordering::Relaxed);
    }
}

/// The response side: yields the chunks in order and counts the bytes it hands to the
/// HTTP writer in `flushed`.
pub(crate) struct PipeReader {
    shared: Rc<RefCell<Shared>>,
    meter: Arc<Meter>,
}

impl Stream for PipeReader {
    type Item = Chunk;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let mut s = self.shared.borrow_mut();
        if self.meter.discard.load(Ordering::Relaxed) {
            s.queue.clear();
            self.meter.gone.store(true, Ordering::Relaxed);
            return Poll::Ready(None);
        }
        if let Some(chunk) = s.queue.pop_front() {
            if let Ok(b) = &chunk {
                self.meter.flushed.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            return Poll::Ready(Some(chunk));
        }
        if s.ended {
            self.meter.gone.store(true, Ordering::Relaxed);
            return Poll::Ready(None);
        }
        match &mut s.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut s = self.shared.borrow_mut();
        s.reader_gone = true;
        s.reader = None;
        s.queue.clear();
        self.meter.gone.store(true, Ordering::Relaxed);
    }
}

/// Drives `frames` on a task of its own (on this thread) and returns the response side.
/// The task runs until `frames` ends, whether or not the response is still read: a gone
/// response means a gone connection, and the payload side ends the session.
pub(crate) fn spawn_pipe(frames: impl Stream<Item = Chunk> + 'static, meter: Arc<Meter>) -> PipeReader {
    let shared = Rc::new(RefCell::new(Shared::default()));
    let writer = shared.clone();
    let m = meter.clone();
    actix_rt::spawn(async move {
        let mut frames = std::pin::pin!(frames);
        while let Some(chunk) = frames.next().await {
            // The borrow ends before the wake-up: nothing runs while the queue is held.
            let waiting = {
                let mut s = writer.borrow_mut();
                if s.reader_gone || m.discard.load(Ordering::Relaxed) {
                    continue;
                }
                s.queue.push_back(chunk);
                s.reader.take()
            };
            if let Some(w) = waiting {
                w.wake();
            }
        }
        let waiting = {
            let mut s = writer.borrow_mut();
            s.ended = true;
            s.reader.take()
        };
        if let Some(w) = waiting {
            w.wake();
        }
    });
    PipeReader { shared, meter }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn source(rx: UnboundedReceiver<Chunk>) -> impl Stream<Item = Chunk> {
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
    }

    #[actix_rt::test]
    async fn chunks_arrive_in_order_and_are_counted_then_the_stream_ends() {
        let (tx, rx) = unbounded_channel::<Chunk>();
        let flushed = Arc::new(Meter::default());
        let mut reader = spawn_pipe(source(rx), flushed.clone());
        tx.send(Ok(Bytes::from_static(b"abc"))).unwrap();
        tx.send(Ok(Bytes::from_static(b"defgh"))).unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(reader.next().await.unwrap().unwrap(), Bytes::from_static(b"defgh"));
        assert_eq!(flushed.flushed(), 8, "bytes taken by the reader");
        tx.send(Err(actix_web::error::ErrorBadRequest("x"))).unwrap();
        assert!(reader.next().await.unwrap().is_err(), "errors pass through");
        assert_eq!(flushed.flushed(), 8, "an error counts no bytes");
        drop(tx);
        assert!(reader.next().await.is_none(), "ends after the source ends");
        assert!(flushed.gone(), "read to its end");
    }

    #[actix_rt::test]
    async fn discard_drops_what_was_not_taken_and_ends_the_response() {
        let (tx, rx) = unbounded_channel::<Chunk>();
        let meter = Arc::new(Meter::default());
        let mut reader = spawn_pipe(source(rx), meter.clone());
        tx.send(Ok(Bytes::from_static(b"abc"))).unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap(), Bytes::from_static(b"abc"));
        tx.send(Ok(Bytes::from_static(b"never"))).unwrap();
        while reader.shared.borrow().queue.is_empty() {
            actix_rt::task::yield_now().await;
        }
        assert!(!meter.gone());
        meter.discard();
        assert!(reader.next().await.is_none(), "ended, the queued chunk dropped");
        assert_eq!((meter.flushed(), meter.gone()), (3, true));
    }

    #[actix_rt::test]
    async fn the_source_keeps_running_after_the_reader_is_gone_and_nothing_piles_up() {
        let (tx, rx) = unbounded_channel::<Chunk>();
        let flushed = Arc::new(Meter::default());
        let reader = spawn_pipe(source(rx), flushed.clone());
        let shared = reader.shared.clone();
        drop(reader);
        for _ in 0..100 {
            tx.send(Ok(Bytes::from_static(b"0123456789"))).unwrap();
        }
        drop(tx);
        // The task reads all 100, then the end of the source.
        while !shared.borrow().ended {
            actix_rt::task::yield_now().await;
        }
        assert!(shared.borrow().queue.is_empty(), "dropped, not queued, once the reader is gone");
        assert_eq!(flushed.flushed(), 0);
    }

    #[actix_rt::test]
    async fn an_empty_source_ends_the_response_at_once() {
        let reader = spawn_pipe(stream::empty(), Arc::new(Meter::default()));
        assert_eq!(reader.collect::<Vec<_>>().await.len(), 0);
    }
}

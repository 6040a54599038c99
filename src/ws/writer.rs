//! `Writer`: what both kinds of WebSocket session (dashboards, `dashboard/session.rs`;
//! modules, `module/session.rs`) keep for their socket, in their `Core` (`session.rs`):
//! the bounded `Outbound` buffer, the bytes handed to the WebSocket context against the
//! bytes the HTTP writer took (`flushed`, counted by the pipe), and the closing flag.
//! Frames are handed to the socket only while fewer than `unflushed_bytes` wait in the
//! writer; the rest wait in `Outbound`, which applies the shedding policy. `pump` hands
//! what fits and looks again every `PUMP_RETRY` while frames wait.
//!
//! A frame with a `tag` (a module's bus message) is remembered with the byte offset where
//! it ends; it is written to the socket once the HTTP writer has taken that many bytes
//! (`confirmed`). Dashboards tag nothing.

use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws;
use bytes::Bytes;
use bytestring::ByteString;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::frames;
use super::outbound::{Frame, Outbound};
use super::pipe::Meter;
use crate::state::AppState;

/// How often a session whose writer is full looks again.
pub(crate) const PUMP_RETRY: Duration = Duration::from_millis(10);

/// Bytes of a server frame (unmasked header + payload).
pub(crate) fn frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    (header + payload) as u64
}

pub(crate) struct Writer {
    pub queue: Outbound,
    state: web::Data<AppState>,
    /// Bytes the HTTP writer took (counted by the response's pipe).
    flushed: Arc<Meter>,
    /// Bytes handed to the WebSocket context.
    handed: u64,
    /// Tagged frames handed and not yet confirmed: (tag, `handed` at their end).
    tags: VecDeque<(u64, u64)>,
    unflushed_bytes: u64,
    pump_scheduled: bool,
    closing: bool,
}

/// A session actor with a `Writer`.
pub(crate) trait Socket: Actor<Context = ws::WebsocketContext<Self>> {
    fn writer(&mut self) -> &mut Writer;
    /// Called after every pump (a module session publishes its buffer's depth and
    /// confirms what was written).
    fn pumped(&mut self, _ctx: &mut ws::WebsocketContext<Self>) {}
}

impl Writer {
    pub fn new(state: web::Data<AppState>, flushed: Arc<Meter>) -> Self {
        let c = &state.settings.websocket;
        let queue = Outbound::new(c.queue_frames, c.queue_bytes);
        let unflushed_bytes = c.unflushed_bytes as u64;
        let tags = VecDeque::new();
        Self { queue, state, flushed, handed: 0, tags, unflushed_bytes, pump_scheduled: false, closing: false }
    }

    pub fn in_flight(&self) -> u64 {
        self.handed.saturating_sub(self.flushed.flushed())
    }

    pub fn meter(&self) -> &Arc<Meter> {
        &self.flushed
    }

    /// The last tag whose frame the HTTP writer has now taken, if any since the last call.
    pub fn confirmed(&mut self) -> Option<u64> {
        confirm(&mut self.tags, self.flushed.flushed())
    }

    /// Whether tagged frames wait for their confirmation.
    pub fn unconfirmed(&self) -> bool {
        !self.tags.is_empty()
    }

    /// The tagged frames not yet confirmed (the session is ending).
    pub fn take_tags(&mut self) -> VecDeque<(u64, u64)> {
        std::mem::take(&mut self.tags)
    }

    /// Hands a buffered frame to the socket, remembering its tag.
    fn write_frame<A: Actor<Context = ws::WebsocketContext<A>>>(
        &mut self,
        ctx: &mut ws::WebsocketContext<A>,
        frame: Frame,
    ) {
        self.write(ctx, frame.text);
        if let Some(tag) = frame.tag {
            self.tags.push_back((tag, self.handed));
        }
    }

    /// Whether the HTTP writer holds less than `unflushed_bytes`.
    pub fn has_room(&self) -> bool {
        self.in_flight() < self.unflushed_bytes
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Hands a text frame to the socket now, past the buffer.
    pub fn write<A: Actor<Context = ws::WebsocketContext<A>>>(
        &mut self,
        ctx: &mut ws::WebsocketContext<A>,
        text: Bytes,
    ) {
        match ByteString::try_from(text) {
            Ok(s) => {
                self.handed += frame_len(s.len());
                let peak = &self.state.sessions.counters.peak_unflushed_bytes;
                peak.fetch_max(self.in_flight(), Ordering::Relaxed);
                ctx.write_raw(ws::Message::Text(s));
            }
            Err(e) => tracing::warn!(error = %e, "Dropped a frame that is not UTF-8."),
        }
    }

    /// A ping, or the pong to a client's ping, while the writer has room (a client that
    /// pings without reading cannot grow the writer). Returns whether it was sent.
    pub fn ping<A: Actor<Context = ws::WebsocketContext<A>>>(&mut self, ctx: &mut ws::WebsocketContext<A>) -> bool {
        if !self.has_room() {
            return false;
        }
        self.handed += frame_len(0);
        ctx.ping(b"");
        true
    }

    pub fn pong<A: Actor<Context = ws::WebsocketContext<A>>>(
        &mut self,
        ctx: &mut ws::WebsocketContext<A>,
        payload: &[u8],
    ) -> bool {
        if !self.has_room() {
            return false;
        }
        self.handed += frame_len(payload.len());
        ctx.pong(payload);
        true
    }

    /// Sends the close frame and stops the actor (once).
    pub fn close<A: Actor<Context = ws::WebsocketContext<A>>>(
        &mut self,
        ctx: &mut ws::WebsocketContext<A>,
        code: ws::CloseCode,
        why: &str,
    ) {
        if self.closing {
            return;
        }
        self.closing = true;
        ctx.close(Some(ws::CloseReason { code, description: Some(why.to_owned()) }));
        ctx.stop();
    }

    /// The client closed: no more frames are queued.
    pub fn closed_by_peer(&mut self) {
        self.closing = true;
    }

    /// Shutdown: everything buffered (a `missed` frame first when events were shed) goes
    /// to the socket now, whatever the writer holds: the buffer is bounded and the process
    /// is about to exit.
    pub fn flush_all<A: Actor<Context = ws::WebsocketContext<A>>>(&mut self, ctx: &mut ws::WebsocketContext<A>) {
        let missed = self.queue.take_missed();
        if missed.total() > 0 {
            self.write(ctx, frames::missed(missed.low, missed.normal).into());
        }
        while let Some(f) = self.queue.pop() {
            self.write_frame(ctx, f);
        }
    }
}

/// Hands buffered frames to the socket while the writer has room (the first one after
/// shedding preceded by a `missed` frame); looks again later while frames wait.
pub(crate) fn pump<A: Socket>(act: &mut A, ctx: &mut ws::WebsocketContext<A>) {
    let w = act.writer();
    while !w.queue.is_empty() && w.has_room() {
        let missed = w.queue.take_missed();
        if missed.total() > 0 {
            w.write(ctx, frames::missed(missed.low, missed.normal).into());
        }
        if let Some(f) = w.queue.pop() {
            w.write_frame(ctx, f);
        }
    }
    if !w.queue.is_empty() && !w.pump_scheduled {
        w.pump_scheduled = true;
        ctx.run_later(PUMP_RETRY, |act, ctx| {
            act.writer().pump_scheduled = false;
            pump(act, ctx);
        });
    }
    act.pumped(ctx);
}

/// Pops the tags whose frames end at or before `flushed`; the last one popped.
pub(crate) fn confirm(tags: &mut VecDeque<(u64, u64)>, flushed: u64) -> Option<u64> {
    let mut last = None;
    while let Some(&(tag, end)) = tags.front() {
        if end > flushed {
            break;
        }
        last = Some(tag);
        tags.pop_front();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_confirmed_once_every_byte_of_its_frame_was_taken() {
        let mut tags = VecDeque::from([(7, 100), (8, 250), (9, 400)]);
        assert_eq!(confirm(&mut tags, 99), None);
        assert_eq!(confirm(&mut tags, 260), Some(8));
        assert_eq!(confirm(&mut tags, 260), None);
        assert_eq!(confirm(&mut tags, 400), Some(9));
        assert!(tags.is_empty());
    }

    #[test]
    fn frame_lengths_follow_rfc_6455_headers() {
        assert_eq!(frame_len(0), 2);
        assert_eq!(frame_len(125), 127);
        assert_eq!(frame_len(126), 130);
        assert_eq!(frame_len(65535), 65539);
        assert_eq!(frame_len(65536), 65546);
    }
}

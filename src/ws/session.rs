//! What both kinds of WebSocket session share (dashboards, `dashboard/session.rs`;
//! modules, `module/session.rs`): `Core`, the state each keeps for its connection (id,
//! settings, `Writer`, when the peer was last heard, the action `TokenBucket`), and
//! `Session`, the trait whose default methods are the glue they used to copy: queueing a
//! frame and closing with 4008 when one that may not be shed does not fit, error frames,
//! the action rate limit, the heartbeat (closing a silent peer with 1008), the handling
//! of the incoming stream (1009 on an oversized frame, 1002 on a protocol error), the
//! 1001 on shutdown, and registration with the `SessionRegistry`.
//!
//! Where the two differ, a hook says so (`pushed`, `overflowed`, `beat`): dashboards count shedding in the WebSocket stats, modules in
//! their module's stats.
//!
//! `StreamHandler` and `Handler<Shutdown>` cannot be implemented for every `Session` at
//! once (actix owns the traits, and a blanket impl over a type parameter is refused by
//! the orphan rule), so each session implements them in one line calling `on_message` and
//! `shutdown`.

use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws;
use bytes::Bytes;
use gns3_central_actors::sinks::ratelimit::TokenBucket;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::frames;
use super::outbound::{Class, Frame, Missed, Pushed};
use super::pipe::Meter;
use super::writer::{pump, Socket, Writer};
use super::{WsCounters, WsSettings};
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// A session's connection state, the same for both kinds.
pub(crate) struct Core {
    pub id: Uuid,
    pub state: web::Data<AppState>,
    pub cfg: WsSettings,
    pub out: Writer,
    /// When the peer last sent a frame (of any kind).
    pub last_heard: Instant,
    /// Node and project actions (`websocket.actions_per_second`, `action_burst`), per
    /// connection.
    pub actions: TokenBucket,
}

impl Core {
    /// How long a resume ahead of this instance's history waits for it (`AppState::
    /// resume_wait`), at most half `websocket.client_timeout_ms`: the session reads no
    /// frame meanwhile, and a client is not to be closed as silent for it.
    pub fn resume_wait(&self) -> std::time::Duration {
        self.state.resume_wait().min(std::time::Duration::from_millis(self.cfg.client_timeout_ms) / 2)
    }

    pub fn new(state: web::Data<AppState>, flushed: Arc<Meter>) -> Self {
        let cfg = state.settings.websocket.clone();
        let now = Instant::now();
        Self {
            id: Uuid::new_v4(),
            out: Writer::new(state.clone(), flushed),
            last_heard: now,
            actions: TokenBucket::new(cfg.action_burst, cfg.actions_per_second, now),
            cfg,
            state,
        }
    }

    pub fn counters(&self) -> &WsCounters {
        &self.state.sessions.counters
    }
}

/// A WebSocket session actor built on `Core`.
pub(crate) trait Session: Socket {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;

    /// A text frame from the peer.
    fn on_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str);

    /// A frame went into the buffer (`Queued`, or `Shed` and the buffer's missed counts
    /// were `before`).
    fn pushed(&mut self, _pushed: &Pushed, _before: Missed) {}

    /// A frame that may not be shed did not fit (counted in `closed_slow`); the session
    /// closes with 4008 right after.
    fn overflowed(&mut self) {}

    /// Every heartbeat of a peer not timed out, with how long it has been silent.
    fn beat(&mut self, _silence: Duration) {}

    /// Queues a frame and hands what the writer can take.
    fn send(&mut self, ctx: &mut ws::WebsocketContext<Self>, class: Class, text: Bytes) {
        self.send_tagged(ctx, class, text, None);
    }

    /// `send` of a frame with a tag (`Frame::tag`). Not queued once the session closes.
    fn send_tagged(&mut self, ctx: &mut ws::WebsocketContext<Self>, class: Class, text: Bytes, tag: Option<u64>) {
        let out = &mut self.core_mut().out;
        if out.closing() {
            return;
        }
        let before = out.queue.missed();
        let pushed = out.queue.push(Frame { class, text, tag });
        if let Pushed::Overflow = pushed {
            self.core().counters().closed_slow.fetch_add(1, Ordering::Relaxed);
            self.overflowed();
            self.close(ctx, ws::CloseCode::Other(4008), "slow consumer");
            return;
        }
        self.pushed(&pushed, before);
        pump(self, ctx);
    }

    /// A reply: never shed.
    fn reply(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: impl Into<Bytes>) {
        self.send(ctx, Class::Keep, text.into());
    }

    fn error(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: Code, message: &str, rid: Option<&Value>) {
        self.core().counters().error_frames.fetch_add(1, Ordering::Relaxed);
        self.reply(ctx, frames::error(code, message, rid, None));
    }

    /// The answer to a frame that did not parse.
    fn frame_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, e: &frames::FrameError) {
        self.core().counters().error_frames.fetch_add(1, Ordering::Relaxed);
        self.reply(ctx, e.to_frame());
    }

    fn api_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, e: &ApiError, rid: Option<&Value>) {
        self.core().counters().error_frames.fetch_add(1, Ordering::Relaxed);
        self.reply(ctx, frames::error(e.code, &e.message, rid, e.details.clone()));
    }

    /// Sends the close frame and stops (once).
    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: ws::CloseCode, why: &str) {
        self.core_mut().out.close(ctx, code, why);
    }

    /// Takes a token of the action bucket; when it is spent, counts it and answers with a
    /// `rate_limited` error frame ("too many `what`") instead.
    fn take_action_token(&mut self, ctx: &mut ws::WebsocketContext<Self>, what: &str, rid: Option<&Value>) -> bool {
        if self.core_mut().actions.take(Instant::now()).is_ok() {
            return true;
        }
        let core = self.core();
        core.counters().rate_limited.fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            "too many {what} (at most {} per second, bursts of {})",
            core.cfg.actions_per_second, core.cfg.action_burst
        );
        self.error(ctx, Code::RateLimited, &msg, rid);
        false
    }

    /// Registers with the registry (which closes it with 1001 on shutdown) and starts
    /// the heartbeat; for `started`.
    fn open(&mut self, ctx: &mut ws::WebsocketContext<Self>, mailbox: usize)
    where
        Self: Handler<super::Shutdown>,
    {
        ctx.set_mailbox_capacity(mailbox);
        let core = self.core();
        core.state.sessions.register(core.id, ctx.address().recipient());
        let hb = Duration::from_millis(core.cfg.heartbeat_interval_ms);
        ctx.run_interval(hb, |act, ctx| act.heartbeat(ctx));
    }

    /// Closes a peer silent for longer than `client_timeout_ms` (1008), else pings it
    /// (while the writer has room).
    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let core = self.core();
        let silence = core.last_heard.elapsed();
        if silence > Duration::from_millis(core.cfg.client_timeout_ms) {
            core.counters().closed_timeout.fetch_add(1, Ordering::Relaxed);
            tracing::info!(session = %core.id, "Closing a silent WebSocket client.");
            self.close(ctx, ws::CloseCode::Policy, "client timeout");
            return;
        }
        self.beat(silence);
        self.core_mut().out.ping(ctx);
    }

    /// One item of the incoming stream (`StreamHandler::handle`).
    fn on_message(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut ws::WebsocketContext<Self>) {
        self.core_mut().last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(ctx, &text),
            Ok(ws::Message::Binary(_)) | Ok(ws::Message::Continuation(_)) => {
                self.error(ctx, Code::UnsupportedFrame, "frames are JSON text; binary frames are not accepted", None)
            }
            // Answered only while the writer has room: a client that pings without reading
            // must not grow what waits for it (a pong may be skipped, RFC 6455 5.5.3).
            Ok(ws::Message::Ping(m)) => {
                self.core_mut().out.pong(ctx, &m);
            }
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                self.core_mut().out.closed_by_peer();
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                let core = self.core();
                core.counters().closed_oversized.fetch_add(1, Ordering::Relaxed);
                let why = format!("frame larger than {} bytes", core.cfg.max_frame_bytes);
                self.close(ctx, ws::CloseCode::Size, &why);
            }
            Err(e) => {
                tracing::debug!(session = %self.core().id, error = %e, "WebSocket protocol error.");
                self.close(ctx, ws::CloseCode::Protocol, "protocol error");
            }
        }
    }

    /// The service is stopping (`Handler<Shutdown>`): 1001, after what is buffered.
    fn shutdown(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        // What waits in the outbound buffer (events and bus messages delivered before the
        // stop, urgent ones included) goes to the socket ahead of the close frame, whatever
        // the writer holds: the buffer is bounded and the process is about to exit. Module
        // sockets did not do this before the session core was shared; they do now, as
        // docs/operations.md#graceful-shutdown says of every session.
        self.core_mut().out.flush_all(ctx);
        self.close(ctx, ws::CloseCode::Away, "server shutting down");
    }

    /// Leaves the registry; for `stopping`.
    fn unregister(&self) {
        let core = self.core();
        core.state.sessions.unregister(core.id);
    }
}

/// `current` with the names of `added` it lacks appended (a subscribe adds to what the
/// session has).
pub(crate) fn merge_names(current: &[String], added: Vec<String>) -> Vec<String> {
    let mut merged = current.to_vec();
    for n in added {
        if !merged.contains(&n) {
            merged.push(n);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribing_adds_only_new_names_in_order() {
        let current = vec!["nodes".to_owned(), "links".to_owned()];
        let added = vec!["links".to_owned(), "projects".to_owned(), "projects".to_owned()];
        assert_eq!(merge_names(&current, added), ["nodes", "links", "projects"]);
    }
}

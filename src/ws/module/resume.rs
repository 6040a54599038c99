//! A module's `subscribe` with `since` (docs/modules.md#resuming-events): the events it
//! missed while disconnected are replayed in order, then live ones follow, with the
//! dashboard's `replay` frame (`ws/replay.rs`).
//!
//! The module's subscription is its proxy's, not the session's, so the two steps of the
//! dashboard's `SubscribeWithReplay` are taken in turn, with the session's mailbox held
//! (`ctx.wait`) across both: the proxy subscribes (or changes its filter) first, then
//! the dispatcher reads the history after `since` (`GetReplay`). Every event published
//! after that read reaches the proxy's subscription live, and is held in this session's
//! mailbox until the replay is sent; live events up to the replay's `latest_seq` are
//! dropped when they arrive (`replayed_to`). No gap, no duplicate at the seam.
//!
//! The `welcome` is here too: it names the event position (`epoch`, `last_seq`), where a
//! module that has not handled any event yet resumes from.

use actix::prelude::*;
use actix_web_actors::ws;
use gns3_central_actors::dispatcher::{GetReplay, Position, Replay, SubscriptionFilter};
use gns3_central_actors::events::Event;
use gns3_central_actors::modules::{BusError, SetFilter};
use serde_json::{json, Value};
use uuid::Uuid;

use super::session::ModuleSession;
use crate::error::Code;
use crate::ws::frames;
use crate::ws::replay::send_replay;
use crate::ws::session::Session;
use crate::ws::{Role, SessionPrincipal};

enum Failed {
    Filter(BusError),
    Proxy,
    /// The filter is set; only the replay could not be read.
    Dispatcher,
}

impl ModuleSession {
    /// A live event that was sent in the last replay (of the same epoch: seqs start again
    /// in a new one).
    pub(super) fn replayed(&self, e: &Event) -> bool {
        self.replayed_to.as_ref().is_some_and(|(epoch, seq)| e.seq <= *seq && e.epoch == *epoch)
    }

    /// The first frame of a session; `position` is `None` with `--no-events`.
    pub(super) fn welcome(&mut self, ctx: &mut ws::WebsocketContext<Self>, position: Option<Position>) {
        let c = &self.core.cfg;
        let welcome = json!({
            "type": "welcome", "session_id": self.core.id, "module": self.slot.name, "module_id": self.slot.id,
            "epoch": position.as_ref().map(|p| &p.epoch), "last_seq": position.as_ref().map(|p| p.last_seq),
            "events_enabled": self.core.state.dispatcher.is_some(), "default_server": self.core.state.default_server,
            "limits": {"max_frame_bytes": c.max_frame_bytes, "max_subscriptions": c.max_subscriptions,
                "queue_frames": c.queue_frames, "queue_bytes": c.queue_bytes, "max_replay": c.max_replay,
                "heartbeat_interval_ms": c.heartbeat_interval_ms, "client_timeout_ms": c.client_timeout_ms},
        });
        self.reply(ctx, welcome.to_string());
    }

    /// Sets the module's filter, then sends `subscribed` and the `replay` of the events
    /// after `since` (a well-formed event id: checked by the caller).
    pub(super) fn resume(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        filter: SubscriptionFilter,
        (names, projects): (Vec<String>, Option<Vec<Uuid>>),
        since: String,
        rid: Option<Value>,
    ) {
        let Some(dispatcher) = self.core.state.dispatcher.clone() else {
            return self.error(ctx, Code::EventsDisabled, "live events are off (--no-events)", rid.as_ref());
        };
        let proxy = self.slot.addr.clone();
        let max_replay = self.core.cfg.max_replay;
        let wait_ahead = self.core.resume_wait();
        let fut = async move {
            match proxy.send(SetFilter(filter.clone())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Failed::Filter(e)),
                Err(_) => return Err(Failed::Proxy),
            }
            dispatcher.send(GetReplay { filter, since, max_replay, wait_ahead }).await.map_err(|_| Failed::Dispatcher)
        };
        // `wait` holds the mailbox: no live event is handled before the replay is sent.
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| {
            let replay: Replay = match res {
                Ok(r) => r,
                Err(Failed::Filter(e)) => return act.error(ctx, Code::from(&e), &e.to_string(), rid.as_ref()),
                Err(Failed::Proxy) => {
                    let msg = "the module's proxy is not running";
                    return act.error(ctx, Code::ModuleUnavailable, msg, rid.as_ref());
                }
                Err(Failed::Dispatcher) => {
                    act.names = names;
                    act.projects = projects;
                    let msg = "the dispatcher is not running";
                    return act.error(ctx, Code::EventsUnavailable, msg, rid.as_ref());
                }
            };
            act.names = names;
            act.projects = projects;
            act.replayed_to = Some((replay.epoch.clone(), replay.latest_seq));
            act.reply(ctx, frames::subscribed(&act.names, act.projects.as_deref(), rid.as_ref()));
            let principal =
                SessionPrincipal { name: format!("module:{}", act.name()), role: Role::Operator, projects: None };
            send_replay(act, ctx, principal, (&replay.epoch, replay.latest_seq), replay.replay, rid);
        }));
    }
}

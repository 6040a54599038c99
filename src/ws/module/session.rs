//! `ModuleSession`: one actor per connected module (`/ws/modules/{name}`). It is the
//! transport of the module's `ModuleProxy`: attached to it in `started` (the proxy then
//! hands it the module's bus messages and events, queued ones first, with `try_send` on
//! this actor's bounded mailbox, `modules.session_mailbox`), detached in `stopping`.
//! A `subscribe` with `since` also replays what the module missed (`resume.rs`).
//! What the module sends goes to the registry (`route`, `request`), the dispatcher
//! (`publish`, only in the module's namespace) or a connector (actions, with their
//! correlation id, through the audit hook).
//!
//! Outbound it works as the dashboard session does, on the same `Core` (`ws/session.rs`):
//! a bounded `Outbound` buffer handed to the socket while the writer holds less than
//! `unflushed_bytes`, LOW and NORMAL events shed first (counted in the module's stats as
//! dead-lettered); bus messages and replies are never shed, and when one does not fit the
//! module is closed with 4008 (it shows as disconnected, and messages for it wait in its
//! offline queue again). A bus message counts as delivered once written to the socket;
//! what the session still held when it ends goes back to the front of the offline queue
//! (`delivery.rs`).

use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws;
use gns3_central_actors::dispatcher::{GetPosition, Publish, SubscriptionFilter};
use gns3_central_actors::events::{Event, NewEvent, Source};
use gns3_central_actors::modules::envelope::check_event_namespace;
use gns3_central_actors::modules::{Attach, BusError, BusMessage, HandReply, ModuleSlot, SetFilter, ToModule};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::protocol::{self as proto, ModuleFrame, OutgoingEvent, OutgoingMessage};
use crate::error::{parse_uuid, ApiError, Code};
use crate::state::AppState;
use crate::ws::frames::{self, with_request_id};
use crate::ws::outbound::{Class, Missed, Pushed};
use crate::ws::pipe::Meter;
use crate::ws::session::{merge_names, Core, Session};
use crate::ws::writer::{Socket, Writer};
use crate::ws::Shutdown;

pub struct ModuleSession {
    pub(super) core: Core,
    pub(super) slot: Arc<ModuleSlot>,
    pub(super) names: Vec<String>,
    pub(super) projects: Option<Vec<Uuid>>,
    /// Live events up to this (epoch, seq) were sent in a replay (`resume.rs`): dropped.
    pub(super) replayed_to: Option<(String, u64)>,
    /// A look at what the socket took is due (`delivery.rs`).
    pub(super) confirm_scheduled: bool,
}

impl ModuleSession {
    pub fn new(state: web::Data<AppState>, slot: Arc<ModuleSlot>, flushed: Arc<Meter>) -> Self {
        Self {
            core: Core::new(state, flushed),
            slot,
            names: Vec::new(),
            projects: None,
            replayed_to: None,
            confirm_scheduled: false,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.slot.name
    }

    fn bus_error(&mut self, ctx: &mut ws::WebsocketContext<Self>, e: &BusError, rid: Option<&Value>) {
        self.error(ctx, Code::from(e), &e.to_string(), rid);
    }

    /// A bus message from what the module gave; `from` is always this module.
    fn build(&self, m: OutgoingMessage, to: Option<&str>, kind: Option<&str>) -> Result<BusMessage, BusError> {
        let to = to.map(str::to_owned).or(m.to).ok_or_else(|| BusError::Invalid("message.to is required".into()))?;
        let kind =
            m.kind.or(kind.map(str::to_owned)).ok_or_else(|| BusError::Invalid("message.type is required".into()))?;
        let mut b = BusMessage::new(self.name(), &to, &kind, m.payload);
        b.ttl = self.core.state.modules.registry.config().ttl(m.ttl).map_err(BusError::Invalid)?.as_millis() as u64;
        b.correlation_id = m.correlation_id;
        Ok(b)
    }

    fn route(&mut self, ctx: &mut ws::WebsocketContext<Self>, msg: Result<BusMessage, BusError>, rid: Option<&Value>) {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => return self.bus_error(ctx, &e, rid),
        };
        let id = msg.id.clone();
        let registry = &self.core.state.modules.registry;
        if registry.shared().is_some() {
            // Handed to the uplink now (the order per sender), answered when Redis has.
            let rid = rid.cloned();
            let fut = registry.send(msg);
            ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| act.routed(ctx, &id, r, rid.as_ref())));
            return;
        }
        let r = registry.route(msg);
        self.routed(ctx, &id, r, rid);
    }

    fn routed(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        id: &str,
        r: Result<gns3_central_actors::modules::Routed, BusError>,
        rid: Option<&Value>,
    ) {
        match r {
            Ok(r) if rid.is_some() => {
                let ack = json!({"type": "sent", "id": id, "accepted": r.accepted, "refused": r.refused});
                self.reply(ctx, with_request_id(ack, rid));
            }
            Ok(_) => {}
            Err(e) => self.bus_error(ctx, &e, rid),
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        m: OutgoingMessage,
        timeout: Option<u64>,
        rid: Option<Value>,
    ) {
        let registry = self.core.state.modules.registry.clone();
        let built = self.build(m, None, None).and_then(|m| {
            let t = registry.config().request_timeout(timeout).map_err(BusError::Invalid)?;
            Ok((m, t))
        });
        let (msg, timeout) = match built {
            Ok(x) => x,
            Err(e) => return self.bus_error(ctx, &e, rid.as_ref()),
        };
        // The reply goes through the proxy (`HandReply`), which hands it back as a tagged
        // frame (`ToModule::Reply`): received once written, queued again if it is not.
        let fut = async move { registry.request_held(msg, timeout).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| match res {
            Ok(msg) => act.slot.addr.do_send(HandReply { session: Some(act.core.id), msg, request_id: rid }),
            Err(e) => act.bus_error(ctx, &e, rid.as_ref()),
        }));
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        names: Vec<String>,
        projects: Option<Vec<String>>,
        since: Option<String>,
        rid: Option<Value>,
    ) {
        if let Some(bad) = since.as_deref().filter(|s| Event::parse_id(s).is_none()) {
            let shown: String = bad.chars().take(80).collect();
            let msg = format!("since: '{shown}' is not an event id (EPOCH-SEQ, the `id` of an event)");
            return self.error(ctx, Code::InvalidSince, &msg, rid.as_ref());
        }
        let merged = merge_names(&self.names, names);
        let projects = match projects {
            Some(list) => match list.iter().map(|p| parse_uuid("projects", p)).collect::<Result<Vec<_>, _>>() {
                Ok(ids) => Some(ids),
                Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
            },
            None => self.projects.clone(),
        };
        self.apply_filter(ctx, merged, projects, since, rid);
    }

    fn apply_filter(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        names: Vec<String>,
        projects: Option<Vec<Uuid>>,
        since: Option<String>,
        rid: Option<Value>,
    ) {
        if self.core.state.dispatcher.is_none() {
            return self.error(ctx, Code::EventsDisabled, "live events are off (--no-events)", rid.as_ref());
        }
        if names.len() > self.core.cfg.max_subscriptions {
            let msg = format!("at most {} subscription names per module", self.core.cfg.max_subscriptions);
            return self.error(ctx, Code::TooManySubscriptions, &msg, rid.as_ref());
        }
        let filter = match SubscriptionFilter::new(names.iter(), projects.clone().unwrap_or_default()) {
            Ok(f) => f,
            Err(e) => return self.error(ctx, Code::InvalidSubscription, &e.to_string(), rid.as_ref()),
        };
        if let Some(since) = since {
            return self.resume(ctx, filter, (names, projects), since, rid);
        }
        let fut = self.slot.addr.send(SetFilter(filter)).into_actor(self).map(move |res, act, ctx| match res {
            Ok(Ok(())) => {
                act.names = names;
                act.projects = projects;
                act.reply(ctx, frames::subscribed(&act.names, act.projects.as_deref(), rid.as_ref()));
            }
            Ok(Err(e)) => act.bus_error(ctx, &e, rid.as_ref()),
            Err(_) => act.error(ctx, Code::ModuleUnavailable, "the module's proxy is not running", rid.as_ref()),
        });
        ctx.wait(fut);
    }

    fn on_publish(&mut self, ctx: &mut ws::WebsocketContext<Self>, e: OutgoingEvent, rid: Option<Value>) {
        let checked = (|| {
            check_event_namespace(self.name(), &e.kind)
                .map_err(|b| ApiError::new(actix_web::http::StatusCode::FORBIDDEN, Code::from(&b), b.to_string()))?;
            let project_id = e.project_id.as_deref().map(|p| parse_uuid("project_id", p)).transpose()?;
            let node_id = e.node_id.as_deref().map(|n| parse_uuid("node_id", n)).transpose()?;
            let dispatcher = self.core.state.dispatcher()?.clone();
            Ok::<_, ApiError>((project_id, node_id, dispatcher))
        })();
        let (project_id, node_id, dispatcher) = match checked {
            Ok(c) => c,
            Err(err) => return self.api_error(ctx, &err, rid.as_ref()),
        };
        let event = NewEvent {
            kind: e.kind,
            server: e.server.unwrap_or_else(|| self.core.state.default_server.clone()),
            project_id,
            node_id,
            timestamp: chrono::Utc::now(),
            correlation_id: e.correlation_id,
            source: Source::Module,
            data: e.data,
        };
        let stats = self.slot.stats.clone();
        ctx.spawn(dispatcher.send(Publish(event)).into_actor(self).map(move |res, act, ctx| match res {
            Ok(Ok(())) => {
                stats.events_published.fetch_add(1, Ordering::Relaxed);
                if rid.is_some() {
                    act.reply(ctx, with_request_id(json!({"type": "published"}), rid.as_ref()));
                }
            }
            Ok(Err(e)) => act.error(ctx, Code::PublishFailed, &e.to_string(), rid.as_ref()),
            Err(_) => act.error(ctx, Code::EventsUnavailable, "the dispatcher is not running", rid.as_ref()),
        }));
    }
}

impl Actor for ModuleSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.open(ctx, self.core.state.settings.modules.session_mailbox);
        tracing::info!(module = %self.slot.name, session = %self.core.id, "Module connected.");
        match self.core.state.dispatcher.clone() {
            // The welcome names the event position (`resume.rs`), so it waits for it.
            Some(d) => ctx.wait(d.send(GetPosition).into_actor(self).map(|p, act, ctx| act.welcome(ctx, p.ok()))),
            None => self.welcome(ctx, None),
        }
        // `wait`: queued messages (sent by the proxy during Attach) come after the welcome,
        // and no frame of the module is handled before it is attached.
        let attach = Attach { session: self.core.id, link: ctx.address().recipient() };
        let fut = self.slot.addr.send(attach).into_actor(self).map(|res, act, ctx| {
            if !matches!(res, Ok(Ok(()))) {
                act.error(ctx, Code::ModuleUnavailable, "the module could not be attached", None);
                act.close(ctx, ws::CloseCode::Other(4004), "module unavailable");
            }
        });
        ctx.wait(fut);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.unregister();
        self.settle();
        tracing::info!(module = %self.slot.name, session = %self.core.id, "Module disconnected.");
        Running::Stop
    }
}

impl Handler<ToModule> for ModuleSession {
    type Result = ();
    fn handle(&mut self, msg: ToModule, ctx: &mut Self::Context) {
        match msg {
            ToModule::Message(m, seq) => self.send_tagged(ctx, Class::Keep, proto::message(&m).into(), Some(seq)),
            ToModule::Reply(m, seq, rid) => {
                let frame = json!({"type": "reply", "id": m.correlation_id, "message": m});
                self.send_tagged(ctx, Class::Keep, with_request_id(frame, rid.as_ref()).into(), Some(seq))
            }
            ToModule::Event(d) if self.replayed(&d.event) => {}
            ToModule::Event(d) => self.send(ctx, Class::of(d.event.priority), d.json),
            ToModule::Replaced { deleted: true } => self.close(ctx, ws::CloseCode::Other(4004), "module deleted"),
            ToModule::Replaced { deleted: false } => {
                self.close(ctx, ws::CloseCode::Other(4009), "replaced by a new connection")
            }
        }
    }
}

impl Handler<Shutdown> for ModuleSession {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.shutdown(ctx);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ModuleSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.on_message(msg, ctx);
    }
}

impl Socket for ModuleSession {
    fn writer(&mut self) -> &mut Writer {
        &mut self.core.out
    }

    fn pumped(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.slot.stats.session_depth.store(self.core.out.queue.len() as u64, Ordering::Relaxed);
        self.confirm_written(ctx);
    }
}

impl Session for ModuleSession {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn on_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let (rid, frame) = proto::parse(text);
        let rid = rid.as_ref();
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return self.frame_error(ctx, &e),
        };
        match frame {
            ModuleFrame::Ping => self.reply(ctx, frames::pong(rid)),
            ModuleFrame::Send { message } => {
                let m = self.build(message, None, None);
                self.route(ctx, m, rid)
            }
            ModuleFrame::Broadcast { message } => {
                let m = self.build(message, Some("*"), None);
                self.route(ctx, m, rid)
            }
            ModuleFrame::Reply { message } => {
                if message.correlation_id.is_none() {
                    let e = BusError::Invalid("a reply needs message.correlation_id (the request's id)".into());
                    return self.bus_error(ctx, &e, rid);
                }
                let m = self.build(message, None, Some("reply"));
                self.route(ctx, m, rid)
            }
            ModuleFrame::Request { message, timeout_ms } => self.on_request(ctx, message, timeout_ms, rid.cloned()),
            ModuleFrame::Subscribe { subscriptions, projects, since } => {
                self.on_subscribe(ctx, subscriptions, projects, since, rid.cloned())
            }
            ModuleFrame::Unsubscribe { subscriptions } => {
                let names: Vec<String> = self.names.iter().filter(|n| !subscriptions.contains(n)).cloned().collect();
                self.apply_filter(ctx, names, self.projects.clone(), None, rid.cloned());
            }
            ModuleFrame::Publish { event } => self.on_publish(ctx, event, rid.cloned()),
            ModuleFrame::NodeAction { action, project_id, node_id, server } => {
                self.on_node_action(ctx, &action, &project_id, &node_id, server, rid.cloned())
            }
            ModuleFrame::ProjectAction { action, project_id, server } => {
                self.on_project_action(ctx, &action, &project_id, server, rid.cloned())
            }
            ModuleFrame::NodeStatus { project_id, node_id, server } => {
                self.on_node_status(ctx, &project_id, &node_id, server, rid.cloned())
            }
            ModuleFrame::RequestTopology { project_id, server } => {
                self.on_topology(ctx, project_id, server, rid.cloned())
            }
            ModuleFrame::NetworkSummary => {
                let modules = self.core.state.modules.clone();
                let rid = rid.cloned();
                let fut = async move { modules.network_summary().await };
                ctx.spawn(fut.into_actor(self).map(move |s, act, ctx| {
                    act.reply(ctx, with_request_id(json!({"type": "summary", "summary": s}), rid.as_ref()));
                }));
            }
        }
    }

    fn pushed(&mut self, pushed: &Pushed, before: Missed) {
        if let Pushed::Shed = pushed {
            // LOW/NORMAL events shed for this module (it is told with a `missed` frame).
            let shed = self.core.out.queue.missed().total().saturating_sub(before.total());
            self.slot.stats.dead_lettered.fetch_add(shed, Ordering::Relaxed);
        }
    }

    fn overflowed(&mut self) {
        // The message that did not fit, like every one buffered, goes back to the offline
        // queue when the session ends.
        self.slot.stats.error("closed with 4008: the module did not read its messages");
        tracing::warn!(module = %self.slot.name, queued = self.core.out.queue.len(), "Closing a module that does not read.");
    }

    fn beat(&mut self, silence: Duration) {
        if silence < Duration::from_millis(self.core.cfg.heartbeat_interval_ms) {
            self.slot.stats.seen();
        }
    }
}

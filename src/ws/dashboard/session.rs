//! `WsSession`: one actor per dashboard connection. It owns the client's subscription
//! (one dispatcher subscriber, its filter rebuilt on every subscribe/unsubscribe) and the
//! caller's `SessionPrincipal` (checked before actions, applied to subscriptions,
//! topology and actions). The rest is the shared `Core` (`ws/session.rs`): the heartbeat,
//! the action rate limit, and the `Writer` (`writer.rs`): frames are handed to the socket
//! only while fewer than `unflushed_bytes` wait in the HTTP writer, the rest wait in the
//! bounded `Outbound` buffer, which sheds LOW then NORMAL events (counted in the WebSocket
//! stats); the session closes with 4008 when a frame that may not be shed does not fit.
//! Registered in `started`, unregistered in `stopping`; the registry holds only a
//! `Recipient<Shutdown>`.

use actix::prelude::*;
use actix_web::web;
use actix_web_actors::ws;
use bytes::Bytes;
use gns3_central_actors::connector::RunNodeAction;
use gns3_central_actors::dispatcher::{
    GetPosition, Inbox, InboxReady, SubscribeWithReplay, SubscriberId, Subscription, SubscriptionFilter, Unsubscribe,
    UpdateSubscription,
};
use gns3_central_actors::events::Event;
use gns3_central_actors::gns3::NodeAction;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use uuid::Uuid;

use super::protocol::{self, ClientFrame};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::ws::frames::{self, ActionTarget};
use crate::ws::outbound::{Class, Missed, Pushed};
use crate::ws::replay::send_replay;
use crate::ws::session::{merge_names, Core, Session};
use crate::ws::topology::send_topology;
use crate::ws::writer::{Socket, Writer};
use crate::ws::{SessionPrincipal, Shutdown};

pub struct WsSession {
    core: Core,
    principal: SessionPrincipal,
    names: Vec<String>,
    projects: Option<Vec<Uuid>>,
    sub: Option<SubscriberId>,
    /// Where the dispatcher puts this session's events (made at the first subscribe, kept
    /// for the session's life).
    inbox: Option<Arc<Inbox>>,
    /// Live events up to this (epoch, seq) were sent in the replay: dropped when they
    /// arrive. The epoch matters: it can change while the session lives (a reconciliation
    /// after a Redis outage, docs/events.md), and the new epoch's seqs start again.
    replayed_to: Option<(String, u64)>,
}

impl WsSession {
    pub fn new(state: web::Data<AppState>, principal: SessionPrincipal, flushed: Arc<crate::ws::pipe::Meter>) -> Self {
        Self {
            core: Core::new(state, flushed),
            principal,
            names: Vec::new(),
            projects: None,
            sub: None,
            inbox: None,
            replayed_to: None,
        }
    }

    fn welcome(&mut self, ctx: &mut ws::WebsocketContext<Self>, epoch: Option<String>, last_seq: Option<u64>) {
        let c = &self.core.cfg;
        let frame = json!({
            "type": "welcome",
            "session_id": self.core.id,
            "epoch": epoch,
            "last_seq": last_seq,
            "events_enabled": self.core.state.dispatcher.is_some(),
            "default_server": self.core.state.default_server,
            "principal": self.principal,
            "limits": {
                "max_frame_bytes": c.max_frame_bytes,
                "max_subscriptions": c.max_subscriptions,
                "actions_per_second": c.actions_per_second,
                "action_burst": c.action_burst,
                "queue_frames": c.queue_frames,
                "queue_bytes": c.queue_bytes,
                "max_replay": c.max_replay,
                "heartbeat_interval_ms": c.heartbeat_interval_ms,
                "client_timeout_ms": c.client_timeout_ms,
            },
        });
        self.reply(ctx, frame.to_string());
    }

    fn parse_project(&self, raw: &str) -> Result<Uuid, ApiError> {
        let id = crate::error::parse_uuid("project_id", raw)?;
        if !self.principal.may_see(id) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                Code::Forbidden,
                format!("project {id} is not visible to {}", self.principal.name),
            ));
        }
        Ok(id)
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        names: Vec<String>,
        projects: Option<Vec<String>>,
        since: Option<String>,
        rid: Option<Value>,
    ) {
        let Some(dispatcher) = self.core.state.dispatcher.clone() else {
            return self.error(ctx, Code::EventsDisabled, "live events are off (--no-events)", rid.as_ref());
        };
        let merged = merge_names(&self.names, names);
        if merged.len() > self.core.cfg.max_subscriptions {
            let msg = format!("at most {} subscription names per session", self.core.cfg.max_subscriptions);
            return self.error(ctx, Code::TooManySubscriptions, &msg, rid.as_ref());
        }
        let projects = match projects {
            Some(list) => match list.iter().map(|p| self.parse_project(p)).collect::<Result<Vec<_>, _>>() {
                Ok(ids) => Some(ids),
                Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
            },
            None => {
                let allowed = self.principal.projects.as_ref().map(|p| p.iter().copied().collect());
                self.projects.clone().or(allowed)
            }
        };
        if projects.as_ref().is_some_and(|p| p.is_empty()) && self.principal.projects.is_some() {
            return self.error(ctx, Code::Forbidden, "no project is visible to this session", rid.as_ref());
        }
        let filter = match SubscriptionFilter::new(merged.iter(), projects.clone().unwrap_or_default()) {
            Ok(f) => f,
            Err(e) => return self.error(ctx, Code::InvalidSubscription, &e.to_string(), rid.as_ref()),
        };
        match (self.sub, &since) {
            (Some(id), None) => {
                let fut =
                    dispatcher.send(UpdateSubscription { id, filter }).into_actor(self).map(move |res, act, ctx| {
                        match res {
                            Ok(Ok(())) => {
                                act.names = merged;
                                act.projects = projects;
                                act.reply(ctx, frames::subscribed(&act.names, act.projects.as_deref(), rid.as_ref()));
                            }
                            Ok(Err(e)) => act.error(ctx, Code::SubscribeFailed, &e.to_string(), rid.as_ref()),
                            Err(_) => {
                                act.error(ctx, Code::EventsUnavailable, "the dispatcher is not running", rid.as_ref())
                            }
                        }
                    });
                ctx.wait(fut);
            }
            _ => {
                if let Some(old) = self.sub.take() {
                    dispatcher.do_send(Unsubscribe { id: old });
                }
                let inbox = self.inbox.get_or_insert_with(|| Inbox::new(ctx.address().recipient())).clone();
                let msg = SubscribeWithReplay {
                    label: format!("ws:{}", self.core.id),
                    filter,
                    sink: inbox.into(),
                    since: since.clone(),
                    max_replay: self.core.cfg.max_replay,
                    wait_ahead: self.core.resume_wait(),
                };
                // `wait` holds the mailbox: no live event is handled before the replay.
                let fut = dispatcher.send(msg).into_actor(self).map(move |res, act, ctx| match res {
                    Ok(Ok(sub)) => {
                        act.sub = Some(sub.id);
                        act.replayed_to = Some((sub.epoch.clone(), sub.latest_seq));
                        act.names = merged;
                        act.projects = projects;
                        act.reply(ctx, frames::subscribed(&act.names, act.projects.as_deref(), rid.as_ref()));
                        if since.is_some() {
                            act.send_replay(ctx, sub, rid);
                        }
                    }
                    Ok(Err(e)) => act.error(ctx, Code::SubscribeFailed, &e.to_string(), rid.as_ref()),
                    Err(_) => act.error(ctx, Code::EventsUnavailable, "the dispatcher is not running", rid.as_ref()),
                });
                ctx.wait(fut);
            }
        }
    }

    fn send_replay(&mut self, ctx: &mut ws::WebsocketContext<Self>, sub: Subscription, rid: Option<Value>) {
        let principal = self.principal.clone();
        send_replay(self, ctx, principal, (&sub.epoch, sub.latest_seq), sub.replay, rid);
    }

    fn on_unsubscribe(&mut self, ctx: &mut ws::WebsocketContext<Self>, names: Vec<String>, rid: Option<Value>) {
        let remaining: Vec<String> = self.names.iter().filter(|n| !names.contains(n)).cloned().collect();
        let (Some(dispatcher), Some(id)) = (self.core.state.dispatcher.clone(), self.sub) else {
            self.names = remaining;
            return self.reply(ctx, frames::subscribed(&self.names, self.projects.as_deref(), rid.as_ref()));
        };
        if remaining.is_empty() {
            dispatcher.do_send(Unsubscribe { id });
            self.sub = None;
            self.names.clear();
            return self.reply(ctx, frames::subscribed(&self.names, self.projects.as_deref(), rid.as_ref()));
        }
        let filter = match SubscriptionFilter::new(remaining.iter(), self.projects.clone().unwrap_or_default()) {
            Ok(f) => f,
            Err(e) => return self.error(ctx, Code::InvalidSubscription, &e.to_string(), rid.as_ref()),
        };
        let fut =
            dispatcher.send(UpdateSubscription { id, filter }).into_actor(self).map(move |res, act, ctx| match res {
                Ok(Ok(())) => {
                    act.names = remaining;
                    act.reply(ctx, frames::subscribed(&act.names, act.projects.as_deref(), rid.as_ref()));
                }
                Ok(Err(e)) => act.error(ctx, Code::SubscribeFailed, &e.to_string(), rid.as_ref()),
                Err(_) => act.error(ctx, Code::EventsUnavailable, "the dispatcher is not running", rid.as_ref()),
            });
        ctx.wait(fut);
    }

    fn on_node_action(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        action: &str,
        project: &str,
        node: &str,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let checked = (|| {
            let action: NodeAction =
                action.parse().map_err(|m: String| ApiError::bad_request(Code::InvalidAction, m))?;
            let node_id = crate::error::parse_uuid("node_id", node)?;
            let project_id = self.parse_project(project)?;
            let server = server.unwrap_or_else(|| self.core.state.default_server.clone());
            self.core.state.connector(&server)?;
            Ok::<_, ApiError>((action, project_id, node_id, server))
        })();
        let (action, project_id, node_id, server) = match checked {
            Ok(c) => c,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        if !self.principal.may_act() {
            let msg = format!("{} may not run node actions", self.principal.name);
            return self.error(ctx, Code::Forbidden, &msg, rid.as_ref());
        }
        if !self.take_action_token(ctx, "node actions", rid.as_ref()) {
            return;
        }
        self.core.counters().actions.fetch_add(1, Ordering::Relaxed);
        let state = self.core.state.clone();
        let srv = server.clone();
        let who = (self.principal.name.clone(), self.principal.role.as_str());
        let fut = async move {
            let outcome = state.ask(&srv, RunNodeAction { project_id, node_id, action }).await;
            state.audit.record(
                crate::observe::audit::AuditRecord::new(
                    &who.0,
                    who.1,
                    "websocket",
                    format!("node.{}", action.as_str()),
                )
                .target(&srv, Some(project_id), Some(node_id))
                .result(&outcome, |o| &o.correlation_id),
            );
            outcome
        };
        let target = ActionTarget { action, project_id, node_id: Some(node_id) };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let frame = frames::action_result(rid.as_ref(), &server, &target, &res, |o| &o.correlation_id);
            act.reply(ctx, frame);
        }));
    }

    fn on_topology(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        project: Option<String>,
        server: Option<String>,
        rid: Option<Value>,
    ) {
        let project_id = match project.as_deref().map(|p| self.parse_project(p)).transpose() {
            Ok(p) => p,
            Err(e) => return self.api_error(ctx, &e, rid.as_ref()),
        };
        send_topology(self, ctx, self.principal.clone(), server, project_id, rid);
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Room for bursts: the dispatcher retries a full mailbox, then dead-letters.
        self.open(ctx, 1024);
        tracing::debug!(session = %self.core.id, principal = %self.principal.name, "WebSocket session opened.");
        match self.core.state.dispatcher.clone() {
            Some(d) => {
                let fut = d.send(GetPosition).into_actor(self).map(|res, act, ctx| match res {
                    Ok(p) => act.welcome(ctx, Some(p.epoch), Some(p.last_seq)),
                    Err(_) => act.welcome(ctx, None, None),
                });
                ctx.wait(fut);
            }
            None => self.welcome(ctx, None, None),
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.unregister();
        if let (Some(d), Some(id)) = (&self.core.state.dispatcher, self.sub.take()) {
            d.do_send(Unsubscribe { id });
        }
        tracing::debug!(session = %self.core.id, "WebSocket session closed.");
        Running::Stop
    }
}

impl WsSession {
    /// One live event from the dispatcher.
    fn on_event(&mut self, ctx: &mut ws::WebsocketContext<Self>, event: &Event, json: Bytes) {
        if self.replayed_to.as_ref().is_some_and(|(epoch, seq)| event.seq <= *seq && event.epoch == *epoch) {
            return;
        }
        if event.project_id.is_some_and(|p| !self.principal.may_see(p)) {
            return;
        }
        self.send(ctx, Class::of(event.priority), json);
    }
}

impl Handler<InboxReady> for WsSession {
    type Result = ();

    fn handle(&mut self, _: InboxReady, ctx: &mut Self::Context) {
        let Some(inbox) = self.inbox.clone() else { return };
        for e in inbox.take() {
            self.on_event(ctx, &e.event, e.json);
        }
    }
}

impl Handler<Shutdown> for WsSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.shutdown(ctx);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.on_message(msg, ctx);
    }
}

impl Socket for WsSession {
    fn writer(&mut self) -> &mut Writer {
        &mut self.core.out
    }
}

impl Session for WsSession {
    fn core(&self) -> &Core {
        &self.core
    }

    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    fn on_text(&mut self, ctx: &mut ws::WebsocketContext<Self>, text: &str) {
        let (rid, frame) = protocol::parse(text);
        let rid = rid.as_ref();
        match frame {
            Err(e) => self.frame_error(ctx, &e),
            Ok(ClientFrame::Ping) => self.reply(ctx, frames::pong(rid)),
            Ok(ClientFrame::Subscribe { subscriptions, projects, since }) => {
                self.on_subscribe(ctx, subscriptions, projects, since, rid.cloned())
            }
            Ok(ClientFrame::Unsubscribe { subscriptions }) => self.on_unsubscribe(ctx, subscriptions, rid.cloned()),
            Ok(ClientFrame::NodeAction { action, project_id, node_id, server }) => {
                self.on_node_action(ctx, &action, &project_id, &node_id, server, rid.cloned())
            }
            Ok(ClientFrame::RequestTopology { project_id, server }) => {
                self.on_topology(ctx, project_id, server, rid.cloned())
            }
        }
    }

    fn pushed(&mut self, pushed: &Pushed, before: Missed) {
        let (c, q) = (self.core.counters(), &self.core.out.queue);
        if let Pushed::Shed = pushed {
            let after = q.missed();
            c.shed_low.fetch_add(after.low.saturating_sub(before.low), Ordering::Relaxed);
            c.shed_normal.fetch_add(after.normal.saturating_sub(before.normal), Ordering::Relaxed);
        }
        c.peak_queued_bytes.fetch_max(q.bytes() as u64, Ordering::Relaxed);
    }

    fn overflowed(&mut self) {
        let q = &self.core.out.queue;
        tracing::warn!(session = %self.core.id, queued = q.len(), bytes = q.bytes(), "Closing a slow WebSocket consumer.");
    }
}

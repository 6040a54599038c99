//! Modules: the NMS modules (monitoring, security, analysis...) that use gns3-central
//! through one simplified interface, and the bus between them (docs/modules.md).
//!
//! One `ModuleProxy` actor per registered module (here), supervised, on the bus's own
//! arbiter. It owns the module's inbox: bus messages routed to it (`Inbound`), its event
//! subscription with the dispatcher (`SetFilter`, kept across reconnects), the offline
//! queue (`offline.rs`: bounded, TTL) and its counters (`stats.rs`). A connected module
//! is a `Recipient<ToModule>` (`Attach`): a WebSocket session at the edge, or the inbox of
//! an in-process `ModuleHandle` (`handle.rs`).
//!
//! Isolation. Every hop is `try_send` on a bounded mailbox with a policy when full: a
//! sender finding the proxy's mailbox full gets `inbox_full` at once; a proxy finding its
//! module's link full dead-letters the message for that module only; events go through
//! the dispatcher, which retries a full proxy then dead-letters. Nothing waits for a
//! slow module, so one that stops reading, or whose handler panics, delays no other.
//!
//! `ModuleRegistry` (`registry.rs`) holds the proxies by name, routes (targeted,
//! broadcast, replies to pending requests) and authenticates module tokens (by hash).

pub mod config;
pub mod envelope;
pub mod error;
pub mod handle;
pub mod messages;
pub mod offline;
pub mod registry;
mod runner;
pub mod stats;
pub mod summary;

#[cfg(test)]
mod tests;

pub use config::{ModulesConfig, OfflinePolicy};
pub use envelope::{validate_module_name, BusMessage, BROADCAST};
pub use error::BusError;
pub use handle::{HandlerResult, ModuleContext, ModuleHandle};
pub use messages::*;
pub use registry::{AuthFailure, ModuleRegistry, ModuleSlot, Routed};
pub use stats::{BusDeadLetter, BusDeadLetters, BusDeadReason, ModuleKind, ModuleStats, ModuleStatus, StatsSnapshot};
pub use summary::NetworkSummary;

use actix::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

use self::offline::OfflineQueue;
use crate::dispatcher::{
    Deliver, Inbox, InboxReady, PriorityDispatcher, Subscribe, SubscriberId, SubscriptionFilter, Unsubscribe,
    UpdateSubscription,
};

pub struct ModuleProxy {
    name: Arc<str>,
    cfg: ModulesConfig,
    stats: Arc<ModuleStats>,
    dead: Arc<BusDeadLetters>,
    dispatcher: Option<Addr<PriorityDispatcher>>,
    link: Option<(Uuid, Recipient<ToModule>)>,
    offline: OfflineQueue,
    filter: SubscriptionFilter,
    sub: Option<SubscriberId>,
    /// Where the dispatcher puts this module's events (bounded by `inbox_capacity`).
    inbox: Option<Arc<Inbox>>,
    expiry: Option<SpawnHandle>,
    retired: bool,
}

impl ModuleProxy {
    pub fn new(
        name: &str,
        cfg: ModulesConfig,
        stats: Arc<ModuleStats>,
        dead: Arc<BusDeadLetters>,
        dispatcher: Option<Addr<PriorityDispatcher>>,
    ) -> Self {
        Self {
            name: Arc::from(name),
            offline: OfflineQueue::new(cfg.offline_queue),
            cfg,
            stats,
            dead,
            dispatcher,
            link: None,
            filter: SubscriptionFilter::default(),
            sub: None,
            inbox: None,
            expiry: None,
            retired: false,
        }
    }

    /// Hands a message to the connected module; false when the link is gone.
    fn forward(&mut self, msg: Arc<BusMessage>) -> bool {
        let Some((_, link)) = &self.link else { return false };
        match link.try_send(ToModule::Message(msg.clone())) {
            Ok(()) => {
                self.stats.delivered.fetch_add(1, Relaxed);
                true
            }
            Err(SendError::Full(_)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.stats.dead_lettered.fetch_add(1, Relaxed);
                self.dead.push(&self.name, BusDeadReason::SessionFull, Some(&msg), None);
                true
            }
            Err(SendError::Closed(_)) => false,
        }
    }

    fn queue_offline(&mut self, msg: Arc<BusMessage>, ctx: &mut Context<Self>) {
        if self.retired {
            return;
        }
        if msg.ttl == 0 {
            self.stats.expired.fetch_add(1, Relaxed);
            return;
        }
        let ttl = std::time::Duration::from_millis(msg.ttl);
        if let Some(old) = self.offline.push(msg, ttl, Instant::now()) {
            self.stats.dead_lettered.fetch_add(1, Relaxed);
            self.dead.push(&self.name, BusDeadReason::OfflineQueueFull, Some(&old), None);
        }
        self.stats.offline_depth.store(self.offline.len() as u64, Relaxed);
        self.arm_expiry(ctx);
    }

    /// One timer at the next expiry.
    fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        let Some(at) = self.offline.next_expiry() else { return };
        let delay = at.saturating_duration_since(Instant::now());
        self.expiry = Some(ctx.run_later(delay, |act, ctx| {
            act.expiry = None;
            let gone = act.offline.expire(Instant::now());
            act.stats.expired.fetch_add(gone.len() as u64, Relaxed);
            act.stats.offline_depth.store(act.offline.len() as u64, Relaxed);
            act.arm_expiry(ctx);
        }));
    }

    fn detach(&mut self) {
        self.link = None;
        self.stats.connected.store(false, Relaxed);
        self.stats.session_depth.store(0, Relaxed);
        if let (Some(d), Some(id)) = (&self.dispatcher, self.sub.take()) {
            d.do_send(Unsubscribe { id });
        }
    }

    /// Brings the dispatcher subscription in line with the filter and the connection.
    fn sync_subscription(&mut self, ctx: &mut Context<Self>) -> Option<ResponseActFuture<Self, Result<(), BusError>>> {
        let dispatcher = self.dispatcher.clone()?;
        let wanted = self.link.is_some() && !self.filter.is_empty();
        match (wanted, self.sub) {
            (false, Some(id)) => {
                self.sub = None;
                dispatcher.do_send(Unsubscribe { id });
                None
            }
            (false, None) => None,
            (true, Some(id)) => {
                let fut = dispatcher.send(UpdateSubscription { id, filter: self.filter.clone() });
                Some(Box::pin(fut.into_actor(self).map(|r, _, _| match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(BusError::Publish(e.to_string())),
                    Err(_) => Err(BusError::EventsDisabled),
                })))
            }
            (true, None) => {
                let msg = Subscribe {
                    label: format!("module:{}", self.name),
                    filter: self.filter.clone(),
                    sink: self
                        .inbox
                        .get_or_insert_with(|| Inbox::with_capacity(ctx.address().recipient(), self.cfg.inbox_capacity))
                        .clone()
                        .into(),
                };
                Some(Box::pin(dispatcher.send(msg).into_actor(self).map(|r, act, _| match r {
                    Ok(Ok(id)) => {
                        // Disconnected meanwhile: do not keep a subscriber nobody reads.
                        if act.link.is_none() {
                            if let Some(d) = &act.dispatcher {
                                d.do_send(Unsubscribe { id });
                            }
                        } else {
                            act.sub = Some(id);
                        }
                        Ok(())
                    }
                    Ok(Err(e)) => Err(BusError::Publish(e.to_string())),
                    Err(_) => Err(BusError::EventsDisabled),
                })))
            }
        }
    }
}

impl Actor for ModuleProxy {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.cfg.inbox_capacity);
        tracing::debug!(module = %self.name, "Module proxy started.");
    }
}

impl Supervised for ModuleProxy {
    /// A restart drops the connection (the module reconnects) and the dispatcher
    /// subscription; the offline queue, the filter and the counters are kept.
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!(module = %self.name, "Module proxy restarting.");
        if let Some((_, link)) = self.link.take() {
            let _ = link.try_send(ToModule::Replaced { deleted: false });
        }
        self.detach();
        self.expiry = None;
    }
}

impl Handler<Inbound> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, Inbound(msg): Inbound, ctx: &mut Self::Context) {
        if !self.forward(msg.clone()) {
            if self.link.is_some() {
                self.detach();
            }
            self.queue_offline(msg, ctx);
        }
    }
}

impl Handler<InboxReady> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, _: InboxReady, _: &mut Self::Context) {
        let Some(inbox) = self.inbox.clone() else { return };
        for e in inbox.take() {
            self.on_event(Deliver { event: e.event, json: e.json });
        }
    }
}

impl ModuleProxy {
    fn on_event(&mut self, ev: Deliver) {
        let Some((_, link)) = &self.link else { return };
        let id = ev.event.id.clone();
        match link.try_send(ToModule::Event(ev)) {
            Ok(()) => {
                self.stats.events_delivered.fetch_add(1, Relaxed);
            }
            Err(SendError::Full(_)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.stats.dead_lettered.fetch_add(1, Relaxed);
                self.dead.push(&self.name, BusDeadReason::SessionFull, None, Some(&id));
            }
            Err(SendError::Closed(_)) => self.detach(),
        }
    }
}

impl Handler<Attach> for ModuleProxy {
    type Result = ResponseActFuture<Self, Result<(), BusError>>;
    fn handle(&mut self, msg: Attach, ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Box::pin(actix::fut::ready(Err(BusError::UnknownModule(self.name.to_string()))));
        }
        if let Some((old, link)) = self.link.take() {
            tracing::info!(module = %self.name, old = %old, new = %msg.session, "Module connection replaced.");
            let _ = link.try_send(ToModule::Replaced { deleted: false });
        }
        self.link = Some((msg.session, msg.link));
        self.stats.connected.store(true, Relaxed);
        self.stats.connections.fetch_add(1, Relaxed);
        self.stats.seen();
        let (waiting, expired) = self.offline.drain(Instant::now());
        self.stats.expired.fetch_add(expired.len() as u64, Relaxed);
        self.stats.offline_depth.store(0, Relaxed);
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        if !waiting.is_empty() {
            tracing::debug!(module = %self.name, count = waiting.len(), "Delivering queued messages.");
        }
        for m in waiting {
            if !self.forward(m.clone()) {
                self.detach();
                self.queue_offline(m, ctx);
            }
        }
        match self.sync_subscription(ctx) {
            Some(fut) => fut,
            None => Box::pin(actix::fut::ready(Ok(()))),
        }
    }
}

impl Handler<Detach> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, msg: Detach, _: &mut Self::Context) {
        if self.link.as_ref().is_some_and(|(s, _)| *s == msg.session) {
            self.detach();
            self.stats.seen();
            tracing::debug!(module = %self.name, "Module disconnected.");
        }
    }
}

impl Handler<SetFilter> for ModuleProxy {
    type Result = ResponseActFuture<Self, Result<(), BusError>>;
    fn handle(&mut self, SetFilter(filter): SetFilter, ctx: &mut Self::Context) -> Self::Result {
        self.stats.set_subscriptions(filter.names().to_vec());
        self.filter = filter;
        match self.sync_subscription(ctx) {
            Some(fut) => fut,
            None if self.dispatcher.is_none() && !self.filter.is_empty() => {
                Box::pin(actix::fut::ready(Err(BusError::EventsDisabled)))
            }
            None => Box::pin(actix::fut::ready(Ok(()))),
        }
    }
}

impl Handler<Retire> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        self.retired = true;
        let (waiting, _) = self.offline.drain(Instant::now());
        for m in waiting {
            self.stats.dead_lettered.fetch_add(1, Relaxed);
            self.dead.push(&self.name, BusDeadReason::ModuleDeleted, Some(&m), None);
        }
        if let Some((_, link)) = &self.link {
            let _ = link.try_send(ToModule::Replaced { deleted: true });
        }
        self.detach();
        ctx.stop();
    }
}

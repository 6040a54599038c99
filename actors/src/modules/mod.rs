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
//! Accounting (`delivery.rs`, `link.rs`): a bus message stays the proxy's until its
//! connection confirms it reached the module; what a closed connection did not deliver
//! goes back to the front of the offline queue, so every message sent to a module is
//! received, refused, dead-lettered (with a reason) or still waiting.
//!
//! `ModuleRegistry` (`registry.rs`) holds the proxies by name, routes (targeted,
//! broadcast, replies to pending requests) and authenticates module tokens (by hash).

pub mod config;
mod delivery;
pub mod envelope;
pub mod error;
pub mod handle;
mod link;
pub mod messages;
pub mod offline;
pub mod registry;
mod runner;
pub mod shared;
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
pub use stats::{
    BusDeadLetter, BusDeadLetters, BusDeadReason, MessageAccount, ModuleKind, ModuleStats, ModuleStatus, StatsSnapshot,
};
pub use summary::NetworkSummary;

use actix::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use self::link::Link;
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
    link: Option<Link>,
    /// Closed connections that have not yet said what they delivered (`Detach`).
    closing: Vec<Link>,
    /// The sequence number of the last message handed to a connection.
    seq: u64,
    offline: OfflineQueue,
    filter: SubscriptionFilter,
    sub: Option<SubscriberId>,
    /// Where the dispatcher puts this module's events (bounded by `inbox_capacity`).
    inbox: Option<Arc<Inbox>>,
    expiry: Option<SpawnHandle>,
    retired: bool,
    /// On the shared bus (`shared/proxy.rs`): the messages are in Redis.
    bus: Option<shared::proxy::OnBus>,
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
            closing: Vec::new(),
            seq: 0,
            filter: SubscriptionFilter::default(),
            sub: None,
            inbox: None,
            expiry: None,
            retired: false,
            bus: None,
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
    /// subscription; the offline queue (with what the connection had not delivered in
    /// front), the filter and the counters are kept.
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(module = %self.name, "Module proxy restarting.");
        if let Some(link) = &self.link {
            let _ = link.to.try_send(ToModule::Replaced { deleted: false });
        }
        self.unlink();
        if self.bus.is_some() {
            return self.bus_drop_links(true, ctx);
        }
        self.expiry = None;
        self.requeue_all(ctx);
        self.arm_expiry(ctx);
    }
}

impl Handler<Inbound> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, Inbound(msg): Inbound, ctx: &mut Self::Context) {
        self.stats.in_mailbox.fetch_sub(1, Relaxed);
        if let Err(msg) = self.forward(msg) {
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
        let Some(link) = &self.link else { return };
        let id = ev.event.id.clone();
        match link.to.try_send(ToModule::Event(ev)) {
            Ok(()) => {
                self.stats.events_delivered.fetch_add(1, Relaxed);
            }
            Err(SendError::Full(_)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.stats.dead_lettered.fetch_add(1, Relaxed);
                self.dead.push(&self.name, BusDeadReason::SessionFull, None, Some(&id));
            }
            Err(SendError::Closed(_)) => self.unlink(),
        }
    }
}

impl Handler<Attach> for ModuleProxy {
    type Result = ResponseActFuture<Self, Result<(), BusError>>;
    fn handle(&mut self, msg: Attach, ctx: &mut Self::Context) -> Self::Result {
        if self.retired {
            return Box::pin(actix::fut::ready(Err(BusError::UnknownModule(self.name.to_string()))));
        }
        if let Some(old) = self.link.take() {
            tracing::info!(module = %self.name, old = %old.session, new = %msg.session, "Module connection replaced.");
            let _ = old.to.try_send(ToModule::Replaced { deleted: false });
            if old.in_flight() > 0 {
                self.closing.push(old);
            }
        }
        self.link = Some(Link::new(msg.session, msg.link));
        self.stats.connected.store(true, Relaxed);
        self.stats.connections.fetch_add(1, Relaxed);
        self.stats.seen();
        // Queued messages first (unless a closed connection has yet to give some back).
        self.flush_offline(ctx);
        self.bus_attached(ctx);
        match self.sync_subscription(ctx) {
            Some(fut) => fut,
            None => Box::pin(actix::fut::ready(Ok(()))),
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
        if let Some(link) = &self.link {
            let _ = link.to.try_send(ToModule::Replaced { deleted: true });
        }
        self.unlink();
        if self.bus.is_some() {
            // What waited is dead-lettered in Redis by the deletion (`shared/scripts.rs`).
            self.bus_drop_links(false, ctx);
            return ctx.stop();
        }
        self.requeue_all(ctx);
        let (waiting, _) = self.offline.drain(std::time::Instant::now());
        for m in waiting {
            self.dead_message(BusDeadReason::ModuleDeleted, &m);
        }
        self.gauges();
        ctx.stop();
    }
}

//! How a `ModuleProxy` gets bus messages to its module and accounts for every one
//! (docs/modules.md#status): handed to the connection (`Link`, kept in flight until the
//! connection confirms it with `Delivered`), queued offline, or dead-lettered with a
//! reason. When a connection goes (`Detach`), what it did not confirm goes back to the
//! front of the offline queue, in order; while a closed connection has not yet said what
//! it delivered, messages for a new one wait in the queue behind it, so the order per
//! sender holds across reconnects.

use actix::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::envelope::BusMessage;
use super::link::Link;
use super::messages::{Delivered, Detach, HandReply, ToModule};
use super::stats::BusDeadReason;
use super::ModuleProxy;
use crate::dispatcher::Unsubscribe;

impl ModuleProxy {
    /// Gives up a bus message for this module, with its dead letter.
    pub(super) fn dead_message(&self, reason: BusDeadReason, msg: &BusMessage) {
        if reason != BusDeadReason::Expired {
            self.stats.dead_lettered.fetch_add(1, Relaxed);
        }
        self.stats.msg_dead.fetch_add(1, Relaxed);
        self.dead.push(&self.name, reason, Some(msg), None);
    }

    /// Publishes the offline and in-flight depths.
    pub(super) fn gauges(&self) {
        self.stats.offline_depth.store(self.offline.len() as u64, Relaxed);
        let flying = self.link.iter().chain(&self.closing).map(Link::in_flight).sum::<usize>();
        self.stats.in_flight.store(flying as u64, Relaxed);
    }

    /// Hands a message to the connected module; gives it back when there is no
    /// connection to hand it to now (none, closed, or waiting behind a closed one).
    pub(super) fn forward(&mut self, msg: Arc<BusMessage>) -> Result<(), Arc<BusMessage>> {
        self.hand_as(msg, ToModule::Message)
    }

    /// `forward`, as the frame `frame` makes of the message and its sequence number.
    fn hand_as(
        &mut self,
        msg: Arc<BusMessage>,
        frame: impl FnOnce(Arc<BusMessage>, u64) -> ToModule,
    ) -> Result<(), Arc<BusMessage>> {
        if !self.closing.is_empty() {
            return Err(msg);
        }
        let Some(link) = &mut self.link else { return Err(msg) };
        self.seq += 1;
        match link.to.try_send(frame(msg.clone(), self.seq)) {
            Ok(()) => {
                link.handed(self.seq, msg);
                self.gauges();
                Ok(())
            }
            Err(SendError::Full(_)) => {
                self.stats.failed.fetch_add(1, Relaxed);
                self.dead_message(BusDeadReason::SessionFull, &msg);
                Ok(())
            }
            Err(SendError::Closed(_)) => {
                self.unlink();
                Err(msg)
            }
        }
    }

    /// The current connection is gone: messages wait offline, events stop. Unless it
    /// holds nothing, it is kept until its `Detach` says what it delivered.
    pub(super) fn unlink(&mut self) {
        if let Some(link) = self.link.take() {
            if link.in_flight() > 0 {
                self.closing.push(link);
            }
        }
        self.stats.connected.store(false, Relaxed);
        self.stats.session_depth.store(0, Relaxed);
        if let (Some(d), Some(id)) = (&self.dispatcher, self.sub.take()) {
            d.do_send(Unsubscribe { id });
        }
    }

    pub(super) fn queue_offline(&mut self, msg: Arc<BusMessage>, ctx: &mut Context<Self>) {
        if self.retired {
            return self.dead_message(BusDeadReason::ModuleDeleted, &msg);
        }
        if msg.ttl == 0 {
            self.stats.expired.fetch_add(1, Relaxed);
            return self.dead_message(BusDeadReason::Expired, &msg);
        }
        let ttl = Duration::from_millis(msg.ttl);
        if let Some(old) = self.offline.push(msg, ttl, Instant::now()) {
            self.dead_message(BusDeadReason::OfflineQueueFull, &old);
        }
        self.gauges();
        self.arm_expiry(ctx);
    }

    /// Puts what a closed connection did not deliver back at the front of the offline
    /// queue (those that do not fit are dead-lettered, the oldest first).
    fn requeue(&mut self, msgs: Vec<Arc<BusMessage>>, ctx: &mut Context<Self>) {
        if msgs.is_empty() {
            return;
        }
        let (keep, gone): (Vec<_>, Vec<_>) = msgs.into_iter().partition(|m| m.ttl > 0 && !self.retired);
        for m in gone {
            self.queue_offline(m, ctx);
        }
        tracing::debug!(module = %self.name, count = keep.len(), "Undelivered messages back in the offline queue.");
        for m in self.offline.push_front(keep, Instant::now()) {
            self.dead_message(BusDeadReason::OfflineQueueFull, &m);
        }
        self.gauges();
        self.arm_expiry(ctx);
    }

    /// Hands the offline queue to the connection, oldest first (unless it must wait
    /// behind a closed one); what cannot be handed goes back to the front.
    pub(super) fn flush_offline(&mut self, ctx: &mut Context<Self>) {
        if self.link.is_none() || !self.closing.is_empty() || self.offline.is_empty() {
            return;
        }
        let (waiting, expired) = self.offline.drain(Instant::now());
        self.stats.expired.fetch_add(expired.len() as u64, Relaxed);
        for m in &expired {
            self.dead_message(BusDeadReason::Expired, m);
        }
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        tracing::debug!(module = %self.name, count = waiting.len(), "Delivering queued messages.");
        let mut back = Vec::new();
        for m in waiting {
            if !back.is_empty() {
                back.push(m);
            } else if let Err(m) = self.forward(m) {
                back.push(m);
            }
        }
        self.requeue(back, ctx);
        self.gauges();
    }

    /// One timer at the next expiry.
    pub(super) fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        let Some(at) = self.offline.next_expiry() else { return };
        let delay = at.saturating_duration_since(Instant::now());
        self.expiry = Some(ctx.run_later(delay, |act, ctx| {
            act.expiry = None;
            let gone = act.offline.expire(Instant::now());
            act.stats.expired.fetch_add(gone.len() as u64, Relaxed);
            for m in &gone {
                act.dead_message(BusDeadReason::Expired, m);
            }
            act.gauges();
            act.arm_expiry(ctx);
        }));
    }

    fn link_of(&mut self, session: uuid::Uuid) -> Option<&mut Link> {
        self.link.iter_mut().chain(self.closing.iter_mut()).find(|l| l.session == session)
    }

    /// Counts what `session` confirms up to `upto` as delivered (the last one as
    /// dead-lettered when its handler `failed`).
    fn confirm(&mut self, session: uuid::Uuid, upto: u64, failed: bool, ctx: &mut Context<Self>) {
        let Some(link) = self.link_of(session) else { return };
        let done = link.confirm(upto);
        if self.bus.is_some() {
            // Counted in Redis (the sequence numbers are take numbers there).
            if !done.is_empty() {
                self.bus_confirm(upto, failed, ctx);
            }
            return self.gauges();
        }
        for (seq, m) in &done {
            if failed && *seq == upto {
                self.dead_message(BusDeadReason::HandlerFailed, m);
            } else {
                self.stats.delivered.fetch_add(1, Relaxed);
            }
        }
        self.gauges();
    }

    /// Every connection's messages back to the offline queue (a proxy restarting).
    pub(super) fn requeue_all(&mut self, ctx: &mut Context<Self>) {
        let mut links: Vec<Link> = self.closing.drain(..).collect();
        links.extend(self.link.take());
        for l in links {
            self.requeue(l.unconfirmed(), ctx);
        }
    }
}

impl Handler<Delivered> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, msg: Delivered, ctx: &mut Self::Context) {
        self.confirm(msg.session, msg.upto, msg.failed, ctx);
    }
}

impl Handler<Detach> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, msg: Detach, ctx: &mut Self::Context) {
        if let Some(upto) = msg.delivered_upto {
            self.confirm(msg.session, upto, false, ctx);
        }
        let ours = self.link.iter().chain(&self.closing).any(|l| l.session == msg.session);
        if self.link.as_ref().is_some_and(|l| l.session == msg.session) {
            self.unlink();
            self.stats.seen();
            tracing::debug!(module = %self.name, "Module disconnected.");
        }
        if self.bus.is_some() {
            // What it did not confirm is in Redis's held list: given back there (a
            // connection already let go, holding nothing, has nothing to give back).
            self.closing.retain(|l| l.session != msg.session);
            if ours {
                self.bus_detached(ctx);
            }
            return self.gauges();
        }
        if let Some(i) = self.closing.iter().position(|l| l.session == msg.session) {
            let link = self.closing.remove(i);
            self.requeue(link.unconfirmed(), ctx);
        }
        self.flush_offline(ctx);
        self.gauges();
    }
}

impl Handler<HandReply> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, r: HandReply, ctx: &mut Self::Context) {
        // Sent to this module now; received once its connection confirms the frame.
        self.stats.msg_sent.fetch_add(1, Relaxed);
        let mut msg = Arc::new(r.msg);
        if r.session.is_some() && self.link.as_ref().map(|l| l.session) == r.session {
            let rid = r.request_id;
            match self.hand_as(msg, move |m, seq| ToModule::Reply(m, seq, rid)) {
                Ok(()) => return,
                Err(m) => msg = m,
            }
        }
        // Its session is gone: a plain message (it carries its correlation_id), first.
        self.requeue(vec![msg], ctx);
        self.flush_offline(ctx);
    }
}

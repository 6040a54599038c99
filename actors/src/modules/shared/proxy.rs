//! A `ModuleProxy` on the shared bus. Its module's messages wait in Redis
//! (`{p}:bus:q:{name}`); the proxy of the instance holding the module's consumer lease
//! (`{p}:bus:at:{name}`, taken when the module connects here, renewed every third of the
//! lease) takes them in windows — at most `window()` handed to the connection and not
//! yet confirmed — when woken (a `wake` notice, the connection, a confirmation, and every
//! `tick` as a net). What it takes is kept in `{p}:bus:held:{name}` until the connection
//! confirms it (`Delivered`: the `confirm` script counts it received) or goes away
//! (`Detach`: the `leave` script gives what it did not confirm back to the front of the
//! queue). So a message is never only in this process: a SIGKILL leaves it in `held`,
//! and the next holder gives it back and delivers it again (at least once).
//!
//! A connection of the same module on another instance takes the lease over (notice
//! `attached`): this proxy closes its connection as a replaced one (4009) and gives back;
//! the new holder waits (at most a lease) until it has, so the order per sender holds.

use actix::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::scripts::Lua;
use super::{int, strings, SharedBus};
use crate::modules::envelope::BusMessage;
use crate::modules::messages::ToModule;
use crate::modules::ModuleProxy;

/// Messages wait for the module: take.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Wake;

/// Another instance may hold the module's lease now: if so (and only then: a lease Redis
/// lost is taken again), close the connection, give back.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct LeaseLost;

pub(crate) struct OnBus {
    pub bus: Arc<SharedBus>,
    /// This instance holds the lease (as far as it knows).
    holding: bool,
    taking: bool,
    /// Woken while a take was on its way.
    again: bool,
    /// The queue may hold more (the last take got all it asked for, or a wake came): a
    /// confirmation takes again. Otherwise only a wake, the connection or the tick do.
    more: bool,
    /// The highest take number handed to a connection.
    handed: u64,
    /// The highest take number the connections confirmed, and the highest Redis counted.
    to_confirm: u64,
    confirmed: u64,
    /// The last take number a connection reported failed (its handler): a confirmation
    /// sent again names it too, so it is still dead-lettered (`handler_failed`).
    to_fail: u64,
    /// A take's outcome is unknown (Redis failed): give back what it may have taken.
    dirty: bool,
    /// A `leave` on its way or not answered by Redis: what the gone connections held
    /// may still be in `held` (ours). No take until it is done (a connection here would
    /// confirm higher take numbers, counting those received, never delivered); done
    /// again before the next attach and every tick.
    leave_due: bool,
    ticking: bool,
}

impl OnBus {
    pub fn new(bus: Arc<SharedBus>) -> Self {
        Self {
            bus,
            holding: false,
            taking: false,
            again: false,
            more: true,
            handed: 0,
            to_confirm: 0,
            confirmed: 0,
            to_fail: 0,
            dirty: false,
            leave_due: false,
            ticking: false,
        }
    }
}

impl ModuleProxy {
    pub(crate) fn on_shared_bus(mut self, bus: Option<Arc<SharedBus>>) -> Self {
        self.bus = bus.map(OnBus::new);
        self
    }

    /// Messages handed and not confirmed at most (paced by confirmations).
    fn window(&self) -> usize {
        (self.cfg.session_mailbox / 2).clamp(1, 256)
    }

    fn tick_every(&self) -> Duration {
        self.bus.as_ref().map_or(Duration::from_secs(1), |b| (b.bus.cfg.lease / 3).min(Duration::from_secs(1)))
    }

    /// A connection was attached: take the lease, then messages.
    pub(crate) fn bus_attached(&mut self, ctx: &mut Context<Self>) {
        let every = self.tick_every();
        let Some(on) = &mut self.bus else { return };
        if !on.ticking {
            on.ticking = true;
            ctx.run_interval(every, |act, ctx| act.bus_tick(ctx));
        }
        if on.leave_due {
            // Before the lease and the takes (the uplink keeps the order): what the
            // previous connections held comes back to the queue first, in order.
            self.leave(false, ctx);
        }
        self.take_lease(ctx);
    }

    fn take_lease(&mut self, ctx: &mut Context<Self>) {
        let Some(on) = &self.bus else { return };
        let mut c = on.bus.script(Lua::Attach);
        c.arg(&*self.name).arg(on.bus.instance()).arg(on.bus.cfg.lease.as_millis() as u64);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(|r, act, ctx| {
            let Some(on) = &mut act.bus else { return };
            match r {
                Ok(v) if super::text(&v) == "-" => {}
                Ok(_) => {
                    on.holding = true;
                    act.take(ctx);
                }
                Err(e) => {
                    on.holding = false;
                    act.stats.error(e.to_string());
                }
            }
        }));
    }

    /// Takes what the window allows, when this instance may.
    pub(crate) fn take(&mut self, ctx: &mut Context<Self>) {
        let window = self.window();
        let in_flight = self.link.as_ref().map_or(0, |l| l.in_flight());
        let free = self.closing.is_empty() && self.link.is_some();
        let Some(on) = &mut self.bus else { return };
        if !on.holding || !free || on.leave_due {
            return;
        }
        if on.taking {
            on.again = true;
            return;
        }
        let n = window.saturating_sub(in_flight);
        if n == 0 {
            return;
        }
        if on.dirty {
            on.dirty = false;
            let mut u = on.bus.script(Lua::Untake);
            u.arg(&*self.name).arg(on.bus.instance()).arg(on.handed);
            on.bus.fire(u);
        }
        on.taking = true;
        on.again = false;
        let mut c = on.bus.script(Lua::Take);
        c.arg(&*self.name).arg(on.bus.instance()).arg(n).arg(self.cfg.dead_letter_capacity);
        c.arg(on.bus.cfg.lease.as_millis() as u64);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| act.taken(r, n, ctx)));
    }

    fn taken(&mut self, r: Result<redis::Value, crate::modules::BusError>, asked: usize, ctx: &mut Context<Self>) {
        let Some(on) = &mut self.bus else { return };
        on.taking = false;
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                on.dirty = true;
                self.stats.error(e.to_string());
                return;
            }
        };
        let items = strings(&v);
        match items.first().map(String::as_str) {
            Some("ok") => {}
            // Not registered (deleted, or Redis lost its data): the mirror retires the
            // module or gives the registration back; the tick takes again.
            Some("gone") => return,
            Some("wait") => {
                let ms = items.get(1).and_then(|m| m.parse::<u64>().ok()).unwrap_or(100).clamp(10, 60_000);
                ctx.run_later(Duration::from_millis(ms + 10), |act, ctx| act.take(ctx));
                return;
            }
            _ => return self.lease_lost(ctx),
        }
        let got = items.len() - 1;
        if let Some(on) = &mut self.bus {
            on.more = got == asked;
        }
        let mut stopped = false;
        for item in items.into_iter().skip(1) {
            if stopped {
                break;
            }
            let Some((t, rest)) = item.split_once(' ') else { continue };
            let Some((_, json)) = rest.split_once(' ') else { continue };
            let Ok(t) = t.parse::<u64>() else { continue };
            let msg = match serde_json::from_str::<BusMessage>(json) {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    tracing::warn!(module = %self.name, error = %e, "Module bus: unreadable message in Redis; skipped.");
                    continue;
                }
            };
            if self.hand(msg, t, ctx) {
                if let Some(on) = &mut self.bus {
                    on.handed = on.handed.max(t);
                }
            } else {
                stopped = true;
            }
        }
        let Some(on) = &mut self.bus else { return };
        if stopped {
            // Not handed (the connection is gone or full): back to the front of the queue.
            let mut u = on.bus.script(Lua::Untake);
            u.arg(&*self.name).arg(on.bus.instance()).arg(on.handed);
            on.bus.fire(u);
            return;
        }
        if on.again || got == asked {
            self.take(ctx);
        }
    }

    /// Hands a taken message to the connection; `false` when it cannot take it now.
    fn hand(&mut self, msg: Arc<BusMessage>, seq: u64, ctx: &mut Context<Self>) -> bool {
        let Some(link) = &mut self.link else { return false };
        match link.to.try_send(ToModule::Message(msg.clone(), seq)) {
            Ok(()) => {
                link.handed(seq, msg);
                self.gauges();
                true
            }
            Err(SendError::Full(_)) => false,
            Err(SendError::Closed(_)) => {
                self.bus_unlink(ctx);
                false
            }
        }
    }

    /// The connection confirmed up to take number `upto`.
    pub(crate) fn bus_confirm(&mut self, upto: u64, failed: bool, ctx: &mut Context<Self>) {
        let Some(on) = &mut self.bus else { return };
        on.to_confirm = on.to_confirm.max(upto);
        if failed {
            on.to_fail = upto;
        }
        self.send_confirm(upto, if failed { upto } else { 0 }, ctx);
    }

    /// `failed`: the take number whose handler failed (0: none).
    fn send_confirm(&mut self, upto: u64, failed: u64, ctx: &mut Context<Self>) {
        let Some(on) = &self.bus else { return };
        let mut c = on.bus.script(Lua::Confirm);
        c.arg(&*self.name).arg(on.bus.instance()).arg(upto).arg(failed);
        c.arg(self.cfg.dead_letter_capacity);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(move |r, act, ctx| {
            let Some(on) = &mut act.bus else { return };
            if r.is_ok() {
                on.confirmed = on.confirmed.max(upto);
                if on.more {
                    act.take(ctx);
                }
            }
        }));
    }

    /// A connection is gone (after its last confirmation): once no closed one is left,
    /// what they held goes back to the queue; the lease is given up unless a connection
    /// remains.
    pub(crate) fn bus_detached(&mut self, ctx: &mut Context<Self>) {
        if !self.closing.is_empty() {
            return;
        }
        let release = self.link.is_none();
        let Some(on) = &mut self.bus else { return };
        if release {
            on.holding = false;
        }
        self.leave(release, ctx);
    }

    /// The `leave` script; not answered, it is due again (`leave_due`): otherwise what
    /// the connections held would stay in `held` — a later connection here confirming
    /// higher take numbers would count it received, never delivered.
    fn leave(&mut self, release: bool, ctx: &mut Context<Self>) {
        let Some(on) = &mut self.bus else { return };
        on.leave_due = true;
        let mut c = on.bus.script(Lua::Leave);
        c.arg(&*self.name).arg(on.bus.instance()).arg(if release { "1" } else { "0" });
        c.arg(self.cfg.offline_queue).arg(self.cfg.dead_letter_capacity);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(|r, act, ctx| match r {
            Ok(_) => {
                if let Some(on) = &mut act.bus {
                    on.leave_due = false;
                }
                act.take(ctx)
            }
            Err(e) => act.stats.error(e.to_string()),
        }));
    }

    /// Another instance took the lease: close the connection as replaced.
    pub(crate) fn lease_lost(&mut self, ctx: &mut Context<Self>) {
        let Some(on) = &mut self.bus else { return };
        on.holding = false;
        if let Some(link) = &self.link {
            tracing::info!(module = %self.name, "Module connected on another instance; closing this connection.");
            let _ = link.to.try_send(ToModule::Replaced { deleted: false });
        }
        self.bus_unlink(ctx);
    }

    /// `unlink`, and when no connection is left to say what it delivered, give back now.
    fn bus_unlink(&mut self, ctx: &mut Context<Self>) {
        let had = self.link.is_some();
        self.unlink();
        if had && self.closing.is_empty() {
            self.bus_detached(ctx);
        }
    }

    /// Every `tick_every`: renew the lease (or take it again when Redis lost it, during an
    /// outage or a failover: the connection stays; only another holder replaces it), resend a
    /// confirmation Redis did not get, look at the queue.
    fn bus_tick(&mut self, ctx: &mut Context<Self>) {
        let busy = self.link.is_some() || !self.closing.is_empty();
        let Some(on) = &mut self.bus else { return };
        if on.leave_due && self.closing.is_empty() {
            // Not taking meanwhile: what is held is only the gone connections'.
            let release = self.link.is_none();
            self.leave(release, ctx);
        }
        let Some(on) = &mut self.bus else { return };
        if !busy {
            return;
        }
        if on.to_confirm > on.confirmed {
            let upto = on.to_confirm;
            let failed = if on.to_fail > on.confirmed { on.to_fail } else { 0 };
            self.send_confirm(upto, failed, ctx);
        }
        let Some(on) = &mut self.bus else { return };
        if !on.holding {
            if self.link.is_some() {
                self.take_lease(ctx);
            }
            return;
        }
        let mut c = on.bus.script(Lua::Renew);
        c.arg(&*self.name).arg(on.bus.instance()).arg(on.bus.cfg.lease.as_millis() as u64);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(|r, act, ctx| match r {
            Ok(v) if int(&v) == 0 => act.lease_lost(ctx),
            // Not registered (see `taken`): nothing to take now.
            Ok(v) if int(&v) == 3 => {}
            Ok(v) => {
                if int(&v) == 2 {
                    tracing::warn!(module = %act.name, "Module bus: Redis had lost this instance's lease; taken again.");
                }
                act.take(ctx)
            }
            Err(_) => {}
        }));
    }

    /// Restart or retirement: the connections go, Redis keeps the messages.
    pub(crate) fn bus_drop_links(&mut self, release: bool, ctx: &mut Context<Self>) {
        self.closing.clear();
        self.link = None;
        self.stats.connected.store(false, Relaxed);
        if release {
            self.bus_detached(ctx);
        }
    }
}

impl Handler<Wake> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        if let Some(on) = &mut self.bus {
            on.more = true;
        }
        self.take(ctx);
    }
}

impl Handler<LeaseLost> for ModuleProxy {
    type Result = ();
    /// Checked with Redis first: the notice may be older than this instance's own attach.
    fn handle(&mut self, _: LeaseLost, ctx: &mut Self::Context) {
        let Some(on) = &self.bus else { return };
        let mut c = on.bus.script(Lua::Renew);
        c.arg(&*self.name).arg(on.bus.instance()).arg(on.bus.cfg.lease.as_millis() as u64);
        let fut = on.bus.call(c);
        ctx.spawn(fut.into_actor(self).map(|r, act, ctx| {
            if matches!(r, Ok(v) if int(&v) == 0) {
                act.lease_lost(ctx);
            }
        }));
    }
}

/// Shutdown: whether the proxy's connections are all gone and settled (`Detach`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub(crate) struct Settled;

impl Handler<Settled> for ModuleProxy {
    type Result = bool;
    fn handle(&mut self, _: Settled, _: &mut Self::Context) -> bool {
        self.link.is_none() && self.closing.is_empty()
    }
}

/// Shutdown, after the wait: what connections still hold goes back now, the lease is
/// given up.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Release;

impl Handler<Release> for ModuleProxy {
    type Result = ();
    fn handle(&mut self, _: Release, ctx: &mut Self::Context) {
        if let Some(link) = &self.link {
            let _ = link.to.try_send(ToModule::Replaced { deleted: false });
        }
        self.bus_drop_links(true, ctx);
    }
}

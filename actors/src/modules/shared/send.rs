//! Sending on the shared bus: `ModuleRegistry::send`, the one way to send whose answer is
//! the outcome in both modes (this instance's bus: `route`, ready at once). In shared mode
//! a message for a module of the shared bus is pushed into the uplink synchronously, in
//! call order (so the order per sender holds), and the `send` or `broadcast` script
//! decides as `route` does locally: unknown module, built-in target, offline with
//! `refuse` or `ttl: 0`, inbox full (the queue of a connected module at
//! `modules.inbox_capacity`), else queued. Modules local to this instance (in-process,
//! built-in) are reached as before.

use futures_util::future::{join_all, BoxFuture};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::scripts::Lua;
use super::{int, strings};
use crate::modules::config::OfflinePolicy;
use crate::modules::envelope::BusMessage;
use crate::modules::error::BusError;
use crate::modules::registry::{ModuleRegistry, ModuleSlot, Routed};
use crate::modules::stats::ModuleKind;

fn ready<T: Send + 'static>(v: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(v))
}

impl ModuleRegistry {
    /// Whether a message goes through Redis (shared mode): anything but a message for a
    /// module local to this instance (in-process, built-in).
    pub(in crate::modules) fn needs_bus(&self, msg: &BusMessage) -> bool {
        msg.is_broadcast() || self.get(&msg.to).is_none_or(|s| s.shared)
    }

    /// Counts a bus-wide counter: in Redis in shared mode, else here.
    pub(in crate::modules) fn count(&self, name: &str, local: &AtomicU64) {
        match &self.shared {
            Some(bus) => {
                let mut c = redis::cmd("HINCRBY");
                c.arg(bus.key("counters")).arg(name).arg(1);
                bus.fire(c);
            }
            None => {
                local.fetch_add(1, Relaxed);
            }
        }
    }

    /// Sends a message and answers what became of it (errors as `route`'s, and
    /// `bus_unavailable` in shared mode when Redis does not answer). The message is
    /// handed on before this returns; only the answer is awaited.
    pub fn send(&self, msg: BusMessage) -> BoxFuture<'static, Result<Routed, BusError>> {
        self.send_inner(msg, 0)
    }

    pub(in crate::modules) fn send_request(
        &self,
        msg: BusMessage,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Routed, BusError>> {
        self.send_inner(msg, timeout.as_millis().max(1) as u64)
    }

    fn send_inner(&self, msg: BusMessage, request_ms: u64) -> BoxFuture<'static, Result<Routed, BusError>> {
        let Some(bus) = self.shared.clone() else { return ready(self.route(msg)) };
        if let Err(e) = msg.validate() {
            return ready(Err(e));
        }
        if !self.needs_bus(&msg) {
            return ready(self.route(msg));
        }
        if let Some(done) = self.complete_request(&msg) {
            let mut c = bus.script(Lua::CountReply);
            c.arg(&msg.to).arg(&msg.from);
            bus.fire(c);
            return ready(done);
        }
        let json = match serde_json::to_string(&msg) {
            Ok(j) => j,
            Err(e) => return ready(Err(BusError::Invalid(e.to_string()))),
        };
        let cfg = &self.cfg;
        let refuse = if cfg.offline_policy == OfflinePolicy::Refuse { "1" } else { "0" };
        if msg.is_broadcast() {
            if msg.reply_to.is_some() {
                return ready(Err(BusError::Invalid("a request needs one target module, not '*'".into())));
            }
            let local = self.broadcast_local(&msg);
            let mut c = bus.script(Lua::Broadcast);
            c.arg(&msg.from).arg("").arg(json).arg(msg.ttl).arg(cfg.inbox_capacity).arg(cfg.offline_queue);
            c.arg(refuse).arg(cfg.dead_letter_capacity);
            let answer = bus.call(c);
            return Box::pin(async move {
                let v = answer.await?;
                let mut out = strings(&v).into_iter();
                let accepted = out.next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
                let mut refused = local.refused;
                refused.extend(out);
                Ok(Routed { accepted: local.accepted + accepted, refused })
            });
        }
        // Redis keeps a request at least as long as its requester waits: the requester's
        // timer starts only when this send is answered (after the round trip, and a `WAIT`
        // with replicas), so a reply in between is still handed to it, not queued as a
        // late one. Past the timer, a reply is late either way.
        let keep_ms = if request_ms > 0 { request_ms + bus.cfg.timeout.as_millis() as u64 } else { 0 };
        let mut c = bus.script(Lua::Send);
        c.arg(&msg.from).arg(&msg.to).arg(json).arg(msg.ttl).arg(cfg.inbox_capacity).arg(cfg.offline_queue);
        c.arg(refuse).arg(cfg.dead_letter_capacity).arg(keep_ms).arg(bus.instance()).arg(&msg.id);
        c.arg(msg.correlation_id.as_deref().unwrap_or(""));
        let answer = bus.call(c);
        let to = msg.to;
        Box::pin(async move {
            let v = answer.await?;
            match strings(&v).first().map(String::as_str) {
                Some("ok" | "replied") => Ok(Routed { accepted: 1, refused: vec![] }),
                Some("offline") => Err(BusError::Offline(to)),
                Some("full") => Err(BusError::InboxFull(to)),
                Some("unknown") => Err(BusError::UnknownModule(to)),
                other => {
                    Err(BusError::BusUnavailable(format!("unexpected answer from Redis: {other:?} ({})", int(&v))))
                }
            }
        })
    }

    /// The in-process modules of this instance that a broadcast reaches here.
    fn broadcast_local(&self, msg: &BusMessage) -> Routed {
        let targets: Vec<Arc<ModuleSlot>> =
            self.read().values().filter(|s| s.name != msg.from && s.kind == ModuleKind::InProcess).cloned().collect();
        let shared = Arc::new(msg.clone());
        let mut out = Routed::default();
        for t in targets {
            match self.deliver(&t, shared.clone()) {
                Ok(()) => out.accepted += 1,
                Err(_) => out.refused.push(t.name.clone()),
            }
        }
        out
    }
}

impl ModuleRegistry {
    /// Shutdown (shared mode): waits, at most `wait`, until the connections of this
    /// instance's modules have ended and given back what they held; gives back for those
    /// that have not; then waits until Redis has all of it (the uplink is in order: a
    /// `PING` answered after them). So another instance takes the modules over at once,
    /// without waiting for the leases to expire.
    pub async fn release_shared(&self, wait: Duration) {
        let Some(bus) = self.shared.clone() else { return };
        let deadline = tokio::time::Instant::now() + wait;
        let mut busy: Vec<Arc<ModuleSlot>> = self.read().values().filter(|s| s.shared).cloned().collect();
        while !busy.is_empty() && tokio::time::Instant::now() < deadline {
            let answers = join_all(busy.iter().map(|s| s.addr.send(super::proxy::Settled))).await;
            busy = busy.into_iter().zip(answers).filter(|(_, a)| !matches!(a, Ok(true))).map(|(s, _)| s).collect();
            if !busy.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        for s in &busy {
            let _ = s.addr.send(super::proxy::Release).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(bus.cfg.timeout);
        match tokio::time::timeout(left, bus.call(redis::cmd("PING"))).await {
            Ok(Ok(_)) => tracing::info!(given_back = busy.len(), "Module bus: consumer leases released."),
            _ => tracing::warn!("Module bus: Redis unreachable at shutdown; the leases will expire by themselves."),
        }
    }
}

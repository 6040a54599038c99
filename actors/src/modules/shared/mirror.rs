//! The mirror of the shared registrations: every instance keeps a `ModuleSlot` (and its
//! proxy) per remote module of `{p}:bus:reg`, so routing and authentication stay
//! synchronous. It is loaded when the notice channel `{p}:bus:ctl` is (re)subscribed,
//! follows the notices, and is compared with Redis every `resync` (notices can be lost;
//! the comparison also sweeps expired messages of modules nobody holds). A name the
//! mirror lacks is looked up once in Redis before it is refused (`ensure`): a module
//! registered on another instance may connect here before the notice arrives.
//!
//! Redis that lost its data (restarted empty: no `{p}:bus:epoch`) gets the
//! registrations back from the mirror of the first instance that sees it, so tokens keep
//! working; queues and accounts are gone with the data.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;
use uuid::Uuid;

use super::proxy::{LeaseLost, Wake};
use super::scripts::Lua;
use super::{int, parse_notice, strings, text, Notice, SharedBus};
use crate::connector::backoff::Backoff;
use crate::modules::envelope::{validate_module_name, BusMessage};
use crate::modules::error::BusError;
use crate::modules::registry::{AuthFailure, ModuleRegistry, ModuleSlot};
use crate::modules::stats::ModuleKind;

/// A registration as `{p}:bus:reg` holds it (the token's SHA-256 in hex, never the token).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub digest: String,
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Starts the uplink and the mirror on the registry's arbiter.
pub(crate) fn start(reg: &Arc<ModuleRegistry>) {
    let Some(bus) = reg.shared.clone() else { return };
    if let Some(up) = bus.uplink_task() {
        reg.arbiter.spawn(up);
    }
    reg.arbiter.spawn(follow(Arc::downgrade(reg), bus));
}

async fn follow(weak: Weak<ModuleRegistry>, bus: Arc<SharedBus>) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5), 0.2);
    let channel = bus.key("ctl");
    let t = bus.cfg.timeout;
    loop {
        let sub = async {
            let mut ps = tokio::time::timeout(t, bus.link.pubsub())
                .await
                .map_err(|_| format!("Redis did not answer within {t:?}"))?
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(t, ps.subscribe(&channel))
                .await
                .map_err(|_| format!("Redis did not answer within {t:?}"))?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(ps)
        };
        let ps = match sub.await {
            Ok(ps) => ps,
            Err(e) => {
                tracing::debug!(error = %e, "Module bus: cannot follow the notices yet.");
                tokio::time::sleep(backoff.next_delay()).await;
                if weak.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        match weak.upgrade() {
            Some(reg) => reg.resync().await,
            None => return,
        }
        let mut messages = ps.into_on_message();
        let mut tick = tokio::time::interval(bus.cfg.resync);
        tick.tick().await;
        loop {
            tokio::select! {
                m = messages.next() => {
                    let Some(m) = m else { break };
                    let Some(reg) = weak.upgrade() else { return };
                    let payload = String::from_utf8_lossy(m.get_payload_bytes()).into_owned();
                    reg.on_notice(&payload).await;
                }
                _ = tick.tick() => {
                    let Some(reg) = weak.upgrade() else { return };
                    reg.resync().await;
                    reg.sweep();
                }
            }
        }
        tracing::warn!("Module bus: the notice channel closed; following it again.");
    }
}

impl ModuleRegistry {
    /// Registers a remote module: in shared mode in Redis (a name taken on any instance
    /// is refused, `module_exists`), then in the mirror; else as `register`.
    pub async fn register_remote(&self, name: &str, digest: [u8; 32]) -> Result<Arc<ModuleSlot>, BusError> {
        let Some(bus) = self.shared.clone() else { return self.register(name, ModuleKind::Remote, Some(digest)) };
        validate_module_name(name)?;
        if self.get(name).is_some() {
            return Err(BusError::AlreadyRegistered(name.to_owned()));
        }
        let entry = Entry { id: Uuid::new_v4(), created_at: Utc::now(), digest: hex(&digest) };
        let json = serde_json::to_string(&entry).map_err(|e| BusError::Invalid(e.to_string()))?;
        let mut c = bus.script(Lua::Register);
        c.arg(name).arg(json).arg(self.cfg.max_modules);
        match text(&bus.call(c).await?).as_str() {
            "ok" => {}
            "exists" => return Err(BusError::AlreadyRegistered(name.to_owned())),
            "too_many" => return Err(BusError::TooManyModules(self.cfg.max_modules)),
            other => return Err(BusError::BusUnavailable(format!("unexpected answer from Redis: {other}"))),
        }
        self.adopt(name, &entry).ok_or_else(|| BusError::AlreadyRegistered(name.to_owned()))
    }

    /// Unregisters a remote module (in Redis in shared mode: what waits for it is
    /// dead-lettered, every instance closes its connection). `false`: there was none.
    pub async fn remove_remote(&self, name: &str) -> Result<bool, BusError> {
        let Some(bus) = self.shared.clone() else { return Ok(self.remove(name).is_some()) };
        let mut c = bus.script(Lua::Delete);
        c.arg(name).arg(self.cfg.dead_letter_capacity);
        let n = int(&bus.call(c).await?);
        let here = self.get(name).is_some_and(|s| s.shared) && self.remove(name).is_some();
        Ok(n == 1 || here)
    }

    /// `authenticate`, looking the name up in Redis once when the mirror lacks it.
    pub async fn authenticate_shared(&self, name: &str, digest: &[u8; 32]) -> Result<Arc<ModuleSlot>, AuthFailure> {
        match self.authenticate(name, digest) {
            Err(AuthFailure::UnknownModule | AuthFailure::NotAModuleToken) if self.shared.is_some() => {
                match self.lookup(name).await {
                    Ok(_) => self.authenticate(name, digest),
                    Err(e) => Err(AuthFailure::BusUnavailable(e.to_string())),
                }
            }
            r => r,
        }
    }

    /// The slot of `name`, from Redis when the mirror lacks it (shared mode).
    pub async fn ensure(&self, name: &str) -> Option<Arc<ModuleSlot>> {
        self.lookup(name).await.ok().flatten()
    }

    /// `ensure`, saying when Redis could not be asked (`bus_unavailable`).
    pub async fn lookup(&self, name: &str) -> Result<Option<Arc<ModuleSlot>>, BusError> {
        if let Some(s) = self.get(name) {
            return Ok(Some(s));
        }
        let Some(bus) = self.shared.clone() else { return Ok(None) };
        if validate_module_name(name).is_err() {
            return Ok(None);
        }
        let mut c = redis::cmd("HGET");
        c.arg(bus.key("reg")).arg(name);
        let raw = text(&bus.call(c).await?);
        Ok(serde_json::from_str::<Entry>(&raw).ok().and_then(|entry| self.adopt(name, &entry)))
    }

    /// Puts a registration of Redis into the mirror (a re-registered name replaces the
    /// old slot); `None` when a module local to this instance has the name.
    fn adopt(&self, name: &str, entry: &Entry) -> Option<Arc<ModuleSlot>> {
        let bus = self.shared.clone()?;
        let Some(digest) = unhex(&entry.digest) else {
            tracing::warn!(module = %name, "Module bus: unreadable registration in Redis; ignored.");
            return None;
        };
        let mut slots = self.write();
        if let Some(s) = slots.get(name) {
            if !s.shared {
                tracing::warn!(module = %name, "Module bus: a local module has the name of a shared one; the shared one is not reachable here.");
                return None;
            }
            if s.id == entry.id {
                return Some(s.clone());
            }
            if let Some(old) = slots.remove(name) {
                old.addr.do_send(crate::modules::messages::Retire);
            }
        }
        let slot = self.new_slot(name, ModuleKind::Remote, Some(digest), entry.id, entry.created_at, Some(bus));
        slots.insert(name.to_owned(), slot.clone());
        tracing::info!(module = %name, "Module of the shared bus known here.");
        Some(slot)
    }

    /// Registrations of `modules.state_file` (start-up, shared mode): written to Redis
    /// unless the name is taken there (Redis wins), then mirrored.
    pub async fn seed(&self, name: &str, digest: [u8; 32], id: Uuid, created_at: DateTime<Utc>) {
        let Some(bus) = self.shared.clone() else { return };
        let entry = Entry { id, created_at, digest: hex(&digest) };
        let Ok(json) = serde_json::to_string(&entry) else { return };
        let mut c = bus.script(Lua::Register);
        c.arg(name).arg(json).arg(self.cfg.max_modules);
        match bus.call(c).await.map(|v| text(&v)) {
            Ok(r) if r == "ok" => {
                self.adopt(name, &entry);
            }
            Ok(_) => {
                self.ensure(name).await;
            }
            Err(e) => tracing::warn!(module = %name, error = %e, "Module bus: could not seed a registration."),
        }
    }

    /// Compares the mirror with Redis (and gives Redis back the registrations when it
    /// lost its data).
    pub(crate) async fn resync(&self) {
        let Some(bus) = self.shared.clone() else { return };
        let gen0 = self.gen.load(Relaxed);
        let mut all = redis::cmd("HGETALL");
        all.arg(bus.key("reg"));
        let mut epoch = redis::cmd("EXISTS");
        epoch.arg(bus.key("epoch"));
        let (all, epoch) = (bus.call(all), bus.call(epoch));
        let (Ok(all), Ok(epoch)) = (all.await, epoch.await) else { return };
        let flat = strings(&all);
        if flat.is_empty() && int(&epoch) == 0 {
            let mine: Vec<Arc<ModuleSlot>> = self.read().values().filter(|s| s.shared).cloned().collect();
            if !mine.is_empty() {
                tracing::warn!(
                    modules = mine.len(),
                    "Module bus: Redis lost the registrations; restoring them from this instance."
                );
            }
            for s in mine {
                if let Some(d) = s.digest {
                    self.seed(&s.name, d, s.id, s.created_at).await;
                }
            }
            return;
        }
        let mut names = HashSet::new();
        for pair in flat.chunks(2) {
            let [name, json] = pair else { continue };
            names.insert(name.clone());
            match serde_json::from_str::<Entry>(json) {
                Ok(entry) => {
                    self.adopt(name, &entry);
                }
                Err(e) => tracing::warn!(module = %name, error = %e, "Module bus: unreadable registration; ignored."),
            }
        }
        let gone: Vec<String> = self
            .read()
            .values()
            .filter(|s| s.shared && s.gen <= gen0 && !names.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        for name in gone {
            tracing::info!(module = %name, "Module bus: deleted on another instance.");
            self.remove(&name);
        }
    }

    /// Expired messages of the modules nobody holds (the holder drops them as it takes).
    pub(crate) fn sweep(&self) {
        let Some(bus) = self.shared.clone() else { return };
        let names: Vec<String> = self
            .read()
            .values()
            .filter(|s| s.shared && !s.stats.connected.load(Relaxed))
            .map(|s| s.name.clone())
            .collect();
        for name in names {
            let mut c = bus.script(Lua::Sweep);
            c.arg(name).arg(self.cfg.dead_letter_capacity);
            bus.fire(c);
        }
    }

    async fn on_notice(&self, payload: &str) {
        let Some(bus) = self.shared.clone() else { return };
        let me = bus.instance();
        match parse_notice(payload) {
            Some(Notice::Registered(name)) => {
                self.ensure(name).await;
            }
            Some(Notice::Deleted(name)) => {
                if self.get(name).is_some_and(|s| s.shared) {
                    self.remove(name);
                }
            }
            Some(Notice::Attached { name, by }) if by != me => {
                if let Some(s) = self.get(name).filter(|s| s.shared) {
                    s.addr.do_send(LeaseLost);
                }
            }
            Some(Notice::Wake { name, holder }) if holder == me => {
                if let Some(s) = self.get(name).filter(|s| s.shared) {
                    s.addr.do_send(Wake);
                }
            }
            Some(Notice::Reply { instance, json }) if instance == me => {
                match serde_json::from_str::<BusMessage>(json) {
                    Ok(msg) => self.reply_arrived(msg),
                    Err(e) => tracing::warn!(error = %e, "Module bus: unreadable reply notice; ignored."),
                }
            }
            Some(_) => {}
            None => tracing::warn!("Module bus: unreadable notice; ignored."),
        }
    }

    /// A reply to a request waiting here, from another instance: counted in the accounts
    /// here, once. One whose request timed out meanwhile is sent on as a plain message (a
    /// late reply, counted as any message).
    fn reply_arrived(&self, msg: BusMessage) {
        let Some(c) = msg.correlation_id.clone() else { return };
        let pending = {
            let mut table = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match table.get(&c) {
                Some(p) if p.requester == msg.to => table.remove(&c),
                _ => None,
            }
        };
        let (to, from) = (msg.to.clone(), msg.from.clone());
        let late = match pending {
            Some(p) => p.tx.send(msg).err(),
            None => Some(msg),
        };
        match (late, &self.shared) {
            (None, Some(bus)) => {
                // Handed to the request: counted once, here (not by the `send` script).
                let mut c = bus.script(Lua::CountReply);
                c.arg(&to).arg(&from);
                bus.fire(c);
            }
            (None, None) => {}
            (Some(msg), _) => {
                self.count("late_replies", &self.counters.late_replies);
                drop(self.send(msg));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_in_hex() {
        let d = [0xabu8; 32];
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }
}

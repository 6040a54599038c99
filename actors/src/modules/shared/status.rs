//! What the shared bus shows, from any instance: a module's status with its account
//! (`messages`) from Redis — `waiting` is its queue plus what its holder took and the
//! connection has not confirmed —, the bus's dead letters (`{p}:bus:dead`, with this
//! instance's own: events, sinks, in-process modules) and the bus counters
//! (`{p}:bus:counters` plus this instance's local traffic).

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::scripts::Lua;
use super::{strings, SharedBus};
use crate::modules::error::BusError;
use crate::modules::registry::{ModuleRegistry, ModuleSlot};
use crate::modules::stats::{BusDeadLetter, BusDeadReason, MessageAccount, ModuleStatus};

fn parse_pairs(flat: Vec<String>) -> HashMap<String, String> {
    flat.chunks(2)
        .filter_map(|p| match p {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

/// One dead letter as the scripts write it: `"<reason> <ms> <module> <envelope>"`.
pub(crate) fn parse_dead(s: &str) -> Option<BusDeadLetter> {
    let mut it = s.splitn(4, ' ');
    let reason: BusDeadReason = serde_json::from_value(json!(it.next()?)).ok()?;
    let ms: i64 = it.next()?.parse().ok()?;
    let module = it.next()?.to_owned();
    let message = serde_json::from_str(it.next()?).ok();
    Some(BusDeadLetter {
        module,
        reason,
        at: Utc.timestamp_millis_opt(ms).single()?,
        message,
        event_id: None,
        sink: None,
    })
}

impl ModuleRegistry {
    fn status_call(
        &self,
        bus: &SharedBus,
        name: &str,
    ) -> futures_util::future::BoxFuture<'static, Result<redis::Value, BusError>> {
        let mut c = bus.script(Lua::Status);
        c.arg(name);
        bus.call(c)
    }

    /// A slot's status, with its account from Redis when it is on the shared bus.
    fn overlay(slot: &ModuleSlot, v: &redis::Value) -> ModuleStatus {
        let mut st = slot.status();
        let h = parse_pairs(strings(v));
        let g = |k: &str| h.get(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let (q, held) = (g("#q"), g("#held"));
        let s = &mut st.stats;
        s.connected = h.get("#at").is_some_and(|a| !a.is_empty());
        s.sent = g("sent");
        s.delivered = g("received");
        s.expired = g("expired");
        s.failed += g("failed");
        s.dead_lettered += g("msg_dead").saturating_sub(g("expired"));
        s.connections = g("connections");
        s.mailbox_depth = q + held + slot.stats.session_depth.load(Relaxed);
        s.messages = MessageAccount {
            sent: g("msg_sent"),
            received: g("received"),
            refused: g("msg_refused"),
            dead_lettered: g("msg_dead"),
            waiting: q + held,
        };
        st
    }

    /// `GET /api/v2/modules/{name}`: `None` for an unknown module. Shared mode: the
    /// account from Redis (`bus_unavailable` when it does not answer).
    pub async fn status_of(&self, name: &str) -> Result<Option<ModuleStatus>, BusError> {
        let Some(bus) = self.shared.clone() else { return Ok(self.get(name).map(|s| s.status())) };
        let Some(slot) = self.lookup(name).await? else { return Ok(None) };
        if !slot.shared {
            return Ok(Some(slot.status()));
        }
        let v = self.status_call(&bus, name).await?;
        Ok(Some(Self::overlay(&slot, &v)))
    }

    /// `GET /api/v2/modules`: every module, by name, and how many are connected.
    pub async fn status_all(&self) -> Result<(usize, Vec<ModuleStatus>), BusError> {
        let Some(bus) = self.shared.clone() else { return Ok((self.connected_count(), self.list())) };
        let mut slots: Vec<Arc<ModuleSlot>> = self.read().values().cloned().collect();
        slots.sort_by(|a, b| a.name.cmp(&b.name));
        let calls: Vec<_> = slots.iter().map(|s| s.shared.then(|| self.status_call(&bus, &s.name))).collect();
        let mut out = Vec::with_capacity(slots.len());
        for (slot, call) in slots.iter().zip(calls) {
            out.push(match call {
                Some(c) => Self::overlay(slot, &c.await?),
                None => slot.status(),
            });
        }
        let connected = out.iter().filter(|m| m.stats.connected).count();
        Ok((connected, out))
    }

    /// `GET /api/v2/bus/dead-letters`: the newest `limit`, oldest first.
    pub async fn dead_letters_recent(&self, limit: usize) -> Result<Vec<BusDeadLetter>, BusError> {
        let local = self.dead_letters().recent(limit);
        let Some(bus) = self.shared.clone() else { return Ok(local) };
        let mut c = redis::cmd("LRANGE");
        c.arg(bus.key("dead")).arg(-(limit as i64)).arg(-1);
        let raw = strings(&bus.call(c).await?);
        let mut all: Vec<BusDeadLetter> = raw.iter().filter_map(|s| parse_dead(s)).collect();
        all.extend(local);
        all.sort_by_key(|d| d.at);
        let skip = all.len().saturating_sub(limit);
        Ok(all.split_off(skip))
    }

    /// `GET /api/v2/bus/stats`.
    pub async fn bus_stats(&self) -> Result<Value, BusError> {
        let c = &self.counters;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let Some(bus) = self.shared.clone() else {
            return Ok(json!({
                "modules": self.len(), "connected": self.connected_count(),
                "routed": l(&c.routed), "broadcasts": l(&c.broadcasts), "refused": l(&c.refused),
                "requests": l(&c.requests), "replies": l(&c.replies), "timeouts": l(&c.timeouts),
                "late_replies": l(&c.late_replies), "pending_requests": self.pending_requests(),
                "dead_letters": self.dead_letters().total(),
            }));
        };
        let mut h = redis::cmd("HGETALL");
        h.arg(bus.key("counters"));
        let shared = parse_pairs(strings(&bus.call(h).await?));
        let g = |k: &str| shared.get(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let (_, modules) = self.status_all().await?;
        Ok(json!({
            "modules": modules.len(), "connected": modules.iter().filter(|m| m.stats.connected).count(),
            "routed": g("routed") + l(&c.routed), "broadcasts": g("broadcasts") + l(&c.broadcasts),
            "refused": g("refused") + l(&c.refused), "requests": g("requests") + l(&c.requests),
            "replies": g("replies") + l(&c.replies), "timeouts": g("timeouts") + l(&c.timeouts),
            "late_replies": g("late_replies") + l(&c.late_replies), "pending_requests": self.pending_requests(),
            "dead_letters": g("dead_letters") + self.dead_letters().total(),
            "shared": {"instance": bus.instance(), "redis": bus.is_up()},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_parse_as_the_scripts_write_them() {
        let m = crate::modules::BusMessage::new("a", "b", "t.x", json!({"k": "v w"}));
        let line = format!("offline_queue_full 1700000000123 b {}", serde_json::to_string(&m).unwrap());
        let d = parse_dead(&line).unwrap();
        assert_eq!((d.module.as_str(), d.reason), ("b", BusDeadReason::OfflineQueueFull));
        assert_eq!(d.at.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(d.message.unwrap().payload, json!({"k": "v w"}));
        assert!(parse_dead("nonsense 1 b {}").is_none());
    }
}

//! `RedisHealth`: whether the cache may use Redis, and what to repair when Redis returns.
//! A plain struct the actor drives: a failed call starts an outage (logged once by the
//! actor), checks follow a capped exponential backoff, and every key written while Redis
//! was down is remembered as dirty.
//!
//! Why dirty keys: during an outage writes and events land in memory only, so the copy in
//! Redis (if it survived, e.g. a network cut rather than a restart) may be stale. Before
//! switching back, the actor deletes those keys in Redis; the next read misses and fetches
//! fresh data. When too many keys were touched to remember, every key of the cache is
//! deleted instead.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Keys and patterns to delete in Redis before using it again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    pub keys: BTreeSet<String>,
    /// `SCAN MATCH` patterns (a whole server invalidated).
    pub patterns: BTreeSet<String>,
    /// More was touched than could be remembered: delete every key of the cache.
    pub overflow: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.patterns.is_empty() && !self.overflow
    }

    fn merge(&mut self, other: Dirty) {
        self.keys.extend(other.keys);
        self.patterns.extend(other.patterns);
        self.overflow |= other.overflow;
    }
}

#[derive(Debug)]
pub struct RedisHealth {
    up: bool,
    down_since: Option<(Instant, DateTime<Utc>)>,
    probe_attempt: u32,
    probe_initial: Duration,
    probe_max: Duration,
    dirty: Dirty,
    max_dirty: usize,
    pub fallbacks: u64,
    pub fallback_ops: u64,
    pub recoveries: u64,
    pub errors: u64,
}

impl RedisHealth {
    pub fn new(probe_initial: Duration, probe_max: Duration, max_dirty: usize) -> Self {
        Self {
            up: true,
            down_since: None,
            probe_attempt: 0,
            probe_initial,
            probe_max: probe_max.max(probe_initial),
            dirty: Dirty::default(),
            max_dirty: max_dirty.max(1),
            fallbacks: 0,
            fallback_ops: 0,
            recoveries: 0,
            errors: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    pub fn down_since(&self) -> Option<DateTime<Utc>> {
        self.down_since.map(|(_, at)| at)
    }

    /// Records a call that found Redis unusable. `true` when this starts an outage: the
    /// caller logs it and schedules the first check.
    pub fn record_outage(&mut self, now: Instant) -> bool {
        self.errors += 1;
        if !self.up {
            return false;
        }
        self.up = false;
        self.down_since = Some((now, Utc::now()));
        self.probe_attempt = 0;
        self.fallbacks += 1;
        true
    }

    /// Redis answered with an error while up (it stays in use).
    pub fn record_error(&mut self) {
        self.errors += 1;
    }

    /// Redis is back and repaired; returns how long it was away.
    pub fn record_recovery(&mut self, now: Instant) -> Duration {
        let away = self.down_since.map(|(at, _)| now.saturating_duration_since(at)).unwrap_or_default();
        self.up = true;
        self.down_since = None;
        self.probe_attempt = 0;
        self.recoveries += 1;
        away
    }

    /// The delay before the next check: `initial * 2^n`, capped.
    pub fn next_probe_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.probe_attempt.min(31));
        self.probe_attempt = self.probe_attempt.saturating_add(1);
        self.probe_initial.saturating_mul(factor).min(self.probe_max)
    }

    /// An operation served by memory because Redis is down, touching `key` if it wrote.
    pub fn record_fallback(&mut self, written_key: Option<&str>) {
        self.fallback_ops += 1;
        if let Some(key) = written_key {
            self.mark_dirty(key);
        }
    }

    pub fn mark_dirty(&mut self, key: &str) {
        if self.dirty.overflow || self.dirty.keys.contains(key) {
            return;
        }
        if self.dirty.keys.len() >= self.max_dirty {
            self.dirty.keys.clear();
            self.dirty.patterns.clear();
            self.dirty.overflow = true;
            return;
        }
        self.dirty.keys.insert(key.to_owned());
    }

    pub fn mark_dirty_pattern(&mut self, pattern: &str) {
        if !self.dirty.overflow {
            self.dirty.patterns.insert(pattern.to_owned());
        }
    }

    /// The repairs to make now; `restore_dirty` puts them back if they fail.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    pub fn restore_dirty(&mut self, dirty: Dirty) {
        self.dirty.merge(dirty);
        if self.dirty.keys.len() > self.max_dirty {
            self.dirty.keys.clear();
            self.dirty.patterns.clear();
            self.dirty.overflow = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_outage_is_counted_once_and_checks_back_off() {
        let mut h = RedisHealth::new(ms(1000), ms(5000), 10);
        let t0 = Instant::now();
        assert!(h.record_outage(t0), "the first failure starts the outage");
        assert!(!h.record_outage(t0), "later failures of the same outage are not new ones");
        assert_eq!((h.fallbacks, h.errors), (1, 2));
        assert!(!h.is_up() && h.down_since().is_some());
        let delays: Vec<_> = (0..5).map(|_| h.next_probe_delay()).collect();
        assert_eq!(delays, [ms(1000), ms(2000), ms(4000), ms(5000), ms(5000)]);
        assert_eq!(h.record_recovery(t0 + ms(1500)), ms(1500));
        assert!(h.is_up() && h.down_since().is_none());
        assert_eq!(h.next_probe_delay(), ms(1000), "backoff starts over after a recovery");
    }

    #[test]
    fn dirty_keys_overflow_into_a_full_flush() {
        let mut h = RedisHealth::new(ms(10), ms(10), 2);
        h.record_fallback(Some("a"));
        h.record_fallback(Some("a"));
        h.record_fallback(None);
        h.mark_dirty_pattern("p:topo:s:*");
        assert_eq!(h.fallback_ops, 3);
        let d = h.take_dirty();
        assert_eq!(d.keys.len(), 1);
        assert_eq!(d.patterns.len(), 1);
        assert!(h.take_dirty().is_empty());
        h.restore_dirty(d);
        h.mark_dirty("b");
        h.mark_dirty("c");
        let d = h.take_dirty();
        assert!(d.overflow && d.keys.is_empty());
    }
}

//! `MemoryStore`: the in-memory backend, a map of entries that expire after their TTL.
//! Time comes from an injectable `Clock` so expiry is tested without sleeping.
//!
//! The map is bounded: inserting a new key when it is full first drops expired entries,
//! then evicts the entry closest to expiry (it is the one a TTL would drop next anyway).
//! That scan is O(n), paid only by inserts into a full map, which are rare here (one per
//! topology fetched from GNS3).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where "now" comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to (tests). Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start: Instant,
    offset_nanos: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        Self { start: Instant::now(), offset_nanos: Arc::new(AtomicU64::new(0)) }
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self.offset_nanos.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_add(nanos)));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let offset = Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst));
        self.start.checked_add(offset).unwrap_or(self.start)
    }
}

struct Slot<V> {
    value: V,
    expires_at: Instant,
}

/// A TTL map with a bounded number of entries.
pub struct MemoryStore<V> {
    map: HashMap<String, Slot<V>>,
    max_entries: usize,
    clock: Arc<dyn Clock>,
    evictions: u64,
}

impl<V> fmt::Debug for MemoryStore<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").field("entries", &self.map.len()).field("max_entries", &self.max_entries).finish()
    }
}

impl<V> MemoryStore<V> {
    pub fn new(max_entries: usize, clock: Arc<dyn Clock>) -> Self {
        Self { map: HashMap::new(), max_entries: max_entries.max(1), clock, evictions: 0 }
    }

    /// The live value of `key`; an expired one is dropped and reads as absent.
    pub fn get(&mut self, key: &str) -> Option<&V> {
        self.get_mut(key).map(|v| &*v)
    }

    /// As `get`, for changing the value in place (its expiry is kept).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let now = self.clock.now();
        if self.map.get(key).is_some_and(|s| s.expires_at <= now) {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key).map(|s| &mut s.value)
    }

    /// Stores `value` for `ttl`, replacing any previous value of `key`.
    pub fn insert(&mut self, key: String, value: V, ttl: Duration) {
        let now = self.clock.now();
        // A TTL too large for Instant (config caps it at a year) is a year.
        let expires_at =
            now.checked_add(ttl).or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(now);
        if !self.map.contains_key(&key) && self.map.len() >= self.max_entries {
            self.purge_expired();
            if self.map.len() >= self.max_entries {
                self.evict_soonest();
            }
        }
        self.map.insert(key, Slot { value, expires_at });
    }

    /// How long `key` has left, if it is live.
    pub fn remaining_ttl(&self, key: &str) -> Option<Duration> {
        let now = self.clock.now();
        self.map.get(key).and_then(|s| s.expires_at.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    pub fn remove(&mut self, key: &str) -> bool {
        self.map.remove(key).is_some()
    }

    /// Drops every key starting with `prefix`; returns how many.
    pub fn remove_prefix(&mut self, prefix: &str) -> usize {
        let before = self.map.len();
        self.map.retain(|k, _| !k.starts_with(prefix));
        before - self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Drops expired entries; returns how many.
    pub fn purge_expired(&mut self) -> usize {
        let now = self.clock.now();
        let before = self.map.len();
        self.map.retain(|_, s| s.expires_at > now);
        before - self.map.len()
    }

    /// Entries held, expired ones not yet purged included (`purge_expired` first for live).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Entries evicted because the map was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn evict_soonest(&mut self) {
        let victim = self.map.iter().min_by_key(|(_, s)| s.expires_at).map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.map.remove(&k);
            self.evictions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> (MemoryStore<u32>, ManualClock) {
        let clock = ManualClock::new();
        (MemoryStore::new(max, Arc::new(clock.clone())), clock)
    }

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn hit_then_miss_after_ttl() {
        let (mut m, clock) = store(10);
        assert!(m.get("a").is_none());
        m.insert("a".into(), 1, TTL);
        assert_eq!(m.get("a"), Some(&1));
        clock.advance(Duration::from_secs(29));
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.remaining_ttl("a"), Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert!(m.get("a").is_none(), "expired exactly at the TTL");
        assert!(m.is_empty(), "an expired entry is dropped when read");
    }

    #[test]
    fn in_place_change_keeps_the_expiry() {
        let (mut m, clock) = store(10);
        m.insert("a".into(), 1, TTL);
        clock.advance(Duration::from_secs(20));
        *m.get_mut("a").unwrap() = 2;
        clock.advance(Duration::from_secs(10));
        assert!(m.get("a").is_none());
    }

    #[test]
    fn full_store_evicts_the_entry_closest_to_expiry() {
        let (mut m, clock) = store(2);
        m.insert("old".into(), 1, TTL);
        clock.advance(Duration::from_secs(1));
        m.insert("new".into(), 2, TTL);
        m.insert("newest".into(), 3, TTL);
        assert_eq!(m.len(), 2);
        assert!(m.get("old").is_none());
        assert_eq!(m.evictions(), 1);
        // Replacing an existing key never evicts.
        m.insert("new".into(), 4, TTL);
        assert_eq!((m.len(), m.evictions()), (2, 1));
    }

    #[test]
    fn full_store_drops_expired_entries_before_evicting_live_ones() {
        let (mut m, clock) = store(2);
        m.insert("short".into(), 1, Duration::from_secs(1));
        m.insert("long".into(), 2, TTL);
        clock.advance(Duration::from_secs(2));
        m.insert("third".into(), 3, TTL);
        assert_eq!(m.evictions(), 0);
        assert_eq!(m.get("long"), Some(&2));
    }

    #[test]
    fn remove_prefix_drops_one_servers_keys() {
        let (mut m, _) = store(10);
        m.insert("p:topo:a:1".into(), 1, TTL);
        m.insert("p:topo:a:projects".into(), 2, TTL);
        m.insert("p:topo:ab:1".into(), 3, TTL);
        assert_eq!(m.remove_prefix("p:topo:a:"), 2);
        assert_eq!(m.get("p:topo:ab:1"), Some(&3));
    }
}

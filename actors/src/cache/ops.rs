//! The cache operations behind the handlers: reads (concurrent), writes, invalidation
//! and events (one at a time, `AtomicResponse`), on Redis while it is up and on memory
//! otherwise. A Redis failure never reaches the caller: `redis_failed` (recovery.rs)
//! records it and the operation is redone on memory.

use actix::prelude::*;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::apply::{self, Change, Outcome};
use super::parts::{CachedJson, TopologyPart};
use super::redis_store::RedisStore;
use super::{CacheActor, CacheError, Cached, Entry, ProjectList, Target, RECENT_HORIZON, RECENT_MAX};
use crate::events::Event;
use crate::gns3::ProjectTopology;

impl CacheActor {
    /// The Redis store, when configured and not down.
    pub(super) fn redis_in_use(&self) -> Option<RedisStore> {
        self.redis.as_ref().filter(|_| self.health.is_up()).cloned()
    }

    /// Counts a read; `redis` when Redis answered it (else memory served it).
    pub(super) fn count(&mut self, hit: bool, redis: bool) {
        match (hit, redis) {
            (true, false) => self.counters.hits += 1,
            (false, false) => self.counters.misses += 1,
            (true, true) => {
                self.counters.hits += 1;
                self.counters.redis_hits += 1;
            }
            (false, true) => {
                self.counters.misses += 1;
                self.counters.redis_misses += 1;
            }
        }
    }

    pub(super) fn read<T: Entry>(&mut self, key: String) -> ResponseActFuture<Self, Option<T>> {
        if self.ttl.is_none() {
            self.counters.misses += 1;
            return Box::pin(fut::ready(None));
        }
        let Some(store) = self.redis_in_use() else {
            let value = self.memory_get::<T>(&key);
            self.count(value.is_some(), false);
            return Box::pin(fut::ready(value));
        };
        let k = key.clone();
        Box::pin(async move { store.get(&k).await }.into_actor(self).map(move |res, act, ctx| {
            let answered = res.is_ok();
            let value = match res {
                Ok(Some(bytes)) => match serde_json::from_slice::<T>(&bytes) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "Unreadable cache entry in Redis; treated as a miss.");
                        None
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    act.redis_failed(&e, ctx);
                    if e.is_unavailable() {
                        act.memory_get::<T>(&key)
                    } else {
                        None
                    }
                }
            };
            act.count(value.is_some(), answered);
            value
        }))
    }

    /// A part of a topology as cached: from memory, the bytes rendered at the last change;
    /// from Redis, the stored bytes as they are for the whole topology (written by
    /// `PutProjectTopology` and updated by events, always a whole `ProjectTopology`), or
    /// the part rendered from them.
    pub(super) fn read_part(&mut self, key: String, part: TopologyPart) -> ResponseActFuture<Self, Option<CachedJson>> {
        if self.ttl.is_none() {
            self.counters.misses += 1;
            return Box::pin(fut::ready(None));
        }
        let memory = move |act: &mut Self, key: &str| match act.memory.get_mut(key) {
            Some(Cached::Topology(t, renders)) => renders.get(t, part),
            _ => None,
        };
        let Some(store) = self.redis_in_use() else {
            if self.redis.is_some() {
                self.health.record_fallback(None);
            }
            let value = memory(self, &key);
            self.count(value.is_some(), false);
            return Box::pin(fut::ready(value));
        };
        let k = key.clone();
        Box::pin(async move { store.get(&k).await }.into_actor(self).map(move |res, act, ctx| {
            let answered = res.is_ok();
            let value = match res {
                Ok(Some(bytes)) if bytes.first() == Some(&b'{') => from_stored(&key, bytes, part),
                Ok(_) => None,
                Err(e) => {
                    act.redis_failed(&e, ctx);
                    if e.is_unavailable() {
                        act.health.record_fallback(None);
                        memory(act, &key)
                    } else {
                        None
                    }
                }
            };
            act.count(value.is_some(), answered);
            value
        }))
    }

    /// Reads memory, counting a fall-back when Redis is configured (so it must be down).
    pub(super) fn memory_get<T: Entry>(&mut self, key: &str) -> Option<T> {
        if self.redis.is_some() {
            self.health.record_fallback(None);
        }
        self.memory.get(key).and_then(T::from_cached).cloned()
    }

    pub(super) fn memory_put<T: Entry>(&mut self, key: String, value: T, ttl: Duration) {
        if self.redis.is_some() {
            self.health.record_fallback(Some(&key));
        }
        self.memory.insert(key, value.into_cached(), ttl);
    }

    pub(super) fn write<T: Entry>(
        &mut self,
        key: String,
        value: T,
        fetch_started: Option<Instant>,
    ) -> AtomicResponse<Self, ()> {
        let Some(ttl) = self.ttl else { return done() };
        if let (Some(started), Some(changed)) = (fetch_started, self.recent.get(&key)) {
            if *changed >= started {
                self.counters.stale_puts += 1;
                tracing::debug!(%key, "An event changed this entry while it was read from GNS3; not cached.");
                return done();
            }
        }
        let Some(store) = self.redis_in_use() else {
            self.memory_put(key, value, ttl);
            return done();
        };
        let bytes = match serde_json::to_vec(&value) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%key, error = %e, "Cannot serialize a cache entry; not cached.");
                return done();
            }
        };
        let k = key.clone();
        let call = async move {
            let res = store.set(&k, &bytes, ttl).await;
            if matches!(res, Err(CacheError::Command(_))) {
                // Do not leave an older copy behind the refused write.
                let _ = store.del(std::slice::from_ref(&k)).await;
            }
            res
        };
        AtomicResponse::new(Box::pin(call.into_actor(self).map(move |res, act, ctx| {
            if let Err(e) = res {
                act.redis_failed(&e, ctx);
                if e.is_unavailable() {
                    act.memory_put(key, value, ttl);
                }
            }
        })))
    }

    pub(super) fn invalidate(&mut self, server: &str, project_id: Option<Uuid>) -> AtomicResponse<Self, ()> {
        let (keys, pattern) = match project_id {
            Some(p) => (vec![self.keys.topology(server, p)], None),
            None => {
                self.memory.remove_prefix(&self.keys.server_prefix(server));
                (Vec::new(), Some(self.keys.server_pattern(server)))
            }
        };
        for k in &keys {
            self.memory.remove(k);
        }
        let Some(store) = self.redis_in_use() else {
            if self.redis.is_some() {
                self.mark_dirty(&keys, pattern.as_deref());
            }
            return done();
        };
        let (k, p) = (keys.clone(), pattern.clone());
        let call = async move {
            store.del(&k).await?;
            if let Some(p) = p {
                store.del_matching(&p).await?;
            }
            Ok::<(), CacheError>(())
        };
        AtomicResponse::new(Box::pin(call.into_actor(self).map(move |res, act, ctx| {
            if let Err(e) = res {
                act.redis_failed(&e, ctx);
                act.mark_dirty(&keys, pattern.as_deref());
            }
        })))
    }

    pub(super) fn mark_dirty(&mut self, keys: &[String], pattern: Option<&str>) {
        self.health.record_fallback(None);
        for k in keys {
            self.health.mark_dirty(k);
        }
        if let Some(p) = pattern {
            self.health.mark_dirty_pattern(p);
        }
    }

    pub(super) fn apply_event(&mut self, event: Arc<Event>) -> AtomicResponse<Self, ()> {
        if self.ttl.is_none() {
            return done();
        }
        let server = event.server.as_str();
        let targets = match apply::classify(&event) {
            Change::Ignore => return done(),
            Change::InvalidateServer => {
                self.counters.events_invalidated += 1;
                tracing::debug!(server, kind = %event.kind, "Server away or event names no project; server's cache dropped.");
                return self.invalidate(server, None);
            }
            Change::DropProject(p) => {
                vec![Target::Drop(self.keys.topology(server, p)), Target::List(self.keys.projects(server))]
            }
            Change::Project { project_id, topology, list } => {
                let mut t = Vec::with_capacity(2);
                if topology {
                    t.push(Target::Topology(self.keys.topology(server, project_id)));
                }
                if list {
                    t.push(Target::List(self.keys.projects(server)));
                }
                t
            }
        };
        self.remember_event(&targets);
        let Some(store) = self.redis_in_use() else {
            for t in &targets {
                self.apply_local(t, &event);
            }
            return done();
        };
        let call = {
            let (targets, event) = (targets.clone(), event.clone());
            async move {
                let mut results = Vec::with_capacity(targets.len());
                for t in &targets {
                    let r = apply_remote(&store, t, &event).await;
                    let stop = matches!(r, Err(CacheError::Unavailable(_)));
                    results.push(r);
                    if stop {
                        break;
                    }
                }
                results
            }
        };
        AtomicResponse::new(Box::pin(call.into_actor(self).map(move |results, act, ctx| {
            let unreachable_at = results.iter().position(|r| matches!(r, Err(CacheError::Unavailable(_))));
            for r in results {
                match r {
                    Ok(outcome) => act.count_outcome(&outcome),
                    Err(e) => {
                        act.redis_failed(&e, ctx);
                        if !e.is_unavailable() {
                            act.counters.events_invalidated += 1;
                        }
                    }
                }
            }
            if let Some(i) = unreachable_at {
                // The target Redis failed on and those not tried go to memory (and dirty).
                for t in &targets[i..] {
                    act.apply_local(t, &event);
                }
            }
        })))
    }

    pub(super) fn apply_local(&mut self, target: &Target, event: &Event) {
        let key = target.key();
        if self.redis.is_some() {
            self.health.record_fallback(Some(key));
        }
        let outcome = match (target, self.memory.get_mut(key)) {
            (Target::Topology(_), Some(Cached::Topology(t, renders))) => {
                let outcome = apply::apply_to_topology(t, event);
                if matches!(outcome, Outcome::Changed) {
                    **renders = Default::default();
                }
                outcome
            }
            (Target::List(_), Some(Cached::Projects(l))) => apply::apply_to_projects(&mut l.projects, event),
            (Target::Drop(_), Some(_)) => Outcome::Changed,
            _ => Outcome::Unchanged,
        };
        if matches!(target, Target::Drop(_)) || matches!(outcome, Outcome::Invalidate(_)) {
            self.memory.remove(key);
        }
        self.count_outcome(&outcome);
    }

    pub(super) fn count_outcome(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Changed => self.counters.events_applied += 1,
            Outcome::Unchanged => {}
            Outcome::Invalidate(why) => {
                self.counters.events_invalidated += 1;
                tracing::debug!(reason = why, "Event could not be applied; cache entry dropped.");
            }
        }
    }

    pub(super) fn remember_event(&mut self, targets: &[Target]) {
        let now = Instant::now();
        if self.recent.len() >= RECENT_MAX {
            match now.checked_sub(RECENT_HORIZON) {
                Some(cutoff) => self.recent.retain(|_, t| *t > cutoff),
                None => self.recent.clear(),
            }
            if self.recent.len() >= RECENT_MAX {
                self.recent.clear();
            }
        }
        for t in targets {
            self.recent.insert(t.key().to_owned(), now);
        }
    }
}

/// A part from a topology as Redis stores it: the whole as it is, a slice rendered.
fn from_stored(key: &str, bytes: Vec<u8>, part: TopologyPart) -> Option<CachedJson> {
    if part == TopologyPart::Whole {
        return Some(CachedJson::new(Bytes::from(bytes)));
    }
    match serde_json::from_slice::<ProjectTopology>(&bytes) {
        Ok(t) => part.render(&t).map(CachedJson::new),
        Err(e) => {
            tracing::warn!(%key, error = %e, "Unreadable cache entry in Redis; treated as a miss.");
            None
        }
    }
}

pub(super) fn done() -> AtomicResponse<CacheActor, ()> {
    AtomicResponse::new(Box::pin(fut::ready(())))
}

/// Applies an event to the Redis copy of one entry (read, change, write back).
async fn apply_remote(store: &RedisStore, target: &Target, event: &Event) -> Result<Outcome, CacheError> {
    let res = match target {
        Target::Drop(k) => {
            store.del(std::slice::from_ref(k)).await.map(|n| if n > 0 { Outcome::Changed } else { Outcome::Unchanged })
        }
        Target::Topology(k) => update_remote::<ProjectTopology>(store, k, |t| apply::apply_to_topology(t, event)).await,
        Target::List(k) => {
            update_remote::<ProjectList>(store, k, |l| apply::apply_to_projects(&mut l.projects, event)).await
        }
    };
    if matches!(res, Err(CacheError::Command(_))) {
        // Redis refused the update: better no copy than a stale one.
        let _ = store.del(std::slice::from_ref(&target.key().to_owned())).await;
    }
    res
}

async fn update_remote<T: Serialize + DeserializeOwned>(
    store: &RedisStore,
    key: &str,
    change: impl FnOnce(&mut T) -> Outcome,
) -> Result<Outcome, CacheError> {
    let Some(bytes) = store.get(key).await? else { return Ok(Outcome::Unchanged) };
    let mut outcome = match serde_json::from_slice::<T>(&bytes) {
        Ok(mut value) => {
            let outcome = change(&mut value);
            if outcome == Outcome::Changed {
                match serde_json::to_vec(&value) {
                    Ok(b) => {
                        store.replace(key, &b).await?;
                    }
                    Err(_) => return Ok(Outcome::Invalidate("cannot serialize the updated entry")),
                }
            }
            outcome
        }
        Err(_) => Outcome::Invalidate("unreadable entry in Redis"),
    };
    if let Outcome::Invalidate(_) = outcome {
        if store.del(&[key.to_owned()]).await? == 0 {
            outcome = Outcome::Unchanged;
        }
    }
    Ok(outcome)
}

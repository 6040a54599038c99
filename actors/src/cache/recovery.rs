//! Redis outages: a failed call starts one (logged once, counted), checks follow a capped
//! backoff without holding the mailbox, and when Redis answers the keys written meanwhile
//! are deleted there before it is used again (see `health.rs` for why).

use actix::prelude::*;
use std::time::Instant;

use super::health::Dirty;
use super::redis_store::RedisStore;
use super::{CacheActor, CacheError};

impl CacheActor {
    /// A Redis call failed: an error reply is counted; unavailability starts an outage.
    pub(super) fn redis_failed(&mut self, e: &CacheError, ctx: &mut Context<Self>) {
        if !e.is_unavailable() {
            self.health.record_error();
            tracing::warn!(error = %e, "Redis refused a cache command; entry treated as a miss.");
            return;
        }
        if self.health.record_outage(Instant::now()) {
            let redis = self.redis.as_ref().map(|r| r.address().to_owned()).unwrap_or_default();
            tracing::warn!(%redis, error = %e, "Redis is unavailable; the cache falls back to memory.");
            self.schedule_probe(ctx);
        }
    }

    pub(super) fn schedule_probe(&mut self, ctx: &mut Context<Self>) {
        if self.probing || self.redis.is_none() {
            return;
        }
        self.probing = true;
        let delay = self.health.next_probe_delay();
        ctx.run_later(delay, |act, ctx| act.probe(ctx));
    }

    /// Pings Redis (without blocking the mailbox); if it answers, repairs and switches back.
    pub(super) fn probe(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.redis.clone() else { return };
        ctx.spawn(async move { store.ping().await }.into_actor(self).map(|res, act, ctx| match res {
            Ok(()) => act.repair_and_return(ctx),
            Err(e) => {
                act.health.record_error();
                tracing::debug!(error = %e, "Redis still unavailable.");
                act.probing = false;
                act.schedule_probe(ctx);
            }
        }));
    }

    /// Deletes in Redis what changed during the outage, then uses Redis again. Runs with
    /// the mailbox held so no write slips between the repair and the switch.
    pub(super) fn repair_and_return(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.redis.clone() else { return };
        let dirty = self.health.take_dirty();
        let all = self.keys.all_pattern();
        let call = async move {
            let res = repair(&store, &dirty, &all).await;
            (res, dirty)
        };
        ctx.wait(call.into_actor(self).map(|(res, dirty), act, ctx| {
            act.probing = false;
            match res {
                Ok(()) => {
                    let away = act.health.record_recovery(Instant::now());
                    act.memory.clear();
                    let redis = act.redis.as_ref().map(|r| r.address().to_owned()).unwrap_or_default();
                    tracing::info!(%redis, down_secs = away.as_secs_f64(),
                        fallback_ops = act.health.fallback_ops, "Redis is back; the cache uses it again.");
                }
                Err(e) => {
                    act.health.restore_dirty(dirty);
                    act.health.record_error();
                    if e.is_unavailable() {
                        tracing::debug!(error = %e, "Redis answered but went away again; staying on memory.");
                    } else {
                        // A refused DEL/SCAN will not fix itself: say so at every attempt.
                        tracing::warn!(error = %e, "Redis refuses the cache's repair; staying on memory.");
                    }
                    act.schedule_probe(ctx);
                }
            }
        }));
    }

    /// While Redis is up, a ping now and then notices an outage before a reader does.
    pub(super) fn check_health(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.redis_in_use() else { return };
        ctx.spawn(async move { store.ping().await }.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.redis_failed(&e, ctx);
            }
        }));
    }
}

/// Deletes in Redis every key that changed while it was away.
async fn repair(store: &RedisStore, dirty: &Dirty, all_pattern: &str) -> Result<(), CacheError> {
    if dirty.overflow {
        store.del_matching(all_pattern).await?;
        return Ok(());
    }
    let keys: Vec<String> = dirty.keys.iter().cloned().collect();
    store.del(&keys).await?;
    for p in &dirty.patterns {
        store.del_matching(p).await?;
    }
    Ok(())
}

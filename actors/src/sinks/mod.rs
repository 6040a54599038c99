//! Notification sinks: the built-in module `notifications` that forwards chosen events
//! to webhooks (generic JSON, Slack, Microsoft Teams), one `SinkActor` per `[[sinks]]`
//! entry. Each is a dispatcher subscriber with its own filter (types, projects) and a
//! least priority, and keeps a bounded queue (`queue`; when full the oldest event is
//! dead-lettered). It POSTs one event at a time, in order, paced by a token bucket
//! (`rate_per_minute`, `burst`: events beyond it wait in the queue). A 5xx, 408, 429 or a
//! transport error is retried with exponential backoff (`max_retries`), then the event
//! is dead-lettered; any other 4xx is dead-lettered at once (the webhook refuses it).
//! Dead letters go to the bus's list (`GET /api/v2/bus/dead-letters`, with `sink`).

pub mod config;
pub mod format;
pub mod ratelimit;

pub use config::{validate_all, SinkConfig, SinkFormat};

use actix::prelude::*;
use bytes::Bytes;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

use self::ratelimit::TokenBucket;
use crate::dispatcher::{Deliver, PriorityDispatcher, Subscribe};
use crate::events::Event;
use crate::modules::{BusDeadLetters, BusDeadReason, ModuleKind, ModuleRegistry, ModuleStats};

/// The name of the built-in module the sinks make up.
pub const MODULE: &str = "notifications";

#[derive(Debug, Default)]
pub struct SinkCounters {
    pub delivered: AtomicU64,
    pub attempts: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub rate_limited: AtomicU64,
    pub queued: AtomicU64,
}

/// One sink as `GET /api/v2/sinks` shows it (the URL is not shown: it often holds a secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SinkStatus {
    pub name: String,
    #[schema(value_type = String)]
    pub format: SinkFormat,
    pub types: Vec<String>,
    #[schema(value_type = String)]
    pub min_priority: crate::events::Priority,
    /// POSTs the webhook accepted.
    pub delivered: u64,
    pub attempts: u64,
    pub retried: u64,
    /// Attempts that failed.
    pub failed: u64,
    pub dead_lettered: u64,
    /// Times the rate limit made an event wait.
    pub rate_limited: u64,
    /// Events waiting now.
    pub queued: u64,
}

#[derive(Clone)]
pub struct SinkHandle {
    pub config: SinkConfig,
    pub counters: Arc<SinkCounters>,
}

impl SinkHandle {
    pub fn status(&self) -> SinkStatus {
        let c = &self.counters;
        SinkStatus {
            name: self.config.name.clone(),
            format: self.config.format,
            types: self.config.types.clone(),
            min_priority: self.config.min_priority,
            delivered: c.delivered.load(Relaxed),
            attempts: c.attempts.load(Relaxed),
            retried: c.retried.load(Relaxed),
            failed: c.failed.load(Relaxed),
            dead_lettered: c.dead_lettered.load(Relaxed),
            rate_limited: c.rate_limited.load(Relaxed),
            queued: c.queued.load(Relaxed),
        }
    }
}

struct Pending {
    event: Arc<Event>,
    json: Bytes,
    attempts: u32,
}

pub struct SinkActor {
    cfg: SinkConfig,
    queue: VecDeque<Pending>,
    /// A POST is in flight, or a retry or the rate limit is being waited for.
    busy: bool,
    bucket: TokenBucket,
    client: Option<awc::Client>,
    counters: Arc<SinkCounters>,
    module: Arc<ModuleStats>,
    dead: Arc<BusDeadLetters>,
}

/// Registers the `notifications` module and starts one actor per sink (on the current
/// arbiter). Nothing is started without sinks.
pub async fn start_sinks(
    sinks: &[SinkConfig],
    dispatcher: Option<&Addr<PriorityDispatcher>>,
    registry: &ModuleRegistry,
) -> Result<Vec<SinkHandle>, String> {
    let (Some(dispatcher), false) = (dispatcher, sinks.is_empty()) else { return Ok(Vec::new()) };
    let slot = registry.register(MODULE, ModuleKind::Builtin, None).map_err(|e| e.to_string())?;
    slot.stats.connected.store(true, Relaxed);
    slot.stats.set_subscriptions(sinks.iter().flat_map(|s| s.types.iter().cloned()).collect());
    let mut handles = Vec::new();
    for cfg in sinks {
        let filter = cfg.filter()?;
        let counters = Arc::new(SinkCounters::default());
        let actor = SinkActor {
            bucket: TokenBucket::new(cfg.burst, cfg.rate_per_minute / 60.0, Instant::now()),
            cfg: cfg.clone(),
            queue: VecDeque::new(),
            busy: false,
            client: None,
            counters: counters.clone(),
            module: slot.stats.clone(),
            dead: registry.dead_letters().clone(),
        }
        .start();
        let label = format!("sink:{}", cfg.name);
        dispatcher
            .send(Subscribe { label, filter, sink: actor.recipient().into() })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!(sink = %cfg.name, format = ?cfg.format, "Notification sink started.");
        handles.push(SinkHandle { config: cfg.clone(), counters });
    }
    Ok(handles)
}

impl SinkActor {
    fn give_up(&mut self, p: &Pending, reason: BusDeadReason) {
        self.counters.dead_lettered.fetch_add(1, Relaxed);
        self.module.dead_lettered.fetch_add(1, Relaxed);
        self.dead.push_sink(MODULE, &self.cfg.name, reason, &p.event.id);
        tracing::warn!(sink = %self.cfg.name, event = %p.event.id, ?reason, "Notification given up.");
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.counters.queued.store(self.queue.len() as u64, Relaxed);
        if self.busy || self.queue.is_empty() {
            return;
        }
        if let Err(wait) = self.bucket.take(Instant::now()) {
            self.counters.rate_limited.fetch_add(1, Relaxed);
            self.busy = true;
            ctx.run_later(wait, |act, ctx| {
                act.busy = false;
                act.pump(ctx);
            });
            return;
        }
        let Some(front) = self.queue.front() else { return };
        let Some(client) = &self.client else { return };
        let body = format::body(self.cfg.format, &front.event, &front.json);
        self.busy = true;
        self.counters.attempts.fetch_add(1, Relaxed);
        let req =
            client.post(self.cfg.url.expose()).insert_header(("Content-Type", "application/json")).send_body(body);
        let fut = async move {
            match req.await {
                Ok(res) => Ok(res.status().as_u16()),
                Err(e) => Err(e.to_string()),
            }
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.busy = false;
            let retryable = match res {
                Ok(s) if (200..300).contains(&s) => {
                    act.counters.delivered.fetch_add(1, Relaxed);
                    act.module.delivered.fetch_add(1, Relaxed);
                    act.queue.pop_front();
                    return act.pump(ctx);
                }
                Ok(s) => {
                    act.module.error(format!("sink {}: the webhook answered {s}", act.cfg.name));
                    s >= 500 || s == 408 || s == 429
                }
                Err(e) => {
                    act.module.error(format!("sink {}: {e}", act.cfg.name));
                    true
                }
            };
            act.counters.failed.fetch_add(1, Relaxed);
            act.module.failed.fetch_add(1, Relaxed);
            let Some(front) = act.queue.front_mut() else { return };
            front.attempts += 1;
            if !retryable || front.attempts > act.cfg.max_retries {
                if let Some(p) = act.queue.pop_front() {
                    act.give_up(&p, BusDeadReason::WebhookFailed);
                }
                return act.pump(ctx);
            }
            act.counters.retried.fetch_add(1, Relaxed);
            act.busy = true;
            let delay = act.cfg.backoff(front.attempts - 1);
            ctx.run_later(delay, |act, ctx| {
                act.busy = false;
                act.pump(ctx);
            });
        }));
    }
}

impl Actor for SinkActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.client = Some(awc::Client::builder().timeout(Duration::from_millis(self.cfg.timeout_ms)).finish());
    }
}

impl Handler<Deliver> for SinkActor {
    type Result = ();
    fn handle(&mut self, d: Deliver, ctx: &mut Self::Context) {
        if d.event.priority > self.cfg.min_priority {
            return;
        }
        self.queue.push_back(Pending { event: d.event, json: d.json, attempts: 0 });
        if self.queue.len() > self.cfg.queue {
            // The oldest waits at the front; one in flight stays (it is being sent).
            let victim = if self.busy && self.queue.len() > 1 { self.queue.remove(1) } else { self.queue.pop_front() };
            if let Some(p) = victim {
                self.give_up(&p, BusDeadReason::SinkQueueFull);
            }
        }
        self.pump(ctx);
    }
}

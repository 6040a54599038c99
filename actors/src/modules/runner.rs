//! The actors behind an in-process module's handlers. `EventRunner`: one per
//! `ModuleHandle::subscribe`, a dispatcher subscriber that runs the handler on each event;
//! `MessageInbox`: the module's link to its proxy (`ToModule`), running the message
//! handler and sending its answer to requests; each message, once its handler returned,
//! is confirmed to the proxy (`Delivered`, `failed` when every retry failed), and what its
//! mailbox still held when it stops goes back to the proxy's offline queue (`Detach`).
//!
//! Each handles one message at a time (`AtomicResponse`), so its mailbox (bounded by
//! `modules.handler_queue`) fills while a handler is slow, and then the dispatcher or
//! the proxy sees it full and applies its policy (retry, then dead letter), for this
//! module alone. A failed call is retried `handler_max_retries` times with backoff, then
//! dead-lettered; a panic is caught (counted in `panics`) and treated as a failure.

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use uuid::Uuid;

use super::config::ModulesConfig;
use super::envelope::BusMessage;
use super::messages::{Delivered, Detach, ToModule};
use super::registry::ModuleRegistry;
use super::stats::{BusDeadReason, ModuleStats};
use super::ModuleProxy;
use crate::dispatcher::Deliver;
use crate::events::Event;

pub type EventFn = Rc<dyn Fn(Arc<Event>) -> LocalBoxFuture<'static, Result<(), String>>>;
pub type MessageFn = Rc<dyn Fn(Arc<BusMessage>) -> LocalBoxFuture<'static, Result<Option<Value>, String>>>;

/// Runs `call` with retries and backoff, catching panics; `None` when every try failed.
async fn guarded<T, F>(call: F, cfg: &ModulesConfig, stats: &ModuleStats) -> Option<T>
where
    F: Fn() -> LocalBoxFuture<'static, Result<T, String>>,
{
    for attempt in 0..=cfg.handler_max_retries {
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(&call)) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(p) => Err(p),
        };
        match outcome {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => {
                stats.failed.fetch_add(1, Relaxed);
                stats.error(e);
            }
            Err(_) => {
                stats.panics.fetch_add(1, Relaxed);
                stats.failed.fetch_add(1, Relaxed);
                stats.error("the handler panicked");
            }
        }
        if attempt < cfg.handler_max_retries {
            actix_rt::time::sleep(cfg.handler_backoff(attempt)).await;
        }
    }
    None
}

pub(crate) struct EventRunner {
    pub module: Arc<str>,
    pub handler: EventFn,
    pub registry: Arc<ModuleRegistry>,
    pub stats: Arc<ModuleStats>,
}

impl Actor for EventRunner {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.registry.config().handler_queue);
    }
}

impl Handler<Deliver> for EventRunner {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, ev: Deliver, _: &mut Self::Context) -> Self::Result {
        let (handler, registry, stats, module) =
            (self.handler.clone(), self.registry.clone(), self.stats.clone(), self.module.clone());
        let fut = async move {
            let event = ev.event;
            let call = || handler(event.clone());
            match guarded(call, registry.config(), &stats).await {
                Some(()) => {
                    stats.events_delivered.fetch_add(1, Relaxed);
                }
                None => {
                    stats.dead_lettered.fetch_add(1, Relaxed);
                    registry.dead_letters().push(&module, BusDeadReason::HandlerFailed, None, Some(&event.id));
                }
            }
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self)))
    }
}

pub(crate) struct MessageInbox {
    pub module: Arc<str>,
    pub handler: MessageFn,
    pub registry: Arc<ModuleRegistry>,
    pub stats: Arc<ModuleStats>,
    /// Its connection id with the proxy, and the proxy.
    pub session: Uuid,
    pub proxy: Addr<ModuleProxy>,
}

impl Actor for MessageInbox {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.registry.config().handler_queue);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        // Every handled message was confirmed on its own.
        self.proxy.do_send(Detach { session: self.session, delivered_upto: None });
        Running::Stop
    }
}

impl Handler<ToModule> for MessageInbox {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: ToModule, ctx: &mut Self::Context) -> Self::Result {
        let (m, seq) = match msg {
            ToModule::Message(m, seq) | ToModule::Reply(m, seq, _) => (m, seq),
            ToModule::Event(_) => return AtomicResponse::new(Box::pin(actix::fut::ready(()))),
            ToModule::Replaced { .. } => {
                ctx.stop();
                return AtomicResponse::new(Box::pin(actix::fut::ready(())));
            }
        };
        let (handler, registry, stats, module) =
            (self.handler.clone(), self.registry.clone(), self.stats.clone(), self.module.clone());
        let (proxy, session) = (self.proxy.clone(), self.session);
        let fut = async move {
            let call = || handler(m.clone());
            let outcome = guarded(call, registry.config(), &stats).await;
            // Handled (or given up, dead-lettered by the proxy): confirmed either way.
            proxy.do_send(Delivered { session, upto: seq, failed: outcome.is_none() });
            if let Some(Some(answer)) = outcome {
                if m.reply_to.is_some() {
                    if let Err(e) = registry.route(m.reply(&module, None, answer)) {
                        stats.error(format!("reply not delivered: {e}"));
                    }
                }
            }
        };
        AtomicResponse::new(Box::pin(fut.into_actor(self)))
    }
}

//! Supervision that also survives panics, and knows when restarts become a storm.
//!
//! actix's `Supervisor` restarts an actor that stops, but a panic in a handler unwinds
//! through the actor's task and tokio drops it: the actor is gone for good and every
//! later message fails. `start` runs the actor like actix's `Supervisor` (same mailbox,
//! `Supervised::restarting` called, the in-flight message lost) and also catches a panic
//! of the actor's task, logs it as an error and restarts the actor after a growing delay
//! (100 ms doubling to 30 s within a run of restarts), so a handler that always panics
//! cannot spin.
//!
//! Every restart is recorded in the shared `Supervision` registry by actor kind and
//! name. `storm_restarts` restarts within `storm_window` is a restart storm: it is
//! logged as an error when it begins and `storming` reports it (the edge turns `/readyz`
//! not-ready) until fewer restarts than that fall in the window again. The registry's
//! plain part (`RestartLog`) takes the time as an argument, so it is unit-tested without
//! waiting.

use actix::dev::ContextFut;
use actix::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

const PANIC_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const PANIC_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What counts as a restart storm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StormPolicy {
    pub restarts: usize,
    pub window: Duration,
}

/// One actor's restarts: totals and the recent ones (within the storm window).
#[derive(Debug, Clone, Default)]
pub struct RestartLog {
    pub restarts: u64,
    pub panics: u64,
    recent: VecDeque<Instant>,
    storming: bool,
}

impl RestartLog {
    /// Records a restart; `true` when this one starts a storm.
    pub fn record(&mut self, now: Instant, panicked: bool, policy: StormPolicy) -> bool {
        self.restarts += 1;
        self.panics += u64::from(panicked);
        self.recent.push_back(now);
        self.forget(now, policy);
        let storm = self.recent.len() >= policy.restarts.max(1);
        let began = storm && !self.storming;
        self.storming = storm;
        began
    }

    /// Whether restarts are storming at `now`.
    pub fn storming(&mut self, now: Instant, policy: StormPolicy) -> bool {
        self.forget(now, policy);
        self.storming = self.recent.len() >= policy.restarts.max(1);
        self.storming
    }

    /// Restarts within the window before `now`.
    pub fn recent(&self) -> usize {
        self.recent.len()
    }

    fn forget(&mut self, now: Instant, policy: StormPolicy) {
        while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) > policy.window) {
            self.recent.pop_front();
        }
    }
}

/// An actor's supervision report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ActorHealth {
    /// The kind (`gns3_connector`) and the name of this one (`default`).
    pub actor: String,
    pub name: String,
    pub restarts: u64,
    /// Restarts caused by a panic (a subset of `restarts`).
    pub panics: u64,
    /// Restarts within the storm window now.
    pub recent_restarts: usize,
    pub storming: bool,
}

/// The restarts of every supervised actor (shared by the supervisors and the edge).
#[derive(Debug)]
pub struct Supervision {
    policy: StormPolicy,
    logs: Mutex<BTreeMap<(String, String), RestartLog>>,
}

impl Supervision {
    pub fn new(policy: StormPolicy) -> Arc<Self> {
        Arc::new(Self { policy, logs: Mutex::new(BTreeMap::new()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), RestartLog>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the actor known (reported with 0 restarts before its first).
    pub fn register(&self, actor: &str, name: &str) {
        self.lock().entry((actor.to_owned(), name.to_owned())).or_default();
    }

    /// Records one restart; logs the start of a storm.
    pub fn record(&self, actor: &str, name: &str, panicked: bool) {
        let now = Instant::now();
        let mut logs = self.lock();
        let log = logs.entry((actor.to_owned(), name.to_owned())).or_default();
        if log.record(now, panicked, self.policy) {
            tracing::error!(
                actor,
                name,
                restarts = log.recent(),
                window_secs = self.policy.window.as_secs_f64(),
                "Restart storm: the actor keeps restarting; the service reports not ready until it calms."
            );
        }
    }

    /// Every supervised actor, at `now`.
    pub fn report(&self) -> Vec<ActorHealth> {
        let now = Instant::now();
        let policy = self.policy;
        self.lock()
            .iter_mut()
            .map(|((actor, name), log)| ActorHealth {
                actor: actor.clone(),
                name: name.clone(),
                restarts: log.restarts,
                panics: log.panics,
                storming: log.storming(now, policy),
                recent_restarts: log.recent(),
            })
            .collect()
    }
}

/// Starts `A` under a supervisor that restarts it when it stops or panics, recording
/// each restart in `registry` as (`actor`, `name`).
pub fn start<A, F>(registry: &Arc<Supervision>, actor: &str, name: &str, f: F) -> Addr<A>
where
    A: Supervised + Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + 'static,
{
    registry.register(actor, name);
    let mut ctx = Context::new();
    let act = f(&mut ctx);
    let addr = ctx.address();
    let fut = ctx.into_future(act);
    actix_rt::spawn(PanicSupervisor {
        fut,
        registry: registry.clone(),
        actor: actor.to_owned(),
        name: name.to_owned(),
        delay: None,
        run: 0,
        last: None,
    });
    addr
}

struct PanicSupervisor<A: Supervised + Actor<Context = Context<A>>> {
    fut: ContextFut<A, Context<A>>,
    registry: Arc<Supervision>,
    actor: String,
    name: String,
    /// After a panic: the wait before the actor runs again.
    delay: Option<Pin<Box<actix_rt::time::Sleep>>>,
    /// Panics in a row (each within a minute of the previous), for the delay.
    run: u32,
    last: Option<Instant>,
}

impl<A: Supervised + Actor<Context = Context<A>>> PanicSupervisor<A> {
    fn panic_delay(&mut self) -> Duration {
        let now = Instant::now();
        self.run = match self.last {
            Some(t) if now.duration_since(t) < Duration::from_secs(60) => self.run.saturating_add(1),
            _ => 1,
        };
        self.last = Some(now);
        let factor = 2u32.saturating_pow(self.run.saturating_sub(1).min(16));
        PANIC_BACKOFF_INITIAL.saturating_mul(factor).min(PANIC_BACKOFF_MAX)
    }
}

impl<A: Supervised + Actor<Context = Context<A>>> Future for PanicSupervisor<A> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        // Unpin: actors are Unpin (actix requires it), so is their context future.
        let this = self.get_mut();
        loop {
            if let Some(d) = this.delay.as_mut() {
                if d.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.delay = None;
            }
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.fut).poll(cx)));
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(())) => {
                    if !this.fut.restart() {
                        return Poll::Ready(());
                    }
                    this.registry.record(&this.actor, &this.name, false);
                }
                Err(payload) => {
                    let what = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    let delay = this.panic_delay();
                    tracing::error!(actor = %this.actor, name = %this.name, panic = %what,
                        delay_ms = delay.as_millis() as u64, "Actor panicked; restarting it.");
                    if !this.fut.restart() {
                        return Poll::Ready(());
                    }
                    this.registry.record(&this.actor, &this.name, true);
                    this.delay = Some(Box::pin(actix_rt::time::sleep(delay)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: StormPolicy = StormPolicy { restarts: 3, window: Duration::from_secs(10) };

    #[test]
    fn a_storm_begins_at_n_restarts_in_the_window_and_calms_when_they_age_out() {
        let t0 = Instant::now();
        let mut log = RestartLog::default();
        assert!(!log.record(t0, false, POLICY));
        assert!(!log.record(t0 + Duration::from_secs(1), true, POLICY));
        assert!(log.record(t0 + Duration::from_secs(2), false, POLICY), "the third restart starts it");
        assert!(!log.record(t0 + Duration::from_secs(3), false, POLICY), "logged once");
        assert!(log.storming(t0 + Duration::from_secs(5), POLICY));
        // At t0+12 s only the restarts at 2 s and 3 s are in the window.
        assert!(!log.storming(t0 + Duration::from_secs(12), POLICY));
        assert_eq!((log.restarts, log.panics, log.recent()), (4, 1, 2));
    }

    struct Fragile {
        started: u32,
    }
    impl Actor for Fragile {
        type Context = Context<Self>;
        fn started(&mut self, _: &mut Self::Context) {
            self.started += 1;
        }
    }
    impl Supervised for Fragile {}

    #[derive(Message)]
    #[rtype(result = "u32")]
    struct Poke {
        panic: bool,
    }
    impl Handler<Poke> for Fragile {
        type Result = u32;
        fn handle(&mut self, m: Poke, _: &mut Self::Context) -> u32 {
            assert!(!m.panic, "poked to panic");
            self.started
        }
    }

    #[actix_rt::test]
    async fn a_panicking_actor_is_restarted_counted_and_answers_again() {
        let reg = Supervision::new(StormPolicy { restarts: 2, window: Duration::from_secs(60) });
        let addr = start(&reg, "fragile", "one", |_| Fragile { started: 0 });
        assert_eq!(addr.send(Poke { panic: false }).await.expect("answers"), 1);
        // The panicking message is lost (its sender sees the mailbox error)...
        assert!(addr.send(Poke { panic: true }).await.is_err());
        // ...and the same actor value runs again after the delay: started() twice.
        assert_eq!(addr.send(Poke { panic: false }).await.expect("answers again"), 2);
        let r = reg.report();
        assert_eq!((r[0].restarts, r[0].panics, r[0].storming), (1, 1, false));
        assert!(addr.send(Poke { panic: true }).await.is_err());
        assert_eq!(addr.send(Poke { panic: false }).await.expect("answers again"), 3);
        let r = reg.report();
        assert_eq!((r[0].restarts, r[0].panics, r[0].storming), (2, 2, true));
    }
}

//! `PriorityDispatcher`: the one actor between event producers (connectors, modules, the
//! Redis bridge) and consumers (WebSocket sessions, module proxies). It owns a
//! `DispatcherCore` (four bounded priority queues, numbering and history, subscribers and
//! their filters, retries and dead letters, statistics) and answers `messages.rs`.
//!
//! Scheduling. Publishing queues; events are dispatched in turns of at most `batch_size`
//! events or `turn_budget_us`, after which the actor reads its mailbox again. A turn is
//! scheduled on the actor's own context (`notify`, then `yield_now` between continuation
//! turns so other tasks on the thread run). Actix reads a mailbox until it is empty, so a
//! publisher refilling it from another thread could keep scheduled turns from ever
//! running: a publish that finds a whole turn's time spent on the mailbox since the last
//! turn runs one itself. Under a flood, time is thus shared about evenly between taking
//! publishes and dispatching.
//!
//! CRITICAL latency. No fan-out is in progress while a handler runs, so a CRITICAL event
//! is dispatched by its own publish handler. But a mailbox is first in, first out: a
//! CRITICAL `Publish` still waits for the publishes ahead of it (up to `mailbox_capacity`
//! messages, for publishers using `send`/`try_send`) and for the turn in progress. The
//! express lane (`GetExpressLane`, `lane.rs`) goes past the mailbox: it is checked between
//! any two dispatched events and any two publishes, so an event sent through it waits at
//! most for one event's fan-out. Connectors should send server and circuit events there.
//!
//! Retries of deliveries to full mailboxes run from one timer set to the earliest due,
//! and within turns, with a time budget. Give the dispatcher its own arbiter
//! (`start_on_own_thread`): it is busy by design under load.

mod ahead;
pub mod config;
mod core;
pub mod delivery;
mod encode;
pub mod error;
pub mod filter;
pub mod history;
pub mod inbox;
pub mod lane;
pub mod messages;
pub mod queue;
pub mod stats;
pub mod subscribers;

#[cfg(test)]
mod actor_tests;
#[cfg(test)]
mod ahead_tests;
#[cfg(test)]
mod tests;

pub use self::core::{
    DispatcherCore, HistoryPage, Injected, Published, Rejected, Rejoined, Replay, Subscription, Uplink, MAX_TYPE_LEN,
};
pub use config::{DeliveryConfig, DispatcherConfig};
pub use delivery::{DeadLetter, DeadLetterReason, DeadLetters, EventSink, SharedEvent, SinkStatus};
pub use error::DispatchError;
pub use filter::{FilterError, SubscriptionFilter};
pub use history::{json_array, Gap, History, HistoryEntry, Origin, Unrecoverable};
pub use inbox::{Inbox, InboxReady, Sink, INBOX_CAPACITY};
pub use lane::Lane;
pub use messages::*;
pub use queue::{Priority, PriorityQueues, Push};
pub use stats::{Counters, DispatcherStats, Percentiles};
pub use subscribers::SubscriberId;

use actix::prelude::*;
use std::time::{Duration, Instant};

use crate::events::NewEvent;

/// Overload and dead-letter warnings are logged at most this often (with the counts
/// since the last one).
const OVERLOAD_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct PriorityDispatcher {
    core: DispatcherCore<Sink>,
    turn_scheduled: bool,
    /// When the last turn ended (for running one from a publish under a flood).
    last_turn: Instant,
    /// The pending retry timer and when it fires.
    retry_timer: Option<(Instant, SpawnHandle)>,
    overload: OverloadLog,
    /// Reads waiting for the history to reach their `since` (`ahead.rs`).
    ahead: ahead::AheadWaiters,
}

#[derive(Default)]
struct OverloadLog {
    shed: u64,
    refused: u64,
    last: Option<Instant>,
    dead_letters_logged: u64,
    last_dead: Option<Instant>,
}

impl OverloadLog {
    fn note(&mut self, shed: bool, refused: bool, now: Instant) {
        self.shed += u64::from(shed);
        self.refused += u64::from(refused);
        if self.last.is_some_and(|t| now.duration_since(t) < OVERLOAD_LOG_EVERY) {
            return;
        }
        tracing::warn!(
            shed = self.shed,
            refused = self.refused,
            "Event queues full: shedding LOW/NORMAL events, refusing HIGH/CRITICAL ones."
        );
        self.shed = 0;
        self.refused = 0;
        self.last = Some(now);
    }

    fn dead_letters(&mut self, total: u64, now: Instant) {
        if total == self.dead_letters_logged
            || self.last_dead.is_some_and(|t| now.duration_since(t) < OVERLOAD_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            new = total - self.dead_letters_logged,
            total,
            "Deliveries given up after retries (dead letters): a subscriber is too slow."
        );
        self.dead_letters_logged = total;
        self.last_dead = Some(now);
    }
}

/// One drain turn, sent to itself.
#[derive(Message)]
#[rtype(result = "()")]
struct RunTurn;

impl PriorityDispatcher {
    /// A dispatcher with a fresh epoch (history in memory only).
    pub fn new(cfg: DispatcherConfig) -> Self {
        Self::with_origin(cfg, Origin::fresh())
    }

    /// A dispatcher continuing an epoch and seq kept elsewhere (a persistent store).
    pub fn with_origin(cfg: DispatcherConfig, origin: Origin) -> Self {
        Self {
            core: DispatcherCore::new(cfg, origin),
            turn_scheduled: false,
            last_turn: Instant::now(),
            retry_timer: None,
            overload: OverloadLog::default(),
            ahead: ahead::AheadWaiters::default(),
        }
    }

    /// Starts the dispatcher on a new arbiter (its own thread). Call within a running
    /// actix system.
    pub fn start_on_own_thread(self) -> Addr<Self> {
        let arbiter = Arbiter::new();
        Self::start_in_arbiter(&arbiter.handle(), move |_| self)
    }

    fn schedule_turn(&mut self, ctx: &mut Context<Self>) {
        if !self.turn_scheduled && self.core.queued() > 0 && self.core.can_drain() {
            self.turn_scheduled = true;
            // Runs once the mailbox has been read: publishes that arrived together are
            // queued (and ordered by priority) before the turn starts.
            ctx.notify(RunTurn);
        }
    }

    /// One turn of dispatching (and the retries that are due).
    fn run_turn(&mut self) {
        let budget = self.core.config().turn_budget();
        // Clamped: an unvalidated 0 would leave events queued forever.
        let batch = self.core.config().batch_size.max(1);
        let start = Instant::now();
        let deadline = start + budget;
        self.core.drain(batch, Some(deadline));
        if self.core.next_retry_at().is_some_and(|t| t <= start) {
            // Retries get the rest of the turn, and at least a tenth of one.
            self.core.retry_due(start, Some(deadline.max(Instant::now() + budget / 10)));
        }
        self.last_turn = Instant::now();
        self.overload.dead_letters(self.core.dead_letters_total(), self.last_turn);
        self.wake_ahead();
    }

    /// The scheduled turn; schedules the next one while events wait.
    fn turn(&mut self, ctx: &mut Context<Self>) {
        self.turn_scheduled = false;
        self.run_turn();
        // With a full uplink, `UplinkReady` or `Inject` schedules the next turn.
        if self.core.queued() > 0 && self.core.can_drain() {
            self.turn_scheduled = true;
            // Let the runtime run other tasks, and this actor read its mailbox, first.
            ctx.spawn(tokio::task::yield_now().into_actor(self).map(|_, act, ctx| act.turn(ctx)));
        }
        self.arm_retry(ctx);
    }

    /// Keeps one timer set for the earliest retry due.
    fn arm_retry(&mut self, ctx: &mut Context<Self>) {
        let Some(at) = self.core.next_retry_at() else {
            if let Some((_, h)) = self.retry_timer.take() {
                ctx.cancel_future(h);
            }
            return;
        };
        if let Some((t, h)) = self.retry_timer {
            if t <= at {
                return;
            }
            ctx.cancel_future(h);
        }
        let delay = at.saturating_duration_since(Instant::now());
        let h = ctx.run_later(delay, |act, ctx| {
            act.retry_timer = None;
            let now = Instant::now();
            act.core.retry_due(now, Some(now + act.core.config().turn_budget()));
            act.overload.dead_letters(act.core.dead_letters_total(), now);
            act.arm_retry(ctx);
        });
        self.retry_timer = Some((at, h));
    }
}

impl Actor for PriorityDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.core.config().mailbox_capacity);
        tracing::info!(epoch = %self.core.epoch(), last_seq = self.core.latest_seq(), "Event dispatcher started.");
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        tracing::info!(epoch = %self.core.epoch(), last_seq = self.core.latest_seq(),
            queued = self.core.queued(), "Event dispatcher stopped.");
    }
}

impl Handler<RunTurn> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, _: RunTurn, ctx: &mut Self::Context) {
        self.turn(ctx);
    }
}

impl PriorityDispatcher {
    /// Queues one event, then dispatches: a CRITICAL one at once, others in a turn run
    /// here when the mailbox has had a whole turn's time (see the module docs).
    fn accept(&mut self, event: NewEvent, ctx: &mut Context<Self>) -> Result<Published, Rejected> {
        let now = Instant::now();
        let outcome = self.core.offer(event, now);
        if self.core.lane_waiting() {
            self.core.absorb_lane();
        }
        match &outcome {
            Ok(Published::Queued(_)) => {}
            Ok(Published::QueuedShedding { .. } | Published::Shed(_)) => self.overload.note(true, false, now),
            Err(r) if matches!(r.error, DispatchError::Backpressure { .. }) => self.overload.note(false, true, now),
            Err(_) => {}
        }
        let critical = matches!(
            outcome,
            Ok(Published::Queued(Priority::Critical) | Published::QueuedShedding { priority: Priority::Critical, .. })
        );
        // No fan-out is ever in progress while a handler runs.
        if critical {
            self.core.drain_critical();
            self.arm_retry(ctx);
        } else if self.core.queued() > 0 && now.duration_since(self.last_turn) >= self.core.config().turn_budget() {
            self.run_turn();
            self.arm_retry(ctx);
        }
        self.wake_ahead();
        outcome
    }
}

impl Handler<Publish> for PriorityDispatcher {
    type Result = Result<(), DispatchError>;
    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) -> Self::Result {
        let outcome = self.accept(msg.0, ctx);
        self.schedule_turn(ctx);
        outcome.map(|_| ()).map_err(|r| r.error)
    }
}

impl Handler<PublishBatch> for PriorityDispatcher {
    type Result = MessageResult<PublishBatch>;
    fn handle(&mut self, msg: PublishBatch, ctx: &mut Self::Context) -> Self::Result {
        let mut out = BatchOutcome::default();
        for event in msg.0 {
            match self.accept(event, ctx) {
                Ok(Published::Queued(_) | Published::QueuedShedding { .. }) => out.queued += 1,
                Ok(Published::Shed(_)) => out.shed += 1,
                Err(Rejected { event, error: DispatchError::Backpressure { retry_after, .. } }) => {
                    out.refused.push(event);
                    out.retry_after = Some(retry_after);
                }
                Err(_) => out.invalid += 1,
            }
        }
        self.schedule_turn(ctx);
        MessageResult(out)
    }
}

impl Handler<DrainLane> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, _: DrainLane, ctx: &mut Self::Context) {
        self.core.absorb_lane();
        self.wake_ahead();
        self.arm_retry(ctx);
        self.schedule_turn(ctx);
    }
}

impl Handler<GetExpressLane> for PriorityDispatcher {
    type Result = MessageResult<GetExpressLane>;
    fn handle(&mut self, _: GetExpressLane, ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ExpressLane::new(self.core.lane(), ctx.address().recipient()))
    }
}

impl Handler<Subscribe> for PriorityDispatcher {
    type Result = Result<SubscriberId, DispatchError>;
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        let id = self.core.subscribe(msg.label, msg.filter, msg.sink)?;
        tracing::debug!(subscriber = %id, "Subscribed.");
        Ok(id)
    }
}

impl Handler<SubscribeWithReplay> for PriorityDispatcher {
    type Result = ActorResponse<Self, Result<Subscription, DispatchError>>;
    fn handle(&mut self, msg: SubscribeWithReplay, _: &mut Self::Context) -> Self::Result {
        let SubscribeWithReplay { label, filter, sink, since, max_replay, wait_ahead } = msg;
        self.when_reached(since.clone().as_deref(), wait_ahead, move |act| {
            let sub = act.core.subscribe_with_replay(label, filter, sink, since.as_deref(), max_replay)?;
            tracing::debug!(subscriber = %sub.id, recovered = sub.replay.is_ok(), "Subscribed with replay.");
            Ok(sub)
        })
    }
}

impl Handler<GetReplay> for PriorityDispatcher {
    type Result = ActorResponse<Self, Replay>;
    fn handle(&mut self, msg: GetReplay, _: &mut Self::Context) -> Self::Result {
        let since = msg.since.clone();
        self.when_reached(Some(&since), msg.wait_ahead, move |act| {
            act.core.replay_after(&msg.filter, &msg.since, msg.max_replay)
        })
    }
}

impl Handler<Unsubscribe> for PriorityDispatcher {
    type Result = bool;
    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Self::Context) -> bool {
        let found = self.core.unsubscribe(msg.id);
        self.arm_retry(ctx);
        found
    }
}

impl Handler<UpdateSubscription> for PriorityDispatcher {
    type Result = Result<(), DispatchError>;
    fn handle(&mut self, msg: UpdateSubscription, _: &mut Self::Context) -> Self::Result {
        self.core.update_subscription(msg.id, msg.filter)
    }
}

impl Handler<GetHistory> for PriorityDispatcher {
    type Result = ActorResponse<Self, Result<HistoryPage, Unrecoverable>>;
    fn handle(&mut self, msg: GetHistory, _: &mut Self::Context) -> Self::Result {
        let since = msg.since.clone();
        self.when_reached(since.as_deref(), msg.wait_ahead, move |act| {
            act.core.history_page(msg.since.as_deref(), msg.limit, msg.filter.as_ref())
        })
    }
}

impl Handler<FlushUrgent> for PriorityDispatcher {
    type Result = MessageResult<FlushUrgent>;
    fn handle(&mut self, msg: FlushUrgent, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.flush_urgent(Instant::now() + msg.0))
    }
}

impl Handler<SetPriorities> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, msg: SetPriorities, _: &mut Self::Context) {
        self.core.set_priorities(msg.0);
    }
}

impl Handler<GetStats> for PriorityDispatcher {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.stats())
    }
}

impl Handler<GetDeadLetters> for PriorityDispatcher {
    type Result = MessageResult<GetDeadLetters>;
    fn handle(&mut self, msg: GetDeadLetters, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.dead_letters(msg.limit))
    }
}

impl Handler<GetPosition> for PriorityDispatcher {
    type Result = MessageResult<GetPosition>;
    fn handle(&mut self, _: GetPosition, _: &mut Self::Context) -> Self::Result {
        MessageResult(Position { epoch: self.core.epoch().to_owned(), last_seq: self.core.latest_seq() })
    }
}

impl Handler<SetUplink> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, msg: SetUplink, ctx: &mut Self::Context) {
        let on = msg.0.is_some();
        self.core.set_uplink(msg.0);
        tracing::info!(shared = on, epoch = %self.core.epoch(), "Event numbering source set.");
        // Events that waited for the uplink (or for local numbering) go now.
        self.schedule_turn(ctx);
    }
}

impl Handler<Rejoin> for PriorityDispatcher {
    type Result = MessageResult<Rejoin>;
    fn handle(&mut self, msg: Rejoin, ctx: &mut Self::Context) -> Self::Result {
        let snapshot = self.core.rejoin(msg.0);
        self.wake_ahead();
        self.schedule_turn(ctx);
        MessageResult(snapshot)
    }
}

impl Handler<Withdraw> for PriorityDispatcher {
    type Result = MessageResult<Withdraw>;
    fn handle(&mut self, msg: Withdraw, ctx: &mut Self::Context) -> Self::Result {
        let n = self.core.withdraw_uplink(msg.in_flight, msg.rx);
        tracing::info!(epoch = %self.core.epoch(), last_seq = self.core.latest_seq(), leftover = n,
            "Numbering events locally until the shared log returns.");
        self.arm_retry(ctx);
        self.schedule_turn(ctx);
        MessageResult(n)
    }
}

impl Handler<Inject> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, msg: Inject, ctx: &mut Self::Context) {
        for (event, json) in msg.0 {
            self.core.inject(event, json);
            if self.core.lane_waiting() {
                self.core.absorb_lane();
            }
        }
        self.wake_ahead();
        self.arm_retry(ctx);
        // The uplink has room again (its consumer took events to number them).
        self.schedule_turn(ctx);
    }
}

impl Handler<Preload> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, msg: Preload, _: &mut Self::Context) {
        let n = msg.entries.len();
        self.core.preload(msg.origin, msg.entries);
        self.wake_ahead();
        tracing::info!(epoch = %self.core.epoch(), last_seq = self.core.latest_seq(), events = n,
            "Event history loaded from the shared log.");
    }
}

/// The uplink's consumer took events: a turn may drain what waited for room.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct UplinkReady;

impl Handler<UplinkReady> for PriorityDispatcher {
    type Result = ();
    fn handle(&mut self, _: UplinkReady, ctx: &mut Self::Context) {
        self.schedule_turn(ctx);
    }
}

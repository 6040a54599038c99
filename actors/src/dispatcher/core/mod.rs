//! `DispatcherCore`: the whole dispatcher without actix, so ordering, shedding, numbering,
//! fan-out, retries and replay are unit-tested and benchmarked directly. The actor owns
//! one and calls it from its handlers.
//!
//! - `publish` gives an event its priority (config override, else the type's default,
//!   NORMAL for module types) and queues it: a full queue sheds LOW then NORMAL (counted
//!   per type), and refuses HIGH/CRITICAL with `DispatchError::Backpressure`.
//! - `drain` pops by priority, numbers each event (seq is assigned here, at dispatch, so
//!   history order is delivery order), serializes it once (`encode.rs`), appends the bytes
//!   to the history and hands the same `Arc<Event>` and `Bytes` to every matching
//!   subscriber. Between two events it takes what waits in the express lane (`lane.rs`)
//!   and dispatches its CRITICAL events at once; `drain_critical` does the same for a
//!   CRITICAL event just published.
//! - Following a shared log (several instances on one Redis, `cluster/`): with an
//!   `Uplink` set, `dispatch` does not number or fan out; it hands the event, stamped with
//!   its priority, to the uplink (whoever numbers it in Redis), in priority order, and stops
//!   draining while the uplink is full (events wait in the queues, where the shedding policy
//!   applies). Numbered events come back (from every instance) through `inject`, in the
//!   log's order, and are fanned out and kept in the history then. Without an uplink (Redis
//!   unreachable) numbering is local again, continuing the same epoch and seq so live
//!   subscribers see no seam (`uplink.rs`; the bridge reconciles the log with what was
//!   numbered meanwhile); an injected event of another epoch switches to that epoch.
//! - Replay reads the history; because the core is driven by one actor, a subscription
//!   registered in the same call as its replay sees every later event live and none twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::config::DispatcherConfig;
use super::delivery::{DeadLetter, DeadLetters, EventSink, SharedEvent};
use super::encode::Encoder;
use super::error::{DispatchError, BACKPRESSURE_RETRY_AFTER};
use super::filter::{valid_type_name, SubscriptionFilter, MAX_NAME_LEN};
use super::history::{History, HistoryEntry, Origin, Unrecoverable};
use super::lane::Lane;
use super::queue::{Priority, PriorityQueues, Push};
use super::stats::{Count, DispatcherStats, HistoryStats, QueueDepths, StatsCollector};
use super::subscribers::{DeliveryCtx, Registry, SubscriberId};
use crate::events::{Event, EventKind, NewEvent};
use tokio::sync::mpsc::error::TrySendError;

mod reads;
mod uplink;

pub use uplink::Rejoined;

/// Where locally published events go to be numbered, when the dispatcher follows a shared
/// log: events stamped with their priority and no seq (`epoch` empty, `seq` 0).
pub type Uplink = tokio::sync::mpsc::Sender<Event>;

/// What `inject` did with a numbered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    Dispatched,
    /// Dispatched, after switching to the event's epoch (history restarted).
    NewEpoch,
    /// Its seq was not above the last one: already dispatched.
    Duplicate,
}

/// Longest event type accepted from a publisher.
pub const MAX_TYPE_LEN: usize = MAX_NAME_LEN;

/// What `publish` did with an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Queued(Priority),
    /// Queued after dropping the oldest event of the given class.
    QueuedShedding {
        priority: Priority,
        shed: Priority,
    },
    /// Not queued: full, and it was LOW/NORMAL with nothing older of its class or below to
    /// drop. Counted as shed; not an error for the publisher.
    Shed(Priority),
}

/// An event `offer` did not take, given back with the reason.
#[derive(Debug)]
pub struct Rejected {
    pub event: NewEvent,
    pub error: DispatchError,
}

struct Queued {
    event: NewEvent,
    kind: Option<EventKind>,
    at: Instant,
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub epoch: String,
    pub latest_seq: u64,
    pub oldest_seq: Option<u64>,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
    /// More matching events exist beyond `limit` (after the last one, with `since`;
    /// before the first one, without).
    pub truncated: bool,
}

/// A subscription made together with its replay.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: SubscriberId,
    pub epoch: String,
    /// Every replayed event has a seq up to this one, every live event a higher one.
    pub latest_seq: u64,
    /// The matching events after `since`, oldest first; or why they cannot be replayed
    /// (the subscriber is registered either way).
    pub replay: Result<Vec<HistoryEntry>, Unrecoverable>,
}

/// The replay of a subscription held elsewhere (`GetReplay`): what `Subscription` gives,
/// without registering a subscriber.
#[derive(Debug, Clone)]
pub struct Replay {
    pub epoch: String,
    /// Every replayed event has a seq up to this one.
    pub latest_seq: u64,
    pub replay: Result<Vec<HistoryEntry>, Unrecoverable>,
}

pub struct DispatcherCore<S> {
    cfg: DispatcherConfig,
    /// Priority of each built-in type, overrides applied.
    kind_priority: [Priority; EventKind::ALL.len()],
    queues: PriorityQueues<Queued>,
    history: History,
    subs: Registry<S>,
    dead: DeadLetters,
    stats: StatsCollector,
    encoder: Encoder,
    lane: Arc<Lane>,
    uplink: Option<Uplink>,
}

impl<S: EventSink> DispatcherCore<S> {
    /// A core numbering from `origin` (`Origin::fresh()` without a persistent store).
    /// `cfg` should have been validated; out-of-range values are clamped, not trusted.
    pub fn new(cfg: DispatcherConfig, origin: Origin) -> Self {
        let kind_priority = kind_priorities(&cfg.priorities);
        Self {
            kind_priority,
            queues: PriorityQueues::new(cfg.queue_capacity, cfg.starvation_burst),
            history: History::new(cfg.history_size, origin),
            subs: Registry::new(),
            dead: DeadLetters::new(cfg.delivery.dead_letter_capacity),
            stats: StatsCollector::new(),
            encoder: Encoder::new(),
            lane: Arc::new(Lane::new(cfg.express_capacity)),
            uplink: None,
            cfg,
        }
    }

    /// Whether queued events can be drained now (not while a full uplink waits for room).
    pub fn can_drain(&self) -> bool {
        !self.uplink_blocked()
    }

    /// Whether the uplink cannot take an event now (draining waits).
    #[inline]
    fn uplink_blocked(&self) -> bool {
        self.uplink.as_ref().is_some_and(|u| u.capacity() == 0)
    }

    pub fn config(&self) -> &DispatcherConfig {
        &self.cfg
    }

    pub fn epoch(&self) -> &str {
        self.history.epoch()
    }

    pub fn latest_seq(&self) -> u64 {
        self.history.latest_seq()
    }

    pub fn queued(&self) -> usize {
        self.queues.len()
    }

    pub fn subscriber_count(&self) -> usize {
        self.subs.len()
    }

    /// The express lane into this core (see `lane.rs`).
    pub fn lane(&self) -> Arc<Lane> {
        self.lane.clone()
    }

    /// Whether events wait in the express lane.
    #[inline]
    pub fn lane_waiting(&self) -> bool {
        self.lane.has_events()
    }

    /// Queues what waits in the express lane and dispatches its CRITICAL events at once.
    /// Events refused for backpressure go back to the lane, ahead of newer ones; invalid
    /// ones are dropped (the lane's publishers check them first). Returns how many were
    /// queued.
    pub fn absorb_lane(&mut self) -> usize {
        if !self.lane.has_events() {
            return 0;
        }
        let mut events = self.lane.take();
        let mut queued = 0;
        let mut back = VecDeque::new();
        while let Some((e, pushed)) = events.pop_front() {
            match self.offer(e, pushed) {
                Ok(_) => queued += 1,
                Err(Rejected { event, error: DispatchError::Backpressure { .. } }) => {
                    back.push_back((event, pushed));
                    back.append(&mut events);
                }
                Err(Rejected { event, error }) => {
                    tracing::warn!(error = %error, kind = %event.kind, "Invalid event in the express lane; dropped.");
                }
            }
        }
        self.lane.put_back(back);
        self.drain_critical();
        queued
    }

    /// New priority overrides (runtime configuration), for events published from now on.
    pub fn set_priorities(&mut self, priorities: std::collections::BTreeMap<String, Priority>) {
        self.kind_priority = kind_priorities(&priorities);
        self.cfg.priorities = priorities;
    }

    /// The priority an event of this type gets.
    pub fn priority_of(&self, kind: Option<EventKind>, kind_str: &str) -> Priority {
        match kind {
            Some(k) => self.kind_priority[k as usize],
            None => self.cfg.priorities.get(kind_str).copied().unwrap_or(Priority::Normal),
        }
    }

    /// Queues an event (see the module docs for the policy when full).
    pub fn publish(&mut self, event: NewEvent, now: Instant) -> Result<Published, DispatchError> {
        self.offer(event, now).map_err(|r| r.error)
    }

    /// `publish`, handing a refused event back to the caller (to publish it again later).
    // The error gives the caller its own event back, by value: it is not an allocation to save.
    pub fn offer(&mut self, event: NewEvent, now: Instant) -> Result<Published, Rejected> {
        let kind = EventKind::parse(&event.kind);
        if kind.is_none() && !valid_type_name(&event.kind) {
            let error = DispatchError::InvalidEvent(format!(
                "type must be up to {MAX_TYPE_LEN} letters, digits, '_' or '-' in dot-separated parts (alert.raised)"
            ));
            return Err(Rejected { event, error });
        }
        let p = self.priority_of(kind, &event.kind);
        match self.queues.push(p, Queued { event, kind, at: now }) {
            Push::Queued => {
                self.count_queued(p);
                Ok(Published::Queued(p))
            }
            Push::QueuedShedding(shed, old) => {
                self.count_queued(p);
                self.stats.count(old.kind, &old.event.kind, shed, Count::Shed);
                Ok(Published::QueuedShedding { priority: p, shed })
            }
            Push::Refused(item) => {
                if p.sheddable() {
                    self.stats.count(item.kind, &item.event.kind, p, Count::Shed);
                    Ok(Published::Shed(p))
                } else {
                    self.stats.count(item.kind, &item.event.kind, p, Count::Refused);
                    let error = DispatchError::Backpressure { priority: p, retry_after: BACKPRESSURE_RETRY_AFTER };
                    Err(Rejected { event: item.event, error })
                }
            }
        }
    }

    fn count_queued(&mut self, p: Priority) {
        // The item is in the queue now; count it from there (its type is known only there).
        // Done through the queue's back, which is where `push` put it.
        if let Some(q) = self.queues.back(p) {
            let (kind, kind_str) = (q.kind, q.event.kind.as_str());
            self.stats.count(kind, kind_str, p, Count::Published);
        }
    }

    /// Dispatches up to `max` queued events, stopping early once `deadline` has passed
    /// (checked after every event: one event may fan out to thousands of subscribers).
    /// Returns how many were dispatched.
    pub fn drain(&mut self, max: usize, deadline: Option<Instant>) -> usize {
        let mut n = 0;
        while n < max && !self.uplink_blocked() {
            let Some((p, q)) = self.queues.pop() else { break };
            let done = self.dispatch(p, q);
            n += 1;
            if self.lane.has_events() {
                self.absorb_lane();
            }
            if deadline.is_some_and(|d| done >= d) {
                break;
            }
        }
        n
    }

    /// Shutdown: dispatches every queued CRITICAL and HIGH event (LOW and NORMAL stay
    /// queued and are lost with the process), then retries the subscriber backlogs until
    /// none is left or `deadline` passes. Returns (dispatched, deliveries still pending).
    pub fn flush_urgent(&mut self, deadline: Instant) -> (usize, usize) {
        self.absorb_lane();
        let mut n = 0;
        for p in [Priority::Critical, Priority::High] {
            while !self.uplink_blocked() && Instant::now() < deadline {
                let Some(q) = self.queues.pop_class(p) else { break };
                self.dispatch(p, q);
                n += 1;
            }
        }
        // Subscribers read on their own threads: give their mailboxes a moment, then retry.
        while self.subs.pending() > 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
            self.retry_due(Instant::now(), Some(deadline));
        }
        (n, self.subs.pending())
    }

    /// Dispatches every queued CRITICAL event now, whatever the starvation guard's count
    /// (the actor calls it when one arrives). Returns how many.
    pub fn drain_critical(&mut self) -> usize {
        let mut n = 0;
        while !self.uplink_blocked() {
            let Some(q) = self.queues.pop_class(Priority::Critical) else { break };
            self.dispatch(Priority::Critical, q);
            n += 1;
        }
        n
    }

    /// Returns when it was done (the clock is read once per event, for the latency).
    fn dispatch(&mut self, p: Priority, q: Queued) -> Instant {
        let Queued { mut event, kind, at } = q;
        if let Some(up) = &self.uplink {
            match up.try_send(Event::stamp(event, "", 0, p)) {
                Ok(()) => {
                    // Counted as dispatched when it comes back numbered (`inject`); the
                    // latency measured here is its wait in the queues.
                    let done = Instant::now();
                    self.stats.latency(p, done.saturating_duration_since(at));
                    return done;
                }
                // Full cannot happen (checked before popping, and only this core sends);
                // either way the shared log cannot be reached: number locally from now on.
                Err(TrySendError::Full(e) | TrySendError::Closed(e)) => {
                    self.set_uplink(None);
                    event = e.into_new();
                }
            }
        }
        self.number_and_fan_out(event, kind, p, at)
    }

    /// Numbers an event locally (next seq of the current epoch), keeps it in the history
    /// and fans it out. Returns when it was done.
    fn number_and_fan_out(&mut self, event: NewEvent, kind: Option<EventKind>, p: Priority, at: Instant) -> Instant {
        let seq = self.history.next_seq();
        let event = Event::stamp(event, self.history.epoch(), seq, p);
        let encoded = match self.encoder.encode(&event) {
            Ok(e) => e,
            Err(err) => {
                // Cannot happen with serde_json::Value data; the event is dropped, not the seq.
                tracing::error!(error = %err, seq, "Event could not be serialized; dropped.");
                return Instant::now();
            }
        };
        self.stats.count(kind, &event.kind, p, Count::Dispatched);
        let entry = HistoryEntry::from_parts(&event, encoded, kind);
        let shared = SharedEvent::from_parts(Arc::new(event), entry.json.clone(), kind);
        self.history.push(entry);
        let mut cx = DeliveryCtx { cfg: &self.cfg.delivery, stats: &mut self.stats, dead: &mut self.dead };
        self.subs.fan_out(&shared, &mut cx);
        let done = Instant::now();
        self.stats.latency(p, done.saturating_duration_since(at));
        // `shared` dropped here: without subscribers still holding it, the event is freed
        // while it is hot in cache.
        done
    }

    /// Retries the subscriber backlogs that are due, until `deadline` if given (the rest
    /// stay due for the next call).
    pub fn retry_due(&mut self, now: Instant, deadline: Option<Instant>) {
        let mut cx = DeliveryCtx { cfg: &self.cfg.delivery, stats: &mut self.stats, dead: &mut self.dead };
        self.subs.retry_due(now, deadline, &mut cx);
    }

    /// When `retry_due` has work next (`None`: no backlog).
    pub fn next_retry_at(&self) -> Option<Instant> {
        self.subs.next_retry_at()
    }
}

/// The priority of every built-in type: its override, else its default.
fn kind_priorities(overrides: &std::collections::BTreeMap<String, Priority>) -> [Priority; EventKind::ALL.len()] {
    let mut kind_priority = [Priority::Normal; EventKind::ALL.len()];
    for k in EventKind::ALL {
        kind_priority[k as usize] = overrides.get(k.as_str()).copied().unwrap_or(k.default_priority());
    }
    kind_priority
}

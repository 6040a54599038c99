//! The subscriber registry: id -> (label, filter, sink), and the delivery of one event to
//! every matching subscriber, with retries.
//!
//! A delivery that finds the mailbox full puts the event in that subscriber's backlog and
//! schedules a retry (exponential backoff). While a backlog is not empty, newer events
//! queue behind it, so a subscriber sees its events in seq order, never reordered by a
//! retry. An event that fails `max_retries` retries, or is pushed out of a full backlog,
//! becomes a dead letter. A closed sink unsubscribes its subscriber.
//!
//! Subscribers are a vector sorted by id (ids only grow): iteration for fan-out is a
//! linear scan, lookups a binary search.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;

use super::config::DeliveryConfig;
use super::delivery::{DeadLetterReason, DeadLetters, EventSink, SharedEvent, SinkStatus};
use super::filter::SubscriptionFilter;
use super::stats::{Count, StatsCollector};

/// Labels longer than this are cut (they are for people reading stats and dead letters).
pub const MAX_LABEL_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct SubscriberId(pub u64);

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

struct Pending {
    entry: SharedEvent,
    /// Failed attempts so far (0: queued behind others, never tried).
    attempts: u32,
}

struct Subscriber<S> {
    id: SubscriberId,
    label: Arc<str>,
    filter: SubscriptionFilter,
    sink: S,
    backlog: VecDeque<Pending>,
    next_try: Option<Instant>,
    closed: bool,
}

/// What delivery needs besides the registry.
pub(crate) struct DeliveryCtx<'a> {
    pub cfg: &'a DeliveryConfig,
    pub stats: &'a mut StatsCollector,
    pub dead: &'a mut DeadLetters,
}

impl DeliveryCtx<'_> {
    fn dead_letter<S>(&mut self, sub: &Subscriber<S>, p: &Pending, reason: DeadLetterReason) {
        let e = &p.entry.event;
        self.stats.count(p.entry.kind(), &e.kind, e.priority, Count::DeadLettered);
        self.dead.push(DeadLetters::letter(sub.id, &sub.label, &p.entry, p.attempts, reason));
    }
}

impl<S> Subscriber<S> {
    /// Queues behind the backlog; a full backlog gives up its oldest event.
    fn enqueue(&mut self, p: Pending, cx: &mut DeliveryCtx<'_>) -> isize {
        let mut change = 1;
        if self.backlog.len() >= cx.cfg.backlog {
            if let Some(old) = self.backlog.pop_front() {
                cx.dead_letter(self, &old, DeadLetterReason::BacklogFull);
                change -= 1;
            }
        }
        self.backlog.push_back(p);
        change
    }
}

pub(crate) struct Registry<S> {
    subs: Vec<Subscriber<S>>,
    next_id: u64,
    /// Events waiting in backlogs, all subscribers together.
    pending: usize,
    /// Where the next retry pass starts, so a pass cut short by its deadline does not
    /// favour the same subscribers each time.
    retry_cursor: usize,
}

impl<S: EventSink> Registry<S> {
    pub(crate) fn new() -> Self {
        Self { subs: Vec::new(), next_id: 1, pending: 0, retry_cursor: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    pub(crate) fn add(&mut self, label: String, filter: SubscriptionFilter, sink: S) -> SubscriberId {
        let label: Arc<str> = match label.char_indices().nth(MAX_LABEL_CHARS) {
            Some((i, _)) => Arc::from(&label[..i]),
            None => Arc::from(label),
        };
        let id = SubscriberId(self.next_id);
        self.next_id += 1;
        self.subs.push(Subscriber { id, label, filter, sink, backlog: VecDeque::new(), next_try: None, closed: false });
        id
    }

    fn index(&self, id: SubscriberId) -> Option<usize> {
        self.subs.binary_search_by_key(&id, |s| s.id).ok()
    }

    pub(crate) fn remove(&mut self, id: SubscriberId) -> bool {
        match self.index(id) {
            Some(i) => {
                let s = self.subs.remove(i);
                self.pending -= s.backlog.len();
                true
            }
            None => false,
        }
    }

    pub(crate) fn update(&mut self, id: SubscriberId, filter: SubscriptionFilter) -> bool {
        match self.index(id) {
            Some(i) => {
                self.subs[i].filter = filter;
                true
            }
            None => false,
        }
    }

    fn sweep_closed(&mut self) {
        let before = self.subs.len();
        let mut dropped = 0;
        self.subs.retain(|s| {
            if s.closed {
                dropped += s.backlog.len();
                tracing::debug!(subscriber = %s.id, label = %s.label, "Subscriber gone; unsubscribed.");
            }
            !s.closed
        });
        self.pending -= dropped;
        tracing::debug!(removed = before - self.subs.len(), "Closed subscribers removed.");
    }

    /// Delivers one event to every matching subscriber; returns the deliveries made now.
    pub(crate) fn fan_out(&mut self, entry: &SharedEvent, cx: &mut DeliveryCtx<'_>) -> u64 {
        let ev = &*entry.event;
        let kind = entry.kind();
        let mut delivered = 0u64;
        let mut closed = false;
        let mut pending_change = 0isize;
        for sub in self.subs.iter_mut() {
            if !sub.filter.matches(kind, &ev.kind, ev.project_id) {
                continue;
            }
            if !sub.backlog.is_empty() {
                pending_change += sub.enqueue(Pending { entry: entry.clone(), attempts: 0 }, cx);
                continue;
            }
            match sub.sink.try_deliver(entry) {
                SinkStatus::Delivered => delivered += 1,
                SinkStatus::Full => {
                    let p = Pending { entry: entry.clone(), attempts: 1 };
                    if cx.cfg.max_retries == 0 {
                        cx.dead_letter(sub, &p, DeadLetterReason::MailboxFull);
                    } else {
                        sub.backlog.push_back(p);
                        sub.next_try = Some(Instant::now() + cx.cfg.backoff(0));
                        pending_change += 1;
                    }
                }
                SinkStatus::Closed => {
                    sub.closed = true;
                    closed = true;
                }
            }
        }
        self.pending = self.pending.saturating_add_signed(pending_change);
        if delivered > 0 {
            cx.stats.count(kind, &ev.kind, ev.priority, Count::Delivered(delivered));
        }
        if closed {
            self.sweep_closed();
        }
        delivered
    }

    /// The earliest retry due, if any subscriber has a backlog.
    pub(crate) fn next_retry_at(&self) -> Option<Instant> {
        if self.pending == 0 {
            return None;
        }
        self.subs.iter().filter_map(|s| s.next_try).min()
    }

    /// Retries the backlogs whose time has come, each in order until its mailbox is full
    /// again; stops once `deadline` has passed (checked every few deliveries), leaving
    /// the others due.
    pub(crate) fn retry_due(&mut self, now: Instant, deadline: Option<Instant>, cx: &mut DeliveryCtx<'_>) {
        const CLOCK_EVERY: u32 = 32;
        if self.pending == 0 || self.subs.is_empty() {
            return;
        }
        let mut closed = false;
        let mut done = 0usize;
        let mut tries = 0u32;
        let n = self.subs.len();
        let start = self.retry_cursor % n;
        for k in 0..n {
            let i = (start + k) % n;
            if deadline.is_some() && tries >= CLOCK_EVERY {
                tries = 0;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    self.retry_cursor = i;
                    break;
                }
            }
            let sub = &mut self.subs[i];
            if sub.next_try.is_none_or(|t| t > now) {
                continue;
            }
            sub.next_try = None;
            while let Some(front) = sub.backlog.front_mut() {
                tries += 1;
                let (kind, ev) = (front.entry.kind(), &front.entry.event);
                if front.attempts > 0 {
                    cx.stats.count(kind, &ev.kind, ev.priority, Count::Retried);
                }
                match sub.sink.try_deliver(&front.entry) {
                    SinkStatus::Delivered => {
                        cx.stats.count(kind, &ev.kind, ev.priority, Count::Delivered(1));
                        sub.backlog.pop_front();
                        done += 1;
                    }
                    SinkStatus::Full => {
                        front.attempts += 1;
                        let retries_made = front.attempts - 1;
                        if retries_made >= cx.cfg.max_retries {
                            if let Some(p) = sub.backlog.pop_front() {
                                cx.dead_letter(sub, &p, DeadLetterReason::MailboxFull);
                            }
                            done += 1;
                            // The next one starts its own retries after the first delay.
                            if !sub.backlog.is_empty() {
                                sub.next_try = Some(now + cx.cfg.backoff(0));
                            }
                        } else {
                            sub.next_try = Some(now + cx.cfg.backoff(retries_made));
                        }
                        break;
                    }
                    SinkStatus::Closed => {
                        sub.closed = true;
                        closed = true;
                        break;
                    }
                }
            }
        }
        self.pending -= done;
        if closed {
            self.sweep_closed();
        }
    }
}

#[cfg(test)]
impl<S> Registry<S> {
    pub(crate) fn backlog_of(&self, id: SubscriberId) -> Option<usize> {
        self.subs.iter().find(|s| s.id == id).map(|s| s.backlog.len())
    }
}

//! `Lane`: the express lane into the dispatcher, past its mailbox.
//!
//! An actix mailbox is first in, first out: a CRITICAL event sent as `Publish` waits
//! behind every publish already in the mailbox (up to `mailbox_capacity` messages, each
//! of which may be a batch). Events pushed into the lane instead are picked up between
//! any two dispatched events and any two publishes the dispatcher handles, and a wake-up
//! message is sent when the lane goes from empty to not empty (for an idle dispatcher).
//! So their latency does not depend on how much a flood has queued. Meant for the events
//! whose latency matters (server and circuit state); bounded, with backpressure.
//!
//! A std `Mutex` is enough: it is held for a push or a swap, never across an await, and
//! the flag lets the dispatcher look without taking it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::events::NewEvent;

/// An event and when it was pushed (its latency counts from there).
pub type LaneItem = (NewEvent, Instant);

pub struct Lane {
    queue: Mutex<VecDeque<LaneItem>>,
    waiting: AtomicBool,
    capacity: usize,
}

impl Lane {
    pub fn new(capacity: usize) -> Self {
        Self { queue: Mutex::new(VecDeque::new()), waiting: AtomicBool::new(false), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<LaneItem>> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds an event; `Ok(true)` when the lane was empty (wake the dispatcher), `Err`
    /// with the event when the lane is full.
    pub fn push(&self, event: NewEvent) -> Result<bool, NewEvent> {
        let mut q = self.lock();
        if q.len() >= self.capacity {
            return Err(event);
        }
        let was_empty = q.is_empty();
        q.push_back((event, Instant::now()));
        self.waiting.store(true, Ordering::Release);
        Ok(was_empty)
    }

    /// Whether events wait (without locking).
    #[inline]
    pub fn has_events(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes every waiting event, oldest first.
    pub fn take(&self) -> VecDeque<LaneItem> {
        let mut q = self.lock();
        self.waiting.store(false, Ordering::Release);
        std::mem::take(&mut *q)
    }

    /// Puts back events that could not be queued, ahead of newer ones.
    pub fn put_back(&self, mut events: VecDeque<LaneItem>) {
        if events.is_empty() {
            return;
        }
        let mut q = self.lock();
        events.append(&mut q);
        *q = events;
        self.waiting.store(true, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, Source};

    fn ev(kind: EventKind) -> NewEvent {
        NewEvent::new(kind, "s", Source::Central, serde_json::Value::Null)
    }

    #[test]
    fn is_bounded_and_says_when_to_wake() {
        let lane = Lane::new(2);
        assert!(!lane.has_events());
        assert_eq!(lane.push(ev(EventKind::ServerConnected)), Ok(true));
        assert_eq!(lane.push(ev(EventKind::ServerDisconnected)), Ok(false));
        assert!(lane.push(ev(EventKind::CircuitOpened)).is_err());
        assert!(lane.has_events());
        let taken = lane.take();
        assert_eq!(taken.len(), 2);
        assert!(!lane.has_events() && lane.is_empty());
        assert_eq!(lane.push(ev(EventKind::CircuitOpened)), Ok(true), "empty again: wake again");
    }

    #[test]
    fn put_back_keeps_the_older_events_first() {
        let lane = Lane::new(10);
        lane.push(ev(EventKind::ServerConnected)).unwrap();
        let taken = lane.take();
        lane.push(ev(EventKind::CircuitOpened)).unwrap();
        lane.put_back(taken);
        let order: Vec<String> = lane.take().into_iter().map(|(e, _)| e.kind).collect();
        assert_eq!(order, ["server.connected", "circuit.opened"]);
    }
}

//! `Inbox`: the cheap way for an actor to receive events. The dispatcher pushes each
//! event into the subscriber's bounded queue (a lock, a push, two reference counts) and
//! sends one `InboxReady` message only when the queue stops being empty; the actor takes
//! everything that waits in one go. A `Recipient<Deliver>` costs an actix message per
//! event instead (two allocations, the channel's atomics and a task wake-up, from the
//! dispatcher's thread to the subscriber's): with 1,000 subscribers under a flood that
//! was 1-3 microseconds per delivery, and a CRITICAL event waited for the fan-out in
//! progress and then its own (docs/benchmarks.md#event-dispatcher).
//!
//! Events come out in the order they went in (seq order): an inbox never reorders.
//! Full (`capacity` events waiting) is `SinkStatus::Full`, so the dispatcher's retries
//! and dead letters apply as for a full mailbox. An inbox whose actor is gone says
//! `Closed` and its subscription is dropped.
//!
//! Wake-up protocol: `woken` is set by the pusher that finds it clear (that pusher sends
//! `InboxReady`) and cleared by the actor before it takes the queue; so every event
//! pushed is either in the batch taken or announced by a later message, and at most one
//! message is outstanding per inbox.

use actix::{Message, Recipient};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::delivery::{EventSink, SharedEvent, SinkStatus};

/// Default bound of an inbox (events waiting to be taken).
pub const INBOX_CAPACITY: usize = 1024;

/// Sent to the inbox's actor when events wait in it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct InboxReady;

pub struct Inbox {
    queue: Mutex<VecDeque<SharedEvent>>,
    capacity: usize,
    woken: AtomicBool,
    wake: Recipient<InboxReady>,
}

impl Inbox {
    pub fn new(wake: Recipient<InboxReady>) -> Arc<Self> {
        Self::with_capacity(wake, INBOX_CAPACITY)
    }

    pub fn with_capacity(wake: Recipient<InboxReady>, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            woken: AtomicBool::new(false),
            wake,
        })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<SharedEvent>> {
        // Held for a push or a swap: a panic cannot leave the queue half-changed.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything waiting, oldest first; call it from the `InboxReady` handler (it also
    /// re-arms the wake-up). The queue's memory leaves with the batch: an idle inbox holds
    /// none.
    pub fn take(&self) -> VecDeque<SharedEvent> {
        self.woken.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.lock())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventSink for Arc<Inbox> {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        {
            let mut q = self.lock();
            if q.len() >= self.capacity {
                drop(q);
                return if self.wake.connected() { SinkStatus::Full } else { SinkStatus::Closed };
            }
            q.push_back(entry.clone());
        }
        if !self.woken.swap(true, Ordering::SeqCst) {
            // One message at most is outstanding: `do_send` past a full mailbox is bounded.
            if !self.wake.connected() {
                return SinkStatus::Closed;
            }
            self.wake.do_send(InboxReady);
        }
        SinkStatus::Delivered
    }
}

/// What a subscriber is reached through.
pub enum Sink {
    /// One `Deliver` message per event (simple; fine for a few subscribers).
    Actor(Recipient<super::messages::Deliver>),
    /// An inbox (see the module doc): what sessions and module proxies use.
    Inbox(Arc<Inbox>),
}

impl EventSink for Sink {
    #[inline]
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        match self {
            Sink::Actor(r) => r.try_deliver(entry),
            Sink::Inbox(i) => i.try_deliver(entry),
        }
    }
}

impl From<Recipient<super::messages::Deliver>> for Sink {
    fn from(r: Recipient<super::messages::Deliver>) -> Self {
        Sink::Actor(r)
    }
}

impl From<Arc<Inbox>> for Sink {
    fn from(i: Arc<Inbox>) -> Self {
        Sink::Inbox(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventKind, NewEvent, Source};
    use actix::prelude::*;

    fn shared(seq: u64) -> SharedEvent {
        let e = NewEvent::new(EventKind::NodeUpdated, "s", Source::Central, serde_json::Value::Null);
        SharedEvent::new(Event::stamp(e, "ep", seq, crate::dispatcher::Priority::Low)).unwrap()
    }

    /// Counts `InboxReady` messages and takes the inbox on each.
    struct Taker {
        inbox: Option<Arc<Inbox>>,
        wakes: u32,
        seen: Vec<u64>,
        hold: bool,
    }
    impl Actor for Taker {
        type Context = Context<Self>;
    }
    impl Handler<InboxReady> for Taker {
        type Result = ();
        fn handle(&mut self, _: InboxReady, _: &mut Context<Self>) {
            self.wakes += 1;
            if self.hold {
                return;
            }
            if let Some(i) = &self.inbox {
                self.seen.extend(i.take().iter().map(|e| e.seq()));
            }
        }
    }
    #[derive(Message)]
    #[rtype(result = "(u32, Vec<u64>)")]
    struct Report;
    impl Handler<Report> for Taker {
        type Result = MessageResult<Report>;
        fn handle(&mut self, _: Report, _: &mut Context<Self>) -> Self::Result {
            MessageResult((self.wakes, self.seen.clone()))
        }
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct SetInbox(Arc<Inbox>);
    impl Handler<SetInbox> for Taker {
        type Result = ();
        fn handle(&mut self, m: SetInbox, _: &mut Context<Self>) {
            self.inbox = Some(m.0);
        }
    }

    #[actix_rt::test]
    async fn one_wake_up_per_batch_in_order() {
        let a = Taker { inbox: None, wakes: 0, seen: vec![], hold: false }.start();
        let inbox = Inbox::new(a.clone().recipient());
        a.send(SetInbox(inbox.clone())).await.unwrap();
        for seq in 1..=100 {
            assert_eq!(inbox.try_deliver(&shared(seq)), SinkStatus::Delivered);
        }
        let (wakes, seen) = a.send(Report).await.unwrap();
        assert_eq!(seen, (1..=100).collect::<Vec<_>>(), "every event, in order");
        assert_eq!(wakes, 1, "a hundred pushes while the actor was busy: one message");
        // Empty again: the next push announces itself.
        inbox.try_deliver(&shared(101));
        let (wakes, seen) = a.send(Report).await.unwrap();
        assert_eq!((wakes, seen.last().copied()), (2, Some(101)));
        assert!(inbox.is_empty());
    }

    #[actix_rt::test]
    async fn full_then_closed() {
        let a = Taker { inbox: None, wakes: 0, seen: vec![], hold: true }.start();
        let inbox = Inbox::with_capacity(a.clone().recipient(), 3);
        for seq in 1..=3 {
            assert_eq!(inbox.try_deliver(&shared(seq)), SinkStatus::Delivered);
        }
        assert_eq!(inbox.try_deliver(&shared(4)), SinkStatus::Full, "bounded");
        assert_eq!(inbox.len(), 3, "a refused event is not kept");
        // Stop an actor: the inbox says Closed.
        let b = Taker { inbox: None, wakes: 0, seen: vec![], hold: false }.start();
        let inbox2 = Inbox::new(b.clone().recipient());
        b.send(SetInbox(inbox2.clone())).await.unwrap();
        let stopper = b.clone();
        stopper.send(Stop).await.unwrap();
        drop(b);
        drop(stopper);
        let mut status = SinkStatus::Delivered;
        for seq in 0..10_000u64 {
            status = inbox2.try_deliver(&shared(seq));
            if status == SinkStatus::Closed {
                break;
            }
            actix_rt::task::yield_now().await;
        }
        assert_eq!(status, SinkStatus::Closed, "a stopped actor's inbox is closed");
    }

    #[derive(Message)]
    #[rtype(result = "()")]
    struct Stop;
    impl Handler<Stop> for Taker {
        type Result = ();
        fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }
}

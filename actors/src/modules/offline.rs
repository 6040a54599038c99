//! `OfflineQueue`: the messages waiting for one module that is not connected, a plain
//! struct. Bounded in count: when full, the oldest message is given up (returned to the
//! caller, which dead-letters it). Each message expires at its TTL; expired ones are
//! returned by `expire` and never delivered. On reconnect `drain` hands over the rest in
//! arrival order. What a closed connection still held comes back with `push_front`: ahead
//! of everything queued (it is older), and given up first when that makes the queue full.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::envelope::BusMessage;

pub struct OfflineQueue {
    items: VecDeque<(Arc<BusMessage>, Instant)>,
    capacity: usize,
}

impl OfflineQueue {
    pub fn new(capacity: usize) -> Self {
        Self { items: VecDeque::new(), capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues a message until `now + ttl`; returns the oldest message given up for room.
    pub fn push(&mut self, msg: Arc<BusMessage>, ttl: Duration, now: Instant) -> Option<Arc<BusMessage>> {
        let evicted = if self.items.len() >= self.capacity { self.items.pop_front().map(|(m, _)| m) } else { None };
        self.items.push_back((msg, now + ttl));
        evicted
    }

    /// Puts `msgs` (oldest first) back at the front, each until `now` + its own TTL;
    /// returns, oldest first, those given up because the queue is over its capacity.
    pub fn push_front(&mut self, msgs: Vec<Arc<BusMessage>>, now: Instant) -> Vec<Arc<BusMessage>> {
        for m in msgs.into_iter().rev() {
            let at = now + Duration::from_millis(m.ttl);
            self.items.push_front((m, at));
        }
        let over = self.items.len().saturating_sub(self.capacity);
        self.items.drain(..over).map(|(m, _)| m).collect()
    }

    /// Removes and returns the messages whose TTL has passed.
    pub fn expire(&mut self, now: Instant) -> Vec<Arc<BusMessage>> {
        let mut gone = Vec::new();
        self.items.retain(|(m, at)| {
            let keep = *at > now;
            if !keep {
                gone.push(m.clone());
            }
            keep
        });
        gone
    }

    /// Everything still valid, oldest first (expired ones are returned separately).
    pub fn drain(&mut self, now: Instant) -> (Vec<Arc<BusMessage>>, Vec<Arc<BusMessage>>) {
        let expired = self.expire(now);
        (self.items.drain(..).map(|(m, _)| m).collect(), expired)
    }

    /// When the next message expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.items.iter().map(|(_, at)| *at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(n: u64) -> Arc<BusMessage> {
        Arc::new(BusMessage::new("a", "b", "t.x", json!(n)))
    }

    #[test]
    fn keeps_order_expires_and_bounds() {
        let t0 = Instant::now();
        let mut q = OfflineQueue::new(3);
        assert!(q.push(msg(1), Duration::from_secs(1), t0).is_none());
        q.push(msg(2), Duration::from_secs(10), t0);
        q.push(msg(3), Duration::from_secs(10), t0);
        let evicted = q.push(msg(4), Duration::from_secs(10), t0).expect("full: the oldest goes");
        assert_eq!(evicted.payload, json!(1));
        assert_eq!(q.next_expiry(), Some(t0 + Duration::from_secs(10)));
        q.push(msg(5), Duration::from_millis(500), t0);
        let expired = q.expire(t0 + Duration::from_secs(1));
        assert_eq!(expired.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(), [json!(5)]);
        let (live, gone) = q.drain(t0 + Duration::from_secs(2));
        assert_eq!(live.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(), [json!(3), json!(4)]);
        assert!(gone.is_empty() && q.is_empty());
        q.push(msg(6), Duration::from_secs(1), t0);
        let (live, gone) = q.drain(t0 + Duration::from_secs(5));
        assert!(live.is_empty() && gone.len() == 1);
    }

    #[test]
    fn what_comes_back_goes_first_and_is_given_up_first_when_full() {
        let t0 = Instant::now();
        let ttl = |n: u64| {
            let mut m = BusMessage::new("a", "b", "t.x", json!(n));
            m.ttl = 10_000;
            Arc::new(m)
        };
        let mut q = OfflineQueue::new(4);
        q.push(ttl(5), Duration::from_secs(10), t0);
        q.push(ttl(6), Duration::from_secs(10), t0);
        assert!(q.push_front(vec![ttl(3), ttl(4)], t0).is_empty());
        let given_up = q.push_front(vec![ttl(1), ttl(2)], t0);
        assert_eq!(given_up.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(), [json!(1), json!(2)]);
        let (live, _) = q.drain(t0 + Duration::from_secs(1));
        assert_eq!(
            live.iter().map(|m| m.payload.clone()).collect::<Vec<_>>(),
            [json!(3), json!(4), json!(5), json!(6)]
        );
    }
}

//! `PriorityQueues`: the dispatcher's four bounded mailboxes as a plain struct, so the
//! ordering, starvation and shedding rules are unit-tested and benchmarked without actix.
//!
//! - Strict priority CRITICAL > HIGH > NORMAL > LOW, with a starvation guard: after
//!   `burst` pops in a row from higher classes while a lower class waits, a waiting lower
//!   class gets one pop. The guard's turns rotate among the waiting lower classes, so with
//!   HIGH and NORMAL both saturated LOW still gets its turns. Lower classes together thus
//!   keep a share of at least 1/(burst+1) under sustained load, and CRITICAL still waits
//!   at most one pop.
//! - One capacity for all four. When full, room is made by shedding the oldest LOW, then
//!   the oldest NORMAL, and only for an item of a higher or equal class. HIGH and
//!   CRITICAL are never dropped: when nothing can be shed they are refused, and the
//!   publisher sees backpressure (`Push::Refused` carries the item back).

use std::collections::VecDeque;

pub use crate::events::Priority;

/// What happened to a pushed item.
#[derive(Debug, PartialEq)]
pub enum Push<T> {
    /// Queued, nothing dropped.
    Queued,
    /// Queued after dropping this older item (LOW or NORMAL) to make room.
    QueuedShedding(Priority, T),
    /// Not queued: full, and nothing of a lower-or-equal sheddable class to drop. A LOW or
    /// NORMAL item refused here counts as shed by the caller; a HIGH or CRITICAL one must
    /// be retried later (backpressure).
    Refused(T),
}

pub struct PriorityQueues<T> {
    queues: [VecDeque<T>; 4],
    capacity: usize,
    burst: u32,
    /// Consecutive pops from a class higher than some waiting class.
    streak: u32,
    /// The class the guard served last (its next turn goes to the next one below or around).
    guard_last: Priority,
}

impl<T> PriorityQueues<T> {
    /// `capacity` items in all (at least 1); `burst` as in the module docs (0 = strict).
    pub fn new(capacity: usize, burst: u32) -> Self {
        Self { queues: Default::default(), capacity: capacity.max(1), burst, streak: 0, guard_last: Priority::Low }
    }

    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    pub fn depth(&self, p: Priority) -> usize {
        self.queues[p as usize].len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The newest item of a class (the one `push` just queued there).
    pub fn back(&self, p: Priority) -> Option<&T> {
        self.queues[p as usize].back()
    }

    pub fn push(&mut self, p: Priority, item: T) -> Push<T> {
        if self.len() < self.capacity {
            self.queues[p as usize].push_back(item);
            return Push::Queued;
        }
        // Full: shed the oldest LOW, then the oldest NORMAL, never one above `p`.
        for victim in [Priority::Low, Priority::Normal] {
            // Only drop an item whose class is not above the newcomer's.
            if (victim as u8) < (p as u8) {
                continue;
            }
            if let Some(old) = self.queues[victim as usize].pop_front() {
                self.queues[p as usize].push_back(item);
                return Push::QueuedShedding(victim, old);
            }
        }
        Push::Refused(item)
    }

    /// The oldest item of one class, outside the starvation guard's count (for CRITICAL
    /// events dispatched the moment they arrive).
    pub fn pop_class(&mut self, p: Priority) -> Option<T> {
        self.queues[p as usize].pop_front()
    }

    /// The next item by priority, honouring the starvation guard.
    pub fn pop(&mut self) -> Option<(Priority, T)> {
        let first = Priority::ALL.into_iter().find(|p| !self.queues[*p as usize].is_empty())?;
        let lower_waiting =
            Priority::ALL.into_iter().filter(|p| *p > first).find(|p| !self.queues[*p as usize].is_empty());
        let chosen = match lower_waiting {
            Some(highest_lower) if self.burst > 0 && self.streak >= self.burst => {
                self.streak = 0;
                // Rotate: the first waiting lower class after the one served last time.
                let after_last = Priority::ALL
                    .into_iter()
                    .filter(|p| *p > first && *p > self.guard_last)
                    .find(|p| !self.queues[*p as usize].is_empty());
                let lower = after_last.unwrap_or(highest_lower);
                self.guard_last = lower;
                lower
            }
            Some(_) => {
                self.streak += 1;
                first
            }
            None => {
                self.streak = 0;
                first
            }
        };
        self.queues[chosen as usize].pop_front().map(|item| (chosen, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    #[test]
    fn pops_in_strict_priority_order_without_contention() {
        let mut q = PriorityQueues::new(16, 0);
        for (p, v) in [(Low, 1), (Normal, 2), (High, 3), (Critical, 4), (Low, 5), (High, 6)] {
            assert_eq!(q.push(p, v), Push::Queued);
        }
        let order: Vec<i32> = std::iter::from_fn(|| q.pop().map(|(_, v)| v)).collect();
        assert_eq!(order, [4, 3, 6, 2, 1, 5]);
    }

    #[test]
    fn starvation_guard_gives_lower_classes_a_share() {
        let mut q = PriorityQueues::new(1000, 3);
        for i in 0..100 {
            q.push(High, i);
        }
        q.push(Low, 1000);
        let first_five: Vec<_> = (0..5).map(|_| q.pop().unwrap()).collect();
        // three HIGH, then the waiting LOW gets its turn
        assert_eq!(first_five[3], (Low, 1000));
        assert!(first_five.iter().filter(|(p, _)| *p == High).count() == 4);
    }

    #[test]
    fn starvation_guard_rotates_among_waiting_lower_classes() {
        let mut q = PriorityQueues::new(10_000, 2);
        for i in 0..1000 {
            q.push(High, i);
            q.push(Normal, i);
            q.push(Low, i);
        }
        let mut served = [0usize; 4];
        for _ in 0..300 {
            let (p, _) = q.pop().unwrap();
            served[p as usize] += 1;
        }
        // 2 of every 3 pops are HIGH; the guard's turns alternate NORMAL, LOW.
        assert_eq!(served[High as usize], 200);
        assert_eq!(served[Normal as usize], 50);
        assert_eq!(served[Low as usize], 50);
    }

    #[test]
    fn guarded_share_is_at_least_one_in_burst_plus_one() {
        for burst in [1u32, 4, 8] {
            let mut q = PriorityQueues::new(100_000, burst);
            for i in 0..20_000 {
                q.push(Critical, i);
                q.push(Low, i);
            }
            let pops = 9_000;
            let low = (0..pops).filter(|_| q.pop().unwrap().0 == Low).count();
            assert_eq!(low, pops / (burst as usize + 1), "burst {burst}");
        }
    }

    #[test]
    fn sheds_oldest_low_then_normal_never_high_or_critical() {
        let mut q = PriorityQueues::new(3, 0);
        q.push(Low, 1);
        q.push(Normal, 2);
        q.push(Low, 3);
        assert_eq!(q.push(High, 4), Push::QueuedShedding(Low, 1));
        assert_eq!(q.push(Critical, 5), Push::QueuedShedding(Low, 3));
        assert_eq!(q.push(Normal, 6), Push::QueuedShedding(Normal, 2));
        // full of NORMAL/HIGH/CRITICAL: a LOW cannot push anything out
        assert_eq!(q.push(Low, 7), Push::Refused(7));
        assert_eq!(q.push(High, 8), Push::QueuedShedding(Normal, 6));
        // full of HIGH and CRITICAL only: backpressure
        assert_eq!(q.push(Critical, 9), Push::Refused(9));
        assert_eq!(q.depth(High), 2);
        assert_eq!(q.depth(Critical), 1);
    }

    #[test]
    fn no_critical_event_is_lost_under_a_low_flood() {
        let mut q = PriorityQueues::new(100, 8);
        let mut critical_in = 0;
        let mut critical_out = 0;
        for i in 0..100_000u32 {
            if i % 1000 == 0 {
                match q.push(Critical, i) {
                    Push::Refused(_) => panic!("CRITICAL refused while LOW could be shed"),
                    _ => critical_in += 1,
                }
            } else {
                q.push(Low, i);
            }
            if i % 2 == 0 {
                if let Some((Critical, _)) = q.pop() {
                    critical_out += 1;
                }
            }
        }
        while let Some((p, _)) = q.pop() {
            if p == Critical {
                critical_out += 1;
            }
        }
        assert_eq!(critical_in, critical_out);
    }

    #[test]
    fn priorities_parse_case_insensitively() {
        assert_eq!("low".parse::<Priority>().unwrap(), Low);
        assert!("urgent".parse::<Priority>().is_err());
        assert_eq!(serde_json::to_string(&Critical).unwrap(), "\"CRITICAL\"");
    }
}

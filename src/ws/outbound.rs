//! `Outbound`: the frames one session has not handed to its socket yet, bounded in count
//! and bytes. Policy when full: drop a LOW event (the oldest queued, else the incoming
//! one), then a NORMAL one; a HIGH or CRITICAL event or a reply (welcome, action_result,
//! replay...) is never dropped: when it cannot be queued, `push` says so and the session
//! closes with 4008 "slow consumer". Dropped events are counted until `take_missed`, so
//! the client is told in the next frame it gets. A plain struct, tested without actix.

use bytes::Bytes;
use gns3_central_actors::dispatcher::Priority;
use std::collections::VecDeque;

/// How a frame may be treated when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Low,
    Normal,
    /// HIGH/CRITICAL events and replies: never shed.
    Keep,
}

impl Class {
    pub fn of(p: Priority) -> Class {
        match p {
            Priority::Low => Class::Low,
            Priority::Normal => Class::Normal,
            _ => Class::Keep,
        }
    }
}

#[derive(Debug)]
pub struct Frame {
    pub class: Class,
    pub text: Bytes,
    /// A module's bus message: its sequence number with the module's proxy, confirmed
    /// once the frame is written (`Writer::confirmed`). `None` for every other frame.
    pub tag: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Missed {
    pub low: u64,
    pub normal: u64,
}

impl Missed {
    pub fn total(&self) -> u64 {
        self.low + self.normal
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued after shedding, or the incoming frame itself shed.
    Shed,
    /// A frame that may not be shed does not fit: the client is too slow.
    Overflow,
}

pub struct Outbound {
    frames: VecDeque<Frame>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    low: usize,
    normal: usize,
    missed: Missed,
}

impl Outbound {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            low: 0,
            normal: 0,
            missed: Missed::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn fits(&self, len: usize) -> bool {
        // An empty buffer takes any one frame (a large topology must still go out).
        self.frames.is_empty() || (self.frames.len() < self.max_frames && self.bytes + len <= self.max_bytes)
    }

    fn count(&mut self, class: Class, delta: isize) {
        let c = match class {
            Class::Low => &mut self.low,
            Class::Normal => &mut self.normal,
            Class::Keep => return,
        };
        *c = c.saturating_add_signed(delta);
    }

    fn shed(&mut self, class: Class) {
        match class {
            Class::Low => self.missed.low += 1,
            Class::Normal => self.missed.normal += 1,
            Class::Keep => {}
        }
    }

    /// Removes the oldest queued frame of `class`; false when there is none.
    fn evict(&mut self, class: Class) -> bool {
        let present = match class {
            Class::Low => self.low,
            Class::Normal => self.normal,
            Class::Keep => 0,
        };
        if present == 0 {
            return false;
        }
        let Some(i) = self.frames.iter().position(|f| f.class == class) else { return false };
        if let Some(f) = self.frames.remove(i) {
            self.bytes -= f.text.len();
            self.count(class, -1);
            self.shed(class);
        }
        true
    }

    pub fn push(&mut self, frame: Frame) -> Pushed {
        let len = frame.text.len();
        let mut shed = false;
        while !self.fits(len) {
            // Victims: LOW first, then NORMAL, never above the incoming frame's class
            // (a LOW event does not push out a NORMAL one: it is dropped itself).
            let victim = [Class::Low, Class::Normal].into_iter().find(|c| *c <= frame.class && self.evict(*c));
            if victim.is_none() {
                if frame.class == Class::Keep {
                    return Pushed::Overflow;
                }
                self.shed(frame.class);
                return Pushed::Shed;
            }
            shed = true;
        }
        self.bytes += len;
        self.count(frame.class, 1);
        self.frames.push_back(frame);
        if shed {
            Pushed::Shed
        } else {
            Pushed::Queued
        }
    }

    pub fn pop(&mut self) -> Option<Frame> {
        let f = self.frames.pop_front()?;
        self.bytes -= f.text.len();
        self.count(f.class, -1);
        Some(f)
    }

    /// What was shed since the last call (zero afterwards).
    pub fn take_missed(&mut self) -> Missed {
        std::mem::take(&mut self.missed)
    }

    pub fn missed(&self) -> Missed {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(class: Class, s: &'static str) -> Frame {
        Frame { class, text: Bytes::from_static(s.as_bytes()), tag: None }
    }

    #[test]
    fn sheds_low_before_normal_and_never_keep() {
        let mut q = Outbound::new(3, 1 << 20);
        assert_eq!(q.push(f(Class::Normal, "n1")), Pushed::Queued);
        assert_eq!(q.push(f(Class::Low, "l1")), Pushed::Queued);
        assert_eq!(q.push(f(Class::Keep, "k1")), Pushed::Queued);
        // Full: a NORMAL pushes out the LOW.
        assert_eq!(q.push(f(Class::Normal, "n2")), Pushed::Shed);
        assert_eq!(q.missed(), Missed { low: 1, normal: 0 });
        // A LOW finds no LOW to evict: it is dropped itself, NORMALs stay.
        assert_eq!(q.push(f(Class::Low, "l2")), Pushed::Shed);
        assert_eq!(q.missed(), Missed { low: 2, normal: 0 });
        // A KEEP evicts the oldest NORMAL.
        assert_eq!(q.push(f(Class::Keep, "k2")), Pushed::Shed);
        assert_eq!(q.take_missed(), Missed { low: 2, normal: 1 });
        assert_eq!(q.take_missed(), Missed::default());
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|f| f.text).collect();
        assert_eq!(order, ["k1", "n2", "k2"]);
    }

    #[test]
    fn overflow_when_only_keep_frames_are_queued() {
        let mut q = Outbound::new(2, 1 << 20);
        q.push(f(Class::Keep, "a"));
        q.push(f(Class::Keep, "b"));
        assert_eq!(q.push(f(Class::Keep, "c")), Pushed::Overflow);
        assert_eq!(q.push(f(Class::Normal, "d")), Pushed::Shed);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn byte_bound_holds_and_empty_buffer_takes_one_big_frame() {
        let mut q = Outbound::new(100, 10);
        assert_eq!(q.push(f(Class::Keep, "0123456789abcdef")), Pushed::Queued);
        assert_eq!(q.push(f(Class::Low, "x")), Pushed::Shed);
        q.pop();
        for _ in 0..20 {
            q.push(f(Class::Low, "12345"));
            assert!(q.bytes() <= 10);
        }
        assert_eq!(q.len(), 2);
    }
}

//! Handing events to subscribers: the `EventSink` a subscriber is reached through (an
//! `Inbox` or an actix `Recipient<Deliver>` in the service, anything in tests and benches), and the
//! bounded dead-letter list where deliveries end that failed every retry.
//!
//! A sink never blocks: it takes the event at once, says its mailbox is full (the
//! dispatcher retries later with backoff), or says it is closed (the subscriber is gone
//! and is unsubscribed).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::sync::Arc;
use utoipa::ToSchema;

use super::subscribers::SubscriberId;
use crate::events::{Event, EventKind};

/// One dispatched event as subscribers get it: one `Arc<Event>` and one `Bytes` shared by
/// all of them (the bytes also by the history).
#[derive(Debug, Clone)]
pub struct SharedEvent {
    pub event: Arc<Event>,
    pub json: Bytes,
    kind: Option<EventKind>,
}

impl SharedEvent {
    /// Serializes an event for delivery (the dispatcher itself encodes once, into chunks).
    pub fn new(event: Event) -> Result<Self, serde_json::Error> {
        let json = super::encode::to_bytes(&event)?.json;
        let kind = EventKind::parse(&event.kind);
        Ok(Self::from_parts(Arc::new(event), json, kind))
    }

    pub(crate) fn from_parts(event: Arc<Event>, json: Bytes, kind: Option<EventKind>) -> Self {
        Self { event, json, kind }
    }

    /// The built-in type, when it is one (parsed once, for the filters).
    pub fn kind(&self) -> Option<EventKind> {
        self.kind
    }

    pub fn seq(&self) -> u64 {
        self.event.seq
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkStatus {
    Delivered,
    /// The subscriber's mailbox is full: try again later.
    Full,
    /// The subscriber is gone.
    Closed,
}

/// Where one subscriber's events go. Implementations must not block.
pub trait EventSink {
    fn try_deliver(&self, event: &SharedEvent) -> SinkStatus;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// The subscriber's mailbox stayed full through every retry.
    MailboxFull,
    /// The subscriber's backlog was full: the oldest waiting event was given up.
    BacklogFull,
}

fn shared_event<S: Serializer>(e: &Arc<Event>, s: S) -> Result<S::Ok, S::Error> {
    e.as_ref().serialize(s)
}

fn shared_str<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// A delivery given up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetter {
    pub subscriber: SubscriberId,
    /// The subscriber's label (`ws:<session>`, `module:<name>`...).
    #[serde(serialize_with = "shared_str")]
    #[schema(value_type = String)]
    pub subscriber_label: Arc<str>,
    pub reason: DeadLetterReason,
    /// Failed attempts, the first included.
    pub attempts: u32,
    pub at: DateTime<Utc>,
    #[serde(serialize_with = "shared_event")]
    #[schema(value_type = Event)]
    pub event: Arc<Event>,
}

/// The last `capacity` dead letters (older ones are forgotten, but counted).
pub struct DeadLetters {
    ring: VecDeque<DeadLetter>,
    capacity: usize,
    total: u64,
}

impl DeadLetters {
    pub fn new(capacity: usize) -> Self {
        Self { ring: VecDeque::new(), capacity: capacity.max(1), total: 0 }
    }

    pub fn push(&mut self, letter: DeadLetter) {
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(letter);
        self.total += 1;
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Dead letters since start, forgotten ones included.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The `limit` most recent, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<DeadLetter> {
        let skip = self.ring.len().saturating_sub(limit);
        self.ring.iter().skip(skip).cloned().collect()
    }

    pub(crate) fn letter(
        sub: SubscriberId,
        label: &Arc<str>,
        entry: &SharedEvent,
        attempts: u32,
        reason: DeadLetterReason,
    ) -> DeadLetter {
        DeadLetter {
            subscriber: sub,
            subscriber_label: label.clone(),
            reason,
            attempts,
            at: Utc::now(),
            event: entry.event.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{NewEvent, Priority, Source};

    fn entry(seq: u64) -> SharedEvent {
        let new = NewEvent::new(EventKind::NodeStarted, "s", Source::Gns3, serde_json::Value::Null);
        SharedEvent::new(Event::stamp(new, "e", seq, Priority::High)).unwrap()
    }

    #[test]
    fn keeps_the_most_recent_dead_letters_and_counts_all() {
        let mut d = DeadLetters::new(3);
        for seq in 1..=5 {
            d.push(DeadLetters::letter(
                SubscriberId(1),
                &Arc::from("ws:a"),
                &entry(seq),
                4,
                DeadLetterReason::MailboxFull,
            ));
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.total(), 5);
        let seqs: Vec<u64> = d.recent(2).iter().map(|l| l.event.seq).collect();
        assert_eq!(seqs, [4, 5]);
        let v = serde_json::to_value(&d.recent(1)[0]).unwrap();
        assert_eq!(v["reason"], "mailbox_full");
        assert_eq!(v["event"]["id"], "e-5");
        assert_eq!(v["subscriber"], 1);
    }
}

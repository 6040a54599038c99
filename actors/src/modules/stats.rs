//! What is known of one module without asking its actor: counters and gauges shared by
//! the proxy, the sessions and the registry (atomics; a std Mutex for the few fields
//! that are not numbers, held for a copy only), and the bus's bounded dead-letter list.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use utoipa::ToSchema;

use super::envelope::BusMessage;

/// How a module reaches the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Registered over REST; connects on `/ws/modules/{name}` with its token.
    Remote,
    /// Written in Rust and running inside the service (`ModuleHandle`).
    InProcess,
    /// Shipped with the service (the notification sinks).
    Builtin,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
pub struct ModuleStats {
    pub connected: AtomicBool,
    /// Bus messages that reached the module: written to its socket, or handled by its
    /// in-process handler (replies: handed to the waiting request).
    pub delivered: AtomicU64,
    /// Messages sent by the module.
    pub sent: AtomicU64,
    /// Messages refused for it (inbox full), handler failures, events it could not take.
    pub failed: AtomicU64,
    /// Messages or events given up for it (offline queue full, session full, retries spent).
    pub dead_lettered: AtomicU64,
    /// Offline messages whose TTL passed.
    pub expired: AtomicU64,
    /// Events handed to the module.
    pub events_delivered: AtomicU64,
    /// Events it published.
    pub events_published: AtomicU64,
    /// In-process handlers that panicked (caught).
    pub panics: AtomicU64,
    /// Node and project actions it ran.
    pub actions: AtomicU64,
    /// Messages waiting for it: offline queue plus its session's buffer.
    pub offline_depth: AtomicU64,
    pub session_depth: AtomicU64,
    pub connections: AtomicU64,
    /// The account of the bus messages addressed to the module (`MessageAccount`):
    /// sent to it, refused to their sender, dead-lettered, and, of the waiting ones, those
    /// in its proxy's mailbox and those handed to its connection but not yet delivered.
    pub msg_sent: AtomicU64,
    pub msg_refused: AtomicU64,
    pub msg_dead: AtomicU64,
    pub in_mailbox: AtomicU64,
    pub in_flight: AtomicU64,
    last_seen: Mutex<Option<DateTime<Utc>>>,
    subscriptions: Mutex<Vec<String>>,
    last_error: Mutex<Option<String>>,
}

impl ModuleStats {
    pub fn seen(&self) {
        *lock(&self.last_seen) = Some(Utc::now());
    }

    pub fn set_subscriptions(&self, names: Vec<String>) {
        *lock(&self.subscriptions) = names;
    }

    pub fn error(&self, e: impl Into<String>) {
        *lock(&self.last_error) = Some(e.into());
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        StatsSnapshot {
            connected: self.connected.load(Relaxed),
            last_seen: *lock(&self.last_seen),
            subscriptions: lock(&self.subscriptions).clone(),
            delivered: g(&self.delivered),
            sent: g(&self.sent),
            failed: g(&self.failed),
            dead_lettered: g(&self.dead_lettered),
            expired: g(&self.expired),
            events_delivered: g(&self.events_delivered),
            events_published: g(&self.events_published),
            panics: g(&self.panics),
            actions: g(&self.actions),
            mailbox_depth: g(&self.offline_depth) + g(&self.session_depth),
            connections: g(&self.connections),
            last_error: lock(&self.last_error).clone(),
            messages: MessageAccount {
                sent: g(&self.msg_sent),
                received: g(&self.delivered),
                refused: g(&self.msg_refused),
                dead_lettered: g(&self.msg_dead),
                waiting: g(&self.in_mailbox) + g(&self.offline_depth) + g(&self.in_flight),
            },
        }
    }
}

/// The counters as `GET /api/v2/modules` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsSnapshot {
    pub connected: bool,
    pub last_seen: Option<DateTime<Utc>>,
    pub subscriptions: Vec<String>,
    pub delivered: u64,
    pub sent: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub expired: u64,
    pub events_delivered: u64,
    pub events_published: u64,
    pub panics: u64,
    pub actions: u64,
    /// Messages waiting for the module (offline queue and session buffer).
    pub mailbox_depth: u64,
    /// Times it connected since start.
    pub connections: u64,
    pub last_error: Option<String>,
    pub messages: MessageAccount,
}

/// Every bus message sent to one module, accounted for: `sent` is `received` plus
/// `refused` plus `dead_lettered` plus `waiting` (exactly, once the bus is quiet; a read
/// while messages flow may catch one between two hops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageAccount {
    /// Messages addressed to it (targeted, its copy of a broadcast, replies to its
    /// requests).
    pub sent: u64,
    /// Reached it: written to its socket, or handled by its in-process handler (a reply:
    /// handed to its waiting request). The same count as `delivered`.
    pub received: u64,
    /// Refused to their sender (`inbox_full`, `module_offline`, ...), never queued.
    pub refused: u64,
    /// Given up, each with a dead letter and its reason (`GET /api/v2/bus/dead-letters`),
    /// expired ones included.
    pub dead_lettered: u64,
    /// Not there yet: in its proxy's mailbox, its offline queue, or handed to its
    /// connection and not yet written to the socket.
    pub waiting: u64,
}

/// One module as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModuleStatus {
    pub id: String,
    pub name: String,
    pub kind: ModuleKind,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// Why a bus message was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BusDeadReason {
    /// The module's offline queue was full: the oldest message made room.
    OfflineQueueFull,
    /// The module's session could not take it (a module that does not read).
    SessionFull,
    /// An in-process handler failed on every retry (or panicked each time).
    HandlerFailed,
    /// The module was deleted with messages waiting.
    ModuleDeleted,
    /// Its TTL passed while it waited in the offline queue (also counted in `expired`).
    Expired,
    /// A notification sink's queue was full: the oldest event made room.
    SinkQueueFull,
    /// A webhook failed every retry, or refused the event (4xx).
    WebhookFailed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusDeadLetter {
    pub module: String,
    pub reason: BusDeadReason,
    pub at: DateTime<Utc>,
    /// The message (absent for an event a handler could not take; see `event_id`).
    pub message: Option<BusMessage>,
    pub event_id: Option<String>,
    /// The notification sink, for its dead letters.
    pub sink: Option<String>,
}

/// The last `capacity` dead letters of the bus.
pub struct BusDeadLetters {
    ring: Mutex<VecDeque<BusDeadLetter>>,
    capacity: usize,
    total: AtomicU64,
}

impl BusDeadLetters {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { ring: Mutex::new(VecDeque::new()), capacity: capacity.max(1), total: AtomicU64::new(0) })
    }

    pub fn push(&self, module: &str, reason: BusDeadReason, message: Option<&BusMessage>, event_id: Option<&str>) {
        self.add(BusDeadLetter {
            module: module.to_owned(),
            reason,
            at: Utc::now(),
            message: message.cloned(),
            event_id: event_id.map(str::to_owned),
            sink: None,
        });
    }

    /// An event a notification sink gave up.
    pub fn push_sink(&self, module: &str, sink: &str, reason: BusDeadReason, event_id: &str) {
        self.add(BusDeadLetter {
            module: module.to_owned(),
            reason,
            at: Utc::now(),
            message: None,
            event_id: Some(event_id.to_owned()),
            sink: Some(sink.to_owned()),
        });
    }

    fn add(&self, letter: BusDeadLetter) {
        let mut ring = lock(&self.ring);
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(letter);
        self.total.fetch_add(1, Relaxed);
    }

    pub fn recent(&self, limit: usize) -> Vec<BusDeadLetter> {
        let ring = lock(&self.ring);
        ring.iter().skip(ring.len().saturating_sub(limit)).cloned().collect()
    }

    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dead_letters_are_bounded_and_counted() {
        let d = BusDeadLetters::new(2);
        for i in 0..5 {
            let m = BusMessage::new("a", "b", "t", json!(i));
            d.push("b", BusDeadReason::OfflineQueueFull, Some(&m), None);
        }
        assert_eq!(d.total(), 5);
        let recent = d.recent(10);
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[1].message.as_ref().map(|m| m.payload.clone()), Some(json!(4)));
    }

    #[test]
    fn snapshot_sums_the_depths() {
        let s = ModuleStats::default();
        ModuleStats::add(&s.offline_depth, 2);
        ModuleStats::add(&s.session_depth, 3);
        s.set_subscriptions(vec!["node_status".into()]);
        let snap = s.snapshot();
        assert_eq!((snap.mailbox_depth, snap.subscriptions.len()), (5, 1));
        let v = serde_json::to_value(&snap).unwrap();
        assert_eq!(v["connected"], false);
    }
}

//! Settings of the `PriorityDispatcher` (one section of the service's config, e.g.
//! `[events.dispatcher]`). Every bound of the dispatcher is here: queue capacity, history,
//! per-subscriber backlog, dead letters, subscribers, and the size of one drain turn.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::filter::{is_reserved_namespace, valid_type_name};
use super::queue::Priority;
use crate::events::EventKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherConfig {
    /// Events waiting in the four queues together. When full, the oldest LOW and then the
    /// oldest NORMAL are shed; HIGH and CRITICAL are refused (backpressure to the publisher).
    pub queue_capacity: usize,
    /// Starvation guard: after this many pops in a row from higher classes while a lower
    /// class waits, a waiting lower class gets one (rotating among them). Lower classes thus
    /// keep at least 1/(burst+1) of the throughput under sustained load. 0 = strict priority.
    pub starvation_burst: u32,
    /// Events kept for replay (`since`) and for `GET /api/v2/events`.
    pub history_size: usize,
    /// Most events dispatched in one turn of the actor before it looks at its mailbox again.
    pub batch_size: usize,
    /// Time budget of one turn, microseconds: a turn also ends when it is spent, so a
    /// CRITICAL event published during a LOW flood waits at most about this long.
    pub turn_budget_us: u64,
    /// Capacity of the actor's own mailbox: publishers using `send` wait when it is full.
    /// A CRITICAL publish may find this many publishes ahead of it.
    pub mailbox_capacity: usize,
    /// Events waiting in the express lane (`ExpressLane`, for server/circuit events):
    /// past it the lane refuses with backpressure.
    pub express_capacity: usize,
    /// Subscribers registered at once (WebSocket sessions, modules, bridges).
    pub max_subscribers: usize,
    pub delivery: DeliveryConfig,
    /// Priority per event type, overriding the defaults (`"node.updated" = "NORMAL"`).
    /// Module types (`alert.raised`) are NORMAL unless listed here.
    #[serde(deserialize_with = "priority_map")]
    pub priorities: BTreeMap<String, Priority>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 50_000,
            starvation_burst: 8,
            history_size: 10_000,
            batch_size: 256,
            turn_budget_us: 200,
            mailbox_capacity: 256,
            express_capacity: 1024,
            // Above websocket.max_sessions (10,000): every session holds one subscriber.
            max_subscribers: 16384,
            delivery: DeliveryConfig::default(),
            priorities: BTreeMap::new(),
        }
    }
}

/// Delivery to subscribers: a full mailbox is retried with exponential backoff, events
/// wait in a bounded per-subscriber backlog meanwhile (so order is kept), and an event
/// that still cannot be delivered goes to the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Retries of one event after its first failed delivery (0 = dead-letter at once).
    pub max_retries: u32,
    /// Delay before the first retry, milliseconds; doubled each time.
    pub initial_backoff_ms: u64,
    /// Cap on the delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Events waiting for one slow subscriber; past it the oldest is dead-lettered.
    pub backlog: usize,
    /// Dead letters kept (oldest forgotten first).
    pub dead_letter_capacity: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self { max_retries: 3, initial_backoff_ms: 10, max_backoff_ms: 1000, backlog: 256, dead_letter_capacity: 1000 }
    }
}

impl DeliveryConfig {
    /// The delay before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u64.saturating_pow(retry.min(40));
        Duration::from_millis(self.initial_backoff_ms.saturating_mul(factor).min(self.max_backoff_ms))
    }

    fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.max_retries > 20 {
            return Err(format!("{prefix}.max_retries: must be 0-20, got {}", self.max_retries));
        }
        if self.initial_backoff_ms == 0 || self.initial_backoff_ms > self.max_backoff_ms {
            return Err(format!("{prefix}.initial_backoff_ms: must be 1..=max_backoff_ms"));
        }
        if self.max_backoff_ms > 600_000 {
            return Err(format!("{prefix}.max_backoff_ms: must be at most 600000 (10 minutes)"));
        }
        if !(1..=100_000).contains(&self.backlog) {
            return Err(format!("{prefix}.backlog: must be 1-100000, got {}", self.backlog));
        }
        if !(1..=1_000_000).contains(&self.dead_letter_capacity) {
            return Err(format!("{prefix}.dead_letter_capacity: must be 1-1000000, got {}", self.dead_letter_capacity));
        }
        Ok(())
    }
}

impl DispatcherConfig {
    pub fn turn_budget(&self) -> Duration {
        Duration::from_micros(self.turn_budget_us)
    }

    /// Checks values a config file or the environment can get wrong; the error names the key.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if !(1..=10_000_000).contains(&self.queue_capacity) {
            return Err(format!("{prefix}.queue_capacity: must be 1-10000000, got {}", self.queue_capacity));
        }
        if self.starvation_burst > 1_000_000 {
            return Err(format!("{prefix}.starvation_burst: must be 0-1000000, got {}", self.starvation_burst));
        }
        if !(1..=10_000_000).contains(&self.history_size) {
            return Err(format!("{prefix}.history_size: must be 1-10000000, got {}", self.history_size));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(format!("{prefix}.batch_size: must be 1-100000, got {}", self.batch_size));
        }
        if !(10..=1_000_000).contains(&self.turn_budget_us) {
            return Err(format!("{prefix}.turn_budget_us: must be 10-1000000, got {}", self.turn_budget_us));
        }
        if !(1..=1_000_000).contains(&self.mailbox_capacity) {
            return Err(format!("{prefix}.mailbox_capacity: must be 1-1000000, got {}", self.mailbox_capacity));
        }
        if !(1..=1_000_000).contains(&self.express_capacity) {
            return Err(format!("{prefix}.express_capacity: must be 1-1000000, got {}", self.express_capacity));
        }
        if !(1..=1_000_000).contains(&self.max_subscribers) {
            return Err(format!("{prefix}.max_subscribers: must be 1-1000000, got {}", self.max_subscribers));
        }
        self.delivery.validate(&format!("{prefix}.delivery"))?;
        for name in self.priorities.keys() {
            let known = EventKind::parse(name).is_some();
            if !known && (!valid_type_name(name) || is_reserved_namespace(name)) {
                return Err(format!(
                    "{prefix}.priorities: '{name}' is not an event type (a built-in type such as \
                     node.updated, or a module type such as alert.raised)"
                ));
            }
        }
        Ok(())
    }
}

/// Priorities are written as in the envelope (`HIGH`) but accepted in any case.
fn priority_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Priority>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter().map(|(k, v)| v.parse::<Priority>().map(|p| (k, p)).map_err(serde::de::Error::custom)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(DispatcherConfig::default().validate("events.dispatcher"), Ok(()));
        assert_eq!(DispatcherConfig::default().history_size, 10_000);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut c = DispatcherConfig { queue_capacity: 0, ..Default::default() };
        assert!(c.validate("d").unwrap_err().starts_with("d.queue_capacity"));
        c = DispatcherConfig::default();
        c.delivery.initial_backoff_ms = 5000;
        assert!(c.validate("d").unwrap_err().starts_with("d.delivery.initial_backoff_ms"));
        c = DispatcherConfig::default();
        c.priorities.insert("node.stated".into(), Priority::High);
        assert!(c.validate("d").unwrap_err().contains("'node.stated'"));
        c.priorities.clear();
        c.priorities.insert("alert.raised".into(), Priority::Critical);
        assert_eq!(c.validate("d"), Ok(()));
    }

    #[test]
    fn priorities_deserialize_in_any_case_and_unknown_keys_are_refused() {
        let c: DispatcherConfig = serde_json::from_value(serde_json::json!({
            "history_size": 5,
            "priorities": {"node.updated": "normal", "alert.raised": "HIGH"}
        }))
        .unwrap();
        assert_eq!(c.history_size, 5);
        assert_eq!(c.priorities["node.updated"], Priority::Normal);
        assert_eq!(c.priorities["alert.raised"], Priority::High);
        assert!(
            serde_json::from_value::<DispatcherConfig>(serde_json::json!({"priorities": {"a.b": "urgent"}})).is_err()
        );
        assert!(serde_json::from_value::<DispatcherConfig>(serde_json::json!({"histroy_size": 5})).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let d = DeliveryConfig { initial_backoff_ms: 10, max_backoff_ms: 50, ..Default::default() };
        let seq: Vec<u64> = (0..5).map(|r| d.backoff(r).as_millis() as u64).collect();
        assert_eq!(seq, [10, 20, 40, 50, 50]);
        assert_eq!(d.backoff(u32::MAX), Duration::from_millis(50));
    }
}

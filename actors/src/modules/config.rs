//! `[modules]` settings: the bus's bounds and policies (docs/modules.md). Owned by the
//! actors crate like the dispatcher's section; the edge only loads and validates it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What happens to a message for a registered module that is not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflinePolicy {
    /// Kept in the module's offline queue until its TTL, delivered on reconnect.
    Queue,
    /// Refused at once (`module_offline`).
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// Registered modules at most (built-in ones included).
    pub max_modules: usize,
    /// A `ModuleProxy`'s mailbox; senders `try_send`, a full one refuses with `inbox_full`.
    pub inbox_capacity: usize,
    pub offline_policy: OfflinePolicy,
    /// Messages kept per offline module; past it the oldest is dead-lettered.
    pub offline_queue: usize,
    /// TTL of a message that names none, and the largest one accepted (milliseconds).
    pub default_ttl_ms: u64,
    pub max_ttl_ms: u64,
    /// Reply timeout of a request that names none, and the largest one accepted.
    pub request_timeout_ms: u64,
    pub max_request_timeout_ms: u64,
    /// Requests waiting for their reply, all modules together.
    pub max_pending_requests: usize,
    /// Bus dead letters kept (older ones are forgotten but counted).
    pub dead_letter_capacity: usize,
    /// In-process handlers: retries of a failed call (then dead letter), first backoff,
    /// and events or messages waiting for one handler.
    pub handler_max_retries: u32,
    pub handler_backoff_ms: u64,
    pub handler_queue: usize,
    /// A connected module's session mailbox (bus messages and events on their way to its
    /// socket); full: the message is dead-lettered for that module only.
    pub session_mailbox: usize,
    /// Where remote modules' registrations (name, id, token hash) are kept across
    /// restarts; empty: runtime only.
    pub state_file: String,
    /// One bus across instances (docs/modules.md#several-instances): with Redis and
    /// `[cluster] enabled`, remote modules' registrations, queues and accounts are in
    /// Redis and a module may connect to any instance. Off (or no Redis): this instance's
    /// bus only.
    pub shared: bool,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        Self {
            max_modules: 256,
            inbox_capacity: 4096,
            offline_policy: OfflinePolicy::Queue,
            offline_queue: 1000,
            default_ttl_ms: 60_000,
            max_ttl_ms: 3_600_000,
            request_timeout_ms: 5000,
            max_request_timeout_ms: 60_000,
            max_pending_requests: 10_000,
            dead_letter_capacity: 1000,
            handler_max_retries: 3,
            handler_backoff_ms: 50,
            handler_queue: 1024,
            session_mailbox: 4096,
            state_file: String::new(),
            shared: true,
        }
    }
}

impl ModulesConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let positive = [
            ("max_modules", self.max_modules),
            ("inbox_capacity", self.inbox_capacity),
            ("offline_queue", self.offline_queue),
            ("request_timeout_ms", self.request_timeout_ms as usize),
            ("max_pending_requests", self.max_pending_requests),
            ("dead_letter_capacity", self.dead_letter_capacity),
            ("handler_queue", self.handler_queue),
            ("session_mailbox", self.session_mailbox),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("{prefix}.{key}: must be greater than 0"));
            }
        }
        if self.default_ttl_ms > self.max_ttl_ms {
            return Err(format!("{prefix}.default_ttl_ms: must not exceed max_ttl_ms"));
        }
        if self.request_timeout_ms > self.max_request_timeout_ms {
            return Err(format!("{prefix}.request_timeout_ms: must not exceed max_request_timeout_ms"));
        }
        Ok(())
    }

    /// The TTL of a message: the default when none is given, refused above the maximum.
    pub fn ttl(&self, asked: Option<u64>) -> Result<Duration, String> {
        match asked {
            None => Ok(Duration::from_millis(self.default_ttl_ms)),
            Some(ms) if ms > self.max_ttl_ms => {
                Err(format!("ttl {ms} ms is above the maximum of {} ms", self.max_ttl_ms))
            }
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }

    /// The reply timeout of a request, bounded the same way.
    pub fn request_timeout(&self, asked: Option<u64>) -> Result<Duration, String> {
        match asked {
            None => Ok(Duration::from_millis(self.request_timeout_ms)),
            Some(0) => Err("timeout_ms must be greater than 0".into()),
            Some(ms) if ms > self.max_request_timeout_ms => {
                Err(format!("timeout_ms {ms} is above the maximum of {} ms", self.max_request_timeout_ms))
            }
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }

    pub fn handler_backoff(&self, retry: u32) -> Duration {
        let ms = self.handler_backoff_ms.saturating_mul(1u64 << retry.min(10));
        Duration::from_millis(ms.min(10_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_key() {
        assert!(ModulesConfig::default().validate("modules").is_ok());
        let bad = ModulesConfig { inbox_capacity: 0, ..ModulesConfig::default() };
        assert!(bad.validate("modules").unwrap_err().contains("modules.inbox_capacity"));
        let bad = ModulesConfig { default_ttl_ms: 10, max_ttl_ms: 5, ..ModulesConfig::default() };
        assert!(bad.validate("modules").unwrap_err().contains("default_ttl_ms"));
    }

    #[test]
    fn ttl_and_timeouts_default_and_are_capped() {
        let c = ModulesConfig::default();
        assert_eq!(c.ttl(None).unwrap(), Duration::from_secs(60));
        assert_eq!(c.ttl(Some(0)).unwrap(), Duration::ZERO);
        assert!(c.ttl(Some(c.max_ttl_ms + 1)).is_err());
        assert!(c.request_timeout(Some(0)).is_err());
        assert_eq!(c.request_timeout(Some(20)).unwrap(), Duration::from_millis(20));
        assert!(c.handler_backoff(3) > c.handler_backoff(0));
        assert!(c.handler_backoff(60) <= Duration::from_secs(10));
    }
}

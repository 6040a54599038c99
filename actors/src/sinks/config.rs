//! One `[[sinks]]` entry: where a webhook is, which events go there (the dashboard's
//! subscription names, a least priority, projects), its payload format, retries and
//! rate limit.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

use crate::dispatcher::{Priority, SubscriptionFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The event envelope as it is.
    Json,
    /// A Slack incoming-webhook message (`text` + `blocks`).
    Slack,
    /// A Microsoft Teams connector card (`MessageCard`).
    Teams,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub name: String,
    /// Masked in `check-config` (a webhook URL usually holds its secret).
    pub url: crate::secret::Secret,
    #[serde(default = "default_format")]
    pub format: SinkFormat,
    /// Subscription names (groups, types, globs), as on the dashboard WebSocket.
    #[serde(default = "default_types")]
    pub types: Vec<String>,
    /// Events below this priority are not sent.
    #[serde(default = "default_priority")]
    pub min_priority: Priority,
    /// Only these projects (events without a project always pass); empty: all.
    #[serde(default)]
    pub projects: Vec<String>,
    /// Retries of a failed POST (5xx, 429, transport error), with exponential backoff.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
    /// POSTs per minute at most, with bursts of `burst`; events beyond wait in the queue.
    #[serde(default = "default_rate")]
    pub rate_per_minute: f64,
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Events waiting for this sink; when full the oldest is dead-lettered.
    #[serde(default = "default_queue")]
    pub queue: usize,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_format() -> SinkFormat {
    SinkFormat::Json
}
fn default_types() -> Vec<String> {
    vec!["all".into()]
}
fn default_priority() -> Priority {
    Priority::Low
}
fn default_retries() -> u32 {
    3
}
fn default_initial_backoff() -> u64 {
    500
}
fn default_max_backoff() -> u64 {
    30_000
}
fn default_rate() -> f64 {
    60.0
}
fn default_burst() -> u32 {
    10
}
fn default_queue() -> usize {
    1000
}
fn default_timeout() -> u64 {
    5000
}

impl SinkConfig {
    pub fn filter(&self) -> Result<SubscriptionFilter, String> {
        let projects = self
            .projects
            .iter()
            .map(|p| Uuid::parse_str(p.trim()).map_err(|_| format!("'{p}' is not a project UUID")))
            .collect::<Result<Vec<_>, _>>()?;
        SubscriptionFilter::new(self.types.iter(), projects).map_err(|e| e.to_string())
    }

    pub fn validate(&self, at: &str) -> Result<(), String> {
        crate::modules::validate_module_name(&self.name).map_err(|e| format!("{at}.name: {e}"))?;
        let url = url::Url::parse(self.url.expose()).map_err(|e| format!("{at}.url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{at}.url: must be http:// or https://"));
        }
        self.filter().map_err(|e| format!("{at}.types/projects: {e}"))?;
        if self.types.is_empty() {
            return Err(format!("{at}.types: name at least one group, type or glob"));
        }
        if !(self.rate_per_minute.is_finite() && self.rate_per_minute > 0.0) {
            return Err(format!("{at}.rate_per_minute: must be a positive number"));
        }
        if self.burst == 0 || self.queue == 0 || self.timeout_ms == 0 {
            return Err(format!("{at}.burst, queue and timeout_ms: must be greater than 0"));
        }
        if self.initial_backoff_ms > self.max_backoff_ms {
            return Err(format!("{at}.initial_backoff_ms: must not exceed max_backoff_ms"));
        }
        Ok(())
    }

    pub fn backoff(&self, retry: u32) -> Duration {
        let ms = self.initial_backoff_ms.saturating_mul(1u64 << retry.min(20));
        Duration::from_millis(ms.min(self.max_backoff_ms))
    }
}

/// Checks every sink, and that their names differ.
pub fn validate_all(sinks: &[SinkConfig]) -> Result<(), String> {
    for (i, s) in sinks.iter().enumerate() {
        s.validate(&format!("sinks[{i}]"))?;
        if sinks[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("sinks[{i}].name: '{}' is used by another sink", s.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sink(name: &str) -> SinkConfig {
        toml_like(name, "http://127.0.0.1:9/hook")
    }

    fn toml_like(name: &str, url: &str) -> SinkConfig {
        serde_json::from_value(serde_json::json!({"name": name, "url": url})).unwrap()
    }

    #[test]
    fn defaults_and_validation_name_the_key() {
        let s = sink("ops");
        assert_eq!((s.format, s.min_priority, s.max_retries), (SinkFormat::Json, Priority::Low, 3));
        assert!(validate_all(std::slice::from_ref(&s)).is_ok());
        let e = validate_all(&[s.clone(), s.clone()]).unwrap_err();
        assert!(e.contains("sinks[1].name"), "{e}");
        let bad = toml_like("ops", "ftp://x");
        assert!(bad.validate("sinks[0]").unwrap_err().contains("sinks[0].url"));
        let bad = SinkConfig { types: vec!["node.stated".into()], ..sink("ops") };
        assert!(bad.validate("sinks[0]").unwrap_err().contains("types"));
        let bad = SinkConfig { projects: vec!["nope".into()], ..sink("ops") };
        assert!(bad.validate("sinks[0]").is_err());
        assert!(toml_like("Bad", "http://x").validate("s").is_err());
        let s = SinkConfig { initial_backoff_ms: 100, max_backoff_ms: 1000, ..sink("ops") };
        assert_eq!(
            (s.backoff(0), s.backoff(2), s.backoff(10)),
            (Duration::from_millis(100), Duration::from_millis(400), Duration::from_secs(1))
        );
    }
}

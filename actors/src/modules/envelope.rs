//! The bus envelope every module message travels in: `{id, from, to, type, payload,
//! correlation_id, reply_to, ttl, timestamp}`. `to` is a module name or `*` (every other
//! module). A request is a message with `reply_to` set (the module the answer goes to);
//! its reply carries the request's `id` as `correlation_id`. `ttl` is how long (ms) the
//! message may wait for an offline module; 0 means "only if connected now".
//!
//! Module names and message types are checked here, so a bad one is refused before it
//! reaches any mailbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::BusError;
use crate::dispatcher::filter::is_reserved_namespace;

/// `to` for a broadcast.
pub const BROADCAST: &str = "*";
/// Longest module name and message type.
pub const MAX_NAME_LEN: usize = 64;
pub const MAX_TYPE_LEN: usize = 128;
/// Names no module may take: the built-in event namespaces (so a module's events cannot
/// pass for GNS3's), and names the bus uses itself.
const RESERVED_NAMES: [&str; 4] = ["api", "central", "all", "modules"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BusMessage {
    pub id: String,
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Any JSON value (`null` when the sender gave none).
    #[schema(value_type = Value)]
    pub payload: Value,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    /// Milliseconds the message may wait for an offline module.
    pub ttl: u64,
    pub timestamp: DateTime<Utc>,
}

impl BusMessage {
    pub fn new(from: &str, to: &str, kind: &str, payload: Value) -> Self {
        Self {
            id: Uuid::new_v4().to_string(),
            from: from.to_owned(),
            to: to.to_owned(),
            kind: kind.to_owned(),
            payload,
            correlation_id: None,
            reply_to: None,
            ttl: 0,
            timestamp: Utc::now(),
        }
    }

    pub fn is_broadcast(&self) -> bool {
        self.to == BROADCAST
    }

    /// The answer to this request (type `reply` unless given), addressed to `reply_to`.
    pub fn reply(&self, from: &str, kind: Option<&str>, payload: Value) -> BusMessage {
        let mut r =
            BusMessage::new(from, self.reply_to.as_deref().unwrap_or(&self.from), kind.unwrap_or("reply"), payload);
        r.correlation_id = Some(self.id.clone());
        r
    }

    /// Checks the parts a sender controls.
    pub fn validate(&self) -> Result<(), BusError> {
        if self.to != BROADCAST {
            check_target(&self.to)?;
        }
        check_type(&self.kind)?;
        if let Some(c) = &self.correlation_id {
            // Characters, as the OpenAPI document's `maxLength` counts them (not bytes).
            if c.is_empty() || c.chars().count() > 128 {
                return Err(BusError::Invalid("correlation_id must have 1 to 128 characters".into()));
            }
        }
        Ok(())
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// A module name: 1-64 of `a-z 0-9 _ -`, starting with a letter, not a built-in event
/// namespace (`node`, `server`...) nor a name the bus uses (`api`, `central`...).
pub fn validate_module_name(name: &str) -> Result<(), BusError> {
    let bad = |reason| Err(BusError::InvalidName { name: shown(name), reason });
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("a module name has 1 to 64 characters");
    }
    if !name.as_bytes()[0].is_ascii_lowercase() || !name.bytes().all(name_byte) {
        return bad("a module name is lowercase letters, digits, '_' and '-', starting with a letter");
    }
    if is_reserved_namespace(&format!("{name}.x")) || RESERVED_NAMES.contains(&name) {
        return bad("this name is reserved");
    }
    Ok(())
}

/// A target: a name that could be registered (unknown ones are refused by the registry).
fn check_target(to: &str) -> Result<(), BusError> {
    if to.is_empty() || to.len() > MAX_NAME_LEN || !to.bytes().all(name_byte) {
        return Err(BusError::Invalid(format!("'to' must be a module name or '*', got '{}'", shown(to))));
    }
    Ok(())
}

/// A message type: 1-128 of letters, digits, `_`, `-`, `.`.
pub fn check_type(kind: &str) -> Result<(), BusError> {
    let ok = !kind.is_empty()
        && kind.len() <= MAX_TYPE_LEN
        && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(BusError::Invalid(format!(
            "'type' must have 1 to 128 letters, digits, '_', '-' or '.', got '{}'",
            shown(kind)
        )))
    }
}

/// Whether `module` may publish events of type `kind`: `<module>.<rest>`, a valid type.
pub fn check_event_namespace(module: &str, kind: &str) -> Result<(), BusError> {
    let ok = kind.strip_prefix(module).and_then(|r| r.strip_prefix('.')).is_some_and(|r| !r.is_empty())
        && crate::dispatcher::filter::valid_type_name(kind);
    if ok {
        Ok(())
    } else {
        Err(BusError::Namespace { module: module.to_owned(), kind: shown(kind) })
    }
}

fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn module_names_are_checked() {
        for good in ["monitoring", "sec-1", "a", "net_analysis"] {
            assert!(validate_module_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Monitoring", "1abc", "a.b", "node", "server", "api", "*", &"a".repeat(65)] {
            assert_eq!(validate_module_name(bad).unwrap_err().code(), "invalid_module_name", "{bad}");
        }
    }

    #[test]
    fn envelopes_validate_and_replies_correlate() {
        let mut m = BusMessage::new("monitoring", "security", "scan.request", json!({"x": 1}));
        assert!(m.validate().is_ok());
        m.reply_to = Some("monitoring".into());
        let r = m.reply("security", None, json!({"ok": true}));
        assert_eq!(
            (r.to.as_str(), r.kind.as_str(), r.correlation_id.as_deref()),
            ("monitoring", "reply", Some(m.id.as_str()))
        );
        let v = serde_json::to_value(&m).unwrap();
        for k in ["id", "from", "to", "type", "payload", "correlation_id", "reply_to", "ttl", "timestamp"] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        m.to = "Bad Name".into();
        assert_eq!(m.validate().unwrap_err().code(), "invalid_message");
        m.to = BROADCAST.into();
        m.kind = "a b".into();
        assert_eq!(m.validate().unwrap_err().code(), "invalid_message");
    }

    #[test]
    fn modules_publish_only_in_their_namespace() {
        assert!(check_event_namespace("monitoring", "monitoring.alert").is_ok());
        assert!(check_event_namespace("monitoring", "monitoring.alert.raised").is_ok());
        for bad in
            ["security.alert", "node.started", "monitoring.", "monitoring", "monitoringx.alert", "monitoring.a b"]
        {
            assert_eq!(check_event_namespace("monitoring", bad).unwrap_err().code(), "forbidden_namespace", "{bad}");
        }
    }
}

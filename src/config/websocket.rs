//! `[websocket]`: the dashboard and module sockets' heartbeat, limits and outbound buffer
//! (each key is commented in config/default.toml).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default ping period of a session.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Default silence after which a client is closed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// `[websocket]` settings; see config/default.toml for each one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub actions_per_second: f64,
    pub action_burst: u32,
    pub queue_frames: usize,
    pub queue_bytes: usize,
    pub unflushed_bytes: usize,
    pub max_replay: usize,
    pub max_sessions: usize,
    pub shutdown_grace_ms: u64,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
            client_timeout_ms: CLIENT_TIMEOUT.as_millis() as u64,
            max_frame_bytes: 65536,
            max_subscriptions: 64,
            actions_per_second: 5.0,
            action_burst: 10,
            queue_frames: 1024,
            queue_bytes: 4 * 1024 * 1024,
            unflushed_bytes: 256 * 1024,
            max_replay: 10_000,
            max_sessions: 10_000,
            shutdown_grace_ms: 2000,
        }
    }
}

impl WsSettings {
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let positive = [
            ("heartbeat_interval_ms", self.heartbeat_interval_ms as usize),
            ("client_timeout_ms", self.client_timeout_ms as usize),
            ("max_subscriptions", self.max_subscriptions),
            ("action_burst", self.action_burst as usize),
            ("queue_frames", self.queue_frames),
            ("max_sessions", self.max_sessions),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("{prefix}.{key}: must be greater than 0"));
            }
        }
        if self.client_timeout_ms <= self.heartbeat_interval_ms {
            return Err(format!("{prefix}.client_timeout_ms: must be longer than heartbeat_interval_ms"));
        }
        if self.max_frame_bytes < 256 {
            return Err(format!("{prefix}.max_frame_bytes: must be at least 256"));
        }
        if self.queue_bytes < 1024 || self.unflushed_bytes < 1024 {
            return Err(format!("{prefix}.queue_bytes and unflushed_bytes: must be at least 1024"));
        }
        if !(self.actions_per_second.is_finite() && self.actions_per_second > 0.0) {
            return Err(format!("{prefix}.actions_per_second: must be a positive number"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_matches_the_defaults() {
        let s = crate::config::Settings::load_with(None, &|_| None, vec![]).expect("defaults load");
        assert_eq!(s.websocket, WsSettings::default());
        assert!(WsSettings::default().validate("websocket").is_ok());
    }

    #[test]
    fn environment_overrides_websocket_settings() {
        let vars = vec![
            ("GNS3_CENTRAL__WEBSOCKET__MAX_FRAME_BYTES".to_owned(), "4096".to_owned()),
            ("GNS3_CENTRAL__WEBSOCKET__CLIENT_TIMEOUT_MS".to_owned(), "30000".to_owned()),
        ];
        let s = crate::config::Settings::load_with(None, &|_| None, vars).expect("loads");
        assert_eq!((s.websocket.max_frame_bytes, s.websocket.client_timeout_ms), (4096, 30000));
        let vars = vec![("GNS3_CENTRAL__WEBSOCKET__CLIENT_TIMEOUT_MS".to_owned(), "10".to_owned())];
        let e = crate::config::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("websocket.client_timeout_ms"), "{e}");
    }

    #[test]
    fn every_session_can_hold_a_subscriber() {
        // The defaults once allowed 10,000 sessions and 4,096 subscribers: sessions past
        // 4,095 opened but got subscribe_failed (found by benches/ws_load/).
        let s = crate::config::Settings::load_with(None, &|_| None, vec![]).expect("defaults load");
        assert!(s.events.max_subscribers > s.websocket.max_sessions + s.modules.max_modules);
        let vars = vec![("GNS3_CENTRAL__WEBSOCKET__MAX_SESSIONS".to_owned(), "20000".to_owned())];
        let e = crate::config::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("events.max_subscribers"), "{e}");
        // Modules hold subscribers too: 16,384 > 10,000 sessions, but not with 8,000 modules.
        let vars = vec![("GNS3_CENTRAL__MODULES__MAX_MODULES".to_owned(), "8000".to_owned())];
        let e = crate::config::Settings::load_with(None, &|_| None, vars).unwrap_err().to_string();
        assert!(e.contains("events.max_subscribers") && e.contains("18000"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_key() {
        let bad = WsSettings { client_timeout_ms: 100, heartbeat_interval_ms: 200, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("websocket.client_timeout_ms"));
        let bad = WsSettings { actions_per_second: f64::NAN, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("actions_per_second"));
        let bad = WsSettings { queue_frames: 0, ..WsSettings::default() };
        assert!(bad.validate("websocket").unwrap_err().contains("queue_frames"));
    }
}

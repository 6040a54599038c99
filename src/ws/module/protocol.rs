//! The frames of `/ws/modules/{name}` (docs/modules.md#module-protocol): what a module may send,
//! parsed with the shared parser (`ws/frames.rs`, the dashboard's error codes), and the
//! `message` frame that carries a bus message to it. Bus messages travel inside a `message` object shaped like the bus envelope,
//! since the frame's own `type` names the frame.

use gns3_central_actors::modules::BusMessage;
use serde::Deserialize;
use serde_json::Value;

use crate::ws::frames::{parse_as, FrameError};

/// The parts of a bus message a module gives; the bus fills in the rest (`id`, `from`,
/// `timestamp`, and `ttl` when absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingMessage {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// An event a module publishes in its namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutgoingEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModuleFrame {
    Subscribe {
        subscriptions: Vec<String>,
        #[serde(default)]
        projects: Option<Vec<String>>,
        /// The id of the last event the module handled: the ones after it are replayed.
        #[serde(default)]
        since: Option<String>,
    },
    Unsubscribe {
        subscriptions: Vec<String>,
    },
    Send {
        message: OutgoingMessage,
    },
    Broadcast {
        message: OutgoingMessage,
    },
    Request {
        message: OutgoingMessage,
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
    Reply {
        message: OutgoingMessage,
    },
    Publish {
        event: OutgoingEvent,
    },
    NodeAction {
        action: String,
        project_id: String,
        node_id: String,
        #[serde(default)]
        server: Option<String>,
    },
    ProjectAction {
        action: String,
        project_id: String,
        #[serde(default)]
        server: Option<String>,
    },
    NodeStatus {
        project_id: String,
        node_id: String,
        #[serde(default)]
        server: Option<String>,
    },
    RequestTopology {
        #[serde(default)]
        project_id: Option<String>,
        #[serde(default)]
        server: Option<String>,
    },
    NetworkSummary,
    Ping,
}

pub const MODULE_FRAME_TYPES: [&str; 13] = [
    "subscribe",
    "unsubscribe",
    "send",
    "broadcast",
    "request",
    "reply",
    "publish",
    "node_action",
    "project_action",
    "node_status",
    "request_topology",
    "network_summary",
    "ping",
];

pub fn parse(text: &str) -> (Option<Value>, Result<ModuleFrame, FrameError>) {
    parse_as(text, &MODULE_FRAME_TYPES)
}

/// `{"type":"message","message":<envelope>}`: a bus message for the module (serialized
/// in one pass, without an intermediate `Value`: this is the bus's hot path).
pub fn message(m: &BusMessage) -> String {
    #[derive(serde::Serialize)]
    struct MessageFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        message: &'a BusMessage,
    }
    serde_json::to_string(&MessageFrame { kind: "message", message: m }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_parse_and_bad_ones_have_codes() {
        let (id, f) = parse(r#"{"type":"send","request_id":"s1","message":{"to":"b","type":"x.y","payload":{"n":1}}}"#);
        assert_eq!(id, Some(json!("s1")));
        match f.unwrap() {
            ModuleFrame::Send { message } => {
                assert_eq!((message.to.as_deref(), message.payload["n"].as_u64()), (Some("b"), Some(1)))
            }
            other => panic!("{other:?}"),
        }
        let code = |t: &str| parse(t).1.err().map(|e| e.code.as_str());
        assert_eq!(code("{"), Some("invalid_json"));
        assert_eq!(code(r#"{"type":"send"}"#), Some("missing_field"));
        assert_eq!(code(r#"{"type":"send","message":{"to":"b","bogus":1}}"#), Some("invalid_field"));
        assert_eq!(
            code(r#"{"type":"subscribe","subscriptions":["all"],"bogus":"x"}"#),
            None,
            "unknown keys of a frame are ignored"
        );
        assert_eq!(code(r#"{"type":"subscribe","subscriptions":["all"],"since":7}"#), Some("invalid_field"));
        assert_eq!(code(r#"{"type":"dance"}"#), Some("unknown_type"));
        assert_eq!(code(r#"{"type":"network_summary"}"#), None);
    }

    #[test]
    fn message_frames_wrap_the_envelope() {
        let m = BusMessage::new("a", "b", "x.y", json!({"n": 1}));
        let v: Value = serde_json::from_str(&message(&m)).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["message"]["type"].as_str(), v["message"]["payload"]["n"].as_u64()),
            (Some("message"), Some("x.y"), Some(1))
        );
    }
}

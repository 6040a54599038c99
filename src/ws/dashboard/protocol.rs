//! The frames of `/ws/gns3/events/` (docs/websocket.md): what a
//! client may send (parsed by the shared `frames::parse_as`, with an error code for every
//! way it can be wrong); the replies both sockets send are built in `ws/frames.rs`, the
//! `replay` frame in `ws/replay.rs`. Events are not built here: they go out as
//! the bytes the dispatcher serialized once for every subscriber.

use serde::Deserialize;
use serde_json::Value;

use crate::ws::frames::{parse_as, FrameError};

/// A client frame that parsed.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Subscribe {
        subscriptions: Vec<String>,
        #[serde(default)]
        projects: Option<Vec<String>>,
        #[serde(default)]
        since: Option<String>,
    },
    Unsubscribe {
        subscriptions: Vec<String>,
    },
    NodeAction {
        action: String,
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
    Ping,
}

pub const FRAME_TYPES: [&str; 5] = ["subscribe", "unsubscribe", "node_action", "request_topology", "ping"];

/// Parses a text frame; the request id (a string or an integer) comes back with either
/// result, so replies and errors can carry it.
pub fn parse(text: &str) -> (Option<Value>, Result<ClientFrame, FrameError>) {
    parse_as(text, &FRAME_TYPES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frames::pong;
    use serde_json::json;

    #[test]
    fn every_bad_frame_has_its_code() {
        let code = |t: &str| parse(t).1.err().map(|e| e.code.as_str());
        assert_eq!(code("{nope"), Some("invalid_json"));
        assert_eq!(code("[1]"), Some("invalid_frame"));
        assert_eq!(code("{}"), Some("missing_field"));
        assert_eq!(code(r#"{"type":7}"#), Some("invalid_field"));
        assert_eq!(code(r#"{"type":"dance"}"#), Some("unknown_type"));
        assert_eq!(code(r#"{"type":"subscribe"}"#), Some("missing_field"));
        assert_eq!(code(r#"{"type":"subscribe","subscriptions":"all"}"#), Some("invalid_field"));
        assert_eq!(code(r#"{"type":"ping","request_id":[1]}"#), Some("invalid_field"));
        assert_eq!(code(r#"{"type":"ping"}"#), None);
    }

    #[test]
    fn request_id_comes_back_with_errors() {
        let (id, r) = parse(r#"{"type":"node_action","request_id":"r1","action":"start"}"#);
        assert_eq!(id, Some(json!("r1")));
        let e = r.unwrap_err();
        assert_eq!((e.code.as_str(), e.request_id), ("missing_field", Some(json!("r1"))));
    }

    #[test]
    fn request_id_comes_back_exactly_or_is_refused() {
        // The fuzzer's find: this float came back as 233333333.33333334, a different number.
        let (id, r) = parse(r#"{"type":"ping","request_id":2.33333333333333333333333333333333333333333333333335e8}"#);
        assert_eq!((id, r.unwrap_err().code.as_str()), (None, "invalid_field"));
        for raw in ["1.5", "1e3", "1.0", "123456789012345678901234567890"] {
            let (id, r) = parse(&format!(r#"{{"type":"ping","request_id":{raw}}}"#));
            assert!(id.is_none() && r.is_err(), "{raw}");
        }
        for raw in ["-7", "18446744073709551615", "\"a1\""] {
            let (id, r) = parse(&format!(r#"{{"type":"ping","request_id":{raw}}}"#));
            assert!(r.is_ok(), "{raw}");
            assert_eq!(pong(id.as_ref()), format!(r#"{{"request_id":{raw},"type":"pong"}}"#));
        }
    }
}

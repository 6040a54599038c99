//! The frames of `/ws/gns3/events/` (DESIGN.md, README "WebSocket protocol"): what a
//! client may send, parsed with an error code for every way it can be wrong, and the
//! replies the session builds. Events are not built here: they go out as the bytes the
//! dispatcher serialized once for every subscriber.

use serde::Deserialize;
use serde_json::{json, Value};

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

/// A frame that did not parse: the `error` frame to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    pub request_id: Option<Value>,
}

impl FrameError {
    pub fn new(code: &'static str, message: impl Into<String>, request_id: Option<Value>) -> Self {
        Self { code, message: message.into(), request_id }
    }

    pub fn to_frame(&self) -> String {
        error(self.code, &self.message, self.request_id.as_ref(), None)
    }
}

/// Parses a text frame; the request id (a string or an integer) comes back with either
/// result, so replies and errors can carry it.
pub fn parse(text: &str) -> (Option<Value>, Result<ClientFrame, FrameError>) {
    parse_as(text, &FRAME_TYPES)
}

/// `parse` for another frame set (the module protocol): `types` are the `type` values
/// `T` (a `#[serde(tag = "type")]` enum) accepts.
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str, types: &[&str]) -> (Option<Value>, Result<T, FrameError>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("the frame is not valid JSON: {e}");
            return (None, Err(FrameError::new("invalid_json", msg, None)));
        }
    };
    let Some(obj) = value.as_object() else {
        return (None, Err(FrameError::new("invalid_frame", "a frame must be a JSON object with a \"type\"", None)));
    };
    // Integers only among numbers: a float is not echoed as it was sent (serde_json reads
    // a long mantissa to a neighbouring f64 and writes it in its own notation), so the
    // client could not match the reply (found by fuzzing; JSON-RPC 2.0 asks the same).
    let request_id = match obj.get("request_id") {
        None | Some(Value::Null) => None,
        Some(v @ Value::String(_)) => Some(v.clone()),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
        Some(_) => {
            return (None, Err(FrameError::new("invalid_field", "request_id must be a string or an integer", None)))
        }
    };
    let kind = match obj.get("type") {
        None => return (request_id.clone(), Err(FrameError::new("missing_field", "missing field `type`", request_id))),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            let e = FrameError::new("invalid_field", "`type` must be a string", request_id.clone());
            return (request_id, Err(e));
        }
    };
    if !types.contains(&kind.as_str()) {
        let shown: String = kind.chars().take(64).collect();
        let msg = format!("unknown frame type '{shown}' (expected one of: {})", types.join(", "));
        return (request_id.clone(), Err(FrameError::new("unknown_type", msg, request_id)));
    }
    let mut body = value;
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    match serde_json::from_value::<T>(body) {
        Ok(f) => (request_id, Ok(f)),
        Err(e) => {
            let text = e.to_string();
            let code = if text.starts_with("missing field") { "missing_field" } else { "invalid_field" };
            (request_id.clone(), Err(FrameError::new(code, format!("{kind}: {text}"), request_id)))
        }
    }
}

fn with_request_id(mut v: Value, request_id: Option<&Value>) -> String {
    if let (Some(id), Some(o)) = (request_id, v.as_object_mut()) {
        o.insert("request_id".into(), id.clone());
    }
    v.to_string()
}

pub fn error(code: &str, message: &str, request_id: Option<&Value>, details: Option<Value>) -> String {
    let mut v = json!({"type": "error", "code": code, "message": message});
    if let (Some(d), Some(o)) = (details, v.as_object_mut()) {
        o.insert("details".into(), d);
    }
    with_request_id(v, request_id)
}

pub fn pong(request_id: Option<&Value>) -> String {
    with_request_id(json!({"type": "pong"}), request_id)
}

pub fn subscribed(names: &[String], projects: Option<&[uuid::Uuid]>, request_id: Option<&Value>) -> String {
    with_request_id(json!({"type": "subscribed", "subscriptions": names, "projects": projects}), request_id)
}

/// `{"type":"missed",...}`: events shed for this client since the last such frame.
pub fn missed(low: u64, normal: u64) -> String {
    json!({"type": "missed", "count": low + normal, "dropped": {"LOW": low, "NORMAL": normal}}).to_string()
}

/// A `replay` frame with the events as stored, concatenated without parsing them again.
pub fn replay_recovered(epoch: &str, latest_seq: u64, events_array: &[u8], count: usize) -> Vec<u8> {
    let head = json!({"type": "replay", "recovered": true, "epoch": epoch, "latest_seq": latest_seq, "count": count});
    splice(head, "events", events_array)
}

/// Adds `"key": <raw JSON>` to an object serialized from `head`.
pub fn splice(head: Value, key: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = head.to_string().into_bytes();
    out.pop(); // the closing brace
    out.extend_from_slice(format!(",\"{key}\":").as_bytes());
    out.extend_from_slice(raw);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_frame_has_its_code() {
        let code = |t: &str| parse(t).1.err().map(|e| e.code);
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
        assert_eq!((e.code, e.request_id), ("missing_field", Some(json!("r1"))));
    }

    #[test]
    fn request_id_comes_back_exactly_or_is_refused() {
        // The fuzzer's find: this float came back as 233333333.33333334, a different number.
        let (id, r) = parse(r#"{"type":"ping","request_id":2.33333333333333333333333333333333333333333333333335e8}"#);
        assert_eq!((id, r.unwrap_err().code), (None, "invalid_field"));
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

    #[test]
    fn splice_builds_valid_json() {
        let v: Value = serde_json::from_slice(&replay_recovered("e", 3, b"[{\"a\":1}]", 1)).unwrap();
        assert_eq!(v["events"][0]["a"], 1);
        assert_eq!(v["recovered"], true);
    }
}

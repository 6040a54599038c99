//! The frame helpers both WebSocket protocols share (the dashboard's `/ws/gns3/events/`,
//! `dashboard/protocol.rs`; the modules' `/ws/modules/{name}`, `module/protocol.rs`):
//! `parse_as`, which reads a text frame into a protocol's `#[serde(tag = "type")]` enum
//! with an error code for every way it can be wrong, and the server frames both send
//! (`error`, `pong`, `subscribed`, `missed`, `action_result`), plus `splice`, which puts
//! bytes that are already JSON into a frame without parsing them again.
//!
//! Field order on the wire is serde_json's (keys sorted: no `preserve_order`), so a frame
//! built here is byte for byte the one each session built before.

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{ApiError, Code};

/// A frame that did not parse: the `error` frame to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: Code,
    pub message: String,
    pub request_id: Option<Value>,
}

impl FrameError {
    pub fn new(code: Code, message: impl Into<String>, request_id: Option<Value>) -> Self {
        Self { code, message: message.into(), request_id }
    }

    pub fn to_frame(&self) -> String {
        error(self.code, &self.message, self.request_id.as_ref(), None)
    }
}

/// Parses a text frame as `T` (a `#[serde(tag = "type")]` enum whose `type` values are
/// `types`); the request id (a string or an integer) comes back with either result, so
/// replies and errors can carry it.
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str, types: &[&str]) -> (Option<Value>, Result<T, FrameError>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("the frame is not valid JSON: {e}");
            return (None, Err(FrameError::new(Code::InvalidJson, msg, None)));
        }
    };
    let Some(obj) = value.as_object() else {
        return (None, Err(FrameError::new(Code::InvalidFrame, "a frame must be a JSON object with a \"type\"", None)));
    };
    // Integers only among numbers: a float is not echoed as it was sent (serde_json reads
    // a long mantissa to a neighbouring f64 and writes it in its own notation), so the
    // client could not match the reply (found by fuzzing; JSON-RPC 2.0 asks the same).
    let request_id = match obj.get("request_id") {
        None | Some(Value::Null) => None,
        Some(v @ Value::String(_)) => Some(v.clone()),
        Some(v @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
        Some(_) => {
            return (None, Err(FrameError::new(Code::InvalidField, "request_id must be a string or an integer", None)))
        }
    };
    let kind = match obj.get("type") {
        None => {
            return (request_id.clone(), Err(FrameError::new(Code::MissingField, "missing field `type`", request_id)))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            let e = FrameError::new(Code::InvalidField, "`type` must be a string", request_id.clone());
            return (request_id, Err(e));
        }
    };
    if !types.contains(&kind.as_str()) {
        let shown: String = kind.chars().take(64).collect();
        let msg = format!("unknown frame type '{shown}' (expected one of: {})", types.join(", "));
        return (request_id.clone(), Err(FrameError::new(Code::UnknownType, msg, request_id)));
    }
    let mut body = value;
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    match serde_json::from_value::<T>(body) {
        Ok(f) => (request_id, Ok(f)),
        Err(e) => {
            let text = e.to_string();
            let code = if text.starts_with("missing field") { Code::MissingField } else { Code::InvalidField };
            (request_id.clone(), Err(FrameError::new(code, format!("{kind}: {text}"), request_id)))
        }
    }
}

/// `v` serialized, with the request id added when there is one.
pub fn with_request_id(mut v: Value, request_id: Option<&Value>) -> String {
    if let (Some(id), Some(o)) = (request_id, v.as_object_mut()) {
        o.insert("request_id".into(), id.clone());
    }
    v.to_string()
}

pub fn error(code: Code, message: &str, request_id: Option<&Value>, details: Option<Value>) -> String {
    let mut v = json!({"type": "error", "code": code, "message": message});
    if let (Some(d), Some(o)) = (details, v.as_object_mut()) {
        o.insert("details".into(), d);
    }
    with_request_id(v, request_id)
}

pub fn pong(request_id: Option<&Value>) -> String {
    with_request_id(json!({"type": "pong"}), request_id)
}

pub fn subscribed(names: &[String], projects: Option<&[Uuid]>, request_id: Option<&Value>) -> String {
    with_request_id(json!({"type": "subscribed", "subscriptions": names, "projects": projects}), request_id)
}

/// `{"type":"missed",...}`: events shed for this client since the last such frame.
pub fn missed(low: u64, normal: u64) -> String {
    json!({"type": "missed", "count": low + normal, "dropped": {"LOW": low, "NORMAL": normal}}).to_string()
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

/// What an action was asked to do, echoed in its `action_result` when it failed.
pub struct ActionTarget<A> {
    pub action: A,
    pub project_id: Uuid,
    /// A node action's node. A node action's failure also carries the correlation id
    /// GNS3's answer had (from the error's details); a project action's never did, and
    /// clients may rely on the shape, so it still does not.
    pub node_id: Option<Uuid>,
}

/// `{"type":"action_result",...}`: the answer to a node or project action, with the
/// outcome (`ok: true`, its correlation id) or the error as the REST API renders it.
pub fn action_result<O: Serialize, A: Serialize>(
    request_id: Option<&Value>,
    server: &str,
    target: &ActionTarget<A>,
    result: &Result<O, ApiError>,
    correlation_id: impl Fn(&O) -> &str,
) -> String {
    let frame = match result {
        Ok(outcome) => json!({
            "type": "action_result", "request_id": request_id, "ok": true, "server": server,
            "correlation_id": correlation_id(outcome), "outcome": outcome,
        }),
        Err(e) => {
            let mut v = json!({
                "type": "action_result", "request_id": request_id, "ok": false, "server": server,
                "action": target.action, "project_id": target.project_id,
                "error": {"code": e.code, "message": e.message, "status": e.status.as_u16(), "details": e.details},
            });
            if let (Some(node_id), Some(o)) = (target.node_id, v.as_object_mut()) {
                o.insert("node_id".into(), json!(node_id));
                let cid = e.details.as_ref().and_then(|d| d.get("correlation_id")).cloned();
                o.insert("correlation_id".into(), json!(cid));
            }
            v
        }
    };
    frame.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Outcome {
        correlation_id: String,
        steps: Vec<u8>,
    }

    fn failure(details: Option<Value>) -> ApiError {
        let mut e = ApiError::unknown_server("s");
        e.details = details;
        e
    }

    // The three frames each session wrote by hand before `action_result` existed: the
    // shared builder must give the same bytes.
    #[test]
    fn action_result_frames_keep_their_bytes() {
        let (p, n, rid) = (Uuid::new_v4(), Uuid::new_v4(), json!("r1"));
        let node = ActionTarget { action: "start", project_id: p, node_id: Some(n) };
        let project = ActionTarget { action: "open", project_id: p, node_id: None };

        let ok: Result<Outcome, ApiError> = Ok(Outcome { correlation_id: "c1".into(), steps: vec![1] });
        let outcome = ok.as_ref().ok().map(|o| json!(o));
        let old = json!({"type": "action_result", "request_id": Some(&rid), "ok": true, "server": "s",
            "correlation_id": "c1", "outcome": outcome});
        assert_eq!(action_result(Some(&rid), "s", &node, &ok, |o| &o.correlation_id), old.to_string());
        assert_eq!(action_result(Some(&rid), "s", &project, &ok, |o| &o.correlation_id), old.to_string());

        for details in [None, Some(json!({"correlation_id": "c2", "steps": []}))] {
            let e = failure(details);
            let err: Result<Outcome, ApiError> = Err(e.clone());
            let old_node = json!({"type": "action_result", "request_id": Option::<Value>::None, "ok": false,
                "server": "s", "action": "start", "project_id": p, "node_id": n,
                "correlation_id": e.details.as_ref().and_then(|d| d.get("correlation_id")).cloned(),
                "error": {"code": e.code, "message": e.message, "status": e.status.as_u16(), "details": e.details}});
            assert_eq!(action_result(None, "s", &node, &err, |o| &o.correlation_id), old_node.to_string());
            let old_project = json!({"type": "action_result", "request_id": Some(&rid), "ok": false, "server": "s",
                "action": "open", "project_id": p,
                "error": {"code": e.code, "message": e.message, "status": e.status.as_u16(), "details": e.details}});
            assert_eq!(action_result(Some(&rid), "s", &project, &err, |o| &o.correlation_id), old_project.to_string());
        }
    }

    #[test]
    fn error_frames_carry_details_and_request_id() {
        let f: Value =
            serde_json::from_str(&error(Code::InvalidFrame, "no", Some(&json!(7)), Some(json!({"k": 1})))).unwrap();
        assert_eq!(
            f,
            json!({"type": "error", "code": "invalid_frame", "message": "no", "details": {"k": 1}, "request_id": 7})
        );
        assert_eq!(
            error(Code::InvalidFrame, "no", None, None),
            r#"{"code":"invalid_frame","message":"no","type":"error"}"#
        );
    }

    #[test]
    fn splice_inserts_raw_json() {
        let out = splice(json!({"type": "topology", "a": 1}), "topology", b"{\"x\":[1]}");
        assert_eq!(out, br#"{"a":1,"type":"topology","topology":{"x":[1]}}"#);
    }
}

//! Request-body schemas that depend on the configuration or that the derive cannot say, set
//! into the document by `super::document` so that the served schema allows exactly what the
//! service takes:
//! - `PostMessage` (`POST /api/v2/bus/messages`): a notice (`to` a module or `*`) or a
//!   request (`timeout_ms` set, `to` one module), with the configured maxima of `ttl` and
//!   `timeout_ms`;
//! - `ConfigPatch` (`PATCH /api/v2/config`): only the live keys (`crate::config::live`),
//!   the servers named by their configured names, each value within the bounds its
//!   validation checks. `scripts/schemathesis` tests it in a run of its own, since a patch
//!   changes the instance every later test would run against.

use serde_json::{json, Map, Value};

use crate::config::Settings;

const MODULE: &str = "^[a-z0-9_-]{1,64}$";
const TYPE: &str = "^[A-Za-z0-9_.-]{1,128}$";
/// An event or module type a priority may be set for (`node.updated`, `monitoring.alert`).
const EVENT_TYPE: &str = "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)+$";

fn post_message(settings: &Settings) -> Value {
    let ttl = json!({"type": ["integer", "null"], "minimum": 0, "maximum": settings.modules.max_ttl_ms,
        "description": "Milliseconds the message may wait for an offline module (default `modules.default_ttl_ms`)."});
    let common = |to: &str, to_doc: &str| {
        json!({
            "to": {"type": "string", "pattern": to, "description": to_doc, "example": "monitoring"},
            "type": {"type": "string", "pattern": TYPE, "example": "ping"},
            "payload": {"description": "Any JSON value (default null)."},
            "ttl": ttl,
            "correlation_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 128},
        })
    };
    let mut notice = common("^([a-z0-9_-]{1,64}|\\*)$", "A module name, or `*` for every module.");
    notice["timeout_ms"] = json!({"type": "null"});
    let mut request = common(MODULE, "The module that answers.");
    request["timeout_ms"] = json!({"type": "integer", "minimum": 1, "maximum": settings.modules.max_request_timeout_ms,
        "description": "Wait this long (ms) for the reply and answer with it."});
    json!({
        "description": "A message from a sender that is not connected (`from` is `api`): a notice, or with \
            `timeout_ms` a request to one module answered with its reply.",
        "oneOf": [
            {"title": "notice", "type": "object", "required": ["to", "type"], "additionalProperties": false,
             "properties": notice},
            {"title": "request", "type": "object", "required": ["to", "type", "timeout_ms"],
             "additionalProperties": false, "properties": request},
        ],
        "example": {"to": "monitoring", "type": "ping", "payload": {"n": 1}},
    })
}

fn config_patch(settings: &Settings) -> Value {
    let section =
        |properties: Value| json!({"type": "object", "additionalProperties": false, "properties": properties});
    let servers: Map<String, Value> = settings
        .gns3
        .servers
        .keys()
        .map(|name| {
            let timeout = json!({"type": "number", "exclusiveMinimum": 0, "maximum": 3600,
                "description": "Seconds per GNS3 call."});
            (name.clone(), section(json!({ "timeout": timeout })))
        })
        .collect();
    let level = json!({"type": "string", "enum": ["trace", "debug", "info", "warn", "error",
        "TRACE", "DEBUG", "INFO", "WARN", "ERROR"]});
    let priority = json!({"enum": ["CRITICAL", "HIGH", "NORMAL", "LOW", null],
        "description": "`null` removes the override."});
    let priorities = json!({"type": ["object", "null"],
        "propertyNames": {"pattern": EVENT_TYPE, "maxLength": 128}, "additionalProperties": priority,
        "description": "Per event type; `null` removes every override."});
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "A JSON merge patch (RFC 7386) of the live settings, all or nothing; an empty \
            object changes nothing. Other keys answer `unknown_key` or `restart_required`.",
        "properties": {
            "gns3": section(json!({
                "monitor_interval": {"type": "number", "minimum": 0.5, "maximum": 86_400,
                    "description": "Seconds between topology polls."},
                "servers": section(Value::Object(servers)),
            })),
            "cache": section(json!({"ttl": {"type": "number", "minimum": 0, "maximum": 31_536_000,
                "description": "Seconds; 0 turns caching off."}})),
            "log": section(json!({"level": level})),
            "events": section(json!({"priorities": priorities})),
        },
        "example": {"cache": {"ttl": 10}},
    })
}

/// Sets both schemas and points `PATCH /api/v2/config`'s body at `ConfigPatch`.
pub fn apply(doc: &mut Value, settings: &Settings) {
    doc["components"]["schemas"]["PostMessage"] = post_message(settings);
    doc["components"]["schemas"]["ConfigPatch"] = config_patch(settings);
    if let Some(content) =
        doc.pointer_mut("/paths/~1api~1v2~1config/patch/requestBody/content").and_then(Value::as_object_mut)
    {
        for media in content.values_mut() {
            media["schema"] = json!({"$ref": "#/components/schemas/ConfigPatch"});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_survive_into_the_document() {
        let settings = Settings::load_with(None, &|_| None, vec![]).expect("defaults");
        let v = super::super::document(&settings);
        let msg = &v["components"]["schemas"]["PostMessage"];
        assert_eq!(msg["oneOf"][1]["properties"]["timeout_ms"]["maximum"], settings.modules.max_request_timeout_ms);
        let patch = &v["components"]["schemas"]["ConfigPatch"];
        assert_eq!(patch["properties"]["events"]["properties"]["priorities"]["propertyNames"]["pattern"], EVENT_TYPE);
        assert_eq!(patch["additionalProperties"], false);
        let body = &v["paths"]["/api/v2/config"]["patch"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["$ref"], "#/components/schemas/ConfigPatch");
    }
}

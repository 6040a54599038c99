//! Field-by-field reading of JSON request bodies. Bodies are taken as `serde_json::Value`
//! and read with these helpers so that a missing field, a wrong type or a non-UUID id
//! gets a message naming the field, which serde's positional errors do not.

use serde_json::Value;
use uuid::Uuid;

use crate::error::{parse_uuid, ApiError, Code};

/// The body must be a JSON object.
pub fn object(body: &Value) -> Result<&serde_json::Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(|| ApiError::bad_request(Code::InvalidBody, "the request body must be a JSON object"))
}

/// A required string field.
pub fn required_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    match object(body)?.get(field) {
        None | Some(Value::Null) => {
            Err(ApiError::bad_request(Code::MissingField, format!("the request body needs the field '{field}'"))
                .with_details(serde_json::json!({ "field": field })))
        }
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ApiError::bad_request(
            Code::InvalidType,
            format!("'{field}' must be a string, got {}", type_name(other)),
        )
        .with_details(serde_json::json!({ "field": field }))),
    }
}

/// An optional string field (absent or null: `None`).
pub fn optional_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match object(body)?.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_str(body, field).map(Some),
    }
}

/// A required UUID field.
pub fn required_uuid(body: &Value, field: &str) -> Result<Uuid, ApiError> {
    parse_uuid(field, required_str(body, field)?)
}

/// An optional UUID field.
pub fn optional_uuid(body: &Value, field: &str) -> Result<Option<Uuid>, ApiError> {
    optional_str(body, field)?.map(|s| parse_uuid(field, s)).transpose()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_field_in_every_error() {
        let e = required_uuid(&json!({}), "project_id").unwrap_err();
        assert_eq!(e.code, "missing_field");
        let e = required_uuid(&json!({"project_id": 5}), "project_id").unwrap_err();
        assert_eq!(e.code, "invalid_type");
        assert!(e.message.contains("project_id") && e.message.contains("number"));
        let e = required_uuid(&json!({"project_id": "x"}), "project_id").unwrap_err();
        assert_eq!(e.code, "invalid_id");
        let e = required_uuid(&json!([1]), "project_id").unwrap_err();
        assert_eq!(e.code, "invalid_body");
    }

    #[test]
    fn reads_good_values() {
        let id = "68dca439-0000-4000-8000-000000000002";
        assert_eq!(required_uuid(&json!({"p": id}), "p").unwrap().to_string(), id);
        assert_eq!(optional_uuid(&json!({}), "p").unwrap(), None);
        assert_eq!(optional_str(&json!({"s": null}), "s").unwrap(), None);
    }
}

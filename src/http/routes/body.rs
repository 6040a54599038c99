//! Field-by-field reading of JSON request bodies. Bodies are taken as `serde_json::Value`
//! and read with these helpers so that a missing field, a wrong type or a non-UUID id
//! gets a message naming the field, which serde's positional errors do not.
//!
//! `Checked<T>` and `MaybeChecked<T>` are the extractors: the body must be a JSON object
//! whose fields are all properties of `T`'s OpenAPI schema (`unknown_field` otherwise), so
//! a schema with `additionalProperties: false` (`#[serde(deny_unknown_fields)]`) and the
//! service refuse the same bodies. `MaybeChecked` also takes an empty body (`None`).

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{mime, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::marker::PhantomData;
use std::ops::Deref;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::PartialSchema;
use uuid::Uuid;

use crate::error::{parse_uuid, ApiError, Code};

/// A JSON object body (`Content-Type: application/json`) with only the fields of `T`'s schema.
pub struct Checked<T>(pub Value, PhantomData<T>);

/// As `Checked`, or `None` for an empty (or all-whitespace) body, with any content type, or
/// a JSON `null`.
pub struct MaybeChecked<T>(pub Option<Value>, PhantomData<T>);

impl<T> Deref for Checked<T> {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

/// Refuses a field that `T`'s schema does not list, when the schema lists properties.
fn only_declared<T: PartialSchema>(body: &Value) -> Result<(), ApiError> {
    let map = object(body)?;
    let RefOr::T(Schema::Object(schema)) = T::schema() else { return Ok(()) };
    if schema.properties.is_empty() {
        return Ok(());
    }
    match map.keys().find(|k| !schema.properties.contains_key(k.as_str())) {
        None => Ok(()),
        Some(k) => {
            let known: Vec<&str> = schema.properties.keys().map(String::as_str).collect();
            let shown: String = k.chars().take(64).collect();
            Err(ApiError::bad_request(
                Code::UnknownField,
                format!(
                    "the request body has a field '{shown}' this route does not take (it takes {})",
                    known.join(", ")
                ),
            )
            .with_details(serde_json::json!({ "field": shown })))
        }
    }
}

impl<T: PartialSchema + 'static> FromRequest for Checked<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // The app's `JsonConfig` (`routes::json_config`): limits and JSON error bodies.
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let body = json.await?.into_inner();
            only_declared::<T>(&body)?;
            Ok(Checked(body, PhantomData))
        })
    }
}

impl<T: PartialSchema + 'static> FromRequest for MaybeChecked<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        });
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let raw = bytes.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, Code::BodyTooLarge, "the request body is too large")
                } else {
                    ApiError::bad_request(Code::InvalidBody, format!("could not read the request body: {e}"))
                }
            })?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(MaybeChecked(None, PhantomData));
            }
            if !is_json {
                return Err(ApiError::bad_request(
                    Code::InvalidContentType,
                    "the request body must be JSON sent with 'Content-Type: application/json'",
                )
                .into());
            }
            let body: Value = serde_json::from_slice(&raw)
                .map_err(|e| super::json_error(actix_web::error::JsonPayloadError::Deserialize(e)))?;
            // An optional body's schema is `oneOf: [T, null]`: `null` is no body.
            if body.is_null() {
                return Ok(MaybeChecked(None, PhantomData));
            }
            only_declared::<T>(&body)?;
            Ok(MaybeChecked(Some(body), PhantomData))
        })
    }
}

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

/// JSON Schema's `integer` is any number without a fraction (`194.0` is one), serde's `u64`
/// only a number written without one: the named fields that are such floats are rewritten
/// as integers before the body is deserialized, so the two take the same bodies.
pub fn integral(mut body: Value, fields: &[&str]) -> Value {
    if let Some(map) = body.as_object_mut() {
        for f in fields {
            if let Some(v) = map.get_mut(*f) {
                if let Some(x) = v.as_f64().filter(|x| v.is_f64() && x.fract() == 0.0 && *x >= 0.0 && *x < 1.8e19) {
                    *v = Value::from(x as u64);
                }
            }
        }
    }
    body
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

//! `ApiError`: the one error type of the HTTP edge. Every failure leaves the service as
//! `{"error":{"code","message","details"}}` with the status docs/api.md#error-codes gives: 400 bad input
//! (checked before GNS3 is called), 404 unknown ids, GNS3's own 403/404/409 passed through
//! with its message, 502 when GNS3 misbehaves, 503 + `Retry-After` when it is unreachable.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use gns3_central_actors::connector::ConnectorError;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use utoipa::ToSchema;
use uuid::Uuid;

mod code;
pub use code::Code;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, sent as `Retry-After` (503 answers).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_id", "message": "project_id must be a UUID, got 'abc'",
    "details": {"field": "project_id"}}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_json`, `gns3_unavailable`, `gns3_conflict`.
    pub code: String,
    /// A sentence for people; GNS3's own text when GNS3 refused.
    pub message: String,
    /// Extra context: offending field, GNS3 status, the node's status after a failed action...
    /// Always present; `null` when there is none (docs/api.md#error-body).
    #[schema(value_type = Option<Object>, required = true)]
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unknown_server(name: &str) -> Self {
        Self::not_found(Code::UnknownServer, format!("no GNS3 server named '{name}' is configured"))
    }
}

/// Parses an id from a path, query or body, naming the field when it is not a UUID. Only
/// the hyphenated form (`8-4-4-4-12` hex digits) is taken: it is what the OpenAPI
/// document's `format: uuid` allows, and what GNS3 uses; `Uuid::parse_str` alone would also
/// take the simple, braced and URN forms.
pub fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    let hyphenated = raw.len() == 36
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() });
    let parsed = if hyphenated { Uuid::parse_str(raw).ok() } else { None };
    parsed.ok_or_else(|| {
        ApiError::bad_request(Code::InvalidId, format!("{field} must be a UUID, got '{raw}'"))
            .with_details(serde_json::json!({ "field": field }))
    })
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        })
    }
}

impl From<ConnectorError> for ApiError {
    fn from(err: ConnectorError) -> Self {
        let retry_after = err.retry_after().map(|d| d.as_secs_f64().ceil().max(1.0) as u64);
        let message = err.to_string();
        let mut api = match &err {
            ConnectorError::Unavailable { server, .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Gns3Unavailable, message)
                    .with_details(serde_json::json!({ "server": server }))
            }
            ConnectorError::CircuitOpen { server, .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::CircuitOpen, message)
                    .with_details(serde_json::json!({ "server": server }))
            }
            ConnectorError::Mailbox(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::ConnectorUnavailable, message)
            }
            ConnectorError::Gns3 { status, message, details } => {
                let (status_code, code) = match *status {
                    400 | 422 => (StatusCode::from_u16(*status), Code::Gns3Rejected),
                    401 => (Ok(StatusCode::BAD_GATEWAY), Code::Gns3AuthFailed),
                    403 => (Ok(StatusCode::FORBIDDEN), Code::Gns3Forbidden),
                    404 => (Ok(StatusCode::NOT_FOUND), Code::NotFound),
                    409 => (Ok(StatusCode::CONFLICT), Code::Gns3Conflict),
                    s if (400..500).contains(&s) => (StatusCode::from_u16(s), Code::Gns3Rejected),
                    _ => (Ok(StatusCode::BAD_GATEWAY), Code::Gns3Error),
                };
                let mut d = serde_json::json!({ "gns3_status": status });
                if let (Some(Value::Object(extra)), Value::Object(map)) = (details, &mut d) {
                    map.extend(extra.clone());
                }
                ApiError::new(status_code.unwrap_or(StatusCode::BAD_GATEWAY), code, message.clone()).with_details(d)
            }
            ConnectorError::Auth { server, .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, Code::Gns3AuthFailed, message)
                    .with_details(serde_json::json!({ "server": server }))
            }
            ConnectorError::Protocol { server, .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, Code::Gns3Protocol, message)
                    .with_details(serde_json::json!({ "server": server }))
            }
        };
        api.retry_after = retry_after;
        api
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        let mut api = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ConnectorUnavailable,
            format!("the GNS3 connector did not answer: {err}"),
        );
        api.retry_after = Some(1);
        api
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn gns3_conflict_passes_through_with_details() {
        let e: ApiError = ConnectorError::Gns3 {
            status: 409,
            message: "uBridge is not available".into(),
            details: Some(serde_json::json!({"node": {"status": "started"}})),
        }
        .into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.message, "uBridge is not available");
        let d = e.details.unwrap();
        assert_eq!(d["gns3_status"], 409);
        assert_eq!(d["node"]["status"], "started");
    }

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let e: ApiError = ConnectorError::Unavailable {
            server: "default".into(),
            reason: "connection refused".into(),
            retry_after: Duration::from_millis(1500),
        }
        .into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(2));
        let res = e.error_response();
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "2");
    }

    #[test]
    fn gns3_server_errors_become_bad_gateway() {
        let e: ApiError = ConnectorError::Gns3 { status: 500, message: "Database error".into(), details: None }.into();
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn non_uuid_is_named() {
        let e = parse_uuid("node_id", "abc").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("node_id"));
        let id = "68dca439-0000-4000-8000-00000000000A";
        assert_eq!(parse_uuid("p", id).unwrap(), Uuid::parse_str(id).unwrap(), "upper-case hex is a UUID");
        for other in [
            "68dca43900004000800000000000000a",
            "{68dca439-0000-4000-8000-00000000000a}",
            "urn:uuid:68dca439-0000-4000-8000-00000000000a",
            "68dca439-0000-4000-8000-00000000000g",
        ] {
            assert!(parse_uuid("p", other).is_err(), "{other} is not the hyphenated form");
        }
    }
}

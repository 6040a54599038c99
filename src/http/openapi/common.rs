//! The answers that do not depend on the route, added to every operation of the document
//! here rather than written on each handler: 401 (with `WWW-Authenticate`) and 403 from
//! the auth gate (`crate::auth::middleware`) on every operation that needs a credential;
//! 400 wherever a query string or a body is parsed (the extractors' error handlers in
//! `crate::startup` and `crate::http::routes::json_config`); 413 wherever a body is read;
//! `Retry-After` on every 503. A route's own `#[utoipa::path]` lists only what its handler
//! answers (404 for an unknown server, 409, 503 when GNS3 is down...): a route added later
//! gets these without doing anything, and a status it documents itself is kept as written.

use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa::Modify;

/// The `Modify` that adds them; it runs after `BearerAuth`, which opens the probes.
pub struct CommonResponses;

/// Every operation of a path item (utoipa keeps one field per method).
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn error(description: &str) -> RefOr<Response> {
    let mut res = Response::new(description);
    res.content.insert("application/json".into(), Content::new(Some(Ref::from_schema_name("ErrorBody"))).into());
    res.into()
}

fn header(schema: Type, description: &str) -> RefOr<Header> {
    let mut h = Header::new(Object::with_type(schema));
    h.description = Some(description.into());
    h.into()
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in operations_mut(item) {
                add(op);
            }
        }
    }
}

fn add(op: &mut Operation) {
    // No `security` on the operation means the document's (bearer); the probes carry `[{}]`.
    let secured = op.security.as_ref().is_none_or(|s| s.iter().any(|r| *r != SecurityRequirement::default()));
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query));
    let has_body = op.request_body.is_some();
    let responses = &mut op.responses.responses;
    if secured {
        let mut unauthorized =
            error("No credential, or one that is unknown, expired or refused (`missing_token`, `invalid_token`, `token_expired`)");
        if let RefOr::T(res) = &mut unauthorized {
            res.headers.insert("WWW-Authenticate".into(), header(Type::String, "`Bearer`"));
        }
        responses.entry("401".into()).or_insert(unauthorized);
        responses.entry("403".into()).or_insert(error(
            "The credential's role is too low (`insufficient_role`) or the project is not in its scope \
             (`project_out_of_scope`)",
        ));
    }
    if has_query || has_body {
        responses.entry("400".into()).or_insert(error("A query string or body that does not parse or fit"));
    }
    if has_body {
        responses
            .entry("413".into())
            .or_insert(error("The body is larger than `http.max_body_bytes` (`body_too_large`)"));
    }
    if let Some(RefOr::T(unavailable)) = responses.get_mut("503") {
        unavailable
            .headers
            .entry("Retry-After".into())
            .or_insert(header(Type::Integer, "Seconds to wait before trying again"));
    }
}

//! `/api/v2/servers/{server}/gns3/{path}`: any GNS3 call, forwarded to that server's own API
//! (its native `v2` or `v3`) through the server's connector (timeout, circuit breaker,
//! retries of idempotent reads, the hub's own GNS3 credentials), answered as GNS3 answered.
//!
//! Before GNS3 is called: the role (`GET`/`HEAD` viewer, other methods operator, also
//! checked by the auth gate), the path (`path.rs`: decoded once, ambiguous segments
//! refused), GNS3's notification streams refused with a pointer to `/ws/gns3/events/`, the
//! `[passthrough]` allow/deny rules, and a project-scoped credential's projects. Every call
//! but a `GET` is written to the audit trail with GNS3's status.
//!
//! Bodies stream both ways (`stream.rs`); GNS3's errors come back in the service's error
//! body, mapped as on every other route (`details.gns3_body` keeps GNS3's own).

pub mod doc;
mod path;
mod stream;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use gns3_central_actors::connector::{Forward, ForwardError};
use gns3_central_actors::gns3::forward::{ForwardHead, ForwardReply, ForwardRequest};

use crate::auth::{Principal, Role};
use crate::config::PathRules;
use crate::error::{ApiError, Code};
use crate::observe::audit::AuditRecord;
use crate::state::AppState;

pub use path::{Gns3Path, EVENTS_WS};

/// The route's pattern (one route, every method).
pub const ROUTE: &str = "/api/v2/servers/{server}/gns3/{path:.*}";

/// Request headers passed on to GNS3 (the consumer's `Authorization` never is).
const REQUEST_HEADERS: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_DISPOSITION,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::RANGE,
];

/// Says which API of the server answered (`v2` or `v3`).
pub const API_HEADER: &str = "x-gns3-api";

/// The methods passed through (those of the OpenAPI document); others answer 405.
pub const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(ROUTE)
            .route(web::get().to(passthrough))
            .route(web::head().to(passthrough))
            .route(web::post().to(passthrough))
            .route(web::put().to(passthrough))
            .route(web::patch().to(passthrough))
            .route(web::delete().to(passthrough))
            .default_service(web::to(other_method)),
    );
}

/// OPTIONS, TRACE, CONNECT...: not GNS3 API calls.
async fn other_method(req: HttpRequest) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::MethodNotAllowed,
        format!("{} is not passed through to GNS3; the passthrough takes {METHODS}", req.method()),
    )
    .with_details(serde_json::json!({ "allow": METHODS }))
    .error_response();
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static(METHODS));
    res
}

/// Any call to a GNS3 server's own API (documented in the OpenAPI document by `doc`).
pub async fn passthrough(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    principal: Principal,
) -> HttpResponse {
    let server = req.match_info().get("server").unwrap_or_default().to_owned();
    let method = req.method().clone();
    let checked = check(&req, &state, &principal, &server);
    let result = match &checked {
        Ok(path) => forward(&req, payload, &state, &server, path).await,
        Err(e) => Err(e.clone()),
    };
    if method != Method::GET {
        audit(&state, &principal, &server, &method, checked.as_ref().ok(), &req, &result);
    }
    match result {
        Ok(reply) => respond(reply),
        Err(e) => e.error_response(),
    }
}

/// Everything decided before GNS3 is called.
fn check(req: &HttpRequest, state: &AppState, principal: &Principal, server: &str) -> Result<Gns3Path, ApiError> {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    principal.require(if read { Role::Viewer } else { Role::Operator })?;
    state.connector(server)?;
    let path = Gns3Path::from_request_path(req.uri().path())?;
    path.refuse_streams(req.headers().contains_key(header::UPGRADE))?;
    let rules = PathRules::from_settings(&state.settings.passthrough)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, e))?;
    if let Err(rule) = rules.check(req.method().as_str(), &path.segments) {
        let why = match rule {
            Some(r) => format!("the deny rule '{r}'"),
            None => "no allow rule".to_owned(),
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::PassthroughDenied,
            format!(
                "{} {} is not passed through to GNS3 here: {why} (passthrough.allow, passthrough.deny)",
                req.method(),
                path.display()
            ),
        )
        .with_details(serde_json::json!({ "rule": rule })));
    }
    path.check_scope(principal, read)?;
    Ok(path)
}

async fn forward(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    server: &str,
    path: &Gns3Path,
) -> Result<ForwardReply, ApiError> {
    let addr = state.connector(server)?.clone();
    let headers = req
        .headers()
        .iter()
        .filter(|(name, _)| REQUEST_HEADERS.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let head = ForwardHead {
        method: req.method().clone(),
        path: path.encoded.clone(),
        query: req.query_string().to_owned(),
        headers,
    };
    let (body, pump) = stream::request_body(req, payload).await?;
    let sent = stream::while_pumping(addr.send(Forward(ForwardRequest { head, body })), pump).await;
    match sent? {
        Ok(reply) => Ok(reply),
        Err(ForwardError::Connector(e)) => Err(e.into()),
        Err(ForwardError::ClientBody(why)) => {
            Err(ApiError::bad_request(Code::InvalidBody, format!("the request body could not be read: {why}")))
        }
    }
}

fn respond(reply: ForwardReply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut res = HttpResponse::build(status);
    for (name, value) in reply.headers {
        res.append_header((name, value));
    }
    res.insert_header((HeaderName::from_static(API_HEADER), HeaderValue::from_static(reply.api.prefix())));
    stream::reply_body(res, reply.body)
}

fn audit(
    state: &AppState,
    principal: &Principal,
    server: &str,
    method: &Method,
    path: Option<&Gns3Path>,
    req: &HttpRequest,
    result: &Result<ForwardReply, ApiError>,
) {
    let shown = path.map(Gns3Path::display).unwrap_or_else(|| req.path().to_owned());
    let gns3_status = match result {
        Ok(r) => Some(r.status),
        Err(e) => e.details.as_ref().and_then(|d| d.get("gns3_status")).and_then(|s| s.as_u64()).map(|s| s as u16),
    };
    let mut record = AuditRecord::new(
        &principal.name,
        principal.role.as_str(),
        "rest",
        format!("gns3.{}", method.as_str().to_ascii_lowercase()),
    )
    .target(server, path.and_then(Gns3Path::project), path.and_then(Gns3Path::node))
    .details(serde_json::json!({ "method": method.as_str(), "path": shown, "gns3_status": gns3_status }));
    if let Err(e) = result {
        record = record.failed(e);
    }
    state.audit.record(record);
}

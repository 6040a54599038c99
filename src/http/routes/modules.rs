//! Modules and the bus over HTTP: registration (`POST /api/v2/modules` and the original
//! `create_module_interface/`, admin) returning the module's token once, the status of
//! each module, deletion, and `POST /api/v2/bus/messages` for senders that are not
//! connected (sent as `api`; with `timeout_ms` it is a request and the reply is the
//! answer), and the notification sinks' counters. `bus_error` maps the bus's errors to HTTP statuses for these routes.

use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpResponse};
use gns3_central_actors::modules::{BusDeadLetter, BusError, BusMessage, ModuleKind, ModuleStatus};
use gns3_central_actors::sinks::SinkStatus;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::body::{self, Checked};
use crate::auth::{token, Principal};
use crate::error::{ApiError, Code, ErrorBody};
use crate::state::AppState;

/// The sender name of messages posted over REST (no module may take it).
pub const API_SENDER: &str = "api";

pub fn bus_error(e: BusError) -> ApiError {
    let status = match &e {
        BusError::Invalid(_) | BusError::InvalidName { .. } => StatusCode::BAD_REQUEST,
        BusError::UnknownModule(_) => StatusCode::NOT_FOUND,
        BusError::Offline(_) | BusError::AlreadyRegistered(_) | BusError::TooManyModules(_) => StatusCode::CONFLICT,
        BusError::Namespace { .. } => StatusCode::FORBIDDEN,
        BusError::ReplyTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        BusError::InboxFull(_)
        | BusError::TooManyPending(_)
        | BusError::Publish(_)
        | BusError::EventsDisabled
        | BusError::Unavailable
        | BusError::BusUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut api = ApiError::new(status, Code::from(&e), e.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        api.retry_after = Some(1);
    }
    api
}

/// The answer to a registration: the token is shown this once.
#[derive(Serialize, ToSchema)]
pub struct Registered {
    pub id: String,
    pub name: String,
    /// The module's credential for `/ws/modules/{name}`; only its SHA-256 is kept.
    pub token: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where the module connects.
    pub websocket: String,
}

/// `{"name"}`: 1-64 of `a-z 0-9 _ -`, starting with a letter; not a reserved name
/// (`api`, `central`, `all`, `modules`, nor a built-in event namespace such as `node`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(pattern = r"^[a-z][a-z0-9_-]{0,63}$", example = "monitoring")]
    pub name: String,
}

/// The original registration body, `{"module_name"}` (same rules as `name`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleInterfaceRequest {
    #[schema(pattern = r"^[a-z][a-z0-9_-]{0,63}$", example = "monitoring")]
    pub module_name: String,
}

async fn register(state: &AppState, raw: &Value, principal: &Principal) -> Result<HttpResponse, ApiError> {
    let name = match (body::optional_str(raw, "name")?, body::optional_str(raw, "module_name")?) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::bad_request(Code::InvalidBody, "'name' and 'module_name' differ; give one"))
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => {
            return Err(ApiError::bad_request(
                Code::MissingField,
                "the request body needs the field 'name' (or 'module_name')",
            )
            .with_details(json!({"field": "name"})))
        }
    };
    let secret = format!("g3m_{}", &token::generate()[token::TOKEN_PREFIX.len()..]);
    let registry = &state.modules.registry;
    let slot = registry.register_remote(name, token::digest(&secret)).await.map_err(bus_error)?;
    if let Err(e) = crate::state::module_store::save(&state.settings.modules.state_file, registry) {
        tracing::error!(error = %e, "Could not write modules.state_file; the registration is runtime-only.");
    }
    tracing::info!(module = %slot.name, by = %principal.name, "Module registered over REST.");
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::LOCATION, format!("/api/v2/modules/{}", slot.name)))
        .json(Registered {
            id: slot.id.to_string(),
            name: slot.name.clone(),
            token: secret,
            created_at: slot.created_at,
            websocket: format!("/ws/modules/{}", slot.name),
        }))
}

/// Registers a remote module (admin); the answer holds its token, shown once.
#[utoipa::path(post, path = "/api/v2/modules", tag = "modules", request_body = RegisterRequest,
    responses((status = 201, description = "Registered; the token is shown once", body = Registered,
            headers(("Location" = String, description = "The module's path, `/api/v2/modules/{name}`"))),
        (status = 400, description = "Missing or invalid name", body = ErrorBody),
        (status = 409, description = "Name taken, or too many modules", body = ErrorBody),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[post("/api/v2/modules")]
pub async fn create(
    state: web::Data<AppState>,
    raw: Checked<RegisterRequest>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    register(&state, &raw, &principal).await
}

/// The original registration path: body `{"module_name"}`.
#[utoipa::path(post, path = "/api/common/api/gns3-central/create_module_interface/", tag = "original API",
    request_body = ModuleInterfaceRequest,
    responses((status = 201, description = "Registered; the token is shown once", body = Registered,
            headers(("Location" = String, description = "The module's path, `/api/v2/modules/{name}`"))),
        (status = 400, description = "Missing or invalid name", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[post("/api/common/api/gns3-central/create_module_interface/")]
pub async fn create_module_interface(
    state: web::Data<AppState>,
    raw: Checked<ModuleInterfaceRequest>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    register(&state, &raw, &principal).await
}

#[derive(Serialize, ToSchema)]
pub struct ModuleList {
    /// Modules connected now.
    pub connected: usize,
    pub modules: Vec<ModuleStatus>,
}

/// Every module: connected, last seen, subscriptions, counters, mailbox depth.
#[utoipa::path(get, path = "/api/v2/modules", tag = "modules",
    responses((status = 200, description = "Modules and their state", body = ModuleList),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[get("/api/v2/modules")]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let (connected, modules) = state.modules.registry.status_all().await.map_err(bus_error)?;
    Ok(HttpResponse::Ok().json(ModuleList { connected, modules }))
}

fn unknown(name: &str) -> ApiError {
    bus_error(BusError::UnknownModule(name.chars().take(64).collect()))
}

#[utoipa::path(get, path = "/api/v2/modules/{name}", tag = "modules",
    params(("name" = String, Path, description = "Module name")),
    responses((status = 200, description = "The module's state", body = ModuleStatus),
        (status = 404, description = "Unknown module", body = ErrorBody),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[get("/api/v2/modules/{name}")]
pub async fn get_one(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let status = state.modules.registry.status_of(&name).await.map_err(bus_error)?.ok_or_else(|| unknown(&name))?;
    Ok(HttpResponse::Ok().json(status))
}

/// Deletes a module: its token stops working, its connection is closed (4004), the
/// messages waiting for it are dead-lettered.
#[utoipa::path(delete, path = "/api/v2/modules/{name}", tag = "modules",
    params(("name" = String, Path, description = "Module name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown module", body = ErrorBody),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[delete("/api/v2/modules/{name}")]
pub async fn remove(
    state: web::Data<AppState>,
    name: web::Path<String>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let registry = &state.modules.registry;
    match registry.lookup(&name).await.map_err(bus_error)? {
        Some(s) if s.kind == ModuleKind::Remote => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Code::BuiltinModule,
                "built-in and in-process modules cannot be deleted",
            ))
        }
        None => return Err(unknown(&name)),
    }
    if !registry.remove_remote(&name).await.map_err(bus_error)? {
        return Err(unknown(&name));
    }
    if let Err(e) = crate::state::module_store::save(&state.settings.modules.state_file, registry) {
        tracing::error!(error = %e, "Could not write modules.state_file.");
    }
    tracing::info!(module = %name, by = %principal.name, "Module deleted over REST.");
    Ok(HttpResponse::NoContent().finish())
}

/// A message from a sender that is not connected (`from` is `api`). The maxima of `ttl` and
/// `timeout_ms` in the served document are the configured `modules.max_ttl_ms` and
/// `modules.max_request_timeout_ms` (`openapi::document`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// A module name or `*` (every module).
    #[schema(pattern = r"^([a-z0-9_-]{1,64}|\*)$", example = "monitoring")]
    pub to: String,
    #[serde(rename = "type")]
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,128}$", example = "ping")]
    pub kind: String,
    /// Any JSON value (default null).
    #[serde(default)]
    #[schema(value_type = Value)]
    pub payload: Value,
    /// Milliseconds the message may wait for an offline module (default `modules.default_ttl_ms`).
    #[schema(maximum = 3_600_000)]
    pub ttl: Option<u64>,
    pub correlation_id: Option<String>,
    /// Makes it a request: wait this long for the reply and answer with it.
    #[schema(minimum = 1, maximum = 60_000)]
    pub timeout_ms: Option<u64>,
}

/// Sends a bus message; with `timeout_ms`, a request answered with the reply.
#[utoipa::path(post, path = "/api/v2/bus/messages", tag = "modules", request_body = PostMessage,
    responses((status = 202, description = "Accepted: id, modules that took it, broadcast targets that refused it"),
        (status = 200, description = "The reply to a request", body = BusMessage),
        (status = 400, description = "Invalid message", body = ErrorBody),
        (status = 404, description = "Unknown target module", body = ErrorBody),
        (status = 409, description = "Target offline and the bus refuses (or ttl 0)", body = ErrorBody),
        (status = 503, description = "Target inbox full, or (shared bus) Redis does not answer (`bus_unavailable`)", body = ErrorBody),
        (status = 504, description = "No reply in time", body = ErrorBody)))]
#[post("/api/v2/bus/messages")]
pub async fn post_message(state: web::Data<AppState>, raw: Checked<PostMessage>) -> Result<HttpResponse, ApiError> {
    let m: PostMessage = serde_json::from_value(body::integral(raw.0, &["ttl", "timeout_ms"]))
        .map_err(|e| ApiError::bad_request(Code::InvalidBody, format!("the message does not fit: {e}")))?;
    let registry = &state.modules.registry;
    let cfg = registry.config();
    let mut msg = BusMessage::new(API_SENDER, &m.to, &m.kind, m.payload);
    msg.ttl = cfg.ttl(m.ttl).map_err(|e| bus_error(BusError::Invalid(e)))?.as_millis() as u64;
    msg.correlation_id = m.correlation_id;
    if let Some(ms) = m.timeout_ms {
        let timeout = cfg.request_timeout(Some(ms)).map_err(|e| bus_error(BusError::Invalid(e)))?;
        let reply = registry.request(msg, timeout).await.map_err(bus_error)?;
        return Ok(HttpResponse::Ok().json(reply));
    }
    let id = msg.id.clone();
    let routed = registry.send(msg).await.map_err(bus_error)?;
    Ok(HttpResponse::Accepted().json(json!({"id": id, "accepted": routed.accepted, "refused": routed.refused})))
}

/// Bus counters.
#[utoipa::path(get, path = "/api/v2/bus/stats", tag = "modules",
    responses((status = 200, description = "Routed, broadcast, refused, requests, replies, timeouts, pending, dead letters"),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[get("/api/v2/bus/stats")]
pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.modules.registry.bus_stats().await.map_err(bus_error)?))
}

#[derive(Deserialize, IntoParams)]
pub struct LimitQuery {
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// The most recent bus dead letters, oldest first.
#[utoipa::path(get, path = "/api/v2/bus/dead-letters", tag = "modules", params(LimitQuery),
    responses((status = 200, description = "Dead letters", body = Vec<BusDeadLetter>),
        (status = 400, description = "`limit` outside 1-1000 (`invalid_limit`)", body = ErrorBody),
        (status = 503, description = "Shared bus: Redis does not answer (`bus_unavailable`)", body = ErrorBody)))]
#[get("/api/v2/bus/dead-letters")]
pub async fn dead_letters(state: web::Data<AppState>, q: web::Query<LimitQuery>) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(Code::InvalidLimit, format!("limit must be 1-1000, got {limit}")));
    }
    Ok(HttpResponse::Ok().json(state.modules.registry.dead_letters_recent(limit).await.map_err(bus_error)?))
}

/// The notification sinks and their counters (URLs are not shown).
#[utoipa::path(get, path = "/api/v2/sinks", tag = "modules",
    responses((status = 200, description = "Sinks and their counters", body = Vec<SinkStatus>)))]
#[get("/api/v2/sinks")]
pub async fn sinks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.sinks.iter().map(|s| s.status()).collect::<Vec<_>>())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(create_module_interface)
        .service(list)
        .service(get_one)
        .service(remove)
        .service(post_message)
        .service(stats)
        .service(dead_letters)
        .service(sinks);
}

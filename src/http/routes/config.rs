//! `GET /api/v2/config` and `PATCH /api/v2/config` (admin): the effective configuration
//! with secrets masked, and changes to its live keys (`runtime_config.rs`). A refused
//! patch answers 400 and changes nothing: `invalid_config` (a bad value, named),
//! `unknown_key`, or `restart_required` (keys that cannot change while running, listed).

use actix_web::{get, patch, web, HttpResponse};
use serde_json::{json, Value};

use crate::config::live::{Change, Refusal};
use crate::error::{ApiError, Code, ErrorBody};
use crate::state::AppState;

/// The effective configuration (secrets masked), with the live changes made so far.
#[utoipa::path(get, path = "/api/v2/config", tag = "status",
    responses((status = 200, description = "The configuration, secrets masked", body = Object)))]
#[get("/api/v2/config")]
pub async fn get_config(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.live.masked().await)
}

/// Changes live settings with a JSON merge patch: `gns3.servers.<s>.timeout`,
/// `gns3.monitor_interval`, `cache.ttl`, `log.level`, `events.priorities.<type>` (null
/// removes an override). All or nothing.
#[utoipa::path(patch, path = "/api/v2/config", tag = "status",
    request_body(content = Object, description = "JSON merge patch, e.g. {\"cache\":{\"ttl\":10}}"),
    responses(
        (status = 200, description = "Applied: the keys changed and the new configuration", body = Object),
        (status = 400, description = "invalid_config, unknown_key or restart_required; nothing changed", body = ErrorBody)))]
#[patch("/api/v2/config")]
pub async fn patch_config(
    state: web::Data<AppState>,
    body: web::Json<Value>,
    principal: crate::auth::Principal,
) -> Result<HttpResponse, ApiError> {
    let res = patch(&state, &body).await;
    let record =
        crate::observe::audit::AuditRecord::new(&principal.name, principal.role.as_str(), "rest", "config.patch");
    let keys = res.as_ref().ok().and_then(|r| r.1.clone());
    state.audit.record(record.result(&res, |_| "").details(json!({"applied": keys})));
    res.map(|r| r.0)
}

async fn patch(state: &AppState, body: &Value) -> Result<(HttpResponse, Option<Vec<String>>), ApiError> {
    match state.live.patch(state, body).await {
        Ok(changes) => {
            let applied: Vec<String> = changes.iter().map(Change::key).collect();
            let res = HttpResponse::Ok().json(json!({"applied": applied, "config": state.live.masked().await}));
            Ok((res, Some(applied)))
        }
        Err(Refusal::Invalid(msg)) => Err(ApiError::bad_request(Code::InvalidConfig, msg)),
        Err(Refusal::UnknownKeys(keys)) => {
            let mut e = ApiError::bad_request(Code::UnknownKey, format!("no such setting: {}", keys.join(", ")));
            e.details = Some(json!({"keys": keys}));
            Err(e)
        }
        Err(Refusal::RestartRequired(keys)) => {
            let mut e = ApiError::bad_request(
                Code::RestartRequired,
                format!(
                    "these settings cannot change while the service runs (change the file and restart): {}",
                    keys.join(", ")
                ),
            );
            e.details = Some(json!({"restart_required": keys}));
            Err(e)
        }
    }
}

//! `/ws/modules/{name}`: a registered module's connection. The upgrade is authenticated
//! against the module registry, not the API tokens: the credential (sent the dashboard's
//! three ways: header, `?token=`, `bearer.<token>` subprotocol) must be the token given
//! when that very module was registered. Another module's token gets 403 `wrong_module`,
//! an API or dashboard token 403 `not_a_module_token`, anything else 401 — all before
//! the upgrade. The session itself is `session.rs` (its GNS3 side `actions.rs`, its frames
//! `protocol.rs`, the replay of missed events `resume.rs`).

pub mod actions;
mod delivery;
pub mod protocol;
mod resume;
pub mod session;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use gns3_central_actors::modules::{AuthFailure, ModuleSlot};
use std::sync::Arc;

use super::upgrade::upgrade;
use crate::auth::{check_origin, credential_of, token, unauthorized};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use session::ModuleSession;

/// The module a credential may connect as, and the subprotocol to echo. On the shared
/// bus a name this instance does not know yet is looked up in Redis once.
pub async fn authorize_module(
    req: &HttpRequest,
    state: &AppState,
    name: &str,
) -> Result<(Arc<ModuleSlot>, Option<String>), ApiError> {
    check_origin(req, &state.auth)?;
    let (credential, protocol) = credential_of(req)?;
    let digest = token::digest(&credential);
    match state.modules.registry.authenticate_shared(name, &digest).await {
        Ok(slot) => Ok((slot, protocol)),
        Err(AuthFailure::BusUnavailable(why)) => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::BusUnavailable, why);
            e.retry_after = Some(1);
            Err(e)
        }
        Err(AuthFailure::OtherModule(owner)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::WrongModule,
            format!("this token is module '{owner}''s; a module token connects only as its own module"),
        )),
        Err(_) if state.auth.authenticate_bearer(&credential).is_ok() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::NotAModuleToken,
            "an API or dashboard token cannot connect as a module; register the module \
             (POST /api/v2/modules) and connect with the token it gives",
        )),
        Err(_) => Err(unauthorized(Code::InvalidToken, "the token is not this module's")),
    }
}

/// Upgrades to a module session (protocol: README "Module protocol").
#[get("/ws/modules/{name}")]
pub async fn module_socket(
    req: HttpRequest,
    payload: web::Payload,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (slot, protocol) = authorize_module(&req, &state, &name).await.inspect_err(|e| state.auth.refused.count(e))?;
    upgrade(&req, payload, &state, protocol, |flushed| ModuleSession::new(state.clone(), slot, flushed))
}

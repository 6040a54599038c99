//! Test hooks, mounted only with `serve --test-mode` (admin): they make failures that
//! cannot be caused from outside, so supervision can be tested against the real service.
//! `POST /api/v2/debug/servers/{server}/panic` makes that server's connector panic in a
//! handler; the supervisor restarts it (counted, and a storm when repeated).

use actix_web::{post, web, HttpResponse};
use gns3_central_actors::connector::DebugPanic;

use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(panic_connector);
}

/// 202: the connector was told to panic (its restart shows in `/metrics` and `/readyz`).
#[post("/api/v2/debug/servers/{server}/panic")]
pub async fn panic_connector(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let addr = state.connector(&path)?;
    // The panicking handler never answers: its sender sees the mailbox close, as intended.
    let _ = addr.send(DebugPanic).await;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"panicked": path.into_inner()})))
}

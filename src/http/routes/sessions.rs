//! `GET /api/v2/ws/stats`: the WebSocket sessions' counters (`crate::state::sessions`).

use actix_web::{get, web, HttpResponse};

use crate::error::ErrorBody;
use crate::state::sessions::WsStats;
use crate::state::AppState;

/// WebSocket session counters.
#[utoipa::path(get, path = "/api/v2/ws/stats", tag = "events",
    responses((status = 200, description = "Sessions and their shedding, closing and rate-limit counters",
        body = WsStats), (status = 500, description = "Internal error", body = ErrorBody)))]
#[get("/api/v2/ws/stats")]
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.sessions.stats())
}

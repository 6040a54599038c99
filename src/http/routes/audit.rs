//! `GET /api/v2/audit` (admin): the audit trail, newest first, a page at a time
//! (`before` = the previous page's `next_before`), filtered by who, action (exact or a
//! prefix ending in `.`), outcome, server, project and channel (`via`).

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};

use crate::error::{ApiError, Code, ErrorBody};
use crate::observe::audit::store::QueryError;
use crate::observe::audit::{AuditPage, AuditQuery};
use crate::state::AppState;

/// The audit trail.
#[utoipa::path(get, path = "/api/v2/audit", tag = "status", params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit records, newest first", body = AuditPage),
        (status = 400, description = "A bad cursor or query", body = ErrorBody),
        (status = 503, description = "The audit store (Redis) does not answer", body = ErrorBody)))]
#[get("/api/v2/audit")]
pub async fn audit(state: web::Data<AppState>, query: web::Query<AuditQuery>) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if q.limit.is_some_and(|l| l == 0 || l > 500) {
        return Err(ApiError::bad_request(Code::InvalidQuery, "limit: must be 1-500"));
    }
    match state.audit.query(q).await {
        Ok(page) => Ok(HttpResponse::Ok().json(page)),
        Err(QueryError::Bad(m)) => Err(ApiError::bad_request(Code::InvalidQuery, m)),
        Err(QueryError::Unavailable(m)) => {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::AuditUnavailable, m);
            e.retry_after = Some(1);
            Err(e)
        }
    }
}

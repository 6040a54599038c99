//! The HTTP edge: the REST routes (`routes/`, one file per resource) and their OpenAPI
//! document (`openapi/`). Handlers share `crate::state::AppState`; errors are
//! `crate::error::ApiError`. The WebSocket upgrades live in `crate::ws`.

pub mod openapi;
pub mod routes;

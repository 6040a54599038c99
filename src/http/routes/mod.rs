//! HTTP routes, one file per resource. `configure` mounts them all; request bodies go
//! through `json_config`, so every malformed body is a 400 JSON error before any handler
//! (and so before GNS3) runs.

pub mod audit;
pub mod body;
pub mod cached;
pub mod config;
pub mod debug;
pub mod events;
pub mod health;
pub mod legacy;
pub mod metrics;
pub mod modules;
pub mod nodes;
pub mod passthrough;
pub mod projects;
pub mod servers;
pub mod sessions;
pub mod topology;

use actix_web::{error::JsonPayloadError, web, HttpRequest};

use crate::error::{ApiError, Code};

/// The JSON extractor's limits and error mapping.
pub fn json_config(max_body_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(max_body_bytes).error_handler(|err, _req: &HttpRequest| json_error(err).into())
}

pub(crate) fn json_error(err: JsonPayloadError) -> ApiError {
    use actix_web::http::StatusCode;
    match err {
        JsonPayloadError::ContentType => ApiError::bad_request(
            Code::InvalidContentType,
            "the request body must be JSON sent with 'Content-Type: application/json'",
        ),
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            format!("the request body has {length} bytes; the limit is {limit}"),
        ),
        JsonPayloadError::Overflow { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::bad_request(Code::InvalidBody, format!("the request body does not fit: {e}"))
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request(Code::InvalidJson, format!("the request body is not valid JSON: {e}"))
        }
        other => ApiError::bad_request(Code::InvalidBody, format!("could not read the request body: {other}")),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::auth_stats)
        .service(servers::service_status)
        .service(servers::list_servers)
        .service(servers::get_server)
        .service(servers::reconnect)
        .service(servers::list_computes)
        .service(projects::list_projects)
        .service(projects::get_project)
        .service(projects::project_action)
        .service(nodes::list_nodes)
        .service(nodes::get_node)
        .service(nodes::node_action)
        .service(nodes::list_links)
        .service(topology::all_topology)
        .service(topology::server_topology)
        .service(topology::project_topology)
        .service(topology::refresh)
        .service(events::history)
        .service(events::stats)
        .service(events::legacy_stats)
        .service(events::dead_letters)
        .service(events::cluster)
        .service(metrics::metrics)
        .service(config::get_config)
        .service(config::patch_config)
        .service(audit::audit)
        .service(sessions::stats);
    legacy::configure(cfg);
    modules::configure(cfg);
    passthrough::configure(cfg);
}

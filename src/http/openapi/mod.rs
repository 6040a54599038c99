//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes, and
//! the pages that show it: `/api/schema/` (JSON), `/api/docs/` (Swagger UI, vendored by
//! utoipa-swagger-ui) and `/api/redoc/` (ReDoc, whose script is embedded below rather
//! than fetched from a CDN, so both pages work on a machine without internet).

use actix_web::{get, http::header, web, HttpResponse};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Settings;
use crate::http::routes::{events, health, legacy, modules, nodes, projects, servers, topology};

mod allow;
mod bodies;
mod common;
mod links;
pub use allow::KnownMethods;
use common::CommonResponses;
use links::Links;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gns3-central",
        description = "The one place where a network-management system talks to GNS3: \
            resilient connections to each GNS3 server, its topology, node and project actions. \
            Errors are `{\"error\":{\"code\",\"message\",\"details\"}}`; 503 answers carry `Retry-After`. \
            Every route except /healthz, /readyz and these docs needs `Authorization: Bearer <token>` \
            (401 without a valid one, 403 `insufficient_role` or `project_out_of_scope`).",
    ),
    modifiers(&BearerAuth, &CommonResponses, &Links),
    security(("bearer" = [])),
    paths(
        health::healthz, health::readyz, health::auth_stats,
        servers::service_status, servers::list_servers, servers::get_server, servers::reconnect,
        servers::list_computes,
        projects::list_projects, projects::get_project, projects::project_action,
        nodes::list_nodes, nodes::get_node, nodes::node_action, nodes::list_links,
        topology::all_topology, topology::server_topology, topology::project_topology,
        topology::refresh,
        events::history, events::stats, events::legacy_stats, events::dead_letters, events::cluster,
        crate::http::routes::sessions::stats, crate::http::routes::metrics::metrics,
        crate::http::routes::config::get_config, crate::http::routes::config::patch_config,
        crate::http::routes::audit::audit,
        legacy::status, legacy::topology, legacy::start_node, legacy::stop_node,
        legacy::restart_node, legacy::start_project, legacy::refresh_topology,
        modules::create_module_interface, legacy::old_status,
        legacy::old_start_node, legacy::old_topology,
        modules::create, modules::list, modules::get_one, modules::remove, modules::post_message,
        modules::stats, modules::dead_letters, modules::sinks,
        crate::http::routes::passthrough::doc::gns3_get, crate::http::routes::passthrough::doc::gns3_head,
        crate::http::routes::passthrough::doc::gns3_post, crate::http::routes::passthrough::doc::gns3_put,
        crate::http::routes::passthrough::doc::gns3_patch, crate::http::routes::passthrough::doc::gns3_delete,
    ),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "status", description = "Service status"),
        (name = "servers", description = "Configured GNS3 servers"),
        (name = "projects", description = "Projects and project actions"),
        (name = "nodes", description = "Nodes and node actions"),
        (name = "links", description = "Links"),
        (name = "topology", description = "Whole topologies"),
        (name = "events", description = "Event history, statistics and dead letters"),
        (name = "modules", description = "NMS modules and the bus between them"),
        (name = "original API", description = "Paths of the original service, kept working"),
        (name = "gns3 passthrough", description = "Any call to a GNS3 server's own API, through the hub"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme (API token or JWT), required everywhere but the probes.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description =
            Some("An API token (`gns3-central token create`) or a JWT; roles viewer < operator < admin".into());
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
        for open in ["/healthz", "/readyz"] {
            if let Some(item) = openapi.paths.paths.get_mut(open) {
                if let Some(op) = item.get.as_mut() {
                    op.security = Some(vec![SecurityRequirement::default()]);
                }
            }
        }
    }
}

const REDOC_JS: &[u8] = include_bytes!("assets/redoc.standalone.js");

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>gns3-central API (ReDoc)</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/api/schema/"></redoc>
  <script src="/api/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

#[get("/api/redoc/")]
async fn redoc_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(REDOC_PAGE)
}

#[get("/api/redoc")]
async fn redoc_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/api/redoc/")).finish()
}

#[get("/api/redoc/redoc.standalone.js")]
async fn redoc_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(REDOC_JS)
}

/// The document as this instance serves it: `ApiDoc` with the request bodies that depend on
/// the configuration (`bodies.rs`: bus messages, configuration patches), the configured
/// server names as the `server` parameters' enum, and the format of
/// audit record ids of the store in use (Redis stream ids `MS-SEQ`, else numbers). Edited as
/// JSON: utoipa's types cannot hold every keyword those schemas use (`propertyNames`, a
/// `null`-only type).
pub fn document(settings: &Settings) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    bodies::apply(&mut doc, settings);
    // A `server` that selects one (in the path, or the original topology paths' query) names a
    // configured server; any other name answers 404 `unknown_server`. (The audit trail's
    // `server` filter is not one: records also hold names that were refused.)
    let names: Vec<serde_json::Value> = settings.gns3.servers.keys().map(|n| n.as_str().into()).collect();
    for (path, item) in doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.iter_mut()) {
        let selects =
            |p: &serde_json::Value| p["name"] == "server" && (p["in"] == "path" || path.ends_with("/topology/"));
        for op in item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()) {
            let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
            for p in params.into_iter().flatten().filter(|p| selects(p)) {
                p["schema"]["enum"] = names.clone().into();
            }
        }
    }
    if settings.redis_config().is_none() {
        if let Some(params) = doc.pointer_mut("/paths/~1api~1v2~1audit/get/parameters").and_then(|p| p.as_array_mut()) {
            for p in params.iter_mut().filter(|p| p["name"] == "before") {
                p["schema"]["pattern"] = "^[0-9]{1,19}$".into();
            }
        }
    }
    doc
}

pub fn configure(cfg: &mut web::ServiceConfig, doc: serde_json::Value) {
    cfg.service(SwaggerUi::new("/api/docs/{_:.*}").external_url_unchecked("/api/schema/", doc))
        .service(redoc_page)
        .service(redoc_redirect)
        .service(redoc_js);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_documented_with_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v2/servers/{server}/projects/{project_id}/nodes/{node_id}/actions/{action}"));
        assert!(paths.contains_key("/api/common/api/gns3-central/start_node/"));
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path} documents no response");
            }
        }
    }

    #[test]
    fn every_operation_documents_the_answers_of_the_auth_gate_and_the_extractors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = &op["responses"];
                let open = op["security"] == serde_json::json!([{}]);
                assert_eq!(open, path == "/healthz" || path == "/readyz", "{method} {path}");
                if !open {
                    for status in ["401", "403"] {
                        assert!(responses[status].is_object(), "{method} {path} does not document {status}");
                    }
                    assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object(), "{method} {path}");
                }
                if op["requestBody"].is_object() {
                    assert!(responses["413"].is_object(), "{method} {path} reads a body but has no 413");
                }
                if responses["503"].is_object() {
                    assert!(
                        responses["503"]["headers"]["Retry-After"].is_object(),
                        "{method} {path}: 503 without Retry-After"
                    );
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap_or_default();
                    if p["in"] == "path" && name.ends_with("_id") {
                        assert_eq!(p["schema"]["format"], "uuid", "{method} {path}: {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn redoc_page_uses_the_embedded_script() {
        assert!(REDOC_PAGE.contains("/api/redoc/redoc.standalone.js"));
        assert!(!REDOC_PAGE.contains("cdn"));
        assert!(REDOC_JS.len() > 500_000);
    }
}

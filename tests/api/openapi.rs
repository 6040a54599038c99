//! The OpenAPI document is the contract (docs/api.md#the-openapi-document-is-the-contract):
//! the service takes what the document allows and refuses the rest, answers other methods of
//! a documented path with 405 and `Allow`, and serves the bounds of its own configuration.
//! Schemathesis checks the whole document (`scripts/schemathesis`); these pin the behaviours
//! it found missing, against the real binary's HTTP edge. GNS3 is nowhere: a request that
//! got past the checks would answer 503, so each 400 here was refused before GNS3.

use serde_json::json;

use crate::app::{error_code, spawn_app, test_settings, Target};

const P: &str = "68dca439-0000-4000-8000-000000000002";

#[actix_rt::test]
async fn other_methods_of_a_documented_path_answer_405_with_allow() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    for (method, path, allow) in [
        ("TRACE", "/healthz", "GET"),
        ("DELETE", "/api/v2/config", "GET, PATCH"),
        ("PUT", "/api/v2/modules/some-module", "GET, DELETE"),
        ("GET", "/api/v2/servers/default/reconnect", "POST"),
    ] {
        let m = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut res = app.client.request(m, app.url(path)).send().await.expect("answers");
        assert_eq!(res.status().as_u16(), 405, "{method} {path}");
        assert_eq!(res.headers().get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{method} {path}");
        let body: serde_json::Value = res.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}: {body}");
    }
    // A path the document does not know stays a 404.
    let r = app.get("/api/v2/servers/default/nowhere").await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_route"), "{}", r.text);
    app.stop().await;
}

#[actix_rt::test]
async fn bodies_take_only_their_schema_fields_and_ids_only_the_hyphenated_form() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let start = "/api/common/api/gns3-central/start_node/";
    let r = app.post_json(start, &json!({"project_id": P, "node_id": P, "projet": 1})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "unknown_field"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["field"], "projet");
    // A typo in a refresh scope no longer refreshes everything.
    let r = app.post_json("/api/v2/topology/refresh", &json!({"sever": "default"})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "unknown_field"), "{}", r.text);
    let r = app.post_json("/api/v2/bus/messages", &json!({"to": "x", "type": "t", "extra": true})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "unknown_field"), "{}", r.text);
    // `format: uuid` is the 8-4-4-4-12 form; `Uuid::parse_str` alone would take these.
    for id in ["68dca43900004000800000000000000a", "{68dca439-0000-4000-8000-000000000002}"] {
        let r = app.get(&format!("/api/v2/servers/default/projects/{id}/nodes")).await;
        assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_id"), "{id}: {}", r.text);
    }
    // Bounds the document gives: a bus dead-letter limit out of 1-1000 is refused, not clamped.
    let r = app.get("/api/v2/bus/dead-letters?limit=5000").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_limit"), "{}", r.text);
    // JSON Schema's integer 194.0 is taken where serde's u64 alone would refuse it.
    let r = app.post_json("/api/v2/bus/messages", &json!({"to": "nobody", "type": "t", "ttl": 194.0})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_module"), "{}", r.text);
    app.stop().await;
}

#[actix_rt::test]
async fn refresh_bodies_are_optional_and_an_oversized_one_is_a_json_413() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| s.http.max_body_bytes = 2048)).await;
    // No body, an empty one, `null`: everything is refreshed (GNS3 is down here: 503, then
    // `circuit_open` once the breaker has seen enough failures).
    for body in ["", "  ", "null"] {
        let r = app.post_raw("/api/v2/topology/refresh", "application/json", body).await;
        assert_eq!(r.status, 503, "{body:?}: {}", r.text);
        assert!(["gns3_unavailable", "circuit_open"].contains(&error_code(&r).as_str()), "{body:?}: {}", r.text);
    }
    let big: &'static str = Box::leak(format!("{{\"server\":\"{}\"}}", "x".repeat(4096)).into_boxed_str());
    for path in ["/api/v2/topology/refresh", "/api/common/api/gns3-central/refresh_topology/"] {
        let r = app.post_raw(path, "application/json", big).await;
        assert_eq!((r.status, error_code(&r).as_str()), (413, "body_too_large"), "{path}: {}", r.text);
    }
    let r = app.post_raw("/api/v2/topology/refresh", "text/plain", "{}").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_content_type"), "{}", r.text);
    app.stop().await;
}

#[actix_rt::test]
async fn the_served_document_carries_the_configured_bounds_and_nullable_details() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| {
        s.modules.request_timeout_ms = 1000;
        s.modules.max_request_timeout_ms = 1234;
    }))
    .await;
    let doc = app.get("/api/schema/").await.body;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["PostMessage"]["oneOf"][1]["properties"]["timeout_ms"]["maximum"], 1234);
    assert_eq!(schemas["ErrorDetail"]["properties"]["details"]["type"], json!(["object", "null"]));
    assert!(schemas["ErrorDetail"]["required"].as_array().unwrap().contains(&json!("details")));
    let servers = &schemas["ConfigPatch"]["properties"]["gns3"]["properties"]["servers"]["properties"];
    assert!(servers["default"].is_object(), "the configured server is named: {servers}");
    let op = &doc["paths"]["/api/v2/servers/{server}/projects/{project_id}/nodes"]["get"];
    for status in ["200", "400", "401", "403", "404", "503"] {
        assert!(op["responses"][status].is_object(), "{status} is not documented");
    }
    assert!(op["responses"]["503"]["headers"]["Retry-After"].is_object());
    let id = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "project_id").unwrap();
    assert_eq!(id["schema"]["format"], "uuid");
    app.stop().await;
}

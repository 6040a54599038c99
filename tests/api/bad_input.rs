//! Bad input gets a 400 with the JSON error body and GNS3 is not called. The service is
//! pointed at a port where nothing listens: had any of these requests reached the
//! connector, the answer would be 503, not 400.

use serde_json::json;

use crate::app::{error_code, spawn_app, test_settings, Target};

const P: &str = "68dca439-0000-4000-8000-000000000002";
const N: &str = "e19f73a6-0000-4000-8000-000000000001";

#[actix_rt::test]
async fn malformed_bodies_are_rejected_before_gns3_is_called() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let start = "/api/common/api/gns3-central/start_node/";

    let r = app.post_raw(start, "application/json", "{not json").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_json"), "{}", r.text);

    let r = app.post_raw(start, "text/plain", "{}").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_content_type"), "{}", r.text);

    let r = app.post_json(start, &json!({"project_id": P})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "missing_field"), "{}", r.text);
    assert_eq!(r.body["error"]["details"]["field"], "node_id");

    let r = app.post_json(start, &json!({"project_id": P, "node_id": 42})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_type"), "{}", r.text);

    let r = app.post_json(start, &json!({"project_id": "not-a-uuid", "node_id": N})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_id"), "{}", r.text);

    let r = app.post_json(start, &json!(["project_id", P])).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_body"), "{}", r.text);

    for path in [
        "/api/common/api/gns3-central/stop_node/",
        "/api/common/api/gns3-central/restart_node/",
        "/api/gns3/nodes/start/",
    ] {
        let r = app.post_json(path, &json!({"node_id": N})).await;
        assert_eq!((r.status, error_code(&r).as_str()), (400, "missing_field"), "{path}: {}", r.text);
    }
    let r = app.post_json("/api/common/api/gns3-central/start_project/", &json!({"project_id": 1})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    app.stop().await;
}

#[actix_rt::test]
async fn bad_path_ids_and_actions_are_rejected_before_gns3_is_called() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let base = "/api/v2/servers/default/projects";

    let r = app.get(&format!("{base}/not-a-uuid/nodes")).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_id"), "{}", r.text);

    let r = app.get(&format!("{base}/{P}/nodes/123")).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_id"), "{}", r.text);

    let r = app.post_json(&format!("{base}/{P}/nodes/{N}/actions/explode"), &json!({})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_action"), "{}", r.text);

    let r = app.post_json(&format!("{base}/{P}/actions/reload"), &json!({})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_action"), "{}", r.text);

    let r = app.get("/api/common/api/gns3-central/topology/?project_id=zzz").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_id"), "{}", r.text);

    let r = app.post_raw("/api/v2/topology/refresh", "application/json", "[oops").await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_json"), "{}", r.text);

    // The control: a well-formed request does reach the connector, which finds GNS3 down.
    let r = app.get(&format!("{base}/{P}/nodes")).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.retry_after.is_some());
    app.stop().await;
}

#[actix_rt::test]
async fn unknown_servers_routes_and_oversized_bodies_get_json_errors() {
    let app = spawn_app(test_settings(&Target::nowhere(), |s| s.http.max_body_bytes = 2048)).await;

    let r = app.get(&format!("/api/v2/servers/nope/projects/{P}/nodes")).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_server"), "{}", r.text);

    let r = app.get("/api/v2/no/such/route").await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_route"), "{}", r.text);

    let big = format!("{{\"project_id\":\"{}\"}}", "x".repeat(4096));
    let res = app
        .client
        .post(app.url("/api/common/api/gns3-central/start_project/"))
        .insert_header(("Content-Type", "application/json"))
        .send_body(big)
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 413);

    // The module endpoint checks its body too (modules' own cases: tests/api/modules/bad_input.rs).
    let r = app.post_json("/api/common/api/gns3-central/create_module_interface/", &json!({"module_name": 5})).await;
    assert_eq!((r.status, error_code(&r).as_str()), (400, "invalid_type"), "{}", r.text);
    app.stop().await;
}

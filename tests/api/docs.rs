//! The API documentation is served from the binary: the OpenAPI JSON, Swagger UI and
//! ReDoc, with no asset fetched from elsewhere.

use crate::app::{spawn_app, test_settings, Target};

#[actix_rt::test]
async fn schema_swagger_and_redoc_are_served_with_embedded_assets() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;

    let r = app.get("/api/schema/").await;
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "{}", &r.text[..200.min(r.text.len())]);
    assert!(r.body["paths"]["/api/common/api/gns3-central/start_node/"].is_object());

    let r = app.get("/api/docs/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("swagger"), "{}", r.text);
    assert!(!r.text.contains("https://"), "Swagger UI page must not load remote assets: {}", r.text);
    for asset in ["/api/docs/swagger-ui.css", "/api/docs/swagger-ui-bundle.js", "/api/docs/swagger-initializer.js"] {
        let a = app.get(asset).await;
        assert_eq!(a.status, 200, "{asset}");
        assert!(a.text.len() > 100, "{asset} is empty");
    }
    let init = app.get("/api/docs/swagger-initializer.js").await;
    assert!(init.text.contains("/api/schema/"), "{}", init.text);

    let r = app.get("/api/redoc/").await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("/api/redoc/redoc.standalone.js") && !r.text.contains("https://"), "{}", r.text);
    let js = app.get("/api/redoc/redoc.standalone.js").await;
    assert_eq!(js.status, 200);
    assert!(js.text.len() > 500_000 && js.content_type.contains("javascript"));
    app.stop().await;
}

//! The dashboard's files are served from the binary without a credential, with their
//! content types, a strict Content-Security-Policy and revalidation (`ETag`, 304), while
//! the data they show stays behind the token. (The page itself is tested in a real
//! browser: tests/browser.)

use crate::app::{error_code, spawn_app, test_settings, Target};

#[actix_rt::test]
async fn dashboard_files_are_open_embedded_and_locked_down() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let client = awc::Client::builder().disable_redirects().finish();

    let res = client.get(app.url("/")).send().await.expect("the service answers");
    assert_eq!(res.status().as_u16(), 302);
    assert_eq!(res.headers().get("location").and_then(|v| v.to_str().ok()), Some("/dashboard/"));
    let res = client.get(app.url("/dashboard")).send().await.expect("the service answers");
    assert_eq!(res.headers().get("location").and_then(|v| v.to_str().ok()), Some("/dashboard/"));

    let expected = [
        ("/dashboard/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/model.js", "text/javascript"),
        ("/dashboard/view.js", "text/javascript"),
        ("/dashboard/topology.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/favicon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in expected {
        let mut res = client.get(app.url(path)).send().await.expect("the service answers");
        assert_eq!(res.status().as_u16(), 200, "{path} without a token");
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(header("content-type").starts_with(content_type), "{path}: {}", header("content-type"));
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("cache-control"), "no-cache");
        let etag = header("etag");
        assert!(etag.starts_with('"'), "{path}: {etag}");
        let body = res.body().await.expect("body");
        assert!(body.len() > 100, "{path} is empty");

        let again =
            client.get(app.url(path)).insert_header(("If-None-Match", etag.as_str())).send().await.expect("answers");
        assert_eq!(again.status().as_u16(), 304, "{path} revalidates");
    }
    let r = app.get_as(None, "/dashboard/nothing.js").await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "unknown_route"));

    // What the page reads stays protected.
    for path in ["/api/v2/topology", "/api/v2/events/stats", "/api/v2/ws/stats"] {
        let r = app.get_as(None, path).await;
        assert_eq!((r.status, error_code(&r).as_str()), (401, "missing_token"), "{path}");
    }
    app.stop().await;
}

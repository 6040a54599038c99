//! The live dashboard: a single page (`/dashboard/`, and `/` redirects there) whose HTML,
//! CSS and plain JavaScript are compiled into the binary (`assets/`), so it works without
//! internet and needs no build step. The files are open (the access gate classes
//! `/dashboard/` as such): the page holds no data, it asks for a token, keeps it in
//! `sessionStorage`, and reads everything through the protected REST API and the
//! `/ws/gns3/events/` WebSocket (`bearer.<token>` subprotocol).
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from this
//! origin only, nothing inline, no framing) and an `ETag` with `Cache-Control: no-cache`:
//! a browser revalidates each load and gets `304` until the binary changes, so a new
//! version is never hidden behind a stale cache.

use crate::error::Code;
use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse, ResponseError};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("assets/index.html") },
    Asset { name: "style.css", content_type: "text/css; charset=utf-8", body: include_bytes!("assets/style.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("assets/app.js") },
    Asset { name: "model.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("assets/model.js") },
    Asset { name: "view.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("assets/view.js") },
    Asset {
        name: "topology.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/topology.js"),
    },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_bytes!("assets/favicon.svg") },
];

/// Scripts, styles, images and connections (REST and the WebSocket) from this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The strong ETag of each asset (a SHA-256 prefix), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn serve(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        let shown: String = name.chars().take(64).collect();
        return crate::error::ApiError::not_found(Code::UnknownRoute, format!("no dashboard file '{shown}'"))
            .error_response();
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if fresh {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}

#[get("/")]
async fn root() -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/dashboard/")).finish()
}

#[get("/dashboard")]
async fn bare() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/dashboard/")).finish()
}

#[get("/dashboard/")]
async fn page(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

#[get("/dashboard/{file}")]
async fn file(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    serve(&req, &name)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(root).service(bare).service(page).service(file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_files_and_nothing_inline() {
        let html = std::str::from_utf8(ASSETS[0].body).expect("index.html is UTF-8");
        for a in ASSETS.iter().skip(1) {
            assert!(html.contains(&format!("/dashboard/{}", a.name)), "{} is not referenced", a.name);
        }
        assert!(!html.contains("http://") && !html.contains("https://"), "no external URL");
        assert!(!html.contains("<script>") && !html.contains("style="), "nothing inline (CSP)");
        assert!(!html.contains("onclick"), "no inline handlers (CSP)");
    }

    #[test]
    fn etags_differ_per_file() {
        let e = etags();
        assert_eq!(e.len(), ASSETS.len());
        assert!(e.iter().all(|t| t.len() == 26 && t.starts_with('"')));
        assert_ne!(e[1], e[2]);
    }
}

//! The HTTP edge of `Application::build`: the credentials (with none configured, a
//! generated admin token on loopback binds only), and the actix-web server: extractor
//! limits and error mapping, the auth gate and the request metrics middleware, then the
//! routes, the WebSocket upgrades, the OpenAPI document and the dashboard.

use actix_web::dev::{Server, Service};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::future::Either;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{Auth, Role};
use crate::config::Settings;
use crate::error::{ApiError, Code};
use crate::http::{openapi, routes};
use crate::state::AppState;

/// Runs the actix-web server on `listener` (signals are handled by
/// `Application::run_until_stopped`, so WebSocket sessions get 1001 first).
pub(super) fn serve(
    state: web::Data<AppState>,
    auth: Arc<Auth>,
    test_mode: bool,
    listener: TcpListener,
) -> std::io::Result<Server> {
    let settings = state.settings.clone();
    let max_body = settings.http.max_body_bytes;
    let app_state = state;
    let metrics = app_state.metrics.clone();
    let doc = openapi::document(&settings);
    let known_methods = web::Data::new(openapi::KnownMethods::from_doc(&doc));
    let mut http = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(known_methods.clone())
            .app_data(routes::json_config(max_body))
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::bad_request(Code::InvalidQuery, format!("bad query string: {e}")).into()
            }))
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::bad_request(Code::InvalidPath, format!("bad path: {e}")).into()),
            )
            .wrap_fn({
                let auth = auth.clone();
                move |req, srv| match crate::auth::middleware::gate(req, &auth) {
                    Ok(req) => Either::Left(srv.call(req)),
                    Err(res) => Either::Right(std::future::ready(Ok(*res))),
                }
            })
            .wrap_fn({
                let metrics = metrics.clone();
                move |req, srv| {
                    let method = req.method().clone();
                    let path = req.path().to_owned();
                    // The pattern (`/api/v2/servers/{server}`), never the raw path: bounded series.
                    let route = req.match_pattern();
                    let begin = Instant::now();
                    let fut = srv.call(req);
                    let metrics = metrics.clone();
                    async move {
                        let res = fut.await?;
                        let took = begin.elapsed();
                        let status = res.status().as_u16();
                        metrics.record_http(method.as_str(), route.as_deref(), status, took);
                        tracing::debug!(
                            %method, %path, status, ms = took.as_secs_f64() * 1000.0,
                            "Request served."
                        );
                        Ok(res)
                    }
                }
            })
            .configure(routes::configure)
            // Test hooks (docs/operations.md#supervision), only with --test-mode.
            .configure(|cfg| {
                if test_mode {
                    routes::debug::configure(cfg)
                }
            })
            .configure(crate::ws::configure)
            .configure(|cfg| openapi::configure(cfg, doc.clone()))
            .configure(crate::dashboard::configure)
            .default_service(web::to(unknown_route))
    })
    // Every accepted socket is written with `TCP_NODELAY` (issue 17): with Nagle's
    // algorithm on, a small frame written while the previous one is unacknowledged waits for
    // the client's ACK, which a Linux client delays by up to 40 ms; so two events close
    // together reached an idle dashboard 40 ms apart. Segments stay full under load without
    // Nagle because writes are already coalesced above the socket: a session's actor encodes
    // every frame it handles in one turn into one chunk (actix-web-actors), and actix-http's
    // dispatcher copies every chunk the pipe holds into one write buffer and hands that to the
    // socket in one `write` per wake-up (`ws/pipe.rs`).
    .on_connect(nodelay)
    .shutdown_timeout(settings.http.shutdown_timeout_secs)
    // Signals are handled in `run_until_stopped`: WebSocket sessions get 1001 first.
    .disable_signals()
    .listen(listener)?;
    if settings.http.workers > 0 {
        http = http.workers(settings.http.workers);
    }
    Ok(http.run())
}

/// Sets `TCP_NODELAY` on an accepted connection (see `serve`); a failure is logged, and the
/// connection is served with Nagle's algorithm (slower, not wrong).
fn nodelay(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "Could not set TCP_NODELAY on an accepted socket.");
        }
    }
}

/// The credentials; with none configured, an admin token for this run on a loopback bind,
/// and a refusal to start on any other address (an open API on a network is never a default).
pub(super) fn build_auth(
    settings: &Settings,
    addr: std::net::SocketAddr,
) -> std::io::Result<(Arc<Auth>, Option<String>)> {
    let mut auth = Auth::from_settings(&settings.auth, &addr.ip().to_string()).map_err(std::io::Error::other)?;
    if auth.has_credentials() {
        return Ok((Arc::new(auth), None));
    }
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "no API token or JWT is configured and http.bind ({addr}) is not a loopback address; \
             create a token with `gns3-central token create --name NAME --role admin` and add the \
             printed [[auth.tokens]] lines to the configuration (or bind to 127.0.0.1)"
        )));
    }
    let token = crate::auth::token::generate();
    auth.add_token("generated-admin", Role::Admin, &token);
    tracing::info!("No API token configured: an admin token for this run was printed on stdout.");
    Ok((Arc::new(auth), Some(token)))
}

/// Unknown paths get the JSON error body too; a path of the OpenAPI document asked with a
/// method it does not take answers 405 with `Allow` (`openapi::KnownMethods`).
async fn unknown_route(req: HttpRequest, known: web::Data<openapi::KnownMethods>) -> HttpResponse {
    use actix_web::ResponseError;
    if let Some(allow) = known.allow(req.match_info().as_str()) {
        let mut res = ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            Code::MethodNotAllowed,
            format!("{} {} is not a route; this path takes {allow}", req.method(), req.path()),
        )
        .with_details(serde_json::json!({ "allow": allow }))
        .error_response();
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(actix_web::http::header::ALLOW, value);
        }
        return res;
    }
    ApiError::not_found(Code::UnknownRoute, format!("no route for {} {} (see /api/docs/)", req.method(), req.path()))
        .error_response()
}

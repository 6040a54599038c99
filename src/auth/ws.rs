//! Authentication of a WebSocket upgrade, for the `/ws/...` handlers to call before they
//! upgrade: the credential comes from `Authorization: Bearer`, the `?token=` query, or a
//! `Sec-WebSocket-Protocol` entry `bearer.<token>` (browsers cannot set headers on a
//! WebSocket; that protocol string is returned so the handler echoes it back, as the
//! protocol requires). A browser's `Origin` must be in `auth.allowed_origins`, or, when
//! that list is empty, name one of the service's own hosts; a request without `Origin`
//! (not a browser, so no cross-site risk) passes.

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;

use super::{bearer_of, unauthorized, Auth, Principal};
use crate::error::{ApiError, Code};

/// A successful WebSocket authentication.
#[derive(Debug, Clone)]
pub struct WsAuth {
    pub principal: Principal,
    /// The `bearer.<token>` subprotocol to echo in the handshake answer, when used.
    pub protocol: Option<String>,
}

/// Checks the origin, then finds and verifies the credential.
pub fn authenticate_ws(req: &HttpRequest, auth: &Auth) -> Result<WsAuth, ApiError> {
    check_origin(req, auth)?;
    let (token, protocol) = credential_of(req)?;
    let principal = auth.authenticate_bearer(&token)?;
    Ok(WsAuth { principal, protocol })
}

/// The credential of an upgrade as sent (header, `bearer.<token>` subprotocol, then
/// `?token=`), and the subprotocol to echo when it came that way. Not verified: the
/// dashboard checks it with `Auth`, a module endpoint against the module registry.
pub fn credential_of(req: &HttpRequest) -> Result<(String, Option<String>), ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return Ok((bearer_of(req.headers())?.to_owned(), None));
    }
    for value in req.headers().get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        let Ok(list) = value.to_str() else { continue };
        for proto in list.split(',').map(str::trim) {
            if let Some(token) = proto.strip_prefix("bearer.") {
                return Ok((token.to_owned(), Some(proto.to_owned())));
            }
        }
    }
    let query = url::form_urlencoded::parse(req.query_string().as_bytes());
    for (k, v) in query {
        if k == "token" {
            return Ok((v.into_owned(), None));
        }
    }
    Err(unauthorized(
        Code::MissingToken,
        "send the token as 'Authorization: Bearer <token>', '?token=<token>' \
         or the WebSocket protocol 'bearer.<token>'",
    ))
}

pub fn check_origin(req: &HttpRequest, auth: &Auth) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("").trim().trim_end_matches('/');
    let refuse = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            Code::OriginNotAllowed,
            format!("WebSocket connections from origin '{origin}' are not allowed (see auth.allowed_origins)"),
        )
    };
    if !auth.allowed_origins.is_empty() {
        let ok = auth.allowed_origins.iter().any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin));
        return if ok { Ok(()) } else { Err(refuse()) };
    }
    let host = url::Url::parse(origin).ok().and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()));
    let Some(host) = host else { return Err(refuse()) };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let mut own = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    own.push(auth.bind_host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase());
    if let Some(h) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) {
        if let Ok(u) = url::Url::parse(&format!("http://{h}")) {
            if let Some(hs) = u.host_str() {
                own.push(hs.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase());
            }
        }
    }
    if own.contains(&host) {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{token, AuthSettings, Role, TokenSetting};
    use actix_web::test::TestRequest;

    fn auth(origins: &[&str]) -> Auth {
        let s = crate::config::Settings::load_with(None, &|_| None, vec![]).unwrap();
        let settings = AuthSettings {
            tokens: vec![TokenSetting {
                name: "ui".into(),
                role: "viewer".into(),
                hash: token::hash("tok-1"),
                projects: vec![],
            }],
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..s.auth
        };
        Auth::from_settings(&settings, "10.0.0.5").unwrap()
    }

    #[test]
    fn token_from_header_query_or_protocol() {
        let a = auth(&[]);
        let r = TestRequest::default().insert_header(("Authorization", "Bearer tok-1")).to_http_request();
        assert_eq!(authenticate_ws(&r, &a).unwrap().principal.role, Role::Viewer);
        let r = TestRequest::with_uri("/ws/events?token=tok-1").to_http_request();
        assert!(authenticate_ws(&r, &a).unwrap().protocol.is_none());
        let r = TestRequest::default()
            .insert_header(("Sec-WebSocket-Protocol", "gns3-central.v1, bearer.tok-1"))
            .to_http_request();
        assert_eq!(authenticate_ws(&r, &a).unwrap().protocol.as_deref(), Some("bearer.tok-1"));
        let r = TestRequest::with_uri("/ws/events?token=wrong").to_http_request();
        assert_eq!(authenticate_ws(&r, &a).unwrap_err().status, StatusCode::UNAUTHORIZED);
        let r = TestRequest::default().to_http_request();
        assert_eq!(authenticate_ws(&r, &a).unwrap_err().code, "missing_token");
    }

    #[test]
    fn origin_must_be_own_host_or_allowed() {
        let a = auth(&[]);
        let ok = |origin: &str, host: &str| {
            let r = TestRequest::with_uri("/ws/events?token=tok-1")
                .insert_header(("Origin", origin))
                .insert_header(("Host", host))
                .to_http_request();
            authenticate_ws(&r, &a)
        };
        assert!(ok("http://localhost:3000", "x:1").is_ok());
        assert!(ok("http://central.lab:8000", "central.lab:8000").is_ok());
        assert!(ok("http://10.0.0.5:8000", "x").is_ok());
        assert_eq!(ok("https://evil.example", "central.lab:8000").unwrap_err().code, "origin_not_allowed");
        let listed = auth(&["https://noc.example.org"]);
        let r = TestRequest::with_uri("/ws/events?token=tok-1")
            .insert_header(("Origin", "https://noc.example.org"))
            .to_http_request();
        assert!(authenticate_ws(&r, &listed).is_ok());
        let r = TestRequest::with_uri("/ws/events?token=tok-1")
            .insert_header(("Origin", "http://localhost"))
            .to_http_request();
        assert_eq!(authenticate_ws(&r, &listed).unwrap_err().code, "origin_not_allowed");
    }
}

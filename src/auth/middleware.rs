//! The access check of every HTTP request. Each route belongs to a class (`access_of`):
//! open (health probes, API docs, the dashboard's static files, WebSocket upgrades which authenticate themselves with
//! `authenticate_ws`), or the least role it needs. Unknown paths need a viewer (GET) or an
//! admin (other methods): an anonymous caller cannot map the API, and a route added later
//! without a class here is not opened to lower roles by accident. For `/api/v2/servers/{s}/projects/{id}/...`
//! the project is checked here against a project-scoped credential; routes that carry
//! the project elsewhere (query, body) or list several projects check in the handler.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::{HttpMessage, ResponseError};
use uuid::Uuid;

use super::{Auth, Role};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Needs(Role),
}

/// The class of every route, by method and path (`*` = one path segment).
const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Open),
    // Probes: readiness says only whether GNS3 and the cache are reachable.
    ("GET", "/readyz", Access::Open),
    ("GET", "/api/v2/status", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*", Access::Needs(Role::Viewer)),
    ("POST", "/api/v2/servers/*/reconnect", Access::Needs(Role::Admin)),
    ("GET", "/api/v2/servers/*/computes", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*/projects", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*/projects/*", Access::Needs(Role::Viewer)),
    ("POST", "/api/v2/servers/*/projects/*/actions/*", Access::Needs(Role::Operator)),
    ("GET", "/api/v2/servers/*/projects/*/nodes", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*/projects/*/nodes/*", Access::Needs(Role::Viewer)),
    ("POST", "/api/v2/servers/*/projects/*/nodes/*/actions/*", Access::Needs(Role::Operator)),
    ("GET", "/api/v2/servers/*/projects/*/links", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*/projects/*/topology", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/servers/*/topology", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/topology", Access::Needs(Role::Viewer)),
    ("POST", "/api/v2/topology/refresh", Access::Needs(Role::Admin)),
    ("GET", "/api/v2/events", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/events/stats", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/events/dead-letters", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/cluster", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/auth/stats", Access::Needs(Role::Admin)),
    ("GET", "/api/v2/modules", Access::Needs(Role::Viewer)),
    ("POST", "/api/v2/modules", Access::Needs(Role::Admin)),
    ("GET", "/api/v2/modules/*", Access::Needs(Role::Viewer)),
    ("DELETE", "/api/v2/modules/*", Access::Needs(Role::Admin)),
    ("POST", "/api/v2/bus/messages", Access::Needs(Role::Operator)),
    ("GET", "/api/v2/bus/stats", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/bus/dead-letters", Access::Needs(Role::Viewer)),
    ("GET", "/api/v2/sinks", Access::Needs(Role::Viewer)),
    // Runtime configuration (secrets masked, but the whole setup is an admin's business).
    ("GET", "/api/v2/config", Access::Needs(Role::Admin)),
    ("PATCH", "/api/v2/config", Access::Needs(Role::Admin)),
    ("GET", "/api/v2/audit", Access::Needs(Role::Admin)),
    // Test hooks, mounted only with --test-mode.
    ("POST", "/api/v2/debug/servers/*/panic", Access::Needs(Role::Admin)),
    // The original service's paths.
    ("GET", "/api/common/api/gns3-central/status/", Access::Needs(Role::Viewer)),
    ("GET", "/api/common/api/gns3-central/topology/", Access::Needs(Role::Viewer)),
    ("POST", "/api/common/api/gns3-central/start_node/", Access::Needs(Role::Operator)),
    ("POST", "/api/common/api/gns3-central/stop_node/", Access::Needs(Role::Operator)),
    ("POST", "/api/common/api/gns3-central/restart_node/", Access::Needs(Role::Operator)),
    ("POST", "/api/common/api/gns3-central/start_project/", Access::Needs(Role::Operator)),
    ("POST", "/api/common/api/gns3-central/refresh_topology/", Access::Needs(Role::Admin)),
    ("POST", "/api/common/api/gns3-central/create_module_interface/", Access::Needs(Role::Admin)),
    ("GET", "/api/common/api/gns3-events/stats/", Access::Needs(Role::Viewer)),
    ("GET", "/api/gns3/status/", Access::Needs(Role::Viewer)),
    ("POST", "/api/gns3/nodes/start/", Access::Needs(Role::Operator)),
    ("GET", "/api/gns3/topology/", Access::Needs(Role::Viewer)),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The class of a request. `/metrics` is open when `metrics_open`, else a viewer's.
pub fn access_of(method: &Method, path: &str, metrics_open: bool) -> Access {
    if path == "/api/docs"
        || path.starts_with("/api/docs/")
        || path.starts_with("/api/schema")
        || path.starts_with("/api/redoc")
    {
        return Access::Open;
    }
    // The dashboard's files hold no data: the page asks for a token and uses the API.
    if path == "/" || path == "/dashboard" || path.starts_with("/dashboard/") {
        return Access::Open;
    }
    // WebSocket endpoints authenticate in the handler (`authenticate_ws`), before the upgrade.
    if path.starts_with("/ws/") {
        return Access::Open;
    }
    if path == "/metrics" {
        return if metrics_open { Access::Open } else { Access::Needs(Role::Viewer) };
    }
    let read = method == Method::GET || method == Method::HEAD;
    // The GNS3 passthrough, every method: reads a viewer's, everything else an operator's
    // (its project scope is checked in the handler, which decodes the GNS3 path).
    if is_passthrough(path) {
        return Access::Needs(if read { Role::Viewer } else { Role::Operator });
    }
    let unknown = if read { Role::Viewer } else { Role::Admin };
    ROUTES
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method.as_str()) && matches(p, path))
        .map(|(_, _, a)| *a)
        .unwrap_or(Access::Needs(unknown))
}

/// `/api/v2/servers/{s}/gns3/...` (`crate::http::routes::passthrough`).
fn is_passthrough(path: &str) -> bool {
    let mut segs = path.split('/');
    matches!(
        (segs.next(), segs.next(), segs.next(), segs.next(), segs.next(), segs.next(), segs.next()),
        (Some(""), Some("api"), Some("v2"), Some("servers"), Some(s), Some("gns3"), Some(_)) if !s.is_empty()
    )
}

/// The project of a `/api/v2/servers/{s}/projects/{id}...` path, when it is a UUID.
fn project_in_path(path: &str) -> Option<Uuid> {
    let segs: Vec<&str> = path.split('/').collect();
    // ["", "api", "v2", "servers", s, "projects", id, ...]
    if segs.len() >= 7 && segs[1] == "api" && segs[2] == "v2" && segs[3] == "servers" && segs[5] == "projects" {
        return Uuid::parse_str(segs[6]).ok();
    }
    None
}

/// The `wrap_fn` gate: the request goes on (with its `Principal` in the extensions) or
/// is answered here with 401 (+ `WWW-Authenticate: Bearer`) or 403.
pub fn gate(req: ServiceRequest, auth: &Auth) -> Result<ServiceRequest, Box<ServiceResponse<BoxBody>>> {
    // The path as the router matches it (percent-decoded), not as sent: `reconnec%74` must
    // be classified as the `reconnect` route it reaches.
    let path = req.match_info().as_str().to_owned();
    let needed = match access_of(req.method(), &path, auth.metrics_open) {
        Access::Open => return Ok(req),
        Access::Needs(role) => role,
    };
    let principal = match auth.authenticate_header(req.request()) {
        Ok(p) => p,
        Err(e) => {
            auth.refused.count(&e);
            tracing::debug!(path = %req.path(), code = e.code.as_str(), "Request refused: not authenticated.");
            let mut res = e.error_response();
            res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return Err(Box::new(req.into_response(res)));
        }
    };
    let verdict = principal.require(needed).and_then(|()| match project_in_path(&path) {
        Some(project) => principal.check_project(&project),
        None => Ok(()),
    });
    if let Err(e) = verdict {
        auth.refused.count(&e);
        tracing::debug!(path = %req.path(), who = %principal.name, code = e.code.as_str(), "Request refused: forbidden.");
        return Err(Box::new(req.into_response(e.error_response())));
    }
    req.extensions_mut().insert(principal);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_class_is_as_documented() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(access_of(&get, "/healthz", false), Access::Open);
        assert_eq!(access_of(&get, "/api/docs/", false), Access::Open);
        assert_eq!(access_of(&get, "/", false), Access::Open);
        assert_eq!(access_of(&get, "/dashboard/app.js", false), Access::Open);
        assert_eq!(access_of(&get, "/dashboardx", false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&get, "/api/v2/servers/default/projects", false), Access::Needs(Role::Viewer));
        assert_eq!(
            access_of(&post, "/api/v2/servers/d/projects/p/nodes/n/actions/start", false),
            Access::Needs(Role::Operator)
        );
        assert_eq!(access_of(&post, "/api/v2/servers/d/reconnect", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&post, "/api/v2/topology/refresh", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&post, "/api/gns3/nodes/start/", false), Access::Needs(Role::Operator));
        assert_eq!(access_of(&get, "/metrics", true), Access::Open);
        assert_eq!(access_of(&get, "/api/v2/config", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&get, "/api/v2/audit", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&Method::PATCH, "/api/v2/config", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&get, "/metrics", false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&get, "/nowhere", false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&post, "/nowhere", false), Access::Needs(Role::Admin));
        // An empty segment does not match a `*`.
        assert_eq!(access_of(&get, "/api/v2/servers//computes", false), Access::Needs(Role::Viewer));
    }

    #[test]
    fn module_routes_are_classified() {
        let (get, post, del) = (Method::GET, Method::POST, Method::DELETE);
        assert_eq!(access_of(&post, "/api/v2/modules", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&get, "/api/v2/modules", false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&get, "/api/v2/modules/monitoring", false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&del, "/api/v2/modules/monitoring", false), Access::Needs(Role::Admin));
        assert_eq!(access_of(&post, "/api/v2/bus/messages", false), Access::Needs(Role::Operator));
        assert_eq!(access_of(&get, "/api/v2/bus/stats", false), Access::Needs(Role::Viewer));
        let legacy = "/api/common/api/gns3-central/create_module_interface/";
        assert_eq!(access_of(&post, legacy, false), Access::Needs(Role::Admin));
        // Module WebSockets authenticate their module token in the handler.
        assert_eq!(access_of(&get, "/ws/modules/monitoring", false), Access::Open);
    }

    #[test]
    fn passthrough_reads_need_a_viewer_and_the_rest_an_operator() {
        let p = "/api/v2/servers/default/gns3/projects/x/nodes";
        assert_eq!(access_of(&Method::GET, p, false), Access::Needs(Role::Viewer));
        assert_eq!(access_of(&Method::HEAD, p, false), Access::Needs(Role::Viewer));
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
            assert_eq!(access_of(&m, p, false), Access::Needs(Role::Operator), "{m}");
        }
        assert_eq!(access_of(&Method::POST, "/api/v2/servers/default/gns3", false), Access::Needs(Role::Admin));
    }

    #[test]
    fn project_is_read_from_the_path() {
        let p = Uuid::new_v4();
        assert_eq!(project_in_path(&format!("/api/v2/servers/d/projects/{p}/nodes")), Some(p));
        assert_eq!(project_in_path("/api/v2/servers/d/projects"), None);
        assert_eq!(project_in_path("/api/v2/servers/d/projects/not-a-uuid"), None);
    }
}

//! The v2 routes the stand-in serves, matched by hand so that unknown paths and methods get
//! aiohttp's plain-text `404: Not Found` / `405: Method Not Allowed` like real gns3 v2, and
//! so that every body is read the way gns3 reads it: whatever the Content-Type, empty means
//! `{}`, malformed JSON is a 400 that echoes it, and the JSON schema is checked before the
//! project is looked up. Replies are pretty-printed with sorted keys, as v2 sends them.

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::nodes::Action;
use super::objects::{compute_json, VERSION};
use super::schema::{self, py_repr, Schema};
use super::state::{Scope, SimError};
use super::ws::{self, Feed};
use super::{lock, Shared, World};

/// The `Server` header of a real v2 (some clients log it).
pub(super) const SERVER_HEADER: &str = "Python/3.11 GNS3/2.2.61";
/// Largest request body read (aiohttp's default `client_max_size`).
const MAX_BODY: usize = 1024 * 1024;

/// A matched route: what to do, the route template (shown in 400 bodies), allowed methods.
enum Route<'a> {
    Version,
    Computes,
    Compute(&'a str),
    ControllerStream {
        ws: bool,
    },
    Projects,
    Project(&'a str),
    Open(&'a str),
    Close(&'a str),
    ProjectStream {
        pid: &'a str,
        ws: bool,
    },
    Nodes(&'a str),
    /// `/nodes/{x}`: a node (GET/PUT/DELETE), or a bulk action (POST) when `x` is one.
    NodeOrBulk(&'a str, &'a str),
    NodeAction(&'a str, &'a str, Action),
    NodeLinks(&'a str, &'a str),
    Links(&'a str),
    Link(&'a str, &'a str),
}

use Method as M;

fn route<'a>(segs: &[&'a str]) -> Option<(Route<'a>, &'static str, Vec<Method>)> {
    let p = "/v2/projects/{project_id}";
    Some(match *segs {
        ["version"] => (Route::Version, "/v2/version", vec![M::GET]),
        ["computes"] => (Route::Computes, "/v2/computes", vec![M::GET]),
        ["computes", c] => (Route::Compute(c), "/v2/computes/{compute_id}", vec![M::GET]),
        ["notifications"] => (Route::ControllerStream { ws: false }, "/v2/notifications", vec![M::GET]),
        ["notifications", "ws"] => (Route::ControllerStream { ws: true }, "/v2/notifications/ws", vec![M::GET]),
        ["projects"] => (Route::Projects, "/v2/projects", vec![M::GET, M::POST]),
        ["projects", pid] => (Route::Project(pid), p, vec![M::GET, M::PUT, M::DELETE]),
        ["projects", pid, "open"] => (Route::Open(pid), "/v2/projects/{project_id}/open", vec![M::POST]),
        ["projects", pid, "close"] => (Route::Close(pid), "/v2/projects/{project_id}/close", vec![M::POST]),
        ["projects", pid, "notifications"] => {
            (Route::ProjectStream { pid, ws: false }, "/v2/projects/{project_id}/notifications", vec![M::GET])
        }
        ["projects", pid, "notifications", "ws"] => {
            (Route::ProjectStream { pid, ws: true }, "/v2/projects/{project_id}/notifications/ws", vec![M::GET])
        }
        ["projects", pid, "nodes"] => (Route::Nodes(pid), "/v2/projects/{project_id}/nodes", vec![M::GET, M::POST]),
        ["projects", pid, "nodes", x] => {
            let mut methods = vec![M::GET, M::PUT, M::DELETE];
            let template = if Action::parse(x).is_some() {
                methods.push(M::POST);
                "/v2/projects/{project_id}/nodes/{action}"
            } else {
                "/v2/projects/{project_id}/nodes/{node_id}"
            };
            (Route::NodeOrBulk(pid, x), template, methods)
        }
        ["projects", pid, "nodes", nid, "links"] => {
            (Route::NodeLinks(pid, nid), "/v2/projects/{project_id}/nodes/{node_id}/links", vec![M::GET])
        }
        ["projects", pid, "nodes", nid, a] => {
            let action = Action::parse(a)?;
            (Route::NodeAction(pid, nid, action), "/v2/projects/{project_id}/nodes/{node_id}/{action}", vec![M::POST])
        }
        ["projects", pid, "links"] => (Route::Links(pid), "/v2/projects/{project_id}/links", vec![M::GET, M::POST]),
        ["projects", pid, "links", lid] => {
            (Route::Link(pid, lid), "/v2/projects/{project_id}/links/{link_id}", vec![M::GET, M::PUT, M::DELETE])
        }
        _ => return None,
    })
}

/// The one handler: every request of the stand-in comes here.
pub async fn dispatch(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> HttpResponse {
    let path = percent_decode(req.path());
    let segs: Vec<&str> = match path.strip_prefix("/v2/") {
        // aiohttp's `{id}` never matches an empty segment.
        Some(rest) if !rest.split('/').any(str::is_empty) => rest.split('/').collect(),
        _ => return plain(StatusCode::NOT_FOUND, "404: Not Found").render(),
    };
    let Some((route, template, methods)) = route(&segs) else {
        return plain(StatusCode::NOT_FOUND, "404: Not Found").render();
    };
    if !methods.contains(req.method()) {
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed").render();
        if let Ok(v) = header::HeaderValue::from_str(&allow.join(",")) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return res;
    }
    match route {
        Route::ControllerStream { ws } => return stream(&req, payload, shared.get_ref(), Scope::Controller, ws),
        Route::ProjectStream { pid, ws } => {
            if let Err(e) = lock(&shared).model.project(pid) {
                return error(&e).render();
            }
            return stream(&req, payload, shared.get_ref(), Scope::Project(pid.to_owned()), ws);
        }
        _ => {}
    }
    let body = match read_body(&req, payload, template).await {
        Ok(body) => body,
        Err(reply) => return reply.render(),
    };
    let call = Call { req: &req, template, body: &body };
    let reply = {
        let mut world = lock(&shared);
        let reply = handle(&mut world, route, &call);
        world.flush();
        reply
    };
    // Serialized after the lock is released.
    reply.render()
}

/// The path as aiohttp matches it: `%XX` decoded (invalid UTF-8 replaced).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler needs to know about the request.
struct Call<'a> {
    req: &'a HttpRequest,
    template: &'static str,
    body: &'a Value,
}

impl Call<'_> {
    /// The body checked against `schema`; the 400 reply when it does not fit.
    fn checked(&self, schema: &Schema) -> Result<&Map<String, Value>, Reply> {
        match schema::validate(schema, self.body) {
            Ok(()) => self.body.as_object().ok_or(Reply::Json(StatusCode::INTERNAL_SERVER_ERROR, json!({}))),
            Err(reason) => {
                let path_qs = match self.req.uri().query() {
                    Some(q) => format!("{}?{q}", self.req.path()),
                    None => self.req.path().to_owned(),
                };
                let message = format!(
                    "JSON schema error with API request '{path_qs}' and JSON data '{}': {reason}",
                    py_repr(self.body)
                );
                Err(bad_request(self.req, self.template, message, self.body.clone()))
            }
        }
    }
}

fn handle(world: &mut World, route: Route<'_>, call: &Call<'_>) -> Reply {
    let method = call.req.method().as_str();
    let m = &mut world.model;
    macro_rules! body {
        ($schema:expr) => {
            match call.checked(&$schema) {
                Ok(b) => b,
                Err(res) => return res,
            }
        };
    }
    match route {
        Route::Version => ok(json!({"local": true, "version": VERSION})),
        Route::Computes => {
            let (cpu, mem) = world.load();
            ok(json!([compute_json(world.port, cpu, mem)]))
        }
        Route::Compute("local") => {
            let (cpu, mem) = world.load();
            ok(compute_json(world.port, cpu, mem))
        }
        Route::Compute(other) => error(&SimError::UnknownCompute(other.to_owned())),
        Route::Projects if method == "POST" => created(m.create_project(body!(schema::PROJECT_CREATE))),
        Route::Projects => ok(m.list_projects()),
        Route::Project(pid) => match method {
            "PUT" => reply(m.update_project(pid, body!(schema::PROJECT_UPDATE))),
            "DELETE" => no_content(m.delete_project(pid)),
            _ => reply(m.get_project(pid)),
        },
        Route::Open(pid) => created(m.open_project(pid)),
        Route::Close(pid) => no_content(m.close_project(pid)),
        Route::Nodes(pid) if method == "POST" => created(m.create_node(pid, body!(schema::NODE_CREATE), false)),
        Route::Nodes(pid) => reply(m.list_nodes(pid)),
        Route::NodeOrBulk(pid, x) => match (method, Action::parse(x)) {
            ("POST", Some(action)) => no_content(m.bulk_action(pid, action)),
            ("PUT", _) => reply(m.update_node(pid, x, body!(schema::NODE_UPDATE))),
            ("DELETE", _) => no_content(m.delete_node(pid, x)),
            _ => reply(m.get_node(pid, x)),
        },
        Route::NodeAction(pid, nid, action) => reply(m.node_action(pid, nid, action)),
        Route::NodeLinks(pid, nid) => reply(m.node_links(pid, nid)),
        Route::Links(pid) if method == "POST" => created(m.create_link(pid, body!(schema::LINK), false)),
        Route::Links(pid) => reply(m.list_links(pid)),
        Route::Link(pid, lid) => match method {
            // v2 answers a link update with 201.
            "PUT" => created(m.update_link(pid, lid, body!(schema::LINK))),
            "DELETE" => no_content(m.delete_link(pid, lid)),
            _ => reply(m.get_link(pid, lid)),
        },
        Route::ControllerStream { .. } | Route::ProjectStream { .. } => plain(StatusCode::NOT_FOUND, "404: Not Found"),
    }
}

fn stream(req: &HttpRequest, payload: web::Payload, shared: &Shared, scope: Scope, ws: bool) -> HttpResponse {
    if ws {
        if let Some(refusal) = ws::handshake_refusal(req) {
            return refusal;
        }
    }
    let Some(feed) = Feed::open(shared, scope) else {
        return Reply::Json(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"message": "The server is shutting down", "status": 503}),
        )
        .render();
    };
    if ws {
        ws::websocket(req, payload, feed)
    } else {
        ws::http_stream(feed)
    }
}

/// The body as gns3 reads it: empty is `{}`; not JSON is a 400 echoing it as `malformed_json`.
async fn read_body(req: &HttpRequest, payload: web::Payload, template: &'static str) -> Result<Value, Reply> {
    let bytes = match payload.to_bytes_limited(MAX_BODY).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return Err(plain(StatusCode::BAD_REQUEST, "400: Bad Request")),
        Err(_) => return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "413: Request Entity Too Large")),
    };
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let message = format!("Invalid JSON {}", python_json_error(&text, &e));
        bad_request(req, template, message, json!({"malformed_json": text}))
    })
}

/// serde_json's parse error in the words of Python's `json` module (which v2 quotes):
/// Python points at the start of the value it could not read, serde after its first letter.
fn python_json_error(text: &str, e: &serde_json::Error) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let line = e.line().clamp(1, lines.len().max(1));
    let row: Vec<char> = lines.get(line - 1).map(|l| l.chars().collect()).unwrap_or_default();
    let mut column = e.column().clamp(1, row.len().max(1));
    let message = e.to_string();
    let kind = if message.starts_with("trailing characters") {
        "Extra data"
    } else {
        while column > 1 && row.get(column - 2).is_some_and(|c| c.is_ascii_alphabetic()) {
            column -= 1;
        }
        "Expecting value"
    };
    let before: usize = lines.iter().take(line - 1).map(|l| l.chars().count() + 1).sum();
    format!("{kind}: line {line} column {column} (char {})", before + column - 1)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"    "));
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return b"{}".to_vec();
    }
    out
}

/// A reply, rendered (serialized) once the world's lock is released.
enum Reply {
    Json(StatusCode, Value),
    Plain(StatusCode, &'static str),
    Empty,
}

impl Reply {
    fn render(self) -> HttpResponse {
        match self {
            Reply::Json(status, v) => HttpResponse::build(status)
                .content_type("application/json")
                .insert_header((header::SERVER, SERVER_HEADER))
                .body(pretty(&v)),
            Reply::Plain(status, text) => {
                HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(text)
            }
            Reply::Empty => HttpResponse::NoContent().finish(),
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Reply {
    Reply::Plain(status, text)
}

fn ok(v: Value) -> Reply {
    Reply::Json(StatusCode::OK, v)
}

fn error(e: &SimError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Reply::Json(status, json!({"message": e.to_string(), "status": e.status()}))
}

fn bad_request(req: &HttpRequest, template: &str, message: String, request: Value) -> Reply {
    let body = json!({"message": message, "method": req.method().as_str(), "path": template, "request": request, "status": 400});
    Reply::Json(StatusCode::BAD_REQUEST, body)
}

fn reply(r: Result<Value, SimError>) -> Reply {
    r.map_or_else(|e| error(&e), ok)
}

fn created(r: Result<Value, SimError>) -> Reply {
    r.map_or_else(|e| error(&e), |v| Reply::Json(StatusCode::CREATED, v))
}

fn no_content(r: Result<(), SimError>) -> Reply {
    r.map_or_else(|e| error(&e), |()| Reply::Empty)
}

#[cfg(test)]
mod tests {
    use super::python_json_error;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(super::percent_decode("/v2/projects/a%20b%2"), "/v2/projects/a b%2");
        assert_eq!(super::percent_decode("/v2/%ff%zz%+1"), "/v2/\u{fffd}%zz%+1");
    }

    #[test]
    fn json_errors_are_worded_like_python() {
        for (text, want) in [
            ("not json", "Expecting value: line 1 column 1 (char 0)"),
            ("{} x", "Extra data: line 1 column 4 (char 3)"),
            ("{\"a\": nope}", "Expecting value: line 1 column 7 (char 6)"),
            ("\n\n  xx", "Expecting value: line 3 column 3 (char 4)"),
            ("[1,]", "Expecting value: line 1 column 4 (char 3)"),
            ("tru", "Expecting value: line 1 column 1 (char 0)"),
        ] {
            let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
            assert_eq!(python_json_error(text, &e), want, "for {text:?}");
        }
    }
}

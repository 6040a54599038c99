//! `Gns3Client`: one GNS3 controller, spoken to over one keep-alive `awc` client.
//!
//! It detects the API (`/v3/version`, then `/v2/version`) unless the version is fixed,
//! logs in on v3 (`POST /v3/access/users/authenticate`) and logs in once more when GNS3
//! answers 401, uses HTTP basic auth on v2 when a user is configured, and smooths over
//! the v2/v3 differences: every POST carries a JSON `{}` body with the JSON content type
//! (v3 needs both on node start), 204 and empty bodies are never parsed, and error bodies
//! of every shape (`{"message"}`, `{"detail"}`, plain text) become one message.
//!
//! It is single-threaded on purpose (`Rc`, `RefCell`): awc clients are not `Send`, and
//! the connector actor that owns it runs on one arbiter. It does no retrying and no
//! circuit breaking; the connector adds those around it.

use awc::http::{Method, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use uuid::Uuid;

use super::error::Gns3Error;
use super::types::{ApiVersion, Compute, Gns3Version, Link, Node, NodeAction, Project};
use crate::secret::Secret;

/// Largest reply body accepted from GNS3 (a 50-node v2 node list is ~150 KB).
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// Longest GNS3 error text passed on (v3 422 bodies carry whole tracebacks).
const MAX_MESSAGE_CHARS: usize = 2000;

/// What the client needs to know about one server.
#[derive(Debug, Clone)]
pub struct Gns3ClientConfig {
    /// `http://host:port`, no trailing slash, no API prefix.
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    /// `None`: detect.
    pub api_version: Option<ApiVersion>,
    /// Bound on one whole call: connect, send, and read the reply.
    pub timeout: Duration,
}

#[derive(Default)]
struct Session {
    api: Option<ApiVersion>,
    version: Option<Gns3Version>,
    token: Option<Secret>,
    /// Incremented at each login, so concurrent 401s log in once.
    login_generation: u64,
}

struct Inner {
    cfg: Gns3ClientConfig,
    /// `cfg.timeout`, changeable at runtime (`set_timeout`).
    timeout: std::cell::Cell<Duration>,
    http: awc::Client,
    session: RefCell<Session>,
}

/// Cheap to clone; clones share the HTTP connection pool and the login.
#[derive(Clone)]
pub struct Gns3Client {
    inner: Rc<Inner>,
}

impl Gns3Client {
    pub fn new(cfg: Gns3ClientConfig) -> Self {
        let http = awc::Client::builder()
            .timeout(cfg.timeout)
            .no_default_headers()
            .add_default_header(("User-Agent", concat!("gns3-central/", env!("CARGO_PKG_VERSION"))))
            .finish();
        let session = Session { api: cfg.api_version, ..Session::default() };
        let timeout = std::cell::Cell::new(cfg.timeout);
        Self { inner: Rc::new(Inner { cfg, timeout, http, session: RefCell::new(session) }) }
    }

    /// The bound on one call now (the configured one, or the last `set_timeout`).
    pub fn timeout(&self) -> Duration {
        self.inner.timeout.get()
    }

    /// Bounds the calls started from now on.
    pub fn set_timeout(&self, d: Duration) {
        self.inner.timeout.set(d);
    }

    pub fn config(&self) -> &Gns3ClientConfig {
        &self.inner.cfg
    }

    /// The keep-alive HTTP client shared by every call (and the notification streams).
    pub(crate) fn http(&self) -> &awc::Client {
        &self.inner.http
    }

    /// The API in use, once known (fixed in config, or detected).
    pub fn api_version(&self) -> Option<ApiVersion> {
        self.inner.session.borrow().api
    }

    /// The version GNS3 reported at the last `connect`.
    pub fn gns3_version(&self) -> Option<Gns3Version> {
        self.inner.session.borrow().version.clone()
    }

    /// Logins so far (concurrent 401s compare it so that only one logs in again).
    pub(crate) fn login_generation(&self) -> u64 {
        self.inner.session.borrow().login_generation
    }

    /// Whether a v3 token is held.
    pub fn has_token(&self) -> bool {
        self.inner.session.borrow().token.is_some()
    }

    /// Forgets the login and, unless fixed in config, the detected API.
    pub fn forget_session(&self) {
        let mut s = self.inner.session.borrow_mut();
        s.token = None;
        s.version = None;
        s.api = self.inner.cfg.api_version;
    }

    /// Detects the API (unless fixed), reads the version and, on v3, makes sure a valid
    /// token is held (checks the one held with `/access/users/me`, logs in when needed).
    pub async fn connect(&self) -> Result<Gns3Version, Gns3Error> {
        let (api, version) = self.identify().await?;
        if api == ApiVersion::V3 {
            let valid = self.has_token()
                && match self.raw(api, Method::GET, "/access/users/me", None).await? {
                    (status, _) if status.is_success() => true,
                    (StatusCode::UNAUTHORIZED, _) => false,
                    (status, body) => return Err(status_error(status, &body)),
                };
            if !valid {
                self.login().await?;
            }
        }
        Ok(version)
    }

    /// Detects the API unless fixed, reads the version, and remembers both.
    pub(crate) async fn identify(&self) -> Result<(ApiVersion, Gns3Version), Gns3Error> {
        let (api, version) = match self.inner.cfg.api_version {
            Some(api) => (api, self.fetch_version(api).await?),
            None => self.detect().await?,
        };
        let mut s = self.inner.session.borrow_mut();
        s.api = Some(api);
        s.version = Some(version.clone());
        Ok((api, version))
    }

    async fn detect(&self) -> Result<(ApiVersion, Gns3Version), Gns3Error> {
        match self.fetch_version(ApiVersion::V3).await {
            Ok(v) => Ok((ApiVersion::V3, v)),
            Err(Gns3Error::Status { status: 404 | 405, .. }) => {
                Ok((ApiVersion::V2, self.fetch_version(ApiVersion::V2).await?))
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /{v}/version` (no auth needed on either version).
    pub async fn fetch_version(&self, api: ApiVersion) -> Result<Gns3Version, Gns3Error> {
        let url = format!("{}/{}/version", self.inner.cfg.base_url, api.prefix());
        let req = self.inner.http.get(&url);
        let (status, body) = self.exchange(req, None, &url).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        parse(&body, "version")
    }

    /// v3: `POST /v3/access/users/authenticate`; keeps the token.
    pub async fn login(&self) -> Result<(), Gns3Error> {
        let cfg = &self.inner.cfg;
        if cfg.username.is_empty() {
            return Err(Gns3Error::Auth(
                "GNS3 v3 needs a user: set the server's username and password (GNS3_USERNAME, GNS3_PASSWORD)".into(),
            ));
        }
        let url = format!("{}/v3/access/users/authenticate", cfg.base_url);
        let body = json!({"username": cfg.username, "password": cfg.password.expose()});
        let (status, reply) = self.exchange(self.inner.http.post(&url), Some(&body), &url).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            self.inner.session.borrow_mut().token = None;
            return Err(Gns3Error::Auth(format!("user '{}': {}", cfg.username, error_message(status, &reply))));
        }
        if !status.is_success() {
            return Err(status_error(status, &reply));
        }
        let v: Value = parse(&reply, "login")?;
        let token = v["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Gns3Error::Protocol("login reply without access_token".into()))?;
        let mut s = self.inner.session.borrow_mut();
        s.token = Some(Secret::new(token));
        s.login_generation += 1;
        tracing::debug!(url = %cfg.base_url, user = %cfg.username, "Logged in to GNS3.");
        Ok(())
    }

    /// Sends one call to `/{v}{path}`. On v3 a 401 leads to
    /// one new login and one repeat (GNS3 refused it before doing anything, so repeating
    /// is safe even for actions). Returns the body of a 2xx reply (empty for 204).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        relogin: bool,
    ) -> Result<(StatusCode, Bytes), Gns3Error> {
        let api = match self.api_version() {
            Some(api) => api,
            None => self.identify().await?.0,
        };
        let mut tried_login = false;
        loop {
            let generation = self.inner.session.borrow().login_generation;
            if api == ApiVersion::V3 && !self.has_token() {
                self.login().await?;
                tried_login = true;
            }
            let (status, reply) = self.raw(api, method.clone(), path, body).await?;
            if status.is_success() {
                return Ok((status, reply));
            }
            if status == StatusCode::UNAUTHORIZED && api == ApiVersion::V3 && relogin && !tried_login {
                tracing::info!(url = %self.inner.cfg.base_url, "GNS3 refused the token; logging in again.");
                if self.inner.session.borrow().login_generation == generation {
                    self.login().await?;
                }
                tried_login = true;
                continue;
            }
            return Err(status_error(status, &reply));
        }
    }

    /// One authorized exchange with `/{v}{path}`; POST and PUT carry `body` or `{}`.
    async fn raw(
        &self,
        api: ApiVersion,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), Gns3Error> {
        let empty = json!({});
        let body = match (body, method == Method::POST || method == Method::PUT) {
            (Some(b), _) => Some(b),
            (None, true) => Some(&empty),
            (None, false) => None,
        };
        let url = format!("{}/{}{}", self.inner.cfg.base_url, api.prefix(), path);
        let req = self.authorize(self.inner.http.request(method, &url), api);
        self.exchange(req, body, &url).await
    }

    pub(crate) fn authorize(&self, req: awc::ClientRequest, api: ApiVersion) -> awc::ClientRequest {
        let cfg = &self.inner.cfg;
        match api {
            ApiVersion::V3 => match &self.inner.session.borrow().token {
                Some(t) => req.bearer_auth(t.expose()),
                None => req,
            },
            ApiVersion::V2 if !cfg.username.is_empty() => req.basic_auth(&cfg.username, cfg.password.expose()),
            ApiVersion::V2 => req,
        }
    }

    /// One HTTP exchange, bounded by the timeout as a whole (reply body included).
    async fn exchange(
        &self,
        req: awc::ClientRequest,
        body: Option<&Value>,
        url: &str,
    ) -> Result<(StatusCode, Bytes), Gns3Error> {
        let timeout = self.inner.timeout.get();
        // The client's own default is the start-up timeout; each request carries the current one.
        let req = req.timeout(timeout);
        let req = if body.is_some() { req.insert_header(("Content-Type", "application/json")) } else { req };
        let call = async {
            let sent = match body {
                Some(b) => req.send_json(b).await,
                None => req.send().await,
            };
            let mut res = sent.map_err(|e| send_error(url, timeout, e))?;
            let status = res.status();
            let bytes = res.body().limit(MAX_REPLY_BYTES).await.map_err(|e| Gns3Error::Connect {
                url: url.to_owned(),
                reason: format!("io: reply body cut short: {e}"),
            })?;
            Ok((status, bytes))
        };
        match actix_rt::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Gns3Error::Timeout(timeout)),
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, Gns3Error> {
        let (_, body) = self.send(Method::GET, path, None, true).await?;
        parse(&body, what)
    }

    // ------------------------------------------------------------------ typed calls

    /// `GET /computes`. v3 hides the local compute (its list is often empty, and
    /// `/computes/local` answers 500 there), so callers must not expect `local` in it.
    pub async fn computes(&self) -> Result<Vec<Compute>, Gns3Error> {
        self.get_json("/computes", "computes").await
    }

    pub async fn projects(&self) -> Result<Vec<Project>, Gns3Error> {
        self.get_json("/projects", "projects").await
    }

    pub async fn project(&self, project_id: Uuid) -> Result<Project, Gns3Error> {
        self.get_json(&format!("/projects/{project_id}"), "project").await
    }

    /// `POST /projects/{id}/open` (201 with the project, also when already open).
    pub async fn open_project(&self, project_id: Uuid) -> Result<Project, Gns3Error> {
        let (_, body) = self.send(Method::POST, &format!("/projects/{project_id}/open"), None, true).await?;
        parse(&body, "project")
    }

    /// `POST /projects/{id}/close` (204, also when already closed); returns the status.
    pub async fn close_project(&self, project_id: Uuid) -> Result<u16, Gns3Error> {
        let path = format!("/projects/{project_id}/close");
        Ok(self.send(Method::POST, &path, None, true).await?.0.as_u16())
    }

    pub async fn nodes(&self, project_id: Uuid) -> Result<Vec<Node>, Gns3Error> {
        let mut nodes: Vec<Node> = self.get_json(&format!("/projects/{project_id}/nodes"), "nodes").await?;
        for n in nodes.iter_mut().filter(|n| n.project_id.is_nil()) {
            n.project_id = project_id;
        }
        Ok(nodes)
    }

    pub async fn node(&self, project_id: Uuid, node_id: Uuid) -> Result<Node, Gns3Error> {
        let mut node: Node = self.get_json(&format!("/projects/{project_id}/nodes/{node_id}"), "node").await?;
        if node.project_id.is_nil() {
            node.project_id = project_id;
        }
        Ok(node)
    }

    /// Start, stop, suspend or reload one node; returns GNS3's status code. v2 answers
    /// with the node (its status may be stale), v3 with 204: the reply body is not used,
    /// read the node afterwards.
    pub async fn node_action(&self, project_id: Uuid, node_id: Uuid, action: NodeAction) -> Result<u16, Gns3Error> {
        let verb = gns3_verb(action)?;
        let path = format!("/projects/{project_id}/nodes/{node_id}/{verb}");
        Ok(self.send(Method::POST, &path, None, true).await?.0.as_u16())
    }

    /// Bulk start/stop/suspend/reload of every node of a project (204).
    pub async fn bulk_node_action(&self, project_id: Uuid, action: NodeAction) -> Result<u16, Gns3Error> {
        let verb = gns3_verb(action)?;
        let path = format!("/projects/{project_id}/nodes/{verb}");
        Ok(self.send(Method::POST, &path, None, true).await?.0.as_u16())
    }

    pub async fn links(&self, project_id: Uuid) -> Result<Vec<Link>, Gns3Error> {
        let mut links: Vec<Link> = self.get_json(&format!("/projects/{project_id}/links"), "links").await?;
        for l in links.iter_mut().filter(|l| l.project_id.is_nil()) {
            l.project_id = project_id;
        }
        Ok(links)
    }

    /// WebSocket URL of a notification stream (`None`: the controller stream), with
    /// `?token=` on v3, which takes the token only that way.
    pub fn notification_url(&self, project_id: Option<Uuid>) -> Option<String> {
        let api = self.api_version()?;
        let ws_base = self.inner.cfg.base_url.replacen("http", "ws", 1);
        let path = match project_id {
            Some(p) => format!("/projects/{p}/notifications/ws"),
            None => "/notifications/ws".to_owned(),
        };
        let mut url = format!("{ws_base}/{}{path}", api.prefix());
        if let (ApiVersion::V3, Some(t)) = (api, &self.inner.session.borrow().token) {
            url.push_str("?token=");
            url.push_str(t.expose());
        }
        Some(url)
    }
}

fn gns3_verb(action: NodeAction) -> Result<&'static str, Gns3Error> {
    match action {
        NodeAction::Start => Ok("start"),
        NodeAction::Stop => Ok("stop"),
        NodeAction::Suspend => Ok("suspend"),
        NodeAction::Reload => Ok("reload"),
        NodeAction::Restart => {
            Err(Gns3Error::Protocol("GNS3 has no restart; the connector runs stop then start".into()))
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Gns3Error> {
    serde_json::from_slice(body).map_err(|e| {
        let head = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Gns3Error::Protocol(format!("{what}: not the JSON GNS3 documents ({e}): {head}"))
    })
}

/// `connect:` marks errors where the request certainly never left (see
/// `Gns3Error::never_sent`); everything else may have reached GNS3.
pub(crate) fn send_error(url: &str, timeout: Duration, e: awc::error::SendRequestError) -> Gns3Error {
    use awc::error::SendRequestError as E;
    match e {
        E::Timeout => Gns3Error::Timeout(timeout),
        E::Connect(c) => Gns3Error::Connect { url: url.to_owned(), reason: format!("connect: {c}") },
        E::Url(u) => Gns3Error::Connect { url: url.to_owned(), reason: format!("connect: bad URL: {u}") },
        other => Gns3Error::Connect { url: url.to_owned(), reason: format!("io: {other}") },
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> Gns3Error {
    Gns3Error::Status { status: status.as_u16(), message: error_message(status, body) }
}

/// GNS3's own words from an error body: v2 `{"message","status"}`, v3 `{"message"}`,
/// FastAPI `{"detail"}` (string or list), or plain text ("404: Not Found").
pub fn error_message(status: StatusCode, body: &[u8]) -> String {
    let from_json =
        serde_json::from_slice::<Value>(body).ok().and_then(|v| match (v.get("message"), v.get("detail")) {
            (Some(Value::String(m)), _) => Some(m.clone()),
            (_, Some(Value::String(d))) => Some(d.clone()),
            (_, Some(d)) if !d.is_null() => Some(d.to_string()),
            _ => None,
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let text = if text.is_empty() {
        format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"))
    } else {
        text
    };
    if text.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_of_every_shape() {
        let s = StatusCode::NOT_FOUND;
        assert_eq!(
            error_message(s, br#"{"message":"Project ID x doesn't exist","status":404}"#),
            "Project ID x doesn't exist"
        );
        assert_eq!(error_message(s, br#"{"detail":"Not Found"}"#), "Not Found");
        assert!(error_message(StatusCode::UNPROCESSABLE_ENTITY, br#"{"detail":[{"msg":"bad"}]}"#).contains("bad"));
        assert_eq!(error_message(s, b"404: Not Found"), "404: Not Found");
        assert_eq!(error_message(StatusCode::CONFLICT, b""), "409 Conflict");
        let long = format!("{{\"message\":\"{}\"}}", "x".repeat(5000));
        assert!(error_message(s, long.as_bytes()).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn restart_is_not_a_gns3_verb() {
        assert!(gns3_verb(NodeAction::Restart).is_err());
        assert_eq!(gns3_verb(NodeAction::Suspend).unwrap(), "suspend");
    }

    #[test]
    fn notification_urls_carry_the_v3_token_in_the_query() {
        let cfg = Gns3ClientConfig {
            base_url: "http://127.0.0.1:3080".into(),
            username: "admin".into(),
            password: Secret::new("admin"),
            api_version: Some(ApiVersion::V3),
            timeout: Duration::from_secs(1),
        };
        let c = Gns3Client::new(cfg);
        c.inner.session.borrow_mut().token = Some(Secret::new("tok"));
        let p = Uuid::nil();
        assert_eq!(
            c.notification_url(Some(p)).unwrap(),
            format!("ws://127.0.0.1:3080/v3/projects/{p}/notifications/ws?token=tok")
        );
        assert_eq!(c.notification_url(None).unwrap(), "ws://127.0.0.1:3080/v3/notifications/ws?token=tok");
    }
}

//! Access control. `Auth` is built once from the `[auth]` settings: the configured API
//! tokens (kept as SHA-256 hashes, see `token`), the optional JWT verifier (`jwt`) and
//! the WebSocket origin allowlist. The `middleware` authenticates every request except
//! the open ones (health probes, API docs), checks the role its route class needs, and
//! leaves the `Principal` in the request extensions, where handlers that must filter by
//! project read it. `authenticate_ws` (in `ws`) does the same for WebSocket upgrades.

pub mod jwt;
pub mod middleware;
pub mod token;
pub mod ws;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use gns3_central_actors::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::{ready, Ready};
use uuid::Uuid;

use crate::error::{ApiError, Code};

pub use ws::{authenticate_ws, check_origin, credential_of, WsAuth};

/// The `[auth]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub tokens: Vec<TokenSetting>,
    pub metrics_open: bool,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub jwt: JwtSettings,
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSetting {
    pub name: String,
    pub role: String,
    /// `sha256:<hex>` of the token (never the token itself).
    pub hash: String,
    /// Project UUIDs this token is limited to; empty = every project.
    #[serde(default)]
    pub projects: Vec<String>,
}

/// The `[auth.jwt]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// "" (off), HS256, RS256 or ES256.
    pub algorithm: String,
    pub secret: Secret,
    pub public_key_pem: String,
    pub public_key_file: String,
    pub issuer: String,
    pub audience: String,
    pub role_claim: String,
    pub projects_claim: String,
    pub leeway_secs: u64,
}

impl AuthSettings {
    /// Checks roles, hashes, project ids and the JWT key, naming the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let at = format!("auth.tokens[{i}]");
            if t.name.trim().is_empty() {
                return Err(format!("{at}.name: must not be empty"));
            }
            if !names.insert(t.name.as_str()) {
                return Err(format!("{at}.name: '{}' is used by another token", t.name));
            }
            Role::parse(&t.role).map_err(|e| format!("{at}.role: {e}"))?;
            token::parse_hash(&t.hash).map_err(|e| format!("{at}.hash: {e}"))?;
            parse_projects(&t.projects).map_err(|e| format!("{at}.projects: {e}"))?;
        }
        jwt::JwtVerifier::from_settings(&self.jwt).map_err(|e| format!("auth.jwt: {e}"))?;
        Ok(())
    }

    /// Whether anything can authenticate a request.
    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || !self.jwt.algorithm.trim().is_empty()
    }
}

fn parse_projects(raw: &[String]) -> Result<Option<BTreeSet<Uuid>>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.iter()
        .map(|p| Uuid::parse_str(p.trim()).map_err(|_| format!("'{p}' is not a project UUID")))
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Some)
}

/// What a caller may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: status, servers, projects, nodes, links, topology, event history and stats.
    Viewer,
    /// Viewer + node and project actions (every POST that acts on GNS3).
    Operator,
    /// Operator + refresh, reconnect, modules, runtime configuration.
    Admin,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Role, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!("must be viewer, operator or admin, got '{other}'")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling: the token's name (or the JWT's `sub`), its role and its projects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// `None`: every project; `Some`: only these.
    pub projects: Option<BTreeSet<Uuid>>,
}

impl Principal {
    /// 403 `insufficient_role` unless the principal has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Code::InsufficientRole,
            format!("this needs the {} role; the credential '{}' has {}", role.as_str(), self.name, self.role.as_str()),
        )
        .with_details(serde_json::json!({ "required": role, "role": self.role })))
    }

    pub fn is_scoped(&self) -> bool {
        self.projects.is_some()
    }

    pub fn allows_project(&self, project: &Uuid) -> bool {
        self.projects.as_ref().is_none_or(|set| set.contains(project))
    }

    /// 403 `project_out_of_scope` unless the project is in scope.
    pub fn check_project(&self, project: &Uuid) -> Result<(), ApiError> {
        if self.allows_project(project) {
            return Ok(());
        }
        Err(out_of_scope(format!("the credential '{}' is limited to other projects than {project}", self.name)))
    }

    /// 403 for a route that would show every project to a project-scoped credential.
    pub fn require_unscoped(&self, what: &str) -> Result<(), ApiError> {
        if !self.is_scoped() {
            return Ok(());
        }
        Err(out_of_scope(format!(
            "the credential '{}' is limited to some projects and {what} covers all of them; \
             use the per-project routes (/api/v2/servers/{{server}}/projects/{{project_id}}/...)",
            self.name
        )))
    }
}

fn out_of_scope(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, Code::ProjectOutOfScope, message)
}

/// 401 with the reason; the middleware adds `WWW-Authenticate: Bearer`.
pub fn unauthorized(code: crate::error::Code, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// Handlers take `Principal` as an argument; the middleware has put it there.
impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Principal, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or_else(|| unauthorized(Code::MissingToken, "send 'Authorization: Bearer <token>'")),
        )
    }
}

struct TokenEntry {
    name: String,
    role: Role,
    digest: [u8; 32],
    projects: Option<BTreeSet<Uuid>>,
}

/// The credentials the service accepts, built once at start.
pub struct Auth {
    /// Refused credentials, counted (REST gate and WebSocket upgrades).
    pub refused: RefusalCounters,
    tokens: Vec<TokenEntry>,
    jwt: Option<jwt::JwtVerifier>,
    pub metrics_open: bool,
    /// Exact origins allowed for WebSocket upgrades (empty: the service's own host names).
    pub allowed_origins: Vec<String>,
    /// Host part of `http.bind`, an allowed origin host.
    pub bind_host: String,
}

/// Refused requests and upgrades since start, by reason.
#[derive(Debug, Default)]
pub struct RefusalCounters {
    unauthenticated: std::sync::atomic::AtomicU64,
    forbidden: std::sync::atomic::AtomicU64,
    origin: std::sync::atomic::AtomicU64,
}

/// `GET /api/v2/auth/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefusalStats {
    /// 401: no credential, an unknown token, a bad or expired JWT.
    pub unauthenticated: u64,
    /// 403: a role too low or a project out of scope (checked by the gate).
    pub forbidden: u64,
    /// 403 before a WebSocket upgrade: a browser origin not allowed.
    pub origin_not_allowed: u64,
}

impl RefusalCounters {
    /// Counts a refusal by its error (401, `origin_not_allowed`, other 403s).
    pub fn count(&self, e: &ApiError) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = if e.status == StatusCode::UNAUTHORIZED {
            &self.unauthenticated
        } else if e.code == "origin_not_allowed" {
            &self.origin
        } else {
            &self.forbidden
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> RefusalStats {
        use std::sync::atomic::Ordering::Relaxed;
        RefusalStats {
            unauthenticated: self.unauthenticated.load(Relaxed),
            forbidden: self.forbidden.load(Relaxed),
            origin_not_allowed: self.origin.load(Relaxed),
        }
    }
}

impl Auth {
    /// Builds from the settings (validated again, so a bad one is an error, never a panic).
    pub fn from_settings(settings: &AuthSettings, bind_host: &str) -> Result<Auth, String> {
        settings.validate()?;
        let mut tokens = Vec::with_capacity(settings.tokens.len());
        for t in &settings.tokens {
            tokens.push(TokenEntry {
                name: t.name.clone(),
                role: Role::parse(&t.role)?,
                digest: token::parse_hash(&t.hash)?,
                projects: parse_projects(&t.projects)?,
            });
        }
        Ok(Auth {
            refused: RefusalCounters::default(),
            tokens,
            jwt: jwt::JwtVerifier::from_settings(&settings.jwt)?,
            metrics_open: settings.metrics_open,
            allowed_origins: settings.allowed_origins.clone(),
            bind_host: bind_host.to_owned(),
        })
    }

    /// Adds a token known only to this process (the loopback auto-token).
    pub fn add_token(&mut self, name: &str, role: Role, token_value: &str) {
        self.tokens.push(TokenEntry {
            name: name.to_owned(),
            role,
            digest: token::digest(token_value),
            projects: None,
        });
    }

    pub fn has_credentials(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// The principal of a bearer credential: an API token, else a JWT.
    pub fn authenticate_bearer(&self, bearer: &str) -> Result<Principal, ApiError> {
        let d = token::digest(bearer);
        // Every entry is compared (no early exit), so timing says nothing about which matched.
        let mut found = None;
        for t in &self.tokens {
            if token::constant_time_eq(&t.digest, &d) && found.is_none() {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return Ok(Principal { name: t.name.clone(), role: t.role, projects: t.projects.clone() });
        }
        match &self.jwt {
            Some(v) if jwt::looks_like_jwt(bearer) => v.verify(bearer),
            _ => Err(unauthorized(Code::InvalidToken, "the bearer token is not valid")),
        }
    }

    /// The principal of an HTTP request from its `Authorization: Bearer` header.
    pub fn authenticate_header(&self, req: &HttpRequest) -> Result<Principal, ApiError> {
        let bearer = bearer_of(req.headers())?;
        self.authenticate_bearer(bearer)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_of(headers: &actix_web::http::header::HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(actix_web::http::header::AUTHORIZATION) else {
        return Err(unauthorized(Code::MissingToken, "send 'Authorization: Bearer <token>'"));
    };
    let value = value.to_str().map_err(|_| unauthorized(Code::InvalidToken, "the Authorization header is not text"))?;
    let mut parts = value.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let cred = parts.next().unwrap_or("").trim();
    if !scheme.eq_ignore_ascii_case("bearer") || cred.is_empty() {
        return Err(unauthorized(Code::InvalidToken, "the Authorization header must be 'Bearer <token>'"));
    }
    Ok(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tokens: Vec<TokenSetting>) -> AuthSettings {
        let s = crate::config::Settings::load_with(None, &|_| None, vec![]).unwrap();
        AuthSettings { tokens, ..s.auth }
    }

    fn tok(name: &str, role: &str, hash: String, projects: Vec<String>) -> TokenSetting {
        TokenSetting { name: name.into(), role: role.into(), hash, projects }
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!(Role::parse("Operator").unwrap(), Role::Operator);
        assert!(Role::parse("root").unwrap_err().contains("viewer, operator or admin"));
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn validation_names_the_bad_key() {
        let e = settings(vec![tok("a", "boss", token::hash("x"), vec![])]).validate().unwrap_err();
        assert!(e.contains("auth.tokens[0].role"), "{e}");
        let e = settings(vec![tok("a", "viewer", "md5:00".into(), vec![])]).validate().unwrap_err();
        assert!(e.contains("auth.tokens[0].hash"), "{e}");
        let e = settings(vec![tok("a", "viewer", token::hash("x"), vec!["nope".into()])]).validate().unwrap_err();
        assert!(e.contains("auth.tokens[0].projects"), "{e}");
    }

    #[test]
    fn tokens_authenticate_with_their_role_and_projects() {
        let p = Uuid::new_v4();
        let s = settings(vec![
            tok("ops", "operator", token::hash("t-ops"), vec![]),
            tok("lab", "viewer", token::hash("t-lab"), vec![p.to_string()]),
        ]);
        let auth = Auth::from_settings(&s, "127.0.0.1").unwrap();
        let ops = auth.authenticate_bearer("t-ops").unwrap();
        assert_eq!((ops.name.as_str(), ops.role, ops.is_scoped()), ("ops", Role::Operator, false));
        let lab = auth.authenticate_bearer("t-lab").unwrap();
        assert!(lab.allows_project(&p) && !lab.allows_project(&Uuid::new_v4()));
        assert_eq!(lab.require(Role::Operator).unwrap_err().code, "insufficient_role");
        assert_eq!(auth.authenticate_bearer("t-other").unwrap_err().status, StatusCode::UNAUTHORIZED);
    }
}

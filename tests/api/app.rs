//! `spawn_app`: the real service, built with `Application::build` on port 0 inside the
//! test's actix system, talked to over HTTP as any client would. `test_settings`
//! configures a known admin token (`ADMIN_TOKEN`) that `TestApp.client` sends on every
//! request; `get_as` / `post_json_as` send another token or none.

use gns3_central::auth::TokenSetting;
use gns3_central::config::Settings;
use gns3_central::startup::{Application, ServeOptions};
use gns3_central_actors::connector::{ApiVersionSetting, ConnectorConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The admin token every test app accepts; the default client sends it.
pub const ADMIN_TOKEN: &str = "g3c_test-admin-token-0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub base: String,
    /// Sends `Authorization: Bearer ADMIN_TOKEN`.
    pub client: awc::Client,
    /// Sends no credential.
    pub anon: awc::Client,
    handle: actix_web::dev::ServerHandle,
    /// The service's state (the dispatcher, for tests that publish events directly).
    pub state: actix_web::web::Data<gns3_central::state::AppState>,
    /// Stops the service as a signal does (WebSocket sessions first).
    pub shutdown: gns3_central::startup::ShutdownHandle,
}

/// Where a test points the service.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub api: ApiVersionSetting,
    pub username: String,
    pub password: String,
}

impl Target {
    /// A loopback port on which nothing listens: GNS3 is down.
    pub fn nowhere() -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: crate::helpers::free_port(),
            api: ApiVersionSetting::Auto,
            username: String::new(),
            password: String::new(),
        }
    }

    /// The GNS3 v2 stand-in (`gns3_central::simulate`) listening on loopback `port`.
    pub fn stand_in(port: u16) -> Target {
        Target { port, api: ApiVersionSetting::V2, ..Target::nowhere() }
    }
}

/// Settings for tests: defaults, one server named `default` at `target`, short timeouts
/// so failure paths are quick, and `tweak` for what a test needs beyond that.
pub fn test_settings(target: &Target, tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::load_with(None, &|_| None, vec![]).expect("defaults load");
    settings.http.bind = "127.0.0.1:0".into();
    settings.http.workers = 2;
    let mut server = ConnectorConfig {
        name: "default".into(),
        host: target.host.clone(),
        port: target.port,
        api_version: target.api,
        username: target.username.clone(),
        password: gns3_central_actors::secret::Secret::new(target.password.clone()),
        timeout: 5.0,
        ..ConnectorConfig::default()
    };
    server.reconnect.initial_backoff_ms = 100;
    server.reconnect.max_backoff_ms = 1000;
    server.reconnect.health_interval_secs = 1.0;
    settings.gns3.servers = BTreeMap::from([("default".to_owned(), server)]);
    settings.auth.tokens = vec![token_setting("test-admin", "admin", ADMIN_TOKEN, &[])];
    tweak(&mut settings);
    settings.validate().expect("test settings are valid");
    settings
}

/// An `[[auth.tokens]]` entry for `token`.
pub fn token_setting(name: &str, role: &str, token: &str, projects: &[String]) -> TokenSetting {
    TokenSetting {
        name: name.into(),
        role: role.into(),
        hash: gns3_central::auth::token::hash(token),
        projects: projects.to_vec(),
    }
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    spawn_with(settings, ServeOptions::default()).await
}

pub async fn spawn_with(settings: Settings, opts: ServeOptions) -> TestApp {
    // TEST_LOG=debug (or any level) shows the service's logs on stderr, for diagnosis.
    if let Ok(level) = std::env::var("TEST_LOG") {
        gns3_central::observe::logs::init(&level, false);
    }
    let app = Application::build(settings, opts).await.expect("the service starts");
    let port = app.port();
    let handle = app.handle();
    let state = app.state();
    let shutdown = app.shutdown_handle();
    actix_rt::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: awc::Client::builder().timeout(Duration::from_secs(60)).bearer_auth(ADMIN_TOKEN).finish(),
        anon: awc::Client::builder().timeout(Duration::from_secs(60)).finish(),
        handle,
        state,
        shutdown,
    }
}

/// A reply: status, headers we look at, and the body as JSON (Null when not JSON).
pub struct Reply {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        let res = self.client.get(self.url(path)).send().await;
        read(res).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let res = self.client.post(self.url(path)).send_json(body).await;
        read(res).await
    }

    /// GET with `token` as the bearer (or no credential).
    pub async fn get_as(&self, token: Option<&str>, path: &str) -> Reply {
        let mut req = self.anon.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send().await).await
    }

    /// POST JSON with `token` as the bearer (or no credential).
    pub async fn post_json_as(&self, token: Option<&str>, path: &str, body: &Value) -> Reply {
        let mut req = self.anon.post(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        read(req.send_json(body).await).await
    }

    /// POST with an arbitrary body and content type (for bad-input tests).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Reply {
        let res = self.client.post(self.url(path)).insert_header(("Content-Type", content_type)).send_body(body).await;
        read(res).await
    }

    /// Polls `/api/v2/servers/default` until `pred` holds, or panics after `limit`.
    pub async fn wait_server(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.get("/api/v2/servers/default").await;
            if r.status == 200 && pred(&r.body) {
                return r.body;
            }
            assert!(Instant::now() < deadline, "server state not reached in {limit:?}: {}", r.text);
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// The reply of any request sent with awc.
pub async fn read<S>(res: Result<awc::ClientResponse<S>, awc::error::SendRequestError>) -> Reply
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, actix_http::error::PayloadError>> + Unpin,
{
    let mut res = res.expect("the service answers");
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let www_authenticate = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = res.body().limit(64 * 1024 * 1024).await.expect("body is read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, www_authenticate, retry_after, content_type, body, text }
}

/// Asserts the JSON error body and returns its code.
pub fn error_code(r: &Reply) -> String {
    assert!(r.content_type.starts_with("application/json"), "not JSON: {} {}", r.status, r.text);
    let code = r.body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code: {}", r.text));
    assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    code.to_owned()
}

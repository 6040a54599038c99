//! Access control against the running service (test mode: the in-process GNS3 stand-in
//! with two projects): 401 without or with a bad credential, roles per route class,
//! project-scoped tokens, JWT, and the binary's `token create`, loopback auto-token and
//! refusal to serve a non-loopback address without credentials.

use gns3_central::startup::ServeOptions;
use gns3_central_actors::secret::Secret;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gns3_central::simulate::{Simulator, SimulatorOptions};

use crate::app::{error_code, spawn_app, spawn_with, test_settings, token_setting, Target, TestApp, ADMIN_TOKEN};

const VIEWER: &str = "g3c_viewer-token-for-tests-000000000000000000000000";
const OPERATOR: &str = "g3c_operator-token-for-tests-0000000000000000000000";
const SCOPED: &str = "g3c_scoped-token-for-tests-00000000000000000000000000";
const JWT_SECRET: &str = "jwt-secret-for-tests-0123456789abcdef";

/// The service in test mode with a viewer and an operator token and HS256 JWTs.
async fn spawn(tweak: impl FnOnce(&mut gns3_central::config::Settings)) -> TestApp {
    let settings = test_settings(&Target::nowhere(), |s| {
        s.auth.tokens.push(token_setting("viewer", "viewer", VIEWER, &[]));
        s.auth.tokens.push(token_setting("operator", "operator", OPERATOR, &[]));
        s.auth.jwt.algorithm = "HS256".into();
        s.auth.jwt.secret = Secret::new(JWT_SECRET);
        tweak(s);
    });
    let app = spawn_with(settings, ServeOptions { test_mode: true, ..Default::default() }).await;
    app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    app
}

/// The stand-in's projects and the first node of the first one.
async fn ids(app: &TestApp) -> (Vec<String>, String) {
    let r = app.get("/api/v2/servers/default/projects").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let projects: Vec<String> =
        r.body.as_array().unwrap().iter().map(|p| p["project_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(projects.len(), 2, "{}", r.text);
    let r = app.get(&format!("/api/v2/servers/default/projects/{}/nodes", projects[0])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let node = r.body[0]["node_id"].as_str().unwrap().to_owned();
    (projects, node)
}

fn jwt(claims: Value, secret: &str) -> String {
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[actix_rt::test]
async fn requests_without_or_with_a_bad_token_get_401_and_probes_stay_open() {
    let app = spawn(|_| {}).await;
    for token in [None, Some("g3c_not-a-configured-token")] {
        let r = app.get_as(token, "/api/v2/servers").await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"));
        let code = error_code(&r);
        assert!(code == "missing_token" || code == "invalid_token", "{code}");
    }
    let r = app.post_json_as(None, "/api/v2/topology/refresh", &json!({})).await;
    assert_eq!(r.status, 401);
    assert_eq!(app.get_as(None, "/healthz").await.status, 200);
    assert_ne!(app.get_as(None, "/readyz").await.status, 401);
    assert_eq!(app.get_as(None, "/api/schema/").await.status, 200);
    // The admin token of the test client works.
    assert_eq!(app.get_as(Some(ADMIN_TOKEN), "/api/v2/servers").await.status, 200);
    // Refusals are counted (three 401s above, one 403 now); only an admin reads the counts.
    assert_eq!(app.get_as(Some(VIEWER), "/api/v2/auth/stats").await.status, 403);
    let r = app.get_as(Some(ADMIN_TOKEN), "/api/v2/auth/stats").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"unauthenticated": 3, "forbidden": 1, "origin_not_allowed": 0}));
    app.stop().await;
}

#[actix_rt::test]
async fn viewer_reads_operator_acts_and_only_admin_reconnects() {
    let app = spawn(|_| {}).await;
    let (projects, node) = ids(&app).await;
    let action = format!("/api/v2/servers/default/projects/{}/nodes/{node}/actions/start", projects[0]);

    let r = app.get_as(Some(VIEWER), &format!("/api/v2/servers/default/projects/{}/topology", projects[0])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get_as(Some(VIEWER), "/api/v2/events/stats").await.status, 200);
    let r = app.post_json_as(Some(VIEWER), &action, &json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(error_code(&r), "insufficient_role");
    let legacy = json!({"project_id": projects[0], "node_id": node});
    let r = app.post_json_as(Some(VIEWER), "/api/common/api/gns3-central/start_node/", &legacy).await;
    assert_eq!(r.status, 403, "{}", r.text);

    let r = app.post_json_as(Some(OPERATOR), &action, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post_json_as(Some(OPERATOR), "/api/common/api/gns3-central/stop_node/", &legacy).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for path in ["/api/v2/servers/default/reconnect", "/api/v2/topology/refresh"] {
        let r = app.post_json_as(Some(OPERATOR), path, &json!({})).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(error_code(&r), "insufficient_role");
    }
    // A percent-encoded letter reaches the same route (the admin's call is accepted) and
    // is classified as that route (the operator's is not).
    let r = app.post_json_as(Some(OPERATOR), "/api/v2/servers/default/reconnec%74", &json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app.post_json_as(Some(ADMIN_TOKEN), "/api/v2/servers/default/reconnec%74", &json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = app.post_json_as(Some(ADMIN_TOKEN), "/api/v2/servers/default/reconnect", &json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    app.stop().await;
}

/// A GNS3 stand-in of our own (its project ids are needed before the service starts, to
/// scope a token) and the service pointed at it with a token scoped to its first project.
async fn spawn_scoped() -> (Simulator, TestApp, String, String) {
    let sim = Simulator::start(SimulatorOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        projects: 2,
        nodes: 3,
        links: true,
        activity: 2.0,
        seed: None,
    })
    .await
    .expect("the stand-in starts");
    let mut res = awc::Client::new().get(format!("{}/v2/projects", sim.url())).send().await.unwrap();
    let projects: Value = res.json().await.unwrap();
    let ids: Vec<String> =
        projects.as_array().unwrap().iter().map(|p| p["project_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2, "{projects}");
    let target = Target::stand_in(sim.port());
    let scope = vec![ids[0].clone()];
    let app = spawn_app(test_settings(&target, |s| {
        s.auth.tokens.push(token_setting("lab1", "operator", SCOPED, &scope));
        s.auth.jwt.algorithm = "HS256".into();
        s.auth.jwt.secret = Secret::new(JWT_SECRET);
    }))
    .await;
    app.wait_server(Duration::from_secs(10), |s| s["connected"] == true).await;
    (sim, app, ids[0].clone(), ids[1].clone())
}

#[actix_rt::test]
async fn a_project_scoped_token_sees_and_acts_on_its_project_only() {
    let (sim, app, mine, other) = spawn_scoped().await;
    let claims = json!({"sub": "lab1", "role": "operator", "projects": [mine], "exp": now() + 300});
    let scoped_jwt = jwt(claims, JWT_SECRET);
    for scoped in [SCOPED.to_owned(), scoped_jwt] {
        let scoped = scoped.as_str();
        let r = app.get_as(Some(scoped), "/api/v2/servers/default/projects").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let listed: Vec<&str> = r.body.as_array().unwrap().iter().filter_map(|p| p["project_id"].as_str()).collect();
        assert_eq!(listed, vec![mine.as_str()]);
        let r = app.get_as(Some(scoped), &format!("/api/v2/servers/default/projects/{mine}/topology")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let node = r.body["projects"][0]["nodes"][0]["node_id"].as_str().map(str::to_owned);
        let node = node.unwrap_or_else(|| panic!("no node in {}", r.text));
        for path in [
            format!("/api/v2/servers/default/projects/{other}/topology"),
            format!("/api/v2/servers/default/projects/{other}/nodes"),
            "/api/v2/events/stats".to_owned(),
            format!("/api/common/api/gns3-central/topology/?project_id={other}"),
            format!("/api/v2/events?projects={other}"),
        ] {
            let r = app.get_as(Some(scoped), &path).await;
            assert_eq!(r.status, 403, "{path}: {}", r.text);
            assert_eq!(error_code(&r), "project_out_of_scope", "{path}");
        }
        // The status bodies leave out the event statistics (they cover every project).
        for path in ["/api/v2/status", "/api/common/api/gns3-central/status/", "/api/gns3/status/"] {
            let r = app.get_as(Some(scoped), path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(r.body["events"]["details"].is_null(), "{path}: {}", r.text);
        }
        let r = app.get("/api/v2/status").await;
        assert!(r.body["events"]["details"]["last_seq"].is_u64(), "an unscoped credential gets them: {}", r.text);
        // Whole-server topologies hold its project only.
        for path in ["/api/v2/topology", "/api/v2/servers/default/topology", "/api/gns3/topology/"] {
            let r = app.get_as(Some(scoped), path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            let projects =
                if r.body["servers"].is_array() { &r.body["servers"][0]["projects"] } else { &r.body["projects"] };
            let ids: Vec<&str> =
                projects.as_array().unwrap().iter().filter_map(|p| p["project"]["project_id"].as_str()).collect();
            assert_eq!(ids, vec![mine.as_str()], "{path}: {}", r.text);
        }
        let r = app
            .post_json_as(Some(scoped), "/api/common/api/gns3-central/start_project/", &json!({"project_id": other}))
            .await;
        assert_eq!((r.status, error_code(&r).as_str()), (403, "project_out_of_scope"), "{}", r.text);
        let r = app
            .post_json_as(
                Some(scoped),
                &format!("/api/v2/servers/default/projects/{mine}/nodes/{node}/actions/start"),
                &json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // History: the stand-in changes both projects; the scoped token gets only its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen_other = loop {
        let all = app.get("/api/v2/events?limit=1000").await;
        let n = all.body["events"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["project_id"].as_str() == Some(other.as_str())).count());
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no event of the other project yet: {}", all.text);
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(seen_other > 0);
    let r = app.get_as(Some(SCOPED), "/api/v2/events?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    for e in r.body["events"].as_array().unwrap() {
        if let Some(p) = e["project_id"].as_str() {
            assert_eq!(p, mine, "an event of another project leaked: {e}");
        }
    }
    app.stop().await;
    sim.stop().await;
}

#[actix_rt::test]
async fn jwt_needs_a_valid_signature_an_unexpired_exp_and_a_role() {
    let app = spawn(|_| {}).await;
    let good = jwt(json!({"sub": "ci", "role": "viewer", "exp": now() + 300}), JWT_SECRET);
    assert_eq!(app.get_as(Some(&good), "/api/v2/servers").await.status, 200);
    let r = app.post_json_as(Some(&good), "/api/v2/topology/refresh", &json!({})).await;
    assert_eq!(error_code(&r), "insufficient_role");
    let admin = jwt(json!({"sub": "ci", "role": "admin", "exp": now() + 300}), JWT_SECRET);
    let r = app.post_json_as(Some(&admin), "/api/v2/topology/refresh", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let expired = jwt(json!({"role": "admin", "exp": now() - 600}), JWT_SECRET);
    let r = app.get_as(Some(&expired), "/api/v2/servers").await;
    assert_eq!((r.status, error_code(&r).as_str()), (401, "token_expired"));
    let forged = jwt(json!({"role": "admin", "exp": now() + 300}), "not-the-secret-not-the-secret-xxxx");
    let r = app.get_as(Some(&forged), "/api/v2/servers").await;
    assert_eq!((r.status, error_code(&r).as_str()), (401, "invalid_token"));
    let no_exp = jwt(json!({"role": "admin"}), JWT_SECRET);
    assert_eq!(app.get_as(Some(&no_exp), "/api/v2/servers").await.status, 401);
    let no_role = jwt(json!({"exp": now() + 300}), JWT_SECRET);
    assert_eq!(app.get_as(Some(&no_role), "/api/v2/servers").await.status, 401);
    app.stop().await;
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GNS3_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    c
}

/// The lines a child process wrote on stderr, read on a thread so the pipe never fills.
type Lines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Starts `serve --test-mode` on a free loopback port and waits for its "listening" line.
fn serve(extra: &[&str], config: Option<&std::path::Path>) -> (std::process::Child, String, Lines) {
    let port = crate::helpers::free_port();
    let mut cmd = bin();
    cmd.args(["serve", "--test-mode", "--bind", &format!("127.0.0.1:{port}")]).args(extra);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines: Lines = Default::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if lines.lock().unwrap().iter().any(|l| l.contains("listening on")) {
            break;
        }
        assert!(Instant::now() < deadline, "did not start: {:?}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"), lines)
}

async fn status_with(base: &str, token: &str) -> u16 {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).bearer_auth(token).finish();
    client.get(format!("{base}/api/v2/servers")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[actix_rt::test]
async fn a_created_token_works_once_put_in_the_configuration() {
    let o = bin().args(["token", "create", "--name", "ci", "--role", "viewer"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let token = out.lines().find(|l| l.starts_with("g3c_")).expect("the token is printed").to_owned();
    let toml_start = out.find("[[auth.tokens]]").expect("TOML lines are printed");
    assert!(!out[toml_start..].contains(&token), "the TOML must hold the hash, not the token");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "{}", &out[toml_start..]).unwrap();

    let (mut child, base, _) = serve(&[], Some(f.path()));
    assert_eq!(status_with(&base, &token).await, 200);
    assert_eq!(status_with(&base, "g3c_wrong").await, 401);
    let r = awc::Client::new().post(format!("{base}/api/v2/topology/refresh")).bearer_auth(&token).send().await;
    assert_eq!(r.map(|r| r.status().as_u16()).unwrap_or(0), 403);
    child.kill().ok();
    child.wait().ok();

    let o = bin().args(["token", "create", "--name", "x", "--role", "root"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("viewer, operator or admin"));
}

#[actix_rt::test]
async fn loopback_without_tokens_prints_an_admin_token_on_stdout_only() {
    let (mut child, base, stderr) = serve(&["--debug"], None);
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut out = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let found = line.starts_with("export TOKEN=g3c_");
        out.push(line);
        if found {
            break;
        }
    }
    // A line a shell can eval, after a comment line.
    let token =
        out.iter().find_map(|l| l.strip_prefix("export TOKEN=")).expect("`export TOKEN=…` on stdout").trim().to_owned();
    assert!(token.starts_with("g3c_"), "{out:?}");
    assert!(out.iter().take_while(|l| !l.starts_with("export")).all(|l| l.starts_with('#')), "{out:?}");
    assert_eq!(status_with(&base, &token).await, 200);
    assert_eq!(status_with(&base, "g3c_other").await, 401);
    child.kill().ok();
    child.wait().ok();
    // Everything the service logged (stderr, at debug level): never the token.
    let logs = stderr.lock().unwrap().join("\n");
    assert!(logs.contains("admin token for this run"), "{logs}");
    assert!(!logs.contains(&token), "the token leaked into the logs");
}

#[test]
fn a_non_loopback_bind_without_tokens_refuses_to_start() {
    let o = bin().args(["serve", "--test-mode", "--bind", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("token create") && err.contains("loopback"), "{err}");
}

#[test]
fn check_config_explains_bad_auth_settings() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "[[auth.tokens]]\nname = \"a\"\nrole = \"boss\"\nhash = \"sha256:00\"").unwrap();
    let o = bin().args(["check-config", "--config"]).arg(f.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("auth.tokens[0].role"));
    let o = bin()
        .args(["check-config"])
        .env("GNS3_CENTRAL__AUTH__JWT__ALGORITHM", "RS256")
        .env("GNS3_CENTRAL__AUTH__JWT__PUBLIC_KEY_PEM", "not a pem")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("PEM"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[actix_rt::test]
async fn the_schema_documents_the_bearer_scheme_and_open_probes() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let r = app.get_as(None, "/api/schema/").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = &r.body;
    assert_eq!(s["components"]["securitySchemes"]["bearer"]["scheme"], "bearer", "{}", s["components"]);
    assert_eq!(s["security"][0]["bearer"], json!([]));
    assert_eq!(s["paths"]["/healthz"]["get"]["security"], json!([{}]));
    assert!(s["paths"]["/api/v2/servers"]["get"].get("security").is_none());
    app.stop().await;
}

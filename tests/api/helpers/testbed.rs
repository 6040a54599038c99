//! Real gns3-server v2 and v3 for the tests, run by `scripts/gns3-testbed`.
//!
//! `gns3(flavor)` is one instance per flavor shared by every test of the binary: tests run
//! on parallel threads, each with its own actix system, so the instance lives behind a std
//! `Mutex` (not an actix actor) and the first test to ask starts it. `dedicated(flavor,
//! name)` is an instance of its own for a test that kills, stops or resets GNS3.
//!
//! Instance names carry a run tag (`GNS3_TEST_RUN`, set by `scripts/test`, else `p<pid>`),
//! so that concurrent runs on one machine never share or stop each other's servers, and
//! every start passes this process as `GNS3_TESTBED_OWNER_PID`: the script stops the
//! instances when the test binary exits, however it ends (statics are never dropped).
//!
//! The script is run with `std::process::Command` on a blocking thread; the direct-to-GNS3
//! calls that set up scenarios use `awc` inside the test's actix system. A missing install
//! fails the test with the command to run; it never skips.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use awc::http::Method;
use gns3_central_actors::connector::ApiVersionSetting;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::Target;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gns3-testbed");
const INSTALL_HINT: &str = "run `scripts/gns3-testbed install` (as root) first, or just `scripts/test`";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    V2,
    V3,
}

impl Flavor {
    /// "v2" / "v3": the script's argument, the API path prefix, and the service's `api_version`.
    pub fn api(self) -> &'static str {
        match self {
            Flavor::V2 => "v2",
            Flavor::V3 => "v3",
        }
    }

    /// What the server's version starts with.
    pub fn version_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "2.2",
            Flavor::V3 => "3.0",
        }
    }
}

/// A running gns3-server, as printed by `scripts/gns3-testbed start`.
#[derive(Clone, Debug)]
pub struct Gns3Env {
    pub flavor: Flavor,
    /// e.g. "2.2.61"
    pub version: String,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `http://127.0.0.1:PORT/v2` (or `/v3`)
    pub api: String,
    pub port: u16,
    pub pid: u32,
    pub log: PathBuf,
    /// v3 admin user and password; empty for v2.
    pub user: String,
    pub password: String,
    /// v3 bearer token; empty for v2.
    pub token: String,
}

/// A project created straight on GNS3 for a scenario.
pub struct TestProject {
    pub id: Uuid,
    pub name: String,
    env: Gns3Env,
}

impl TestProject {
    pub async fn delete(&self) {
        let (status, body) = self.env.call(Method::DELETE, &format!("/projects/{}", self.id), None).await;
        assert_eq!(status, 204, "{:?}: deleting project {}: {body}", self.env.flavor, self.name);
    }
}

impl Gns3Env {
    /// Points the service at this server: login with the admin for v3, none for v2.
    pub fn target(&self) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: self.port,
            api: ApiVersionSetting::Auto,
            username: self.user.clone(),
            password: self.password.clone(),
        }
    }

    /// One call straight to GNS3 (`{api}{path}`) with this env's token; the status and the
    /// body as JSON (Null when empty or not JSON). Panics only when GNS3 does not answer.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_with_token(method, path, body, &self.token).await
    }

    async fn call_with_token(&self, method: Method, path: &str, body: Option<&Value>, token: &str) -> (u16, Value) {
        let url = format!("{}{}", self.api, path);
        let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
        let mut req = client.request(method.clone(), &url);
        if !token.is_empty() {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let sent = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        let mut res = sent.unwrap_or_else(|e| panic!("{:?}: {method} {url}: no answer from GNS3: {e}", self.flavor));
        let bytes = res
            .body()
            .limit(64 << 20)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {method} {url}: reading the body: {e}", self.flavor));
        (res.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Creates a project with a unique name (`<name>-<uuid>`): parallel tests never clash.
    pub async fn create_project(&self, name: &str) -> TestProject {
        let name = format!("{name}-{}", Uuid::new_v4().simple());
        let (status, body) = self.call(Method::POST, "/projects", Some(&json!({ "name": name }))).await;
        assert_eq!(status, 201, "{:?}: creating project {name}: {body}", self.flavor);
        TestProject { id: uuid_field(&body, "project_id"), name, env: self.clone() }
    }

    /// A qemu node that needs no disk image (the one node type usable without ubridge).
    pub async fn create_qemu_node(&self, project: Uuid, name: &str) -> Uuid {
        let node = json!({
            "name": name,
            "node_type": "qemu",
            "compute_id": "local",
            "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 64, "adapters": 1},
        });
        let (status, body) = self.call(Method::POST, &format!("/projects/{project}/nodes"), Some(&node)).await;
        assert_eq!(status, 201, "{:?}: creating qemu node {name}: {body}", self.flavor);
        uuid_field(&body, "node_id")
    }

    /// A link between adapter 0 port 0 of `a` and of `b`.
    pub async fn create_link(&self, project: Uuid, a: Uuid, b: Uuid) -> Uuid {
        let link = json!({"nodes": [
            {"node_id": a, "adapter_number": 0, "port_number": 0},
            {"node_id": b, "adapter_number": 0, "port_number": 0},
        ]});
        let (status, body) = self.call(Method::POST, &format!("/projects/{project}/links"), Some(&link)).await;
        assert_eq!(status, 201, "{:?}: creating link {a} - {b}: {body}", self.flavor);
        uuid_field(&body, "link_id")
    }

    /// The node's status as GNS3 itself reports it ("stopped", "started", "suspended").
    pub async fn node_status(&self, project: Uuid, node: Uuid) -> String {
        let (status, body) = self.call(Method::GET, &format!("/projects/{project}/nodes/{node}"), None).await;
        assert_eq!(status, 200, "{:?}: reading node {node}: {body}", self.flavor);
        body["status"].as_str().unwrap_or_else(|| panic!("node without status: {body}")).to_owned()
    }

    /// The status code of `GET {api}{path}` with this bearer token (e.g. an old one).
    pub async fn status_with_token(&self, path: &str, token: &str) -> u16 {
        self.call_with_token(Method::GET, path, None, token).await.0
    }
}

fn uuid_field(body: &Value, field: &str) -> Uuid {
    body[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no UUID `{field}` in GNS3's answer: {body}"))
}

// ------------------------------------------------------------------ shared instances

/// The server of `flavor` shared by every test of this run, started by the first test that
/// asks (with fresh state), restarted if it died.
pub async fn gns3(flavor: Flavor) -> Gns3Env {
    static SHARED: OnceLock<Mutex<HashMap<Flavor, Gns3Env>>> = OnceLock::new();
    let result = actix_rt::task::spawn_blocking(move || {
        // A panicking test never holds this lock while panicking: only this closure takes it.
        let mut shared = SHARED.get_or_init(Default::default).lock().expect("test-bed registry lock");
        match shared.get(&flavor) {
            Some(env) if process_alive(env.pid) => Ok(env.clone()),
            previous => {
                let fresh = previous.is_none();
                let env = run_start(flavor, &instance_name("tests"), None, fresh)?;
                shared.insert(flavor, env.clone());
                Ok::<_, String>(env)
            }
        }
    })
    .await
    .expect("the test-bed thread did not panic");
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// A server of its own, with fresh state, for a test that kills, stops or resets it.
/// `name` is unique per test; it is stopped when dropped.
pub async fn dedicated(flavor: Flavor, name: &str) -> Gns3Instance {
    let instance = unique(flavor, &instance_name(name));
    let env = blocking({
        let instance = instance.clone();
        move || {
            // A same-named instance left running by an earlier run (its owner gone, its
            // stop still under way) would be reused by `start`: stop it first, so the
            // fresh start really is fresh. A no-op when nothing runs.
            run_script(&instance, &["stop", flavor.api()], &[])
                .unwrap_or_else(|e| panic!("stopping a leftover {instance}: {e}"));
            run_start(flavor, &instance, None, true)
        }
    })
    .await;
    Gns3Instance { flavor, instance, env }
}

/// A dedicated server: `kill`, `stop`, `reset`, `start` act on it and return when done.
pub struct Gns3Instance {
    flavor: Flavor,
    instance: String,
    env: Gns3Env,
}

impl Gns3Instance {
    /// The env of the last start (URL, port, token...).
    pub fn env(&self) -> Gns3Env {
        self.env.clone()
    }

    /// SIGKILL, as a crash: the state is kept, node processes are ended.
    pub async fn kill(&mut self) {
        self.command("kill").await;
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        self.command("stop").await;
    }

    /// Deletes the state (projects, the v3 user db and JWT secret); must be stopped.
    pub async fn reset(&mut self) {
        self.command("reset").await;
    }

    /// Starts it again on the same port; returns once GNS3 answers, with a new env (token).
    pub async fn start(&mut self) {
        let (flavor, instance, port) = (self.flavor, self.instance.clone(), self.env.port);
        self.env = blocking(move || run_start(flavor, &instance, Some(port), false)).await;
        assert_eq!(self.env.port, port, "restarted on another port");
    }

    async fn command(&mut self, cmd: &'static str) {
        let (flavor, instance) = (self.flavor, self.instance.clone());
        blocking(move || run_script(&instance, &[cmd, flavor.api()], &[]).map(drop)).await;
    }
}

impl Drop for Gns3Instance {
    /// Best effort, never blocking the test: the stop runs on after this returns (and the
    /// script's owner watch stops it anyway when the test binary exits).
    fn drop(&mut self) {
        let child = script(&self.instance)
            .args(["stop", self.flavor.api()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            std::thread::spawn(move || child.wait());
        }
    }
}

// ------------------------------------------------------------------ running the script

/// Runs `f` on a blocking thread and panics with its error message.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, String> + Send + 'static) -> T {
    let result = actix_rt::task::spawn_blocking(f).await.expect("the test-bed thread did not panic");
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// `<run tag>-<name>`: the run tag keeps concurrent test runs apart.
fn instance_name(name: &str) -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| match std::env::var("GNS3_TEST_RUN") {
        Ok(t)
            if !t.is_empty()
                && t.len() <= 32
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            t
        }
        _ => format!("p{}", std::process::id()),
    });
    format!("{tag}-{name}")
}

/// Appends `-2`, `-3`... when a name was already handed out for this flavor in this run.
fn unique(flavor: Flavor, name: &str) -> String {
    static USED: OnceLock<Mutex<HashMap<(Flavor, String), u32>>> = OnceLock::new();
    let mut used = USED.get_or_init(Default::default).lock().expect("instance names lock");
    let n = used.entry((flavor, name.to_owned())).or_insert(0);
    *n += 1;
    if *n == 1 {
        name.to_owned()
    } else {
        format!("{name}-{n}")
    }
}

fn script(instance: &str) -> Command {
    let mut c = Command::new(SCRIPT);
    c.env("GNS3_TESTBED_INSTANCE", instance)
        .env("GNS3_TESTBED_OWNER_PID", std::process::id().to_string())
        // the tests are written for the real behaviour (no ubridge: node start answers 409),
        // and a restart must keep the state: a caller's shell must not change that
        .env_remove("GNS3_TESTBED_FRESH")
        .env_remove("GNS3_TESTBED_FAKE_UBRIDGE");
    c
}

/// Runs the script; its stdout, or an error naming the command and what it printed.
fn run_script(instance: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = script(instance);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let what = format!("GNS3_TESTBED_INSTANCE={instance} scripts/gns3-testbed {}", args.join(" "));
    let out = cmd.output().map_err(|e| format!("{what}: could not run {SCRIPT}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let hint = if stderr.contains("not installed") || stderr.contains("missing") {
            format!("\nThe GNS3 test-bed is not installed: {INSTALL_HINT}.")
        } else {
            String::new()
        };
        return Err(format!("{what} failed ({}):\n{}{hint}", out.status, stderr.trim_end()));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{what}: output is not UTF-8: {e}"))
}

fn run_start(flavor: Flavor, instance: &str, port: Option<u16>, fresh: bool) -> Result<Gns3Env, String> {
    let port = port.map(|p| p.to_string());
    let mut args = vec!["start", flavor.api()];
    args.extend(port.as_deref());
    let env: &[(&str, &str)] = if fresh { &[("GNS3_TESTBED_FRESH", "1")] } else { &[] };
    let out = run_script(instance, &args, env)?;
    parse_env(flavor, &out).map_err(|e| format!("scripts/gns3-testbed start {} printed {e}:\n{out}", flavor.api()))
}

/// The `KEY=VALUE` lines of `start` / `env`.
fn parse_env(flavor: Flavor, out: &str) -> Result<Gns3Env, String> {
    let vars: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| vars.get(k).map(|v| v.to_string()).ok_or_else(|| format!("no {k}"));
    let opt = |k: &str| vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    let url = get("GNS3_URL")?;
    let port =
        url.rsplit(':').next().and_then(|p| p.parse().ok()).ok_or_else(|| format!("a GNS3_URL without port: {url}"))?;
    let env = Gns3Env {
        flavor,
        version: get("GNS3_VERSION")?,
        url,
        api: get("GNS3_API")?,
        port,
        pid: get("GNS3_PID")?.parse().map_err(|e| format!("a bad GNS3_PID: {e}"))?,
        log: PathBuf::from(get("GNS3_LOG")?),
        user: opt("GNS3_USER"),
        password: opt("GNS3_PASSWORD"),
        token: opt("GNS3_TOKEN"),
    };
    if get("GNS3_FLAVOR")? != flavor.api() || (flavor == Flavor::V3 && env.token.is_empty()) {
        return Err(format!("another flavor or no token for {flavor:?}"));
    }
    Ok(env)
}

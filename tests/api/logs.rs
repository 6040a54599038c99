//! Logs of the real binary: `--log-json --debug` gives JSON lines on stderr and in
//! `log.dir/gns3_central_service.log`; `realtime_events.log` gets one envelope per
//! dispatched event; and no secret (GNS3 password, API tokens, a wrong token, the JWT
//! secret, a JWT) appears anywhere, although every one of them was used at debug level.
//! Text logs to a file or a pipe carry no colour codes.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::process::{read, Service};
use crate::metrics::VIEWER;

const TOKEN: &str = "g3c_logs-admin-token-0123456789abcdef0123456789abcdef";
const WRONG: &str = "g3c_logs-wrong-token-fedcba9876543210fedcba9876543210";
const PASSWORD: &str = "gns3-pw-never-logged-4711";
const JWT_SECRET: &str = "jwt-secret-never-logged-0123456789abcdef";

fn config(sim_port: u16) -> String {
    format!(
        r#"
[http]
bind = "127.0.0.1:{{PORT}}"
workers = 1
[log]
dir = "{{DIR}}/logs"
[gns3.servers.default]
port = {sim_port}
api_version = "v2"
username = "ops"
[[auth.tokens]]
name = "logs-admin"
role = "admin"
hash = "{admin}"
[[auth.tokens]]
name = "prometheus"
role = "viewer"
hash = "{viewer}"
[auth.jwt]
algorithm = "HS256"
"#,
        admin = gns3_central::auth::token::hash(TOKEN),
        viewer = gns3_central::auth::token::hash(VIEWER),
    )
}

#[actix_rt::test]
async fn json_logs_parse_and_never_show_a_secret() {
    let sim = gns3_central::simulate::Simulator::start(gns3_central::simulate::SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 2,
        links: false,
        activity: 0.0,
        seed: Some(3),
    })
    .await
    .expect("the stand-in starts");
    let mut svc = Service::start(
        &config(sim.port()),
        &["--log-json", "--debug"],
        &[("GNS3_PASSWORD", PASSWORD), ("GNS3_CENTRAL__AUTH__JWT__SECRET", JWT_SECRET)],
    )
    .await;
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let get = |path: &str, token: &str| client.get(format!("{}{path}", svc.base)).bearer_auth(token).send();
    // Wait for GNS3, then use every credential.
    let deadline = Instant::now() + Duration::from_secs(20);
    let projects: Value = loop {
        let mut r = get("/api/v2/servers/default/projects", TOKEN).await.expect("an answer");
        if r.status() == 200 {
            break r.json().await.expect("JSON");
        }
        assert!(Instant::now() < deadline, "GNS3 never answered through the service");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let project = projects[0]["project_id"].as_str().expect("a project").to_owned();
    assert_eq!(get("/api/v2/status", WRONG).await.expect("an answer").status(), 401);
    let claims = json!({"sub": "ci-bot", "role": "viewer", "exp": chrono::Utc::now().timestamp() + 300});
    let jwt = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes()))
        .expect("a JWT");
    assert_eq!(get("/api/v2/status", &jwt).await.expect("an answer").status(), 200);
    assert_eq!(get("/metrics", VIEWER).await.expect("an answer").status(), 200);
    let mut nodes = get(&format!("/api/v2/servers/default/projects/{project}/nodes"), TOKEN).await.expect("an answer");
    let nodes: Value = nodes.json().await.expect("JSON");
    let node = nodes[0]["node_id"].as_str().expect("a node");
    let mut r = client
        .post(format!("{}/api/v2/servers/default/projects/{project}/nodes/{node}/actions/stop", svc.base))
        .bearer_auth(TOKEN)
        .send_json(&json!({}))
        .await
        .expect("an answer");
    assert_eq!(r.status(), 200);
    let outcome: Value = r.json().await.expect("JSON");
    let correlation = outcome["correlation_id"].as_str().expect("a correlation id").to_owned();
    // The WebSocket credential in the query string.
    let ws = client.ws(format!("{}/ws/gns3/events/?token={TOKEN}", svc.base)).connect().await;
    assert!(ws.is_ok(), "the upgrade with ?token= works");
    drop(ws);

    // The action's node.stopped reaches the events log (it may trail the answer).
    let events_log = svc.path("logs/realtime_events.log");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = read(&events_log);
        let lines: Vec<Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        if lines.iter().any(|e| e["type"] == "node.stopped" && e["correlation_id"] == correlation.as_str()) {
            assert!(lines.iter().all(|e| e["id"].is_string() && e["seq"].is_u64()), "{text}");
            let seqs: Vec<u64> = lines.iter().filter_map(|e| e["seq"].as_u64()).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one line per event, in order: {seqs:?}");
            break;
        }
        assert!(Instant::now() < deadline, "node.stopped not in the events log:\n{text}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }

    svc.signal("TERM");
    let (status, _) = svc.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
    let stderr = svc.stderr();
    let service_log = read(&svc.path("logs/gns3_central_service.log"));
    // JSON lines, every one of them: stderr (the start-up banner too) and the file.
    let json_lines = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
            .collect()
    };
    let lines = json_lines(&stderr);
    assert!(
        lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.starts_with("gns3-central listening on"))),
        "the banner is a JSON line: {stderr}"
    );
    assert!(!stderr.contains('\x1b') && !service_log.contains('\x1b'), "no colour codes in JSON logs");
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"), "--debug gives debug lines");
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["message"].is_string()), "{stderr}");
    assert!(lines.iter().any(|l| l["message"] == "Node action done."), "{stderr}");
    let file_lines = json_lines(&service_log);
    assert!(file_lines.len() >= lines.len() / 2 && !file_lines.is_empty(), "the service log file has the lines too");
    for secret in [PASSWORD, TOKEN, WRONG, VIEWER, JWT_SECRET, jwt.as_str()] {
        for (what, text) in [
            ("stderr", &stderr),
            ("stdout", &svc.stdout()),
            ("service log", &service_log),
            ("events log", &read(&events_log)),
        ] {
            assert!(!text.contains(secret), "a secret ({}…) is in the {what}", &secret[..8]);
        }
    }
    sim.stop().await;
}

#[actix_rt::test]
async fn text_logs_in_a_file_or_a_pipe_carry_no_colour_codes() {
    let sim = gns3_central::simulate::Simulator::start(gns3_central::simulate::SimulatorOptions {
        bind: "127.0.0.1:0".parse().expect("an address"),
        projects: 1,
        nodes: 1,
        links: false,
        activity: 0.0,
        seed: Some(4),
    })
    .await
    .expect("the stand-in starts");
    // stderr is a file here, as it is for a pipe: not a terminal.
    let mut svc =
        Service::start(&config(sim.port()), &["--debug"], &[("GNS3_CENTRAL__AUTH__JWT__SECRET", JWT_SECRET)]).await;
    svc.signal("TERM");
    let (status, _) = svc.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
    let stderr = svc.stderr();
    let service_log = read(&svc.path("logs/gns3_central_service.log"));
    assert!(stderr.contains("DEBUG") && stderr.contains("gns3-central listening on"), "{stderr}");
    assert!(!service_log.is_empty(), "the service log has lines");
    assert!(!stderr.contains('\x1b'), "colour codes on stderr that is no terminal: {stderr:?}");
    assert!(!service_log.contains('\x1b'), "colour codes in the service log: {service_log:?}");
    sim.stop().await;
}

#[test]
fn a_bad_log_setting_names_the_key() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gns3-central"))
        .args(["check-config"])
        .env("GNS3_CENTRAL__LOG__ROTATION", "weekly")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("log.rotation"), "{err}");
}

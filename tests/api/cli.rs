//! The binary's own commands: `check-config` with good and bad input, `status` against a
//! running instance and against none, `--help`.

use std::io::Write;
use std::process::{Command, Output};

use crate::app::{spawn_app, test_settings, Target, ADMIN_TOKEN};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GNS3_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    c
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_config_prints_the_effective_configuration_with_secrets_masked() {
    let o =
        bin().args(["check-config"]).env("GNS3_PASSWORD", "very-secret-pw").env("GNS3_PORT", "3999").output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("port = 3999"), "{out}");
    assert!(!out.contains("very-secret-pw"), "{out}");
    assert!(out.contains("password = \"***\""), "{out}");
}

#[test]
fn check_config_rejects_a_bad_file_naming_the_problem() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "[gns3.servers.default]\nport = \"eighty\"").unwrap();
    let o = bin().args(["check-config", "--config"]).arg(f.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("port"), "{}", text(&o));

    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "[http]\nbindd = \"127.0.0.1:1\"").unwrap();
    let o = bin().args(["check-config", "--config"]).arg(f.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("bindd"), "{}", text(&o));

    let o = bin().args(["check-config", "--config", "/nonexistent/gc.toml"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not found"), "{}", text(&o));
}

#[test]
fn check_config_rejects_a_bad_environment_value_naming_the_variable() {
    let o = bin().args(["check-config"]).env("GNS3_TIMEOUT", "soon").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("GNS3_TIMEOUT"), "{}", text(&o));

    let o =
        bin().args(["check-config"]).env("GNS3_CENTRAL__GNS3__SERVERS__DEFAULT__API_VERSION", "v9").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("api_version"), "{}", text(&o));
}

#[test]
fn help_texts_name_every_command() {
    let o = bin().arg("--help").output().unwrap();
    assert!(o.status.success());
    let out = text(&o);
    for cmd in ["serve", "status", "check-config", "simulate", "--test-mode"] {
        if cmd != "--test-mode" {
            assert!(out.contains(cmd), "{cmd} missing from --help: {out}");
        }
    }
    let o = bin().args(["serve", "--help"]).output().unwrap();
    assert!(text(&o).contains("--test-mode") && text(&o).contains("--no-events"));
}

#[test]
fn status_without_a_running_instance_fails_clearly() {
    let port = crate::helpers::free_port();
    let o = bin().args(["status", "--url", &format!("http://127.0.0.1:{port}")]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no instance answers"), "{}", text(&o));
}

#[actix_rt::test]
async fn status_reports_a_running_instance_that_is_not_ready() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let url = app.base.clone();
    let o = actix_rt::task::spawn_blocking(move || {
        bin().args(["status", "--url", &url]).env("GNS3_CENTRAL_TOKEN", ADMIN_TOKEN).output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("NOT READY") && out.contains("DISCONNECTED"), "{out}");

    let url = app.base.clone();
    let o = actix_rt::task::spawn_blocking(move || {
        bin().args(["status", "--json", "--url", &url, "--token", ADMIN_TOKEN]).output()
    })
    .await
    .unwrap()
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(v["ready"], false);
    assert_eq!(v["servers"][0]["name"], "default");
    app.stop().await;
}

//! The binary's own commands: `check-config` with good and bad input, `status` against a
//! running instance and against none, `--help` (with an example for every subcommand), and
//! output into a pipe whose reader goes away.

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
fn every_subcommand_help_shows_an_example_of_itself() {
    let commands: &[&[&str]] = &[
        &["serve"],
        &["status"],
        &["events"],
        &["events", "stats"],
        &["check-config"],
        &["simulate"],
        &["token"],
        &["token", "create"],
    ];
    for cmd in commands {
        let o = bin().args(*cmd).arg("--help").output().unwrap();
        assert!(o.status.success(), "{cmd:?}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let example =
            out.split_once("Example").map(|(_, e)| e).unwrap_or_else(|| panic!("{cmd:?}: no example:\n{out}"));
        let invocation = format!("gns3-central {}", cmd.join(" "));
        assert!(example.contains(&invocation), "{cmd:?}: the example does not run it:\n{out}");
    }
}

/// Runs `args` with stdout into a pipe whose reader has gone (as after `… | head -1`):
/// the reading end is closed at once, before the command has anything to print. The exit
/// status and stderr.
fn with_reader_gone(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = bin().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (child.wait().unwrap(), err)
}

#[actix_rt::test]
async fn a_command_whose_reader_goes_away_exits_quietly() {
    let app = spawn_app(test_settings(&Target::nowhere(), |_| {})).await;
    let url = app.base.clone();
    let results = actix_rt::task::spawn_blocking(move || {
        [
            vec!["status", "--json", "--url", &url, "--token", ADMIN_TOKEN],
            vec!["events", "stats", "--json", "--url", &url, "--token", ADMIN_TOKEN],
        ]
        .map(|a| (a.join(" "), with_reader_gone(&a)))
    })
    .await
    .unwrap();
    for (cmd, (status, err)) in results {
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{cmd}: {err}");
        // The command's own code (1: this instance is not ready), or death by SIGPIPE: not 101 (panic).
        assert!(status.code().is_none_or(|c| c == 0 || c == 1), "{cmd}: {status:?} {err}");
    }
    app.stop().await;
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

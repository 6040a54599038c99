//! `contrib/systemd/gns3-central.service`: systemd accepts it (`systemd-analyze verify`),
//! its hardening rates "OK" or better (`systemd-analyze security`, exposure ≤ 2.0), its
//! `ExecStart` flags and `Environment=` settings are ones this binary takes, and it
//! gives the graceful shutdown room (`TimeoutStopSec` above `shutdown.timeout_secs`).

use std::process::Command;

const UNIT: &str = include_str!("../../contrib/systemd/gns3-central.service");

fn values(key: &str) -> Vec<String> {
    UNIT.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_owned).collect()
}

fn analyze(args: &[&str], unit: &std::path::Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze is needed for this test (apt-get install systemd): {e}"))
}

#[test]
fn the_systemd_unit_is_valid_hardened_and_fits_the_binary() {
    // Verified with the binary path replaced (verify checks that ExecStart exists).
    let dir = tempfile::tempdir().expect("a directory");
    let unit = dir.path().join("gns3-central.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/gns3-central", env!("CARGO_BIN_EXE_gns3-central")))
        .expect("written");
    let o = analyze(&["verify"], &unit);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && !out.contains("gns3-central.service:"), "systemd-analyze verify:\n{out}");
    let o = analyze(&["security", "--offline=true"], &unit);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let exposure: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for gns3-central.service: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{out}");

    // ExecStart's flags exist.
    let exec = values("ExecStart").pop().expect("ExecStart");
    let help = Command::new(env!("CARGO_BIN_EXE_gns3-central")).args(["serve", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for flag in exec.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(flag), "ExecStart uses {flag}, which `serve` does not take:\n{help}");
    }
    // Environment= settings are valid configuration.
    let mut check = Command::new(env!("CARGO_BIN_EXE_gns3-central"));
    check.arg("check-config");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GNS3_") || k.starts_with("REDIS_")) {
        check.env_remove(k);
    }
    let envs = values("Environment");
    assert!(envs.len() >= 2, "{envs:?}");
    for e in &envs {
        let (k, v) = e.split_once('=').expect("KEY=VALUE");
        check.env(k, v);
    }
    let o = check.output().expect("runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("dir = \"/var/log/gns3-central\"") && out.contains("dir = \"/var/lib/gns3-central\""),
        "{out}"
    );
    // Room for the graceful shutdown.
    let stop: f64 = values("TimeoutStopSec").pop().and_then(|v| v.parse().ok()).expect("TimeoutStopSec");
    let defaults = gns3_central::config::Settings::load_with(None, &|_| None, vec![]).expect("defaults");
    assert!(stop > defaults.shutdown.timeout_secs, "TimeoutStopSec {stop} <= shutdown.timeout_secs");
    assert_eq!(values("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
}

#[test]
fn the_example_production_configuration_is_valid() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/config/production.example.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_gns3-central"))
        .args(["check-config", "--config", file])
        .output()
        .expect("runs");
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("bind = \"0.0.0.0:8000\"") && out.contains("format = \"json\""), "{out}");
}

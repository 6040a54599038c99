//! `gns3-central status`: asks a running instance over HTTP and prints a summary a person
//! can read (or the JSON with `--json`). Exit 0 ready, 1 not ready, 2 unreachable.
//! `fetch` and `base_url` are shared with `gns3-central events stats` (`events_cmd.rs`).

use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

use super::args::StatusArgs;
use crate::config::Settings;

pub async fn run(args: StatusArgs) -> ExitCode {
    let base = match base_url(&args) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let (_, body) = match fetch(&base, "/api/v2/status", &args).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let ready = body["ready"].as_bool().unwrap_or(false);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    } else {
        out!("{}", summary(&base, &body));
    }
    if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The instance's base URL: `--url`, else `http.bind` of the configuration.
pub fn base_url(args: &StatusArgs) -> Result<String, ExitCode> {
    base_url_of(args.url.as_deref(), args.config.config.as_deref())
}

/// As `base_url`, from the two arguments every client command has.
pub fn base_url_of(url: Option<&str>, config: Option<&std::path::Path>) -> Result<String, ExitCode> {
    match url {
        Some(u) => Ok(u.trim_end_matches('/').to_owned()),
        None => match Settings::load(config) {
            Ok(s) => Ok(format!("http://{}", local_target(&s.http.bind))),
            Err(e) => {
                errln!("gns3-central: {e}");
                Err(ExitCode::from(2))
            }
        },
    }
}

/// GETs `path` with the token; its status and JSON body. Unreachable, refused (401/403)
/// or not JSON: a message on stderr and exit code 2.
pub async fn fetch(base: &str, path: &str, args: &StatusArgs) -> Result<(u16, Value), ExitCode> {
    let url = format!("{base}{path}");
    let client = awc::Client::builder().timeout(Duration::from_secs_f64(args.timeout.clamp(0.1, 300.0))).finish();
    let mut req = client.get(&url);
    if let Some(token) = &args.token {
        req = req.bearer_auth(token);
    }
    let mut res = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            errln!("gns3-central: no instance answers at {base}: {e}");
            return Err(ExitCode::from(2));
        }
    };
    if res.status() == 401 || res.status() == 403 {
        errln!(
            "gns3-central: {base} refused the request ({}): \
             pass a viewer token with --token or GNS3_CENTRAL_TOKEN",
            res.status()
        );
        return Err(ExitCode::from(2));
    }
    match res.json::<Value>().limit(16 * 1024 * 1024).await {
        Ok(v) => Ok((res.status().as_u16(), v)),
        Err(e) => {
            errln!("gns3-central: {url} answered {} with no JSON: {e}", res.status());
            Err(ExitCode::from(2))
        }
    }
}

/// Where to reach an instance bound to `bind` from this machine.
fn local_target(bind: &str) -> String {
    bind.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]")
}

/// The readable form of `/api/v2/status`.
pub fn summary(base: &str, s: &Value) -> String {
    let mut out = String::new();
    let svc = &s["service"];
    out.push_str(&format!(
        "gns3-central {} at {base}: {} (up {})\n",
        svc["version"].as_str().unwrap_or("?"),
        if s["ready"].as_bool() == Some(true) { "READY" } else { "NOT READY" },
        human_secs(svc["uptime_secs"].as_f64().unwrap_or(0.0)),
    ));
    for srv in s["servers"].as_array().into_iter().flatten() {
        let connected = srv["connected"].as_bool() == Some(true);
        out.push_str(&format!(
            "  server {:<12} {:<13} {}  GNS3 {} (api {})  circuit {}  last call {}\n",
            srv["name"].as_str().unwrap_or("?"),
            if connected { "connected" } else { "DISCONNECTED" },
            srv["url"].as_str().unwrap_or("?"),
            srv["gns3_version"].as_str().unwrap_or("?"),
            srv["api_version"].as_str().unwrap_or("?"),
            srv["circuit"]["state"].as_str().unwrap_or("?"),
            srv["latency"]["last_ms"].as_f64().map(|m| format!("{m:.1} ms")).unwrap_or_else(|| "-".into()),
        ));
        if let Some(err) = srv["last_error"].as_str() {
            out.push_str(&format!("    last error: {err}\n"));
        }
    }
    for part in ["cache", "events"] {
        let c = &s[part];
        if c.is_object() {
            let state = match (c["implemented"].as_bool(), c["enabled"].as_bool()) {
                (Some(false), _) => "not built yet",
                (_, Some(true)) => "on",
                _ => "off",
            };
            out.push_str(&format!("  {part:<6} {state}\n"));
        }
    }
    out
}

fn human_secs(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_disconnected_servers() {
        let s = serde_json::json!({
            "ready": false,
            "service": {"version": "0.1.0", "uptime_secs": 75.0},
            "servers": [{"name": "default", "connected": false, "url": "http://127.0.0.1:3080",
                         "circuit": {"state": "open"}, "latency": {}, "last_error": "refused"}],
            "cache": {"implemented": false, "enabled": false}
        });
        let text = summary("http://127.0.0.1:8000", &s);
        assert!(text.contains("NOT READY"));
        assert!(text.contains("DISCONNECTED"));
        assert!(text.contains("circuit open"));
        assert!(text.contains("last error: refused"));
        assert!(text.contains("up 1m15s"));
    }
}

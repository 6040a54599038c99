//! Logging setup: `tracing` events to stderr, readable text or JSON lines, and optionally
//! to the service log file in `log.dir` (`logfile.rs`, same format, rotated). `RUST_LOG`
//! wins over the configured level, so an operator can always raise one module's level.
//!
//! Colours (ANSI) only when stderr is a terminal; never in JSON or in the file. The few
//! lines the command line writes itself (`direct_line`: the "listening on" banner, start-up
//! failures) follow `log.format` too.
//!
//! The level filter sits behind a `reload` layer whose handle is kept here (the
//! subscriber is process-wide, and so is its handle): `set_level` changes the level of a
//! running service (`PATCH /api/v2/config`, `SIGHUP`) without a restart.

use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Layer, Registry};

use crate::observe::logfile::RollingFile;

/// The service log file's name in `log.dir`.
pub const SERVICE_LOG: &str = "gns3_central_service.log";

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Noisy dependencies stay at warn whatever the level.
fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("{level},actix_server=warn,actix_http=warn"))
}

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(level: &str, json: bool) {
    init_with(level, json, None);
}

/// As `init`, also writing to `file` (the service log) when given.
pub fn init_with(level: &str, json: bool, file: Option<RollingFile>) {
    let from_env = std::env::var("RUST_LOG").is_ok();
    let base = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(level));
    let (base, handle) = reload::Layer::new(base);
    // Colours only for a person at a terminal: never in JSON, a pipe or a file.
    let stderr = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        fmt::layer().with_target(false).with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).boxed()
    };
    let file = file.map(|f| {
        if json {
            fmt::layer().json().flatten_event(true).with_current_span(false).with_ansi(false).with_writer(f).boxed()
        } else {
            fmt::layer().with_ansi(false).with_target(false).with_writer(f).boxed()
        }
    });
    let installed = tracing_subscriber::registry().with(base).with(stderr).with(file).try_init().is_ok();
    if installed && json {
        // The default hook writes plain text on stderr; a panic (the supervisor catches and
        // restarts a panicking actor) becomes a JSON error line like any other.
        std::panic::set_hook(Box::new(|info| {
            let backtrace = std::backtrace::Backtrace::capture();
            let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
                tracing::error!(panic = %info, thread = %thread, backtrace = %backtrace, "A thread panicked.");
            } else {
                tracing::error!(panic = %info, thread = %thread, "A thread panicked.");
            }
        }));
    }
    // With RUST_LOG set the operator's filter stays: the level is not changed at runtime.
    if installed && !from_env {
        let _ = LEVEL.set(handle);
    }
}

/// A line the command line writes on stderr itself, whatever the level (the start-up
/// banner, why it could not start): plain `text`, or with `json` an object shaped like the
/// subscriber's JSON lines (`timestamp`, `level`, `message`, `target`), so that with
/// `log.format = "json"` every line on stderr parses.
pub fn direct_line(json: bool, level: &str, text: &str) -> String {
    if !json {
        return text.to_owned();
    }
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    serde_json::json!({"timestamp": timestamp, "level": level, "message": text, "target": "gns3_central"}).to_string()
}

/// Sets the level of a running service. `false` when there is nothing to change (no
/// subscriber installed by `init`, or `RUST_LOG` decides).
pub fn set_level(level: &str) -> bool {
    match LEVEL.get() {
        Some(h) => h.modify(|f| *f = filter(level)).is_ok(),
        None => false,
    }
}

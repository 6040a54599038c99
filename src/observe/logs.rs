//! Logging setup: `tracing` events to stderr, readable text or JSON lines, and optionally
//! to the service log file in `log.dir` (`logfile.rs`, same format, rotated). `RUST_LOG`
//! wins over the configured level, so an operator can always raise one module's level.
//!
//! The level filter sits behind a `reload` layer whose handle is kept here (the
//! subscriber is process-wide, and so is its handle): `set_level` changes the level of a
//! running service (`PATCH /api/v2/config`, `SIGHUP`) without a restart.

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
    let stderr = if json {
        fmt::layer().json().flatten_event(true).with_current_span(false).with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().with_target(false).with_writer(std::io::stderr).boxed()
    };
    let file = file.map(|f| {
        if json {
            fmt::layer().json().flatten_event(true).with_current_span(false).with_writer(f).boxed()
        } else {
            fmt::layer().with_ansi(false).with_target(false).with_writer(f).boxed()
        }
    });
    let installed = tracing_subscriber::registry().with(base).with(stderr).with(file).try_init().is_ok();
    // With RUST_LOG set the operator's filter stays: the level is not changed at runtime.
    if installed && !from_env {
        let _ = LEVEL.set(handle);
    }
}

/// Sets the level of a running service. `false` when there is nothing to change (no
/// subscriber installed by `init`, or `RUST_LOG` decides).
pub fn set_level(level: &str) -> bool {
    match LEVEL.get() {
        Some(h) => h.modify(|f| *f = filter(level)).is_ok(),
        None => false,
    }
}

//! The one typed `Settings` tree (`settings.rs`), loaded in layers (`load.rs`) and checked
//! once (`validate.rs`); one file per section of the edge (`http`, `log`, `gns3`, `redis`,
//! `websocket`, `service`), while each engine component owns its own section's type
//! (`gns3_central_actors::…Config`) and access control owns `[auth]` (`crate::auth`).
//! `live.rs` is the running service's configuration: what can change without a restart.
//! Every key is documented in `config/default.toml` and docs/configuration.md.
//!
//! Nothing here depends on the HTTP edge: handlers share `crate::state::AppState`, which
//! holds these settings, not the other way round.

pub mod gns3;
pub mod http;
pub mod live;
mod load;
pub mod log;
pub mod passthrough;
pub mod redis;
pub mod service;
mod settings;
mod validate;
pub mod websocket;

pub use self::gns3::{Gns3Settings, IngestModeSetting};
pub use self::http::HttpSettings;
pub use self::log::LogSettings;
pub use self::passthrough::{PassthroughSettings, PathRules};
pub use self::redis::RedisSettings;
pub use self::service::{AuditSettings, ShutdownSettings, SupervisionSettings};
pub use self::settings::{ConfigError, Settings, DEFAULT_TOML, ENV_PREFIX};
pub use self::websocket::WsSettings;

//! `BusError`: why the bus did not take or deliver a message, or why a module call
//! failed. Each has a stable `code()` that the WebSocket error frames and the REST error
//! bodies carry.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BusError {
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("no module named '{0}' is registered")]
    UnknownModule(String),
    #[error(
        "module '{0}' is not connected and the bus refuses messages for offline modules (or the message's ttl is 0)"
    )]
    Offline(String),
    #[error("the inbox of module '{0}' is full")]
    InboxFull(String),
    #[error("no reply from '{to}' within {} ms", after.as_millis())]
    ReplyTimeout { to: String, after: Duration },
    #[error("too many requests wait for their reply (at most {0})")]
    TooManyPending(usize),
    #[error("a module named '{0}' is already registered")]
    AlreadyRegistered(String),
    #[error("at most {0} modules can be registered")]
    TooManyModules(usize),
    #[error("invalid module name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("module '{module}' may not publish '{kind}': its events must be named '{module}.<something>'")]
    Namespace { module: String, kind: String },
    #[error("the event could not be published: {0}")]
    Publish(String),
    #[error("live events are off (--no-events)")]
    EventsDisabled,
    #[error("the module's proxy is gone")]
    Unavailable,
    /// Shared mode: Redis, where the bus is, does not answer (docs/modules.md#several-instances).
    #[error("the shared bus is unavailable (Redis): {0}")]
    BusUnavailable(String),
}

impl BusError {
    pub fn code(&self) -> &'static str {
        match self {
            BusError::Invalid(_) => "invalid_message",
            BusError::UnknownModule(_) => "unknown_module",
            BusError::Offline(_) => "module_offline",
            BusError::InboxFull(_) => "inbox_full",
            BusError::ReplyTimeout { .. } => "reply_timeout",
            BusError::TooManyPending(_) => "too_many_pending",
            BusError::AlreadyRegistered(_) => "module_exists",
            BusError::TooManyModules(_) => "too_many_modules",
            BusError::InvalidName { .. } => "invalid_module_name",
            BusError::Namespace { .. } => "forbidden_namespace",
            BusError::Publish(_) => "publish_failed",
            BusError::EventsDisabled => "events_disabled",
            BusError::Unavailable => "module_unavailable",
            BusError::BusUnavailable(_) => "bus_unavailable",
        }
    }
}

/// A `ModuleHandle` call that failed: on the bus, or at GNS3 (passed through as the
/// connector reported it), or for an unknown server or node.
#[derive(Debug, Clone, Error)]
pub enum ModuleError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Gns3(#[from] crate::connector::ConnectorError),
    #[error("no GNS3 server named '{0}' is configured")]
    UnknownServer(String),
    #[error("{0}")]
    NotFound(String),
}

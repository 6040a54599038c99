//! What a caller of the connector gets when a call does not succeed. The HTTP edge maps
//! each variant to one status: `Unavailable`/`CircuitOpen` 503 + `Retry-After`, `Gns3`
//! GNS3's own status and message, `Auth`/`Protocol` 502.

use serde_json::Value;
use std::time::Duration;
use thiserror::Error;

use crate::gns3::Gns3Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum ConnectorError {
    /// GNS3 cannot be reached (refused, timed out, mid-restart).
    #[error("GNS3 server '{server}' is unavailable: {reason}")]
    Unavailable { server: String, reason: String, retry_after: Duration },
    /// The circuit breaker is open: GNS3 is not called until `retry_after` has passed.
    #[error("GNS3 server '{server}' is unavailable: circuit open after repeated failures")]
    CircuitOpen { server: String, retry_after: Duration },
    /// GNS3 refused the call; `message` is GNS3's own text, `status` its status code.
    /// `details` carries what the connector learnt afterwards (e.g. the node's real status).
    #[error("{message}")]
    Gns3 { status: u16, message: String, details: Option<Value> },
    /// GNS3 rejected gns3-central's credentials.
    #[error("GNS3 server '{server}' rejected the configured credentials: {message}")]
    Auth { server: String, message: String },
    /// GNS3 answered something unexpected.
    #[error("GNS3 server '{server}' sent an unexpected reply: {message}")]
    Protocol { server: String, message: String },
    /// The connector actor is not running (restarting or stopped).
    #[error("the connector of GNS3 server '{0}' is not running")]
    Mailbox(String),
}

impl ConnectorError {
    /// Converts a client error, given the server name and how long callers should wait.
    pub fn from_gns3(server: &str, err: Gns3Error, retry_after: Duration) -> Self {
        match err {
            Gns3Error::Connect { reason, .. } => {
                ConnectorError::Unavailable { server: server.to_owned(), reason, retry_after }
            }
            Gns3Error::Timeout(d) => ConnectorError::Unavailable {
                server: server.to_owned(),
                reason: format!("no answer within {:.1}s", d.as_secs_f64()),
                retry_after,
            },
            Gns3Error::Status { status, message } => ConnectorError::Gns3 { status, message, details: None },
            Gns3Error::Auth(message) => ConnectorError::Auth { server: server.to_owned(), message },
            Gns3Error::Protocol(message) => ConnectorError::Protocol { server: server.to_owned(), message },
        }
    }

    /// Seconds a client should wait before trying again, for 503 answers.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::Unavailable { retry_after, .. } | ConnectorError::CircuitOpen { retry_after, .. } => {
                Some(*retry_after)
            }
            ConnectorError::Mailbox(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

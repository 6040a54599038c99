//! Errors of one call to GNS3, before any retry or circuit logic.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum Gns3Error {
    /// The TCP connection could not be made or broke before a reply (GNS3 down).
    #[error("cannot reach GNS3 at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// No complete reply within the configured timeout.
    #[error("GNS3 did not answer within {0:?}")]
    Timeout(Duration),
    /// GNS3 answered with an error status; `message` is GNS3's own text.
    #[error("GNS3 answered {status}: {message}")]
    Status { status: u16, message: String },
    /// Login failed (wrong user or password), or a re-login after 401 failed too.
    #[error("GNS3 authentication failed: {0}")]
    Auth(String),
    /// GNS3 answered something that is not what its API documents.
    #[error("unexpected reply from GNS3: {0}")]
    Protocol(String),
}

impl Gns3Error {
    /// True when GNS3 could not be talked to at all (counts against the circuit breaker
    /// and makes the server "disconnected"); false when GNS3 answered.
    pub fn is_transport(&self) -> bool {
        matches!(self, Gns3Error::Connect { .. } | Gns3Error::Timeout(_))
    }

    /// True when the request certainly did not reach GNS3, so even an action may be retried.
    pub fn never_sent(&self) -> bool {
        matches!(self, Gns3Error::Connect { reason, .. } if reason.starts_with("connect:"))
    }

    /// GNS3's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Gns3Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

//! Why a Redis call of the cache did not succeed. These never reach a reader: the actor
//! turns `Unavailable` into a fall-back to memory and `Command` into a miss (and counts
//! both). `Config` is returned by `CacheActor::new` for a Redis address that cannot work.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CacheError {
    /// Redis cannot be reached, did not answer in time, or dropped the connection.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (wrong type, unknown command...); it is up.
    #[error("Redis refused a command: {0}")]
    Command(String),
    /// The cache or Redis settings cannot work.
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

impl CacheError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CacheError::Unavailable(_))
    }
}

impl From<redis::RedisError> for CacheError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind as S};
        match e.kind() {
            // Loading its data, failing over, read-only replica: not usable for now.
            ErrorKind::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown | S::ReadOnly) => {
                CacheError::Unavailable(e.to_string())
            }
            // Redis is there and said no: the connection is fine.
            ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType | ErrorKind::Parse
                if !e.is_unrecoverable_error() =>
            {
                CacheError::Command(e.to_string())
            }
            _ => CacheError::Unavailable(e.to_string()),
        }
    }
}

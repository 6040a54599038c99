//! What a publisher or subscriber of the dispatcher gets when a call does not succeed.
//! The HTTP edge maps `Backpressure`, `ExpressLaneFull` and `Unavailable` to 503 +
//! `Retry-After`,
//! `InvalidEvent` to 400, `UnknownSubscriber` to 404, `TooManySubscribers` to 503.

use std::time::Duration;
use thiserror::Error;

use super::queue::Priority;
use super::subscribers::SubscriberId;

/// How long a publisher refused for backpressure should wait: about one drain turn.
pub const BACKPRESSURE_RETRY_AFTER: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DispatchError {
    /// The queues are full of events that may not be shed: a HIGH or CRITICAL event is
    /// refused rather than dropped, and must be published again later.
    #[error("event queues are full; {priority} event refused, retry in {} ms", retry_after.as_millis())]
    Backpressure { priority: Priority, retry_after: Duration },
    /// The express lane is full: publish again after `retry_after`.
    #[error("the express lane is full; retry in {} ms", retry_after.as_millis())]
    ExpressLaneFull { retry_after: Duration },
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("too many subscribers (at most {0})")]
    TooManySubscribers(usize),
    #[error("unknown subscriber {0}")]
    UnknownSubscriber(SubscriberId),
    /// The dispatcher actor is not running (its mailbox is closed).
    #[error("the event dispatcher is not running")]
    Unavailable,
}

impl DispatchError {
    /// How long a caller should wait before trying again, for 503 answers.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DispatchError::Backpressure { retry_after, .. } | DispatchError::ExpressLaneFull { retry_after } => {
                Some(*retry_after)
            }
            DispatchError::Unavailable | DispatchError::TooManySubscribers(_) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl From<actix::MailboxError> for DispatchError {
    fn from(_: actix::MailboxError) -> Self {
        DispatchError::Unavailable
    }
}

//! Messages the `PriorityDispatcher` answers, and `Deliver`, the one it sends to every
//! subscriber. Publishers (connectors, modules, the Redis bridge) send `Publish` with
//! `send().await` so a full dispatcher mailbox makes them wait; sessions and module
//! proxies subscribe with a `Recipient<Deliver>`.

use actix::prelude::SendError;
use actix::{Message, Recipient};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

use super::core::{HistoryPage, Subscription};
use super::delivery::{DeadLetter, EventSink, SharedEvent, SinkStatus};
use super::error::DispatchError;
use super::filter::SubscriptionFilter;
use super::history::Unrecoverable;
use super::stats::DispatcherStats;
use super::subscribers::SubscriberId;
use crate::events::{Event, NewEvent};

/// One event for one subscriber: the envelope and its JSON, the same `Arc` and the same
/// bytes for every subscriber (send `json` as the WebSocket text frame as it is; replays
/// and history give the same bytes).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    pub event: Arc<Event>,
    pub json: Bytes,
}

impl EventSink for Recipient<Deliver> {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        match self.try_send(Deliver { event: entry.event.clone(), json: entry.json.clone() }) {
            Ok(()) => SinkStatus::Delivered,
            Err(SendError::Full(_)) => SinkStatus::Full,
            Err(SendError::Closed(_)) => SinkStatus::Closed,
        }
    }
}

/// Queues an event. LOW/NORMAL events may be shed when the queues are full (that is not
/// an error); HIGH/CRITICAL ones are refused with `DispatchError::Backpressure` instead,
/// and the publisher must publish them again after `retry_after`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct Publish(pub NewEvent);

/// Registers a subscriber for live events. `label` names it in stats and dead letters
/// (`ws:<session id>`, `module:<name>`).
#[derive(Message)]
#[rtype(result = "Result<SubscriberId, DispatchError>")]
pub struct Subscribe {
    pub label: String,
    pub filter: SubscriptionFilter,
    pub recipient: Recipient<Deliver>,
}

/// Registers a subscriber and, in the same step, returns the matching events after the
/// event id `since` (at most `max_replay` of them, else `Unrecoverable::TooMany`). Every
/// replayed event has seq <= `Subscription::latest_seq` and every live one a higher seq:
/// no gap, no duplicate. Live `Deliver`s may reach the recipient's mailbox before this
/// reply reaches the caller: a session should wait for the reply with `ctx.wait` (which
/// holds its mailbox) or drop live events with seq <= `latest_seq` it has not sent yet.
#[derive(Message)]
#[rtype(result = "Result<Subscription, DispatchError>")]
pub struct SubscribeWithReplay {
    pub label: String,
    pub filter: SubscriptionFilter,
    pub recipient: Recipient<Deliver>,
    pub since: Option<String>,
    pub max_replay: usize,
}

/// Removes a subscriber (events waiting in its backlog are dropped). `false`: unknown id.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct Unsubscribe {
    pub id: SubscriberId,
}

/// Replaces a subscriber's filter (the session added or removed names).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct UpdateSubscription {
    pub id: SubscriberId,
    pub filter: SubscriptionFilter,
}

/// Events from history: after the event id `since` (the first `limit`), or the last
/// `limit` without it; only those passing `filter` when one is given. An id from another
/// epoch, too old, or malformed gives `Unrecoverable` (HTTP: 410/400; WebSocket:
/// `recovered: false`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<HistoryPage, Unrecoverable>")]
pub struct GetHistory {
    pub since: Option<String>,
    pub limit: usize,
    pub filter: Option<SubscriptionFilter>,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "DispatcherStats")]
pub struct GetStats;

/// The most recent dead letters, oldest first.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Vec<DeadLetter>")]
pub struct GetDeadLetters {
    pub limit: usize,
}

/// The epoch and the last seq (for a session's `welcome` frame); cheaper than `GetStats`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Position")]
pub struct GetPosition;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Position {
    pub epoch: String,
    pub last_seq: u64,
}

//! Messages the `PriorityDispatcher` answers, and `Deliver`, the one it sends to every
//! subscriber. Publishers (connectors, modules, the Redis bridge) send `Publish` with
//! `send().await` so a full dispatcher mailbox makes them wait; sessions and module
//! proxies subscribe with an `Inbox` (`inbox.rs`), other actors may use a
//! `Recipient<Deliver>` (one message per event).

use actix::prelude::SendError;
use actix::{Message, Recipient};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

use super::core::{HistoryPage, Replay, Subscription};
use super::delivery::{DeadLetter, EventSink, SharedEvent, SinkStatus};
use super::error::{DispatchError, BACKPRESSURE_RETRY_AFTER};
use super::filter::{valid_type_name, SubscriptionFilter};
use super::history::Unrecoverable;
use super::inbox::Sink;
use super::lane::Lane;
use super::stats::DispatcherStats;
use super::subscribers::SubscriberId;
use crate::events::{Event, EventKind, NewEvent};

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

/// The express lane's handle (from `GetExpressLane`): publishes past the dispatcher's
/// mailbox, so the event's latency does not depend on how many publishes wait there (see
/// `lane.rs`). For server and circuit events; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct ExpressLane {
    lane: Arc<Lane>,
    wake: Recipient<DrainLane>,
}

impl ExpressLane {
    pub(crate) fn new(lane: Arc<Lane>, wake: Recipient<DrainLane>) -> Self {
        Self { lane, wake }
    }

    /// Queues the event in the lane; it is dispatched as soon as the dispatcher finishes
    /// the event or message at hand.
    pub fn publish(&self, event: NewEvent) -> Result<(), DispatchError> {
        if EventKind::parse(&event.kind).is_none() && !valid_type_name(&event.kind) {
            return Err(DispatchError::InvalidEvent(format!("invalid event type '{}'", event.kind.escape_debug())));
        }
        if !self.wake.connected() {
            return Err(DispatchError::Unavailable);
        }
        match self.lane.push(event) {
            Ok(true) => {
                self.wake.do_send(DrainLane);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(_) => Err(DispatchError::ExpressLaneFull { retry_after: BACKPRESSURE_RETRY_AFTER }),
        }
    }
}

/// The handle to the dispatcher's express lane.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "ExpressLane")]
pub struct GetExpressLane;

/// Sent by `ExpressLane` when the lane stops being empty (wakes an idle dispatcher).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct DrainLane;

/// Queues an event. LOW/NORMAL events may be shed when the queues are full (that is not
/// an error); HIGH/CRITICAL ones are refused with `DispatchError::Backpressure` instead,
/// and the publisher must publish them again after `retry_after`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct Publish(pub NewEvent);

/// Queues several events in one message (a resync's burst, a bridge's batch): each is
/// handled as `Publish` would handle it, in order. HIGH/CRITICAL events refused for
/// backpressure come back in `BatchOutcome::refused`, to be published again after
/// `retry_after`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "BatchOutcome")]
pub struct PublishBatch(pub Vec<NewEvent>);

#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Queued (some possibly after shedding older LOW/NORMAL events).
    pub queued: usize,
    /// LOW/NORMAL events shed on arrival (queues full).
    pub shed: usize,
    /// Events with an invalid type, dropped.
    pub invalid: usize,
    /// HIGH/CRITICAL events refused (backpressure), in their original order.
    pub refused: Vec<NewEvent>,
    pub retry_after: Option<std::time::Duration>,
}

/// Registers a subscriber for live events. `label` names it in stats and dead letters
/// (`ws:<session id>`, `module:<name>`).
#[derive(Message)]
#[rtype(result = "Result<SubscriberId, DispatchError>")]
pub struct Subscribe {
    pub label: String,
    pub filter: SubscriptionFilter,
    /// A `Recipient<Deliver>` or an `Inbox` (`.into()`).
    pub sink: Sink,
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
    /// A `Recipient<Deliver>` or an `Inbox` (`.into()`).
    pub sink: Sink,
    pub since: Option<String>,
    pub max_replay: usize,
    /// How long to wait when `since` is in the current epoch but beyond the latest seq (a
    /// clustered instance behind the shared log: `ahead.rs`); zero answers at once.
    pub wait_ahead: std::time::Duration,
}

/// The matching events after `since` for a subscription made before (a module's, held by
/// its proxy: its session asks once the proxy has subscribed). Every event with a higher
/// seq than `Replay::latest_seq` reaches that subscription live; the caller drops live
/// ones up to it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Replay")]
pub struct GetReplay {
    pub filter: SubscriptionFilter,
    pub since: String,
    pub max_replay: usize,
    /// As `SubscribeWithReplay::wait_ahead`.
    pub wait_ahead: std::time::Duration,
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
    /// As `SubscribeWithReplay::wait_ahead`.
    pub wait_ahead: std::time::Duration,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "DispatcherStats")]
pub struct GetStats;

/// Shutdown: dispatch the queued CRITICAL and HIGH events and retry pending deliveries,
/// for at most the given time; answers (dispatched, deliveries still pending). The
/// dispatcher's own thread is busy meanwhile (nothing else matters at that point).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "(usize, usize)")]
pub struct FlushUrgent(pub std::time::Duration);

/// Runtime configuration: the priority overrides per event type (`events.priorities`),
/// replacing the previous ones, for events published from now on.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetPriorities(pub std::collections::BTreeMap<String, super::Priority>);

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

/// Follow a shared event log through this uplink (`Some`), or number locally (`None`,
/// continuing the epoch). Sent by the cluster bridge.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SetUplink(pub Option<super::core::Uplink>);

/// Events numbered by the shared log, in its order (from the cluster bridge).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Inject(pub Vec<(Arc<Event>, Bytes)>);

/// The history kept in a persistent log, loaded at start-up before anything is
/// dispatched: `entries` oldest first, `last_seq` the epoch's last number.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Preload {
    pub origin: super::history::Origin,
    pub entries: Vec<(Event, Bytes)>,
}

/// Follow the shared log through this uplink; answers the history as it is then, for the
/// bridge to reconcile the log with it (`DispatcherCore::rejoin`).
#[derive(Message, Debug)]
#[rtype(result = "super::core::Rejoined")]
pub struct Rejoin(pub super::core::Uplink);

/// Redis unreachable: number locally, same epoch; what was on its way to the log first
/// (`DispatcherCore::withdraw_uplink`).
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct Withdraw {
    pub in_flight: Vec<Event>,
    pub rx: Option<tokio::sync::mpsc::Receiver<Event>>,
}

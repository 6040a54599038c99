//! Messages of the module bus. Senders reach a `ModuleProxy` only through
//! `ModuleRegistry::route`, which uses `try_send` (a full proxy mailbox is refused with
//! `inbox_full`, never waited on); the proxy reaches its connected module with `try_send`
//! on the module's link (`ToModule`), so no module can slow another one down.
//!
//! A bus message handed to a link stays the proxy's until the link says it reached the
//! module (`Delivered`: written to its socket, or handled by its in-process handler);
//! what a link still held when it went away (`Detach`) goes back to the front of the
//! offline queue, so no message is counted delivered that the module did not get.

use actix::{Message, Recipient};
use std::sync::Arc;
use uuid::Uuid;

use super::envelope::BusMessage;
use super::error::BusError;
use crate::dispatcher::{Deliver, SubscriptionFilter};

/// A bus message for the proxy's module (from `ModuleRegistry::route`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Inbound(pub Arc<BusMessage>);

/// What a proxy hands to its connected module (a WebSocket session or an in-process
/// inbox), with `try_send`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ToModule {
    /// A bus message and its sequence number on this proxy (increasing), which the link
    /// acknowledges with `Delivered`.
    Message(Arc<BusMessage>, u64),
    /// The reply to the connection's request (with the `request_id` of its frame), under
    /// the same sequence numbers and acknowledgement as `Message` (`HandReply`).
    Reply(Arc<BusMessage>, u64, Option<serde_json::Value>),
    Event(Deliver),
    /// Another connection of the same module took over (or the module was deleted):
    /// this one must close.
    Replaced {
        deleted: bool,
    },
}

/// Connects a module: from now on its messages and events go to `link`; the offline
/// queue is delivered first. A previous connection is told `Replaced`.
#[derive(Message)]
#[rtype(result = "Result<(), BusError>")]
pub struct Attach {
    pub session: Uuid,
    pub link: Recipient<ToModule>,
}

/// The connection `session` is gone, and it will acknowledge nothing more: its messages
/// up to `delivered_upto` (a `ToModule::Message` sequence number) reached the module, the
/// rest go back to the front of the offline queue.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Detach {
    pub session: Uuid,
    pub delivered_upto: Option<u64>,
}

/// The link `session` has handed the module every message up to `upto` (its sequence
/// number): written to the socket, or handled by an in-process handler. `failed`: the
/// handler failed on every retry for the message `upto` itself (dead-lettered, not
/// delivered).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Delivered {
    pub session: Uuid,
    pub upto: u64,
    pub failed: bool,
}

/// A reply to a waiting request of a socket module (`ModuleRegistry::request_held`),
/// for its proxy: counted sent to the requester, handed to `session` as a
/// `ToModule::Reply` (received once confirmed, `Delivered`), or, when `session` is not
/// the module's connection now (or `None`: the request's session ended before it took
/// the reply), put at the front of the offline queue as a plain message
/// (docs/modules.md#status).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct HandReply {
    pub session: Option<Uuid>,
    pub msg: BusMessage,
    pub request_id: Option<serde_json::Value>,
}

/// Replaces the module's event subscription (kept across reconnects; an empty filter
/// unsubscribes).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), BusError>")]
pub struct SetFilter(pub SubscriptionFilter);

/// The module was deleted: dead-letter what waits, unsubscribe, close its connection.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Retire;

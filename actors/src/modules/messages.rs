//! Messages of the module bus. Senders reach a `ModuleProxy` only through
//! `ModuleRegistry::route`, which uses `try_send` (a full proxy mailbox is refused with
//! `inbox_full`, never waited on); the proxy reaches its connected module with `try_send`
//! on the module's link (`ToModule`), so no module can slow another one down.

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
    Message(Arc<BusMessage>),
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

/// The connection `session` is gone (ignored when another one has taken over).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Detach {
    pub session: Uuid,
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

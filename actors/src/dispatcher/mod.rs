//! The `PriorityDispatcher` and its plain-struct cores (being built: see the live-events
//! issue). `queue` holds the four bounded priority mailboxes.

pub mod queue;

//! The `EventSink` a connector publishes through: each event goes to the
//! `PriorityDispatcher` with `send`, so a full dispatcher mailbox makes the connector wait,
//! and a HIGH or CRITICAL event the full queues refuse is published again after the
//! dispatcher's `retry_after` (never dropped; the connector's stream reading waits
//! meanwhile, which is the backpressure the design asks for). Server and circuit events
//! take the dispatcher's express lane, past whatever waits in its mailbox. `gated` wraps
//! a sink for several instances on one Redis: it drops events while another instance holds
//! the server's ingestion lease.

use actix::Addr;
use std::rc::Rc;
use std::time::Duration;

use super::EventSink;
use crate::dispatcher::{DispatchError, ExpressLane, PriorityDispatcher, Publish};
use crate::events::Priority;

/// Longest wait between two attempts to publish a refused event.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// `lane`: server and circuit events (CRITICAL by default) go through the dispatcher's
/// express lane, past any flood waiting in its mailbox; when the lane is full they take
/// the normal way.
pub fn dispatcher_sink(addr: Addr<PriorityDispatcher>, lane: Option<ExpressLane>) -> EventSink {
    Rc::new(move |event| {
        let urgent = event.known_kind().is_some_and(|k| k.default_priority() == Priority::Critical);
        if let (true, Some(lane)) = (urgent, &lane) {
            if lane.publish(event.clone()).is_ok() {
                return Box::pin(async {});
            }
        }
        // `send` enqueues now, so events keep the order of the calls.
        let first = addr.send(Publish(event.clone()));
        let addr = addr.clone();
        Box::pin(async move {
            let mut result = first.await;
            loop {
                match result {
                    Ok(Err(DispatchError::Backpressure { retry_after, .. })) => {
                        actix_rt::time::sleep(retry_after.min(MAX_RETRY)).await;
                        result = addr.send(Publish(event.clone())).await;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, kind = %event.kind, "Event not published.");
                        return;
                    }
                    Ok(Ok(())) => return,
                    // The dispatcher is gone (shutting down): nothing to publish to.
                    Err(_) => return,
                }
            }
        })
    })
}

/// A sink that drops events while `gate` is closed (another instance ingests the server).
pub fn gated(sink: EventSink, gate: tokio::sync::watch::Receiver<bool>) -> EventSink {
    Rc::new(move |event| if *gate.borrow() { sink(event) } else { Box::pin(async {}) })
}

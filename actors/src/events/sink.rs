//! The `EventSink` a connector publishes through: each event goes to the
//! `PriorityDispatcher` with `send`, so a full dispatcher mailbox makes the connector wait,
//! and a HIGH or CRITICAL event the full queues refuse is published again after the
//! dispatcher's `retry_after` (never dropped; the connector's stream reading waits
//! meanwhile, which is the backpressure the design asks for).

use actix::Addr;
use std::rc::Rc;
use std::time::Duration;

use crate::connector::EventSink;
use crate::dispatcher::{DispatchError, PriorityDispatcher, Publish};

/// Longest wait between two attempts to publish a refused event.
const MAX_RETRY: Duration = Duration::from_secs(1);

pub fn dispatcher_sink(addr: Addr<PriorityDispatcher>) -> EventSink {
    Rc::new(move |event| {
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

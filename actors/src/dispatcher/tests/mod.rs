//! Behaviour of the dispatcher core, without actix: ordering, shedding, backpressure,
//! fan-out, filters, replay, retries and dead letters.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::*;
use crate::events::{Event, EventKind, NewEvent, Source};

mod delivery;
mod history;
mod queues;
mod routing;
mod uplink;

#[derive(Clone)]
struct TestSink {
    inbox: Rc<RefCell<Vec<SharedEvent>>>,
    mode: Rc<Cell<SinkStatus>>,
}

impl TestSink {
    fn new() -> Self {
        Self { inbox: Rc::default(), mode: Rc::new(Cell::new(SinkStatus::Delivered)) }
    }
    fn seqs(&self) -> Vec<u64> {
        self.inbox.borrow().iter().map(SharedEvent::seq).collect()
    }
    fn kinds(&self) -> Vec<String> {
        self.inbox.borrow().iter().map(|e| e.event.kind.clone()).collect()
    }
}

impl EventSink for TestSink {
    fn try_deliver(&self, entry: &SharedEvent) -> SinkStatus {
        let mode = self.mode.get();
        if mode == SinkStatus::Delivered {
            self.inbox.borrow_mut().push(entry.clone());
        }
        mode
    }
}

fn core_with(cfg: DispatcherConfig) -> DispatcherCore<TestSink> {
    DispatcherCore::new(cfg, Origin::resume("ep", 0).unwrap())
}

fn core(capacity: usize, burst: u32) -> DispatcherCore<TestSink> {
    core_with(DispatcherConfig { queue_capacity: capacity, starvation_burst: burst, ..Default::default() })
}

fn ev(kind: EventKind) -> NewEvent {
    NewEvent::new(kind, "default", Source::Gns3, serde_json::json!({}))
}

fn all_sink(c: &mut DispatcherCore<TestSink>) -> TestSink {
    let s = TestSink::new();
    c.subscribe("test".into(), SubscriptionFilter::all(), s.clone()).unwrap();
    s
}

fn drain_all(c: &mut DispatcherCore<TestSink>) {
    while c.drain(1000, None) > 0 {}
}

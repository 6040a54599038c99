//! `Correlator`: ties the events an action causes to the action, as a plain struct.
//!
//! Before an action is sent, the connector registers what it expects to see: the same
//! node (or any node of the project, for bulk actions) reaching a given status, within a
//! window. An event that fulfils an expectation gets the action's `correlation_id`. The
//! expectation is registered first because GNS3 often sends the event before it answers
//! the REST call. A node-level expectation is used up by its events in order (restart:
//! `stopped`, then `started`); a project-level one tags every matching event until its
//! window ends.

use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::events::{EventKind, NewEvent};

/// Expectations kept at most (oldest dropped first): bounded whatever the action rate.
const MAX_PENDING: usize = 1024;

#[derive(Debug, Clone)]
struct Expectation {
    project_id: Uuid,
    /// `None`: any node of the project (bulk actions, project open/close).
    node_id: Option<Uuid>,
    /// Still to come; node-level ones are consumed front to back.
    kinds: Vec<EventKind>,
    correlation_id: String,
    deadline: Instant,
}

#[derive(Debug)]
pub struct Correlator {
    window: Duration,
    pending: Vec<Expectation>,
}

impl Correlator {
    pub fn new(window: Duration) -> Self {
        Self { window, pending: Vec::new() }
    }

    pub fn expect(
        &mut self,
        project_id: Uuid,
        node_id: Option<Uuid>,
        kinds: &[EventKind],
        correlation_id: &str,
        now: Instant,
    ) {
        self.pending.retain(|e| e.deadline > now);
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Expectation {
            project_id,
            node_id,
            kinds: kinds.to_vec(),
            correlation_id: correlation_id.to_owned(),
            deadline: now + self.window,
        });
    }

    /// Sets `event.correlation_id` when the event fulfils an expectation.
    pub fn tag(&mut self, event: &mut NewEvent, now: Instant) {
        if event.correlation_id.is_some() {
            return;
        }
        let Some(kind) = event.known_kind() else { return };
        let Some(project) = event.project_id else { return };
        self.pending.retain(|e| e.deadline > now && !e.kinds.is_empty());
        // Node-level expectations first: they are the most specific.
        let found = self
            .pending
            .iter()
            .position(|e| {
                e.project_id == project
                    && e.node_id.is_some()
                    && e.node_id == event.node_id
                    && e.kinds.first() == Some(&kind)
            })
            .or_else(|| {
                self.pending
                    .iter()
                    .position(|e| e.project_id == project && e.node_id.is_none() && e.kinds.contains(&kind))
            });
        if let Some(i) = found {
            let e = &mut self.pending[i];
            event.correlation_id = Some(e.correlation_id.clone());
            if e.node_id.is_some() {
                e.kinds.remove(0);
            }
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Source;

    fn ev(kind: EventKind, p: Uuid, n: Option<Uuid>) -> NewEvent {
        NewEvent::new(kind, "default", Source::Gns3, serde_json::Value::Null).project(Some(p)).node(n)
    }

    #[test]
    fn tags_the_expected_events_of_the_same_node_in_order() {
        let t0 = Instant::now();
        let (p, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut c = Correlator::new(Duration::from_secs(10));
        c.expect(p, Some(a), &[EventKind::NodeStopped, EventKind::NodeStarted], "restart-1", t0);

        let mut other = ev(EventKind::NodeStopped, p, Some(b));
        c.tag(&mut other, t0);
        assert_eq!(other.correlation_id, None, "another node is not tagged");
        let mut early = ev(EventKind::NodeStarted, p, Some(a));
        c.tag(&mut early, t0);
        assert_eq!(early.correlation_id, None, "started before stopped does not match a restart");
        let mut stopped = ev(EventKind::NodeStopped, p, Some(a));
        c.tag(&mut stopped, t0);
        assert_eq!(stopped.correlation_id.as_deref(), Some("restart-1"));
        let mut repeat = ev(EventKind::NodeStopped, p, Some(a));
        c.tag(&mut repeat, t0);
        assert_eq!(repeat.correlation_id, None, "each expectation is used once");
        let mut started = ev(EventKind::NodeStarted, p, Some(a));
        c.tag(&mut started, t0);
        assert_eq!(started.correlation_id.as_deref(), Some("restart-1"));
        assert_eq!(c.pending(), 1);
        let mut more = ev(EventKind::NodeStarted, p, Some(a));
        c.tag(&mut more, t0);
        assert_eq!((more.correlation_id, c.pending()), (None, 0));
    }

    #[test]
    fn expectations_end_with_their_window() {
        let t0 = Instant::now();
        let (p, a) = (Uuid::new_v4(), Uuid::new_v4());
        let mut c = Correlator::new(Duration::from_secs(10));
        c.expect(p, Some(a), &[EventKind::NodeStarted], "x", t0);
        let mut late = ev(EventKind::NodeStarted, p, Some(a));
        c.tag(&mut late, t0 + Duration::from_secs(11));
        assert_eq!(late.correlation_id, None);
    }

    #[test]
    fn project_level_expectations_tag_every_matching_node() {
        let t0 = Instant::now();
        let p = Uuid::new_v4();
        let mut c = Correlator::new(Duration::from_secs(10));
        c.expect(p, None, &[EventKind::NodeStopped], "bulk", t0);
        for _ in 0..3 {
            let mut e = ev(EventKind::NodeStopped, p, Some(Uuid::new_v4()));
            c.tag(&mut e, t0);
            assert_eq!(e.correlation_id.as_deref(), Some("bulk"));
        }
        let mut elsewhere = ev(EventKind::NodeStopped, Uuid::new_v4(), Some(Uuid::new_v4()));
        c.tag(&mut elsewhere, t0);
        assert_eq!(elsewhere.correlation_id, None);
    }

    #[test]
    fn pending_expectations_are_bounded() {
        let t0 = Instant::now();
        let mut c = Correlator::new(Duration::from_secs(10));
        for i in 0..(MAX_PENDING + 10) {
            c.expect(Uuid::new_v4(), None, &[EventKind::NodeStarted], &i.to_string(), t0);
        }
        assert_eq!(c.pending(), MAX_PENDING);
    }
}

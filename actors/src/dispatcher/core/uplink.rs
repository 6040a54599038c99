//! Following a shared event log (the cluster bridge, `cluster/`) and leaving it.
//!
//! - `rejoin` sets the uplink and hands the bridge a snapshot of the history (epoch, last
//!   seq, the entries kept) so it can reconcile the shared log with what this instance
//!   numbered while Redis was unreachable (`cluster/reconcile.rs`).
//! - `withdraw_uplink` (Redis unreachable) keeps the epoch and the seq: what was on its way
//!   to Redis is numbered locally first, in order, then everything else as it comes. A
//!   subscriber sees one unbroken sequence through the outage.
//! - `preload` fills the history from the log; `inject` dispatches an event the log numbered.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

use super::super::delivery::{EventSink, SharedEvent};
use super::super::history::{History, HistoryEntry, Origin};
use super::super::stats::Count;
use super::super::subscribers::DeliveryCtx;
use super::{DispatcherCore, Injected, Uplink};
use crate::events::{Event, EventKind};

/// The history as `rejoin` found it.
#[derive(Debug, Clone)]
pub struct Rejoined {
    pub epoch: String,
    pub latest_seq: u64,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
}

impl<S: EventSink> DispatcherCore<S> {
    /// Starts (`Some`) or stops (`None`) following a shared log. Stopping keeps the epoch:
    /// numbering continues locally after the last seq (see the module doc).
    pub fn set_uplink(&mut self, uplink: Option<Uplink>) {
        let was = self.uplink.is_some();
        self.uplink = uplink;
        if was && self.uplink.is_none() {
            tracing::warn!(epoch = %self.history.epoch(), after = self.history.latest_seq(),
                "Shared event log unavailable: numbering locally, same epoch.");
        }
    }

    /// Stops following the shared log (Redis unreachable), epoch kept. `in_flight`: events
    /// handed to the uplink whose numbered copy never came back, oldest first; `rx`: the
    /// uplink's channel, with what still waits in it. Both are numbered locally first, in
    /// that order (the order the shared log would have given them), with the priority
    /// they were stamped with. Returns how many.
    pub fn withdraw_uplink(&mut self, in_flight: Vec<Event>, rx: Option<mpsc::Receiver<Event>>) -> usize {
        self.set_uplink(None);
        let mut leftover = in_flight;
        if let Some(mut rx) = rx {
            rx.close();
            while let Ok(e) = rx.try_recv() {
                leftover.push(e);
            }
        }
        let n = leftover.len();
        let now = Instant::now();
        for e in leftover {
            let p = e.priority;
            let new = e.into_new();
            let kind = EventKind::parse(&new.kind);
            self.number_and_fan_out(new, kind, p, now);
        }
        n
    }

    /// Starts following the shared log through `uplink` and returns what the bridge needs
    /// to reconcile the log with this history (events numbered meanwhile go to the uplink
    /// from now on, so the snapshot stays true).
    pub fn rejoin(&mut self, uplink: Uplink) -> Rejoined {
        self.uplink = Some(uplink);
        Rejoined {
            epoch: self.history.epoch().to_owned(),
            latest_seq: self.history.latest_seq(),
            entries: self.history.recent().cloned().collect(),
        }
    }

    pub fn has_uplink(&self) -> bool {
        self.uplink.is_some()
    }

    /// Restarts the numbering and the history (subscribers are kept).
    pub fn set_origin(&mut self, origin: Origin) {
        self.history = History::new(self.cfg.history_size, origin);
    }

    /// Fills the history from a persistent log (start-up): `entries` oldest first, the
    /// epoch's last seq `last_seq`. Nothing is delivered.
    pub fn preload(&mut self, origin: Origin, entries: Vec<(Event, Bytes)>) {
        let first = entries.first().map(|(e, _)| e.seq.saturating_sub(1)).unwrap_or(origin.last_seq());
        let last = origin.last_seq();
        let epoch = origin.epoch().to_owned();
        self.history = History::new(self.cfg.history_size, Origin::resume(epoch.clone(), first).unwrap_or(origin));
        for (event, json) in entries {
            if event.epoch == epoch {
                let kind = EventKind::parse(&event.kind);
                self.history.push(HistoryEntry::from_json(&event, json, kind));
            }
        }
        if self.history.latest_seq() < last {
            // Numbers were taken after the last event kept: continue after them.
            self.history.skip_to(last);
        }
    }

    /// Dispatches an event numbered elsewhere (the shared log), if it is newer than the
    /// last one: fan-out and history, like a local one.
    pub fn inject(&mut self, event: Arc<Event>, json: Bytes) -> Injected {
        let mut outcome = Injected::Dispatched;
        if event.epoch != self.history.epoch() {
            match Origin::resume(event.epoch.clone(), event.seq.saturating_sub(1)) {
                Ok(o) => {
                    tracing::info!(from = %self.history.epoch(), to = %event.epoch, seq = event.seq,
                        "Following the shared event log's epoch.");
                    self.set_origin(o);
                    outcome = Injected::NewEpoch;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Shared event with an invalid epoch; dropped.");
                    return Injected::Duplicate;
                }
            }
        }
        if event.seq <= self.history.latest_seq() {
            return Injected::Duplicate;
        }
        let kind = EventKind::parse(&event.kind);
        let p = event.priority;
        self.stats.count(kind, &event.kind, p, Count::Dispatched);
        let entry = HistoryEntry::from_json(&event, json, kind);
        let shared = SharedEvent::from_parts(event, entry.json.clone(), kind);
        self.history.push(entry);
        let mut cx = DeliveryCtx { cfg: &self.cfg.delivery, stats: &mut self.stats, dead: &mut self.dead };
        self.subs.fan_out(&shared, &mut cx);
        outcome
    }
}

//! Event statistics: counters per type and per priority, processing latency (publish to
//! delivery) per priority from a bounded sample, and the `DispatcherStats` report served at
//! `/api/v2/events/stats` and the original `/api/common/api/gns3-events/stats/`.
//!
//! Counting is on the hot path: built-in types index an array, module types a map that is
//! bounded (types past `MAX_MODULE_TYPES` are counted under `OTHER_TYPES`).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use utoipa::ToSchema;

use super::queue::Priority;
use crate::events::EventKind;
use crate::metrics::{Histogram, HistogramSnapshot, FAST_BUCKETS};

pub const MAX_MODULE_TYPES: usize = 256;
pub const OTHER_TYPES: &str = "(other)";
/// Latency samples kept per priority.
pub const LATENCY_SAMPLES: usize = 4096;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    /// Accepted into a queue.
    pub published: u64,
    /// Numbered, stored in history and handed to the subscribers.
    pub dispatched: u64,
    /// Deliveries to subscribers (one event to three subscribers counts three).
    pub delivered: u64,
    /// Dropped to make room (LOW, then NORMAL), or a LOW/NORMAL refused when full.
    pub shed: u64,
    /// HIGH/CRITICAL refused when full: the publisher was told to retry (backpressure).
    pub refused: u64,
    /// Delivery attempts repeated after a full mailbox.
    pub retried: u64,
    /// Deliveries given up after the retries (or pushed out of a full backlog).
    pub dead_lettered: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.published += o.published;
        self.dispatched += o.dispatched;
        self.delivered += o.delivered;
        self.shed += o.shed;
        self.refused += o.refused;
        self.retried += o.retried;
        self.dead_lettered += o.dead_lettered;
    }
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Published,
    Dispatched,
    Delivered(u64),
    Shed,
    Refused,
    Retried,
    DeadLettered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueDepths {
    pub capacity: usize,
    pub total: usize,
    pub critical: usize,
    pub high: usize,
    pub normal: usize,
    pub low: usize,
    /// Events waiting in the express lane (not yet in a queue).
    pub express: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryStats {
    pub len: usize,
    pub capacity: usize,
    pub oldest_seq: Option<u64>,
}

/// The dispatcher's report on itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DispatcherStats {
    pub epoch: String,
    /// Seq of the last event dispatched (0: none yet).
    pub last_seq: u64,
    pub subscribers: usize,
    pub totals: Counters,
    /// Keyed `CRITICAL`, `HIGH`, `NORMAL`, `LOW` (always all four).
    pub by_priority: BTreeMap<String, Counters>,
    /// Keyed by event type, for the types seen since start.
    pub by_type: BTreeMap<String, Counters>,
    pub queues: QueueDepths,
    /// Publish (accepted into a queue, or pushed into the express lane) to handed to
    /// every subscriber, over the most recent events: all together and per priority.
    pub latency: Percentiles,
    pub latency_by_priority: BTreeMap<String, Percentiles>,
    /// The same latency since start as a histogram per priority (for `/metrics`).
    #[serde(default)]
    pub latency_histogram: BTreeMap<String, HistogramSnapshot>,
    pub history: HistoryStats,
    /// Events waiting in subscriber backlogs for a retry.
    pub pending_retries: usize,
    /// Dead letters currently kept, and given up since start.
    pub dead_letters: usize,
    pub dead_letters_total: u64,
}

/// A ring of recent latencies, nanoseconds.
struct Samples {
    ring: Vec<u64>,
    next: usize,
}

impl Samples {
    fn new() -> Self {
        Self { ring: Vec::with_capacity(LATENCY_SAMPLES), next: 0 }
    }

    fn push(&mut self, nanos: u64) {
        if self.ring.len() < LATENCY_SAMPLES {
            self.ring.push(nanos);
        } else {
            self.ring[self.next] = nanos;
            self.next = (self.next + 1) % LATENCY_SAMPLES;
        }
    }
}

fn percentiles(samples: &mut [u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let ms = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        Some(samples[i.min(samples.len() - 1)] as f64 / 1e6)
    };
    Percentiles { samples: samples.len(), p50_ms: ms(0.50), p90_ms: ms(0.90), p99_ms: ms(0.99), max_ms: ms(1.0) }
}

/// The counters and samples; the core turns them into `DispatcherStats`.
pub(crate) struct StatsCollector {
    kinds: [Counters; EventKind::ALL.len()],
    modules: HashMap<String, Counters>,
    other: Counters,
    priorities: [Counters; 4],
    latency: [Samples; 4],
    histograms: [Histogram; 4],
}

impl StatsCollector {
    pub(crate) fn new() -> Self {
        Self {
            kinds: [Counters::default(); EventKind::ALL.len()],
            modules: HashMap::new(),
            other: Counters::default(),
            priorities: [Counters::default(); 4],
            latency: [Samples::new(), Samples::new(), Samples::new(), Samples::new()],
            histograms: std::array::from_fn(|_| Histogram::new(FAST_BUCKETS)),
        }
    }

    // `entry()` would allocate the key on every call; a type seen before must not.
    #[allow(clippy::map_entry)]
    fn type_counters(&mut self, kind: Option<EventKind>, kind_str: &str) -> &mut Counters {
        match kind {
            Some(k) => &mut self.kinds[k as usize],
            None => {
                if self.modules.contains_key(kind_str) {
                    self.modules.get_mut(kind_str).unwrap_or(&mut self.other)
                } else if self.modules.len() < MAX_MODULE_TYPES {
                    self.modules.entry(kind_str.to_owned()).or_default()
                } else {
                    &mut self.other
                }
            }
        }
    }

    pub(crate) fn count(&mut self, kind: Option<EventKind>, kind_str: &str, p: Priority, what: Count) {
        let bump = |c: &mut Counters| match what {
            Count::Published => c.published += 1,
            Count::Dispatched => c.dispatched += 1,
            Count::Delivered(n) => c.delivered += n,
            Count::Shed => c.shed += 1,
            Count::Refused => c.refused += 1,
            Count::Retried => c.retried += 1,
            Count::DeadLettered => c.dead_lettered += 1,
        };
        bump(self.type_counters(kind, kind_str));
        bump(&mut self.priorities[p as usize]);
    }

    pub(crate) fn latency(&mut self, p: Priority, d: Duration) {
        self.latency[p as usize].push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.histograms[p as usize].observe(d);
    }

    /// Fills the counter and latency parts of a report.
    pub(crate) fn report_into(&self, r: &mut DispatcherStats) {
        r.totals = Counters::default();
        r.by_priority.clear();
        r.latency_by_priority.clear();
        r.latency_histogram.clear();
        let mut all = Vec::with_capacity(LATENCY_SAMPLES * 4);
        for p in Priority::ALL {
            let c = self.priorities[p as usize];
            r.totals.add(&c);
            r.by_priority.insert(p.as_str().to_owned(), c);
            let mut s = self.latency[p as usize].ring.clone();
            all.extend_from_slice(&s);
            r.latency_by_priority.insert(p.as_str().to_owned(), percentiles(&mut s));
            r.latency_histogram.insert(p.as_str().to_owned(), self.histograms[p as usize].snapshot());
        }
        r.latency = percentiles(&mut all);
        r.by_type.clear();
        for k in EventKind::ALL {
            let c = self.kinds[k as usize];
            if c != Counters::default() {
                r.by_type.insert(k.as_str().to_owned(), c);
            }
        }
        for (name, c) in &self.modules {
            r.by_type.insert(name.clone(), *c);
        }
        if self.other != Counters::default() {
            r.by_type.insert(OTHER_TYPES.to_owned(), self.other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_report() -> DispatcherStats {
        DispatcherStats {
            epoch: "e".into(),
            last_seq: 0,
            subscribers: 0,
            totals: Counters::default(),
            by_priority: BTreeMap::new(),
            by_type: BTreeMap::new(),
            queues: QueueDepths { capacity: 1, total: 0, critical: 0, high: 0, normal: 0, low: 0, express: 0 },
            latency: Percentiles::default(),
            latency_by_priority: BTreeMap::new(),
            latency_histogram: BTreeMap::new(),
            history: HistoryStats { len: 0, capacity: 1, oldest_seq: None },
            pending_retries: 0,
            dead_letters: 0,
            dead_letters_total: 0,
        }
    }

    #[test]
    fn counts_per_type_and_priority() {
        let mut s = StatsCollector::new();
        s.count(Some(EventKind::NodeUpdated), "node.updated", Priority::Low, Count::Shed);
        s.count(Some(EventKind::NodeUpdated), "node.updated", Priority::Low, Count::Shed);
        s.count(None, "alert.raised", Priority::Normal, Count::Delivered(3));
        let mut r = empty_report();
        s.report_into(&mut r);
        assert_eq!(r.by_type["node.updated"].shed, 2);
        assert_eq!(r.by_type["alert.raised"].delivered, 3);
        assert_eq!(r.by_priority["LOW"].shed, 2);
        assert_eq!(r.by_priority.len(), 4);
        assert_eq!(r.totals.shed, 2);
        assert_eq!(r.totals.delivered, 3);
    }

    #[test]
    fn module_types_are_bounded() {
        let mut s = StatsCollector::new();
        for i in 0..MAX_MODULE_TYPES + 10 {
            s.count(None, &format!("m{i}.x"), Priority::Normal, Count::Published);
        }
        let mut r = empty_report();
        s.report_into(&mut r);
        assert_eq!(r.by_type.len(), MAX_MODULE_TYPES + 1);
        assert_eq!(r.by_type[OTHER_TYPES].published, 10);
    }

    #[test]
    fn latency_percentiles_come_from_a_bounded_sample() {
        let mut s = StatsCollector::new();
        for i in 1..=(LATENCY_SAMPLES as u64 + 100) {
            s.latency(Priority::Critical, Duration::from_micros(i));
        }
        let mut r = empty_report();
        s.report_into(&mut r);
        let c = &r.latency_by_priority["CRITICAL"];
        assert_eq!(c.samples, LATENCY_SAMPLES);
        assert!(c.p50_ms.unwrap() > 2.0 && c.p99_ms.unwrap() < c.max_ms.unwrap() + 1e-9);
        assert_eq!(r.latency_by_priority["LOW"].samples, 0);
        assert_eq!(r.latency.samples, LATENCY_SAMPLES);
    }
}

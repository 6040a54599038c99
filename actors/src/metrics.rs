//! `Histogram`: a plain fixed-bucket histogram (Prometheus style: seconds, cumulative
//! buckets on export) that the actors keep next to their own statistics, so `/metrics`
//! can expose latency distributions without a second count. The dispatcher keeps one per
//! priority (publish to delivered), each connector one per GNS3 operation.
//!
//! Recording is a bound search and two additions: cheap enough for the dispatcher's hot
//! path. The bounds are static slices so every histogram of a kind shares them.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// Bounds (seconds) for in-process latencies: the dispatcher's publish-to-delivered time.
pub const FAST_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Bounds (seconds) for network calls: HTTP requests served, calls to GNS3.
pub const CALL_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is past every bound (`+Inf`).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram as reported: cumulative counts per upper bound, `+Inf` being `count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct HistogramSnapshot {
    /// Upper bounds, seconds.
    pub bounds: Vec<f64>,
    /// Observations at or below each bound (cumulative), same length as `bounds`.
    pub cumulative: Vec<u64>,
    /// Sum of the observations, seconds.
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, d: Duration) {
        self.observe_secs(d.as_secs_f64());
    }

    pub fn observe_secs(&mut self, secs: f64) {
        let secs = if secs.is_finite() && secs > 0.0 { secs } else { 0.0 };
        let i = self.bounds.partition_point(|b| *b < secs);
        self.counts[i] += 1;
        self.sum += secs;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut acc = 0;
        let cumulative = self.counts[..self.bounds.len()]
            .iter()
            .map(|c| {
                acc += c;
                acc
            })
            .collect();
        HistogramSnapshot { bounds: self.bounds.to_vec(), cumulative, sum: self.sum, count: self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe_secs(0.1); // on the bound: counted in it (le = less or equal)
        h.observe_secs(0.5);
        h.observe_secs(3.0);
        h.observe_secs(f64::NAN); // counted as 0
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![2, 3]);
        assert_eq!(s.count, 4);
        assert!((s.sum - 3.6).abs() < 1e-9);
    }
}

//! Prometheus metrics (`GET /metrics`). Most of what is exposed is counted once, where it
//! happens, by the part that owns it (the dispatcher's event statistics, the cache's hit
//! and miss counters, each connector's call statistics and restarts, the WebSocket and
//! auth counters); `crate::http::routes::metrics` asks them at scrape time and `text.rs` writes the text
//! format. What has no other owner is kept here in `Metrics`: the HTTP request
//! durations (recorded by the middleware in `crate::startup`, by matched route pattern so a
//! path full of ids is one series). Connected modules are read from the modules registry.
//!
//! A std `Mutex` guards the HTTP histograms: held for one map lookup and two additions
//! per request, never across an await. The series are bounded: route patterns come from
//! the router, methods outside the standard ones are counted as `other`.

pub mod text;

use gns3_central_actors::metrics::{Histogram, HistogramSnapshot, CALL_BUCKETS};
use std::collections::BTreeMap;

use std::sync::Mutex;
use std::time::Duration;

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "(unmatched)";

/// One HTTP series: method, route pattern, status.
type HttpKey = (&'static str, String, u16);

#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<HttpKey, Histogram>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request served: `route` is the matched pattern (`None`: no route).
    pub fn record_http(&self, method: &str, route: Option<&str>, status: u16, took: Duration) {
        let method = bounded_method(method);
        let route = route.unwrap_or(UNMATCHED).to_owned();
        let mut map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((method, route, status)).or_insert_with(|| Histogram::new(CALL_BUCKETS)).observe(took);
    }

    /// The HTTP series: (method, route, status) and their durations.
    pub fn http_snapshot(&self) -> Vec<(HttpKey, HistogramSnapshot)> {
        let map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, h)| (k.clone(), h.snapshot())).collect()
    }
}

fn bounded_method(m: &str) -> &'static str {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN.iter().find(|k| k.eq_ignore_ascii_case(m)).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_series_are_bounded_by_pattern_and_method() {
        let m = Metrics::new();
        m.record_http("GET", Some("/api/v2/servers/{server}"), 200, Duration::from_millis(2));
        m.record_http("GET", Some("/api/v2/servers/{server}"), 200, Duration::from_millis(3));
        m.record_http("BREW", None, 404, Duration::from_millis(1));
        let snap = m.http_snapshot();
        assert_eq!(snap.len(), 2);
        let (k, h) = &snap[0];
        assert_eq!((k.0, k.1.as_str(), k.2, h.count), ("GET", "/api/v2/servers/{server}", 200, 2));
        assert_eq!((snap[1].0 .0, snap[1].0 .1.as_str()), ("other", UNMATCHED));
    }
}

//! `CircuitBreaker`: the closed / open / half-open state machine in front of one GNS3
//! server, as a plain struct. Time is passed in (`now`), so tests drive it with a fake
//! clock and the connector with `Instant::now()`.
//!
//! Only transport failures count (no connection, timeout): an answer from GNS3, even a
//! 404 or 409, proves the connection works. After `failure_threshold` consecutive
//! failures the circuit opens and calls are refused for `open_secs`; then up to
//! `half_open_probes` calls are let through, and that many successes close it again
//! while one failure opens it anew. The connector's own reconnection probe reports its
//! success with `probe_succeeded`, which counts as a half-open success even before
//! `open_secs` has passed: GNS3 answering again is the best evidence there is.

use std::time::{Duration, Instant};

use super::config::BreakerConfig;
use super::status::{CircuitState, CircuitStatus};

/// A change of state, returned so the caller can log it and emit an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { successes: u32, in_flight: u32 },
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    cfg: BreakerConfig,
    state: State,
    consecutive_failures: u32,
    times_opened: u64,
}

/// How long a caller refused in half-open state (probes already in flight) should wait.
const HALF_OPEN_RETRY: Duration = Duration::from_secs(1);

impl CircuitBreaker {
    pub fn new(cfg: BreakerConfig) -> Self {
        Self { cfg, state: State::Closed, consecutive_failures: 0, times_opened: 0 }
    }

    /// May a call go to GNS3 now? `Err(retry_after)` when the circuit refuses it. A call
    /// that is admitted must later be reported with `on_success` or `on_failure`.
    pub fn check(&mut self, now: Instant) -> Result<Option<Transition>, Duration> {
        let mut transition = None;
        if let State::Open { until } = self.state {
            if now < until {
                return Err(until - now);
            }
            self.state = State::HalfOpen { successes: 0, in_flight: 0 };
            transition = Some(Transition::HalfOpened);
        }
        if let State::HalfOpen { in_flight, .. } = &mut self.state {
            if *in_flight >= self.cfg.half_open_probes {
                return Err(HALF_OPEN_RETRY);
            }
            *in_flight += 1;
        }
        Ok(transition)
    }

    /// GNS3 answered an admitted call.
    pub fn on_success(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = 0;
        match &mut self.state {
            State::Closed => None,
            State::HalfOpen { in_flight, .. } => {
                *in_flight = in_flight.saturating_sub(1);
                self.count_probe_success()
            }
            // A call admitted before the circuit opened came back fine.
            State::Open { .. } => self.probe_succeeded(now),
        }
    }

    /// An admitted call could not reach GNS3.
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            State::Closed if self.consecutive_failures >= self.cfg.failure_threshold => Some(self.open(now)),
            State::HalfOpen { .. } => Some(self.open(now)),
            _ => None,
        }
    }

    /// The connector's reconnection probe reached GNS3: one half-open success, whatever
    /// time is left of the open period.
    pub fn probe_succeeded(&mut self, _now: Instant) -> Option<Transition> {
        self.consecutive_failures = 0;
        match self.state {
            State::Closed => None,
            State::Open { .. } => {
                self.state = State::HalfOpen { successes: 0, in_flight: 0 };
                // Reported as Closed when the one probe was enough, else HalfOpened.
                self.count_probe_success().or(Some(Transition::HalfOpened))
            }
            State::HalfOpen { .. } => self.count_probe_success(),
        }
    }

    /// The connection state is dropped (actor restart): back to closed, counters kept.
    pub fn reset(&mut self) {
        self.state = State::Closed;
        self.consecutive_failures = 0;
    }

    fn count_probe_success(&mut self) -> Option<Transition> {
        if let State::HalfOpen { successes, .. } = &mut self.state {
            *successes += 1;
            if *successes >= self.cfg.half_open_probes {
                self.state = State::Closed;
                return Some(Transition::Closed);
            }
        }
        None
    }

    fn open(&mut self, now: Instant) -> Transition {
        self.state = State::Open { until: now + self.cfg.open_duration() };
        self.times_opened += 1;
        Transition::Opened
    }

    pub fn state(&self) -> CircuitState {
        match self.state {
            State::Closed => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn status(&self, now: Instant) -> CircuitStatus {
        CircuitStatus {
            state: self.state(),
            consecutive_failures: self.consecutive_failures,
            times_opened: self.times_opened,
            retry_after_secs: match self.state {
                State::Open { until } => Some(until.saturating_duration_since(now).as_secs_f64()),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_secs: f64, probes: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig { failure_threshold: threshold, open_secs, half_open_probes: probes })
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = breaker(3, 5.0, 1);
        for _ in 0..2 {
            assert_eq!(b.check(t0), Ok(None));
            assert_eq!(b.on_failure(t0), None);
        }
        assert_eq!(b.state(), CircuitState::Closed);
        b.check(t0).unwrap();
        assert_eq!(b.on_failure(t0), Some(Transition::Opened));
        assert_eq!(b.state(), CircuitState::Open);
        let status = b.status(t0 + secs(1.0));
        assert_eq!((status.times_opened, status.consecutive_failures), (1, 3));
        assert!((status.retry_after_secs.unwrap() - 4.0).abs() < 1e-6);
        // Refused with the time left.
        assert_eq!(b.check(t0 + secs(2.0)), Err(secs(3.0)));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = breaker(2, 5.0, 1);
        b.check(t0).unwrap();
        b.on_failure(t0);
        b.check(t0).unwrap();
        b.on_success(t0);
        b.check(t0).unwrap();
        assert_eq!(b.on_failure(t0), None, "failures must be consecutive");
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn half_open_lets_a_limited_number_of_probes_through() {
        let t0 = Instant::now();
        let mut b = breaker(1, 5.0, 2);
        b.check(t0).unwrap();
        b.on_failure(t0);
        let later = t0 + secs(5.0);
        assert_eq!(b.check(later), Ok(Some(Transition::HalfOpened)));
        assert_eq!(b.check(later), Ok(None));
        assert_eq!(b.check(later), Err(HALF_OPEN_RETRY), "only two probes at a time");
        assert_eq!(b.on_success(later), None);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.on_success(later), Some(Transition::Closed));
        assert_eq!(b.check(later), Ok(None));
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_a_full_period() {
        let t0 = Instant::now();
        let mut b = breaker(1, 5.0, 1);
        b.check(t0).unwrap();
        b.on_failure(t0);
        let t1 = t0 + secs(6.0);
        b.check(t1).unwrap();
        assert_eq!(b.on_failure(t1), Some(Transition::Opened));
        assert_eq!(b.check(t1 + secs(4.9)).unwrap_err(), secs(0.1));
        assert_eq!(b.status(t1).times_opened, 2);
    }

    #[test]
    fn the_reconnection_probe_closes_it_before_the_period_ends() {
        let t0 = Instant::now();
        let mut b = breaker(1, 30.0, 1);
        b.check(t0).unwrap();
        b.on_failure(t0);
        assert_eq!(b.probe_succeeded(t0 + secs(1.0)), Some(Transition::Closed));
        assert_eq!(b.check(t0 + secs(1.0)), Ok(None));

        let mut b = breaker(1, 30.0, 2);
        b.check(t0).unwrap();
        b.on_failure(t0);
        assert_eq!(b.probe_succeeded(t0), Some(Transition::HalfOpened));
        assert_eq!(b.probe_succeeded(t0), Some(Transition::Closed));
    }

    #[test]
    fn reset_closes_and_keeps_the_history() {
        let t0 = Instant::now();
        let mut b = breaker(1, 30.0, 1);
        b.check(t0).unwrap();
        b.on_failure(t0);
        b.reset();
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.status(t0).times_opened, 1);
    }
}

//! `Backoff`: capped exponential delays with jitter, as a plain struct. The connector uses
//! one for retries of a call (`retry.*`) and one for probing a lost server
//! (`reconnect.*`). The random part is drawn from an injectable source so tests are exact.

use std::time::Duration;

/// Delays `initial * 2^n`, capped at `max`, each spread by ±`jitter` (0.0-1.0).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Self {
        Self { initial, max: max.max(initial), jitter: jitter.clamp(0.0, 1.0), attempt: 0 }
    }

    /// The delay before retry number `attempt` (0-based), without jitter.
    pub fn base(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay for `attempt` with jitter, `unit` being a random number in [0, 1).
    /// The result never exceeds `max` and is never negative.
    pub fn jittered(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base(attempt).as_secs_f64();
        let spread = base * self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0)).min(self.max)
    }

    /// The next delay of this sequence (random jitter), advancing it.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.jittered(self.attempt, rand::random::<f64>());
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// The delay `next_delay` would give without jitter (for `Retry-After`).
    pub fn peek(&self) -> Duration {
        self.base(self.attempt)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff::new(ms(100), ms(1000), 0.0);
        let seq: Vec<_> = (0..6).map(|a| b.base(a)).collect();
        assert_eq!(seq, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert_eq!(b.base(1000), ms(1000), "huge attempt numbers neither overflow nor exceed the cap");
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let b = Backoff::new(ms(100), ms(10_000), 0.2);
        assert_eq!(b.jittered(0, 0.0), ms(80));
        assert_eq!(b.jittered(0, 0.5), ms(100));
        assert!((b.jittered(0, 0.999_999).as_secs_f64() - 0.12).abs() < 1e-4);
        // The cap holds even with jitter on top.
        let capped = Backoff::new(ms(100), ms(150), 0.5);
        assert_eq!(capped.jittered(3, 0.999), ms(150));
    }

    #[test]
    fn next_delay_advances_and_reset_starts_over() {
        let mut b = Backoff::new(ms(10), ms(1000), 0.0);
        assert_eq!((b.next_delay(), b.next_delay(), b.next_delay()), (ms(10), ms(20), ms(40)));
        assert_eq!(b.peek(), ms(80));
        assert_eq!(b.attempts(), 3);
        b.reset();
        assert_eq!(b.next_delay(), ms(10));
    }

    #[test]
    fn random_jitter_stays_in_range() {
        let mut b = Backoff::new(ms(100), ms(100), 0.3);
        for _ in 0..1000 {
            let d = b.next_delay();
            assert!(d >= ms(70) && d <= ms(100), "{d:?}");
        }
    }
}

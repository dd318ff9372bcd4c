//! Capped exponential backoff with jitter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delays for retrying a failing call: doubling from `base` up to `cap`, each
/// with up to half of it taken off at random so that many runners that lost
/// the same server do not come back in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    /// Starts at `base`, never waits more than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.subsec_nanos() as u64)
            | 1;
        Self {
            base,
            cap,
            attempt: 0,
            seed,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        self.attempt = self.attempt.saturating_add(1);
        let full = exp.min(self.cap);
        // xorshift64: enough randomness to spread retries.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 1000) as f64 / 1000.0;
        full.mul_f64(1.0 - jitter / 2.0)
    }

    /// Failures so far in this streak.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The call succeeded: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(500) && delays[0] <= Duration::from_secs(1));
        assert!(delays[3] >= Duration::from_secs(4) && delays[3] <= Duration::from_secs(8));
        for d in &delays[5..] {
            assert!(
                *d >= Duration::from_secs(15) && *d <= Duration::from_secs(30),
                "{d:?}"
            );
        }
        assert_eq!(b.attempts(), 10);
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}

//! Capped exponential backoff with jitter for transient failures.
//!
//! Drone's own client sleeps a flat 10 s, forever, and cannot be interrupted;
//! here the delay grows from [`RetryPolicy::initial_delay`] to at most
//! [`RetryPolicy::max_delay`], is jittered so that a fleet of runners does not
//! hammer a recovering server in lock-step, and the whole retry streak of one
//! call is bounded by [`RetryPolicy::max_elapsed`]. The sleeps are plain
//! `tokio::time::sleep`s, so dropping the call's future stops them at once.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The smallest delay ceiling, whatever the policy says.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// How a [`DroneManager`](crate::DroneManager) retries transient failures
/// (transport errors, HTTP 502–504, an empty 204 answer where a body was due).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Ceiling of the first delay. Default 500 ms.
    pub initial_delay: Duration,
    /// No delay is ever longer than this. Default 30 s.
    pub max_delay: Duration,
    /// Give up once a call has been failing for this long and return the last
    /// error; `None` retries until the caller drops the call. Default 10 min,
    /// long enough to ride out a server restart, short enough that a stage
    /// does not hang forever on a server that is gone.
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Some(Duration::from_secs(600)),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the delay before retry number `attempt + 1`:
    /// `initial_delay * 2^attempt`, capped at `max_delay`, and never under
    /// 1 ms, so zero settings never make a hot loop.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
            .max(MIN_DELAY)
    }

    /// The delay before retry number `attempt + 1`: a random point in the upper
    /// half of [`ceiling`](Self::ceiling) ("equal jitter"), so it always grows
    /// and never exceeds `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            random_u64() % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// A random number from the standard library's per-instance hash keys: good
/// enough for jitter, and no extra dependency.
fn random_u64() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: None,
        };
        assert_eq!(policy.ceiling(0), Duration::from_millis(100));
        assert_eq!(policy.ceiling(1), Duration::from_millis(200));
        assert_eq!(policy.ceiling(3), Duration::from_millis(800));
        assert_eq!(policy.ceiling(4), Duration::from_secs(1));
        assert_eq!(policy.ceiling(200), Duration::from_secs(1));
    }

    #[test]
    fn delay_stays_in_the_upper_half_of_the_ceiling() {
        let policy = RetryPolicy::default();
        for attempt in 0..40 {
            let ceiling = policy.ceiling(attempt);
            for _ in 0..20 {
                let delay = policy.delay(attempt);
                assert!(delay >= ceiling / 2, "{delay:?} < half of {ceiling:?}");
                assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
                assert!(delay <= policy.max_delay);
            }
        }
    }

    #[test]
    fn zero_settings_still_pause() {
        let policy = RetryPolicy {
            initial_delay: Duration::ZERO,
            max_delay: Duration::from_secs(1),
            max_elapsed: None,
        };
        assert_eq!(policy.ceiling(0), MIN_DELAY);
        assert_eq!(policy.ceiling(10), MIN_DELAY);
        let no_cap = RetryPolicy {
            max_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(no_cap.ceiling(3), MIN_DELAY);
    }

    #[test]
    fn delay_is_jittered() {
        let policy = RetryPolicy::default();
        let delays: std::collections::HashSet<_> = (0..20).map(|_| policy.delay(6)).collect();
        assert!(delays.len() > 1, "20 delays were all equal: {delays:?}");
    }
}

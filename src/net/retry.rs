//! [`RetryPolicy`]: how often and how patiently a failed request is retried.

use std::time::Duration;

use super::NetError;

/// Exponential backoff with a cap. The loop that applies it lives in the
/// downloader, which sleeps on the [`Spawn`](crate::rt::Spawn) timer and can
/// be cancelled during the sleep.
///
/// Defaults: 3 retries (4 attempts), 100 ms base, 5 s cap. The first retry
/// is immediate; retry `n ≥ 1` waits `min(base × 2^(n-1), cap)`.
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::net::RetryPolicy;
/// let p = RetryPolicy::default();
/// let ms: Vec<u128> = (0..8).map(|n| p.delay_for_attempt(n).as_millis()).collect();
/// assert_eq!(ms, [0, 100, 200, 400, 800, 1600, 3200, 5000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// Delay before the second retry; doubles after.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy with the given numbers.
    pub fn new(max_retries: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            max_delay,
        }
    }

    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The wait before retry number `attempt` (0-based: the wait after the
    /// first failure is `delay_for_attempt(0)`, which is zero).
    pub fn delay_for_attempt(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Whether failure `err` after `attempt` retries (0-based) should be retried.
    ///
    /// ```
    /// use kithara_stream::net::{NetError, RetryPolicy};
    /// let p = RetryPolicy::default();
    /// let t = NetError::Timeout { kind: kithara_stream::net::TimeoutKind::Headers, url: url::Url::parse("http://127.0.0.1/").unwrap() };
    /// assert!((0..3).all(|a| p.should_retry(a, &t)));
    /// assert!(!p.should_retry(3, &t));
    /// assert!(!p.should_retry(0, &NetError::Cancelled));
    /// ```
    pub fn should_retry(&self, attempt: u32, err: &NetError) -> bool {
        attempt < self.max_retries && err.is_retryable()
    }
}

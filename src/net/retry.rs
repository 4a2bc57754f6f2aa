//! [`RetryPolicy`]: how long and how patiently a failed request is retried.

use std::time::Duration;

use super::NetError;

/// Default [`RetryPolicy::budget`]: 40 s. With the 4 s cap between tries
/// this rides out any outage of up to 36 s (the acceptance figure is 30 s).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(40);
/// Default [`RetryPolicy::base_delay`]: 100 ms.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(100);
/// Default [`RetryPolicy::max_delay`]: 4 s.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(4);

/// Retries for a **duration**, with exponential backoff and a cap. The loop
/// that applies it lives in the downloader, which sleeps on the
/// [`Spawn`](crate::rt::Spawn) timer and can be cancelled during the sleep.
///
/// A run of failures may go on retrying while the time since its first
/// failure, plus the next delay, stays within [`budget`](Self::budget) (and,
/// if set, while fewer than [`max_retries`](Self::max_retries) retries were
/// made). **Progress renews it**: a body that delivers bytes after a resume
/// starts the next run of failures with the whole budget again, so a long
/// stream on a flaky link does not fail on its fourth drop.
///
/// It applies to the retries before a response ([`DownloaderConfig`]'s
/// establish loop; before the server's first answer the shorter
/// `connect_timeout` bounds them) and to the resumes after a body broke.
///
/// Defaults: budget [`DEFAULT_RETRY_BUDGET`] (40 s), first retry at once,
/// then [`DEFAULT_RETRY_BASE`] (100 ms) doubling up to
/// [`DEFAULT_RETRY_CAP`] (4 s), no count limit. Retry `n ≥ 1` waits
/// `min(base × 2^(n-1), cap)`.
///
/// [`DownloaderConfig`]: crate::dl::DownloaderConfig
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::net::RetryPolicy;
/// let p = RetryPolicy::default();
/// let ms: Vec<u128> = (0..8).map(|n| p.delay_for_attempt(n).as_millis()).collect();
/// assert_eq!(ms, [0, 100, 200, 400, 800, 1600, 3200, 4000]);
/// assert_eq!(p.budget, Duration::from_secs(40));
/// // A shorter budget, still no count limit.
/// let quick = RetryPolicy::for_duration(Duration::from_secs(2));
/// assert_eq!(quick.max_retries, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long a run of failures may go on being retried, from its first
    /// failure (renewed by progress). Zero: never retry.
    pub budget: Duration,
    /// Delay before the second retry; doubles after.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// An optional cap on the retries of one run of failures (`None`: only
    /// the budget limits them).
    pub max_retries: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            budget: DEFAULT_RETRY_BUDGET,
            base_delay: DEFAULT_RETRY_BASE,
            max_delay: DEFAULT_RETRY_CAP,
            max_retries: None,
        }
    }
}

impl RetryPolicy {
    /// At most `max_retries` retries per run of failures (within the default
    /// budget), with the given backoff.
    pub fn new(max_retries: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            base_delay,
            max_delay,
            max_retries: Some(max_retries),
            ..Self::default()
        }
    }

    /// Retries for `budget` per run of failures, the default backoff, no
    /// count limit.
    pub fn for_duration(budget: Duration) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Never retry.
    pub fn none() -> Self {
        Self {
            budget: Duration::ZERO,
            max_retries: Some(0),
            ..Self::default()
        }
    }

    /// Sets [`budget`](Self::budget).
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
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

    /// Whether failure `err` after `attempt` retries (0-based) of this run
    /// may be retried, by count and kind only (the budget is checked by
    /// [`allows`](Self::allows)).
    ///
    /// ```
    /// use kithara_stream::net::{NetError, RetryPolicy};
    /// use std::time::Duration;
    /// let p = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(1));
    /// let t = NetError::Timeout { kind: kithara_stream::net::TimeoutKind::Headers, url: url::Url::parse("http://127.0.0.1/").unwrap() };
    /// assert!((0..3).all(|a| p.should_retry(a, &t)));
    /// assert!(!p.should_retry(3, &t));
    /// assert!(!p.should_retry(0, &NetError::Cancelled));
    /// ```
    pub fn should_retry(&self, attempt: u32, err: &NetError) -> bool {
        self.max_retries.is_none_or(|m| attempt < m) && err.is_retryable()
    }

    /// Whether retry number `attempt` (0-based) of a run of failures whose
    /// first failure was `elapsed` ago may be made after `err`: the kind is
    /// retryable, the count allows it, and `elapsed` plus the delay before
    /// the retry stays within the budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kithara_stream::net::{NetError, RetryPolicy, TimeoutKind};
    /// let p = RetryPolicy::for_duration(Duration::from_secs(30));
    /// let t = NetError::Timeout { kind: TimeoutKind::Inactivity, url: url::Url::parse("http://127.0.0.1/").unwrap() };
    /// assert!(p.allows(50, Duration::from_secs(20), &t));
    /// assert!(!p.allows(50, Duration::from_secs(29), &t)); // + a 4 s delay
    /// ```
    pub fn allows(&self, attempt: u32, elapsed: Duration, err: &NetError) -> bool {
        self.should_retry(attempt, err)
            && elapsed.saturating_add(self.delay_for_attempt(attempt)) <= self.budget
    }
}

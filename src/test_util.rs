//! Bounded waits for tests: a wake-up that never comes fails the test with a
//! message within a limit, instead of hanging the suite.
//!
//! One file, two users: the crate's unit tests (`#[cfg(test)] mod test_util`
//! in `lib.rs`) and the integration tests (`tests/support/mod.rs` and the
//! test files that include it by `#[path]`). It uses only `std` and
//! `futures`, and needs no runtime.
//!
//! - [`within`] / [`within_async`]: run blocking code (or a future, with
//!   `futures::executor::block_on`) on a helper thread and wait for it with
//!   a bound.
//! - [`spawn`] → [`Bounded`]: a thread whose result is joined with a bound,
//!   and that can be checked to be still blocked ([`Bounded::assert_blocked`]).
//! - [`eventually`]: retry a condition until it holds, with a bound.
//!
//! On a timeout the helper thread is left behind (the test fails anyway).
#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)]

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// A generous bound for "this must happen": a loaded 2-core machine meets it
/// easily, and a missed wake-up still fails in seconds.
pub const LIMIT: Duration = Duration::from_secs(10);

/// A blocking call running on its own thread, joined with a bound.
#[derive(Debug)]
pub struct Bounded<T> {
    what: String,
    rx: Receiver<Result<T, Box<dyn Any + Send>>>,
}

/// Runs `f` on a new thread named after `what`.
pub fn spawn<T: Send + 'static>(
    what: impl Into<String>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let what = what.into();
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(what.chars().take(60).collect())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn a test thread");
    Bounded { what, rx }
}

impl<T> Bounded<T> {
    /// The thread's result; panics if it has not finished within `limit`
    /// (a missed wake-up), and re-raises a panic of the thread.
    pub fn join(self, limit: Duration) -> T {
        match self.rx.recv_timeout(limit) {
            Ok(Ok(t)) => t,
            Ok(Err(panic)) => resume_unwind(panic),
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: did not finish within {limit:?} (missed wake-up?)",
                    self.what
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: thread vanished without a result", self.what)
            }
        }
    }

    /// Asserts that the thread is still running after `for_` (it blocks as
    /// it should rather than returning early). Also gives it time to reach
    /// its wait before the caller wakes it.
    pub fn assert_blocked(&self, for_: Duration) {
        match self.rx.recv_timeout(for_) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Ok(_)) => panic!("{}: returned before it was woken", self.what),
            Ok(Err(panic)) => resume_unwind(panic),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: thread vanished without a result", self.what)
            }
        }
    }
}

/// Runs `f` on a helper thread and returns its result; panics with `what`
/// if it has not finished within `limit`.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    spawn(what, f).join(limit)
}

/// Drives `fut` with `futures::executor::block_on` on a helper thread;
/// panics with `what` if it has not completed within `limit`.
pub fn within_async<F>(limit: Duration, what: &str, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    within(limit, what, move || futures::executor::block_on(fut))
}

/// Re-checks `cond` (every millisecond) until it holds; panics with `what`
/// if it does not within `limit`.
pub fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not observed within {limit:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

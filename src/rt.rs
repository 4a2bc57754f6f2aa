//! The executor seam: how the core runs tasks and measures time without
//! knowing which async runtime it is on.
//!
//! The crate never spawns a thread of its own for async work and never names a
//! runtime. Everything that must run in the background (the downloader loop,
//! fetch tasks) is handed to a [`Spawn`] implementation, and every timeout,
//! backoff and throttle is built on [`Spawn::sleep`], so timeouts behave the same
//! on every executor.
//!
//! Backends for tokio, smol and async-std live in [`crate::backends`]; any
//! other executor plugs in by implementing this one trait. With the
//! `test-util` feature, `ThreadSpawn` runs tasks on plain threads and needs
//! no runtime at all (for tests and examples).

#[cfg(feature = "test-util")]
mod thread;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use thread::ThreadSpawn;

/// A boxed, `Send` future: the unit of work handed across the executor seam.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An executor with a timer.
///
/// Object safe; the core holds it as `Arc<dyn Spawn>`.
///
/// # Contract
/// - [`spawn`](Spawn::spawn) starts `task` in the background and returns at
///   once. The task must be polled to completion (or until the executor shuts
///   down); the core never joins it, so a detached task is what is wanted.
/// - [`sleep`](Spawn::sleep) returns a future that completes once `duration`
///   has elapsed. It must be cancel-safe (dropping it early is fine) and it must
///   work when polled from any task of this executor.
///
/// # Example: a third executor in a few lines
/// ```
/// use std::time::Duration;
/// use kithara_stream::rt::{BoxFuture, Spawn};
///
/// /// futures' thread pool, with one timer thread per sleep (fine for a demo).
/// struct ThreadPoolSpawn(futures::executor::ThreadPool);
///
/// impl Spawn for ThreadPoolSpawn {
///     fn spawn(&self, task: BoxFuture<'static, ()>) {
///         self.0.spawn_ok(task);
///     }
///     fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
///         let (tx, rx) = futures::channel::oneshot::channel::<()>();
///         std::thread::spawn(move || {
///             std::thread::sleep(duration);
///             let _ = tx.send(());
///         });
///         Box::pin(async move {
///             let _ = rx.await;
///         })
///     }
/// }
///
/// let rt = ThreadPoolSpawn(futures::executor::ThreadPool::new().unwrap());
/// futures::executor::block_on(rt.sleep(Duration::from_millis(1)));
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` in the background, detached.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// A future that completes at `deadline` (at once if it has passed).
    ///
    /// The default sleeps for the time left from now, through
    /// [`sleep`](Self::sleep); override it when the executor's timer takes
    /// deadlines (as hyper's `Timer::sleep_until`). The core's deadlines
    /// that move (the body inactivity timeout) are set with it once and
    /// re-armed only when one fires before its deadline moved on.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }

    /// Runs blocking `work` (a cache file's `fdatasync`, which takes tens
    /// of ms for a big file) where it does not hold up async tasks, detached.
    /// The default runs it at once on the calling thread; the bundled
    /// backends hand it to their runtime's blocking pool. Override it if
    /// your executor has one.
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        work();
    }
}

impl<S: Spawn + ?Sized> Spawn for Arc<S> {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        (**self).spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        (**self).sleep_until(deadline)
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        (**self).spawn_blocking(work);
    }
}

/// The error of [`timeout`]: the deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut` until it completes or `duration` elapses on `rt`'s timer,
/// whichever comes first. The future is dropped on expiry.
///
/// ```
/// # use std::time::Duration;
/// # use kithara_stream::rt::timeout;
/// # let rt = kithara_stream::rt::ThreadSpawn::new();
/// use futures::executor::block_on;
///
/// let never = futures::future::pending::<()>();
/// assert!(block_on(timeout(&rt, Duration::from_millis(10), never)).is_err());
/// assert_eq!(block_on(timeout(&rt, Duration::from_secs(60), async { 7 })), Ok(7));
/// ```
pub async fn timeout<S, F>(rt: &S, duration: Duration, fut: F) -> Result<F::Output, Elapsed>
where
    S: Spawn + ?Sized,
    F: Future,
{
    use futures::future::{Either, select};
    let sleep = rt.sleep(duration);
    let fut = std::pin::pin!(fut);
    match select(fut, sleep).await {
        Either::Left((out, _)) => Ok(out),
        Either::Right(((), _)) => Err(Elapsed),
    }
}

/// A deadline that moves, on a [`Spawn`] timer (the role of hyper's
/// `Sleep::reset` and quinn's `AsyncTimer::reset`): [`reset`](Self::reset)
/// is a field write; a timer ([`Spawn::sleep_until`]) is armed only when
/// the deadline is polled, and one that fires before a deadline that moved
/// later is re-armed for that deadline. Moving it earlier drops the armed
/// timer.
pub(crate) struct Deadline {
    at: Instant,
    timer: Option<BoxFuture<'static, ()>>,
}

impl Deadline {
    pub(crate) fn new(at: Instant) -> Self {
        Self { at, timer: None }
    }

    /// Moves the deadline to `at`.
    pub(crate) fn reset(&mut self, at: Instant) {
        if at < self.at {
            self.timer = None;
        }
        self.at = at;
    }

    /// `Ready` once the deadline has passed; `spawn` arms the timer.
    pub(crate) fn poll_expired(&mut self, spawn: &dyn Spawn, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let timer = match &mut self.timer {
                Some(t) => t,
                None => {
                    if Instant::now() >= self.at {
                        return Poll::Ready(());
                    }
                    self.timer.insert(spawn.sleep_until(self.at))
                }
            };
            futures::ready!(timer.as_mut().poll(cx));
            // Never poll a finished timer again; arm a new one if the
            // deadline moved on since this one was set.
            self.timer = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every `sleep_until`; its timers never fire.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Instant>>);

    impl Spawn for Recorder {
        fn spawn(&self, _: BoxFuture<'static, ()>) {}

        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            Box::pin(futures::future::pending())
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
            self.0.lock().unwrap().push(deadline);
            self.sleep(Duration::ZERO)
        }
    }

    #[test]
    fn a_deadline_arms_one_timer_and_moves_without_another() {
        let spawn = Recorder::default();
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let at = Instant::now() + Duration::from_secs(3600);
        let mut d = Deadline::new(at);
        assert!(d.poll_expired(&spawn, &mut cx).is_pending());
        assert_eq!(
            *spawn.0.lock().unwrap(),
            vec![at],
            "armed once, at the deadline"
        );
        // Moved later: a field write, the armed timer stays.
        d.reset(at + Duration::from_secs(1));
        assert!(d.poll_expired(&spawn, &mut cx).is_pending());
        assert_eq!(spawn.0.lock().unwrap().len(), 1, "no second timer");
        // Moved earlier, into the past: expired at once, no timer needed.
        d.reset(Instant::now() - Duration::from_millis(1));
        assert!(d.poll_expired(&spawn, &mut cx).is_ready());
        assert_eq!(spawn.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_default_sleep_until_sleeps_for_the_time_left() {
        struct Sleeps(Mutex<Vec<Duration>>);
        impl Spawn for Sleeps {
            fn spawn(&self, _: BoxFuture<'static, ()>) {}
            fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
                self.0.lock().unwrap().push(d);
                Box::pin(async {})
            }
        }
        let s = Sleeps(Mutex::new(Vec::new()));
        futures::executor::block_on(s.sleep_until(Instant::now() - Duration::from_secs(1)));
        futures::executor::block_on(s.sleep_until(Instant::now() + Duration::from_secs(60)));
        let got = s.0.lock().unwrap().clone();
        assert_eq!(got[0], Duration::ZERO, "a passed deadline sleeps zero");
        assert!(
            got[1] > Duration::from_secs(50) && got[1] <= Duration::from_secs(60),
            "{got:?}"
        );
    }
}

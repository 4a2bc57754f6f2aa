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
//! other executor plugs in by implementing this one trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

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
/// # use kithara_stream::rt::{timeout, BoxFuture, Spawn};
/// # struct Now;
/// # impl Spawn for Now {
/// #     fn spawn(&self, t: BoxFuture<'static, ()>) { futures::executor::block_on(t) }
/// #     fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> { Box::pin(async {}) }
/// # }
/// // With a timer that fires at once, a never-ending future times out.
/// let r = futures::executor::block_on(timeout(&Now, Duration::from_secs(1), futures::future::pending::<()>()));
/// assert!(r.is_err());
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

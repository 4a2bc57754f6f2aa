//! [`Spawn`] + timer on tokio.

use std::time::{Duration, Instant};

use ::tokio::runtime::Handle;

use crate::rt::{BoxFuture, Spawn};

/// Runs the core's tasks on a tokio runtime and times them with tokio's timer.
///
/// The runtime must have its time driver enabled (`enable_time()` or
/// `enable_all()`; `#[tokio::main]` does). Sleeps are created inside the
/// runtime's context, so they may be polled from anywhere.
///
/// ```
/// # fn main() {
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// let spawn = kithara_stream::backends::tokio::TokioRuntime::from(rt.handle().clone());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime the caller is running on, or `None` outside a tokio runtime.
    pub fn current() -> Option<Self> {
        Handle::try_current().ok().map(Self::from)
    }

    /// The underlying runtime handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl From<Handle> for TokioRuntime {
    fn from(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Spawn for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Detached: the JoinHandle is not needed.
        drop(self.handle.spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let _ctx = self.handle.enter();
        Box::pin(::tokio::time::sleep(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let _ctx = self.handle.enter();
        Box::pin(::tokio::time::sleep_until(
            ::tokio::time::Instant::from_std(deadline),
        ))
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        drop(self.handle.spawn_blocking(work));
    }
}

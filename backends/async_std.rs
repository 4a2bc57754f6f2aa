//! [`Spawn`] + timer on async-std.

use std::time::Duration;

use crate::rt::{BoxFuture, Spawn};

/// Runs the core's tasks on async-std's global executor and times them with
/// its timer.
///
/// ```
/// use kithara_stream::rt::Spawn;
/// let rt = kithara_stream::backends::async_std::AsyncStdRuntime;
/// async_std::task::block_on(rt.sleep(std::time::Duration::from_millis(1)));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Spawn for AsyncStdRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // Dropping async-std's JoinHandle detaches the task.
        drop(::async_std::task::spawn(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(::async_std::task::sleep(duration))
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        drop(::async_std::task::spawn_blocking(work));
    }
}

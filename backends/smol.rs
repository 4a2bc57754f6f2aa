//! [`Spawn`] + timer + blocking pool on smol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rt::{BoxFuture, Spawn};

/// Runs the core's tasks on smol: on a given `smol::Executor`, or on smol's
/// global executor ([`Default`]); times them with `smol::Timer` (the
/// async-io reactor, which runs on its own thread when nothing else drives
/// it) and runs blocking work on smol's blocking pool (`smol::unblock`).
///
/// With [`SmolRuntime::global`] (the default) no set-up is needed: smol's
/// global executor starts its threads (`SMOL_THREADS`, default 1) on first
/// use. With [`SmolRuntime::from`] an `Arc<smol::Executor>`, the application
/// must drive that executor (`executor.run(...)` on threads of its own);
/// tasks spawned while nobody drives it wait until someone does.
///
/// ```
/// use kithara_stream::backends::smol::SmolRuntime;
/// use kithara_stream::rt::Spawn;
///
/// // smol's global executor:
/// smol::block_on(SmolRuntime::global().sleep(std::time::Duration::from_millis(1)));
///
/// // or an executor of the application's own, driven by the application:
/// let ex = std::sync::Arc::new(smol::Executor::new());
/// let rt = SmolRuntime::from(ex.clone());
/// smol::block_on(ex.run(rt.sleep(std::time::Duration::from_millis(1))));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<::smol::Executor<'static>>>,
}

impl SmolRuntime {
    /// Spawns on smol's global executor (`smol::spawn`).
    pub fn global() -> Self {
        Self::default()
    }

    /// The executor tasks are spawned on; `None` for smol's global one.
    pub fn executor(&self) -> Option<&Arc<::smol::Executor<'static>>> {
        self.executor.as_ref()
    }
}

impl From<Arc<::smol::Executor<'static>>> for SmolRuntime {
    fn from(executor: Arc<::smol::Executor<'static>>) -> Self {
        Self {
            executor: Some(executor),
        }
    }
}

impl Spawn for SmolRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // smol's `Task` cancels the task when dropped: detach it.
        match &self.executor {
            Some(ex) => ex.spawn(task).detach(),
            None => ::smol::spawn(task).detach(),
        }
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let timer = ::smol::Timer::after(duration);
        Box::pin(async move {
            timer.await;
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let timer = ::smol::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        ::smol::unblock(work).detach();
    }
}

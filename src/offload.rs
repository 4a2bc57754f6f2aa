//! Blocking file work (opens, syncs, sidecar writes) kept off the executor:
//! a small FIFO queue drained on [`Spawn::spawn_blocking`], with a cap on
//! how many jobs run at once, so 256 streams committing together take a few
//! blocking threads, not 256.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;

use crate::cancel::lock;
use crate::rt::Spawn;

/// Blocking jobs of one downloader running at once, at most.
pub(crate) const MAX_BLOCKING_JOBS: usize = 4;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Drainers handed to `spawn_blocking` that have not returned yet.
    running: usize,
}

/// Runs blocking jobs on a [`Spawn`]'s blocking pool, in order, at most
/// `limit` at once. Cheap to clone (one queue).
#[derive(Clone)]
pub(crate) struct Offload {
    spawn: Arc<dyn Spawn>,
    limit: usize,
    queue: Arc<Mutex<Queue>>,
}

impl fmt::Debug for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = lock(&self.queue);
        f.debug_struct("Offload")
            .field("limit", &self.limit)
            .field("queued", &q.jobs.len())
            .field("running", &q.running)
            .finish()
    }
}

impl Offload {
    pub(crate) fn new(spawn: Arc<dyn Spawn>, limit: usize) -> Self {
        Self {
            spawn,
            limit: limit.max(1),
            queue: Arc::default(),
        }
    }

    /// Queues `job`; starts a drainer if fewer than `limit` run. Never
    /// blocks (with the default `spawn_blocking`, which runs inline, the
    /// job runs here).
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let start = {
            let mut q = lock(&self.queue);
            q.jobs.push_back(Box::new(job));
            let start = q.running < self.limit;
            if start {
                q.running += 1;
            }
            start
        };
        if start {
            let queue = self.queue.clone();
            self.spawn.spawn_blocking(Box::new(move || drain(&queue)));
        }
    }

    /// Runs `job` through [`run`](Self::run) and awaits its result. `None`
    /// if the job was dropped unrun (the executor's blocking pool is gone)
    /// or panicked.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.run(move || {
            let _ = tx.send(job());
        });
        rx.await.ok()
    }
}

/// Runs queued jobs until the queue is empty. The `running` count drops
/// under the same lock that finds the queue empty, so a job queued a moment
/// later starts a new drainer: none is stranded.
fn drain(queue: &Mutex<Queue>) {
    loop {
        let job = {
            let mut q = lock(queue);
            match q.jobs.pop_front() {
                Some(job) => job,
                None => {
                    q.running -= 1;
                    return;
                }
            }
        };
        // A panicking job must not take the drainer (and the jobs queued
        // behind it) down with it.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

/// Test support: marks threads that must never do blocking file work (an
/// executor's), and records any such work done there.
#[cfg(test)]
pub(crate) mod guard {
    use std::cell::Cell;
    use std::sync::Mutex;

    thread_local! {
        static ASYNC_THREAD: Cell<bool> = const { Cell::new(false) };
    }
    static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Marks the calling thread as an executor thread.
    pub(crate) fn mark_async_thread() {
        ASYNC_THREAD.with(|c| c.set(true));
    }

    /// Blocking work `what` is about to run on the calling thread.
    pub(crate) fn blocking(what: &str) {
        if ASYNC_THREAD.with(Cell::get) {
            crate::cancel::lock(&VIOLATIONS).push(what.to_owned());
        }
    }

    /// The violations recorded so far (and clears them).
    pub(crate) fn take() -> Vec<String> {
        std::mem::take(&mut *crate::cancel::lock(&VIOLATIONS))
    }
}

/// Blocking work `what` is about to run here (a no-op outside tests).
#[inline]
pub(crate) fn note_blocking(_what: &str) {
    #[cfg(test)]
    guard::blocking(_what);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use crate::rt::BoxFuture;

    /// Each blocking job on its own thread; counts peak concurrency.
    struct Threads {
        live: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    impl Spawn for Threads {
        fn spawn(&self, _task: BoxFuture<'static, ()>) {}
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            Box::pin(std::future::pending())
        }
        fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
            let (live, peak) = (self.live.clone(), self.peak.clone());
            std::thread::spawn(move || {
                let n = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                work();
                live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    #[test]
    fn runs_every_job_with_bounded_threads() {
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let off = Offload::new(
            Arc::new(Threads {
                live: live.clone(),
                peak: peak.clone(),
            }),
            3,
        );
        let done = Arc::new(AtomicUsize::new(0));
        // From several threads at once, with a panicking job among them.
        std::thread::scope(|s| {
            for t in 0..8 {
                let (off, done) = (off.clone(), done.clone());
                s.spawn(move || {
                    for i in 0..50 {
                        let done = done.clone();
                        off.run(move || {
                            if (t, i) == (3, 7) {
                                panic!("a job that panics");
                            }
                            std::thread::sleep(Duration::from_micros(200));
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while done.load(Ordering::SeqCst) < 399 || live.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "jobs stranded: {} of 399 ran, {} drainers live",
                done.load(Ordering::SeqCst),
                live.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            peak.load(Ordering::SeqCst) <= 3,
            "peak {}",
            peak.load(Ordering::SeqCst)
        );
        assert_eq!(lock(&off.queue).running, 0);
    }

    #[test]
    fn call_returns_the_result() {
        let off = Offload::new(
            Arc::new(Threads {
                live: Arc::default(),
                peak: Arc::default(),
            }),
            1,
        );
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(futures::executor::block_on(off.call(|| 41 + 1)));
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Some(42)));
    }
}

//! [`ThreadSpawn`]: a [`Spawn`] that needs no async runtime, for tests,
//! doc examples and small programs.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use super::{BoxFuture, Spawn};

/// A [`Spawn`] on plain threads: each spawned task runs on a thread of its
/// own under `futures::executor::block_on`, each
/// [`spawn_blocking`](Spawn::spawn_blocking) job on a thread of its own, and
/// every sleep is woken by one timer thread shared by the whole process.
///
/// It needs no runtime and no setup, so a test (yours or the crate's doc
/// examples) can drive a [`Downloader`](crate::dl::Downloader) with
/// [`MemoryClient`](crate::net::MemoryClient) in one line. A thread per task
/// suits tests, where tasks are few; an application wants a pooled runtime
/// (the `tokio`, `smol` or `async-std` backends).
///
/// # Contract
/// - [`spawn`](Spawn::spawn) and `spawn_blocking` return at once; the task
///   runs to completion on its new thread, detached. They panic only when
///   the OS cannot start a thread (as `std::thread::spawn` does): dropping
///   the task unrun would break [`Spawn`]'s contract silently.
/// - [`sleep`](Spawn::sleep) and [`sleep_until`](Spawn::sleep_until)
///   complete no earlier than the deadline, woken by the timer thread (no
///   polling); they are cancel-safe (a sleep dropped early leaves nothing
///   behind on the timer) and work from any executor. A deadline too far
///   to represent never completes.
/// - A task that panics ends its own thread only: the panic hook prints the
///   message and nothing else notices (as with a detached tokio task whose
///   `JoinHandle` was dropped). Other tasks, sleeps and later spawns go on.
/// - The timer thread (`kithara-timer`) starts with the first sleep and
///   stays, blocked on a condition variable, for the life of the process.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
/// use kithara_stream::net::MemoryClient;
/// use kithara_stream::rt::{Spawn, ThreadSpawn};
///
/// let rt = ThreadSpawn::new();
/// let start = Instant::now();
/// futures::executor::block_on(rt.sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
///
/// // Drive a downloader with no runtime at all.
/// struct Idle;
/// impl Peer for Idle {}
/// let client = MemoryClient::new();
/// client.insert("http://127.0.0.1/a", &b"hello"[..]);
/// let dl = Downloader::new(DownloaderConfig::new(Arc::new(rt), Arc::new(client)));
/// let peer = dl.register(Arc::new(Idle));
/// let url = kithara_stream::url::Url::parse("http://127.0.0.1/a").unwrap();
/// let body = futures::executor::block_on(async { peer.execute(FetchCmd::get(url)).await?.body.collect().await })?;
/// assert_eq!(&body[..], b"hello");
/// # Ok::<(), kithara_stream::net::NetError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ThreadSpawn {
    // Room for knobs (thread names, stack size) without a breaking change.
    _private: (),
}

impl ThreadSpawn {
    /// A handle; all handles share the one timer thread.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Spawn for ThreadSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        detach("kithara-task", move || futures::executor::block_on(task));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        match Instant::now().checked_add(duration) {
            Some(at) => self.sleep_until(at),
            None => Box::pin(futures::future::pending()),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(Sleep {
            at: deadline,
            id: None,
        })
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        detach("kithara-blocking", work);
    }
}

/// Runs `f` on a new named thread, detached.
fn detach(name: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(f) {
        // See the contract: a task must not be dropped unrun.
        panic!("ThreadSpawn: cannot start a thread: {e}");
    }
}

/// The process-wide timer: pending sleeps by `(deadline, id)`, each with the
/// waker of its latest poll. The timer thread waits on `changed` until the
/// earliest deadline, or until a sleep earlier than all others arrives.
struct Timer {
    sleeps: Mutex<Sleeps>,
    changed: Condvar,
}

struct Sleeps {
    next_id: u64,
    wakers: BTreeMap<(Instant, u64), Waker>,
}

static TIMER: Timer = Timer {
    sleeps: Mutex::new(Sleeps {
        next_id: 0,
        wakers: BTreeMap::new(),
    }),
    changed: Condvar::new(),
};

/// The sleeps, started on first use. Nothing panics while it is held but a
/// waker's `clone`; the map stays consistent then, so a poisoned lock is
/// taken over.
fn sleeps() -> MutexGuard<'static, Sleeps> {
    static START: Once = Once::new();
    START.call_once(|| detach("kithara-timer", run_timer));
    TIMER.sleeps.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run_timer() {
    let mut sleeps = TIMER.sleeps.lock().unwrap_or_else(PoisonError::into_inner);
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        while let Some(first) = sleeps.wakers.first_entry() {
            if first.key().0 > now {
                break;
            }
            due.push(first.remove());
        }
        if !due.is_empty() {
            // Wake outside the lock: a waker may poll (and so lock) at once.
            drop(sleeps);
            due.drain(..).for_each(Waker::wake);
            sleeps = TIMER.sleeps.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let wait = sleeps
            .wakers
            .first_key_value()
            .map(|(&(at, _), _)| at.saturating_duration_since(now));
        sleeps = match wait {
            Some(wait) => {
                let waited = TIMER.changed.wait_timeout(sleeps, wait);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
            None => TIMER
                .changed
                .wait(sleeps)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// The future of [`ThreadSpawn::sleep_until`]: registered with the timer on
/// its first pending poll, removed from it when dropped.
struct Sleep {
    at: Instant,
    /// Set while registered with the timer.
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        let mut sleeps = sleeps();
        // Under the lock: the timer removes an entry only once its deadline
        // has passed, so a missing entry here means the clock says ready.
        if Instant::now() >= at {
            if let Some(id) = self.id.take() {
                sleeps.wakers.remove(&(at, id));
            }
            return Poll::Ready(());
        }
        let id = *self.id.get_or_insert_with(|| {
            sleeps.next_id += 1;
            sleeps.next_id
        });
        let key = (at, id);
        if let Some(waker) = sleeps.wakers.get_mut(&key) {
            if !waker.will_wake(cx.waker()) {
                waker.clone_from(cx.waker());
            }
        } else {
            sleeps.wakers.insert(key, cx.waker().clone());
            if sleeps.wakers.first_key_value().map(|(k, _)| *k) == Some(key) {
                TIMER.changed.notify_one();
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            sleeps().wakers.remove(&(self.at, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{LIMIT, within, within_async};
    use futures::task::{ArcWake, noop_waker_ref, waker};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};

    #[test]
    fn a_spawned_task_runs_on_a_thread_of_its_own() {
        let (tx, rx) = mpsc::channel();
        ThreadSpawn::new().spawn(Box::pin(async move {
            let _ = tx.send(thread::current().id());
        }));
        let ran_on = rx.recv_timeout(LIMIT).expect("the task ran");
        assert_ne!(ran_on, thread::current().id());
    }

    #[test]
    fn spawn_blocking_runs_off_the_calling_thread() {
        let (tx, rx) = mpsc::channel();
        ThreadSpawn::new().spawn_blocking(Box::new(move || {
            let _ = tx.send(thread::current().id());
        }));
        let ran_on = rx.recv_timeout(LIMIT).expect("the work ran");
        assert_ne!(ran_on, thread::current().id());
    }

    #[test]
    fn a_sleep_lasts_at_least_its_duration_and_wakes() {
        let rt = ThreadSpawn::new();
        for ms in [1, 20, 60] {
            let d = Duration::from_millis(ms);
            let start = Instant::now();
            within_async(LIMIT, "sleep", rt.sleep(d));
            assert!(start.elapsed() >= d, "{ms} ms sleep woke early");
        }
    }

    #[test]
    fn a_passed_deadline_is_ready_at_once_and_an_endless_one_never() {
        let rt = ThreadSpawn::new();
        let mut cx = Context::from_waker(noop_waker_ref());
        let past = Instant::now() - Duration::from_millis(1);
        assert!(rt.sleep_until(past).as_mut().poll(&mut cx).is_ready());
        assert!(rt.sleep(Duration::ZERO).as_mut().poll(&mut cx).is_ready());
        let mut endless = rt.sleep(Duration::MAX);
        assert!(endless.as_mut().poll(&mut cx).is_pending());
    }

    #[test]
    fn an_earlier_sleep_does_not_wait_for_a_later_one() {
        let rt = ThreadSpawn::new();
        let mut cx = Context::from_waker(noop_waker_ref());
        // The timer thread is now waiting for this one, an hour away ...
        let mut late = rt.sleep(Duration::from_secs(3600));
        assert!(late.as_mut().poll(&mut cx).is_pending());
        // ... and must wake early for this one.
        let start = Instant::now();
        within_async(LIMIT, "short sleep", rt.sleep(Duration::from_millis(10)));
        assert!(start.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn a_dropped_sleep_leaves_the_timer() {
        let mut sleep = Sleep {
            at: Instant::now() + Duration::from_secs(3600),
            id: None,
        };
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        let key = (sleep.at, sleep.id.expect("registered"));
        assert!(sleeps().wakers.contains_key(&key));
        drop(sleep);
        assert!(!sleeps().wakers.contains_key(&key), "still registered");
    }

    struct Count(AtomicUsize);
    impl ArcWake for Count {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_latest_waker_is_woken() {
        let (a, b) = (
            Arc::new(Count(AtomicUsize::new(0))),
            Arc::new(Count(AtomicUsize::new(0))),
        );
        let mut sleep = ThreadSpawn::new().sleep(Duration::from_millis(20));
        let wa = waker(a.clone());
        let wb = waker(b.clone());
        assert!(
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(&wa))
                .is_pending()
        );
        // Moved to another task: the new task's waker replaces the old one.
        assert!(
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(&wb))
                .is_pending()
        );
        crate::test_util::eventually(LIMIT, "b woken", || b.0.load(Ordering::SeqCst) == 1);
        assert_eq!(a.0.load(Ordering::SeqCst), 0, "the stale waker was woken");
        assert!(
            sleep
                .as_mut()
                .poll(&mut Context::from_waker(&wb))
                .is_ready()
        );
    }

    /// Many tasks with seeded random sleeps, some dropped early through
    /// `timeout`: each one finishes, none before its deadline.
    #[test]
    fn many_tasks_with_random_sleeps_all_finish() {
        const TASKS: u64 = 200;
        let rt = Arc::new(ThreadSpawn::new());
        let (tx, rx) = mpsc::channel();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..TASKS {
            // xorshift64: the same interleaving of deadlines every run.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let d = Duration::from_millis(seed % 30);
            let cut = Duration::from_millis((seed >> 8) % 30);
            let (tx, inner) = (tx.clone(), rt.clone());
            rt.spawn(Box::pin(async move {
                let start = Instant::now();
                let r = crate::rt::timeout(&*inner, cut, inner.sleep(d)).await;
                let took = start.elapsed();
                let ok = match r {
                    Ok(()) => took >= d,
                    Err(_) => took >= cut,
                };
                let _ = tx.send((i, ok));
            }));
        }
        drop(tx);
        let got = within(LIMIT, "all tasks", move || {
            let mut seen = vec![false; TASKS as usize];
            for _ in 0..TASKS {
                let (i, ok) = rx.recv().expect("a task vanished");
                assert!(ok, "task {i} woke before its deadline");
                seen[i as usize] = true;
            }
            seen
        });
        assert!(got.iter().all(|&s| s));
    }

    #[test]
    fn a_panicking_task_takes_nothing_else_down() {
        let rt = ThreadSpawn::new();
        let (tx, rx) = mpsc::channel();
        // A task asleep while another panics still wakes.
        let (tx1, sleeper) = (tx.clone(), rt.sleep(Duration::from_millis(100)));
        rt.spawn(Box::pin(async move {
            sleeper.await;
            let _ = tx1.send("sleeper");
        }));
        let (unwound_tx, unwound) = mpsc::channel::<()>();
        rt.spawn(Box::pin(async move {
            let _dropped_by_the_unwind = unwound_tx;
            panic!("a task's own bug (expected in this test)");
        }));
        assert_eq!(
            unwound.recv_timeout(LIMIT),
            Err(mpsc::RecvTimeoutError::Disconnected),
            "the panicking task did not unwind"
        );
        // The executor and its timer still serve new tasks.
        let after = rt.clone();
        rt.spawn(Box::pin(async move {
            after.sleep(Duration::from_millis(1)).await;
            let _ = tx.send("spawned after");
        }));
        let mut got = [
            rx.recv_timeout(LIMIT).expect("a task stopped"),
            rx.recv_timeout(LIMIT).expect("a task stopped"),
        ];
        got.sort_unstable();
        assert_eq!(got, ["sleeper", "spawned after"]);
    }
}

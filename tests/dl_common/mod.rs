//! Shared helpers of the `dl_*` tests: a futures-based executor with a timer
//! thread (no runtime), and HttpClient wrappers that delay, count, truncate
//! or hang. Network-free.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kithara_stream::net::{ByteStream, HttpClient, HttpRequest, HttpResponse, NetError};
use kithara_stream::rt::{BoxFuture, Spawn};

mod completions;
#[path = "../../src/test_util.rs"]
mod test_util;
#[allow(unused_imports)] // not every test binary records completions
pub use completions::{Completed, Completions};
#[allow(unused_imports)]
pub use test_util::{Bounded, eventually, spawn as bounded_thread, within, within_async};

// ---------------------------------------------------------------- timer

struct SleepState {
    deadline: Instant,
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

type Heap = BinaryHeap<Reverse<(Instant, u64, WeakSleep)>>;

struct WeakSleep(Weak<SleepState>);
impl PartialEq for WeakSleep {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for WeakSleep {}
impl PartialOrd for WeakSleep {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for WeakSleep {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

struct TimerInner {
    heap: Mutex<(Heap, u64)>,
    cv: Condvar,
}

fn timer() -> &'static Arc<TimerInner> {
    static TIMER: OnceLock<Arc<TimerInner>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let inner = Arc::new(TimerInner {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            cv: Condvar::new(),
        });
        let t = inner.clone();
        std::thread::Builder::new()
            .name("dl-test-timer".into())
            .spawn(move || {
                let mut guard = t.heap.lock().unwrap();
                loop {
                    let now = Instant::now();
                    let mut due = Vec::new();
                    while guard.0.peek().is_some_and(|Reverse((d, _, _))| *d <= now) {
                        let Reverse((_, _, w)) = guard.0.pop().unwrap();
                        due.push(w);
                    }
                    if !due.is_empty() {
                        drop(guard);
                        for w in due {
                            if let Some(s) = w.0.upgrade() {
                                s.fired.store(true, Ordering::Release);
                                if let Some(w) = s.waker.lock().unwrap().take() {
                                    w.wake();
                                }
                            }
                        }
                        guard = t.heap.lock().unwrap();
                        continue;
                    }
                    let wait = guard
                        .0
                        .peek()
                        .map(|Reverse((d, _, _))| d.saturating_duration_since(now))
                        .unwrap_or(Duration::from_millis(200));
                    guard = t.cv.wait_timeout(guard, wait).unwrap().0;
                }
            })
            .unwrap();
        inner
    })
}

/// A runtime-free sleep on the shared timer thread.
pub fn sleep(d: Duration) -> BoxFuture<'static, ()> {
    let state = Arc::new(SleepState {
        deadline: Instant::now() + d,
        fired: AtomicBool::new(false),
        waker: Mutex::new(None),
    });
    {
        let t = timer();
        let mut g = t.heap.lock().unwrap();
        g.1 += 1;
        let seq = g.1;
        g.0.push(Reverse((
            state.deadline,
            seq,
            WeakSleep(Arc::downgrade(&state)),
        )));
        t.cv.notify_one();
    }
    Box::pin(Sleep(state))
}

struct Sleep(Arc<SleepState>);
impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.load(Ordering::Acquire) || Instant::now() >= self.0.deadline {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------- executor

/// `futures::executor::ThreadPool` + the timer thread, counting live tasks.
#[derive(Clone)]
pub struct PoolSpawn {
    pool: futures::executor::ThreadPool,
    live: Arc<AtomicUsize>,
    spawned: Arc<AtomicUsize>,
}

struct LiveGuard(Arc<AtomicUsize>);
impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PoolSpawn {
    pub fn new() -> Self {
        Self {
            pool: futures::executor::ThreadPool::builder()
                .pool_size(4)
                .create()
                .unwrap(),
            live: Arc::new(AtomicUsize::new(0)),
            spawned: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Tasks spawned and not yet finished (or dropped).
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub fn spawned(&self) -> usize {
        self.spawned.load(Ordering::Acquire)
    }
}

impl Spawn for PoolSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.live.fetch_add(1, Ordering::AcqRel);
        self.spawned.fetch_add(1, Ordering::AcqRel);
        let guard = LiveGuard(self.live.clone());
        self.pool.spawn_ok(async move {
            let _guard = guard;
            task.await;
        });
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        sleep(d)
    }
}

/// Blocks on `fut`, panicking if it takes longer than `limit`.
pub fn block_on_timeout<F: Future>(limit: Duration, fut: F) -> F::Output {
    use futures::future::{Either, select};
    let fut = std::pin::pin!(fut);
    match futures::executor::block_on(select(fut, sleep(limit))) {
        Either::Left((out, _)) => out,
        Either::Right(_) => panic!("test step did not finish within {limit:?}"),
    }
}

/// Polls `cond` every 2 ms until true or `limit` passes (bounded).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

// ---------------------------------------------------------------- clients

/// Delays the response headers by `delay` (on the timer thread).
pub struct DelayClient<C> {
    pub inner: C,
    pub delay: Duration,
}

impl<C: HttpClient> HttpClient for DelayClient<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            sleep(self.delay).await;
            self.inner.send(request).await
        })
    }
}

/// Counts requests "in service" (from send until the body ends or is
/// dropped) and records the peak; optional per-request delay before headers.
pub struct CountingClient<C> {
    pub inner: C,
    pub delay: Duration,
    pub current: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
    pub total: Arc<AtomicUsize>,
}

impl<C> CountingClient<C> {
    pub fn new(inner: C, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            current: Arc::default(),
            peak: Arc::default(),
            total: Arc::default(),
        }
    }
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }
}

struct InService(Arc<AtomicUsize>);
impl Drop for InService {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<C: HttpClient> HttpClient for CountingClient<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let now = self.current.fetch_add(1, Ordering::AcqRel) + 1;
            self.peak.fetch_max(now, Ordering::AcqRel);
            self.total.fetch_add(1, Ordering::AcqRel);
            let guard = InService(self.current.clone());
            if !self.delay.is_zero() {
                sleep(self.delay).await;
            }
            let mut resp = self.inner.send(request).await?;
            let body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let body: ByteStream = Box::pin(body.map(move |item| {
                let _keep = &guard;
                item
            }));
            Ok(HttpResponse::new(resp.status, resp.headers, body))
        })
    }
}

/// Ends each body cleanly after `after` bytes (a short body; the headers
/// still announce the full length).
pub struct TruncatingClient<C> {
    pub inner: C,
    pub after: usize,
}

impl<C: HttpClient> HttpClient for TruncatingClient<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut resp = self.inner.send(request).await?;
            let body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let body = futures::stream::unfold((body, self.after), |(mut b, left)| async move {
                if left == 0 {
                    return None;
                }
                match b.next().await {
                    Some(Ok(chunk)) => {
                        let c = chunk.slice(..chunk.len().min(left));
                        let rest = left - c.len();
                        Some((Ok(c), (b, rest)))
                    }
                    other => other.map(|item| (item, (b, 0))),
                }
            });
            Ok(HttpResponse::new(resp.status, resp.headers, Box::pin(body)))
        })
    }
}

/// Answers the first request with `first`, every later one with `then`.
pub struct FirstThen<A, B> {
    pub first: A,
    pub then: B,
    used: AtomicBool,
}

impl<A, B> FirstThen<A, B> {
    pub fn new(first: A, then: B) -> Self {
        Self {
            first,
            then,
            used: AtomicBool::new(false),
        }
    }
}

impl<A: HttpClient, B: HttpClient> HttpClient for FirstThen<A, B> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        if self.used.swap(true, Ordering::SeqCst) {
            self.then.send(request)
        } else {
            self.first.send(request)
        }
    }
}

/// Never answers (a connect that hangs), until the future is dropped.
pub struct HangingClient;

impl HttpClient for HangingClient {
    fn send(&self, _request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move { futures::future::pending().await })
    }
}

/// A body of `len` pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut rng = Rng(seed | 1);
    (0..len)
        .map(|_| rng.next() as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// xorshift64*: deterministic, seeded, dependency-free.
#[derive(Clone)]
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn url(path: &str) -> url::Url {
    url::Url::parse(&format!("http://127.0.0.1{path}")).unwrap()
}

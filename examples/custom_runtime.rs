//! Embedding in your own executor and HTTP stack: a user-written `Spawn`
//! (`futures::executor::ThreadPool` plus one timer thread) and a
//! user-written `HttpClient` (a wrapper that logs every request, around an
//! in-memory `MemoryClient` here — wrap any client the same way). No
//! backend feature, no network:
//!
//! ```text
//! cargo run --example custom_runtime --no-default-features
//! ```

mod support;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{
    HttpClient, HttpRequest, HttpResponse, MemoryClient, MemoryResource, NetError,
};
use kithara_stream::rt::{BoxFuture, Spawn};
use kithara_stream::{HttpFile, HttpFileConfig, Stream};

use support::BoxError;

// ---- the executor: a thread pool and a timer thread -------------------

struct SleepState {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// A heap entry; ordered by deadline, then by insertion.
struct Entry(Instant, u64, Weak<SleepState>);
impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

/// One thread that fires every sleep at its deadline (a condvar wait, no
/// polling). Sleeps dropped early are skipped when they come due.
#[derive(Clone, Default)]
struct Timer {
    inner: Arc<(Mutex<BinaryHeap<Reverse<Entry>>>, Condvar)>,
    seq: Arc<AtomicU64>,
}

impl Timer {
    fn start() -> Self {
        let timer = Timer::default();
        let inner = timer.inner.clone();
        std::thread::spawn(move || {
            let (heap, cv) = &*inner;
            let mut heap = heap.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse(e)| e.0 <= now) {
                    if let Some(Reverse(Entry(_, _, w))) = heap.pop()
                        && let Some(s) = w.upgrade()
                    {
                        s.fired.store(true, Ordering::Release);
                        if let Some(w) = s.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            w.wake();
                        }
                    }
                }
                heap = match heap.peek().map(|Reverse(e)| e.0) {
                    Some(d) => {
                        cv.wait_timeout(heap, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => cv.wait(heap).unwrap_or_else(|e| e.into_inner()),
                };
            }
        });
        timer
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let state = Arc::new(SleepState {
            fired: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let entry = Entry(
            Instant::now() + d,
            self.seq.fetch_add(1, Ordering::Relaxed),
            Arc::downgrade(&state),
        );
        let (heap, cv) = &*self.inner;
        heap.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Reverse(entry));
        cv.notify_one();
        Box::pin(Sleep(state))
    }
}

struct Sleep(Arc<SleepState>);
impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if self.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The user's executor: what the crate needs is `spawn` and `sleep`.
struct PoolSpawn {
    pool: futures::executor::ThreadPool,
    timer: Timer,
}

impl Spawn for PoolSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.pool.spawn_ok(task);
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.timer.sleep(duration)
    }
}

// ---- the HTTP client: a wrapper around any other client ----------------

/// Logs each request (method, URL, Range) and its status, then delegates.
struct LoggingClient<C>(C);

impl<C: HttpClient> HttpClient for LoggingClient<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let line = format!(
                "{} {} {}",
                request.method,
                request.url,
                request
                    .headers
                    .get(http::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(whole)")
            );
            let resp = self.0.send(request).await;
            match &resp {
                Ok(r) => println!("[http] {line} -> {}", r.status),
                Err(e) => println!("[http] {line} -> {e}"),
            }
            resp
        })
    }
}

fn main() -> Result<(), BoxError> {
    let wav = support::generate_wav(3);
    // Served from memory by the client below: no socket is ever opened.
    let url = "http://127.0.0.1/tones.wav";
    let memory = MemoryClient::new();
    memory.insert_resource(
        url,
        MemoryResource::new(wav.clone())
            .content_type("audio/wav")
            .chunk_size(8 * 1024),
    );

    let spawn = PoolSpawn {
        pool: futures::executor::ThreadPool::new()?,
        timer: Timer::start(),
    };
    let downloader = Downloader::new(DownloaderConfig::new(
        Arc::new(spawn),
        Arc::new(LoggingClient(memory)),
    ));
    let config = HttpFileConfig::new(url)?
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    let stream = futures::executor::block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, Some(&wav), None)
}

//! No blocking file work on an executor thread: opens, commits, failures,
//! drops and version resets of cache files all run on the blocking pool.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::dl::{Downloader, DownloaderConfig};
use crate::net::{MemoryClient, MemoryResource, RetryPolicy};
use crate::offload::guard;
use crate::rt::{BoxFuture, Spawn};
use crate::{HttpFile, HttpFileConfig, Stream};

const LIMIT: Duration = Duration::from_secs(20);

/// A one-thread executor whose thread is marked "async" (blocking file work
/// there is recorded as a violation); blocking jobs get their own threads.
struct OneThread(futures::executor::ThreadPool);

impl OneThread {
    fn new() -> Self {
        let pool = futures::executor::ThreadPool::builder()
            .pool_size(1)
            .after_start(|_| guard::mark_async_thread())
            .create()
            .expect("a one-thread pool");
        Self(pool)
    }
}

impl Spawn for OneThread {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.0.spawn_ok(task);
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            let _ = tx.send(());
        });
        Box::pin(async move {
            let _ = rx.await;
        })
    }
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        std::thread::spawn(work);
    }
}

/// Runs `fut` on `spawn`'s executor and waits for it, bounded.
fn run<T: Send + 'static>(
    spawn: &OneThread,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    spawn.spawn(Box::pin(async move {
        let _ = tx.send(fut.await);
    }));
    rx.recv_timeout(LIMIT).expect("the task finished in time")
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn cache_file_work_never_runs_on_the_executor_thread() {
    let _ = guard::take();
    let dir = tempfile::tempdir().unwrap();
    let spawn = Arc::new(OneThread::new());
    // A task that ticks on the executor thread: its longest gap is how long
    // the thread was held.
    let ticks = Arc::new(AtomicU64::new(0));
    let max_gap_us = Arc::new(AtomicU64::new(0));
    {
        let (sp, ticks, gap) = (spawn.clone(), ticks.clone(), max_gap_us.clone());
        spawn.spawn(Box::pin(async move {
            let mut last = Instant::now();
            for _ in 0..20_000 {
                sp.sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                let us = u64::try_from((now - last).as_micros()).unwrap_or(u64::MAX);
                gap.fetch_max(us, Ordering::Relaxed);
                last = now;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let client = MemoryClient::new();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    client.insert_resource("http://127.0.0.1/ok", MemoryResource::new(body.clone()));
    client.insert_resource(
        "http://127.0.0.1/broken",
        MemoryResource::new(body.clone()).status(http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    client.insert_resource(
        "http://127.0.0.1/stalls",
        MemoryResource::new(body.clone()).stall_after(500_000),
    );
    let cfg = DownloaderConfig::new(spawn.clone(), Arc::new(client)).retry(RetryPolicy::none());
    let dl = Downloader::new(cfg);
    let open = |url: &str, file: &str| {
        let cfg = HttpFileConfig::new(url)
            .unwrap()
            .downloader(dl.clone())
            .cache_file(dir.path().join(file));
        run(&spawn, Stream::<HttpFile>::new(cfg))
    };

    // Fresh open, whole download, commit, drop; then a reopen of the
    // complete cache.
    let mut s = open("http://127.0.0.1/ok", "ok.bin").unwrap();
    s.set_read_timeout(Some(LIMIT));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
    let storage = s.source().storage().clone();
    wait_for("the commit", || storage.len().is_some());
    drop((s, storage));
    let again = open("http://127.0.0.1/ok", "ok.bin").unwrap();
    assert!(again.source().is_complete());
    drop(again);

    // A download that fails for good: the failure's sidecar record.
    assert!(open("http://127.0.0.1/broken", "broken.bin").is_err());
    // A drop mid-download, then a reopen that resumes.
    let s = open("http://127.0.0.1/stalls", "partial.bin").unwrap();
    let storage = s.source().storage().clone();
    wait_for("some bytes", || storage.contains_range(0..500_000));
    drop((s, storage));
    let again = open("http://127.0.0.1/stalls", "partial.bin").unwrap();
    assert!(
        again.source().storage().contains_range(0..500_000),
        "resumed"
    );
    drop(again);

    // A partial cache of another version (another length): the old bytes
    // are dropped (a truncate and a synced sidecar) before the new ones.
    {
        let old = crate::storage::StorageResource::open_file(
            dir.path().join("changed.bin"),
            crate::cancel::CancelToken::new(),
        )
        .unwrap();
        old.write_at(0, &[9; 100_000]).unwrap();
        old.set_len_hint(Some(4_000_000));
        // Records the version (no validator; that length) with the bytes.
        old.set_validator(None);
    }
    let _ = guard::take();
    let mut s = open("http://127.0.0.1/ok", "changed.bin").unwrap();
    s.set_read_timeout(Some(LIMIT));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let first_diff = got.iter().zip(&body).position(|(a, b)| a != b);
    assert!(
        got == body,
        "the new version, whole: {} bytes, first difference at {first_diff:?}",
        got.len()
    );
    assert_eq!(s.source().version_restarts(), 1);
    drop(s);

    wait_for("ticks", || ticks.load(Ordering::Relaxed) > 20);
    let violations = guard::take();
    assert!(
        violations.is_empty(),
        "blocking file work on the executor thread: {violations:?}"
    );
    // Informational bound: nothing held the thread for long (generous for a
    // loaded machine; an inline 3 MB fdatasync alone can take longer).
    let gap = Duration::from_micros(max_gap_us.load(Ordering::Relaxed));
    assert!(gap < Duration::from_secs(2), "executor held for {gap:?}");
}

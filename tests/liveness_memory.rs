//! Liveness without a network or a runtime (`MemoryClient` and a futures
//! thread pool with a timer thread): tail reads, the pull contract, a
//! transient give-up revived by a read, a closed downloader, async reads.
//! Runs under every feature set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dl_common::*;
use futures::StreamExt;
use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
use kithara_stream::net::{
    ByteStream, HttpClient, HttpRequest, HttpResponse, MemoryClient, MemoryResource, NetError,
    RetryPolicy, TransportKind,
};
use kithara_stream::rt::{BoxFuture, Spawn};
use kithara_stream::{HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError};

const LIMIT: Duration = Duration::from_secs(20);
const URL: &str = "http://127.0.0.1/song";

fn open(dl: &Downloader) -> Result<Stream<HttpFile>, SourceError> {
    let cfg = HttpFileConfig::new(URL)
        .unwrap()
        .downloader(dl.clone())
        .read_timeout(Some(LIMIT));
    block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg))
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

/// Delays every body chunk by `per_chunk` (a throttled link).
struct ThrottleClient<C> {
    inner: C,
    per_chunk: Duration,
}

impl<C: HttpClient> HttpClient for ThrottleClient<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut resp = self.inner.send(request).await?;
            let body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let d = self.per_chunk;
            let body: ByteStream = Box::pin(body.then(move |item| async move {
                sleep(d).await;
                item
            }));
            Ok(HttpResponse::new(resp.status, resp.headers, body))
        })
    }
}

/// A server that can be switched off: while down, connects are refused and
/// bodies in flight break at their next chunk.
#[derive(Clone)]
struct SwitchClient {
    inner: MemoryClient,
    up: Arc<AtomicBool>,
}

impl HttpClient for SwitchClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let url = request.url.clone();
            if !self.up.load(Ordering::SeqCst) {
                return Err(NetError::Transport {
                    kind: TransportKind::Connect,
                    url,
                    message: "connection refused".into(),
                });
            }
            let mut resp = self.inner.send(request).await?;
            let body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let up = self.up.clone();
            let body: ByteStream = Box::pin(body.then(move |item| {
                let (up, url) = (up.clone(), url.clone());
                async move {
                    sleep(Duration::from_millis(2)).await;
                    if up.load(Ordering::SeqCst) {
                        item
                    } else {
                        Err(NetError::Transport {
                            kind: TransportKind::Body,
                            url,
                            message: "connection reset".into(),
                        })
                    }
                }
            }));
            Ok(HttpResponse::new(resp.status, resp.headers, body))
        })
    }
}

/// A downloader over a `MemoryClient` serving `body` at `URL` in 4 KiB
/// chunks, each delayed by `per_chunk`.
fn throttled(body: &[u8], per_chunk: Duration) -> Downloader {
    let mem = MemoryClient::new();
    mem.insert_resource(URL, MemoryResource::new(body.to_vec()).chunk_size(4096));
    let client = ThrottleClient {
        inner: mem,
        per_chunk,
    };
    Downloader::new(DownloaderConfig::new(
        Arc::new(PoolSpawn::new()),
        Arc::new(client),
    ))
}

/// A 64 KiB read 50 000 bytes before the end of a 2 MiB body that arrives
/// at 4 KiB per 10 ms (5 s for the whole): the tail is returned as soon as
/// it is there (about 120 ms of body), not when the gaps before it fill.
#[test]
fn a_read_across_the_end_returns_the_tail_at_once() {
    let body = pattern(2 << 20, 41);
    let dl = throttled(&body, Duration::from_millis(10));
    let mut s = open(&dl).unwrap();
    let len = s.len().unwrap();
    let start = Instant::now();
    s.seek(SeekFrom::Start(len - 50_000)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).unwrap();
    let took = start.elapsed();
    eprintln!("tail read took {took:?} (whole body: 5 s)");
    assert_eq!(n, 50_000);
    assert_eq!(&buf[..n], &body[body.len() - 50_000..]);
    assert_eq!(s.read(&mut buf).unwrap(), 0, "Ok(0) at the true end");
    assert!(
        took < Duration::from_millis(1000),
        "tail read took {took:?}"
    );
}

/// The download gives up after a transient outage longer than its budget:
/// the waiting read gets the typed error; once the server is back the next
/// read plans the download again from its frontier, byte-exact, and the
/// bytes already stored stay readable meanwhile.
#[test]
fn a_transient_give_up_is_revived_by_the_next_read() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    let body = pattern(400_000, 42);
    mem.insert_resource(URL, MemoryResource::new(body.clone()).chunk_size(4096));
    let up = Arc::new(AtomicBool::new(true));
    let client = SwitchClient {
        inner: mem.clone(),
        up: up.clone(),
    };
    let dl = Downloader::new(
        DownloaderConfig::new(Arc::new(spawn), Arc::new(client))
            .connect_timeout(Duration::from_millis(100))
            .retry(RetryPolicy {
                budget: Duration::from_millis(100),
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                max_retries: None,
            }),
    );
    let mut s = open(&dl).unwrap();
    let mut first = vec![0u8; 100_000];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first[..], &body[..100_000]);
    up.store(false, Ordering::SeqCst);
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 8192];
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("Ok(0) before the end"),
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(source_error(&err), SourceError::Net(e) if e.is_retryable()),
        "{err:?}"
    );
    // Present bytes stay readable after the give-up.
    let pos = s.position();
    s.seek(SeekFrom::Start(0)).unwrap();
    let mut again = vec![0u8; 50_000];
    s.read_exact(&mut again).unwrap();
    assert_eq!(&again[..], &body[..50_000]);
    s.seek(SeekFrom::Start(pos)).unwrap();
    let requests_before = mem.requests().len();
    up.store(true, Ordering::SeqCst);
    s.read_to_end(&mut rest).unwrap();
    let mut got = first;
    got.extend_from_slice(&rest);
    assert_eq!(got.len(), body.len());
    assert!(got == body[..], "byte-exact after the revival");
    let resumed = &mem.requests()[requests_before..];
    assert!(
        resumed
            .first()
            .and_then(|r| r.range.as_deref())
            .is_some_and(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "the revived download starts at its frontier: {resumed:?}"
    );
}

/// A peer that yields one command per poll (`Ready(Some(vec![]))` first,
/// which must not stall), counting its polls.
struct OneAtATime {
    cmds: Mutex<VecDeque<FetchCmd>>,
    empty_first: AtomicBool,
}

impl Peer for OneAtATime {
    fn poll_next(&self, _cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        if self.empty_first.swap(false, Ordering::SeqCst) {
            return Poll::Ready(Some(Vec::new()));
        }
        match self.cmds.lock().unwrap().pop_front() {
            Some(c) => Poll::Ready(Some(vec![c])),
            None => Poll::Ready(None),
        }
    }
}

/// The pull contract: after `Ready(Some(..))` the loop polls again until
/// `Pending`/`None`, so a peer yielding one command per poll gets
/// `max_concurrent` requests in flight (and an empty batch does not stall).
#[test]
fn a_peer_yielding_one_command_per_poll_fills_max_concurrent() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    for i in 0..6 {
        mem.insert(&format!("http://127.0.0.1/f{i}"), pattern(1000, i).to_vec());
    }
    let client = CountingClient::new(mem, Duration::from_millis(200));
    let peak = client.peak.clone();
    let dl =
        Downloader::new(DownloaderConfig::new(Arc::new(spawn), Arc::new(client)).max_concurrent(3));
    let done = Completions::default();
    let cmds = (0..6)
        .map(|i| {
            FetchCmd::get(url(&format!("/f{i}")))
                .writer(|_| Ok(()))
                .on_complete(done.cb(i))
        })
        .collect();
    let start = Instant::now();
    let _h = dl.register(Arc::new(OneAtATime {
        cmds: Mutex::new(cmds),
        empty_first: AtomicBool::new(true),
    }));
    assert!(
        wait_until(LIMIT, || done.len() >= 6),
        "only {} of 6 completions",
        done.len()
    );
    let all = done.all();
    let took = start.elapsed();
    assert!(all.iter().all(|c| c.error.is_none()), "{all:?}");
    assert_eq!(peak.load(Ordering::SeqCst), 3, "three in flight at once");
    // Two waves of 200 ms, not six.
    assert!(took < Duration::from_millis(1000), "took {took:?}");
}

/// A spawner that drops every task unrun (an executor that is gone).
struct DropSpawn;

impl Spawn for DropSpawn {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(task);
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        sleep(d)
    }
}

/// Opening on a downloader that is cancelled, or whose loop is gone, is a
/// typed error at once (it used to wait forever).
#[test]
fn opening_on_a_dead_downloader_fails_at_once() {
    let mem = MemoryClient::new();
    mem.insert(URL, pattern(1000, 43).to_vec());
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(DownloaderConfig::new(
        Arc::new(spawn),
        Arc::new(mem.clone()),
    ));
    dl.cancel().cancel();
    let start = Instant::now();
    assert!(matches!(open(&dl), Err(SourceError::Cancelled)));
    assert!(start.elapsed() < Duration::from_secs(1));
    let h = dl.register(Arc::new(OneAtATime {
        cmds: Mutex::new(VecDeque::new()),
        empty_first: AtomicBool::new(false),
    }));
    assert!(h.cancel().is_cancelled());

    let dl = Downloader::new(DownloaderConfig::new(Arc::new(DropSpawn), Arc::new(mem)));
    assert!(!dl.is_running());
    let start = Instant::now();
    assert!(matches!(open(&dl), Err(SourceError::Cancelled)));
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// Many registrations racing a shutdown: every one either is served or
/// sees its token cancelled; none is left hanging.
#[test]
fn registrations_racing_a_shutdown_never_hang() {
    for round in 0..20u64 {
        let mem = MemoryClient::new();
        mem.insert(URL, pattern(10_000, round).to_vec());
        let spawn = PoolSpawn::new();
        let dl = Downloader::new(DownloaderConfig::new(Arc::new(spawn), Arc::new(mem)));
        let opened = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (dl, opened) = (dl.clone(), opened.clone());
                std::thread::spawn(move || {
                    if open(&dl).is_ok() {
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut rng = Rng(round + 1);
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        dl.cancel().cancel();
        for t in threads {
            t.join().unwrap(); // each open is bounded by LIMIT (a hang panics)
        }
    }
}

/// `futures::io` helpers on a throttled in-memory stream.
#[test]
fn async_read_helpers_work_on_a_throttled_stream() {
    let body = pattern(200_000, 44);
    let dl = throttled(&body, Duration::from_millis(2));
    let mut s = open(&dl).unwrap();
    block_on_timeout(LIMIT, async {
        let mut head = vec![0u8; 30_000];
        futures::io::AsyncReadExt::read_exact(&mut s, &mut head)
            .await
            .unwrap();
        assert_eq!(&head[..], &body[..30_000]);
        futures::io::AsyncSeekExt::seek(&mut s, SeekFrom::Start(150_000))
            .await
            .unwrap();
        let mut rest = Vec::new();
        futures::io::AsyncReadExt::read_to_end(&mut s, &mut rest)
            .await
            .unwrap();
        assert_eq!(&rest[..], &body[150_000..]);
    });
    let mut s = open(&dl).unwrap();
    let mut out = futures::io::Cursor::new(Vec::new());
    let n = block_on_timeout(LIMIT, futures::io::copy(&mut s, &mut out)).unwrap();
    assert_eq!(n, body.len() as u64);
    assert!(out.get_ref()[..] == body[..]);
    // Sync reads at the end: Ok(0), never an error.
    s.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(s.read(&mut [0u8; 10]).unwrap(), 0);
    assert_eq!(
        s.seek(SeekFrom::End(1)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

//! Downloader tests without a network and without a runtime: `MemoryClient`
//! (plus wrappers) and a futures thread pool with a timer thread. They run
//! under every feature set, `--no-default-features` included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dl_common::*;
use futures::StreamExt;
use http::StatusCode;
use kithara_stream::cancel::CancelToken;
use kithara_stream::dl::{
    BodyStream, CancelReason, Downloader, DownloaderConfig, DownloaderEvent, FetchCmd, Peer,
    RequestPriority, reject_html_response,
};
use kithara_stream::net::{
    HttpClient, HttpRequest, HttpResponse, MemoryClient, MemoryResource, NetError, RangeSpec,
    RequestMethod, RetryPolicy, TimeoutKind,
};
use kithara_stream::rt::BoxFuture;

const LIMIT: Duration = Duration::from_secs(20);

fn config(spawn: &PoolSpawn, client: impl HttpClient) -> DownloaderConfig {
    DownloaderConfig::new(Arc::new(spawn.clone()), Arc::new(client)).retry(RetryPolicy::new(
        3,
        Duration::from_millis(2),
        Duration::from_millis(20),
    ))
}

/// A peer fed from the test: batches pushed in, priority switchable.
#[derive(Default)]
struct QueuePeer {
    batches: Mutex<VecDeque<Vec<FetchCmd>>>,
    finished: AtomicBool,
    high: AtomicBool,
    waker: Mutex<Option<Waker>>,
    polls: AtomicUsize,
}

impl QueuePeer {
    fn new(high: bool) -> Arc<Self> {
        let p = Self::default();
        p.high.store(high, Ordering::SeqCst);
        Arc::new(p)
    }
    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
    fn push(&self, batch: Vec<FetchCmd>) {
        self.batches.lock().unwrap().push_back(batch);
        self.wake();
    }
    fn set_high(&self, high: bool) {
        self.high.store(high, Ordering::SeqCst);
        self.wake();
    }
}

impl Peer for QueuePeer {
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if let Some(b) = self.batches.lock().unwrap().pop_front() {
            return Poll::Ready(Some(b));
        }
        if self.finished.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
    fn priority(&self) -> RequestPriority {
        if self.high.load(Ordering::SeqCst) {
            RequestPriority::High
        } else {
            RequestPriority::Low
        }
    }
}

struct Idle;
impl Peer for Idle {}

/// Blocks until `n` completions were recorded (bounded by `LIMIT`).
trait WaitCompletions {
    fn wait(&self, n: usize) -> Vec<Completed>;
}

impl WaitCompletions for Completions {
    fn wait(&self, n: usize) -> Vec<Completed> {
        assert!(
            wait_until(LIMIT, || self.len() >= n),
            "only {} of {n} completions",
            self.len()
        );
        self.all()
    }
}

type Sink = Arc<Mutex<Vec<u8>>>;

fn sink() -> (
    Sink,
    impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    (buf, move |chunk: &[u8]| {
        b.lock().unwrap().extend_from_slice(chunk);
        Ok(())
    })
}

// ------------------------------------------------------------ §7.1 1-3

#[test]
fn body_stream_collect_accumulates_bytes() {
    let chunks = ["hello", " ", "world"].map(|s| Ok(Bytes::from(s)));
    let body = BodyStream::from_raw(Box::pin(futures::stream::iter(chunks)));
    assert_eq!(
        &block_on_timeout(LIMIT, body.collect()).unwrap()[..],
        b"hello world"
    );
}

#[test]
fn body_stream_write_all_delegates_to_consumer() {
    let chunks = ["abc", "def"].map(|s| Ok(Bytes::from(s)));
    let body = BodyStream::from_raw(Box::pin(futures::stream::iter(chunks)));
    let mut seen = Vec::new();
    let total = block_on_timeout(
        LIMIT,
        body.write_all(|c: &[u8]| {
            seen.push(c.to_vec());
            Ok(())
        }),
    )
    .unwrap();
    assert_eq!(total, 6);
    assert_eq!(seen, [b"abc".to_vec(), b"def".to_vec()]);
    // A failing consumer surfaces as NetError::Writer.
    let body = BodyStream::from_bytes(Bytes::from_static(b"x"));
    let err = block_on_timeout(
        LIMIT,
        body.write_all(|_: &[u8]| Err(std::io::Error::other("full"))),
    )
    .unwrap_err();
    assert!(matches!(err, NetError::Writer(m) if m.contains("full")));
}

#[test]
fn body_stream_empty_collects_to_empty() {
    assert!(
        block_on_timeout(LIMIT, BodyStream::empty().collect())
            .unwrap()
            .is_empty()
    );
}

// ------------------------------------------------------------ §7.1 4-7

#[test]
fn peer_handle_cancel_scoped_to_peer() {
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(config(&spawn, MemoryClient::new()));
    let a = dl.register(Arc::new(Idle));
    let b = dl.register(Arc::new(Idle));
    a.cancel().cancel();
    assert!(a.cancel().is_cancelled());
    assert!(!b.cancel().is_cancelled());
    assert!(!dl.cancel().is_cancelled());
}

#[test]
fn peer_handle_cancel_fires_on_last_clone_drop() {
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(config(&spawn, MemoryClient::new()));
    let h = dl.register(Arc::new(Idle));
    let token = h.cancel();
    let h2 = h.clone();
    drop(h);
    assert!(!token.is_cancelled());
    drop(h2);
    assert!(token.is_cancelled());
}

#[test]
fn peer_handle_execute_returns_error_on_unreachable() {
    // A client whose request never answers (the network-free twin of the
    // loopback listener that never responds, see dl_backends.rs).
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(
        config(&spawn, HangingClient)
            .request_timeout(Duration::from_secs(60))
            .inactivity_timeout(Duration::from_secs(60)),
    );
    let h = dl.register(Arc::new(Idle));
    let token = h.cancel();
    let events = dl.subscribe();
    // Cancel once the request is in flight (started, never answered).
    let canceller = bounded_thread("canceller", move || {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if let Some(DownloaderEvent::RequestStarted { .. }) =
                events.recv_timeout(Duration::from_millis(50))
            {
                token.cancel();
                return true;
            }
        }
        false
    });
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url("/never"))));
    assert!(canceller.join(LIMIT), "the request never started");
    assert!(matches!(r, Err(NetError::Cancelled)), "{r:?}");
}

#[test]
fn peer_handle_downloader_cancel_cascades() {
    let spawn = PoolSpawn::new();
    let parent = CancelToken::new();
    let dl = Downloader::new(config(&spawn, MemoryClient::new()).cancel(parent.clone()));
    let h = dl.register(Arc::new(Idle));
    parent.cancel();
    assert!(h.cancel().is_cancelled());
    assert!(wait_until(LIMIT, || !dl.is_running()));
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::head(url("/x"))));
    assert!(matches!(r, Err(NetError::Cancelled)));
}

// ------------------------------------------------------------ §7.1 8-10

fn head_client(n: usize, delay: Duration) -> (MemoryClient, CountingClient<MemoryClient>) {
    let mem = MemoryClient::new();
    for i in 0..n {
        mem.insert(
            &format!("http://127.0.0.1/h{i}"),
            Bytes::from_static(b"0123456789"),
        );
    }
    (mem.clone(), CountingClient::new(mem, delay))
}

#[test]
fn max_concurrent_limits_inflight_connections() {
    let spawn = PoolSpawn::new();
    let (_, client) = head_client(1, Duration::from_millis(5));
    let peak = client.peak.clone();
    let dl = Downloader::new(config(&spawn, client).max_concurrent(5));
    let h = dl.register(Arc::new(Idle));
    let cmds = (0..1000).map(|_| FetchCmd::head(url("/h0"))).collect();
    let results = block_on_timeout(Duration::from_secs(40), h.batch(cmds));
    assert_eq!(results.len(), 1000);
    assert!(results.iter().all(Result::is_ok));
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=5).contains(&peak), "peak {peak}");
}

#[test]
fn many_downloaders_global_peak_stays_bounded() {
    let spawn = PoolSpawn::new();
    let (_, client) = head_client(1, Duration::from_millis(2));
    let peak = client.peak.clone();
    let client: Arc<dyn HttpClient> = Arc::new(client);
    let dls: Vec<Downloader> = (0..20)
        .map(|_| {
            Downloader::new(
                DownloaderConfig::new(Arc::new(spawn.clone()), client.clone()).max_concurrent(3),
            )
        })
        .collect();
    let handles: Vec<_> = dls.iter().map(|d| d.register(Arc::new(Idle))).collect();
    let all = block_on_timeout(
        LIMIT,
        futures::future::join_all(
            handles
                .iter()
                .map(|h| h.batch((0..30).map(|_| FetchCmd::head(url("/h0"))).collect())),
        ),
    );
    assert!(all.iter().flatten().all(Result::is_ok));
    assert_eq!(all.iter().map(Vec::len).sum::<usize>(), 600);
    assert!(peak.load(Ordering::SeqCst) <= 60);
}

/// Yields `total` HEAD commands in batches of 10, waking itself.
struct FloodPeer {
    left: AtomicUsize,
    done: Completions,
}

impl Peer for FloodPeer {
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Poll::Ready(None);
        }
        let n = left.min(10);
        self.left.fetch_sub(n, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Ready(Some(
            (0..n)
                .map(|i| FetchCmd::head(url("/h0")).on_complete(self.done.cb(left - i)))
                .collect(),
        ))
    }
}

#[test]
fn poll_next_respects_max_concurrent() {
    let spawn = PoolSpawn::new();
    let (_, client) = head_client(1, Duration::from_millis(1));
    let peak = client.peak.clone();
    let dl = Downloader::new(config(&spawn, client).max_concurrent(5));
    let done = Completions::default();
    let _h = dl.register(Arc::new(FloodPeer {
        left: AtomicUsize::new(1000),
        done: done.clone(),
    }));
    let all = done.wait(1000);
    assert!(all.iter().all(|c| c.error.is_none()));
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=5).contains(&peak), "peak {peak}");
}

#[test]
fn max_concurrent_peak_three_peers_mixing_poll_next_and_batch() {
    let spawn = PoolSpawn::new();
    let (mem, client) = head_client(1, Duration::ZERO);
    mem.insert("http://127.0.0.1/g", pattern(3000, 7).to_vec());
    let peak = client.peak.clone();
    let dl = Downloader::new(config(&spawn, client).max_concurrent(4));
    let done = Completions::default();
    let flood = |n| {
        Arc::new(FloodPeer {
            left: AtomicUsize::new(n),
            done: done.clone(),
        })
    };
    let p1 = dl.register(flood(300));
    let p2 = dl.register(flood(300));
    let p3 = dl.register(flood(0));
    // 400 imperative commands spread over the three handles, GETs and HEADs.
    let batches = [&p1, &p2, &p3].map(|h| {
        h.batch(
            (0..134)
                .map(|i| {
                    if i % 2 == 0 {
                        FetchCmd::get(url("/g"))
                    } else {
                        FetchCmd::head(url("/h0"))
                    }
                })
                .collect(),
        )
    });
    let results = block_on_timeout(Duration::from_secs(40), futures::future::join_all(batches));
    for r in results.into_iter().flatten() {
        let r = r.unwrap();
        if r.status == StatusCode::OK
            && r.headers.get("content-length").is_some_and(|v| v == "3000")
        {
            assert_eq!(
                block_on_timeout(LIMIT, r.body.collect()).unwrap().len(),
                3000
            );
        }
    }
    let all = done.wait(600);
    assert!(all.iter().all(|c| c.error.is_none()));
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=4).contains(&peak), "peak {peak} (1002 commands)");
    assert!(dl.inflight() <= 4);
}

// ------------------------------------------------------------ §7.1 12-15

#[test]
fn soft_timeout_publishes_load_slow_on_peer_bus() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/slow", &b"x"[..]);
    let client = DelayClient {
        inner: mem,
        delay: Duration::from_millis(300),
    };
    let dl = Downloader::new(config(&spawn, client).soft_timeout(Duration::from_millis(50)));
    let h = dl.register(Arc::new(Idle));
    let other = dl.register(Arc::new(Idle));
    let events = h.subscribe();
    let other_events = other.subscribe();
    let all = dl.subscribe();
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url("/slow")))).unwrap();
    assert_eq!(
        &block_on_timeout(LIMIT, r.body.collect()).unwrap()[..],
        b"x"
    );
    let seen = events.drain();
    assert!(
        seen.iter().any(|e| matches!(e, DownloaderEvent::LoadSlow { elapsed, .. } if *elapsed >= Duration::from_millis(40))),
        "{seen:?}"
    );
    assert!(
        all.drain()
            .iter()
            .any(|e| matches!(e, DownloaderEvent::LoadSlow { .. }))
    );
    assert!(other_events.drain().is_empty());
}

fn tagged_gets(n: usize, base: usize, done: &Completions) -> Vec<FetchCmd> {
    (0..n)
        .map(|i| {
            FetchCmd::get(url("/seg"))
                .writer(|_: &[u8]| Ok(()))
                .on_complete(done.cb(base + i))
        })
        .collect()
}

fn seg_client(delay: Duration) -> DelayClient<MemoryClient> {
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/seg", pattern(2048, 3).to_vec());
    DelayClient { inner: mem, delay }
}

#[test]
fn active_peer_completes_before_preload_under_contention() {
    let spawn = PoolSpawn::new();
    let dl =
        Downloader::new(config(&spawn, seg_client(Duration::from_millis(15))).max_concurrent(2));
    let done = Completions::default();
    let preload = QueuePeer::new(false);
    let active = QueuePeer::new(true);
    let _hp = dl.register(preload.clone());
    let _ha = dl.register(active.clone());
    preload.push(tagged_gets(20, 100, &done));
    active.push(tagged_gets(20, 0, &done));
    let all = done.wait(40);
    assert_eq!(all.len(), 40);
    let mut tags: Vec<usize> = all.iter().map(|c| c.tag).collect();
    let order = tags.clone();
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), 40, "each on_complete exactly once");
    let pos = |active: bool| {
        let mut v: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, t)| (**t < 100) == active)
            .map(|(i, _)| i)
            .collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    assert!(pos(true) < pos(false), "{order:?}");
    let first_quarter = order[..10].iter().filter(|t| **t < 100).count();
    assert!(first_quarter > 5, "{order:?}");
}

#[test]
fn both_peers_idle_no_priority_ordering_asserted() {
    let spawn = PoolSpawn::new();
    let dl =
        Downloader::new(config(&spawn, seg_client(Duration::from_millis(2))).max_concurrent(2));
    let done = Completions::default();
    let a = QueuePeer::new(false);
    let b = QueuePeer::new(false);
    let _ha = dl.register(a.clone());
    let _hb = dl.register(b.clone());
    a.push(tagged_gets(10, 0, &done));
    b.push(tagged_gets(10, 100, &done));
    assert_eq!(done.wait(20).len(), 20);
}

/// One slot, held; then queued: a preload peer's streaming GETs
/// (Low, Low), a playing peer's streaming GETs (High, Low) and an `execute`
/// from the preload peer (Low, High). Once the slot frees, they start in
/// slot order: the playing peer's first, then the execute, then the rest.
#[test]
fn peer_handle_execute_respects_either_peer_priority() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    for p in ["/hold", "/seg", "/play", "/exec"] {
        mem.insert(&format!("http://127.0.0.1{p}"), pattern(64, 2).to_vec());
    }
    let dl = Downloader::new(config(&spawn, mem).max_concurrent(1));
    let events = dl.subscribe();
    let holder = dl.register(QueuePeer::new(false));
    let preload = QueuePeer::new(false);
    let playing = QueuePeer::new(true);
    let hp = dl.register(preload.clone());
    let _hy = dl.register(playing.clone());
    // The one slot: an unread body.
    let held = block_on_timeout(LIMIT, holder.execute(FetchCmd::get(url("/hold")))).unwrap();
    let done = Completions::default();
    let gets = |path: &str, n: usize| -> Vec<FetchCmd> {
        (0..n)
            .map(|i| {
                FetchCmd::get(url(path))
                    .writer(|_: &[u8]| Ok(()))
                    .on_complete(done.cb(i))
            })
            .collect()
    };
    preload.push(gets("/seg", 3));
    playing.push(gets("/play", 2));
    // A clone: dropping the last handle would cancel the peer's commands.
    let hp2 = hp.clone();
    let exec = bounded_thread("execute from the preload peer", move || {
        let r = block_on_timeout(LIMIT, hp2.execute(FetchCmd::get(url("/exec"))));
        r.map(|resp| resp.status)
    });
    let mut paths = std::collections::HashMap::new();
    let mut started: Vec<String> = Vec::new();
    // Collects events until `done` holds (bounded).
    let mut collect = |done: &dyn Fn(usize, usize) -> bool, started: &mut Vec<String>| {
        let deadline = Instant::now() + LIMIT;
        while !done(paths.len(), started.len()) {
            assert!(Instant::now() < deadline, "{paths:?} {started:?}");
            match events.recv_timeout(Duration::from_millis(50)) {
                Some(DownloaderEvent::RequestEnqueued {
                    request_id, url, ..
                }) => {
                    paths.insert(request_id, url.path().to_owned());
                }
                Some(DownloaderEvent::RequestStarted { request_id, .. }) => {
                    started.push(paths.get(&request_id).cloned().unwrap_or_default());
                }
                _ => {}
            }
        }
    };
    // Everything queued behind the held slot...
    collect(&|queued, _| queued == 7, &mut started);
    assert_eq!(
        started,
        ["/hold"],
        "nothing else started while the slot is held"
    );
    // ...then the slot frees and they run one at a time, in slot order.
    drop(held);
    collect(&|_, n| n == 7, &mut started);
    assert_eq!(
        started,
        ["/hold", "/play", "/play", "/exec", "/seg", "/seg", "/seg"]
    );
    assert_eq!(exec.join(LIMIT).unwrap(), StatusCode::OK);
    assert_eq!(done.wait(5).len(), 5);
}

// ------------------------------------------------------------ §7.3

#[test]
fn downloader_shutdown_cancels_queued_commands() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/q", &b"abc"[..]);
    let dl = Downloader::new(config(&spawn, mem).max_concurrent(0));
    let done = Completions::default();
    let peer = QueuePeer::new(true);
    let _h = dl.register(peer.clone());
    peer.push(
        (0..2)
            .map(|i| {
                FetchCmd::head(url("/q"))
                    .writer(|_: &[u8]| Ok(()))
                    .on_complete(done.cb(i))
            })
            .collect(),
    );
    assert!(wait_until(LIMIT, || peer
        .batches
        .lock()
        .unwrap()
        .is_empty()));
    let events = dl.subscribe();
    dl.cancel().cancel();
    let all = done.wait(2);
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|c| matches!(c.error, Some(NetError::Cancelled)) && c.bytes == 0)
    );
    assert!(wait_until(LIMIT, || !dl.is_running()));
    let cancelled: Vec<_> = events
        .drain()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                DownloaderEvent::RequestCancelled {
                    reason: CancelReason::DownloaderShutdown,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(cancelled.len(), 2);
}

#[test]
fn streaming_without_writer_still_completes() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/nw", pattern(5000, 1).to_vec());
    let dl = Downloader::new(config(&spawn, mem));
    let done = Completions::default();
    let responded = Arc::new(AtomicUsize::new(0));
    let r2 = responded.clone();
    let peer = QueuePeer::new(false);
    let _h = dl.register(peer.clone());
    peer.push(vec![
        FetchCmd::get(url("/nw"))
            .on_response(move |_| {
                r2.fetch_add(1, Ordering::SeqCst);
            })
            .on_complete(done.cb(0)),
    ]);
    let all = done.wait(1);
    assert_eq!(
        (all[0].bytes, all[0].headers, all[0].error.is_none()),
        (0, true, true)
    );
    assert_eq!(responded.load(Ordering::SeqCst), 1);
}

// ------------------------------------------------------------ policy

fn one_stream(
    dl: &Downloader,
    cmd: impl FnOnce(FetchCmd) -> FetchCmd,
    path: &str,
) -> (Completed, Vec<u8>, Arc<QueuePeer>) {
    let done = Completions::default();
    let (buf, writer) = sink();
    let peer = QueuePeer::new(true);
    let h = dl.register(peer.clone());
    peer.push(vec![cmd(FetchCmd::get(url(path))
        .writer(writer)
        .on_complete(done.cb(0)))]);
    let c = done.wait(1).remove(0);
    drop(h);
    let bytes = buf.lock().unwrap().clone();
    (c, bytes, peer)
}

#[test]
fn no_retry_on_404() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let events = dl.subscribe();
    let (c, bytes, _) = one_stream(&dl, |c| c, "/missing");
    assert!(
        matches!(&c.error, Some(NetError::Status { status, .. }) if *status == 404),
        "{c:?}"
    );
    assert!(bytes.is_empty());
    assert_eq!(mem.requests().len(), 1);
    let ev = events.drain();
    assert!(ev.iter().any(|e| matches!(
        e,
        DownloaderEvent::RequestFailed {
            retryable: false,
            ..
        }
    )));
    assert!(
        !ev.iter()
            .any(|e| matches!(e, DownloaderEvent::RequestRetried { .. }))
    );
    // Imperative path too.
    let h = dl.register(Arc::new(Idle));
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url("/missing"))));
    assert!(matches!(r, Err(NetError::Status { status, .. }) if status == 404));
    assert_eq!(mem.requests().len(), 2);
}

#[test]
fn retries_503_with_backoff_then_fails() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/busy",
        MemoryResource::new(&b"busy"[..]).status(StatusCode::SERVICE_UNAVAILABLE),
    );
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let events = dl.subscribe();
    let (c, _, _) = one_stream(&dl, |c| c, "/busy");
    assert!(matches!(&c.error, Some(NetError::Status { status, .. }) if *status == 503));
    assert_eq!(mem.requests().len(), 4, "1 attempt + 3 retries");
    let retried: Vec<u32> = events
        .drain()
        .iter()
        .filter_map(|e| match e {
            DownloaderEvent::RequestRetried { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(retried, [1, 2, 3]);
}

#[test]
fn html_page_rejected_with_invalid_content_type() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/portal",
        MemoryResource::new(&b"<html>login</html>"[..]).content_type("text/html; charset=utf-8"),
    );
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let responded = Arc::new(AtomicBool::new(false));
    let r2 = responded.clone();
    let (c, bytes, _) = one_stream(
        &dl,
        |c| {
            c.check(reject_html_response)
                .on_response(move |_| r2.store(true, Ordering::SeqCst))
        },
        "/portal",
    );
    assert!(
        matches!(&c.error, Some(NetError::InvalidContentType { content_type, .. }) if content_type.starts_with("text/html")),
        "{c:?}"
    );
    assert!(bytes.is_empty(), "no body byte reaches the writer");
    assert!(!responded.load(Ordering::SeqCst));
    assert_eq!(mem.requests().len(), 1, "not retried");
    let h = dl.register(Arc::new(Idle));
    let r = block_on_timeout(
        LIMIT,
        h.execute(FetchCmd::get(url("/portal")).check(reject_html_response)),
    );
    assert!(matches!(r, Err(NetError::InvalidContentType { .. })));
}

/// The check sees every answer of a command, the first and the resume's,
/// with the status, the asked range and the parsed `Content-Range`; a
/// rejection of the resume ends the command with the check's own error,
/// not retried, and no byte of the rejected answer reaches the writer.
#[test]
fn check_judges_the_first_answer_and_each_resume() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    let body = pattern(4000, 3).to_vec();
    mem.insert_resource(
        "http://127.0.0.1/c",
        MemoryResource::new(body.clone())
            .chunk_size(500)
            .fail_after(1500),
    );
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let (c, bytes, _) = one_stream(
        &dl,
        |c| {
            c.range(RangeSpec::from_start(1000)).check(move |a| {
                let mut seen = seen2.lock().unwrap();
                seen.push((
                    a.status,
                    a.requested.map(|r| r.to_string()),
                    a.content_range
                        .map(|cr| (cr.first(), cr.last(), cr.complete_length())),
                    a.resumed_at,
                ));
                if a.resumed_at.is_some() {
                    return Err(NetError::InvalidResponse {
                        url: a.url.clone(),
                        reason: "no resumes here".into(),
                    });
                }
                Ok(())
            })
        },
        "/c",
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (
                StatusCode::PARTIAL_CONTENT,
                Some("bytes=1000-".to_owned()),
                Some((1000, 3999, Some(4000))),
                None
            ),
            (
                StatusCode::PARTIAL_CONTENT,
                Some("bytes=2500-3999".to_owned()),
                Some((2500, 3999, Some(4000))),
                Some(2500)
            ),
        ]
    );
    assert!(
        matches!(&c.error, Some(NetError::InvalidResponse { reason, .. }) if reason == "no resumes here"),
        "{c:?}"
    );
    assert_eq!(bytes, body[1000..2500], "only the first answer's bytes");
    assert_eq!(
        mem.requests().len(),
        2,
        "a non-retryable rejection is final"
    );
}

/// The resume gate is asked at each failure mid-body: `false` ends the
/// command with the failure (no `Range` request), `true` resumes.
#[test]
fn resume_if_gates_the_resume_of_a_failed_body() {
    let spawn = PoolSpawn::new();
    for allow in [false, true] {
        let mem = MemoryClient::new();
        mem.insert_resource(
            "http://127.0.0.1/g",
            MemoryResource::new(pattern(4000, 5).to_vec())
                .chunk_size(500)
                .fail_after(1500),
        );
        let dl = Downloader::new(config(&spawn, mem.clone()));
        let asked = Arc::new(AtomicUsize::new(0));
        let asked2 = asked.clone();
        let (c, bytes, _) = one_stream(
            &dl,
            |c| {
                c.resume_if(move || {
                    asked2.fetch_add(1, Ordering::SeqCst);
                    allow
                })
            },
            "/g",
        );
        let ranges: Vec<_> = mem.requests().into_iter().map(|r| r.range).collect();
        if allow {
            assert!(c.error.is_none(), "{c:?}");
            assert_eq!(bytes, pattern(4000, 5).to_vec());
            assert!(ranges.len() >= 2 && ranges[1].is_some(), "{ranges:?}");
        } else {
            assert!(
                matches!(&c.error, Some(NetError::Transport { .. })),
                "{c:?}"
            );
            assert_eq!(bytes, pattern(4000, 5)[..1500].to_vec());
            assert_eq!(ranges, [None], "no resume request");
            assert_eq!(asked.load(Ordering::SeqCst), 1);
        }
    }
}

/// A check's retryable error counts as a failed attempt: retried under the
/// policy (with `RequestRetried` events), then accepted.
#[test]
fn a_retryable_check_error_is_retried_like_a_failed_attempt() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/r", pattern(3000, 4).to_vec());
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let events = dl.subscribe();
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    let (c, bytes, _) = one_stream(
        &dl,
        |c| {
            c.check(move |a| {
                if calls2.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(NetError::status(
                        StatusCode::SERVICE_UNAVAILABLE,
                        a.url.clone(),
                        None,
                    ));
                }
                Ok(())
            })
        },
        "/r",
    );
    assert!(c.error.is_none(), "{c:?}");
    assert_eq!(bytes, pattern(3000, 4).to_vec());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(mem.requests().len(), 3);
    let retried = events
        .drain()
        .iter()
        .filter(|e| matches!(e, DownloaderEvent::RequestRetried { .. }))
        .count();
    assert_eq!(retried, 2);
}

/// A 1000-byte resource whose first body fails after 300 bytes; each
/// resume is answered `206` with the given `Content-Range` (and the bytes
/// it names, of the right content).
struct BadResume(&'static str);

impl HttpClient for BadResume {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        let body = pattern(1000, 7).to_vec();
        let url = req.url.clone();
        let resume = req.headers.contains_key(http::header::RANGE);
        let mut headers = http::HeaderMap::new();
        let (status, stream): (_, kithara_stream::net::ByteStream) = if resume {
            headers.insert(http::header::CONTENT_RANGE, self.0.parse().unwrap());
            let part = Bytes::copy_from_slice(&body[300..]);
            (
                StatusCode::PARTIAL_CONTENT,
                Box::pin(futures::stream::iter([Ok(part)])),
            )
        } else {
            headers.insert(http::header::CONTENT_LENGTH, 1000.into());
            let head = Bytes::copy_from_slice(&body[..300]);
            let cut = NetError::Transport {
                kind: kithara_stream::net::TransportKind::Body,
                url,
                message: "cut".into(),
            };
            (
                StatusCode::OK,
                Box::pin(futures::stream::iter([Ok(head), Err(cut)])),
            )
        };
        Box::pin(async move { Ok(HttpResponse::new(status, headers, stream)) })
    }
}

/// A resume must continue the same body: a `206` that ends elsewhere or
/// names another total length is an error, and no byte of it is written.
#[test]
fn a_resume_that_ends_elsewhere_or_names_another_length_fails() {
    let spawn = PoolSpawn::new();
    for (content_range, ok) in [
        ("bytes 300-999/1000", true),
        ("bytes 300-799/1000", false),
        ("bytes 300-999/2000", false),
        ("bytes 300-999/*", true),
    ] {
        let dl = Downloader::new(
            config(&spawn, BadResume(content_range)).retry(RetryPolicy::new(
                2,
                Duration::from_millis(1),
                Duration::from_millis(2),
            )),
        );
        let (c, bytes, _) = one_stream(&dl, |c| c, "/x");
        if ok {
            assert!(c.error.is_none(), "{content_range}: {c:?}");
            assert_eq!(bytes, pattern(1000, 7).to_vec(), "{content_range}");
            continue;
        }
        assert!(
            matches!(&c.error, Some(NetError::InvalidResponse { reason, .. }) if reason.starts_with("cannot resume")),
            "{content_range}: {c:?}"
        );
        assert_eq!(bytes, pattern(1000, 7)[..300].to_vec(), "{content_range}");
    }
}

/// Answers every request with a fixed status and `Content-Range`, and ten
/// bytes.
struct LyingRange(StatusCode, &'static str);

impl HttpClient for LyingRange {
    fn send(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_RANGE, self.1.parse().unwrap());
        let status = self.0;
        let body = futures::stream::iter([Ok(Bytes::from_static(&[7; 10]))]);
        Box::pin(async move { Ok(HttpResponse::new(status, headers, Box::pin(body))) })
    }
}

/// The downloader's own checks come first: a `206` whose `Content-Range`
/// is malformed or starts elsewhere than asked, or a `200` that names a
/// part, is rejected with a typed error before the command's check is
/// asked, and no byte is written. A `200` naming the whole resource is fine.
#[test]
fn a_lying_content_range_is_rejected_before_the_check() {
    let spawn = PoolSpawn::new();
    let partial = StatusCode::PARTIAL_CONTENT;
    for (status, content_range, want) in [
        (partial, "bytes 0-9/100", "starting at 0"),
        (partial, "bytes 50-40/100", "malformed"),
        (partial, "bytes */100", "malformed"),
        (
            StatusCode::OK,
            "bytes 40-49/100",
            "a part, not the whole resource",
        ),
        (
            StatusCode::OK,
            "bytes 0-9/100",
            "a part, not the whole resource",
        ),
        (
            StatusCode::OK,
            "bytes 90-99/100",
            "a part, not the whole resource",
        ),
        (
            StatusCode::OK,
            "bytes 0-9/*",
            "a part, not the whole resource",
        ),
        (StatusCode::OK, "bytes 0-9/10", ""),
    ] {
        lying_range_case(&spawn, status, content_range, want, Some(40));
    }
    // No range asked: a 206 must be the resource from byte 0.
    for (content_range, want) in [
        (
            "bytes 5-14/100",
            "asked for the whole resource, got Content-Range starting at 5",
        ),
        (
            "bytes 18446744073709551610-18446744073709551614/*",
            "starting at 18446744073709551610",
        ),
        ("bytes 0-9/10", ""),
    ] {
        lying_range_case(&spawn, partial, content_range, want, None);
    }
}

/// One command for bytes from `range_from` (or the whole resource) against a server that
/// answers `status` with `content_range`: accepted when `want` is empty,
/// else rejected with a reason containing `want` before the check.
fn lying_range_case(
    spawn: &PoolSpawn,
    status: StatusCode,
    content_range: &'static str,
    want: &str,
    range_from: Option<u64>,
) {
    let dl = Downloader::new(config(spawn, LyingRange(status, content_range)));
    let asked = Arc::new(AtomicBool::new(false));
    let asked2 = asked.clone();
    let (c, bytes, _) = one_stream(
        &dl,
        |c| {
            let c = match range_from {
                Some(at) => c.range(RangeSpec::from_start(at)),
                None => c,
            };
            c.check(move |_| {
                asked2.store(true, Ordering::SeqCst);
                Ok(())
            })
        },
        "/x",
    );
    if want.is_empty() {
        assert!(c.error.is_none(), "{content_range}: {c:?}");
        assert_eq!(bytes, [7; 10]);
        assert!(asked.load(Ordering::SeqCst));
        return;
    }
    assert!(
        matches!(&c.error, Some(NetError::InvalidResponse { reason, .. }) if reason.contains(want)),
        "{content_range}: {c:?}"
    );
    assert!(bytes.is_empty(), "{content_range}");
    assert!(
        !asked.load(Ordering::SeqCst),
        "{content_range}: check asked"
    );
}

#[test]
fn stalled_body_ends_with_inactivity_timeout() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    // Every response stalls after 3000 bytes: each resume makes progress,
    // which renews the one-retry budget, so the body completes.
    mem.insert_resource(
        "http://127.0.0.1/stall",
        MemoryResource::new(pattern(10_000, 2).to_vec())
            .chunk_size(1000)
            .stall_after(3000),
    );
    // Every response stalls at once: no progress, one resume, then the error.
    mem.insert_resource(
        "http://127.0.0.1/stall0",
        MemoryResource::new(pattern(10_000, 2).to_vec())
            .chunk_size(1000)
            .stall_after(0),
    );
    let dl = Downloader::new(
        config(&spawn, mem.clone())
            .inactivity_timeout(Duration::from_millis(80))
            .retry(RetryPolicy::new(
                1,
                Duration::from_millis(1),
                Duration::from_millis(1),
            )),
    );
    let events = dl.subscribe();
    let start = Instant::now();
    let (c, bytes, _) = one_stream(&dl, |c| c, "/stall");
    assert!(c.error.is_none(), "{c:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(bytes, pattern(10_000, 2).to_vec());
    let ranges: Vec<_> = mem.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(
        ranges,
        [
            None,
            Some("bytes=3000-9999".to_owned()),
            Some("bytes=6000-9999".to_owned()),
            Some("bytes=9000-9999".to_owned())
        ]
    );
    // Each resume is the first of its run of failures.
    let resumed: Vec<(u64, u32)> = events
        .drain()
        .iter()
        .filter_map(|e| match e {
            DownloaderEvent::RequestResumed {
                offset, attempt, ..
            } => Some((*offset, *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, [(3000, 1), (6000, 1), (9000, 1)]);

    let (c, bytes, _) = one_stream(&dl, |c| c, "/stall0");
    assert!(
        matches!(
            &c.error,
            Some(NetError::Timeout {
                kind: TimeoutKind::Inactivity,
                ..
            })
        ),
        "{c:?}"
    );
    assert!(bytes.is_empty());
    assert_eq!(mem.requests().len(), 6, "one resume only");
    // The imperative body ends with the same error, never a silent short body.
    let h = dl.register(Arc::new(Idle));
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url("/stall0")))).unwrap();
    let err = block_on_timeout(LIMIT, r.body.collect()).unwrap_err();
    assert!(matches!(
        err,
        NetError::Timeout {
            kind: TimeoutKind::Inactivity,
            ..
        }
    ));
}

#[test]
fn short_body_is_an_error() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/short", pattern(1000, 5).to_vec());
    let client = TruncatingClient {
        inner: mem,
        after: 600,
    };
    let dl = Downloader::new(config(&spawn, client).retry(RetryPolicy::none()));
    let (c, bytes, _) = one_stream(&dl, |c| c, "/short");
    assert!(
        matches!(&c.error, Some(NetError::Transport { message, .. }) if message.contains("600 of 1000")),
        "{c:?}"
    );
    assert_eq!(bytes.len(), 600);
    assert_eq!(c.bytes, 600);
}

#[test]
fn writer_error_aborts_fetch() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/w",
        MemoryResource::new(pattern(10_000, 4).to_vec()).chunk_size(1000),
    );
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let done = Completions::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let peer = QueuePeer::new(true);
    let _h = dl.register(peer.clone());
    peer.push(vec![
        FetchCmd::get(url("/w"))
            .writer(move |_: &[u8]| {
                if c2.fetch_add(1, Ordering::SeqCst) == 2 {
                    Err(std::io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            })
            .on_complete(done.cb(0)),
    ]);
    let c = done.wait(1).remove(0);
    assert!(
        matches!(&c.error, Some(NetError::Writer(m)) if m.contains("disk full")),
        "{c:?}"
    );
    assert_eq!(c.bytes, 2000);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(mem.requests().len(), 1, "a writer error is not retried");
}

#[test]
fn resume_after_drops_at_random_offsets() {
    let mut rng = Rng(0x5eed_1234);
    let spawn = PoolSpawn::new();
    for round in 0..12 {
        let len = 5_000 + rng.below(60_000) as usize;
        let body = pattern(len, round + 1);
        let fail_after = (len as u64 / 8).max(1) + rng.below(len as u64 / 2);
        let chunk = 1 + rng.below(4096) as usize;
        let mem = MemoryClient::new();
        let path = format!("/r{round}");
        mem.insert_resource(
            &format!("http://127.0.0.1{path}"),
            MemoryResource::new(body.clone())
                .chunk_size(chunk)
                .fail_after(fail_after),
        );
        let dl = Downloader::new(config(&spawn, mem.clone()).retry(RetryPolicy::new(
            20,
            Duration::from_millis(1),
            Duration::from_millis(2),
        )));
        // Optionally start mid-resource with a Range.
        let start = if round % 3 == 0 {
            rng.below(len as u64 / 2)
        } else {
            0
        };
        let (c, bytes, _) = one_stream(
            &dl,
            |c| {
                if start > 0 {
                    c.range(RangeSpec::from_start(start))
                } else {
                    c
                }
            },
            &path,
        );
        assert!(c.error.is_none(), "round {round}: {c:?}");
        assert_eq!(c.bytes as usize, len - start as usize);
        assert!(
            bytes == body[start as usize..],
            "round {round}: body differs"
        );
        let ranges: Vec<_> = mem.requests().into_iter().map(|r| r.range).collect();
        assert!(ranges.len() >= 2, "round {round}: no resume happened");
        // Imperative body: the same resume inside BodyStream.
        let h = dl.register(Arc::new(Idle));
        let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url(&path)))).unwrap();
        assert!(block_on_timeout(LIMIT, r.body.collect()).unwrap() == body);
    }
}

#[test]
fn resume_against_server_ignoring_range_fails_clearly() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/ir",
        MemoryResource::new(pattern(4000, 9).to_vec())
            .chunk_size(500)
            .fail_after(1500)
            .ignore_range(),
    );
    let dl = Downloader::new(config(&spawn, mem));
    let (c, bytes, _) = one_stream(&dl, |c| c, "/ir");
    assert!(
        matches!(&c.error, Some(NetError::InvalidResponse { reason, .. }) if reason.contains("instead of 206")),
        "{c:?}"
    );
    assert_eq!(
        bytes,
        pattern(4000, 9)[..1500].to_vec(),
        "no byte written twice"
    );
}

#[test]
fn head_and_range_requests_carry_method_and_headers() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/m", pattern(100, 8).to_vec());
    let dl = Downloader::new(config(&spawn, mem.clone()));
    let h = dl.register(Arc::new(Idle));
    let head = block_on_timeout(LIMIT, h.execute(FetchCmd::head(url("/m")))).unwrap();
    assert_eq!(head.headers["content-length"], "100");
    let part = block_on_timeout(
        LIMIT,
        h.execute(FetchCmd::get(url("/m")).range(RangeSpec::new(10, Some(19)).unwrap())),
    )
    .unwrap();
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        block_on_timeout(LIMIT, part.body.collect()).unwrap(),
        pattern(100, 8).slice(10..20)
    );
    let reqs = mem.requests();
    assert_eq!(reqs[0].method, RequestMethod::Head);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=10-19"));
}

// ------------------------------------------------------------ events, lifecycle

#[test]
fn events_sequence_ids_and_bandwidth() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/e", pattern(4000, 6).to_vec());
    let dl = Downloader::new(config(&spawn, mem));
    let all = dl.subscribe();
    let (c, _, _) = one_stream(&dl, |c| c, "/e");
    assert!(c.error.is_none());
    let ev = all.drain();
    assert!(
        matches!(ev[0], DownloaderEvent::RequestEnqueued { request_id, method: RequestMethod::Get, priority: RequestPriority::Low, .. } if request_id.get() == 1)
    );
    assert!(matches!(ev[1], DownloaderEvent::RequestStarted { .. }));
    match ev.last().unwrap() {
        DownloaderEvent::RequestCompleted {
            request_id,
            bytes_transferred,
            duration,
            bandwidth_bps,
        } => {
            assert_eq!(request_id.get(), 1);
            assert_eq!(*bytes_transferred, 4000);
            let ms = (duration.as_millis() as u64).max(1);
            assert_eq!(*bandwidth_bps, 4000 * 8000 / ms);
        }
        e => panic!("{e:?}"),
    }
    let h = dl.register(Arc::new(Idle));
    let _ = block_on_timeout(LIMIT, h.execute(FetchCmd::head(url("/e")))).unwrap();
    let ev = all.drain();
    assert!(ev.iter().all(|e| e.request_id().get() == 2));
    assert_eq!(ev.iter().filter(|e| e.is_terminal()).count(), 1);
}

#[test]
fn epoch_cancel_completes_queued_command_at_once() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/ep", &b"abc"[..]);
    let dl = Downloader::new(config(&spawn, mem).max_concurrent(0));
    let events = dl.subscribe();
    let done = Completions::default();
    let epoch = CancelToken::new();
    let peer = QueuePeer::new(false);
    let h = dl.register(peer.clone());
    peer.push(vec![
        FetchCmd::get(url("/ep"))
            .cancel(epoch.clone())
            .writer(|_: &[u8]| Ok(()))
            .on_complete(done.cb(0)),
    ]);
    assert!(wait_until(LIMIT, || peer
        .batches
        .lock()
        .unwrap()
        .is_empty()));
    epoch.cancel();
    let c = done.wait(1).remove(0);
    assert!(matches!(c.error, Some(NetError::Cancelled)));
    assert!(!h.cancel().is_cancelled());
    assert!(wait_until(LIMIT, || events.drain().iter().any(
        |e| matches!(
            e,
            DownloaderEvent::RequestCancelled {
                reason: CancelReason::EpochCancel,
                ..
            }
        )
    )));
}

#[test]
fn dropping_peer_handle_cancels_and_releases_peer() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/d", &b"abc"[..]);
    let dl = Downloader::new(config(&spawn, mem).max_concurrent(0));
    let done = Completions::default();
    let peer = QueuePeer::new(false);
    let h = dl.register(peer.clone());
    peer.push(
        (0..3)
            .map(|i| FetchCmd::get(url("/d")).on_complete(done.cb(i)))
            .collect(),
    );
    assert!(wait_until(LIMIT, || peer
        .batches
        .lock()
        .unwrap()
        .is_empty()));
    drop(h);
    let all = done.wait(3);
    assert!(
        all.iter()
            .all(|c| matches!(c.error, Some(NetError::Cancelled)))
    );
    assert!(
        wait_until(LIMIT, || Arc::strong_count(&peer) == 1),
        "registry released the peer"
    );
    assert!(dl.is_running());
}

#[test]
fn dropping_every_handle_stops_the_loop() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/s", &b"abc"[..]);
    let dl = Downloader::new(config(&spawn, mem));
    let h = dl.register(Arc::new(Idle));
    let events = dl.subscribe();
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::get(url("/s")))).unwrap();
    drop(r);
    assert!(spawn.live() >= 1, "the loop is running");
    drop(dl);
    // The fetch task ends just after handing over the response.
    assert!(wait_until(LIMIT, || spawn.live() == 1));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(spawn.live(), 1, "a PeerHandle keeps the loop alive");
    drop(h);
    assert!(
        wait_until(LIMIT, || spawn.live() == 0),
        "loop task still alive"
    );
    // The publisher is gone: the subscription ends.
    let rest: Vec<_> = block_on_timeout(LIMIT, events.collect::<Vec<_>>());
    assert!(rest.iter().all(|e| e.request_id().get() == 1));
}

#[test]
fn demand_throttle_is_preempted_by_urgent_work() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/t", &b"abc"[..]);
    let throttle = Duration::from_millis(1500);
    let dl = Downloader::new(config(&spawn, mem).demand_throttle(throttle));
    let done = Completions::default();
    let low = QueuePeer::new(false);
    let _hl = dl.register(low.clone());
    let playing = dl.register(QueuePeer::new(true));
    low.push(vec![FetchCmd::get(url("/t")).on_complete(done.cb(0))]);
    assert!(wait_until(LIMIT, || low.batches.lock().unwrap().is_empty()));
    let start = Instant::now();
    // Urgent work (a High peer's) goes first, well within the throttle.
    let r = block_on_timeout(LIMIT, playing.execute(FetchCmd::head(url("/t"))));
    assert_eq!(r.unwrap().status, StatusCode::OK);
    // Well within the throttle (generous: a loaded machine stays far below).
    assert_eq!(done.len(), 0, "demand work still throttled");
    assert!(start.elapsed() < throttle, "{:?}", start.elapsed());
    let c = done.wait(1).remove(0);
    assert!(c.error.is_none());
    assert!(
        start.elapsed() >= throttle - Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn live_reslot_when_peer_priority_changes() {
    let spawn = PoolSpawn::new();
    let dl =
        Downloader::new(config(&spawn, seg_client(Duration::from_millis(10))).max_concurrent(1));
    let done = Completions::default();
    let a = QueuePeer::new(false);
    let b = QueuePeer::new(false);
    let _ha = dl.register(a.clone());
    let _hb = dl.register(b.clone());
    b.push(tagged_gets(6, 100, &done));
    assert!(wait_until(LIMIT, || b.batches.lock().unwrap().is_empty()));
    a.push(tagged_gets(6, 0, &done));
    assert!(wait_until(LIMIT, || a.batches.lock().unwrap().is_empty()));
    a.set_high(true);
    let order: Vec<usize> = done.wait(12).iter().map(|c| c.tag).collect();
    // At most two of B's commands had started before A moved up.
    let first_a = order.iter().position(|t| *t < 100).unwrap();
    assert!(first_a <= 2, "{order:?}");
    assert!(
        order[first_a..first_a + 6].iter().all(|t| *t < 100),
        "{order:?}"
    );
}

#[test]
fn slow_subscriber_never_blocks_downloads() {
    let spawn = PoolSpawn::new();
    let (_, client) = head_client(1, Duration::ZERO);
    let dl = Downloader::new(config(&spawn, client).event_capacity(8));
    let never_read = dl.subscribe();
    let h = dl.register(Arc::new(Idle));
    let results = block_on_timeout(
        LIMIT,
        h.batch((0..200).map(|_| FetchCmd::head(url("/h0"))).collect()),
    );
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(never_read.drain().len(), 8);
    // Enqueued + Started + Completed per request.
    assert_eq!(never_read.dropped(), 600 - 8);
}

// ------------------------------------------------------------ stress

/// A peer yielding random batches with random epochs; counts what it handed out.
struct ChaosPeer {
    rng: Mutex<Rng>,
    left: AtomicUsize,
    epochs: Mutex<Vec<CancelToken>>,
    handed: Arc<AtomicUsize>,
    counts: Arc<Vec<AtomicU64>>,
    next: Arc<AtomicUsize>,
}

impl Peer for ChaosPeer {
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        let mut rng = self.rng.lock().unwrap();
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Poll::Ready(None);
        }
        let n = (1 + rng.below(6) as usize).min(left);
        self.left.fetch_sub(n, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        let mut cmds = Vec::new();
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let counts = self.counts.clone();
            let mut cmd = FetchCmd::get(url(if rng.chance(50) { "/c0" } else { "/c1" }))
                .on_complete(move |_, _, _| {
                    counts[i].fetch_add(1, Ordering::SeqCst);
                });
            if rng.chance(70) {
                cmd = cmd.writer(|_: &[u8]| Ok(()));
            }
            if rng.chance(50) {
                let t = CancelToken::new();
                self.epochs.lock().unwrap().push(t.clone());
                cmd = cmd.cancel(t);
            }
            if rng.chance(20) {
                cmd = cmd.priority(RequestPriority::High);
            }
            cmds.push(cmd);
        }
        self.handed.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(cmds))
    }
    fn priority(&self) -> RequestPriority {
        if self.left.load(Ordering::SeqCst).is_multiple_of(2) {
            RequestPriority::High
        } else {
            RequestPriority::Low
        }
    }
}

#[test]
fn exactly_once_on_complete_under_random_cancellation() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/c0",
        MemoryResource::new(pattern(20_000, 1).to_vec()).chunk_size(512),
    );
    mem.insert_resource(
        "http://127.0.0.1/c1",
        MemoryResource::new(pattern(8_000, 2).to_vec())
            .chunk_size(256)
            .fail_after(3000),
    );
    let client: Arc<dyn HttpClient> = Arc::new(DelayClient {
        inner: mem,
        delay: Duration::from_millis(1),
    });
    let mut master = Rng(0xC0FF_EE00);
    let started = Instant::now();
    let mut total_handed = 0;
    for iteration in 0..40u64 {
        let mut rng = Rng(master.next() | 1);
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..600).map(|_| AtomicU64::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let handed = Arc::new(AtomicUsize::new(0));
        let dl = Downloader::new(
            DownloaderConfig::new(Arc::new(spawn.clone()), client.clone())
                .max_concurrent(1 + rng.below(4) as usize)
                .retry(RetryPolicy::new(
                    2,
                    Duration::from_millis(1),
                    Duration::from_millis(2),
                )),
        );
        let peers: Vec<Arc<ChaosPeer>> = (0..3)
            .map(|_| {
                Arc::new(ChaosPeer {
                    rng: Mutex::new(Rng(rng.next() | 1)),
                    left: AtomicUsize::new(40 + rng.below(100) as usize),
                    epochs: Mutex::default(),
                    handed: handed.clone(),
                    counts: counts.clone(),
                    next: next.clone(),
                })
            })
            .collect();
        let mut handles: Vec<Option<_>> =
            peers.iter().map(|p| Some(dl.register(p.clone()))).collect();
        // Random cancellations at random moments.
        for _ in 0..(5 + rng.below(20)) {
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
            match rng.below(10) {
                0..=5 => {
                    let p = &peers[rng.below(3) as usize];
                    let epochs = p.epochs.lock().unwrap();
                    if !epochs.is_empty() {
                        epochs[rng.below(epochs.len() as u64) as usize].cancel();
                    }
                }
                6..=7 => {
                    let i = rng.below(3) as usize;
                    handles[i] = None;
                }
                8 => handles[rng.below(3) as usize]
                    .iter()
                    .for_each(|h| h.cancel().cancel()),
                _ => {
                    if rng.chance(30) {
                        dl.cancel().cancel();
                    }
                }
            }
        }
        // Finish: either shut down, or let the rest complete.
        if rng.chance(50) {
            dl.cancel().cancel();
        }
        drop(handles);
        drop(dl);
        assert!(
            wait_until(LIMIT, || spawn.live() == 0),
            "iteration {iteration}: tasks left"
        );
        let handed = handed.load(Ordering::SeqCst);
        total_handed += handed;
        for (i, c) in counts.iter().enumerate().take(next.load(Ordering::SeqCst)) {
            assert_eq!(
                c.load(Ordering::SeqCst),
                1,
                "iteration {iteration}: command {i}"
            );
        }
        assert!(
            counts
                .iter()
                .skip(handed)
                .all(|c| c.load(Ordering::SeqCst) == 0)
        );
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "stress too slow"
        );
    }
    assert!(total_handed > 100);
}

/// Runs the first task (the loop) and drops every later one unpolled, like
/// an executor shutting down.
struct DropTasks {
    inner: PoolSpawn,
    seen: AtomicUsize,
}

impl kithara_stream::rt::Spawn for DropTasks {
    fn spawn(&self, task: kithara_stream::rt::BoxFuture<'static, ()>) {
        if self.seen.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.spawn(task);
        } else {
            drop(task);
        }
    }
    fn sleep(&self, d: Duration) -> kithara_stream::rt::BoxFuture<'static, ()> {
        sleep(d)
    }
}

#[test]
fn tasks_dropped_by_the_executor_still_complete_once() {
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/x", &b"abc"[..]);
    let spawn = Arc::new(DropTasks {
        inner: PoolSpawn::new(),
        seen: AtomicUsize::new(0),
    });
    let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(mem)).max_concurrent(2));
    let done = Completions::default();
    let peer = QueuePeer::new(false);
    let h = dl.register(peer.clone());
    peer.push(
        (0..5)
            .map(|i| FetchCmd::get(url("/x")).on_complete(done.cb(i)))
            .collect(),
    );
    let all = done.wait(5);
    assert!(
        all.iter()
            .all(|c| matches!(c.error, Some(NetError::Cancelled)))
    );
    // Their slots came back: imperative work is answered (Cancelled) too.
    let r = block_on_timeout(LIMIT, h.execute(FetchCmd::head(url("/x"))));
    assert!(matches!(r, Err(NetError::Cancelled)));
    assert!(wait_until(LIMIT, || dl.inflight() == 0));
}

// ------------------------------------------------ inactivity timer, per chunk

/// Delivers each body chunk `gap` after it was asked for; with `stall_at`,
/// the body goes silent for good before chunk `stall_at`.
struct TrickleClient {
    inner: MemoryClient,
    gap: Duration,
    stall_at: Option<usize>,
}

impl HttpClient for TrickleClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut resp = self.inner.send(request).await?;
            let body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let (gap, stall_at) = (self.gap, self.stall_at);
            let body = futures::stream::unfold((body, 0usize), move |(mut b, i)| async move {
                if stall_at == Some(i) {
                    futures::future::pending::<()>().await;
                }
                sleep(gap).await;
                let item = b.next().await?;
                Some((item, (b, i + 1)))
            });
            Ok(HttpResponse::new(resp.status, resp.headers, Box::pin(body)))
        })
    }
}

fn trickle(gap: Duration, stall_at: Option<usize>) -> TrickleClient {
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/trickle",
        MemoryResource::new(pattern(8000, 9).to_vec()).chunk_size(1000),
    );
    TrickleClient {
        inner: mem,
        gap,
        stall_at,
    }
}

/// Reads an `execute` body, stamping each chunk; gives the chunks' times
/// and how the body ended.
fn stamped_read(dl: &Downloader, path: &str) -> (Vec<Instant>, Result<u64, NetError>) {
    let h = dl.register(Arc::new(Idle));
    block_on_timeout(LIMIT, async {
        let mut stamps = Vec::new();
        let mut body = match h.execute(FetchCmd::get(url(path))).await {
            Ok(r) => r.body,
            Err(e) => return (stamps, Err(e)),
        };
        let mut n = 0u64;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    stamps.push(Instant::now());
                    n += chunk.len() as u64;
                }
                Err(e) => {
                    stamps.push(Instant::now());
                    return (stamps, Err(e));
                }
            }
        }
        (stamps, Ok(n))
    })
}

/// The inactivity timeout counts from the last chunk, not from the start of
/// the body: chunks every 0.3 × timeout take 2.4 × timeout in all and never
/// time out (nor resume). The margin (280 ms per chunk) survives a loaded
/// machine.
#[test]
fn trickling_body_under_the_inactivity_timeout_never_times_out() {
    let spawn = PoolSpawn::new();
    let client = trickle(Duration::from_millis(120), None);
    let mem = client.inner.clone();
    let dl = Downloader::new(
        config(&spawn, client)
            .inactivity_timeout(Duration::from_millis(400))
            .retry(RetryPolicy::none()),
    );
    let (stamps, end) = stamped_read(&dl, "/trickle");
    assert_eq!(end.unwrap(), 8000);
    assert_eq!(stamps.len(), 8);
    assert_eq!(mem.requests().len(), 1, "no resume");
}

/// A body that goes silent after some data fails with the inactivity
/// timeout, never earlier than the timeout after its last chunk (a timer
/// armed at an earlier chunk must not cut it short) and within a generous
/// bound after it.
#[test]
fn body_silent_after_data_times_out_one_period_after_its_last_chunk() {
    let spawn = PoolSpawn::new();
    let timeout = Duration::from_millis(400);
    let dl = Downloader::new(
        config(&spawn, trickle(Duration::from_millis(120), Some(4)))
            .inactivity_timeout(timeout)
            .retry(RetryPolicy::none()),
    );
    let (stamps, end) = stamped_read(&dl, "/trickle");
    assert!(
        matches!(
            end,
            Err(NetError::Timeout {
                kind: TimeoutKind::Inactivity,
                ..
            })
        ),
        "{end:?}"
    );
    assert_eq!(stamps.len(), 5, "four chunks, then the error");
    let silence = stamps[4].duration_since(stamps[3]);
    assert!(silence >= timeout, "timed out early: {silence:?}");
    assert!(
        silence < Duration::from_secs(5),
        "timed out late: {silence:?}"
    );
}

/// A zero inactivity timeout is off: a stalled body waits, and cancelling
/// the peer ends it with `Cancelled` at once.
#[test]
fn zero_inactivity_timeout_waits_until_cancelled() {
    let spawn = PoolSpawn::new();
    let dl = Downloader::new(
        config(&spawn, trickle(Duration::ZERO, Some(2))).inactivity_timeout(Duration::ZERO),
    );
    let h = dl.register(Arc::new(Idle));
    let token = h.cancel();
    let cancel_at = Arc::new(Mutex::new(None));
    let read = Arc::new(AtomicUsize::new(0));
    let at = cancel_at.clone();
    let seen = read.clone();
    // Cancel once both chunks before the stall are in (the body is then
    // waiting on a stalled stream with no timer), and a little after.
    let canceller = bounded_thread("canceller", move || {
        eventually(LIMIT, "two chunks read", || {
            seen.load(Ordering::SeqCst) == 2000
        });
        std::thread::sleep(Duration::from_millis(50));
        *at.lock().unwrap() = Some(Instant::now());
        token.cancel();
    });
    let result = block_on_timeout(LIMIT, async {
        let mut body = h.execute(FetchCmd::get(url("/trickle"))).await?.body;
        while let Some(chunk) = body.next().await {
            read.fetch_add(chunk?.len(), Ordering::SeqCst);
        }
        Ok::<_, NetError>(read.load(Ordering::SeqCst))
    });
    canceller.join(LIMIT);
    assert!(matches!(result, Err(NetError::Cancelled)), "{result:?}");
    let late = cancel_at.lock().unwrap().unwrap().elapsed();
    assert!(late < Duration::from_secs(5), "cancel took {late:?}");
}

/// Counts the timers made through it.
struct CountSleeps {
    inner: PoolSpawn,
    sleeps: Arc<AtomicUsize>,
}

impl kithara_stream::rt::Spawn for CountSleeps {
    fn spawn(&self, task: kithara_stream::rt::BoxFuture<'static, ()>) {
        self.inner.spawn(task);
    }
    fn sleep(&self, d: Duration) -> kithara_stream::rt::BoxFuture<'static, ()> {
        self.sleeps.fetch_add(1, Ordering::SeqCst);
        sleep(d)
    }
}

/// Returns `Pending` (and wakes itself) before every chunk, as a socket
/// that is read faster than it fills does.
struct PendingFirstClient(MemoryClient);

impl HttpClient for PendingFirstClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut resp = self.0.send(request).await?;
            let mut body = std::mem::replace(&mut resp.body, Box::pin(futures::stream::empty()));
            let mut yielded = false;
            let body = futures::stream::poll_fn(move |cx| {
                yielded = !yielded;
                if yielded {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                body.poll_next_unpin(cx)
            });
            Ok(HttpResponse::new(resp.status, resp.headers, Box::pin(body)))
        })
    }
}

/// The inactivity timeout costs one timer per body, not one per chunk,
/// also when every chunk is waited for.
#[test]
fn inactivity_timer_is_made_once_per_body_not_per_chunk() {
    let mem = MemoryClient::new();
    mem.insert_resource(
        "http://127.0.0.1/many",
        MemoryResource::new(pattern(200_000, 4).to_vec()).chunk_size(1000),
    );
    let sleeps = Arc::new(AtomicUsize::new(0));
    let spawn = CountSleeps {
        inner: PoolSpawn::new(),
        sleeps: sleeps.clone(),
    };
    let dl = Downloader::new(
        DownloaderConfig::new(Arc::new(spawn), Arc::new(PendingFirstClient(mem)))
            .soft_timeout(Duration::ZERO)
            .request_timeout(Duration::ZERO)
            .inactivity_timeout(Duration::from_secs(30)),
    );
    let h = dl.register(Arc::new(Idle));
    let body = block_on_timeout(LIMIT, async {
        h.execute(FetchCmd::get(url("/many")))
            .await?
            .body
            .collect()
            .await
    })
    .unwrap();
    assert_eq!(body.len(), 200_000);
    let made = sleeps.load(Ordering::SeqCst);
    assert!(made <= 2, "{made} timers for 200 chunks");
}

// ------------------------------------------- the loop and slow peer teardown

/// Holds a peer's drop until released (or 30 s pass), like a file-backed
/// protocol whose last storage handle syncs and closes a large cache file.
#[derive(Default)]
struct Gate {
    entered: AtomicBool,
    open: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Opens the gate however the test ends, so no pool thread stays blocked.
struct OpenOnDrop(Arc<Gate>);
impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

struct SlowDropPeer(Arc<Gate>);
impl Peer for SlowDropPeer {}
impl Drop for SlowDropPeer {
    fn drop(&mut self) {
        self.0.entered.store(true, Ordering::SeqCst);
        let open = self.0.open.lock().unwrap();
        let _ = self
            .0
            .cv
            .wait_timeout_while(open, Duration::from_secs(30), |open| !*open)
            .unwrap();
    }
}

/// A retired peer is dropped off the loop: while its teardown blocks,
/// another peer registers and its `execute` body delivers its first chunk.
/// (Before, the loop itself ran the drop, and everything else waited for
/// it: tens of ms after a large file-backed stream, in the pipeline bench.)
#[test]
fn slow_peer_teardown_does_not_stall_the_loop() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert("http://127.0.0.1/x", pattern(5000, 6).to_vec());
    let dl = Downloader::new(config(&spawn, mem));
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(gate.clone());
    drop(dl.register(Arc::new(SlowDropPeer(gate.clone()))));
    assert!(wait_until(LIMIT, || gate.entered.load(Ordering::SeqCst)));
    let h = dl.register(Arc::new(Idle));
    let first = block_on_timeout(Duration::from_secs(10), async {
        let mut body = h.execute(FetchCmd::get(url("/x"))).await?.body;
        body.next().await.unwrap_or(Err(NetError::Cancelled))
    })
    .unwrap();
    assert!(!first.is_empty());
    assert!(
        !*gate.open.lock().unwrap(),
        "the first chunk came while the old peer's drop still blocked"
    );
}

/// The first answer gave no end (a `200` without `Content-Length` to a
/// ranged request): a resume after a dropped body asks for the rest of the
/// *request's* range, not for the rest of the resource.
#[test]
fn resume_without_a_known_end_keeps_the_requested_range_end() {
    let spawn = PoolSpawn::new();
    let body = pattern(1000, 21);
    let first = MemoryClient::new();
    first.insert_resource(
        "http://127.0.0.1/nr",
        MemoryResource::new(body.clone())
            .ignore_range()
            .no_length()
            .chunk_size(16)
            .fail_after(40),
    );
    let then = MemoryClient::new();
    then.insert_resource(
        "http://127.0.0.1/nr",
        MemoryResource::new(body.clone()).chunk_size(16),
    );
    let dl = Downloader::new(config(&spawn, FirstThen::new(first.clone(), then.clone())));
    let (c, bytes, _) = one_stream(
        &dl,
        |c| c.range(RangeSpec::new(0, Some(99)).unwrap()),
        "/nr",
    );
    assert!(c.error.is_none(), "{c:?}");
    let ranges: Vec<_> = first
        .requests()
        .into_iter()
        .chain(then.requests())
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        [
            Some("bytes=0-99".to_owned()),
            Some("bytes=40-99".to_owned())
        ]
    );
    assert_eq!(bytes, body[..100].to_vec());
    assert_eq!(c.bytes, 100);
}

#[test]
fn range_spec_accessors() {
    let closed = RangeSpec::new(10, Some(19)).unwrap();
    assert_eq!(
        (closed.start(), closed.end(), closed.len()),
        (10, Some(19), Some(10))
    );
    assert!(!closed.is_empty(), "a range spec holds at least one byte");
    let one = RangeSpec::new(7, Some(7)).unwrap();
    assert_eq!((one.end(), one.len()), (Some(7), Some(1)));
    assert!(!one.is_empty());
    let open = RangeSpec::from_start(5);
    assert_eq!((open.start(), open.end(), open.len()), (5, None, None));
    assert!(!open.is_empty());
    let r = RangeSpec::from_range(3..8).unwrap();
    assert_eq!((r.start(), r.end()), (3, Some(7)));
    assert_eq!(r.to_header_value(), "bytes=3-7");
}

/// Retry waits: none before the first retry, then the base delay doubling
/// per attempt, capped.
#[test]
fn retry_delays_double_from_the_base_up_to_the_cap() {
    let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_secs(1));
    let delays: Vec<_> = (0..6).map(|a| p.delay_for_attempt(a)).collect();
    assert_eq!(
        delays,
        [0, 100, 200, 400, 800, 1000].map(Duration::from_millis)
    );
    assert_eq!(p.delay_for_attempt(u32::MAX), Duration::from_secs(1));
}

//! Downloader tests against the loopback test server (`tests/support`), once
//! per enabled backend pair: `reqwest::*` (tokio + reqwest) and `surf::*`
//! (async-std + surf). Only 127.0.0.1 is used; every wait is bounded.
#![cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "dl_common/completions.rs"]
mod completions;
mod support;
use completions::{Completed as Done, Completions};

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kithara_stream::dl::{
    Downloader, DownloaderConfig, DownloaderEvent, FetchCmd, Peer, RequestPriority,
    reject_html_response,
};
use kithara_stream::net::{NetError, RangeSpec, RetryPolicy, TimeoutKind};
use support::backends::{Env, backend_tests};
use support::server::{BlackHole, Cut, Resource, TestServer, checksum, pseudo_random};

/// Bound on one step of a test.
const LIMIT: Duration = Duration::from_secs(20);

fn config(env: &Env) -> DownloaderConfig {
    DownloaderConfig::new(env.spawn.clone(), env.client.clone()).retry(RetryPolicy::new(
        3,
        Duration::from_millis(2),
        Duration::from_millis(20),
    ))
}

async fn within<F: Future>(env: &Env, fut: F) -> F::Output {
    env.timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("[{}] step did not finish within {LIMIT:?}", env.name))
}

/// Re-checks `cond` every 2 ms on the backend's timer, at most `LIMIT`.
async fn wait_for(env: &Env, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        env.sleep(Duration::from_millis(2)).await;
    }
    cond()
}

struct Idle;
impl Peer for Idle {}

/// Yields prepared batches (one per poll), then `Ready(None)`.
struct ListPeer {
    batches: Mutex<Vec<Vec<FetchCmd>>>,
    high: bool,
    /// Commands handed out so far.
    handed: AtomicUsize,
}

impl ListPeer {
    fn new(high: bool, mut batches: Vec<Vec<FetchCmd>>) -> Arc<Self> {
        batches.reverse();
        Arc::new(Self {
            batches: Mutex::new(batches),
            high,
            handed: AtomicUsize::new(0),
        })
    }
}

impl Peer for ListPeer {
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        cx.waker().wake_by_ref();
        let batch = self.batches.lock().unwrap().pop();
        if let Some(b) = &batch {
            self.handed.fetch_add(b.len(), Ordering::SeqCst);
        }
        Poll::Ready(batch)
    }
    fn priority(&self) -> RequestPriority {
        if self.high {
            RequestPriority::High
        } else {
            RequestPriority::Low
        }
    }
}

/// Waits (asynchronously, bounded) until `n` completions were recorded.
async fn wait_done(done: &Completions, env: &Env, n: usize) -> Vec<Done> {
    assert!(
        wait_for(env, || done.len() >= n).await,
        "[{}] {} of {n} completions",
        env.name,
        done.len()
    );
    done.all()
}

/// One streaming command through a `High` peer: its completion and the
/// bytes its writer saw.
async fn stream_one(env: &Env, dl: &Downloader, cmd: FetchCmd) -> (Done, Vec<u8>) {
    let done = Completions::default();
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    let b = buf.clone();
    let cmd = cmd
        .writer(move |c: &[u8]| {
            b.lock().unwrap().extend_from_slice(c);
            Ok(())
        })
        .on_complete(done.cb(0));
    let _h = dl.register(ListPeer::new(true, vec![vec![cmd]]));
    let d = wait_done(&done, env, 1).await.remove(0);
    let bytes = buf.lock().unwrap().clone();
    (d, bytes)
}

fn heads(server: &TestServer, path: &str, n: usize) -> Vec<FetchCmd> {
    (0..n).map(|_| FetchCmd::head(server.url(path))).collect()
}

backend_tests! {
    fn execute_get_head_and_range_roundtrip(env) {
        let server = TestServer::start();
        let body = pseudo_random(100_000, 11);
        server.add("/a", Resource::new(body.clone()));
        let dl = Downloader::new(config(&env));
        let h = dl.register(Arc::new(Idle));
        let r = within(&env, h.execute(FetchCmd::get(server.url("/a")))).await.unwrap();
        assert_eq!(within(&env, r.body.collect()).await.unwrap(), body);
        let head = within(&env, h.execute(FetchCmd::head(server.url("/a")))).await.unwrap();
        assert_eq!(head.headers["content-length"], "100000");
        let part = within(
            &env,
            h.execute(FetchCmd::get(server.url("/a")).range(RangeSpec::new(500, Some(1499)).unwrap())),
        )
        .await
        .unwrap();
        assert_eq!(part.status, 206);
        assert_eq!(within(&env, part.body.collect()).await.unwrap(), body.slice(500..1500));
        let log = server.stats().log;
        let methods: Vec<&str> = log.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(methods, ["GET", "HEAD", "GET"]);
        assert_eq!(log[2].range.as_deref(), Some("bytes=500-1499"));
    }

    fn max_concurrent_limits_inflight_connections(env) {
        let server = TestServer::start();
        server.add("/h", Resource::new(&b"x"[..]).header_delay(Duration::from_millis(5)));
        let dl = Downloader::new(config(&env).max_concurrent(5));
        let h = dl.register(Arc::new(Idle));
        let results = within(&env, h.batch(heads(&server, "/h", 1000))).await;
        assert_eq!(results.len(), 1000);
        assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
        let peak = server.stats().peak_in_flight;
        assert!((1..=5).contains(&peak), "[{}] peak {peak}", env.name);
    }

    fn many_downloaders_global_peak_stays_bounded(env) {
        let server = TestServer::start();
        server.add("/h", Resource::new(&b"x"[..]).header_delay(Duration::from_millis(2)));
        let dls: Vec<_> = (0..20).map(|_| Downloader::new(config(&env).max_concurrent(3))).collect();
        let hs: Vec<_> = dls.iter().map(|d| d.register(Arc::new(Idle))).collect();
        let all = within(
            &env,
            futures::future::join_all(hs.iter().map(|h| h.batch(heads(&server, "/h", 30)))),
        )
        .await;
        assert!(all.iter().flatten().all(Result::is_ok));
        assert_eq!(all.iter().map(Vec::len).sum::<usize>(), 600);
        assert!(server.stats().peak_in_flight <= 60);
    }

    fn poll_next_respects_max_concurrent(env) {
        let server = TestServer::start();
        server.add("/h", Resource::new(&b"x"[..]).header_delay(Duration::from_millis(2)));
        let dl = Downloader::new(config(&env).max_concurrent(5));
        let done = Completions::default();
        let batches = (0..30)
            .map(|i| {
                (0..10)
                    .map(|j| FetchCmd::head(server.url("/h")).on_complete(done.cb(i * 10 + j)))
                    .collect()
            })
            .collect();
        let _h = dl.register(ListPeer::new(false, batches));
        let all = wait_done(&done, &env, 300).await;
        assert!(all.iter().all(|d| d.error.is_none()));
        let peak = server.stats().peak_in_flight;
        assert!((1..=5).contains(&peak), "[{}] peak {peak}", env.name);
    }

    fn max_concurrent_peak_three_peers_mixing_poll_next_and_batch(env) {
        let server = TestServer::start();
        server.add("/h", Resource::new(&b"x"[..]));
        server.add("/g", Resource::new(pseudo_random(20_000, 2)));
        let dl = Downloader::new(config(&env).max_concurrent(4));
        let done = Completions::default();
        let streaming = |base: usize| {
            (0..20)
                .map(|i| {
                    (0..10)
                        .map(|j| {
                            FetchCmd::get(server.url("/g"))
                                .writer(|_: &[u8]| Ok(()))
                                .on_complete(done.cb(base + i * 10 + j))
                        })
                        .collect()
                })
                .collect()
        };
        let peers = [
            dl.register(ListPeer::new(true, streaming(0))),
            dl.register(ListPeer::new(false, streaming(1000))),
            dl.register(ListPeer::new(false, streaming(2000))),
        ];
        // 400 imperative commands spread over the three handles.
        let batches = peers.iter().map(|h| {
            h.batch(
                (0..134)
                    .map(|i| {
                        if i % 2 == 0 {
                            FetchCmd::get(server.url("/g"))
                        } else {
                            FetchCmd::head(server.url("/h"))
                        }
                    })
                    .collect(),
            )
        });
        let results = within(&env, futures::future::join_all(batches)).await;
        assert!(results.iter().flatten().all(Result::is_ok));
        let all = wait_done(&done, &env, 600).await;
        assert!(all.iter().all(|d| d.error.is_none()));
        let peak = server.stats().peak_in_flight;
        assert!((1..=4).contains(&peak), "[{}] peak {peak} over 1002 commands", env.name);
    }

    fn shared_client_keepalive_bounds_socket_count(env) {
        let server = TestServer::start();
        server.add("/h", Resource::new(&b"x"[..]));
        for _wave in 0..4 {
            let dls: Vec<_> = (0..8).map(|_| Downloader::new(config(&env))).collect();
            let hs: Vec<_> = dls.iter().map(|d| d.register(Arc::new(Idle))).collect();
            let all = within(
                &env,
                futures::future::join_all(hs.iter().map(|h| h.batch(heads(&server, "/h", 40)))),
            )
            .await;
            assert!(all.iter().flatten().all(Result::is_ok));
        }
        // 8 downloaders × 5 slots = 40 requests in flight at most. Separate
        // pools per downloader would open at least 4 waves × 40 = 160
        // sockets; one shared pool stays near 40 (a pool may open a socket
        // while a finished one is not back idle yet, hence the margin).
        let ports = server.stats().client_ports.len();
        if env.name == "surf" {
            // SurfClient::new() turns keep-alive off (one socket per
            // request, see backends/surf.rs): no pool to share, and every
            // request still succeeds on a socket of its own.
            assert!(ports > 100, "[surf] {ports} client ports for 1280 requests");
        } else {
            assert!(ports <= 100, "[{}] {ports} client ports", env.name);
        }
    }

    fn soft_timeout_publishes_load_slow_on_peer_bus(env) {
        let server = TestServer::start();
        server.add("/slow", Resource::new(&b"x"[..]).header_delay(Duration::from_millis(300)));
        let dl = Downloader::new(config(&env).soft_timeout(Duration::from_millis(50)));
        let h = dl.register(Arc::new(Idle));
        let events = h.subscribe();
        let r = within(&env, h.execute(FetchCmd::get(server.url("/slow")))).await.unwrap();
        assert_eq!(&within(&env, r.body.collect()).await.unwrap()[..], b"x");
        assert!(events.drain().iter().any(|e| matches!(e, DownloaderEvent::LoadSlow { .. })));
    }

    fn active_peer_completes_before_preload_under_contention(env) {
        let server = TestServer::start();
        server.add(
            "/seg",
            Resource::new(pseudo_random(4096, 1)).header_delay(Duration::from_millis(15)),
        );
        let dl = Downloader::new(config(&env).max_concurrent(2));
        let done = Completions::default();
        let cmds = |base: usize| {
            (0..20)
                .map(|i| {
                    FetchCmd::get(server.url("/seg"))
                        .writer(|_: &[u8]| Ok(()))
                        .on_complete(done.cb(base + i))
                })
                .collect::<Vec<_>>()
        };
        let _preload = dl.register(ListPeer::new(false, vec![cmds(100)]));
        let _active = dl.register(ListPeer::new(true, vec![cmds(0)]));
        let order: Vec<usize> = wait_done(&done, &env, 40).await.iter().map(|d| d.tag).collect();
        let mut uniq = order.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), 40, "each on_complete exactly once");
        let median = |active: bool| {
            let v: Vec<usize> = order
                .iter()
                .enumerate()
                .filter(|(_, t)| (**t < 100) == active)
                .map(|(i, _)| i)
                .collect();
            v[v.len() / 2]
        };
        assert!(median(true) < median(false), "{order:?}");
        assert!(order[..10].iter().filter(|t| **t < 100).count() > 5, "{order:?}");
    }

    fn both_peers_idle_no_priority_ordering_asserted(env) {
        let server = TestServer::start();
        server.add("/seg", Resource::new(pseudo_random(4096, 1)));
        let dl = Downloader::new(config(&env).max_concurrent(2));
        let done = Completions::default();
        let cmds = |base: usize| {
            (0..10)
                .map(|i| FetchCmd::get(server.url("/seg")).writer(|_: &[u8]| Ok(())).on_complete(done.cb(base + i)))
                .collect::<Vec<_>>()
        };
        let _a = dl.register(ListPeer::new(false, vec![cmds(0)]));
        let _b = dl.register(ListPeer::new(false, vec![cmds(100)]));
        assert_eq!(wait_done(&done, &env, 20).await.len(), 20);
    }

    /// One slot, held by an unread body; then queued: a preload peer's
    /// streaming GETs (Low, Low), a playing peer's (High, Low) and an
    /// `execute` from the preload peer (Low, High). Once the slot frees they
    /// start in slot order.
    fn peer_handle_execute_respects_either_peer_priority(env) {
        let server = TestServer::start();
        for p in ["/hold", "/seg", "/play", "/exec"] {
            server.add(p, Resource::new(&b"abc"[..]));
        }
        let dl = Downloader::new(config(&env).max_concurrent(1));
        let mut events = dl.subscribe();
        let holder = dl.register(ListPeer::new(false, vec![]));
        let mut held = Some(within(&env, holder.execute(FetchCmd::get(server.url("/hold")))).await.unwrap());
        let done = Completions::default();
        let gets = |path: &str, n: usize| -> Vec<FetchCmd> {
            (0..n)
                .map(|i| FetchCmd::get(server.url(path)).writer(|_: &[u8]| Ok(())).on_complete(done.cb(i)))
                .collect()
        };
        let preload = dl.register(ListPeer::new(false, vec![gets("/seg", 3)]));
        let _playing = dl.register(ListPeer::new(true, vec![gets("/play", 2)]));
        let exec = async { preload.execute(FetchCmd::get(server.url("/exec"))).await.map(|r| r.status) };
        let order = async {
            let mut paths = std::collections::HashMap::new();
            let mut started = Vec::new();
            while started.len() < 7 {
                match futures::StreamExt::next(&mut events).await.expect("events end early") {
                    DownloaderEvent::RequestEnqueued { request_id, url, .. } => {
                        paths.insert(request_id, url.path().to_owned());
                        if paths.len() == 7 {
                            assert_eq!(started, ["/hold"], "[{}] nothing else while the slot is held", env.name);
                            held = None; // frees the slot
                        }
                    }
                    DownloaderEvent::RequestStarted { request_id, .. } => {
                        started.push(paths.get(&request_id).cloned().unwrap_or_default());
                    }
                    _ => {}
                }
            }
            started
        };
        let (exec, started) = within(&env, futures::future::join(exec, order)).await;
        assert_eq!(exec.unwrap(), http::StatusCode::OK);
        assert_eq!(
            started,
            ["/hold", "/play", "/play", "/exec", "/seg", "/seg", "/seg"],
            "[{}]",
            env.name
        );
        assert_eq!(wait_done(&done, &env, 5).await.len(), 5);
    }

    fn resume_after_server_drops_at_random_offsets(env) {
        let mut seed = 0xD20B_5EEDu64;
        let server = TestServer::start();
        for i in 0..4u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = 50_000 + (seed >> 33) as usize % 250_000;
            let drop_after = (len / 6 + (seed >> 13) as usize % (len / 3)) as u64;
            let body = pseudo_random(len, i + 3);
            let path = format!("/r{i}");
            server.add(&path, Resource::new(body.clone()).always(Cut::DropAfter(drop_after)));
            let dl = Downloader::new(
                config(&env).retry(RetryPolicy::new(20, Duration::from_millis(1), Duration::from_millis(5))),
            );
            let events = dl.subscribe();
            let (d, bytes) = stream_one(&env, &dl, FetchCmd::get(server.url(&path))).await;
            assert!(d.error.is_none(), "[{}] {d:?}", env.name);
            assert_eq!(d.bytes as usize, len, "each byte written exactly once");
            assert_eq!(checksum(&bytes), checksum(&body), "[{}] checksum", env.name);
            // Every resume asked for exactly the next byte.
            let offsets: Vec<u64> = events
                .drain()
                .iter()
                .filter_map(|e| match e {
                    DownloaderEvent::RequestResumed { offset, .. } => Some(*offset),
                    _ => None,
                })
                .collect();
            assert!(!offsets.is_empty());
            let ranges: Vec<Option<String>> = server.stats().ranges_for(&path);
            let mut expect = vec![None];
            expect.extend(offsets.iter().map(|o| Some(format!("bytes={o}-{}", len - 1))));
            assert_eq!(ranges, expect);
        }
    }

    fn chunked_body_streams_to_eof_and_resumes(env) {
        let server = TestServer::start();
        let body = pseudo_random(70_000, 5);
        server.add("/c", Resource::new(body.clone()).chunked());
        server.add("/cd", Resource::new(body.clone()).chunked().then(Cut::DropAfter(30_000)));
        let dl = Downloader::new(config(&env));
        let (d, bytes) = stream_one(&env, &dl, FetchCmd::get(server.url("/c"))).await;
        assert!(d.error.is_none(), "{d:?}");
        assert!(bytes == body);
        let (d, bytes) = stream_one(&env, &dl, FetchCmd::get(server.url("/cd"))).await;
        assert!(d.error.is_none(), "[{}] {d:?}", env.name);
        assert!(bytes == body, "[{}] {} bytes", env.name, bytes.len());
    }

    fn resume_when_server_ignores_range_fails_clearly(env) {
        let server = TestServer::start();
        let body = pseudo_random(50_000, 6);
        server.add("/ir", Resource::new(body.clone()).ignore_range().always(Cut::DropAfter(20_000)));
        let dl = Downloader::new(config(&env));
        let (d, bytes) = stream_one(&env, &dl, FetchCmd::get(server.url("/ir"))).await;
        assert!(
            matches!(&d.error, Some(NetError::InvalidResponse { reason, .. }) if reason.contains("instead of 206")),
            "[{}] {d:?}",
            env.name
        );
        assert!(bytes == body[..bytes.len()], "prefix intact, nothing written twice");
    }

    fn stalled_body_ends_with_timeout_error(env) {
        let server = TestServer::start();
        // The first response stalls after 10 000 bytes, every resume at once:
        // no progress, so the one-retry run ends in the error. (A resume that
        // delivered bytes would renew the budget.)
        server.add(
            "/st",
            Resource::new(pseudo_random(40_000, 7)).then(Cut::StallAfter(10_000)).always(Cut::StallAfter(0)),
        );
        let dl = Downloader::new(
            config(&env)
                .inactivity_timeout(Duration::from_millis(200))
                .retry(RetryPolicy::new(1, Duration::from_millis(1), Duration::from_millis(1))),
        );
        let start = Instant::now();
        let (d, bytes) = stream_one(&env, &dl, FetchCmd::get(server.url("/st"))).await;
        assert!(
            matches!(&d.error, Some(NetError::Timeout { kind: TimeoutKind::Inactivity, .. })),
            "[{}] {d:?}",
            env.name
        );
        assert_eq!(bytes.len(), 10_000, "10 000 bytes, resumed, stalled again");
        assert_eq!(server.stats().requests_for("/st"), 2, "one resume");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    fn html_page_rejected_with_invalid_content_type(env) {
        let server = TestServer::start();
        server.add("/portal", Resource::html_error_page());
        let dl = Downloader::new(config(&env));
        let (d, bytes) =
            stream_one(&env, &dl, FetchCmd::get(server.url("/portal")).check(reject_html_response)).await;
        assert!(matches!(&d.error, Some(NetError::InvalidContentType { .. })), "{d:?}");
        assert!(bytes.is_empty());
        assert_eq!(server.stats().requests, 1, "not retried");
    }

    fn no_retry_on_404_but_retry_on_503(env) {
        let server = TestServer::start();
        server.add("/busy", Resource::error(503, &b"busy"[..]));
        let dl = Downloader::new(config(&env));
        let (d, _) = stream_one(&env, &dl, FetchCmd::get(server.url("/missing"))).await;
        assert!(matches!(&d.error, Some(NetError::Status { status, .. }) if *status == 404), "{d:?}");
        assert_eq!(server.stats().requests, 1);
        let (d, _) = stream_one(&env, &dl, FetchCmd::get(server.url("/busy"))).await;
        assert!(matches!(&d.error, Some(NetError::Status { status, .. }) if *status == 503));
        assert_eq!(server.stats().requests_for("/busy"), 4, "1 attempt + 3 retries");
    }

    fn peer_handle_execute_returns_error_on_unreachable(env) {
        // A loopback listener that accepts and never answers.
        let hole = BlackHole::start();
        let dl = Downloader::new(
            config(&env)
                .request_timeout(Duration::from_secs(60))
                .inactivity_timeout(Duration::from_secs(60)),
        );
        let h = dl.register(Arc::new(Idle));
        let token = h.cancel();
        let mut events = dl.subscribe();
        // Cancel once the request is in flight (started, never answered).
        let cancel_when_started = async {
            loop {
                let e = futures::StreamExt::next(&mut events).await.expect("events end early");
                if matches!(e, DownloaderEvent::RequestStarted { .. }) {
                    token.cancel();
                    return;
                }
            }
        };
        let (r, ()) = within(
            &env,
            futures::future::join(h.execute(FetchCmd::get(hole.url("/never"))), cancel_when_started),
        )
        .await;
        assert!(matches!(r, Err(NetError::Cancelled)), "[{}] {r:?}", env.name);
    }

    fn streaming_without_writer_still_completes(env) {
        let server = TestServer::start();
        server.add("/nw", Resource::new(pseudo_random(300_000, 8)));
        let dl = Downloader::new(config(&env));
        let done = Completions::default();
        let cmd = FetchCmd::get(server.url("/nw")).on_complete(done.cb(0));
        let _h = dl.register(ListPeer::new(false, vec![vec![cmd]]));
        let d = wait_done(&done, &env, 1).await.remove(0);
        assert_eq!((d.bytes, d.headers, d.error.is_none()), (0, true, true), "{d:?}");
    }

    fn downloader_shutdown_cancels_queued_commands(env) {
        let server = TestServer::start();
        server.add("/q", Resource::new(&b"abc"[..]));
        let dl = Downloader::new(config(&env).max_concurrent(0));
        let done = Completions::default();
        let cmds = (0..2)
            .map(|i| FetchCmd::head(server.url("/q")).writer(|_: &[u8]| Ok(())).on_complete(done.cb(i)))
            .collect();
        let peer = ListPeer::new(true, vec![cmds]);
        let _h = dl.register(peer.clone());
        assert!(wait_for(&env, || peer.handed.load(Ordering::SeqCst) == 2).await);
        dl.cancel().cancel();
        let all = wait_done(&done, &env, 2).await;
        assert!(all.iter().all(|d| matches!(d.error, Some(NetError::Cancelled))));
        assert_eq!(server.stats().requests, 0);
    }

    fn exactly_once_under_random_cancellation(env) {
        let server = TestServer::start();
        server.add(
            "/x",
            Resource::new(pseudo_random(30_000, 9)).header_delay(Duration::from_millis(2)),
        );
        server.add("/y", Resource::new(pseudo_random(30_000, 9)).always(Cut::DropAfter(7_000)));
        let mut seed = 0xBEEFu64;
        let mut rnd = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n.max(1)
        };
        for iteration in 0..10 {
            let dl = Downloader::new(config(&env).max_concurrent(1 + rnd(3) as usize));
            let count = Arc::new(AtomicUsize::new(0));
            let peers: Vec<Arc<ListPeer>> = (0..3)
                .map(|_| {
                    let batches = (0..3)
                        .map(|_| {
                            (0..5)
                                .map(|k| {
                                    let c = count.clone();
                                    let path = if k % 2 == 0 { "/x" } else { "/y" };
                                    FetchCmd::get(server.url(path))
                                        .writer(|_: &[u8]| Ok(()))
                                        .on_complete(move |_, _, _| {
                                            c.fetch_add(1, Ordering::SeqCst);
                                        })
                                })
                                .collect()
                        })
                        .collect();
                    ListPeer::new(rnd(2) == 0, batches)
                })
                .collect();
            let mut handles: Vec<_> = peers.iter().map(|p| Some(dl.register(p.clone()))).collect();
            env.sleep(Duration::from_millis(rnd(40))).await;
            handles[rnd(3) as usize] = None;
            env.sleep(Duration::from_millis(rnd(40))).await;
            if rnd(2) == 0 {
                dl.cancel().cancel();
            }
            drop(handles);
            drop(dl);
            // Every handed-out command completes exactly once, cancelled or not.
            let handed = || peers.iter().map(|p| p.handed.load(Ordering::SeqCst)).sum::<usize>();
            assert!(
                wait_for(&env, || count.load(Ordering::SeqCst) == handed()).await,
                "[{}] iteration {iteration}: {} completions for {} commands",
                env.name,
                count.load(Ordering::SeqCst),
                handed()
            );
            env.sleep(Duration::from_millis(10)).await;
            assert_eq!(count.load(Ordering::SeqCst), handed(), "[{}] late completion", env.name);
        }
    }
}

/// The default constructor: tokio + reqwest inside a tokio runtime, else
/// smol + smol-http, else async-std + surf; with `reqwest` alone, a typed
/// error outside a runtime.
#[test]
fn default_backend_constructor() {
    let server = TestServer::start();
    server.add("/d", Resource::new(&b"default"[..]));
    #[cfg(feature = "reqwest")]
    {
        #[cfg(not(any(feature = "smol-http", feature = "surf")))]
        assert_eq!(
            Downloader::with_default_backend().unwrap_err(),
            kithara_stream::backends::BackendError::NoRuntime
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let body = rt
            .block_on(async {
                let dl = Downloader::with_default_backend().unwrap();
                let h = dl.register(Arc::new(Idle));
                h.execute(FetchCmd::get(server.url("/d")))
                    .await?
                    .body
                    .collect()
                    .await
            })
            .unwrap();
        assert_eq!(&body[..], b"default");
    }
    #[cfg(any(feature = "smol-http", feature = "surf"))]
    {
        // Outside a tokio runtime: smol + smol-http, else async-std + surf.
        let body = futures::executor::block_on(async {
            let dl = Downloader::with_default_backend().unwrap();
            let h = dl.register(Arc::new(Idle));
            h.execute(FetchCmd::get(server.url("/d")))
                .await?
                .body
                .collect()
                .await
        })
        .unwrap();
        assert_eq!(&body[..], b"default");
    }
}

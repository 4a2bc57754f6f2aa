//! Liveness of `HttpFile` against the loopback server, on every backend
//! pair: the tail of a resource is read at once, outages are ridden out (or
//! end in a typed error a later read recovers from), nothing hangs, and the
//! async read path waits instead of failing.
#![cfg(any(feature = "reqwest", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kithara_stream::dl::{Downloader, DownloaderConfig, DownloaderEvent};
use kithara_stream::net::{NetError, RetryPolicy, TimeoutKind};
use kithara_stream::{HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError};
use support::backends::backend_tests;
use support::server::{
    BlackHole, Resource, TestServer, assert_same_bytes, closed_port_url, pseudo_random,
};
use url::Url;

/// The longest any single blocking step may take in these tests.
const STEP: Duration = Duration::from_secs(30);

fn config(dl: &Downloader, url: &Url) -> HttpFileConfig {
    HttpFileConfig::from_url(url.clone())
        .downloader(dl.clone())
        .read_timeout(Some(STEP))
}

/// Runs blocking `f` on a plain thread and awaits its result without
/// blocking the executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("blocking thread panicked")
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1
}

/// Reads until `Ok(0)`, handing every error to `on_error` (which decides
/// whether to go on reading).
fn read_through(
    s: &mut Stream<HttpFile>,
    mut on_error: impl FnMut(std::io::Error) -> bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if !on_error(e) {
                    return out;
                }
            }
        }
    }
}

backend_tests! {
    /// A 64 KiB read 20 000 bytes before the end of a 4 MiB resource served
    /// at 256 KiB/s (16 s for the whole) returns the 20 000-byte tail as soon
    /// as it is there, whatever gaps lie before it.
    fn a_read_across_the_end_returns_the_tail_at_once(env) {
        let server = TestServer::start();
        let body = pseudo_random(4 << 20, 31);
        server.add("/t", Resource::new(body.clone()).throttle(256 * 1024));
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/t"))).await.unwrap();
        let len = s.len().unwrap();
        let b = body.clone();
        let took = blocking(move || {
            let start = Instant::now();
            s.seek(SeekFrom::Start(len - 20_000)).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let n = s.read(&mut buf).unwrap();
            let took = start.elapsed();
            assert_eq!(n, 20_000, "the whole tail in one read");
            assert_same_bytes(&buf[..n], &b[b.len() - 20_000..]);
            assert_eq!(s.read(&mut buf).unwrap(), 0, "then the true end");
            took
        })
        .await;
        eprintln!("[{}] tail read took {took:?} (whole body: 16 s)", env.name);
        assert!(took < Duration::from_millis(1600), "[{}] tail read took {took:?}", env.name);
    }

    /// The server goes away for 5 s at a random offset and comes back on
    /// the same port: with the default retry policy the same stream
    /// finishes byte-exact, and the retries are visible as events.
    fn a_five_second_outage_is_ridden_out_with_defaults(env) {
        let server = TestServer::start();
        let body = pseudo_random(2 << 20, 32);
        server.add("/o", Resource::new(body.clone()).throttle(512 * 1024));
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let events = dl.subscribe();
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/o"))).await.unwrap();
        let reader = std::thread::spawn(move || {
            read_through(&mut s, |e| panic!("read failed during the outage: {e:?}"))
        });
        let seed = seed();
        let at = Duration::from_millis(300 + seed % 2500);
        eprintln!("[{}] outage at {at:?} (seed {seed})", env.name);
        env.sleep(at).await;
        server.go_down();
        env.sleep(Duration::from_secs(5)).await;
        server.come_back();
        let back = Instant::now();
        let got = blocking(move || reader.join().unwrap()).await;
        assert_same_bytes(&got, &body);
        eprintln!("[{}] finished {:?} after the server came back", env.name, back.elapsed());
        let seen = events.drain();
        assert!(
            seen.iter().any(|e| matches!(
                e,
                DownloaderEvent::RequestResumed { .. } | DownloaderEvent::RequestRetried { .. }
            )),
            "[{}] no retry event",
            env.name
        );
    }

    /// Down for longer than a (short, test-configured) budget: the waiting
    /// read gets a typed, retryable network error once the downloader's
    /// budget is spent on the failing fetch (no more fetches, each retried
    /// for a budget of its own); once the server is back the next read
    /// plans the download again and the stream completes byte-exact.
    fn an_outage_past_the_budget_is_a_typed_error_then_a_read_resumes(env) {
        let server = TestServer::start();
        let body = pseudo_random(2 << 20, 33);
        server.add("/p", Resource::new(body.clone()).throttle(512 * 1024));
        let dl = Downloader::new(
            DownloaderConfig::new(env.spawn.clone(), env.client.clone())
                .connect_timeout(Duration::from_millis(500))
                .retry(RetryPolicy {
                    budget: Duration::from_millis(500),
                    base_delay: Duration::from_millis(20),
                    max_delay: Duration::from_millis(100),
                    max_retries: None,
                }),
        );
        let events = dl.subscribe();
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/p"))).await.unwrap();
        let (err_tx, err_rx) = std::sync::mpsc::channel::<(SourceErrorKind, Instant)>();
        let (back_tx, back_rx) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut errors = 0;
            let got = read_through(&mut s, |e| {
                errors += 1;
                let kind = classify(source_error(&e));
                err_tx.send((kind, Instant::now())).unwrap();
                back_rx.recv_timeout(STEP).expect("server back");
                errors < 3
            });
            (got, errors)
        });
        env.sleep(Duration::from_millis(800)).await;
        let down = Instant::now();
        server.go_down();
        let (kind, at) = blocking(move || err_rx.recv_timeout(STEP).expect("a typed error")).await;
        eprintln!("[{}] gave up {:?} after the server went down: {kind:?}", env.name, at - down);
        assert_eq!(kind, SourceErrorKind::Transient, "[{}]", env.name);
        let failed = events
            .drain()
            .iter()
            .filter(|e| matches!(e, DownloaderEvent::RequestFailed { .. }))
            .count();
        assert_eq!(failed, 1, "[{}] the failing fetch only, no fetch after it", env.name);
        server.come_back();
        back_tx.send(()).unwrap();
        let (got, errors) = blocking(move || reader.join().unwrap()).await;
        assert_eq!(errors, 1, "[{}] one error, then it resumed", env.name);
        assert_same_bytes(&got, &body);
    }

    /// A listener that accepts and never answers: with the defaults,
    /// `Stream::new` gives a typed timeout within the documented ~10 s.
    fn a_black_hole_is_a_typed_error_within_the_default_bound(env) {
        let hole = BlackHole::start();
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let start = Instant::now();
        let r = Stream::<HttpFile>::new(config(&dl, &hole.url("/x"))).await;
        let took = start.elapsed();
        eprintln!("[{}] black hole: typed error after {took:?}", env.name);
        assert!(
            matches!(r, Err(SourceError::Net(NetError::Timeout { kind: TimeoutKind::Headers, .. }))),
            "[{}] {r:?}",
            env.name
        );
        assert!(took < Duration::from_secs(16), "[{}] took {took:?}", env.name);
        assert!(took >= Duration::from_secs(9), "[{}] the default is 10 s, took {took:?}", env.name);
    }

    /// The connect deadline is configurable: a refused port with a 700 ms
    /// connect timeout fails after about that long, retried meanwhile.
    fn a_refused_port_fails_after_the_connect_timeout(env) {
        let dl = Downloader::new(
            DownloaderConfig::new(env.spawn.clone(), env.client.clone())
                .connect_timeout(Duration::from_millis(700)),
        );
        let events = dl.subscribe();
        let start = Instant::now();
        let r = Stream::<HttpFile>::new(config(&dl, &closed_port_url("/x"))).await;
        let took = start.elapsed();
        assert!(matches!(r, Err(SourceError::Net(ref e)) if e.is_retryable()), "[{}] {r:?}", env.name);
        assert!(took < Duration::from_secs(5), "[{}] took {took:?}", env.name);
        let retried = events
            .drain()
            .iter()
            .filter(|e| matches!(e, DownloaderEvent::RequestRetried { .. }))
            .count();
        assert!(retried >= 2, "[{}] retried {retried} times", env.name);
    }

    /// Opening on a downloader that is shut down, or shuts down while the
    /// open waits, is a typed error at once.
    fn opening_on_a_closed_downloader_fails_at_once(env) {
        let server = TestServer::start();
        server.add("/slow", Resource::new(&b"abc"[..]).header_delay(Duration::from_secs(20)));
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let shutting = dl.cancel();
        let open = Stream::<HttpFile>::new(config(&dl, &server.url("/slow")));
        let cancel = async {
            env.sleep(Duration::from_millis(100)).await;
            shutting.cancel();
        };
        let start = Instant::now();
        let (r, ()) = futures::join!(open, cancel);
        assert!(matches!(r, Err(SourceError::Cancelled)), "[{}] {r:?}", env.name);
        assert!(start.elapsed() < Duration::from_secs(3), "[{}] {:?}", env.name, start.elapsed());
        // Already shut down.
        let start = Instant::now();
        let r = Stream::<HttpFile>::new(config(&dl, &server.url("/slow"))).await;
        assert!(matches!(r, Err(SourceError::Cancelled)), "[{}] {r:?}", env.name);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    /// `SeekFrom::End` on an endless chunked body: `Unsupported` once the
    /// headers are in, without waiting for a body that never ends.
    fn seek_from_end_of_an_unsized_body_is_unsupported_at_once(env) {
        let server = TestServer::start();
        server.add("/live", Resource::new(pseudo_random(8 << 20, 34)).chunked().throttle(64 * 1024));
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/live"))).await.unwrap();
        assert_eq!(s.len(), None);
        let start = Instant::now();
        let e = futures::io::AsyncSeekExt::seek(&mut s, SeekFrom::End(0)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = blocking(move || s.seek(SeekFrom::End(-10)).unwrap_err()).await;
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(start.elapsed() < Duration::from_secs(2), "[{}] {:?}", env.name, start.elapsed());
    }

    /// `futures::io` helpers on a throttled stream: `read_exact`, a seek,
    /// `read_to_end` and `copy` all just work (the stream is `Pending` while
    /// bytes are missing, never `WouldBlock`/`Interrupted`).
    fn async_read_helpers_work_on_a_throttled_stream(env) {
        let server = TestServer::start();
        let body = pseudo_random(600_000, 35);
        server.add("/a", Resource::new(body.clone()).throttle(1 << 20));
        let dl = Downloader::new(DownloaderConfig::new(env.spawn.clone(), env.client.clone()));
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/a"))).await.unwrap();
        let mut head = vec![0u8; 100_000];
        futures::io::AsyncReadExt::read_exact(&mut s, &mut head).await.unwrap();
        assert_same_bytes(&head, &body[..100_000]);
        futures::io::AsyncSeekExt::seek(&mut s, SeekFrom::Start(400_000)).await.unwrap();
        let mut mid = vec![0u8; 50_000];
        futures::io::AsyncReadExt::read_exact(&mut s, &mut mid).await.unwrap();
        assert_same_bytes(&mid, &body[400_000..450_000]);
        let mut rest = Vec::new();
        futures::io::AsyncReadExt::read_to_end(&mut s, &mut rest).await.unwrap();
        assert_same_bytes(&rest, &body[450_000..]);
        let mut s = Stream::<HttpFile>::new(config(&dl, &server.url("/a"))).await.unwrap();
        let mut out = futures::io::Cursor::new(Vec::new());
        let n = futures::io::copy(&mut s, &mut out).await.unwrap();
        assert_eq!(n, body.len() as u64);
        assert_same_bytes(out.get_ref(), &body);
    }
}

/// What kind of failure a read reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceErrorKind {
    /// A retryable network failure (the download gave up for now).
    Transient,
    /// Anything else.
    Other,
}

fn classify(e: &SourceError) -> SourceErrorKind {
    match e {
        SourceError::Net(n) if n.is_retryable() => SourceErrorKind::Transient,
        _ => SourceErrorKind::Other,
    }
}

//! `HttpFile` end to end against the loopback test server, on every enabled
//! backend. Reads are blocking, so they run on plain threads.
#![cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{NetError, RetryPolicy};
use kithara_stream::{
    ContainerFormat, HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError,
};
use support::backends::backend_tests;
use support::server::{Cut, Resource, TestServer, closed_port_url, pseudo_random};
use url::Url;

/// The longest any single blocking step may take in these tests.
const STEP: Duration = Duration::from_secs(30);

fn config(dl: &Downloader, url: &Url) -> HttpFileConfig {
    HttpFileConfig::from_url(url.clone())
        .downloader(dl.clone())
        .read_timeout(Some(STEP))
}

async fn open(dl: &Downloader, url: &Url) -> Result<Stream<HttpFile>, SourceError> {
    Stream::<HttpFile>::new(config(dl, url)).await
}

async fn open_cached(
    dl: &Downloader,
    url: &Url,
    path: &Path,
) -> Result<Stream<HttpFile>, SourceError> {
    Stream::<HttpFile>::new(config(dl, url).cache_file(path)).await
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

/// Waits (bounded) until the storage is committed: the commit follows the
/// last byte asynchronously.
async fn wait_committed(storage: kithara_stream::StorageResource) {
    let committed = blocking(move || {
        storage
            .wait_until(Some(Instant::now() + STEP), || storage.len())
            .is_some()
    })
    .await;
    assert!(committed, "never committed");
}

fn read_to_end(s: &mut Stream<HttpFile>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Compares bodies without printing megabytes on failure.
#[track_caller]
fn assert_same(got: &[u8], want: &[u8]) {
    support::server::assert_same_bytes(got, want);
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

/// A small deterministic generator for offsets.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

backend_tests! {
    /// Random seeks and reads on a throttled server, then the whole body:
    /// every byte checked against the source.
    fn random_seeks_on_a_throttled_server_are_byte_exact(env) {
        let server = TestServer::start();
        let body = pseudo_random(3 << 20, 11);
        server.add("/a.mp3", Resource::new(body.clone()).content_type("audio/mpeg").throttle(2 << 20));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/a.mp3")).await.unwrap();
        assert_eq!(s.len(), Some(3 << 20));
        let b = body.clone();
        let mut s = blocking(move || {
            let mut rng = Rng(0x1234_5678);
            let len = b.len() as u64;
            for _ in 0..12 {
                let pos = rng.below(len - 1);
                let n = 1 + rng.below(20_000).min(len - pos - 1) as usize;
                let mut buf = vec![0u8; n];
                s.seek(SeekFrom::Start(pos)).unwrap();
                s.read_exact(&mut buf).unwrap();
                assert_eq!(&buf[..], &b[pos as usize..pos as usize + n], "at {pos}");
            }
            s.seek(SeekFrom::Start(0)).unwrap();
            assert_same(&read_to_end(&mut s).unwrap(), &b[..]);
            s
        })
        .await;
        let storage = s.source().storage().clone();
        wait_committed(storage).await;
        assert!(s.source().is_complete());
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 3 << 20);
        let ranged = server.stats().ranges_for("/a.mp3").iter().filter(|r| r.is_some()).count();
        assert!(ranged >= 1, "seeks should have re-aimed with Range requests");
    }

    /// A seek far ahead of a slow download is answered by a new Range
    /// request, not by waiting for the old fetch to get there.
    fn seek_far_ahead_reaims_instead_of_waiting(env) {
        let server = TestServer::start();
        let body = pseudo_random(4 << 20, 12);
        // At 256 KiB/s the sequential download needs 16 s to reach the target.
        server.add("/slow", Resource::new(body.clone()).throttle(256 * 1024).header_delay(Duration::from_millis(50)));
        let dl = env.downloader(4);
        let opened = Instant::now();
        let mut s = open(&dl, &server.url("/slow")).await.unwrap();
        // `new` resolves with the headers, not with the body.
        assert!(opened.elapsed() < Duration::from_secs(3), "open took {:?}", opened.elapsed());
        let target = 3_900_000u64;
        let b = body.clone();
        let (s, took) = blocking(move || {
            let started = Instant::now();
            let mut buf = vec![0u8; 4096];
            s.seek(SeekFrom::Start(target)).unwrap();
            s.read_exact(&mut buf).unwrap();
            assert_same(&buf[..], &b[target as usize..target as usize + 4096]);
            (s, started.elapsed())
        })
        .await;
        assert!(took < Duration::from_secs(3), "seek took {took:?}");
        let ranges = server.stats().ranges_for("/slow");
        assert_eq!(ranges[0], None);
        assert!(ranges.contains(&Some(format!("bytes={target}-"))), "{ranges:?}");
        drop(s);
    }

    /// Connections dropped at random offsets: the download resumes from the
    /// last byte written and the reader sees the exact body.
    fn connection_dropped_at_random_offsets(env) {
        let server = TestServer::start();
        let body = pseudo_random(1 << 20, 13);
        let mut rng = Rng(0xdead_beef);
        let mut res = Resource::new(body.clone()).chunk_size(4096);
        for _ in 0..5 {
            res = res.then(Cut::DropAfter(1 + rng.below(200_000)));
        }
        server.add("/drop", res);
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/drop")).await.unwrap();
        let got = blocking(move || read_to_end(&mut s).unwrap()).await;
        assert_same(&got, &body[..]);
        let ranges = server.stats().ranges_for("/drop");
        assert!(ranges.len() >= 6, "{ranges:?}");
        assert!(ranges[1..].iter().all(|r| r.as_deref().is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-")), "{ranges:?}");
    }

    /// A server that answers 200 to Range requests still yields correct bytes.
    fn server_ignoring_range_yields_correct_bytes(env) {
        let server = TestServer::start();
        let body = pseudo_random(1 << 20, 14);
        server.add("/norange", Resource::new(body.clone()).ignore_range().throttle(4 << 20));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/norange")).await.unwrap();
        let b = body.clone();
        let s = blocking(move || {
            for pos in [900_000u64, 5, 500_000, (1 << 20) - 10] {
                let mut buf = vec![0u8; 10];
                s.seek(SeekFrom::Start(pos)).unwrap();
                s.read_exact(&mut buf).unwrap();
                assert_same(&buf[..], &b[pos as usize..pos as usize + 10]);
            }
            s.seek(SeekFrom::Start(0)).unwrap();
            assert_same(&read_to_end(&mut s).unwrap(), &b[..]);
            s
        })
        .await;
        wait_committed(s.source().storage().clone()).await;
        assert!(s.source().is_complete());
    }

    /// A body that stalls (no byte for the inactivity timeout) is resumed
    /// from the last byte written.
    fn stalled_body_resumes(env) {
        let server = TestServer::start();
        let body = pseudo_random(600_000, 22);
        server.add("/stall", Resource::new(body.clone()).then(Cut::StallAfter(123_456)));
        let dl = Downloader::new(
            DownloaderConfig::new(env.spawn.clone(), env.client.clone())
                .inactivity_timeout(Duration::from_millis(300))
                .retry(RetryPolicy::new(3, Duration::from_millis(5), Duration::from_millis(50))),
        );
        let mut s = open(&dl, &server.url("/stall")).await.unwrap();
        let got = blocking(move || read_to_end(&mut s).unwrap()).await;
        assert_same(&got, &body[..]);
        let ranges = server.stats().ranges_for("/stall");
        assert_eq!(ranges, vec![None, Some("bytes=123456-599999".to_owned())]);
    }

    /// Dropping `Stream::new` before the headers arrive cancels the request.
    fn dropping_new_before_headers_cancels(env) {
        let server = TestServer::start();
        server.add("/late", Resource::new(pseudo_random(10_000, 23)).header_delay(Duration::from_secs(5)));
        let dl = env.downloader(4);
        let url = server.url("/late");
        assert!(env.timeout(Duration::from_millis(300), open(&dl, &url)).await.is_err());
        server
            .wait_for(&*env.spawn, STEP, |s| s.requests == 1 && s.connections_closed >= 1)
            .await
            .expect("the server saw the connection closed");
    }

    /// A server that ignores Range and drops connections: the downloader
    /// cannot resume (it gets 200, not 206), so the peer starts a new fetch
    /// from the first missing byte and skips the body to it.
    fn server_ignoring_range_that_drops_connections(env) {
        let server = TestServer::start();
        let body = pseudo_random(1 << 20, 21);
        server.add(
            "/norange-drop",
            Resource::new(body.clone())
                .ignore_range()
                .then(Cut::DropAfter(300_000))
                .then(Cut::DropAfter(500_000))
                .then(Cut::DropAfter(700_000)),
        );
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/norange-drop")).await.unwrap();
        let got = blocking(move || read_to_end(&mut s).unwrap()).await;
        assert_same(&got, &body[..]);
        let ranges = server.stats().ranges_for("/norange-drop");
        assert!(ranges.len() >= 4, "{ranges:?}");
        assert!(ranges.contains(&Some("bytes=300000-".to_owned())), "{ranges:?}");
    }

    /// Chunked transfer with no length: read to the end; the length becomes
    /// known then and the resource commits with it.
    fn chunked_without_length(env) {
        let server = TestServer::start();
        let body = pseudo_random(700_000, 15);
        server.add("/chunked", Resource::new(body.clone()).chunked().content_type("audio/wav").throttle(1 << 20));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/chunked")).await.unwrap();
        assert_eq!(s.len(), None);
        let (s, got) = blocking(move || {
            let got = read_to_end(&mut s).unwrap();
            (s, got)
        })
        .await;
        assert_same(&got, &body[..]);
        assert_eq!(s.len(), Some(700_000));
        assert_eq!(s.source().media_info().unwrap().container, Some(ContainerFormat::Wav));
    }

    /// `AsyncRead + AsyncSeek` on the executor itself: no blocking, same bytes.
    fn async_read_and_seek_on_the_executor(env) {
        use futures::io::{AsyncReadExt, AsyncSeekExt};
        let server = TestServer::start();
        let body = pseudo_random(1 << 20, 20);
        server.add("/async", Resource::new(body.clone()).throttle(4 << 20));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/async")).await.unwrap();
        let mut buf = vec![0u8; 5000];
        AsyncSeekExt::seek(&mut s, SeekFrom::Start(900_000)).await.unwrap();
        AsyncReadExt::read_exact(&mut s, &mut buf).await.unwrap();
        assert_same(&buf, &body[900_000..905_000]);
        AsyncSeekExt::seek(&mut s, SeekFrom::Start(0)).await.unwrap();
        let mut all = Vec::new();
        AsyncReadExt::read_to_end(&mut s, &mut all).await.unwrap();
        assert_same(&all, &body[..]);
    }

    /// An HTML error page, a 404, a 500 and a refused connection are typed
    /// errors from `Stream::new`.
    fn error_pages_and_statuses_are_typed_errors_from_new(env) {
        let server = TestServer::start();
        server.add("/html", Resource::html_error_page());
        server.add("/500", Resource::error(500, "boom"));
        let dl = env.downloader(4);
        let e = open(&dl, &server.url("/html")).await.unwrap_err();
        assert!(matches!(e, SourceError::Net(NetError::InvalidContentType { .. })), "{e:?}");
        let e = open(&dl, &server.url("/missing")).await.unwrap_err();
        assert!(matches!(&e, SourceError::Net(NetError::Status { status, .. }) if *status == 404), "{e:?}");
        let e = open(&dl, &server.url("/500")).await.unwrap_err();
        assert!(matches!(&e, SourceError::Net(NetError::Status { status, .. }) if *status == 500), "{e:?}");
        let e = open(&dl, &closed_port_url("/x")).await.unwrap_err();
        assert!(matches!(e, SourceError::Net(NetError::Transport { .. })), "{e:?}");
    }

    /// A `Content-Range` that contradicts the request is an error, not data.
    fn mismatched_content_range_is_an_error(env) {
        let server = TestServer::start();
        server.add("/liar", Resource::new(pseudo_random(10_000, 16)).header("Content-Range", "bytes 100-9999/10000"));
        let dl = env.downloader(4);
        let e = open(&dl, &server.url("/liar")).await.unwrap_err();
        assert!(matches!(e, SourceError::Net(NetError::InvalidResponse { .. })), "{e:?}");
    }

    /// A body that ends early and cannot be resumed is an error for the
    /// reader (after the bytes that did arrive), never a premature EOF.
    fn short_body_is_an_error_for_the_reader(env) {
        let server = TestServer::start();
        let body = pseudo_random(200_000, 17);
        server.add("/short", Resource::new(body.clone()).then(Cut::DropAfter(50_000)).always(Cut::DropAfter(0)));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/short")).await.unwrap();
        let (got, err) = blocking(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 8192];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return (got, None),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return (got, Some(e)),
                }
            }
        })
        .await;
        // `Stream::read` waits for its whole buffer, so the tail of the
        // last partial buffer is not returned before the error.
        assert!(got.len() > 40_000 && got.len() <= 50_000, "{}", got.len());
        assert_same(&got, &body[..got.len()]);
        let err = err.expect("an error, not Ok(0)");
        assert!(matches!(source_error(&err), SourceError::Net(_)), "{err:?}");
    }

    /// A complete cache file opens with zero requests (counted by the server).
    fn complete_cache_opens_with_zero_requests(env) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cached.bin");
        let server = TestServer::start();
        let body = pseudo_random(600_000, 18);
        server.add("/c", Resource::new(body.clone()));
        let dl = env.downloader(4);
        let mut s = open_cached(&dl, &server.url("/c"), &path).await.unwrap();
        let (s, got) = blocking(move || {
            let got = read_to_end(&mut s).unwrap();
            (s, got)
        })
        .await;
        assert_same(&got, &body[..]);
        // The last byte can be read before the commit lands; dropping the
        // stream then leaves the record to the storage's last handle.
        drop(s);
        let sidecar = dir.path().join("cached.bin.ranges");
        let p = sidecar.clone();
        blocking(move || {
            let deadline = Instant::now() + STEP;
            while p.exists() {
                assert!(Instant::now() < deadline, "never committed");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await;
        assert_eq!(server.stats().requests_for("/c"), 1);
        server.reset_stats();
        let mut s = open_cached(&dl, &server.url("/c"), &path).await.unwrap();
        assert!(s.source().is_complete());
        let got = blocking(move || read_to_end(&mut s).unwrap()).await;
        assert_same(&got, &body[..]);
        assert_eq!(server.stats().requests, 0);
    }

    /// A cache file that does not exist yet (nor its folder): one request
    /// each, the bytes exact, and the file completes (committed, sidecar
    /// removed), also for an empty body.
    fn fresh_cache_file_is_one_request_and_completes(env) {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start();
        let dl = env.downloader(4);
        for (name, len) in [("small", 1000), ("big", 700_000), ("empty", 0)] {
            let body = pseudo_random(len, 25);
            let url_path = format!("/{name}");
            server.add(&url_path, Resource::new(body.clone()));
            let path = dir.path().join("sub").join(name);
            let mut s = open_cached(&dl, &server.url(&url_path), &path).await.unwrap();
            assert_eq!(s.len(), Some(len as u64));
            let storage = s.source().storage().clone();
            let (s, got) = blocking(move || {
                let got = read_to_end(&mut s).unwrap();
                (s, got)
            })
            .await;
            assert_same(&got, &body[..]);
            // The commit follows the last byte: keep the stream until then.
            wait_committed(storage.clone()).await;
            assert_eq!(storage.len(), Some(len as u64));
            drop(s);
            drop(storage);
            // The drop records in the background; a reopen of the path waits
            // for it and finds a complete cache (no request, no sidecar).
            let again = open_cached(&dl, &server.url(&url_path), &path).await.unwrap();
            assert!(again.source().is_complete(), "{name}");
            // (An empty one keeps a sidecar saying "committed 0": an empty
            // file alone reads as fresh.)
            let side = dir.path().join("sub").join(format!("{name}.ranges"));
            assert_eq!(side.exists(), len == 0, "{name}");
            drop(again);
            assert_eq!(server.stats().requests_for(&url_path), 1, "{name}");
        }
    }

    /// A cache file that cannot be created (its parent is a regular file)
    /// is a typed storage error from `new`.
    fn uncreatable_cache_file_is_a_storage_error(env) {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let server = TestServer::start();
        server.add("/u", Resource::new(pseudo_random(100_000, 26)));
        let dl = env.downloader(4);
        let e = open_cached(&dl, &server.url("/u"), &blocker.join("file"))
            .await
            .unwrap_err();
        assert!(matches!(e, SourceError::Storage(_)), "{e:?}");
    }

    /// 32 streams on one downloader: all byte-exact, and the server never
    /// sees more connections than `max_concurrent`.
    fn thirty_two_concurrent_streams_share_one_downloader(env) {
        const N: usize = 32;
        const MAX: usize = 4;
        let server = TestServer::start();
        let bodies: Vec<Bytes> = (0..N).map(|i| pseudo_random(96 * 1024 + i * 1000, 100 + i as u64)).collect();
        for (i, b) in bodies.iter().enumerate() {
            server.add(&format!("/s{i}"), Resource::new(b.clone()));
        }
        let dl = env.downloader(MAX);
        let urls: Vec<Url> = (0..N).map(|i| server.url(&format!("/s{i}"))).collect();
        let opens = urls.iter().map(|u| open(&dl, u));
        let streams = futures::future::join_all(opens).await;
        let mut readers = Vec::new();
        for (i, s) in streams.into_iter().enumerate() {
            let mut s = s.unwrap();
            let b = bodies[i].clone();
            readers.push(blocking(move || assert_same(&read_to_end(&mut s).unwrap(), &b[..])));
        }
        futures::future::join_all(readers).await;
        let stats = server.stats();
        assert_eq!(stats.requests, N as u64);
        assert!(stats.peak_in_flight <= MAX as u64, "{stats:?}");
        // Requests in flight at the server are bounded exactly. Open TCP
        // connections lag the slots a little: a client is done with a
        // connection (its slot is free and the next request starts) a
        // moment before that connection is back in reqwest's pool, or
        // before the server sees surf's non-keep-alive connection close,
        // so a finished connection can still be counted next to a new one.
        assert!(
            stats.peak_connections <= 2 * MAX as u64,
            "peak connections {} > 2 x {MAX}",
            stats.peak_connections
        );
    }

    /// Dropping a stream mid-download cancels its fetch (the server sees the
    /// connection closed) and leaves a partial cache that a later open
    /// resumes with a Range request from where it stopped.
    fn drop_mid_download_cancels_and_a_later_open_resumes(env) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial.bin");
        let server = TestServer::start();
        let body = pseudo_random(2 << 20, 19);
        server.add("/p", Resource::new(body.clone()).throttle(512 * 1024));
        let dl = env.downloader(4);
        let s = open_cached(&dl, &server.url("/p"), &path).await.unwrap();
        let storage = s.source().storage().clone();
        let st = storage.clone();
        blocking(move || {
            let deadline = Instant::now() + STEP;
            while !st.contains_range(0..100_000) {
                assert!(Instant::now() < deadline, "no progress");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await;
        drop(s);
        drop(storage);
        server
            .wait_for(&*env.spawn, STEP, |s| s.connections_closed >= 1 && s.in_flight == 0)
            .await
            .expect("the server saw the connection closed");
        assert!(dir.path().join("partial.bin.ranges").exists());
        assert_eq!(server.stats().requests_for("/p"), 1);
        server.add("/p", Resource::new(body.clone()));
        server.reset_stats();
        let mut s = open_cached(&dl, &server.url("/p"), &path).await.unwrap();
        let got = blocking(move || read_to_end(&mut s).unwrap()).await;
        assert_same(&got, &body[..]);
        let ranges = server.stats().ranges_for("/p");
        let first = ranges[0].clone().expect("a Range request");
        let from: u64 = first
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected range {first}"));
        assert!((100_000..2 << 20).contains(&from), "resumed from {from}");
    }
}

/// Without a downloader in the config, opening builds one on the default
/// backend (tokio + reqwest here, inside the tokio runtime).
#[cfg(feature = "reqwest")]
#[test]
fn default_backend_downloader_when_none_is_given() {
    let server = TestServer::start();
    let body = pseudo_random(100_000, 24);
    server.add("/d", Resource::new(body.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = HttpFileConfig::from_url(server.url("/d")).read_timeout(Some(STEP));
    let mut s = rt
        .block_on(async { tokio::time::timeout(STEP, Stream::<HttpFile>::new(cfg)).await })
        .unwrap()
        .unwrap();
    assert_same(&read_to_end(&mut s).unwrap(), &body[..]);
    drop(s);
    rt.shutdown_timeout(Duration::from_secs(2));
}

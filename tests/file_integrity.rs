//! Integrity of `HttpFile` on a resource that changes between requests
//! (validators, `If-Range`) and on a server that ignores `Range` (one pass,
//! not one per seek), on every enabled backend, against the loopback server.
//!
//! Every case ends with the bytes of **one** version end to end, or a typed
//! error; never a mix.
#![cfg(any(feature = "reqwest", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kithara_stream::cancel::CancelToken;
use kithara_stream::dl::Downloader;
use kithara_stream::net::{NetError, Validator};
use kithara_stream::storage::StorageResource;
use kithara_stream::{HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError};
use support::backends::{Env, backend_tests};
use support::server::{Cut, Resource, TestServer, pseudo_random};
use url::Url;

/// The longest any single blocking step may take in these tests.
const STEP: Duration = Duration::from_secs(30);

const LEN: usize = 600_000;

/// Which validator the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // named after the headers
enum Tag {
    ETag,
    LastModified,
    /// No validator: only a change of length can be noticed, so the new
    /// version is 1000 bytes longer in these cases.
    Neither,
}

const TAGS: [Tag; 3] = [Tag::ETag, Tag::LastModified, Tag::Neither];

/// Version `n` (1 or 2) of the resource, with `tag`'s validator.
fn version(tag: Tag, n: u64) -> (Bytes, Resource) {
    let len = if tag == Tag::Neither && n > 1 {
        LEN + 1000
    } else {
        LEN
    };
    let body = pseudo_random(len, n);
    let r = Resource::new(body.clone()).content_type("application/octet-stream");
    let r = match tag {
        Tag::ETag => r.etag(&format!("\"v{n}\"")),
        Tag::LastModified => r.last_modified(&format!("Mon, 0{n} Nov 2026 10:00:00 GMT")),
        Tag::Neither => r,
    };
    (body, r)
}

fn validator(tag: Tag, n: u64) -> Option<Validator> {
    match tag {
        Tag::ETag => Some(Validator::ETag(format!("\"v{n}\""))),
        Tag::LastModified => Some(Validator::LastModified(format!(
            "Mon, 0{n} Nov 2026 10:00:00 GMT"
        ))),
        Tag::Neither => None,
    }
}

fn config(dl: &Downloader, url: &Url) -> HttpFileConfig {
    HttpFileConfig::from_url(url.clone())
        .downloader(dl.clone())
        .read_timeout(Some(STEP))
}

async fn open(dl: &Downloader, url: &Url) -> Stream<HttpFile> {
    Stream::<HttpFile>::new(config(dl, url)).await.unwrap()
}

async fn open_cached(dl: &Downloader, url: &Url, path: &Path) -> Stream<HttpFile> {
    Stream::<HttpFile>::new(config(dl, url).cache_file(path))
        .await
        .unwrap()
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

/// Compares bodies without printing megabytes on failure.
#[track_caller]
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: bodies differ: got {} bytes, want {}, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

/// The typed error a change after the first byte read must give: with a
/// validator, `ResourceChanged` naming both; without, the length check.
#[track_caller]
fn assert_changed_error(e: &std::io::Error, tag: Tag, url: &Url) {
    match (tag, source_error(e)) {
        (Tag::Neither, SourceError::Net(NetError::InvalidResponse { .. })) => {}
        (_, SourceError::Net(NetError::ResourceChanged { url: u, old, new })) => {
            assert_eq!(u, url);
            assert_eq!(Some((**old).clone()), validator(tag, 1), "{tag:?}");
            assert_eq!(new.as_deref().cloned(), validator(tag, 2), "{tag:?}");
            let text = e.to_string();
            assert!(text.contains("resource changed"), "{text}");
        }
        (_, other) => panic!("{tag:?}: expected a change error, got {other:?}"),
    }
}

/// Every request with a `Range` carried `If-Range` (when there is a
/// validator): the first with version 1's, later ones with version 1's or,
/// after a restart, version 2's.
#[track_caller]
fn assert_if_range_sent(server: &TestServer, path: &str, tag: Tag) {
    let (Some(v), Some(v2)) = (validator(tag, 1), validator(tag, 2)) else {
        return;
    };
    let ranged: Vec<_> = server
        .stats()
        .log
        .into_iter()
        .filter(|r| r.path == path && r.range.is_some())
        .collect();
    assert!(!ranged.is_empty(), "{tag:?}: no ranged request");
    for (i, r) in ranged.iter().enumerate() {
        let if_range = r.preconditions.iter().find(|(k, _)| k == "if-range");
        let sent = if_range.map(|(_, v)| v.as_str());
        let ok = sent == Some(v.as_str()) || (i > 0 && sent == Some(v2.as_str()));
        assert!(ok, "{tag:?}: request {i}: {r:?}");
    }
}

/// Reads `s` to its end on a plain thread; gives the stream back.
async fn read_all(mut s: Stream<HttpFile>) -> (Stream<HttpFile>, std::io::Result<Vec<u8>>) {
    blocking(move || {
        let mut all = Vec::new();
        let r = s.read_to_end(&mut all).map(|_| all);
        (s, r)
    })
    .await
}

/// Reads `n` bytes at the stream's position.
fn read_n(s: &mut Stream<HttpFile>, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// Waits (bounded) until `storage` holds `range`.
async fn wait_stored(storage: kithara_stream::StorageResource, range: std::ops::Range<u64>) {
    let ok = blocking(move || {
        storage
            .wait_until(Some(Instant::now() + STEP), || {
                storage.contains_range(range.clone()).then_some(())
            })
            .is_some()
    })
    .await;
    assert!(ok, "bytes never stored");
}

async fn change_after_a_seek(env: &Env, tag: Tag) {
    let server = TestServer::start();
    let (v1, r1) = version(tag, 1);
    let (v2, _) = version(tag, 2);
    server.add("/s", r1.throttle(400_000));
    let dl = env.downloader(4);
    let url = server.url("/s");
    let mut s = open(&dl, &url).await;
    // Bytes of version 1 are read, then the file changes on the server and
    // the reader seeks past the download: the re-aimed request meets v2.
    let head = blocking(move || {
        let head = read_n(&mut s, 10_000).unwrap();
        (s, head)
    })
    .await;
    let (mut s, head) = head;
    assert_same(&head, &v1[..10_000], "head");
    let v2len = v2.len();
    server.swap_version(
        "/s",
        v2,
        validator(tag, 2)
            .as_ref()
            .filter(|_| tag == Tag::ETag)
            .map(Validator::as_str),
        validator(tag, 2)
            .as_ref()
            .filter(|_| tag == Tag::LastModified)
            .map(Validator::as_str),
    );
    let res = blocking(move || {
        s.seek(SeekFrom::Start(500_000)).unwrap();
        let r = read_n(&mut s, 50_000);
        (s, r)
    })
    .await;
    let (s, r) = res;
    let e = r.expect_err("a changed resource must not yield bytes after a seek");
    assert_changed_error(&e, tag, &url);
    assert!(v2len > 0);
    assert_if_range_sent(&server, "/s", tag);
    // No range of either version is claimed afterwards.
    assert!(s.source().storage().available().is_empty(), "{tag:?}");
}

async fn change_on_resume_after_a_drop(env: &Env, tag: Tag, read_first: bool) {
    let server = TestServer::start();
    let (v1, r1) = version(tag, 1);
    let (v2, r2) = version(tag, 2);
    // The first GET (v1) dies after 200 kB; every later one serves v2.
    server.add(
        "/r",
        r1.throttle(1_000_000)
            .then(Cut::DropAfter(200_000))
            .swap_after(1, r2),
    );
    let dl = env.downloader(4);
    let url = server.url("/r");
    let mut s = open(&dl, &url).await;
    if read_first {
        // The reader consumes the first bytes long before the drop at 200 kB.
        let r;
        (s, r) = read_all(s).await;
        let e = r.expect_err("a resume onto another version must fail once bytes were read");
        assert_changed_error(&e, tag, &url);
    } else {
        // Nothing read until the new version is complete: it is started over.
        let storage = s.source().storage().clone();
        let len = v2.len() as u64;
        wait_stored(storage, 0..len).await;
        let got;
        (s, got) = read_all(s).await;
        assert_same(&got.unwrap(), &v2, "restarted on v2");
        assert_eq!(s.source().version_restarts(), 1, "{tag:?}");
        assert_eq!(s.source().validator(), validator(tag, 2));
    }
    if tag != Tag::Neither {
        assert_if_range_sent(&server, "/r", tag);
    }
    drop((s, v1));
}

async fn change_on_cache_resume(env: &Env, tag: Tag) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.bin");
    let server = TestServer::start();
    let (v1, _) = version(tag, 1);
    let (v2, r2) = version(tag, 2);
    // A partial cache of v1, as a download that stopped after 100 kB
    // leaves it (a reopen while the old stream's tasks still hold the path
    // would break the one-resource-per-path rule).
    {
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, &v1[..100_000]).unwrap();
        r.set_len_hint(Some(v1.len() as u64));
        r.set_validator(validator(tag, 1));
    }
    let dl = env.downloader(4);
    let url = server.url("/c");
    let sidecar = std::fs::read_to_string(dir.path().join("c.bin.ranges")).unwrap();
    assert!(
        sidecar.starts_with("kithara-stream ranges v2\n"),
        "{sidecar}"
    );
    if let Some(v) = validator(tag, 1) {
        assert!(sidecar.contains(v.as_str()), "{sidecar}");
    }
    server.add("/c", r2);
    server.reset_stats();
    let (s, got) = read_all(open_cached(&dl, &url, &path).await).await;
    assert_same(&got.unwrap(), &v2, "cache resumed onto v2");
    assert_eq!(s.source().version_restarts(), 1, "{tag:?}");
    assert_if_range_sent(&server, "/c", tag);
    if tag != Tag::Neither {
        // The 200 that answered `If-Range` is rejected before its body (no
        // byte of v2 lands next to v1); v1 is dropped off the executor's
        // threads, and one more request fetches v2.
        assert_eq!(server.stats().requests_for("/c"), 2, "{tag:?}");
    }
    drop(s);
    // The cache now holds v2, complete: a reopen reads it with no request.
    server.reset_stats();
    let (_, got) = read_all(open_cached(&dl, &url, &path).await).await;
    assert_same(&got.unwrap(), &v2, "complete cache");
    assert_eq!(server.stats().requests, 0);
}

async fn revalidation(env: &Env, tag: Tag) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    let server = TestServer::start();
    let (v1, r1) = version(tag, 1);
    let (v2, r2) = version(tag, 2);
    server.add("/v", r1);
    let dl = env.downloader(4);
    let url = server.url("/v");
    let read_all = |revalidate: bool| {
        let cfg = config(&dl, &url).cache_file(&path).revalidate(revalidate);
        async move {
            let s = Stream::<HttpFile>::new(cfg).await.unwrap();
            read_all(s).await.1.unwrap()
        }
    };
    assert_same(&read_all(false).await, &v1, "first download");
    // Complete: no request by default, one conditional one when asked.
    server.reset_stats();
    assert_same(&read_all(false).await, &v1, "offline");
    assert_eq!(server.stats().requests, 0, "{tag:?}");
    assert_same(&read_all(true).await, &v1, "still fresh");
    let log = server.stats().log;
    match validator(tag, 1) {
        Some(v) => {
            assert_eq!(log.len(), 1, "{tag:?}: {log:?}");
            let (name, value) = &log[0].preconditions[0];
            let want = if tag == Tag::ETag {
                "if-none-match"
            } else {
                "if-modified-since"
            };
            assert_eq!((name.as_str(), value.as_str()), (want, v.as_str()));
        }
        // Nothing to ask with: downloaded again.
        None => assert_eq!(log.len(), 1, "{tag:?}: {log:?}"),
    }
    // A new version on the server replaces the file.
    server.add("/v", r2);
    assert_same(&read_all(true).await, &v2, "replaced");
    server.reset_stats();
    assert_same(
        &read_all(false).await,
        &v2,
        "the replacement is the cache now",
    );
    assert_eq!(server.stats().requests, 0);
}

backend_tests! {
    /// A complete cache opens with no request unless revalidation is asked
    /// for: then `304` keeps it and a new version replaces it.
    fn revalidation_keeps_a_fresh_cache_and_replaces_a_changed_one(env) {
        for tag in TAGS {
            revalidation(&env, tag).await;
        }
    }

    /// Bytes of v1 were read, the file changes, a seek re-aims: typed error.
    fn a_change_after_a_seek_is_a_typed_error(env) {
        for tag in TAGS {
            change_after_a_seek(&env, tag).await;
        }
    }

    /// The body drops and the resume meets v2 after the reader got bytes.
    fn a_change_on_resume_after_reading_is_a_typed_error(env) {
        for tag in TAGS {
            change_on_resume_after_a_drop(&env, tag, true).await;
        }
    }

    /// The body drops and the resume meets v2 before any byte was read: the
    /// download starts over and the reader sees v2 end to end.
    fn a_change_on_resume_before_reading_restarts_on_the_new_version(env) {
        for tag in TAGS {
            change_on_resume_after_a_drop(&env, tag, false).await;
        }
    }

    /// A partial cache of v1 meets v2 on the server: v2 end to end.
    fn a_change_on_cache_resume_restarts_on_the_new_version(env) {
        for tag in TAGS {
            change_on_cache_resume(&env, tag).await;
        }
    }

    /// A server that ignores `Range` (and sends the same validator) costs
    /// about one pass of the body for 200 random seeks, not one per seek.
    fn a_rangeless_server_costs_about_one_pass(env) {
        const SIZE: usize = 2 << 20;
        const RATE: u64 = 8 << 20;
        let server = TestServer::start();
        let body = pseudo_random(SIZE, 7);
        server.add("/n", Resource::new(body.clone()).ignore_range().etag("\"n\"").throttle(RATE));
        let dl = env.downloader(4);
        let mut s = open(&dl, &server.url("/n")).await;
        let started = Instant::now();
        let b = body.clone();
        let s2 = blocking(move || {
            let mut x = 0x9e37_79b9_7f4a_7c15_u64;
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = x % (SIZE as u64 - 4096);
                s.seek(SeekFrom::Start(pos)).unwrap();
                let got = read_n(&mut s, 4096).unwrap();
                assert_same(&got, &b[pos as usize..pos as usize + 4096], "seek read");
            }
            s
        })
        .await;
        let elapsed = started.elapsed();
        assert_eq!(s2.source().ranges_supported(), Some(false));
        let sent = server.stats().body_bytes_sent;
        assert!(sent <= 2 * SIZE as u64, "{sent} body bytes sent for {SIZE}");
        // One pass takes 0.25 s; allow a loaded machine plenty.
        let pass = Duration::from_secs_f64(SIZE as f64 / RATE as f64);
        assert!(elapsed < 20 * pass, "{elapsed:?} for a {pass:?} pass");
        drop(s2);
    }
}

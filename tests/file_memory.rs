//! `HttpFile` without a network and without a runtime: `MemoryClient` and a
//! futures thread pool with a timer thread. Runs under every feature set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dl_common;

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dl_common::*;
use http::StatusCode;
use kithara_stream::dl::{CancelReason, Downloader, DownloaderConfig, DownloaderEvent};
use kithara_stream::net::{
    HttpClient, MemoryClient, MemoryResource, NetError, RetryPolicy, TransportKind,
};
use kithara_stream::{
    AudioCodec, ContainerFormat, HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError,
};

const LIMIT: Duration = Duration::from_secs(20);
const URL: &str = "http://127.0.0.1/song";

fn downloader(spawn: &PoolSpawn, client: impl HttpClient) -> Downloader {
    Downloader::new(
        DownloaderConfig::new(Arc::new(spawn.clone()), Arc::new(client)).retry(RetryPolicy::new(
            3,
            Duration::from_millis(2),
            Duration::from_millis(20),
        )),
    )
}

fn open(dl: &Downloader) -> Result<Stream<HttpFile>, SourceError> {
    let cfg = HttpFileConfig::new(URL).unwrap().downloader(dl.clone());
    block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg))
}

/// A config for [`URL`] on `dl`, cached in the file at `path`.
fn cached(dl: &Downloader, path: &std::path::Path) -> HttpFileConfig {
    HttpFileConfig::new(URL)
        .unwrap()
        .downloader(dl.clone())
        .cache_file(path)
}

/// Reads to the end on a plain thread (bounded by the read timeout).
fn read_all(mut s: Stream<HttpFile>) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(LIMIT));
    within(2 * LIMIT, "read_to_end", move || {
        let mut out = Vec::new();
        s.read_to_end(&mut out).map(|_| out)
    })
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

#[test]
fn happy_path_byte_exact_and_mime() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(300_000, 1);
    client.insert_resource(
        URL,
        MemoryResource::new(body.clone())
            .content_type("audio/mpeg")
            .chunk_size(4096),
    );
    let dl = downloader(&spawn, client.clone());
    let s = open(&dl).unwrap();
    assert_eq!(s.len(), Some(300_000));
    let info = s.source().media_info().unwrap();
    assert_eq!(info.codec, Some(AudioCodec::Mp3));
    assert_eq!(s.source().content_type().as_deref(), Some("audio/mpeg"));
    assert_eq!(read_all(s).unwrap(), body);
    let reqs = client.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].range, None);
}

#[test]
fn generic_mime_falls_back_to_magic_bytes() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    wav.extend(std::iter::repeat_n(7u8, 5000));
    client.insert_resource(
        URL,
        MemoryResource::new(wav.clone()).content_type("application/octet-stream"),
    );
    let dl = downloader(&spawn, client);
    let s = open(&dl).unwrap();
    let src = s.source();
    assert!(wait_until(LIMIT, || src.media_info().is_some()));
    assert_eq!(
        s.source().media_info().unwrap().container,
        Some(ContainerFormat::Wav)
    );
    assert_eq!(read_all(s).unwrap(), wav);
}

#[test]
fn seek_reaims_with_a_range_request_and_fills_gaps() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(2_000_000, 2);
    // The first response stalls after 64 KiB: only a re-aim can serve a seek.
    client.insert_resource(URL, MemoryResource::new(body.clone()).chunk_size(8192));
    let stalling = MemoryClient::new();
    stalling.insert_resource(
        URL,
        MemoryResource::new(body.clone())
            .chunk_size(8192)
            .stall_after(64 * 1024),
    );
    let dl = downloader(&spawn, FirstThen::new(stalling, client.clone()));
    let mut s = open(&dl).unwrap();
    let events = s.source().peer().unwrap().subscribe();
    s.set_read_timeout(Some(LIMIT));
    let (s, buf) = within(2 * LIMIT, "seek and read_exact", move || {
        let mut buf = vec![0u8; 1000];
        s.seek(SeekFrom::Start(1_500_000)).unwrap();
        s.read_exact(&mut buf).unwrap();
        (s, buf)
    });
    assert_eq!(&buf[..], &body[1_500_000..1_501_000]);
    let reqs = client.requests();
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=1500000-"), "{reqs:?}");
    // The stalled first fetch was cancelled through its epoch token, once.
    let deadline = Instant::now() + LIMIT;
    let mut epoch_cancels = 0;
    while Instant::now() < deadline {
        match events.recv_timeout(Duration::from_millis(200)) {
            Some(DownloaderEvent::RequestCancelled { reason, .. }) => {
                assert_eq!(reason, CancelReason::EpochCancel);
                epoch_cancels += 1;
            }
            Some(_) => {}
            None if epoch_cancels > 0 => break,
            None => {}
        }
    }
    assert_eq!(epoch_cancels, 1);
    // The gaps are filled afterwards and the resource commits.
    let src = s.source();
    assert!(wait_until(LIMIT, || src.is_complete()));
    let mut s = s;
    s.seek(SeekFrom::Start(0)).unwrap();
    assert_eq!(read_all(s).unwrap(), body);
}

#[test]
fn ignored_range_still_yields_correct_bytes() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(500_000, 3);
    client.insert_resource(
        URL,
        MemoryResource::new(body.clone())
            .ignore_range()
            .chunk_size(4096),
    );
    let dl = downloader(&spawn, client);
    let mut s = open(&dl).unwrap();
    s.set_read_timeout(Some(LIMIT));
    let s = within(2 * LIMIT, "seeks and reads", move || {
        for pos in [400_000u64, 10, 250_000, 499_990] {
            let mut buf = vec![0u8; 10];
            s.seek(SeekFrom::Start(pos)).unwrap();
            s.read_exact(&mut buf).unwrap();
            let p = pos as usize;
            assert_eq!(&buf[..], &body[p..p + 10]);
        }
        s
    });
    drop(s);
}

#[test]
fn no_length_reads_to_the_end_and_learns_the_length() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(100_000, 4);
    client.insert_resource(
        URL,
        MemoryResource::new(body.clone())
            .no_length()
            .chunk_size(1000),
    );
    let dl = downloader(&spawn, client);
    let s = open(&dl).unwrap();
    let src_storage = s.source().storage().clone();
    assert_eq!(read_all(s).unwrap(), body);
    assert!(wait_until(LIMIT, || src_storage.len() == Some(100_000)));
}

#[test]
fn not_found_and_server_error_are_typed_errors_from_new() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let dl = downloader(&spawn, client.clone());
    let e = open(&dl).unwrap_err();
    assert!(
        matches!(&e, SourceError::Net(NetError::Status { status, .. }) if *status == 404),
        "{e:?}"
    );
    client.insert_resource(
        URL,
        MemoryResource::new(&b"boom"[..]).status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    let e = open(&dl).unwrap_err();
    assert!(
        matches!(&e, SourceError::Net(NetError::Status { status, .. }) if *status == 500),
        "{e:?}"
    );
    client.insert_resource(
        URL,
        MemoryResource::new(&b"<html></html>"[..]).content_type("text/html"),
    );
    let e = open(&dl).unwrap_err();
    assert!(
        matches!(&e, SourceError::Net(NetError::InvalidContentType { .. })),
        "{e:?}"
    );
}

#[test]
fn body_that_keeps_failing_is_an_error_for_the_reader_not_eof() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(100_000, 5);
    // Every response fails after 0 bytes: no progress is possible.
    client.insert_resource(URL, MemoryResource::new(body).fail_after(0));
    let dl = downloader(&spawn, client);
    let s = open(&dl).unwrap();
    let started = Instant::now();
    let e = read_all(s).unwrap_err();
    assert!(started.elapsed() < LIMIT);
    assert_ne!(e.kind(), ErrorKind::TimedOut, "{e:?}");
    assert!(
        matches!(
            source_error(&e),
            SourceError::Net(NetError::Transport {
                kind: TransportKind::Body,
                ..
            })
        ),
        "the body's own error, not a timeout: {e:?}"
    );
}

#[test]
fn read_timeout_from_config_applies_to_the_stream() {
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    client.insert_resource(
        URL,
        MemoryResource::new(pattern(100_000, 6)).stall_after(10),
    );
    let dl = downloader(&spawn, client);
    let cfg = HttpFileConfig::new(URL)
        .unwrap()
        .downloader(dl)
        .read_timeout(Some(Duration::from_millis(300)));
    let mut s = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg)).unwrap();
    assert_eq!(s.read_timeout(), Some(Duration::from_millis(300)));
    let e = within(LIMIT, "read_exact past the read timeout", move || {
        let mut buf = vec![0u8; 100];
        s.read_exact(&mut buf)
    })
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
}

#[test]
fn cache_file_complete_opens_with_no_request_partial_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.bin");
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(200_000, 7);
    client.insert_resource(
        URL,
        MemoryResource::new(body.clone())
            .chunk_size(4096)
            .stall_after(50_000),
    );
    let dl = downloader(&spawn, client.clone());
    let cfg = || cached(&dl, &path);
    // First open stalls at 50 000 bytes; drop it there.
    let s = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg())).unwrap();
    let storage = s.source().storage().clone();
    assert!(wait_until(LIMIT, || storage.contains_range(0..50_000)));
    drop(storage);
    drop(s);
    // Second open resumes from 50 000.
    client.insert_resource(URL, MemoryResource::new(body.clone()).chunk_size(4096));
    let s = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg())).unwrap();
    assert_eq!(read_all(s).unwrap(), body);
    let reqs = client.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=50000-"));
    // Let the commit land, then a third open makes no request at all.
    assert!(wait_until(LIMIT, || !dir
        .path()
        .join("song.bin.ranges")
        .exists()));
    let s = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg())).unwrap();
    assert!(s.source().is_complete());
    assert_eq!(read_all(s).unwrap(), body);
    assert_eq!(client.requests().len(), 2);
}

/// Counts `spawn_blocking` calls and runs each on its own thread.
struct CountBlocking {
    inner: PoolSpawn,
    blocking: Arc<std::sync::atomic::AtomicUsize>,
}

impl kithara_stream::rt::Spawn for CountBlocking {
    fn spawn(&self, task: kithara_stream::rt::BoxFuture<'static, ()>) {
        self.inner.spawn(task);
    }

    fn sleep(&self, d: Duration) -> kithara_stream::rt::BoxFuture<'static, ()> {
        self.inner.sleep(d)
    }

    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send>) {
        self.blocking
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::thread::spawn(work);
    }
}

/// A cache file's open and commit (an `fdatasync` of the whole file) go to
/// the runtime's blocking pool; memory storage never uses it.
#[test]
fn cache_file_commit_runs_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.bin");
    let blocking = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spawn = CountBlocking {
        inner: PoolSpawn::new(),
        blocking: blocking.clone(),
    };
    let client = MemoryClient::new();
    let body = pattern(300_000, 9);
    client.insert_resource(URL, MemoryResource::new(body.clone()).chunk_size(8192));
    let dl = Downloader::new(DownloaderConfig::new(Arc::new(spawn), Arc::new(client)));
    let open_with = |cfg: HttpFileConfig| block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg));
    let base = || HttpFileConfig::new(URL).unwrap().downloader(dl.clone());

    let committed = |storage: &kithara_stream::StorageResource| {
        matches!(
            storage.status(),
            kithara_stream::storage::ResourceStatus::Committed { .. }
        )
    };
    // Reads it all, keeping the stream open until its commit landed (a
    // drop cancels).
    let read_until_committed = |cfg: HttpFileConfig| {
        let mut s = open_with(cfg).unwrap();
        s.set_read_timeout(Some(LIMIT));
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, body);
        let storage = s.source().storage().clone();
        assert!(wait_until(LIMIT, || committed(&storage)));
    };
    read_until_committed(base());
    assert_eq!(
        blocking.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "memory: inline"
    );
    read_until_committed(base().cache_file(&path));
    assert!(wait_until(LIMIT, || !dir
        .path()
        .join("song.bin.ranges")
        .exists()));
    // The open, the commit and the last drop's record: one to three
    // drainers (jobs queued while one runs share it).
    let n = blocking.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=3).contains(&n), "file: {n} blocking jobs");
}

/// A cache read to its end and dropped at once (before or after the commit
/// landed): a reopen of the same path waits for the first resource's last
/// record and finds the file complete, with no second request.
#[test]
fn cache_file_dropped_right_after_the_last_byte_reopens_complete() {
    let dir = tempfile::tempdir().unwrap();
    let spawn = PoolSpawn::new();
    let client = MemoryClient::new();
    let body = pattern(300_000, 11);
    client.insert_resource(URL, MemoryResource::new(body.clone()));
    let dl = downloader(&spawn, client.clone());
    for i in 0..20 {
        let path = dir.path().join(format!("c{i}"));
        let cfg = || cached(&dl, &path);
        let s = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg())).unwrap();
        assert_eq!(read_all(s).unwrap(), body, "round {i}");
        let again = block_on_timeout(LIMIT, Stream::<HttpFile>::new(cfg())).unwrap();
        assert!(again.source().is_complete(), "round {i}: reopened partial");
    }
    assert_eq!(client.requests().len(), 20, "one request per file");
}

/// Dropping a stream while its fetch is writing ends the request as
/// cancelled (`RequestCancelled`, by the peer's cancel), never as a failed
/// write into the storage the stream took with it.
#[test]
fn dropping_a_stream_mid_write_reports_the_request_cancelled() {
    let spawn = PoolSpawn::new();
    let mem = MemoryClient::new();
    mem.insert_resource(
        URL,
        MemoryResource::new(vec![5u8; 8 << 20]).chunk_size(4096),
    );
    let dl = downloader(&spawn, mem);
    let events = dl.subscribe();
    for _ in 0..30 {
        let mut s = open(&dl).unwrap();
        let mut buf = [0u8; 4096];
        s.read_exact(&mut buf).unwrap();
        drop(s);
    }
    assert!(
        wait_until(LIMIT, || dl.inflight() == 0),
        "fetches still running"
    );
    let seen = events.drain();
    let failed: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, DownloaderEvent::RequestFailed { .. }))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let cancelled = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                DownloaderEvent::RequestCancelled {
                    reason: CancelReason::PeerCancel,
                    ..
                }
            )
        })
        .count();
    assert!(
        cancelled > 0,
        "no fetch was running at a drop: the test tested nothing"
    );
}

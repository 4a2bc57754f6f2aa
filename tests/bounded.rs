//! Bounded memory storage and live streams end to end, on every enabled
//! backend: endless streams through a small budget, random seeks that
//! re-fetch evicted parts, a live reconnect, and the writer waiting for a
//! stopped reader. Reads are blocking, so they run on plain threads.
#![cfg(any(feature = "reqwest", feature = "surf"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::file::LiveEvent;
use kithara_stream::net::RetryPolicy;
use kithara_stream::storage::StorageError;
use kithara_stream::{HttpFile, HttpFileConfig, SourceError, Stream, StreamReadError};
use support::backends::{Env, backend_tests};
use support::server::{GenConfig, GenServer, gen_check};

/// The longest any single blocking step may take in these tests.
const STEP: Duration = Duration::from_secs(30);

const MIB: u64 = 1 << 20;

/// Bytes streamed through the budget in the endless test (256 budgets).
const ENDLESS_BYTES: u64 = 1024 * MIB;

/// Set in the child process that runs the RSS-measuring test alone.
const RSS_CHILD: &str = "KITHARA_BOUNDED_RSS_CHILD";

/// Process RSS is shared by every test running in parallel, so the test
/// that measures it re-runs itself alone in a child process; returns `true`
/// in that child (the caller then does the work), `false` in the parent
/// once the child passed.
fn in_child_process(test: &str) -> bool {
    if std::env::var_os(RSS_CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(RSS_CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test:\n{stdout}"
    );
    false
}

fn downloader(env: &Env) -> Downloader {
    Downloader::new(
        DownloaderConfig::new(env.spawn.clone(), env.client.clone()).retry(RetryPolicy::new(
            3,
            Duration::from_millis(5),
            Duration::from_millis(50),
        )),
    )
}

async fn open_bounded(env: &Env, server: &GenServer, budget: u64) -> Stream<HttpFile> {
    let cfg = HttpFileConfig::from_url(server.url())
        .downloader(downloader(env))
        .read_timeout(Some(STEP))
        .bounded_memory(budget);
    env.timeout(STEP, Stream::<HttpFile>::new(cfg))
        .await
        .expect("opened in time")
        .expect("opened")
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

/// Resident memory of this process in bytes (Linux), else 0.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Reads `len` bytes at the stream's position, checking each against the
/// generated pattern at `base + position` (`base` shifts a live stream
/// after a reconnect).
fn read_checked(s: &mut Stream<HttpFile>, len: u64, buf: &mut [u8]) {
    let mut left = len;
    while left > 0 {
        let pos = s.stream_position().unwrap();
        let want = buf.len().min(left as usize);
        let n = s
            .read(&mut buf[..want])
            .unwrap_or_else(|e| panic!("read at {pos}: {e:?}; {:?}", s.source()));
        assert!(n > 0, "early end at {pos}");
        assert!(
            gen_check(pos, &buf[..n]),
            "wrong bytes at {pos}..{}",
            pos + n as u64
        );
        left -= n as u64;
    }
}

/// The largest socket buffer the kernel may grow to (the third field of
/// `/proc/sys/net/ipv4/<name>`), or 32 MiB where that cannot be read.
fn tcp_buffer_max(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(32 * MIB)
}

/// Waits (bounded) until `sent()` stops growing for a while; returns it.
fn settle(sent: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + STEP;
    let mut last = sent();
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = sent();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(800) {
            return now;
        }
    }
    panic!("the server never stopped sending (at {last} bytes)");
}

backend_tests! {
    /// An endless stream through a 4 MiB budget: every byte exact and in
    /// order, resident pages within the budget, process RSS growth bounded.
    fn endless_stream_stays_in_a_4_mib_budget(env) {
        if !in_child_process(&format!("{}::endless_stream_stays_in_a_4_mib_budget", env.name)) {
            return;
        }
        let server = GenServer::start(GenConfig::default());
        let mut s = open_bounded(&env, &server, 4 * MIB).await;
        assert!(s.source().is_live());
        let before = rss();
        let (peak_pages, grew) = blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut peak = 0;
            let mut done = 0;
            while done < ENDLESS_BYTES {
                read_checked(&mut s, 8 * MIB, &mut buf);
                done += 8 * MIB;
                peak = peak.max(s.source().storage().resident_bytes());
            }
            assert_eq!(s.len(), None, "a live stream has no length");
            (peak, rss().saturating_sub(before))
        })
        .await;
        assert!(peak_pages <= 4 * MIB, "pages {peak_pages} over the budget");
        // Generous: allocator slack, the HTTP client's buffers, the test's
        // own threads; what matters is that it does not follow the 256 MiB.
        eprintln!("RSS growth over {} MiB streamed: {} KiB", ENDLESS_BYTES / MIB, grew / 1024);
        assert!(grew < 48 * MIB, "RSS grew by {} MiB", grew / MIB);
    }

    /// A `Range`-capable 64 MiB resource read with 200 random seeks under a
    /// 4 MiB budget: every byte exact; what the server sent stays within
    /// what was read plus one budget of read-ahead per seek, and within
    /// three times what was read.
    fn random_seeks_refetch_evicted_parts(env) {
        let len = 64 * MIB;
        let server = GenServer::start(GenConfig { len: Some(len), ..GenConfig::default() });
        let mut s = open_bounded(&env, &server, 4 * MIB).await;
        let read = blocking(move || {
            let mut buf = vec![0u8; 32 * 1024];
            let mut rng = 0x2545_F491_4F6C_DD1Du64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut read = 0;
            for _ in 0..200 {
                let at = next() % len;
                // A player plays a while after a seek.
                let n = (256 * 1024 + next() % (4 * MIB)).min(len - at);
                s.seek(SeekFrom::Start(at)).unwrap();
                read_checked(&mut s, n, &mut buf);
                read += n;
                assert!(s.source().storage().resident_bytes() <= 4 * MIB);
            }
            read
        })
        .await;
        let sent = server.bytes_sent();
        // Each seek may prefetch up to the budget (plus socket buffers)
        // before the writer pauses and the fetch is re-aimed.
        eprintln!("random seeks: {} KiB read, {} KiB sent", read / 1024, sent / 1024);
        // What was read, plus per seek at most the read-ahead the budget
        // allows (and what the sockets held when the fetch was re-aimed).
        let bound = read + 200 * (4 * MIB + 2 * MIB);
        assert!(sent <= bound, "sent {sent} for {read} read (bound {bound})");
        assert!(sent <= 4 * read, "sent {sent} for {read} read");
    }

    /// A live stream whose connection drops is continued by a plain GET;
    /// the bytes before the drop are all delivered, a discontinuity event
    /// marks the join, and the bytes after it are the new connection's.
    fn live_stream_reconnects_after_a_drop(env) {
        let drop_at = 3 * MIB + 12_345;
        let server = GenServer::start(GenConfig {
            drop_after: Some(drop_at),
            ..GenConfig::default()
        });
        let mut s = open_bounded(&env, &server, 4 * MIB).await;
        let events = blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            read_checked(&mut s, drop_at, &mut buf);
            // After the join the new connection starts its pattern at 0.
            let mut got = vec![0u8; 5 * MIB as usize];
            s.read_exact(&mut got).unwrap();
            assert!(gen_check(0, &got), "the new connection's bytes follow the join");
            assert_eq!(s.len(), None);
            s.source().live_events()
        })
        .await;
        assert_eq!(events, vec![LiveEvent::Discontinuity { offset: drop_at }]);
        // The downloader does not try a `Range` resume (a station answers it
        // with a new stream): the peer reconnects with a plain GET (on a
        // loaded machine an attempt may be retried, hence a bound).
        let ranges = server.stats.ranges.lock().unwrap().clone();
        assert!((2..=5).contains(&ranges.len()), "{ranges:?}");
        assert!(ranges.iter().all(Option::is_none), "a live stream never asks for a Range: {ranges:?}");
    }

    /// A reader that stops reading stops the download: the server sees its
    /// body stall within budget + socket buffers, and nothing is lost when
    /// the reader goes on.
    fn the_writer_waits_for_a_stopped_reader(env) {
        let server = GenServer::start(GenConfig::default());
        let mut s = open_bounded(&env, &server, 4 * MIB).await;
        let sent_fn = {
            let stats = server.stats.clone();
            move || stats.bytes_sent.load(std::sync::atomic::Ordering::Acquire)
        };
        let (stalled, after) = blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            read_checked(&mut s, MIB, &mut buf);
            let stalled = settle(&sent_fn);
            read_checked(&mut s, 40 * MIB, &mut buf);
            (stalled, sent_fn())
        })
        .await;
        // 1 MiB read + 4 MiB budget + the kernel's socket buffers on both
        // sides + a few MiB of client buffers. Receive autotuning may grow
        // the client's buffer up to `tcp_rmem`'s maximum (32 MiB here), and
        // does so on a loaded machine while the reader still reads fast.
        let kernel = tcp_buffer_max("tcp_rmem") + tcp_buffer_max("tcp_wmem");
        let bound = 5 * MIB + kernel + 4 * MIB;
        let requests = server.stats.ranges.lock().unwrap().len();
        eprintln!("stalled at {} KiB sent, {requests} request(s)", stalled / 1024);
        assert_eq!(requests, 1, "one connection");
        assert!(
            stalled <= bound,
            "sent {stalled} before stalling (bound {bound}: budget, read, kernel buffers)"
        );
        assert!(after >= 41 * MIB, "the download went on");
    }

    /// A reader paused for longer than the inactivity timeout is not a
    /// silent server: the paused writer does not time out, and the stream
    /// goes on exact when the reader comes back.
    fn a_paused_writer_does_not_hit_the_inactivity_timeout(env) {
        let server = GenServer::start(GenConfig::default());
        let dl = Downloader::new(
            DownloaderConfig::new(env.spawn.clone(), env.client.clone())
                .inactivity_timeout(Duration::from_millis(300))
                .retry(RetryPolicy::new(0, Duration::from_millis(5), Duration::from_millis(5))),
        );
        let cfg = HttpFileConfig::from_url(server.url())
            .downloader(dl.clone())
            .read_timeout(Some(STEP))
            .bounded_memory(MIB);
        let mut s = env.timeout(STEP, Stream::<HttpFile>::new(cfg)).await.unwrap().unwrap();
        let events = dl.subscribe();
        let events = blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            read_checked(&mut s, MIB, &mut buf);
            std::thread::sleep(Duration::from_millis(1500));
            read_checked(&mut s, 8 * MIB, &mut buf);
            // Before the stream's drop ends the fetch.
            events.drain()
        })
        .await;
        let bad: Vec<_> = events
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    kithara_stream::dl::DownloaderEvent::RequestFailed { .. }
                        | kithara_stream::dl::DownloaderEvent::RequestResumed { .. }
                )
            })
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(server.requests(), 1, "one connection throughout");
    }

    /// On a stream without `Range` support, a seek back past what the
    /// bounded storage holds is a typed error, not a hang or wrong bytes.
    fn seek_outside_the_window_of_a_live_stream_is_an_error(env) {
        let server = GenServer::start(GenConfig::default());
        let mut s = open_bounded(&env, &server, MIB).await;
        let (err, look_behind_ok) = blocking(move || {
            let mut buf = vec![0u8; 64 * 1024];
            read_checked(&mut s, 8 * MIB, &mut buf);
            // A small step back stays in the look-behind.
            s.seek(SeekFrom::Current(-1000)).unwrap();
            let pos = s.stream_position().unwrap();
            let n = s.read(&mut buf[..1000]).unwrap();
            let ok = n > 0 && gen_check(pos, &buf[..n]);
            s.seek(SeekFrom::Start(0)).unwrap();
            (s.read(&mut buf).unwrap_err(), ok)
        })
        .await;
        assert!(look_behind_ok);
        let inner = err.into_inner().expect("a typed error");
        let typed = inner.downcast_ref::<StreamReadError>().expect("a StreamReadError");
        assert!(
            matches!(
                typed,
                StreamReadError::Source(SourceError::Storage(StorageError::Evicted { offset: 0 }))
            ),
            "{typed:?}"
        );
    }
}

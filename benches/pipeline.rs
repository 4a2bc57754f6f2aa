//! The pipeline against the raw HTTP client, side by side, in one run.
//!
//! `cargo bench --bench pipeline --all-features` (see `BENCHMARKS.md`).
//!
//! For every enabled backend pair (tokio + reqwest, async-std + surf) it
//! measures, against a loopback server running in a **child process** (so
//! the RSS and thread figures are the client's alone):
//!
//! - raw client: a body drained into nothing (MB/s) and time to first chunk;
//! - ours: a `Downloader` + one streaming `FetchCmd` writing into storage
//!   (memory, temp file), read through `Stream` with `Read` into a 64 KiB
//!   buffer: MB/s, ratio ours/raw, time to the first 64 KiB;
//! - the downloader alone (`PeerHandle::execute`, body drained);
//! - the same cases on a server throttled to `KITHARA_BENCH_RATE_MBPS`;
//! - client CPU seconds per GB (all threads, and the reader thread);
//! - N concurrent downloads on one downloader (raw and ours): total MB/s,
//!   peak threads, peak RSS (each in a fresh child process);
//! - peak RSS of streaming a large body with file storage (child process).
//!
//! Sizes scale with `KITHARA_BENCH_SCALE` (default 1: 256 MiB, 32 MiB
//! throttled, 64 × 16 MiB, 1 GiB); `KITHARA_BENCH_RUNS` (default 5) repeats
//! the sequential cases (medians are reported).
//! `KITHARA_BENCH_BACKENDS=reqwest,surf` filters. All knobs: `BENCHMARKS.md`.
//!
//! A plain `main` (no criterion): the point is ratios measured in the same
//! run, process RSS and thread counts, which criterion does not report.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Without a backend pair only the server role and a message remain.
#![cfg_attr(not(any(feature = "reqwest", feature = "surf")), allow(dead_code))]

#[allow(dead_code, unused_macros, unreachable_pub, clippy::result_large_err)]
#[path = "../tests/support/server.rs"]
mod server;
#[path = "common/wake.rs"]
mod wake;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Internal: the env var that makes this binary the loopback server.
const ROLE_VAR: &str = "KITHARA_BENCH_ROLE";
const MIB: u64 = 1024 * 1024;
/// Body chunk size of the loopback server (its default is 16 KiB; larger
/// chunks keep the server's own per-frame cost out of the way).
const SERVER_CHUNK: usize = 64 * 1024;
/// The reader's buffer, as in the issue.
const READ_BUF: usize = 64 * 1024;

/// What the run is asked to do (env vars).
#[derive(Debug, Clone)]
struct Plan {
    seq_len: u64,
    conc_n: usize,
    conc_len: u64,
    max_concurrent: usize,
    huge_len: u64,
    slow_len: u64,
    slow_rate: u64,
    slow_runs: usize,
    seek_len: u64,
    seek_rate: u64,
    seeks: usize,
    runs: usize,
    conc_runs: usize,
    backends: Option<String>,
    /// `KITHARA_BENCH_ONLY=seq`: only the unthrottled sequential cases
    /// (per-run lines on stderr, no table): for quick profiling.
    seq_only: bool,
}

/// Seed of the `/seek` body, so the bench can check what it reads.
const SEEK_SEED: u64 = 5;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Plan {
    fn from_env() -> Self {
        let scale = env_f64("KITHARA_BENCH_SCALE", 1.0).max(0.001);
        let sized = |mib: u64| ((mib * MIB) as f64 * scale).max(READ_BUF as f64 * 2.0) as u64;
        let conc_n = env_usize("KITHARA_BENCH_CONCURRENT", 64).max(1);
        Self {
            seq_len: sized(256),
            conc_n,
            conc_len: sized(16),
            max_concurrent: env_usize("KITHARA_BENCH_MAX_CONCURRENT", conc_n),
            huge_len: sized(1024),
            slow_len: sized(32),
            slow_rate: (env_f64("KITHARA_BENCH_RATE_MBPS", 100.0) * 1e6) as u64,
            slow_runs: env_usize("KITHARA_BENCH_SLOW_RUNS", 3).max(1),
            seek_len: sized(64),
            seek_rate: (env_f64("KITHARA_BENCH_SEEK_MBPS", 20.0) * 1e6) as u64,
            seeks: env_usize("KITHARA_BENCH_SEEKS", 200).max(1),
            runs: env_usize("KITHARA_BENCH_RUNS", 5).max(1),
            conc_runs: env_usize("KITHARA_BENCH_CONC_RUNS", 3).max(1),
            backends: std::env::var("KITHARA_BENCH_BACKENDS").ok(),
            seq_only: std::env::var("KITHARA_BENCH_ONLY").is_ok_and(|v| v == "seq"),
        }
    }
}

/// The child process: serve the three bodies until stdin closes.
fn server_main() {
    use server::{Resource, TestServer, pseudo_random};
    let plan = Plan::from_env();
    let server = TestServer::start();
    let add = |path: &str, len: u64, seed: u64| {
        server.add(
            path,
            Resource::new(pseudo_random(len as usize, seed))
                .content_type("application/octet-stream")
                .chunk_size(SERVER_CHUNK),
        );
    };
    add("/seq", plan.seq_len, 1);
    add("/conc", plan.conc_len, 2);
    add("/huge", plan.huge_len, 3);
    server.add(
        "/slow",
        Resource::new(pseudo_random(plan.slow_len as usize, 4))
            .content_type("application/octet-stream")
            .chunk_size(SERVER_CHUNK)
            .throttle(plan.slow_rate.max(1)),
    );
    server.add(
        "/seek",
        Resource::new(pseudo_random(plan.seek_len as usize, SEEK_SEED))
            .content_type("application/octet-stream")
            .chunk_size(SERVER_CHUNK)
            .throttle(plan.seek_rate.max(1)),
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.addr().port()).unwrap();
    out.flush().unwrap();
    drop(out);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
}

/// The server child's pid, for its CPU time ([`bench::server_cpu_secs`]).
static SERVER_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The server child; killed (stdin closed, then waited) on drop.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    fn start() -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .env(ROLE_VAR, "server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("server port");
        SERVER_PID.store(child.id(), std::sync::atomic::Ordering::Relaxed);
        Self { child, port }
    }

    fn url(&self, path: &str) -> url::Url {
        server_url(self.port, path)
    }
}

fn server_url(port: u16, path: &str) -> url::Url {
    url::Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap()
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn main() {
    let role = std::env::var(ROLE_VAR).unwrap_or_default();
    if role == "server" {
        server_main();
        return;
    }
    // `cargo bench` passes `--bench`; arguments are ignored.
    let plan = Plan::from_env();
    #[cfg(any(feature = "reqwest", feature = "surf"))]
    if role == "case" {
        bench::case_main(&plan);
    } else {
        bench::run(&plan);
    }
    #[cfg(not(any(feature = "reqwest", feature = "surf")))]
    {
        let _ = plan;
        println!("no backend pair enabled: build with --features reqwest and/or surf");
    }
}

#[cfg(any(feature = "reqwest", feature = "surf"))]
mod bench {
    use std::future::Future;
    use std::io::Read;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use futures::io::AsyncRead;
    use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer, RequestPriority};
    use kithara_stream::net::HttpClient;
    use kithara_stream::rt::{BoxFuture, Spawn};
    use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    use url::Url;

    use super::{MIB, Plan, READ_BUF, ServerProcess, mbps, median};

    // ---------------------------------------------------------------
    // Backends
    // ---------------------------------------------------------------

    /// One backend pair: its executor, our client adapter and the raw client.
    pub(crate) struct Backend {
        pub(crate) name: &'static str,
        kind: Kind,
        spawn: Arc<dyn Spawn>,
        client: Arc<dyn HttpClient>,
    }

    enum Kind {
        #[cfg(feature = "reqwest")]
        Reqwest {
            rt: tokio::runtime::Runtime,
            raw: reqwest::Client,
        },
        #[cfg(feature = "surf")]
        Surf { raw: surf::Client },
    }

    impl Backend {
        fn all(filter: Option<&str>) -> Vec<Backend> {
            let wanted = |name: &str| filter.is_none_or(|f| f.split(',').any(|x| x.trim() == name));
            let mut out = Vec::new();
            #[cfg(feature = "reqwest")]
            if wanted("reqwest") {
                use kithara_stream::backends::{reqwest::ReqwestClient, tokio::TokioRuntime};
                // The default multi-thread runtime: one worker per core.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let ours = ReqwestClient::new().unwrap();
                let raw = ours.client().clone();
                out.push(Backend {
                    name: "reqwest",
                    spawn: Arc::new(TokioRuntime::from(rt.handle().clone())),
                    client: Arc::new(ours),
                    kind: Kind::Reqwest { rt, raw },
                });
            }
            #[cfg(feature = "surf")]
            if wanted("surf") {
                use kithara_stream::backends::{async_std::AsyncStdRuntime, surf::SurfClient};
                let ours = SurfClient::new().unwrap();
                let raw = ours.client().clone();
                out.push(Backend {
                    name: "surf",
                    spawn: Arc::new(AsyncStdRuntime),
                    client: Arc::new(ours),
                    kind: Kind::Surf { raw },
                });
            }
            out
        }

        fn block_on<F: Future>(&self, fut: F) -> F::Output {
            match &self.kind {
                #[cfg(feature = "reqwest")]
                Kind::Reqwest { rt, .. } => rt.block_on(fut),
                #[cfg(feature = "surf")]
                Kind::Surf { .. } => async_std::task::block_on(fut),
            }
        }

        /// Spawns `fut` on the backend's executor; the result comes back
        /// through the returned future.
        fn spawn_join<T: Send + 'static>(
            &self,
            fut: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<'static, T> {
            let (tx, rx) = futures::channel::oneshot::channel();
            self.spawn.spawn(Box::pin(async move {
                let _ = tx.send(fut.await);
            }));
            Box::pin(async move { rx.await.expect("task finished") })
        }

        fn downloader(&self, max_concurrent: usize) -> Downloader {
            Downloader::new(
                DownloaderConfig::new(self.spawn.clone(), self.client.clone())
                    .max_concurrent(max_concurrent),
            )
        }

        /// The raw client drains `url` into nothing: (time to first chunk, bytes).
        fn raw_drain(&self, url: Url) -> BoxFuture<'static, (Duration, u64)> {
            match &self.kind {
                #[cfg(feature = "reqwest")]
                Kind::Reqwest { raw, .. } => {
                    let client = raw.clone();
                    Box::pin(async move {
                        let t0 = Instant::now();
                        let mut resp = client.get(url).send().await.unwrap();
                        assert!(resp.status().is_success());
                        let mut first = None;
                        let mut n = 0u64;
                        while let Some(chunk) = resp.chunk().await.unwrap() {
                            first.get_or_insert_with(|| t0.elapsed());
                            n += chunk.len() as u64;
                        }
                        (first.unwrap_or_default(), n)
                    })
                }
                #[cfg(feature = "surf")]
                Kind::Surf { raw } => {
                    use futures::AsyncBufReadExt;
                    let client = raw.clone();
                    Box::pin(async move {
                        let t0 = Instant::now();
                        let req = surf::Request::new(surf::http::Method::Get, url);
                        let mut resp = client.send(req).await.unwrap();
                        assert!(resp.status().is_success());
                        let mut body = resp.take_body().into_reader();
                        let mut first = None;
                        let mut n = 0u64;
                        loop {
                            let len = body.fill_buf().await.unwrap().len();
                            if len == 0 {
                                break;
                            }
                            first.get_or_insert_with(|| t0.elapsed());
                            body.consume_unpin(len);
                            n += len as u64;
                        }
                        (first.unwrap_or_default(), n)
                    })
                }
            }
        }
    }

    // ---------------------------------------------------------------
    // "Ours": the one seam to switch to `Stream::<HttpFile>`
    // ---------------------------------------------------------------

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum StorageKind {
        Memory,
        File,
        /// `HttpFileStorage::Bounded` with the default 16 MiB budget.
        Bounded,
    }

    impl StorageKind {
        fn label(self) -> &'static str {
            match self {
                Self::Memory => "memory",
                Self::File => "file",
                Self::Bounded => "bounded",
            }
        }
    }

    /// A peer for the imperative path only (`execute`), streaming nothing.
    struct NoStreaming;

    impl Peer for NoStreaming {
        fn poll_next(&self, _cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
            Poll::Ready(None)
        }

        fn priority(&self) -> RequestPriority {
            RequestPriority::High
        }
    }

    /// What `ours_stream` returns: a `Stream<HttpFile>` readable with `Read`
    /// (reader thread) or `AsyncRead` (tasks), plus the temp dir that holds
    /// its cache file.
    pub(crate) struct Ours {
        stream: Stream<HttpFile>,
        _dir: Option<tempfile::TempDir>,
    }

    impl Read for Ours {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.stream.read(buf)
        }
    }

    impl AsyncRead for Ours {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.stream).poll_read(cx, buf)
        }
    }

    /// **The only place that builds the "ours" reader:** what a user does,
    /// `Stream::<HttpFile>::new(config)` on the shared downloader, with
    /// memory storage or a cache file in a fresh temp dir. The clock of the
    /// caller starts before this, so time to first byte includes opening.
    pub(crate) fn ours_stream(
        backend: &Backend,
        dl: &Downloader,
        url: Url,
        storage: StorageKind,
    ) -> Ours {
        let config = HttpFileConfig::from_url(url).downloader(dl.clone());
        let (config, dir) = match storage {
            StorageKind::Memory => (config.memory(), None),
            StorageKind::Bounded => (
                config.bounded_memory(kithara_stream::file::DEFAULT_BOUNDED_BUDGET),
                None,
            ),
            StorageKind::File => {
                let dir = tempfile::tempdir().unwrap();
                (config.cache_file(dir.path().join("body")), Some(dir))
            }
        };
        let stream = backend.block_on(Stream::<HttpFile>::new(config)).unwrap();
        Ours { stream, _dir: dir }
    }

    // ---------------------------------------------------------------
    // Process stats
    // ---------------------------------------------------------------

    fn status_kb(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Samples RSS and the thread count every 2 ms; resets VmHWM at start
    /// (`/proc/self/clear_refs`, Linux) so each phase gets its own peak.
    struct Sampler {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<(u64, u64)>>,
        hwm_reset: bool,
    }

    /// Peak RSS (MiB) and peak threads (excluding the sampler itself).
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Peak {
        pub(crate) rss_mib: f64,
        pub(crate) threads: u64,
        pub(crate) base_rss_mib: f64,
    }

    impl Peak {
        fn max(self, o: Peak) -> Peak {
            Peak {
                rss_mib: self.rss_mib.max(o.rss_mib),
                threads: self.threads.max(o.threads),
                base_rss_mib: self.base_rss_mib.max(o.base_rss_mib),
            }
        }
    }

    impl Sampler {
        fn start() -> Self {
            let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            let thread = std::thread::spawn(move || {
                let (mut rss, mut threads) = (0, 0);
                while !s2.load(Ordering::Relaxed) {
                    rss = rss.max(status_kb("VmRSS:").unwrap_or(0));
                    threads = threads.max(status_kb("Threads:").unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(2));
                }
                (rss, threads)
            });
            Self {
                stop,
                thread: Some(thread),
                hwm_reset,
            }
        }

        fn finish(mut self, base_rss_kb: u64) -> Peak {
            self.stop.store(true, Ordering::Relaxed);
            let (rss, threads) = self.thread.take().unwrap().join().unwrap();
            let hwm = if self.hwm_reset {
                status_kb("VmHWM:").unwrap_or(0)
            } else {
                0
            };
            Peak {
                rss_mib: rss.max(hwm) as f64 / 1024.0,
                threads: threads.saturating_sub(1),
                base_rss_mib: base_rss_kb as f64 / 1024.0,
            }
        }
    }

    // ---------------------------------------------------------------
    // Cases
    // ---------------------------------------------------------------

    #[derive(Debug, Default, Clone)]
    pub(crate) struct Results {
        pub(crate) seq: Seq,
        pub(crate) slow: Seq,
        pub(crate) conc_raw_mbps: Vec<f64>,
        pub(crate) conc_ours_mbps: Vec<f64>,
        pub(crate) conc_raw_peak: Peak,
        pub(crate) conc_ours_peak: Peak,
        pub(crate) huge_mbps: f64,
        /// Seek + 64 KiB read latencies (ms), and the raw client's request
        /// latency (median time to first chunk, unthrottled), in ms.
        pub(crate) seek_ms: Vec<f64>,
        pub(crate) seek_request_ms: f64,
        /// The subset of `seek_ms` whose bytes were not downloaded yet.
        pub(crate) seek_miss_ms: Vec<f64>,
        pub(crate) huge_peak: Peak,
        pub(crate) huge_bounded_mbps: f64,
        pub(crate) huge_bounded_peak: Peak,
    }

    /// CPU time (user + system) of this process's live threads, in
    /// seconds, from `/proc/self/task/*/schedstat` (nanoseconds).
    fn cpu_secs() -> f64 {
        tasks_cpu_secs("/proc/self/task")
    }

    /// CPU time of the server child's live threads, in seconds (0 when
    /// unknown), from `/proc/<pid>/task/*/schedstat`.
    pub(crate) fn server_cpu_secs() -> f64 {
        let pid = super::SERVER_PID.load(std::sync::atomic::Ordering::Relaxed);
        tasks_cpu_secs(&format!("/proc/{pid}/task"))
    }

    /// Sum of the first `schedstat` field (ns on CPU) of every thread under
    /// a `/proc/<pid>/task` directory, in seconds; 0 if it cannot be read.
    fn tasks_cpu_secs(dir: &str) -> f64 {
        let Ok(dir) = std::fs::read_dir(dir) else {
            return 0.0;
        };
        dir.flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>() as f64
            / 1e9
    }

    /// CPU time of the calling thread (the reader), in seconds.
    fn thread_cpu_secs() -> f64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0) as f64
            / 1e9
    }

    /// Pause before each timed case.
    const SETTLE: Duration = Duration::from_millis(30);

    /// One sequential case: MB/s, ms to the first chunk (64 KiB for ours),
    /// and client CPU seconds per GB moved.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Series {
        pub(crate) mbps: Vec<f64>,
        pub(crate) first_ms: Vec<f64>,
        pub(crate) cpu_per_gb: Vec<f64>,
        /// The calling (reader) thread's share.
        pub(crate) reader_cpu_per_gb: Vec<f64>,
        /// The server child's CPU per GB over the same interval.
        pub(crate) server_cpu_per_gb: Vec<f64>,
    }

    impl Series {
        fn push(&mut self, bytes: u64, f: impl FnOnce() -> (f64, f64)) {
            // Let the previous case's background cleanup (the fetch task
            // dropping its storage handle, a temp file's unlink) finish first.
            std::thread::sleep(SETTLE);
            let (c0, t0, s0) = (cpu_secs(), thread_cpu_secs(), server_cpu_secs());
            let (m, first) = f();
            let gb = bytes as f64 / 1e9;
            self.server_cpu_per_gb.push((server_cpu_secs() - s0) / gb);
            self.mbps.push(m);
            self.first_ms.push(first);
            self.cpu_per_gb.push((cpu_secs() - c0) / gb);
            self.reader_cpu_per_gb.push((thread_cpu_secs() - t0) / gb);
        }

        fn last(&self) -> (f64, f64, f64, f64) {
            let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
            (
                last(&self.mbps),
                last(&self.first_ms),
                last(&self.cpu_per_gb),
                last(&self.server_cpu_per_gb),
            )
        }

        fn mbps(&self) -> f64 {
            median(&self.mbps)
        }

        fn first(&self) -> f64 {
            median(&self.first_ms)
        }

        fn cpu(&self) -> f64 {
            median(&self.cpu_per_gb)
        }

        fn reader_cpu(&self) -> f64 {
            median(&self.reader_cpu_per_gb)
        }

        fn server_cpu(&self) -> f64 {
            median(&self.server_cpu_per_gb)
        }
    }

    /// The four sequential cases on one URL.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Seq {
        pub(crate) raw: Series,
        pub(crate) dl: Series,
        pub(crate) mem: Series,
        pub(crate) file: Series,
        /// Bounded memory storage (16 MiB budget).
        pub(crate) bounded: Series,
    }

    fn seq_cases(b: &Backend, dl: &Downloader, url: &Url, len: u64, runs: usize) -> Seq {
        let mut r = Seq::default();
        // `KITHARA_BENCH_SEQ=raw,dl,memory,file,bounded` (default: all) picks cases,
        // e.g. to profile one with `perf`.
        let pick = std::env::var("KITHARA_BENCH_SEQ").ok();
        let on = |name: &str| {
            pick.as_deref()
                .is_none_or(|p| p.split(',').any(|c| c == name))
        };
        // Warm-up (connection pool, allocator, page cache), not counted.
        let _ = raw_once(b, url, len);
        let _ = ours_once(b, dl, url, StorageKind::Memory, len);
        let _ = ours_once(b, dl, url, StorageKind::File, len);
        let _ = ours_once(b, dl, url, StorageKind::Bounded, len);
        for i in 0..runs {
            // Rotate the order so no case always runs first or last.
            for k in 0..5 {
                let case = (i + k) % 5;
                if !on(["raw", "memory", "file", "dl", "bounded"][case]) {
                    continue;
                }
                match case {
                    0 => r.raw.push(len, || raw_once(b, url, len)),
                    1 => r
                        .mem
                        .push(len, || ours_once(b, dl, url, StorageKind::Memory, len)),
                    2 => r
                        .file
                        .push(len, || ours_once(b, dl, url, StorageKind::File, len)),
                    3 => r.dl.push(len, || dl_drain_once(b, dl, url, len)),
                    _ => r
                        .bounded
                        .push(len, || ours_once(b, dl, url, StorageKind::Bounded, len)),
                }
            }
            let p = |s: &Series| {
                let (m, f, c, sc) = s.last();
                format!("{m:.0} MB/s ({f:.2} ms, {c:.2} CPU s/GB, server {sc:.2})")
            };
            eprintln!(
                "  [{}] {} run {}: raw {}, downloader alone {}, memory {}, file {}, bounded {}",
                b.name,
                url.path(),
                i + 1,
                p(&r.raw),
                p(&r.dl),
                p(&r.mem),
                p(&r.file),
                p(&r.bounded),
            );
        }
        r
    }

    fn raw_once(b: &Backend, url: &Url, expect: u64) -> (f64, f64) {
        let t0 = Instant::now();
        let (first, n) = b.block_on(b.spawn_join(b.raw_drain(url.clone())));
        let d = t0.elapsed();
        assert_eq!(n, expect, "raw body length");
        (mbps(n, d), first.as_secs_f64() * 1e3)
    }

    /// Reads the whole body through `Read` into a 64 KiB buffer on this
    /// thread: (MB/s, ms to the first 64 KiB).
    fn ours_once(
        b: &Backend,
        dl: &Downloader,
        url: &Url,
        kind: StorageKind,
        expect: u64,
    ) -> (f64, f64) {
        let mut buf = vec![0u8; READ_BUF];
        let t0 = Instant::now();
        let mut s = ours_stream(b, dl, url.clone(), kind);
        let mut first = None;
        let mut n = 0u64;
        loop {
            let got = s.read(&mut buf).unwrap();
            if got == 0 {
                break;
            }
            n += got as u64;
            if first.is_none() && n >= READ_BUF.min(expect as usize) as u64 {
                first = Some(t0.elapsed());
            }
        }
        let d = t0.elapsed();
        assert_eq!(n, expect, "ours body length ({})", kind.label());
        (mbps(n, d), first.unwrap_or_default().as_secs_f64() * 1e3)
    }

    /// The downloader alone: `PeerHandle::execute` and the body drained into
    /// nothing (no storage, no reader): (MB/s, ms to the first chunk).
    fn dl_drain_once(b: &Backend, dl: &Downloader, url: &Url, expect: u64) -> (f64, f64) {
        use futures::StreamExt;
        let peer = dl.register(Arc::new(NoStreaming));
        let url = url.clone();
        let t0 = Instant::now();
        let (first, n) = b.block_on(b.spawn_join(async move {
            let resp = peer.execute(FetchCmd::get(url)).await.unwrap();
            let mut body = resp.body;
            let mut first = None;
            let mut n = 0u64;
            while let Some(chunk) = body.next().await {
                first.get_or_insert_with(|| t0.elapsed());
                n += chunk.unwrap().len() as u64;
            }
            (first.unwrap_or_default(), n)
        }));
        let d = t0.elapsed();
        assert_eq!(n, expect, "downloader body length");
        (mbps(n, d), first.as_secs_f64() * 1e3)
    }

    fn concurrent_raw(b: &Backend, plan: &Plan, url: &Url) -> (f64, Peak) {
        let base = status_kb("VmRSS:").unwrap_or(0);
        let sampler = Sampler::start();
        let t0 = Instant::now();
        let joins: Vec<_> = (0..plan.conc_n)
            .map(|_| b.spawn_join(b.raw_drain(url.clone())))
            .collect();
        let done = b.block_on(futures::future::join_all(joins));
        let d = t0.elapsed();
        let peak = sampler.finish(base);
        let total: u64 = done.iter().map(|(_, n)| *n).sum();
        assert_eq!(total, plan.conc_len * plan.conc_n as u64);
        (mbps(total, d), peak)
    }

    fn concurrent_ours(b: &Backend, plan: &Plan, url: &Url) -> (f64, Peak) {
        use futures::io::AsyncReadExt;
        let dl = b.downloader(plan.max_concurrent);
        let base = status_kb("VmRSS:").unwrap_or(0);
        let sampler = Sampler::start();
        let t0 = Instant::now();
        let joins: Vec<_> = (0..plan.conc_n)
            .map(|_| {
                let mut s = ours_stream(b, &dl, url.clone(), StorageKind::Memory);
                b.spawn_join(async move {
                    let mut buf = vec![0u8; READ_BUF];
                    let mut n = 0u64;
                    loop {
                        let got = AsyncReadExt::read(&mut s, &mut buf).await.unwrap();
                        if got == 0 {
                            break n;
                        }
                        n += got as u64;
                    }
                })
            })
            .collect();
        let done = b.block_on(futures::future::join_all(joins));
        let d = t0.elapsed();
        let peak = sampler.finish(base);
        let total: u64 = done.iter().sum();
        assert_eq!(total, plan.conc_len * plan.conc_n as u64);
        (mbps(total, d), peak)
    }

    fn huge(b: &Backend, plan: &Plan, url: &Url, kind: StorageKind) -> (f64, Peak) {
        let dl = b.downloader(kithara_stream::dl::DEFAULT_MAX_CONCURRENT);
        let dl = &dl;
        let base = status_kb("VmRSS:").unwrap_or(0);
        let sampler = Sampler::start();
        let (rate, _) = ours_once(b, dl, url, kind, plan.huge_len);
        (rate, sampler.finish(base))
    }

    fn run_backend(b: &Backend, plan: &Plan, srv: &ServerProcess) -> Results {
        let mut r = Results::default();
        let dl = b.downloader(kithara_stream::dl::DEFAULT_MAX_CONCURRENT);
        r.seq = seq_cases(b, &dl, &srv.url("/seq"), plan.seq_len, plan.runs);
        if plan.seq_only {
            return r;
        }
        r.slow = seq_cases(b, &dl, &srv.url("/slow"), plan.slow_len, plan.slow_runs);
        (r.seek_ms, r.seek_miss_ms) = seek_case(b, &dl, &srv.url("/seek"), plan);
        r.seek_request_ms = r.seq.raw.first();
        // Fresh processes, so each peak (RSS, threads) is that case's own.
        for i in 0..plan.conc_runs {
            let raw = run_case("conc-raw", b.name, srv.port);
            let ours = run_case("conc-ours", b.name, srv.port);
            eprintln!(
                "  [{}] concurrent run {}: raw {:.0} MB/s ({} threads, {:.1} MiB), ours {:.0} MB/s ({} threads, {:.1} MiB)",
                b.name,
                i + 1,
                raw.0,
                raw.1.threads,
                raw.1.rss_mib,
                ours.0,
                ours.1.threads,
                ours.1.rss_mib
            );
            r.conc_raw_mbps.push(raw.0);
            r.conc_ours_mbps.push(ours.0);
            r.conc_raw_peak = r.conc_raw_peak.max(raw.1);
            r.conc_ours_peak = r.conc_ours_peak.max(ours.1);
        }
        let (rate, peak) = run_case("huge", b.name, srv.port);
        eprintln!(
            "  [{}] {} MiB with file storage: {rate:.0} MB/s, peak RSS {:.1} MiB (at start {:.1} MiB), {} threads",
            b.name,
            plan.huge_len / MIB,
            peak.rss_mib,
            peak.base_rss_mib,
            peak.threads
        );
        r.huge_mbps = rate;
        r.huge_peak = peak;
        let (rate, peak) = run_case("huge-bounded", b.name, srv.port);
        eprintln!(
            "  [{}] {} MiB with bounded storage: {rate:.0} MB/s, peak RSS {:.1} MiB (at start {:.1} MiB)",
            b.name,
            plan.huge_len / MIB,
            peak.rss_mib,
            peak.base_rss_mib,
        );
        r.huge_bounded_mbps = rate;
        r.huge_bounded_peak = peak;
        r
    }

    /// Random seeks (fixed seed) on one `Stream::<HttpFile>` over the
    /// throttled `/seek` body, each followed by a 64 KiB `read_exact`
    /// checked against the body: the latencies (ms) of all seeks, and of the
    /// seeks whose 64 KiB were not yet downloaded (those that must re-aim).
    fn seek_case(b: &Backend, dl: &Downloader, url: &Url, plan: &Plan) -> (Vec<f64>, Vec<f64>) {
        use std::io::{Seek, SeekFrom};
        let body = super::server::pseudo_random(plan.seek_len as usize, super::SEEK_SEED);
        let mut s = ours_stream(b, dl, url.clone(), StorageKind::Memory);
        let mut buf = vec![0u8; READ_BUF];
        let span = plan.seek_len.saturating_sub(READ_BUF as u64).max(1);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(plan.seeks);
        let mut misses = Vec::new();
        for _ in 0..plan.seeks {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = x % span;
            let hit = s
                .stream
                .source()
                .storage()
                .contains_range(pos..pos + READ_BUF as u64);
            let t = Instant::now();
            s.stream.seek(SeekFrom::Start(pos)).unwrap();
            s.stream.read_exact(&mut buf).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            out.push(ms);
            if !hit {
                misses.push(ms);
            }
            assert_eq!(
                &buf[..],
                &body[pos as usize..pos as usize + READ_BUF],
                "seek to {pos}"
            );
        }
        (out, misses)
    }

    /// `f` of each sequential case: "raw / downloader / memory / file /
    /// bounded".
    fn per_case(s: &Seq, f: fn(&Series) -> f64) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} / {:.2}",
            f(&s.raw),
            f(&s.dl),
            f(&s.mem),
            f(&s.file),
            f(&s.bounded)
        )
    }

    fn print_table(plan: &Plan, all: &[(&'static str, Results)], wake: Option<super::wake::Wake>) {
        let mib = |n: u64| n as f64 / MIB as f64;
        println!();
        println!(
            "| figure (medians) | {} |",
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | ")
        );
        println!("|---|{}", "---|".repeat(all.len()));
        let row = |label: String, f: &dyn Fn(&Results) -> String| {
            println!(
                "| {label} | {} |",
                all.iter()
                    .map(|(_, r)| f(r))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        };
        let seq_rows = |what: String, pick: fn(&Results) -> &Seq| {
            row(format!("{what}: raw client, drained (MB/s)"), &|r| {
                format!("{:.0}", pick(r).raw.mbps())
            });
            row(
                format!("{what}: downloader alone, execute + drain (MB/s)"),
                &|r| {
                    let s = pick(r);
                    format!("{:.0} ({:.2}×)", s.dl.mbps(), s.dl.mbps() / s.raw.mbps())
                },
            );
            row(
                format!("{what}: ours, memory storage (MB/s, ours/raw; target ≥ 0.90×)"),
                &|r| {
                    let s = pick(r);
                    format!("{:.0} ({:.2}×)", s.mem.mbps(), s.mem.mbps() / s.raw.mbps())
                },
            );
            row(
                format!("{what}: ours, file storage (MB/s, ours/raw; target ≥ 0.80×)"),
                &|r| {
                    let s = pick(r);
                    format!(
                        "{:.0} ({:.2}×)",
                        s.file.mbps(),
                        s.file.mbps() / s.raw.mbps()
                    )
                },
            );
            row(
                format!("{what}: ours, bounded memory 16 MiB (MB/s, ours/raw; target ≥ 0.85×)"),
                &|r| {
                    let s = pick(r);
                    format!(
                        "{:.0} ({:.2}×)",
                        s.bounded.mbps(),
                        s.bounded.mbps() / s.raw.mbps()
                    )
                },
            );
            row(format!("{what}: raw, time to first chunk (ms)"), &|r| {
                format!("{:.2}", pick(r).raw.first())
            });
            row(
                format!("{what}: ours, time to first 64 KiB, memory / file (ms; target ≤ raw + 2)"),
                &|r| {
                    let s = pick(r);
                    format!("{:.2} / {:.2}", s.mem.first(), s.file.first())
                },
            );
            row(
                format!("{what}: client CPU s per GB, raw / downloader / memory / file / bounded"),
                &|r| per_case(pick(r), Series::cpu),
            );
            row(
                format!("{what}: of which the reader thread, memory / file"),
                &|r| {
                    let s = pick(r);
                    format!("{:.2} / {:.2}", s.mem.reader_cpu(), s.file.reader_cpu())
                },
            );
            row(
                format!(
                    "{what}: server child CPU s per GB, raw / downloader / memory / file / bounded"
                ),
                &|r| per_case(pick(r), Series::server_cpu),
            );
        };
        seq_rows(
            format!(
                "{:.0} MiB, unthrottled ({} runs)",
                mib(plan.seq_len),
                plan.runs
            ),
            |r| &r.seq,
        );
        seq_rows(
            format!(
                "{:.0} MiB at {:.0} MB/s ({} runs)",
                mib(plan.slow_len),
                plan.slow_rate as f64 / 1e6,
                plan.slow_runs
            ),
            |r| &r.slow,
        );
        let conc = format!(
            "{} × {:.0} MiB concurrent, one downloader (max_concurrent {}), memory ({} runs)",
            plan.conc_n,
            mib(plan.conc_len),
            plan.max_concurrent,
            plan.conc_runs
        );
        row(format!("{conc}: raw / ours (MB/s)"), &|r| {
            let (raw, ours) = (median(&r.conc_raw_mbps), median(&r.conc_ours_mbps));
            format!("{raw:.0} / {ours:.0} ({:.2}×)", ours / raw)
        });
        row(format!("{conc}: peak threads, raw / ours"), &|r| {
            format!("{} / {}", r.conc_raw_peak.threads, r.conc_ours_peak.threads)
        });
        row(format!("{conc}: peak RSS MiB, raw / ours"), &|r| {
            format!(
                "{:.0} / {:.0}",
                r.conc_raw_peak.rss_mib, r.conc_ours_peak.rss_mib
            )
        });
        let huge = format!("{:.0} MiB, file storage (1 run)", mib(plan.huge_len));
        row(format!("{huge}: MB/s"), &|r| format!("{:.0}", r.huge_mbps));
        row(format!("{huge}: peak RSS MiB (target < 64)"), &|r| {
            format!(
                "{:.1} (at start {:.1})",
                r.huge_peak.rss_mib, r.huge_peak.base_rss_mib
            )
        });
        let huge = format!(
            "{:.0} MiB, bounded memory storage, 16 MiB budget (1 run)",
            mib(plan.huge_len)
        );
        row(format!("{huge}: MB/s"), &|r| {
            format!("{:.0}", r.huge_bounded_mbps)
        });
        row(format!("{huge}: peak RSS MiB"), &|r| {
            format!(
                "{:.1} (at start {:.1})",
                r.huge_bounded_peak.rss_mib, r.huge_bounded_peak.base_rss_mib
            )
        });
        let transfer_ms = READ_BUF as f64 / plan.seek_rate.max(1) as f64 * 1e3;
        let seeks = format!(
            "{} random seeks + 64 KiB read, {:.0} MiB at {:.0} MB/s, memory",
            plan.seeks,
            mib(plan.seek_len),
            plan.seek_rate as f64 / 1e6
        );
        let stats = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            let p95 = v
                .get(v.len() * 95 / 100)
                .or(v.last())
                .copied()
                .unwrap_or(f64::NAN);
            (median(&v), p95, v.len())
        };
        row(format!("{seeks}: all seeks, median / p95 (ms)"), &|r| {
            let (m, p, _) = stats(&r.seek_ms);
            format!("{m:.2} / {p:.2}")
        });
        row(
            format!(
                "{seeks}: seeks to bytes not yet downloaded, median / p95 (ms; target: median ≤ 2 × request latency + transfer)"
            ),
            &|r| {
                let (m, p, n) = stats(&r.seek_miss_ms);
                format!(
                    "{m:.2} / {p:.2} over {n} (target {:.2} = 2 × {:.2} + {:.2})",
                    2.0 * r.seek_request_ms + transfer_ms,
                    r.seek_request_ms,
                    transfer_ms
                )
            },
        );
        if let Some(w) = wake {
            row(
                format!(
                    "`wait_range` notify-to-wake latency, no network ({} wakes; same for every backend): median / p99 / max (µs)",
                    w.wakes
                ),
                &|_| format!("{:.1} / {:.1} / {:.1}", w.median_us, w.p99_us, w.max_us),
            );
        }
    }

    /// Runs one case in a child process (this binary, role `case`) and
    /// parses its `RESULT mbps threads rss_mib base_rss_mib` line.
    fn run_case(case: &str, backend: &str, port: u16) -> (f64, Peak) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(super::ROLE_VAR, "case")
            .env("KITHARA_BENCH_CASE", case)
            .env("KITHARA_BENCH_BACKENDS", backend)
            .env("KITHARA_BENCH_PORT", port.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "case {case} on {backend} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .expect("RESULT line");
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (
            v[0],
            Peak {
                threads: v[1] as u64,
                rss_mib: v[2],
                base_rss_mib: v[3],
            },
        )
    }

    /// The child side of [`run_case`].
    pub(crate) fn case_main(plan: &Plan) {
        let case = std::env::var("KITHARA_BENCH_CASE").unwrap();
        let port: u16 = std::env::var("KITHARA_BENCH_PORT")
            .unwrap()
            .parse()
            .unwrap();
        let backends = Backend::all(plan.backends.as_deref());
        let b = backends.first().expect("one backend");
        let (rate, peak) = match case.as_str() {
            "conc-raw" => concurrent_raw(b, plan, &super::server_url(port, "/conc")),
            "conc-ours" => concurrent_ours(b, plan, &super::server_url(port, "/conc")),
            "huge" => huge(
                b,
                plan,
                &super::server_url(port, "/huge"),
                StorageKind::File,
            ),
            "huge-bounded" => huge(
                b,
                plan,
                &super::server_url(port, "/huge"),
                StorageKind::Bounded,
            ),
            other => panic!("unknown case {other}"),
        };
        println!(
            "RESULT {rate} {} {} {}",
            peak.threads, peak.rss_mib, peak.base_rss_mib
        );
    }

    pub(crate) fn run(plan: &Plan) {
        eprintln!("plan: {plan:?}");
        if let Ok(mib) = std::env::var("KITHARA_BENCH_POOL_MIB") {
            let mib: usize = mib.parse().expect("KITHARA_BENCH_POOL_MIB: a number");
            kithara_stream::storage::PagePool::set_limit(mib << 20);
        }
        let srv = ServerProcess::start();
        let backends = Backend::all(plan.backends.as_deref());
        let mut all = Vec::new();
        for b in &backends {
            eprintln!("backend {}:", b.name);
            all.push((b.name, run_backend(b, plan, &srv)));
        }
        if !plan.seq_only {
            // The sync side alone, after the network cases (the server child
            // idles meanwhile).
            let wake = super::wake::wake_latency(2_000);
            print_table(plan, &all, Some(wake));
        }
    }
}

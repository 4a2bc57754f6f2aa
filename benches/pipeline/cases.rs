//! The measured cases, each on one backend pair: the sequential cases
//! (raw client, downloader alone, ours with each storage), random seeks,
//! and the cases that run alone in a child process (concurrent downloads,
//! a large body) so their peaks are their own.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use kithara_stream::dl::{Downloader, FetchCmd};
use url::Url;

use crate::backend::{Backend, drain_timed};
use crate::ours::{NoStreaming, StorageKind, ours_stream};
use crate::plan::{Plan, READ_BUF, SEEK_SEED};
use crate::proc::{Peak, Sampler, status_kb};
use crate::results::{Seq, Series, mbps};

/// The sequential cases on `url` (`len` bytes), `runs` times each after
/// one warm-up, in rotating order; one progress line per run on stderr.
pub(crate) fn seq_cases(b: &Backend, dl: &Downloader, url: &Url, len: u64, runs: usize) -> Seq {
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
    let peer = dl.register(Arc::new(NoStreaming));
    let url = url.clone();
    let t0 = Instant::now();
    let (first, n) = b.block_on(b.spawn_join(async move {
        let resp = peer.execute(FetchCmd::get(url)).await.unwrap();
        drain_timed(resp.body, t0).await
    }));
    let d = t0.elapsed();
    assert_eq!(n, expect, "downloader body length");
    (mbps(n, d), first.as_secs_f64() * 1e3)
}

/// Random seeks (fixed seed) on one `Stream::<HttpFile>` over the
/// throttled `/seek` body, each followed by a 64 KiB `read_exact`
/// checked against the body: the latencies (ms) of all seeks, and of the
/// seeks whose 64 KiB were not yet downloaded (those that must re-aim).
pub(crate) fn seek_case(
    b: &Backend,
    dl: &Downloader,
    url: &Url,
    plan: &Plan,
) -> (Vec<f64>, Vec<f64>) {
    use std::io::{Seek, SeekFrom};
    let body = crate::server::pseudo_random(plan.seek_len as usize, SEEK_SEED);
    let mut s = ours_stream(b, dl, url.clone(), StorageKind::Memory);
    let mut buf = vec![0u8; READ_BUF];
    let span = plan.seek_len.saturating_sub(READ_BUF as u64);
    let mut out = Vec::with_capacity(plan.seeks);
    let mut misses = Vec::new();
    for pos in crate::seeks::seek_positions(span, plan.seeks) {
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

/// `plan.conc_n` raw drains of `url` at once: total MB/s and the peaks.
pub(crate) fn concurrent_raw(b: &Backend, plan: &Plan, url: &Url) -> (f64, Peak) {
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

/// `plan.conc_n` streams of `url` on one downloader, each read by an
/// `AsyncRead` task on the executor: total MB/s and the peaks.
pub(crate) fn concurrent_ours(b: &Backend, plan: &Plan, url: &Url) -> (f64, Peak) {
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

/// One `plan.huge_len` body read to its end with `kind` storage: MB/s and
/// the peaks.
pub(crate) fn huge(b: &Backend, plan: &Plan, url: &Url, kind: StorageKind) -> (f64, Peak) {
    let dl = b.downloader(kithara_stream::dl::DEFAULT_MAX_CONCURRENT);
    let base = status_kb("VmRSS:").unwrap_or(0);
    let sampler = Sampler::start();
    let (rate, _) = ours_once(b, &dl, url, kind, plan.huge_len);
    (rate, sampler.finish(base))
}

//! Bounded memory storage against unbounded memory storage, without a
//! network: a writer thread fills a fresh resource in chunks, waiting for
//! room the way `HttpFile`'s writer does (`is_writable`, else `writable`),
//! while the main thread `Read`s it through a `Stream` in 64 KiB reads.
//!
//! Each run takes a fresh resource, as each track of a player does, so the
//! cost of getting pages (fresh from the kernel, or recycled) is counted.
//! Prints GB/s and CPU s per GB of the writer and of the reader (each
//! thread's own `/proc/thread-self/schedstat`, which the kernel updates at
//! ticks and switches: coarse for runs of a few ms, read GB/s and page
//! faults first), medians over the runs, and how often the writer waited
//! for room.
//!
//! `cargo bench --bench bounded`; `KITHARA_BENCH_RUNS` (default 15) runs of
//! each case, interleaved.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::thread;
use std::time::Instant;

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::StorageResource;
use kithara_stream::{StorageSource, Stream};

/// The default budget and look-behind of `HttpFileConfig::bounded_memory`.
const BUDGET: u64 = 16 << 20;
const LOOK_BEHIND: u64 = 256 << 10;

/// CPU time of the calling thread in seconds (0 where `/proc` is missing).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// Minor page faults of this process so far (0 where `/proc` is missing).
fn minor_faults() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .nth(7)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

struct Run {
    faults: u64,
    gbps: f64,
    writer_cpu: f64,
    reader_cpu: f64,
    waits: u64,
}

fn run(bounded: bool, total: usize, chunk: usize) -> Run {
    let res = if bounded {
        StorageResource::bounded(BUDGET, LOOK_BEHIND, CancelToken::new())
    } else {
        StorageResource::memory(CancelToken::new())
    };
    let w = res.clone();
    let body: Vec<u8> = (0..chunk).map(|i| (i * 7 + 3) as u8).collect();
    let faults0 = minor_faults();
    let start = Instant::now();
    let writer = thread::spawn(move || {
        let cpu0 = thread_cpu();
        let mut waits = 0;
        let mut off = 0usize;
        while off < total {
            let n = chunk.min(total - off);
            if !w.is_writable(off as u64) {
                waits += 1;
                futures::executor::block_on(w.writable(off as u64));
            }
            w.write_at(off as u64, &body[..n]).unwrap();
            off += n;
        }
        w.commit(None).unwrap();
        (thread_cpu() - cpu0, waits)
    });
    let cpu0 = thread_cpu();
    let mut s = Stream::<StorageSource>::from_source(StorageSource::new(res));
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    let wall = start.elapsed().as_secs_f64();
    let reader_cpu = thread_cpu() - cpu0;
    drop(s);
    let (writer_cpu, waits) = writer.join().unwrap();
    assert_eq!(got, total);
    let gb = total as f64 / 1e9;
    Run {
        faults: minor_faults() - faults0,
        gbps: gb / wall,
        writer_cpu: writer_cpu / gb,
        reader_cpu: reader_cpu / gb,
        waits,
    }
}

/// The storage's own cost, no threads: one thread writes 16 KiB chunks
/// and reads each 64 KiB back as it completes (a bounded resource evicts
/// a page for every page written once its budget is full). GB/s through
/// the resource, best of 5.
fn lockstep(bounded: bool, total: usize) -> f64 {
    let chunk: Vec<u8> = (0..16 << 10).map(|i: usize| (i * 7 + 3) as u8).collect();
    let mut buf = vec![0u8; 64 << 10];
    let mut best = 0f64;
    for _ in 0..5 {
        let res = if bounded {
            StorageResource::bounded(BUDGET, LOOK_BEHIND, CancelToken::new())
        } else {
            StorageResource::memory(CancelToken::new())
        };
        let start = Instant::now();
        let mut off = 0usize;
        while off < total {
            for _ in 0..4 {
                res.write_at(off as u64, &chunk).unwrap();
                off += chunk.len();
            }
            let at = (off - buf.len()) as u64;
            assert_eq!(res.read_at(at, &mut buf).unwrap(), buf.len());
        }
        best = best.max(total as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("KITHARA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    for bounded in [false, true] {
        println!(
            "one thread, 16 KiB writes, 64 KiB reads, 256 MiB, {}: {:.2} GB/s",
            if bounded { "bounded 16 MiB" } else { "memory" },
            lockstep(bounded, 256 << 20)
        );
    }
    for (total, chunk) in [
        (26 << 20, 16 << 10),
        (26 << 20, 64 << 10),
        (64 << 20, 16 << 10),
    ] {
        let mut cases: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        // One warm-up of each, then interleaved runs.
        for i in 0..=runs {
            for (k, bounded) in [false, true].into_iter().enumerate() {
                let r = run(bounded, total, chunk);
                if i > 0 {
                    cases[k].push(r);
                }
            }
        }
        for (k, name) in ["memory", "bounded 16 MiB"].iter().enumerate() {
            let c = &cases[k];
            println!(
                "{} MiB, {} KiB writes, {name}: {:.2} GB/s, writer {:.3} CPU s/GB, reader {:.3} CPU s/GB, writer waits {:.0}, page faults {:.0}",
                total >> 20,
                chunk >> 10,
                median(c.iter().map(|r| r.gbps).collect()),
                median(c.iter().map(|r| r.writer_cpu).collect()),
                median(c.iter().map(|r| r.reader_cpu).collect()),
                median(c.iter().map(|r| r.waits as f64).collect()),
                median(c.iter().map(|r| r.faults as f64).collect()),
            );
        }
    }
}

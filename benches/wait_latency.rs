//! Notify-to-wake latency of `StorageResource::wait_range` and sequential
//! `Read` throughput of a `Stream` over memory storage.
//!
//! A plain `main` (no harness): `cargo bench --bench wait_latency`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::thread;
use std::time::Instant;

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::StorageResource;
use kithara_stream::{StorageSource, Stream};

#[path = "common/wake.rs"]
mod wake;

/// A writer thread fills a memory resource in 64 KiB chunks while one
/// reader `Read`s it sequentially through a `Stream`.
fn read_throughput(total: usize, read_buf: usize) {
    let chunk = vec![0xA5u8; 64 * 1024];
    let res = StorageResource::memory(CancelToken::new());
    let w = res.clone();
    let start = Instant::now();
    let writer = thread::spawn(move || {
        let mut off = 0usize;
        while off < total {
            let n = chunk.len().min(total - off);
            w.write_at(off as u64, &chunk[..n]).unwrap();
            off += n;
        }
        w.commit(None).unwrap();
        start.elapsed()
    });
    let mut s = Stream::<StorageSource>::from_source(StorageSource::new(res));
    let mut buf = vec![0u8; read_buf];
    let got = drain(&mut s, &mut buf);
    let read_time = start.elapsed();
    let write_time = writer.join().unwrap();
    assert_eq!(got, total);
    println!(
        "sequential Read while writing ({} MiB, {} KiB reads): {:.2} GB/s (the concurrent writer finished after {:.1} ms)",
        total >> 20,
        read_buf >> 10,
        got as f64 / read_time.as_secs_f64() / 1e9,
        write_time.as_secs_f64() * 1e3,
    );
}

/// Reads `s` to its end through `buf`; the bytes read.
fn drain(s: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut got = 0;
    loop {
        let n = s.read(buf).unwrap();
        if n == 0 {
            return got;
        }
        got += n;
    }
}

/// Sequential `Read` of a resource that is already complete.
fn read_complete(total: usize, read_buf: usize) {
    let mut buf = vec![0u8; read_buf];
    let body = vec![0x5Au8; total];
    let res = StorageResource::from_bytes(&body, CancelToken::new());
    let mut s = Stream::<StorageSource>::from_source(StorageSource::new(res));
    let start = Instant::now();
    let got = drain(&mut s, &mut buf);
    println!(
        "sequential Read, complete resource ({} MiB, {} KiB reads): {:.2} GB/s",
        total >> 20,
        read_buf >> 10,
        got as f64 / start.elapsed().as_secs_f64() / 1e9,
    );
}

/// The writer alone: how fast memory storage absorbs 64 KiB writes.
fn write_only(total: usize) {
    let chunk = vec![0xA5u8; 64 * 1024];
    let res = StorageResource::memory(CancelToken::new());
    let start = Instant::now();
    let mut off = 0usize;
    while off < total {
        let n = chunk.len().min(total - off);
        res.write_at(off as u64, &chunk[..n]).unwrap();
        off += n;
    }
    println!(
        "write_at alone ({} MiB, 64 KiB writes): {:.2} GB/s",
        total >> 20,
        total as f64 / start.elapsed().as_secs_f64() / 1e9
    );
}

fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    let w = wake::wake_latency(5_000);
    println!(
        "wait_range wake latency ({} wakes): median {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        w.wakes, w.median_us, w.p99_us, w.max_us
    );
    // The first runs pay the kernel's first-touch page faults for fresh
    // memory; later runs show the steady state of a long-running process
    // whose allocator reuses freed pages.
    for _ in 0..3 {
        write_only(256 << 20);
    }
    for _ in 0..3 {
        read_throughput(256 << 20, 64 * 1024);
    }
    for _ in 0..2 {
        read_throughput(256 << 20, 1024 * 1024);
    }
    read_complete(256 << 20, 64 * 1024);
}

//! Notify-to-wake latency of `StorageResource::wait_range`, shared by the
//! `wait_latency` and `pipeline` benches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::StorageResource;

/// Latencies from a write to the blocked waiter's wake-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wake {
    pub(crate) wakes: usize,
    pub(crate) median_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// The writer stamps the time, writes one byte; the reader, already blocked
/// in `wait_range` for that byte, stamps the time it woke.
pub(crate) fn wake_latency(iterations: usize) -> Wake {
    let res = StorageResource::memory(CancelToken::new());
    let base = Instant::now();
    let written: Arc<Vec<AtomicU64>> =
        Arc::new((0..iterations).map(|_| AtomicU64::new(0)).collect());
    let woke: Arc<Vec<AtomicU64>> = Arc::new((0..iterations).map(|_| AtomicU64::new(0)).collect());
    let reader = {
        let res = res.clone();
        let woke = woke.clone();
        thread::spawn(move || {
            for i in 0..iterations {
                let i64_ = i as u64;
                res.wait_range(i64_..i64_ + 1, None).unwrap();
                woke[i].store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
            }
        })
    };
    for i in 0..iterations {
        // Give the reader time to block again.
        thread::sleep(Duration::from_micros(300));
        written[i].store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
        res.write_at(i as u64, &[i as u8]).unwrap();
    }
    reader.join().unwrap();
    let mut lat: Vec<u64> = (0..iterations)
        .map(|i| {
            woke[i]
                .load(Ordering::SeqCst)
                .saturating_sub(written[i].load(Ordering::SeqCst))
        })
        .collect();
    lat.sort_unstable();
    Wake {
        wakes: iterations,
        median_us: percentile(&lat, 0.5) as f64 / 1e3,
        p99_us: percentile(&lat, 0.99) as f64 / 1e3,
        max_us: *lat.last().unwrap() as f64 / 1e3,
    }
}

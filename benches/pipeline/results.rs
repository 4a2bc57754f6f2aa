//! What the cases record: per-run figures of each sequential case, the
//! concurrent and large-body peaks, the seek latencies; and their medians.

use std::time::Duration;

use crate::proc::{Peak, cpu_secs, server_cpu_secs, thread_cpu_secs};

/// Pause before each timed case.
const SETTLE: Duration = Duration::from_millis(30);

pub(crate) fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

pub(crate) fn median(v: &[f64]) -> f64 {
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

/// Everything measured on one backend pair.
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
    /// Runs `f` (one run of the case, moving `bytes`: its MB/s and ms to
    /// the first chunk) and records it with the CPU it took.
    pub(crate) fn push(&mut self, bytes: u64, f: impl FnOnce() -> (f64, f64)) {
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

    /// The last run: MB/s, first chunk ms, client and server CPU s/GB.
    pub(crate) fn last(&self) -> (f64, f64, f64, f64) {
        let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        (
            last(&self.mbps),
            last(&self.first_ms),
            last(&self.cpu_per_gb),
            last(&self.server_cpu_per_gb),
        )
    }

    pub(crate) fn mbps(&self) -> f64 {
        median(&self.mbps)
    }

    pub(crate) fn first(&self) -> f64 {
        median(&self.first_ms)
    }

    pub(crate) fn cpu(&self) -> f64 {
        median(&self.cpu_per_gb)
    }

    pub(crate) fn reader_cpu(&self) -> f64 {
        median(&self.reader_cpu_per_gb)
    }

    pub(crate) fn server_cpu(&self) -> f64 {
        median(&self.server_cpu_per_gb)
    }
}

/// The sequential cases on one URL.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seq {
    pub(crate) raw: Series,
    pub(crate) dl: Series,
    pub(crate) mem: Series,
    pub(crate) file: Series,
    /// Bounded memory storage (16 MiB budget).
    pub(crate) bounded: Series,
}

//! What the run is asked to do: the sizes, counts and rates from the
//! environment (`BENCHMARKS.md` lists every knob).

use crate::env::{backend_filter, env_f64, env_usize};

pub(crate) const MIB: u64 = 1024 * 1024;
/// Body chunk size of the loopback server (its default is 16 KiB; larger
/// chunks keep the server's own per-frame cost out of the way).
pub(crate) const SERVER_CHUNK: usize = 64 * 1024;
/// The reader's buffer, as in the issue.
pub(crate) const READ_BUF: usize = 64 * 1024;
/// Seed of the `/seek` body, so the bench can check what it reads.
pub(crate) const SEEK_SEED: u64 = 5;

/// What the run is asked to do (env vars).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) seq_len: u64,
    pub(crate) conc_n: usize,
    pub(crate) conc_len: u64,
    pub(crate) max_concurrent: usize,
    pub(crate) huge_len: u64,
    pub(crate) slow_len: u64,
    pub(crate) slow_rate: u64,
    pub(crate) slow_runs: usize,
    pub(crate) seek_len: u64,
    pub(crate) seek_rate: u64,
    pub(crate) seeks: usize,
    pub(crate) runs: usize,
    pub(crate) conc_runs: usize,
    pub(crate) backends: Option<String>,
    /// `KITHARA_BENCH_ONLY=seq`: only the unthrottled sequential cases
    /// (per-run lines on stderr, no table): for quick profiling.
    pub(crate) seq_only: bool,
}

impl Plan {
    pub(crate) fn from_env() -> Self {
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
            backends: backend_filter(),
            seq_only: std::env::var("KITHARA_BENCH_ONLY").is_ok_and(|v| v == "seq"),
        }
    }
}

//! Environment knobs of the network benches (`BENCHMARKS.md` lists them),
//! shared by `pipeline` and `rangeless`.

/// `name` parsed as a number, or `default` when unset or not a number.
pub(crate) fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `name` parsed as a count, or `default` when unset or not a count.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `KITHARA_BENCH_BACKENDS`: the comma-separated backend names to run
/// (`reqwest`, `surf`, `smol-http`), `None` for every enabled one.
pub(crate) fn backend_filter() -> Option<String> {
    std::env::var("KITHARA_BENCH_BACKENDS").ok()
}

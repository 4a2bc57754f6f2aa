//! The pipeline against the raw HTTP client, side by side, in one run.
//!
//! `cargo bench --bench pipeline --all-features` (see `BENCHMARKS.md`).
//!
//! For every enabled backend pair (tokio + reqwest, async-std + surf,
//! smol + smol-http) it measures, against a loopback server running in a
//! **child process** (so the RSS and thread figures are the client's alone):
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
//! `KITHARA_BENCH_BACKENDS=reqwest,surf,smol-http` filters. All knobs:
//! `BENCHMARKS.md`.
//!
//! A plain `main` (no criterion): the point is ratios measured in the same
//! run, process RSS and thread counts, which criterion does not report.
//!
//! Modules: `plan` (the knobs), `child` (the server and case child
//! processes), `cases` (what is measured) on `ours` (the one place that
//! builds our reader) and `proc` (`/proc` sampling), `results` (what the
//! cases record), `report` (the table); `../common/` holds what the other
//! benches share (`backend`: the pairs and their raw clients).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// Without a backend pair only the server role and a message remain.
#![cfg_attr(
    not(any(feature = "reqwest", feature = "surf", feature = "smol-http")),
    allow(dead_code)
)]

#[allow(dead_code, unused_macros, unreachable_pub, clippy::result_large_err)]
#[path = "../../tests/support/server.rs"]
mod server;

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
#[path = "../common/backend.rs"]
mod backend;
#[path = "../common/env.rs"]
mod env;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
#[path = "../common/seeks.rs"]
mod seeks;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
#[path = "../common/wake.rs"]
mod wake;

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
mod cases;
mod child;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
mod ours;
mod plan;
mod proc;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
mod report;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
mod results;

use plan::Plan;

fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    let role = std::env::var(child::ROLE_VAR).unwrap_or_default();
    let plan = Plan::from_env();
    if role == "server" {
        child::server_main(&plan);
        return;
    }
    #[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
    if role == "case" {
        child::case_main(&plan);
    } else {
        run(&plan);
    }
    #[cfg(not(any(feature = "reqwest", feature = "surf", feature = "smol-http")))]
    println!("no backend pair enabled: build with --features reqwest, surf and/or smol-http");
}

/// The parent: every enabled backend pair in turn against one server
/// child, then the table.
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
fn run(plan: &Plan) {
    eprintln!("plan: {plan:?}");
    if let Ok(mib) = std::env::var("KITHARA_BENCH_POOL_MIB") {
        let mib: usize = mib.parse().expect("KITHARA_BENCH_POOL_MIB: a number");
        kithara_stream::storage::PagePool::set_limit(mib << 20);
    }
    let srv = child::ServerProcess::start();
    let backends = backend::Backend::all(plan.backends.as_deref());
    let mut all = Vec::new();
    for b in &backends {
        eprintln!("backend {}:", b.name);
        all.push((b.name, run_backend(b, plan, &srv)));
    }
    if !plan.seq_only {
        // The sync side alone, after the network cases (the server child
        // idles meanwhile).
        let wake = wake::wake_latency(2_000);
        report::print_table(plan, &all, Some(wake));
    }
}

/// Every case on one backend pair: the sequential, throttled and seek
/// cases in this process, the concurrent and large-body cases each in a
/// fresh child process (so each peak, RSS and threads, is that case's own).
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
fn run_backend(b: &backend::Backend, plan: &Plan, srv: &child::ServerProcess) -> results::Results {
    use plan::MIB;
    let mut r = results::Results::default();
    let dl = b.downloader(kithara_stream::dl::DEFAULT_MAX_CONCURRENT);
    r.seq = cases::seq_cases(b, &dl, &srv.url("/seq"), plan.seq_len, plan.runs);
    if plan.seq_only {
        return r;
    }
    r.slow = cases::seq_cases(b, &dl, &srv.url("/slow"), plan.slow_len, plan.slow_runs);
    (r.seek_ms, r.seek_miss_ms) = cases::seek_case(b, &dl, &srv.url("/seek"), plan);
    r.seek_request_ms = r.seq.raw.first();
    for i in 0..plan.conc_runs {
        let raw = child::run_case("conc-raw", b.name, srv.port);
        let ours = child::run_case("conc-ours", b.name, srv.port);
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
    let (rate, peak) = child::run_case("huge", b.name, srv.port);
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
    let (rate, peak) = child::run_case("huge-bounded", b.name, srv.port);
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

//! The report: one Markdown table, a column per backend pair, a row per
//! figure (medians over the runs; ratios ours/raw in parentheses).

use crate::plan::{MIB, Plan, READ_BUF};
use crate::results::{Results, Seq, Series, median};
use crate::wake::Wake;

/// Picks one sequential case's series.
type Case = fn(&Seq) -> &Series;

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

pub(crate) fn print_table(plan: &Plan, all: &[(&'static str, Results)], wake: Option<Wake>) {
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
        let vs_raw: [(&str, Case); 4] = [
            ("downloader alone, execute + drain (MB/s)", |s| &s.dl),
            (
                "ours, memory storage (MB/s, ours/raw; target ≥ 0.90×)",
                |s| &s.mem,
            ),
            (
                "ours, file storage (MB/s, ours/raw; target ≥ 0.80×)",
                |s| &s.file,
            ),
            (
                "ours, bounded memory 16 MiB (MB/s, ours/raw; target ≥ 0.85×)",
                |s| &s.bounded,
            ),
        ];
        for (label, case) in vs_raw {
            row(format!("{what}: {label}"), &|r| {
                let s = pick(r);
                let m = case(s).mbps();
                format!("{m:.0} ({:.2}×)", m / s.raw.mbps())
            });
        }
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

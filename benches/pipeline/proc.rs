//! Process figures from `/proc` (Linux; zeros elsewhere): peak RSS and
//! thread count sampled while a case runs, and CPU time of this process,
//! of the calling thread and of the server child.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The server child's pid, for [`server_cpu_secs`]; 0 until it started.
static SERVER_PID: AtomicU32 = AtomicU32::new(0);

/// Records the server child's pid for [`server_cpu_secs`].
pub(crate) fn set_server_pid(pid: u32) {
    SERVER_PID.store(pid, Ordering::Relaxed);
}

/// A `kB` field of `/proc/self/status` (`VmRSS:`, `VmHWM:`, `Threads:`).
pub(crate) fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples RSS and the thread count every 2 ms; resets VmHWM at start
/// (`/proc/self/clear_refs`, Linux) so each phase gets its own peak.
pub(crate) struct Sampler {
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
    pub(crate) fn max(self, o: Peak) -> Peak {
        Peak {
            rss_mib: self.rss_mib.max(o.rss_mib),
            threads: self.threads.max(o.threads),
            base_rss_mib: self.base_rss_mib.max(o.base_rss_mib),
        }
    }
}

impl Sampler {
    pub(crate) fn start() -> Self {
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

    pub(crate) fn finish(mut self, base_rss_kb: u64) -> Peak {
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

/// CPU time (user + system) of this process's live threads, in
/// seconds, from `/proc/self/task/*/schedstat` (nanoseconds).
pub(crate) fn cpu_secs() -> f64 {
    tasks_cpu_secs("/proc/self/task")
}

/// CPU time of the server child's live threads, in seconds (0 when
/// unknown), from `/proc/<pid>/task/*/schedstat`.
pub(crate) fn server_cpu_secs() -> f64 {
    let pid = SERVER_PID.load(Ordering::Relaxed);
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
pub(crate) fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0) as f64
        / 1e9
}

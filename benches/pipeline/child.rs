//! Child processes: this binary re-executed in a role (`KITHARA_BENCH_ROLE`).
//!
//! - `server`: the loopback server, so the parent's RSS, threads and CPU
//!   are the client's alone ([`ServerProcess`] starts it, [`server_main`]
//!   is its body);
//! - `case`: one case alone in a fresh process, so its peaks are its own
//!   ([`run_case`] starts it and reads its `RESULT` line, [`case_main`]
//!   runs the case).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use crate::plan::{Plan, SEEK_SEED, SERVER_CHUNK};

/// Internal: the env var that gives this binary its role.
pub(crate) const ROLE_VAR: &str = "KITHARA_BENCH_ROLE";

/// The `server` role: serve the bodies of `plan` until stdin closes.
pub(crate) fn server_main(plan: &Plan) {
    use crate::server::{Resource, TestServer, pseudo_random};
    let server = TestServer::start();
    let body = |len: u64, seed: u64| {
        Resource::new(pseudo_random(len as usize, seed))
            .content_type("application/octet-stream")
            .chunk_size(SERVER_CHUNK)
    };
    server.add("/seq", body(plan.seq_len, 1));
    server.add("/conc", body(plan.conc_len, 2));
    server.add("/huge", body(plan.huge_len, 3));
    server.add(
        "/slow",
        body(plan.slow_len, 4).throttle(plan.slow_rate.max(1)),
    );
    server.add(
        "/seek",
        body(plan.seek_len, SEEK_SEED).throttle(plan.seek_rate.max(1)),
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.addr().port()).unwrap();
    out.flush().unwrap();
    drop(out);
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
}

/// The server child; killed (stdin closed, then waited) on drop.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) port: u16,
}

impl ServerProcess {
    /// Starts the child and waits for the port it listens on.
    pub(crate) fn start() -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .env(ROLE_VAR, "server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("server port");
        crate::proc::set_server_pid(child.id());
        Self { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> url::Url {
        server_url(self.port, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn server_url(port: u16, path: &str) -> url::Url {
    url::Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap()
}

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
pub(crate) use with_backends::{case_main, run_case};

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
mod with_backends {
    use super::{ROLE_VAR, server_url};
    use crate::backend::Backend;
    use crate::cases::{concurrent_ours, concurrent_raw, huge};
    use crate::ours::StorageKind;
    use crate::plan::Plan;
    use crate::proc::Peak;

    /// Runs one case (`conc-raw`, `conc-ours`, `huge`, `huge-bounded`) in
    /// a child process (this binary, role `case`) against the server on
    /// `port`, and parses its `RESULT mbps threads rss_mib base_rss_mib`
    /// line.
    pub(crate) fn run_case(case: &str, backend: &str, port: u16) -> (f64, Peak) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(ROLE_VAR, "case")
            .env("KITHARA_BENCH_CASE", case)
            .env("KITHARA_BENCH_BACKENDS", backend)
            .env("KITHARA_BENCH_PORT", port.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "case {case} on {backend} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .expect("RESULT line");
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (
            v[0],
            Peak {
                threads: v[1] as u64,
                rss_mib: v[2],
                base_rss_mib: v[3],
            },
        )
    }

    /// The `case` role: the child side of [`run_case`].
    pub(crate) fn case_main(plan: &Plan) {
        let case = std::env::var("KITHARA_BENCH_CASE").unwrap();
        let port: u16 = std::env::var("KITHARA_BENCH_PORT")
            .unwrap()
            .parse()
            .unwrap();
        let backends = Backend::all(plan.backends.as_deref());
        let b = backends.first().expect("one backend");
        let (rate, peak) = match case.as_str() {
            "conc-raw" => concurrent_raw(b, plan, &server_url(port, "/conc")),
            "conc-ours" => concurrent_ours(b, plan, &server_url(port, "/conc")),
            "huge" => huge(b, plan, &server_url(port, "/huge"), StorageKind::File),
            "huge-bounded" => huge(b, plan, &server_url(port, "/huge"), StorageKind::Bounded),
            other => panic!("unknown case {other}"),
        };
        println!(
            "RESULT {rate} {} {} {}",
            peak.threads, peak.rss_mib, peak.base_rss_mib
        );
    }
}

//! Random seeks on a server that ignores `Range`: time and body bytes the
//! server sent, against one raw-client pass of the same body.
//!
//! `cargo bench --bench rangeless --all-features`. Knobs (env):
//! `KITHARA_BENCH_RANGELESS_MIB` (default 16), `KITHARA_BENCH_RANGELESS_MBPS`
//! (server throttle, default 20 MB/s), `KITHARA_BENCH_SEEKS` (default 200),
//! `KITHARA_BENCH_BACKENDS=reqwest,surf,smol-http` (filter).
//!
//! Each seek (fixed seed) is followed by a 4 KiB `read_exact` checked
//! against the body. The server is in-process (its counters give the bytes
//! sent); the server has no validator, so the case is the same on any
//! version of the crate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg_attr(
    not(any(feature = "reqwest", feature = "surf", feature = "smol-http")),
    allow(dead_code)
)]

#[allow(dead_code, unused_macros, unreachable_pub, clippy::result_large_err)]
#[path = "../tests/support/server.rs"]
mod server;

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
#[allow(dead_code)]
#[path = "common/backend.rs"]
mod backend;
#[allow(dead_code)]
#[path = "common/env.rs"]
mod env;
#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
#[path = "common/seeks.rs"]
mod seeks;

#[cfg(not(any(feature = "reqwest", feature = "surf", feature = "smol-http")))]
fn main() {
    println!("rangeless: no backend pair enabled (try --all-features)");
}

#[cfg(any(feature = "reqwest", feature = "surf", feature = "smol-http"))]
fn main() {
    use std::io::{Read, Seek, SeekFrom};
    use std::time::Instant;

    use futures::StreamExt;
    use kithara_stream::dl::{Downloader, DownloaderConfig};
    use kithara_stream::net::HttpRequest;
    use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    use server::{Resource, TestServer, pseudo_random};

    use env::{backend_filter, env_f64};

    let len = (env_f64("KITHARA_BENCH_RANGELESS_MIB", 16.0) * 1_048_576.0) as usize;
    let rate = (env_f64("KITHARA_BENCH_RANGELESS_MBPS", 20.0) * 1e6) as u64;
    let seeks = env_f64("KITHARA_BENCH_SEEKS", 200.0) as usize;

    let body = pseudo_random(len, 11);
    let server = TestServer::start();
    server.add(
        "/n",
        Resource::new(body.clone())
            .content_type("application/octet-stream")
            .chunk_size(64 * 1024)
            .ignore_range()
            .throttle(rate),
    );
    let url = server.url("/n");

    println!(
        "{seeks} random seeks + 4 KiB read, {:.0} MiB at {:.0} MB/s, server ignores Range",
        len as f64 / 1_048_576.0,
        rate as f64 / 1e6
    );
    for b in backend::Backend::all(backend_filter().as_deref()) {
        // One raw pass: the client drains the body once.
        server.reset_stats();
        let t = Instant::now();
        b.block_on(async {
            let mut resp = b.client.send(HttpRequest::get(url.clone())).await.unwrap();
            while let Some(chunk) = resp.body.next().await {
                chunk.unwrap();
            }
        });
        let raw = t.elapsed();

        server.reset_stats();
        let dl = Downloader::new(DownloaderConfig::new(b.spawn.clone(), b.client.clone()));
        let cfg = HttpFileConfig::from_url(url.clone()).downloader(dl);
        let t = Instant::now();
        let mut s = b.block_on(Stream::<HttpFile>::new(cfg)).unwrap();
        let mut buf = vec![0u8; 4096];
        let span = (len - buf.len()) as u64;
        for pos in seeks::seek_positions(span, seeks) {
            s.seek(SeekFrom::Start(pos)).unwrap();
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf[..], &body[pos as usize..pos as usize + buf.len()]);
        }
        let ours = t.elapsed();
        drop(s);
        let sent = server.stats().body_bytes_sent;
        println!(
            "  {:9} raw pass {:>7.2} s | seeks {:>7.2} s ({:.1} passes) | sent {:>7.1} MiB ({:.2} x body)",
            b.name,
            raw.as_secs_f64(),
            ours.as_secs_f64(),
            ours.as_secs_f64() / raw.as_secs_f64(),
            sent as f64 / 1_048_576.0,
            sent as f64 / len as f64
        );
    }
}

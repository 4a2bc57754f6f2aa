//! Random seeks on a server that ignores `Range`: time and body bytes the
//! server sent, against one raw-client pass of the same body.
//!
//! `cargo bench --bench rangeless --all-features`. Knobs (env):
//! `KITHARA_BENCH_RANGELESS_MIB` (default 16), `KITHARA_BENCH_RANGELESS_MBPS`
//! (server throttle, default 20 MB/s), `KITHARA_BENCH_SEEKS` (default 200),
//! `KITHARA_BENCH_BACKENDS=reqwest,surf` (filter).
//!
//! Each seek (fixed seed) is followed by a 4 KiB `read_exact` checked
//! against the body. The server is in-process (its counters give the bytes
//! sent); the server has no validator, so the case is the same on any
//! version of the crate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
#![cfg_attr(not(any(feature = "reqwest", feature = "surf")), allow(dead_code))]

#[allow(dead_code, unused_macros, unreachable_pub, clippy::result_large_err)]
#[path = "../tests/support/server.rs"]
mod server;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(not(any(feature = "reqwest", feature = "surf")))]
fn main() {
    println!("rangeless: no backend pair enabled (try --all-features)");
}

#[cfg(any(feature = "reqwest", feature = "surf"))]
fn main() {
    use std::future::Future;
    use std::io::{Read, Seek, SeekFrom};
    use std::sync::Arc;
    use std::time::Instant;

    use futures::StreamExt;
    use kithara_stream::dl::{Downloader, DownloaderConfig};
    use kithara_stream::net::{HttpClient, HttpRequest};
    use kithara_stream::rt::Spawn;
    use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    use server::{Resource, TestServer, pseudo_random};

    let len = (env_f64("KITHARA_BENCH_RANGELESS_MIB", 16.0) * 1_048_576.0) as usize;
    let rate = (env_f64("KITHARA_BENCH_RANGELESS_MBPS", 20.0) * 1e6) as u64;
    let seeks = env_f64("KITHARA_BENCH_SEEKS", 200.0) as usize;
    let filter = std::env::var("KITHARA_BENCH_BACKENDS").ok();
    let wanted = |n: &str| {
        filter
            .as_deref()
            .is_none_or(|f| f.split(',').any(|x| x.trim() == n))
    };

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

    type BlockOn = Box<dyn Fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>)>;
    type Backend = (&'static str, Arc<dyn Spawn>, Arc<dyn HttpClient>, BlockOn);
    let mut backends: Vec<Backend> = Vec::new();
    #[cfg(feature = "reqwest")]
    if wanted("reqwest") {
        use kithara_stream::backends::{reqwest::ReqwestClient, tokio::TokioRuntime};
        let rt = Arc::new(tokio::runtime::Runtime::new().unwrap());
        let spawn: Arc<dyn Spawn> = Arc::new(TokioRuntime::from(rt.handle().clone()));
        backends.push((
            "reqwest",
            spawn,
            Arc::new(ReqwestClient::new().unwrap()),
            Box::new(move |f| rt.block_on(f)),
        ));
    }
    #[cfg(feature = "surf")]
    if wanted("surf") {
        use kithara_stream::backends::{async_std::AsyncStdRuntime, surf::SurfClient};
        backends.push((
            "surf",
            Arc::new(AsyncStdRuntime),
            Arc::new(SurfClient::new().unwrap()),
            Box::new(async_std::task::block_on),
        ));
    }

    println!(
        "{seeks} random seeks + 4 KiB read, {:.0} MiB at {:.0} MB/s, server ignores Range",
        len as f64 / 1_048_576.0,
        rate as f64 / 1e6
    );
    for (name, spawn, client, block_on) in backends {
        // One raw pass: the client drains the body once.
        server.reset_stats();
        let t = Instant::now();
        let c = client.clone();
        let u = url.clone();
        block_on(Box::pin(async move {
            let mut resp = c.send(HttpRequest::get(u)).await.unwrap();
            while let Some(chunk) = resp.body.next().await {
                chunk.unwrap();
            }
        }));
        let raw = t.elapsed();

        server.reset_stats();
        let dl = Downloader::new(DownloaderConfig::new(spawn, client));
        let cfg = HttpFileConfig::from_url(url.clone()).downloader(dl);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = Instant::now();
        block_on(Box::pin(async move {
            tx.send(Stream::<HttpFile>::new(cfg).await.unwrap())
                .unwrap();
        }));
        let mut s = rx.recv().unwrap();
        let mut buf = vec![0u8; 4096];
        let span = (len - buf.len()) as u64;
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..seeks {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = x % span;
            s.seek(SeekFrom::Start(pos)).unwrap();
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf[..], &body[pos as usize..pos as usize + buf.len()]);
        }
        let ours = t.elapsed();
        drop(s);
        let sent = server.stats().body_bytes_sent;
        println!(
            "  {name:8} raw pass {:>7.2} s | seeks {:>7.2} s ({:.1} passes) | sent {:>7.1} MiB ({:.2} x body)",
            raw.as_secs_f64(),
            ours.as_secs_f64(),
            ours.as_secs_f64() / raw.as_secs_f64(),
            sent as f64 / 1_048_576.0,
            sent as f64 / len as f64
        );
    }
}

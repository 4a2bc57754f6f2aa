//! The main job: serve a generated WAV on 127.0.0.1 and stream it through
//! `Stream::<HttpFile>` on tokio + reqwest — media info, a progress line,
//! seeks checked against the source, and a checksum compared with it.
//!
//! ```text
//! cargo run --example stream                # self-contained, no network
//! cargo run --example stream -- URL         # stream URL instead
//! cargo run --example stream -- URL --out F # and copy it to F
//! ```

mod support;

use std::sync::Arc;
use std::time::Duration;

use kithara_stream::backends::reqwest::ReqwestClient;
use kithara_stream::backends::tokio::TokioRuntime;
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::parse_url;
use kithara_stream::{HttpFile, HttpFileConfig, Stream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut url_arg = None;
    let mut out_path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_path = Some(args.next().ok_or("--out needs a file name")?),
            "-h" | "--help" => {
                println!("usage: stream [URL] [--out FILE]");
                return Ok(());
            }
            _ => url_arg = Some(arg),
        }
    }

    let (url, source) = match url_arg {
        Some(u) => (parse_url(&u)?, None),
        None => {
            let wav = support::generate_wav(5);
            // Throttled so the progress line and the seeks' re-aims show.
            let addr = support::serve(wav.clone(), "audio/wav", 1024 * 1024)?;
            println!(
                "serving a generated {} byte WAV on http://{addr}/tones.wav",
                wav.len()
            );
            (parse_url(&format!("http://{addr}/tones.wav"))?, Some(wav))
        }
    };

    // The runtime runs the downloader; the reading below happens on this
    // (non-executor) thread, because `Read` blocks.
    let rt = tokio::runtime::Runtime::new()?;
    let downloader = {
        let _ctx = rt.enter();
        Downloader::new(DownloaderConfig::new(
            Arc::new(TokioRuntime::from(rt.handle().clone())),
            Arc::new(ReqwestClient::new()?),
        ))
    };
    let config = HttpFileConfig::from_url(url)
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    // Resolves once the headers are in: a 404 or an HTML page is an error here.
    let stream = rt.block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, source.as_deref(), out_path.as_deref())
}

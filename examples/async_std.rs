//! The main job on async-std + surf (a non-tokio embedding): serve a
//! generated WAV on 127.0.0.1 and stream it through `Stream::<HttpFile>`.
//!
//! ```text
//! cargo run --example async_std --no-default-features --features surf
//! cargo run --example async_std --no-default-features --features surf -- URL [--out FILE]
//! ```

mod support;

use std::sync::Arc;
use std::time::Duration;

use kithara_stream::backends::async_std::AsyncStdRuntime;
use kithara_stream::backends::surf::SurfClient;
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
                println!("usage: async_std [URL] [--out FILE]");
                return Ok(());
            }
            _ => url_arg = Some(arg),
        }
    }
    let (url, source) = match url_arg {
        Some(u) => (parse_url(&u)?, None),
        None => {
            let wav = support::generate_wav(5);
            let addr = support::serve(wav.clone(), "audio/wav", 1024 * 1024)?;
            println!(
                "serving a generated {} byte WAV on http://{addr}/tones.wav",
                wav.len()
            );
            (parse_url(&format!("http://{addr}/tones.wav"))?, Some(wav))
        }
    };

    // async-std's global executor runs the downloader; no runtime object.
    let client = SurfClient::new().map_err(|e| e.into_inner())?;
    let downloader = Downloader::new(DownloaderConfig::new(
        Arc::new(AsyncStdRuntime),
        Arc::new(client),
    ));
    let config = HttpFileConfig::from_url(url)
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    let stream = async_std::task::block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, source.as_deref(), out_path.as_deref())
}

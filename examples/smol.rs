//! The main job on smol + the crate's own HTTP client (the tokio-free pair):
//! serve a generated WAV on 127.0.0.1 and stream it through
//! `Stream::<HttpFile>`.
//!
//! ```text
//! cargo run --example smol --no-default-features --features smol-http
//! cargo run --example smol --no-default-features --features smol-http -- URL [--out FILE]
//! ```

mod support;

use std::sync::Arc;
use std::time::Duration;

use kithara_stream::backends::smol::SmolRuntime;
use kithara_stream::backends::smol_http::SmolHttpClient;
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::{HttpFile, HttpFileConfig, Stream};

use support::BoxError;

fn main() -> Result<(), BoxError> {
    // Throttled so the progress line and the seeks' re-aims show.
    let Some(support::Job {
        url,
        source,
        out_path,
    }) = support::job_from_args("smol", 1024 * 1024)?
    else {
        return Ok(());
    };

    // smol's global executor runs the downloader; it starts on first use.
    let downloader = Downloader::new(DownloaderConfig::new(
        Arc::new(SmolRuntime::global()),
        Arc::new(SmolHttpClient::new()?),
    ));
    let config = HttpFileConfig::from_url(url)
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    let stream = smol::block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, source.as_deref(), out_path.as_deref())
}

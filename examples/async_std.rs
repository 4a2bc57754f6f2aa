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
use kithara_stream::{HttpFile, HttpFileConfig, Stream};

use support::BoxError;

fn main() -> Result<(), BoxError> {
    // Throttled so the progress line and the seeks' re-aims show.
    let Some(support::Job {
        url,
        source,
        out_path,
    }) = support::job_from_args("async_std", 1024 * 1024)?
    else {
        return Ok(());
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

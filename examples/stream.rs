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

use std::time::Duration;

use kithara_stream::{HttpFile, HttpFileConfig, Stream};

use support::BoxError;

fn main() -> Result<(), BoxError> {
    // Throttled so the progress line and the seeks' re-aims show.
    let Some(support::Job {
        url,
        source,
        out_path,
    }) = support::job_from_args("stream", 1024 * 1024)?
    else {
        return Ok(());
    };

    // The runtime runs the downloader; the reading below happens on this
    // (non-executor) thread, because `Read` blocks.
    let (rt, downloader) = support::tokio_downloader()?;
    let config = HttpFileConfig::from_url(url)
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    // Resolves once the headers are in: a 404 or an HTML page is an error here.
    let stream = rt.block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, source.as_deref(), out_path.as_deref())
}

//! The main job: serve a generated WAV on 127.0.0.1 and stream it through the
//! crate's HTTP seam, with a progress line, a few ranged reads ("seeks") and a
//! checksum compared with the source.
//!
//! ```text
//! cargo run --example stream                # self-contained, no network
//! cargo run --example stream -- URL         # stream URL instead
//! cargo run --example stream -- URL --out F # and copy it to F
//! ```

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kithara_stream::backends::reqwest::ReqwestClient;
use kithara_stream::net::{HttpClient, HttpRequest, RangeSpec, parse_url};

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
            let addr = support::serve(wav.clone(), "audio/wav", 4 * 1024 * 1024)?;
            println!(
                "serving a generated {} byte WAV on http://{addr}/tones.wav",
                wav.len()
            );
            (parse_url(&format!("http://{addr}/tones.wav"))?, Some(wav))
        }
    };

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(url, source, out_path))
}

async fn run(
    url: url::Url,
    source: Option<Vec<u8>>,
    out_path: Option<String>,
) -> Result<(), BoxError> {
    let client: Arc<dyn HttpClient> = Arc::new(ReqwestClient::new()?);

    // Headers first: length and type.
    let head = client
        .send(HttpRequest::head(url.clone()))
        .await?
        .error_for_status(&url)
        .await?;
    let len = head.content_length();
    println!(
        "content-type: {}, length: {}",
        head.content_type().unwrap_or("(none)"),
        len.map_or("unknown".to_owned(), |l| l.to_string())
    );

    // The whole body, chunk by chunk, with a progress line.
    let started = Instant::now();
    let resp = client
        .send(HttpRequest::get(url.clone()))
        .await?
        .error_for_status(&url)
        .await?;
    let mut body = resp.body;
    let mut data = Vec::with_capacity(len.unwrap_or(0) as usize);
    while let Some(chunk) = body.next().await {
        data.extend_from_slice(&chunk?);
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        print!(
            "\r{:>10} / {:>10} bytes  {:>8.2} MB/s",
            data.len(),
            len.map_or("?".to_owned(), |l| l.to_string()),
            data.len() as f64 / secs / 1e6
        );
        std::io::stdout().flush()?;
    }
    println!();

    // A few "seeks": ranged reads compared with the whole body.
    for pos in [
        0u64,
        data.len() as u64 / 3,
        data.len() as u64 / 2,
        data.len().saturating_sub(4096) as u64,
    ] {
        let end = (pos + 4095).min(data.len().saturating_sub(1) as u64);
        let range = RangeSpec::new(pos, Some(end))?;
        let part = client
            .send(HttpRequest::get(url.clone()).with_range(range))
            .await?;
        let status = part.status;
        let bytes = part.error_for_status(&url).await?.bytes().await?;
        let same = bytes[..] == data[pos as usize..=end as usize];
        println!(
            "seek to {pos:>8}: HTTP {status}, {} bytes, {}",
            bytes.len(),
            if same { "match" } else { "MISMATCH" }
        );
        if !same {
            return Err("ranged read does not match the body".into());
        }
    }

    let sum = support::checksum(&data);
    println!("checksum {sum:016x}");
    if let Some(src) = source {
        if support::checksum(&src) != sum || src.len() != data.len() {
            return Err("checksum differs from the source".into());
        }
        println!("checksum matches the source");
    }
    if let Some(path) = out_path {
        std::fs::write(&path, &data)?;
        println!("copied to {path}");
    }
    Ok(())
}

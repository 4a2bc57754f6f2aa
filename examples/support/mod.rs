//! Shared by the examples: a generated WAV and a tiny loopback HTTP/1.1 server
//! with `Range` support, so the examples run with no network and no files.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A few seconds of stereo 16-bit PCM at 44.1 kHz: a chord of three tones
/// that glide, so a listener (or a decoder) can tell positions apart.
pub fn generate_wav(seconds: u32) -> Vec<u8> {
    const RATE: u32 = 44_100;
    const CHANNELS: u16 = 2;
    let frames = RATE * seconds;
    let data_len = frames * u32::from(CHANNELS) * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&CHANNELS.to_le_bytes());
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * u32::from(CHANNELS) * 2).to_le_bytes());
    out.extend_from_slice(&(CHANNELS * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        let t = f64::from(i) / f64::from(RATE);
        let glide = 1.0 + 0.1 * t;
        let s = (0.3 * (2.0 * std::f64::consts::PI * 220.0 * glide * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 277.2 * glide * t).sin()
            + 0.2 * (2.0 * std::f64::consts::PI * 329.6 * glide * t).sin())
            * f64::from(i16::MAX);
        let s = s as i16;
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// FNV-1a, enough to compare two copies of a body.
pub fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Serves `body` as `content_type` on 127.0.0.1 (any path), one thread per
/// connection, keep-alive, single `Range` requests, throttled to
/// `bytes_per_sec` so progress is visible. Runs until the process exits.
pub fn serve(
    body: Vec<u8>,
    content_type: &'static str,
    bytes_per_sec: u64,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let body = Arc::new(body);
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            thread::spawn(move || {
                let _ = handle(conn, &body, content_type, bytes_per_sec);
            });
        }
    });
    Ok(addr)
}

fn handle(
    conn: TcpStream,
    body: &[u8],
    content_type: &str,
    bytes_per_sec: u64,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let head = request_line.starts_with("HEAD ");
        let mut range = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range = parse_range(value.trim(), body.len() as u64);
            }
        }
        let len = body.len() as u64;
        let (status, first, last) = match range {
            Some((f, l)) => ("206 Partial Content", f, l),
            None => ("200 OK", 0, len.saturating_sub(1)),
        };
        let mut header = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
            last + 1 - first
        );
        if range.is_some() {
            header.push_str(&format!("Content-Range: bytes {first}-{last}/{len}\r\n"));
        }
        header.push_str("\r\n");
        out.write_all(header.as_bytes())?;
        if head {
            continue;
        }
        let start = Instant::now();
        let mut sent = 0u64;
        for chunk in body[first as usize..=last as usize].chunks(16 * 1024) {
            out.write_all(chunk)?;
            sent += chunk.len() as u64;
            let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
}

fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = value.strip_prefix("bytes=")?.split_once('-')?;
    let first: u64 = a.parse().ok()?;
    let last = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (first <= last).then_some((first, last))
}

/// The part every example shares once it has a stream: the detected media
/// info, a progress line (bytes, rate) while it downloads, a few seeks
/// checked against `source` (when known), and a checksum of the whole body
/// compared with it; `out` copies the body to a file.
///
/// Blocking: call it from a plain thread (here: `main`), never from an
/// async executor's thread.
pub fn exercise(
    mut stream: kithara_stream::Stream<kithara_stream::HttpFile>,
    source: Option<&[u8]>,
    out: Option<&str>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::io::{Read, Seek, SeekFrom};

    let src = stream.source();
    println!(
        "content-type: {}, length: {}, media: {:?}",
        src.content_type().as_deref().unwrap_or("(none)"),
        stream
            .len()
            .map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
        src.media_info()
    );
    let progress = Progress::start(src.storage().clone(), stream.len());

    // A few seeks: far ahead of the download, back, and near the end. Each
    // one outside the downloaded area re-aims the download with a Range
    // request instead of waiting for it.
    if let Some(len) = stream.len().filter(|&l| l >= 8192) {
        for pos in [len / 2, len / 5, len * 4 / 5, len - 4096] {
            let mut buf = vec![0u8; 4096];
            let t = Instant::now();
            stream.seek(SeekFrom::Start(pos))?;
            stream.read_exact(&mut buf)?;
            let verdict = match source {
                Some(s) if s[pos as usize..pos as usize + 4096] == buf[..] => "matches the source",
                Some(_) => return Err(format!("bytes at {pos} differ from the source").into()),
                None => "read",
            };
            progress.note(format!(
                "seek to {pos:>9}: 4096 bytes in {:>6.1} ms, {verdict}",
                t.elapsed().as_secs_f64() * 1e3
            ));
        }
    }

    // The whole body, in order, with a checksum (and an optional copy).
    stream.seek(SeekFrom::Start(0))?;
    let mut file = out.map(std::fs::File::create).transpose()?;
    let mut hash = Fnv::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hash.update(&buf[..n]);
        total += n as u64;
        if let Some(f) = file.as_mut() {
            f.write_all(&buf[..n])?;
        }
    }
    progress.finish();
    println!("media (after download): {:?}", stream.source().media_info());
    println!("read {total} bytes, checksum {:016x}", hash.0);
    if let Some(s) = source {
        if s.len() as u64 != total || checksum(s) != hash.0 {
            return Err("checksum differs from the source".into());
        }
        println!("checksum matches the source");
    }
    if let Some(path) = out {
        println!("copied to {path}");
    }
    Ok(())
}

/// Streaming FNV-1a, equal to [`checksum`] over the same bytes.
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A progress line on its own thread: downloaded bytes and rate, redrawn
/// every 100 ms until `finish` (a channel timeout, not a busy loop).
pub struct Progress {
    tx: std::sync::mpsc::Sender<Option<String>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Progress {
    pub fn start(storage: kithara_stream::StorageResource, len: Option<u64>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let draw = |final_line: bool| {
                let have = storage.available().covered_len();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                print!(
                    "\r{have:>10} / {:>10} bytes  {:>7.2} MB/s{}",
                    storage
                        .len_hint()
                        .or(len)
                        .map_or_else(|| "?".to_owned(), |l| l.to_string()),
                    have as f64 / secs / 1e6,
                    if final_line { "\n" } else { "" }
                );
                let _ = std::io::stdout().flush();
            };
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Some(line)) => {
                        print!("\r{:<60}\r", "");
                        println!("{line}");
                        draw(false);
                    }
                    Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        draw(true);
                        return;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => draw(false),
                }
            }
        });
        Self {
            tx,
            thread: Some(thread),
        }
    }

    /// Prints `line` above the progress line.
    pub fn note(&self, line: String) {
        let _ = self.tx.send(Some(line));
    }

    /// Draws the last progress line and stops.
    pub fn finish(mut self) {
        let _ = self.tx.send(None);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The examples' error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the streaming examples stream: a URL given on the command line, or
/// a generated WAV served on 127.0.0.1 (then `source` holds it for checks).
pub struct Job {
    /// The URL to stream.
    pub url: url::Url,
    /// The served body, when the example serves its own media.
    pub source: Option<Vec<u8>>,
    /// `--out FILE`: where to copy the streamed body.
    pub out_path: Option<String>,
}

/// Parses `[URL] [--out FILE]`; `Ok(None)` after printing `--help`. Without
/// a URL, serves a 5 s generated WAV on loopback at `bytes_per_sec`.
pub fn job_from_args(name: &str, bytes_per_sec: u64) -> Result<Option<Job>, BoxError> {
    let mut args = std::env::args().skip(1);
    let mut url_arg = None;
    let mut out_path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_path = Some(args.next().ok_or("--out needs a file name")?),
            "-h" | "--help" => {
                println!("usage: {name} [URL] [--out FILE]");
                return Ok(None);
            }
            _ => url_arg = Some(arg),
        }
    }
    let (url, source) = match url_arg {
        Some(u) => (kithara_stream::net::parse_url(&u)?, None),
        None => {
            let wav = generate_wav(5);
            let addr = serve(wav.clone(), "audio/wav", bytes_per_sec)?;
            println!(
                "serving a generated {} byte WAV on http://{addr}/tones.wav",
                wav.len()
            );
            (
                kithara_stream::net::parse_url(&format!("http://{addr}/tones.wav"))?,
                Some(wav),
            )
        }
    };
    Ok(Some(Job {
        url,
        source,
        out_path,
    }))
}

/// A tokio runtime and a downloader on it with reqwest. The runtime runs the
/// downloader; keep it alive as long as the downloader, and read the streams
/// on a plain thread (`Read` blocks).
#[cfg(feature = "reqwest")]
pub fn tokio_downloader()
-> Result<(tokio::runtime::Runtime, kithara_stream::dl::Downloader), BoxError> {
    use kithara_stream::backends::{reqwest::ReqwestClient, tokio::TokioRuntime};
    use kithara_stream::dl::{Downloader, DownloaderConfig};
    let rt = tokio::runtime::Runtime::new()?;
    let downloader = {
        let _ctx = rt.enter();
        Downloader::new(DownloaderConfig::new(
            std::sync::Arc::new(TokioRuntime::from(rt.handle().clone())),
            std::sync::Arc::new(ReqwestClient::new()?),
        ))
    };
    Ok((rt, downloader))
}

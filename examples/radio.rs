//! Internet radio in a fixed memory budget: an endless stream with ICY
//! metadata, played through bounded storage, printing the title and the
//! process RSS every second.
//!
//! ```text
//! cargo run --example radio                  # self-contained: a loopback station
//! cargo run --example radio -- URL [SECONDS] # play a real station (default 20 s)
//! ```
//!
//! With no arguments it serves an endless generated tone on 127.0.0.1 with
//! a new title every two seconds, plays it in real time for six seconds
//! through a 2 MiB budget (the download pauses when it is that far ahead:
//! TCP flow control holds the server), checks each title against the one
//! the station sent, and exits 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

mod support;

use kithara_stream::{HttpFile, HttpFileConfig, Stream};

use support::BoxError;

/// 16-bit stereo PCM at 44.1 kHz: the "audio" rate, in bytes per second.
const BYTE_RATE: u64 = 44_100 * 4;
/// Audio bytes between two ICY metadata blocks.
const METAINT: usize = 16_000;
/// A new title every this many audio bytes (about two seconds).
const TITLE_EVERY: u64 = 2 * BYTE_RATE;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (url, seconds, local) = match args.next() {
        Some(url) => {
            let seconds = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
            (url, seconds, false)
        }
        None => (format!("http://{}/radio", serve()?), 6, true),
    };

    // The runtime runs the downloader; playback reads on this thread.
    let (rt, downloader) = support::tokio_downloader()?;
    let config = HttpFileConfig::new(&url)?
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)))
        .bounded_memory(2 << 20)
        .icy_metadata(true);
    let mut stream = rt.block_on(Stream::<HttpFile>::new(config))?;
    let src = stream.source();
    if let Some(h) = src.icy_headers() {
        println!(
            "station: {} | genre: {} | {} kbit/s | {}",
            h.name.as_deref().unwrap_or("?"),
            h.genre.as_deref().unwrap_or("?"),
            h.bitrate.map_or("?".to_owned(), |b| b.to_string()),
            h.url.as_deref().unwrap_or("")
        );
    }
    println!(
        "live: {}, type: {}",
        src.is_live(),
        src.content_type().unwrap_or_default()
    );

    // "Play": read in real time for a local station (a real one paces
    // itself), one second's worth per tick.
    let mut buf = vec![0u8; 16 * 1024];
    let mut pos = 0u64;
    let start = Instant::now();
    let mut titles_seen = 0;
    // Titles arrive with the download, ahead of playback: each one starts
    // playing when the reader reaches its offset.
    let mut upcoming = std::collections::VecDeque::new();
    let mut now_playing = ("-".to_owned(), 0u64);
    for second in 1..=seconds {
        let due = pos + BYTE_RATE;
        while pos < due {
            let n = stream.read(&mut buf[..(due - pos).min(16 * 1024) as usize])?;
            if n == 0 {
                println!("the station ended the stream");
                return Ok(());
            }
            pos += n as u64;
            if !local {
                break;
            }
        }
        if local && let Some(wait) = Duration::from_secs(second).checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let src = stream.source();
        for event in src.live_events() {
            if let kithara_stream::file::LiveEvent::Metadata { offset, metadata } = event {
                titles_seen += 1;
                if local {
                    // The station starts "Song n" at audio byte n × TITLE_EVERY
                    // (rounded up to the next metadata block).
                    let n = offset.div_ceil(TITLE_EVERY);
                    let expected = format!("Song {n}");
                    if metadata.title.as_deref() != Some(expected.as_str()) {
                        return Err(format!("title {:?} at {offset}", metadata.title).into());
                    }
                }
                upcoming.push_back((metadata.title.unwrap_or_default(), offset));
            }
        }
        while upcoming.front().is_some_and(|(_, at)| *at <= pos) {
            now_playing = upcoming.pop_front().unwrap_or_default();
        }
        println!(
            "{second:>3}s  played {pos:>8} B  now playing: {:<10} (from byte {:>8})  storage {:.1} MiB  RSS {}",
            now_playing.0,
            now_playing.1,
            src.storage().resident_bytes() as f64 / f64::from(1 << 20),
            rss()
        );
    }
    if local && titles_seen < 2 {
        return Err(format!("only {titles_seen} titles in {seconds} s").into());
    }
    println!("ok: {titles_seen} titles, {pos} bytes played");
    Ok(())
}

/// Process RSS (Linux `/proc`), else "n/a".
fn rss() -> String {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("n/a".to_owned(), |pages| {
            format!("{:.1} MiB", (pages * 4096) as f64 / f64::from(1 << 20))
        })
}

/// Serves an endless tone with ICY metadata on 127.0.0.1 (any path), as
/// fast as the client reads it. Runs until the process exits.
fn serve() -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = station(conn);
            });
        }
    });
    Ok(addr)
}

fn station(mut conn: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut byte)?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let icy = String::from_utf8_lossy(&head)
        .to_ascii_lowercase()
        .contains("icy-metadata: 1");
    let mut header = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: audio/L16;rate=44100;channels=2\r\n\
         Transfer-Encoding: chunked\r\nicy-name: Loopback FM\r\nicy-genre: Tones\r\n\
         icy-br: 1411\r\nicy-url: http://127.0.0.1/\r\n",
    );
    if icy {
        header.push_str(&format!("icy-metaint: {METAINT}\r\n"));
    }
    header.push_str("\r\n");
    conn.write_all(header.as_bytes())?;
    let mut audio = 0u64;
    let mut frame = 0u64;
    loop {
        // One metadata interval of tone, then (with ICY) its block.
        let mut out = Vec::with_capacity(METAINT + 64);
        while out.len() < METAINT {
            let t = frame as f64 / 44_100.0;
            let song = audio / TITLE_EVERY;
            let hz = 220.0 * (1.0 + (song % 5) as f64 / 4.0);
            let s = ((2.0 * std::f64::consts::PI * hz * t).sin() * 8000.0) as i16;
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&s.to_le_bytes());
            frame += 1;
            audio += 4;
        }
        if icy {
            // The block after byte `audio` names the song playing from there.
            let song = audio.div_ceil(TITLE_EVERY);
            let prev = (audio - METAINT as u64).div_ceil(TITLE_EVERY);
            if song != prev || audio == METAINT as u64 {
                let text = format!("StreamTitle='Song {song}';");
                let len = text.len().div_ceil(16);
                out.push(len as u8);
                out.extend_from_slice(text.as_bytes());
                out.resize(out.len() + len * 16 - text.len(), 0);
            } else {
                out.push(0);
            }
        }
        conn.write_all(format!("{:x}\r\n", out.len()).as_bytes())?;
        conn.write_all(&out)?;
        conn.write_all(b"\r\n")?;
    }
}

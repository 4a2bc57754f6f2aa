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

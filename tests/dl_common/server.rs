//! A minimal loopback HTTP/1.1 server on std threads (runtime-free), with
//! fault knobs per route: header delay, drop the connection after N body
//! bytes, stall after N bytes, ignore `Range`, chunked, any status and
//! content type, never answer. Counts requests in service (peak), requests
//! and client ports. Only ever binds 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One resource and how to misbehave while serving it.
#[derive(Clone, Debug, Default)]
pub struct Route {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub status: Option<u16>,
    pub delay: Duration,
    /// Close the connection after this many body bytes of each response.
    pub drop_after: Option<usize>,
    /// Stop sending after this many body bytes (hold the connection open).
    pub stall_after: Option<usize>,
    pub ignore_range: bool,
    pub chunked: bool,
    /// Accept, read the request, never answer.
    pub never_answer: bool,
}

impl Route {
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub port: u16,
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Route>>,
    current: AtomicUsize,
    peak: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    ports: Mutex<HashSet<u16>>,
}

pub struct Server {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                thread::spawn(move || {
                    let _ = serve_connection(conn, &st);
                });
            }
        });
        Self { addr, state }
    }

    pub fn route(&self, path: &str, route: Route) -> &Self {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
        self
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    pub fn peak(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn ports(&self) -> usize {
        self.state.ports.lock().unwrap().len()
    }
}

struct InService<'a>(&'a AtomicUsize);
impl Drop for InService<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(conn: TcpStream, st: &State) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    if let Ok(peer) = conn.peer_addr() {
        st.ports.lock().unwrap().insert(peer.port());
    }
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_owned());
                }
            }
        }
        let port = out.peer_addr().map(|a| a.port()).unwrap_or(0);
        st.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            port,
        });
        let now = st.current.fetch_add(1, Ordering::SeqCst) + 1;
        st.peak.fetch_max(now, Ordering::SeqCst);
        let _busy = InService(&st.current);
        let route = st.routes.lock().unwrap().get(&path).cloned();
        let Some(route) = route else {
            write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\nnot found"
            )?;
            continue;
        };
        if route.never_answer {
            let mut buf = [0u8; 64];
            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            return Ok(());
        }
        if !route.delay.is_zero() {
            thread::sleep(route.delay);
        }
        let len = route.body.len();
        let mut status = route.status.unwrap_or(200);
        let mut extra = String::new();
        let mut slice = 0..len;
        if status == 200 && !route.ignore_range {
            if let Some(r) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
                let (a, b) = r.split_once('-').unwrap_or((r, ""));
                let first: usize = a.parse().unwrap_or(0);
                let last: usize = b
                    .parse()
                    .unwrap_or(len.saturating_sub(1))
                    .min(len.saturating_sub(1));
                if first >= len {
                    write!(
                        out,
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n"
                    )?;
                    continue;
                }
                status = 206;
                extra = format!("Content-Range: bytes {first}-{last}/{len}\r\n");
                slice = first..last + 1;
            }
        }
        let body = &route.body[slice];
        let reason = match status {
            200 => "OK",
            206 => "Partial Content",
            404 => "Not Found",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut head = format!("HTTP/1.1 {status} {reason}\r\n{extra}");
        if let Some(ct) = &route.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if route.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if method == "HEAD" {
            out.flush()?;
            continue;
        }
        let cut = [route.drop_after, route.stall_after]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(usize::MAX)
            .min(body.len());
        for piece in body[..cut].chunks(8192) {
            if route.chunked {
                write!(out, "{:x}\r\n", piece.len())?;
                out.write_all(piece)?;
                out.write_all(b"\r\n")?;
            } else {
                out.write_all(piece)?;
            }
            out.flush()?;
        }
        if cut < body.len() {
            if route.stall_after.is_some_and(|s| s <= cut) {
                // Hold the connection until the client gives up.
                let mut buf = [0u8; 64];
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            }
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        if route.chunked {
            out.write_all(b"0\r\n\r\n")?;
        }
        out.flush()?;
    }
}

//! A loopback HTTP/1.1 test server (hyper 1.x) with fault knobs and stats.
//!
//! The server runs on its **own** tokio runtime in its own thread, so a test
//! on any backend (tokio + reqwest, async-std + surf, a custom executor, or
//! no async at all) can use it. It binds `127.0.0.1:0` and only ever answers
//! the client that connected to it.
//!
//! ```ignore
//! use support::server::{Cut, Resource, TestServer};
//!
//! let server = TestServer::start();
//! server.add("/song.mp3", Resource::new(body.clone()).content_type("audio/mpeg"));
//! // The first GET dies after 1 MiB of its body, later ones succeed.
//! server.add("/flaky", Resource::new(body).then(Cut::DropAfter(1 << 20)));
//! let url = server.url("/song.mp3");
//! // ... run the client ...
//! let stats = server.stats();
//! assert_eq!(stats.requests_for("/song.mp3"), 1);
//! // Wait (bounded) until the server saw every connection closed:
//! server.wait_blocking(Duration::from_secs(5), |s| s.open_connections == 0).unwrap();
//! ```
//!
//! # What a resource answers
//! - Unknown path: `404` with body `not found` (`text/plain`).
//! - `GET`/`HEAD` with no usable `Range`: `200`, `Content-Length` (unless
//!   [`Resource::chunked`]), `Content-Type` if set, `Accept-Ranges: bytes`
//!   (unless [`Resource::ignore_range`]).
//! - A single range `bytes=a-b`, `bytes=a-`, `bytes=-n`: `206` with
//!   `Content-Range: bytes first-last/len` and exactly those bytes (`b` is
//!   clamped to the last byte).
//! - An unsatisfiable range (`a >= len`, `-0`, or any range of an empty
//!   body): `416` with `Content-Range: bytes */len` and no body.
//! - A malformed range, another unit, or several ranges: ignored (`200`, full
//!   body), as RFC 9110 allows.
//! - `HEAD`: the same status and headers as `GET`, no body; does not consume
//!   a [`Cut`].
//! - Other methods: `405`.
//! - [`Resource::status`]: that status with the resource's body, for every
//!   request (ranges ignored).
//!
//! Paths are matched without the query string.
//!
//! # Bounded waits
//! Every wait in the server is bounded: header and body delays are what the
//! resource says, a stalled body waits at most [`STALL_LIMIT`] (or until the
//! client goes away), and dropping the [`TestServer`] shuts the runtime down
//! within about two seconds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::{Event, Listener};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use url::Url;

/// How long a stalled body keeps its connection open at most.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// Default body chunk size.
pub const DEFAULT_CHUNK: usize = 16 * 1024;

/// What happens to the body of one `GET` response.
///
/// Byte counts are counted from the start of **that response's** body (so for
/// a `206` they are relative to the range's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Send the whole body.
    Full,
    /// Send this many body bytes, then abort the connection (the client sees
    /// a truncated body). No effect if the body is not longer.
    DropAfter(u64),
    /// Send this many body bytes, then send nothing more while keeping the
    /// connection open (until the client leaves or [`STALL_LIMIT`]). No effect
    /// if the body is not longer.
    StallAfter(u64),
}

/// One resource the server answers, with its fault knobs (builder style).
#[derive(Debug, Clone)]
pub struct Resource {
    /// The full body.
    pub body: Bytes,
    /// `Content-Type` to answer with.
    pub content_type: Option<String>,
    /// Answer every request with this status and the body (ranges ignored).
    pub status: Option<StatusCode>,
    /// Fault knobs.
    pub faults: Faults,
}

/// Fault knobs of a [`Resource`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Body rate limit in bytes per second (the body is sent in small chunks
    /// on a schedule).
    pub throttle: Option<u64>,
    /// Wait this long before answering (before the headers).
    pub header_delay: Option<Duration>,
    /// Wait this long after the headers, before the first body byte.
    pub body_delay: Option<Duration>,
    /// Body chunk size (0 means [`DEFAULT_CHUNK`]).
    pub chunk_size: usize,
    /// Answer `200` with the full body whatever `Range` says.
    pub ignore_range: bool,
    /// No `Content-Length`; the body goes out chunked.
    pub chunked: bool,
    /// Per-response plan: each `GET` response pops the front entry.
    pub plan: VecDeque<Cut>,
    /// What a `GET` response does once `plan` is empty (default [`Cut::Full`]).
    pub always: Option<Cut>,
    /// Extra response headers.
    pub extra_headers: Vec<(String, String)>,
    /// Validators and version swaps (see [`Versions`]).
    pub versions: Versions,
}

impl Resource {
    /// A resource serving `body` with no faults and no `Content-Type`.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            content_type: None,
            status: None,
            faults: Faults::default(),
        }
    }

    /// An HTML error page answered with `200 OK` and `text/html` (what some
    /// CDNs and captive portals do).
    pub fn html_error_page() -> Self {
        Self::new(
            "<!DOCTYPE html><html><head><title>Error</title></head>\
             <body><h1>Something went wrong</h1></body></html>",
        )
        .content_type("text/html; charset=utf-8")
    }

    /// A resource that answers every request with `status` and `body`.
    pub fn error(status: u16, body: impl Into<Bytes>) -> Self {
        Self::new(body).content_type("text/plain").status(status)
    }

    /// Sets the `Content-Type`.
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = Some(ct.to_owned());
        self
    }

    /// Answers every request with this status (and the body).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(StatusCode::from_u16(status).expect("valid status code"));
        self
    }

    /// Limits the body rate to `bytes_per_sec`.
    pub fn throttle(mut self, bytes_per_sec: u64) -> Self {
        assert!(bytes_per_sec > 0, "throttle must be positive");
        self.faults.throttle = Some(bytes_per_sec);
        self
    }

    /// Waits `delay` before sending the headers.
    pub fn header_delay(mut self, delay: Duration) -> Self {
        self.faults.header_delay = Some(delay);
        self
    }

    /// Waits `delay` between the headers and the first body byte.
    pub fn body_delay(mut self, delay: Duration) -> Self {
        self.faults.body_delay = Some(delay);
        self
    }

    /// Sends the body in chunks of `size` bytes.
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.faults.chunk_size = size;
        self
    }

    /// Ignores `Range` (answers `200` with the full body, no `Accept-Ranges`).
    pub fn ignore_range(mut self) -> Self {
        self.faults.ignore_range = true;
        self
    }

    /// Omits `Content-Length` (chunked transfer encoding).
    pub fn chunked(mut self) -> Self {
        self.faults.chunked = true;
        self
    }

    /// Appends `cut` to the per-response plan (the next `GET` without a plan
    /// entry gets it).
    pub fn then(mut self, cut: Cut) -> Self {
        self.faults.plan.push_back(cut);
        self
    }

    /// Every `GET` response gets `cut` once the plan is used up.
    pub fn always(mut self, cut: Cut) -> Self {
        self.faults.always = Some(cut);
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.faults
            .extra_headers
            .push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The precondition headers sent (`if-range`, `if-none-match`,
    /// `if-modified-since`), lowercase name and value, in that order.
    pub preconditions: Vec<(String, String)>,
    /// The client's port (identifies the connection).
    pub client_port: u16,
}

/// A snapshot of what the server has seen since start (or the last
/// [`TestServer::reset_stats`]).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests received (any path, any method).
    pub requests: u64,
    /// Requests per path.
    pub requests_by_path: HashMap<String, u64>,
    /// Every request, in arrival order.
    pub log: Vec<RequestRecord>,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections currently open (the server's side of them).
    pub open_connections: u64,
    /// Highest `open_connections` seen.
    pub peak_connections: u64,
    /// Connections the server has seen closed.
    pub connections_closed: u64,
    /// Requests currently in flight: from arrival until their body is
    /// handed over completely, fails, or is abandoned.
    pub in_flight: u64,
    /// Highest `in_flight` seen.
    pub peak_in_flight: u64,
    /// Distinct client ports seen (one per client connection).
    pub client_ports: HashSet<u16>,
    /// Body bytes handed to the HTTP layer (HEAD and error bodies included).
    pub body_bytes_sent: u64,
}

impl Stats {
    /// Requests seen for `path`.
    pub fn requests_for(&self, path: &str) -> u64 {
        self.requests_by_path.get(path).copied().unwrap_or(0)
    }

    /// The `Range` header of every request for `path`, in order (`None` for
    /// requests without one).
    pub fn ranges_for(&self, path: &str) -> Vec<Option<String>> {
        self.log
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.range.clone())
            .collect()
    }

    /// Every `Range` header seen, in order.
    pub fn range_headers(&self) -> Vec<String> {
        self.log.iter().filter_map(|r| r.range.clone()).collect()
    }
}

struct Shared {
    resources: Mutex<HashMap<String, Resource>>,
    stats: Mutex<Stats>,
    changed: Event,
    outage: Outage,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
        self.changed.notify(usize::MAX);
    }
}

/// Decrements `in_flight` when dropped (the increment is done with the
/// request's logging).
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .update(|s| s.in_flight = s.in_flight.saturating_sub(1));
    }
}

/// Counts a connection closed when dropped.
struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.update(|s| {
            s.open_connections = s.open_connections.saturating_sub(1);
            s.connections_closed += 1;
        });
    }
}

/// The loopback test server. Dropping it shuts it down (bounded).
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts serving on a fresh runtime thread.
    /// Connections are accepted (queued by the kernel) as soon as this returns.
    pub fn start() -> Self {
        let std_listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = std_listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            resources: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            changed: Event::new(),
            outage: Outage::default(),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-server")
            .enable_all()
            .build()
            .expect("server runtime");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shared2 = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                    accept_loop(listener, shared2, rx).await;
                });
                // Drops every connection task; bounded.
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn server thread");
        Self {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// A server with the given resources already added.
    pub fn with(resources: impl IntoIterator<Item = (&'static str, Resource)>) -> Self {
        let server = Self::start();
        for (path, resource) in resources {
            server.add(path, resource);
        }
        server
    }

    /// The address the server listens on (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> Url {
        let slash = if path.starts_with('/') { "" } else { "/" };
        Url::parse(&format!("http://{}{slash}{path}", self.addr)).expect("valid test URL")
    }

    /// Serves `resource` at `path` (replacing what was there, plan included).
    pub fn add(&self, path: &str, resource: Resource) {
        let slash = if path.starts_with('/') { "" } else { "/" };
        lock(&self.shared.resources).insert(format!("{slash}{path}"), resource);
    }

    /// Stops serving `path` (it answers 404 afterwards).
    pub fn remove(&self, path: &str) {
        let slash = if path.starts_with('/') { "" } else { "/" };
        lock(&self.shared.resources).remove(&format!("{slash}{path}"));
    }

    /// A snapshot of the stats.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Clears the stats. Open connections and in-flight requests stay
    /// counted (they are still open); the peaks restart from them.
    pub fn reset_stats(&self) {
        self.shared.update(|s| {
            *s = Stats {
                open_connections: s.open_connections,
                peak_connections: s.open_connections,
                in_flight: s.in_flight,
                peak_in_flight: s.in_flight,
                ..Stats::default()
            };
        });
    }

    /// Blocks until `pred(stats)` holds or `timeout` passes; returns the
    /// stats that satisfied it, or `Err` with the last snapshot.
    ///
    /// Safe to call from any thread: the server runs on its own runtime.
    /// From inside an async test, prefer [`wait_for`](Self::wait_for) so the
    /// client's executor thread is not blocked.
    pub fn wait_blocking(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Stats) -> bool,
    ) -> Result<Stats, Stats> {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.shared.changed.listen();
            let stats = self.stats();
            if pred(&stats) {
                return Ok(stats);
            }
            if listener.wait_deadline(deadline).is_none() {
                let stats = self.stats();
                return if pred(&stats) { Ok(stats) } else { Err(stats) };
            }
        }
    }

    /// Async version of [`wait_blocking`](Self::wait_blocking): awaits stats
    /// changes (no polling), timed with `timer` (any [`Spawn`]).
    ///
    /// [`Spawn`]: kithara_stream::rt::Spawn
    pub async fn wait_for<S>(
        &self,
        timer: &S,
        timeout: Duration,
        mut pred: impl FnMut(&Stats) -> bool,
    ) -> Result<Stats, Stats>
    where
        S: kithara_stream::rt::Spawn + ?Sized,
    {
        let wait = async {
            loop {
                let listener = self.shared.changed.listen();
                let stats = self.stats();
                if pred(&stats) {
                    return stats;
                }
                listener.await;
            }
        };
        match kithara_stream::rt::timeout(timer, timeout, wait).await {
            Ok(stats) => Ok(stats),
            Err(_) => Err(self.stats()),
        }
    }
}

// ------------------------------------------------- outage knob (liveness)

/// The server's outage switch and the connections it resets.
struct Outage {
    /// `true` while the server is down.
    down: tokio::sync::watch::Sender<bool>,
    /// Whether the accept loop holds a listener.
    listening: tokio::sync::watch::Sender<bool>,
    /// A duplicate handle of every open connection, to reset them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next: AtomicU64,
}

impl Default for Outage {
    fn default() -> Self {
        Self {
            down: tokio::sync::watch::Sender::new(false),
            listening: tokio::sync::watch::Sender::new(true),
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        }
    }
}

/// Forgets a tracked connection when its task ends (so the duplicate
/// handle does not keep the socket open).
struct Tracked(Arc<Shared>, u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        lock(&self.0.outage.conns).remove(&self.1);
    }
}

impl Outage {
    fn track(&self, stream: tokio::net::TcpStream) -> (tokio::net::TcpStream, Option<u64>) {
        let Ok(std) = stream.into_std() else {
            panic!("tcp stream into_std");
        };
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(dup) = std.try_clone() {
            lock(&self.conns).insert(id, dup);
        }
        let stream = tokio::net::TcpStream::from_std(std).expect("tcp stream from_std");
        (stream, Some(id))
    }
}

/// Panics with the first differing offset (not a 2 MiB dump) unless
/// `got == want`.
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "bodies differ: got {} bytes, want {}, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    // SO_REUSEADDR: the reset connections' TIME_WAIT must not block the port.
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        if socket.bind(addr).is_ok()
            && let Ok(l) = socket.listen(1024)
        {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("could not rebind {addr}");
}

impl TestServer {
    /// Takes the server off the network, as a crash or a reboot would: the
    /// listener is closed (new connections are refused) and every open
    /// connection is shut down mid-whatever. Returns once the port refuses
    /// (bounded: panics after 5 s). Resources and stats are kept.
    pub fn go_down(&self) {
        self.shared.outage.down.send_replace(true);
        let conns: Vec<TcpStream> = lock(&self.shared.outage.conns)
            .drain()
            .map(|(_, c)| c)
            .collect();
        for c in conns {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        self.wait_listening(false);
    }

    /// Brings the server back on the **same** port after [`go_down`]
    /// (bounded: panics after 5 s).
    ///
    /// [`go_down`]: Self::go_down
    pub fn come_back(&self) {
        self.shared.outage.down.send_replace(false);
        self.wait_listening(true);
    }

    fn wait_listening(&self, want: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while *self.shared.outage.listening.borrow() != want {
            assert!(
                Instant::now() < deadline,
                "server did not switch listening={want}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let addr = listener.local_addr().expect("listener addr");
    let mut listener = Some(listener);
    let mut down = shared.outage.down.subscribe();
    loop {
        // The outage knob ([`TestServer::go_down`]): no listener while down.
        let Some(l) = listener.as_ref() else {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = down.changed() => {}
            }
            if !*down.borrow_and_update() {
                listener = Some(rebind(addr).await);
                shared.outage.listening.send_replace(true);
            }
            continue;
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            _ = down.changed() => {
                if *down.borrow_and_update() {
                    listener = None;
                    shared.outage.listening.send_replace(false);
                }
                continue;
            }
            accepted = l.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(_) => {
                // E.g. EMFILE: back off briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if *down.borrow() {
            continue; // went down meanwhile: this connection is dropped
        }
        let (stream, tracked) = shared.outage.track(stream);
        let _ = stream.set_nodelay(true);
        let port = peer.port();
        shared.update(|s| {
            s.connections_accepted += 1;
            s.open_connections += 1;
            s.peak_connections = s.peak_connections.max(s.open_connections);
            s.client_ports.insert(port);
        });
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _tracked = tracked.map(|id| Tracked(Arc::clone(&shared), id));
            let _guard = ConnGuard(Arc::clone(&shared));
            let progress = Arc::new(WriteProgress::default());
            let stream = TrackedStream {
                inner: stream,
                progress: Arc::clone(&progress),
            };
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let progress = Arc::clone(&progress);
                async move { Ok::<_, Infallible>(handle(shared, progress, req, port).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Per-connection write progress, so a planned drop can wait until every
/// byte before the cut has left hyper's buffer.
///
/// hyper calls the IO's `poll_flush` only once its own write buffer is empty,
/// so "a flush happened after the body's last frame was taken" means those
/// bytes are in the kernel.
#[derive(Default)]
struct WriteProgress {
    flushes: AtomicU64,
    changed: tokio::sync::Notify,
}

/// A `TcpStream` that counts `poll_flush` calls into [`WriteProgress`].
struct TrackedStream {
    inner: tokio::net::TcpStream,
    progress: Arc<WriteProgress>,
}

impl tokio::io::AsyncRead for TrackedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        if r.is_ready() {
            self.progress.flushes.fetch_add(1, Ordering::SeqCst);
            self.progress.changed.notify_waiters();
        }
        r
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: answer the full body with 200.
    Full,
    /// Answer these bytes (half-open) with 206.
    Partial(std::ops::Range<u64>),
    /// Answer 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a body of `len` bytes (single
/// ranges only; see the module docs).
pub fn interpret_range(value: &str, len: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match num(b) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial(len - n.min(len)..len),
        },
        // bytes=a-
        (false, true) => match num(a) {
            None => RangeAnswer::Full,
            Some(first) if first >= len => RangeAnswer::Unsatisfiable,
            Some(first) => RangeAnswer::Partial(first..len),
        },
        // bytes=a-b
        (false, false) => match (num(a), num(b)) {
            (Some(first), Some(last)) if first <= last => {
                if first >= len {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial(first..last.min(len - 1) + 1)
                }
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

async fn handle(
    shared: Arc<Shared>,
    progress: Arc<WriteProgress>,
    req: Request<Incoming>,
    port: u16,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let preconditions = read_preconditions(req.headers());
    // One update, so a waiter never sees the request in flight but unlogged.
    shared.update(|s| {
        s.in_flight += 1;
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        s.requests += 1;
        *s.requests_by_path.entry(path.clone()).or_default() += 1;
        s.log.push(RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            range: range.clone(),
            preconditions: preconditions.clone(),
            client_port: port,
        });
    });
    let in_flight = InFlight(Arc::clone(&shared));

    let is_head = method == Method::HEAD;
    if method != Method::GET && !is_head {
        return simple(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
            is_head,
        );
    }
    // Pop this response's cut under the same lock that finds the resource.
    let found = {
        let mut resources = lock(&shared.resources);
        resources.get_mut(&path).map(|r| {
            if !is_head && let Some(next) = r.faults.versions.take_due() {
                *r = next;
            }
            let cut = if is_head {
                Cut::Full
            } else {
                r.faults
                    .plan
                    .pop_front()
                    .or(r.faults.always)
                    .unwrap_or(Cut::Full)
            };
            (r.clone(), cut)
        })
    };
    let Some((resource, cut)) = found else {
        return simple(StatusCode::NOT_FOUND, "not found", is_head);
    };
    let faults = &resource.faults;
    if let Some(delay) = faults.header_delay {
        tokio::time::sleep(delay).await;
    }

    let versions = &faults.versions;
    if resource.status.is_none()
        && let Some(resp) = versions.not_modified(&preconditions)
    {
        return resp;
    }
    // A failed `If-Range` makes the `Range` ignored, as RFC 9110 says.
    let ignore_range = faults.ignore_range || !versions.if_range_holds(&preconditions);
    let len = resource.body.len() as u64;
    let (status, slice) = match (resource.status, &range) {
        (Some(status), _) => (status, 0..len),
        (None, Some(range)) if !ignore_range => match interpret_range(range, len) {
            RangeAnswer::Full => (StatusCode::OK, 0..len),
            RangeAnswer::Partial(r) => (StatusCode::PARTIAL_CONTENT, r),
            RangeAnswer::Unsatisfiable => {
                let mut resp = Response::new(empty());
                *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                let h = resp.headers_mut();
                h.insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
                h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                return resp;
            }
        },
        _ => (StatusCode::OK, 0..len),
    };

    let mut builder = Response::builder().status(status);
    if let Some(ct) = &resource.content_type {
        builder = builder.header(header::CONTENT_TYPE, hv(ct));
    }
    if !faults.ignore_range && resource.status.is_none() {
        builder = builder.header(header::ACCEPT_RANGES, "bytes");
    }
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            hv(&format!("bytes {}-{}/{len}", slice.start, slice.end - 1)),
        );
    }
    if !faults.chunked {
        builder = builder.header(header::CONTENT_LENGTH, slice.end - slice.start);
    }
    builder = versions.add_headers(builder);
    for (name, value) in &faults.extra_headers {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            builder = builder.header(name, hv(value));
        }
    }
    let body_bytes = resource
        .body
        .slice(slice.start as usize..slice.end as usize);
    let body = if is_head {
        drop(in_flight);
        empty()
    } else {
        stream_body(shared, progress, in_flight, body_bytes, faults.clone(), cut)
    };
    builder.body(body).expect("valid response")
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("valid header value")
}

fn simple(status: StatusCode, text: &'static str, is_head: bool) -> Response<Body> {
    let body = if is_head {
        empty()
    } else {
        http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    resp
}

/// Streams `body` through a one-slot channel from a producer task that
/// applies the delay, throttle and cut.
fn stream_body(
    shared: Arc<Shared>,
    progress: Arc<WriteProgress>,
    in_flight: InFlight,
    body: Bytes,
    faults: Faults,
    cut: Cut,
) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    // Frames hyper has taken, and the flush count when it took the latest.
    let taken = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let taken2 = Arc::clone(&taken);
    let progress2 = Arc::clone(&progress);
    tokio::spawn(async move {
        let _in_flight = in_flight;
        if let Some(delay) = faults.body_delay {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = tx.closed() => return,
            }
        }
        let len = body.len() as u64;
        let limit = match cut {
            Cut::Full => len,
            Cut::DropAfter(n) | Cut::StallAfter(n) => n.min(len),
        };
        let mut chunk = if faults.chunk_size == 0 {
            DEFAULT_CHUNK
        } else {
            faults.chunk_size
        } as u64;
        if let Some(rate) = faults.throttle {
            // About 50 chunks a second keeps the rate smooth.
            chunk = chunk.min((rate / 50).max(1));
        }
        let start = tokio::time::Instant::now();
        let mut sent = 0u64;
        let mut frames = 0u64;
        while sent < limit {
            if let Some(rate) = faults.throttle {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
            let n = chunk.min(limit - sent);
            let data = body.slice(sent as usize..(sent + n) as usize);
            // Counted before the hand-over: the client can read the last
            // byte and close the connection before `send` returns here.
            shared.update(|s| s.body_bytes_sent += n);
            if tx.send(Ok(Frame::data(data))).await.is_err() {
                shared.update(|s| s.body_bytes_sent -= n);
                return; // the client went away
            }
            frames += 1;
            sent += n;
        }
        match cut {
            Cut::DropAfter(n) if n < len => {
                // Let every byte before the cut reach the kernel first
                // (bounded), then fail the body: hyper aborts the connection.
                let flushed = async {
                    loop {
                        let notified = progress2.changed.notified();
                        tokio::pin!(notified);
                        notified.as_mut().enable();
                        let (count, at) = (&taken2.0, &taken2.1);
                        if count.load(Ordering::SeqCst) >= frames
                            && progress2.flushes.load(Ordering::SeqCst) > at.load(Ordering::SeqCst)
                        {
                            return;
                        }
                        notified.await;
                    }
                };
                tokio::select! {
                    () = flushed => {}
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    () = tx.closed() => return,
                }
                let _ = tx
                    .send(Err(std::io::Error::other(
                        "test server: connection dropped as planned",
                    )))
                    .await;
            }
            Cut::StallAfter(n) if n < len => {
                tokio::select! {
                    () = tokio::time::sleep(STALL_LIMIT) => {}
                    () = tx.closed() => {}
                }
            }
            _ => {}
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        let item = rx.poll_recv(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &item {
            // Runs inside hyper's poll, so the next IO flush is after this frame.
            taken
                .1
                .store(progress.flushes.load(Ordering::SeqCst), Ordering::SeqCst);
            taken.0.fetch_add(1, Ordering::SeqCst);
            progress.changed.notify_waiters();
        }
        item
    });
    StreamBody::new(stream).boxed_unsync()
}

/// A `http://127.0.0.1:PORT/path` URL on which nothing listens (connection
/// refused): a port the kernel just handed out, released again.
pub fn closed_port_url(path: &str) -> Url {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let slash = if path.starts_with('/') { "" } else { "/" };
    Url::parse(&format!("http://127.0.0.1:{port}{slash}{path}")).expect("url")
}

/// A loopback listener that accepts TCP connections and never answers
/// (for header and connect timeouts). Holds the connections open until
/// dropped; dropping it stops the accept thread (bounded).
pub struct BlackHole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    /// Binds `127.0.0.1:0` and starts swallowing connections.
    pub fn start() -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (stop2, accepted2) = (Arc::clone(&stop), Arc::clone(&accepted));
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accepted2.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> Url {
        let slash = if path.starts_with('/') { "" } else { "/" };
        Url::parse(&format!("http://{}{slash}{path}", self.addr)).expect("url")
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response read by [`raw_request`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked), possibly truncated.
    pub body: Vec<u8>,
    /// Whether the body was complete (all of `Content-Length`, or the final
    /// chunk); false when the connection ended early.
    pub complete: bool,
}

impl RawResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal blocking HTTP/1.1 client over `std::net` (no async, no HTTP
/// library), for checking the server's exact answers. Sends
/// `Connection: close` and reads until EOF (10 s read timeout).
/// `extra_headers` are full header lines without CRLF, e.g. `"Range: bytes=0-9"`.
pub fn raw_request(url: &Url, method: &str, extra_headers: &[&str]) -> RawResponse {
    let host = url.host_str().expect("host");
    assert_eq!(host, "127.0.0.1", "raw_request talks to loopback only");
    let port = url.port().expect("port");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n",
        url.path()
    );
    for h in extra_headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    // A read error (reset) ends the response like EOF: the caller checks `complete`.
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("raw_request: read timed out")
            }
            Err(_) => break,
        }
    }
    parse_raw(&raw, method == "HEAD")
}

fn parse_raw(raw: &[u8], is_head: bool) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = std::str::from_utf8(&raw[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (body, complete) = if is_head || status == 204 || status == 304 {
        (Vec::new(), true)
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let body = rest[..rest.len().min(len)].to_vec();
        let complete = body.len() == len;
        (body, complete)
    } else {
        (rest.to_vec(), true)
    };
    RawResponse {
        status,
        headers,
        body,
        complete,
    }
}

fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_str = std::str::from_utf8(&rest[..eol]).unwrap_or("");
        let size_str = size_str.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_str, 16) else {
            return (out, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        if rest.len() < size {
            out.extend_from_slice(rest);
            return (out, false);
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

/// `len` pseudo-random bytes from a xorshift64 generator seeded with `seed`
/// (deterministic; no dependencies).
pub fn pseudo_random(len: usize, seed: u64) -> Bytes {
    // Spread the seed so that nearby seeds give unrelated streams; never 0.
    let mut state = (seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A 64-bit FNV-1a checksum of `data`; equal to feeding the same bytes to a
/// [`Checksum`] in any chunking.
pub fn checksum(data: &[u8]) -> u64 {
    let mut c = Checksum::default();
    c.update(data);
    c.finish()
}

/// Streaming FNV-1a (64-bit) over 8-byte little-endian words (fast enough in
/// debug builds), independent of how the input is chunked.
#[derive(Debug, Clone)]
pub struct Checksum {
    hash: u64,
    pending: [u8; 8],
    npending: usize,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            pending: [0; 8],
            npending: 0,
            len: 0,
        }
    }
}

impl Checksum {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while self.npending > 0 && !data.is_empty() {
            self.pending[self.npending] = data[0];
            self.npending += 1;
            data = &data[1..];
            if self.npending == 8 {
                self.word(u64::from_le_bytes(self.pending));
                self.npending = 0;
            }
        }
        if self.npending > 0 {
            return; // `data` is used up and the word is still incomplete
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    fn word(&mut self, v: u64) {
        self.hash = (self.hash ^ v).wrapping_mul(Self::PRIME);
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The checksum of everything fed (length included).
    pub fn finish(&self) -> u64 {
        let mut hash = self.hash;
        for &b in &self.pending[..self.npending] {
            hash = (hash ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        hash ^ self.len
    }
}

// ---------------------------------------------------------------------------
// Validators, conditional requests and version swaps (issue 10).
// ---------------------------------------------------------------------------

/// A resource's validators and how it changes: the server sends `ETag` and/or
/// `Last-Modified` when set, honours `If-Range` (RFC 9110 §13.1.5: a strong
/// comparison; on a mismatch the `Range` is ignored and the whole body is
/// sent with `200`), and answers `304 Not Modified` to a matching
/// `If-None-Match` (weak comparison, `*` matches) or, without it, to an
/// `If-Modified-Since` equal to its `Last-Modified`.
#[derive(Debug, Clone, Default)]
pub struct Versions {
    /// The `ETag` to send (quotes included; `W/"..."` for a weak one).
    pub etag: Option<String>,
    /// The `Last-Modified` to send.
    pub last_modified: Option<String>,
    /// After this many more `GET`s, the resource becomes `next` (the
    /// `GET` that finds the count at 0 is served by `next`).
    pub swap_after: Option<(u64, Box<Resource>)>,
}

impl Versions {
    /// Counts one `GET`; the next version once this one served its count.
    fn take_due(&mut self) -> Option<Resource> {
        match &mut self.swap_after {
            Some((0, _)) => self.swap_after.take().map(|(_, next)| *next),
            Some((n, _)) => {
                *n -= 1;
                None
            }
            None => None,
        }
    }

    fn not_modified(&self, pre: &[(String, String)]) -> Option<Response<Body>> {
        let get = |n: &str| pre.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let hit = match (get("if-none-match"), get("if-modified-since")) {
            (Some(inm), _) => inm
                .split(',')
                .map(str::trim)
                .any(|t| t == "*" || self.etag.as_deref().is_some_and(|e| weak_eq(t, e))),
            (None, Some(ims)) => self.last_modified.as_deref() == Some(ims.trim()),
            (None, None) => false,
        };
        hit.then(|| {
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            let h = resp.headers_mut();
            if let Some(e) = &self.etag {
                h.insert(header::ETAG, hv(e));
            }
            if let Some(d) = &self.last_modified {
                h.insert(header::LAST_MODIFIED, hv(d));
            }
            resp
        })
    }

    /// Whether a `Range` may be honoured given the request's `If-Range`.
    fn if_range_holds(&self, pre: &[(String, String)]) -> bool {
        let Some((_, v)) = pre.iter().find(|(k, _)| k == "if-range") else {
            return true;
        };
        let v = v.trim();
        if v.starts_with('"') {
            // Strong comparison: both strong and identical.
            self.etag.as_deref() == Some(v)
        } else if v.starts_with("W/") {
            false
        } else {
            self.last_modified.as_deref() == Some(v)
        }
    }

    fn add_headers(&self, mut b: hyper::http::response::Builder) -> hyper::http::response::Builder {
        if let Some(e) = &self.etag {
            b = b.header(header::ETAG, hv(e));
        }
        if let Some(d) = &self.last_modified {
            b = b.header(header::LAST_MODIFIED, hv(d));
        }
        b
    }
}

fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn read_preconditions(h: &hyper::HeaderMap) -> Vec<(String, String)> {
    ["if-range", "if-none-match", "if-modified-since"]
        .into_iter()
        .filter_map(|n| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .map(|v| (n.to_owned(), v.to_owned()))
        })
        .collect()
}

impl Resource {
    /// Sends `ETag: tag` (quotes included, e.g. `"\"v1\""`).
    pub fn etag(mut self, tag: &str) -> Self {
        self.faults.versions.etag = Some(tag.to_owned());
        self
    }

    /// Sends `Last-Modified: date`.
    pub fn last_modified(mut self, date: &str) -> Self {
        self.faults.versions.last_modified = Some(date.to_owned());
        self
    }

    /// After `gets` `GET`s of this version, the path serves `next` (its own
    /// body, validators and faults).
    pub fn swap_after(mut self, gets: u64, next: Resource) -> Self {
        self.faults.versions.swap_after = Some((gets, Box::new(next)));
        self
    }
}

impl TestServer {
    /// Swaps the resource at `path` for another version now, keeping its
    /// fault knobs (throttle, plan, ...): `body`, `etag` and `last_modified`
    /// replace the old ones. Requests already answered keep streaming the
    /// old body.
    pub fn swap_version(
        &self,
        path: &str,
        body: Bytes,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let mut resources = lock(&self.shared.resources);
        if let Some(r) = resources.get_mut(&format!("{slash}{path}")) {
            r.body = body;
            r.faults.versions.etag = etag.map(str::to_owned);
            r.faults.versions.last_modified = last_modified.map(str::to_owned);
        }
    }
}

// ---------------------------------------------------------------------------
// Endless / generated streams (bounded storage, live streams, ICY).
// ---------------------------------------------------------------------------

/// Period of the [`GenServer`] byte pattern: a prime, so no chunk or page
/// size divides it and a lost or repeated block shows as a mismatch.
pub const GEN_PERIOD: usize = 1_048_573;

fn gen_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| pseudo_random(GEN_PERIOD, 0x6E6E))
}

/// Fills `buf` with the generated bytes from absolute `offset` on.
pub fn gen_fill(mut offset: u64, buf: &mut [u8]) {
    let table = gen_table();
    let mut done = 0;
    while done < buf.len() {
        let at = (offset % GEN_PERIOD as u64) as usize;
        let n = (GEN_PERIOD - at).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&table[at..at + n]);
        done += n;
        offset += n as u64;
    }
}

/// Whether `buf` holds exactly the generated bytes from `offset` on.
pub fn gen_check(mut offset: u64, buf: &[u8]) -> bool {
    let table = gen_table();
    let mut done = 0;
    while done < buf.len() {
        let at = (offset % GEN_PERIOD as u64) as usize;
        let n = (GEN_PERIOD - at).min(buf.len() - done);
        if buf[done..done + n] != table[at..at + n] {
            return false;
        }
        done += n;
        offset += n as u64;
    }
    true
}

/// The ICY title a [`GenServer`] sends at its `n`-th titled block.
pub fn gen_title(n: u64) -> String {
    format!("Generated Song {n}")
}

/// What a [`GenServer`] serves.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// `Some(len)`: a finite resource (`Content-Length`, `Range` support);
    /// `None`: an endless live stream (chunked, no `Range`).
    pub len: Option<u64>,
    /// ICY: `icy-metaint` when the request has `Icy-MetaData: 1`.
    pub metaint: Option<usize>,
    /// A titled block every this many blocks (others are empty).
    pub title_every: u64,
    /// The first response drops its connection after this many body bytes.
    pub drop_after: Option<u64>,
    /// Body chunk size.
    pub chunk: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            len: None,
            metaint: None,
            title_every: 4,
            drop_after: None,
            chunk: 16 * 1024,
        }
    }
}

/// Counters of a [`GenServer`].
#[derive(Debug, Default)]
pub struct GenStats {
    /// Body bytes the kernel accepted (audio and ICY blocks).
    pub bytes_sent: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// `Range` headers seen, in order.
    pub ranges: Mutex<Vec<Option<String>>>,
}

/// A tiny blocking HTTP/1.1 server (one thread per connection) that streams
/// generated bytes: deterministic from the absolute offset ([`gen_fill`]),
/// endless or finite, with an optional ICY interleave and a dropped first
/// connection. A client that stops reading stalls the writer (TCP flow
/// control): `bytes_sent` stops growing. Every write gives up after
/// [`STALL_LIMIT`]; dropping the server stops it.
pub struct GenServer {
    addr: SocketAddr,
    /// The counters.
    pub stats: Arc<GenStats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl GenServer {
    /// Starts serving `cfg` on `127.0.0.1:0`.
    pub fn start(cfg: GenConfig) -> Self {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(GenStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stats.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let first = Arc::new(AtomicBool::new(true));
            for conn in listener.incoming() {
                if sp.load(Ordering::Acquire) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (cfg, st, sp, first) = (cfg.clone(), st.clone(), sp.clone(), first.clone());
                std::thread::spawn(move || gen_serve(conn, &cfg, &st, &sp, &first));
            }
        });
        Self {
            addr,
            stats,
            stop,
            accept: Some(accept),
        }
    }

    /// The URL of the stream (any path).
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/live", self.addr)).expect("url")
    }

    /// Body bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.stats.bytes_sent.load(Ordering::Acquire)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Acquire)
    }
}

impl Drop for GenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn gen_serve(
    mut conn: TcpStream,
    cfg: &GenConfig,
    stats: &GenStats,
    stop: &AtomicBool,
    first: &AtomicBool,
) {
    let _ = conn.set_write_timeout(Some(STALL_LIMIT));
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&byte[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let range = header("range:");
    let icy = cfg
        .metaint
        .filter(|_| header("icy-metadata:").as_deref() == Some("1"));
    stats.requests.fetch_add(1, Ordering::AcqRel);
    lock(&stats.ranges).push(range.clone());
    let drop_after = if first.swap(false, Ordering::AcqRel) {
        cfg.drop_after
    } else {
        None
    };
    let (status, start, end, extra) = match cfg.len {
        None => (
            "200 OK",
            0,
            None,
            String::from("Transfer-Encoding: chunked\r\n"),
        ),
        Some(len) => {
            let parsed = range.as_deref().and_then(|r| {
                let spec = r.strip_prefix("bytes=")?;
                let (a, b) = spec.split_once('-')?;
                let a: u64 = a.parse().ok()?;
                let b: u64 = if b.is_empty() {
                    len - 1
                } else {
                    b.parse().ok()?
                };
                (a < len).then_some((a, b.min(len - 1)))
            });
            match parsed {
                Some((a, b)) => (
                    "206 Partial Content",
                    a,
                    Some(b + 1),
                    format!(
                        "Content-Range: bytes {a}-{b}/{len}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n",
                        b + 1 - a
                    ),
                ),
                None => (
                    "200 OK",
                    0,
                    Some(len),
                    format!("Content-Length: {len}\r\nAccept-Ranges: bytes\r\n"),
                ),
            }
        }
    };
    let mut resp =
        format!("HTTP/1.1 {status}\r\nContent-Type: audio/mpeg\r\nConnection: close\r\n{extra}");
    if let Some(m) = icy {
        resp.push_str(&format!(
            "icy-metaint: {m}\r\nicy-name: Loopback FM\r\nicy-genre: Test\r\nicy-br: 128\r\nicy-url: http://127.0.0.1/\r\n"
        ));
    }
    resp.push_str("\r\n");
    if conn.write_all(resp.as_bytes()).is_err() {
        return;
    }
    let chunked = cfg.len.is_none();
    let mut pos = start;
    let mut sent = 0u64;
    let mut blocks = 0u64;
    let mut audio_in_block = 0usize;
    let mut buf = vec![0u8; cfg.chunk.max(1)];
    let mut out = Vec::with_capacity(cfg.chunk + 5000);
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let mut n = buf.len();
        if let Some(e) = end {
            if pos >= e {
                break;
            }
            n = n.min((e - pos) as usize);
        }
        gen_fill(pos, &mut buf[..n]);
        pos += n as u64;
        out.clear();
        match icy {
            None => out.extend_from_slice(&buf[..n]),
            Some(m) => {
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let k = (m - audio_in_block).min(rest.len());
                    out.extend_from_slice(&rest[..k]);
                    rest = &rest[k..];
                    audio_in_block += k;
                    if audio_in_block == m {
                        audio_in_block = 0;
                        blocks += 1;
                        if blocks.is_multiple_of(cfg.title_every.max(1)) {
                            let t = format!(
                                "StreamTitle='{}';StreamUrl='http://127.0.0.1/{blocks}';",
                                gen_title(blocks / cfg.title_every.max(1))
                            );
                            let len = t.len().div_ceil(16);
                            out.push(len as u8);
                            out.extend_from_slice(t.as_bytes());
                            out.resize(out.len() + len * 16 - t.len(), 0);
                        } else {
                            out.push(0);
                        }
                    }
                }
            }
        }
        let mut body: &[u8] = &out;
        if let Some(limit) = drop_after {
            let left = limit.saturating_sub(sent) as usize;
            if left < body.len() {
                body = &body[..left];
            }
        }
        let ok = if chunked {
            conn.write_all(format!("{:x}\r\n", body.len()).as_bytes())
                .is_ok()
                && conn.write_all(body).is_ok()
                && conn.write_all(b"\r\n").is_ok()
        } else {
            conn.write_all(body).is_ok()
        };
        if !ok {
            return;
        }
        sent += body.len() as u64;
        stats
            .bytes_sent
            .fetch_add(body.len() as u64, Ordering::AcqRel);
        if drop_after.is_some_and(|l| sent >= l) {
            // An abrupt end: no final chunk, the connection just goes.
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    if chunked {
        let _ = conn.write_all(b"0\r\n\r\n");
    }
}

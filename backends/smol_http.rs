//! [`HttpClient`] of the crate's own for smol: HTTP/1.1 over smol's sockets,
//! TLS through futures-rustls (rustls 0.23, ring), a small keep-alive pool.
//!
//! Why not hyper: hyper 1 depends on tokio (its `sync` feature) in every
//! configuration, and this pair promises no tokio in the tree. The core needs
//! only GET and HEAD with a streamed body, which is a small, well-defined
//! part of HTTP/1.1 (RFC 9112): a request head, `httparse` for the response
//! head, and three body framings (`Content-Length`, chunked, until close).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use url::{Host, Position, Url};

use crate::cancel::lock;
use crate::net::{
    ByteStream, HttpClient, HttpRequest, HttpResponse, NetError, RequestMethod, TransportKind,
};
use crate::rt::BoxFuture;

/// The largest body chunk read at once.
const READ_CHUNK: usize = 256 * 1024;
/// Reads land in zeroed blocks of this size (see `Connection::read_more`).
const READ_BLOCK: usize = 4 * READ_CHUNK;
/// A response head larger than this is rejected.
const MAX_HEAD: usize = 64 * 1024;
/// Response headers parsed at most.
const MAX_HEADERS: usize = 128;
/// Redirects followed at most (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// An [`HttpClient`] for smol, with no tokio anywhere: HTTP/1.1 over
/// `smol::net::TcpStream`, `https` through futures-rustls (rustls 0.23 with
/// the ring provider and the system's trust store, as the reqwest backend).
///
/// - **Aborts for real:** dropping the `send` future or the body closes the
///   connection; only a connection whose body was read to its end goes back
///   to the pool.
/// - **Reuses connections:** at most [`max_idle_per_host`](Self::max_idle_per_host)
///   idle connections per scheme, host and port (default 64), dropped after
///   [`idle_timeout`](Self::idle_timeout) (default 90 s). A request whose
///   reused connection turns out to be closed by the server is sent once
///   more on a fresh one (GET and HEAD are idempotent).
/// - Follows up to 10 redirects (`Location`), dropping `Authorization` and
///   `Cookie` when the origin changes.
/// - No proxy support, no HTTP/2, no decompression (offsets address the
///   bytes on the wire, as the seam requires); a URL's `user:password@` is
///   not turned into an `Authorization` header (set the header yourself).
///
/// Clones share the pool. It needs no particular executor: the sockets are
/// smol's (async-io's reactor), name resolution runs on smol's blocking pool.
///
/// ```
/// use kithara_stream::backends::smol_http::SmolHttpClient;
/// let client = SmolHttpClient::new().unwrap().max_idle_per_host(4);
/// ```
#[derive(Clone)]
pub struct SmolHttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    tls: futures_rustls::TlsConnector,
    pool: Mutex<HashMap<Origin, Vec<Idle>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

impl std::fmt::Debug for SmolHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolHttpClient")
            .field("max_idle_per_host", &self.inner.max_idle_per_host)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl SmolHttpClient {
    /// A client with an empty pool and rustls on ring with the system's
    /// trust store.
    ///
    /// # Errors
    /// [`BackendError::Client`](super::BackendError::Client) when the
    /// system's trust store cannot be loaded.
    pub fn new() -> Result<Self, super::BackendError> {
        let tls = super::tls::client_config(&[b"http/1.1"])
            .map_err(|e| super::BackendError::Client(e.to_string()))?;
        Ok(Self::with_tls_config(Arc::new(tls)))
    }

    /// A client on the application's own rustls configuration (its roots,
    /// its provider). Its ALPN list should offer only `http/1.1`.
    pub fn with_tls_config(config: Arc<rustls::ClientConfig>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tls: futures_rustls::TlsConnector::from(config),
                pool: Mutex::new(HashMap::new()),
                max_idle_per_host: 64,
                idle_timeout: Duration::from_secs(90),
            }),
        }
    }

    /// At most `n` idle connections kept per origin (0 turns keep-alive off).
    /// Call it before cloning or using the client: on a shared client it
    /// starts a new, empty pool.
    #[must_use]
    pub fn max_idle_per_host(self, n: usize) -> Self {
        self.rebuild(|i| i.max_idle_per_host = n)
    }

    /// Idle connections older than `timeout` are closed instead of reused.
    /// Like [`max_idle_per_host`](Self::max_idle_per_host), it starts a new,
    /// empty pool.
    #[must_use]
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|i| i.idle_timeout = timeout)
    }

    fn rebuild(self, set: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            tls: self.inner.tls.clone(),
            pool: Mutex::new(HashMap::new()),
            max_idle_per_host: self.inner.max_idle_per_host,
            idle_timeout: self.inner.idle_timeout,
        };
        set(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// An idle pooled connection to `origin`, if a fresh enough one is left.
    fn checkout(&self, origin: &Origin) -> Option<Connection> {
        let mut pool = lock(&self.inner.pool);
        let idle = pool.get_mut(origin)?;
        let timeout = self.inner.idle_timeout;
        idle.retain(|c| c.since.elapsed() < timeout);
        let conn = idle.pop().map(|c| c.conn);
        if idle.is_empty() {
            pool.remove(origin);
        }
        conn
    }

    fn checkin(&self, origin: Origin, conn: Connection) {
        let max = self.inner.max_idle_per_host;
        let mut pool = lock(&self.inner.pool);
        let idle = pool.entry(origin).or_default();
        if idle.len() < max {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self, origin: &Origin, url: &Url) -> Result<Connection, NetError> {
        let connect_err =
            |e: &io::Error| NetError::transport(TransportKind::Connect, url.clone(), e);
        let tcp = match &origin.host {
            Host::Domain(d) => ::smol::net::TcpStream::connect((d.as_str(), origin.port)).await,
            Host::Ipv4(ip) => ::smol::net::TcpStream::connect((IpAddr::V4(*ip), origin.port)).await,
            Host::Ipv6(ip) => ::smol::net::TcpStream::connect((IpAddr::V6(*ip), origin.port)).await,
        }
        .map_err(|e| connect_err(&e))?;
        // Best effort: a failure only costs latency.
        let _ = tcp.set_nodelay(true);
        let io = if origin.tls {
            let name = match &origin.host {
                Host::Domain(d) => rustls::pki_types::ServerName::try_from(d.clone())
                    .map_err(|e| NetError::transport(TransportKind::Connect, url.clone(), &e))?,
                Host::Ipv4(ip) => IpAddr::V4(*ip).into(),
                Host::Ipv6(ip) => IpAddr::V6(*ip).into(),
            };
            let tls = self
                .inner
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| connect_err(&e))?;
            Io::Tls(Box::new(tls))
        } else {
            Io::Plain(tcp)
        };
        Ok(Connection::new(io))
    }

    /// One request on one connection (pooled if possible), no redirects.
    async fn send_once(&self, request: &HttpRequest) -> Result<HttpResponse, NetError> {
        let url = &request.url;
        let origin = Origin::of(url)?;
        let head = request_head(request);
        if let Some(mut conn) = self.checkout(&origin) {
            // A pooled connection the server has closed fails before any
            // byte of an answer: send again on a fresh one.
            match exchange(&mut conn, &head, url).await {
                Ok(answer) => return Ok(self.respond(conn, answer, request, origin)),
                Err(Stale::No(e)) => return Err(e),
                Err(Stale::Yes(_)) => {}
            }
        }
        let mut conn = self.connect(&origin, url).await?;
        match exchange(&mut conn, &head, url).await {
            Ok(answer) => Ok(self.respond(conn, answer, request, origin)),
            Err(Stale::No(e) | Stale::Yes(e)) => Err(e),
        }
    }

    fn respond(
        &self,
        conn: Connection,
        answer: Answer,
        request: &HttpRequest,
        origin: Origin,
    ) -> HttpResponse {
        let Answer {
            status,
            headers,
            keep_alive,
        } = answer;
        let framing = Framing::of(request.method, status, &headers);
        if framing == Framing::Length(0) {
            // No body (HEAD, 204, 304, or empty): the connection is free now.
            if keep_alive && conn.buf.is_empty() {
                self.checkin(origin, conn);
            }
            return HttpResponse::new(status, headers, Box::pin(futures::stream::empty()));
        }
        let pool =
            (keep_alive && !matches!(framing, Framing::UntilClose)).then(|| (self.clone(), origin));
        let body = Body {
            conn: Some(conn),
            framing,
            url: request.url.clone(),
            pool,
        };
        HttpResponse::new(status, headers, body.into_stream())
    }
}

impl HttpClient for SmolHttpClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let mut request = request;
            for _ in 0..=MAX_REDIRECTS {
                let response = self.send_once(&request).await?;
                let Some(next) = redirect_target(&request.url, &response) else {
                    return Ok(response);
                };
                // The redirect's body is not read: its connection closes.
                drop(response);
                if next.origin() != request.url.origin() {
                    for name in [
                        header::AUTHORIZATION,
                        header::COOKIE,
                        header::PROXY_AUTHORIZATION,
                    ] {
                        request.headers.remove(name);
                    }
                }
                request.url = next;
            }
            Err(NetError::Transport {
                kind: TransportKind::Other,
                url: request.url,
                message: format!("more than {MAX_REDIRECTS} redirects"),
            })
        })
    }
}

/// The `Location` of a redirect response, resolved against `url`.
fn redirect_target(url: &Url, response: &HttpResponse) -> Option<Url> {
    if !matches!(response.status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers.get(header::LOCATION)?.to_str().ok()?;
    let next = url.join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// Where a connection goes: scheme (TLS or not), host, port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    tls: bool,
    host: Host<String>,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Result<Self, NetError> {
        let invalid = |reason: &str| NetError::Transport {
            kind: TransportKind::Request,
            url: url.clone(),
            message: reason.to_owned(),
        };
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(invalid("only http and https URLs are supported")),
        };
        let host = url
            .host()
            .ok_or_else(|| invalid("the URL has no host"))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("the URL has no port"))?;
        Ok(Self { tls, host, port })
    }
}

/// The request head: request line, `Host`, the request's headers.
fn request_head(request: &HttpRequest) -> Vec<u8> {
    let url = &request.url;
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(request.method.to_string().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(url[Position::BeforeHost..Position::AfterPort].as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    for (name, value) in &request.headers {
        if name != header::HOST {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !request.headers.contains_key(header::USER_AGENT) {
        line(b"user-agent", USER_AGENT.as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

const USER_AGENT: &str = concat!("kithara-stream/", env!("CARGO_PKG_VERSION"));

/// A response head as read off a connection.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
}

/// Whether a failed exchange may be retried on a fresh connection.
enum Stale {
    /// Nothing of an answer arrived: a reused connection was closed.
    Yes(NetError),
    /// A real failure.
    No(NetError),
}

/// Writes the request head and reads the response head (skipping `1xx`).
async fn exchange(conn: &mut Connection, head: &[u8], url: &Url) -> Result<Answer, Stale> {
    let request_err = |e: &io::Error| NetError::transport(TransportKind::Request, url.clone(), e);
    let written = async {
        conn.io.write_all(head).await?;
        conn.io.flush().await
    }
    .await;
    if let Err(e) = written {
        return Err(Stale::Yes(request_err(&e)));
    }
    let mut got_any = false;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&conn.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let answer = answer_of(&parsed, url).map_err(Stale::No)?;
                drop(conn.buf.split_to(len));
                if answer.status.is_informational() {
                    continue;
                }
                return Ok(answer);
            }
            Ok(httparse::Status::Partial) if conn.buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(Stale::No(invalid(url, "response head too large")));
            }
            Err(e) => return Err(Stale::No(invalid(url, &format!("bad response head: {e}")))),
        }
        match conn.read_more().await {
            Ok(0) if !got_any => {
                return Err(Stale::Yes(NetError::Transport {
                    kind: TransportKind::Request,
                    url: url.clone(),
                    message: "connection closed before the response".into(),
                }));
            }
            Ok(0) => {
                return Err(Stale::No(NetError::Transport {
                    kind: TransportKind::Request,
                    url: url.clone(),
                    message: "connection closed in the response head".into(),
                }));
            }
            Ok(_) => got_any = true,
            Err(e) if !got_any => return Err(Stale::Yes(request_err(&e))),
            Err(e) => return Err(Stale::No(request_err(&e))),
        }
    }
}

fn invalid(url: &Url, reason: &str) -> NetError {
    NetError::InvalidResponse {
        url: url.clone(),
        reason: reason.to_owned(),
    }
}

fn answer_of(parsed: &httparse::Response<'_, '_>, url: &Url) -> Result<Answer, NetError> {
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| invalid(url, &format!("invalid status code {code}")))?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let close = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"));
    Ok(Answer {
        status,
        headers,
        keep_alive: parsed.version == Some(1) && !close,
    })
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked: in the data of a chunk with this many bytes left, or
    /// (`None`) at a chunk-size line.
    Chunked(Option<u64>),
    /// Until the server closes the connection.
    UntilClose,
}

impl Framing {
    fn of(method: RequestMethod, status: StatusCode, headers: &HeaderMap) -> Self {
        if method == RequestMethod::Head
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Framing::Length(0);
        }
        let chunked = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        if chunked {
            return Framing::Chunked(None);
        }
        if headers.contains_key(header::TRANSFER_ENCODING) {
            return Framing::UntilClose;
        }
        match crate::net::header_u64(headers, header::CONTENT_LENGTH) {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    }
}

/// A response body being read off its connection.
struct Body {
    /// `None` once the body ended (the connection went back to the pool or
    /// was closed).
    conn: Option<Connection>,
    framing: Framing,
    url: Url,
    /// Where a connection whose body ended cleanly goes back to.
    pool: Option<(SmolHttpClient, Origin)>,
}

impl Body {
    fn into_stream(self) -> ByteStream {
        Box::pin(futures::stream::try_unfold(self, |mut body| async move {
            let chunk = body.next_chunk().await?;
            Ok(chunk.map(|c| (c, body)))
        }))
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, NetError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            match self.framing {
                Framing::Length(0) => {
                    self.finish();
                    return Ok(None);
                }
                Framing::Length(left) => {
                    let chunk = self.data(left).await?;
                    self.framing = Framing::Length(left - chunk.len() as u64);
                    return Ok(Some(chunk));
                }
                Framing::Chunked(Some(0)) => {
                    // The CRLF after a chunk's data.
                    if !self.line().await?.is_empty() {
                        self.conn = None;
                        return Err(body_err(&self.url, "chunk data longer than its size"));
                    }
                    self.framing = Framing::Chunked(None);
                }
                Framing::Chunked(Some(left)) => {
                    let chunk = self.data(left).await?;
                    self.framing = Framing::Chunked(Some(left - chunk.len() as u64));
                    return Ok(Some(chunk));
                }
                Framing::Chunked(None) => {
                    let line = self.line().await?;
                    let size = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l.split(';').next())
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                        .ok_or_else(|| body_err(&self.url, "bad chunk size line"))?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        while !self.line().await?.is_empty() {}
                        self.framing = Framing::Length(0);
                    } else {
                        self.framing = Framing::Chunked(Some(size));
                    }
                }
                Framing::UntilClose => {
                    if conn.buf.is_empty() {
                        match conn.read_more().await {
                            Ok(0) => {
                                self.conn = None;
                                return Ok(None);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                self.conn = None;
                                return Err(NetError::transport(
                                    TransportKind::Body,
                                    self.url.clone(),
                                    &e,
                                ));
                            }
                        }
                    }
                    let Some(conn) = self.conn.as_mut() else {
                        return Ok(None);
                    };
                    return Ok(Some(conn.buf.split().freeze()));
                }
            }
        }
    }

    /// Up to `left` body bytes (at least one).
    async fn data(&mut self, left: u64) -> Result<Bytes, NetError> {
        self.fill().await?;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| body_err(&self.url, "body ended"))?;
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(conn.buf.len());
        Ok(conn.buf.split_to(n).freeze())
    }

    /// One CRLF-terminated line (without the CRLF).
    async fn line(&mut self) -> Result<BytesMut, NetError> {
        loop {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| body_err(&self.url, "body ended"))?;
            if let Some(i) = conn.buf.iter().position(|&b| b == b'\n') {
                let mut line = conn.buf.split_to(i + 1);
                line.truncate(i);
                if line.last() == Some(&b'\r') {
                    line.truncate(i - 1);
                }
                return Ok(line);
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(body_err(&self.url, "chunk framing line too long"));
            }
            self.read_or_fail().await?;
        }
    }

    /// At least one byte buffered, or the error of a connection that ended.
    async fn fill(&mut self) -> Result<(), NetError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| body_err(&self.url, "body ended"))?;
        if conn.buf.is_empty() {
            self.read_or_fail().await?;
        }
        Ok(())
    }

    async fn read_or_fail(&mut self) -> Result<(), NetError> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| body_err(&self.url, "body ended"))?;
        match conn.read_more().await {
            Ok(0) => {
                self.conn = None;
                Err(body_err(
                    &self.url,
                    &match self.framing {
                        Framing::Length(left) => {
                            format!("connection closed with {left} body bytes missing")
                        }
                        _ => "connection closed inside a chunked body".to_owned(),
                    },
                ))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.conn = None;
                Err(NetError::transport(
                    TransportKind::Body,
                    self.url.clone(),
                    &e,
                ))
            }
        }
    }

    /// The body ended within its framing: the connection may be reused.
    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((client, origin))) = (conn, self.pool.take()) {
            // Bytes past the body would be read as the next response.
            if conn.buf.is_empty() {
                client.checkin(origin, conn);
            }
        }
    }
}

/// A [`TransportKind::Body`] error with `message`.
fn body_err(url: &Url, message: &str) -> NetError {
    NetError::Transport {
        kind: TransportKind::Body,
        url: url.clone(),
        message: message.to_owned(),
    }
}

/// A pooled connection, as it waits.
struct Idle {
    conn: Connection,
    since: Instant,
}

/// A socket and the bytes read from it but not consumed yet.
struct Connection {
    io: Io,
    /// Received, not consumed. Split off the front of a zeroed block, so
    /// handing bytes on is `split_to(..).freeze()`, no copy.
    buf: BytesMut,
    /// The rest of the current zeroed block, read into next.
    spare: BytesMut,
}

impl Connection {
    fn new(io: Io) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            spare: BytesMut::new(),
        }
    }

    /// Reads what the socket has (up to `READ_CHUNK`) onto the end of
    /// `buf`; `Ok(0)` at the end of the stream.
    ///
    /// Reads go straight into a zeroed block (one copy from the socket; the
    /// block is freed when its last chunk is dropped, and fresh zeroed memory
    /// is only faulted in where a read lands).
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.spare.len() < READ_CHUNK {
            // A new block; the few unconsumed bytes (a partial head or chunk
            // line) move to its front, so `buf` stays contiguous with it.
            let keep = self.buf.len();
            let mut block = BytesMut::zeroed(keep + READ_BLOCK);
            block[..keep].copy_from_slice(&self.buf);
            self.buf = block.split_to(keep);
            self.spare = block;
        }
        let n = self.io.read(&mut self.spare[..READ_CHUNK]).await?;
        let got = self.spare.split_to(n);
        // O(1): `buf` ends where `got` starts.
        self.buf.unsplit(got);
        Ok(n)
    }
}

/// A plain or TLS socket.
enum Io {
    Plain(::smol::net::TcpStream),
    Tls(Box<futures_rustls::client::TlsStream<::smol::net::TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_close(cx),
            Io::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

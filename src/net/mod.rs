//! The HTTP seam: the [`HttpClient`] trait the core fetches with, and the
//! types that cross it.
//!
//! A backend only translates an [`HttpRequest`] into its library's call and
//! the answer into an [`HttpResponse`]: status, headers and a streaming body.
//! It does **not** check statuses, retry, time out, or interpret `Range`;
//! that policy lives once in the core, on top of this trait.
//!
//! Backends for reqwest, the crate's own smol client and surf live in
//! [`crate::backends`]. With the `test-util` feature, `MemoryClient` is an
//! in-memory scripted client (`Range`, HEAD, 404, fault knobs) for tests
//! that need no network.

mod error;
#[cfg(feature = "test-util")]
mod memory;
mod range;
mod retry;
mod validator;

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, StatusCode};
use url::Url;

use crate::rt::BoxFuture;

pub use error::{ERROR_BODY_EXCERPT, NetError, TimeoutKind, TransportKind, parse_url};
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use memory::{MemoryClient, MemoryResource, SeenRequest};
pub use range::{ContentRange, ContentRangeError, RangeSpec};
pub use retry::{DEFAULT_RETRY_BASE, DEFAULT_RETRY_BUDGET, DEFAULT_RETRY_CAP, RetryPolicy};
pub use validator::Validator;

/// A response body: a stream of chunks as they arrive from the network.
///
/// Ends with `None` after the last chunk; a transfer failure is an `Err`
/// item (after which the stream should not be polled again).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, NetError>> + Send>>;

/// The request methods the core uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RequestMethod {
    /// `GET`: headers and body.
    #[default]
    Get,
    /// `HEAD`: headers only.
    Head,
}

impl RequestMethod {
    /// The method as an [`http::Method`].
    pub fn as_http(self) -> http::Method {
        match self {
            RequestMethod::Get => http::Method::GET,
            RequestMethod::Head => http::Method::HEAD,
        }
    }
}

impl fmt::Display for RequestMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestMethod::Get => "GET",
            RequestMethod::Head => "HEAD",
        })
    }
}

/// One request across the seam.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpRequest {
    /// GET or HEAD.
    pub method: RequestMethod,
    /// Absolute http(s) URL.
    pub url: Url,
    /// Headers to send (`Range` among them when a range is wanted).
    pub headers: HeaderMap,
}

impl HttpRequest {
    /// A GET of `url` with no headers.
    pub fn get(url: Url) -> Self {
        Self {
            method: RequestMethod::Get,
            url,
            headers: HeaderMap::new(),
        }
    }

    /// A HEAD of `url` with no headers.
    pub fn head(url: Url) -> Self {
        Self {
            method: RequestMethod::Head,
            url,
            headers: HeaderMap::new(),
        }
    }

    /// Sets the `Range` header to `range`.
    pub fn with_range(mut self, range: RangeSpec) -> Self {
        if let Ok(v) = http::HeaderValue::from_str(&range.to_header_value()) {
            self.headers.insert(http::header::RANGE, v);
        }
        self
    }

    /// Adds every header of `headers` (replacing same-named ones).
    pub fn with_headers(mut self, headers: &HeaderMap) -> Self {
        merge_headers(&mut self.headers, headers);
        self
    }
}

/// Copies every header of `from` into `into`, replacing same-named ones
/// (the last value of a repeated name wins). The one rule every
/// "add these headers" setter of the crate follows.
pub(crate) fn merge_headers(into: &mut HeaderMap, from: &HeaderMap) {
    for (name, value) in from {
        into.insert(name.clone(), value.clone());
    }
}

/// One response across the seam: whatever the server said, unjudged.
#[non_exhaustive]
pub struct HttpResponse {
    /// The status line's code, whatever it is.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, streamed. Empty for HEAD.
    pub body: ByteStream,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl HttpResponse {
    /// A response from its parts.
    pub fn new(status: StatusCode, headers: HeaderMap, body: ByteStream) -> Self {
        Self {
            status,
            headers,
            body,
        }
    }

    /// The `Content-Length` header, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        header_u64(&self.headers, http::header::CONTENT_LENGTH)
    }

    /// The `Content-Type` header, if present and text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// Turns a non-2xx response into [`NetError::Status`], keeping the first
    /// [`ERROR_BODY_EXCERPT`] characters of the body (reads at most 4 KiB of it).
    ///
    /// # Errors
    /// [`NetError::Status`] for any status outside 200–299.
    pub async fn error_for_status(self, url: &Url) -> Result<Self, NetError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let mut body = self.body;
        let mut excerpt = Vec::new();
        while excerpt.len() < 4096 {
            match body.next().await {
                Some(Ok(chunk)) => excerpt.extend_from_slice(&chunk[..chunk.len().min(4096)]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&excerpt);
        Err(NetError::status(
            self.status,
            url.clone(),
            Some(text.trim()),
        ))
    }

    /// Reads the whole body into memory (for small bodies and tests). It
    /// does not compare the body with `Content-Length` (the downloader
    /// does; see [`HttpClient`]).
    ///
    /// # Errors
    /// The first error the body yields.
    pub async fn bytes(self) -> Result<Bytes, NetError> {
        let mut body = self.body;
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }
}

/// A response body read from a blocking reader (the body of a blocking
/// HTTP library's response, ureq's say), for an [`HttpClient`] built on such
/// a library. Each read (up to 64 KiB) runs as one
/// [`Spawn::spawn_blocking`](crate::rt::Spawn::spawn_blocking) job on `spawn`,
/// so give it a `Spawn` with a real blocking pool (every bundled runtime
/// has one; the trait's default would block the polling thread).
///
/// Reads happen only while the stream is polled. Dropping the stream drops
/// the reader as soon as the read in progress (if any) returns, which is how
/// such a library closes its connection. A read error ends the stream with a
/// [`TransportKind::Body`] error for `url`; `Ok(0)` ends it cleanly.
///
/// ```
/// use kithara_stream::net::blocking_body;
/// # let spawn = kithara_stream::rt::ThreadSpawn::new();
/// let url = kithara_stream::url::Url::parse("http://127.0.0.1/a").unwrap();
/// let body = blocking_body(std::io::Cursor::new(vec![7u8; 100_000]), url, spawn);
/// let chunks: Vec<_> = futures::executor::block_on(futures::StreamExt::collect(body));
/// assert_eq!(chunks.iter().map(|c| c.as_ref().unwrap().len()).sum::<usize>(), 100_000);
/// ```
pub fn blocking_body<R, S>(reader: R, url: Url, spawn: S) -> ByteStream
where
    R: std::io::Read + Send + 'static,
    S: crate::rt::Spawn,
{
    const READ: usize = 64 * 1024;
    let state = (reader, vec![0u8; READ], url, spawn);
    Box::pin(futures::stream::try_unfold(
        state,
        |(mut reader, mut buf, url, spawn)| async move {
            let (tx, rx) = futures::channel::oneshot::channel();
            spawn.spawn_blocking(Box::new(move || {
                let read = reader.read(&mut buf);
                // The stream was dropped if this fails: the reader goes too.
                let _ = tx.send((reader, buf, read));
            }));
            let Ok((reader, buf, read)) = rx.await else {
                return Err(NetError::Transport {
                    kind: TransportKind::Body,
                    url,
                    message: "the blocking read was dropped unrun".into(),
                });
            };
            match read {
                Ok(0) => Ok(None),
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    Ok(Some((chunk, (reader, buf, url, spawn))))
                }
                Err(e) => Err(NetError::transport(TransportKind::Body, url, &e)),
            }
        },
    ))
}

/// Reads a header as a decimal `u64`.
pub fn header_u64(headers: &HeaderMap, name: http::header::HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// An HTTP client, as the core needs it.
///
/// Object safe (`Arc<dyn HttpClient>`). Clones of a backend share one
/// connection pool. `send` returns a boxed future, like
/// [`Spawn`](crate::rt::Spawn) does: an implementation needs no macro crate,
/// and the types it names (`http`, `url`, `bytes`) are re-exported at the
/// crate root, so it never has to match their majors by hand.
///
/// # Contract
/// - `send` resolves once the response **headers** are in; the body streams
///   afterwards, chunk by chunk, without being buffered whole.
/// - Any status is a successful `send` (404 is `Ok` with status 404); only a
///   failure to get a response at all is an `Err`, classified as
///   [`NetError::Transport`] or [`NetError::Timeout`].
/// - No retries, no timeouts of its own beyond what the library does by
///   default, no automatic decompression that changes byte offsets
///   (`Range` must address the bytes the body yields).
/// - A body cut short by the connection: a chunked one (only the client
///   sees its framing) ends with a [`TransportKind::Body`] error; one with a
///   `Content-Length` may end with that error or cleanly, since the
///   downloader compares every body with its announced end
///   (`Content-Length`, `Content-Range`) and resumes a short one.
/// - Dropping the response (or its body) mid-stream releases the connection.
/// - Cancel-safe: dropping the `send` future aborts the request.
///
/// # Example: a complete client over a blocking HTTP library
///
/// `blocking_get` stands in for the library's call (ureq's, say); it is run
/// on a thread of its own, and the body is read from it in chunks on that
/// thread too. A blocking library cannot abort a request that is already
/// running, so dropping `send` or the body here only stops the *reading*;
/// the bundled backends abort for real.
///
/// ```
/// use std::io::Read;
/// use futures::channel::{mpsc, oneshot};
/// use futures::{SinkExt, executor::block_on};
/// use kithara_stream::bytes::Bytes;
/// use kithara_stream::http::{HeaderMap, StatusCode};
/// use kithara_stream::net::{HttpClient, HttpRequest, HttpResponse, NetError, TransportKind};
/// use kithara_stream::rt::BoxFuture;
///
/// struct Blocking;
///
/// impl HttpClient for Blocking {
///     fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
///         let url = req.url.clone();
///         let (head_tx, head_rx) = oneshot::channel();
///         let (mut body_tx, body_rx) = mpsc::channel(4);
///         std::thread::spawn(move || {
///             let (status, headers, mut body) = match blocking_get(&req) {
///                 Ok(answer) => answer,
///                 Err(e) => {
///                     let e = NetError::transport(TransportKind::Connect, req.url.clone(), &e);
///                     return drop(head_tx.send(Err(e)));
///                 }
///             };
///             if head_tx.send(Ok((status, headers))).is_err() {
///                 return; // `send` was dropped
///             }
///             let mut buf = vec![0; 64 * 1024];
///             loop {
///                 let chunk = match body.read(&mut buf) {
///                     Ok(0) => return,
///                     Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
///                     Err(e) => Err(NetError::transport(TransportKind::Body, req.url.clone(), &e)),
///                 };
///                 let failed = chunk.is_err();
///                 if block_on(body_tx.send(chunk)).is_err() || failed {
///                     return; // the body was dropped, or failed
///                 }
///             }
///         });
///         Box::pin(async move {
///             let (status, headers) = head_rx.await.map_err(|_| NetError::Transport {
///                 kind: TransportKind::Other,
///                 url,
///                 message: "the request thread died".into(),
///             })??;
///             Ok(HttpResponse::new(status, headers, Box::pin(body_rx)))
///         })
///     }
/// }
///
/// /// The stand-in for the blocking library: 200 with a fixed body.
/// fn blocking_get(_: &HttpRequest) -> std::io::Result<(StatusCode, HeaderMap, impl Read + Send)> {
///     Ok((StatusCode::OK, HeaderMap::new(), &b"hello"[..]))
/// }
///
/// let url = kithara_stream::url::Url::parse("http://127.0.0.1/a").unwrap();
/// let resp = block_on(Blocking.send(HttpRequest::get(url))).unwrap();
/// assert_eq!(resp.status, 200);
/// assert_eq!(&block_on(resp.bytes()).unwrap()[..], b"hello");
/// ```
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and returns the response headers and a streaming body.
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>>;
}

impl<C: HttpClient + ?Sized> HttpClient for std::sync::Arc<C> {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        (**self).send(request)
    }
}

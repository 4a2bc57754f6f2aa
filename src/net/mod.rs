//! The HTTP seam: the [`HttpClient`] trait the core fetches with, and the
//! types that cross it.
//!
//! A backend only translates an [`HttpRequest`] into its library's call and
//! the answer into an [`HttpResponse`]: status, headers and a streaming body.
//! It does **not** check statuses, retry, time out, or interpret `Range`;
//! that policy lives once in the core, on top of this trait.
//!
//! Backends for reqwest and surf live in [`crate::backends`]; an in-memory
//! scripted client for tests can be written in a few lines (see the crate's
//! tests).

mod error;
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

pub use error::{ERROR_BODY_EXCERPT, NetError, TimeoutKind, TransportKind, parse_url};
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

    /// Reads the whole body into memory (for small bodies and tests).
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

/// Reads a header as a decimal `u64`.
pub fn header_u64(headers: &HeaderMap, name: http::header::HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// An HTTP client, as the core needs it.
///
/// Object safe (`Arc<dyn HttpClient>`). Clones of a backend share one
/// connection pool.
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
/// - Dropping the response (or its body) mid-stream releases the connection.
/// - Cancel-safe: dropping the `send` future aborts the request.
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and returns the response headers and a streaming body.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NetError>;
}

#[async_trait::async_trait]
impl<C: HttpClient + ?Sized> HttpClient for std::sync::Arc<C> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NetError> {
        (**self).send(request).await
    }
}

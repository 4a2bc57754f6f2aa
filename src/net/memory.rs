//! [`MemoryClient`]: an in-memory, scriptable [`HttpClient`] for tests that
//! need no network (yours and ours).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use url::Url;

use super::{
    ByteStream, HttpClient, HttpRequest, HttpResponse, NetError, RequestMethod, TransportKind,
};
use crate::cancel::lock;
use crate::rt::BoxFuture;

/// One resource served by a [`MemoryClient`], with fault knobs.
///
/// A body that breaks every 5 bytes is resumed with `Range` by the downloader:
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
/// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
/// use kithara_stream::net::{MemoryClient, MemoryResource};
///
/// struct Idle;
/// impl Peer for Idle {}
/// let client = MemoryClient::new();
/// client.insert_resource("http://127.0.0.1/a", MemoryResource::new(&b"hello world"[..]).fail_after(5));
/// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client.clone())));
/// let peer = dl.register(Arc::new(Idle));
/// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
/// let body = futures::executor::block_on(async { peer.execute(FetchCmd::get(url)).await?.body.collect().await })?;
/// assert_eq!(&body[..], b"hello world");
/// let ranges: Vec<_> = client.requests().into_iter().map(|r| r.range).collect();
/// assert_eq!(ranges, [None, Some("bytes=5-10".into()), Some("bytes=10-10".into())]);
/// # Ok::<(), kithara_stream::net::NetError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MemoryResource {
    /// The full body.
    pub body: Bytes,
    /// `Content-Type` to answer with.
    pub content_type: Option<String>,
    /// Answer every request with this status (and `body` as an error page).
    pub status: Option<StatusCode>,
    /// Body chunk size (default 16 KiB, at least 1).
    pub chunk_size: usize,
    /// Answer `200` with the full body even when a `Range` is asked for.
    pub ignore_range: bool,
    /// Omit `Content-Length` (like a chunked response).
    pub no_length: bool,
    /// After this many body bytes of a response, fail the body with a transport error.
    pub fail_after: Option<u64>,
    /// After this many body bytes of a response, stop yielding forever (never end).
    pub stall_after: Option<u64>,
}

impl MemoryResource {
    /// A resource serving `body` with no faults.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            content_type: None,
            status: None,
            chunk_size: 16 * 1024,
            ignore_range: false,
            no_length: false,
            fail_after: None,
            stall_after: None,
        }
    }

    /// Sets the `Content-Type`.
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = Some(ct.to_owned());
        self
    }

    /// Sets the body chunk size.
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n.max(1);
        self
    }

    /// Answers every request with `status`.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Ignores `Range` (answers 200 with the whole body).
    pub fn ignore_range(mut self) -> Self {
        self.ignore_range = true;
        self
    }

    /// Omits `Content-Length`.
    pub fn no_length(mut self) -> Self {
        self.no_length = true;
        self
    }

    /// Fails each response's body after `n` bytes.
    pub fn fail_after(mut self, n: u64) -> Self {
        self.fail_after = Some(n);
        self
    }

    /// Stalls each response's body after `n` bytes.
    pub fn stall_after(mut self, n: u64) -> Self {
        self.stall_after = Some(n);
        self
    }
}

/// A request as a [`MemoryClient`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method.
    pub method: RequestMethod,
    /// The URL.
    pub url: Url,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    resources: HashMap<String, MemoryResource>,
    seen: Vec<SeenRequest>,
}

/// An [`HttpClient`] that answers from memory: `Range` (206 with
/// `Content-Range`, 416 when unsatisfiable), HEAD, 404 for unknown URLs, and
/// the fault knobs of [`MemoryResource`]. Clones share state.
///
/// ```
/// use kithara_stream::net::{HttpClient, HttpRequest, MemoryClient, RangeSpec};
/// let client = MemoryClient::new();
/// client.insert("http://127.0.0.1/a", &b"hello world"[..]);
/// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
/// let req = HttpRequest::get(url).with_range(RangeSpec::new(6, None).unwrap());
/// let resp = futures::executor::block_on(client.send(req)).unwrap();
/// assert_eq!(resp.status, 206);
/// assert_eq!(&futures::executor::block_on(resp.bytes()).unwrap()[..], b"world");
/// ```
#[derive(Clone, Default)]
pub struct MemoryClient {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryClient").finish_non_exhaustive()
    }
}

impl MemoryClient {
    /// An empty client (every URL answers 404).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `body` at `url` (exact string match on the serialised URL).
    pub fn insert(&self, url: &str, body: impl Into<Bytes>) {
        self.insert_resource(url, MemoryResource::new(body));
    }

    /// Serves `resource` at `url`.
    pub fn insert_resource(&self, url: &str, resource: MemoryResource) {
        let key = Url::parse(url)
            .map(String::from)
            .unwrap_or_else(|_| url.to_owned());
        lock(&self.state).resources.insert(key, resource);
    }

    /// Every request seen so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.state).seen.clone()
    }
}

/// Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` against `len`;
/// `Err(())` when unsatisfiable, `None` when absent or malformed (ignored, per RFC 9110).
fn parse_range(value: Option<&HeaderValue>, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value?.to_str().ok()?.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (first, last) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (f, "") => (f.parse().ok()?, len.saturating_sub(1)),
        (f, l) => {
            let (f, l): (u64, u64) = (f.parse().ok()?, l.parse().ok()?);
            if l < f {
                return None;
            }
            (f, l.min(len.saturating_sub(1)))
        }
    };
    if first >= len {
        return Some(Err(()));
    }
    Some(Ok((first, last)))
}

fn body_stream(url: Url, data: Bytes, res: &MemoryResource) -> ByteStream {
    let chunk = res.chunk_size.max(1);
    let limit = data.len() as u64;
    let fail = res.fail_after.filter(|&n| n < limit);
    let stall = res.stall_after.filter(|&n| n < limit);
    let cut = [fail, stall].into_iter().flatten().min().unwrap_or(limit);
    let cut = usize::try_from(cut).unwrap_or(data.len());
    let head = data.slice(..cut);
    let chunks: Vec<Result<Bytes, NetError>> = (0..head.len())
        .step_by(chunk)
        .map(|i| Ok(head.slice(i..(i + chunk).min(head.len()))))
        .collect();
    let head = futures::stream::iter(chunks);
    if stall.is_some_and(|s| fail.is_none_or(|f| s <= f)) {
        return Box::pin(head.chain(futures::stream::pending()));
    }
    if fail.is_some() {
        let err = NetError::Transport {
            kind: TransportKind::Body,
            url,
            message: "connection reset (scripted)".into(),
        };
        return Box::pin(head.chain(futures::stream::iter([Err(err)])));
    }
    Box::pin(head)
}

impl HttpClient for MemoryClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let range_header = request.headers.get(header::RANGE).cloned();
            let res = {
                let mut st = lock(&self.state);
                st.seen.push(SeenRequest {
                    method: request.method,
                    url: request.url.clone(),
                    range: range_header
                        .as_ref()
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                });
                st.resources.get(request.url.as_str()).cloned()
            };
            let url = request.url;
            let mut headers = HeaderMap::new();
            let empty = || -> ByteStream { Box::pin(futures::stream::empty()) };
            let Some(res) = res else {
                let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from_static(
                    b"not found",
                ))]));
                return Ok(HttpResponse::new(StatusCode::NOT_FOUND, headers, body));
            };
            if let Some(ct) = res
                .content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                headers.insert(header::CONTENT_TYPE, ct);
            }
            let len = res.body.len() as u64;
            let (status, data) = if let Some(status) = res.status {
                (status, res.body.clone())
            } else if res.ignore_range {
                (StatusCode::OK, res.body.clone())
            } else {
                match parse_range(range_header.as_ref(), len) {
                    None => (StatusCode::OK, res.body.clone()),
                    Some(Err(())) => {
                        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                            headers.insert(header::CONTENT_RANGE, v);
                        }
                        return Ok(HttpResponse::new(
                            StatusCode::RANGE_NOT_SATISFIABLE,
                            headers,
                            empty(),
                        ));
                    }
                    Some(Ok((first, last))) => {
                        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}"))
                        {
                            headers.insert(header::CONTENT_RANGE, v);
                        }
                        // Bounded by `len`, which came from a usize.
                        let (f, l) = (first as usize, last as usize);
                        (StatusCode::PARTIAL_CONTENT, res.body.slice(f..=l))
                    }
                }
            };
            if !res.no_length {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data.len() as u64));
            }
            let body = match request.method {
                RequestMethod::Head => empty(),
                RequestMethod::Get => body_stream(url, data, &res),
            };
            Ok(HttpResponse::new(status, headers, body))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::RangeSpec;
    use futures::executor::block_on;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn ranges_and_errors() {
        let c = MemoryClient::new();
        c.insert_resource(
            "http://127.0.0.1/x",
            MemoryResource::new(&b"0123456789"[..]).chunk_size(3),
        );
        let get = |r: Option<RangeSpec>| {
            let mut req = HttpRequest::get(url("http://127.0.0.1/x"));
            if let Some(r) = r {
                req = req.with_range(r);
            }
            block_on(c.send(req)).unwrap()
        };
        let full = get(None);
        assert_eq!(full.status, 200);
        assert_eq!(full.content_length(), Some(10));
        assert_eq!(&block_on(full.bytes()).unwrap()[..], b"0123456789");
        let part = get(Some(RangeSpec::new(2, Some(4)).unwrap()));
        assert_eq!(part.status, 206);
        assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 2-4/10");
        assert_eq!(&block_on(part.bytes()).unwrap()[..], b"234");
        assert_eq!(get(Some(RangeSpec::from_start(10))).status, 416);
        let missing = block_on(c.send(HttpRequest::get(url("http://127.0.0.1/nope")))).unwrap();
        let err = block_on(missing.error_for_status(&url("http://127.0.0.1/nope"))).unwrap_err();
        assert!(matches!(err, NetError::Status { status, .. } if status == 404));
        assert_eq!(c.requests().len(), 4);
    }

    #[test]
    fn fail_after_yields_error_after_exact_bytes() {
        let c = MemoryClient::new();
        c.insert_resource(
            "http://127.0.0.1/f",
            MemoryResource::new(vec![7u8; 100])
                .chunk_size(7)
                .fail_after(50),
        );
        let resp = block_on(c.send(HttpRequest::get(url("http://127.0.0.1/f")))).unwrap();
        let items: Vec<_> = block_on(resp.body.collect::<Vec<_>>());
        let ok: usize = items
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(Bytes::len)
            .sum();
        assert_eq!(ok, 50);
        assert!(matches!(items.last(), Some(Err(e)) if e.is_retryable()));
    }
}

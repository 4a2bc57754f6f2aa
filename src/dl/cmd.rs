//! [`FetchCmd`]: one request, with its callbacks; [`FetchResponse`].

use std::fmt;
use std::io;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use url::Url;

use super::{
    BodyStream, CheckFn, OnCompleteFn, OnResponseFn, RequestPriority, ResponseInfo, WriterFn,
};
use crate::cancel::CancelToken;
use crate::net::{NetError, RangeSpec, RequestMethod};
use crate::rt::BoxFuture;

/// One request for the [`Downloader`](super::Downloader), built with
/// [`get`](Self::get) / [`head`](Self::head) and the chained setters.
///
/// Returned in batches by [`Peer::poll_next`](super::Peer::poll_next)
/// (*streaming* commands: the body goes to [`writer`](Self::writer),
/// completion to [`on_complete`](Self::on_complete)) or passed to
/// [`PeerHandle::execute`](super::PeerHandle::execute) /
/// [`batch`](super::PeerHandle::batch) (*imperative* commands: the response
/// comes back to the caller; the callbacks are not used and are dropped
/// unrun).
///
/// ```
/// use kithara_stream::dl::{FetchCmd, RequestPriority, reject_html_response};
/// use kithara_stream::net::RangeSpec;
/// let url = url::Url::parse("http://127.0.0.1:8080/a.mp3").unwrap();
/// let cmd = FetchCmd::get(url)
///     .range(RangeSpec::from_start(1024))
///     .check(reject_html_response)
///     .priority(RequestPriority::High)
///     .writer(|chunk: &[u8]| { let _ = chunk; Ok(()) })
///     .on_complete(|bytes, _headers, err| { let _ = (bytes, err); });
/// assert_eq!(format!("{cmd:?}"), "FetchCmd(GET http://127.0.0.1:8080/a.mp3 bytes=1024-)");
/// ```
#[non_exhaustive]
pub struct FetchCmd {
    /// GET or HEAD.
    pub method: RequestMethod,
    /// Absolute URL.
    pub url: Url,
    /// Byte range to ask for (`Range` header), if any.
    pub range: Option<RangeSpec>,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// Command priority; `None` means the path's default (streaming `Low`,
    /// imperative `High`).
    pub priority: Option<RequestPriority>,
    /// The epoch token: cancelling it cancels this command, queued or in flight.
    pub cancel: Option<CancelToken>,
    /// Judges every answer (the first and each resume's) before any of its
    /// body bytes is read; see [`check`](Self::check).
    pub check: Option<CheckFn>,
    /// Receives each body chunk in order (streaming commands).
    pub writer: Option<WriterFn>,
    /// Called once with the response headers, before the first body byte
    /// (streaming commands).
    pub on_response: Option<OnResponseFn>,
    /// Called exactly once when the command ends, whatever the outcome
    /// (streaming commands).
    pub on_complete: Option<OnCompleteFn>,
    /// Backpressure: asked before each chunk goes to the writer (streaming
    /// commands); see [`ready`](Self::ready).
    pub ready: Option<ReadyFn>,
    /// Asked before each resume after a failure mid-body; see
    /// [`resume_if`](Self::resume_if). `None`: always resume.
    pub resume_if: Option<ResumeFn>,
}

/// A command's resume gate (see [`FetchCmd::resume_if`]): `true` lets the
/// downloader resume the body with `Range`, `false` ends the command with
/// the failure instead.
pub type ResumeFn = Box<dyn FnMut() -> bool + Send>;

/// A streaming command's backpressure hook (see [`FetchCmd::ready`]): given
/// the length of the chunk about to be written, `None` means "write it now",
/// `Some(future)` means "write it once the future completes".
pub type ReadyFn = Box<dyn FnMut(usize) -> Option<BoxFuture<'static, ()>> + Send>;

impl FetchCmd {
    /// A GET of `url`.
    pub fn get(url: Url) -> Self {
        Self::new(RequestMethod::Get, url)
    }

    /// A HEAD of `url`.
    pub fn head(url: Url) -> Self {
        Self::new(RequestMethod::Head, url)
    }

    /// A command with `method` and `url` and nothing else set.
    pub fn new(method: RequestMethod, url: Url) -> Self {
        Self {
            method,
            url,
            range: None,
            headers: HeaderMap::new(),
            priority: None,
            cancel: None,
            check: None,
            writer: None,
            on_response: None,
            on_complete: None,
            ready: None,
            resume_if: None,
        }
    }

    /// Asks for `range` only.
    pub fn range(mut self, range: RangeSpec) -> Self {
        self.range = Some(range);
        self
    }

    /// Adds (replaces) one request header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Adds (replaces) every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        crate::net::merge_headers(&mut self.headers, &headers);
        self
    }

    /// Sets the command priority (see [`RequestPriority`]).
    pub fn priority(mut self, priority: RequestPriority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the epoch token: cancelling it cancels this command.
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets the answer check: the downloader calls it with each answer of
    /// this command (the first and, after a failure mid-body, each resume's:
    /// see [`ResponseInfo::resumed_at`]) once its own checks passed and
    /// before any body byte of that answer is read. An `Err` counts as a
    /// failed attempt: one that [is retryable](NetError::is_retryable) is
    /// retried under the [retry policy](super::DownloaderConfig::retry),
    /// any other fails the command with that error (the streaming
    /// command's `on_complete` or the imperative caller gets it). It runs
    /// on the executor's thread: keep it quick.
    ///
    /// [`reject_html_response`](super::reject_html_response) is one; a
    /// closure can add its own rules:
    ///
    /// ```
    /// use kithara_stream::dl::{FetchCmd, reject_html_response};
    /// use kithara_stream::net::NetError;
    /// let url = url::Url::parse("http://127.0.0.1:8080/a.mp3").unwrap();
    /// let cmd = FetchCmd::get(url).check(|answer| {
    ///     reject_html_response(answer)?;
    ///     // Only whole resources of at most 1 GiB.
    ///     match answer.content_range.and_then(|cr| cr.complete_length()) {
    ///         Some(len) if len > 1 << 30 => Err(NetError::InvalidResponse {
    ///             url: answer.url.clone(),
    ///             reason: format!("{len} bytes is too long"),
    ///         }),
    ///         _ => Ok(()),
    ///     }
    /// });
    /// # drop(cmd);
    /// ```
    pub fn check(
        mut self,
        check: impl FnMut(&ResponseInfo<'_>) -> Result<(), NetError> + Send + 'static,
    ) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    /// Sets the body consumer. An `Err` from it aborts the fetch with
    /// [`NetError::Writer`].
    pub fn writer(self, mut writer: impl FnMut(&[u8]) -> io::Result<()> + Send + 'static) -> Self {
        self.writer_bytes(move |chunk| writer(&chunk))
    }

    /// Sets the body consumer, which receives each chunk as the HTTP
    /// client's own [`Bytes`](bytes::Bytes): keeping or forwarding it costs
    /// no copy.
    /// An `Err` from it aborts the fetch with [`NetError::Writer`].
    pub fn writer_bytes(
        mut self,
        writer: impl FnMut(bytes::Bytes) -> io::Result<()> + Send + 'static,
    ) -> Self {
        self.writer = Some(Box::new(writer));
        self
    }

    /// Sets the backpressure hook: before each body chunk is handed to the
    /// [`writer`](Self::writer), `ready(chunk_len)` is asked whether it may
    /// go; a returned future is awaited first. While it waits the body is
    /// not polled, so TCP flow control holds the server, the inactivity
    /// timeout does not run (the wait is the consumer's, not the server's),
    /// and cancelling the command ends the wait at once. A bounded storage's
    /// writer uses it to wait for its reader
    /// ([`StorageResource::writable`](crate::storage::StorageResource::writable)).
    ///
    /// ```
    /// use kithara_stream::dl::FetchCmd;
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let storage = StorageResource::bounded(4 << 20, 256 << 10, CancelToken::new());
    /// let (s1, s2) = (storage.clone(), storage);
    /// let mut offset = 0u64;
    /// let mut at = 0u64;
    /// let url = url::Url::parse("http://127.0.0.1:8000/live").unwrap();
    /// let cmd = FetchCmd::get(url)
    ///     .ready(move |len| {
    ///         let (o, _) = (offset, offset += len as u64);
    ///         (!s1.is_writable(o)).then(|| Box::pin(s1.writable(o)) as _)
    ///     })
    ///     .writer(move |chunk| {
    ///         s2.write_at(at, chunk).map_err(std::io::Error::other)?;
    ///         at += chunk.len() as u64;
    ///         Ok(())
    ///     });
    /// # drop(cmd);
    /// ```
    pub fn ready(
        mut self,
        ready: impl FnMut(usize) -> Option<BoxFuture<'static, ()>> + Send + 'static,
    ) -> Self {
        self.ready = Some(Box::new(ready));
        self
    }

    /// Sets the resume gate: after a retryable failure mid-body the
    /// downloader asks `resume()` before it resumes the body with `Range`
    /// (and `If-Range`); `false` ends the command with that failure at once,
    /// so its owner can continue another way. A live stream's peer says
    /// `false`: a station answers a `Range` with a new stream, not the
    /// rest of the old one, so the attempt would only cost a request. It
    /// runs on the executor's thread: keep it quick.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use kithara_stream::dl::FetchCmd;
    /// let live = Arc::new(AtomicBool::new(false));
    /// let seen = live.clone();
    /// let url = url::Url::parse("http://127.0.0.1:8000/radio").unwrap();
    /// // Decided by the first answer, asked at each failure.
    /// let cmd = FetchCmd::get(url).resume_if(move || !seen.load(Ordering::Relaxed));
    /// # drop(cmd);
    /// ```
    pub fn resume_if(mut self, resume: impl FnMut() -> bool + Send + 'static) -> Self {
        self.resume_if = Some(Box::new(resume));
        self
    }

    /// Sets the headers callback.
    pub fn on_response(mut self, f: impl FnOnce(&HeaderMap) + Send + 'static) -> Self {
        self.on_response = Some(Box::new(f));
        self
    }

    /// Sets the completion callback.
    pub fn on_complete(
        mut self,
        f: impl FnOnce(u64, Option<&HeaderMap>, Option<&NetError>) + Send + 'static,
    ) -> Self {
        self.on_complete = Some(Box::new(f));
        self
    }
}

impl fmt::Debug for FetchCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FetchCmd({} {}", self.method, self.url)?;
        if let Some(r) = &self.range {
            write!(f, " {r}")?;
        }
        f.write_str(")")
    }
}

/// The answer to an imperative command: status, headers and the body.
#[non_exhaustive]
pub struct FetchResponse {
    /// The (2xx) status of the first response.
    pub status: StatusCode,
    /// The response headers (of the first response when the body was resumed).
    pub headers: HeaderMap,
    /// The body. See [`PeerHandle::execute`](super::PeerHandle::execute) for
    /// how it counts against `max_concurrent`.
    pub body: BodyStream,
}

impl fmt::Debug for FetchResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl FetchResponse {
    /// A response from its parts (for tests and custom peers).
    pub fn new(status: StatusCode, headers: HeaderMap, body: BodyStream) -> Self {
        Self {
            status,
            headers,
            body,
        }
    }
}

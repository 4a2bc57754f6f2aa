//! [`NetError`]: everything that can go wrong between a request and its last byte.

use http::StatusCode;
use url::Url;

/// What kind of transport failure happened; decides retryability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Could not connect (refused, DNS, TLS handshake).
    Connect,
    /// The connection failed while the request was being sent or the headers awaited.
    Request,
    /// The connection failed while the body was streaming (reset, truncated, decode error).
    Body,
    /// Anything the backend could not classify (bad request construction,
    /// redirect loop, ...). Not retried.
    Other,
}

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// No response headers within the request timeout.
    Headers,
    /// No body bytes for the inactivity timeout.
    Inactivity,
    /// The backend reported a timeout of its own.
    Backend,
}

/// A network error. Cheap to clone (events and fan-out need copies).
///
/// Display strings are stable and name what went wrong and where.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetError {
    /// The connection or the transfer failed.
    #[error("transport error ({kind:?}) for {url}: {message}")]
    Transport {
        /// Where the failure happened.
        kind: TransportKind,
        /// The request's URL.
        url: Url,
        /// The backend's error message, with its source chain joined by ": ".
        message: String,
    },
    /// A timeout fired.
    #[error("timed out ({kind:?}) for {url}")]
    Timeout {
        /// Which timeout.
        kind: TimeoutKind,
        /// The request's URL.
        url: Url,
    },
    /// The server answered with a status the request cannot use.
    #[error("HTTP {status} for {url}{}", body.as_deref().map(|b| format!(": {b:?}")).unwrap_or_default())]
    Status {
        /// The status code.
        status: StatusCode,
        /// The request's URL.
        url: Url,
        /// The start of the response body (at most [`ERROR_BODY_EXCERPT`] characters), if any.
        body: Option<String>,
    },
    /// The operation was cancelled through a [`CancelToken`](crate::cancel::CancelToken).
    #[error("cancelled")]
    Cancelled,
    /// The response's `Content-Type` is not acceptable (e.g. an HTML error page).
    #[error("invalid content type {content_type:?} for {url}")]
    InvalidContentType {
        /// The offending `Content-Type` value.
        content_type: String,
        /// The request's URL.
        url: Url,
    },
    /// The response is malformed or contradicts the request (bad
    /// `Content-Range`, wrong length, body shorter than announced, ...).
    #[error("invalid response for {url}: {reason}")]
    InvalidResponse {
        /// The request's URL.
        url: Url,
        /// What is wrong with it.
        reason: String,
    },
    /// A string could not be parsed as an absolute URL.
    #[error("invalid URL {input:?}: {reason}")]
    InvalidUrl {
        /// The input as given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A byte range is empty or reversed.
    #[error("invalid byte range {start}..={end}")]
    InvalidRange {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// The resource changed on the server after some of its bytes were
    /// read: a request for a part of it (carrying `If-Range` with `old`) was
    /// answered with another version (`new`: its validator, if it sent one).
    /// The bytes read so far belong to the old version; nothing of the new
    /// one was mixed in. Not retryable: open the stream again.
    #[error("resource changed for {url}: {old} before, {} now", new.as_ref().map_or_else(|| "no validator".to_owned(), ToString::to_string))]
    ResourceChanged {
        /// The request's URL.
        url: Url,
        /// The validator of the version whose bytes were stored (boxed to
        /// keep `NetError` small).
        old: Box<crate::net::Validator>,
        /// The validator of the version the server sends now, if any.
        new: Option<Box<crate::net::Validator>>,
    },
    /// The consumer of the body (a writer closure) failed.
    #[error("writer failed: {0}")]
    Writer(String),
}

/// How many characters of an error response body [`NetError::Status`] keeps.
pub const ERROR_BODY_EXCERPT: usize = 200;

impl NetError {
    /// Whether retrying the same request may succeed: transport failures
    /// (except [`TransportKind::Other`]), timeouts, and statuses 5xx, 408 and
    /// 429. Decided on typed fields only.
    ///
    /// ```
    /// use kithara_stream::net::NetError;
    /// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
    /// let e = |s: u16| NetError::Status { status: s.try_into().unwrap(), url: url.clone(), body: None };
    /// assert!(e(503).is_retryable() && e(429).is_retryable() && e(408).is_retryable());
    /// assert!(!e(404).is_retryable() && !NetError::Cancelled.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            NetError::Transport { kind, .. } => *kind != TransportKind::Other,
            NetError::Timeout { .. } => true,
            NetError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// Whether this is [`NetError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, NetError::Cancelled)
    }

    /// A [`NetError::Status`] with the body cut to [`ERROR_BODY_EXCERPT`] characters.
    pub fn status(status: StatusCode, url: Url, body: Option<&str>) -> Self {
        let body = body.filter(|b| !b.is_empty()).map(|b| {
            let total = b.chars().count();
            if total <= ERROR_BODY_EXCERPT {
                b.to_owned()
            } else {
                let head: String = b.chars().take(ERROR_BODY_EXCERPT).collect();
                format!("{head}…(truncated, {total} chars total)")
            }
        });
        NetError::Status { status, url, body }
    }

    /// A [`NetError::Transport`] whose message is `err` and its source chain.
    pub fn transport(
        kind: TransportKind,
        url: Url,
        err: &(dyn std::error::Error + 'static),
    ) -> Self {
        let mut message = err.to_string();
        let mut src = err.source();
        while let Some(e) = src {
            let text = e.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            src = e.source();
        }
        NetError::Transport { kind, url, message }
    }
}

/// Parses an absolute `http`/`https` URL, with a typed error.
///
/// ```
/// assert!(kithara_stream::net::parse_url("http://127.0.0.1:8080/a.mp3").is_ok());
/// assert!(kithara_stream::net::parse_url("not a url").is_err());
/// assert!(kithara_stream::net::parse_url("ftp://127.0.0.1/x").is_err());
/// ```
pub fn parse_url(input: &str) -> Result<Url, NetError> {
    let url = Url::parse(input).map_err(|e| NetError::InvalidUrl {
        input: input.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(NetError::InvalidUrl {
            input: input.to_owned(),
            reason: format!("unsupported scheme {other:?} (expected http or https)"),
        }),
    }
}

//! A command's answer check: what the downloader knows of an answer
//! ([`ResponseInfo`]) and the hook that may reject it ([`CheckFn`]).

use http::{HeaderMap, StatusCode};
use url::Url;

use crate::net::{ContentRange, NetError, RangeSpec};

/// What the downloader knows of one answer when it asks the command's
/// [`check`](super::FetchCmd::check), after its own checks passed: the
/// status is 2xx and a `206` carries a well-formed `Content-Range` that
/// starts at the asked first byte (a resume's also ends where the body
/// ends and names the same length).
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode, header::CONTENT_TYPE};
/// use kithara_stream::dl::{ResponseInfo, reject_html_response};
/// let url = url::Url::parse("http://127.0.0.1/a.mp3").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
/// let answer = ResponseInfo::new(&url, StatusCode::OK, &headers);
/// assert!(answer.resumed_at.is_none() && answer.content_range.is_none());
/// assert!(reject_html_response(&answer).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ResponseInfo<'a> {
    /// The requested URL.
    pub url: &'a Url,
    /// The answer's (2xx) status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: &'a HeaderMap,
    /// The range this request asked for; `None`: the whole resource.
    pub requested: Option<RangeSpec>,
    /// The parsed `Content-Range` of a `206`; `None` for any other status.
    pub content_range: Option<ContentRange>,
    /// `Some(offset)` when this answer resumes the body at `offset` after a
    /// failure mid-body; `None` for the command's first answer.
    pub resumed_at: Option<u64>,
}

impl<'a> ResponseInfo<'a> {
    /// A first answer with `status` and `headers` to a request for the
    /// whole of `url` (set the public fields for the rest), e.g. to test a
    /// check.
    pub fn new(url: &'a Url, status: StatusCode, headers: &'a HeaderMap) -> Self {
        Self {
            url,
            status,
            headers,
            requested: None,
            content_range: None,
            resumed_at: None,
        }
    }
}

/// A command's answer check (see [`FetchCmd::check`](super::FetchCmd::check)):
/// run on every answer of the command, its first and each resume's, before
/// any body byte of that answer is read. An `Err` counts as a failed
/// attempt: retried if it [is retryable](NetError::is_retryable), else the
/// command fails with it.
pub type CheckFn = Box<dyn FnMut(&ResponseInfo<'_>) -> Result<(), NetError> + Send>;

/// A check (for [`FetchCmd::check`](super::FetchCmd::check)) that rejects
/// HTML pages (a captive portal or an error page served with status 200):
/// a `Content-Type` starting with `text/html` (ASCII case-insensitive)
/// gives [`NetError::InvalidContentType`], which is not retried.
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode, header::CONTENT_TYPE};
/// use kithara_stream::dl::{ResponseInfo, reject_html_response};
/// let url = url::Url::parse("http://127.0.0.1/a.mp3").unwrap();
/// let mut h = HeaderMap::new();
/// assert!(reject_html_response(&ResponseInfo::new(&url, StatusCode::OK, &h)).is_ok());
/// h.insert(CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
/// assert!(reject_html_response(&ResponseInfo::new(&url, StatusCode::OK, &h)).is_ok());
/// h.insert(CONTENT_TYPE, HeaderValue::from_static("Text/HTML; charset=utf-8"));
/// assert!(reject_html_response(&ResponseInfo::new(&url, StatusCode::OK, &h)).is_err());
/// ```
///
/// # Errors
/// [`NetError::InvalidContentType`] for an HTML content type.
pub fn reject_html_response(answer: &ResponseInfo<'_>) -> Result<(), NetError> {
    let Some(ct) = answer.headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(ct.as_bytes());
    let is_html = text
        .trim_start()
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("text/html"));
    if is_html {
        return Err(NetError::InvalidContentType {
            content_type: text.into_owned(),
            url: answer.url.clone(),
        });
    }
    Ok(())
}

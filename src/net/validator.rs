//! [`Validator`]: what identifies one version of a resource (RFC 9110 §8.8).

use std::fmt;

use http::{HeaderMap, HeaderValue, header};

/// The validator kept with a resource's bytes: a strong `ETag`, else a
/// `Last-Modified` date (RFC 9110 §8.8, §13.1.5). A weak `ETag` (`W/"..."`)
/// is never chosen: `If-Range` requires a strong comparison.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use kithara_stream::net::Validator;
///
/// let mut h = HeaderMap::new();
/// h.insert(header::ETAG, HeaderValue::from_static("W/\"weak\""));
/// assert_eq!(Validator::from_headers(&h), None);
/// h.insert(header::LAST_MODIFIED, HeaderValue::from_static("Mon, 30 Nov 2026 10:00:00 GMT"));
/// assert!(matches!(Validator::from_headers(&h), Some(Validator::LastModified(_))));
/// h.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
/// assert_eq!(Validator::from_headers(&h), Some(Validator::ETag("\"v1\"".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Validator {
    /// A strong entity tag, quotes included (`"abc"`).
    ETag(String),
    /// An HTTP date, as the server sent it.
    LastModified(String),
}

impl Validator {
    /// The validator of a response: its `ETag` if present and strong, else
    /// its `Last-Modified`; `None` when it has neither (or only a weak tag,
    /// or values that are not visible ASCII).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        if let Some(tag) = text(header::ETAG).filter(|t| is_strong_etag(t)) {
            return Some(Self::ETag(tag.to_owned()));
        }
        text(header::LAST_MODIFIED).map(|d| Self::LastModified(d.to_owned()))
    }

    /// The value as sent on the wire (for `If-Range`, `If-None-Match` or
    /// `If-Modified-Since`); `None` if it cannot be a header value.
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(self.as_str()).ok()
    }

    /// The tag or the date.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ETag(t) | Self::LastModified(t) => t,
        }
    }

    /// The conditional request header that asks "send it only if it changed":
    /// `If-None-Match` for a tag, `If-Modified-Since` for a date.
    pub fn if_changed_header(&self) -> header::HeaderName {
        match self {
            Self::ETag(_) => header::IF_NONE_MATCH,
            Self::LastModified(_) => header::IF_MODIFIED_SINCE,
        }
    }

    /// Whether a response with `headers` is the same version (strong
    /// comparison of the same kind of validator). A response without a
    /// comparable validator is not proof of the same version: `false`.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        match (self, Self::from_headers(headers)) {
            (Self::ETag(a), Some(Self::ETag(b))) => *a == b,
            (Self::LastModified(a), _) => headers
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|b| a == b.trim()),
            _ => false,
        }
    }
}

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ETag(t) => write!(f, "ETag {t}"),
            Self::LastModified(d) => write!(f, "Last-Modified {d}"),
        }
    }
}

/// `"..."` with no `W/` prefix (RFC 9110 §8.8.3).
fn is_strong_etag(tag: &str) -> bool {
    tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(n.clone(), HeaderValue::from_static(v));
        }
        h
    }

    const DATE: &str = "Mon, 30 Nov 2026 10:00:00 GMT";

    #[test]
    fn strong_etag_wins_over_last_modified() {
        let h = headers(&[(header::ETAG, "\"a\""), (header::LAST_MODIFIED, DATE)]);
        assert_eq!(
            Validator::from_headers(&h),
            Some(Validator::ETag("\"a\"".into()))
        );
    }

    #[test]
    fn weak_or_malformed_etag_falls_back_to_last_modified() {
        for tag in ["W/\"a\"", "a", "\"", ""] {
            let h = headers(&[(header::ETAG, tag), (header::LAST_MODIFIED, DATE)]);
            assert_eq!(
                Validator::from_headers(&h),
                Some(Validator::LastModified(DATE.into())),
                "{tag:?}"
            );
            let h = headers(&[(header::ETAG, tag)]);
            assert_eq!(Validator::from_headers(&h), None, "{tag:?}");
        }
        assert_eq!(Validator::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn matching_is_strong_and_of_the_same_kind() {
        let v = Validator::ETag("\"a\"".into());
        assert!(v.matches(&headers(&[(header::ETAG, "\"a\"")])));
        assert!(!v.matches(&headers(&[(header::ETAG, "W/\"a\"")])));
        assert!(!v.matches(&headers(&[(header::ETAG, "\"b\"")])));
        assert!(!v.matches(&headers(&[(header::LAST_MODIFIED, DATE)])));
        let d = Validator::LastModified(DATE.into());
        assert!(d.matches(&headers(&[(header::LAST_MODIFIED, DATE)])));
        // A date still matches when the server now also sends a tag.
        assert!(d.matches(&headers(&[
            (header::ETAG, "\"x\""),
            (header::LAST_MODIFIED, DATE)
        ])));
        assert!(!d.matches(&HeaderMap::new()));
        assert_eq!(v.if_changed_header(), header::IF_NONE_MATCH);
        assert_eq!(d.if_changed_header(), header::IF_MODIFIED_SINCE);
        assert_eq!(v.to_string(), "ETag \"a\"");
        assert_eq!(d.header_value().unwrap(), DATE);
    }
}

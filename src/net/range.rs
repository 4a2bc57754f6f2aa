//! Byte ranges on the wire: [`RangeSpec`] (the `Range` request header) and
//! [`ContentRange`] (the `Content-Range` response header).

use std::fmt;
use std::ops::Range;

use super::NetError;

/// A single HTTP byte range with an **inclusive** end, as the `Range` header
/// spells it: `bytes=start-end` or open-ended `bytes=start-`.
///
/// Reversed ranges cannot be constructed.
///
/// ```
/// use kithara_stream::net::RangeSpec;
/// assert_eq!(RangeSpec::new(0, Some(99)).unwrap().to_header_value(), "bytes=0-99");
/// assert_eq!(RangeSpec::from_start(100).to_header_value(), "bytes=100-");
/// assert!(RangeSpec::new(20, Some(10)).is_err());
/// assert_eq!(RangeSpec::from_range(10..20).unwrap(), RangeSpec::new(10, Some(19)).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RangeSpec {
    start: u64,
    end: Option<u64>,
}

impl RangeSpec {
    /// `start..=end`, or from `start` to the end of the resource when `end` is `None`.
    ///
    /// # Errors
    /// [`NetError::InvalidRange`] when `end < start`, or when `end` is
    /// `u64::MAX` (a resource with a byte there would be 2^64 bytes long,
    /// which no length can state; the range's length would overflow).
    pub fn new(start: u64, end: Option<u64>) -> Result<Self, NetError> {
        match end {
            Some(end) if end < start || end == u64::MAX => {
                Err(NetError::InvalidRange { start, end })
            }
            _ => Ok(Self { start, end }),
        }
    }

    /// From `start` to the end of the resource.
    pub fn from_start(start: u64) -> Self {
        Self { start, end: None }
    }

    /// The half-open `range` as an inclusive spec.
    ///
    /// # Errors
    /// [`NetError::InvalidRange`] when `range` is empty.
    pub fn from_range(range: Range<u64>) -> Result<Self, NetError> {
        if range.end <= range.start {
            return Err(NetError::InvalidRange {
                start: range.start,
                end: range.end.saturating_sub(1),
            });
        }
        Ok(Self {
            start: range.start,
            end: Some(range.end - 1),
        })
    }

    /// First byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Last byte (inclusive), if bounded.
    pub fn end(&self) -> Option<u64> {
        self.end
    }

    /// Number of bytes asked for, if bounded. Never overflows: a bounded
    /// spec ends before `u64::MAX`.
    pub fn len(&self) -> Option<u64> {
        self.end
            .and_then(|e| e.checked_sub(self.start))
            .and_then(|n| n.checked_add(1))
    }

    /// Always false: a spec holds at least one byte. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Range` header value.
    pub fn to_header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RangeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "bytes={}-{}", self.start, end),
            None => write!(f, "bytes={}-", self.start),
        }
    }
}

/// A parsed `Content-Range` header of a 206 response: `bytes first-last/complete`
/// (`complete` may be `*`, unknown).
///
/// ```
/// use kithara_stream::net::ContentRange;
/// let cr = ContentRange::parse("bytes 100-199/1000").unwrap();
/// assert_eq!((cr.first(), cr.last(), cr.complete_length()), (100, 199, Some(1000)));
/// assert_eq!(ContentRange::parse("bytes 0-9/*").unwrap().complete_length(), None);
/// assert!(ContentRange::parse("bytes 9-0/10").is_err());
/// assert!(ContentRange::parse("bytes 0-10/10").is_err()); // last byte beyond the length
/// assert!(ContentRange::parse("items 0-1/2").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentRange {
    first: u64,
    last: u64,
    complete_length: Option<u64>,
}

/// Why a `Content-Range` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Content-Range {value:?}: {reason}")]
pub struct ContentRangeError {
    /// The header value as received.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ContentRange {
    /// Parses a `Content-Range` value (ASCII whitespace around parts tolerated).
    ///
    /// # Errors
    /// [`ContentRangeError`] for another unit, a missing part, a number that
    /// does not parse, `last < first`, `last >= complete`, `last ==
    /// u64::MAX` (one past it overflows), or the
    /// unsatisfied form `bytes */len` (which carries no range).
    pub fn parse(value: &str) -> Result<Self, ContentRangeError> {
        let err = |reason| ContentRangeError {
            value: value.to_owned(),
            reason,
        };
        let rest = value
            .trim()
            .strip_prefix("bytes")
            .ok_or_else(|| err("unit is not bytes"))?;
        if !rest.starts_with([' ', '\t']) {
            return Err(err("unit is not bytes"));
        }
        let (range, complete) = rest
            .trim()
            .split_once('/')
            .ok_or_else(|| err("missing '/'"))?;
        let (first, last) = range
            .trim()
            .split_once('-')
            .ok_or_else(|| err("no byte range (unsatisfied or malformed)"))?;
        let num = |s: &str| {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("not a number"));
            }
            s.parse::<u64>().map_err(|_| err("number out of range"))
        };
        let first = num(first)?;
        let last = num(last)?;
        let complete_length = match complete.trim() {
            "*" => None,
            s => Some(num(s)?),
        };
        if last < first {
            return Err(err("last byte before first"));
        }
        if last == u64::MAX {
            // One past it is not a u64: no length could contain it.
            return Err(err("last byte not representable"));
        }
        if complete_length.is_some_and(|len| last >= len) {
            return Err(err("range ends beyond the complete length"));
        }
        Ok(Self {
            first,
            last,
            complete_length,
        })
    }

    /// First byte of the body within the resource.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// Last byte (inclusive).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Length of the whole resource, if the server stated it.
    pub fn complete_length(&self) -> Option<u64> {
        self.complete_length
    }

    /// The body's position as a half-open range.
    pub fn as_range(&self) -> Range<u64> {
        self.first..self.end()
    }

    /// One past the last byte. Exact: a parsed range never ends at
    /// `u64::MAX`.
    pub fn end(&self) -> u64 {
        self.last.saturating_add(1)
    }

    /// Bytes in the body (`last - first + 1`). Exact, never overflows.
    pub fn len(&self) -> u64 {
        self.end() - self.first
    }

    /// Always false: a content range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_table() {
        let ok = [
            ("bytes 0-0/1", (0, 0, Some(1))),
            ("bytes 0-99/100", (0, 99, Some(100))),
            ("  bytes 5-9/*  ", (5, 9, None)),
            (
                "bytes 18446744073709551613-18446744073709551614/18446744073709551615",
                (u64::MAX - 2, u64::MAX - 1, Some(u64::MAX)),
            ),
        ];
        for (s, (f, l, c)) in ok {
            let cr = ContentRange::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                (cr.first(), cr.last(), cr.complete_length()),
                (f, l, c),
                "{s}"
            );
        }
        let bad = [
            "",
            "bytes",
            "bytes0-1/2",
            "bytes */100",
            "bytes 1-/2",
            "bytes -1/2",
            "bytes a-b/c",
            "bytes 1-2",
            "bytes 3-2/10",
            "bytes 0-1/1",
            "bytes +1-2/3",
            "bytes 0-99999999999999999999/*",
            "bytes 0-18446744073709551615/*",
            "octets 0-1/2",
        ];
        for s in bad {
            assert!(ContentRange::parse(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn range_spec_rules() {
        assert_eq!(RangeSpec::new(5, Some(5)).unwrap().len(), Some(1));
        assert_eq!(RangeSpec::from_start(7).len(), None);
        assert!(RangeSpec::from_range(5..5).is_err());
        assert!(RangeSpec::new(0, Some(u64::MAX)).is_err());
        assert_eq!(
            RangeSpec::new(0, Some(u64::MAX - 1)).unwrap().len(),
            Some(u64::MAX)
        );
        assert_eq!(
            RangeSpec::from_range(0..u64::MAX).unwrap().len(),
            Some(u64::MAX)
        );
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 6..5;
        assert!(RangeSpec::from_range(reversed).is_err());
        assert_eq!(
            RangeSpec::from_start(u64::MAX).to_string(),
            format!("bytes={}-", u64::MAX)
        );
    }
}

//! ICY (Icecast / Shoutcast) metadata: the in-band title blocks of internet
//! radio, as a pure, standalone parser.
//!
//! A client that sends `Icy-MetaData: 1` may get an answer with
//! `icy-metaint: N`: then after every `N` audio bytes the body carries one
//! metadata block — a length byte `L`, then `16 × L` bytes (0 to 4080) of
//! text like `StreamTitle='Artist - Song';StreamUrl='http://…';`, padded
//! with NUL bytes. [`IcyDemuxer`] takes the body in chunks split anywhere
//! and hands back the audio bytes (never a metadata byte) and each
//! metadata block parsed ([`IcyMetadata`]) or, if it does not parse, a typed
//! [`IcyError`]. It never panics, whatever the input.
//!
//! ```
//! use bytes::Bytes;
//! use kithara_stream::file::icy::{IcyDemuxer, IcyPart};
//!
//! let mut body = b"abcd".to_vec();
//! let meta = b"StreamTitle='Hello';";
//! body.push(2); // 2 × 16 bytes follow
//! body.extend_from_slice(meta);
//! body.resize(body.len() + 32 - meta.len(), 0);
//! body.extend_from_slice(b"efgh\0");
//!
//! let mut demux = IcyDemuxer::new(4);
//! let (mut audio, mut titles) = (Vec::new(), Vec::new());
//! for piece in body.chunks(3) {
//!     demux.feed(&Bytes::copy_from_slice(piece), |part| match part {
//!         IcyPart::Audio(b) => audio.extend_from_slice(&b),
//!         IcyPart::Metadata { audio_offset, metadata } => {
//!             titles.push((audio_offset, metadata.unwrap().title))
//!         }
//!     });
//! }
//! assert_eq!(audio, b"abcdefgh");
//! assert_eq!(titles, vec![(4, Some("Hello".to_owned()))]);
//! ```

use bytes::Bytes;
use http::HeaderMap;

/// The largest metadata block: 255 × 16 bytes.
pub const MAX_METADATA_LEN: usize = 255 * 16;

/// The largest `icy-metaint` accepted (real servers use 8–64 KiB).
pub const MAX_METAINT: usize = 1 << 20;

/// Why ICY data was rejected. Display strings are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IcyError {
    /// The `icy-metaint` header is not a number in `1..=MAX_METAINT`.
    #[error("invalid icy-metaint header: {0:?}")]
    InvalidMetaint(String),
    /// A metadata block is not a list of `key='value';` fields.
    #[error("malformed metadata block at audio byte {audio_offset}: {reason}")]
    MalformedBlock {
        /// The audio offset where the block sits.
        audio_offset: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// One parsed metadata block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IcyMetadata {
    /// `StreamTitle`, if present.
    pub title: Option<String>,
    /// `StreamUrl`, if present.
    pub url: Option<String>,
    /// Every field, in order, as `(key, value)`.
    pub fields: Vec<(String, String)>,
}

/// The `icy-*` response headers describing a station.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct IcyHeaders {
    /// `icy-name`: the station's name.
    pub name: Option<String>,
    /// `icy-genre`.
    pub genre: Option<String>,
    /// `icy-br`: the bitrate in kbit/s.
    pub bitrate: Option<u32>,
    /// `icy-url`: the station's home page.
    pub url: Option<String>,
    /// `icy-metaint`: audio bytes between metadata blocks, when valid.
    pub metaint: Option<usize>,
}

impl IcyHeaders {
    /// Reads the `icy-*` headers (an invalid `icy-metaint` reads as `None`;
    /// [`parse_metaint`] tells why). `None` when there is no `icy-*` header.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        if !headers.keys().any(|k| k.as_str().starts_with("icy-")) {
            return None;
        }
        let text = |name: &str| headers.get(name).map(|v| decode_text(v.as_bytes()));
        Some(Self {
            name: text("icy-name"),
            genre: text("icy-genre"),
            bitrate: text("icy-br").and_then(|b| {
                // Some servers send "128,128".
                b.split(',').next().and_then(|s| s.trim().parse().ok())
            }),
            url: text("icy-url"),
            metaint: parse_metaint(headers).ok().flatten(),
        })
    }
}

/// The `icy-metaint` header: `Ok(None)` when absent.
///
/// # Errors
/// [`IcyError::InvalidMetaint`] when present but not in `1..=MAX_METAINT`.
pub fn parse_metaint(headers: &HeaderMap) -> Result<Option<usize>, IcyError> {
    let Some(v) = headers.get("icy-metaint") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_METAINT).contains(&n) => Ok(Some(n)),
        _ => Err(IcyError::InvalidMetaint(text)),
    }
}

/// Text as UTF-8 when valid, else as Latin-1 (what older Shoutcast servers
/// send).
fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Parses one metadata block's content (trailing NUL padding allowed).
///
/// # Errors
/// [`IcyError::MalformedBlock`] (with `audio_offset` 0; the demuxer fills
/// it in) when the content is not a list of `key='value';` fields.
pub fn parse_metadata(block: &[u8]) -> Result<IcyMetadata, IcyError> {
    let malformed = |reason: &str| IcyError::MalformedBlock {
        audio_offset: 0,
        reason: reason.to_owned(),
    };
    let end = block.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut rest = &block[..end];
    let mut meta = IcyMetadata::default();
    while !rest.is_empty() {
        let eq = rest
            .windows(2)
            .position(|w| w == b"='")
            .ok_or_else(|| malformed("a field without ='"))?;
        let key = &rest[..eq];
        if key.is_empty() || key.iter().any(|&b| b == 0 || b == b';' || b == b'\'') {
            return Err(malformed("a field with an invalid key"));
        }
        let after = &rest[eq + 2..];
        // A value ends at the first `';` (values may hold quotes: "Guns N'
        // Roses"), or at a closing quote at the very end.
        let (value, next) = match after.windows(2).position(|w| w == b"';") {
            Some(i) => (&after[..i], &after[i + 2..]),
            None if after.last() == Some(&b'\'') => (&after[..after.len() - 1], &after[..0]),
            None => return Err(malformed("an unterminated value")),
        };
        let key = decode_text(key).trim().to_owned();
        let value = decode_text(value);
        if key.eq_ignore_ascii_case("StreamTitle") {
            meta.title = Some(value.clone());
        } else if key.eq_ignore_ascii_case("StreamUrl") {
            meta.url = Some(value.clone());
        }
        meta.fields.push((key, value));
        rest = next;
        // Tolerate whitespace between fields.
        while let [b' ' | b'\r' | b'\n' | b'\t', tail @ ..] = rest {
            rest = tail;
        }
    }
    Ok(meta)
}

/// What [`IcyDemuxer::feed`] hands out, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcyPart {
    /// Audio bytes (a slice of the fed chunk: no copy).
    Audio(Bytes),
    /// A non-empty metadata block, at the audio offset of the next audio
    /// byte. Empty blocks (length 0, the usual case) are not reported.
    Metadata {
        /// Audio bytes before this block since the demuxer started.
        audio_offset: u64,
        /// The block, parsed, or why it does not parse.
        metadata: Result<IcyMetadata, IcyError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// This many audio bytes until the next length byte.
    Audio(usize),
    /// The next byte is a block length.
    Length,
    /// This many block bytes still to collect.
    Block(usize),
}

/// Splits an ICY body into audio and metadata, across chunks split at any
/// byte. Memory: at most one block (4080 bytes) is buffered.
#[derive(Debug, Clone)]
pub struct IcyDemuxer {
    metaint: usize,
    phase: Phase,
    block: Vec<u8>,
    audio: u64,
}

impl IcyDemuxer {
    /// A demuxer for `icy-metaint = metaint` (0 is treated as 1; see
    /// [`parse_metaint`] to validate the header).
    pub fn new(metaint: usize) -> Self {
        let metaint = metaint.max(1);
        Self {
            metaint,
            phase: Phase::Audio(metaint),
            block: Vec::new(),
            audio: 0,
        }
    }

    /// Audio bytes handed out so far.
    pub fn audio_bytes(&self) -> u64 {
        self.audio
    }

    /// Feeds the next body chunk; `out` gets the audio slices and metadata
    /// blocks it completes, in order. Never fails and never panics: a block
    /// that does not parse is reported as an `Err` inside
    /// [`IcyPart::Metadata`] and the stream goes on.
    pub fn feed(&mut self, chunk: &Bytes, mut out: impl FnMut(IcyPart)) {
        let mut at = 0;
        while at < chunk.len() {
            match self.phase {
                Phase::Audio(left) => {
                    let n = left.min(chunk.len() - at);
                    out(IcyPart::Audio(chunk.slice(at..at + n)));
                    at += n;
                    self.audio += n as u64;
                    self.phase = if n == left {
                        Phase::Length
                    } else {
                        Phase::Audio(left - n)
                    };
                }
                Phase::Length => {
                    let len = usize::from(chunk[at]) * 16;
                    at += 1;
                    self.phase = if len == 0 {
                        Phase::Audio(self.metaint)
                    } else {
                        self.block.clear();
                        Phase::Block(len)
                    };
                }
                Phase::Block(left) => {
                    let n = left.min(chunk.len() - at);
                    self.block.extend_from_slice(&chunk[at..at + n]);
                    at += n;
                    if n < left {
                        self.phase = Phase::Block(left - n);
                        continue;
                    }
                    self.phase = Phase::Audio(self.metaint);
                    let audio_offset = self.audio;
                    let metadata = parse_metadata(&self.block).map_err(|e| match e {
                        IcyError::MalformedBlock { reason, .. } => IcyError::MalformedBlock {
                            audio_offset,
                            reason,
                        },
                        other => other,
                    });
                    out(IcyPart::Metadata {
                        audio_offset,
                        metadata,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_quotes_padding_and_latin1() {
        let m = parse_metadata(b"StreamTitle='Guns N' Roses - Live';StreamUrl='http://x/';\0\0")
            .unwrap();
        assert_eq!(m.title.as_deref(), Some("Guns N' Roses - Live"));
        assert_eq!(m.url.as_deref(), Some("http://x/"));
        assert_eq!(m.fields.len(), 2);
        let m = parse_metadata(b"StreamTitle='Caf\xe9'").unwrap();
        assert_eq!(m.title.as_deref(), Some("Caf\u{e9}"));
        assert_eq!(parse_metadata(b"\0\0\0").unwrap(), IcyMetadata::default());
        assert!(parse_metadata(b"garbage").is_err());
        assert!(parse_metadata(b"StreamTitle='open").is_err());
        assert!(parse_metadata(b"='x';").is_err());
    }

    #[test]
    fn metaint_header() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_metaint(&h), Ok(None));
        assert!(IcyHeaders::from_headers(&h).is_none());
        h.insert("icy-metaint", "16000".parse().unwrap());
        h.insert("icy-br", "128,128".parse().unwrap());
        h.insert("icy-name", "Test FM".parse().unwrap());
        assert_eq!(parse_metaint(&h), Ok(Some(16000)));
        let ih = IcyHeaders::from_headers(&h).unwrap();
        assert_eq!(ih.bitrate, Some(128));
        assert_eq!(ih.name.as_deref(), Some("Test FM"));
        for bad in ["0", "-1", "abc", "99999999999"] {
            h.insert("icy-metaint", bad.parse().unwrap());
            assert!(parse_metaint(&h).is_err(), "{bad}");
        }
    }
}

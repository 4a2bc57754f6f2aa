//! Media vocabulary: which audio codec and container a resource holds, and
//! the ways to find out (HLS `CODECS` attribute, MIME type, magic bytes), plus
//! the RFC 6381 codec string for a codec/container pair.
//!
//! Everything here is pure and allocation-free (apart from lowercasing input
//! strings); none of it touches the network.
//!
//! ```
//! use kithara_stream::{AudioCodec, ContainerFormat, MediaInfo};
//!
//! let info = MediaInfo::from_mime("audio/mp4; codecs=\"mp4a.40.5\"").unwrap();
//! assert_eq!(info.codec, Some(AudioCodec::AacHe));
//! assert_eq!(info.container, Some(ContainerFormat::Mp4));
//! assert_eq!(info.rfc6381_codec().as_deref(), Some("mp4a.40.5"));
//!
//! assert_eq!(AudioCodec::try_from(&b"fLaC\0\0\0\x22"[..]), Ok(AudioCodec::Flac));
//! ```

use std::borrow::Cow;

/// A container (file or segment format) that carries audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerFormat {
    /// ISO BMFF / MP4 (`.mp4`, `.m4a`), not fragmented.
    Mp4,
    /// Fragmented MP4 (CMAF / HLS fMP4 segments).
    Fmp4,
    /// MPEG-2 transport stream (`.ts`).
    MpegTs,
    /// Raw MPEG audio frames (`.mp3`).
    MpegAudio,
    /// Raw AAC in ADTS frames (`.aac`).
    Adts,
    /// Native FLAC stream (`.flac`).
    Flac,
    /// RIFF WAVE (`.wav`).
    Wav,
    /// Ogg (`.ogg`, `.oga`, `.opus`).
    Ogg,
    /// Core Audio Format (`.caf`).
    Caf,
    /// Matroska / WebM (`.mkv`, `.mka`, `.webm`).
    Mkv,
}

/// An audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// AAC Low Complexity (`mp4a.40.2`).
    AacLc,
    /// HE-AAC, AAC + SBR (`mp4a.40.5`).
    AacHe,
    /// HE-AAC v2, AAC + SBR + PS (`mp4a.40.29`).
    AacHeV2,
    /// MPEG-1/2 Layer III.
    Mp3,
    /// FLAC.
    Flac,
    /// Vorbis.
    Vorbis,
    /// Opus.
    Opus,
    /// Apple Lossless.
    Alac,
    /// Uncompressed PCM.
    Pcm,
    /// ADPCM.
    Adpcm,
}

/// What is known about a resource's media: every field is optional.
///
/// Build it with [`MediaInfo::new`] or [`Default`] and the `with_*` methods:
///
/// ```
/// use kithara_stream::{AudioCodec, ContainerFormat, MediaInfo};
/// let info = MediaInfo::default()
///     .with_codec(AudioCodec::Opus)
///     .with_container(ContainerFormat::Ogg)
///     .with_sample_rate(48_000)
///     .with_channels(2);
/// assert_eq!(info.sample_rate, Some(48_000));
/// assert_eq!(info.variant_index, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MediaInfo {
    /// Number of channels.
    pub channels: Option<u16>,
    /// The audio codec.
    pub codec: Option<AudioCodec>,
    /// The container format.
    pub container: Option<ContainerFormat>,
    /// Sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Index of the ABR variant this media belongs to (adaptive streams only).
    pub variant_index: Option<u32>,
}

impl MediaInfo {
    /// A `MediaInfo` with the given codec and container; every other field is `None`.
    pub fn new(codec: Option<AudioCodec>, container: Option<ContainerFormat>) -> Self {
        Self {
            codec,
            container,
            ..Self::default()
        }
    }

    /// Sets the channel count.
    #[must_use]
    pub fn with_channels(mut self, channels: u16) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Sets the codec.
    #[must_use]
    pub fn with_codec(mut self, codec: AudioCodec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Sets the container.
    #[must_use]
    pub fn with_container(mut self, container: ContainerFormat) -> Self {
        self.container = Some(container);
        self
    }

    /// Sets the sample rate in Hz.
    #[must_use]
    pub fn with_sample_rate(mut self, sample_rate: u32) -> Self {
        self.sample_rate = Some(sample_rate);
        self
    }

    /// Sets the ABR variant index.
    #[must_use]
    pub fn with_variant_index(mut self, variant_index: u32) -> Self {
        self.variant_index = Some(variant_index);
        self
    }

    /// Codec and container from a MIME type (a `Content-Type` value), via
    /// [`AudioCodec::from_mime`] and [`ContainerFormat::from_mime`].
    ///
    /// Returns `None` when neither is recognised; otherwise the unknown one
    /// stays `None`. The other fields are `None`.
    ///
    /// ```
    /// use kithara_stream::{AudioCodec as C, ContainerFormat as F, MediaInfo};
    /// let m = |s| MediaInfo::from_mime(s).map(|i| (i.codec, i.container));
    /// assert_eq!(m("audio/mpeg"), Some((Some(C::Mp3), Some(F::MpegAudio))));
    /// assert_eq!(m("audio/ogg; codecs=opus"), Some((Some(C::Opus), Some(F::Ogg))));
    /// assert_eq!(m("text/html; charset=utf-8"), None);
    /// ```
    pub fn from_mime(mime: &str) -> Option<Self> {
        let codec = AudioCodec::from_mime(mime);
        let container = ContainerFormat::from_mime(mime);
        (codec.is_some() || container.is_some()).then(|| Self::new(codec, container))
    }

    /// The RFC 6381 codec string (as used in HLS `CODECS` and MSE) for this
    /// codec in this container, or `None` when there is no codec or the pair
    /// has no such string. A missing container is taken to be
    /// [`ContainerFormat::Fmp4`].
    ///
    /// | codec | containers | string |
    /// |---|---|---|
    /// | AacLc / AacHe / AacHeV2 | Mp4, Fmp4, MpegTs, Adts | `mp4a.40.2` / `mp4a.40.5` / `mp4a.40.29` |
    /// | Mp3 | Mp4, Fmp4, MpegTs, MpegAudio | `mp4a.40.34` |
    /// | Flac | Mp4, Fmp4, Flac, Ogg | `flac` |
    /// | Vorbis | Mp4, Fmp4, Ogg | `vorbis` |
    /// | Opus | Mp4, Fmp4, Ogg | `opus` |
    /// | Alac | Mp4, Fmp4, Caf | `alac` |
    ///
    /// Every other pair (any Pcm or Adpcm, any Wav or Mkv container) is `None`.
    pub fn rfc6381_codec(&self) -> Option<Cow<'static, str>> {
        use AudioCodec as C;
        use ContainerFormat as F;
        let codec = self.codec?;
        let container = self.container.unwrap_or(F::Fmp4);
        let token = match (codec, container) {
            (C::AacLc, F::Mp4 | F::Fmp4 | F::MpegTs | F::Adts) => "mp4a.40.2",
            (C::AacHe, F::Mp4 | F::Fmp4 | F::MpegTs | F::Adts) => "mp4a.40.5",
            (C::AacHeV2, F::Mp4 | F::Fmp4 | F::MpegTs | F::Adts) => "mp4a.40.29",
            (C::Mp3, F::Mp4 | F::Fmp4 | F::MpegTs | F::MpegAudio) => "mp4a.40.34",
            (C::Flac, F::Mp4 | F::Fmp4 | F::Flac | F::Ogg) => "flac",
            (C::Vorbis, F::Mp4 | F::Fmp4 | F::Ogg) => "vorbis",
            (C::Opus, F::Mp4 | F::Fmp4 | F::Ogg) => "opus",
            (C::Alac, F::Mp4 | F::Fmp4 | F::Caf) => "alac",
            _ => return None,
        };
        Some(Cow::Borrowed(token))
    }
}

/// Whether `codec` can be packaged into fMP4 segments by this crate's
/// consumers: true only for [`AudioCodec::AacLc`] and [`AudioCodec::Flac`].
pub const fn audio_codec_supports_fmp4_packaging(codec: AudioCodec) -> bool {
    matches!(codec, AudioCodec::AacLc | AudioCodec::Flac)
}

/// Splits a MIME type into its lowercased essence (`type/subtype`, trimmed)
/// and its lowercased parameter list (everything after the first `;`).
fn split_mime(mime: &str) -> (String, String) {
    let lower = mime.to_ascii_lowercase();
    match lower.split_once(';') {
        Some((essence, params)) => (essence.trim().to_owned(), params.to_owned()),
        None => (lower.trim().to_owned(), String::new()),
    }
}

/// The value of the `codecs` parameter in a lowercased parameter list, with
/// surrounding quotes removed; `None` when absent.
fn codecs_param(params: &str) -> Option<&str> {
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        (name.trim() == "codecs").then(|| value.trim().trim_matches('"').trim())
    })
}

impl AudioCodec {
    /// The codec named by an HLS `CODECS` entry (an RFC 6381 token).
    ///
    /// The input is lowercased, then prefix tests run in this order:
    /// `mp4a.40.29` → AacHeV2, `mp4a.40.34` → Mp3, `mp4a.40.5` → AacHe,
    /// `mp4a.40.2` → AacLc, `mp4a.69` / `mp4a.6b` → Mp3, `flac`, `vorbis`,
    /// `opus`, `alac`. Anything else is `None`. Because these are prefix
    /// matches, `mp4a.40.22` is AacLc; `mp4a` alone and `""` are `None`.
    ///
    /// ```
    /// use kithara_stream::AudioCodec;
    /// assert_eq!(AudioCodec::from_hls_codec("MP4A.40.29"), Some(AudioCodec::AacHeV2));
    /// assert_eq!(AudioCodec::from_hls_codec("mp4a"), None);
    /// ```
    pub fn from_hls_codec(codec: &str) -> Option<Self> {
        const TABLE: [(&str, AudioCodec); 10] = [
            ("mp4a.40.29", AudioCodec::AacHeV2),
            ("mp4a.40.34", AudioCodec::Mp3),
            ("mp4a.40.5", AudioCodec::AacHe),
            ("mp4a.40.2", AudioCodec::AacLc),
            ("mp4a.69", AudioCodec::Mp3),
            ("mp4a.6b", AudioCodec::Mp3),
            ("flac", AudioCodec::Flac),
            ("vorbis", AudioCodec::Vorbis),
            ("opus", AudioCodec::Opus),
            ("alac", AudioCodec::Alac),
        ];
        let lower = codec.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|(prefix, _)| lower.starts_with(prefix))
            .map(|&(_, c)| c)
    }

    /// The codec a MIME type (a `Content-Type` value) implies.
    ///
    /// The input is lowercased and split into the essence (`type/subtype`)
    /// and its parameters.
    ///
    /// 1. If a `codecs` parameter is present (`audio/mp4; codecs="mp4a.40.5"`),
    ///    it decides: the first of its comma-separated entries that
    ///    [`from_hls_codec`](Self::from_hls_codec) recognises (or the bare
    ///    names `mp3` and `1`, the WAVE PCM tag) is the answer,
    ///    and if none is recognised (`codecs="ac-3"`, `codecs="avc1.64001f"`)
    ///    the answer is `None` rather than a guess from the essence.
    /// 2. Otherwise the essence is checked in this order: contains `mp3` or is
    ///    `audio/mpeg` → Mp3; contains `aac` → AacLc; contains `flac` → Flac;
    ///    contains `vorbis` → Vorbis; contains `opus` → Opus; `audio/ogg` →
    ///    Vorbis; `audio/wav` / `audio/wave` / `audio/x-wav` → Pcm;
    ///    `audio/mp4` / `audio/x-m4a` → AacLc. Anything else is `None`.
    ///
    /// This improves on the original (alpha1), which matched the whole
    /// lowercased string: parameters broke the exact matches
    /// (`audio/mpeg; charset=binary` was `None`), and a `codecs` parameter
    /// was only honoured by accident of substring matching (so
    /// `audio/mp4; codecs="mp4a.40.5"` was `None` instead of AacHe). Without
    /// parameters both agree.
    ///
    /// ```
    /// use kithara_stream::AudioCodec;
    /// assert_eq!(AudioCodec::from_mime("Audio/MPEG"), Some(AudioCodec::Mp3));
    /// assert_eq!(AudioCodec::from_mime("audio/mpeg; charset=binary"), Some(AudioCodec::Mp3));
    /// assert_eq!(AudioCodec::from_mime("audio/mp4; codecs=\"mp4a.40.2\""), Some(AudioCodec::AacLc));
    /// assert_eq!(AudioCodec::from_mime("video/mp4; codecs=\"avc1.4d401f, mp4a.40.5\""), Some(AudioCodec::AacHe));
    /// assert_eq!(AudioCodec::from_mime("text/html"), None);
    /// ```
    pub fn from_mime(mime: &str) -> Option<Self> {
        let (essence, params) = split_mime(mime);
        if let Some(codecs) = codecs_param(&params).filter(|c| !c.is_empty()) {
            return codecs.split(',').find_map(|c| {
                let c = c.trim().trim_matches('"');
                Self::from_hls_codec(c).or(match c {
                    // Bare names some players use (`audio/mpeg; codecs="mp3"`,
                    // `audio/wav; codecs="1"`, the WAVE PCM format tag).
                    "mp3" => Some(Self::Mp3),
                    "1" => Some(Self::Pcm),
                    _ => None,
                })
            });
        }
        let e = essence.as_str();
        if e.contains("mp3") || e == "audio/mpeg" {
            Some(Self::Mp3)
        } else if e.contains("aac") {
            Some(Self::AacLc)
        } else if e.contains("flac") {
            Some(Self::Flac)
        } else if e.contains("vorbis") {
            Some(Self::Vorbis)
        } else if e.contains("opus") {
            Some(Self::Opus)
        } else {
            match e {
                "audio/ogg" => Some(Self::Vorbis),
                "audio/wav" | "audio/wave" | "audio/x-wav" => Some(Self::Pcm),
                "audio/mp4" | "audio/x-m4a" => Some(Self::AacLc),
                _ => None,
            }
        }
    }
}

impl ContainerFormat {
    /// The container a MIME type (a `Content-Type` value) implies, from its
    /// essence alone (parameters are ignored, case-insensitive).
    ///
    /// | MIME essence | container |
    /// |---|---|
    /// | `audio/mpeg`, `audio/mp3`, `audio/mpeg3`, `audio/x-mpeg`, `audio/x-mp3` | MpegAudio |
    /// | `audio/aac`, `audio/aacp`, `audio/x-aac`, `audio/aac-adts` | Adts |
    /// | `audio/mp4`, `audio/x-m4a`, `audio/m4a`, `video/mp4` | Mp4 |
    /// | `audio/flac`, `audio/x-flac` | Flac |
    /// | `audio/wav`, `audio/wave`, `audio/x-wav`, `audio/vnd.wave` | Wav |
    /// | `audio/ogg`, `application/ogg`, `audio/x-ogg`, `audio/opus`, `audio/vorbis` | Ogg |
    /// | `video/mp2t`, `audio/mp2t` | MpegTs |
    /// | `audio/x-caf` | Caf |
    /// | `audio/webm`, `video/webm`, `audio/x-matroska`, `video/x-matroska` | Mkv |
    ///
    /// A MIME type cannot tell fragmented MP4 from plain MP4, so this never
    /// returns [`ContainerFormat::Fmp4`].
    pub fn from_mime(mime: &str) -> Option<Self> {
        let (essence, _) = split_mime(mime);
        Some(match essence.as_str() {
            "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg" | "audio/x-mp3" => {
                Self::MpegAudio
            }
            "audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/aac-adts" => Self::Adts,
            "audio/mp4" | "audio/x-m4a" | "audio/m4a" | "video/mp4" => Self::Mp4,
            "audio/flac" | "audio/x-flac" => Self::Flac,
            "audio/wav" | "audio/wave" | "audio/x-wav" | "audio/vnd.wave" => Self::Wav,
            "audio/ogg" | "application/ogg" | "audio/x-ogg" | "audio/opus" | "audio/vorbis" => {
                Self::Ogg
            }
            "video/mp2t" | "audio/mp2t" => Self::MpegTs,
            "audio/x-caf" => Self::Caf,
            "audio/webm" | "video/webm" | "audio/x-matroska" | "video/x-matroska" => Self::Mkv,
            _ => return None,
        })
    }

    /// The container a file or segment starts with, from its first bytes.
    ///
    /// Needs at least 4 bytes (`None` otherwise). Rules in order:
    /// `ID3` → MpegAudio; `fLaC` → Flac; `OggS` → Ogg; `RIFF????WAVE`
    /// (≥ 12 bytes) → Wav; `caff` → Caf; EBML `1A 45 DF A3` → Mkv;
    /// bytes 4..8 `ftyp` → Mp4, `styp` or `moof` → Fmp4; `0x47` at offsets 0
    /// and 188 (≥ 189 bytes) → MpegTs; an MPEG frame sync `0xFF`, `b1 & 0xE0
    /// == 0xE0` → Adts when the layer bits are 0, else MpegAudio.
    ///
    /// ```
    /// use kithara_stream::ContainerFormat;
    /// assert_eq!(ContainerFormat::from_magic(b"\0\0\0\x18ftypM4A "), Some(ContainerFormat::Mp4));
    /// assert_eq!(ContainerFormat::from_magic(&[0xFF, 0xF1, 0x50, 0x80]), Some(ContainerFormat::Adts));
    /// assert_eq!(ContainerFormat::from_magic(b"<!DOCTYPE html>"), None);
    /// ```
    pub fn from_magic(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 4 {
            return None;
        }
        if bytes.starts_with(b"ID3") {
            return Some(Self::MpegAudio);
        }
        if bytes.starts_with(b"fLaC") {
            return Some(Self::Flac);
        }
        if bytes.starts_with(b"OggS") {
            return Some(Self::Ogg);
        }
        if is_riff_wave(bytes) {
            return Some(Self::Wav);
        }
        if bytes.starts_with(b"caff") {
            return Some(Self::Caf);
        }
        if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
            return Some(Self::Mkv);
        }
        match bytes.get(4..8) {
            Some(b"ftyp") => return Some(Self::Mp4),
            Some(b"styp" | b"moof") => return Some(Self::Fmp4),
            _ => {}
        }
        if bytes.first() == Some(&0x47) && bytes.get(188) == Some(&0x47) {
            return Some(Self::MpegTs);
        }
        match mpeg_sync(bytes) {
            Some(true) => Some(Self::Adts),
            Some(false) => Some(Self::MpegAudio),
            None => None,
        }
    }
}

fn is_riff_wave(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE")
}

/// An MPEG audio frame sync at the start: `Some(true)` for ADTS (layer bits
/// 0), `Some(false)` for MPEG audio layers I–III, `None` for no sync.
fn mpeg_sync(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [0xFF, b1, ..] if b1 & 0xE0 == 0xE0 => Some((b1 >> 1) & 0x03 == 0),
        _ => None,
    }
}

/// Why [`AudioCodec::try_from`] could not tell the codec from magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CodecMagicError {
    /// Fewer than 4 bytes were given.
    #[error("magic prefix needs at least 4 bytes, got {got}")]
    TooShort {
        /// How many bytes were given.
        got: usize,
    },
    /// No known signature matched.
    #[error("magic prefix did not match any known codec")]
    Unknown,
}

/// The codec a file starts with, from its first bytes (at least 4).
///
/// Rules in order: fewer than 4 bytes → [`CodecMagicError::TooShort`];
/// `ID3` → Mp3; `fLaC` → Flac; `OggS` → Vorbis; `RIFF????WAVE` (≥ 12 bytes)
/// → Pcm; bytes 4..8 `ftyp` → AacLc; `0xFF` then `b1 & 0xE0 == 0xE0`: layer
/// bits `(b1 >> 1) & 3 == 0` → AacLc (ADTS), otherwise Mp3. Anything else →
/// [`CodecMagicError::Unknown`].
///
/// ```
/// use kithara_stream::{AudioCodec, CodecMagicError};
/// assert_eq!(AudioCodec::try_from(&b"ID3\x04"[..]), Ok(AudioCodec::Mp3));
/// assert_eq!(AudioCodec::try_from(&b"ID"[..]), Err(CodecMagicError::TooShort { got: 2 }));
/// ```
impl TryFrom<&[u8]> for AudioCodec {
    type Error = CodecMagicError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        if bytes.len() < 4 {
            return Err(CodecMagicError::TooShort { got: bytes.len() });
        }
        if bytes.starts_with(b"ID3") {
            return Ok(Self::Mp3);
        }
        if bytes.starts_with(b"fLaC") {
            return Ok(Self::Flac);
        }
        if bytes.starts_with(b"OggS") {
            return Ok(Self::Vorbis);
        }
        if is_riff_wave(bytes) {
            return Ok(Self::Pcm);
        }
        if bytes.get(4..8) == Some(b"ftyp") {
            return Ok(Self::AacLc);
        }
        match mpeg_sync(bytes) {
            Some(true) => Ok(Self::AacLc),
            Some(false) => Ok(Self::Mp3),
            None => Err(CodecMagicError::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AudioCodec as C;
    use ContainerFormat as F;

    const ALL_CODECS: [AudioCodec; 10] = [
        C::AacLc,
        C::AacHe,
        C::AacHeV2,
        C::Mp3,
        C::Flac,
        C::Vorbis,
        C::Opus,
        C::Alac,
        C::Pcm,
        C::Adpcm,
    ];
    const ALL_CONTAINERS: [ContainerFormat; 10] = [
        F::Mp4,
        F::Fmp4,
        F::MpegTs,
        F::MpegAudio,
        F::Adts,
        F::Flac,
        F::Wav,
        F::Ogg,
        F::Caf,
        F::Mkv,
    ];

    #[test]
    fn test_hls_codec_parsing() {
        let cases: [(&str, Option<AudioCodec>); 17] = [
            ("mp4a.40.2", Some(C::AacLc)),
            ("mp4a.40.5", Some(C::AacHe)),
            ("mp4a.40.29", Some(C::AacHeV2)),
            ("mp4a.40.34", Some(C::Mp3)),
            ("mp4a.69", Some(C::Mp3)),
            ("mp4a.6b", Some(C::Mp3)),
            ("mp4a.6B", Some(C::Mp3)),
            ("MP4A.40.2", Some(C::AacLc)),
            ("mp4a.40.22", Some(C::AacLc)),
            ("flac", Some(C::Flac)),
            ("fLaC", Some(C::Flac)),
            ("vorbis", Some(C::Vorbis)),
            ("Opus", Some(C::Opus)),
            ("alac", Some(C::Alac)),
            ("", None),
            ("unknown", None),
            ("mp4a", None),
        ];
        for (input, want) in cases {
            assert_eq!(AudioCodec::from_hls_codec(input), want, "input {input:?}");
        }
        // Order matters: mp4a.40.29 is not read as mp4a.40.2, nor 40.34 as 40.3x.
        assert_eq!(AudioCodec::from_hls_codec("mp4a.40.3"), None);
        assert_eq!(AudioCodec::from_hls_codec("ac-3"), None);
    }

    #[test]
    fn from_mime_contract_rows() {
        // Every row of the contract's table, without parameters.
        let cases: &[(&str, Option<AudioCodec>)] = &[
            ("audio/mpeg", Some(C::Mp3)),
            ("AUDIO/MPEG", Some(C::Mp3)),
            ("audio/mp3", Some(C::Mp3)),
            ("audio/x-mp3", Some(C::Mp3)),
            ("audio/aac", Some(C::AacLc)),
            ("audio/aacp", Some(C::AacLc)),
            ("audio/x-aac", Some(C::AacLc)),
            ("audio/flac", Some(C::Flac)),
            ("audio/x-flac", Some(C::Flac)),
            ("audio/vorbis", Some(C::Vorbis)),
            ("audio/opus", Some(C::Opus)),
            ("audio/ogg", Some(C::Vorbis)),
            ("audio/wav", Some(C::Pcm)),
            ("audio/wave", Some(C::Pcm)),
            ("audio/x-wav", Some(C::Pcm)),
            ("audio/mp4", Some(C::AacLc)),
            ("audio/x-m4a", Some(C::AacLc)),
            ("audio/webm", None),
            ("video/mp4", None),
            ("text/html", None),
            ("application/octet-stream", None),
            ("", None),
        ];
        for &(input, want) in cases {
            assert_eq!(AudioCodec::from_mime(input), want, "input {input:?}");
        }
    }

    #[test]
    fn from_mime_handles_parameters() {
        let cases: &[(&str, Option<AudioCodec>)] = &[
            // Parameters no longer break the exact matches.
            ("audio/mpeg; charset=binary", Some(C::Mp3)),
            ("audio/wav;rate=44100", Some(C::Pcm)),
            (" audio/ogg ; foo=bar", Some(C::Vorbis)),
            ("audio/mp4; name=x", Some(C::AacLc)),
            // The codecs parameter decides, quoted or not, any case.
            ("audio/mp4; codecs=\"mp4a.40.2\"", Some(C::AacLc)),
            ("audio/mp4; codecs=\"mp4a.40.5\"", Some(C::AacHe)),
            ("audio/mp4; CODECS=\"MP4A.40.29\"", Some(C::AacHeV2)),
            ("audio/mp4; codecs=mp4a.40.34", Some(C::Mp3)),
            ("audio/mp4; codecs=\"flac\"", Some(C::Flac)),
            ("audio/ogg; codecs=opus", Some(C::Opus)),
            ("audio/ogg; codecs=\"flac\"", Some(C::Flac)),
            ("audio/webm; codecs=\"opus\"", Some(C::Opus)),
            (
                "video/mp4; codecs=\"avc1.4d401f, mp4a.40.5\"",
                Some(C::AacHe),
            ),
            ("audio/mp4; foo=1; codecs=\"alac\"", Some(C::Alac)),
            ("audio/mpeg; codecs=\"mp3\"", Some(C::Mp3)),
            ("audio/wav; codecs=1", Some(C::Pcm)),
            ("audio/mp4; codecs=\"mp4a.40.2,opus\"", Some(C::AacLc)),
            ("audio/mp4; codecs=\"ac-3, mp4a.40.5\"", Some(C::AacHe)),
            // An empty codecs parameter says nothing: the essence decides.
            ("audio/mp4; codecs=\"\"", Some(C::AacLc)),
            ("audio/mpeg; codecs=", Some(C::Mp3)),
            // An unknown codecs parameter is not overridden by a guess from the essence.
            ("audio/mp4; codecs=\"ac-3\"", None),
            ("video/mp4; codecs=\"avc1.4d401f\"", None),
            // A parameter value never matches as a substring of the essence.
            ("text/plain; name=song.mp3", None),
            ("text/html; charset=utf-8", None),
        ];
        for &(input, want) in cases {
            assert_eq!(AudioCodec::from_mime(input), want, "input {input:?}");
        }
    }

    #[test]
    fn container_from_mime_table() {
        let cases: &[(&str, Option<ContainerFormat>)] = &[
            ("audio/mpeg", Some(F::MpegAudio)),
            ("audio/mp3", Some(F::MpegAudio)),
            ("audio/mpeg3", Some(F::MpegAudio)),
            ("audio/x-mpeg", Some(F::MpegAudio)),
            ("audio/x-mp3", Some(F::MpegAudio)),
            ("audio/aac", Some(F::Adts)),
            ("audio/aacp", Some(F::Adts)),
            ("audio/x-aac", Some(F::Adts)),
            ("audio/aac-adts", Some(F::Adts)),
            ("audio/mp4", Some(F::Mp4)),
            ("audio/x-m4a", Some(F::Mp4)),
            ("audio/m4a", Some(F::Mp4)),
            ("video/mp4", Some(F::Mp4)),
            ("audio/flac", Some(F::Flac)),
            ("audio/x-flac", Some(F::Flac)),
            ("audio/wav", Some(F::Wav)),
            ("audio/wave", Some(F::Wav)),
            ("audio/x-wav", Some(F::Wav)),
            ("audio/vnd.wave", Some(F::Wav)),
            ("audio/ogg", Some(F::Ogg)),
            ("application/ogg", Some(F::Ogg)),
            ("audio/x-ogg", Some(F::Ogg)),
            ("audio/opus", Some(F::Ogg)),
            ("audio/vorbis", Some(F::Ogg)),
            ("video/mp2t", Some(F::MpegTs)),
            ("audio/mp2t", Some(F::MpegTs)),
            ("audio/x-caf", Some(F::Caf)),
            ("audio/webm", Some(F::Mkv)),
            ("video/webm", Some(F::Mkv)),
            ("audio/x-matroska", Some(F::Mkv)),
            ("video/x-matroska", Some(F::Mkv)),
            ("Audio/MP4; codecs=\"mp4a.40.2\"", Some(F::Mp4)),
            ("text/html", None),
            ("application/octet-stream", None),
            ("", None),
        ];
        for &(input, want) in cases {
            assert_eq!(ContainerFormat::from_mime(input), want, "input {input:?}");
        }
    }

    #[test]
    fn media_info_from_mime_table() {
        type Pair = (Option<AudioCodec>, Option<ContainerFormat>);
        let cases: &[(&str, Option<Pair>)] = &[
            ("audio/mpeg", Some((Some(C::Mp3), Some(F::MpegAudio)))),
            ("audio/wav", Some((Some(C::Pcm), Some(F::Wav)))),
            ("audio/flac", Some((Some(C::Flac), Some(F::Flac)))),
            ("audio/ogg", Some((Some(C::Vorbis), Some(F::Ogg)))),
            ("audio/aac", Some((Some(C::AacLc), Some(F::Adts)))),
            ("audio/mp4", Some((Some(C::AacLc), Some(F::Mp4)))),
            (
                "audio/mp4; codecs=\"mp4a.40.29\"",
                Some((Some(C::AacHeV2), Some(F::Mp4))),
            ),
            (
                "audio/ogg; codecs=opus",
                Some((Some(C::Opus), Some(F::Ogg))),
            ),
            (
                "audio/webm; codecs=opus",
                Some((Some(C::Opus), Some(F::Mkv))),
            ),
            ("video/mp2t", Some((None, Some(F::MpegTs)))),
            ("audio/x-caf", Some((None, Some(F::Caf)))),
            ("audio/x-vorbis+ogg", Some((Some(C::Vorbis), None))),
            ("text/html; charset=utf-8", None),
            ("application/json", None),
        ];
        for &(input, want) in cases {
            let got = MediaInfo::from_mime(input);
            assert_eq!(
                got.as_ref().map(|i| (i.codec, i.container)),
                want,
                "input {input:?}"
            );
            if let Some(info) = got {
                assert_eq!(
                    (info.channels, info.sample_rate, info.variant_index),
                    (None, None, None)
                );
            }
        }
    }

    #[test]
    fn test_media_info_default() {
        let info = MediaInfo::default();
        assert_eq!(info.channels, None);
        assert_eq!(info.codec, None);
        assert_eq!(info.container, None);
        assert_eq!(info.sample_rate, None);
        assert_eq!(info.variant_index, None);
        assert_eq!(MediaInfo::new(None, None), info);
    }

    #[test]
    fn media_info_new_sets_codec_and_container_only() {
        let info = MediaInfo::new(Some(C::Opus), Some(F::Ogg));
        assert_eq!(info.codec, Some(C::Opus));
        assert_eq!(info.container, Some(F::Ogg));
        assert_eq!(
            (info.channels, info.sample_rate, info.variant_index),
            (None, None, None)
        );
    }

    #[test]
    fn test_media_info_with_container() {
        let containers = [
            F::Mp4,
            F::Fmp4,
            F::MpegTs,
            F::MpegAudio,
            F::Adts,
            F::Flac,
            F::Wav,
            F::Ogg,
            F::Caf,
        ];
        for c in containers {
            let info = MediaInfo::default().with_container(c);
            assert_eq!(info.container, Some(c));
            assert_eq!(info.codec, None);
        }
    }

    #[test]
    fn test_media_info_with_sample_rate() {
        for rate in [8_000, 22_050, 44_100, 48_000, 96_000] {
            let info = MediaInfo::default().with_sample_rate(rate);
            assert_eq!(info.sample_rate, Some(rate));
            assert_eq!(info.channels, None);
        }
    }

    #[test]
    fn test_media_info_with_channels() {
        for ch in [1, 2, 6, 8] {
            let info = MediaInfo::default().with_channels(ch);
            assert_eq!(info.channels, Some(ch));
            assert_eq!(info.sample_rate, None);
        }
    }

    #[test]
    fn test_media_info_builder_chain() {
        let info = MediaInfo::default()
            .with_codec(C::AacLc)
            .with_container(F::Fmp4)
            .with_sample_rate(44_100)
            .with_channels(2)
            .with_variant_index(3);
        assert_eq!(info.codec, Some(C::AacLc));
        assert_eq!(info.container, Some(F::Fmp4));
        assert_eq!(info.sample_rate, Some(44_100));
        assert_eq!(info.channels, Some(2));
        assert_eq!(info.variant_index, Some(3));
        // Later calls override earlier ones.
        let info = info.with_channels(1).with_codec(C::Opus);
        assert_eq!((info.channels, info.codec), (Some(1), Some(C::Opus)));
    }

    #[test]
    fn test_media_info_partial_builder() {
        let info = MediaInfo::default()
            .with_codec(C::Mp3)
            .with_sample_rate(48_000);
        assert_eq!(info.codec, Some(C::Mp3));
        assert_eq!(info.sample_rate, Some(48_000));
        assert_eq!(info.container, None);
        assert_eq!(info.channels, None);
        assert_eq!(info.variant_index, None);
    }

    #[test]
    fn test_container_format_debug() {
        let names = [
            "Mp4",
            "Fmp4",
            "MpegTs",
            "MpegAudio",
            "Adts",
            "Flac",
            "Wav",
            "Ogg",
            "Caf",
            "Mkv",
        ];
        for (c, name) in ALL_CONTAINERS.iter().zip(names) {
            assert_eq!(format!("{c:?}"), name);
        }
    }

    #[test]
    fn test_audio_codec_debug() {
        let names = [
            "AacLc", "AacHe", "AacHeV2", "Mp3", "Flac", "Vorbis", "Opus", "Alac", "Pcm", "Adpcm",
        ];
        for (c, name) in ALL_CODECS.iter().zip(names) {
            assert_eq!(format!("{c:?}"), name);
        }
    }

    #[test]
    fn test_media_info_clone() {
        let info = MediaInfo::new(Some(C::Flac), Some(F::Flac))
            .with_sample_rate(96_000)
            .with_channels(2);
        let cloned = info.clone();
        assert_eq!(cloned, info);
        assert_eq!(cloned.sample_rate, Some(96_000));
    }

    #[test]
    fn test_media_info_partial_eq() {
        let a = MediaInfo::new(Some(C::AacLc), Some(F::Mp4));
        let b = MediaInfo::new(Some(C::AacLc), Some(F::Mp4));
        assert_eq!(a, b);
        assert_ne!(a, MediaInfo::new(Some(C::AacHe), Some(F::Mp4)));
        assert_ne!(a, MediaInfo::new(Some(C::AacLc), Some(F::Fmp4)));
        assert_ne!(a, b.clone().with_channels(2));
        assert_ne!(a, b.with_variant_index(0));
    }

    fn riff_wave() -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&36u32.to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v
    }

    #[test]
    fn try_from_recognises_known_magic() {
        let cases: Vec<(Vec<u8>, AudioCodec)> = vec![
            (b"ID3\x04\x00\x00".to_vec(), C::Mp3),
            (vec![0xFF, 0xFB, 0x90, 0x64], C::Mp3),
            (vec![0xFF, 0xF3, 0x90, 0x64], C::Mp3),
            (vec![0xFF, 0xF1, 0x50, 0x80], C::AacLc),
            (vec![0xFF, 0xF9, 0x50, 0x80], C::AacLc),
            (b"fLaC\x00\x00\x00\x22".to_vec(), C::Flac),
            (b"OggS\x00\x02".to_vec(), C::Vorbis),
            (riff_wave(), C::Pcm),
            (b"\x00\x00\x00\x20ftypisom".to_vec(), C::AacLc),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                AudioCodec::try_from(&bytes[..]),
                Ok(want),
                "bytes {bytes:02x?}"
            );
        }
    }

    #[test]
    fn try_from_rejects_short_buffer() {
        assert_eq!(
            AudioCodec::try_from(&b"ID"[..]),
            Err(CodecMagicError::TooShort { got: 2 })
        );
        assert_eq!(
            AudioCodec::try_from(&[][..]),
            Err(CodecMagicError::TooShort { got: 0 })
        );
        // Even a valid-looking 3-byte prefix is too short.
        assert_eq!(
            AudioCodec::try_from(&b"ID3"[..]),
            Err(CodecMagicError::TooShort { got: 3 })
        );
        assert_eq!(
            CodecMagicError::TooShort { got: 2 }.to_string(),
            "magic prefix needs at least 4 bytes, got 2"
        );
    }

    #[test]
    fn try_from_unknown_magic_errors() {
        let cases: Vec<Vec<u8>> = vec![
            vec![0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC],
            b"RIFF\x24\x00\x00\x00AVI LIST".to_vec(),
            b"RIFF\x24\x00\x00\x00WA".to_vec(),
            vec![0xFE, 0xFB, 0x90, 0x64],
            vec![0xFF, 0xC0, 0x00, 0x00],
            b"<!DOCTYPE html>".to_vec(),
        ];
        for bytes in cases {
            assert_eq!(
                AudioCodec::try_from(&bytes[..]),
                Err(CodecMagicError::Unknown),
                "bytes {bytes:02x?}"
            );
        }
        assert_eq!(
            CodecMagicError::Unknown.to_string(),
            "magic prefix did not match any known codec"
        );
    }

    #[test]
    fn container_from_magic_table() {
        let mut ts = vec![0u8; 376];
        ts[0] = 0x47;
        ts[188] = 0x47;
        let mut not_ts = ts.clone();
        not_ts[188] = 0x00;
        let cases: Vec<(Vec<u8>, Option<ContainerFormat>)> = vec![
            (b"ID3\x04\x00".to_vec(), Some(F::MpegAudio)),
            (vec![0xFF, 0xFB, 0x90, 0x64], Some(F::MpegAudio)),
            (vec![0xFF, 0xF1, 0x50, 0x80], Some(F::Adts)),
            (b"fLaC\x00\x00\x00\x22".to_vec(), Some(F::Flac)),
            (b"OggS\x00\x02".to_vec(), Some(F::Ogg)),
            (riff_wave(), Some(F::Wav)),
            (b"caff\x00\x01\x00\x00".to_vec(), Some(F::Caf)),
            (vec![0x1A, 0x45, 0xDF, 0xA3, 0x01], Some(F::Mkv)),
            (b"\x00\x00\x00\x20ftypisom".to_vec(), Some(F::Mp4)),
            (b"\x00\x00\x00\x18stypmsdh".to_vec(), Some(F::Fmp4)),
            (b"\x00\x00\x00\x18moof\x00\x00".to_vec(), Some(F::Fmp4)),
            (ts, Some(F::MpegTs)),
            (not_ts, None),
            (b"ID".to_vec(), None),
            (b"RIFF\x24\x00\x00\x00AVI LIST".to_vec(), None),
            (vec![0xFE, 0xFB, 0x90, 0x64], None),
            (b"<html><body>".to_vec(), None),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                ContainerFormat::from_magic(&bytes),
                want,
                "bytes {:02x?}",
                &bytes[..bytes.len().min(12)]
            );
        }
    }

    /// The full RFC 6381 table of the contract: every codec × container pair.
    fn expected_token(codec: AudioCodec, container: ContainerFormat) -> Option<&'static str> {
        let aac_like = [F::Mp4, F::Fmp4, F::MpegTs, F::Adts];
        let (token, containers): (&str, &[ContainerFormat]) = match codec {
            C::AacLc => ("mp4a.40.2", &aac_like),
            C::AacHe => ("mp4a.40.5", &aac_like),
            C::AacHeV2 => ("mp4a.40.29", &aac_like),
            C::Mp3 => ("mp4a.40.34", &[F::Mp4, F::Fmp4, F::MpegTs, F::MpegAudio]),
            C::Flac => ("flac", &[F::Mp4, F::Fmp4, F::Flac, F::Ogg]),
            C::Vorbis => ("vorbis", &[F::Mp4, F::Fmp4, F::Ogg]),
            C::Opus => ("opus", &[F::Mp4, F::Fmp4, F::Ogg]),
            C::Alac => ("alac", &[F::Mp4, F::Fmp4, F::Caf]),
            C::Pcm | C::Adpcm => return None,
        };
        containers.contains(&container).then_some(token)
    }

    #[test]
    fn rfc6381_full_matrix() {
        let mut some = 0;
        for codec in ALL_CODECS {
            for container in ALL_CONTAINERS {
                let got = MediaInfo::new(Some(codec), Some(container)).rfc6381_codec();
                assert_eq!(
                    got.as_deref(),
                    expected_token(codec, container),
                    "{codec:?} in {container:?}"
                );
                some += usize::from(got.is_some());
            }
            // No container means Fmp4.
            assert_eq!(
                MediaInfo::new(Some(codec), None).rfc6381_codec(),
                MediaInfo::new(Some(codec), Some(F::Fmp4)).rfc6381_codec()
            );
        }
        assert_eq!(some, 4 * 3 + 4 + 4 + 3 + 3 + 3);
        for container in ALL_CONTAINERS {
            assert_eq!(MediaInfo::new(None, Some(container)).rfc6381_codec(), None);
        }
    }

    #[test]
    fn rfc6381_codec_token_matches() {
        let token = |c, f| MediaInfo::new(Some(c), Some(f)).rfc6381_codec();
        assert_eq!(token(C::AacLc, F::Fmp4).as_deref(), Some("mp4a.40.2"));
        assert_eq!(token(C::Pcm, F::Fmp4), None);
        assert_eq!(token(C::Mp3, F::MpegAudio).as_deref(), Some("mp4a.40.34"));
        assert_eq!(token(C::Flac, F::Ogg).as_deref(), Some("flac"));
    }

    #[test]
    fn aac_lc_defaults_container_to_fmp4_mapping() {
        let info = MediaInfo::default().with_codec(C::AacLc);
        assert_eq!(info.container, None);
        assert_eq!(info.rfc6381_codec().as_deref(), Some("mp4a.40.2"));
        // Codecs that have no string in Fmp4 also get none without a container.
        assert_eq!(
            MediaInfo::default().with_codec(C::Pcm).rfc6381_codec(),
            None
        );
    }

    #[test]
    fn fmp4_packaging_support_matches_supported_audio_codecs() {
        for codec in ALL_CODECS {
            assert_eq!(
                audio_codec_supports_fmp4_packaging(codec),
                matches!(codec, C::AacLc | C::Flac),
                "{codec:?}"
            );
        }
        const _: () = assert!(audio_codec_supports_fmp4_packaging(AudioCodec::Flac));
    }

    #[test]
    fn hls_codec_tokens_round_trip_through_rfc6381() {
        for codec in ALL_CODECS {
            if let Some(token) = MediaInfo::new(Some(codec), Some(F::Mp4)).rfc6381_codec() {
                assert_eq!(AudioCodec::from_hls_codec(&token), Some(codec), "{token}");
            }
        }
    }
}

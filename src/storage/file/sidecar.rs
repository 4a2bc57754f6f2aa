//! The sidecar file that records which ranges of a cache file are valid,
//! and the `.validator` file kept beside a complete one.
//!
//! # Sidecar format (`<data path>.ranges`, UTF-8 text, version 2)
//!
//! ```text
//! kithara-stream ranges v2
//! state active                 (or: state committed <final_len>)
//! length <n>                   (optional: the length the server announced)
//! validator etag "<tag>"       (optional; or: validator last-modified <date>)
//! range <start> <end>          (zero or more, half-open, ascending)
//! ```
//!
//! The validator is the strong `ETag` (else `Last-Modified`) of the version
//! whose bytes the ranges hold; a resume sends it in `If-Range`, so a changed
//! resource is never spliced. A version 1 sidecar (no `length`, no
//! `validator`) is still read: its ranges are resumed after a check of the
//! total length only, which cannot tell two versions of the same length
//! apart (weaker; the next save writes version 2).
//!
//! A data file **without** a sidecar is complete: it opens committed with
//! its file length. A data file **with** a sidecar is partial: only the
//! recorded ranges are trusted (resume). The sidecar is written when the
//! resource is created (empty, so a crash before the first flush trusts
//! nothing; on a helper thread that the first data write waits for), on
//! [`flush`](crate::storage::StorageResource::flush), `fail`, `reactivate`
//! and drop (which records a resource whose announced length is fully
//! present as complete), and removed by a commit that leaves no gap. Every rewrite goes
//! through `<sidecar>.tmp` + rename, after `sync_data` on the data file, so
//! the sidecar never claims bytes that are not on disk.
//!
//! When the sidecar goes (the file is complete), a known validator is kept
//! in `<data path>.validator` (one line, as in the sidecar, not synced: it
//! only serves an opt-in revalidation, and a lost one means a full
//! download). A fresh file or a reset removes it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::net::Validator;
use crate::storage::{RangeSet, StorageError};

const MAGIC: &str = "kithara-stream ranges v2";
const MAGIC_V1: &str = "kithara-stream ranges v1";
/// Suffix of the file that keeps a complete file's validator.
const VALIDATOR_SUFFIX: &str = ".validator";

/// What a sidecar records besides the ranges: the version of the bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Version {
    /// The strong validator of the stored version, if the server sent one.
    pub(crate) validator: Option<Validator>,
    /// The total length the server announced for it.
    pub(crate) length: Option<u64>,
}

/// Suffix of the sidecar file that records the valid ranges of a partially
/// written file-backed resource (`song.mp3` → `song.mp3.ranges`). A data
/// file without a sidecar is complete.
pub const SIDECAR_SUFFIX: &str = ".ranges";

/// `<path>.ranges`.
pub(crate) fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// What an existing sidecar says.
pub(crate) struct SidecarState {
    pub(crate) committed: Option<u64>,
    pub(crate) ranges: RangeSet,
    /// Empty for a version 1 sidecar.
    pub(crate) version: Version,
}

/// Reads the sidecar of `path`; `Ok(None)` if there is none.
pub(crate) fn load_sidecar(path: &Path) -> Result<Option<SidecarState>, StorageError> {
    let side = sidecar_path(path);
    let text = match fs::read_to_string(&side) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason: &str| StorageError::CorruptMetadata {
        path: side.clone(),
        reason: reason.to_owned(),
    };
    let mut lines = text.lines();
    let v2 = match lines.next() {
        Some(MAGIC) => true,
        Some(MAGIC_V1) => false,
        _ => return Err(corrupt("bad header")),
    };
    let mut committed = None;
    let mut ranges = RangeSet::new();
    let mut version = Version::default();
    for line in lines {
        if v2 && line.starts_with("validator ") {
            version.validator =
                Some(parse_validator_line(line).ok_or_else(|| corrupt("bad validator"))?);
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("length"), Some(n), None, None) if v2 => {
                version.length = Some(n.parse().map_err(|_| corrupt("bad length"))?);
            }
            (Some("state"), Some("active"), None, None) => committed = None,
            (Some("state"), Some("committed"), Some(n), None) => {
                committed = Some(n.parse().map_err(|_| corrupt("bad final length"))?);
            }
            (Some("range"), Some(s), Some(e), None) => {
                let s: u64 = s.parse().map_err(|_| corrupt("bad range start"))?;
                let e: u64 = e.parse().map_err(|_| corrupt("bad range end"))?;
                if s > e {
                    return Err(corrupt("inverted range"));
                }
                ranges.insert(s..e);
            }
            (None, ..) => {}
            _ => return Err(corrupt("unknown line")),
        }
    }
    Ok(Some(SidecarState {
        committed,
        ranges,
        version,
    }))
}

/// The sidecar's text.
pub(super) fn sidecar_text(committed: Option<u64>, ranges: &RangeSet, version: &Version) -> String {
    let mut text = String::with_capacity(128 + ranges.range_count() * 24);
    text.push_str(MAGIC);
    text.push('\n');
    match committed {
        Some(len) => text.push_str(&format!("state committed {len}\n")),
        None => text.push_str("state active\n"),
    }
    if let Some(len) = version.length {
        text.push_str(&format!("length {len}\n"));
    }
    if let Some(v) = &version.validator {
        text.push_str(&validator_line(v));
        text.push('\n');
    }
    for r in ranges.iter() {
        text.push_str(&format!("range {} {}\n", r.start, r.end));
    }
    text
}

/// Writes a sidecar durably: `<side>.tmp`, `sync_data`, rename.
pub(super) fn write_sidecar(side: &Path, text: &str) -> io::Result<()> {
    crate::offload::note_blocking("write_sidecar");
    let mut tmp = side.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
    }
    fs::rename(&tmp, side)
}

/// `<path>.validator`.
pub(super) fn validator_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(VALIDATOR_SUFFIX);
    PathBuf::from(s)
}

/// `validator etag "<tag>"` or `validator last-modified <date>`.
pub(super) fn validator_line(v: &Validator) -> String {
    match v {
        Validator::ETag(t) => format!("validator etag {t}"),
        Validator::LastModified(d) => format!("validator last-modified {d}"),
    }
}

/// The inverse of [`validator_line`]; `None` if `line` is not one.
fn parse_validator_line(line: &str) -> Option<Validator> {
    let rest = line.strip_prefix("validator ")?;
    let (kind, value) = rest.split_once(' ')?;
    let value = value.trim();
    let v = match kind {
        "etag" => Validator::ETag(value.to_owned()),
        "last-modified" => Validator::LastModified(value.to_owned()),
        _ => return None,
    };
    // Only values that can go back on the wire.
    v.header_value().map(|_| v)
}

/// The validator kept next to a complete file, if any (unreadable or
/// malformed: none, so a revalidation downloads again).
pub(crate) fn load_validator(path: &Path) -> Option<Validator> {
    let text = fs::read_to_string(validator_path(path)).ok()?;
    parse_validator_line(text.lines().next()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::storage::{ResourceStatus, StorageResource};

    fn etag() -> Option<Validator> {
        Some(Validator::ETag("\"v1\"".into()))
    }

    #[test]
    fn a_partial_file_keeps_its_validator_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        {
            let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
            r.write_at(0, &[1; 100]).unwrap();
            r.set_len_hint(Some(1000));
            r.set_validator(etag());
        }
        let text = fs::read_to_string(sidecar_path(&path)).unwrap();
        assert_eq!(
            text,
            "kithara-stream ranges v2\nstate active\nlength 1000\nvalidator etag \"v1\"\nrange 0 100\n"
        );
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert_eq!(r.validator(), etag());
        assert_eq!(r.len_hint(), Some(1000));
        assert!(r.contains_range(0..100));
        let date = Validator::LastModified("Mon, 30 Nov 2026 10:00:00 GMT".into());
        r.set_validator(Some(date.clone()));
        drop(r);
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert_eq!(r.validator(), Some(date));
    }

    #[test]
    fn a_version_1_sidecar_resumes_without_a_validator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.bin");
        fs::write(&path, [7u8; 50]).unwrap();
        fs::write(
            sidecar_path(&path),
            "kithara-stream ranges v1\nstate active\nrange 0 50\n",
        )
        .unwrap();
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert!(r.contains_range(0..50));
        assert_eq!(r.validator(), None);
        assert_eq!(r.len_hint(), None);
        drop(r);
        // v1 knows no validator or length line.
        fs::write(
            sidecar_path(&path),
            "kithara-stream ranges v1\nstate active\nlength 50\n",
        )
        .unwrap();
        assert!(matches!(
            StorageResource::open_file(&path, CancelToken::new()),
            Err(StorageError::CorruptMetadata { .. })
        ));
        fs::write(
            sidecar_path(&path),
            "kithara-stream ranges v2\nstate active\nvalidator etag\n",
        )
        .unwrap();
        assert!(matches!(
            StorageResource::open_file(&path, CancelToken::new()),
            Err(StorageError::CorruptMetadata { .. })
        ));
    }

    #[test]
    fn a_complete_file_keeps_its_validator_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, &[3; 64]).unwrap();
        r.set_len_hint(Some(64));
        r.set_validator(etag());
        r.commit(Some(64)).unwrap();
        drop(r);
        assert!(!sidecar_path(&path).exists());
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert_eq!(r.status(), ResourceStatus::Committed { final_len: 64 });
        assert_eq!(r.validator(), etag());
        drop(r);
        // A fresh download at the same path forgets it.
        fs::remove_file(&path).unwrap();
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, &[1]).unwrap();
        assert_eq!(r.validator(), None);
        assert!(!validator_path(&path).exists());
    }

    #[test]
    fn reset_forgets_every_byte_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.bin");
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, &[5; 4096]).unwrap();
        r.set_len_hint(Some(8192));
        r.set_validator(etag());
        r.flush().unwrap();
        r.reset().unwrap();
        assert!(r.available().is_empty());
        assert_eq!(r.validator(), None);
        assert_eq!(r.len_hint(), None);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(
            fs::read_to_string(sidecar_path(&path)).unwrap(),
            "kithara-stream ranges v2\nstate active\n"
        );
        // The new version is written and tracked as usual.
        r.write_at(0, &[6; 10]).unwrap();
        let mut buf = [0; 10];
        assert_eq!(r.read_at(0, &mut buf).unwrap(), 10);
        assert_eq!(buf, [6; 10]);
        // A memory resource resets too.
        let m = StorageResource::memory(CancelToken::new());
        m.write_at(0, b"old").unwrap();
        m.set_validator(etag());
        m.reset().unwrap();
        assert!(!m.contains_range(0..1) && m.validator().is_none());
    }
}

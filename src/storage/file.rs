//! The file backend: positional reads and writes on a real file, and the
//! sidecar file that records which ranges of it are valid.
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
//! [`flush`](super::StorageResource::flush), `fail`, `reactivate` and drop
//! (which records a resource whose announced length is fully present as
//! complete), and removed by a commit that leaves no gap. Every rewrite goes
//! through `<sidecar>.tmp` + rename, after `sync_data` on the data file, so
//! the sidecar never claims bytes that are not on disk.
//!
//! When the sidecar goes (the file is complete), a known validator is kept
//! in `<data path>.validator` (one line, as in the sidecar, not synced: it
//! only serves an opt-in revalidation, and a lost one means a full
//! download). A fresh file or a reset removes it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{RangeSet, StorageError};
use crate::cancel::lock;
use crate::net::Validator;

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

/// Positional I/O on one file.
pub(crate) struct FileData {
    #[cfg(any(unix, windows))]
    file: File,
    #[cfg(not(any(unix, windows)))]
    file: std::sync::Mutex<File>,
    pub(crate) path: PathBuf,
    /// Whether this resource keeps a sidecar (false for temp files).
    pub(crate) persistent: bool,
    /// Whether the data file is deleted on drop (temp files).
    pub(crate) delete_on_drop: bool,
    /// A fresh file's first (empty) sidecar, made durable on a helper
    /// thread: see [`start_first_sidecar`](Self::start_first_sidecar).
    first_sidecar: Mutex<FirstSidecar>,
    first_sidecar_done: AtomicBool,
    /// The version the next sidecar records.
    version: Mutex<Version>,
}

enum FirstSidecar {
    Done,
    Running(JoinHandle<io::Result<()>>),
    Failed(io::ErrorKind, String),
}

impl FileData {
    pub(crate) fn new(file: File, path: PathBuf, persistent: bool, delete_on_drop: bool) -> Self {
        Self {
            #[cfg(any(unix, windows))]
            file,
            #[cfg(not(any(unix, windows)))]
            file: std::sync::Mutex::new(file),
            path,
            persistent,
            delete_on_drop,
            first_sidecar: Mutex::new(FirstSidecar::Done),
            first_sidecar_done: AtomicBool::new(true),
            version: Mutex::new(Version::default()),
        }
    }

    /// Sets the version the next sidecar (or `.validator` file) records.
    pub(crate) fn set_version(&self, version: Version) {
        *lock(&self.version) = version;
    }

    /// Writes the empty sidecar of a fresh file (so a crash never makes the
    /// file look complete) on a helper thread: its `fsync` and rename take
    /// 0.4 ms to several ms, and the caller can start the download meanwhile.
    /// Every data write and sidecar update waits for it first
    /// ([`first_sidecar`](Self::first_sidecar)), so no data byte can reach
    /// the disk before the sidecar does. Without a thread, writes it here.
    pub(crate) fn start_first_sidecar(&self) -> io::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        let side = self.sidecar();
        let text = sidecar_text(None, &RangeSet::new(), &Version::default());
        // A validator file of an earlier, complete download is stale now.
        remove_if_exists(&validator_path(&self.path))?;
        let job = std::thread::Builder::new()
            .name("kithara-sidecar".into())
            .spawn({
                let side = side.clone();
                let text = text.clone();
                move || write_sidecar(&side, &text)
            });
        match job {
            Ok(handle) => {
                *lock(&self.first_sidecar) = FirstSidecar::Running(handle);
                self.first_sidecar_done.store(false, Ordering::Release);
                Ok(())
            }
            Err(_) => write_sidecar(&side, &text),
        }
    }

    /// Waits for [`start_first_sidecar`](Self::start_first_sidecar)'s
    /// thread; its error, if any, again on every later call.
    fn first_sidecar(&self) -> io::Result<()> {
        if self.first_sidecar_done.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut job = lock(&self.first_sidecar);
        let res = match std::mem::replace(&mut *job, FirstSidecar::Done) {
            FirstSidecar::Done => Ok(()),
            FirstSidecar::Running(handle) => {
                crate::offload::note_blocking("first sidecar wait");
                handle.join()
            }
            .unwrap_or_else(|_| Err(io::Error::other("the sidecar writer panicked"))),
            FirstSidecar::Failed(kind, message) => Err(io::Error::new(kind, message)),
        };
        match &res {
            Ok(()) => self.first_sidecar_done.store(true, Ordering::Release),
            Err(e) => *job = FirstSidecar::Failed(e.kind(), e.to_string()),
        }
        res
    }

    pub(crate) fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_once(offset, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "data file shorter than its recorded ranges",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(crate) fn write_all_at(&self, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
        self.first_sidecar()?;
        while !data.is_empty() {
            match self.write_once(offset, data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(unix)]
    fn read_once(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(unix)]
    fn write_once(&self, offset: u64, data: &[u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.file, data, offset)
    }

    #[cfg(windows)]
    fn read_once(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn write_once(&self, offset: u64, data: &[u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_write(&self.file, data, offset)
    }

    #[cfg(not(any(unix, windows)))]
    fn read_once(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = crate::cancel::lock(&self.file);
        f.seek(SeekFrom::Start(offset))?;
        f.read(buf)
    }

    #[cfg(not(any(unix, windows)))]
    fn write_once(&self, offset: u64, data: &[u8]) -> io::Result<usize> {
        use std::io::{Seek, SeekFrom};
        let mut f = crate::cancel::lock(&self.file);
        f.seek(SeekFrom::Start(offset))?;
        f.write(data)
    }

    fn with_file<R>(&self, f: impl FnOnce(&File) -> io::Result<R>) -> io::Result<R> {
        #[cfg(any(unix, windows))]
        {
            f(&self.file)
        }
        #[cfg(not(any(unix, windows)))]
        {
            f(&crate::cancel::lock(&self.file))
        }
    }

    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        crate::offload::note_blocking("set_len");
        self.with_file(|f| f.set_len(len))
    }

    pub(crate) fn sync_data(&self) -> io::Result<()> {
        crate::offload::note_blocking("sync_data");
        self.with_file(File::sync_data)
    }

    /// Waits for the first sidecar (see
    /// [`start_first_sidecar`](Self::start_first_sidecar)); its error, if any.
    pub(crate) fn settle(&self) -> io::Result<()> {
        self.first_sidecar()
    }

    pub(crate) fn sidecar(&self) -> PathBuf {
        sidecar_path(&self.path)
    }

    /// Records `ranges` (and the committed length, if any) in the sidecar,
    /// after syncing the data they describe.
    pub(crate) fn save_sidecar(&self, committed: Option<u64>, ranges: &RangeSet) -> io::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        self.first_sidecar()?;
        self.sync_data()?;
        let version = lock(&self.version).clone();
        write_sidecar(&self.sidecar(), &sidecar_text(committed, ranges, &version))
    }

    /// Removes the sidecar: the data file is now complete. A known
    /// validator moves to `<path>.validator`.
    pub(crate) fn remove_sidecar(&self) -> io::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        self.first_sidecar()?;
        self.sync_data()?;
        let version = lock(&self.version).clone();
        let vpath = validator_path(&self.path);
        match &version.validator {
            // Advisory (see the module docs): not synced.
            Some(v) => fs::write(&vpath, format!("{}\n", validator_line(v)))?,
            None => remove_if_exists(&vpath)?,
        }
        remove_if_exists(&self.sidecar())
    }

    /// Forgets every recorded byte: the data file is truncated to 0, the
    /// version cleared, and the sidecar says "nothing" (durably).
    pub(crate) fn reset(&self) -> io::Result<()> {
        *lock(&self.version) = Version::default();
        self.set_len(0)?;
        if self.persistent {
            remove_if_exists(&validator_path(&self.path))?;
        }
        self.save_sidecar(None, &RangeSet::new())
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `<path>.validator`.
fn validator_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(VALIDATOR_SUFFIX);
    PathBuf::from(s)
}

/// `validator etag "<tag>"` or `validator last-modified <date>`.
fn validator_line(v: &Validator) -> String {
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

/// The sidecar's text.
fn sidecar_text(committed: Option<u64>, ranges: &RangeSet, version: &Version) -> String {
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
fn write_sidecar(side: &Path, text: &str) -> io::Result<()> {
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

impl Drop for FileData {
    fn drop(&mut self) {
        // A sidecar thread still running must not rename after we are gone.
        let _ = self.first_sidecar();
        if self.delete_on_drop {
            let _ = fs::remove_file(&self.path);
        }
    }
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

/// Opens (creating if needed) `path` for reading and writing.
pub(crate) fn open_rw(path: &Path) -> io::Result<File> {
    crate::offload::note_blocking("open");
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
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

//! The file backend: positional reads and writes on a real file, and the
//! sidecar file that records which ranges of it are valid.
//!
//! # Sidecar format (`<data path>.ranges`, UTF-8 text, version 1)
//!
//! ```text
//! kithara-stream ranges v1
//! state active                 (or: state committed <final_len>)
//! range <start> <end>          (zero or more, half-open, ascending)
//! ```
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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{RangeSet, StorageError};
use crate::cancel::lock;

const MAGIC: &str = "kithara-stream ranges v1";

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
        }
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
        let text = sidecar_text(None, &RangeSet::new());
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
        write_sidecar(&self.sidecar(), &sidecar_text(committed, ranges))
    }

    /// Removes the sidecar: the data file is now complete.
    pub(crate) fn remove_sidecar(&self) -> io::Result<()> {
        if !self.persistent {
            return Ok(());
        }
        self.first_sidecar()?;
        self.sync_data()?;
        match fs::remove_file(self.sidecar()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The sidecar's text.
fn sidecar_text(committed: Option<u64>, ranges: &RangeSet) -> String {
    let mut text = String::with_capacity(64 + ranges.range_count() * 24);
    text.push_str(MAGIC);
    text.push('\n');
    match committed {
        Some(len) => text.push_str(&format!("state committed {len}\n")),
        None => text.push_str("state active\n"),
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

/// `<path>.ranges`.
pub(crate) fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(super::SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// What an existing sidecar says.
pub(crate) struct SidecarState {
    pub(crate) committed: Option<u64>,
    pub(crate) ranges: RangeSet,
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
    if lines.next() != Some(MAGIC) {
        return Err(corrupt("bad header"));
    }
    let mut committed = None;
    let mut ranges = RangeSet::new();
    for line in lines {
        let mut words = line.split_ascii_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
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
    Ok(Some(SidecarState { committed, ranges }))
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

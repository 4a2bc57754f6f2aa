//! The file backend: positional reads and writes on a real file. Which
//! ranges of it are valid is recorded in a sidecar file (see [`sidecar`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::RangeSet;
use crate::cancel::lock;

mod sidecar;

pub use sidecar::SIDECAR_SUFFIX;
pub(crate) use sidecar::{Version, load_sidecar, load_validator};
use sidecar::{sidecar_path, sidecar_text, validator_line, validator_path, write_sidecar};

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

impl Drop for FileData {
    fn drop(&mut self) {
        // A sidecar thread still running must not rename after we are gone.
        let _ = self.first_sidecar();
        if self.delete_on_drop {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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

//! The constructors of [`StorageResource`]: memory, bounded, bytes, files.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use event_listener::Event;

use super::{Data, Inner, State, StorageResource};
use crate::cancel::CancelToken;
use crate::storage::StorageResult;
use crate::storage::claim::{PATH_CLAIM_TIMEOUT, PathClaim};
use crate::storage::file::{self, FileData};
use crate::storage::memory::Pages;
use crate::storage::ring::Ring;

impl StorageResource {
    fn build(
        cancel: CancelToken,
        data: Data,
        path: Option<PathBuf>,
        state: State,
        claim: Option<PathClaim>,
    ) -> Self {
        let event = Arc::new(Event::new());
        let ev = event.clone();
        let hook = cancel.on_cancel(move || {
            ev.notify(usize::MAX);
        });
        let is_file = matches!(data, Data::File(_));
        let ring_wait = match &data {
            Data::Ring(r) => Some((r.max_wait(), r.wake_step())),
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                data: RwLock::new(data),
                event,
                cancel,
                path,
                persist: Mutex::new(()),
                is_file,
                offload: OnceLock::new(),
                claim,
                ring_wait,
                _hook: hook,
            }),
        }
    }

    /// An empty, active, memory-backed resource. Never blocks.
    pub fn memory(cancel: CancelToken) -> Self {
        Self::build(
            cancel,
            Data::Memory(Pages::default()),
            None,
            State::default(),
            None,
        )
    }

    /// An empty, active, memory-backed resource that never holds more than
    /// `budget` bytes (rounded up to 64 KiB pages, at least
    /// [`MIN_BUDGET`](crate::storage::MIN_BUDGET)), however long the stream: an
    /// internet radio, an hours-long podcast. Never blocks.
    ///
    /// The resource follows its reader: the position of the last
    /// [`wait_range`](Self::wait_range)/[`check_range`](Self::check_range)
    /// start and the end of the last [`read_at`](Self::read_at) past it.
    /// Up to `look_behind` bytes (at most a quarter of the budget) behind
    /// the reader are kept, so a decoder's small backward seeks stay local;
    /// bytes farther behind, then bytes far ahead, are evicted to make room
    /// (an evicted range is simply not present any more: `wait_range` waits
    /// for it, as for any missing range).
    ///
    /// Bytes the reader has not reached are never evicted: the writer waits
    /// for the reader instead, by awaiting [`writable`](Self::writable)
    /// before each write. A write that would need to evict them stores what
    /// has room and fails with
    /// [`BudgetExceeded`](crate::storage::StorageError::BudgetExceeded). A wait is clipped to
    /// what fits (about the budget minus the look-behind): a reader asking
    /// for more gets `Ready` once that much is present, and `read_at` returns
    /// it.
    ///
    /// ```
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let res = StorageResource::bounded(1 << 20, 64 << 10, CancelToken::new());
    /// let mut buf = vec![0u8; 64 << 10];
    /// let mut offset = 0u64;
    /// // 16 MiB through a 1 MiB budget: the writer waits for the reader.
    /// for i in 0..256u64 {
    ///     let chunk = vec![i as u8; 64 << 10];
    ///     assert!(res.is_writable(offset));
    ///     res.write_at(offset, &chunk).unwrap();
    ///     assert_eq!(res.read_at(offset, &mut buf).unwrap(), chunk.len());
    ///     assert_eq!(buf, chunk);
    ///     offset += chunk.len() as u64;
    /// }
    /// assert!(res.resident_bytes() <= 1 << 20);
    /// assert!(!res.contains_range(0..1), "evicted long ago");
    /// ```
    pub fn bounded(budget: u64, look_behind: u64, cancel: CancelToken) -> Self {
        Self::build(
            cancel,
            Data::Ring(Ring::new(budget, look_behind)),
            None,
            State::default(),
            None,
        )
    }

    /// A memory-backed resource holding `data`, already committed with
    /// `final_len = data.len()`.
    pub fn from_bytes(data: &[u8], cancel: CancelToken) -> Self {
        let pages = Pages::default();
        pages.write(0, data);
        let len = data.len() as u64;
        let mut state = State {
            committed: Some(len),
            ..State::default()
        };
        state.available.insert(0..len);
        Self::build(cancel, Data::Memory(pages), None, state, None)
    }

    /// Opens (or creates) a file-backed resource at `path`. Blocking file I/O.
    ///
    /// - No sidecar and a non-empty file: a complete file from an earlier run
    ///   (or any existing file): the resource starts **committed** with the
    ///   file's length and all of it readable.
    /// - A sidecar (`<path>.ranges`): a partial download; the recorded ranges
    ///   (clipped to the file's length) are readable and the recorded state
    ///   (active, or committed with gaps) is restored.
    /// - Otherwise (missing or empty file): a fresh, active resource. An
    ///   empty sidecar is made durable before the first data byte is written,
    ///   so a crash never makes the file look complete. It is written on a
    ///   short-lived helper thread, so the open does not wait for the disk
    ///   (its `fsync` takes 0.4 ms to several ms) and a download can start
    ///   meanwhile; the first write waits for it.
    ///
    /// One resource per path at a time: the open waits (up to
    /// [`PATH_CLAIM_TIMEOUT`], then [`StorageError::PathInUse`](crate::storage::StorageError::PathInUse)) until an
    /// earlier resource on the same file is gone and its last sidecar record
    /// is written, so it resumes from what that one stored.
    ///
    /// ```
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("song.mp3");
    /// let res = StorageResource::open_file(&path, CancelToken::new())?;
    /// res.write_at(0, b"hello")?; // a partial download: 5 bytes, not committed
    /// drop(res); // the last handle records the sidecar `song.mp3.ranges`
    ///
    /// let res = StorageResource::open_file(&path, CancelToken::new())?;
    /// assert!(res.contains_range(0..5) && res.len().is_none(), "resumes");
    /// res.write_at(5, b" world")?;
    /// res.commit(Some(11))?;
    /// drop(res);
    ///
    /// let res = StorageResource::open_file(&path, CancelToken::new())?;
    /// assert_eq!(res.len(), Some(11), "complete: opens committed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_file(path: impl AsRef<Path>, cancel: CancelToken) -> StorageResult<Self> {
        let path = path.as_ref().to_path_buf();
        let f = file::open_rw(&path)?;
        let claim = PathClaim::acquire(&path, PATH_CLAIM_TIMEOUT)?;
        let file_len = f.metadata()?.len();
        let data = FileData::new(f, path.clone(), true, false);
        let mut state = State::default();
        match file::load_sidecar(&path)? {
            Some(sc) => {
                state.available = sc.ranges;
                state.available.truncate(file_len);
                state.committed = sc.committed;
                state.len_hint = sc.version.length;
                state.validator.clone_from(&sc.version.validator);
                data.set_version(sc.version);
                if let Some(l) = state.committed {
                    state.available.truncate(l);
                }
            }
            None if file_len > 0 => {
                state.available.insert(0..file_len);
                state.committed = Some(file_len);
                state.validator = file::load_validator(&path);
                data.set_version(file::Version {
                    validator: state.validator.clone(),
                    length: Some(file_len),
                });
            }
            None => data.start_first_sidecar()?,
        }
        Ok(Self::build(
            cancel,
            Data::File(data),
            Some(path),
            state,
            Some(claim),
        ))
    }

    /// A fresh, active resource backed by a new file in
    /// [`std::env::temp_dir`], deleted when the last handle drops. No sidecar.
    /// For downloads too large for memory that need not outlive the process.
    ///
    /// ```
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let res = StorageResource::temp_file(CancelToken::new())?;
    /// let path = res.path().expect("file-backed").to_path_buf();
    /// res.write_at(0, b"abc")?;
    /// res.commit(None)?; // the length is what was written
    /// let mut buf = [0u8; 3];
    /// assert_eq!(res.read_at(0, &mut buf)?, 3);
    /// assert_eq!((&buf, res.len()), (b"abc", Some(3)));
    /// drop(res);
    /// assert!(!path.exists(), "deleted with the last handle");
    /// # Ok::<(), kithara_stream::storage::StorageError>(())
    /// ```
    pub fn temp_file(cancel: CancelToken) -> StorageResult<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last_err = None;
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "kithara-stream-{}-{nanos}-{n}.tmp",
                std::process::id()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => {
                    let data = FileData::new(f, path.clone(), false, true);
                    return Ok(Self::build(
                        cancel,
                        Data::File(data),
                        Some(path),
                        State::default(),
                        None,
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_err
            .unwrap_or_else(|| io::Error::other("no free temp file name"))
            .into())
    }
}

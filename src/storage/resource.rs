//! [`StorageResource`]: the shared, range-tracked byte store.

use std::fmt;
use std::fs::OpenOptions;
use std::future::Future;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use event_listener::{Event, EventListener, Listener};

use super::claim::{PATH_CLAIM_TIMEOUT, PathClaim};
use super::file::{self, FileData};
use super::memory::Pages;
use super::ring::Ring;
use super::{RangeSet, ResourceStatus, StorageError, StorageResult, WaitOutcome};
use crate::cancel::{CancelHook, CancelToken, lock};
use crate::net::Validator;
use crate::offload::Offload;

/// A resource's bytes plus the ranges of them that were actually written.
///
/// Cloning is cheap (an `Arc` bump) and yields a handle to the **same**
/// resource: the writer keeps one clone, the reader another.
///
/// # Backends
/// - [`memory`](Self::memory) / [`from_bytes`](Self::from_bytes): 1 MiB pages
///   allocated only where bytes are written (growth is driven by writes,
///   never by an announced length).
/// - [`open_file`](Self::open_file): a real file with positional I/O. A
///   complete file from an earlier run opens committed (a cache); a partial
///   one keeps its recorded ranges (resume). See [`SIDECAR_SUFFIX`](super::SIDECAR_SUFFIX).
/// - [`temp_file`](Self::temp_file): an anonymous file in the temp dir,
///   deleted when the last handle drops.
///
/// # Waiting
/// Every state change ([`write_at`](Self::write_at), [`commit`](Self::commit),
/// [`fail`](Self::fail), [`reactivate`](Self::reactivate),
/// [`set_len_hint`](Self::set_len_hint),
/// [`notify_waiters`](Self::notify_waiters)) and the resource's cancel token
/// notify one event. [`wait_range`](Self::wait_range) blocks on it with a
/// deadline, [`wait_range_async`](Self::wait_range_async) awaits it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use kithara_stream::cancel::CancelToken;
/// use kithara_stream::storage::{StorageResource, WaitOutcome};
///
/// let res = StorageResource::memory(CancelToken::new());
/// let writer = res.clone();
/// let t = std::thread::spawn(move || {
///     writer.write_at(0, b"hello").unwrap();
///     writer.commit(None).unwrap();
/// });
/// let deadline = Instant::now() + Duration::from_secs(5);
/// assert_eq!(res.wait_range(0..5, Some(deadline)).unwrap(), WaitOutcome::Ready);
/// let mut buf = [0u8; 8];
/// assert_eq!(res.read_at(0, &mut buf).unwrap(), 5);
/// t.join().unwrap();
/// assert_eq!(res.wait_range(5..6, Some(deadline)).unwrap(), WaitOutcome::Eof);
/// ```
#[derive(Clone)]
pub struct StorageResource {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    data: RwLock<Data>,
    /// Shared with the cancel hook, which must not keep `Inner` alive.
    event: Arc<Event>,
    cancel: CancelToken,
    path: Option<PathBuf>,
    /// Serialises sidecar rewrites so the last snapshot taken is the last written.
    persist: Mutex<()>,
    /// Whether the backend is a file (sidecar bookkeeping applies).
    is_file: bool,
    /// Where `fail` and the last drop record the sidecar (blocking file
    /// work); inline when unset.
    offload: OnceLock<Offload>,
    /// A cache file's claim on its path, released once the last record is
    /// written.
    claim: Option<PathClaim>,
    /// For the bounded backend: how far past its start a wait may reach
    /// (see `Ring::max_wait`), and how far the reader moves before a
    /// blocked writer is woken (see `Ring::wake_step`).
    ring_wait: Option<(u64, u64)>,
    _hook: CancelHook,
}

enum Data {
    Memory(Pages),
    File(FileData),
    Ring(Ring),
}

#[derive(Default)]
struct State {
    available: RangeSet,
    /// `Some(final_len)` once committed.
    committed: Option<u64>,
    failed: Option<String>,
    len_hint: Option<u64>,
    /// A commit's sync and sidecar update succeeded and nothing changed
    /// since: dropping the last handle has nothing left to record.
    on_disk: bool,
    /// The validator of the version whose bytes are stored.
    validator: Option<Validator>,
    /// Bounded backend: the reader's position (see `note_reader`).
    cursor: u64,
    /// Bounded backend: a writer waits for the reader to move on, to write
    /// at `.0`; the reader was at `.1` then.
    writer_blocked: Option<(u64, u64)>,
}

fn read_data(l: &RwLock<Data>) -> RwLockReadGuard<'_, Data> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_data(l: &RwLock<Data>) -> RwLockWriteGuard<'_, Data> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for StorageResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("StorageResource")
            .field("path", &self.inner.path)
            .field("available", &st.available)
            .field("committed", &st.committed)
            .field("failed", &st.failed)
            .field("cancelled", &self.inner.cancel.is_cancelled())
            .finish()
    }
}

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
    /// [`MIN_BUDGET`](super::MIN_BUDGET)), however long the stream: an
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
    /// [`BudgetExceeded`](StorageError::BudgetExceeded). A wait is clipped to
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
    /// [`PATH_CLAIM_TIMEOUT`], then [`StorageError::PathInUse`]) until an
    /// earlier resource on the same file is gone and its last sidecar record
    /// is written, so it resumes from what that one stored.
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

    /// The backing file, if file-backed.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The resource's cancel token. Cancelling it makes every operation
    /// return [`StorageError::Cancelled`] and wakes every waiter at once.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.inner.cancel
    }

    fn health(&self, st: &State) -> StorageResult<()> {
        if let Some(r) = &st.failed {
            return Err(StorageError::Failed(r.clone()));
        }
        if self.inner.cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        Ok(())
    }

    fn notify(&self) {
        self.inner.event.notify(usize::MAX);
    }

    /// Writes `data` at `offset` and marks that range present, then wakes
    /// waiters. May block briefly on file I/O; never waits for readers.
    ///
    /// Errors: [`Cancelled`](StorageError::Cancelled),
    /// [`Failed`](StorageError::Failed),
    /// [`WriteAfterCommit`](StorageError::WriteAfterCommit),
    /// [`InvalidRange`](StorageError::InvalidRange) if `offset + len`
    /// overflows, [`Io`](StorageError::Io). An empty write is a no-op.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> StorageResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(StorageError::InvalidRange {
                start: offset,
                end: u64::MAX,
            })?;
        // The data lock is held from the check to the insert: a commit sets
        // its length first and truncates the file only under the exclusive
        // lock, so it can neither slip between the check and the write (and
        // truncate under it) nor drop these bytes without this write seeing it.
        if self.inner.ring_wait.is_some() {
            // Its own checks, under the exclusive data lock.
            return self.write_ring(offset, data);
        }
        let guard = read_data(&self.inner.data);
        {
            let st = lock(&self.inner.state);
            self.health(&st)?;
            if st.committed.is_some() {
                return Err(StorageError::WriteAfterCommit);
            }
        }
        // Both backends write under the shared data lock: file I/O is
        // positional and memory pages have their own locks. Only a commit
        // (file truncation) takes it exclusively.
        match &*guard {
            Data::File(f) => f.write_all_at(offset, data)?,
            Data::Memory(pages) => pages.write(offset, data),
            Data::Ring(_) => {}
        }
        let landed = {
            let mut st = lock(&self.inner.state);
            st.available.insert(offset..end);
            match st.committed {
                // A commit raced this write: the committed length wins, and
                // the bytes past it are lost, which must not look like success.
                Some(l) => {
                    st.available.truncate(l);
                    end <= l
                }
                None => true,
            }
        };
        drop(guard);
        self.notify();
        if !landed {
            return Err(StorageError::WriteAfterCommit);
        }
        Ok(())
    }

    /// Copies present bytes starting at `offset` into `buf` and returns how
    /// many: the length of the contiguous written run at `offset`, capped by
    /// `buf.len()` and the committed length. `Ok(0)` means no byte is present
    /// at `offset` (a gap, or past the end); unwritten bytes are **never**
    /// returned as zeros. Does not block on writers; call
    /// [`wait_range`](Self::wait_range) first to wait for data.
    ///
    /// Present bytes stay readable after [`fail`](Self::fail): only a read
    /// at a missing byte of a failed resource returns
    /// [`Failed`](StorageError::Failed).
    ///
    /// Errors: [`Cancelled`](StorageError::Cancelled),
    /// [`Failed`](StorageError::Failed) (nothing present at `offset`),
    /// [`Io`](StorageError::Io).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> StorageResult<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Hold the data lock across the check and the copy so a concurrent
        // commit cannot truncate the file in between (lock order: data, state).
        let data = read_data(&self.inner.data);
        let n = {
            let st = lock(&self.inner.state);
            if self.inner.cancel.is_cancelled() {
                return Err(StorageError::Cancelled);
            }
            let mut end = st.available.covered_from(offset);
            if let Some(l) = st.committed {
                end = end.min(l);
            }
            let n = usize::try_from(end.saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(buf.len());
            if n == 0 {
                // Stored bytes stay readable after a failure; only a read
                // that needs a missing byte gets it.
                self.health(&st)?;
                return Ok(0);
            }
            n
        };
        match &*data {
            Data::Memory(pages) => pages.read(offset, &mut buf[..n]),
            Data::File(f) => f.read_exact_at(offset, &mut buf[..n])?,
            Data::Ring(ring) => {
                ring.read(offset, &mut buf[..n]);
                drop(data);
                self.reader_passed(offset + n as u64);
            }
        }
        Ok(n)
    }

    /// Marks the resource complete and wakes waiters. `final_len = None`
    /// means "the end of the highest byte written". Bytes at or past the
    /// final length are dropped from the present set. Later writes fail with
    /// [`WriteAfterCommit`](StorageError::WriteAfterCommit) until
    /// [`reactivate`](Self::reactivate).
    ///
    /// A file-backed resource is synced and truncated/extended to the final
    /// length; if no gap remains its sidecar is removed (the file is now a
    /// complete cache entry), otherwise the sidecar records the gaps.
    /// Blocking file I/O.
    pub fn commit(&self, final_len: Option<u64>) -> StorageResult<()> {
        let _p = lock(&self.inner.persist);
        let (len, ranges) = {
            let mut st = lock(&self.inner.state);
            self.health(&st)?;
            let len = final_len.unwrap_or_else(|| st.available.end());
            st.available.truncate(len);
            st.committed = Some(len);
            (len, st.available.clone())
        };
        // Only the truncation needs readers out of the way.
        let truncated = match &*write_data(&self.inner.data) {
            Data::Memory(pages) => {
                pages.release_spare();
                Ok(())
            }
            Data::Ring(_) => Ok(()),
            Data::File(f) => f.set_len(len),
        };
        // Waiters learn the end now; the durability work below (an
        // `fdatasync` of the whole file, 100s of ms for a big one) runs under
        // the shared lock, so readers keep reading meanwhile. Until it is
        // done the sidecar still says "partial", so a crash in between loses
        // nothing: the next open resumes.
        self.notify();
        truncated?;
        if let Data::File(f) = &*read_data(&self.inner.data) {
            // An empty file without a sidecar reads as fresh, so an empty
            // complete resource keeps one saying "committed 0".
            if len > 0 && ranges.contains(0..len) {
                f.remove_sidecar()?;
            } else {
                f.save_sidecar(Some(len), &ranges)?;
            }
            lock(&self.inner.state).on_disk = true;
        }
        Ok(())
    }

    /// Marks the resource failed (the last reason wins, even after a commit)
    /// and wakes every waiter. A wait or read that needs a missing byte then
    /// returns [`Failed`](StorageError::Failed); bytes already present stay
    /// readable. [`recover`](Self::recover) clears it. A file-backed
    /// resource records its ranges so a later open can resume. Never fails.
    pub fn fail(&self, reason: impl Into<String>) {
        {
            let mut st = lock(&self.inner.state);
            st.failed = Some(reason.into());
            st.on_disk = false;
        }
        // Waiters learn it now; recording the ranges (a sync for a cache
        // file) can take a while, so it goes to the blocking pool if set.
        self.notify();
        match self.inner.offload.get() {
            Some(off) if self.inner.is_file => {
                let inner = self.inner.clone();
                off.run(move || {
                    let _ = inner.persist();
                });
            }
            _ => {
                let _ = self.persist();
            }
        }
    }

    /// Hands the blocking file work that `fail` and the last drop do (a
    /// sidecar record and its `fdatasync`) to `offload` instead of the
    /// calling thread, which may be an executor's. Set once; later calls
    /// are ignored.
    pub(crate) fn set_offload(&self, offload: Offload) {
        let _ = self.inner.offload.set(offload);
    }

    /// Waits for a fresh cache file's first sidecar (see
    /// [`open_file`](Self::open_file)), so later writes never wait for it.
    /// Blocking; a no-op for other resources.
    pub(crate) fn settle(&self) -> StorageResult<()> {
        match &*read_data(&self.inner.data) {
            Data::File(f) => Ok(f.settle()?),
            Data::Memory(_) | Data::Ring(_) => Ok(()),
        }
    }

    /// Clears a failure (a transient one: the writer will try again) and
    /// wakes waiters, which then wait for bytes again. Present bytes and the
    /// committed state are untouched. Returns whether the resource was
    /// failed. A no-op (`false`) on a resource that is not failed; a
    /// cancelled resource stays cancelled.
    pub fn recover(&self) -> bool {
        let was = lock(&self.inner.state).failed.take().is_some();
        if was {
            self.notify();
        }
        was
    }

    /// Re-opens a committed resource for writing (e.g. to fill gaps or
    /// append): status becomes active, the length unknown, present bytes are
    /// kept. A no-op on an active resource.
    ///
    /// Errors: [`Cancelled`](StorageError::Cancelled),
    /// [`Failed`](StorageError::Failed), [`Io`](StorageError::Io) (sidecar).
    pub fn reactivate(&self) -> StorageResult<()> {
        {
            let mut st = lock(&self.inner.state);
            self.health(&st)?;
            if st.committed.is_none() {
                return Ok(());
            }
            st.committed = None;
            st.on_disk = false;
        }
        let res = self.persist();
        self.notify();
        res
    }

    /// Records the present ranges of a file-backed resource in its sidecar
    /// (after syncing the data), so a later [`open_file`](Self::open_file)
    /// can resume. Also done on `fail`, `reactivate`, `commit` and when the
    /// last handle drops. A no-op for memory and temp-file resources.
    /// Blocking file I/O.
    pub fn flush(&self) -> StorageResult<()> {
        self.persist()
    }

    fn persist(&self) -> StorageResult<()> {
        self.inner.persist()
    }

    /// The final length, once committed; `None` while active.
    pub fn len(&self) -> Option<u64> {
        lock(&self.inner.state).committed
    }

    /// Whether the resource is committed with length 0.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// A length announced by the producer (e.g. `Content-Length`) before
    /// commit. Purely informational: storage never grows by it and never
    /// derives `Eof` from it.
    pub fn len_hint(&self) -> Option<u64> {
        let st = lock(&self.inner.state);
        st.committed.or(st.len_hint)
    }

    /// Records (or clears) the announced length and wakes waiters, so a
    /// reader waiting for the length (e.g. `SeekFrom::End`) re-checks.
    ///
    /// For a cache file ([`open_file`](Self::open_file)), the hint also
    /// counts when the last handle is dropped without a commit: if every byte
    /// of the hinted length is present and the resource has not failed, the
    /// drop records the file as complete, as `commit(Some(len))` would have.
    pub fn set_len_hint(&self, len: Option<u64>) {
        lock(&self.inner.state).len_hint = len;
        self.notify();
    }

    /// The validator (strong `ETag`, else `Last-Modified`) of the version
    /// whose bytes are stored, as set by [`set_validator`](Self::set_validator)
    /// or read from a cache file's sidecar. `None` when unknown (a server
    /// that sent none, or a version 1 sidecar).
    pub fn validator(&self) -> Option<Validator> {
        lock(&self.inner.state).validator.clone()
    }

    /// Records the validator of the stored bytes' version, together with the
    /// current [`len_hint`](Self::len_hint) as its length. A cache file
    /// saves both with its ranges (at the next flush, fail, commit or drop),
    /// so a later resume can ask for the same version only. Never blocks.
    pub fn set_validator(&self, validator: Option<Validator>) {
        let len = {
            let mut st = lock(&self.inner.state);
            st.validator.clone_from(&validator);
            st.on_disk = false;
            st.committed.or(st.len_hint)
        };
        if let Data::File(f) = &*read_data(&self.inner.data) {
            f.set_version(file::Version {
                validator,
                length: len,
            });
        }
    }

    /// Forgets every stored byte (the resource changed on the server): no
    /// range present, no validator, no length, active again; a file is
    /// truncated to 0 and its sidecar rewritten empty (durably), so it never
    /// claims bytes of the old version. Wakes waiters. Blocking file I/O.
    ///
    /// A write that raced the reset may land after it: callers stop their
    /// writers of the old version first.
    ///
    /// Errors: [`Cancelled`](StorageError::Cancelled),
    /// [`Failed`](StorageError::Failed), [`Io`](StorageError::Io).
    pub fn reset(&self) -> StorageResult<()> {
        let _p = lock(&self.inner.persist);
        let data = write_data(&self.inner.data);
        {
            let mut st = lock(&self.inner.state);
            self.health(&st)?;
            st.available = RangeSet::new();
            st.committed = None;
            st.len_hint = None;
            st.validator = None;
            st.on_disk = false;
        }
        let res = match &*data {
            Data::File(f) => f.reset(),
            Data::Memory(pages) => {
                pages.release_spare();
                Ok(())
            }
            // Its pages hold no range any more: the next writes reuse them.
            Data::Ring(_) => Ok(()),
        };
        drop(data);
        self.notify();
        Ok(res?)
    }

    /// A snapshot of the lifecycle state (`Failed > Committed > Cancelled >
    /// Active`).
    pub fn status(&self) -> ResourceStatus {
        let st = lock(&self.inner.state);
        if let Some(r) = &st.failed {
            ResourceStatus::Failed(r.clone())
        } else if let Some(final_len) = st.committed {
            ResourceStatus::Committed { final_len }
        } else if self.inner.cancel.is_cancelled() {
            ResourceStatus::Cancelled
        } else {
            ResourceStatus::Active
        }
    }

    /// Whether every byte of `range` is present (an empty range always is).
    pub fn contains_range(&self, range: Range<u64>) -> bool {
        lock(&self.inner.state).available.contains(range)
    }

    /// The first missing range within `from..limit` (clipped to the committed
    /// length, if any), or `None` if there is none.
    pub fn next_gap(&self, from: u64, limit: u64) -> Option<Range<u64>> {
        let st = lock(&self.inner.state);
        let limit = st.committed.map_or(limit, |l| limit.min(l));
        st.available.next_gap(from, limit)
    }

    /// A snapshot of the present ranges.
    pub fn available(&self) -> RangeSet {
        lock(&self.inner.state).available.clone()
    }

    /// The non-blocking check behind [`wait_range`](Self::wait_range):
    /// `Ok(Some(outcome))` if a wait would return now, `Ok(None)` if it
    /// would block.
    ///
    /// In order: `start > end` → `InvalidRange`; an empty range → `Ready`;
    /// cancelled → `Cancelled`; all present (or, once committed, all of the
    /// part below `final_len`) → `Ready`, **also after a failure**; failed →
    /// `Failed`; committed and `start >= final_len` → `Eof`; committed with
    /// a gap → [`Missing`](StorageError::Missing); otherwise pending.
    /// A [`bounded`](Self::bounded) resource first notes the reader at
    /// `range.start` and clips the range to what its budget can hold.
    pub fn check_range(&self, range: Range<u64>) -> StorageResult<Option<WaitOutcome>> {
        if range.start > range.end {
            return Err(StorageError::InvalidRange {
                start: range.start,
                end: range.end,
            });
        }
        if range.start == range.end {
            return Ok(Some(WaitOutcome::Ready));
        }
        let mut st = lock(&self.inner.state);
        if self.inner.cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let range = self.note_reader(&mut st, range);
        if st.available.contains(range.clone()) {
            return Ok(Some(WaitOutcome::Ready));
        }
        if let Some(len) = st.committed
            && range.start < len
            && st.available.contains(range.start..range.end.min(len))
        {
            return Ok(Some(WaitOutcome::Ready));
        }
        self.health(&st)?;
        if let Some(len) = st.committed {
            if range.start >= len {
                return Ok(Some(WaitOutcome::Eof));
            }
            let end = range.end.min(len);
            return match st.available.next_gap(range.start, end) {
                None => Ok(Some(WaitOutcome::Ready)),
                Some(g) => Err(StorageError::Missing {
                    start: g.start,
                    end: g.end,
                }),
            };
        }
        Ok(None)
    }

    /// Blocks until `range` is present (`Ready`), the resource is committed
    /// and ends at or before `range.start` (`Eof`), or an error; see
    /// [`check_range`](Self::check_range) for the exact rules. `deadline =
    /// None` waits indefinitely; a passed deadline gives
    /// [`DeadlineExceeded`](StorageError::DeadlineExceeded).
    ///
    /// Never polls: listen → re-check → wait on the resource's event, which
    /// writes, commit, fail, reactivate and the cancel token all notify. A
    /// cancel or fail wakes a blocked waiter at once.
    pub fn wait_range(
        &self,
        range: Range<u64>,
        deadline: Option<Instant>,
    ) -> StorageResult<WaitOutcome> {
        self.wait_until(deadline, || self.check_range(range.clone()).transpose())
            .unwrap_or(Err(StorageError::DeadlineExceeded))
    }

    /// [`wait_range`](Self::wait_range) with a relative timeout (`None`: no
    /// deadline; a timeout too large to represent also means none).
    pub fn wait_range_timeout(
        &self,
        range: Range<u64>,
        timeout: Option<Duration>,
    ) -> StorageResult<WaitOutcome> {
        self.wait_range(range, timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// Blocks until `check` returns `Some` or `deadline` passes (then `None`,
    /// after one last check). `check` runs again after every notification of
    /// this resource's event, so it should read state that a notifying call
    /// changes (storage state, or anything whose writer calls
    /// [`notify_waiters`](Self::notify_waiters)). This is how sources layer
    /// their own conditions (a flushing timeline, a known length) on the same
    /// event.
    pub fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(t) = check() {
                return Some(t);
            }
            let listener = self.inner.event.listen();
            if let Some(t) = check() {
                return Some(t);
            }
            self.prepare_for_writer();
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return check();
                    }
                }
            }
        }
    }

    /// A reader is about to block for the writer: memory storage uses the
    /// idle moment to map the writer's next page.
    fn prepare_for_writer(&self) {
        if let Data::Memory(pages) = &*read_data(&self.inner.data) {
            let active = {
                let st = lock(&self.inner.state);
                st.committed.is_none() && st.failed.is_none()
            };
            if active && !self.inner.cancel.is_cancelled() {
                pages.prepare_spare();
            }
        }
    }

    /// The async form of [`wait_range`](Self::wait_range), without a
    /// deadline (race it with your executor's timer if you need one). The
    /// future owns a handle, is `Send + 'static`, works on any executor and
    /// is cancel-safe.
    pub fn wait_range_async(
        &self,
        range: Range<u64>,
    ) -> impl Future<Output = StorageResult<WaitOutcome>> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                if let Some(r) = this.check_range(range.clone()).transpose() {
                    return r;
                }
                let changed = this.changed();
                if let Some(r) = this.check_range(range.clone()).transpose() {
                    return r;
                }
                changed.await;
            }
        }
    }

    /// A future that completes at the next notification of this resource's
    /// event. Create it, re-check your condition, then await it (the
    /// listen → re-check → wait idiom): a notification between the check and
    /// the await is not lost. `'static`, `Send`, cancel-safe.
    pub fn changed(&self) -> Changed {
        Changed {
            listener: self.inner.event.listen(),
        }
    }

    /// Wakes every blocked waiter so it re-checks its condition. Lock-free;
    /// used by sources after a seek (`Source::notify_waiting`).
    pub fn notify_waiters(&self) {
        self.notify();
    }
}

/// The bounded backend (see [`StorageResource::bounded`]).
impl StorageResource {
    /// Whether this is a [`bounded`](Self::bounded) resource.
    pub fn is_bounded(&self) -> bool {
        self.inner.ring_wait.is_some()
    }

    /// The memory budget of a [`bounded`](Self::bounded) resource (after
    /// rounding), `None` for the other backends.
    pub fn budget(&self) -> Option<u64> {
        match &*read_data(&self.inner.data) {
            Data::Ring(r) => Some(r.budget()),
            _ => None,
        }
    }

    /// Bytes of pages a [`bounded`](Self::bounded) resource holds now
    /// (never more than its budget); 0 for the other backends.
    pub fn resident_bytes(&self) -> u64 {
        match &*read_data(&self.inner.data) {
            Data::Ring(r) => r.resident(),
            _ => 0,
        }
    }

    /// Whether a write starting at `offset` may go ahead now. Always true
    /// except for a [`bounded`](Self::bounded) resource whose window (the
    /// look-behind plus what the reader has not read, up to the budget) has
    /// no room at `offset`; also true once the resource is failed,
    /// cancelled or committed (the write then reports why). Never blocks.
    pub fn is_writable(&self, offset: u64) -> bool {
        let data = read_data(&self.inner.data);
        let Data::Ring(ring) = &*data else {
            return true;
        };
        let mut st = lock(&self.inner.state);
        if st.failed.is_some() || st.committed.is_some() || self.inner.cancel.is_cancelled() {
            return true;
        }
        let ok = ring.writable(st.cursor, offset);
        if !ok {
            st.writer_blocked = Some((offset, st.cursor));
        }
        ok
    }

    /// Completes once a write starting at `offset` may go ahead (see
    /// [`is_writable`](Self::is_writable)): at once for every backend but
    /// [`bounded`](Self::bounded), whose writer waits here for the reader
    /// to move on. Woken by the reader's progress, a seek, and by
    /// cancel/fail/commit; never polls. `'static`, `Send`, cancel-safe.
    pub fn writable(&self, offset: u64) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move {
            if !this.is_bounded() {
                return;
            }
            loop {
                if this.is_writable(offset) {
                    return;
                }
                let changed = this.changed();
                if this.is_writable(offset) {
                    return;
                }
                changed.await;
            }
        }
    }

    /// The reader is at `range.start`: a bounded resource follows it (and
    /// wakes a blocked writer when it moved) and clips the wait to what its
    /// window can hold. Other backends: `range` unchanged.
    fn note_reader(&self, st: &mut State, range: Range<u64>) -> Range<u64> {
        let Some((max, _)) = self.inner.ring_wait else {
            return range;
        };
        let end = range.end.min(range.start.saturating_add(max));
        self.move_cursor(st, range.start, end);
        range.start..end
    }

    /// A read at a bounded resource ended at `end`: the cursor moves
    /// forward to it (never back: a peek at the start, e.g. for magic
    /// bytes, must not pull the window back).
    fn reader_passed(&self, end: u64) {
        let mut st = lock(&self.inner.state);
        if end > st.cursor {
            self.move_cursor(&mut st, end, end);
        }
    }

    /// Moves the cursor to `pos`, the reader needing bytes up to `need`.
    /// A blocked writer is woken in batches: once the reader moved a step
    /// on (or back), or at once when the reader needs what it would write.
    /// Woken writers re-check; one that is still blocked blocks again.
    fn move_cursor(&self, st: &mut State, pos: u64, need: u64) {
        st.cursor = pos;
        let Some((offset, since)) = st.writer_blocked else {
            return;
        };
        let step = self.inner.ring_wait.map_or(0, |(_, step)| step);
        if pos < since || pos - since >= step || need > offset {
            st.writer_blocked = None;
            self.notify();
        }
    }

    /// `write_at` for the bounded backend: evictions and the copy happen
    /// under the exclusive data lock, so no reader copies out of a page
    /// while it changes hands.
    fn write_ring(&self, offset: u64, data: &[u8]) -> StorageResult<()> {
        let stored = {
            let mut guard = write_data(&self.inner.data);
            let Data::Ring(ring) = &mut *guard else {
                return Ok(());
            };
            let mut st = lock(&self.inner.state);
            self.health(&st)?;
            if st.committed.is_some() {
                return Err(StorageError::WriteAfterCommit);
            }
            let cursor = st.cursor;
            ring.write(offset, data, cursor, &mut st.available).stored
        };
        self.notify();
        if stored < data.len() {
            return Err(StorageError::BudgetExceeded {
                offset: offset + stored as u64,
            });
        }
        Ok(())
    }
}

impl Inner {
    fn persist(&self) -> StorageResult<()> {
        self.persist_as(false)
    }

    /// `persist`; when `finalize` (the last handle is gone), an active,
    /// healthy resource whose announced length is fully present is recorded
    /// as complete (the sidecar goes), as its commit would have: a reader
    /// dropped right after the last byte, before the writer's commit landed,
    /// must not leave a complete download looking partial.
    fn persist_as(&self, finalize: bool) -> StorageResult<()> {
        if !self.is_file {
            return Ok(());
        }
        // Lock order everywhere: persist, then data, then state.
        let _p = lock(&self.persist);
        let data = read_data(&self.data);
        let record = Record::of(&lock(&self.state), finalize);
        record.write(&data)
    }
}

/// What a sidecar update writes: taken under the state lock, written
/// without it.
struct Record {
    /// `None`: nothing to record (a commit already did, and synced).
    what: Option<(Option<u64>, RangeSet)>,
}

impl Record {
    fn of(st: &State, finalize: bool) -> Self {
        if finalize && st.on_disk {
            return Self { what: None }; // the commit recorded it all (and synced)
        }
        let whole = st
            .len_hint
            .filter(|&l| finalize && st.failed.is_none() && st.available.contains(0..l));
        Self {
            what: Some((st.committed.or(whole), st.available.clone())),
        }
    }

    fn write(self, data: &Data) -> StorageResult<()> {
        let (Data::File(f), Some((committed, ranges))) = (data, self.what) else {
            return Ok(());
        };
        if !f.persistent {
            return Ok(());
        }
        match committed {
            Some(len) if len > 0 && ranges.contains(0..len) => {
                f.set_len(len)?;
                f.remove_sidecar()?;
            }
            _ => f.save_sidecar(committed, &ranges)?,
        }
        Ok(())
    }
}

impl Drop for Inner {
    /// The last handle is gone: record the sidecar (see `persist_as`), on
    /// the offload's blocking pool when one is set (the drop may run on an
    /// executor thread), else here.
    fn drop(&mut self) {
        if !self.is_file {
            return;
        }
        let record = Record::of(
            self.state.get_mut().unwrap_or_else(PoisonError::into_inner),
            true,
        );
        let data = std::mem::replace(
            self.data.get_mut().unwrap_or_else(PoisonError::into_inner),
            Data::Memory(Pages::default()),
        );
        // The data file (and its helper-thread join, a temp file's removal)
        // goes with the job, and the path's claim is released after it.
        let claim = self.claim.take();
        let job = move || {
            let _ = record.write(&data);
            drop(data);
            drop(claim);
        };
        match self.offload.take() {
            Some(off) => off.run(job),
            None => job(),
        }
    }
}

/// Future returned by [`StorageResource::changed`]: completes at the next
/// notification of the resource's event.
pub struct Changed {
    listener: EventListener,
}

impl fmt::Debug for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed").finish_non_exhaustive()
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.listener).poll(cx)
    }
}

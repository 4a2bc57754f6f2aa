//! [`StorageResource`]: the shared, range-tracked byte store.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use event_listener::Event;

use super::claim::PathClaim;
use super::file::{self, FileData};
use super::memory::Pages;
use super::ring::Ring;
use super::{RangeSet, ResourceStatus, StorageError, StorageResult};
use crate::cancel::{CancelHook, CancelToken, lock};
use crate::net::Validator;
use crate::offload::Offload;

mod bounded;
mod open;
mod persist;
mod wait;

pub use wait::Changed;

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
    ///
    /// ```
    /// use std::time::Duration;
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::{StorageError, StorageResource, WaitOutcome};
    ///
    /// let res = StorageResource::memory(CancelToken::new());
    /// res.write_at(0, b"abc").unwrap();
    /// let reader = res.clone();
    /// let waiter = std::thread::spawn(move || reader.wait_range_timeout(3..6, Some(Duration::from_secs(10))));
    /// res.fail("connection reset"); // wakes the waiter with the reason
    /// assert!(matches!(waiter.join().unwrap(), Err(StorageError::Failed(r)) if r == "connection reset"));
    /// assert_eq!(res.wait_range_timeout(0..3, Some(Duration::ZERO)).unwrap(), WaitOutcome::Ready); // kept
    /// ```
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
}

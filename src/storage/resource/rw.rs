//! The read/write API of [`StorageResource`]: [`write_at`](StorageResource::write_at),
//! [`read_at`](StorageResource::read_at) and the lifecycle (commit, fail,
//! recover, reactivate, flush, reset).

use super::{Data, StorageResource, read_data, write_data};
use crate::cancel::lock;
use crate::offload::Offload;
use crate::storage::{RangeSet, StorageError, StorageResult};

impl StorageResource {
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

    fn persist(&self) -> StorageResult<()> {
        self.inner.persist()
    }
}

//! The bounded backend of [`StorageResource`]: budget, the reader's cursor,
//! backpressure for the writer.

use std::future::Future;
use std::ops::Range;

use super::{Data, State, StorageResource, read_data, write_data};
use crate::cancel::lock;
use crate::storage::{StorageError, StorageResult};

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
    pub(super) fn note_reader(&self, st: &mut State, range: Range<u64>) -> Range<u64> {
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
    pub(super) fn reader_passed(&self, end: u64) {
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
    pub(super) fn write_ring(&self, offset: u64, data: &[u8]) -> StorageResult<()> {
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

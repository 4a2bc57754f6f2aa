//! What a [`StorageResource`] knows about its bytes: the committed and the
//! announced length, the validator, the status, the present ranges.

use std::ops::Range;

use super::{Data, StorageResource, read_data};
use crate::cancel::lock;
use crate::net::Validator;
use crate::storage::file;
use crate::storage::{RangeSet, ResourceStatus};

impl StorageResource {
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

//! The sidecar record of a file-backed
//! [`StorageResource`](super::StorageResource): what is written, when, and
//! on which thread.

use std::sync::PoisonError;

use super::{Data, Inner, State, read_data};
use crate::cancel::lock;
use crate::storage::memory::Pages;
use crate::storage::{RangeSet, StorageResult};

impl Inner {
    pub(super) fn persist(&self) -> StorageResult<()> {
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

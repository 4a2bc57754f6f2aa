//! [`StorageResource`]: the shared, range-tracked byte store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use event_listener::Event;

use super::claim::PathClaim;
use super::file::FileData;
use super::memory::Pages;
use super::ring::Ring;
use super::{RangeSet, StorageError, StorageResult};
use crate::cancel::{CancelHook, CancelToken, lock};
use crate::net::Validator;
use crate::offload::Offload;

mod bounded;
mod meta;
mod open;
mod persist;
mod rw;
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
}

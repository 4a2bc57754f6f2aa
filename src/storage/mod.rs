//! Range-tracked storage: where the async writer and the sync reader meet.
//!
//! A [`StorageResource`] holds the bytes of one resource (in memory or in a
//! file) together with a [`RangeSet`] of the byte ranges actually written.
//! Writers call [`write_at`](StorageResource::write_at),
//! [`commit`](StorageResource::commit) and [`fail`](StorageResource::fail);
//! readers call [`wait_range`](StorageResource::wait_range) (blocking, with a
//! deadline) or [`wait_range_async`](StorageResource::wait_range_async) and
//! then [`read_at`](StorageResource::read_at). Every state change, and the
//! resource's cancel token, notifies one `event_listener::Event`; waiters use
//! the listen → re-check → wait idiom, so nothing polls.
//!
//! `read_at` only ever returns bytes that were written: gaps are never read
//! as zeros.

mod claim;
mod file;
mod memory;
mod range_set;
mod resource;
mod ring;

use std::io;

pub use claim::PATH_CLAIM_TIMEOUT;
pub use file::SIDECAR_SUFFIX;
pub use memory::PagePool;
pub use range_set::RangeSet;
pub use resource::{Changed, StorageResource};
pub use ring::MIN_BUDGET;

/// Errors of [`StorageResource`] operations. Display strings are stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error from the file backend.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A range with `start > end`, or whose end overflows `u64`, or that
    /// lies past the committed length.
    #[error("invalid range {start}..{end}")]
    InvalidRange {
        /// Start of the offending range.
        start: u64,
        /// End of the offending range (saturated on overflow).
        end: u64,
    },
    /// The resource was failed by its writer with this reason.
    #[error("resource failed: {0}")]
    Failed(String),
    /// The resource's cancel token fired.
    #[error("cancelled")]
    Cancelled,
    /// A write to a committed resource (call
    /// [`reactivate`](StorageResource::reactivate) first).
    #[error("write to a committed resource")]
    WriteAfterCommit,
    /// A wait on a committed resource for bytes that were never written and
    /// now never will be (the resource was committed with a gap there).
    #[error("range {start}..{end} is missing from the committed resource")]
    Missing {
        /// Start of the first missing range.
        start: u64,
        /// End of the first missing range.
        end: u64,
    },
    /// The deadline given to [`wait_range`](StorageResource::wait_range)
    /// passed before the range became ready.
    #[error("wait deadline exceeded")]
    DeadlineExceeded,
    /// A write to a [`bounded`](StorageResource::bounded) resource found no
    /// room from this offset on without evicting bytes the reader has not
    /// read; the part before it was stored. Await
    /// [`writable`](StorageResource::writable) before writing.
    #[error("bounded storage full at byte {offset}: the reader is too far behind")]
    BudgetExceeded {
        /// The first byte not stored.
        offset: u64,
    },
    /// Bytes a bounded resource evicted (or a live stream passed) were asked
    /// for again, and the resource cannot be fetched again there (the server
    /// does not support `Range`, or the stream is live).
    #[error(
        "range starting at byte {offset} is outside the retained window and cannot be fetched again"
    )]
    Evicted {
        /// The first byte asked for.
        offset: u64,
    },
    /// The sidecar metadata file of a file-backed resource is unreadable.
    #[error("corrupt range metadata in {path}: {reason}")]
    CorruptMetadata {
        /// The sidecar file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another resource on the same cache file is still open (or still
    /// recording its sidecar) after
    /// [`PATH_CLAIM_TIMEOUT`].
    #[error("cache file {path} is in use by another open resource")]
    PathInUse {
        /// The file (canonical path).
        path: std::path::PathBuf,
    },
}

/// Result alias for storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

/// The outcome of a successful wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// The whole range is present and can be read without blocking.
    Ready,
    /// The resource is committed and ends at or before the range's start.
    Eof,
    /// The wait was interrupted by a seek/flush. Storage itself never
    /// produces this; sources built on it do.
    Interrupted,
}

/// A snapshot of a resource's lifecycle state.
///
/// When several apply, the reported one follows the priority
/// `Failed > Committed > Cancelled > Active`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceStatus {
    /// Accepting writes.
    Active,
    /// The writer is done; the resource is `final_len` bytes long.
    Committed {
        /// The final length.
        final_len: u64,
    },
    /// The writer gave up with this reason.
    Failed(String),
    /// The resource's cancel token fired.
    Cancelled,
}

//! What a read of a [`Stream`](super::Stream) returns: outcomes, the error
//! and the payloads of `io::Error`s.

use std::fmt;
use std::io;
use std::num::NonZeroUsize;

use crate::error::{SourceError, StreamError};
use crate::source::{PendingReason, SourcePhase};
use crate::storage::StorageError;

/// The outcome of [`Stream::try_read`](super::Stream::try_read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamReadOutcome {
    /// `count` bytes were read; the cursor is now `byte_position`.
    Bytes {
        /// Bytes copied.
        count: NonZeroUsize,
        /// The cursor after the read.
        byte_position: u64,
    },
    /// Nothing read, for this reason.
    Pending(PendingReason),
    /// The true end of the resource is at `byte_position`.
    Eof {
        /// Where the end is.
        byte_position: u64,
    },
}

/// A terminal read error, with the typed source error inside.
///
/// As the payload of an `io::Error` from `Read`, reach it with
/// `err.get_ref().and_then(|e| e.downcast_ref::<StreamReadError>())`.
/// That one downcast gives the root cause: [`source_error`](Self::source_error)
/// is the typed [`SourceError`], whose variants carry the network
/// ([`NetError`](crate::net::NetError)) or storage ([`StorageError`]) error.
///
/// ```
/// use std::io::Read;
/// use kithara_stream::cancel::CancelToken;
/// use kithara_stream::storage::{StorageError, StorageResource};
/// use kithara_stream::{SourceError, Stream, StorageSource, StreamReadError};
///
/// let res = StorageResource::memory(CancelToken::new());
/// res.fail("disk full");
/// let mut stream = Stream::<StorageSource>::from_source(StorageSource::new(res));
/// let err = stream.read(&mut [0u8; 16]).unwrap_err();
/// let cause = err
///     .get_ref()
///     .and_then(|e| e.downcast_ref::<StreamReadError>())
///     .map(StreamReadError::source_error);
/// assert!(matches!(cause, Some(SourceError::Storage(StorageError::Failed(_)))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamReadError {
    /// The source failed.
    #[error("source error: {0}")]
    Source(#[source] SourceError),
}

impl StreamReadError {
    /// The source error inside.
    pub fn source_error(&self) -> &SourceError {
        match self {
            Self::Source(e) => e,
        }
    }

    fn kind(&self) -> io::ErrorKind {
        match self.source_error() {
            SourceError::Io(e) | SourceError::Storage(StorageError::Io(e)) => e.kind(),
            SourceError::Timeout(_) | SourceError::WaitBudgetExceeded => io::ErrorKind::TimedOut,
            SourceError::Storage(StorageError::InvalidRange { .. }) => io::ErrorKind::InvalidInput,
            SourceError::Unsupported(_) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::Other,
        }
    }
}

impl From<StreamError> for StreamReadError {
    fn from(e: StreamError) -> Self {
        Self::Source(e.into_source_error())
    }
}

impl From<StreamReadError> for io::Error {
    /// Keeps the typed error as the payload; the kind follows the cause
    /// (`Io` keeps its kind, timeouts are `TimedOut`, else `Other`).
    fn from(e: StreamReadError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// A snapshot of why a read is pending; the payload of `WouldBlock` /
/// `TimedOut` errors from the stream's `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPending {
    /// Why.
    pub reason: PendingReason,
    /// The cursor.
    pub pos: u64,
    /// How many bytes the read wanted.
    pub want: usize,
    /// The length, if known.
    pub len: Option<u64>,
    /// The source's phase for the wanted range.
    pub phase: SourcePhase,
    /// The timeline's seek epoch.
    pub epoch: u64,
    /// Whether the timeline is flushing.
    pub flushing: bool,
}

impl fmt::Display for StreamPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: pos={} want={} len={:?} phase={:?} epoch={} flushing={}",
            self.reason, self.pos, self.want, self.len, self.phase, self.epoch, self.flushing
        )
    }
}

impl std::error::Error for StreamPending {}

/// The payload of the `InvalidInput` error of a seek past a known end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("seek past EOF: new_pos={new_pos} len={len} current_pos={current_pos}")]
pub struct StreamSeekPastEof {
    /// The cursor before the seek (unchanged).
    pub current_pos: u64,
    /// The known length.
    pub len: u64,
    /// The rejected target.
    pub new_pos: u64,
}

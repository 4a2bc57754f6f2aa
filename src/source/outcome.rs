//! What a [`Source`](super::Source) reports: [`SourcePhase`],
//! [`ReadOutcome`], [`PendingReason`], [`NotReadyCause`].

use std::fmt;
use std::num::NonZeroUsize;

/// A read-only snapshot of where a source stands, for observers (pipeline,
/// UI, tracing). Never used for control flow by the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SourcePhase {
    /// The source (or its storage) was cancelled or failed.
    Cancelled,
    /// The probed range starts at or past the end.
    Eof,
    /// The probed range is readable now.
    Ready,
    /// A seek is flushing.
    Seeking,
    /// Waiting for data.
    #[default]
    Waiting,
    /// Waiting for the consumer to ask for data: for sources that fetch
    /// only on demand (segmented media, where a segment is requested when
    /// the reader reaches it). The sources of this crate fetch ahead of the
    /// reader and never report it; it stays so that such a source can
    /// implement [`Source`](super::Source) with the upstream vocabulary.
    WaitingDemand,
    /// Waiting for metadata (headers, length).
    WaitingMetadata,
}

/// Why a read produced no bytes (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PendingReason {
    /// A seek is in progress: abort this read and do not retry the same
    /// offset.
    #[error("seek pending")]
    SeekPending,
    /// Transient: the data is not there yet.
    #[error("data not ready ({0})")]
    NotReady(NotReadyCause),
    /// The data went away between wait and read: wait again.
    #[error("resource evicted, retry wait_range")]
    Retry,
}

/// Why data was not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotReadyCause {
    /// The read's wait budget (`MAX_WAIT_SPINS` × `WAIT_RANGE_TIMEOUT`) ran out.
    WaitBudgetExhausted,
    /// The wait kept being interrupted although no flush was active.
    WaitInterrupted,
    /// The source said ready, then had nothing to read.
    SourcePending,
}

impl fmt::Display for NotReadyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WaitBudgetExhausted => "wait budget exhausted",
            Self::WaitInterrupted => "wait interrupted, no flush",
            Self::SourcePending => "source returned pending after wait ready",
        })
    }
}

/// The outcome of [`Source::read_at`](super::Source::read_at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadOutcome {
    /// This many bytes were copied.
    Bytes(NonZeroUsize),
    /// No bytes were touched, for this reason.
    Pending(PendingReason),
    /// The natural end of the resource is at this offset.
    Eof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_phase_defaults_to_waiting() {
        assert_eq!(SourcePhase::default(), SourcePhase::Waiting);
    }

    #[test]
    fn display_strings() {
        assert_eq!(PendingReason::SeekPending.to_string(), "seek pending");
        assert_eq!(
            PendingReason::NotReady(NotReadyCause::WaitBudgetExhausted).to_string(),
            "data not ready (wait budget exhausted)"
        );
        assert_eq!(
            PendingReason::Retry.to_string(),
            "resource evicted, retry wait_range"
        );
    }
}

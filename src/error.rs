//! Error types of the source and stream layers. Display strings are stable.

use std::error::Error as StdError;
use std::io;

use crate::net::NetError;
use crate::storage::StorageError;

/// Why a [`Source`](crate::source::Source) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A network failure.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// A storage failure (including a cancelled or failed resource).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A path could not be used.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A URL could not be parsed or used.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A timeout, with context.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A bounded `wait_range` ran out of time. Allocation-free: it is the
    /// hot-path signal the stream's spin policy classifies on.
    #[error("wait_range budget exceeded")]
    WaitBudgetExceeded,
    /// The source does not support this operation (e.g. async waiting).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// An I/O error.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// Anything else.
    #[error("{0}")]
    Other(Box<dyn StdError + Send + Sync>),
}

impl SourceError {
    /// Wraps any error as [`SourceError::Other`].
    pub fn other(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Other(err.into())
    }
}

/// The error of the stream layer: a source error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The source failed.
    #[error("source error: {0}")]
    Source(#[source] SourceError),
}

impl<E: Into<SourceError>> From<E> for StreamError {
    fn from(e: E) -> Self {
        Self::Source(e.into())
    }
}

impl StreamError {
    /// The source error inside.
    pub fn source_error(&self) -> &SourceError {
        match self {
            Self::Source(e) => e,
        }
    }

    /// Unwraps the source error.
    pub fn into_source_error(self) -> SourceError {
        match self {
            Self::Source(e) => e,
        }
    }
}

/// Result alias of the stream layer.
pub type StreamResult<T> = Result<T, StreamError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_source_error_display() {
        let e = SourceError::from(io::Error::other("disk on fire"));
        assert!(e.to_string().contains("disk on fire"));
        assert_eq!(SourceError::Cancelled.to_string(), "cancelled");
        assert_eq!(
            SourceError::WaitBudgetExceeded.to_string(),
            "wait_range budget exceeded"
        );
        assert_eq!(
            SourceError::from(StorageError::Cancelled).to_string(),
            "storage: cancelled"
        );
        assert_eq!(SourceError::other("x").to_string(), "x");
        let s = StreamError::from(SourceError::Cancelled);
        assert_eq!(s.to_string(), "source error: cancelled");
        assert!(StdError::source(&s).is_some());
        assert!(matches!(
            StreamError::from(StorageError::Cancelled).into_source_error(),
            SourceError::Storage(StorageError::Cancelled)
        ));
    }

    #[test]
    fn test_stream_error_is_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<StreamError>();
        assert_send_sync::<SourceError>();
    }
}

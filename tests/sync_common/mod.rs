//! Helpers shared by the sync-side integration tests (`sync_stream`, `sync_async`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use kithara_stream::storage::StorageResource;
use kithara_stream::{SourceError, StorageSource, Stream, StreamReadError};

#[path = "../../src/test_util.rs"]
mod test_util;
pub use test_util::*;

/// The stream type these tests read through.
pub type S = Stream<StorageSource>;

/// A stream over `res` (shared, not copied).
pub fn stream_over(res: &StorageResource) -> S {
    S::from_source(StorageSource::new(res.clone()))
}

/// `n` pseudo-random bytes (xorshift, seeded).
pub fn body(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The typed source error inside an `io::Error` from a stream's read or
/// seek; panics if there is none.
pub fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamReadError>())
        .map(StreamReadError::source_error)
        .unwrap_or_else(|| panic!("not a source error: {e:?}"))
}

/// Asserts that `e` carries the cancelled storage's typed error.
pub fn assert_cancelled(e: &std::io::Error) {
    assert!(
        matches!(
            source_error(e),
            SourceError::Storage(kithara_stream::storage::StorageError::Cancelled)
        ),
        "{e:?}"
    );
}

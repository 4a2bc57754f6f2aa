//! Helpers shared by the sync-side integration tests (`sync_stream`, `sync_async`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use kithara_stream::storage::StorageResource;
use kithara_stream::{StorageSource, Stream};

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

/// Runs `f` on a thread and fails the test if it does not finish in `limit`.
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("did not finish in time (hang?)")
}

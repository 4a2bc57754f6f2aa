//! One live resource per cache file: a [`PathClaim`] is held from
//! `open_file` until the resource's last record (the drop-time sidecar
//! update, which may run later on a blocking pool) is on disk. A second open
//! of the same path waits for it, so it reads what the first one recorded
//! and the two never write each other's sidecar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::StorageError;
use crate::cancel::lock;

/// How long an open waits for an earlier resource on the same path to go
/// away before it fails with [`StorageError::PathInUse`].
pub const PATH_CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

static CLAIMED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
static RELEASED: Condvar = Condvar::new();

/// The claim on one path; released on drop.
#[derive(Debug)]
pub(crate) struct PathClaim(PathBuf);

impl PathClaim {
    /// Claims `path` (an existing file: its canonical form is the key),
    /// waiting up to `timeout` for an earlier claim to be released.
    /// Blocking.
    pub(crate) fn acquire(path: &Path, timeout: Duration) -> Result<Self, StorageError> {
        crate::offload::note_blocking("path claim");
        let key = std::fs::canonicalize(path)?;
        let deadline = Instant::now() + timeout;
        let mut claimed = lock(&CLAIMED);
        while claimed.contains(&key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StorageError::PathInUse { path: key });
            }
            claimed = RELEASED
                .wait_timeout(claimed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        claimed.insert(key.clone());
        Ok(Self(key))
    }
}

impl Drop for PathClaim {
    fn drop(&mut self) {
        lock(&CLAIMED).remove(&self.0);
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_waits_for_the_first_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let first = PathClaim::acquire(&path, Duration::ZERO).unwrap();
        // Another spelling of the same file is the same claim.
        let other = dir.path().join(".").join("f");
        assert!(matches!(
            PathClaim::acquire(&other, Duration::from_millis(20)),
            Err(StorageError::PathInUse { .. })
        ));
        let t = std::thread::spawn(move || PathClaim::acquire(&other, Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        let second = t.join().unwrap();
        assert!(second.is_ok(), "{second:?}");
    }
}

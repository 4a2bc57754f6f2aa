//! Storage under failure and races, per backend (memory, temp file, cache
//! file): bytes already stored stay readable after `fail`, only reads that
//! need missing bytes get the failure, `recover` undoes it; a `write_at`
//! racing `commit(None)` never returns `Ok` while dropping its bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

mod storage_common;

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageError, StorageResource, WaitOutcome};
use storage_common::{Rng, chunk};

/// Every backend, fresh and empty (the tempdir lives as long as needed).
fn backends() -> Vec<(&'static str, StorageResource, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let cache = StorageResource::open_file(dir.path().join("c.bin"), CancelToken::new()).unwrap();
    vec![
        ("memory", StorageResource::memory(CancelToken::new()), None),
        (
            "temp_file",
            StorageResource::temp_file(CancelToken::new()).unwrap(),
            None,
        ),
        ("cache_file", cache, Some(dir)),
    ]
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(30))
}

#[test]
fn present_bytes_stay_readable_after_a_failure() {
    for (name, res, _dir) in backends() {
        res.write_at(0, &chunk(0, 1000)).unwrap();
        res.write_at(2000, &chunk(2000, 1000)).unwrap();
        res.set_len_hint(Some(3000));
        res.fail("server gone");
        let mut buf = vec![0u8; 4096];
        // Present bytes: read, checked and waited for as usual.
        assert_eq!(res.read_at(0, &mut buf).unwrap(), 1000, "{name}");
        assert_eq!(buf[..1000], chunk(0, 1000)[..], "{name}");
        assert_eq!(res.read_at(2500, &mut buf).unwrap(), 500, "{name}");
        assert_eq!(
            res.check_range(0..1000).unwrap(),
            Some(WaitOutcome::Ready),
            "{name}"
        );
        assert_eq!(
            res.wait_range(2000..3000, soon()).unwrap(),
            WaitOutcome::Ready,
            "{name}"
        );
        // Missing bytes: the failure, with its reason.
        for r in [
            res.read_at(1500, &mut buf).map(|_| ()),
            res.wait_range(500..1500, soon()).map(|_| ()),
            res.check_range(1000..1001).map(|_| ()),
            res.wait_range(3000..3001, soon()).map(|_| ()),
        ] {
            assert!(
                matches!(&r, Err(StorageError::Failed(m)) if m == "server gone"),
                "{name}: {r:?}"
            );
        }
        // Recovered: the missing bytes are waited for again, then written.
        assert!(res.recover(), "{name}");
        assert!(!res.recover(), "{name}: only once");
        assert!(
            matches!(
                res.wait_range(1000..1001, soon()),
                Err(StorageError::DeadlineExceeded)
            ),
            "{name}"
        );
        res.write_at(1000, &chunk(1000, 1000)).unwrap();
        res.commit(Some(3000)).unwrap();
        assert_eq!(res.read_at(0, &mut buf).unwrap(), 3000, "{name}");
        assert_eq!(buf[..3000], chunk(0, 3000)[..], "{name}");
        // A committed resource with a gap, then failed: the present part
        // below the end is still ready.
        res.fail("later");
        assert_eq!(
            res.check_range(2500..4000).unwrap(),
            Some(WaitOutcome::Ready),
            "{name}"
        );
        // A cancel still stops everything.
        res.cancel_token().cancel();
        assert!(
            matches!(res.read_at(0, &mut buf), Err(StorageError::Cancelled)),
            "{name}"
        );
    }
}

/// A waiter blocked on a missing range wakes with the failure; one blocked
/// on present bytes is not disturbed (it was never blocked).
#[test]
fn a_failure_wakes_only_waiters_for_missing_bytes_with_an_error() {
    for (name, res, _dir) in backends() {
        res.write_at(0, &chunk(0, 100)).unwrap();
        let r2 = res.clone();
        let waiter = thread::spawn(move || {
            r2.wait_range(100..200, Some(Instant::now() + Duration::from_secs(10)))
        });
        thread::sleep(Duration::from_millis(20));
        res.fail("boom");
        let r = waiter.join().unwrap();
        assert!(matches!(r, Err(StorageError::Failed(_))), "{name}: {r:?}");
        assert_eq!(
            res.wait_range(0..100, soon()).unwrap(),
            WaitOutcome::Ready,
            "{name}"
        );
    }
}

/// Writers racing a committer (`commit(None)`), seeded: every `write_at`
/// that returned `Ok` has all its bytes present and readable afterwards;
/// a write that could not land returned an error.
#[test]
fn stress_write_at_racing_commit_never_loses_an_ok_write() {
    const WRITERS: u64 = 4;
    const AREA: u64 = 256 * 1024;
    for round in 0..24u64 {
        for (name, res, _dir) in backends() {
            let barrier = Arc::new(Barrier::new(WRITERS as usize + 1));
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (res, barrier) = (res.clone(), barrier.clone());
                    thread::spawn(move || {
                        let mut rng = Rng((round + 1) * 0x1000 + w + 1);
                        let mut ok = Vec::new();
                        barrier.wait();
                        let base = w * AREA;
                        let mut pos = base;
                        while pos < base + AREA {
                            let len = 1 + rng.below(8192);
                            let len = len.min(base + AREA - pos);
                            match res.write_at(pos, &chunk(pos, len as usize)) {
                                Ok(()) => ok.push(pos..pos + len),
                                Err(StorageError::WriteAfterCommit) => {}
                                Err(e) => panic!("unexpected error {e:?}"),
                            }
                            pos += len;
                        }
                        ok
                    })
                })
                .collect();
            let mut rng = Rng(round + 77);
            barrier.wait();
            thread::sleep(Duration::from_micros(rng.below(2000)));
            res.commit(None).unwrap();
            let mut buf = vec![0u8; 8192];
            let len = res.len().unwrap();
            for w in writers {
                for r in w.join().unwrap() {
                    assert!(
                        res.contains_range(r.clone()) && r.end <= len,
                        "{name} round {round}: Ok write {r:?} lost (len {len})"
                    );
                    let n = (r.end - r.start) as usize;
                    assert_eq!(res.read_at(r.start, &mut buf[..n]).unwrap(), n);
                    assert_eq!(buf[..n], chunk(r.start, n)[..], "{name} {r:?}");
                }
            }
        }
    }
}

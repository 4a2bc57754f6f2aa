#![allow(clippy::unwrap_used, clippy::expect_used)]
//! StorageResource: basics, waits and wakeups, lifecycle, file backend, stress.

use std::thread;
use std::time::{Duration, Instant};

#[path = "../src/test_util.rs"]
mod test_util;
use test_util::{Bounded, LIMIT, spawn, within, within_async};

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{
    ResourceStatus, SIDECAR_SUFFIX, StorageError, StorageResource, WaitOutcome,
};

fn soon(ms: u64) -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(ms))
}

fn backends() -> Vec<(&'static str, StorageResource)> {
    vec![
        ("memory", StorageResource::memory(CancelToken::new())),
        (
            "temp",
            StorageResource::temp_file(CancelToken::new()).unwrap(),
        ),
    ]
}

#[test]
fn create_write_read() {
    for (name, r) in backends() {
        assert_eq!(r.len(), None, "{name}");
        assert_eq!(r.status(), ResourceStatus::Active);
        r.write_at(0, b"hello world").unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(r.read_at(0, &mut buf).unwrap(), 11, "{name}");
        assert_eq!(&buf[..11], b"hello world");
        assert_eq!(r.read_at(6, &mut buf[..3]).unwrap(), 3);
        assert_eq!(&buf[..3], b"wor");
        assert_eq!(r.read_at(0, &mut []).unwrap(), 0);
        r.write_at(5, b"").unwrap();
    }
}

#[test]
fn gaps_are_never_read_as_zeros() {
    for (name, r) in backends() {
        r.write_at(0, b"abc").unwrap();
        r.write_at(10, b"xyz").unwrap();
        let mut buf = [9u8; 16];
        assert_eq!(r.read_at(0, &mut buf).unwrap(), 3, "{name}");
        assert_eq!(r.read_at(3, &mut buf).unwrap(), 0, "{name}: gap");
        assert_eq!(r.read_at(10, &mut buf).unwrap(), 3);
        assert_eq!(r.next_gap(0, 20), Some(3..10));
        assert!(!r.contains_range(0..13));
        r.write_at(3, &[0xAA; 7]).unwrap();
        assert!(r.contains_range(0..13));
        assert_eq!(r.read_at(0, &mut buf).unwrap(), 13);
        assert_eq!(&buf[..13], b"abc\xAA\xAA\xAA\xAA\xAA\xAA\xAAxyz");
        // A backward write does not lose data.
        r.write_at(1, b"B").unwrap();
        assert_eq!(r.read_at(0, &mut buf).unwrap(), 13);
        assert_eq!(&buf[..3], b"aBc");
        assert_eq!(r.available().covered_len(), 13);
    }
}

#[test]
fn from_bytes_is_committed() {
    let r = StorageResource::from_bytes(b"0123456789", CancelToken::new());
    assert_eq!(r.len(), Some(10));
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: 10 });
    assert_eq!(r.wait_range(0..10, soon(5000)).unwrap(), WaitOutcome::Ready);
    assert_eq!(r.wait_range(8..20, soon(5000)).unwrap(), WaitOutcome::Ready);
    assert_eq!(r.wait_range(10..11, soon(5000)).unwrap(), WaitOutcome::Eof);
    assert!(matches!(
        r.write_at(10, b"x"),
        Err(StorageError::WriteAfterCommit)
    ));
    assert!(StorageResource::from_bytes(b"", CancelToken::new()).is_empty());
}

#[test]
fn invalid_ranges_are_errors_and_lose_nothing() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"keep").unwrap();
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 5..3;
    assert!(matches!(
        r.wait_range(inverted, soon(5000)),
        Err(StorageError::InvalidRange { start: 5, end: 3 })
    ));
    assert!(matches!(
        r.write_at(u64::MAX - 1, b"xyz"),
        Err(StorageError::InvalidRange { .. })
    ));
    assert_eq!(r.wait_range(7..7, soon(5000)).unwrap(), WaitOutcome::Ready);
    let mut buf = [0u8; 4];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), 4);
    assert_eq!(&buf, b"keep");
    // A write that ends exactly at u64::MAX is fine.
    r.write_at(u64::MAX - 2, b"zz").unwrap();
    assert!(r.contains_range(u64::MAX - 2..u64::MAX));
}

#[test]
fn wait_blocks_until_another_thread_writes() {
    for (name, r) in backends() {
        let w = r.clone();
        let t = spawn("writer", move || {
            thread::sleep(Duration::from_millis(50));
            w.write_at(0, &[1u8; 100]).unwrap();
        });
        let start = Instant::now();
        assert_eq!(
            r.wait_range(0..100, soon(5000)).unwrap(),
            WaitOutcome::Ready,
            "{name}"
        );
        assert!(start.elapsed() >= Duration::from_millis(40));
        t.join(LIMIT);
    }
}

#[test]
fn wait_deadline_is_a_distinct_error() {
    let r = StorageResource::memory(CancelToken::new());
    let start = Instant::now();
    assert!(matches!(
        r.wait_range(0..1, soon(30)),
        Err(StorageError::DeadlineExceeded)
    ));
    let e = start.elapsed();
    assert!(
        e >= Duration::from_millis(25) && e < Duration::from_secs(5),
        "{e:?}"
    );
    assert!(matches!(
        r.wait_range_timeout(0..1, Some(Duration::ZERO)),
        Err(StorageError::DeadlineExceeded)
    ));
}

#[test]
fn eof_only_when_committed_and_past_end() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"12345").unwrap();
    assert!(matches!(
        r.wait_range(5..10, soon(10)),
        Err(StorageError::DeadlineExceeded)
    ));
    r.commit(Some(5)).unwrap();
    assert_eq!(r.wait_range(5..10, soon(5000)).unwrap(), WaitOutcome::Eof);
    assert_eq!(r.wait_range(3..10, soon(5000)).unwrap(), WaitOutcome::Ready);
    assert_eq!(r.len(), Some(5));
}

#[test]
fn commit_with_gap_reports_missing_instead_of_hanging() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"ab").unwrap();
    r.write_at(4, b"ef").unwrap();
    r.commit(None).unwrap();
    assert_eq!(r.len(), Some(6));
    assert!(matches!(
        r.wait_range(0..6, soon(5000)),
        Err(StorageError::Missing { start: 2, end: 4 })
    ));
    assert_eq!(r.next_gap(0, 100), Some(2..4));
    // Reactivate and fill.
    r.reactivate().unwrap();
    assert_eq!(r.status(), ResourceStatus::Active);
    r.write_at(2, b"cd").unwrap();
    r.commit(None).unwrap();
    assert_eq!(r.wait_range(0..6, soon(5000)).unwrap(), WaitOutcome::Ready);
}

#[test]
fn commit_trims_bytes_past_final_len() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"0123456789").unwrap();
    r.commit(Some(4)).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), 4);
    assert_eq!(r.read_at(5, &mut buf).unwrap(), 0);
}

/// A thread blocked in `wait_range(0..10, soon(5000))`, checked to be still
/// blocked (not returned early) before the caller wakes it.
fn blocked_waiter(r: &StorageResource) -> Bounded<Result<WaitOutcome, StorageError>> {
    let r = r.clone();
    let h = spawn("wait_range(0..10, None)", move || r.wait_range(0..10, None));
    h.assert_blocked(Duration::from_millis(30));
    h
}

#[test]
fn cancel_wakes_a_blocked_waiter_promptly() {
    for (name, r) in backends() {
        let h = blocked_waiter(&r);
        r.cancel_token().cancel();
        let res = h.join(LIMIT);
        assert!(
            matches!(res, Err(StorageError::Cancelled)),
            "{name}: {res:?}"
        );
        assert_eq!(r.status(), ResourceStatus::Cancelled);
        assert!(matches!(r.write_at(0, b"x"), Err(StorageError::Cancelled)));
        assert!(matches!(
            r.read_at(0, &mut [0]),
            Err(StorageError::Cancelled)
        ));
        assert!(matches!(r.commit(None), Err(StorageError::Cancelled)));
    }
}

#[test]
fn parent_cancel_wakes_a_waiter_on_a_child_token() {
    let parent = CancelToken::new();
    let r = StorageResource::memory(parent.child());
    let h = blocked_waiter(&r);
    parent.cancel();
    assert!(matches!(h.join(LIMIT), Err(StorageError::Cancelled)));
}

#[test]
fn fail_wakes_a_blocked_waiter_promptly() {
    for (name, r) in backends() {
        let h = blocked_waiter(&r);
        r.fail("boom");
        let res = h.join(LIMIT);
        assert!(
            matches!(&res, Err(StorageError::Failed(m)) if m == "boom"),
            "{name}: {res:?}"
        );
        assert_eq!(r.status(), ResourceStatus::Failed("boom".into()));
        r.fail("again");
        assert_eq!(r.status(), ResourceStatus::Failed("again".into()));
        assert!(matches!(r.reactivate(), Err(StorageError::Failed(_))));
    }
}

/// Each state change wakes a blocked waiter (a write, a commit, a
/// reactivate, a length hint, `notify_waiters`): `wait_until` re-checks
/// after every notification, and only then.
#[test]
fn every_state_change_wakes_a_wait_until() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    type Step = Box<dyn Fn(&StorageResource)>;
    let r = StorageResource::memory(CancelToken::new());
    let flag = Arc::new(AtomicUsize::new(0));
    let steps: Vec<(&str, Step)> = vec![
        ("write_at", Box::new(|r| r.write_at(0, b"a").unwrap())),
        ("commit", Box::new(|r| r.commit(None).unwrap())),
        ("reactivate", Box::new(|r| r.reactivate().unwrap())),
        ("set_len_hint", Box::new(|r| r.set_len_hint(Some(9)))),
        ("notify_waiters", Box::new(|r| r.notify_waiters())),
    ];
    for (i, (what, step)) in steps.iter().enumerate() {
        let (r2, f2) = (r.clone(), flag.clone());
        let h = spawn(*what, move || {
            r2.wait_until(None, || (f2.load(Ordering::SeqCst) > i).then_some(()))
        });
        h.assert_blocked(Duration::from_millis(20));
        // The condition turns true without a notification of its own...
        flag.store(i + 1, Ordering::SeqCst);
        h.assert_blocked(Duration::from_millis(20));
        // ...and the waiter sees it once the resource's event fires.
        step(&r);
        assert_eq!(h.join(LIMIT), Some(()), "{what}");
    }
}

#[test]
fn status_priority() {
    let r = StorageResource::memory(CancelToken::new());
    r.commit(Some(0)).unwrap();
    r.cancel_token().cancel();
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: 0 });
    r.fail("x");
    assert_eq!(r.status(), ResourceStatus::Failed("x".into()));
}

#[test]
fn reactivate_keeps_bytes_and_allows_append() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"abc").unwrap();
    r.commit(None).unwrap();
    r.reactivate().unwrap();
    assert_eq!(r.len(), None);
    r.reactivate().unwrap();
    r.write_at(3, b"def").unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), 6);
    assert_eq!(&buf, b"abcdef");
}

#[test]
fn len_hint_is_informational() {
    let r = StorageResource::memory(CancelToken::new());
    r.set_len_hint(Some(1_000_000_000));
    assert_eq!(r.len(), None);
    assert_eq!(r.len_hint(), Some(1_000_000_000));
    r.write_at(0, b"x").unwrap();
    r.commit(None).unwrap();
    assert_eq!(r.len_hint(), Some(1));
}

#[test]
fn async_wait_on_block_on() {
    let r = StorageResource::memory(CancelToken::new());
    let ready = spawn("block_on(wait_range_async(0..4))", {
        let fut = r.wait_range_async(0..4);
        move || futures::executor::block_on(fut)
    });
    let eof = spawn("block_on(wait_range_async(4..8))", {
        let fut = r.wait_range_async(4..8);
        move || futures::executor::block_on(fut)
    });
    ready.assert_blocked(Duration::from_millis(20));
    r.write_at(0, b"abcd").unwrap();
    assert_eq!(ready.join(LIMIT).unwrap(), WaitOutcome::Ready);
    eof.assert_blocked(Duration::from_millis(20));
    r.commit(None).unwrap();
    assert_eq!(eof.join(LIMIT).unwrap(), WaitOutcome::Eof);
    let c = StorageResource::memory(CancelToken::new());
    let fut = c.wait_range_async(0..1);
    c.cancel_token().cancel();
    assert!(matches!(
        within_async(LIMIT, "wait_range_async after cancel", fut),
        Err(StorageError::Cancelled)
    ));
}

#[test]
fn file_resource_survives_reopen_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/song.bin");
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    {
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert_eq!(r.status(), ResourceStatus::Active);
        r.write_at(50_000, &body[50_000..]).unwrap();
        // Written on a helper thread, but on disk before the first write returns.
        assert!(
            dir.path()
                .join(format!("sub/song.bin{SIDECAR_SUFFIX}"))
                .exists()
        );
        r.write_at(0, &body[..50_000]).unwrap();
        r.commit(Some(body.len() as u64)).unwrap();
        assert!(
            !dir.path()
                .join(format!("sub/song.bin{SIDECAR_SUFFIX}"))
                .exists()
        );
    }
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(
        r.status(),
        ResourceStatus::Committed {
            final_len: body.len() as u64
        }
    );
    assert_eq!(r.path(), Some(path.as_path()));
    let mut buf = vec![0u8; body.len() + 10];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), body.len());
    assert_eq!(&buf[..body.len()], &body[..]);
    assert_eq!(
        r.wait_range(body.len() as u64..body.len() as u64 + 1, soon(5000))
            .unwrap(),
        WaitOutcome::Eof
    );
}

#[test]
fn existing_plain_file_opens_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain");
    std::fs::write(&path, b"fourteen bytes").unwrap();
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: 14 });
}

#[test]
fn partial_file_resumes_with_its_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial");
    {
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, b"head").unwrap();
        r.write_at(100, b"tail").unwrap();
        // Dropping the last handle records the ranges.
    }
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(r.status(), ResourceStatus::Active);
    assert!(r.contains_range(0..4) && r.contains_range(100..104));
    assert_eq!(r.next_gap(0, 104), Some(4..100));
    let mut buf = [0u8; 8];
    assert_eq!(r.read_at(4, &mut buf).unwrap(), 0);
    r.write_at(4, &[b'-'; 96]).unwrap();
    r.flush().unwrap();
    r.commit(None).unwrap();
    drop(r);
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: 104 });
}

#[test]
fn failed_file_keeps_ranges_and_committed_gaps_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    r.write_at(0, b"abc").unwrap();
    r.write_at(6, b"ghi").unwrap();
    r.commit(None).unwrap();
    drop(r);
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: 9 });
    assert_eq!(r.next_gap(0, 9), Some(3..6));
    r.reactivate().unwrap();
    r.fail("net down");
    drop(r);
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    assert_eq!(r.status(), ResourceStatus::Active);
    assert!(r.contains_range(0..3) && r.contains_range(6..9));
}

#[test]
fn corrupt_sidecar_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    std::fs::write(&path, b"data").unwrap();
    std::fs::write(dir.path().join(format!("c{SIDECAR_SUFFIX}")), b"garbage\n").unwrap();
    assert!(matches!(
        StorageResource::open_file(&path, CancelToken::new()),
        Err(StorageError::CorruptMetadata { .. })
    ));
}

/// A fresh file's first sidecar is written on a helper thread, but no data
/// write returns before it is on disk: a crash right after a write (here:
/// the resource leaked, so no drop-time flush) leaves a partial file that
/// trusts nothing, never one that looks complete.
#[test]
fn fresh_file_never_looks_complete_after_a_crash() {
    for i in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh{i}"));
        let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        r.write_at(0, b"some bytes").unwrap();
        let side = std::fs::read_to_string(dir.path().join(format!("fresh{i}{SIDECAR_SUFFIX}")))
            .expect("the sidecar exists once a write returned");
        assert!(side.contains("state active"), "{side}");
        std::mem::forget(r); // the crash: no flush, no drop
        // What a new process would find: the files as they are on disk now
        // (copied, since the leaked resource still holds its path's claim).
        let after = dir.path().join(format!("after{i}"));
        std::fs::copy(&path, &after).unwrap();
        std::fs::copy(
            dir.path().join(format!("fresh{i}{SIDECAR_SUFFIX}")),
            dir.path().join(format!("after{i}{SIDECAR_SUFFIX}")),
        )
        .unwrap();
        let again = StorageResource::open_file(&after, CancelToken::new()).unwrap();
        assert_eq!(again.status(), ResourceStatus::Active);
        assert!(!again.contains_range(0..1), "nothing recorded is trusted");
    }
}

/// A fresh file whose sidecar cannot be written: the first write fails
/// with a typed I/O error, and keeps failing.
#[cfg(unix)]
#[test]
fn fresh_file_with_an_unwritable_sidecar_fails_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocked");
    // A directory where the sidecar's temp file would go.
    std::fs::create_dir(dir.path().join(format!("blocked{SIDECAR_SUFFIX}.tmp"))).unwrap();
    let r = StorageResource::open_file(&path, CancelToken::new()).unwrap();
    for _ in 0..2 {
        assert!(matches!(r.write_at(0, b"x"), Err(StorageError::Io(_))));
    }
    assert!(!r.contains_range(0..1));
}

/// The last handle dropped before the writer's commit (a reader that
/// stopped right after the last byte): a resource whose announced length
/// is fully present is recorded complete, as the commit would have; one
/// with a gap, or a failed one, stays partial.
#[test]
fn drop_records_a_fully_present_resource_as_complete() {
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let len = body.len() as u64;
    let open =
        |name: &str| StorageResource::open_file(dir.path().join(name), CancelToken::new()).unwrap();
    let side = |name: &str| dir.path().join(format!("{name}{SIDECAR_SUFFIX}"));

    // Whole, never committed, cancelled (the stream was dropped): complete.
    let r = open("whole");
    r.set_len_hint(Some(len));
    r.write_at(0, &body).unwrap();
    r.cancel_token().cancel();
    drop(r);
    assert!(!side("whole").exists());
    let r = open("whole");
    assert_eq!(r.status(), ResourceStatus::Committed { final_len: len });
    let mut back = vec![0u8; body.len()];
    assert_eq!(r.read_at(0, &mut back).unwrap(), body.len());
    assert_eq!(back, body);

    // One byte missing: partial, and resumable from its ranges.
    let r = open("gap");
    r.set_len_hint(Some(len));
    r.write_at(0, &body[..40_000]).unwrap();
    r.write_at(40_001, &body[40_001..]).unwrap();
    drop(r);
    assert!(side("gap").exists());
    let r = open("gap");
    assert_eq!(r.status(), ResourceStatus::Active);
    assert!(r.contains_range(0..40_000) && !r.contains_range(40_000..40_001));

    // Failed: stays what it was (partial), even with every byte present.
    let r = open("failed");
    r.set_len_hint(Some(len));
    r.write_at(0, &body).unwrap();
    r.fail("network gone");
    drop(r);
    assert!(side("failed").exists());
    assert_eq!(open("failed").status(), ResourceStatus::Active);
}

#[test]
fn temp_file_is_deleted_on_drop() {
    let r = StorageResource::temp_file(CancelToken::new()).unwrap();
    let p = r.path().unwrap().to_path_buf();
    assert!(p.exists());
    let r2 = r.clone();
    drop(r);
    assert!(p.exists());
    drop(r2);
    assert!(!p.exists());
}

#[test]
fn stress_concurrent_writers_and_waiters() {
    // 4 writers fill disjoint interleaved blocks while 8 waiters wait on
    // random ranges; every waiter must see exactly the written bytes.
    const BLOCK: u64 = 997;
    const BLOCKS: u64 = 400;
    for round in 0..5u64 {
        for (name, r) in backends() {
            let total = BLOCK * BLOCKS;
            let writers: Vec<_> = (0..4u64)
                .map(|w| {
                    let r = r.clone();
                    spawn("writer", move || {
                        for b in (w..BLOCKS).step_by(4) {
                            let data: Vec<u8> = (b * BLOCK..(b + 1) * BLOCK)
                                .map(|i| (i % 253) as u8)
                                .collect();
                            r.write_at(b * BLOCK, &data).unwrap();
                        }
                    })
                })
                .collect();
            let readers: Vec<_> = (0..8u64)
                .map(|k| {
                    let r = r.clone();
                    spawn("reader", move || {
                        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (k + 1) ^ (round << 8);
                        for _ in 0..200 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let start = x % total;
                            let len = 1 + (x >> 32) % 5000;
                            let end = (start + len).min(total);
                            assert_eq!(
                                r.wait_range(start..end, soon(20_000)).unwrap(),
                                WaitOutcome::Ready
                            );
                            let mut buf = vec![0u8; (end - start) as usize];
                            assert_eq!(r.read_at(start, &mut buf).unwrap(), buf.len());
                            for (i, b) in buf.iter().enumerate() {
                                assert_eq!(*b, ((start + i as u64) % 253) as u8);
                            }
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join(Duration::from_secs(60));
            }
            r.commit(None).unwrap();
            for h in readers {
                h.join(Duration::from_secs(60));
            }
            assert_eq!(r.len(), Some(total), "{name}");
        }
    }
}

/// Races a blocking waiter against the wake-up in every order many times:
/// a lost wake-up would hang the join (bounded by the channel timeout).
#[test]
fn stress_no_lost_wakeups() {
    for i in 0..600u32 {
        let r = StorageResource::memory(CancelToken::new());
        let waiter = {
            let r = r.clone();
            spawn("wait_range(0..4, None)", move || r.wait_range(0..4, None))
        };
        if i % 3 == 0 {
            thread::yield_now();
        }
        let expect_ok = match i % 4 {
            0 => {
                r.cancel_token().cancel();
                false
            }
            1 => {
                r.fail("x");
                false
            }
            2 => {
                r.write_at(0, b"abcd").unwrap();
                true
            }
            _ => {
                r.commit(Some(0)).unwrap();
                true
            }
        };
        let res = waiter.join(LIMIT);
        assert_eq!(res.is_ok(), expect_ok, "round {i}: {res:?}");
    }
}

#[test]
fn stress_many_waiters_one_notifier() {
    let r = StorageResource::memory(CancelToken::new());
    let waiters: Vec<_> = (0..32u64)
        .map(|k| {
            let r = r.clone();
            spawn("waiter", move || {
                for j in 0..50u64 {
                    let off = (k * 50 + j) * 10;
                    assert_eq!(
                        r.wait_range(off..off + 10, soon(20_000)).unwrap(),
                        WaitOutcome::Ready
                    );
                }
            })
        })
        .collect();
    for i in (0..32 * 50u64).rev() {
        r.write_at(i * 10, &[1u8; 10]).unwrap();
    }
    for w in waiters {
        w.join(Duration::from_secs(60));
    }
}

/// A file committed with gaps keeps its sidecar through a flush, a fail and
/// the drop of a reopened handle: it never reopens as complete (nor is it
/// truncated as if it were).
#[test]
fn committed_with_gaps_never_reopens_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gappy");
    let side = dir.path().join(format!("gappy{SIDECAR_SUFFIX}"));
    let open = || StorageResource::open_file(&path, CancelToken::new()).unwrap();
    let still_gappy = |r: &StorageResource, step: &str| {
        assert_eq!(
            r.status(),
            ResourceStatus::Committed { final_len: 9 },
            "{step}"
        );
        assert_eq!(r.next_gap(0, 9), Some(3..6), "{step}");
        assert!(r.contains_range(0..3) && r.contains_range(6..9), "{step}");
    };
    let r = open();
    r.write_at(0, b"abc").unwrap();
    r.write_at(6, b"ghi").unwrap();
    r.commit(None).unwrap();
    r.flush().unwrap();
    assert!(side.exists(), "flush after a commit with gaps");
    drop(r);
    let r = open();
    still_gappy(&r, "reopened after flush");
    drop(r); // a reopened handle has recorded nothing yet: the drop records
    assert!(side.exists(), "drop of a reopened handle");
    let r = open();
    still_gappy(&r, "reopened after drop");
    r.flush().unwrap();
    assert!(side.exists(), "flush of a reopened handle");
    r.fail("later failure");
    assert!(side.exists(), "fail");
    drop(r);
    still_gappy(&open(), "reopened after fail");
}

#[test]
fn is_empty_only_for_a_committed_empty_resource() {
    assert!(StorageResource::from_bytes(b"", CancelToken::new()).is_empty());
    assert!(!StorageResource::from_bytes(b"x", CancelToken::new()).is_empty());
    let r = StorageResource::memory(CancelToken::new());
    assert!(!r.is_empty(), "active: length unknown");
    r.commit(Some(0)).unwrap();
    assert!(r.is_empty());
}

/// `temp_file` in a temp dir that does not exist: a typed I/O error at
/// once, not retried under other names. Runs in a child process (this test binary, re-run with `TMPDIR`
/// set), since the environment is process-wide.
#[cfg(unix)]
#[test]
fn temp_file_in_a_missing_dir_is_a_typed_error() {
    const CHILD: &str = "KITHARA_STREAM_TEST_TEMP_FILE_CHILD";
    const NAME: &str = "temp_file_in_a_missing_dir_is_a_typed_error";
    if let Some(dir) = std::env::var_os(CHILD) {
        match StorageResource::temp_file(CancelToken::new()) {
            Err(StorageError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            other => panic!("expected Io(NotFound), got {other:?}"),
        }
        // Only a name collision is retried with the next name: the failed
        // call above used one name (`…-0.tmp`, the process's first), so
        // the next one is `…-1.tmp`.
        std::fs::create_dir(&dir).unwrap();
        let r = StorageResource::temp_file(CancelToken::new()).unwrap();
        let name = r
            .path()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.ends_with("-1.tmp"),
            "{name}: the failed call was retried"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = within(LIMIT, "child test process", move || {
        std::process::Command::new(exe)
            .args([NAME, "--exact", "--test-threads=1"])
            .env(CHILD, dir.path().join("missing"))
            .env("TMPDIR", dir.path().join("missing"))
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn debug_output_shows_the_state() {
    let r = StorageResource::memory(CancelToken::new());
    r.write_at(0, b"abc").unwrap();
    let d = format!("{r:?}");
    assert!(d.starts_with("StorageResource {"), "{d}");
    assert!(
        d.contains("committed: None") && d.contains("cancelled: false"),
        "{d}"
    );
    r.commit(None).unwrap();
    assert!(format!("{r:?}").contains("committed: Some(3)"), "{r:?}");
    assert_eq!(format!("{:?}", r.changed()), "Changed { .. }");
}

/// An async wait for missing data is `Pending` after one poll (it neither
/// resolves nor spins inside `poll`) and resolves after the write; a
/// `changed()` future resolves at the next notification, not before.
#[test]
fn async_waits_are_pending_until_notified() {
    use std::future::Future;
    use std::task::{Context, Poll};
    within(
        Duration::from_secs(5),
        "polls that must return at once",
        || {
            let r = StorageResource::memory(CancelToken::new());
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            let mut changed = Box::pin(r.changed());
            assert!(changed.as_mut().poll(&mut cx).is_pending());
            let mut wait = Box::pin(r.wait_range_async(0..4));
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            r.notify_waiters();
            assert!(changed.as_mut().poll(&mut cx).is_ready());
            assert!(wait.as_mut().poll(&mut cx).is_pending(), "still missing");
            r.write_at(0, b"abcd").unwrap();
            assert!(matches!(
                wait.as_mut().poll(&mut cx),
                Poll::Ready(Ok(WaitOutcome::Ready))
            ));
        },
    );
}

#[test]
fn range_set_debug_lists_the_ranges() {
    let mut set = kithara_stream::storage::RangeSet::new();
    set.insert(5..9);
    set.insert(0..3);
    assert_eq!(format!("{set:?}"), "{0..3, 5..9}");
}

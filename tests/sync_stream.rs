#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stream over StorageSource: the read policy, seek rules, async readers, stress.

use std::io::{self, Read, Seek, SeekFrom};
use std::thread;
use std::time::{Duration, Instant};

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageError, StorageResource};
use kithara_stream::{
    NotReadyCause, PendingReason, SourceError, StorageSource, StreamPending, StreamReadOutcome,
    StreamSeekPastEof,
};

mod sync_common;
use sync_common::{LIMIT, S, assert_cancelled, body, source_error, spawn, stream_over, within};

#[test]
fn new_builds_from_config_without_a_runtime() {
    within(LIMIT, "new_builds_from_config_without_a_runtime", || {
        let res = StorageResource::from_bytes(b"xyz", CancelToken::new());
        let mut s = futures::executor::block_on(S::new(StorageSource::new(res))).unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"xyz");
        assert_eq!(s.is_empty(), Some(false));
    })
}

#[test]
fn try_read_budget_then_read_keeps_waiting() {
    within(LIMIT, "try_read_budget_then_read_keeps_waiting", || {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = stream_over(&res);
        let mut buf = [0u8; 16];
        let t0 = Instant::now();
        let out = s.try_read(&mut buf).unwrap();
        let took = t0.elapsed();
        assert_eq!(
            out,
            StreamReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::WaitBudgetExhausted))
        );
        // 50 × 10 ms, give or take scheduling.
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // Now Read on the same stream blocks past the budget until data arrives.
        let w = res.clone();
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(700));
            // The read waits for its whole range (§2.3), so write all 16 bytes.
            w.write_at(0, b"late bytes, all!").unwrap();
        });
        let t0 = Instant::now();
        let n = s.read(&mut buf).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(600));
        assert_eq!(n, 16);
        assert_eq!(&buf, b"late bytes, all!");
        writer.join().unwrap();
    })
}

#[test]
fn read_timeout_gives_timed_out_with_snapshot() {
    within(LIMIT, "read_timeout_gives_timed_out_with_snapshot", || {
        let res = StorageResource::memory(CancelToken::new());
        res.write_at(0, b"ab").unwrap();
        let mut s = stream_over(&res);
        s.set_read_timeout(Some(Duration::from_millis(50)));
        assert_eq!(s.read_timeout(), Some(Duration::from_millis(50)));
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        let t0 = Instant::now();
        let e = s.read(&mut buf).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let p = e
            .get_ref()
            .unwrap()
            .downcast_ref::<StreamPending>()
            .unwrap();
        assert_eq!(p.pos, 2);
        assert_eq!(p.want, 2);
        assert!(matches!(p.reason, PendingReason::NotReady(_)));
    })
}

#[test]
fn cancel_wakes_a_blocked_read_with_typed_error() {
    let res = StorageResource::memory(CancelToken::new());
    let mut s = stream_over(&res);
    let h = spawn("read", move || s.read(&mut [0u8; 8]));
    h.assert_blocked(Duration::from_millis(50));
    res.cancel_token().cancel();
    let e = h.join(LIMIT).unwrap_err();
    assert_cancelled(&e);
}

#[test]
fn fail_wakes_a_blocked_read() {
    let res = StorageResource::memory(CancelToken::new());
    let mut s = stream_over(&res);
    let h = spawn("read", move || s.read(&mut [0u8; 8]));
    h.assert_blocked(Duration::from_millis(50));
    res.fail("http 500");
    let e = h.join(LIMIT).unwrap_err();
    assert!(
        matches!(source_error(&e), SourceError::Storage(StorageError::Failed(m)) if m == "http 500"),
        "{e:?}"
    );
}

#[test]
fn seek_pending_surfaces_as_interrupted() {
    let res = StorageResource::memory(CancelToken::new());
    let mut s = stream_over(&res);
    let tl = s.timeline();
    let notify = s.make_notify_fn().unwrap();
    let h = spawn("read", move || s.read(&mut [0u8; 8]));
    h.assert_blocked(Duration::from_millis(50));
    let _ = tl.initiate_seek(Duration::from_secs(1));
    notify();
    let e = h.join(LIMIT).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Interrupted);
}

#[test]
fn no_early_eof_while_writer_trickles() {
    within(LIMIT, "no_early_eof_while_writer_trickles", || {
        let data = body(300_000, 7);
        let res = StorageResource::memory(CancelToken::new());
        let w = res.clone();
        let d = data.clone();
        let writer = thread::spawn(move || {
            for (i, c) in d.chunks(7_919).enumerate() {
                w.write_at((i * 7_919) as u64, c).unwrap();
                if i % 8 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            w.commit(None).unwrap();
        });
        let mut s = stream_over(&res);
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), data.len());
        assert!(out == data);
        writer.join().unwrap();
    })
}

#[test]
fn seek_past_known_length_is_invalid_input() {
    within(LIMIT, "seek_past_known_length_is_invalid_input", || {
        let res = StorageResource::from_bytes(&[1u8; 100], CancelToken::new());
        let mut s = stream_over(&res);
        s.seek(SeekFrom::Start(10)).unwrap();
        let e = s.seek(SeekFrom::Start(101)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let p = e
            .get_ref()
            .unwrap()
            .downcast_ref::<StreamSeekPastEof>()
            .unwrap();
        assert_eq!(
            *p,
            StreamSeekPastEof {
                current_pos: 10,
                len: 100,
                new_pos: 101
            }
        );
        assert_eq!(s.position(), 10);
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 100);
        assert_eq!(s.read(&mut [0u8; 4]).unwrap(), 0);
        assert_eq!(
            s.seek(SeekFrom::End(-101)).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(s.seek(SeekFrom::Current(-100)).unwrap(), 0);
    })
}

#[test]
fn seek_from_end_waits_for_the_length() {
    let res = StorageResource::memory(CancelToken::new());
    res.write_at(0, b"0123").unwrap();
    let mut s = stream_over(&res);
    let seek = spawn("seek(End(-2))", move || {
        let pos = s.seek(SeekFrom::End(-2)).unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        (pos, buf)
    });
    seek.assert_blocked(Duration::from_millis(50));
    res.write_at(4, b"456789").unwrap();
    seek.assert_blocked(Duration::from_millis(20)); // bytes, but no length yet
    res.commit(None).unwrap();
    assert_eq!(seek.join(LIMIT), (8, *b"89"));

    // An announced length (before commit) is enough.
    let res = StorageResource::memory(CancelToken::new());
    let mut s = stream_over(&res);
    let seek = spawn("seek(End(-1000))", move || {
        s.seek(SeekFrom::End(-1000)).unwrap()
    });
    seek.assert_blocked(Duration::from_millis(30));
    res.set_len_hint(Some(1000));
    assert_eq!(seek.join(LIMIT), 0);

    // Cancel while waiting for the length: an error, not a hang.
    let res = StorageResource::memory(CancelToken::new());
    let mut s = stream_over(&res);
    let h = spawn("seek(End(0))", move || s.seek(SeekFrom::End(0)));
    h.assert_blocked(Duration::from_millis(30));
    res.cancel_token().cancel();
    let e = h.join(LIMIT).unwrap_err();
    assert_cancelled(&e);
}

/// One writer writes a pseudo-random body in random-sized chunks at random
/// offsets, then fills every gap; 8 readers Read + Seek randomly through
/// their own `Stream`. 64 MiB (about 1.5 s in a debug build).
#[test]
fn stress_one_writer_eight_seeking_readers() {
    within(
        Duration::from_secs(120),
        "stress_one_writer_eight_seeking_readers",
        || {
            let size: usize = 64 << 20;
            let data = std::sync::Arc::new(body(size, 0xDEAD_BEEF));
            let res = StorageResource::memory(CancelToken::new());
            let t0 = Instant::now();

            let readers: Vec<_> = (0..8u64)
                .map(|k| {
                    let res = res.clone();
                    let data = data.clone();
                    thread::spawn(move || {
                        let mut s = stream_over(&res);
                        let mut x = 0x1234_5678_9ABC_DEF1u64.wrapping_mul(k + 1);
                        let mut next = move || {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x
                        };
                        let mut buf = vec![0u8; 256 * 1024];
                        let mut checked = 0usize;
                        for i in 0..300 {
                            let r = next();
                            let target = match r % 8 {
                                0 if i > 150 => {
                                    s.seek(SeekFrom::End(-((next() % 1000) as i64))).unwrap()
                                }
                                1 => s
                                    .seek(SeekFrom::Current((next() % 65_536) as i64 - 32_768))
                                    .unwrap_or_else(|_| s.seek(SeekFrom::Start(0)).unwrap()),
                                _ => s.seek(SeekFrom::Start(next() % size as u64)).unwrap(),
                            };
                            assert_eq!(s.position(), target);
                            for _ in 0..4 {
                                let want = 1 + (next() % buf.len() as u64) as usize;
                                let pos = s.position() as usize;
                                let n = s.read(&mut buf[..want]).unwrap();
                                if n == 0 {
                                    assert_eq!(pos, size, "early Ok(0) at {pos}");
                                    break;
                                }
                                assert!(buf[..n] == data[pos..pos + n], "mismatch at {pos}+{n}");
                                checked += n;
                            }
                        }
                        // Finally read a tail to the true end.
                        let start = size - 300_000 - (k as usize) * 1000;
                        s.seek(SeekFrom::Start(start as u64)).unwrap();
                        let mut tail = Vec::new();
                        s.read_to_end(&mut tail).unwrap();
                        assert!(tail[..] == data[start..]);
                        checked + tail.len()
                    })
                })
                .collect();

            let w = res.clone();
            let d = data.clone();
            let writer = thread::spawn(move || {
                let mut x = 0xC0FF_EE00_1234_5679u64;
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                // Random chunks at random offsets until about half is covered...
                while w.available().covered_len() < size as u64 / 2 {
                    let off = (next() % size as u64) as usize;
                    let len = 1 + (next() % (512 * 1024)) as usize;
                    let end = (off + len).min(size);
                    w.write_at(off as u64, &d[off..end]).unwrap();
                }
                // ...then every gap, in random-sized pieces.
                while let Some(gap) = w.next_gap(0, size as u64) {
                    let piece = 1 + next() % (256 * 1024);
                    let end = gap.end.min(gap.start + piece);
                    w.write_at(gap.start, &d[gap.start as usize..end as usize])
                        .unwrap();
                }
                w.commit(Some(size as u64)).unwrap();
            });

            writer.join().unwrap();
            let total: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
            assert!(total > 0);
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "took {:?}",
                t0.elapsed()
            );
        },
    )
}

#[test]
fn stream_over_a_file_resource_while_writing_and_after_reopen() {
    within(
        LIMIT,
        "stream_over_a_file_resource_while_writing_and_after_reopen",
        || {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cache.bin");
            let data = body(500_000, 99);
            let res = StorageResource::open_file(&path, CancelToken::new()).unwrap();
            let w = res.clone();
            let d = data.clone();
            let writer = thread::spawn(move || {
                for (i, c) in d.chunks(33_333).enumerate().rev() {
                    w.write_at((i * 33_333) as u64, c).unwrap();
                }
                w.commit(None).unwrap();
            });
            let mut s = stream_over(&res);
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            assert!(out == data);
            writer.join().unwrap();
            drop(s);
            drop(res);
            // A later run finds a complete cache entry.
            let res = StorageResource::open_file(&path, CancelToken::new()).unwrap();
            let mut s = stream_over(&res);
            assert_eq!(s.len(), Some(data.len() as u64));
            s.seek(SeekFrom::Start(1234)).unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            assert!(out[..] == data[1234..]);
        },
    )
}

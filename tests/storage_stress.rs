//! Memory storage under concurrent writes and reads: seeded random
//! interleavings of a sequential writer (with resume-like rewrites), random
//! readers and a follower at the frontier. Every byte read must be the byte
//! written there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

mod storage_common;

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageResource, WaitOutcome};
use storage_common::{Rng, byte_at, chunk};

fn check(res: &StorageResource, pos: u64, len: usize) {
    let mut buf = vec![0u8; len];
    let n = res.read_at(pos, &mut buf).unwrap();
    for (i, b) in buf[..n].iter().enumerate() {
        assert_eq!(
            *b,
            byte_at(pos + i as u64),
            "byte {} (read at {pos})",
            pos + i as u64
        );
    }
}

/// One writer writes a sequential body in random-sized chunks (now and then
/// re-writing an earlier range with the same bytes, as a resume would),
/// across 1 MiB page edges; several readers read random written ranges and
/// one follows the frontier. Seeded; many rounds.
#[test]
fn stress_sequential_writer_with_random_readers() {
    const LEN: u64 = 6 << 20;
    for seed in 1..=8u64 {
        let res = StorageResource::memory(CancelToken::new());
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let res = res.clone();
            thread::spawn(move || {
                let mut rng = Rng(seed * 0x1234_5678_9ABC);
                let mut pos = 0u64;
                while pos < LEN {
                    let len = (1 + rng.below(300_000)).min(LEN - pos) as usize;
                    res.write_at(pos, &chunk(pos, len)).unwrap();
                    pos += len as u64;
                    if rng.below(8) == 0 && pos > 10 {
                        let at = rng.below(pos);
                        let n = rng.below((pos - at).min(200_000)) as usize + 1;
                        let n = n.min((pos - at) as usize);
                        res.write_at(at, &chunk(at, n)).unwrap();
                    }
                    if rng.below(16) == 0 {
                        thread::yield_now();
                    }
                }
                res.commit(Some(LEN)).unwrap();
            })
        };
        let mut readers = Vec::new();
        for r in 0..3u64 {
            let res = res.clone();
            let done = done.clone();
            readers.push(thread::spawn(move || {
                let mut rng = Rng(seed ^ ((r + 1) * 0xDEAD_BEEF));
                while !done.load(Ordering::Relaxed) {
                    let at = rng.below(LEN);
                    check(&res, at, 1 + rng.below(150_000) as usize);
                }
            }));
        }
        // The follower: reads everything in order, waiting at the frontier.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pos = 0u64;
        let mut rng = Rng(seed);
        while pos < LEN {
            let want = (1 + rng.below(100_000)).min(LEN - pos);
            assert_eq!(
                res.wait_range(pos..pos + want, Some(deadline)).unwrap(),
                WaitOutcome::Ready
            );
            let mut buf = vec![0u8; want as usize];
            let n = res.read_at(pos, &mut buf).unwrap();
            assert!(n as u64 >= want, "a ready range reads whole");
            for (i, b) in buf.iter().enumerate() {
                assert_eq!(
                    *b,
                    byte_at(pos + i as u64),
                    "follower byte {}",
                    pos + i as u64
                );
            }
            pos += want;
        }
        writer.join().unwrap();
        done.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        // After the end every byte is still right.
        check(&res, 0, LEN as usize);
    }
}

//! `StorageResource::write_bytes`: chunks kept without a copy until a reader
//! (or the writer, past a bound) moves them into pages. Stress tests with
//! many threads and seeded random interleavings: every byte read must be the
//! byte written there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageResource, WaitOutcome};

/// The byte at `pos` of the test resource.
fn byte_at(pos: u64) -> u8 {
    (pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn chunk(start: u64, len: usize) -> Bytes {
    (start..start + len as u64)
        .map(byte_at)
        .collect::<Vec<_>>()
        .into()
}

/// xorshift64*, seeded: reproducible random sizes and offsets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

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

#[test]
fn handed_over_chunks_read_back_before_and_after_they_move_into_pages() {
    let res = StorageResource::memory(CancelToken::new());
    // Chunks straddling page boundaries, unread: they stay handed over
    // until the bound forces the writer to copy.
    let mut pos = 1_000_000u64;
    for len in [100, 70_000, 1_000_000, 5, 3_000_000] {
        res.write_bytes(pos, chunk(pos, len)).unwrap();
        pos += len as u64;
    }
    check(&res, 1_000_000, (pos - 1_000_000) as usize);
    // Partial reads from inside chunks and across chunk and page edges.
    for (at, len) in [
        (1_000_050, 100),
        (1_048_570, 20),
        (2_070_000, 200_000),
        (pos - 3, 3),
    ] {
        check(&res, at, len);
    }
    assert_eq!(
        res.read_at(999_999, &mut [0u8; 4]).unwrap(),
        0,
        "nothing before the first write"
    );
}

#[test]
fn a_copying_write_over_a_handed_over_chunk_wins() {
    let res = StorageResource::memory(CancelToken::new());
    res.write_bytes(0, Bytes::from_static(b"old old old"))
        .unwrap();
    res.write_at(4, b"NEW").unwrap();
    let mut buf = [0u8; 11];
    assert_eq!(res.read_at(0, &mut buf).unwrap(), 11);
    assert_eq!(&buf, b"old NEW old");
    // An overlapping hand-over also wins over what is there.
    res.write_bytes(2, Bytes::from_static(b"12345")).unwrap();
    assert_eq!(res.read_at(0, &mut buf).unwrap(), 11);
    assert_eq!(&buf, b"ol12345 old");
    // A hand-over over bytes already in pages shadows them.
    res.write_bytes(8, Bytes::from_static(b"xyz")).unwrap();
    assert_eq!(res.read_at(0, &mut buf).unwrap(), 11);
    assert_eq!(&buf, b"ol12345 xyz");
}

/// One writer hands over a sequential body in random-sized chunks (now and
/// then re-writing an earlier range with the same bytes, by copy or by
/// hand-over, as a resume would); several readers read random written ranges
/// and one follows the frontier. Seeded; many rounds.
#[test]
fn stress_sequential_hand_over_with_random_readers() {
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
                    res.write_bytes(pos, chunk(pos, len)).unwrap();
                    pos += len as u64;
                    if rng.below(8) == 0 && pos > 10 {
                        let at = rng.below(pos);
                        let n = rng.below((pos - at).min(200_000)) as usize + 1;
                        let n = n.min((pos - at) as usize);
                        if rng.below(2) == 0 {
                            res.write_at(at, &chunk(at, n)).unwrap();
                        } else {
                            res.write_bytes(at, chunk(at, n)).unwrap();
                        }
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
        // After the end every byte is still right (whatever was left
        // handed over or moved).
        check(&res, 0, LEN as usize);
    }
}

//! `StorageResource::bounded` under concurrency: a writer that awaits
//! `writable` and a reader that reads and steps back, on real threads with
//! seeded random sizes; plus the wake-ups the writer relies on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{StorageError, StorageResource, WaitOutcome};

const MIB: u64 = 1 << 20;

fn byte(o: u64) -> u8 {
    (o.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// One seeded run: `total` bytes through `budget`; returns the peak
/// resident bytes.
fn run(seed: u64, total: u64, budget: u64, look_behind: u64) -> u64 {
    let res = StorageResource::bounded(budget, look_behind, CancelToken::new());
    let w = res.clone();
    let writer = std::thread::spawn(move || {
        let mut next = xorshift(seed | 1);
        let mut off = 0u64;
        while off < total {
            let n = (1 + next() % 70_000).min(total - off);
            futures::executor::block_on(w.writable(off));
            let data: Vec<u8> = (off..off + n).map(byte).collect();
            w.write_at(off, &data)
                .expect("a writable write is stored whole");
            off += n;
            if next().is_multiple_of(16) {
                std::thread::yield_now();
            }
        }
        w.commit(Some(total)).unwrap();
    });
    let mut next = xorshift(seed.rotate_left(17) | 1);
    let mut pos = 0u64;
    let mut peak = 0;
    let mut buf = vec![0u8; 200_000];
    let deadline = Instant::now() + Duration::from_secs(30);
    while pos < total {
        let want = (1 + next() % buf.len() as u64) as usize;
        match res
            .wait_range(pos..pos + want as u64, Some(deadline))
            .unwrap()
        {
            WaitOutcome::Ready => {}
            other => panic!("{other:?} at {pos}"),
        }
        let n = res.read_at(pos, &mut buf[..want]).unwrap();
        assert!(n > 0, "ready but nothing at {pos}");
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(
                b,
                byte(pos + i as u64),
                "seed {seed}: wrong byte at {}",
                pos + i as u64
            );
        }
        pos += n as u64;
        // Now and then a decoder steps back a little: inside the look-behind.
        if next().is_multiple_of(8) {
            pos = pos.saturating_sub(next() % (look_behind / 2 + 1));
        }
        peak = peak.max(res.resident_bytes());
    }
    writer.join().unwrap();
    peak
}

#[test]
fn seeded_writer_and_reader_threads_stay_exact_and_in_budget() {
    for seed in 1..=8u64 {
        let budget = MIB + (seed % 3) * MIB;
        let peak = run(seed * 0x1234_5678_9ABC_DEF1, 12 * MIB, budget, 128 << 10);
        assert!(peak <= budget, "seed {seed}: {peak} resident over {budget}");
    }
}

/// Joins `t`, failing with `what` if it is not done within 10 s.
fn join_within(t: std::thread::JoinHandle<()>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.is_finished() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    t.join().unwrap();
}

#[test]
fn a_waiting_writer_wakes_when_the_reader_moves_or_the_resource_is_cancelled() {
    let res = StorageResource::bounded(MIB, 0, CancelToken::new());
    let budget = res.budget().unwrap();
    let mut off = 0;
    while res.is_writable(off) {
        res.write_at(off, &[7; 4096]).unwrap();
        off += 4096;
    }
    assert!(off < budget, "the window is smaller than the budget");
    // Blocked: the reader moving on frees it.
    let w = res.clone();
    let t = std::thread::spawn(move || futures::executor::block_on(w.writable(off)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished(), "the writer waits for the reader");
    let mut buf = vec![0; 256 << 10];
    assert_eq!(res.read_at(0, &mut buf).unwrap(), buf.len());
    join_within(t, "the reader's progress did not wake the writer");
    // Blocked again far ahead: a cancel ends the wait (the write then
    // reports why).
    let far = 100 * MIB;
    assert!(!res.is_writable(far));
    let w = res.clone();
    let t = std::thread::spawn(move || futures::executor::block_on(w.writable(far)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!t.is_finished());
    res.cancel_token().cancel();
    join_within(t, "the cancel did not wake the writer");
    assert!(matches!(
        res.write_at(far, b"x"),
        Err(StorageError::Cancelled)
    ));
}

#[test]
fn a_write_ignoring_backpressure_stores_what_fits_and_says_so() {
    let res = StorageResource::bounded(MIB, 0, CancelToken::new());
    let big = vec![1u8; 2 * MIB as usize];
    match res.write_at(0, &big) {
        Err(StorageError::BudgetExceeded { offset }) => {
            assert!(offset > 0 && offset <= MIB);
            assert!(res.contains_range(0..offset));
            assert!(!res.contains_range(offset..offset + 1));
        }
        other => panic!("{other:?}"),
    }
    // A wait larger than the window is clipped: ready once the window is
    // there, and the read returns what is present.
    assert_eq!(
        res.wait_range(0..10 * MIB, Some(Instant::now())).unwrap(),
        WaitOutcome::Ready
    );
    let mut buf = vec![0; 4 * MIB as usize];
    let n = res.read_at(0, &mut buf).unwrap();
    assert!(n > 0 && n as u64 <= MIB);
}

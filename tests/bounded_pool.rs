//! Bounded storage and the process-wide page pool it shares with memory
//! storage. One test function: the pool is global, so the steps must not
//! interleave with other tests in this binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{PagePool, StorageResource};

const MIB: u64 = 1 << 20;

fn byte(o: u64) -> u8 {
    (o.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Streams `total` bytes through `res` in 48 KiB writes, reading each back
/// (so the window moves on) and checking every byte.
fn stream_through(res: &StorageResource, total: u64) {
    let mut buf = vec![0u8; 48 << 10];
    let mut off = 0;
    while off < total {
        let n = (buf.len() as u64).min(total - off);
        assert!(res.is_writable(off), "the reader keeps up: room at {off}");
        let data: Vec<u8> = (off..off + n).map(byte).collect();
        res.write_at(off, &data).unwrap();
        assert_eq!(
            res.read_at(off, &mut buf[..n as usize]).unwrap(),
            n as usize
        );
        assert!(
            buf[..n as usize]
                .iter()
                .zip(off..)
                .all(|(&b, o)| b == byte(o)),
            "wrong bytes at {off}"
        );
        off += n;
        assert!(res.resident_bytes() <= res.budget().unwrap());
    }
}

#[test]
fn bounded_pages_come_from_the_pool_and_go_back_without_leaking_old_bytes() {
    PagePool::clear();
    PagePool::set_limit(8 * MIB as usize);

    // A memory resource leaves dirty pages (0xAA) in the pool.
    let mem = StorageResource::memory(CancelToken::new());
    mem.write_at(0, &vec![0xAA; 3 * MIB as usize]).unwrap();
    drop(mem);
    assert_eq!(PagePool::retained_bytes(), 3 * MIB as usize);

    // A 2 MiB bounded resource takes its pages from the pool as it needs
    // them: one pool page for its first bytes, both once it is full.
    let res = StorageResource::bounded(2 * MIB, 64 << 10, CancelToken::new());
    res.write_at(10, b"fresh").unwrap();
    assert_eq!(res.resident_bytes(), MIB);
    assert_eq!(PagePool::retained_bytes(), 2 * MIB as usize);
    // Only written bytes are data: the old 0xAA bytes around them are not.
    let mut buf = [0u8; 16];
    assert_eq!(res.read_at(0, &mut buf).unwrap(), 0, "gap before the write");
    assert_eq!(res.read_at(10, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"fresh");
    assert_eq!(res.read_at(15, &mut buf).unwrap(), 0, "gap after the write");
    drop(res);
    assert_eq!(PagePool::retained_bytes(), 3 * MIB as usize, "given back");

    // A stream through recycled pages (and evictions) is exact, and its
    // pages go back when it drops.
    let res = StorageResource::bounded(2 * MIB, 64 << 10, CancelToken::new());
    stream_through(&res, 24 * MIB);
    assert_eq!(res.resident_bytes(), 2 * MIB);
    assert_eq!(PagePool::retained_bytes(), MIB as usize);
    drop(res);
    assert_eq!(PagePool::retained_bytes(), 3 * MIB as usize);

    // A budget that is not whole MiB: whole pool pages plus a short block
    // of its own, which is freed, not pooled; resident stays in budget.
    let odd = 2 * MIB + (128 << 10);
    let res = StorageResource::bounded(odd, 0, CancelToken::new());
    stream_through(&res, 12 * MIB);
    assert_eq!(res.resident_bytes(), odd);
    assert_eq!(PagePool::retained_bytes(), MIB as usize);
    drop(res);
    assert_eq!(PagePool::retained_bytes(), 3 * MIB as usize);

    // The limit applies to what bounded resources give back too.
    PagePool::set_limit(MIB as usize);
    let res = StorageResource::bounded(4 * MIB, 0, CancelToken::new());
    stream_through(&res, 8 * MIB);
    drop(res);
    assert_eq!(PagePool::retained_bytes(), MIB as usize);

    PagePool::clear();
    PagePool::set_limit(PagePool::DEFAULT_LIMIT);
}

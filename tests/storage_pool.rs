//! The process-wide page pool of memory storage. One test function: the pool
//! is global, so the steps must not interleave with other tests in this
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::{PagePool, StorageResource};

const MIB: usize = 1 << 20;

fn filled(len: usize, byte: u8) -> StorageResource {
    let res = StorageResource::memory(CancelToken::new());
    let chunk = vec![byte; 64 * 1024];
    let mut off = 0;
    while off < len {
        let n = chunk.len().min(len - off);
        res.write_at(off as u64, &chunk[..n]).unwrap();
        off += n;
    }
    res
}

#[test]
fn pages_are_recycled_within_the_limit_and_never_leak_old_bytes() {
    PagePool::clear();
    PagePool::set_limit(4 * MIB);
    assert_eq!(PagePool::limit(), 4 * MIB);
    assert_eq!(PagePool::retained_bytes(), 0);

    // Dropping a 6-page resource keeps only what the limit allows.
    drop(filled(6 * MIB, 0xAA));
    assert_eq!(PagePool::retained_bytes(), 4 * MIB);

    // A new resource takes recycled pages (dirty with 0xAA) ...
    let res = StorageResource::memory(CancelToken::new());
    res.write_at(10, b"fresh").unwrap();
    res.write_at(MIB as u64 + 100, b"second page").unwrap();
    assert_eq!(PagePool::retained_bytes(), 2 * MIB);
    // ... but only written bytes are ever read back: the old 0xAA bytes
    // around them are not data.
    let mut buf = [0u8; 64];
    assert_eq!(res.read_at(0, &mut buf).unwrap(), 0, "gap before the write");
    assert_eq!(res.read_at(10, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"fresh");
    assert_eq!(res.read_at(15, &mut buf).unwrap(), 0, "gap after the write");
    assert_eq!(res.read_at(MIB as u64 + 100, &mut buf).unwrap(), 11);
    assert_eq!(&buf[..11], b"second page");
    res.commit(None).unwrap();
    let mut tail = [0u8; 8];
    assert_eq!(
        res.read_at(MIB as u64 + 111, &mut tail).unwrap(),
        0,
        "past the end"
    );

    // A sequential rewrite over recycled pages reads back exactly.
    drop(res);
    let res = filled(3 * MIB + 17, 0x55);
    let mut all = vec![0u8; 3 * MIB + 17];
    assert_eq!(res.read_at(0, &mut all).unwrap(), all.len());
    assert!(all.iter().all(|&b| b == 0x55));
    drop(res);

    // Lowering the limit releases the excess at once; 0 disables pooling.
    PagePool::set_limit(MIB);
    assert_eq!(PagePool::retained_bytes(), MIB);
    PagePool::set_limit(0);
    assert_eq!(PagePool::retained_bytes(), 0);
    drop(filled(2 * MIB, 1));
    assert_eq!(PagePool::retained_bytes(), 0);

    // clear() gives everything back.
    PagePool::set_limit(8 * MIB);
    drop(filled(3 * MIB, 2));
    assert_eq!(PagePool::retained_bytes(), 3 * MIB);
    PagePool::clear();
    assert_eq!(PagePool::retained_bytes(), 0);
    PagePool::set_limit(PagePool::DEFAULT_LIMIT);
}

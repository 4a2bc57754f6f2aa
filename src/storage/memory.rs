//! The memory backend: fixed-size pages allocated only where bytes land,
//! recycled through a process-wide [`PagePool`], with one spare page a
//! waiting reader prepares for the writer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::cancel::lock;

/// Page size of the memory backend: one mapping (one system call) per MiB
/// for big sequential writes, while sparse writes still allocate only the
/// pages they touch, so a write far ahead (a seek to the end) costs one page.
pub(crate) const PAGE: usize = 1024 * 1024;

/// One page of `PAGE` bytes. Unwritten bytes are unspecified (zeros, or a
/// recycled page's old bytes): the range bookkeeping above never lets them be
/// read as data.
type Page = Arc<RwLock<PageBuf>>;

/// The bytes of a page: an anonymous mapping when the platform gives one,
/// else a zeroed heap block.
///
/// A fresh mapping is **populated** (`MAP_POPULATE` on Linux): the kernel
/// backs all of it in one call instead of one page fault per 4 KiB on first
/// touch: streaming 256 MiB into fresh pages took 90 ms instead of 140 ms
/// on the benchmark machine (a VM, where faults are dear). A sequential download
/// touches every byte of its pages anyway, so nothing is wasted; a sparse
/// write costs one populated page.
pub(crate) enum PageBuf {
    Mapped(memmap2::MmapMut),
    Heap(Box<[u8]>),
}

impl PageBuf {
    /// A recycled page from the pool, else a fresh one.
    pub(crate) fn take() -> Self {
        if let Some(page) = lock(&POOL.free).pop() {
            return page;
        }
        Self::fresh()
    }

    fn fresh() -> Self {
        match memmap2::MmapOptions::new().len(PAGE).populate().map_anon() {
            Ok(map) => Self::Mapped(map),
            // Address space or mapping count exhausted: the allocator may
            // still have room (and aborts like any allocation if not).
            Err(_) => Self::Heap(vec![0; PAGE].into_boxed_slice()),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Heap(h) => h,
        }
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Heap(h) => h,
        }
    }
}

/// Page index → page. A map, not a vector, so a write near `u64::MAX`
/// costs one page and no index table. Each page has its own lock, so a
/// reader copying out of one page never stalls a writer filling the next.
#[derive(Default)]
pub(crate) struct Pages {
    pages: RwLock<BTreeMap<u64, Page>>,
    /// A page made ready for the writer by a waiting reader (see
    /// [`prepare_spare`](Self::prepare_spare)).
    spare: Mutex<Option<PageBuf>>,
}

impl Pages {
    fn get(&self, idx: u64) -> Option<Page> {
        self.pages
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&idx)
            .cloned()
    }

    fn get_or_insert(&self, idx: u64) -> Page {
        if let Some(p) = self.get(idx) {
            return p;
        }
        // Allocate outside the map lock: populating a page takes a while
        // and readers of other pages must not wait for it.
        let spare = lock(&self.spare).take();
        let fresh = Arc::new(RwLock::new(spare.unwrap_or_else(PageBuf::take)));
        self.pages
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(idx)
            .or_insert(fresh)
            .clone()
    }

    /// Copies `data` to `offset`. The caller has checked that
    /// `offset + data.len()` does not overflow.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (idx, within) = split(pos);
            let n = rest.len().min(PAGE - within);
            let (src, tail) = rest.split_at(n);
            let page = self.get_or_insert(idx);
            let mut page = page.write().unwrap_or_else(PoisonError::into_inner);
            page.bytes_mut()[within..within + n].copy_from_slice(src);
            rest = tail;
            pos += n as u64;
        }
    }

    /// Copies `buf.len()` bytes from `offset`. The caller has checked that
    /// they were all written; a missing page would read as zeros, which the
    /// range bookkeeping above rules out.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut done = 0;
        while done < buf.len() {
            let (idx, within) = split(pos);
            let n = (buf.len() - done).min(PAGE - within);
            let dst = &mut buf[done..done + n];
            match self.get(idx) {
                Some(page) => {
                    let page = page.read().unwrap_or_else(PoisonError::into_inner);
                    dst.copy_from_slice(&page.bytes()[within..within + n]);
                }
                None => dst.fill(0),
            }
            done += n;
            pos += n as u64;
        }
    }

    /// Makes a page ready for the writer's next new page, unless one is
    /// ready already. Called by a reader about to block for bytes: the
    /// kernel's work of mapping fresh memory (more CPU than receiving the
    /// bytes) then happens on the idle reader's thread, not on the writer's,
    /// which is the network's.
    pub(crate) fn prepare_spare(&self) {
        if lock(&self.spare).is_some() {
            return;
        }
        let page = PageBuf::take();
        let mut spare = lock(&self.spare);
        if spare.is_none() {
            *spare = Some(page);
        } else {
            drop(spare);
            recycle([page]);
        }
    }

    /// Gives the spare page back to the pool (the writer is done).
    pub(crate) fn release_spare(&self) {
        let spare = lock(&self.spare).take();
        recycle(spare);
    }

    #[cfg(test)]
    fn page_count(&self) -> usize {
        self.pages
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let pages = std::mem::take(self.pages.get_mut().unwrap_or_else(PoisonError::into_inner));
        let spare = self
            .spare
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Every clone of a page lives inside a `&self` call, which cannot
        // overlap a drop, so each page is unique here.
        let bufs = pages
            .into_values()
            .filter_map(|p| Arc::try_unwrap(p).ok())
            .map(|p| p.into_inner().unwrap_or_else(PoisonError::into_inner));
        recycle(spare.into_iter().chain(bufs));
    }
}

/// Puts pages into the pool up to its limit; the rest are unmapped.
pub(crate) fn recycle(pages: impl IntoIterator<Item = PageBuf>) {
    let limit = POOL.limit.load(Ordering::Relaxed) / PAGE;
    if limit == 0 {
        return;
    }
    let mut free = lock(&POOL.free);
    for page in pages {
        if free.len() >= limit {
            break;
        }
        free.push(page);
    }
}

struct Pool {
    free: Mutex<Vec<PageBuf>>,
    /// In bytes.
    limit: AtomicUsize,
}

static POOL: Pool = Pool {
    free: Mutex::new(Vec::new()),
    limit: AtomicUsize::new(PagePool::DEFAULT_LIMIT),
};

/// The process-wide pool of memory-storage pages.
///
/// When a memory-backed [`StorageResource`](super::StorageResource) is
/// dropped, its pages (1 MiB each) go back to this pool, up to a limit, and
/// the next memory resource takes them instead of asking the kernel for fresh
/// memory. Fresh memory is dear: the kernel must zero and map every page, which
/// costs more CPU than receiving the bytes from the network (see
/// `BENCHMARKS.md`). A player that streams track after track into memory
/// therefore reuses the same pages.
///
/// [`bounded`](super::StorageResource::bounded) resources take their pages
/// from the same pool (16 of their 64 KiB pages per pool page, as they first
/// need them) and give them back the same way; a budget that is not a whole
/// number of MiB ends in a smaller block of its own, which is not pooled.
///
/// Pooled pages stay resident: the pool holds at most
/// [`limit`](Self::limit) bytes ([`DEFAULT_LIMIT`](Self::DEFAULT_LIMIT)
/// unless changed). Set the limit to 0 to disable pooling, or call
/// [`clear`](Self::clear) to give the memory back now.
///
/// ```
/// use kithara_stream::storage::PagePool;
///
/// // A player that keeps up to 256 MiB of pages for the next track:
/// PagePool::set_limit(256 << 20);
/// assert_eq!(PagePool::limit(), 256 << 20);
/// // Give everything back to the system (e.g. on a low-memory warning):
/// PagePool::clear();
/// assert_eq!(PagePool::retained_bytes(), 0);
/// # PagePool::set_limit(PagePool::DEFAULT_LIMIT);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct PagePool;

impl PagePool {
    /// The limit a process starts with: 32 MiB.
    pub const DEFAULT_LIMIT: usize = 32 << 20;

    /// The most bytes of free pages the pool keeps.
    pub fn limit() -> usize {
        POOL.limit.load(Ordering::Relaxed)
    }

    /// Sets the most bytes of free pages the pool keeps (rounded down to
    /// whole 1 MiB pages); pages beyond a lowered limit are released at once.
    pub fn set_limit(bytes: usize) {
        POOL.limit.store(bytes, Ordering::Relaxed);
        let excess = {
            let mut free = lock(&POOL.free);
            let keep = free.len().min(bytes / PAGE);
            free.split_off(keep)
        };
        drop(excess);
    }

    /// Bytes of free pages the pool holds now.
    pub fn retained_bytes() -> usize {
        lock(&POOL.free).len() * PAGE
    }

    /// Releases every free page to the system.
    pub fn clear() {
        // Take the pages out first, so the unmapping happens without the lock.
        let free = std::mem::take(&mut *lock(&POOL.free));
        drop(free);
    }
}

fn split(pos: u64) -> (u64, usize) {
    let page = PAGE as u64;
    (pos / page, (pos % page) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_page_roundtrip_and_sparse() {
        let p = Pages::default();
        let data: Vec<u8> = (0..(PAGE * 2 + 17)).map(|i| (i % 251) as u8).collect();
        p.write(PAGE as u64 - 5, &data);
        let mut out = vec![0; data.len()];
        p.read(PAGE as u64 - 5, &mut out);
        assert_eq!(out, data);
        // Only the touched pages exist.
        assert_eq!(p.page_count(), 4);
        p.write(u64::MAX - 3, b"xyz");
        assert_eq!(p.page_count(), 5);
        let mut tail = [0u8; 3];
        p.read(u64::MAX - 3, &mut tail);
        assert_eq!(&tail, b"xyz");
    }

    #[test]
    fn in_page_gaps_and_overlaps() {
        let p = Pages::default();
        p.write(10, b"klmn");
        p.write(0, b"abc");
        p.write(2, b"CDEFGHIJKL");
        p.write(13, b"NOP");
        let mut out = [0u8; 16];
        p.read(0, &mut out);
        assert_eq!(&out, b"abCDEFGHIJKLmNOP");
        let mut far = [1u8; 4];
        p.read(PAGE as u64 * 3, &mut far);
        assert_eq!(far, [0; 4]);
    }

    #[test]
    fn a_prepared_spare_becomes_the_next_new_page() {
        let p = Pages::default();
        p.prepare_spare();
        assert!(lock(&p.spare).is_some());
        // Preparing again keeps the one spare.
        p.prepare_spare();
        p.write(5, b"abc");
        assert!(lock(&p.spare).is_none(), "the new page took the spare");
        assert_eq!(p.page_count(), 1);
        // A write into an existing page leaves a new spare alone.
        p.prepare_spare();
        p.write(10, b"def");
        assert!(lock(&p.spare).is_some());
        p.release_spare();
        assert!(lock(&p.spare).is_none());
        let mut out = [0u8; 8];
        p.read(5, &mut out);
        assert_eq!(&out[..3], b"abc");
        assert_eq!(&out[5..], b"def");
    }
}

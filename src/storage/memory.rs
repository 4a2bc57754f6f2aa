//! The memory backend: fixed-size pages allocated only where bytes land.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Page size of the memory backend. Large pages measured fastest for big
/// sequential writes (the allocator reuses freed 1 MiB blocks); sparse writes
/// still allocate only the pages they touch, so a write far ahead (a seek to
/// the end) costs one page.
pub(crate) const PAGE: usize = 1024 * 1024;

/// One page: capacity `PAGE`, length following the highest byte written into
/// it, so sequential writes never pay for zeroing.
type Page = Arc<RwLock<Vec<u8>>>;

/// Page index → page. A map, not a vector, so a write near `u64::MAX`
/// costs one page and no index table. Each page has its own lock, so a
/// reader copying out of one page never stalls a writer filling the next.
#[derive(Default)]
pub(crate) struct Pages {
    pages: RwLock<BTreeMap<u64, Page>>,
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
        self.pages
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(idx)
            .or_insert_with(|| Arc::new(RwLock::new(Vec::with_capacity(PAGE))))
            .clone()
    }

    /// Copies `data` to `offset`. The caller has checked that
    /// `offset + data.len()` does not overflow.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (idx, within) = split(pos);
            let page = self.get_or_insert(idx);
            let mut page = page.write().unwrap_or_else(PoisonError::into_inner);
            let n = rest.len().min(PAGE - within);
            let (src, tail) = rest.split_at(n);
            if page.len() < within {
                // A gap inside the page: filler that is never read as data.
                page.resize(within, 0);
            }
            let overlap = (page.len() - within).min(n);
            page[within..within + overlap].copy_from_slice(&src[..overlap]);
            page.extend_from_slice(&src[overlap..]);
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
                    match page.get(within..within + n) {
                        Some(src) => dst.copy_from_slice(src),
                        None => dst.fill(0),
                    }
                }
                None => dst.fill(0),
            }
            done += n;
            pos += n as u64;
        }
    }

    #[cfg(test)]
    fn page_count(&self) -> usize {
        self.pages
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
}

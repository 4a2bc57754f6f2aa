//! The memory backend: fixed-size pages allocated only where bytes land.

use std::collections::BTreeMap;

/// Page size of the memory backend. Sparse writes allocate only the pages
/// they touch, so a write far ahead (a seek to the end) costs one page.
pub(crate) const PAGE: usize = 64 * 1024;

/// Page index → page. A map, not a vector, so a write near `u64::MAX`
/// costs one page and no index table.
#[derive(Default)]
pub(crate) struct Pages {
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl Pages {
    /// Copies `data` to `offset`. The caller has checked that
    /// `offset + data.len()` does not overflow.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (idx, within) = split(pos);
            let page = self
                .pages
                .entry(idx)
                .or_insert_with(|| vec![0u8; PAGE].into_boxed_slice());
            let n = rest.len().min(PAGE - within);
            page[within..within + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
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
            match self.pages.get(&idx) {
                Some(page) => buf[done..done + n].copy_from_slice(&page[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
            pos += n as u64;
        }
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
        let mut p = Pages::default();
        let data: Vec<u8> = (0..(PAGE * 2 + 17)).map(|i| (i % 251) as u8).collect();
        p.write(PAGE as u64 - 5, &data);
        let mut out = vec![0; data.len()];
        p.read(PAGE as u64 - 5, &mut out);
        assert_eq!(out, data);
        // Only the touched pages exist.
        assert_eq!(p.pages.len(), 4);
        p.write(u64::MAX - 3, b"xyz");
        assert_eq!(p.pages.len(), 5);
        let mut tail = [0u8; 3];
        p.read(u64::MAX - 3, &mut tail);
        assert_eq!(&tail, b"xyz");
    }
}

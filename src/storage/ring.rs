//! The bounded memory backend: a fixed set of pages reused as the reader
//! moves (a ring), so a stream of any length lives in a fixed budget.
//!
//! # The window
//! The reader's position (the *cursor*, see
//! [`StorageResource::bounded`](super::StorageResource::bounded)) defines a
//! **window** `[lo, lo + window)`: `lo` is the page holding
//! `cursor - look_behind`, and `window` is the budget minus a small slack.
//! Pages in the window are never evicted: they hold the look-behind and the
//! bytes the reader has not read yet. A writer may start a write only inside
//! the window ([`Ring::writable`]); the slack pages take the tail of a chunk
//! that crosses the window's end, so a well-behaved writer never loses a
//! byte.
//!
//! # Eviction
//! A new page takes a free one, else a fresh one while the budget allows,
//! else the page farthest from the cursor: behind the look-behind first
//! (farthest behind first), then ahead (farthest ahead first). A page outside
//! the window may only take the place of a page that is farther away than
//! itself, so a stray write never pushes out bytes the reader is closer to.
//! Evicted bytes leave the range set: they are simply not present.

use super::RangeSet;
use super::memory::{PAGE, PageBuf, recycle};
use std::collections::BTreeMap;

/// Page size of the bounded backend: small enough that the budget is used
/// finely (a 4 MiB budget is 64 pages), big enough that bookkeeping is
/// nothing next to the copies.
pub(crate) const RING_PAGE: u64 = 64 * 1024;

/// Ring pages per block (a page of the memory backend's pool).
const PER_BLOCK: usize = PAGE / RING_PAGE as usize;

/// The smallest budget accepted (smaller ones are raised to it).
pub const MIN_BUDGET: u64 = 1 << 20;

/// How a write into a [`Ring`] ended.
pub(crate) struct Placed {
    /// Bytes of the write that were stored (a prefix of it).
    pub(crate) stored: usize,
}

/// The pages and their budget. Lives inside the resource's data lock:
/// writes hold it exclusively (they may evict), reads shared.
///
/// The pages live in **blocks**: 1 MiB pages of the process-wide
/// [`PagePool`](super::PagePool), taken as the ring first needs them and
/// given back when it drops, so a player's next track (bounded or not)
/// reuses them instead of asking the kernel for fresh, zeroed memory, which
/// costs more CPU than the bytes' trip through the pipeline. A budget that
/// is not a whole number of blocks ends in a smaller block of its own.
pub(crate) struct Ring {
    /// Page index → the slot holding it.
    pages: BTreeMap<u64, usize>,
    /// Slot `s` is page `s % PER_BLOCK` of block `s / PER_BLOCK`.
    blocks: Vec<PageBuf>,
    /// Slots ever handed out, at most `max_pages`; slots never go back (a
    /// full ring reuses its victims' slots).
    allocated: usize,
    max_pages: usize,
    /// The window size in bytes (a multiple of the page size).
    window: u64,
    look_behind: u64,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Whole pool pages go back to the pool; a short last block is freed.
        let blocks = std::mem::take(&mut self.blocks);
        recycle(blocks.into_iter().filter(|b| b.bytes().len() == PAGE));
    }
}

impl Ring {
    /// A ring of `budget` bytes (rounded up to whole pages, at least
    /// [`MIN_BUDGET`]) keeping up to `look_behind` bytes behind the reader
    /// (at most a quarter of the budget).
    pub(crate) fn new(budget: u64, look_behind: u64) -> Self {
        let budget = budget.max(MIN_BUDGET).div_ceil(RING_PAGE) * RING_PAGE;
        let max_pages = usize::try_from(budget / RING_PAGE).unwrap_or(usize::MAX);
        // An eighth of the budget (whole pages) takes the part of a chunk
        // that crosses the window's end.
        let slack = (budget / 8).div_ceil(RING_PAGE).max(2) * RING_PAGE;
        Self {
            pages: BTreeMap::new(),
            blocks: Vec::new(),
            allocated: 0,
            max_pages,
            window: budget - slack,
            look_behind: look_behind.min(budget / 4),
        }
    }

    /// The budget in bytes.
    pub(crate) fn budget(&self) -> u64 {
        self.max_pages as u64 * RING_PAGE
    }

    /// Bytes of the blocks held now (never more than the budget).
    pub(crate) fn resident(&self) -> u64 {
        self.blocks.iter().map(|b| b.bytes().len() as u64).sum()
    }

    fn lo(&self, cursor: u64) -> u64 {
        page_start(cursor.saturating_sub(self.look_behind))
    }

    /// Whether a write starting at `offset` may go ahead now, with the
    /// reader at `cursor`: it starts inside the window.
    pub(crate) fn writable(&self, cursor: u64, offset: u64) -> bool {
        offset < self.lo(cursor).saturating_add(self.window)
    }

    /// The most bytes after `start` a reader at `start` may wait for: all of
    /// them lie inside the window, so the writer can always deliver them.
    pub(crate) fn max_wait(&self) -> u64 {
        self.window - self.look_behind - RING_PAGE
    }

    /// How far the reader moves before a writer waiting for room is woken:
    /// a quarter of the window, at most 1 MiB, so the writer refills in
    /// batches instead of waking for every page the reader frees.
    pub(crate) fn wake_step(&self) -> u64 {
        (self.window / 4).min(1 << 20)
    }

    /// Eviction order: higher is evicted first.
    fn key(&self, cursor: u64, page: u64) -> (u8, u64) {
        let start = page * RING_PAGE;
        let end = start.saturating_add(RING_PAGE);
        if end <= cursor.saturating_sub(self.look_behind) {
            (2, cursor - end)
        } else if start >= cursor {
            (1, start - cursor)
        } else {
            (0, cursor.saturating_sub(end))
        }
    }

    /// A slot for page `idx`, evicting a page if need be (its range leaves
    /// `available`); `None` when no page may give way.
    fn take_slot(&mut self, idx: u64, cursor: u64, available: &mut RangeSet) -> Option<usize> {
        if self.allocated < self.max_pages {
            let slot = self.allocated;
            if slot >= self.blocks.len() * PER_BLOCK {
                let left = self.max_pages - slot;
                self.blocks.push(if left >= PER_BLOCK {
                    PageBuf::take()
                } else {
                    PageBuf::Heap(vec![0; left * RING_PAGE as usize].into_boxed_slice())
                });
            }
            self.allocated += 1;
            return Some(slot);
        }
        let victim = self.victim(cursor, idx)?;
        let start = victim * RING_PAGE;
        available.remove(start..start.saturating_add(RING_PAGE));
        self.pages.remove(&victim)
    }

    /// The page to evict for page `idx`, the reader at `cursor`: the one
    /// with the highest [`key`](Self::key) outside the window, if its key
    /// beats `idx`'s own when `idx` is outside the window too.
    ///
    /// Every page below the window is behind the look-behind (class 2) and
    /// every page above it is ahead of the reader (class 1: the window, 7/8
    /// of the budget, reaches past the look-behind, at most 1/4 of it), so
    /// the highest key is the lowest page if it is below the window, else
    /// the highest page if it is above: two lookups, not a scan.
    fn victim(&self, cursor: u64, idx: u64) -> Option<u64> {
        let lo = self.lo(cursor);
        let hi = lo.saturating_add(self.window);
        let outside = |p: u64| {
            let s = p * RING_PAGE;
            s < lo || s >= hi
        };
        let below = self
            .pages
            .keys()
            .next()
            .copied()
            .filter(|&p| p * RING_PAGE < lo);
        let victim = below.or_else(|| {
            let last = self.pages.keys().next_back().copied()?;
            (last * RING_PAGE >= hi).then_some(last)
        })?;
        // A page outside the window only takes the place of a farther one.
        if outside(idx) && self.key(cursor, victim) <= self.key(cursor, idx) {
            return None;
        }
        Some(victim)
    }

    /// Where in its block slot `slot` lies.
    fn slot_span(slot: usize) -> (usize, std::ops::Range<usize>) {
        let start = (slot % PER_BLOCK) * RING_PAGE as usize;
        (slot / PER_BLOCK, start..start + RING_PAGE as usize)
    }

    /// The bytes of page `idx`, if it is held.
    fn page(&self, idx: u64) -> Option<&[u8]> {
        let (block, span) = Self::slot_span(*self.pages.get(&idx)?);
        self.blocks.get(block)?.bytes().get(span)
    }

    /// Stores the longest prefix of `data` at `offset` that has room, with
    /// the reader at `cursor`, and marks it present in `available`. The
    /// caller has checked that `offset + data.len()` does not overflow.
    pub(crate) fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        cursor: u64,
        available: &mut RangeSet,
    ) -> Placed {
        let mut done = 0;
        for Piece { idx, within, at } in pieces(offset, data.len()) {
            let n = at.len();
            let pos = offset + at.start as u64;
            let slot = match self.pages.get(&idx) {
                Some(&slot) => slot,
                None => {
                    let Some(slot) = self.take_slot(idx, cursor, available) else {
                        break;
                    };
                    // A fresh page holds nothing: whatever was present
                    // there went with the page it replaced.
                    self.pages.insert(idx, slot);
                    slot
                }
            };
            let (block, span) = Self::slot_span(slot);
            let Some(page) = self
                .blocks
                .get_mut(block)
                .and_then(|b| b.bytes_mut().get_mut(span))
            else {
                // Unreachable: every slot handed out lies in a block.
                break;
            };
            page[within..within + n].copy_from_slice(&data[at]);
            available.insert(pos..pos + n as u64);
            done += n;
        }
        Placed { stored: done }
    }

    /// Copies `buf.len()` bytes from `offset`; the caller has checked that
    /// they are present (a missing page reads as zeros, which the range
    /// bookkeeping rules out).
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) {
        for Piece { idx, within, at } in pieces(offset, buf.len()) {
            let n = at.len();
            let dst = &mut buf[at];
            match self.page(idx) {
                Some(page) => dst.copy_from_slice(&page[within..within + n]),
                None => dst.fill(0),
            }
        }
    }
}

/// The part of a copy that falls in one page.
struct Piece {
    /// The page.
    idx: u64,
    /// Where in the page it starts.
    within: usize,
    /// Where in the caller's buffer it lies.
    at: std::ops::Range<usize>,
}

/// Splits the copy of `len` bytes at `offset` into its per-page pieces.
fn pieces(offset: u64, len: usize) -> impl Iterator<Item = Piece> {
    let mut done = 0;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let pos = offset + done as u64;
        let within = (pos % RING_PAGE) as usize;
        let n = (len - done).min(RING_PAGE as usize - within);
        let piece = Piece {
            idx: pos / RING_PAGE,
            within,
            at: done..done + n,
        };
        done += n;
        Some(piece)
    })
}

fn page_start(pos: u64) -> u64 {
    pos - pos % RING_PAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = RING_PAGE;

    fn byte(o: u64) -> u8 {
        (o.wrapping_mul(0x9E37_79B9) >> 7) as u8
    }

    fn bytes(r: std::ops::Range<u64>) -> Vec<u8> {
        r.map(byte).collect()
    }

    #[test]
    fn budget_rounding_and_window() {
        let r = Ring::new(10, 1 << 30);
        assert_eq!(r.budget(), MIN_BUDGET);
        assert_eq!(r.look_behind, MIN_BUDGET / 4);
        assert!(r.window < r.budget());
        assert!(r.max_wait() > 0);
        let r = Ring::new(4 * MIN_BUDGET + 1, 0);
        assert_eq!(r.budget(), 4 * MIN_BUDGET + P);
    }

    #[test]
    fn sequential_stream_stays_in_budget_and_exact() {
        let mut r = Ring::new(MIN_BUDGET, 2 * P);
        let mut avail = RangeSet::new();
        let mut cursor = 0u64;
        let mut w = 0u64;
        let total = 50 * MIN_BUDGET;
        let chunk = 10_000u64;
        while cursor < total {
            // Writer: as far as the window lets it.
            while w < total && r.writable(cursor, w) {
                let n = chunk.min(total - w);
                let placed = r.write(w, &bytes(w..w + n), cursor, &mut avail);
                assert_eq!(placed.stored as u64, n, "a writable write is stored whole");
                w += n;
            }
            // Reader: what is present at the cursor.
            let end = avail.covered_from(cursor);
            assert!(end > cursor, "reader starved at {cursor}");
            let n = (end - cursor).min(37_000);
            let mut buf = vec![0; n as usize];
            r.read(cursor, &mut buf);
            assert_eq!(buf, bytes(cursor..cursor + n));
            cursor += n;
            assert!(r.resident() <= r.budget());
        }
        // The look-behind is still there.
        assert!(avail.contains(cursor - 2 * P + P..cursor));
    }

    #[test]
    fn unread_bytes_are_never_evicted_and_far_writes_do_not_push_them_out() {
        let mut r = Ring::new(MIN_BUDGET, 0);
        let mut avail = RangeSet::new();
        let w = r.window;
        r.write(0, &bytes(0..w), 0, &mut avail);
        assert!(avail.contains(0..w));
        assert!(!r.writable(0, w));
        // The slack takes a crossing chunk's tail.
        let slack = r.budget() - w;
        let placed = r.write(w, &bytes(w..w + slack), 0, &mut avail);
        assert_eq!(placed.stored as u64, slack);
        // Full: a write far ahead finds nothing farther to evict.
        let far = 100 * MIN_BUDGET;
        let placed = r.write(far, &[1; 10], 0, &mut avail);
        assert_eq!(placed.stored, 0);
        assert!(avail.contains(0..w + slack));
        assert!(!avail.contains(far..far + 1));
    }

    #[test]
    fn eviction_takes_behind_first_keeping_the_look_behind() {
        let mut r = Ring::new(MIN_BUDGET, 2 * P);
        let mut avail = RangeSet::new();
        let budget = r.budget();
        // Fill the whole budget from 0.
        r.write(0, &bytes(0..budget), 0, &mut avail);
        assert!(avail.contains(0..budget));
        // The reader moves to 8 pages in; writing one page past the budget
        // evicts page 0 (the farthest behind), not the look-behind.
        let cursor = 8 * P;
        let placed = r.write(budget, &bytes(budget..budget + P), cursor, &mut avail);
        assert_eq!(placed.stored as u64, P);
        assert!(!avail.contains(0..1));
        assert!(avail.contains(P..budget + P));
        let mut buf = vec![0; P as usize];
        r.read(budget, &mut buf);
        assert_eq!(buf, bytes(budget..budget + P));
    }

    #[test]
    fn a_seek_back_evicts_the_far_ahead_pages() {
        let mut r = Ring::new(MIN_BUDGET, 0);
        let mut avail = RangeSet::new();
        let base = 1000 * P;
        let budget = r.budget();
        r.write(base, &bytes(base..base + budget), base, &mut avail);
        // The reader seeks back to 0: the old pages are all outside the
        // window, the farthest ahead go first.
        r.write(0, &bytes(0..2 * P), 0, &mut avail);
        assert!(avail.contains(0..2 * P));
        assert!(avail.contains(base..base + budget - 2 * P));
        assert!(!avail.contains(base + budget - 2 * P..base + budget - 2 * P + 1));
    }

    /// The eviction choice by its definition: the highest key among the
    /// pages outside the window (beating `idx`'s own if `idx` is outside).
    fn victim_by_scan(r: &Ring, cursor: u64, idx: u64) -> Option<u64> {
        let lo = r.lo(cursor);
        let hi = lo.saturating_add(r.window);
        let in_window = |p: u64| (lo..hi).contains(&(p * P));
        let own = r.key(cursor, idx);
        r.pages
            .keys()
            .copied()
            .filter(|&p| !in_window(p))
            .map(|p| (r.key(cursor, p), p))
            .filter(|&(k, _)| in_window(idx) || k > own)
            .max()
            .map(|(_, p)| p)
    }

    #[test]
    fn the_victim_lookup_agrees_with_a_scan_of_every_page() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2_000 {
            let lb = [0, P / 2, 3 * P, MIN_BUDGET][round % 4];
            let mut r = Ring::new(MIN_BUDGET * (1 + next() % 3), lb);
            let span = 4 * r.max_pages as u64;
            // Pages scattered around the reader, as seeks leave them.
            for slot in 0..r.max_pages {
                let p = next() % span;
                r.pages.entry(p).or_insert(slot);
            }
            for _ in 0..20 {
                let cursor = next() % (span * P);
                let idx = next() % span;
                if r.pages.contains_key(&idx) {
                    continue;
                }
                assert_eq!(
                    r.victim(cursor, idx),
                    victim_by_scan(&r, cursor, idx),
                    "round {round}, cursor {cursor}, page {idx}"
                );
            }
        }
    }

    #[test]
    fn a_clipped_wait_is_reachable() {
        for lb in [0, P / 2, 2 * P, MIN_BUDGET] {
            let r = Ring::new(MIN_BUDGET, lb);
            for cursor in [0, 5, P - 1, P, 10 * P + 3] {
                assert!(r.writable(cursor, cursor + r.max_wait() - 1));
            }
        }
    }
}

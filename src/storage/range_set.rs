//! [`RangeSet`]: a set of half-open `u64` ranges.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// A set of half-open `u64` ranges, kept merged: overlapping **and adjacent**
/// inserts coalesce, so the set always holds the fewest disjoint,
/// non-touching ranges, in ascending order.
///
/// Operations are `O(log n)` in the number of stored ranges (plus the number
/// of ranges an insert swallows). Empty ranges are ignored.
///
/// ```
/// use kithara_stream::storage::RangeSet;
///
/// let mut set = RangeSet::new();
/// set.insert(0..10);
/// set.insert(20..30);
/// set.insert(10..20); // bridges the two
/// assert_eq!(set.iter().collect::<Vec<_>>(), vec![0..30]);
/// assert!(set.contains(5..25));
/// assert_eq!(set.next_gap(0, 40), Some(30..40));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end, disjoint and non-adjacent.
    map: BTreeMap<u64, u64>,
}

impl fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `range` (ignored if empty or inverted), merging with every
    /// overlapping or adjacent range already present.
    pub fn insert(&mut self, range: Range<u64>) {
        if range.start >= range.end {
            return;
        }
        let mut start = range.start;
        let mut end = range.end;
        // The last range starting at or before `end` may touch us; walk back
        // over every range that overlaps or touches `start..end`.
        while let Some((&s, &e)) = self.map.range(..=end).next_back() {
            if e < start {
                break;
            }
            self.map.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.map.insert(start, end);
    }

    /// Removes `range` (ignored if empty or inverted), splitting a stored
    /// range that straddles either end.
    ///
    /// ```
    /// use kithara_stream::storage::RangeSet;
    ///
    /// let mut set: RangeSet = [0..100].into_iter().collect();
    /// set.remove(10..20);
    /// assert_eq!(set.iter().collect::<Vec<_>>(), vec![0..10, 20..100]);
    /// ```
    pub fn remove(&mut self, range: Range<u64>) {
        if range.start >= range.end {
            return;
        }
        let hit: Vec<(u64, u64)> = self
            .map
            .range(..range.end)
            .rev()
            .take_while(|&(_, &e)| e > range.start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in hit {
            self.map.remove(&s);
            if s < range.start {
                self.map.insert(s, range.start);
            }
            if e > range.end {
                self.map.insert(range.end, e);
            }
        }
    }

    /// Removes everything at or after `len`.
    pub fn truncate(&mut self, len: u64) {
        let tail: Vec<u64> = self.map.range(len..).map(|(&s, _)| s).collect();
        for s in tail {
            self.map.remove(&s);
        }
        if let Some((&s, e)) = self.map.iter_mut().next_back()
            && *e > len
        {
            *e = len;
            debug_assert!(s < len);
        }
    }

    /// Whether every byte of `range` is in the set. An empty range is always
    /// contained.
    pub fn contains(&self, range: Range<u64>) -> bool {
        if range.start >= range.end {
            return true;
        }
        self.covered_from(range.start) >= range.end
    }

    /// The end of the contiguous run of covered bytes starting at `offset`,
    /// or `offset` itself if that byte is not covered.
    pub fn covered_from(&self, offset: u64) -> u64 {
        match self.map.range(..=offset).next_back() {
            Some((_, &e)) if e > offset => e,
            _ => offset,
        }
    }

    /// The first uncovered range within `from..limit`, clipped to it, or
    /// `None` if `from..limit` is fully covered (or empty).
    pub fn next_gap(&self, from: u64, limit: u64) -> Option<Range<u64>> {
        if from >= limit {
            return None;
        }
        let gap_start = self.covered_from(from);
        if gap_start >= limit {
            return None;
        }
        let gap_end = self
            .map
            .range(gap_start..)
            .next()
            .map_or(limit, |(&s, _)| s.min(limit));
        Some(gap_start..gap_end)
    }

    /// The stored ranges, ascending, disjoint and non-adjacent.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The total number of covered bytes.
    pub fn covered_len(&self) -> u64 {
        self.map.iter().map(|(&s, &e)| e - s).sum()
    }

    /// The number of disjoint ranges stored.
    pub fn range_count(&self) -> usize {
        self.map.len()
    }

    /// Whether the set covers nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The end of the highest covered range (0 when empty).
    pub fn end(&self) -> u64 {
        self.map.iter().next_back().map_or(0, |(_, &e)| e)
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl FromIterator<Range<u64>> for RangeSet {
    fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
        let mut set = Self::new();
        for r in iter {
            set.insert(r);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const U: u64 = 200;

    fn bitmap(ops: &[Range<u64>]) -> Vec<bool> {
        let mut bits = vec![false; U as usize];
        for r in ops {
            for i in r.clone() {
                bits[i as usize] = true;
            }
        }
        bits
    }

    fn ranges_of(bits: &[bool]) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let s = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                out.push(s as u64..i as u64);
            } else {
                i += 1;
            }
        }
        out
    }

    fn arb_range() -> impl Strategy<Value = Range<u64>> {
        (0..U, 0..40u64).prop_map(|(s, l)| s..(s + l).min(U))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_bitmap_model(ops in prop::collection::vec(arb_range(), 0..30),
                                probe in arb_range(), from in 0..U, limit in 0..U + 10) {
            let set: RangeSet = ops.iter().cloned().collect();
            let bits = bitmap(&ops);
            // Same ranges, merged (adjacent ranges coalesce).
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), ranges_of(&bits));
            prop_assert_eq!(set.covered_len(), bits.iter().filter(|b| **b).count() as u64);
            // contains
            let model_contains = probe.clone().all(|i| bits[i as usize]);
            prop_assert_eq!(set.contains(probe.clone()), model_contains);
            // covered_from
            let mut c = from;
            while c < U && bits[c as usize] { c += 1; }
            prop_assert_eq!(set.covered_from(from), c);
            // next_gap
            let model_gap = {
                let lim = limit;
                let mut s = from;
                while s < lim && s < U && bits[s as usize] { s += 1; }
                if s >= lim { None } else {
                    let mut e = s;
                    while e < lim && (e >= U || !bits[e as usize]) { e += 1; }
                    Some(s..e)
                }
            };
            prop_assert_eq!(set.next_gap(from, limit), model_gap);
        }

        #[test]
        fn truncate_matches_model(ops in prop::collection::vec(arb_range(), 0..30), len in 0..U) {
            let mut set: RangeSet = ops.iter().cloned().collect();
            set.truncate(len);
            let mut bits = bitmap(&ops);
            for b in bits.iter_mut().skip(len as usize) { *b = false; }
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), ranges_of(&bits));
        }
    }

    #[test]
    fn basics() {
        let mut s = RangeSet::new();
        assert!(s.is_empty());
        assert!(s.contains(5..5));
        s.insert(5..5);
        #[allow(clippy::reversed_empty_ranges)]
        s.insert(7..3);
        assert!(s.is_empty());
        s.insert(10..20);
        s.insert(0..5);
        assert_eq!(s.range_count(), 2);
        s.insert(5..10);
        assert_eq!(s.range_count(), 1);
        assert_eq!(s.end(), 20);
        assert_eq!(s.next_gap(0, 20), None);
        assert_eq!(s.next_gap(25, 20), None);
        s.insert(u64::MAX - 1..u64::MAX);
        assert!(s.contains(u64::MAX - 1..u64::MAX));
        assert_eq!(s.next_gap(0, u64::MAX), Some(20..u64::MAX - 1));
        s.clear();
        assert!(s.is_empty());
    }
}

//! The random seek positions of the seek benches: a fixed-seed xorshift,
//! so every run and every backend seeks to the same offsets.

/// `n` offsets in `0..span` (`span` ≥ 1), the same sequence on every call.
pub(crate) fn seek_positions(span: u64, n: usize) -> impl Iterator<Item = u64> {
    let span = span.max(1);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % span
    })
}

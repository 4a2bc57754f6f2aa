//! Helpers shared by the storage integration tests (`storage_stress`,
//! `storage_failure`): the deterministic test bytes and a seeded RNG.
#![allow(dead_code)]

/// The byte at `pos` of the test resource.
pub fn byte_at(pos: u64) -> u8 {
    (pos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// The test bytes of `start..start + len`.
pub fn chunk(start: u64, len: usize) -> Vec<u8> {
    (start..start + len as u64).map(byte_at).collect()
}

/// xorshift64*, seeded: reproducible random sizes and offsets.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

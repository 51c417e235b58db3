//! Seeded generation shared by the tests and by the crash test's child process
//! (`src/bin/strata-redb-crashwriter.rs` includes this file), so that what the child writes
//! and what the test checks are made by one function.

#![allow(dead_code)]

/// SplitMix64: a small seeded generator, so failures replay from a printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The crash writer's value of `key` at `version`: the key and version, then 16 to 1,515 bytes
/// derived from both, so that any write can be checked byte for byte after a crash.
pub fn crash_value(key: &str, version: u64) -> Vec<u8> {
    let mut state = version.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in key.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x100_0000_01B3);
    }
    let mut value = format!("{key}|{version}|").into_bytes();
    let filler = 16 + (state % 1500) as usize;
    for _ in 0..filler {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        value.push(state as u8);
    }
    value
}

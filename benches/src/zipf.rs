//! Key streams for the throughput workloads: a seeded PRNG, a Zipf sampler and the rank-to-key mapping.
//!
//! Streams are generated before a measurement starts and then only read, so the cost of sampling is never
//! part of a measured operation.

/// SplitMix64 (Steele, Lea and Flood): a tiny, fast, well-mixed generator. Plenty for choosing keys.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The key that stands for item `index` (0-based popularity rank for Zipf streams).
///
/// Multiplying by an odd constant is a bijection on `u64`, so distinct indices give distinct keys, while
/// popular keys are spread over the key space instead of being small adjacent integers.
pub fn key_of(index: u64) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^exponent`.
///
/// Exact inverse-CDF sampling over a precomputed table (8 bytes per rank), which is simple and unbiased; its
/// speed does not matter because streams are precomputed.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n >= 1` ranks.
    pub fn new(n: usize, exponent: f64) -> Self {
        assert!(n >= 1, "a Zipf distribution needs at least one item");
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += (rank as f64).powf(-exponent);
            cdf.push(total);
        }
        for p in &mut cdf {
            *p /= total;
        }
        Self { cdf }
    }

    /// One rank drawn with `rng`.
    pub fn sample(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.next_f64();
        let rank = self.cdf.partition_point(|&p| p <= u);
        rank.min(self.cdf.len() - 1) as u64
    }
}

/// `len` keys of a Zipf(`exponent`) stream over `distinct` items, mapped through [`key_of`].
pub fn zipf_stream(zipf: &Zipf, len: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| key_of(zipf.sample(&mut rng))).collect()
}

/// `len` uniformly random keys: with 64-bit keys, practically all distinct.
pub fn uniform_stream(len: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_low_ranks_and_stays_in_range() {
        let zipf = Zipf::new(1000, 0.99);
        let mut rng = SplitMix64::new(7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500]);
        // Rank 0 has probability 1 / H(1000, 0.99), about 0.13.
        assert!((10_000..16_000).contains(&counts[0]), "{}", counts[0]);
    }

    #[test]
    fn key_of_is_injective_on_a_range() {
        let keys: std::collections::HashSet<u64> = (0..10_000).map(key_of).collect();
        assert_eq!(keys.len(), 10_000);
    }
}

//! Synthetic key streams for the throughput suite: Zipf-distributed keys, generated up front.
//!
//! Everything random is drawn before the clock starts, so the timed loop does nothing but
//! read two arrays and call the cache; the RNG's cost and its variance stay out of the figures.
//! Streams are seeded, so every system sees exactly the same operations.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform, Zipf};

/// Number of distinct key ids the Zipf distribution ranges over.
pub const KEY_SPACE: u64 = 1_000_000;
/// Zipf exponent.
pub const ZIPF_S: f64 = 1.0;
/// Length of each thread's pre-generated stream; a power of two so it divides into the
/// 1024-operation batches the timed loop checks its stop flag between.
pub const STREAM_LEN: usize = 1 << 20;

/// Maps a Zipf rank to a key. A bijection on `u64` (each step is invertible), so distinct
/// ranks stay distinct keys, but popular keys are no longer the small integers: a cache that
/// happens to hash small integers well or badly should not be rewarded or punished for that.
fn rank_to_key(rank: u64) -> u64 {
    let mut z = rank.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` keys drawn from Zipf(`ZIPF_S`) over `KEY_SPACE` ids.
pub fn zipf_keys(seed: u64, n: usize) -> Vec<u64> {
    let zipf = Zipf::new(KEY_SPACE, ZIPF_S).expect("valid Zipf parameters");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rank_to_key(zipf.sample(&mut rng) as u64))
        .collect()
}

/// One thread's pre-generated operations: a key per operation and a die roll in `0..100` that
/// decides read or write against the mix's read percentage, so one stream serves every mix.
#[derive(Debug)]
pub struct OpStream {
    pub keys: Vec<u64>,
    pub dice: Vec<u8>,
}

impl OpStream {
    pub fn generate(seed: u64) -> Self {
        let keys = zipf_keys(seed, STREAM_LEN);
        let mut rng = StdRng::seed_from_u64(seed ^ 0xD1CE_D1CE_D1CE_D1CE);
        let die = Uniform::new(0u8, 100);
        let dice = (0..STREAM_LEN).map(|_| die.sample(&mut rng)).collect();
        Self { keys, dice }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_to_key_is_injective_on_the_key_space() {
        let mut keys: Vec<u64> = (1..=KEY_SPACE).map(rank_to_key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len() as u64, KEY_SPACE);
    }

    #[test]
    fn zipf_stream_is_skewed() {
        let keys = zipf_keys(1, 100_000);
        let top = rank_to_key(1);
        let hits = keys.iter().filter(|&&k| k == top).count();
        // P(rank 1) = 1 / H(1e6) ~ 0.069 for s = 1.
        assert!((5_000..9_000).contains(&hits), "rank-1 share {hits}");
    }
}

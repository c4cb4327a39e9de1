//! Access-frequency history for admission: a count-min sketch of 4-bit counters with periodic
//! halving (TinyLFU: Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM ToS 2017).
//!
//! It remembers roughly how often each key was seen recently, including keys no longer in the
//! cache, in 8 bytes per entry of capacity. Counting is approximate (never under-counts until a
//! halving) and old history fades: after `20 × capacity` increments every counter is halved, and
//! sooner when the eviction policy finds the history stale ([`FrequencySketch::age`]).

#[derive(Debug)]
pub(crate) struct FrequencySketch {
    /// One word per entry of capacity, not rounded up to a power of two (which cost up to
    /// another 8 bytes per entry): a word is picked by multiplying, not by masking.
    table: Vec<u64>,
    additions: u32,
    sample: u32,
}

/// Increments between two halvings, per counter of a row. Twice Caffeine's 10, because the
/// eviction policy also ages the sketch on demand (see [`FrequencySketch::age`]): with that, the
/// slower natural pace keeps more history where it pays (OLTP), and the demand ageing takes over
/// where it does not. Without the demand ageing, 20 froze the cache on P6 at 131072 entries (42 %
/// hit ratio instead of 76 %): main filled with keys whose counters saturated, and no newcomer
/// could outscore them before the next halving.
const SAMPLE_PER_COUNTER: usize = 20;

/// Share of the halving period one [`FrequencySketch::age`] call skips. Measured with
/// `lethe-bench hitratio` (see the eviction module's docs): 3/40 gained another 0.6 points on P6
/// at 131072 entries but cost 0.2 to 0.3 on P6 at 32768 and 8192 and on OLTP.
const AGE_STEP: (u32, u32) = (3, 80);

const SEEDS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x27D4_EB2F_1656_67C5,
];

impl FrequencySketch {
    pub(crate) fn new(capacity: usize) -> Self {
        let width = capacity.clamp(16, 1 << 30);
        FrequencySketch {
            table: vec![0; width],
            additions: 0,
            sample: u32::try_from(width.saturating_mul(SAMPLE_PER_COUNTER)).unwrap_or(u32::MAX),
        }
    }

    /// Grows the table for a larger population (history restarts).
    pub(crate) fn ensure_capacity(&mut self, capacity: usize) {
        // Only past the next power of two: a shard holds a few entries beyond its capacity
        // between a write and its eviction, and each growth restarts the history.
        let len = self.table.len();
        if capacity > len.next_power_of_two() && len < 1 << 30 {
            *self = FrequencySketch::new(capacity.next_power_of_two());
        }
    }

    /// Word index and bit offset of row `row`'s counter for `hash`. Rows are independent (each
    /// picks its own word): measured on the ARC P3/P6 traces, confining a key's counters to one
    /// 64-byte block cost up to 3 points of hit ratio through extra collisions.
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        let h = (hash ^ SEEDS[row]).wrapping_mul(SEEDS[(row + 1) & 3]);
        let h = h ^ (h >> 29);
        // The top 32 bits scaled to the table's length (Lemire's multiply-shift reduction).
        let word = ((h >> 32) * self.table.len() as u64) >> 32;
        (word as usize, ((h & 15) as u32) << 2)
    }

    pub(crate) fn estimate(&self, hash: u64) -> u8 {
        (0..4)
            .map(|r| {
                let (i, off) = self.slot(hash, r);
                ((self.table[i] >> off) & 0xF) as u8
            })
            .min()
            .unwrap_or(0)
    }

    pub(crate) fn increment(&mut self, hash: u64) {
        self.add(hash, 1);
    }

    /// Counts `n` accesses at once (saturating each counter at 15).
    pub(crate) fn add(&mut self, hash: u64, n: u8) {
        let n = u64::from(n.min(15));
        let mut added = 0;
        for r in 0..4 {
            let (i, off) = self.slot(hash, r);
            let c = (self.table[i] >> off) & 0xF;
            let step = n.min(15 - c);
            self.table[i] += step << off;
            added = added.max(step);
        }
        if added > 0 {
            self.additions += added as u32;
            if self.additions >= self.sample {
                self.halve();
            }
        }
    }

    /// Brings the next halving forward by a fixed share of the period: the caller has evidence
    /// that the counters overrate what is cached (a candidate turned away came right back).
    pub(crate) fn age(&mut self) {
        let step = self.sample / AGE_STEP.1 * AGE_STEP.0;
        self.additions = self.additions.saturating_add(step.max(1));
        if self.additions >= self.sample {
            self.halve();
        }
    }

    fn halve(&mut self) {
        for c in &mut self.table {
            *c = (*c >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ages() {
        let mut s = FrequencySketch::new(1024);
        for _ in 0..5 {
            s.increment(42);
        }
        s.increment(7);
        assert!(s.estimate(42) >= 5);
        assert!(s.estimate(7) >= 1 && s.estimate(7) < 5);
        for _ in 0..30 {
            s.increment(42);
        }
        assert_eq!(s.estimate(42), 15, "saturates");
        // Enough other traffic to trigger a halving.
        for k in 0..30_000u64 {
            s.increment(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert!(s.estimate(42) < 15, "aged");
    }

    #[test]
    fn ageing_on_demand_brings_the_halving_forward() {
        let mut s = FrequencySketch::new(1024);
        for _ in 0..15 {
            s.increment(42);
        }
        // A whole period takes AGE_STEP.1 / AGE_STEP.0 calls, rounded up.
        for _ in 1..AGE_STEP.1.div_ceil(AGE_STEP.0) {
            s.age();
        }
        assert_eq!(s.estimate(42), 15);
        s.age();
        assert_eq!(s.estimate(42), 7, "halved without any other traffic");
    }

    #[test]
    fn one_word_per_entry_of_capacity_and_every_word_in_use() {
        let mut s = FrequencySketch::new(3000);
        assert_eq!(s.table.len(), 3000, "not rounded up to a power of two");
        for k in 0..200_000u64 {
            s.increment(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        // Halvings leave counts behind everywhere traffic went: all words, ends included.
        assert!(s.table.iter().all(|&w| w != 0), "a word no key maps to");
        // A few entries beyond the capacity (between a write and its eviction) keep the history.
        s.increment(42);
        let before = s.estimate(42);
        s.ensure_capacity(3010);
        assert_eq!(s.table.len(), 3000);
        assert_eq!(s.estimate(42), before);
        // Past the next power of two it grows, to the power of two above the population.
        s.ensure_capacity(5000);
        assert_eq!(s.table.len(), 8192);
    }
}

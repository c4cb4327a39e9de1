//! Access-frequency history for admission: a count-min sketch of 4-bit counters with periodic
//! halving (TinyLFU: Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM ToS 2017).
//!
//! It remembers roughly how often each key was seen recently, including keys no longer in the
//! cache, in 8 bytes per entry of capacity. The four counters of a key sit in one 64-byte block
//! (in four different words of it), so an increment or estimate costs one cache miss, not four. Counting is approximate (never under-counts until a
//! halving) and old history fades: after `10 × capacity` increments every counter is halved.

#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    mask: usize,
    additions: u32,
    sample: u32,
}

impl FrequencySketch {
    pub(crate) fn new(capacity: usize) -> Self {
        // Whole 8-word blocks; at least two so the block index has a bit to work with.
        let width = capacity.clamp(16, 1 << 30).next_power_of_two();
        FrequencySketch {
            table: vec![0; width],
            mask: (width >> 3) - 1,
            additions: 0,
            sample: u32::try_from(width.saturating_mul(10)).unwrap_or(u32::MAX),
        }
    }

    /// Grows the table for a larger population (history restarts).
    pub(crate) fn ensure_capacity(&mut self, capacity: usize) {
        if capacity > self.table.len() && self.table.len() < 1 << 30 {
            *self = FrequencySketch::new(capacity);
        }
    }

    /// Word index and bit offset of row `row`'s counter for `hash`.
    fn slot(&self, hash: u64, row: usize) -> (usize, u32) {
        let h = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let block = (h >> 40) as usize & self.mask;
        // Row r uses word 2r or 2r+1 of the block, so rows never share a word.
        let word = (row << 1) | ((h >> (row + 8)) & 1) as usize;
        let nibble = ((h >> (16 + 4 * row)) & 15) as u32;
        ((block << 3) | word, nibble << 2)
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
        let mut added = false;
        for r in 0..4 {
            let (i, off) = self.slot(hash, r);
            if (self.table[i] >> off) & 0xF < 15 {
                self.table[i] += 1 << off;
                added = true;
            }
        }
        if added {
            self.additions += 1;
            if self.additions >= self.sample {
                self.halve();
            }
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
        for k in 0..20_000u64 {
            s.increment(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        assert!(s.estimate(42) < 15, "aged");
    }
}

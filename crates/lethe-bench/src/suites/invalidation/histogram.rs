//! The latency histogram of the `tag_1m` latency windows: log-linear (the HDR layout, fixed
//! precision), with HdrHistogram's correction for coordinated omission.

/// Exact (one bucket per nanosecond) below `SUB` ns; above, `HALF` buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const HALF: u64 = SUB / 2;

/// A log-linear latency histogram (the HDR layout, fixed precision): exact below 128 ns, and
/// within 1/64 (1.6 %) above, reporting each bucket's upper bound so quantiles never
/// understate.
#[derive(Debug, Clone)]
pub(super) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub(super) fn new() -> Self {
        Histogram {
            counts: vec![0; Self::index(u64::MAX) + 1],
            total: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = e - (SUB_BITS - 1);
        let mantissa = v >> shift; // in [HALF, SUB)
        (SUB + u64::from(e - SUB_BITS) * HALF + (mantissa - HALF)) as usize
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let e = (i - SUB) / HALF + u64::from(SUB_BITS);
        let mantissa = (i - SUB) % HALF + HALF;
        let shift = e - u64::from(SUB_BITS - 1);
        ((mantissa + 1) << shift).wrapping_sub(1)
    }

    #[inline]
    pub(super) fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    /// A copy corrected for coordinated omission, as HdrHistogram does it: a reader stalled
    /// for `v` did not issue the gets it would have issued every `interval` meanwhile, so each
    /// sample above `interval` also stands for samples of `v - interval`, `v - 2 * interval`,
    /// ... down to `interval` (what those gets would have waited). Without this, a reader that
    /// is blocked most of the time contributes few, and so rare, slow samples.
    pub(super) fn corrected(&self, interval: u64) -> Histogram {
        let mut out = self.clone();
        if interval == 0 {
            return out;
        }
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let mut missing = Self::upper(i).saturating_sub(interval);
            while missing >= interval {
                out.counts[Self::index(missing)] += c;
                out.total += c;
                missing -= interval;
            }
        }
        out
    }

    pub(super) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    pub(super) fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0 if empty).
    pub(super) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i);
            }
        }
        Self::upper(self.counts.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values() {
        for v in (0..5000).chain([1 << 20, 123_456_789, u64::MAX / 3, u64::MAX]) {
            let i = Histogram::index(v);
            assert!(
                Histogram::upper(i) >= v,
                "{v} above its bucket's upper bound"
            );
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "{v} fits an earlier bucket");
            }
            assert!(
                Histogram::upper(i) - v <= v / 64,
                "{v}: bucket too wide ({})",
                Histogram::upper(i)
            );
        }
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile(0.0), 1);
        let p50 = h.quantile(0.5);
        assert!((500..=508).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((990..=1000).contains(&p99), "p99 {p99}");
        let mut other = Histogram::new();
        other.record(1_000_000);
        h.merge(&other);
        assert!(h.quantile(1.0) >= 1_000_000);
    }

    #[test]
    fn coordinated_omission_correction_fills_the_stall() {
        let mut h = Histogram::new();
        for _ in 0..990 {
            h.record(100);
        }
        // One stall of 100 µs where a steady client would have issued 1,000 gets.
        h.record(100_000);
        assert!(h.quantile(0.99) <= 100, "raw p99 hides the stall");
        let c = h.corrected(100);
        assert!(c.count() >= 1_900, "{} samples after correction", c.count());
        assert!(
            c.quantile(0.99) > 10_000,
            "corrected p99 {}",
            c.quantile(0.99)
        );
        assert_eq!(Histogram::new().corrected(100).count(), 0);
    }
}

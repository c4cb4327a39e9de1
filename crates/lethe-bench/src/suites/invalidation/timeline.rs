//! Reader latency over time in the `tag_1m` latency windows: what a reader saw at each moment
//! after the invalidation began, next to the same moments of an idle window.
//!
//! The histograms say how often reads were slow; this says when. Each reader files every timed
//! `get` under the slot of [`SLOT_NS`] in which it started, counted from the start of its
//! window, so a stall shows at the moment it began (its one slow `get`) and repetitions line up
//! on the window's start and pool. Filing costs an `Instant` subtraction and a vector index
//! per `get`, in idle and during windows alike.

use crate::charts;

/// Slot width: fine enough to place a stall of a fraction of a millisecond.
pub(super) const SLOT_NS: u64 = 20_000;
/// Slots kept per window (10 s at [`SLOT_NS`]); later gets are not filed.
const MAX_SLOTS: usize = 500_000;
/// Points per line in the chart: slots are merged down to at most this many.
const CHART_POINTS: usize = 500;

/// One time slot: how many gets started in it, their total and their largest latency (ns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    count: u64,
    sum: u64,
    max: u64,
}

impl Slot {
    fn absorb(&mut self, other: Slot) {
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }
}

/// Latencies filed by start time since the window began.
#[derive(Debug, Clone, Default)]
pub(super) struct Timeline {
    slots: Vec<Slot>,
}

impl Timeline {
    /// Files one `get` that started `offset_ns` after the window began and took `ns`.
    #[inline]
    pub(super) fn record(&mut self, offset_ns: u64, ns: u64) {
        let i = (offset_ns / SLOT_NS) as usize;
        if i >= MAX_SLOTS {
            return;
        }
        if i >= self.slots.len() {
            self.slots.resize(i + 1, Slot::default());
        }
        let slot = &mut self.slots[i];
        slot.count += 1;
        slot.sum += ns;
        slot.max = slot.max.max(ns);
    }

    /// Adds another reader's (or repetition's) slots to these.
    pub(super) fn merge(&mut self, other: &Timeline) {
        if other.slots.len() > self.slots.len() {
            self.slots.resize(other.slots.len(), Slot::default());
        }
        for (a, b) in self.slots.iter_mut().zip(&other.slots) {
            a.absorb(*b);
        }
    }

    /// The chart's series: slots merged `k` at a time so at most [`CHART_POINTS`] remain, as
    /// (start ms, mean µs, max µs). A run of merged slots where no get started (the reader was
    /// blocked or descheduled) becomes one point with NaN latencies, so the chart's lines break
    /// there rather than draw latencies nobody measured.
    pub(super) fn chart(&self, label: &str) -> charts::Timeline {
        let k = self.slots.len().div_ceil(CHART_POINTS).max(1);
        let mut slots: Vec<(f64, f64, f64)> = Vec::new();
        for (i, group) in self.slots.chunks(k).enumerate() {
            let mut s = Slot::default();
            for g in group {
                s.absorb(*g);
            }
            let at = (i * k) as f64 * SLOT_NS as f64 / 1e6;
            if s.count > 0 {
                slots.push((at, s.sum as f64 / s.count as f64 / 1e3, s.max as f64 / 1e3));
            } else if slots.last().is_some_and(|l| !l.1.is_nan()) {
                slots.push((at, f64::NAN, f64::NAN));
            }
        }
        charts::Timeline {
            label: label.to_string(),
            slots,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_file_by_start_time_and_merge() {
        let mut a = Timeline::default();
        a.record(0, 100);
        a.record(SLOT_NS - 1, 300);
        a.record(3 * SLOT_NS, 5_000_000);
        a.record(MAX_SLOTS as u64 * SLOT_NS, 1); // beyond the window: not filed
        assert_eq!(a.slots.len(), 4);
        let mut b = Timeline::default();
        b.record(SLOT_NS / 2, 500);
        a.merge(&b);
        let c = a.chart("during");
        assert_eq!(c.label, "during");
        // Slot 0: 100, 300, 500 -> mean 0.3 µs, max 0.5 µs; slots 1 and 2 are empty: one gap.
        assert_eq!(c.slots.len(), 3);
        assert_eq!(c.slots[0], (0.0, 0.3, 0.5));
        assert!(c.slots[1].1.is_nan() && c.slots[1].2.is_nan());
        assert_eq!(c.slots[1].0, SLOT_NS as f64 / 1e6);
        assert_eq!(c.slots[2], (3.0 * SLOT_NS as f64 / 1e6, 5000.0, 5000.0));
    }

    #[test]
    fn long_windows_are_merged_to_a_bounded_number_of_points() {
        let mut t = Timeline::default();
        for i in 0..(CHART_POINTS as u64 * 3) {
            t.record(i * SLOT_NS, 1_000 + i);
        }
        let c = t.chart("idle");
        assert_eq!(c.slots.len(), CHART_POINTS);
        // The first point merges slots 0..3: max is the third's.
        assert_eq!(c.slots[0].2, 1.002);
        assert!(c.slots.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

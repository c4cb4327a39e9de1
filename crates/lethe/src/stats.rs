//! Cache statistics: always on, so they must cost next to nothing.
//!
//! Hit and miss counters live beside each shard's lock (the read path already owns that cache
//! line); write-side counters are plain integers updated under the shard's write lock. A
//! [`Stats`] snapshot sums the shards; counts from different shards are not taken at one instant.

use crate::listener::RemovalCause;

/// Removals by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovalCounts(pub(crate) [u64; RemovalCause::ALL.len()]);

impl RemovalCounts {
    /// Removals with this cause.
    pub fn get(&self, cause: RemovalCause) -> u64 {
        self.0[cause.index()]
    }

    /// All removals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(cause, count)` for every cause.
    pub fn iter(&self) -> impl Iterator<Item = (RemovalCause, u64)> + '_ {
        RemovalCause::ALL.iter().map(|&c| (c, self.get(c)))
    }
}

/// A snapshot of a cache's counters.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (or only an expired entry).
    pub misses: u64,
    /// Writes that created an entry.
    pub inserts: u64,
    /// Writes that replaced a live entry.
    pub updates: u64,
    /// Entries removed, by cause (a replaced value counts as a removal with cause `Replaced`).
    pub removals: RemovalCounts,
    /// Entries currently stored (including expired ones not yet reclaimed).
    pub entries: u64,
    /// Current total weight.
    pub weight: u64,
    /// Capacity in weight units.
    pub capacity: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// `hits + misses`.
    pub fn requests(&self) -> u64 {
        self.hits + self.misses
    }
}

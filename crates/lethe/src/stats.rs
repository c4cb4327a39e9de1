//! Cache statistics: always on, so they must cost next to nothing.
//!
//! Hit and miss counters are striped by thread: each thread increments its own cache-padded
//! stripe, so reads of the same hot shard from several cores do not fight over one counter's
//! cache line. Write-side counters are plain integers updated under the shard's write lock. A
//! [`Stats`] snapshot sums stripes and shards; they are not read at one instant.

use crate::listener::RemovalCause;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

const STRIPES: usize = 32;

// A static: std's atomic, not the checked one (see `crate::sync`); it only spreads threads
// over stripes.
static NEXT_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static THREAD_STRIPE: usize = NEXT_THREAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
}

#[derive(Debug, Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Read-path counters of one cache, striped by thread.
#[derive(Debug)]
pub(crate) struct ReadCounters {
    stripes: Box<[CachePadded<Stripe>]>,
}

impl ReadCounters {
    pub(crate) fn new() -> Self {
        ReadCounters {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    fn stripe(&self) -> &Stripe {
        &self.stripes[THREAD_STRIPE.with(|s| *s)]
    }

    pub(crate) fn hit(&self) {
        self.stripe().hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.stripe().misses.fetch_add(1, Ordering::Relaxed);
    }

    /// `(hits, misses)` so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(h, m), s| {
            (
                h + s.hits.load(Ordering::Relaxed),
                m + s.misses.load(Ordering::Relaxed),
            )
        })
    }
}

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
    /// Entries currently stored (including expired or invalidated ones not yet reclaimed).
    pub entries: u64,
    /// Current total weight.
    pub weight: u64,
    /// Capacity in weight units.
    pub capacity: u64,
    /// Invalidations applied (keys, tags, patterns, floors): the latest sequence number.
    pub invalidations: u64,
    /// Leases granted on misses.
    pub leases_granted: u64,
    /// Lease fills refused because something they covered was invalidated, or the lease was
    /// no longer valid.
    pub fills_refused: u64,
    /// Versioned writes and fills refused because their version was below a key's fence
    /// ([`crate::Cache::fence`]): data older than an applied invalidation.
    pub writes_fenced: u64,
    /// Tag names in use.
    pub tags: u64,
    /// Dependency edges (dependency -> dependent) in the graph.
    pub dependency_edges: u64,
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

//! A loader's counters: plain relaxed atomics, bumped on loads and writes (both slow next to a
//! cache read), summed into a [`LoaderStats`] snapshot that is not taken at one instant.

use crate::sync::{AtomicU64, Ordering};

/// A snapshot of a loader's counters; see [`super::Loader::stats`].
///
/// Write-behind counters satisfy `writes_queued = writes_written + writes_coalesced +
/// writes_failed + (ops not yet processed)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoaderStats {
    /// Calls of [`super::Source::load`], foreground and background.
    pub loads: u64,
    /// Loads that returned an error.
    pub load_errors: u64,
    /// Loads that panicked.
    pub load_panics: u64,
    /// Misses answered "absent" from the negative cache.
    pub negative_hits: u64,
    /// Callers that waited for another caller's load of the same key instead of loading.
    pub single_flight_waits: u64,
    /// Callers given a stale value (stale-while-revalidate, stale-if-error).
    pub stale_served: u64,
    /// Background refreshes run (refresh-ahead and stale-while-revalidate).
    pub refreshes: u64,
    /// Background refreshes not run: the refresh queue was full or closed.
    pub refreshes_dropped: u64,
    /// Loaded values not cached because the key was written or invalidated during the load
    /// (a refused lease fill or a failed compare-and-set).
    pub fills_refused: u64,
    /// Leaders that found the key's lease held by someone outside this loader and waited.
    pub lease_waits: u64,
    /// Loads made without a lease after waiting out the lease timeout (not cached).
    pub unleased_loads: u64,
    /// Write-behind ops acknowledged.
    pub writes_queued: u64,
    /// Write-behind ops the source acknowledged.
    pub writes_written: u64,
    /// Write-behind ops superseded by a later op on the same key in the same batch.
    pub writes_coalesced: u64,
    /// Write-behind batch attempts that were retries.
    pub write_retries: u64,
    /// Write-behind ops given up on (see [`super::Loader::failed_writes`]).
    pub writes_failed: u64,
}

/// The read side's counters.
#[derive(Debug, Default)]
pub(crate) struct ReadCounters {
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) load_panics: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) refreshes_dropped: AtomicU64,
    pub(crate) fills_refused: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) unleased_loads: AtomicU64,
}

/// The write-behind queue's counters.
#[derive(Debug, Default)]
pub(crate) struct WriteCounters {
    pub(crate) queued: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    add(c, 1);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl LoaderStats {
    pub(crate) fn collect(r: &ReadCounters, w: Option<&WriteCounters>) -> Self {
        let mut s = LoaderStats {
            loads: get(&r.loads),
            load_errors: get(&r.load_errors),
            load_panics: get(&r.load_panics),
            negative_hits: get(&r.negative_hits),
            single_flight_waits: get(&r.waits),
            stale_served: get(&r.stale_served),
            refreshes: get(&r.refreshes),
            refreshes_dropped: get(&r.refreshes_dropped),
            fills_refused: get(&r.fills_refused),
            lease_waits: get(&r.lease_waits),
            unleased_loads: get(&r.unleased_loads),
            ..LoaderStats::default()
        };
        if let Some(w) = w {
            s.writes_queued = get(&w.queued);
            s.writes_written = get(&w.written);
            s.writes_coalesced = get(&w.coalesced);
            s.write_retries = get(&w.retries);
            s.writes_failed = get(&w.failed);
        }
        s
    }
}

//! Invalidation state shared by all shards of one cache: the epoch, the tag registry, the
//! removal log for leases and the prefix floors.
//!
//! The epoch is a cache-wide counter that orders invalidations against leases: a tag
//! invalidation or a lease takes a fresh value (tag nodes remember the epoch of their latest
//! invalidation), and removals are logged with the current one while leases are outstanding. A
//! fill is refused when something it covers carries an epoch after its lease's.

use crate::lease::RemovalLog;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::tag_registry::TagRegistry;
use crate::version::PrefixFloors;

#[derive(Debug)]
pub(crate) struct InvalidationState {
    epoch: AtomicU64,
    pub(crate) tags: TagRegistry,
    pub(crate) removals: RemovalLog,
    /// Leases outstanding in all shards; while zero, removals skip the log.
    pub(crate) leases: AtomicUsize,
    pub(crate) floors: PrefixFloors,
    /// Whether a tagged entry was ever stored, so untagged caches skip tag work entirely. A
    /// flag rather than a count: a count would be a cache line every tagged write fights over.
    tagged: AtomicBool,
    pub(crate) leases_granted: AtomicU64,
    pub(crate) fills_refused: AtomicU64,
    /// Versioned writes and fills refused by a fence.
    pub(crate) writes_fenced: AtomicU64,
}

impl InvalidationState {
    pub(crate) fn new(capacity: u64) -> Self {
        InvalidationState {
            epoch: AtomicU64::new(1),
            tags: TagRegistry::new(),
            removals: RemovalLog::new(capacity),
            leases: AtomicUsize::new(0),
            floors: PrefixFloors::default(),
            tagged: AtomicBool::new(false),
            leases_granted: AtomicU64::new(0),
            fills_refused: AtomicU64::new(0),
            writes_fenced: AtomicU64::new(0),
        }
    }

    /// The current epoch: the stamp of a write happening now.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// A fresh epoch, greater than every stamp taken before.
    pub(crate) fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Records that tagged entries exist (written once: later calls only read).
    pub(crate) fn note_tagged(&self) {
        if !self.tagged.load(Ordering::Relaxed) {
            self.tagged.store(true, Ordering::Release);
        }
    }

    /// Whether a tagged entry was ever stored.
    pub(crate) fn is_tagged(&self) -> bool {
        self.tagged.load(Ordering::Acquire)
    }

    /// Records a removal or write of the key with `hash`, if a lease could care.
    pub(crate) fn log_removal(&self, hash: u64) {
        if self.leases.load(Ordering::SeqCst) > 0 {
            self.removals.record(hash, self.epoch());
        }
    }
}

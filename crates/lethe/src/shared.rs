//! Invalidation state shared by all shards of one cache: the epoch, the tag registry, the
//! shards' tag inboxes, the removal log for leases and the prefix floors.
//!
//! The epoch is a cache-wide counter that orders invalidations against writes: a tag
//! invalidation or a lease takes a fresh value, a write reads the current one as its stamp. An
//! entry is hidden by a tag invalidation exactly when the invalidation's epoch is greater than
//! the entry's stamp, i.e. when the invalidation came after the write.

use crate::lease::RemovalLog;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::tags::{TagNode, TagRegistry};
use crate::version::PrefixFloors;

#[derive(Debug)]
pub(crate) struct Shared {
    epoch: AtomicU64,
    pub(crate) tags: TagRegistry,
    /// Per shard: tag nodes invalidated (or given a floor) since the shard last looked.
    inboxes: Box<[Mutex<Vec<Arc<TagNode>>>]>,
    inbox_flags: Box<[AtomicBool]>,
    pub(crate) removals: RemovalLog,
    /// Leases outstanding in all shards; while zero, removals skip the log.
    pub(crate) leases: AtomicUsize,
    pub(crate) floors: PrefixFloors,
    /// Whether a tagged entry was ever stored, so untagged caches skip tag work entirely. A
    /// flag rather than a count: a count would be a cache line every tagged write fights over.
    tagged: AtomicBool,
    pub(crate) leases_granted: AtomicU64,
    pub(crate) fills_refused: AtomicU64,
}

impl Shared {
    pub(crate) fn new(shards: usize, capacity: u64) -> Self {
        Shared {
            epoch: AtomicU64::new(1),
            tags: TagRegistry::new(),
            inboxes: (0..shards).map(|_| Mutex::new(Vec::new())).collect(),
            inbox_flags: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            removals: RemovalLog::new(capacity),
            leases: AtomicUsize::new(0),
            floors: PrefixFloors::default(),
            tagged: AtomicBool::new(false),
            leases_granted: AtomicU64::new(0),
            fills_refused: AtomicU64::new(0),
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

    /// Tells every shard to reclaim entries under `node`.
    pub(crate) fn post(&self, node: &Arc<TagNode>) {
        if !self.tagged.load(Ordering::Acquire) {
            return;
        }
        for (inbox, flag) in self.inboxes.iter().zip(self.inbox_flags.iter()) {
            inbox.lock().push(node.clone());
            flag.store(true, Ordering::Release);
        }
    }

    /// Takes shard `id`'s inbox, if it has anything.
    pub(crate) fn take_inbox(&self, id: usize) -> Vec<Arc<TagNode>> {
        if !self.inbox_flags[id].load(Ordering::Acquire) {
            return Vec::new();
        }
        self.inbox_flags[id].store(false, Ordering::Release);
        std::mem::take(&mut *self.inboxes[id].lock())
    }

    /// Records a removal or write of the key with `hash`, if a lease could care.
    pub(crate) fn log_removal(&self, hash: u64) {
        if self.leases.load(Ordering::SeqCst) > 0 {
            self.removals.record(hash, self.epoch());
        }
    }
}

//! What the engine stores per key, what callers pass with an insert, and what they get back.
//!
//! An entry is stored in two parts. [`Entry`] holds what a plain read touches (key, value, hash,
//! deadline, hit counter) and nothing else, so hot entries pack densely in the CPU cache;
//! [`EntryMeta`] holds times, version and expiry state, in a vector parallel to the slots, read
//! only by writes, timed reads and metadata queries. State only some entries need
//! (sliding/adaptive TTL bookkeeping, and with the invalidation model tags and dependencies)
//! sits behind one optional box so that plain entries pay a pointer for it.

use crate::clock::Timestamp;
use crate::expiry::{EarlyRefresh, ExpiryState, KeyTtl, NEVER, Ttl};
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

/// Saturation point of the per-entry hit counter: beyond it a read writes nothing, so hot
/// entries read from several cores stop bouncing their cache line.
pub(crate) const MAX_HITS: u8 = 7;

/// The part of an entry the read path touches; kept small so more of them share the cache.
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
    /// Absolute deadline in clock nanoseconds; [`NEVER`] for none. Atomic because reads may
    /// extend it (sliding, adaptive).
    pub(crate) deadline: AtomicU64,
    pub(crate) weight: u32,
    /// Hits since the eviction policy last looked (saturating at [`MAX_HITS`]).
    pub(crate) hits: AtomicU8,
}

impl<K, V> Entry<K, V> {
    pub(crate) fn deadline(&self) -> u64 {
        self.deadline.load(Ordering::Relaxed)
    }

    pub(crate) fn is_expired(&self, now: u64) -> bool {
        now >= self.deadline()
    }

    /// Counts a hit for the eviction policy, writing only while the counter is not saturated.
    pub(crate) fn record_hit(&self) {
        let h = self.hits.load(Ordering::Relaxed);
        if h < MAX_HITS {
            self.hits.store(h + 1, Ordering::Relaxed);
        }
    }
}

/// The rest of an entry: bookkeeping that only writes, timed reads and metadata queries need.
/// Stored in a vector parallel to the slots, so plain reads never load it.
#[derive(Debug, Default)]
pub(crate) struct EntryMeta {
    /// Time of the last timed read, or of the write.
    pub(crate) last_access: AtomicU64,
    /// Time of the first insert of this key (kept across replacements).
    pub(crate) created: u64,
    /// Time of the last write.
    pub(crate) updated: u64,
    pub(crate) version: u64,
    pub(crate) expiry: Option<Box<ExpiryState>>,
}

impl EntryMeta {
    /// Records a read at `now`: access time, and sliding/adaptive deadline moves.
    pub(crate) fn record_read<K, V>(&self, entry: &Entry<K, V>, now: u64) {
        if self.last_access.load(Ordering::Relaxed) < now {
            self.last_access.store(now, Ordering::Relaxed);
        }
        if let Some(state) = &self.expiry {
            if let Some(d) = state.on_read(now, self.updated) {
                crate::expiry::extend(&entry.deadline, d);
            }
        }
    }

    pub(crate) fn metadata<K, V>(&self, entry: &Entry<K, V>, now: Timestamp) -> EntryMetadata {
        let deadline = entry.deadline();
        EntryMetadata {
            ttl: crate::expiry::remaining(deadline, now),
            expires_at: (deadline != NEVER).then_some(Timestamp(deadline)),
            version: self.version,
            created: Timestamp(self.created),
            updated: Timestamp(self.updated),
            last_access: Timestamp(self.last_access.load(Ordering::Relaxed)),
            weight: entry.weight,
            refresh: false,
        }
    }

    pub(crate) fn early_refresh(&self) -> Option<EarlyRefresh> {
        self.expiry.as_ref().and_then(|e| e.early_refresh)
    }
}

/// Facts about a stored entry, as of a read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EntryMetadata {
    /// Remaining lifetime ([`KeyTtl::Persistent`] when it has no deadline).
    pub ttl: KeyTtl,
    /// The absolute deadline, if any.
    pub expires_at: Option<Timestamp>,
    /// The entry's version: incremented on every write unless the writer supplied one.
    pub version: u64,
    /// When the key was first inserted (kept across replacements).
    pub created: Timestamp,
    /// When the value was last written.
    pub updated: Timestamp,
    /// When the entry was last read. Exact for entries with a deadline; for entries without one
    /// the read path does not consult the clock (it is the hot path) and the value is the time
    /// of the write or the last read of the entry that did.
    pub last_access: Timestamp,
    /// The entry's weight.
    pub weight: u32,
    /// Probabilistic early expiration says this reader should refresh the value now (see
    /// [`EarlyRefresh`]); always `false` for entries without early refresh.
    pub refresh: bool,
}

impl EntryMetadata {
    /// Remaining time to live, `None` if the entry does not expire.
    pub fn remaining(&self) -> Option<Duration> {
        match self.ttl {
            KeyTtl::Expires(d) => Some(d),
            _ => None,
        }
    }
}

/// Options of a single insert; anything left unset comes from the cache's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct InsertOptions {
    /// TTL strategy for this entry (default: the cache's [`crate::ExpiryPolicy`]).
    pub ttl: Option<Ttl>,
    /// Jitter fraction for this entry's TTL.
    pub jitter: Option<f64>,
    /// Early-refresh parameters for this entry.
    pub early_refresh: Option<EarlyRefresh>,
    /// An external version (row version, LSN, timestamp). Without it the engine counts writes.
    pub version: Option<u64>,
    /// Keep the entry's current deadline if it exists (Redis `SET ... KEEPTTL`).
    pub keep_ttl: bool,
}

impl InsertOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fixed time to live.
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = Some(Ttl::Fixed(d));
        self
    }

    /// Time to idle (sliding TTL).
    pub fn idle(mut self, d: Duration) -> Self {
        self.ttl = Some(Ttl::Sliding(d));
        self
    }

    /// Any TTL strategy, including [`Ttl::Never`] to override a cache default.
    pub fn expiry(mut self, ttl: Ttl) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// TTL jitter fraction.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = Some(fraction);
        self
    }

    /// Probabilistic early refresh.
    pub fn early_refresh(mut self, e: EarlyRefresh) -> Self {
        self.early_refresh = Some(e);
        self
    }

    /// External version.
    pub fn version(mut self, v: u64) -> Self {
        self.version = Some(v);
        self
    }

    /// Keep the current deadline of an existing entry.
    pub fn keep_ttl(mut self) -> Self {
        self.keep_ttl = true;
        self
    }
}

/// A value read together with its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Lookup<V> {
    /// The value.
    pub value: V,
    /// Its metadata at the time of the read.
    pub metadata: EntryMetadata,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The read path's share of an entry stays small: the crate docs quote these sizes, and
    /// throughput depends on hot entries packing densely.
    #[test]
    fn entry_layout_matches_the_documented_overhead() {
        assert_eq!(size_of::<Option<Entry<u64, u64>>>(), 48);
        assert_eq!(size_of::<Option<Entry<[u8; 16], [u8; 32]>>>(), 80);
        assert_eq!(size_of::<EntryMeta>(), 40);
        assert!(
            size_of::<ExpiryState>() <= 104,
            "{}",
            size_of::<ExpiryState>()
        );
    }
}

//! What the engine stores per key, what callers pass with an insert, and what they get back.
//!
//! An entry is stored in two parts. `Entry` holds what a plain read touches (key, value, hash,
//! deadline, hit counter, tag set id) and nothing else, so hot entries pack densely in the CPU
//! cache; `EntryMeta` holds times, version and expiry state, in a vector parallel to the
//! slots, read only by writes, timed reads and metadata queries. State only some entries need
//! (sliding/adaptive TTL bookkeeping; dependencies, stale grace, source last-modified) sits
//! behind optional boxes so that plain entries pay a pointer for each.

use crate::clock::Timestamp;
use crate::expiry::{EarlyRefresh, ExpiryState, KeyTtl, NEVER, Ttl};
use crate::history::Origin;
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use crate::version::WriteCondition;
use std::sync::Arc;
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
    /// The entry's tag set in its shard's tag index (0: untagged), in three bytes that fit in
    /// padding, so plain entries pay nothing for it and a read checks tags without leaving
    /// the entry's cache line.
    tagset: [u8; 3],
}

impl<K, V> Entry<K, V> {
    pub(crate) fn new(
        key: K,
        value: V,
        hash: u64,
        deadline: u64,
        weight: u32,
        tagset: u32,
    ) -> Self {
        let mut e = Entry {
            key,
            value,
            hash,
            deadline: AtomicU64::new(deadline),
            weight,
            hits: AtomicU8::new(0),
            tagset: [0; 3],
        };
        e.set_tagset(tagset);
        e
    }

    /// The entry's tag set (0: untagged).
    #[inline]
    pub(crate) fn tagset(&self) -> u32 {
        u32::from_le_bytes([self.tagset[0], self.tagset[1], self.tagset[2], 0])
    }

    pub(crate) fn set_tagset(&mut self, set: u32) {
        let [a, b, c, _] = set.to_le_bytes();
        self.tagset = [a, b, c];
    }

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
#[derive(Debug)]
pub(crate) struct EntryMeta<K> {
    /// Time of the last timed read, or of the write.
    pub(crate) last_access: AtomicU64,
    /// Time of the first insert of this key (kept across replacements).
    pub(crate) created: u64,
    /// Time of the last write.
    pub(crate) updated: u64,
    pub(crate) version: u64,
    pub(crate) expiry: Option<Box<ExpiryState>>,
    /// Dependencies, stale grace, source last-modified: only entries using them pay.
    pub(crate) extras: Option<Box<Extras<K>>>,
}

/// Invalidation-model state of an entry, boxed because most entries have none. (Tags are not
/// here: the entry's tag set id is in its hot part.)
#[derive(Debug)]
pub(crate) struct Extras<K> {
    /// Keys this entry depends on.
    pub(crate) deps: Option<Box<[K]>>,
    /// How long past its deadline the entry is kept for stale reads (nanoseconds).
    pub(crate) grace: u64,
    /// The source's last-modified time of the value, if the writer gave one.
    pub(crate) last_modified: Option<u64>,
}

impl<K> Extras<K> {
    /// Extras with nothing in them yet.
    pub(crate) fn empty() -> Self {
        Extras {
            deps: None,
            grace: 0,
            last_modified: None,
        }
    }
}

impl<K> Default for EntryMeta<K> {
    fn default() -> Self {
        EntryMeta {
            last_access: AtomicU64::new(0),
            created: 0,
            updated: 0,
            version: 0,
            expiry: None,
            extras: None,
        }
    }
}

impl<K> EntryMeta<K> {
    /// Records a read at `now`: access time, and sliding/adaptive deadline moves.
    pub(crate) fn record_read<V>(&self, entry: &Entry<K, V>, now: u64) {
        if self.last_access.load(Ordering::Relaxed) < now {
            self.last_access.store(now, Ordering::Relaxed);
        }
        if let Some(state) = &self.expiry {
            if let Some(d) = state.on_read(now, self.updated) {
                crate::expiry::extend(&entry.deadline, d);
            }
        }
    }

    pub(crate) fn metadata<V>(&self, entry: &Entry<K, V>, now: Timestamp) -> EntryMetadata {
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
            last_modified: Timestamp(
                self.extras
                    .as_ref()
                    .and_then(|x| x.last_modified)
                    .unwrap_or(self.updated),
            ),
            expired_for: None,
        }
    }

    pub(crate) fn early_refresh(&self) -> Option<EarlyRefresh> {
        self.expiry.as_ref().and_then(|e| e.early_refresh)
    }

    pub(crate) fn grace(&self) -> u64 {
        self.extras.as_ref().map_or(0, |x| x.grace)
    }

    pub(crate) fn deps(&self) -> Option<&[K]> {
        self.extras.as_ref().and_then(|x| x.deps.as_deref())
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
    /// When the source last modified the value: what the writer passed with
    /// [`InsertOptions::last_modified`], else the time of the write.
    pub last_modified: Timestamp,
    /// For a stale read ([`crate::Cache::get_stale`]): how long ago the entry expired. `None`
    /// for a fresh entry.
    pub expired_for: Option<Duration>,
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
///
/// `K` is the cache's key type (for [`Self::depends_on`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertOptions<K> {
    /// TTL strategy for this entry (default: the cache's [`crate::expiry::ExpiryPolicy`]).
    pub ttl: Option<Ttl>,
    /// Jitter fraction for this entry's TTL.
    pub jitter: Option<f64>,
    /// Early-refresh parameters for this entry.
    pub early_refresh: Option<EarlyRefresh>,
    /// An external version (row version, LSN, timestamp). Without it the engine counts writes.
    pub version: Option<u64>,
    /// Keep the entry's current deadline if it exists (Redis `SET ... KEEPTTL`).
    pub keep_ttl: bool,
    /// Tags of the entry (hierarchical on `:`).
    pub tags: Vec<String>,
    /// Keys the entry depends on: when one goes, this entry goes.
    pub depends_on: Vec<K>,
    /// Keep the entry this long past its deadline for stale reads.
    pub retain_stale: Option<Duration>,
    /// The source's last-modified time of the value.
    pub last_modified: Option<Timestamp>,
    /// Write only if this holds.
    pub condition: Option<WriteCondition>,
    /// Who asked for the write, for the key's history ([`crate::CacheBuilder::history`]).
    pub origin: Option<Arc<Origin>>,
}

impl<K> Default for InsertOptions<K> {
    fn default() -> Self {
        InsertOptions {
            ttl: None,
            jitter: None,
            early_refresh: None,
            version: None,
            keep_ttl: false,
            tags: Vec::new(),
            depends_on: Vec::new(),
            retain_stale: None,
            last_modified: None,
            condition: None,
            origin: None,
        }
    }
}

impl<K> InsertOptions<K> {
    /// The same options with the dependency keys turned into another key type by `f`, for a
    /// caller that builds options from names and stores keys in another form.
    pub fn map_keys<J>(self, f: impl FnMut(K) -> J) -> InsertOptions<J> {
        InsertOptions {
            ttl: self.ttl,
            jitter: self.jitter,
            early_refresh: self.early_refresh,
            version: self.version,
            keep_ttl: self.keep_ttl,
            tags: self.tags,
            depends_on: self.depends_on.into_iter().map(f).collect(),
            retain_stale: self.retain_stale,
            last_modified: self.last_modified,
            condition: self.condition,
            origin: self.origin,
        }
    }

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

    /// Adds a tag. Levels are separated by `:`; invalidating `user:42` also invalidates
    /// entries tagged `user:42:profile`.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds several tags.
    pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Adds a dependency: when `key` is invalidated, replaced, removed, expires or is evicted,
    /// this entry is invalidated too (transitively).
    pub fn depends_on(mut self, key: K) -> Self {
        self.depends_on.push(key);
        self
    }

    /// Keeps the entry for `grace` past its deadline, readable only through
    /// [`crate::Cache::get_stale`] (stale-while-revalidate, stale-if-error).
    pub fn retain_stale(mut self, grace: Duration) -> Self {
        self.retain_stale = Some(grace);
        self
    }

    /// The source's last-modified time of the value (for [`crate::Cache::is_fresh`]).
    pub fn last_modified(mut self, at: Timestamp) -> Self {
        self.last_modified = Some(at);
        self
    }

    /// Writes only if `condition` holds (see [`WriteCondition`]).
    pub fn condition(mut self, condition: WriteCondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Names who asked for the write, for the key's history (shared, so a client's origin is
    /// built once and not per write).
    pub fn origin(mut self, origin: Arc<Origin>) -> Self {
        self.origin = Some(origin);
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
        assert_eq!(size_of::<EntryMeta<u64>>(), 48);
        assert!(
            size_of::<ExpiryState>() <= 104,
            "{}",
            size_of::<ExpiryState>()
        );
    }
}

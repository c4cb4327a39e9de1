//! What the engine stores per key, what callers pass with an insert, and what they get back.
//!
//! An entry is one record in its shard's slot vector: key, value, and the facts every entry
//! has (hash, deadline, version, write time, creation and access times to the second, weight,
//! hit counter, tag set id), packed into 48 bytes beside the payload. State only some entries
//! need (sliding/adaptive TTL bookkeeping and early refresh; dependencies, stale grace, source
//! last-modified) is a `Rare` kept in a map beside the slots, keyed by slot, and flagged in
//! the entry, so a plain entry pays nothing for it, not even a pointer.

use crate::clock::Timestamp;
use crate::expiry::{EarlyRefresh, ExpiryState, KeyTtl, NEVER, Ttl};
use crate::history::Origin;
use crate::sync::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use crate::version::WriteCondition;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Saturation point of the per-entry hit counter: beyond it a read writes nothing, so hot
/// entries read from several cores stop bouncing their cache line.
pub(crate) const MAX_HITS: u8 = 7;

/// Largest tag set id an entry can hold: the top bit of its three bytes flags rare state.
pub(crate) const MAX_TAGSET: u32 = (1 << 23) - 1;

/// Bit of the tag set bytes' last byte that says the entry has a [`Rare`] in its shard's map.
const RARE_FLAG: u8 = 0x80;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Whole seconds of a timeline instant, as the entry stores creation and access times
/// (saturating in 2106).
fn secs(at: u64) -> u32 {
    u32::try_from(at / NANOS_PER_SEC).unwrap_or(u32::MAX)
}

/// An entry as its shard stores it. The read path touches the key, value, deadline, hit
/// counter and tag set, which come first and together (`repr(C)` keeps that order: a read then
/// touches one cache line where the payload is small); the rest is read by writes and metadata
/// queries.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// Absolute deadline in clock nanoseconds; [`NEVER`] for none. Atomic because reads may
    /// extend it (sliding, adaptive).
    pub(crate) deadline: AtomicU64,
    /// Hits since the eviction policy last looked (saturating at [`MAX_HITS`]).
    pub(crate) hits: AtomicU8,
    /// The entry's tag set in its shard's tag index (0: untagged) in the low 23 bits, in three
    /// bytes beside the deadline, so a read checks tags without leaving the entry's cache
    /// line; the top bit is [`RARE_FLAG`].
    tagset: [u8; 3],
    /// Whole second of the first insert of this key (kept across replacements), plus one: never
    /// zero, which gives `Option<Entry>` a niche so an empty slot costs no tag byte.
    created: NonZeroU32,
    pub(crate) hash: u64,
    pub(crate) version: u64,
    /// Time of the last write (nanoseconds).
    pub(crate) updated: u64,
    /// Whole second of the last timed read (reads of entries with a deadline consult the
    /// clock; others do not). Stored at second resolution so a read writes it at most once a
    /// second, and so it takes four bytes.
    accessed: AtomicU32,
    pub(crate) weight: u32,
}

impl<K, V> Entry<K, V> {
    /// An untagged entry written at `now` (see [`Self::set_tagset`]).
    pub(crate) fn new(
        key: K,
        value: V,
        hash: u64,
        deadline: u64,
        weight: u32,
        version: u64,
        now: u64,
    ) -> Self {
        Entry {
            key,
            value,
            hash,
            deadline: AtomicU64::new(deadline),
            version,
            updated: now,
            created: NonZeroU32::MIN.saturating_add(secs(now)),
            accessed: AtomicU32::new(secs(now)),
            weight,
            hits: AtomicU8::new(0),
            tagset: [0; 3],
        }
    }

    /// The entry's tag set (0: untagged).
    #[inline]
    pub(crate) fn tagset(&self) -> u32 {
        u32::from_le_bytes([
            self.tagset[0],
            self.tagset[1],
            self.tagset[2] & !RARE_FLAG,
            0,
        ])
    }

    pub(crate) fn set_tagset(&mut self, set: u32) {
        debug_assert!(set <= MAX_TAGSET);
        let [a, b, c, _] = set.to_le_bytes();
        self.tagset = [a, b, (c & !RARE_FLAG) | (self.tagset[2] & RARE_FLAG)];
    }

    /// Whether the entry has a [`Rare`] in its shard's map.
    #[inline]
    pub(crate) fn has_rare(&self) -> bool {
        self.tagset[2] & RARE_FLAG != 0
    }

    pub(crate) fn set_has_rare(&mut self, has: bool) {
        if has {
            self.tagset[2] |= RARE_FLAG;
        } else {
            self.tagset[2] &= !RARE_FLAG;
        }
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

    /// Records a write at `now` of a new value in place of the old: new version and write
    /// time, access time reset, creation time kept.
    pub(crate) fn record_write(&mut self, version: u64, now: u64) {
        self.version = version;
        self.updated = now;
        self.accessed.store(secs(now), Ordering::Relaxed);
    }

    /// Records a timed read at `now`: the access time, and sliding/adaptive deadline moves
    /// (`rare` is the entry's rare state, if it has some).
    pub(crate) fn record_read<Q>(&self, rare: Option<&Rare<Q>>, now: u64) {
        let s = secs(now);
        if self.accessed.load(Ordering::Relaxed) < s {
            self.accessed.store(s, Ordering::Relaxed);
        }
        if let Some(state) = rare.and_then(|r| r.expiry.as_deref()) {
            if let Some(d) = state.on_read(now, self.updated) {
                crate::expiry::extend(&self.deadline, d);
            }
        }
    }

    /// Time of the first insert, to the second.
    pub(crate) fn created(&self) -> u64 {
        u64::from(self.created.get() - 1) * NANOS_PER_SEC
    }

    /// Time of the last timed read or write: the write's exact time, or a later read's second.
    pub(crate) fn last_access(&self) -> u64 {
        (u64::from(self.accessed.load(Ordering::Relaxed)) * NANOS_PER_SEC).max(self.updated)
    }

    pub(crate) fn metadata<Q>(&self, rare: Option<&Rare<Q>>, now: Timestamp) -> EntryMetadata {
        let deadline = self.deadline();
        let extras = rare.and_then(|r| r.extras.as_deref());
        EntryMetadata {
            ttl: crate::expiry::remaining(deadline, now),
            expires_at: (deadline != NEVER).then_some(Timestamp(deadline)),
            version: self.version,
            created: Timestamp(self.created()),
            updated: Timestamp(self.updated),
            last_access: Timestamp(self.last_access()),
            weight: self.weight,
            refresh: false,
            last_modified: Timestamp(extras.and_then(|x| x.last_modified).unwrap_or(self.updated)),
            expired_for: None,
        }
    }
}

/// State only some entries have, kept in a map beside the slots so plain entries pay nothing.
#[derive(Debug)]
pub(crate) struct Rare<K> {
    /// Sliding/adaptive TTL bookkeeping and early refresh.
    pub(crate) expiry: Option<Box<ExpiryState>>,
    /// Dependencies, stale grace, source last-modified.
    pub(crate) extras: Option<Box<Extras<K>>>,
}

impl<K> Rare<K> {
    pub(crate) fn is_empty(&self) -> bool {
        self.expiry.is_none() && self.extras.is_none()
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

/// Invalidation-model state of an entry, boxed because most entries have none. (Tags are not
/// here: the entry's tag set id is in the entry.)
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
    /// When the key was first inserted (kept across replacements), to the second: the start
    /// of the second it was inserted in.
    pub created: Timestamp,
    /// When the value was last written.
    pub updated: Timestamp,
    /// When the entry was last read or written: the exact time of the write, or the start of
    /// the second of a later read. Reads of entries with a deadline count; for entries without
    /// one the read path does not consult the clock (it is the hot path), so the value is the
    /// time of the write or of the last read of the entry that did.
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

    /// An entry costs 48 bytes beside its payload and an empty slot no more than a full one
    /// (the niche in `created`): the crate docs quote these sizes.
    #[test]
    fn entry_layout_matches_the_documented_overhead() {
        assert_eq!(size_of::<Option<Entry<u64, u64>>>(), 64);
        assert_eq!(size_of::<Option<Entry<[u8; 16], [u8; 32]>>>(), 96);
        assert_eq!(size_of::<Rare<u64>>(), 16);
        assert!(
            size_of::<ExpiryState>() <= 104,
            "{}",
            size_of::<ExpiryState>()
        );
    }

    #[test]
    fn times_keep_the_second_and_the_rare_flag_leaves_the_tag_set_alone() {
        let t = 5 * NANOS_PER_SEC + 300;
        let mut e = Entry::new(1u64, 2u64, 3, NEVER, 1, 1, t);
        e.set_tagset(MAX_TAGSET);
        assert_eq!(e.created(), 5 * NANOS_PER_SEC);
        assert_eq!(e.last_access(), t, "the write's exact time");
        e.record_read::<u64>(None, t + 2 * NANOS_PER_SEC);
        assert_eq!(e.last_access(), 7 * NANOS_PER_SEC);
        e.set_has_rare(true);
        assert_eq!(e.tagset(), MAX_TAGSET);
        assert!(e.has_rare());
        e.set_tagset(5);
        assert!(e.has_rare());
        assert_eq!(e.tagset(), 5);
        e.set_has_rare(false);
        assert_eq!(e.tagset(), 5);
        e.record_write(2, 9 * NANOS_PER_SEC);
        assert_eq!(e.created(), 5 * NANOS_PER_SEC, "kept across writes");
        assert_eq!((e.version, e.last_access()), (2, 9 * NANOS_PER_SEC));
    }
}

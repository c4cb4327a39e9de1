//! Versions: conditional writes, version floors, ETags and freshness checks.
//!
//! Every entry has a version: the writer's own (a row version, an LSN, a timestamp, passed with
//! [`crate::InsertOptions::version`]) or, without one, a counter the engine bumps on every
//! write. Writes can be made conditional on it ([`WriteCondition`]); a *floor* set on a key
//! prefix or a tag declares everything below it stale, removing what is stored and refusing
//! older writes from then on. Prefix floors are checked on insert against a short list (their
//! number is expected to be small); tag floors live in the tag nodes and are checked like tag
//! invalidations.
//!
//! A *fence* is a floor on one key that lasts a hold time ([`crate::Cache::fence`]): change
//! capture sets one at the new row version when it invalidates the key, so a fill or versioned
//! write carrying an older version, read before the change and arriving after its invalidation,
//! is refused ([`RejectReason::Fenced`]) whatever the timing, not only when a lease catches it.
//! Fences live in the key's shard and are checked under its lock, like the write itself; they
//! are forgotten once their hold time passes, so their number is bounded by the invalidation
//! rate times the hold time.
//!
//! ETags are computed from the value on demand (a 128-bit content hash with fixed keys, so the
//! same value always yields the same tag, across processes and restarts): no memory per entry.

use crate::sync::{AtomicBool, Ordering, RwLock};
use hashbrown::HashTable;
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// When a write may proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteCondition {
    /// Only if the key has no live entry (Redis `SET NX`).
    IfAbsent,
    /// Only if the key has a live entry (Redis `SET XX`).
    IfPresent,
    /// Only if the write's version ([`crate::InsertOptions::version`]) is greater than the
    /// stored entry's; a missing entry accepts any version.
    IfNewer,
    /// Compare-and-set: only if a live entry with exactly this version exists.
    IfVersion(u64),
}

/// A write that went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The key had no live entry.
    New,
    /// A live entry was replaced.
    Replaced,
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// [`WriteCondition::IfAbsent`], and the key exists.
    Exists,
    /// [`WriteCondition::IfPresent`] or [`WriteCondition::IfVersion`], and the key is missing.
    Missing,
    /// [`WriteCondition::IfNewer`], and the stored version is the same or newer.
    NotNewer,
    /// [`WriteCondition::IfVersion`], and the stored version differs.
    VersionMismatch,
    /// The version is below a floor set for the key's prefix or one of its tags.
    BelowFloor,
    /// The lease is unknown, expired, already used, or was revoked by a write or removal of the
    /// key.
    LeaseInvalid,
    /// A tag, ancestor tag or dependency of the fill was invalidated after the lease was issued.
    InvalidatedSinceLease,
    /// A tag name is malformed (empty level).
    BadTag,
    /// The write's version is below a fence set on the key ([`crate::Cache::fence`]) within
    /// the fence's hold time: it carries data older than an applied invalidation.
    Fenced,
}

/// A refused write, with the stored version when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub reason: RejectReason,
    /// Version of the live entry, if any.
    pub current_version: Option<u64>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write rejected: {:?}", self.reason)?;
        if let Some(v) = self.current_version {
            write!(f, " (stored version {v})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

impl Rejected {
    pub(crate) fn new(reason: RejectReason, current_version: Option<u64>) -> Self {
        Rejected {
            reason,
            current_version,
        }
    }
}

/// A strong entity tag: a hash of the value's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ETag(pub u128);

impl ETag {
    /// The tag of `value`.
    pub fn of<V: Hash + ?Sized>(value: &V) -> ETag {
        let a = foldhash::quality::FixedState::with_seed(0x4554_6167_0001).hash_one(value);
        let b = foldhash::quality::FixedState::with_seed(0x4554_6167_0002).hash_one(value);
        ETag((u128::from(a) << 64) | u128::from(b))
    }

    /// Parses the HTTP form (`"` + 32 hex digits + `"`, quotes optional).
    pub fn parse(s: &str) -> Option<ETag> {
        let s = s.trim().trim_matches('"');
        if s.len() != 32 {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(ETag)
    }
}

impl fmt::Display for ETag {
    /// The HTTP form: a quoted strong tag.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{:032x}\"", self.0)
    }
}

/// Outcome of a conditional read ([`crate::Cache::get_if_none_match`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Conditional<V> {
    /// The caller's tag matches the stored value (HTTP 304).
    NotModified(ETag),
    /// The stored value differs from the caller's tag; here it is with its tag.
    Modified(V, ETag),
    /// No live entry.
    Missing,
}

/// Version floors on key prefixes.
#[derive(Debug, Default)]
pub(crate) struct PrefixFloors {
    any: AtomicBool,
    floors: RwLock<Vec<(Box<[u8]>, u64)>>,
}

impl PrefixFloors {
    /// Raises the floor of `prefix` to `floor`.
    pub(crate) fn set(&self, prefix: &[u8], floor: u64) {
        let mut floors = self.floors.write();
        match floors.iter_mut().find(|(p, _)| &**p == prefix) {
            Some((_, f)) => *f = (*f).max(floor),
            None => floors.push((prefix.into(), floor)),
        }
        self.any.store(true, Ordering::Release);
    }

    /// The highest floor whose prefix `key` starts with (0: none).
    pub(crate) fn floor_for(&self, key: &[u8]) -> u64 {
        if !self.any.load(Ordering::Acquire) {
            return 0;
        }
        self.floors
            .read()
            .iter()
            .filter(|(p, _)| key.starts_with(p))
            .map(|&(_, f)| f)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }
}

/// One key's fence.
#[derive(Debug)]
struct Fence<K> {
    key: K,
    hash: u64,
    version: u64,
    expires: u64,
}

/// The fences of one shard's keys, under the shard's lock.
#[derive(Debug)]
pub(crate) struct Fences<K> {
    table: HashTable<Fence<K>>,
}

impl<K> Default for Fences<K> {
    fn default() -> Self {
        Fences {
            table: HashTable::new(),
        }
    }
}

impl<K: Eq> Fences<K> {
    /// Raises `key`'s fence to `version` (fences only rise) until at least `expires`.
    pub(crate) fn raise(&mut self, hash: u64, key: K, version: u64, expires: u64) {
        match self.table.find_mut(hash, |f| f.key == key) {
            Some(f) => {
                f.version = f.version.max(version);
                f.expires = f.expires.max(expires);
            }
            None => {
                self.table.insert_unique(
                    hash,
                    Fence {
                        key,
                        hash,
                        version,
                        expires,
                    },
                    |f| f.hash,
                );
            }
        }
    }

    /// `key`'s fence at `now` (0: none).
    pub(crate) fn floor(&self, hash: u64, key: &K, now: u64) -> u64 {
        if self.table.is_empty() {
            return 0;
        }
        self.table
            .find(hash, |f| f.key == *key)
            .filter(|f| now < f.expires)
            .map_or(0, |f| f.version)
    }

    /// Forgets the fences whose hold time passed.
    pub(crate) fn prune(&mut self, now: u64) {
        if !self.table.is_empty() {
            self.table.retain(|f| now < f.expires);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_rise_and_lapse() {
        let mut f = Fences::default();
        assert_eq!(f.floor(1, &"a", 0), 0);
        f.raise(1, "a", 5, 100);
        f.raise(1, "a", 3, 50);
        assert_eq!(f.floor(1, &"a", 10), 5);
        assert_eq!(f.floor(1, &"b", 10), 0);
        assert_eq!(f.floor(1, &"a", 100), 0, "lapsed at its hold time");
        f.prune(99);
        assert_eq!(f.len(), 1);
        f.prune(100);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn etags_are_content_hashes_with_an_http_form() {
        let a = ETag::of("hello");
        assert_eq!(a, ETag::of(&"hello".to_string()));
        assert_ne!(a, ETag::of("hellp"));
        let s = a.to_string();
        assert_eq!(s.len(), 34);
        assert_eq!(ETag::parse(&s), Some(a));
        assert_eq!(ETag::parse("\"xyz\""), None);
    }

    #[test]
    fn prefix_floors_take_the_highest_match() {
        let f = PrefixFloors::default();
        assert_eq!(f.floor_for(b"product:1"), 0);
        f.set(b"product:", 5);
        f.set(b"product:1", 3);
        f.set(b"product:", 4);
        assert_eq!(f.floor_for(b"product:1"), 5);
        assert_eq!(f.floor_for(b"user:1"), 0);
    }
}

mod cache_impl {
    use super::{Conditional, ETag, Inserted, Rejected, WriteCondition};
    use crate::cache::Cache;
    use crate::clock::Timestamp;
    use crate::entry::InsertOptions;
    use crate::history::{Context, Matched};
    use crate::invalidate::{Applied, Invalidation};
    use crate::listener::RemovalCause;
    use crate::pattern::Glob;
    use crate::tag_registry::validate_tag;
    use std::borrow::Borrow;
    use std::hash::{BuildHasher, Hash};

    impl<K, V, S> Cache<K, V, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        /// Stores `value` at `version` unless the cached entry's version is the same or newer
        /// (an out-of-order or replayed write loses).
        pub fn insert_if_newer(
            &self,
            key: K,
            value: V,
            version: u64,
        ) -> Result<Inserted, Rejected> {
            self.try_insert(
                key,
                value,
                &InsertOptions::new()
                    .version(version)
                    .condition(WriteCondition::IfNewer),
            )
        }

        /// Compare-and-set: replaces the entry only if its version is `expected`. `options`
        /// may carry the new version; without one the engine's counter advances.
        pub fn compare_and_set(
            &self,
            key: K,
            expected: u64,
            value: V,
            options: &InsertOptions<K>,
        ) -> Result<Inserted, Rejected> {
            let options = options
                .clone()
                .condition(WriteCondition::IfVersion(expected));
            self.try_insert(key, value, &options)
        }

        /// The version of `key`'s entry, if it can be served.
        pub fn version<Q>(&self, key: &Q) -> Option<u64>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.peek(key, |shard, idx, _| shard.slots.get(idx).version)
        }

        /// Declares every entry under `tag` (or a tag below it) with a version below `floor`
        /// stale: such entries are hidden at once (and reclaimed like a tag invalidation), and
        /// writes under the tag below the floor are refused. Floors only rise.
        pub fn set_version_floor_tag(&self, tag: &str, floor: u64) -> Result<u64, crate::Error> {
            self.apply_tag_floor(tag, floor, &Context::default())
                .map(|a| a.seq)
        }

        pub(crate) fn apply_tag_floor(
            &self,
            tag: &str,
            floor: u64,
            ctx: &Context<K>,
        ) -> Result<Applied<K>, crate::Error> {
            validate_tag(tag).map_err(|m| crate::Error::new(crate::ErrorKind::InvalidTag, m))?;
            let node = self.inner.invalidation.tags.set_floor(tag, floor);
            // Reads check floors from here on. Stored entries below the floor are removed now
            // rather than lazily, so their dependents (whose own versions the floor does not
            // judge) go with them: floors are rare administrative acts, worth the pass.
            let nodes = node.subtree();
            let ctx = ctx.matching(Matched::Floor {
                on: format!("tag:{tag}"),
                version: floor,
            });
            let removed = self.remove_in_every_shard(
                &ctx,
                RemovalCause::Stale,
                |version| version < floor,
                |shard| shard.below_floor(&nodes, floor),
            );
            Ok(self.publish(Invalidation::TagFloor(tag.to_owned(), floor), Some(removed)))
        }

        /// Fences `key` at `version` for `hold`: until then, a write or fill of the key
        /// carrying an explicit version ([`InsertOptions::version`]) below `version` is refused
        /// with [`crate::version::RejectReason::Fenced`] (counted in [`crate::stats::Stats::writes_fenced`]),
        /// and a stored entry below it is removed now (cause [`RemovalCause::Stale`]). Writes
        /// without a version are not judged (leases protect those). Fences only rise; a later
        /// fence on the key extends the hold.
        ///
        /// Meant to be set with the invalidation of a change whose new version is known (a
        /// version column, a commit LSN): a reader that read the row before the change and
        /// fills after the invalidation carries an older version and is refused, whatever the
        /// timing.
        pub fn fence(&self, key: &K, version: u64, hold: std::time::Duration) {
            let hash = self.hash(key);
            let hold = u64::try_from(hold.as_nanos()).unwrap_or(u64::MAX);
            self.write(hash, |shard, now, pending| {
                shard
                    .fences
                    .raise(hash, key.clone(), version, now.saturating_add(hold));
                if let Some(idx) = shard.find_live(hash, key, now) {
                    if shard.slots.get(idx).version < version {
                        shard.discard(idx, RemovalCause::Stale, pending);
                    }
                }
            });
        }

        /// Whether the cached value is at least as recent as the source's: true when the entry
        /// was last modified (its [`InsertOptions::last_modified`], else its write time) at or
        /// after `source_last_modified`. False when the key is not cached.
        pub fn is_fresh<Q>(&self, key: &Q, source_last_modified: Timestamp) -> bool
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.peek(key, |shard, idx, _| {
                let modified = shard
                    .slots
                    .rare(idx)
                    .and_then(|r| r.extras.as_ref())
                    .and_then(|x| x.last_modified)
                    .unwrap_or(shard.slots.get(idx).updated);
                modified >= source_last_modified.0
            })
            .unwrap_or(false)
        }
    }

    impl<K, V, S> Cache<K, V, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + Hash + 'static,
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        /// The strong ETag of `key`'s value (a content hash), if it can be served. Not counted
        /// as an access.
        pub fn etag<Q>(&self, key: &Q) -> Option<ETag>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.peek(key, |shard, idx, _| ETag::of(&shard.slots.get(idx).value))
        }

        /// Conditional read (HTTP `If-None-Match`): `NotModified` when the value's tag equals
        /// `etag`, so the caller can skip the transfer. Counts as a read.
        pub fn get_if_none_match<Q>(&self, key: &Q, etag: ETag) -> Conditional<V>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            match self.get(key) {
                Some(v) => {
                    let current = ETag::of(&v);
                    if current == etag {
                        Conditional::NotModified(current)
                    } else {
                        Conditional::Modified(v, current)
                    }
                }
                None => Conditional::Missing,
            }
        }
    }

    impl<K, V, S> Cache<K, V, S>
    where
        K: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + 'static,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        /// Declares every key starting with `prefix` stale below version `floor`: stored
        /// entries below it are removed now (cause [`RemovalCause::Stale`]) and older writes
        /// are refused from now on. Floors only rise. Returns how many entries were removed.
        pub fn set_version_floor_prefix(&self, prefix: impl AsRef<[u8]>, floor: u64) -> usize {
            self.apply_prefix_floor(prefix.as_ref(), floor, &Context::default())
                .removed
                .unwrap_or(0)
        }

        pub(crate) fn apply_prefix_floor(
            &self,
            prefix: &[u8],
            floor: u64,
            ctx: &Context<K>,
        ) -> Applied<K> {
            self.key_bytes();
            self.inner.invalidation.floors.set(prefix, floor);
            let ctx = ctx.matching(Matched::Floor {
                on: format!("{}*", String::from_utf8_lossy(prefix)),
                version: floor,
            });
            let n = self.remove_matching(&ctx, &Glob::prefix(prefix), RemovalCause::Stale, |v| {
                v < floor
            });
            self.publish(Invalidation::PrefixFloor(prefix.to_vec(), floor), Some(n))
        }
    }
}

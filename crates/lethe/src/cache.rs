//! The public handle: [`Cache`], a cheap-to-clone, thread-safe view of the shards.
//!
//! Reads take a shard's read lock and touch only atomics in the entry (and, for tagged entries,
//! their tags' epochs); writes take the shard's write lock, run that shard's maintenance (expiry
//! and tag reclamation, window tuning) and eviction, and after the lock is released deliver
//! removal notifications, cascade to dependents and drop what was removed. Every hold of a
//! shard's write lock for the engine's own batched work is bounded in time, so readers spin
//! briefly for a write-locked shard (`read_lock`) instead of sleeping on it. The invalidation
//! operations live in `invalidate.rs`, versions in `version.rs`, leases in `lease.rs`: each adds
//! methods to [`Cache`] from its own file.

use crate::builder::{CacheBuilder, DefaultHashBuilder};
use crate::clock::{Clock, Timestamp, duration_nanos};
use crate::coaccess::{CoAccess, Suggestion};
use crate::deps::DepGraph;
use crate::entry::{EntryMetadata, Extras, InsertOptions, Lookup};
use crate::expiry::{ExpireCondition, ExpiryPolicy, KeyTtl, NEVER};
use crate::history::keeping::HistoryShared;
use crate::history::{Context, HistoryStats, Record, Why};
use crate::invalidate::Subscribers;
use crate::invalidation_state::InvalidationState;
use crate::listener::{Pending, RemovalCause, RemovalListener};
use crate::shard::{BULK_RECLAIM, Shard, WRITE_RECLAIM, Write};
use crate::stats::{ReadCounters, RemovalCounts, Stats};
use crate::sync::{Arc, RwLock, RwLockReadGuard};
use crate::tag_index::fingerprint;
use crate::version::{Inserted, Rejected};
use crate::weigher::Weigher;
use crossbeam_utils::CachePadded;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;
use std::time::Duration;

/// The longest a reader spins for a shard's read lock before it sleeps on it: several times the
/// longest hold of the engine's own batched work ([`crate::shard::BULK_RECLAIM`],
/// [`crate::shard::WRITE_RECLAIM`]), far below what a sleep costs on a busy machine (the lock's
/// own short spin gives way to `sched_yield` and then a futex wait, each of which can lose the
/// core for a scheduler slice, milliseconds, when other threads are runnable).
#[cfg(not(feature = "shuttle"))]
const READ_SPIN_NANOS: u64 = 50_000;

/// Takes `cell`'s read lock, spinning up to [`READ_SPIN_NANOS`] while a writer holds it (every
/// write-lock hold in the engine is bounded in time, most to a few microseconds) before falling
/// back to the lock's own wait.
#[inline]
pub(crate) fn read_lock<K, V>(cell: &ShardCell<K, V>) -> RwLockReadGuard<'_, Shard<K, V>> {
    if let Some(g) = cell.try_read() {
        return g;
    }
    read_lock_slow(cell)
}

/// Under Shuttle, a plain wait: a spin would never let the checker's scheduler run the holder.
#[cfg(feature = "shuttle")]
#[cold]
fn read_lock_slow<K, V>(cell: &ShardCell<K, V>) -> RwLockReadGuard<'_, Shard<K, V>> {
    cell.read()
}

#[cfg(not(feature = "shuttle"))]
#[cold]
fn read_lock_slow<K, V>(cell: &ShardCell<K, V>) -> RwLockReadGuard<'_, Shard<K, V>> {
    // On one core the holder cannot run while this thread spins.
    static MULTICORE: OnceLock<bool> = OnceLock::new();
    if !*MULTICORE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)) {
        return cell.read();
    }
    let clock = crate::clock::work_clock();
    let start = clock.raw();
    // Bounded by the clock; the count only guards against a clock that does not move.
    for _ in 0..100_000 {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if let Some(g) = cell.try_read() {
            return g;
        }
        if clock.delta_as_nanos(start, clock.raw()) >= READ_SPIN_NANOS {
            break;
        }
    }
    cell.read()
}

/// A shard behind its lock, padded so neighbouring shards' locks do not share a cache line.
pub(crate) type ShardCell<K, V> = RwLock<Shard<K, V>>;

pub(crate) struct Inner<K, V, S> {
    pub(crate) shards: Box<[CachePadded<ShardCell<K, V>>]>,
    pub(crate) shard_mask: usize,
    pub(crate) hasher: S,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) weigher: Box<dyn Weigher<K, V>>,
    pub(crate) listener: Option<Box<dyn RemovalListener<K, V>>>,
    pub(crate) defaults: ExpiryPolicy,
    pub(crate) capacity: u64,
    pub(crate) reads: ReadCounters,
    pub(crate) invalidation: Arc<InvalidationState>,
    pub(crate) graph: DepGraph<K>,
    /// How to see a key as bytes, once a pattern operation or the key index needed it.
    pub(crate) key_bytes: OnceLock<fn(&K) -> &[u8]>,
    pub(crate) subscribers: Subscribers<K>,
    pub(crate) lease_timeout: u64,
    pub(crate) co_access: Option<CoAccess<K>>,
    #[cfg(feature = "rules")]
    pub(crate) policies: Option<Arc<crate::rules::RuleSet>>,
    /// What the shards' histories share, when the cache keeps one.
    pub(crate) history: Option<Arc<HistoryShared>>,
}

/// A bounded, concurrent cache with per-entry expiry. See the [crate docs](crate) for the
/// eviction policy, memory overhead and examples.
///
/// `Cache` is a handle: cloning it is cheap and every clone sees the same entries.
pub struct Cache<K, V, S = DefaultHashBuilder> {
    pub(crate) inner: Arc<Inner<K, V, S>>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("shards", &self.inner.shards.len())
            .field("capacity", &self.inner.capacity)
            .field("defaults", &self.inner.defaults)
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V, DefaultHashBuilder>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A builder; at least a capacity must be set.
    pub fn builder() -> CacheBuilder<K, V, DefaultHashBuilder> {
        CacheBuilder::new()
    }

    /// A cache holding at most `entries` entries, with no expiry.
    pub fn new(entries: u64) -> Self {
        Self::builder().max_capacity(entries).build()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    pub(crate) fn from_inner(inner: Inner<K, V, S>) -> Self {
        Cache {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    pub(crate) fn cell(&self, hash: u64) -> &ShardCell<K, V> {
        #[cfg(debug_assertions)]
        crate::compute::reentry::check(self.id());
        &self.inner.shards[self.shard_index(hash)]
    }

    /// The shard a hash belongs to. Bits 32.. pick it: hashbrown uses the low bits for the
    /// bucket and the top seven for its tag, so this keeps both independent of the shard
    /// choice.
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.inner.shard_mask
    }

    /// Identifies this cache (all its handles) while it lives.
    #[cfg(debug_assertions)]
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const u8 as usize
    }

    /// The highest prefix version floor covering `key` (0: none).
    pub(crate) fn prefix_floor(&self, key: &K) -> u64 {
        match self.inner.key_bytes.get() {
            Some(bytes) if self.inner.invalidation.floors.is_active() => {
                self.inner.invalidation.floors.floor_for(bytes(key))
            }
            _ => 0,
        }
    }

    /// The boxed extras an insert with `options` needs (allocated before any lock is taken),
    /// or `None` for a plain entry.
    /// Tags live in the shard's tag sets, not here, so a tag-only insert allocates nothing.
    pub(crate) fn extras_for(&self, options: &InsertOptions<K>) -> Option<Box<Extras<K>>> {
        let deps = &options.depends_on;
        if deps.is_empty() && options.retain_stale.is_none() && options.last_modified.is_none() {
            None
        } else {
            let mut x = Extras::empty();
            x.deps = (!deps.is_empty()).then(|| deps.clone().into_boxed_slice());
            x.grace = options.retain_stale.map_or(0, duration_nanos);
            x.last_modified = options.last_modified.map(|t| t.0);
            Some(Box::new(x))
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.now().0
    }

    /// A collector for removals under a lock: kept when a listener or the dependency graph
    /// needs them.
    pub(crate) fn pending(&self) -> Pending<K, V> {
        Pending::new(self.inner.listener.is_some() || self.inner.graph.is_active())
    }

    /// Runs `f` under the write lock of the shard for `hash`, after that shard's maintenance;
    /// then handles the removals (listener, dependency cascade) with no lock held.
    pub(crate) fn write<R>(
        &self,
        hash: u64,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Pending<K, V>) -> R,
    ) -> R {
        let (result, pending) = self.write_collect(hash, f);
        self.finish(pending);
        result
    }

    /// [`Self::write`] without handling the removals: the caller passes them to
    /// [`Self::finish`].
    pub(crate) fn write_collect<R>(
        &self,
        hash: u64,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Pending<K, V>) -> R,
    ) -> (R, Pending<K, V>) {
        let cell = self.cell(hash);
        let mut pending = self.pending();
        // Read before locking to keep the critical section short; writers racing on one shard
        // may then apply times a few nanoseconds out of order, which the timer wheel and the
        // expiry checks tolerate (they compare, never subtract blindly).
        let now = self.now();
        pending.context.at = Some(Timestamp(now));
        let result = {
            let mut shard = cell.write();
            shard.maintain(now, &mut pending, WRITE_RECLAIM);
            f(&mut shard, now, &mut pending)
        };
        (result, pending)
    }

    /// Reads `key` under the read lock; `f` sees the live entry's slot. Counts a hit or miss.
    fn read<Q, R>(
        &self,
        key: &Q,
        with_time: bool,
        f: impl FnOnce(&Shard<K, V>, u32, u64) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let cell = self.cell(hash);
        let mut saw_expired = false;
        let result = {
            let shard = read_lock(cell);
            shard.find(hash, key).and_then(|idx| {
                let entry = shard.slots.get(idx);
                // Tag invalidations hide entries at once (their set is marked dead); their
                // memory is reclaimed by later writes, not by this read, so reads keep their
                // latency during a big one.
                if shard.slots.tags.dead(entry.tagset()) != 0 {
                    return None;
                }
                // The clock is read only when the entry has a deadline (or the caller wants
                // times): entries without one skip it, which keeps plain reads cheap.
                let deadline = entry.deadline();
                let now = if deadline != NEVER || with_time {
                    Some(self.now())
                } else {
                    None
                };
                if let Some(n) = now.filter(|&n| n >= deadline) {
                    // Within a stale grace the entry stays for `get_stale`.
                    saw_expired = n >= shard.slots.hard_deadline(idx);
                    return None;
                }
                entry.record_hit();
                if let Some(now) = now {
                    shard.slots.record_read(idx, now);
                }
                if let Some(co) = &self.inner.co_access {
                    co.record(&entry.key);
                }
                Some(f(&shard, idx, now.unwrap_or(0)))
            })
        };
        match result {
            Some(_) => self.inner.reads.hit(),
            None => self.inner.reads.miss(),
        }
        if saw_expired {
            // Reclaim now rather than waiting for the next write to this shard.
            self.write(hash, |_, _, _| ());
        }
        result
    }

    /// The value for `key`, if present and not expired. Counts as an access for eviction and
    /// sliding/adaptive expiry.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, false, |shard, idx, _| {
            shard.slots.get(idx).value.clone()
        })
    }

    /// The value for `key` with its metadata (remaining TTL, version, times, and whether
    /// early refresh says to refresh now).
    pub fn get_with_metadata<Q>(&self, key: &Q) -> Option<Lookup<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(key, true, |shard, idx, now| {
            let entry = shard.slots.get(idx);
            let mut metadata = shard.slots.metadata(idx, now);
            if let Some(e) = shard.slots.rare(idx).and_then(|r| r.early_refresh()) {
                metadata.refresh = e.should_refresh(now, entry.deadline(), fastrand::f64());
            }
            Lookup {
                value: entry.value.clone(),
                metadata,
            }
        })
    }

    /// The metadata of `key`'s entry (TTL, version, times), without the value; not counted as
    /// an access (for `TTL`/`EXPIRETIME`-like queries that must not keep an entry alive).
    pub fn metadata<Q>(&self, key: &Q) -> Option<EntryMetadata>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |shard, idx, now| shard.slots.metadata(idx, now))
    }

    /// The value for `key` without counting an access (no hit, no recency, no sliding-TTL
    /// extension): for inspection and administration.
    pub fn peek_value<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |shard, idx, _| shard.slots.get(idx).value.clone())
    }

    /// Whether `key` is present and not expired; not counted as an access.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |_, _, _| ()).is_some()
    }

    /// Runs `f` on `key`'s entry under its shard's read lock, if the entry can be served (with
    /// the time it was judged at). Not counted as an access.
    pub(crate) fn peek<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&Shard<K, V>, u32, u64) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = read_lock(self.cell(hash));
        let now = self.now();
        let idx = shard.find_live(hash, key, now)?;
        Some(f(&shard, idx, now))
    }

    /// Inserts or replaces `key` with the cache's default expiry.
    pub fn insert(&self, key: K, value: V) {
        // Without options nothing can refuse the write.
        let _ = self.try_insert(key, value, &InsertOptions::default());
    }

    /// Inserts or replaces `key` with per-entry options. Returns `true` if a live entry was
    /// replaced, `false` if the key was new or the write was refused (see [`Self::try_insert`]
    /// for the reason).
    pub fn insert_with_options(&self, key: K, value: V, options: &InsertOptions<K>) -> bool {
        matches!(self.try_insert(key, value, options), Ok(Inserted::Replaced))
    }

    /// Inserts or replaces `key` with per-entry options, or says why the write was refused: a
    /// [`crate::version::WriteCondition`], a version floor, or a malformed tag.
    pub fn try_insert(
        &self,
        key: K,
        value: V,
        options: &InsertOptions<K>,
    ) -> Result<Inserted, Rejected> {
        self.store(key, value, options, None)
    }

    /// The write path shared by inserts and lease fills.
    pub(crate) fn store(
        &self,
        key: K,
        value: V,
        options: &InsertOptions<K>,
        lease: Option<crate::lease::Grant>,
    ) -> Result<Inserted, Rejected> {
        let hash = self.hash(&key);
        let weight = self.inner.weigher.weigh(&key, &value);
        let defaults = &self.inner.defaults;
        let floor = self.prefix_floor(&key);
        let deps = &options.depends_on;
        // Linked before the entry is visible, so a dependency removed meanwhile finds it.
        let linked = if deps.is_empty() {
            Vec::new()
        } else {
            self.inner.graph.link(&key, deps)
        };
        // The entry carries its dependencies' tags, so invalidating one of those tags hides it
        // at the same instant as the dependency (tag invalidations are lazy, the cascade that
        // follows reclamation would come late).
        let mut inherited = Vec::new();
        for d in deps {
            if *d == key {
                continue;
            }
            let h = self.hash(d);
            let shard = self.cell(h).read();
            if let Some(idx) = shard.find_live(h, d, self.now()) {
                shard.tag_names(idx, true, &mut inherited);
            }
        }
        let key_for_deps = (!deps.is_empty() || self.inner.graph.is_active()).then(|| key.clone());
        let tag_fp = if options.tags.is_empty() && inherited.is_empty() {
            0
        } else {
            fingerprint(
                options
                    .tags
                    .iter()
                    .map(|t| (t.as_str(), false))
                    .chain(inherited.iter().map(|t| (t.as_str(), true))),
            )
        };
        // Allocated here, not under the shard lock.
        let extras = self.extras_for(options);
        let (result, mut pending) = self.write_collect(hash, |shard, now, pending| {
            pending.context.origin.clone_from(&options.origin);
            let w = Write {
                now,
                weight,
                options,
                defaults,
                tags: &options.tags,
                inherited: &inherited,
                tag_fp,
                floor,
                lease,
                extras,
            };
            shard.insert(hash, key, value, w, pending)
        });
        if let Some(key) = &key_for_deps {
            // The previous entry of this key (replaced, or reclaimed on the way): unlink the
            // dependencies the new entry does not share, and keep finish() from unlinking the
            // shared ones.
            let keep: &[K] = if result.is_ok() { deps } else { &[] };
            for r in pending.items.iter_mut() {
                if r.key == *key {
                    if let Some(old) = r.deps.take() {
                        self.inner.graph.unlink(key, &old, keep);
                    }
                }
            }
            if result.is_err() && !linked.is_empty() {
                // Take back only the edges this write added: the stored entry keeps its own.
                self.inner.graph.unlink(key, &linked, &[]);
            }
        }
        self.finish(pending);
        if result.is_ok()
            && self.inner.graph.is_active()
            && (!options.tags.is_empty() || !inherited.is_empty())
        {
            if let Some(key) = &key_for_deps {
                self.propagate_tags(key, &options.tags, &inherited);
            }
        }
        result
    }

    /// Entries stored earlier that depend (transitively) on a key just written with tags now
    /// carry those tags too: invalidating one of them from now on must take them along.
    fn propagate_tags(&self, key: &K, tags: &[String], inherited: &[String]) {
        let names: Vec<String> = tags.iter().chain(inherited).cloned().collect();
        for d in self.inner.graph.transitive_dependents(key) {
            let h = self.hash(&d);
            let now = self.now();
            self.cell(h).write().inherit_tags(h, &d, &names, now);
        }
    }

    /// Removes `key`, returning its value if it was present and not expired.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_with_cause(key, RemovalCause::Explicit)
    }

    /// Removes `key` under `cause`, handling the removal (listener, cascade) before returning.
    pub(crate) fn remove_with_cause<Q>(&self, key: &Q, cause: RemovalCause) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_in_context(key, cause, &Context::default())
    }

    /// [`Self::remove_with_cause`], with what the removal matched and who asked, for the
    /// history.
    pub(crate) fn remove_in_context<Q>(
        &self,
        key: &Q,
        cause: RemovalCause,
        ctx: &Context<K>,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let (removed, mut pending) = self.write_collect(hash, |shard, now, pending| {
            pending.context.clone_from(ctx);
            shard.remove(hash, key, now, pending, cause)
        });
        // A fill depending on a key that was not even cached must still see this.
        self.inner.invalidation.log_removal(hash);
        let removed = removed.map(|r| {
            let value = r.value.clone();
            pending.collect = true;
            pending.push(r.key, r.value, r.cause, r.deps);
            value
        });
        self.finish(pending);
        removed
    }

    /// `key`'s recent history, newest first: writes, changes in place and removals with their
    /// causes, what they matched and who asked. Empty when history is off
    /// ([`crate::CacheBuilder::history`]) or nothing about the key is kept. A pure read: a key
    /// hidden by a tag but not yet reclaimed still shows its last write as the newest record
    /// ([`Self::why`] reclaims it first).
    pub fn history(&self, key: &K) -> Vec<Record<K>> {
        if self.inner.history.is_none() {
            return Vec::new();
        }
        let hash = self.hash(key);
        let shard = read_lock(self.cell(hash));
        let live = shard.find(hash, key);
        shard
            .history
            .as_ref()
            .map(|h| h.of(live, hash, key))
            .unwrap_or_default()
    }

    /// Reclaims `key` now if it is stored but can no longer be served (hidden by a tag,
    /// expired past any stale grace), so that its history ends with the removal and what it
    /// matched, not with a write that no read would return. Otherwise a hidden entry waits for
    /// a later write to its shard to reclaim it.
    fn reclaim_if_dead(&self, hash: u64, key: &K) {
        let now = self.now();
        let dead = {
            let shard = read_lock(self.cell(hash));
            shard
                .find(hash, key)
                .is_some_and(|idx| shard.slots.reclaimable(idx, now).is_some())
        };
        if dead {
            self.write(hash, |shard, now, pending| {
                if let Some(idx) = shard.find(hash, key) {
                    if let Some(cause) = shard.slots.reclaimable(idx, now) {
                        shard.discard(idx, cause, pending);
                    }
                }
            });
        }
    }

    /// Why `key` is or is not cached: its history and, when it is cached, what keeps it there
    /// (time left, tags, dependencies, version). A stored entry that can no longer be served
    /// is reclaimed first, so the history shows why it went.
    pub fn why(&self, key: &K) -> Why<K> {
        self.reclaim_if_dead(self.hash(key), key);
        let history = self.history(key);
        let state = self.peek(key, |shard, idx, _| {
            let mut tags = Vec::new();
            shard.tag_names(idx, false, &mut tags);
            (
                tags,
                shard
                    .slots
                    .rare(idx)
                    .and_then(|r| r.deps())
                    .map(<[K]>::to_vec)
                    .unwrap_or_default(),
                shard.slots.get(idx).version,
            )
        });
        let ttl = match self.ttl(key) {
            KeyTtl::Expires(d) => Some(d),
            _ => None,
        };
        match state {
            Some((tags, dependencies, version)) => Why {
                cached: true,
                ttl,
                tags,
                dependencies,
                version: Some(version),
                history,
            },
            None => Why {
                cached: false,
                ttl: None,
                tags: Vec::new(),
                dependencies: Vec::new(),
                version: None,
                history,
            },
        }
    }

    /// What the history holds, when it is on.
    pub fn history_stats(&self) -> Option<HistoryStats> {
        let shared = self.inner.history.as_ref()?;
        let mut stats = HistoryStats {
            budget: shared.config.memory_budget,
            ..HistoryStats::default()
        };
        for cell in self.inner.shards.iter() {
            if let Some(h) = &read_lock(cell).history {
                h.add_stats(&mut stats);
            }
        }
        Some(stats)
    }

    /// Sets the remaining time to live of a live entry, subject to `cond` (Redis `EXPIRE` with
    /// NX/XX/GT/LT). A zero duration removes the entry, reported as expired. Returns whether the
    /// TTL was set.
    pub fn expire<Q>(&self, key: &Q, ttl: Duration, cond: ExpireCondition) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.write(hash, |shard, now, pending| {
            // Clamped below the "no deadline" sentinel: a huge TTL is still a TTL.
            let deadline = now.saturating_add(duration_nanos(ttl)).min(NEVER - 1);
            shard.expire(hash, key, deadline, cond, now, pending)
        })
    }

    /// Sets an absolute deadline (Redis `EXPIREAT`/`PEXPIREAT`); a time in the past removes the
    /// entry, reported as expired.
    pub fn expire_at<Q>(&self, key: &Q, at: Timestamp, cond: ExpireCondition) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.write(hash, |shard, now, pending| {
            shard.expire(hash, key, at.0.min(NEVER - 1), cond, now, pending)
        })
    }

    /// Removes the deadline of a live entry (Redis `PERSIST`). True if it had one.
    pub fn persist<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.write(hash, |shard, now, _| shard.persist(hash, key, now))
    }

    /// Remaining lifetime of `key`, distinguishing missing keys from keys without a TTL (Redis
    /// `TTL`/`PTTL`: -2 and -1). Not counted as an access.
    pub fn ttl<Q>(&self, key: &Q) -> KeyTtl
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |shard, idx, now| {
            crate::expiry::remaining(shard.slots.get(idx).deadline(), Timestamp(now))
        })
        .unwrap_or(KeyTtl::Missing)
    }

    /// Entries stored, including expired ones and ones hidden by a tag invalidation that are
    /// not yet reclaimed ([`Self::run_pending_tasks`] reclaims them).
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|c| c.read().len()).sum()
    }

    /// Whether no entries are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the stored entries.
    pub fn weighted_size(&self) -> u64 {
        self.inner.shards.iter().map(|c| c.read().weight()).sum()
    }

    /// The capacity (entries, or weight units for a weighted cache).
    pub fn capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// Bytes the engine itself spends per entry besides the heap memory its key and value own:
    /// the slot (holding the key, value and metadata inline), the eviction policy's
    /// links and the hash table's share (at a typical load). For weighers that count memory.
    /// Tags, dependencies, non-fixed TTLs and the key index cost more (see the crate docs).
    pub fn entry_overhead() -> usize {
        // Policy ring links: two u32 (the region in a top bit).
        const POLICY_LINKS: usize = 8;
        // A u32 slot index and a control byte per bucket, at about 3/4 load.
        const TABLE_SHARE: usize = 7;
        std::mem::size_of::<Option<crate::entry::Entry<K, V>>>() + POLICY_LINKS + TABLE_SHARE
    }

    /// The heaviest entry the cache accepts: one shard's share of the capacity (the capacity is
    /// split evenly across shards, and each shard enforces its share). Heavier entries are
    /// refused and reported as evicted.
    pub fn max_entry_weight(&self) -> u64 {
        self.inner.capacity / self.inner.shards.len() as u64
    }

    /// The cache's clock.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// Removes every entry; each is reported to the listener as an explicit removal.
    pub fn clear(&self) {
        for cell in self.inner.shards.iter() {
            let mut pending = self.pending();
            {
                let mut shard = cell.write();
                let now = self.now();
                shard.clear(now, &mut pending);
            }
            self.finish(pending);
        }
    }

    /// Reclaims expired entries and entries hidden by tag invalidations in every shard now.
    /// Never needed for correctness (such entries are never returned, and writes reclaim them
    /// as they go); useful before reading `len` or stats, or in an idle cache whose removal
    /// listener should hear about expiries and invalidations promptly.
    ///
    /// A reader never waits long behind it: each shard's lock is held for at most 64 entries
    /// or 5 µs of work, no large block is allocated or freed under it
    /// (keys, values and freed tag sets' member lists are dropped, and the listener called,
    /// after the lock is released), and the shards are visited in turn.
    pub fn run_pending_tasks(&self) {
        let mut busy: Vec<usize> = (0..self.inner.shards.len()).collect();
        while !busy.is_empty() {
            let mut progress = false;
            busy.retain(|&i| {
                let mut pending = self.pending();
                // Allocated before the lock, not while pushing under it: a large request can
                // make the allocator consolidate every small chunk freed so far (see
                // [`crate::tag_index`]), which after a big invalidation takes milliseconds.
                pending.items.reserve(BULK_RECLAIM.entries);
                let mut free_list_growth = None;
                if let Some(shard) = self.inner.shards[i].try_read() {
                    std::hint::black_box(shard.warm_reclaim(BULK_RECLAIM.entries));
                    free_list_growth = shard.free_list_growth(BULK_RECLAIM.entries);
                }
                // The same for the shard's list of free slots, which every removal pushes to;
                // its pages touched here too, so that filling it under the lock faults none.
                let mut free_list = free_list_growth.map(|n| {
                    // Written, not `vec![0; n]`, which may map fresh zero pages untouched.
                    let mut v: Vec<u32> = Vec::with_capacity(n);
                    v.extend(0..n as u32);
                    v.clear();
                    v
                });
                let more = {
                    // A shard in use is left for the next round rather than waited for: the
                    // reclaiming thread never sleeps on a lock, so it never wakes holding one
                    // after readers queued behind it.
                    let Some(mut shard) = self.inner.shards[i].try_write() else {
                        return true;
                    };
                    progress = true;
                    if let Some(bigger) = free_list.take() {
                        free_list = Some(shard.install_free_list(bigger, BULK_RECLAIM.entries));
                    }
                    shard.maintain(self.now(), &mut pending, BULK_RECLAIM);
                    let more = shard.has_reclaim_work();
                    if !more {
                        shard.slots.tags.sweep();
                        shard.retire_tag_memory(&mut pending);
                    }
                    // Handed straight to a waiting reader, if any.
                    crate::sync::unlock_fair(shard);
                    more
                };
                drop(free_list);
                self.finish(pending);
                more
            });
            if !progress {
                crate::sync::yield_now();
            }
        }
        self.inner.invalidation.tags.sweep();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            capacity: self.inner.capacity,
            ..Stats::default()
        };
        let mut removals = [0; RemovalCause::ALL.len()];
        (s.hits, s.misses) = self.inner.reads.totals();
        for cell in self.inner.shards.iter() {
            let shard = cell.read();
            s.inserts += shard.counters.inserts;
            s.updates += shard.counters.updates;
            for (total, n) in removals.iter_mut().zip(shard.counters.removals) {
                *total += n;
            }
            s.entries += shard.len() as u64;
            s.weight += shard.weight();
        }
        s.removals = RemovalCounts(removals);
        let state = &self.inner.invalidation;
        s.invalidations = self.last_seq();
        s.leases_granted = state
            .leases_granted
            .load(std::sync::atomic::Ordering::Relaxed);
        s.fills_refused = state
            .fills_refused
            .load(std::sync::atomic::Ordering::Relaxed);
        s.writes_fenced = state
            .writes_fenced
            .load(std::sync::atomic::Ordering::Relaxed);
        s.tags = state.tags.len() as u64;
        s.dependency_edges = self.inner.graph.edge_count() as u64;
        s
    }

    /// Live entries, as `(key, value)` clones. The iterator snapshots one shard at a time, so it
    /// never blocks writers for long and sees each shard at a single instant (not the whole
    /// cache). Not counted as accesses.
    pub fn iter(&self) -> Iter<K, V, S> {
        Iter {
            cache: self.clone(),
            next_shard: 0,
            buffer: Vec::new(),
        }
    }

    /// Keys often read just before `key` (at least `min_together` times), as candidate
    /// dependencies; empty unless [`CacheBuilder::track_co_access`] is on. See
    /// [`crate::coaccess::CoAccessConfig`].
    pub fn suggested_dependencies(&self, key: &K, min_together: u32) -> Vec<Suggestion<K>> {
        match &self.inner.co_access {
            Some(co) => co.suggestions(key, min_together),
            None => Vec::new(),
        }
    }

    /// Entries scheduled in the timer wheels (for tests of reclamation).
    #[doc(hidden)]
    pub fn scheduled_timers(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|c| c.read().scheduled_timers())
            .sum()
    }

    fn snapshot_shard(&self, i: usize, out: &mut Vec<(K, V)>) {
        let now = self.now();
        let shard = self.inner.shards[i].read();
        out.extend(
            shard
                .slot_indices()
                .filter(|&i| shard.slots.dead_cause(i, now).is_none())
                .map(|i| {
                    let e = shard.slots.get(i);
                    (e.key.clone(), e.value.clone())
                }),
        );
    }
}

/// Iterator over a cache's live entries; see [`Cache::iter`].
pub struct Iter<K, V, S = DefaultHashBuilder> {
    cache: Cache<K, V, S>,
    next_shard: usize,
    buffer: Vec<(K, V)>,
}

impl<K, V, S> fmt::Debug for Iter<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter")
            .field("next_shard", &self.next_shard)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl<K, V, S> Iterator for Iter<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(item) = self.buffer.pop() {
                return Some(item);
            }
            if self.next_shard >= self.cache.inner.shards.len() {
                return None;
            }
            self.cache.snapshot_shard(self.next_shard, &mut self.buffer);
            self.next_shard += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::ReclaimBudget;

    /// A cache with one shard holding `n` entries hidden by an invalidation of tag `t`.
    fn hidden(n: u64) -> Cache<u64, u64> {
        let c: Cache<u64, u64> = Cache::builder().max_capacity(10_000).shards(1).build();
        for k in 0..n {
            c.insert_with_options(k, k, &InsertOptions::new().tag("t"));
        }
        c.invalidate_tag("t");
        c
    }

    #[test]
    fn a_reclamation_hold_ends_when_its_time_is_spent() {
        let c = hidden(100);
        let mut pending = c.pending();
        let mut shard = c.inner.shards[0].write();
        let none = ReclaimBudget {
            entries: 64,
            nanos: 0,
        };
        // The clock is read every 8 entries: with no time to spend, the first look ends it.
        assert_eq!(shard.reclaim(none, &mut pending), 8);
        let ample = ReclaimBudget {
            entries: 64,
            nanos: u64::MAX,
        };
        assert_eq!(shard.reclaim(ample, &mut pending), 64);
        assert_eq!(shard.reclaim(ample, &mut pending), 28);
        assert!(!shard.has_reclaim_work());
        assert_eq!(shard.reclaim(ample, &mut pending), 0);
        drop(shard);
        assert_eq!(c.len(), 0);
        // Kept for dropping after the lock, though nobody listens.
        assert_eq!(pending.items.len(), 100);
        assert!(pending.items.iter().all(|r| r.cause == RemovalCause::Tag));
    }
}

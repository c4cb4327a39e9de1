//! The public handle: [`Cache`], a cheap-to-clone, thread-safe view of the shards.
//!
//! Reads take a shard's read lock and touch only atomics in the entry; writes take the shard's
//! write lock, run that shard's maintenance (expiry reclamation, window tuning) and eviction, and
//! deliver removal notifications after the lock is released.

use crate::builder::{CacheBuilder, DefaultHashBuilder};
use crate::clock::{Clock, Timestamp, duration_nanos};
use crate::entry::{InsertOptions, Lookup};
use crate::expiry::{ExpireCondition, ExpiryPolicy, KeyTtl, NEVER};
use crate::listener::{Pending, RemovalCause, RemovalListener};
use crate::shard::{Shard, Write};
use crate::stats::{ReadCounters, RemovalCounts, Stats};
use crate::sync::{Arc, RwLock};
use crate::weigher::Weigher;
use crossbeam_utils::CachePadded;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

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
}

/// A bounded, concurrent cache with per-entry expiry. See the [crate docs](crate) for the
/// eviction policy, memory overhead and examples.
///
/// `Cache` is a handle: cloning it is cheap and every clone sees the same entries.
pub struct Cache<K, V, S = DefaultHashBuilder> {
    inner: Arc<Inner<K, V, S>>,
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

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.inner.hasher.hash_one(key)
    }

    fn cell(&self, hash: u64) -> &ShardCell<K, V> {
        // Bits 32.. pick the shard: hashbrown uses the low bits for the bucket and the top seven
        // for its tag, so this keeps both independent of the shard choice.
        &self.inner.shards[(hash >> 32) as usize & self.inner.shard_mask]
    }

    fn now(&self) -> u64 {
        self.inner.clock.now().0
    }

    /// Delivers notifications collected under a lock, after it was released.
    fn deliver(&self, pending: Pending<K, V>) {
        if let Some(l) = &self.inner.listener {
            for (k, v, cause) in &pending {
                l.on_removal(k, v, cause.to_owned());
            }
        }
    }

    /// Runs `f` under the write lock of the shard for `hash`, after that shard's maintenance.
    fn write<R>(
        &self,
        hash: u64,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Pending<K, V>) -> R,
    ) -> R {
        let cell = self.cell(hash);
        let mut pending = Vec::new();
        // Read before locking to keep the critical section short; writers racing on one shard
        // may then apply times a few nanoseconds out of order, which the timer wheel and the
        // expiry checks tolerate (they compare, never subtract blindly).
        let now = self.now();
        let result = {
            let mut shard = cell.write();
            shard.maintain(now, &self.inner.reads, &mut pending);
            f(&mut shard, now, &mut pending)
        };
        self.deliver(pending);
        result
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
            let shard = cell.read();
            shard.find(hash, key).and_then(|idx| {
                let entry = shard.slots.get(idx);
                // The clock is read only when the entry has a deadline (or the caller wants
                // times): entries without one skip it, which keeps plain reads cheap.
                let deadline = entry.deadline();
                let now = if deadline != NEVER || with_time {
                    Some(self.now())
                } else {
                    None
                };
                if now.is_some_and(|n| n >= deadline) {
                    saw_expired = true;
                    return None;
                }
                entry.record_hit();
                if let Some(now) = now {
                    shard.slots.meta(idx).record_read(entry, now);
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
            let meta = shard.slots.meta(idx);
            let mut metadata = meta.metadata(entry, Timestamp(now));
            if let Some(e) = meta.early_refresh() {
                metadata.refresh = e.should_refresh(now, entry.deadline(), fastrand::f64());
            }
            Lookup {
                value: entry.value.clone(),
                metadata,
            }
        })
    }

    /// Whether `key` is present and not expired; not counted as an access.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let shard = self.cell(hash).read();
        shard.find_live(hash, key, self.now()).is_some()
    }

    /// Inserts or replaces `key` with the cache's default expiry.
    pub fn insert(&self, key: K, value: V) {
        self.insert_with_options(key, value, &InsertOptions::default());
    }

    /// Inserts or replaces `key` with per-entry options. Returns `true` if a live entry was
    /// replaced.
    pub fn insert_with_options(&self, key: K, value: V, options: &InsertOptions) -> bool {
        let hash = self.hash(&key);
        let weight = self.inner.weigher.weigh(&key, &value);
        let defaults = &self.inner.defaults;
        self.write(hash, |shard, now, pending| {
            let w = Write {
                now,
                weight,
                options,
                defaults,
            };
            shard.insert(hash, key, value, &w, pending)
        })
    }

    /// Removes `key`, returning its value if it was present and not expired.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let removed = self.write(hash, |shard, now, pending| {
            shard.remove(hash, key, now, pending)
        });
        removed.map(|(k, v)| {
            if let Some(l) = &self.inner.listener {
                l.on_removal(&k, &v, RemovalCause::Explicit);
            }
            v
        })
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
        let hash = self.hash(key);
        let shard = self.cell(hash).read();
        let now = self.now();
        match shard.find_live(hash, key, now) {
            Some(idx) => crate::expiry::remaining(shard.slots.get(idx).deadline(), Timestamp(now)),
            None => KeyTtl::Missing,
        }
    }

    /// Entries stored, including expired ones not yet reclaimed.
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
            let mut pending = Vec::new();
            {
                let mut shard = cell.write();
                let now = self.now();
                shard.clear(now, &mut pending);
            }
            self.deliver(pending);
        }
    }

    /// Reclaims expired entries in every shard now. Never needed for correctness (expired entries
    /// are never returned, and writes reclaim them as they go); useful before reading `len` or
    /// stats, or in an idle cache whose removal listener should hear about expiries promptly.
    pub fn run_pending_tasks(&self) {
        for cell in self.inner.shards.iter() {
            let mut pending = Vec::new();
            {
                let mut shard = cell.write();
                shard.maintain(self.now(), &self.inner.reads, &mut pending);
            }
            self.deliver(pending);
        }
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

    /// Keys of live entries whose bytes start with `prefix`. Scans every entry (O(n)); prefix
    /// *invalidation* with cost proportional to the matches belongs to the invalidation model.
    pub fn keys_with_prefix(&self, prefix: &[u8]) -> Vec<K>
    where
        K: AsRef<[u8]>,
    {
        let now = self.now();
        let mut out = Vec::new();
        for cell in self.inner.shards.iter() {
            let shard = cell.read();
            out.extend(
                shard
                    .slots
                    .live()
                    .filter(|e| !e.is_expired(now) && e.key.as_ref().starts_with(prefix))
                    .map(|e| e.key.clone()),
            );
        }
        out
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
                .slots
                .live()
                .filter(|e| !e.is_expired(now))
                .map(|e| (e.key.clone(), e.value.clone())),
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

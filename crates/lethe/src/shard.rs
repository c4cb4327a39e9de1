//! One shard of the cache: a hash table of slot indices, the slots, the eviction policy and the
//! timer wheel, all guarded by the shard's lock.
//!
//! Everything here runs with the shard's write lock held, except [`Shard::find`] and the slot
//! accessors, which the read path calls under the read lock. Removals of every kind go through
//! [`Shard::remove_slot`], so per-cause counters, the policy, the wheel and the notifications can
//! never disagree about what left.

use crate::entry::{Entry, EntryMeta, InsertOptions};
use crate::expiry::{self, ExpireCondition, ExpiryPolicy, NEVER};
use crate::listener::{Pending, RemovalCause};
use crate::policy::{Policy, PolicyEntries};
use crate::stats::ReadCounters;
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use crate::timer::TimerWheel;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::hash::Hash;

/// Slots of a shard (hot parts, and cold parts in a parallel vector); the policy sees them
/// through [`PolicyEntries`].
#[derive(Debug)]
pub(crate) struct Slots<K, V> {
    hot: Vec<Option<Entry<K, V>>>,
    cold: Vec<EntryMeta>,
}

impl<K, V> Slots<K, V> {
    pub(crate) fn get(&self, idx: u32) -> &Entry<K, V> {
        self.hot[idx as usize].as_ref().expect("live slot")
    }

    pub(crate) fn meta(&self, idx: u32) -> &EntryMeta {
        &self.cold[idx as usize]
    }

    fn both_mut(&mut self, idx: u32) -> (&mut Entry<K, V>, &mut EntryMeta) {
        let entry = self.hot[idx as usize].as_mut().expect("live slot");
        (entry, &mut self.cold[idx as usize])
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = &Entry<K, V>> {
        self.hot.iter().flatten()
    }
}

impl<K, V> PolicyEntries for Slots<K, V> {
    fn hash(&self, idx: u32) -> u64 {
        self.get(idx).hash
    }
    fn weight(&self, idx: u32) -> u64 {
        u64::from(self.get(idx).weight)
    }
    fn take_hits(&self, idx: u32) -> u8 {
        let hits = &self.get(idx).hits;
        if hits.load(Ordering::Relaxed) == 0 {
            0
        } else {
            hits.swap(0, Ordering::Relaxed)
        }
    }
    fn record_hit(&self, idx: u32) {
        self.get(idx).record_hit();
    }
}

/// What a write needs besides key and value.
#[derive(Debug)]
pub(crate) struct Write<'a> {
    pub(crate) now: u64,
    pub(crate) weight: u32,
    pub(crate) options: &'a InsertOptions,
    pub(crate) defaults: &'a ExpiryPolicy,
}

/// Counters kept under the shard lock and read by `stats()`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardCounters {
    pub(crate) inserts: u64,
    pub(crate) updates: u64,
    pub(crate) removals: [u64; RemovalCause::ALL.len()],
}

#[derive(Debug)]
pub(crate) struct Shard<K, V> {
    table: HashTable<u32>,
    pub(crate) slots: Slots<K, V>,
    free: Vec<u32>,
    policy: Policy,
    timers: TimerWheel,
    pub(crate) counters: ShardCounters,
    /// Whether removals are collected for a listener (else values are dropped in place).
    notify: bool,
    scratch: Vec<u32>,
    writes: u64,
}

impl<K: Hash + Eq + Clone, V> Shard<K, V> {
    pub(crate) fn new(
        capacity: u64,
        expected_entries: usize,
        cache_capacity: u64,
        now: u64,
        notify: bool,
    ) -> Self {
        Shard {
            table: HashTable::new(),
            slots: Slots {
                hot: Vec::new(),
                cold: Vec::new(),
            },
            free: Vec::new(),
            policy: Policy::new(capacity, expected_entries, cache_capacity),
            timers: TimerWheel::new(now),
            counters: ShardCounters::default(),
            notify,
            scratch: Vec::new(),
            writes: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.policy.weight()
    }

    pub(crate) fn scheduled_timers(&self) -> usize {
        self.timers.len()
    }

    /// The slot holding `key`, if any (expired or not).
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| slots.get(i).key.borrow() == key)
            .copied()
    }

    /// The live (unexpired) slot holding `key`.
    pub(crate) fn find_live<Q>(&self, hash: u64, key: &Q, now: u64) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, key)
            .filter(|&i| !self.slots.get(i).is_expired(now))
    }

    /// Takes slot `idx` out of every structure, counting it under `cause`.
    pub(crate) fn remove_slot(&mut self, idx: u32, cause: RemovalCause) -> (K, V) {
        let entry = self.slots.hot[idx as usize].take().expect("live slot");
        // Free the expiry box now rather than when the slot is reused.
        self.slots.cold[idx as usize].expiry = None;
        if let Ok(found) = self.table.find_entry(entry.hash, |&i| i == idx) {
            found.remove();
        }
        self.policy.on_remove(idx, u64::from(entry.weight));
        self.timers.unschedule(idx);
        self.free.push(idx);
        self.counters.removals[cause.index()] += 1;
        (entry.key, entry.value)
    }

    /// Removes slot `idx` for a reason of the engine's, queueing the notification.
    fn discard(&mut self, idx: u32, cause: RemovalCause, pending: &mut Pending<K, V>) {
        let (k, v) = self.remove_slot(idx, cause);
        if self.notify {
            pending.push((k, v, cause));
        }
    }

    /// Reclaims entries whose deadline has passed and lets the policy adapt. Called on every
    /// write, so expiry costs are spread over normal operations.
    pub(crate) fn maintain(&mut self, now: u64, reads: &ReadCounters, pending: &mut Pending<K, V>) {
        let mut expired = std::mem::take(&mut self.scratch);
        let slots = &self.slots;
        self.timers
            .advance(now, |i| slots.get(i).deadline(), &mut expired);
        for idx in expired.drain(..) {
            self.discard(idx, RemovalCause::Expired, pending);
        }
        self.scratch = expired;
        // Summing the read stripes costs a few dozen loads; the climber only needs a look now
        // and then (its sample period is ten times the capacity).
        self.writes = self.writes.wrapping_add(1);
        if self.writes % 64 == 0 {
            let (hits, misses) = reads.totals();
            self.policy.climb(hits, misses);
        }
    }

    fn evict_victims(&mut self, pending: &mut Pending<K, V>) {
        let mut victims = std::mem::take(&mut self.scratch);
        for idx in victims.drain(..) {
            self.discard(idx, RemovalCause::Evicted, pending);
        }
        self.scratch = victims;
    }

    fn set_deadline(&mut self, idx: u32, deadline: u64) {
        self.slots
            .get(idx)
            .deadline
            .store(deadline, Ordering::Relaxed);
        if deadline == NEVER {
            self.timers.unschedule(idx);
        } else {
            self.timers.schedule(idx, deadline);
        }
    }

    /// Inserts or replaces `key`. Returns whether the key was live before (an update).
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        w: &Write<'_>,
        pending: &mut Pending<K, V>,
    ) -> bool {
        let existing = self.find(hash, &key);
        if let Some(idx) = existing {
            if self.slots.get(idx).is_expired(w.now) {
                self.discard(idx, RemovalCause::Expired, pending);
            }
        }
        let existing = existing.filter(|&i| self.slots.hot[i as usize].is_some());
        if u64::from(w.weight) > self.policy.capacity() {
            // Can never fit: the old value must not survive a newer write, and the new one is
            // refused at once.
            if let Some(idx) = existing {
                self.counters.updates += 1;
                self.discard(idx, RemovalCause::Replaced, pending);
            }
            self.counters.removals[RemovalCause::Evicted.index()] += 1;
            if self.notify {
                pending.push((key, value, RemovalCause::Evicted));
            }
            return existing.is_some();
        }
        let ttl = w.options.ttl.as_ref().unwrap_or(&w.defaults.ttl);
        let jitter = w.options.jitter.unwrap_or(w.defaults.jitter);
        let early = w.options.early_refresh.or(w.defaults.early_refresh);
        match existing {
            Some(idx) => {
                let (entry, meta) = self.slots.both_mut(idx);
                let (deadline, state) = if w.options.keep_ttl {
                    (entry.deadline(), meta.expiry.take())
                } else {
                    let previous = meta.expiry.as_deref().map(|s| (s, meta.updated));
                    expiry::on_write(ttl, jitter, early, w.now, previous)
                };
                meta.expiry = state;
                meta.version = w.options.version.unwrap_or(meta.version.wrapping_add(1));
                meta.updated = w.now;
                meta.last_access.store(w.now, Ordering::Relaxed);
                let old_weight = u64::from(entry.weight);
                entry.weight = w.weight;
                let old = std::mem::replace(&mut entry.value, value);
                self.counters.updates += 1;
                self.counters.removals[RemovalCause::Replaced.index()] += 1;
                if self.notify {
                    pending.push((key, old, RemovalCause::Replaced));
                }
                self.set_deadline(idx, deadline);
                let mut victims = std::mem::take(&mut self.scratch);
                self.policy
                    .on_update(idx, old_weight, &self.slots, &mut victims);
                self.scratch = victims;
                self.evict_victims(pending);
                true
            }
            None => {
                let (deadline, state) = expiry::on_write(ttl, jitter, early, w.now, None);
                let entry = Entry {
                    key,
                    value,
                    hash,
                    deadline: AtomicU64::new(deadline),
                    weight: w.weight,
                    hits: AtomicU8::new(0),
                };
                let meta = EntryMeta {
                    last_access: AtomicU64::new(w.now),
                    created: w.now,
                    updated: w.now,
                    version: w.options.version.unwrap_or(1),
                    expiry: state,
                };
                let idx = match self.free.pop() {
                    Some(i) => {
                        self.slots.hot[i as usize] = Some(entry);
                        self.slots.cold[i as usize] = meta;
                        i
                    }
                    None => {
                        self.slots.hot.push(Some(entry));
                        self.slots.cold.push(meta);
                        u32::try_from(self.slots.hot.len() - 1)
                            .expect("fewer than 2^32 entries per shard")
                    }
                };
                let slots = &self.slots;
                self.table.insert_unique(hash, idx, |&i| slots.get(i).hash);
                self.counters.inserts += 1;
                if deadline != NEVER {
                    self.timers.schedule(idx, deadline);
                }
                self.policy.observe_len(self.table.len());
                let mut victims = std::mem::take(&mut self.scratch);
                self.policy.on_insert(idx, &self.slots, &mut victims);
                self.scratch = victims;
                self.evict_victims(pending);
                false
            }
        }
    }

    /// Removes `key` if live; an expired one is reclaimed as expired and not returned.
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: u64,
        pending: &mut Pending<K, V>,
    ) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.find(hash, key)?;
        if self.slots.get(idx).is_expired(now) {
            self.discard(idx, RemovalCause::Expired, pending);
            return None;
        }
        Some(self.remove_slot(idx, RemovalCause::Explicit))
    }

    /// Sets a live entry's deadline under a Redis condition; a deadline at or before `now`
    /// removes the entry as expired (as Redis deletes on `EXPIRE key 0`).
    pub(crate) fn expire<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        deadline: u64,
        cond: ExpireCondition,
        now: u64,
        pending: &mut Pending<K, V>,
    ) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find_live(hash, key, now) else {
            return false;
        };
        let (entry, meta) = self.slots.both_mut(idx);
        if !cond.allows(entry.deadline(), deadline) {
            return false;
        }
        if deadline <= now {
            self.discard(idx, RemovalCause::Expired, pending);
            return true;
        }
        // An explicit deadline replaces sliding/adaptive behaviour, as in Redis; an early-refresh
        // hint still applies to the new deadline.
        meta.expiry = meta
            .expiry
            .take()
            .and_then(|s| s.early_refresh)
            .map(expiry::ExpiryState::early_only);
        self.set_deadline(idx, deadline);
        true
    }

    /// Removes a live entry's deadline. True if it had one.
    pub(crate) fn persist<Q>(&mut self, hash: u64, key: &Q, now: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find_live(hash, key, now) else {
            return false;
        };
        let (entry, meta) = self.slots.both_mut(idx);
        if entry.deadline() == NEVER {
            return false;
        }
        meta.expiry = None;
        self.set_deadline(idx, NEVER);
        true
    }

    /// Removes everything, reported as explicit removals.
    pub(crate) fn clear(&mut self, now: u64, pending: &mut Pending<K, V>) {
        self.counters.removals[RemovalCause::Explicit.index()] += self.table.len() as u64;
        self.table.clear();
        self.free.clear();
        self.policy.clear();
        self.timers = TimerWheel::new(now);
        self.slots.cold.clear();
        for entry in self.slots.hot.drain(..).flatten() {
            if self.notify {
                pending.push((entry.key, entry.value, RemovalCause::Explicit));
            }
        }
    }
}

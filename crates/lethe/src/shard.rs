//! One shard of the cache: a hash table of slot indices, the slots, the eviction policy, the
//! timer wheel, and the shard's share of the invalidation indexes (tag members, ordered keys,
//! leases), all guarded by the shard's lock.
//!
//! Everything here runs with the shard's write lock held, except [`Shard::find`] and the slot
//! accessors, which the read path calls under the read lock. Removals of every kind go through
//! [`Shard::remove_slot`], so per-cause counters, the policy, the wheel, the indexes and the
//! notifications can never disagree about what left.

use crate::clock::Timestamp;
use crate::collections::{HashMap, HashSet};
use crate::entry::{Entry, Extras, InsertOptions, Rare};
use crate::eviction::{EvictionEntries, EvictionPolicy};
use crate::expiry::{self, ExpireCondition, ExpiryPolicy, NEVER};
use crate::history::keeping::{HistoryShared, ShardHistory};
use crate::history::{Context, Happened, Record};
use crate::invalidation_state::InvalidationState;
use crate::lease::{Grant, LeaseSlot};
use crate::listener::{Pending, RemovalCause, Removed};
use crate::pattern::Glob;
use crate::sync::{Arc, Ordering};
use crate::tag_index::{DEAD_TAG, Membership, TagIndex, fingerprint};
use crate::tag_registry::TagNode;
use crate::timer::TimerWheel;
use crate::version::{Fences, Inserted, RejectReason, Rejected, WriteCondition};
use hashbrown::HashTable;
use smallvec::SmallVec;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::ops::Bound;

/// Ordered keys of this shard, for prefix and glob invalidation in time proportional to the
/// matches ([`crate::CacheBuilder::index_keys`]).
#[derive(Debug)]
pub(crate) struct KeyIndex<K> {
    pub(crate) bytes: fn(&K) -> &[u8],
    map: BTreeMap<Box<[u8]>, u32>,
}

impl<K> KeyIndex<K> {
    pub(crate) fn new(bytes: fn(&K) -> &[u8]) -> Self {
        KeyIndex {
            bytes,
            map: BTreeMap::new(),
        }
    }
}

/// Slots of a shard, and the rare state of the entries that have some; the policy sees them
/// through [`EvictionEntries`].
#[derive(Debug)]
pub(crate) struct Slots<K, V> {
    hot: Vec<Option<Entry<K, V>>>,
    /// Rare state by slot, for the entries flagged as having some ([`Entry::has_rare`]).
    rare: HashMap<u32, Rare<K>>,
    /// Tag sets, here because the read path checks whether an entry's set is dead.
    pub(crate) tags: TagIndex,
    /// Per slot: bumped whenever a tagged entry leaves the slot or is replaced in it, so tag
    /// lists can tell current members from former ones.
    pub(crate) tag_gens: Vec<u32>,
}

impl<K, V> Slots<K, V> {
    pub(crate) fn get(&self, idx: u32) -> &Entry<K, V> {
        self.hot[idx as usize].as_ref().expect("live slot")
    }

    pub(crate) fn hot_mut(&mut self, idx: u32) -> &mut Entry<K, V> {
        self.hot[idx as usize].as_mut().expect("live slot")
    }

    pub(crate) fn is_live(&self, idx: u32) -> bool {
        self.hot.get(idx as usize).is_some_and(Option::is_some)
    }

    /// The rare state of the live entry in slot `idx`, if it has some.
    #[inline]
    pub(crate) fn rare(&self, idx: u32) -> Option<&Rare<K>> {
        if self.get(idx).has_rare() {
            self.rare.get(&idx)
        } else {
            None
        }
    }

    /// Metadata of the live entry in slot `idx` as of `now`.
    pub(crate) fn metadata(&self, idx: u32, now: u64) -> crate::entry::EntryMetadata {
        self.get(idx).metadata(self.rare(idx), Timestamp(now))
    }

    /// Records a timed read of the live entry in slot `idx` (see [`Entry::record_read`]).
    #[inline]
    pub(crate) fn record_read(&self, idx: u32, now: u64) {
        self.get(idx).record_read(self.rare(idx), now);
    }

    /// Stored grace of the entry in slot `idx` (0 without one).
    pub(crate) fn grace(&self, idx: u32) -> u64 {
        self.rare(idx).map_or(0, Rare::grace)
    }

    /// Replaces the rare state of the live entry in slot `idx`, returning the old one.
    fn set_rare(&mut self, idx: u32, rare: Rare<K>) -> Option<Rare<K>> {
        let entry = self.hot[idx as usize].as_mut().expect("live slot");
        let old = if entry.has_rare() {
            self.rare.remove(&idx)
        } else {
            None
        };
        entry.set_has_rare(!rare.is_empty());
        if !rare.is_empty() {
            self.rare.insert(idx, rare);
        }
        old
    }

    /// Takes the rare state of the entry in slot `idx` out of the map (the entry itself may
    /// already be gone: `had` says whether it was flagged).
    fn take_rare(&mut self, idx: u32, had: bool) -> Option<Rare<K>> {
        if had { self.rare.remove(&idx) } else { None }
    }

    /// The deadline after which the entry is reclaimed: its own, plus any stale grace.
    pub(crate) fn hard_deadline(&self, idx: u32) -> u64 {
        let d = self.get(idx).deadline();
        if d == NEVER {
            d
        } else {
            d.saturating_add(self.grace(idx)).min(NEVER - 1)
        }
    }

    /// Why the entry can no longer be served, if it cannot.
    pub(crate) fn dead_cause(&self, idx: u32, now: u64) -> Option<RemovalCause> {
        // Invalidation first: an invalidated entry must not pass for merely expired (stale
        // reads serve expired ones).
        let e = self.get(idx);
        match self.tags.dead(e.tagset()) {
            0 => {}
            DEAD_TAG => return Some(RemovalCause::Tag),
            _ => return Some(RemovalCause::Dependency),
        }
        if e.is_expired(now) {
            return Some(RemovalCause::Expired);
        }
        None
    }

    /// Why the entry must go now, if it must: like [`Self::dead_cause`], except that an expired
    /// entry still within its stale grace stays (stale reads may serve it).
    pub(crate) fn reclaimable(&self, idx: u32, now: u64) -> Option<RemovalCause> {
        self.dead_cause(idx, now)
            .filter(|&c| c != RemovalCause::Expired || now >= self.hard_deadline(idx))
    }

    /// Records the entry in slot `idx` as a member of tag set `set`.
    fn join_set(&mut self, idx: u32, set: u32) {
        if set == 0 {
            return;
        }
        if self.tag_gens.len() <= idx as usize {
            self.tag_gens.resize(idx as usize + 1, 0);
        }
        let generation = self.tag_gens[idx as usize];
        self.tags.join(set, idx, generation, &self.tag_gens);
    }

    /// Counts the entry that was in slot `idx` out of tag set `set`: the slot's generation
    /// moves on, so its record in the set's member list becomes a former one.
    fn leave_set(&mut self, idx: u32, set: u32) {
        if set == 0 {
            return;
        }
        self.tag_gens[idx as usize] = self.tag_gens[idx as usize].wrapping_add(1);
        self.tags.leave(set);
    }

    /// The expiry state of the live entry in slot `idx`, taken out (its other rare state
    /// stays).
    fn take_expiry(&mut self, idx: u32) -> Option<Box<crate::expiry::ExpiryState>> {
        if !self.get(idx).has_rare() {
            return None;
        }
        let rare = self.rare.get_mut(&idx)?;
        let state = rare.expiry.take();
        if rare.is_empty() {
            self.rare.remove(&idx);
            self.hot_mut(idx).set_has_rare(false);
        }
        state
    }

    /// Sets the expiry state of the live entry in slot `idx`, keeping its other rare state.
    fn set_expiry(&mut self, idx: u32, state: Option<Box<crate::expiry::ExpiryState>>) {
        let extras = self.take_extras(idx);
        self.set_rare(
            idx,
            Rare {
                expiry: state,
                extras,
            },
        );
    }

    fn take_extras(&mut self, idx: u32) -> Option<Box<Extras<K>>> {
        if !self.get(idx).has_rare() {
            return None;
        }
        self.rare.get_mut(&idx).and_then(|r| r.extras.take())
    }
}

impl<K, V> EvictionEntries for Slots<K, V> {
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

/// What a write needs besides key and value; tags are interned and floors looked up before the
/// shard lock is taken.
#[derive(Debug)]
pub(crate) struct Write<'a, K> {
    pub(crate) now: u64,
    pub(crate) weight: u32,
    pub(crate) options: &'a InsertOptions<K>,
    pub(crate) defaults: &'a ExpiryPolicy,
    pub(crate) tags: &'a [String],
    /// Tags of the entry's dependencies, which it carries too.
    pub(crate) inherited: &'a [String],
    /// [`crate::tag_index::fingerprint`] of `tags` and `inherited` (0 when both are empty).
    pub(crate) tag_fp: u128,
    /// Highest prefix floor for the key.
    pub(crate) floor: u64,
    /// The lease, for a fill.
    pub(crate) lease: Option<Grant>,
    /// The entry's extras, allocated before the lock was taken.
    pub(crate) extras: Option<Box<Extras<K>>>,
}

/// What a lease request found, in the shard.
#[derive(Debug)]
pub(crate) enum LeaseState {
    Hit(u32),
    Granted(Grant),
    Pending(Option<u32>),
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
    eviction: EvictionPolicy,
    timers: TimerWheel,
    pub(crate) counters: ShardCounters,
    scratch: Vec<u32>,
    writes: u64,
    invalidation: Arc<InvalidationState>,
    key_index: Option<KeyIndex<K>>,
    /// Dead tag sets whose entries are still to be reclaimed.
    reclaim: Vec<u32>,
    leases: HashTable<LeaseSlot<K>>,
    /// Per-key version fences ([`crate::Cache::fence`]).
    pub(crate) fences: Fences<K>,
    /// The keys' history, when the cache keeps one ([`crate::CacheBuilder::history`]).
    pub(crate) history: Option<ShardHistory<K>>,
}

/// How much reclamation of tag-invalidated entries one hold of a shard's lock may do: at most
/// `entries`, and no more once `nanos` have passed (read on the CPU's time-stamp counter every
/// [`CLOCK_EVERY`] entries, so a slow entry, or a machine that is slow today, still ends the hold
/// on time). Readers of the shard wait for the hold, so it is kept far below a scheduler tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReclaimBudget {
    pub(crate) entries: usize,
    pub(crate) nanos: u64,
}

/// What every write reclaims on the way (the write holds the lock for its own work anyway).
pub(crate) const WRITE_RECLAIM: ReclaimBudget = ReclaimBudget {
    entries: 32,
    nanos: 10_000,
};

/// What [`crate::Cache::run_pending_tasks`] reclaims per hold of a shard's lock.
pub(crate) const BULK_RECLAIM: ReclaimBudget = ReclaimBudget {
    entries: 64,
    nanos: 5_000,
};

/// Entries reclaimed between two looks at the clock.
const CLOCK_EVERY: usize = 8;

impl<K: Hash + Eq + Clone, V> Shard<K, V> {
    pub(crate) fn new(
        capacity: u64,
        expected_entries: usize,
        now: u64,
        invalidation: Arc<InvalidationState>,
        key_index: Option<KeyIndex<K>>,
        history: Option<Arc<HistoryShared>>,
    ) -> Self {
        Shard {
            table: HashTable::new(),
            slots: Slots {
                hot: Vec::new(),
                rare: HashMap::default(),
                tags: TagIndex::default(),
                tag_gens: Vec::new(),
            },
            free: Vec::new(),
            eviction: EvictionPolicy::new(capacity, expected_entries),
            timers: TimerWheel::new(now),
            counters: ShardCounters::default(),
            scratch: Vec::new(),
            writes: 0,
            invalidation,
            key_index,
            reclaim: Vec::new(),
            leases: HashTable::new(),
            fences: Fences::default(),
            history: history.map(ShardHistory::new),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.eviction.weight()
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

    /// The slot holding `key` if it can be served (not expired, not hidden by a tag).
    pub(crate) fn find_live<Q>(&self, hash: u64, key: &Q, now: u64) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, key)
            .filter(|&i| self.slots.dead_cause(i, now).is_none())
    }

    /// Takes slot `idx` out of every structure, counting it under `cause`; `ctx` says what the
    /// removal matched and who asked, for the history.
    pub(crate) fn remove_slot(
        &mut self,
        idx: u32,
        cause: RemovalCause,
        ctx: &Context<K>,
    ) -> Removed<K, V> {
        let entry = self.slots.hot[idx as usize].take().expect("live slot");
        if let Some(h) = &mut self.history {
            h.removed(idx, entry.hash, &entry.key, cause, ctx);
        }
        let extras = self
            .slots
            .take_rare(idx, entry.has_rare())
            .and_then(|r| r.extras);
        self.slots.leave_set(idx, entry.tagset());
        if let Some(ki) = &mut self.key_index {
            ki.map.remove((ki.bytes)(&entry.key));
        }
        if let Ok(found) = self.table.find_entry(entry.hash, |&i| i == idx) {
            found.remove();
        }
        self.eviction.on_remove(idx, u64::from(entry.weight));
        self.timers.unschedule(idx);
        self.free.push(idx);
        self.counters.removals[cause.index()] += 1;
        if !matches!(cause, RemovalCause::Expired | RemovalCause::Evicted) {
            // An invalidation stops an outstanding fill; reclaiming an expired copy (the stale
            // value a lease holder is refreshing) or evicting does not.
            self.revoke_lease(entry.hash, &entry.key);
        }
        self.invalidation.log_removal(entry.hash);
        Removed {
            key: entry.key,
            value: entry.value,
            cause,
            deps: extras.and_then(|x| x.deps),
        }
    }

    /// Removes slot `idx` for a reason of the engine's, queueing the notification.
    pub(crate) fn discard(&mut self, idx: u32, cause: RemovalCause, pending: &mut Pending<K, V>) {
        let r = self.remove_slot(idx, cause, &pending.context);
        pending.push(r.key, r.value, r.cause, r.deps);
    }

    /// Reclaims entries whose deadline has passed, entries hidden by tag invalidations (within
    /// `budget`), expired leases and stale fences. Called on every write, so these costs are
    /// spread over normal operations.
    pub(crate) fn maintain(
        &mut self,
        now: u64,
        pending: &mut Pending<K, V>,
        budget: ReclaimBudget,
    ) {
        let mut expired = std::mem::take(&mut self.scratch);
        let slots = &self.slots;
        self.timers
            .advance(now, |i| slots.hard_deadline(i), &mut expired);
        for idx in expired.drain(..) {
            self.discard(idx, RemovalCause::Expired, pending);
        }
        self.scratch = expired;
        self.reclaim(budget, pending);
        // Leases and fences only need a look now and then.
        self.writes = self.writes.wrapping_add(1);
        if self.writes % 64 == 0 {
            if !self.leases.is_empty() {
                self.expire_leases(now);
            }
            self.fences.prune(now);
        }
    }

    /// Removes entries of dead tag sets, within `budget`; returns how many. Their keys and
    /// values go to `pending` whether or not anyone listens, so they are dropped after the
    /// lock is released (freeing a key can cost as much as unlinking its entry), and so do the
    /// member lists of the sets this frees.
    pub(crate) fn reclaim(&mut self, budget: ReclaimBudget, pending: &mut Pending<K, V>) -> usize {
        let n = self.reclaim_members(budget, pending);
        self.retire_tag_memory(pending);
        n
    }

    /// The capacity the list of free slots should grow to before `n` more removals, if it
    /// must grow: the caller allocates it before taking the write lock and hands it to
    /// [`Self::install_free_list`], since a large allocation under the lock can stall readers
    /// (see [`crate::tag_index`]).
    pub(crate) fn free_list_growth(&self, n: usize) -> Option<usize> {
        (self.free.capacity() - self.free.len() < n)
            .then(|| (self.free.len() + n).max(self.free.capacity() * 2))
    }

    /// Moves the list of free slots into `bigger` if it has room for `n` more (the list may
    /// have grown since `bigger` was sized); returns the vector to drop once the lock is
    /// released, the old list or `bigger` unused.
    pub(crate) fn install_free_list(&mut self, mut bigger: Vec<u32>, n: usize) -> Vec<u32> {
        if bigger.capacity() < self.free.len() + n {
            return bigger;
        }
        bigger.extend_from_slice(&self.free);
        std::mem::replace(&mut self.free, bigger)
    }

    /// Hands the member lists of tag sets freed under this lock to `pending`, to be dropped
    /// after it is released (see [`crate::tag_index`] for why).
    pub(crate) fn retire_tag_memory(&mut self, pending: &mut Pending<K, V>) {
        if !self.slots.tags.has_retired() {
            return;
        }
        let mut retired = self.slots.tags.take_retired();
        if let Some(earlier) = pending.retired.take() {
            retired.extend(earlier.into_vec());
        }
        pending.retired = Some(retired.into_boxed_slice());
    }

    fn reclaim_members(&mut self, budget: ReclaimBudget, pending: &mut Pending<K, V>) -> usize {
        if self.reclaim.is_empty() {
            return 0;
        }
        let clock = crate::clock::work_clock();
        let start = clock.raw();
        let mut n = 0;
        while n < budget.entries {
            let Some(&set) = self.reclaim.last() else {
                break;
            };
            let Some(idx) = self.slots.tags.pop_dead_member(set, &self.slots.tag_gens) else {
                self.reclaim.pop();
                continue;
            };
            n += 1;
            let cause = match self.slots.tags.dead(set) {
                DEAD_TAG => RemovalCause::Tag,
                _ => RemovalCause::Dependency,
            };
            let r = self.remove_slot(idx, cause, &pending.context);
            pending.push_deferred(r);
            if n % CLOCK_EVERY == 0 && clock.delta_as_nanos(start, clock.raw()) >= budget.nanos {
                break;
            }
        }
        n
    }

    /// Reads what the next reclamation batch of up to `n` entries will touch (entries, their
    /// metadata, their hash buckets) under the read lock, which readers share, so that the
    /// write-lock hold that follows finds it in cache and ends sooner. The result only keeps
    /// the reads from being optimised away.
    pub(crate) fn warm_reclaim(&self, n: usize) -> u64 {
        let Some(&set) = self.reclaim.last() else {
            return 0;
        };
        let mut acc = 0;
        for idx in self
            .slots
            .tags
            .next_dead_members(set, &self.slots.tag_gens)
            .take(n)
        {
            let hash = self.slots.get(idx).hash;
            let found = self.table.find(hash, |&i| i == idx).copied();
            acc ^= hash ^ self.slots.get(idx).created() ^ u64::from(found.unwrap_or(0));
        }
        acc
    }

    /// Marks dead every tag set carrying a tag of `subtree` (a tag invalidated at `epoch` and
    /// the tags below it), queueing their entries for reclamation.
    pub(crate) fn kill_tags(&mut self, subtree: &[Arc<TagNode>], epoch: u64) {
        let mut ids: Vec<u32> = Vec::new();
        if subtree.len() > self.slots.tags.len() {
            // A large subtree: cheaper to look at every tag this shard holds.
            ids.extend(
                self.slots
                    .tags
                    .all_tags()
                    .filter(|(_, n)| n.latest_invalidation() >= epoch)
                    .map(|(i, _)| i),
            );
        } else {
            ids.extend(
                subtree
                    .iter()
                    .filter_map(|n| self.slots.tags.id_of(n.name())),
            );
        }
        for id in ids {
            self.slots.tags.kill(id, &mut self.reclaim);
        }
    }

    /// Whether reclamation work is queued.
    pub(crate) fn has_reclaim_work(&self) -> bool {
        !self.reclaim.is_empty()
    }

    /// Live keys carrying `nodes` (a tag's subtree) that can be served.
    pub(crate) fn keys_tagged(
        &self,
        nodes: &[Arc<TagNode>],
        now: u64,
        hidden: bool,
        out: &mut Vec<K>,
    ) {
        // An entry whose set carries two tags of the subtree is reached twice.
        let mut seen = HashSet::default();
        for n in nodes {
            let Some((_, sets)) = self.slots.tags.sets_of(n.name()) else {
                continue;
            };
            for set in sets {
                for idx in self.slots.tags.members(set, &self.slots.tag_gens) {
                    let wanted = if hidden {
                        self.slots.tags.dead(self.slots.get(idx).tagset()) != 0
                    } else {
                        self.slots.dead_cause(idx, now).is_none()
                    };
                    if seen.insert(idx) && wanted {
                        out.push(self.slots.get(idx).key.clone());
                    }
                }
            }
        }
    }

    /// Slots of live entries whose key matches `glob`; through the key index when there is one
    /// (visiting only keys with the glob's literal prefix), else by a scan.
    pub(crate) fn matching(&self, glob: &Glob, bytes: fn(&K) -> &[u8]) -> Vec<u32> {
        match &self.key_index {
            Some(ki) => {
                let prefix = glob.literal_prefix();
                let exact = glob.is_prefix();
                ki.map
                    .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .filter(|(k, _)| exact || glob.matches(k))
                    .map(|(_, &i)| i)
                    .collect()
            }
            None => self
                .table
                .iter()
                .copied()
                .filter(|&i| glob.matches(bytes(&self.slots.get(i).key)))
                .collect(),
        }
    }

    fn evict_victims(&mut self, pending: &mut Pending<K, V>) {
        let mut victims = std::mem::take(&mut self.scratch);
        for idx in victims.drain(..) {
            self.discard(idx, RemovalCause::Evicted, pending);
        }
        self.scratch = victims;
    }

    pub(crate) fn set_deadline(&mut self, idx: u32, deadline: u64) {
        self.slots
            .get(idx)
            .deadline
            .store(deadline, Ordering::Relaxed);
        if deadline == NEVER {
            self.timers.unschedule(idx);
        } else {
            self.timers.schedule(idx, self.slots.hard_deadline(idx));
        }
    }

    /// Inserts or replaces `key`, unless a condition, floor or lease refuses the write.
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        w: Write<'_, K>,
        pending: &mut Pending<K, V>,
    ) -> Result<Inserted, Rejected> {
        let existing = self.find(hash, &key);
        if let Some(idx) = existing {
            if let Some(cause) = self.slots.dead_cause(idx, w.now) {
                self.discard(idx, cause, pending);
            }
        }
        let existing = existing.filter(|&i| self.slots.is_live(i));
        let current = existing.map(|i| self.slots.get(i).version);
        match w.lease {
            Some(grant) => {
                if !self.take_lease(hash, &key, grant.token, w.now) {
                    return Err(Rejected::new(RejectReason::LeaseInvalid, current));
                }
            }
            None => self.revoke_lease(hash, &key),
        }
        let version = w
            .options
            .version
            .unwrap_or_else(|| current.map_or(1, |v| v.wrapping_add(1)));
        if let Some(v) = w.options.version {
            if v < self.fences.floor(hash, &key, w.now) {
                self.invalidation
                    .writes_fenced
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Rejected::new(RejectReason::Fenced, current));
            }
        }
        if let Some(c) = w.options.condition {
            let refused = match c {
                WriteCondition::IfAbsent => current.map(|_| RejectReason::Exists),
                WriteCondition::IfPresent => current.is_none().then_some(RejectReason::Missing),
                WriteCondition::IfNewer => current
                    .filter(|&v| v >= version)
                    .map(|_| RejectReason::NotNewer),
                WriteCondition::IfVersion(expected) => match current {
                    None => Some(RejectReason::Missing),
                    Some(v) if v != expected => Some(RejectReason::VersionMismatch),
                    Some(_) => None,
                },
            };
            if let Some(reason) = refused {
                return Err(Rejected::new(reason, current));
            }
        }
        // The tag set: found by the names' fingerprint (one lookup), else built from the
        // names (validating them) and created.
        let found = if w.tag_fp == 0 {
            Some(0)
        } else {
            self.slots.tags.set_by_fingerprint(w.tag_fp)
        };
        let mut lists: Membership = SmallVec::new();
        if found.is_none() {
            for t in w.tags {
                match self.slots.tags.resolve(t, &self.invalidation.tags) {
                    Ok(id) if !lists.iter().any(|l| l.0 == id) => lists.push((id, false)),
                    Ok(_) => {}
                    Err(_) => {
                        self.release_tags(&lists);
                        return Err(Rejected::new(RejectReason::BadTag, current));
                    }
                }
            }
            for t in w.inherited {
                if let Ok(id) = self.slots.tags.resolve(t, &self.invalidation.tags) {
                    if !lists.iter().any(|l| l.0 == id) {
                        lists.push((id, true));
                    }
                }
            }
        }
        // Only floors and fills need the set's tags (the set's record is cold memory).
        let any_floor = self.invalidation.tags.any_floor();
        let (floor, invalidated) = if any_floor || w.lease.is_some() {
            let members: &[(u32, bool)] = match found {
                Some(set) => self.slots.tags.tags(set),
                None => &lists,
            };
            let floor = members
                .iter()
                .filter(|l| any_floor && !l.1)
                .map(|&(l, _)| self.slots.tags.node(l).floor())
                .fold(w.floor, u64::max);
            // A fill is checked under the lock, where tag invalidations mark this shard's
            // sets: an invalidation of one of its tags after the lease was issued refuses it.
            let invalidated = w.lease.is_some_and(|grant| {
                members
                    .iter()
                    .any(|&(l, _)| self.slots.tags.node(l).latest_invalidation() > grant.epoch)
            });
            (floor, invalidated)
        } else {
            (w.floor, false)
        };
        if version < floor || invalidated {
            self.release_tags(&lists);
            let reason = if invalidated {
                RejectReason::InvalidatedSinceLease
            } else {
                RejectReason::BelowFloor
            };
            return Err(Rejected::new(reason, current));
        }
        self.invalidation.log_removal(hash);
        if u64::from(w.weight) > self.eviction.capacity() {
            // Can never fit: the old value must not survive a newer write, and the new one is
            // refused at once.
            if let Some(idx) = existing {
                self.counters.updates += 1;
                self.discard(idx, RemovalCause::Replaced, pending);
            }
            self.counters.removals[RemovalCause::Evicted.index()] += 1;
            if let Some(h) = &mut self.history {
                let now = Timestamp(w.now);
                let mut written = Record::new(now, Happened::Written);
                written.version = Some(version);
                written.set_tags(w.tags, w.inherited);
                written.origin.clone_from(&pending.context.origin);
                let evicted = Record::new(now, Happened::Removed(RemovalCause::Evicted));
                h.passed(hash, &key, written, evicted);
            }
            pending.push(key, value, RemovalCause::Evicted, None);
            self.release_tags(&lists);
            return Ok(if existing.is_some() {
                Inserted::Replaced
            } else {
                Inserted::New
            });
        }
        let ttl = w.options.ttl.as_ref().unwrap_or(&w.defaults.ttl);
        let jitter = w.options.jitter.unwrap_or(w.defaults.jitter);
        let early = w.options.early_refresh.or(w.defaults.early_refresh);
        let extras = w.extras;
        let set = match found {
            Some(set) => set,
            None if lists.is_empty() => 0,
            None => {
                self.invalidation.note_tagged();
                self.slots.tags.set_for(lists, w.tag_fp)
            }
        };
        match existing {
            Some(idx) => {
                let old_state = self.slots.take_expiry(idx);
                let entry = self.slots.get(idx);
                let (deadline, state) = if w.options.keep_ttl {
                    (entry.deadline(), old_state)
                } else {
                    let previous = old_state.as_deref().map(|s| (s, entry.updated));
                    expiry::on_write(ttl, jitter, early, w.now, previous)
                };
                let old_extras = self
                    .slots
                    .set_rare(
                        idx,
                        Rare {
                            expiry: state,
                            extras,
                        },
                    )
                    .and_then(|r| r.extras);
                let entry = self.slots.hot_mut(idx);
                entry.record_write(version, w.now);
                let old_set = entry.tagset();
                entry.set_tagset(set);
                let old_weight = u64::from(entry.weight);
                entry.weight = w.weight;
                let old = std::mem::replace(&mut entry.value, value);
                self.counters.updates += 1;
                self.counters.removals[RemovalCause::Replaced.index()] += 1;
                // The same live set (the usual rewrite of a key with the same tags): the slot
                // stays a member as it is, with nothing to record. Otherwise out of the old set
                // first (new generation), then into the new one.
                if old_set != set {
                    if old_set != 0 {
                        self.slots.tag_gens[idx as usize] =
                            self.slots.tag_gens[idx as usize].wrapping_add(1);
                    }
                    self.slots.join_set(idx, set);
                    if old_set != 0 {
                        self.slots.tags.leave(old_set);
                    }
                }
                let old_deps = old_extras.and_then(|x| x.deps);
                if let Some(h) = &mut self.history {
                    let origin = pending.context.origin.as_ref();
                    h.written(idx, w.now, Some(version), w.tags, w.inherited, origin);
                }
                pending.push(key, old, RemovalCause::Replaced, old_deps);
                self.set_deadline(idx, deadline);
                let mut victims = std::mem::take(&mut self.scratch);
                self.eviction
                    .on_update(idx, old_weight, &self.slots, &mut victims);
                self.scratch = victims;
                self.evict_victims(pending);
                Ok(Inserted::Replaced)
            }
            None => {
                let (deadline, state) = expiry::on_write(ttl, jitter, early, w.now, None);
                let key_copy: Option<Box<[u8]>> =
                    self.key_index.as_ref().map(|ki| (ki.bytes)(&key).into());
                let mut entry = Entry::new(key, value, hash, deadline, w.weight, version, w.now);
                entry.set_tagset(set);
                let idx = match self.free.pop() {
                    Some(i) => {
                        self.slots.hot[i as usize] = Some(entry);
                        i
                    }
                    None => {
                        // The policy's links keep a flag in an index's top bit.
                        assert!(
                            self.slots.hot.len() < crate::eviction::MAX_SLOTS,
                            "fewer than 2^31 entries per shard"
                        );
                        self.slots.hot.push(Some(entry));
                        (self.slots.hot.len() - 1) as u32
                    }
                };
                let rare = Rare {
                    expiry: state,
                    extras,
                };
                if !rare.is_empty() {
                    self.slots.set_rare(idx, rare);
                }
                if let (Some(ki), Some(k)) = (&mut self.key_index, key_copy) {
                    ki.map.insert(k, idx);
                }
                self.slots.join_set(idx, set);
                if let Some(h) = &mut self.history {
                    let origin = pending.context.origin.as_ref();
                    h.written(idx, w.now, Some(version), w.tags, w.inherited, origin);
                }
                let slots = &self.slots;
                self.table.insert_unique(hash, idx, |&i| slots.get(i).hash);
                self.counters.inserts += 1;
                if deadline != NEVER {
                    self.timers.schedule(idx, self.slots.hard_deadline(idx));
                }
                self.eviction.observe_len(self.table.len());
                let mut victims = std::mem::take(&mut self.scratch);
                self.eviction.on_insert(idx, &self.slots, &mut victims);
                self.scratch = victims;
                self.evict_victims(pending);
                Ok(Inserted::New)
            }
        }
    }

    /// Accounts for the value in slot `idx` having been changed in place: the new weight, a
    /// new version and write time, and, as for a replacement, a revoked lease, a logged removal
    /// (for fills depending on the key), the listener and the dependents told (through
    /// `pending.modified`), and eviction if the entry grew.
    pub(crate) fn modified(
        &mut self,
        idx: u32,
        weight: u32,
        now: u64,
        pending: &mut Pending<K, V>,
    ) {
        if pending.collect {
            pending.modified.push(self.slots.get(idx).key.clone());
        }
        self.account_change(idx, weight, now, pending);
    }

    /// [`Self::modified`] without telling the listener (the caller reported the old value):
    /// recorded in the history as a change in place.
    pub(crate) fn account_change(
        &mut self,
        idx: u32,
        weight: u32,
        now: u64,
        pending: &mut Pending<K, V>,
    ) {
        if let Some(h) = &mut self.history {
            h.written(idx, now, None, &[], &[], pending.context.origin.as_ref());
        }
        let entry = self.slots.hot_mut(idx);
        let old_weight = u64::from(entry.weight);
        entry.weight = weight;
        entry.record_write(entry.version.wrapping_add(1), now);
        let hash = entry.hash;
        self.counters.updates += 1;
        self.counters.removals[RemovalCause::Replaced.index()] += 1;
        if !self.leases.is_empty() {
            let key = self.slots.get(idx).key.clone();
            self.revoke_lease(hash, &key);
        }
        self.invalidation.log_removal(hash);
        let mut victims = std::mem::take(&mut self.scratch);
        self.eviction
            .on_update(idx, old_weight, &self.slots, &mut victims);
        self.scratch = victims;
        self.evict_victims(pending);
    }

    /// Sets the deadline of the live entry in slot `idx` (`NEVER` for none), dropping any
    /// sliding or adaptive behaviour as an explicit deadline does in Redis.
    pub(crate) fn set_entry_deadline(&mut self, idx: u32, deadline: u64) {
        let state = self
            .slots
            .take_expiry(idx)
            .and_then(|s| s.early_refresh)
            .filter(|_| deadline != NEVER)
            .map(expiry::ExpiryState::early_only);
        self.slots.set_expiry(idx, state);
        self.set_deadline(idx, deadline);
    }

    fn revoke_lease(&mut self, hash: u64, key: &K) {
        if self.leases.is_empty() {
            return;
        }
        if let Some(l) = self.leases.find_mut(hash, |l| l.key == *key) {
            l.revoked = true;
        }
    }

    /// Consumes the lease `token` on `key`; true if it was outstanding and valid.
    fn take_lease(&mut self, hash: u64, key: &K, token: u64, now: u64) -> bool {
        match self
            .leases
            .find_entry(hash, |l| l.key == *key && l.grant.token == token)
        {
            Ok(found) => {
                let (l, _) = found.remove();
                self.invalidation.leases.fetch_sub(1, Ordering::SeqCst);
                !l.revoked && now < l.expires
            }
            Err(_) => false,
        }
    }

    /// Revokes outstanding leases on keys matching `glob` (a pattern invalidation covers keys
    /// that are not cached, too).
    pub(crate) fn revoke_leases_matching(&mut self, glob: &Glob, bytes: fn(&K) -> &[u8]) {
        for l in self.leases.iter_mut() {
            if glob.matches(bytes(&l.key)) {
                l.revoked = true;
            }
        }
    }

    /// Drops tags resolved for a write that did not happen, if nothing else uses them.
    fn release_tags(&mut self, lists: &Membership) {
        for &(l, _) in lists {
            self.slots.tags.release(l);
        }
    }

    /// Names of the tags the entry in `idx` carries: declared ones, and with `inherited` also
    /// those it carries for its dependencies.
    pub(crate) fn tag_names(&self, idx: u32, inherited: bool, out: &mut Vec<String>) {
        let tags = &self.slots.tags;
        out.extend(
            tags.tags(self.slots.get(idx).tagset())
                .iter()
                .filter(|&&(_, inh)| inherited || !inh)
                .map(|&(t, _)| tags.node(t).name().to_owned()),
        );
    }

    /// Makes the live entry for `key` carry `tags` too (inherited from a dependency stored after
    /// it): it moves to a live set, so only invalidations from now on concern it.
    pub(crate) fn inherit_tags(&mut self, hash: u64, key: &K, tags: &[String], now: u64) {
        let Some(idx) = self.find_live(hash, key, now) else {
            return;
        };
        let old_set = self.slots.get(idx).tagset();
        let mut lists: Membership = self.slots.tags.tags(old_set).clone();
        for t in tags {
            if let Ok(id) = self.slots.tags.resolve(t, &self.invalidation.tags) {
                if !lists.iter().any(|l| l.0 == id) {
                    lists.push((id, true));
                }
            }
        }
        if lists.len() == self.slots.tags.tags(old_set).len() {
            return;
        }
        self.invalidation.note_tagged();
        let names: Vec<(String, bool)> = lists
            .iter()
            .map(|&(l, inh)| (self.slots.tags.node(l).name().to_owned(), inh))
            .collect();
        let fp = fingerprint(names.iter().map(|(n, i)| (n.as_str(), *i)));
        let set = self.slots.tags.set_for(lists, fp);
        if let Some(e) = self.slots.hot[idx as usize].as_mut() {
            e.set_tagset(set);
        }
        if old_set != 0 {
            self.slots.tag_gens[idx as usize] = self.slots.tag_gens[idx as usize].wrapping_add(1);
        }
        self.slots.join_set(idx, set);
        if old_set != 0 {
            self.slots.tags.leave(old_set);
        }
    }

    /// The latest invalidation of any tag the entry in `idx` carries (0 if none).
    pub(crate) fn latest_tag_invalidation(&self, idx: u32) -> u64 {
        let tags = &self.slots.tags;
        tags.tags(self.slots.get(idx).tagset())
            .iter()
            .map(|&(t, _)| tags.node(t).latest_invalidation())
            .max()
            .unwrap_or(0)
    }

    /// Entries declaring a tag in `nodes` (a subtree) whose version is below `floor`.
    pub(crate) fn below_floor(&self, nodes: &[Arc<TagNode>], floor: u64) -> Vec<u32> {
        let tags = &self.slots.tags;
        let mut out = Vec::new();
        for n in nodes {
            let Some((id, sets)) = tags.sets_of(n.name()) else {
                continue;
            };
            for set in sets {
                if !tags.tags(set).contains(&(id, false)) {
                    continue;
                }
                for idx in tags.members(set, &self.slots.tag_gens) {
                    if self.slots.get(idx).version < floor && !out.contains(&idx) {
                        out.push(idx);
                    }
                }
            }
        }
        out
    }

    /// Gives up the lease `token` on `key`, if still outstanding.
    pub(crate) fn release_lease(&mut self, hash: u64, key: &K, token: u64) {
        if let Ok(found) = self
            .leases
            .find_entry(hash, |l| l.key == *key && l.grant.token == token)
        {
            found.remove();
            self.invalidation.leases.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A lease on `key`, unless it is cached or another lease is outstanding.
    pub(crate) fn acquire_lease(
        &mut self,
        hash: u64,
        key: &K,
        now: u64,
        timeout: u64,
        pending: &mut Pending<K, V>,
    ) -> LeaseState {
        let found = self.find(hash, key);
        let mut stale = None;
        if let Some(idx) = found {
            match self.slots.dead_cause(idx, now) {
                None => return LeaseState::Hit(idx),
                Some(RemovalCause::Expired) if now < self.slots.hard_deadline(idx) => {
                    stale = Some(idx);
                }
                Some(cause) => self.discard(idx, cause, pending),
            }
        }
        if let Some(l) = self.leases.find(hash, |l| l.key == *key) {
            if now < l.expires && !l.revoked {
                return LeaseState::Pending(stale);
            }
        }
        if let Ok(found) = self.leases.find_entry(hash, |l| l.key == *key) {
            found.remove();
            self.invalidation.leases.fetch_sub(1, Ordering::SeqCst);
        }
        // Counted before the epoch is taken: a removal that misses the count happened before
        // the epoch, so the lease need not see it. The log exists before the count is seen.
        self.invalidation.removals.ensure();
        self.invalidation.leases.fetch_add(1, Ordering::SeqCst);
        let grant = Grant::new(self.invalidation.next_epoch());
        self.leases.insert_unique(
            hash,
            LeaseSlot {
                key: key.clone(),
                hash,
                grant,
                expires: now.saturating_add(timeout),
                revoked: false,
            },
            |l| l.hash,
        );
        LeaseState::Granted(grant)
    }

    fn expire_leases(&mut self, now: u64) {
        let before = self.leases.len();
        self.leases.retain(|l| now < l.expires);
        let dropped = before - self.leases.len();
        if dropped > 0 {
            self.invalidation
                .leases
                .fetch_sub(dropped, Ordering::SeqCst);
        }
    }

    /// Removes `key` if live, counting it under `cause`; an expired or tag-hidden one is
    /// reclaimed under its own cause and not returned.
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u64,
        key: &Q,
        now: u64,
        pending: &mut Pending<K, V>,
        cause: RemovalCause,
    ) -> Option<Removed<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let Some(idx) = self.find(hash, key) else {
            if !self.leases.is_empty() {
                // An invalidation of a missing key must still stop an outstanding fill.
                if let Some(l) = self.leases.find_mut(hash, |l| l.key.borrow() == key) {
                    l.revoked = true;
                }
            }
            return None;
        };
        if let Some(dead) = self.slots.dead_cause(idx, now) {
            self.discard(idx, dead, pending);
            return None;
        }
        Some(self.remove_slot(idx, cause, &pending.context))
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
        if !cond.allows(self.slots.get(idx).deadline(), deadline) {
            return false;
        }
        if deadline <= now {
            self.discard(idx, RemovalCause::Expired, pending);
            return true;
        }
        // An explicit deadline replaces sliding/adaptive behaviour, as in Redis; an early-refresh
        // hint still applies to the new deadline.
        self.set_entry_deadline(idx, deadline);
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
        if self.slots.get(idx).deadline() == NEVER {
            return false;
        }
        self.slots.take_expiry(idx);
        self.set_deadline(idx, NEVER);
        true
    }

    /// Removes everything, reported as explicit removals.
    pub(crate) fn clear(&mut self, now: u64, pending: &mut Pending<K, V>) {
        self.counters.removals[RemovalCause::Explicit.index()] += self.table.len() as u64;
        self.table.clear();
        self.free.clear();
        self.eviction.clear();
        self.timers = TimerWheel::new(now);
        self.slots.tags.clear();
        self.slots.tag_gens.clear();
        self.reclaim.clear();
        if let Some(ki) = &mut self.key_index {
            ki.map.clear();
        }
        for l in self.leases.iter_mut() {
            l.revoked = true;
        }
        let mut rare = std::mem::take(&mut self.slots.rare);
        for (idx, entry) in self.slots.hot.drain(..).enumerate() {
            let Some(entry) = entry else { continue };
            let idx = u32::try_from(idx).expect("fewer than 2^32 entries per shard");
            if let Some(h) = &mut self.history {
                h.removed(
                    idx,
                    entry.hash,
                    &entry.key,
                    RemovalCause::Explicit,
                    &pending.context,
                );
            }
            let extras = if entry.has_rare() {
                rare.remove(&idx).and_then(|r| r.extras)
            } else {
                None
            };
            self.invalidation.log_removal(entry.hash);
            pending.push(
                entry.key,
                entry.value,
                RemovalCause::Explicit,
                extras.and_then(|x| x.deps),
            );
        }
    }

    /// Slot indices of every stored entry (for scans).
    pub(crate) fn slot_indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().copied()
    }
}

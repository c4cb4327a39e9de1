//! Atomic read-modify-write: code that reads a key's value and changes it in place, or several
//! keys at once, with no other thread seeing a half-done change.
//!
//! [`Cache::compute`] runs a closure on one key's live value (or its absence) under the key's
//! shard write lock; the closure changes the value in place, replaces it, removes it or leaves
//! it, and the engine then re-weighs the entry and tells the listener, the dependency graph,
//! leases and the statistics exactly what an insert or remove doing the same would have told
//! them. [`Cache::lock`] takes the locks of several keys' shards (always in shard order, so two
//! callers locking overlapping keys cannot deadlock) and returns a [`KeyLock`]: every read and
//! write through it on those keys happens while all of them are held, so a multi-key change
//! (a transfer, an MSET, a transaction) is all or nothing to other threads.
//!
//! The shape follows moka's `entry().and_compute_with` (one closure deciding the key's fate)
//! but hands the closure a mutable view ([`EntryMut`]) instead of asking it for a new value,
//! so a large value (a hash with many fields, a list) is changed without being copied.
//!
//! # Example
//! ```
//! use lethe::Cache;
//!
//! let cache: Cache<String, Vec<u64>> = Cache::new(1_000);
//! // Append in place (no copy of the vector), creating the value when missing.
//! for n in [1, 2, 3] {
//!     cache.compute("log".to_string(), |e| match e.get_mut() {
//!         Some(v) => v.push(n),
//!         None => {
//!             e.insert(vec![n]).expect("no version floor here");
//!         }
//!     });
//! }
//! assert_eq!(cache.get("log"), Some(vec![1, 2, 3]));
//!
//! // Move the last element from one key to another: nobody sees it in both or in neither.
//! cache.insert("other".to_string(), Vec::new());
//! let (from, to) = ("log".to_string(), "other".to_string());
//! let mut lock = cache.lock([&from, &to]);
//! let moved = lock.compute(&from, |e| e.get_mut().and_then(|v| v.pop()));
//! if let Some(n) = moved {
//!     lock.compute(&to, |e| e.get_mut().map(|v| v.push(n)));
//! }
//! drop(lock);
//! assert_eq!(cache.get("log"), Some(vec![1, 2]));
//! assert_eq!(cache.get("other"), Some(vec![3]));
//! ```
//!
//! # Calling back into the cache
//! Code running under the locks (a compute closure, or anything while a [`KeyLock`] is alive)
//! must not call methods of the same cache other than the [`KeyLock`]'s own: a shard lock is
//! not reentrant, so such a call could deadlock. In debug builds it panics instead, naming the
//! mistake. Listeners and the dependency cascade run after the locks are released, so they may
//! use the cache freely.

use crate::cache::Cache;
use crate::clock::{Timestamp, duration_nanos};
use crate::entry::{EntryMetadata, InsertOptions};
use crate::expiry::{ExpireCondition, KeyTtl, NEVER, Ttl};
use crate::listener::{Pending, RemovalCause};
use crate::shard::{Shard, WRITE_RECLAIM, Write};
use crate::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};
use crate::tag_index::fingerprint;
use crate::version::{Inserted, RejectReason, Rejected};
use smallvec::SmallVec;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

/// A lock on one shard, for reading or for writing.
enum ShardGuard<'c, K, V> {
    Read(RwLockReadGuard<'c, Shard<K, V>>),
    Write(RwLockWriteGuard<'c, Shard<K, V>>),
}

impl<K, V> ShardGuard<'_, K, V> {
    fn shard(&self) -> &Shard<K, V> {
        match self {
            ShardGuard::Read(g) => g,
            ShardGuard::Write(g) => g,
        }
    }
}

/// The shard locks of a set of keys, held until dropped; see [`Cache::lock`] and
/// [`Cache::lock_read`].
///
/// Methods taking a key panic if the key's shard is not among the locked ones (the key was not
/// passed to `lock`), and writing methods panic on a lock taken for reading: both are bugs in
/// the caller, not conditions to handle. Removals (and the dependency cascade) are delivered
/// when the lock is dropped, after every shard lock is released.
pub struct KeyLock<'c, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    cache: &'c Cache<K, V, S>,
    /// Shard index and its lock, sorted by index.
    guards: SmallVec<[(usize, ShardGuard<'c, K, V>); 2]>,
    pending: Pending<K, V>,
    now: u64,
    #[cfg(debug_assertions)]
    _reentry: reentry::Held,
}

impl<K, V, S> fmt::Debug for KeyLock<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLock")
            .field(
                "shards",
                &self.guards.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// How a [`EntryMut`] ends: what the engine must do once the closure returned.
enum State<V> {
    /// No live entry, nothing to create.
    Absent,
    /// The live entry in this slot.
    Live(u32),
    /// A value to store as a new entry.
    New(V),
}

/// A key's entry as a compute closure sees it: the live value, or nothing; see
/// [`Cache::compute`].
///
/// A change made through [`Self::get_mut`] or [`Self::insert`] counts as one write of the key
/// when the closure returns (one new version, one notification), however many changes the
/// closure made.
pub struct EntryMut<'a, K, V> {
    key: &'a K,
    state: State<V>,
    shard: &'a mut Shard<K, V>,
    /// Set by `get_mut` on a live entry.
    modified: bool,
    /// Set by `insert` on a live entry (the old value was reported as replaced).
    replaced: bool,
    /// Set when the live entry was removed.
    removed: bool,
    /// A deadline to set: `Some(NEVER)` removes it.
    deadline: Option<u64>,
    /// The highest version floor covering the key (a new entry below it is refused).
    floor: u64,
    now: u64,
    pending: &'a mut Pending<K, V>,
}

impl<K, V> fmt::Debug for EntryMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Absent => "absent",
            State::Live(_) => "live",
            State::New(_) => "new",
        };
        f.debug_struct("EntryMut")
            .field("state", &state)
            .field("modified", &self.modified)
            .finish()
    }
}

impl<K: Hash + Eq + Clone, V> EntryMut<'_, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The current value: the live one, or the one inserted by this closure.
    pub fn get(&self) -> Option<&V> {
        match &self.state {
            State::Absent => None,
            State::Live(idx) => Some(&self.shard.slots.get(*idx).value),
            State::New(v) => Some(v),
        }
    }

    /// Whether there is a value.
    pub fn is_present(&self) -> bool {
        !matches!(self.state, State::Absent)
    }

    /// The current value, to change in place. Counts as a write of the key (even if nothing
    /// ends up changed): look with [`Self::get`] first when the change may not happen.
    pub fn get_mut(&mut self) -> Option<&mut V> {
        match &mut self.state {
            State::Absent => None,
            State::Live(idx) => {
                self.modified = true;
                let idx = *idx;
                Some(&mut self.shard.slots.hot_mut(idx).value)
            }
            State::New(v) => Some(v),
        }
    }

    /// Stores `value`: a new entry if there was none (with the cache's default expiry unless
    /// [`Self::set_ttl`] says otherwise), else the value is replaced and the entry keeps its
    /// deadline, tags and dependencies (the old value goes to the listener as replaced).
    /// Refused, and nothing stored, when the key has no entry and a version floor covers it
    /// (a new entry would start below the floor).
    pub fn insert(&mut self, value: V) -> Result<&mut V, Rejected> {
        match self.state {
            State::Absent | State::New(_) => {
                if self.floor > 1 {
                    return Err(Rejected::new(RejectReason::BelowFloor, None));
                }
                self.state = State::New(value);
            }
            State::Live(idx) => {
                self.replaced = true;
                let old = std::mem::replace(&mut self.shard.slots.hot_mut(idx).value, value);
                self.pending
                    .push(self.key.clone(), old, RemovalCause::Replaced, None);
            }
        }
        Ok(self.get_mut().expect("just stored"))
    }

    /// The current value, or `make()` stored as a new entry (see [`Self::insert`]), to change
    /// in place; counts as a write either way.
    pub fn or_insert_with(&mut self, make: impl FnOnce() -> V) -> Result<&mut V, Rejected> {
        if matches!(self.state, State::Absent) {
            return self.insert(make());
        }
        Ok(self.get_mut().expect("present"))
    }

    /// Removes the value: the live entry is removed as an explicit removal (the listener gets
    /// the value). True if there was a value.
    pub fn remove(&mut self) -> bool {
        match std::mem::replace(&mut self.state, State::Absent) {
            State::Absent => false,
            State::New(_) => true,
            State::Live(idx) => {
                self.clear_changes();
                let r = self
                    .shard
                    .remove_slot(idx, RemovalCause::Explicit, &self.pending.context);
                self.pending.push(r.key, r.value, r.cause, r.deps);
                true
            }
        }
    }

    /// Removes the value and returns it (see [`Self::remove`]); when a listener or dependency
    /// needs the removal reported, the value is cloned for it.
    pub fn take(&mut self) -> Option<V>
    where
        V: Clone,
    {
        match std::mem::replace(&mut self.state, State::Absent) {
            State::Absent => None,
            State::New(v) => Some(v),
            State::Live(idx) => {
                self.clear_changes();
                let r = self
                    .shard
                    .remove_slot(idx, RemovalCause::Explicit, &self.pending.context);
                let value = if self.pending.collect || r.deps.is_some() {
                    let v = r.value.clone();
                    self.pending.collect = true;
                    self.pending.push(r.key, r.value, r.cause, r.deps);
                    v
                } else {
                    r.value
                };
                Some(value)
            }
        }
    }

    fn clear_changes(&mut self) {
        self.modified = false;
        self.replaced = false;
        self.deadline = None;
        self.removed = true;
    }

    /// Whether the closure changed anything so far: the value (in place, replaced, created or
    /// removed) or, for a value that exists, its deadline.
    pub fn is_changed(&self) -> bool {
        self.modified
            || self.replaced
            || self.removed
            || matches!(self.state, State::New(_))
            || (self.deadline.is_some() && self.is_present())
    }

    /// The remaining time to live (`Missing` when there is no value).
    pub fn ttl(&self) -> KeyTtl {
        match self.state {
            State::Absent => KeyTtl::Missing,
            State::New(_) => match self.deadline {
                Some(d) if d != NEVER => crate::expiry::remaining(d, Timestamp(self.now)),
                _ => KeyTtl::Persistent,
            },
            State::Live(idx) => {
                let d = self
                    .deadline
                    .unwrap_or_else(|| self.shard.slots.get(idx).deadline());
                crate::expiry::remaining(d, Timestamp(self.now))
            }
        }
    }

    /// The live entry's metadata (version, times, TTL), as of before this closure's changes.
    pub fn metadata(&self) -> Option<EntryMetadata> {
        match self.state {
            State::Live(idx) => Some(self.shard.slots.metadata(idx, self.now)),
            _ => None,
        }
    }

    /// Gives the value a time to live from now (`None`: no deadline), replacing any it had.
    /// Applied when the closure returns, if there is a value then.
    pub fn set_ttl(&mut self, ttl: Option<Duration>) {
        self.deadline = Some(match ttl {
            None => NEVER,
            Some(d) => self.now.saturating_add(duration_nanos(d)).min(NEVER - 1),
        });
    }

    /// Gives the value an absolute deadline (see [`Self::set_ttl`]).
    pub fn set_deadline(&mut self, at: Timestamp) {
        self.deadline = Some(at.0.min(NEVER - 1));
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Runs `f` on `key`'s entry under its shard's write lock and applies what it did, as one
    /// atomic step: no other thread sees the key between the closure's read and its write.
    ///
    /// The closure gets an [`EntryMut`]: the live value (expired and invalidated entries count
    /// as absent), which it may read, change in place ([`EntryMut::get_mut`]), replace or
    /// create ([`EntryMut::insert`]), remove ([`EntryMut::remove`]) or leave alone, and give a
    /// new deadline. When it returns, the engine accounts for what changed exactly as the
    /// equivalent `insert`/`remove` would: a changed entry is re-weighed (and may cause
    /// evictions), gets a new version and write time, revokes an outstanding lease on the key,
    /// invalidates the key's dependents and reaches the removal listener (an in-place change
    /// through [`crate::listener::RemovalListener::on_modified`], a replaced value with its old value, a
    /// removal as [`RemovalCause::Explicit`]); the entry keeps its tags, dependencies and
    /// deadline unless the closure set one. Creating an entry under a version floor is refused
    /// (see [`EntryMut::insert`]).
    ///
    /// The closure runs under the shard lock: keep it short, and do not call this cache from
    /// it (see the [module docs](crate::compute) — debug builds panic on such a call).
    ///
    /// ```
    /// use lethe::Cache;
    /// let cache: Cache<String, Vec<u32>> = Cache::new(100);
    /// // Append to a list stored under a key, creating it if needed, without copying it.
    /// for n in 0..3 {
    ///     cache.compute("log".to_string(), |e| e.or_insert_with(Vec::new).unwrap().push(n));
    /// }
    /// assert_eq!(cache.get("log"), Some(vec![0, 1, 2]));
    /// // Pop the last element; remove the key once the list is empty.
    /// let popped = cache.compute("log".to_string(), |e| {
    ///     let v = e.get_mut()?.pop();
    ///     if e.get().is_some_and(Vec::is_empty) {
    ///         e.remove();
    ///     }
    ///     v
    /// });
    /// assert_eq!(popped, Some(2));
    /// ```
    pub fn compute<R>(&self, key: K, f: impl FnOnce(&mut EntryMut<'_, K, V>) -> R) -> R {
        let mut lock = self.lock([&key]);
        lock.compute(&key, f)
    }

    /// Locks the shards of `keys` for writing, in shard order, and returns the lock: reads and
    /// writes of those keys through it are atomic together. Duplicate keys and keys sharing a
    /// shard are fine. Each locked shard runs its maintenance (expiry, reclamation) first, as
    /// any write does.
    pub fn lock<'k, Q>(&self, keys: impl IntoIterator<Item = &'k Q>) -> KeyLock<'_, K, V, S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'k,
    {
        let shards = self.shard_indices(keys);
        self.lock_shards(&shards, true)
    }

    /// Locks the shards of `keys` for reading (see [`Self::lock`]): several readers may hold
    /// them at once; the lock's writing methods panic.
    pub fn lock_read<'k, Q>(&self, keys: impl IntoIterator<Item = &'k Q>) -> KeyLock<'_, K, V, S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'k,
    {
        let shards = self.shard_indices(keys);
        self.lock_shards(&shards, false)
    }

    /// Locks every shard for writing: the whole cache is held still (for whole-keyspace
    /// operations); methods taking any key work.
    pub fn lock_all(&self) -> KeyLock<'_, K, V, S> {
        let shards: SmallVec<[usize; 8]> = (0..self.inner.shards.len()).collect();
        self.lock_shards(&shards, true)
    }

    fn shard_indices<'k, Q>(&self, keys: impl IntoIterator<Item = &'k Q>) -> SmallVec<[usize; 8]>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'k,
    {
        let mut shards: SmallVec<[usize; 8]> = keys
            .into_iter()
            .map(|k| self.shard_index(self.hash(k)))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        shards
    }

    fn lock_shards(&self, shards: &[usize], write: bool) -> KeyLock<'_, K, V, S> {
        #[cfg(debug_assertions)]
        let held = reentry::Held::enter(self.id());
        let now = self.now();
        let mut pending = self.pending();
        pending.context.at = Some(crate::clock::Timestamp(now));
        let guards = shards
            .iter()
            .map(|&i| {
                let cell = &self.inner.shards[i];
                let guard = if write {
                    let mut g = cell.write();
                    g.maintain(now, &mut pending, WRITE_RECLAIM);
                    ShardGuard::Write(g)
                } else {
                    ShardGuard::Read(cell.read())
                };
                (i, guard)
            })
            .collect();
        KeyLock {
            cache: self,
            guards,
            pending,
            now,
            #[cfg(debug_assertions)]
            _reentry: held,
        }
    }
}

impl<'c, K, V, S> KeyLock<'c, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn guard(&self, hash: u64) -> &ShardGuard<'c, K, V> {
        let i = self.cache.shard_index(hash);
        match self.guards.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(pos) => &self.guards[pos].1,
            Err(_) => panic!("lethe: key used through a KeyLock that does not hold its shard"),
        }
    }

    fn shard_mut(&mut self, hash: u64) -> (&mut Shard<K, V>, &mut Pending<K, V>, u64) {
        let i = self.cache.shard_index(hash);
        let Ok(pos) = self.guards.binary_search_by_key(&i, |(j, _)| *j) else {
            panic!("lethe: key used through a KeyLock that does not hold its shard")
        };
        match &mut self.guards[pos].1 {
            ShardGuard::Write(g) => (&mut *g, &mut self.pending, self.now),
            ShardGuard::Read(_) => panic!("lethe: write through a KeyLock taken for reading"),
        }
    }

    /// Whether this lock holds `key`'s shard, for writing when `write` (a key it does not hold
    /// makes the other methods panic).
    pub fn covers<Q>(&self, key: &Q, write: bool) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.cache.shard_index(self.cache.hash(key));
        match self.guards.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(pos) => !write || matches!(self.guards[pos].1, ShardGuard::Write(_)),
            Err(_) => false,
        }
    }

    /// The time the lock was taken at, which its operations use as "now".
    pub fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }

    /// The live value of `key`, counted as an access (hit or miss, recency, sliding expiry)
    /// like [`Cache::get`].
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let shard = self.guard(hash).shard();
        let found = shard.find_live(hash, key, self.now).map(|idx| {
            let entry = shard.slots.get(idx);
            entry.record_hit();
            if entry.deadline() != NEVER {
                shard.slots.record_read(idx, self.now);
            }
            &entry.value
        });
        match found {
            Some(_) => self.cache.inner.reads.hit(),
            None => self.cache.inner.reads.miss(),
        }
        found
    }

    /// The live value of `key`, not counted as an access.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let shard = self.guard(hash).shard();
        shard
            .find_live(hash, key, self.now)
            .map(|idx| &shard.slots.get(idx).value)
    }

    /// Whether `key` has a live value; not counted as an access.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key).is_some()
    }

    /// The metadata of `key`'s live entry; not counted as an access.
    pub fn metadata<Q>(&self, key: &Q) -> Option<EntryMetadata>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let shard = self.guard(hash).shard();
        shard
            .find_live(hash, key, self.now)
            .map(|idx| shard.slots.metadata(idx, self.now))
    }

    /// Remaining lifetime of `key` (see [`Cache::ttl`]).
    pub fn ttl<Q>(&self, key: &Q) -> KeyTtl
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.metadata(key).map_or(KeyTtl::Missing, |m| m.ttl)
    }

    /// [`Cache::compute`] on a key of this lock.
    pub fn compute<R>(&mut self, key: &K, f: impl FnOnce(&mut EntryMut<'_, K, V>) -> R) -> R {
        let hash = self.cache.hash(key);
        let floor = self.cache.prefix_floor(key);
        let weigher = &*self.cache.inner.weigher;
        let defaults = &self.cache.inner.defaults;
        let (shard, pending, now) = self.shard_mut(hash);
        let state = match shard.find(hash, key) {
            None => State::Absent,
            Some(idx) => match shard.slots.dead_cause(idx, now) {
                None => State::Live(idx),
                Some(cause) => {
                    shard.discard(idx, cause, pending);
                    State::Absent
                }
            },
        };
        let mut entry = EntryMut {
            key,
            state,
            shard,
            modified: false,
            replaced: false,
            removed: false,
            deadline: None,
            floor,
            now,
            pending,
        };
        let result = f(&mut entry);
        let EntryMut {
            state,
            shard,
            modified,
            replaced,
            deadline,
            pending,
            ..
        } = entry;
        match state {
            State::Absent => {}
            State::Live(idx) => {
                if modified || replaced {
                    let e = shard.slots.get(idx);
                    let weight = weigher.weigh(&e.key, &e.value);
                    if replaced {
                        // Reported with its old value already, by `insert`.
                        shard.account_change(idx, weight, now, pending);
                    } else {
                        shard.modified(idx, weight, now, pending);
                    }
                }
                // A change may have evicted the entry itself.
                if let Some(d) = deadline.filter(|_| shard.slots.is_live(idx)) {
                    if d <= now {
                        shard.discard(idx, RemovalCause::Expired, pending);
                    } else {
                        shard.set_entry_deadline(idx, d);
                    }
                }
            }
            State::New(value) => {
                let weight = weigher.weigh(key, &value);
                let mut options = InsertOptions::new();
                match deadline {
                    Some(NEVER) => options.ttl = Some(Ttl::Never),
                    Some(d) if d <= now => {
                        // Born expired: as Redis does for SET with a past deadline, nothing
                        // is stored.
                        return result;
                    }
                    Some(d) => options.ttl = Some(Ttl::Fixed(Duration::from_nanos(d - now))),
                    None => {}
                }
                let w = Write {
                    now,
                    weight,
                    options: &options,
                    defaults,
                    tags: &[],
                    inherited: &[],
                    tag_fp: 0,
                    floor,
                    lease: None,
                    extras: None,
                };
                // Cannot be refused: no condition, and the floor was checked by `insert`.
                let _ = shard.insert(hash, key.clone(), value, w, pending);
            }
        }
        result
    }

    /// Names who asked for what this lock's commands change, for the keys' history
    /// ([`crate::CacheBuilder::history`]): every write, change in place and removal made under
    /// it.
    pub fn set_origin(&mut self, origin: Arc<crate::history::Origin>) {
        self.pending.context.origin = Some(origin);
    }

    /// Inserts or replaces `key` with `options`, as [`Cache::try_insert`] does, under this
    /// lock. `options.depends_on` must be empty: dependencies link entries across shards, so
    /// such writes go through [`Cache::try_insert`] (this panics otherwise).
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        options: &InsertOptions<K>,
    ) -> Result<Inserted, Rejected> {
        assert!(
            options.depends_on.is_empty(),
            "lethe: KeyLock::insert cannot store dependencies; use Cache::try_insert"
        );
        let hash = self.cache.hash(&key);
        let floor = self.cache.prefix_floor(&key);
        let weight = self.cache.inner.weigher.weigh(&key, &value);
        let extras = self.cache.extras_for(options);
        let tag_fp = if options.tags.is_empty() {
            0
        } else {
            fingerprint(options.tags.iter().map(|t| (t.as_str(), false)))
        };
        let defaults = &self.cache.inner.defaults;
        let (shard, pending, now) = self.shard_mut(hash);
        let w = Write {
            now,
            weight,
            options,
            defaults,
            tags: &options.tags,
            inherited: &[],
            tag_fp,
            floor,
            lease: None,
            extras,
        };
        shard.insert(hash, key, value, w, pending)
    }

    /// Removes `key`; true if it had a live value (which goes to the listener, not to the
    /// caller: nothing is copied).
    pub fn delete<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let (shard, pending, now) = self.shard_mut(hash);
        let removed = shard.remove(hash, key, now, pending, RemovalCause::Explicit);
        self.cache.inner.invalidation.log_removal(hash);
        match removed {
            Some(r) => {
                self.pending.push(r.key, r.value, r.cause, r.deps);
                true
            }
            None => false,
        }
    }

    /// Removes `key`, returning its live value (see [`Cache::remove`]).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let (shard, pending, now) = self.shard_mut(hash);
        let removed = shard.remove(hash, key, now, pending, RemovalCause::Explicit);
        self.cache.inner.invalidation.log_removal(hash);
        removed.map(|r| {
            let value = r.value.clone();
            self.pending.collect = true;
            self.pending.push(r.key, r.value, r.cause, r.deps);
            value
        })
    }

    /// Sets `key`'s deadline under a Redis condition (see [`Cache::expire_at`]); a deadline at
    /// or before now removes the entry as expired.
    pub fn expire_at<Q>(&mut self, key: &Q, at: Timestamp, cond: ExpireCondition) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let (shard, pending, now) = self.shard_mut(hash);
        shard.expire(hash, key, at.0.min(NEVER - 1), cond, now, pending)
    }

    /// Sets `key`'s time to live under a Redis condition (see [`Cache::expire`]).
    pub fn expire<Q>(&mut self, key: &Q, ttl: Duration, cond: ExpireCondition) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let at = self.now.saturating_add(duration_nanos(ttl)).min(NEVER - 1);
        self.expire_at(key, Timestamp(at), cond)
    }

    /// Removes `key`'s deadline (see [`Cache::persist`]).
    pub fn persist<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.cache.hash(key);
        let (shard, _, now) = self.shard_mut(hash);
        shard.persist(hash, key, now)
    }
}

impl<K, V, S> Drop for KeyLock<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        // Release in reverse order of taking, then deliver with no lock held.
        while self.guards.pop().is_some() {}
        #[cfg(debug_assertions)]
        self._reentry.leave();
        let pending = std::mem::replace(&mut self.pending, Pending::new(false));
        self.cache.finish(pending);
    }
}

/// Debug-build detection of calls back into a cache from code holding its shard locks.
#[cfg(debug_assertions)]
pub(crate) mod reentry {
    use std::cell::RefCell;

    thread_local! {
        /// Caches (by address) whose shard locks this thread holds through a `KeyLock`.
        static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// Panics if this thread holds a `KeyLock` of the cache `id`.
    pub(crate) fn check(id: usize) {
        HELD.with(|h| {
            if h.borrow().contains(&id) {
                panic!(
                    "lethe: the cache was called from code holding its shard locks (a compute \
                     closure, or while a KeyLock is alive); use the KeyLock's own methods"
                );
            }
        });
    }

    /// This thread's hold on a cache's locks, from `enter` to `leave`.
    #[derive(Debug)]
    pub(crate) struct Held {
        id: usize,
        active: bool,
    }

    impl Held {
        pub(crate) fn enter(id: usize) -> Held {
            check(id);
            HELD.with(|h| h.borrow_mut().push(id));
            Held { id, active: true }
        }

        pub(crate) fn leave(&mut self) {
            if std::mem::take(&mut self.active) {
                HELD.with(|h| {
                    let mut h = h.borrow_mut();
                    if let Some(pos) = h.iter().rposition(|&i| i == self.id) {
                        h.remove(pos);
                    }
                });
            }
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            self.leave();
        }
    }
}

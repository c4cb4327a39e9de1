//! The keyspace: Redis values in a Lethe [`Cache`], with atomic commands and no global lock.
//!
//! # Atomicity without a global lock
//! A command reads and writes its keys through a [`Txn`]: the engine's [`KeyLock`] on the
//! shards of exactly the keys the command names (taken in shard order, so commands locking
//! overlapping keys cannot deadlock), held for the whole read-modify-write. A single-key
//! command (INCR, HSET, APPEND) therefore changes its value in place under one shard lock and
//! never loses a concurrent update; a multi-key command (MSET, RENAME, SMOVE) holds all of its
//! keys' shards at once, so it is all or nothing to every other client; commands on keys in
//! other shards run in parallel. Read-only commands take the same shards' read locks.
//!
//! A transaction (MULTI/EXEC) locks the union of its commands' keys (from their key specs) the
//! same way and runs every command under those locks, with WATCH checked under them too.
//! Only commands that reach beyond named keys (FLUSHALL, KEYS, the LETHE.* invalidations, SORT
//! with BY/GET patterns, SWAPDB, ...) are whole-keyspace operations: inside a transaction they
//! make EXEC take the [`Gate`] exclusively, which every other command holds shared for its
//! duration; outside one they are single engine calls, atomic by themselves, or (SORT) lock
//! every key they read at once. SWAPDB, which changes what every database number means, holds
//! the gate exclusively outside a transaction too (see [`DatabaseMap`]).
//!
//! # Memory
//! Keys are [`SmallBytes`] (inline up to 21 bytes after the database byte) and values 24 bytes
//! in the engine's slot (see [`value`]); every entry is weighed by what it really costs: the
//! engine's own bytes per entry ([`Cache::entry_overhead`]) plus the heap its key and value own,
//! as jemalloc rounds it. So `--max-memory` bounds what the process holds, and INFO's
//! `used_memory` is that sum.
//!
//! # What changed
//! Every write through a [`Txn`] is recorded in the command's [`Changes`] (when someone needs
//! it): the dispatcher hands them to client tracking with the writing client's id, so no
//! thread-local channel is needed. Removals the engine makes on its own (expiry, eviction,
//! invalidations) reach tracking through the engine's listener and subscriber instead.

pub mod blocking;
pub mod field_expiry;
pub mod hash;
pub mod hyperloglog;
pub mod intset;
pub mod list;
pub mod listpack;
pub mod rdb;
pub mod set;
pub mod small;
pub mod value;
pub mod zset;
pub mod zset_tree;

pub use blocking::{Blocking, Waiter};
pub use field_expiry::FieldExpiry;
pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use small::SmallBytes;
pub use value::Value;
pub use zset::Zset;

use crossbeam_utils::CachePadded;
use lethe::{
    Cache, InsertOptions, clock::Timestamp, compute::EntryMut, compute::KeyLock,
    expiry::ExpireCondition, expiry::KeyTtl, version::Inserted, version::Rejected,
};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The engine's hasher for keys.
pub type Hasher = lethe::builder::DefaultHashBuilder;
/// The engine cache holding the keyspace.
pub type Store = Cache<SmallBytes, Value, Hasher>;
/// The engine's lock on some keys' shards.
pub type Lock<'a> = KeyLock<'a, SmallBytes, Value, Hasher>;
/// A key's entry inside a compute closure.
pub type Entry<'a> = EntryMut<'a, SmallBytes, Value>;

/// Databases (`SELECT 0` to `SELECT 15`), as Redis's default `databases`.
pub const DATABASES: u8 = 16;

/// The stored form of key `name` under database prefix `prefix` (see [`DatabaseMap`]: a
/// database number is mapped to its prefix first, by [`Keyspace::key`]).
#[inline]
pub fn stored_key(prefix: u8, name: &[u8]) -> SmallBytes {
    SmallBytes::with_prefix(prefix, name)
}

/// A stored key's name (without its database byte).
#[inline]
pub fn key_name(stored: &[u8]) -> &[u8] {
    &stored[1..]
}

/// What WATCH remembers of a key: its version and write times, or `None` when it is absent.
/// Any write, delete, expiry or TTL change makes the stamp differ.
pub type WatchStamp = Option<(u64, Timestamp, Timestamp, Option<Timestamp>)>;

/// The keys a command changed, recorded while someone needs them (client tracking).
#[derive(Debug, Default)]
pub struct Changes {
    enabled: bool,
    keys: Vec<SmallBytes>,
}

impl Changes {
    /// A record that keeps keys only if `enabled`.
    pub fn new(enabled: bool) -> Changes {
        Changes {
            enabled,
            keys: Vec::new(),
        }
    }

    /// Records that the stored key `key` changed.
    #[inline]
    pub fn record(&mut self, key: &SmallBytes) {
        // A command that changes a key in two steps (SET with a deadline: the write, then the
        // exact deadline) reports it once.
        if self.enabled && self.keys.last() != Some(key) {
            self.keys.push(key.clone());
        }
    }

    /// Starts a new command's record, kept only if `enabled`.
    #[inline]
    pub fn reset(&mut self, enabled: bool) {
        self.enabled = enabled;
        self.keys.clear();
    }

    /// Takes the recorded keys (stored form).
    pub fn take(&mut self) -> Vec<SmallBytes> {
        std::mem::take(&mut self.keys)
    }

    /// Whether no key was recorded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether keys are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// Held shared by every command for its duration and exclusively by a transaction that must
/// see the keyspace still as a whole. Striped, so shared holders on different cores do not
/// contend on one cache line: a shared hold takes one stripe, an exclusive one all of them.
#[derive(Debug)]
pub struct Gate {
    stripes: Box<[CachePadded<RwLock<()>>]>,
}

const GATE_STRIPES: usize = 16;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % GATE_STRIPES;
}

/// A shared hold on the [`Gate`].
#[derive(Debug)]
pub struct Shared<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

/// An exclusive hold on the [`Gate`].
#[derive(Debug)]
pub struct Exclusive<'a>(#[allow(dead_code)] Vec<RwLockWriteGuard<'a, ()>>);

impl Gate {
    fn new() -> Gate {
        Gate {
            stripes: (0..GATE_STRIPES)
                .map(|_| CachePadded::new(RwLock::new(())))
                .collect(),
        }
    }

    /// Holds the gate shared.
    #[inline]
    pub fn shared(&self) -> Shared<'_> {
        Shared(self.stripes[STRIPE.with(|s| *s)].read())
    }

    /// Holds the gate exclusively: no other command runs until it is dropped.
    pub fn exclusive(&self) -> Exclusive<'_> {
        Exclusive(self.stripes.iter().map(|s| s.write()).collect())
    }
}

/// Which stored database prefix each database number (`SELECT n`) reads and writes.
///
/// Keys carry their database as their first byte, so moving a database's keys would cost
/// O(keys) and lose what the engine keeps per entry (tags, dependencies, versions). SWAPDB
/// instead swaps two numbers' prefixes here: O(1), and every entry keeps its tags, TTL and
/// dependencies (which name stored keys, so a key and the keys it depends on move together).
/// The map only changes under the exclusive [`Gate`]; every reader holds the gate shared, so
/// relaxed loads see one consistent map for the whole command.
#[derive(Debug)]
pub struct DatabaseMap {
    prefixes: [AtomicU8; DATABASES as usize],
}

impl DatabaseMap {
    fn new() -> DatabaseMap {
        DatabaseMap {
            prefixes: std::array::from_fn(|i| AtomicU8::new(i as u8)),
        }
    }

    /// The stored prefix of database `db`.
    #[inline]
    pub fn prefix(&self, db: u8) -> u8 {
        self.prefixes[usize::from(db)].load(Ordering::Relaxed)
    }

    /// The database number whose keys carry `prefix`.
    pub fn database(&self, prefix: u8) -> u8 {
        (0..DATABASES)
            .find(|&db| self.prefix(db) == prefix)
            .unwrap_or(prefix)
    }

    /// Swaps what databases `a` and `b` hold (call only under the exclusive gate).
    fn swap(&self, a: u8, b: u8) {
        let (pa, pb) = (self.prefix(a), self.prefix(b));
        self.prefixes[usize::from(a)].store(pb, Ordering::Relaxed);
        self.prefixes[usize::from(b)].store(pa, Ordering::Relaxed);
    }
}

/// The keyspace shared by every connection.
#[derive(Debug)]
pub struct Keyspace {
    cache: Store,
    gate: Gate,
    blocking: Blocking,
    databases: DatabaseMap,
    field_expiry: FieldExpiry,
}

impl Keyspace {
    /// Wraps an engine cache built for the keyspace (see [`Keyspace::weigh`]).
    pub fn new(cache: Store) -> Keyspace {
        Keyspace {
            cache,
            gate: Gate::new(),
            blocking: Blocking::default(),
            databases: DatabaseMap::new(),
            field_expiry: FieldExpiry::default(),
        }
    }

    /// Which stored prefix each database number uses.
    pub fn databases(&self) -> &DatabaseMap {
        &self.databases
    }

    /// The stored form of `name` in database `db` (through the [`DatabaseMap`]).
    #[inline]
    pub fn key(&self, db: u8, name: &[u8]) -> SmallBytes {
        stored_key(self.databases.prefix(db), name)
    }

    /// SWAPDB: databases `a` and `b` trade contents, in O(1) plus the clients blocked on
    /// their keys (re-registered under the other prefix and woken to look again). The caller
    /// holds the gate exclusively (every reader of the map holds it shared).
    pub fn swap_databases(&self, a: u8, b: u8) {
        let (pa, pb) = (self.databases.prefix(a), self.databases.prefix(b));
        self.databases.swap(a, b);
        self.blocking.swap_prefixes(pa, pb);
    }

    /// The keys holding hashes with field deadlines, for the active sweep.
    pub fn field_expiry(&self) -> &FieldExpiry {
        &self.field_expiry
    }

    /// What an entry costs: the engine's bytes per entry plus the heap its key and value own.
    pub fn weigh(key: &SmallBytes, value: &Value) -> u32 {
        let bytes = Store::entry_overhead() + key.heap_size() + value.heap_size();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// The engine underneath.
    pub fn cache(&self) -> &Store {
        &self.cache
    }

    /// The gate commands hold shared and whole-keyspace transactions exclusively.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The clients blocked on list and sorted set keys.
    pub fn blocking(&self) -> &Blocking {
        &self.blocking
    }

    /// Locks the shards of `keys` (stored form) for writing.
    pub fn lock<'a>(&'a self, keys: &[SmallBytes]) -> Lock<'a> {
        self.cache.lock(keys.iter().map(|k| k.as_bytes()))
    }

    /// Locks the shards of `keys` (stored form) for reading.
    pub fn lock_read<'a>(&'a self, keys: &[SmallBytes]) -> Lock<'a> {
        self.cache.lock_read(keys.iter().map(|k| k.as_bytes()))
    }

    /// The current [`WatchStamp`] of a stored key (not counted as an access).
    pub fn watch_stamp(&self, key: &[u8]) -> WatchStamp {
        self.cache
            .metadata(key)
            .map(|m| (m.version, m.created, m.updated, m.expires_at))
    }

    /// The heaviest value accepted (see [`Cache::max_entry_weight`]).
    pub fn max_entry_weight(&self) -> u64 {
        self.cache.max_entry_weight()
    }
}

/// A command's access to its keys, under the locks of their shards.
///
/// Methods take key names as the client gave them, in the command's database. Writes are
/// recorded in the command's [`Changes`]; a write that leaves a list or sorted set at a key wakes a client
/// blocked on it ([`Blocking::signal`]).
#[derive(Debug)]
pub struct Txn<'t, 'l> {
    lock: &'t mut Lock<'l>,
    db: u8,
    changes: &'t mut Changes,
    blocking: &'t Blocking,
    /// Reads do not count as accesses (CLIENT NO-TOUCH).
    no_touch: bool,
}

impl<'t, 'l> Txn<'t, 'l> {
    /// Access through `lock` for database prefix `db`, recording writes in `changes` and waking
    /// clients in `blocking`.
    pub fn new(
        lock: &'t mut Lock<'l>,
        db: u8,
        changes: &'t mut Changes,
        blocking: &'t Blocking,
    ) -> Txn<'t, 'l> {
        Txn {
            lock,
            db,
            changes,
            blocking,
            no_touch: false,
        }
    }

    /// Makes [`Txn::get`] a [`Txn::peek`]: the client asked for CLIENT NO-TOUCH.
    pub fn set_no_touch(&mut self, no_touch: bool) {
        self.no_touch = no_touch;
    }

    /// The database prefix the command runs in.
    pub fn db(&self) -> u8 {
        self.db
    }

    /// Makes key names refer to database prefix `db` from now on (COPY and MOVE, whose locks
    /// cover keys of two databases).
    pub fn use_db(&mut self, db: u8) {
        self.db = db;
    }

    /// The stored form of `name`.
    #[inline]
    pub fn key(&self, name: &[u8]) -> SmallBytes {
        stored_key(self.db, name)
    }

    /// The live value of `name`, counted as an access (a keyspace hit or miss).
    pub fn get(&self, name: &[u8]) -> Option<&Value> {
        if self.no_touch {
            return self.peek(name);
        }
        self.lock.get(self.key(name).as_bytes())
    }

    /// The live value of `name`, not counted as an access.
    pub fn peek(&self, name: &[u8]) -> Option<&Value> {
        self.lock.peek(self.key(name).as_bytes())
    }

    /// Whether `name` has a live value (not an access).
    pub fn exists(&self, name: &[u8]) -> bool {
        self.peek(name).is_some()
    }

    /// Remaining lifetime of `name`.
    pub fn ttl(&self, name: &[u8]) -> KeyTtl {
        self.lock.ttl(self.key(name).as_bytes())
    }

    /// The absolute expiry of `name` in Unix milliseconds: -2 missing, -1 no deadline.
    pub fn expire_time_millis(&self, name: &[u8]) -> i64 {
        match self.lock.metadata(self.key(name).as_bytes()) {
            None => -2,
            Some(m) => match m.expires_at {
                None => -1,
                Some(at) => timestamp_to_millis(at),
            },
        }
    }

    /// `name`'s PTTL reply: -2 missing, -1 no deadline, else milliseconds left (rounded up).
    /// Compressed far deadlines (see [`FAR_MILLIS`]) are measured from their real value.
    pub fn pttl_millis(&self, name: &[u8]) -> i64 {
        match self.expire_time_millis(name) {
            at if at > FAR_MILLIS => at - now_millis(),
            _ => self.ttl(name).as_redis_millis(),
        }
    }

    /// `name`'s TTL reply: -2 missing, -1 no deadline, else seconds left (rounded).
    pub fn ttl_seconds(&self, name: &[u8]) -> i64 {
        match self.expire_time_millis(name) {
            at if at > FAR_MILLIS => (at - now_millis() + 500) / 1000,
            _ => self.ttl(name).as_redis_seconds(),
        }
    }

    /// The [`WatchStamp`] of `name`.
    pub fn stamp(&self, name: &[u8]) -> WatchStamp {
        self.lock
            .metadata(self.key(name).as_bytes())
            .map(|m| (m.version, m.created, m.updated, m.expires_at))
    }

    /// Runs `f` on `name`'s entry as one atomic read-modify-write (see [`Cache::compute`]);
    /// recorded as a change if `f` changed anything.
    pub fn compute<R>(&mut self, name: &[u8], f: impl FnOnce(&mut Entry<'_>) -> R) -> R {
        let key = self.key(name);
        let (result, changed, list) = self.lock.compute(&key, |e| {
            let r = f(e);
            (r, e.is_changed(), e.get().is_some_and(Value::wakes_blocked))
        });
        if changed {
            self.changes.record(&key);
            if list {
                self.blocking.signal(&key);
            }
        }
        result
    }

    /// Stores `value` at `name` with `options` (no dependencies: see [`KeyLock::insert`]).
    pub fn insert(
        &mut self,
        name: &[u8],
        value: Value,
        options: &InsertOptions<SmallBytes>,
    ) -> Result<Inserted, Rejected> {
        let key = self.key(name);
        let list = value.wakes_blocked();
        let result = self.lock.insert(key.clone(), value, options);
        if result.is_ok() {
            self.changes.record(&key);
            if list {
                self.blocking.signal(&key);
            }
        }
        result
    }

    /// Removes `name`, returning its live value.
    pub fn remove(&mut self, name: &[u8]) -> Option<Value> {
        let key = self.key(name);
        let removed = self.lock.remove(key.as_bytes());
        if removed.is_some() {
            self.changes.record(&key);
        }
        removed
    }

    /// The metadata of `name`'s live entry (not an access).
    pub fn metadata(&self, name: &[u8]) -> Option<lethe::entry::EntryMetadata> {
        self.lock.metadata(self.key(name).as_bytes())
    }

    /// Removes `name`; true if it had a live value.
    pub fn delete(&mut self, name: &[u8]) -> bool {
        let key = self.key(name);
        let removed = self.lock.delete(key.as_bytes());
        if removed {
            self.changes.record(&key);
        }
        removed
    }

    /// Sets `name`'s deadline under a Redis condition; a deadline not in the future removes it.
    pub fn expire_at(&mut self, name: &[u8], at: Timestamp, cond: ExpireCondition) -> bool {
        let key = self.key(name);
        let done = self.lock.expire_at(key.as_bytes(), at, cond);
        if done {
            self.changes.record(&key);
        }
        done
    }

    /// Removes `name`'s deadline; true if it had one.
    pub fn persist(&mut self, name: &[u8]) -> bool {
        let key = self.key(name);
        let done = self.lock.persist(key.as_bytes());
        if done {
            self.changes.record(&key);
        }
        done
    }
}

/// Wall-clock time now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Unix milliseconds from which deadlines are stored compressed (about the year 2255).
///
/// The engine's clock is u64 nanoseconds since the epoch, which ends in the year 2554, while
/// Redis accepts deadlines up to `i64::MAX` milliseconds. Deadlines up to here are stored as
/// exact nanoseconds; later ones one nanosecond per millisecond past [`FAR_NANOS`]. The map
/// stays monotonic (so the engine's GT/LT conditions compare correctly) and reversible (so
/// EXPIRETIME reports the deadline asked for); the one approximation is that such a key
/// would expire in the 2260s instead of later.
pub const FAR_MILLIS: i64 = 9_000_000_000_000;
/// [`FAR_MILLIS`] in nanoseconds.
const FAR_NANOS: u64 = FAR_MILLIS as u64 * 1_000_000;

/// A Unix time in milliseconds as an engine timestamp (times before the epoch clamp to it;
/// far ones are compressed, see [`FAR_MILLIS`]).
pub fn timestamp_millis(ms: i64) -> Timestamp {
    let ms = u64::try_from(ms).unwrap_or(0);
    if ms <= FAR_MILLIS as u64 {
        Timestamp(ms * 1_000_000)
    } else {
        // At most FAR_NANOS + i64::MAX, below u64::MAX.
        Timestamp(FAR_NANOS + (ms - FAR_MILLIS as u64))
    }
}

/// The Unix milliseconds an engine timestamp made by [`timestamp_millis`] stands for.
pub fn timestamp_to_millis(at: Timestamp) -> i64 {
    let ns = at.as_nanos();
    let ms = if ns <= FAR_NANOS {
        ns / 1_000_000
    } else {
        FAR_MILLIS as u64 + (ns - FAR_NANOS)
    };
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Milliseconds as a duration (negative clamps to zero).
pub fn duration_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

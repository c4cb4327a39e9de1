//! Leases (after Facebook's memcache): a miss takes a lease, and only a fill carrying a still
//! valid lease is stored.
//!
//! The race they close: a reader misses, reads the database, and before it stores what it read
//! the row changes and the invalidation arrives (and finds nothing to remove). Without a lease
//! the reader then stores the old value, which stays until its TTL. With one, the fill is
//! refused when anything it covers was invalidated after the lease was issued: the key itself (a
//! write or removal revokes the key's lease, under the shard lock), any of the fill's tags or
//! their ancestors (tag nodes record the epoch of their last invalidation), or any of its
//! dependencies (the removal log below). The tag check is made again under the shard lock while
//! storing: an invalidation that comes after it must mark this shard's tag sets, which needs the
//! same lock, so it either is seen by the check or hides the stored fill.
//!
//! At most one lease per key is outstanding within the lease timeout: other missers get
//! [`LeaseOutcome::Pending`], with the stale value if one is retained, and wait or serve that
//! instead of all reading the database.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::sync::OnceLock;

/// Permission to fill one key; see [`crate::Cache::lease`].
#[derive(Clone, PartialEq, Eq)]
pub struct Lease<K> {
    pub(crate) key: K,
    pub(crate) token: u64,
    pub(crate) epoch: u64,
}

/// A granted lease's identity (the random token a fill must present) and its place in the
/// invalidation order (the epoch things it covers are compared with). Kept apart so tokens
/// handed to clients reveal nothing and cannot be guessed from earlier ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) token: u64,
    pub(crate) epoch: u64,
}

impl Grant {
    /// A grant at `epoch` with a fresh random token: 63 bits from the thread's
    /// cryptographically secure generator, never 0, so it fits a signed 64-bit integer (a RESP
    /// integer) and cannot be predicted from tokens seen before.
    pub(crate) fn new(epoch: u64) -> Grant {
        use rand::Rng;
        let token = rand::thread_rng().gen_range(1..=i64::MAX as u64);
        Grant { token, epoch }
    }
}

impl<K: fmt::Debug> fmt::Debug for Lease<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("token", &self.token)
            .finish()
    }
}

impl<K> Lease<K> {
    /// The leased key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The lease's token: a random number in `1..=i64::MAX`, unguessable (drawn from a
    /// cryptographically secure generator), which a fill must present. It says nothing about
    /// when the lease was issued.
    pub fn token(&self) -> u64 {
        self.token
    }
}

/// What a lease request found.
#[derive(Debug)]
pub enum LeaseOutcome<K, V> {
    /// The key is cached: no lease needed.
    Hit(V),
    /// The caller should load the value and [`crate::Cache::fill`] it with this lease.
    Granted(Lease<K>),
    /// Another caller holds the key's lease. `stale` is the retained stale value, if any
    /// (see [`crate::InsertOptions::retain_stale`]).
    Pending {
        /// The expired value, within its stale grace.
        stale: Option<V>,
    },
}

/// One outstanding lease, in the table of the key's shard.
#[derive(Debug)]
pub(crate) struct LeaseSlot<K> {
    pub(crate) key: K,
    pub(crate) hash: u64,
    pub(crate) grant: Grant,
    pub(crate) expires: u64,
    pub(crate) revoked: bool,
}

/// Removal log for leases: the latest epoch at which a key (by hash slot) was removed or
/// written, kept only while leases are outstanding. Collisions make fills be refused
/// spuriously, never accepted wrongly.
///
/// Its slots (8 bytes per entry of capacity, up to 8 MiB) are allocated when the first lease
/// is granted, not with the cache: a cache that never uses leases never pays for them. That is
/// safe because removals are only recorded while a lease is counted, and the granting shard
/// calls [`Self::ensure`] before it counts the first one: a remover that sees the count sees the
/// slots.
pub(crate) struct RemovalLog {
    len: usize,
    slots: OnceLock<Box<[AtomicU64]>>,
}

impl fmt::Debug for RemovalLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemovalLog")
            .field("slots", &self.slots.get().map_or(0, |s| s.len()))
            .finish()
    }
}

impl RemovalLog {
    pub(crate) fn new(capacity: u64) -> Self {
        RemovalLog {
            len: (capacity.clamp(1024, 1 << 20) as usize).next_power_of_two(),
            slots: OnceLock::new(),
        }
    }

    /// Allocates the slots if they are not yet there. Called before a lease is counted.
    pub(crate) fn ensure(&self) {
        self.slots
            .get_or_init(|| (0..self.len).map(|_| AtomicU64::new(0)).collect());
    }

    fn slot(&self, hash: u64) -> Option<&AtomicU64> {
        let slots = self.slots.get()?;
        Some(&slots[hash as usize & (slots.len() - 1)])
    }

    /// Records a removal of `hash` at `epoch`. Only called while a lease is counted, so after
    /// [`Self::ensure`].
    pub(crate) fn record(&self, hash: u64, epoch: u64) {
        let slot = self.slot(hash);
        debug_assert!(slot.is_some(), "removal logged before the first lease");
        if let Some(s) = slot {
            s.fetch_max(epoch, Ordering::AcqRel);
        }
    }

    /// The latest epoch at which `hash` was logged removed (0: never, or no lease yet).
    pub(crate) fn latest(&self, hash: u64) -> u64 {
        self.slot(hash).map_or(0, |s| s.load(Ordering::Acquire))
    }
}

mod cache_impl {
    use super::{Grant, Lease, LeaseOutcome};
    use crate::cache::Cache;
    use crate::entry::{InsertOptions, Lookup};
    use crate::listener::RemovalCause;
    use crate::shard::LeaseState;
    use crate::sync::Ordering;
    use crate::version::{Inserted, RejectReason, Rejected};
    use std::borrow::Borrow;
    use std::hash::{BuildHasher, Hash};
    use std::time::Duration;

    impl<K, V, S> Cache<K, V, S>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        S: BuildHasher + Clone + Send + Sync + 'static,
    {
        /// Reads `key`, or on a miss takes its lease: the caller then loads the value and
        /// stores it with [`Self::fill`]. While a lease is outstanding (until filled, released
        /// or timed out, see [`crate::CacheBuilder::lease_timeout`]) other callers get
        /// [`LeaseOutcome::Pending`], with the retained stale value if any.
        pub fn lease(&self, key: &K) -> LeaseOutcome<K, V> {
            let hash = self.hash(key);
            let timeout = self.inner.lease_timeout;
            let outcome = self.write(hash, |shard, now, pending| {
                match shard.acquire_lease(hash, key, now, timeout, pending) {
                    LeaseState::Hit(idx) => {
                        // A read like any other: eviction and sliding/adaptive TTLs see it.
                        let e = shard.slots.get(idx);
                        e.record_hit();
                        shard.slots.record_read(idx, now);
                        LeaseOutcome::Hit(e.value.clone())
                    }
                    LeaseState::Granted(grant) => {
                        self.inner
                            .invalidation
                            .leases_granted
                            .fetch_add(1, Ordering::Relaxed);
                        LeaseOutcome::Granted(Lease {
                            key: key.clone(),
                            token: grant.token,
                            epoch: grant.epoch,
                        })
                    }
                    LeaseState::Pending(stale) => LeaseOutcome::Pending {
                        stale: stale.map(|i| shard.slots.get(i).value.clone()),
                    },
                }
            });
            match outcome {
                LeaseOutcome::Hit(_) => self.inner.reads.hit(),
                _ => self.inner.reads.miss(),
            }
            outcome
        }

        /// Stores a value loaded under `lease`, unless the key was written or removed, or any of
        /// `options`' tags (or their ancestors) or dependencies was invalidated, since the lease
        /// was issued; then the fill is refused and nothing is stored. The lease is used up
        /// either way.
        pub fn fill(
            &self,
            lease: Lease<K>,
            value: V,
            options: &InsertOptions<K>,
        ) -> Result<Inserted, Rejected> {
            let grant = Grant {
                token: lease.token,
                epoch: lease.epoch,
            };
            // Compared with what the fill covers: its place in the invalidation order.
            let token = lease.epoch;
            let refuse = |reason| {
                self.inner
                    .invalidation
                    .fills_refused
                    .fetch_add(1, Ordering::Relaxed);
                self.release(&lease);
                Err(Rejected::new(reason, None))
            };
            let state = &self.inner.invalidation;
            if options
                .tags
                .iter()
                .any(|t| state.tags.latest_invalidation(t) > token)
            {
                return refuse(RejectReason::InvalidatedSinceLease);
            }
            // A dependency removed since the lease, or hidden by a tag invalidated since.
            let dep_changed = |deps: &[K]| {
                deps.iter().any(|d| {
                    let h = self.hash(d);
                    if state.removals.latest(h) >= token {
                        return true;
                    }
                    let shard = self.cell(h).read();
                    shard
                        .find(h, d)
                        .is_some_and(|i| shard.latest_tag_invalidation(i) > token)
                })
            };
            if dep_changed(&options.depends_on) {
                return refuse(RejectReason::InvalidatedSinceLease);
            }
            let key = lease.key.clone();
            // The store checks the tags again under the shard lock (see the module docs).
            let result = self
                .store(lease.key, value, options, Some(grant))
                .inspect_err(|_| {
                    self.inner
                        .invalidation
                        .fills_refused
                        .fetch_add(1, Ordering::Relaxed);
                })?;
            // A dependency removed between the check above and the store: its cascade may have
            // run before the entry existed, so look again now that it does. And a dependency
            // hidden by a tag invalidated since the lease hides the fill (it inherits the tag):
            // tell the caller it was not stored.
            let hidden = {
                let hash = self.hash(&key);
                let shard = self.cell(hash).read();
                shard
                    .find(hash, &key)
                    .is_some_and(|i| shard.slots.dead_cause(i, self.now()).is_some())
            };
            if hidden || dep_changed(&options.depends_on) {
                self.inner
                    .invalidation
                    .fills_refused
                    .fetch_add(1, Ordering::Relaxed);
                self.remove_with_cause(&key, RemovalCause::Dependency);
                return Err(Rejected::new(RejectReason::InvalidatedSinceLease, None));
            }
            Ok(result)
        }

        /// Gives a lease back without filling, so the next misser gets one at once.
        pub fn release(&self, lease: &Lease<K>) {
            let hash = self.hash(&lease.key);
            self.write(hash, |shard, _, _| {
                shard.release_lease(hash, &lease.key, lease.token)
            });
        }

        /// Reads `key` even if it expired, as long as it is within the stale grace it was
        /// stored with ([`InsertOptions::retain_stale`]); [`crate::entry::EntryMetadata::expired_for`]
        /// says how stale. Entries hidden by an invalidation are never returned. Not counted as
        /// a hit or a miss.
        pub fn get_stale<Q>(&self, key: &Q) -> Option<Lookup<V>>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            let hash = self.hash(key);
            let shard = self.cell(hash).read();
            let now = self.now();
            let idx = shard.find(hash, key)?;
            match shard.slots.dead_cause(idx, now) {
                None => {}
                Some(RemovalCause::Expired) if now < shard.slots.hard_deadline(idx) => {}
                Some(_) => return None,
            }
            let entry = shard.slots.get(idx);
            let mut metadata = shard.slots.metadata(idx, now);
            let deadline = entry.deadline();
            if now >= deadline {
                metadata.expired_for = Some(Duration::from_nanos(now - deadline));
            }
            Some(Lookup {
                value: entry.value.clone(),
                metadata,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RemovalLog;

    /// The log costs nothing until a lease needs it, and then remembers the latest removal.
    #[test]
    fn the_removal_log_is_allocated_by_the_first_lease() {
        let log = RemovalLog::new(1 << 20);
        assert!(log.slots.get().is_none(), "no slots before a lease");
        assert_eq!(log.latest(42), 0);
        log.ensure();
        assert_eq!(log.slots.get().map(|s| s.len()), Some(1 << 20));
        log.record(42, 7);
        log.record(42, 5);
        assert_eq!(log.latest(42), 7, "the latest epoch wins");
        assert_eq!(log.latest(43), 0);
    }
}

//! The read path: hit, negative hit, stale-while-revalidate, then the key's flight; the
//! leader's lease-guarded load; background refreshes.
//!
//! Which guard protects a stored value against a newer write or invalidation:
//! - a miss (or an expired entry) is loaded under the key's lease and stored with
//!   [`Cache::fill`], refused if anything it covers changed since the lease was issued;
//! - a refresh of a *live* entry cannot take a lease (the key is cached), so it is stored as a
//!   compare-and-set on the version the entry had before the source was read: a write or an
//!   invalidation of the key in between makes it fail;
//! - an absence is remembered only if no write through the loader to the key's stripe and no
//!   invalidation anywhere happened during the load (see `remember_absent`).

use super::Core;
use super::error::LoadError;
use super::refresh::{Job, RefreshKind};
use super::single_flight::{Joined, Leader, Outcome};
use super::source::Source;
use super::stats::bump;
use crate::cache::Cache;
use crate::entry::InsertOptions;
use crate::lease::{Lease, LeaseOutcome};
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::version::WriteCondition;
use std::hash::{BuildHasher, Hash};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// First pause while polling a lease held elsewhere; doubles up to [`LAST_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(1);
const LAST_POLL: Duration = Duration::from_millis(50);

/// Gives a lease back if the load ends without filling (an error, an absence, a panic).
struct LeaseGuard<'a, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    cache: &'a Cache<K, V, S>,
    lease: Option<Lease<K>>,
}

impl<K, V, S> Drop for LeaseGuard<'_, K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let Some(l) = self.lease.take() {
            self.cache.release(&l);
        }
    }
}

/// Counts a load that unwinds.
struct CountPanic<'a>(&'a AtomicU64);

impl Drop for CountPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            bump(self.0);
        }
    }
}

impl<K, V, Src, S> Core<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: Source<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    pub(super) fn get(&self, key: &K) -> Result<Option<V>, LoadError<Src::Error>> {
        let start = self.flights.issued();
        loop {
            if let Some(v) = self.lookup(key) {
                return Ok(Some(v));
            }
            if self.negative_hit(key) {
                return Ok(None);
            }
            if let Some(v) = self.stale_while_revalidate(key) {
                return Ok(Some(v));
            }
            match self.flights.join(key) {
                Joined::Leader(leader) => {
                    let outcome = self.lead(key, leader, true);
                    return self.resolve(key, outcome);
                }
                Joined::Waiter(flight) => {
                    bump(&self.counters.waits);
                    match flight.wait() {
                        // Nobody loaded: load ourselves.
                        Outcome::Abandoned => {}
                        // Superseded during a load that began before this call: the value
                        // may predate a change this caller must see.
                        Outcome::Loaded { current: false, .. } if flight.id() <= start => {}
                        o => return self.resolve(key, o),
                    }
                }
            }
        }
    }

    /// The cached value, scheduling a refresh when early expiration asks for one.
    fn lookup(&self, key: &K) -> Option<V> {
        if !self.read.refresh_ahead {
            return self.cache.get(key);
        }
        let found = self.cache.get_with_metadata(key)?;
        if found.metadata.refresh {
            self.schedule(key, RefreshKind::Early);
        }
        Some(found.value)
    }

    /// Whether a still-valid negative entry says the source has no `key`.
    fn negative_hit(&self, key: &K) -> bool {
        let Some(negatives) = &self.negatives else {
            return false;
        };
        match negatives.get(key) {
            Some(seq) if seq == self.cache.last_seq() => {
                bump(&self.counters.negative_hits);
                true
            }
            Some(_) => {
                negatives.remove(key);
                false
            }
            None => false,
        }
    }

    /// Stale-while-revalidate: the stale value, with a refresh scheduled.
    fn stale_while_revalidate(&self, key: &K) -> Option<V> {
        let grace = self.read.swr?;
        let found = self.cache.get_stale(key)?;
        match found.metadata.expired_for {
            // Filled since the miss.
            None => Some(found.value),
            Some(age) if age <= grace => {
                self.schedule(key, RefreshKind::Stale);
                bump(&self.counters.stale_served);
                Some(found.value)
            }
            Some(_) => None,
        }
    }

    /// The retained value of `key` if it expired at most `grace` ago (or is live).
    fn stale_within(&self, key: &K, grace: Option<Duration>) -> Option<V> {
        let grace = grace?;
        let found = self.cache.get_stale(key)?;
        match found.metadata.expired_for {
            Some(age) if age > grace => None,
            _ => Some(found.value),
        }
    }

    /// What a caller gets for a flight's outcome.
    fn resolve(
        &self,
        key: &K,
        outcome: Outcome<V, Src::Error>,
    ) -> Result<Option<V>, LoadError<Src::Error>> {
        match outcome {
            Outcome::Loaded { value, .. } => Ok(value),
            Outcome::Stale(v) => {
                bump(&self.counters.stale_served);
                Ok(Some(v))
            }
            Outcome::Failed(e) => match self.stale_within(key, self.read.sie) {
                Some(v) => {
                    bump(&self.counters.stale_served);
                    Ok(Some(v))
                }
                None => Err(LoadError::source(e)),
            },
            Outcome::Panicked | Outcome::Abandoned => Err(LoadError::panicked()),
        }
    }

    /// Runs `leader`'s flight to its end and publishes the outcome. With `wait` false (a
    /// background refresh) a lease held elsewhere abandons the flight instead of polling.
    fn lead(
        &self,
        key: &K,
        mut leader: Leader<K, V, Src::Error>,
        wait: bool,
    ) -> Outcome<V, Src::Error> {
        let outcome = self.load_leased(key, &mut leader, wait);
        leader.complete(outcome.clone());
        outcome
    }

    fn load_leased(
        &self,
        key: &K,
        leader: &mut Leader<K, V, Src::Error>,
        wait: bool,
    ) -> Outcome<V, Src::Error> {
        let seq = self.cache.last_seq();
        let mut guard = LeaseGuard {
            cache: &self.cache,
            lease: None,
        };
        let mut pause = FIRST_POLL;
        let mut give_up = None;
        loop {
            match self.cache.lease(key) {
                LeaseOutcome::Hit(v) => {
                    return Outcome::Loaded {
                        value: Some(v),
                        current: true,
                    };
                }
                LeaseOutcome::Granted(lease) => {
                    guard.lease = Some(lease);
                    break;
                }
                LeaseOutcome::Pending { stale } => {
                    if stale.is_some() {
                        if let Some(v) = self.stale_within(key, self.read.swr) {
                            return Outcome::Stale(v);
                        }
                    }
                    if !wait {
                        return Outcome::Abandoned;
                    }
                    let now = Instant::now();
                    let deadline = *give_up.get_or_insert_with(|| {
                        bump(&self.counters.lease_waits);
                        now + self.read.lease_wait
                    });
                    if now >= deadline {
                        // The holder is gone or too slow: answer this caller, cache nothing.
                        bump(&self.counters.unleased_loads);
                        break;
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(LAST_POLL);
                }
            }
        }
        let (loaded, stamp) = self.fetch(key);
        leader.detach();
        match loaded {
            Ok(Some(v)) => {
                let current = match guard.lease.take() {
                    Some(lease) => {
                        let opts = self.options_for(key, &v);
                        let stored = self.cache.fill(lease, v.clone(), &opts).is_ok();
                        if !stored {
                            bump(&self.counters.fills_refused);
                        }
                        stored
                    }
                    None => false,
                };
                Outcome::Loaded {
                    value: Some(v),
                    current,
                }
            }
            Ok(None) => {
                drop(guard);
                Outcome::Loaded {
                    value: None,
                    current: self.remember_absent(key, seq, stamp),
                }
            }
            Err(e) => Outcome::Failed(Arc::new(e)),
        }
    }

    /// Reads `key`: the pending write-behind op if there is one, else the source. Also
    /// returns the key's stripe count as it was before the read.
    fn fetch(&self, key: &K) -> (Result<Option<V>, Src::Error>, u64) {
        let stamp = self.stripe(key).writes.load(Ordering::SeqCst);
        if let Some(pending) = self.write_behind().and_then(|wb| wb.pending(key)) {
            return (Ok(pending), stamp);
        }
        bump(&self.counters.loads);
        let _panics = CountPanic(&self.counters.load_panics);
        let loaded = self.source.load(key);
        if loaded.is_err() {
            bump(&self.counters.load_errors);
        }
        (loaded, stamp)
    }

    /// Records that the source has no `key`, if nothing changed since the read began (see
    /// the module docs); returns whether nothing did.
    ///
    /// Takes no lock, so a removal listener may read through the loader. A writer bumps the
    /// stripe's count after its source write (or enqueue) and then deletes the negative
    /// entry; checking the count before and after storing the entry means that whichever way
    /// the two interleave, either this call sees the bump or the writer's delete comes after
    /// the store.
    fn remember_absent(&self, key: &K, seq: u64, stamp: u64) -> bool {
        let writes = &self.stripe(key).writes;
        let unchanged = || writes.load(Ordering::SeqCst) == stamp && self.cache.last_seq() == seq;
        if !unchanged() {
            return false;
        }
        if let Some(negatives) = &self.negatives {
            negatives.insert(key.clone(), seq);
            if !unchanged() {
                negatives.remove(key);
                return false;
            }
        }
        true
    }

    /// The options `value` is cached with.
    pub(super) fn options_for(&self, key: &K, value: &V) -> InsertOptions<K> {
        let mut o = self.source.load_options(key, value, self.defaults.clone());
        if let Some(g) = self.read.grace {
            o.retain_stale = Some(o.retain_stale.map_or(g, |r| r.max(g)));
        }
        o
    }

    /// Queues a background refresh of `key` unless one is running.
    fn schedule(&self, key: &K, kind: RefreshKind) {
        let Some(queue) = &self.refresh else {
            return;
        };
        let Some(leader) = self.flights.lead(key) else {
            return;
        };
        if let Err(job) = queue.push(Job { leader, kind }) {
            bump(&self.counters.refreshes_dropped);
            drop(job);
        }
    }

    /// A refresh worker: runs jobs until the queue closes. A panicking source is caught
    /// (the job's flight reports it to any waiter) so the pool keeps its threads.
    pub(super) fn refresh_worker(&self) {
        let Some(queue) = &self.refresh else {
            return;
        };
        while let Some(Job { leader, kind }) = queue.next() {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                bump(&self.counters.refreshes);
                let key = leader.key().clone();
                match kind {
                    RefreshKind::Early => self.refresh_live(&key, leader),
                    RefreshKind::Stale => {
                        self.lead(&key, leader, false);
                    }
                }
            }));
        }
    }

    /// Reloads a live entry and replaces it by compare-and-set on its version.
    fn refresh_live(&self, key: &K, mut leader: Leader<K, V, Src::Error>) {
        let Some(version) = self.cache.version(key) else {
            // Expired or removed since the read: an ordinary leased load.
            self.lead(key, leader, false);
            return;
        };
        let seq = self.cache.last_seq();
        let (loaded, stamp) = self.fetch(key);
        leader.detach();
        let outcome = match loaded {
            Ok(Some(v)) => {
                let mut opts = self.options_for(key, &v);
                opts.condition = Some(WriteCondition::IfVersion(version));
                let mut stored = self.cache.try_insert(key.clone(), v.clone(), &opts).is_ok();
                if stored
                    && (!opts.tags.is_empty() || !opts.depends_on.is_empty())
                    && self.cache.last_seq() != seq
                {
                    // An invalidation during the load may have covered a tag or dependency
                    // the old entry lacked, which the version check cannot see (a lease fill
                    // would have): drop the value rather than risk keeping it.
                    self.cache.remove(key);
                    stored = false;
                }
                if !stored {
                    bump(&self.counters.fills_refused);
                }
                Outcome::Loaded {
                    value: Some(v),
                    current: stored,
                }
            }
            Ok(None) => {
                // The row is gone: so goes the entry, unless it was rewritten meanwhile.
                if self.cache.version(key) == Some(version) {
                    self.cache.remove(key);
                }
                Outcome::Loaded {
                    value: None,
                    current: self.remember_absent(key, seq, stamp),
                }
            }
            Err(e) => Outcome::Failed(Arc::new(e)),
        };
        leader.complete(outcome);
    }
}

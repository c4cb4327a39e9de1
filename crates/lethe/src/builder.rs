//! Building a cache: capacity, weigher, expiry defaults, clock, listener, sharding.

use crate::cache::{Cache, Inner};
use crate::clock::duration_nanos;
use crate::clock::{Clock, SystemClock};
use crate::coaccess::{CoAccess, CoAccessConfig};
use crate::deps::DepGraph;
use crate::error::{Error, ErrorKind};
use crate::expiry::{EarlyRefresh, ExpiryPolicy, Ttl};
use crate::history::HistoryConfig;
use crate::history::keeping::HistoryShared;
use crate::invalidate::{Subscriber, Subscribers};
use crate::invalidation_state::InvalidationState;
use crate::listener::RemovalListener;
#[cfg(feature = "rules")]
use crate::rules::RuleSet;
use crate::shard::{KeyIndex, Shard};
use crate::stats::ReadCounters;
use crate::sync::{Arc, RwLock};
use crate::weigher::{UnitWeigher, Weigher};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

/// The default hasher: fast, seeded per cache.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// Each shard should hold at least this many entries, so sharding does not cost hit ratio on
/// small caches (the policy works per shard).
const MIN_SHARD_CAPACITY: u64 = 2048;

/// Builds a [`Cache`]; see [`Cache::builder`].
pub struct CacheBuilder<K, V, S = DefaultHashBuilder> {
    capacity: Option<u64>,
    weighted: bool,
    weigher: Option<Box<dyn Weigher<K, V>>>,
    shards: Option<usize>,
    expiry: ExpiryPolicy,
    clock: Option<Arc<dyn Clock>>,
    listener: Option<Box<dyn RemovalListener<K, V>>>,
    hasher: S,
    key_bytes: Option<fn(&K) -> &[u8]>,
    subscribers: Vec<Box<dyn Subscriber<K>>>,
    lease_timeout: Duration,
    co_access: Option<CoAccessConfig>,
    #[cfg(feature = "rules")]
    policies: Option<Arc<RuleSet>>,
    history: Option<HistoryConfig>,
}

/// Default lease timeout: after Facebook's memcache, which hands out one lease per key every
/// ten seconds.
const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(10);

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("capacity", &self.capacity)
            .field("weighted", &self.weighted)
            .field("shards", &self.shards)
            .field("expiry", &self.expiry)
            .field("clock", &self.clock)
            .field("listener", &self.listener.is_some())
            .field("index_keys", &self.key_bytes.is_some())
            .field("subscribers", &self.subscribers.len())
            .field("lease_timeout", &self.lease_timeout)
            .finish()
    }
}

impl<K, V> CacheBuilder<K, V, DefaultHashBuilder> {
    pub(crate) fn new() -> Self {
        CacheBuilder {
            capacity: None,
            weighted: false,
            weigher: None,
            shards: None,
            expiry: ExpiryPolicy::default(),
            clock: None,
            listener: None,
            hasher: DefaultHashBuilder::default(),
            key_bytes: None,
            subscribers: Vec::new(),
            lease_timeout: DEFAULT_LEASE_TIMEOUT,
            co_access: None,
            #[cfg(feature = "rules")]
            policies: None,
            history: None,
        }
    }
}

impl<K, V, S> CacheBuilder<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Bounds the cache by entry count.
    pub fn max_capacity(mut self, entries: u64) -> Self {
        self.capacity = Some(entries);
        self.weighted = false;
        self
    }

    /// Bounds the cache by total weight, as computed by [`Self::weigher`]. The weight is split
    /// evenly across shards; one entry may weigh at most one shard's share (see
    /// [`Cache::max_entry_weight`]).
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.capacity = Some(weight);
        self.weighted = true;
        self
    }

    /// How to weigh entries (with [`Self::max_weight`]); for byte sizes see
    /// [`crate::weigher::ByteWeigher`].
    pub fn weigher(mut self, w: impl Weigher<K, V>) -> Self {
        self.weigher = Some(Box::new(w));
        self
    }

    /// Number of shards (a power of two). By default: sixteen per core, fewer for small caches
    /// (each shard gets at least 2048 entries of capacity).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Default expiry for inserts that do not choose their own.
    pub fn expiry(mut self, policy: ExpiryPolicy) -> Self {
        self.expiry = policy;
        self
    }

    /// Default fixed time to live.
    pub fn time_to_live(mut self, d: Duration) -> Self {
        self.expiry.ttl = Ttl::Fixed(d);
        self
    }

    /// Default time to idle (sliding TTL).
    pub fn time_to_idle(mut self, d: Duration) -> Self {
        self.expiry.ttl = Ttl::Sliding(d);
        self
    }

    /// Default TTL jitter fraction, in `[0, 1)`.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.expiry.jitter = fraction;
        self
    }

    /// Default probabilistic early refresh.
    pub fn early_refresh(mut self, e: EarlyRefresh) -> Self {
        self.expiry.early_refresh = Some(e);
        self
    }

    /// The clock (default [`SystemClock`]); tests pass an `Arc<ManualClock>`.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Keeps a bounded history per key (see [`crate::history`]): every write, change in place
    /// and removal, with its cause, what it matched and who asked, read back with
    /// [`Cache::history`] and [`Cache::why`]. Off by default: it costs a record appended per
    /// write and removal, under the shard lock the change holds anyway, and 64 bytes per slot.
    pub fn history(mut self, config: HistoryConfig) -> Self {
        self.history = Some(config);
        self
    }

    /// Receives every removal with its cause.
    pub fn removal_listener(mut self, l: impl RemovalListener<K, V>) -> Self {
        self.listener = Some(Box::new(l));
        self
    }

    /// A different hasher for keys.
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            capacity: self.capacity,
            weighted: self.weighted,
            weigher: self.weigher,
            shards: self.shards,
            expiry: self.expiry,
            clock: self.clock,
            listener: self.listener,
            hasher,
            key_bytes: self.key_bytes,
            subscribers: self.subscribers,
            lease_timeout: self.lease_timeout,
            co_access: self.co_access,
            #[cfg(feature = "rules")]
            policies: self.policies,
            history: self.history,
        }
    }

    /// Named per-data-type policies (the `[policy.NAME]` tables of a rule file) for
    /// [`Cache::insert_with_policy`].
    #[cfg(feature = "rules")]
    pub fn data_policies(mut self, rules: Arc<RuleSet>) -> Self {
        self.policies = Some(rules);
        self
    }

    /// Tracks which keys are read together, for [`Cache::suggested_dependencies`]. Off by
    /// default: it takes a lock on every hit.
    pub fn track_co_access(mut self, config: CoAccessConfig) -> Self {
        self.co_access = Some(config);
        self
    }

    /// Hears every applied invalidation with its sequence number (see [`Subscriber`]).
    pub fn subscriber(mut self, s: impl Subscriber<K>) -> Self {
        self.subscribers.push(Box::new(s));
        self
    }

    /// How long a lease stays outstanding if neither filled nor released (default 10 s).
    pub fn lease_timeout(mut self, d: Duration) -> Self {
        self.lease_timeout = d;
        self
    }

    fn validate(&self) -> Result<(u64, usize), Error> {
        let bad = |m: String| Err(Error::new(ErrorKind::InvalidConfig, m));
        let Some(capacity) = self.capacity else {
            return bad(
                "no capacity: call max_capacity (entries) or max_weight (with a weigher)".into(),
            );
        };
        if self.weigher.is_some() && !self.weighted {
            return bad("a weigher needs max_weight, not max_capacity".into());
        }
        let j = self.expiry.jitter;
        if !(0.0..1.0).contains(&j) {
            return bad(format!("jitter must be in [0, 1), got {j}"));
        }
        if let Ttl::Adaptive(a) = &self.expiry.ttl {
            if a.min > a.max {
                return bad(format!(
                    "adaptive TTL min {:?} exceeds max {:?}",
                    a.min, a.max
                ));
            }
        }
        if let Some(e) = self.expiry.early_refresh {
            if !(e.beta.is_finite() && e.beta > 0.0) {
                return bad(format!(
                    "early refresh beta must be positive, got {}",
                    e.beta
                ));
            }
        }
        let shards = match self.shards {
            Some(n) if n == 0 || !n.is_power_of_two() || n > 1 << 16 => {
                return bad(format!(
                    "shards must be a power of two in 1..=65536, got {n}"
                ));
            }
            Some(n) => n,
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                // Sixteen shards per core: with four, two threads writing a Zipf key set queued on
                // the hottest shards' write locks (tuning runs of `lethe-bench throughput`), while
                // the hit-ratio suite showed no loss from the smaller shards.
                let by_cores = (cores * 16).next_power_of_two().min(1024) as u64;
                // Weighted caches do not know their entry count; assume ~64 weight units each.
                let per_shard = if self.weighted {
                    MIN_SHARD_CAPACITY * 64
                } else {
                    MIN_SHARD_CAPACITY
                };
                let by_size = (capacity / per_shard).max(1);
                let by_size = if by_size.is_power_of_two() {
                    by_size
                } else {
                    by_size.next_power_of_two() / 2
                };
                by_cores.min(by_size) as usize
            }
        };
        Ok((capacity, shards))
    }

    /// Builds the cache, or explains which setting is invalid.
    pub fn try_build(self) -> Result<Cache<K, V, S>, Error> {
        let (capacity, shards) = self.validate()?;
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let now = clock.now().0;
        let invalidation = Arc::new(InvalidationState::new(capacity));
        let history = self
            .history
            .map(|config| Arc::new(HistoryShared::new(config, shards, clock.clone())));
        let base = capacity / shards as u64;
        let extra = capacity % shards as u64;
        let cells = (0..shards as u64)
            .map(|i| {
                let cap = base + u64::from(i < extra);
                let expected = if self.weighted { 1024 } else { cap as usize };
                CachePadded::new(RwLock::new(Shard::new(
                    cap,
                    expected,
                    now,
                    invalidation.clone(),
                    self.key_bytes.map(KeyIndex::new),
                    history.clone(),
                )))
            })
            .collect();
        let key_bytes = std::sync::OnceLock::new();
        if let Some(f) = self.key_bytes {
            let _ = key_bytes.set(f);
        }
        Ok(Cache::from_inner(Inner {
            shards: cells,
            shard_mask: shards - 1,
            hasher: self.hasher,
            clock,
            weigher: self.weigher.unwrap_or_else(|| Box::new(UnitWeigher)),
            listener: self.listener,
            defaults: self.expiry,
            capacity,
            reads: ReadCounters::new(),
            invalidation,
            graph: DepGraph::new(),
            key_bytes,
            subscribers: Subscribers::new(self.subscribers),
            lease_timeout: duration_nanos(self.lease_timeout),
            co_access: self.co_access.map(CoAccess::new),
            #[cfg(feature = "rules")]
            policies: self.policies,
            history,
        }))
    }

    /// Builds the cache.
    ///
    /// # Panics
    /// On an invalid configuration (see [`Self::try_build`] for the error instead).
    pub fn build(self) -> Cache<K, V, S> {
        match self.try_build() {
            Ok(c) => c,
            Err(e) => panic!("lethe: {e}"),
        }
    }
}

impl<K, V, S> CacheBuilder<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Keeps an ordered index of the keys, so prefix and glob invalidations (and
    /// [`Cache::keys_matching`]) visit only the keys sharing the pattern's literal prefix
    /// instead of scanning every entry. Costs a copy of each key's bytes plus about 40 bytes
    /// of B-tree per entry, and a B-tree insert per new key.
    pub fn index_keys(mut self) -> Self {
        self.key_bytes = Some(<K as AsRef<[u8]>>::as_ref);
        self
    }
}

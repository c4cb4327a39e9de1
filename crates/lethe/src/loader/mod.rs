//! Loaders: a [`Cache`] in front of a system of record, read through on a miss and optionally
//! written through or behind.
//!
//! Cache-aside is easy to get subtly wrong: every misser reads the database at once (a
//! stampede), a slow read stores a value an invalidation already retired, errors get cached
//! or stall everyone. [`Loader`] does it once, on top of the engine's leases and expiry:
//!
//! - **Single flight.** Within a loader, one [`Source::load`] per key at a time; concurrent
//!   missers wait for it and share its outcome, error included (see `single_flight.rs`).
//! - **Leases.** The leader takes the key's lease ([`Cache::lease`]) and stores what it
//!   loaded with [`Cache::fill`], so a write or invalidation that happens during the load
//!   wins: the fill is refused, the value is returned to the callers of that load only, and
//!   nothing stale is cached. When the lease is held outside this loader (another cache
//!   handle, a direct caller), the leader polls with backoff until the holder fills or the
//!   lease times out; past the timeout it loads without caching.
//! - **Errors** are returned, never cached. **Absence** (`Ok(None)` from the source) is cached
//!   only with [`LoaderBuilder::negative_ttl`].
//! - **Staleness on purpose.** Stale-while-revalidate serves an expired value for a grace
//!   while one background refresh runs; stale-if-error serves it, within its grace, when the
//!   load fails; refresh-ahead reloads a hot entry in the background when probabilistic early
//!   expiration ([`crate::expiry::EarlyRefresh`]) tells a reader to, so readers never see the miss.
//!   The engine keeps expired entries for [`Cache::get_stale`] because loaded values are
//!   stored with [`InsertOptions::retain_stale`] set to the larger grace.
//! - **Writes** ([`WriteMode`]): cache only, write-through (source first, then cache), or
//!   write-behind (cache now, source in ordered batches later; see `write_behind.rs`), all
//!   serialised per key so the cache and the source agree on the last write.
//!
//! # Negative caching
//! A negative entry lives in a small bounded cache of its own (on the main cache's clock), so
//! the main cache's value type need not express absence. What the engine would do for an
//! entry (forget it when invalidated) is approximated conservatively: a negative entry
//! remembers [`Cache::last_seq`] and is ignored once *any* invalidation has been applied to
//! the cache since, and a write of the key through the loader removes it. So it can be
//! forgotten too early, never served after an invalidation of its key. A plain
//! [`Cache::insert`] or [`Cache::remove`] is not an invalidation: use
//! [`Cache::invalidate_key`] to say the source changed.
//!
//! # Threads
//! Background refreshes run on a few std threads ([`LoaderBuilder::refresh_threads`]),
//! started only when refresh-ahead or stale-while-revalidate is on; write-behind has one
//! flusher thread. [`Loader::shutdown`] (or dropping the loader) stops them after the flusher
//! has written every acknowledged write.
//!
//! ```
//! use lethe::Cache;
//! use lethe::loader::{Loader, Source};
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! struct Users(HashMap<u32, String>);
//!
//! impl Source<u32, String> for Users {
//!     type Error = std::io::Error;
//!     fn load(&self, id: &u32) -> Result<Option<String>, Self::Error> {
//!         Ok(self.0.get(id).cloned())
//!     }
//! }
//!
//! let cache: Cache<u32, String> = Cache::new(10_000);
//! let users = Arc::new(Users(HashMap::from([(42, "Ada".to_string())])));
//! let loader = Loader::builder(cache.clone(), users).build();
//! assert_eq!(loader.get(&42).unwrap().as_deref(), Some("Ada"));
//! assert_eq!(cache.get(&42).as_deref(), Some("Ada"));
//! assert_eq!(loader.get(&7).unwrap(), None);
//! assert_eq!(loader.stats().loads, 2);
//! ```

mod error;
mod read;
mod refresh;
mod single_flight;
mod source;
mod stats;
mod write;
mod write_behind;

pub use error::{LoadError, LoadErrorKind, WriteError, WriteErrorKind};
pub use source::{Source, WritableSource, WriteOp};
pub use stats::LoaderStats;
pub use write_behind::{DeadLetter, FailedWrite, RetryPolicy, WriteBehindConfig};

use crate::builder::DefaultHashBuilder;
use crate::cache::Cache;
use crate::clock::{Clock, Timestamp};
use crate::entry::InsertOptions;
use crate::error::{Error, ErrorKind};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use refresh::{JOBS_PER_THREAD, Job, RefreshQueue};
use single_flight::Flights;
use source::{SourceWrites, Via};
use stats::ReadCounters;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::thread::JoinHandle;
use std::time::Duration;
use write_behind::WriteBehind;

/// Locks serialising writes per key (by hash), and counting them for negative caching.
const STRIPES: usize = 128;

/// Negative entries kept by default.
const NEGATIVE_CAPACITY: u64 = 10_000;

/// Refresh worker threads by default.
const REFRESH_THREADS: usize = 2;

/// How a loader's writes reach the source.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMode {
    /// Writes update the cache only (the application writes the source itself).
    #[default]
    None,
    /// [`Loader::insert`] writes the source, then the cache; a failed source write leaves
    /// the cache as it was.
    Through,
    /// [`Loader::insert`] updates the cache and queues the source write; see
    /// [`WriteBehindConfig`] for batching, bounds and retries.
    Behind(WriteBehindConfig),
}

/// What [`Loader::shutdown`] could not do, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport<K, V> {
    /// Write-behind ops the source acknowledged over the loader's life.
    pub written: u64,
    /// Write-behind ops given up on after their retries, over the loader's life.
    pub failed: Vec<FailedWrite<K, V>>,
}

/// The main cache's clock, for the negative cache: negative TTLs must pass on the same
/// timeline as the entries they stand beside.
struct ClockOf<K, V, S>(Cache<K, V, S>);

impl<K, V, S> fmt::Debug for ClockOf<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClockOf")
    }
}

impl<K, V, S> Clock for ClockOf<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn now(&self) -> Timestamp {
        self.0.clock().now()
    }
}

/// The read side's settings.
#[derive(Debug)]
struct ReadConfig {
    swr: Option<Duration>,
    sie: Option<Duration>,
    /// The larger of the two: how long loaded entries are retained past expiry.
    grace: Option<Duration>,
    refresh_ahead: bool,
    lease_wait: Duration,
}

/// Where writes go.
enum Writes<K, V, E> {
    CacheOnly,
    Through(Box<dyn SourceWrites<K, V, E>>),
    Behind(Box<dyn SourceWrites<K, V, E>>, Box<WriteBehind<K, V>>),
}

/// Writes through the loader to the keys hashing here: serialised by `lock`, counted in
/// `writes` (read without the lock by loads, see `read.rs`).
#[derive(Debug, Default)]
struct Stripe {
    lock: Mutex<()>,
    writes: AtomicU64,
}

/// Everything the callers and the loader's threads share.
struct Core<K, V, Src, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Src: Source<K, V>,
{
    cache: Cache<K, V, S>,
    source: Arc<Src>,
    defaults: InsertOptions<K>,
    read: ReadConfig,
    flights: Flights<K, V, Src::Error>,
    negatives: Option<Cache<K, u64>>,
    counters: ReadCounters,
    refresh: Option<RefreshQueue<Job<K, V, Src::Error>>>,
    writes: Writes<K, V, Src::Error>,
    stripes: Box<[Stripe]>,
    stripe_hasher: foldhash::fast::RandomState,
    closed: AtomicBool,
    dead_letter: Option<Box<dyn DeadLetter<K, V>>>,
}

impl<K, V, Src, S> Core<K, V, Src, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Src: Source<K, V>,
{
    fn stripe(&self, key: &K) -> &Stripe {
        &self.stripes[self.stripe_hasher.hash_one(key) as usize & (STRIPES - 1)]
    }

    fn write_behind(&self) -> Option<&WriteBehind<K, V>> {
        match &self.writes {
            Writes::Behind(_, wb) => Some(wb),
            _ => None,
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(q) = &self.refresh {
            q.close();
        }
        if let Some(wb) = self.write_behind() {
            wb.close();
        }
    }
}

/// A cache that loads what it misses from a [`Source`]; see the [module docs](self).
///
/// Thread-safe: share it by reference or in an `Arc`. Built with [`Loader::builder`].
pub struct Loader<K, V, Src, S = DefaultHashBuilder>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Src: Source<K, V>,
{
    core: Arc<Core<K, V, Src, S>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl<K, V, Src, S> fmt::Debug for Loader<K, V, Src, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Src: Source<K, V>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("cache", &self.core.cache)
            .field("read", &self.core.read)
            .field("negative_caching", &self.core.negatives.is_some())
            .field("threads", &self.threads.lock().len())
            .finish_non_exhaustive()
    }
}

impl<K, V, Src, S> Loader<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: Source<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// A builder for a loader reading `source` into `cache`. The cache stays usable directly;
    /// the loader is one more handle on it.
    pub fn builder(cache: Cache<K, V, S>, source: Arc<Src>) -> LoaderBuilder<K, V, Src, S> {
        LoaderBuilder {
            cache,
            source,
            defaults: InsertOptions::new(),
            negative_ttl: None,
            negative_capacity: NEGATIVE_CAPACITY,
            swr: None,
            sie: None,
            refresh_ahead: false,
            refresh_threads: REFRESH_THREADS,
            lease_wait: None,
            mode: WriteMode::None,
            writes: None,
            dead_letter: None,
        }
    }

    /// The value of `key`: from the cache, or loaded from the source (once, however many
    /// callers miss it together) and cached. `Ok(None)` when the source has no such row.
    ///
    /// May serve a stale value: with stale-while-revalidate while a refresh runs, with
    /// stale-if-error when the load fails. Errors are returned to every caller that waited
    /// for the failed load, and not cached. Blocks for as long as the load it leads or joins.
    pub fn get(&self, key: &K) -> Result<Option<V>, LoadError<Src::Error>> {
        self.core.get(key)
    }

    /// Writes `value` under `key` according to the [`WriteMode`]. Returns once the write is
    /// acknowledged: applied to the source (write-through) or queued (write-behind, waiting
    /// for room when the queue is full). Either way the cache holds `value` afterwards, and
    /// loads of `key` in flight will not overwrite it.
    ///
    /// Writes to one key are serialised, and the cache's removal listener runs inside that
    /// section: a listener must not write through this loader (it may read through it).
    pub fn insert(&self, key: K, value: V) -> Result<(), WriteError<Src::Error>> {
        self.core.write(key, Some(value), true)
    }

    /// [`Self::insert`], but with write-behind fails with [`WriteErrorKind::Full`] instead of
    /// waiting when the queue is full (and then leaves the cache untouched).
    pub fn try_insert(&self, key: K, value: V) -> Result<(), WriteError<Src::Error>> {
        self.core.write(key, Some(value), false)
    }

    /// Deletes `key` according to the [`WriteMode`] and invalidates it in the cache
    /// ([`Cache::invalidate_key`]: dependents go too, subscribers hear of it).
    pub fn remove(&self, key: &K) -> Result<(), WriteError<Src::Error>> {
        self.core.write(key.clone(), None, true)
    }

    /// [`Self::remove`] without waiting for room in the write-behind queue.
    pub fn try_remove(&self, key: &K) -> Result<(), WriteError<Src::Error>> {
        self.core.write(key.clone(), None, false)
    }

    /// Waits until every write acknowledged before the call is written to the source or
    /// given up on ([`Self::failed_writes`]). Returns at once unless in write-behind mode.
    pub fn flush(&self) {
        if let Some(wb) = self.core.write_behind() {
            wb.flush();
        }
    }

    /// Graceful shutdown: refuses further writes ([`WriteErrorKind::Closed`]) and background
    /// refreshes, writes every acknowledged write-behind op (with its retries), and joins the
    /// loader's threads. Reads keep working, without background refreshes. Calling it again
    /// does nothing new and returns the same report. Dropping the loader does the same, but
    /// can report failures only through [`LoaderBuilder::on_write_failure`].
    pub fn shutdown(&self) -> ShutdownReport<K, V> {
        self.core.close();
        let handles = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for h in handles {
            // A handler on one of our own threads dropping the loader must not join itself.
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        ShutdownReport {
            written: self.stats().writes_written,
            failed: self.failed_writes(),
        }
    }

    /// Write-behind ops given up on after their retries, oldest first. Each key was
    /// invalidated in the cache when its op was given up on (unless a later write to it was
    /// pending), so the cache does not claim writes the source never got.
    pub fn failed_writes(&self) -> Vec<FailedWrite<K, V>> {
        self.core
            .write_behind()
            .map(WriteBehind::failed)
            .unwrap_or_default()
    }

    /// A snapshot of the loader's counters (the cache's own are in [`Cache::stats`]).
    pub fn stats(&self) -> LoaderStats {
        LoaderStats::collect(
            &self.core.counters,
            self.core.write_behind().map(|wb| &wb.counters),
        )
    }

    /// The cache.
    pub fn cache(&self) -> &Cache<K, V, S> {
        &self.core.cache
    }

    /// The source.
    pub fn source(&self) -> &Arc<Src> {
        &self.core.source
    }
}

impl<K, V, Src, S> Drop for Loader<K, V, Src, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Src: Source<K, V>,
{
    fn drop(&mut self) {
        self.core.close();
        let me = std::thread::current().id();
        for h in std::mem::take(&mut *self.threads.lock()) {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

/// Configures a [`Loader`]; see [`Loader::builder`].
pub struct LoaderBuilder<K, V, Src, S = DefaultHashBuilder>
where
    Src: Source<K, V>,
{
    cache: Cache<K, V, S>,
    source: Arc<Src>,
    defaults: InsertOptions<K>,
    negative_ttl: Option<Duration>,
    negative_capacity: u64,
    swr: Option<Duration>,
    sie: Option<Duration>,
    refresh_ahead: bool,
    refresh_threads: usize,
    lease_wait: Option<Duration>,
    mode: WriteMode,
    writes: Option<Box<dyn SourceWrites<K, V, Src::Error>>>,
    dead_letter: Option<Box<dyn DeadLetter<K, V>>>,
}

impl<K, V, Src, S> fmt::Debug for LoaderBuilder<K, V, Src, S>
where
    Src: Source<K, V>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderBuilder")
            .field("negative_ttl", &self.negative_ttl)
            .field("negative_capacity", &self.negative_capacity)
            .field("stale_while_revalidate", &self.swr)
            .field("stale_if_error", &self.sie)
            .field("refresh_ahead", &self.refresh_ahead)
            .field("refresh_threads", &self.refresh_threads)
            .field("lease_wait", &self.lease_wait)
            .field("write_mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<K, V, Src, S> LoaderBuilder<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: Source<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Options loaded and written values are cached with (TTL, early refresh, tags...),
    /// before [`Source::load_options`] adjusts them per value. Default: the cache's own
    /// defaults.
    pub fn insert_options(mut self, options: InsertOptions<K>) -> Self {
        self.defaults = options;
        self
    }

    /// Caches "the source has no such row" for `ttl`; see the module docs for how such
    /// entries are forgotten. Off by default: absence is then re-checked on every miss.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Most negative entries kept (default 10 000): the negative cache is bounded like any
    /// other, so a scan of missing keys cannot grow it without limit.
    pub fn negative_capacity(mut self, entries: u64) -> Self {
        self.negative_capacity = entries;
        self
    }

    /// Stale-while-revalidate: a miss on an entry expired less than `grace` ago returns the
    /// stale value at once and refreshes it in the background (one refresh per key at a time).
    pub fn stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.swr = Some(grace);
        self
    }

    /// Stale-if-error: when a load fails, a value expired less than `grace` ago is returned
    /// instead of the error.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.sie = Some(grace);
        self
    }

    /// Refresh-ahead: when a read is told to refresh by probabilistic early expiration
    /// ([`crate::expiry::EarlyRefresh`], set on the cache or in [`Self::insert_options`]), the entry is
    /// reloaded in the background while readers keep getting the current value. Off by
    /// default.
    pub fn refresh_ahead(mut self, on: bool) -> Self {
        self.refresh_ahead = on;
        self
    }

    /// Background refresh threads (default 2), started only when refresh-ahead or
    /// stale-while-revalidate is on.
    pub fn refresh_threads(mut self, n: usize) -> Self {
        self.refresh_threads = n;
        self
    }

    /// How long (real time) a leader waits for a lease held outside this loader before
    /// loading without caching. Default: the cache's lease timeout.
    pub fn lease_wait(mut self, d: Duration) -> Self {
        self.lease_wait = Some(d);
        self
    }

    /// Called for each write-behind op given up on; see [`DeadLetter`].
    pub fn on_write_failure(mut self, handler: impl DeadLetter<K, V>) -> Self {
        self.dead_letter = Some(Box::new(handler));
        self
    }

    /// Builds the loader and starts its threads, or says which setting is wrong.
    pub fn try_build(self) -> Result<Loader<K, V, Src, S>, Error> {
        let invalid = |m: &str| Err(Error::new(ErrorKind::InvalidConfig, m));
        let background = self.refresh_ahead || self.swr.is_some();
        if background && self.refresh_threads == 0 {
            return invalid(
                "refresh_threads must be at least 1 with refresh-ahead or stale-while-revalidate",
            );
        }
        if self.negative_ttl == Some(Duration::ZERO) {
            return invalid("negative_ttl must be positive (leave it unset to disable)");
        }
        if let WriteMode::Behind(c) = &self.mode {
            if c.queue_capacity == 0 || c.max_batch == 0 || c.retry.attempts == 0 {
                return invalid(
                    "write-behind queue_capacity, max_batch and retry.attempts must be at least 1",
                );
            }
        }
        let negatives = match self.negative_ttl {
            Some(ttl) => Some(
                Cache::builder()
                    .max_capacity(self.negative_capacity)
                    .time_to_live(ttl)
                    .clock(ClockOf(self.cache.clone()))
                    .try_build()?,
            ),
            None => None,
        };
        let writes = match (self.mode, self.writes) {
            (WriteMode::Through, Some(w)) => Writes::Through(w),
            (WriteMode::Behind(c), Some(w)) => Writes::Behind(w, Box::new(WriteBehind::new(c))),
            _ => Writes::CacheOnly,
        };
        let grace = match (self.swr, self.sie) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let lease_wait = self
            .lease_wait
            .unwrap_or(Duration::from_nanos(self.cache.inner.lease_timeout));
        let core = Arc::new(Core {
            read: ReadConfig {
                swr: self.swr,
                sie: self.sie,
                grace,
                refresh_ahead: self.refresh_ahead,
                lease_wait,
            },
            cache: self.cache,
            source: self.source,
            defaults: self.defaults,
            flights: Flights::new(),
            negatives,
            counters: ReadCounters::default(),
            refresh: background.then(|| RefreshQueue::new(JOBS_PER_THREAD * self.refresh_threads)),
            writes,
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            stripe_hasher: foldhash::fast::RandomState::default(),
            closed: AtomicBool::new(false),
            dead_letter: self.dead_letter,
        });
        let loader = Loader {
            core: core.clone(),
            threads: Mutex::new(Vec::new()),
        };
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            // Dropping `loader` on failure closes and joins what was started.
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .expect("starting a loader thread");
            loader.threads.lock().push(h);
        };
        if core.refresh.is_some() {
            for i in 0..self.refresh_threads {
                let c = core.clone();
                spawn(
                    format!("lethe-refresh-{i}"),
                    Box::new(move || c.refresh_worker()),
                );
            }
        }
        if core.write_behind().is_some() {
            let c = core.clone();
            spawn("lethe-write-behind".into(), Box::new(move || c.flusher()));
        }
        Ok(loader)
    }

    /// [`Self::try_build`].
    ///
    /// # Panics
    /// On an invalid configuration.
    pub fn build(self) -> Loader<K, V, Src, S> {
        match self.try_build() {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }
}

impl<K, V, Src, S> LoaderBuilder<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: WritableSource<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// How [`Loader::insert`] and [`Loader::remove`] reach the source (default
    /// [`WriteMode::None`]: the cache only). Offered only for a [`WritableSource`].
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.writes = Some(Box::new(Via(self.source.clone())));
        self.mode = mode;
        self
    }
}

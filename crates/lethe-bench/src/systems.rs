//! The caches under test, behind one small trait so every suite drives them identically.
//!
//! Each system is used the way its documentation tells a user to use it: built with a capacity
//! in entries, then only `get` and `insert`. Suites stay generic over [`BenchCache`] and are
//! monomorphised per system through [`with_system!`], so the hot loops pay no dynamic dispatch
//! that the real caches would not pay either.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use clap::ValueEnum;

/// Bounds every key type used by the suites satisfies (the union of the systems' requirements).
pub trait Key: Hash + Eq + Clone + Send + Sync + 'static {}
impl<T: Hash + Eq + Clone + Send + Sync + 'static> Key for T {}

/// Bounds every value type used by the suites satisfies.
pub trait Value: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Value for T {}

/// The operations the suites need from a cache.
pub trait BenchCache<K: Key, V: Value>: Send + Sync + Sized {
    /// Build an empty cache holding at most `capacity` entries.
    fn with_capacity(capacity: u64) -> Self;
    fn get(&self, key: &K) -> Option<V>;
    fn insert(&self, key: K, value: V);
    /// Number of entries currently held (after [`BenchCache::settle`], for lazy counters).
    fn entry_count(&self) -> usize;
    /// Let deferred internal work finish. Only the memory suite calls this, so that buffered
    /// bookkeeping is not mistaken for (or hidden from) the steady-state footprint.
    fn settle(&self) {}
}

/// A cache implementation the harness knows how to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum System {
    #[value(name = "lethe")]
    Lethe,
    #[value(name = "moka")]
    Moka,
    #[value(name = "quick_cache")]
    QuickCache,
    #[value(name = "lru")]
    Lru,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Lethe => "lethe",
            System::Moka => "moka",
            System::QuickCache => "quick_cache",
            System::Lru => "lru",
        }
    }
}

/// Run `$body` with the type alias `$C` bound to the [`BenchCache`] implementation of `$sys`
/// for keys `$K` and values `$V`. A macro rather than a function because Rust has no closures
/// generic over a type.
macro_rules! with_system {
    ($sys:expr, $K:ty, $V:ty, |$C:ident| $body:expr) => {
        match $sys {
            $crate::systems::System::Lethe => {
                type $C = $crate::systems::LetheCache<$K, $V>;
                $body
            }
            $crate::systems::System::Moka => {
                type $C = $crate::systems::MokaCache<$K, $V>;
                $body
            }
            $crate::systems::System::QuickCache => {
                type $C = $crate::systems::QuickCache<$K, $V>;
                $body
            }
            $crate::systems::System::Lru => {
                type $C = $crate::systems::LruCache<$K, $V>;
                $body
            }
        }
    };
}
pub(crate) use with_system;

// Opaque Debug impls: the wrapped caches' own Debug impls (if any) carry bounds we do not need.
macro_rules! opaque_debug {
    ($($name:ident),*) => {$(
        impl<K: Hash + Eq, V> std::fmt::Debug for $name<K, V> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    )*};
}
opaque_debug!(LetheCache, MokaCache, QuickCache, LruCache);

/// The engine under test.
pub struct LetheCache<K, V>(lethe::Cache<K, V>);

impl<K: Key, V: Value> BenchCache<K, V> for LetheCache<K, V> {
    fn with_capacity(capacity: u64) -> Self {
        Self(lethe::Cache::builder().max_capacity(capacity).build())
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    fn entry_count(&self) -> usize {
        self.0.len()
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
}

/// `moka::sync::Cache`, with its default hasher and no extra configuration.
pub struct MokaCache<K, V>(moka::sync::Cache<K, V>);

impl<K: Key, V: Value> BenchCache<K, V> for MokaCache<K, V> {
    fn with_capacity(capacity: u64) -> Self {
        Self(moka::sync::Cache::builder().max_capacity(capacity).build())
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    fn entry_count(&self) -> usize {
        self.0.entry_count() as usize
    }
    fn settle(&self) {
        // One call drains only a bounded number of log entries, so repeat until the count
        // stops moving; the bound is a guard, not an expected iteration count.
        let mut last = u64::MAX;
        for _ in 0..64 {
            self.0.run_pending_tasks();
            let now = self.0.entry_count();
            if now == last {
                break;
            }
            last = now;
        }
    }
}

/// `quick_cache::sync::Cache` built with `Cache::new(capacity)`.
pub struct QuickCache<K, V>(quick_cache::sync::Cache<K, V>);

impl<K: Key, V: Value> BenchCache<K, V> for QuickCache<K, V> {
    fn with_capacity(capacity: u64) -> Self {
        Self(quick_cache::sync::Cache::new(capacity as usize))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.insert(key, value);
    }
    fn entry_count(&self) -> usize {
        self.0.len()
    }
}

/// `lru::LruCache` behind a `Mutex`: it is single-threaded (`get` needs `&mut`), and a mutex is
/// what a user sharing it between threads would reach for. It is the exact-LRU baseline.
pub struct LruCache<K: Hash + Eq, V>(Mutex<lru::LruCache<K, V>>);

impl<K: Key, V: Value> BenchCache<K, V> for LruCache<K, V> {
    fn with_capacity(capacity: u64) -> Self {
        let cap = NonZeroUsize::new(capacity as usize).expect("capacity must be non-zero");
        Self(Mutex::new(lru::LruCache::new(cap)))
    }
    #[inline]
    fn get(&self, key: &K) -> Option<V> {
        self.0.lock().unwrap().get(key).cloned()
    }
    #[inline]
    fn insert(&self, key: K, value: V) {
        self.0.lock().unwrap().put(key, value);
    }
    fn entry_count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

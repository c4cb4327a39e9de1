//! Removal notifications: who hears that an entry left the cache, and why.
//!
//! Every entry that leaves the cache is reported exactly once, with its cause. The engine collects
//! notifications while it holds a shard lock and delivers them after releasing it, on the thread
//! that caused the removal, so a listener may call back into the cache without deadlocking.

use std::fmt;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed by an explicit call (`remove`, `clear`).
    Explicit,
    /// Overwritten by a newer value for the same key; the listener gets the old value.
    Replaced,
    /// Its deadline passed.
    Expired,
    /// Evicted to respect the capacity.
    Evicted,
}

impl RemovalCause {
    /// Every cause, in a stable order (used for per-cause counters).
    pub const ALL: [RemovalCause; 4] = [
        RemovalCause::Explicit,
        RemovalCause::Replaced,
        RemovalCause::Expired,
        RemovalCause::Evicted,
    ];

    pub(crate) const fn index(self) -> usize {
        match self {
            RemovalCause::Explicit => 0,
            RemovalCause::Replaced => 1,
            RemovalCause::Expired => 2,
            RemovalCause::Evicted => 3,
        }
    }

    /// A short lowercase name, stable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            RemovalCause::Explicit => "explicit",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Expired => "expired",
            RemovalCause::Evicted => "evicted",
        }
    }

    /// Whether the entry was taken away by the cache itself rather than by the application.
    pub const fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Evicted)
    }
}

impl fmt::Display for RemovalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives every removal.
///
/// # Contract
/// - Called exactly once per removed entry (a replaced value counts as a removed entry), after
///   the removal is visible to other threads.
/// - Called on the thread that triggered the removal, with no cache lock held: it may read or
///   write the cache, but it delays the caller, so keep it short or hand off to a queue.
/// - Notifications from one call arrive in the order the engine removed the entries; there is
///   no ordering across threads.
/// - A panic in the listener propagates to the caller that triggered the removal; the cache
///   itself stays consistent.
pub trait RemovalListener<K, V>: Send + Sync + 'static {
    /// One entry left the cache.
    fn on_removal(&self, key: &K, value: &V, cause: RemovalCause);
}

impl<K, V, F> RemovalListener<K, V> for F
where
    F: Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
{
    fn on_removal(&self, key: &K, value: &V, cause: RemovalCause) {
        self(key, value, cause)
    }
}

/// Notifications collected under a shard lock, delivered after it is released.
pub(crate) type Pending<K, V> = Vec<(K, V, RemovalCause)>;

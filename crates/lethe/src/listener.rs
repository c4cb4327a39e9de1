//! Removal notifications: who hears that an entry left the cache, and why.
//!
//! Every entry that leaves the cache is reported exactly once, with its cause. The engine collects
//! notifications while it holds a shard lock and delivers them after releasing it, on the thread
//! that caused the removal, so a listener may call back into the cache without deadlocking.

use crate::history::Context;
use crate::tag_index::MemberList;
use std::fmt;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Removed by an explicit call (`remove`, `clear`).
    Explicit,
    /// Overwritten by a newer value for the same key; the listener gets the old value. A value
    /// changed in place ([`crate::Cache::compute`]) counts as replaced too, but has no old value
    /// left to hand over: it is reported through [`RemovalListener::on_modified`].
    Replaced,
    /// Its deadline passed.
    Expired,
    /// Evicted to respect the capacity.
    Evicted,
    /// One of its tags (or an ancestor of one) was invalidated.
    Tag,
    /// Its key matched an invalidated prefix or glob.
    Pattern,
    /// A key it depends on was invalidated, replaced, removed, expired or evicted.
    Dependency,
    /// Its version fell below a version floor set for its prefix or one of its tags.
    Stale,
}

impl RemovalCause {
    /// Every cause, in a stable order (used for per-cause counters).
    pub const ALL: [RemovalCause; 8] = [
        RemovalCause::Explicit,
        RemovalCause::Replaced,
        RemovalCause::Expired,
        RemovalCause::Evicted,
        RemovalCause::Tag,
        RemovalCause::Pattern,
        RemovalCause::Dependency,
        RemovalCause::Stale,
    ];

    pub(crate) const fn index(self) -> usize {
        match self {
            RemovalCause::Explicit => 0,
            RemovalCause::Replaced => 1,
            RemovalCause::Expired => 2,
            RemovalCause::Evicted => 3,
            RemovalCause::Tag => 4,
            RemovalCause::Pattern => 5,
            RemovalCause::Dependency => 6,
            RemovalCause::Stale => 7,
        }
    }

    /// A short lowercase name, stable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            RemovalCause::Explicit => "explicit",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Expired => "expired",
            RemovalCause::Evicted => "evicted",
            RemovalCause::Tag => "tag",
            RemovalCause::Pattern => "pattern",
            RemovalCause::Dependency => "dependency",
            RemovalCause::Stale => "stale",
        }
    }

    /// Whether the entry was taken away by the cache itself (capacity, time) rather than by an
    /// invalidation or write of the application's.
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

    /// The value of `key` was changed in place ([`crate::Cache::compute`],
    /// [`crate::compute::KeyLock::compute`]): the previous value was replaced, as
    /// [`RemovalCause::Replaced`], but no longer exists to be handed over (handing it over would
    /// mean copying every value on every change). Same contract as [`Self::on_removal`]. The
    /// default does nothing, so a closure listener does not hear in-place changes; implement
    /// the trait on a type of your own to hear them.
    fn on_modified(&self, key: &K) {
        let _ = key;
    }
}

impl<K, V, F> RemovalListener<K, V> for F
where
    F: Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
{
    fn on_removal(&self, key: &K, value: &V, cause: RemovalCause) {
        self(key, value, cause)
    }
}

/// One removal, collected under a shard lock and handled after it is released: the listener
/// hears about it, and the dependency graph cascades from it.
#[derive(Debug)]
pub(crate) struct Removed<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) cause: RemovalCause,
    /// Keys the entry depended on, so its edges can be unlinked.
    pub(crate) deps: Option<Box<[K]>>,
}

/// Removals collected under a shard lock. When nobody needs them (no listener, no dependency
/// edges), `collect` is false and values are dropped in place.
#[derive(Debug)]
pub(crate) struct Pending<K, V> {
    pub(crate) items: Vec<Removed<K, V>>,
    /// Keys whose value changed in place: the listener hears them through `on_modified` and
    /// their dependents are invalidated, as for a replacement.
    pub(crate) modified: Vec<K>,
    pub(crate) collect: bool,
    /// Member lists of freed tag sets, dropped with the collection, after the lock is
    /// released (see [`crate::tag_index`]). Boxed: rarely any, and every write moves this
    /// struct a few times; at 136 bytes, with the vector inline, those moves became `memcpy`
    /// calls that cost the write path ~5 % (`lethe-bench` profile of `history_throughput`).
    pub(crate) retired: Option<Box<[MemberList]>>,
    /// Why the removals made by this call go (what they matched, who asked).
    pub(crate) context: Context<K>,
}

impl<K, V> Pending<K, V> {
    pub(crate) fn new(collect: bool) -> Self {
        Pending {
            items: Vec::new(),
            modified: Vec::new(),
            collect,
            retired: None,
            context: Context::default(),
        }
    }

    /// Whether nothing was collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && self.modified.is_empty()
    }

    /// Keeps `r` even if nobody listens, so that its key and value are dropped with the
    /// collection, after the lock is released, rather than under it.
    pub(crate) fn push_deferred(&mut self, r: Removed<K, V>) {
        self.items.push(r);
    }

    pub(crate) fn push(&mut self, key: K, value: V, cause: RemovalCause, deps: Option<Box<[K]>>) {
        if self.collect || deps.is_some() {
            self.items.push(Removed {
                key,
                value,
                cause,
                deps,
            });
        }
    }
}

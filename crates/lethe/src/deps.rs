//! Dependencies between keys: when a key goes, whatever depends on it goes too.
//!
//! An entry names the keys it depends on when it is written ([`crate::InsertOptions::depends_on`]).
//! The entry keeps that forward list; this graph keeps the reverse edges (dependency ->
//! dependents), sharded by the dependency's hash, so that the removal of any key can find its
//! dependents in O(1). Edges are linked *before* the dependent is stored, so a dependency removed
//! concurrently cannot miss it (at worst the new entry is invalidated too early, never kept too
//! long), and unlinked when the dependent leaves.
//!
//! The cascade itself runs in `invalidate.rs`, after shard locks are released.

use crate::collections::{HashMap, HashSet};
use crate::sync::{AtomicUsize, Mutex, Ordering};
use std::fmt;
use std::hash::{BuildHasher, Hash};

const GRAPH_SHARDS: usize = 64;

/// Reverse edges of one graph shard: dependency -> its dependents.
type Edges<K> = Mutex<HashMap<K, HashSet<K>>>;

pub(crate) struct DepGraph<K> {
    shards: Box<[Edges<K>]>,
    hasher: foldhash::fast::FixedState,
    edges: AtomicUsize,
}

impl<K> fmt::Debug for DepGraph<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepGraph")
            .field("edges", &self.edges)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> DepGraph<K> {
    pub(crate) fn new() -> Self {
        DepGraph {
            shards: (0..GRAPH_SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0xdeb5),
            edges: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &K) -> &Edges<K> {
        &self.shards[(self.hasher.hash_one(key) >> 40) as usize % GRAPH_SHARDS]
    }

    /// Whether any edge exists; when not, removals skip the graph entirely.
    pub(crate) fn is_active(&self) -> bool {
        self.edges.load(Ordering::Acquire) > 0
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.edges.load(Ordering::Acquire)
    }

    /// Records that `dependent` depends on each of `deps`; returns the edges that are new (so a
    /// refused write can take back exactly those).
    pub(crate) fn link(&self, dependent: &K, deps: &[K]) -> Vec<K> {
        let mut added = Vec::new();
        for d in deps {
            if d == dependent {
                continue;
            }
            if self
                .shard(d)
                .lock()
                .entry(d.clone())
                .or_default()
                .insert(dependent.clone())
            {
                self.edges.fetch_add(1, Ordering::AcqRel);
                added.push(d.clone());
            }
        }
        added
    }

    /// Forgets that `dependent` depends on each of `deps`, except those in `keep`.
    pub(crate) fn unlink(&self, dependent: &K, deps: &[K], keep: &[K]) {
        for d in deps {
            if keep.contains(d) {
                continue;
            }
            let mut shard = self.shard(d).lock();
            if let Some(set) = shard.get_mut(d) {
                if set.remove(dependent) {
                    self.edges.fetch_sub(1, Ordering::AcqRel);
                }
                if set.is_empty() {
                    shard.remove(d);
                }
            }
        }
    }

    /// Detaches and returns the direct dependents of `key`.
    pub(crate) fn take_dependents(&self, key: &K) -> Vec<K> {
        let set = self.shard(key).lock().remove(key);
        match set {
            Some(set) => {
                self.edges.fetch_sub(set.len(), Ordering::AcqRel);
                set.into_iter().collect()
            }
            None => Vec::new(),
        }
    }

    /// The direct dependents of `key`.
    pub(crate) fn dependents(&self, key: &K) -> Vec<K> {
        self.shard(key)
            .lock()
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Everything that depends on `key`, directly or transitively, breadth first; cycles are
    /// visited once.
    pub(crate) fn transitive_dependents(&self, key: &K) -> Vec<K> {
        let mut seen: HashSet<K> = HashSet::default();
        seen.insert(key.clone());
        let mut out = Vec::new();
        let mut i = 0;
        let mut frontier = vec![key.clone()];
        while i < frontier.len() {
            for d in self.dependents(&frontier[i]) {
                if seen.insert(d.clone()) {
                    out.push(d.clone());
                    frontier.push(d);
                }
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_unlinks_and_walks_cycles() {
        let g: DepGraph<u32> = DepGraph::new();
        g.link(&2, &[1]);
        g.link(&3, &[2]);
        g.link(&1, &[3]); // cycle
        g.link(&4, &[1, 4]); // self-edge ignored
        assert_eq!(g.edge_count(), 4);
        let mut all = g.transitive_dependents(&1);
        all.sort_unstable();
        assert_eq!(all, vec![2, 3, 4]);
        g.unlink(&4, &[1], &[]);
        assert_eq!(g.dependents(&1), vec![2]);
        assert_eq!(g.take_dependents(&1), vec![2]);
        assert!(g.dependents(&1).is_empty());
        assert_eq!(g.edge_count(), 2);
    }
}

//! Co-access tracking: suggests dependencies from keys that are read together.
//!
//! When an application computes entry B from entry A, it tends to read A and then B in the same
//! request, on the same thread. With tracking on ([`crate::CacheBuilder::track_co_access`]; off
//! by default, since it costs a lock per hit), every hit is remembered in a short per-thread
//! window, and each pair (earlier key, later key) seen within the window is counted.
//! [`crate::Cache::suggested_dependencies`] then lists, for a key, the keys most often read just
//! before it, with the share of its reads they preceded: candidates for
//! [`crate::InsertOptions::depends_on`]. Suggestions only: nothing is linked automatically.
//!
//! Memory is bounded: past `max_pairs` counted pairs, every count is halved and pairs that reach
//! zero are dropped, so old patterns fade and new ones can enter.

use crate::collections::HashMap;
use crate::sync::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::thread::ThreadId;

/// Settings of co-access tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoAccessConfig {
    /// How many of a thread's most recent hits count as "read together" with the next one.
    pub window: usize,
    /// Bound on counted pairs before counts are aged.
    pub max_pairs: usize,
}

impl Default for CoAccessConfig {
    fn default() -> Self {
        CoAccessConfig {
            window: 4,
            max_pairs: 65_536,
        }
    }
}

/// A key that is often read just before another.
#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion<K> {
    /// The candidate dependency.
    pub key: K,
    /// Times it was read within the window before the key asked about.
    pub together: u32,
    /// `together` divided by the reads of the key asked about (0 to 1).
    pub confidence: f64,
}

struct State<K> {
    recent: HashMap<ThreadId, VecDeque<K>>,
    pairs: HashMap<(K, K), u32>,
    reads: HashMap<K, u32>,
}

pub(crate) struct CoAccess<K> {
    config: CoAccessConfig,
    state: Mutex<State<K>>,
}

impl<K> fmt::Debug for CoAccess<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoAccess")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> CoAccess<K> {
    pub(crate) fn new(config: CoAccessConfig) -> Self {
        CoAccess {
            config,
            state: Mutex::new(State {
                recent: HashMap::default(),
                pairs: HashMap::default(),
                reads: HashMap::default(),
            }),
        }
    }

    /// Records a hit on `key` by the current thread.
    pub(crate) fn record(&self, key: &K) {
        let thread = std::thread::current().id();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.recent.len() > 1024 && !state.recent.contains_key(&thread) {
            // Windows of threads that have gone; a live thread just starts a fresh one.
            state.recent.clear();
        }
        let recent = state.recent.entry(thread).or_default();
        for earlier in recent.iter() {
            if earlier != key {
                *state
                    .pairs
                    .entry((earlier.clone(), key.clone()))
                    .or_insert(0) += 1;
            }
        }
        *state.reads.entry(key.clone()).or_insert(0) += 1;
        recent.push_back(key.clone());
        if recent.len() > self.config.window {
            recent.pop_front();
        }
        if state.pairs.len() > self.config.max_pairs {
            state.pairs.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
            state.reads.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
        }
    }

    /// Keys read just before `key`, most frequent first, at least `min_together` times.
    pub(crate) fn suggestions(&self, key: &K, min_together: u32) -> Vec<Suggestion<K>> {
        let state = self.state.lock();
        let reads = state.reads.get(key).copied().unwrap_or(0).max(1);
        let mut out: Vec<Suggestion<K>> = state
            .pairs
            .iter()
            .filter(|((_, later), n)| later == key && **n >= min_together)
            .map(|((earlier, _), &n)| Suggestion {
                key: earlier.clone(),
                together: n,
                confidence: (f64::from(n) / f64::from(reads)).min(1.0),
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.together));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_in_order_are_suggested() {
        let c = CoAccess::new(CoAccessConfig {
            window: 2,
            max_pairs: 1000,
        });
        for _ in 0..10 {
            c.record(&"user:1");
            c.record(&"profile:1");
            c.record(&"noise");
            c.record(&"other");
        }
        let s = c.suggestions(&"profile:1", 5);
        assert_eq!(s[0].key, "user:1");
        assert_eq!(s[0].together, 10);
        assert!(s[0].confidence > 0.99);
        // Outside the two-key window: "user:1" is three reads before "other".
        assert!(c.suggestions(&"other", 1).iter().all(|s| s.key != "user:1"));
    }

    #[test]
    fn counts_age_past_the_bound() {
        let c = CoAccess::new(CoAccessConfig {
            window: 1,
            max_pairs: 4,
        });
        for i in 0..100u32 {
            c.record(&i);
        }
        assert!(c.state.lock().pairs.len() <= 5);
    }
}

//! Invalidation statistics: per tag for `LETHE.STATS TAG` and the dashboard's top tags (how
//! often each tag was invalidated, by any path: commands, the HTTP purge API, rules, change
//! capture, and when last), and per kind of invalidation (key, tag, prefix, ...) for the
//! dashboard's invalidations by cause.
//!
//! Fed by the engine's subscriber, which hears every applied invalidation: counting its kind is
//! one relaxed atomic add. Tags can be as many
//! as rows (`user:{id}`), so the table is bounded: past [`MAX_TAGS`] tags, arbitrary ones are
//! forgotten (their count restarts from zero if they come back). The engine itself keeps no
//! per-tag history; live keys per tag come from its tag index.

use indexmap::IndexMap;
use lethe::Invalidation;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tags whose statistics are kept at most.
pub const MAX_TAGS: usize = 100_000;

/// One tag's record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagRecord {
    /// Invalidations of this tag itself (not of its ancestors).
    pub invalidations: u64,
    /// Wall-clock time of the latest one, in Unix milliseconds.
    pub last_ms: i64,
}

/// The kinds of invalidation, in [`TagStats::by_kind`]'s order.
/// `other` is for kinds the engine may add later.
pub const KINDS: [&str; 7] = [
    "key",
    "tag",
    "prefix",
    "glob",
    "prefix_floor",
    "tag_floor",
    "other",
];

/// Invalidation counts by tag and by kind.
#[derive(Debug, Default)]
pub struct TagStats {
    tags: Mutex<IndexMap<Box<str>, TagRecord>>,
    kinds: [AtomicU64; KINDS.len()],
}

impl TagStats {
    /// Nothing recorded.
    pub fn new() -> TagStats {
        TagStats::default()
    }

    /// Records an invalidation of `tag` at `now_ms`.
    pub fn invalidated(&self, tag: &str, now_ms: i64) {
        let mut tags = self.tags.lock();
        if let Some(r) = tags.get_mut(tag) {
            r.invalidations += 1;
            r.last_ms = now_ms;
            return;
        }
        if tags.len() >= MAX_TAGS {
            // O(1): the first slot's tag goes.
            tags.swap_remove_index(0);
        }
        tags.insert(
            tag.into(),
            TagRecord {
                invalidations: 1,
                last_ms: now_ms,
            },
        );
    }

    /// The record of `tag` (zero if never invalidated, or forgotten).
    pub fn get(&self, tag: &str) -> TagRecord {
        self.tags.lock().get(tag).copied().unwrap_or_default()
    }

    /// Counts an applied invalidation by its kind.
    pub fn applied<K>(&self, what: &Invalidation<K>) {
        let kind = match what {
            Invalidation::Key(_) => 0,
            Invalidation::Tag(_) => 1,
            Invalidation::Prefix(_) => 2,
            Invalidation::Glob(_) => 3,
            Invalidation::PrefixFloor(..) => 4,
            Invalidation::TagFloor(..) => 5,
            _ => 6,
        };
        self.kinds[kind].fetch_add(1, Ordering::Relaxed);
    }

    /// Invalidations applied so far by kind, as `(kind, count)` in [`KINDS`] order.
    pub fn by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        KINDS
            .iter()
            .zip(&self.kinds)
            .map(|(&k, n)| (k, n.load(Ordering::Relaxed)))
    }

    /// The `n` most invalidated tags, most first (ties by name).
    pub fn top(&self, n: usize) -> Vec<(String, TagRecord)> {
        let mut top: Vec<(String, TagRecord)> = {
            let tags = self.tags.lock();
            // One pass under the lock keeping only candidates: the table may hold many tags
            // and invalidations wait on this lock.
            let mut best: Vec<(&str, TagRecord)> = Vec::with_capacity(n + 1);
            for (tag, r) in tags.iter() {
                if best.len() == n
                    && best
                        .last()
                        .is_some_and(|b| b.1.invalidations >= r.invalidations)
                {
                    continue;
                }
                let at = best.partition_point(|b| b.1.invalidations >= r.invalidations);
                best.insert(at, (tag, *r));
                best.truncate(n);
            }
            best.into_iter().map(|(t, r)| (t.to_owned(), r)).collect()
        };
        top.sort_by(|a, b| {
            b.1.invalidations
                .cmp(&a.1.invalidations)
                .then(a.0.cmp(&b.0))
        });
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_tag_and_stays_bounded() {
        let s = TagStats::new();
        s.invalidated("user:1", 10);
        s.invalidated("user:1", 20);
        s.invalidated("user:2", 30);
        assert_eq!(
            s.get("user:1"),
            TagRecord {
                invalidations: 2,
                last_ms: 20
            }
        );
        assert_eq!(s.get("user:2").invalidations, 1);
        assert_eq!(s.get("user").invalidations, 0);
        for i in 0..MAX_TAGS + 10 {
            s.invalidated(&format!("t:{i}"), 1);
        }
        assert_eq!(s.tags.lock().len(), MAX_TAGS);
    }

    #[test]
    fn top_tags_are_the_most_invalidated() {
        let s = TagStats::new();
        for (tag, times) in [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 2)] {
            for t in 0..times {
                s.invalidated(tag, t);
            }
        }
        let names = |v: Vec<(String, TagRecord)>| v.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
        assert_eq!(names(s.top(3)), ["b", "d", "c"]);
        assert_eq!(names(s.top(10)), ["b", "d", "c", "e", "a"]);
        assert_eq!(s.top(1)[0].1.invalidations, 5);
        assert!(s.top(0).is_empty());
    }

    #[test]
    fn invalidations_are_counted_by_kind() {
        let s = TagStats::new();
        s.applied(&Invalidation::<Vec<u8>>::Key(b"k".to_vec()));
        s.applied(&Invalidation::<Vec<u8>>::Key(b"j".to_vec()));
        s.applied(&Invalidation::<Vec<u8>>::Tag("t".into()));
        s.applied(&Invalidation::<Vec<u8>>::TagFloor("t".into(), 3));
        let kinds: Vec<_> = s.by_kind().collect();
        assert_eq!(
            kinds,
            [
                ("key", 2),
                ("tag", 1),
                ("prefix", 0),
                ("glob", 0),
                ("prefix_floor", 0),
                ("tag_floor", 1),
                ("other", 0)
            ]
        );
    }
}

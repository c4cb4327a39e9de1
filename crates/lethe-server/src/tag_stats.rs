//! Per-tag invalidation statistics for `LETHE.STATS TAG`: how often each tag was invalidated
//! (by any path: commands, the HTTP purge API, rules, change capture) and when last.
//!
//! Fed by the engine's subscriber, which hears every applied invalidation. Tags can be as many
//! as rows (`user:{id}`), so the table is bounded: past [`MAX_TAGS`] tags, arbitrary ones are
//! forgotten (their count restarts from zero if they come back). The engine itself keeps no
//! per-tag history; live keys per tag come from its tag index.

use indexmap::IndexMap;
use parking_lot::Mutex;

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

/// Invalidation counts by tag.
#[derive(Debug, Default)]
pub struct TagStats {
    tags: Mutex<IndexMap<Box<str>, TagRecord>>,
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
}

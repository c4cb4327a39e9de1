//! Where the history is kept: in a journal per shard, under the shard's lock.
//!
//! Every record (a write, a change in place, a removal) is appended to the shard's journal, a
//! queue in the order things happened, and linked to the previous record of the same stay of
//! the same key; each slot keeps only the link to its stay's newest record (8 bytes). A
//! removal's record also keeps the key, so the key's earlier stays can be found once the slot
//! holds another key. Over the budget, the journal forgets its oldest records, whatever their
//! key. A write thus appends to memory the previous write just touched and updates one word in
//! a dense vector: no per-key structure is reached on the write path, which is what made the
//! designs tried before expensive (measured with `lethe-bench invalidation`,
//! `history_throughput`, 2 threads, history on over off: a ring per slot, 64 bytes beside each
//! slot with one record inline, cost 0.61x at 90/10 and 0.49x at 50/50 (BENCHMARKS.md,
//! 2026-12-03), nearly all of it the cache misses of reaching the slot's ring and its records on
//! every write, against 0.75x and 0.62x for the journal (2026-12-04); a boxed ring per stay cost
//! an allocation and a pointer chase per write; a per-key table, a lock and a probe per
//! record). What the journal still costs is mostly the slot's link (a miss on a vector indexed
//! by slot) and reading the records it forgets, which must be dropped. The price is on the (rare) read side: [`ShardHistory::of`] follows the links
//! of the key's current stay and scans the journal's removal records for its earlier stays,
//! linear in what the shard's share of the budget holds.
//!
//! [`HistoryConfig::records_per_key`] bounds what a read returns for a key, not what the journal
//! holds: a key written far more often than the others takes more of the budget, and pushes
//! the others' records out sooner, as in any log.
//!
//! Tag invalidations are logged once per cache ([`HistoryShared::tag_invalidated`]), so a
//! reclaimed entry's removal is matched to the invalidation that hid it, not to the write that
//! happened to reclaim it.

use super::{Context, Happened, HistoryConfig, HistoryStats, Matched, Origin, Record};
use crate::clock::{Clock, Timestamp};
use crate::listener::RemovalCause;
use crate::sync::{Arc, Mutex};
use crate::tag_registry::TAG_SEPARATOR;
use std::collections::VecDeque;
use std::fmt;
use std::mem::size_of;

/// Tag invalidations remembered for attributing later reclamations.
const TAG_LOG: usize = 4096;

struct TagInvalidation {
    tag: String,
    at: Timestamp,
    origin: Option<Arc<Origin>>,
}

/// What the shards' histories share: the settings, the clock records are timed by, and the log
/// of recent tag invalidations.
pub(crate) struct HistoryShared {
    pub(crate) config: HistoryConfig,
    /// Each shard's share of the budget.
    shard_budget: usize,
    clock: Arc<dyn Clock>,
    tag_log: Mutex<VecDeque<TagInvalidation>>,
}

impl fmt::Debug for HistoryShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryShared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HistoryShared {
    pub(crate) fn new(config: HistoryConfig, shards: usize, clock: Arc<dyn Clock>) -> Self {
        let config = HistoryConfig {
            records_per_key: config.records_per_key.max(1),
            ..config
        };
        HistoryShared {
            config,
            shard_budget: config.memory_budget / shards.max(1),
            clock,
            tag_log: Mutex::new(VecDeque::new()),
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Remembers a tag invalidation for the reclamations that follow it.
    pub(crate) fn tag_invalidated(&self, tag: &str, origin: Option<Arc<Origin>>) {
        let at = self.now();
        let mut log = self.tag_log.lock();
        if log.len() == TAG_LOG {
            log.pop_front();
        }
        log.push_back(TagInvalidation {
            tag: tag.to_owned(),
            at,
            origin,
        });
    }

    /// The latest tag invalidation covering one of `tags`.
    fn tag_cause(&self, tags: &[&String]) -> Option<TagInvalidation> {
        let covers = |inv: &str, tag: &str| {
            tag == inv
                || (tag.len() > inv.len()
                    && tag.starts_with(inv)
                    && tag[inv.len()..].starts_with(TAG_SEPARATOR))
        };
        let log = self.tag_log.lock();
        log.iter()
            .rev()
            .find(|t| tags.iter().any(|tag| covers(&t.tag, tag)))
            .map(|t| TagInvalidation {
                tag: t.tag.clone(),
                at: t.at,
                origin: t.origin.clone(),
            })
    }
}

/// Budgets from which [`ShardHistory::make_room`] frees more than it must.
const SPARE_FROM: usize = 64 * 1024;

/// One record in the journal.
struct Logged<K> {
    record: Record<K>,
    /// Sequence number + 1 of the previous record of the same stay (0: none).
    prev: u64,
    /// What the record costs, as the budget counts it.
    bytes: u32,
    /// On a stay's last record (its removal): the key and its hash, so the stay can be found
    /// after the slot moved on to another key.
    left: Option<(u64, K)>,
}

/// One shard's history.
pub(crate) struct ShardHistory<K> {
    shared: Arc<HistoryShared>,
    /// Oldest first.
    journal: VecDeque<Logged<K>>,
    /// Sequence number of `journal[0]`.
    base: u64,
    /// By slot: sequence number + 1 of the newest record of the stay in it (0: none kept).
    newest: Vec<u64>,
    bytes: usize,
    /// Stays that ended (a removal record) still in the journal.
    departed: usize,
    /// Departed stays whose removal record the budget pushed out.
    dropped: u64,
    refused: u64,
}

impl<K> fmt::Debug for ShardHistory<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardHistory")
            .field("bytes", &self.bytes)
            .field("records", &self.journal.len())
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Clone> ShardHistory<K> {
    pub(crate) fn new(shared: Arc<HistoryShared>) -> Self {
        ShardHistory {
            shared,
            journal: VecDeque::new(),
            base: 0,
            newest: Vec::new(),
            bytes: 0,
            departed: 0,
            dropped: 0,
            refused: 0,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.shared.now()
    }

    /// What a record costs in the journal besides its own size.
    fn overhead() -> usize {
        size_of::<Logged<K>>() - size_of::<Record<K>>()
    }

    /// The record linked as `link` (sequence number + 1), if still kept.
    fn get(&self, link: u64) -> Option<&Logged<K>> {
        let seq = link.checked_sub(1)?;
        self.journal
            .get(usize::try_from(seq.checked_sub(self.base)?).ok()?)
    }

    /// The newest-first records of the stay whose newest record is `link`.
    fn stay(&self, mut link: u64) -> impl Iterator<Item = &Record<K>> {
        std::iter::from_fn(move || {
            let l = self.get(link)?;
            link = l.prev;
            Some(&l.record)
        })
    }

    /// The link to the newest record of slot `slot`'s stay (0: none).
    fn newest_of(&self, slot: u32) -> u64 {
        self.newest.get(slot as usize).copied().unwrap_or(0)
    }

    /// Forgets the oldest records until `more` bytes fit the budget with room to spare.
    ///
    /// A cached key's link to a forgotten record is left as it is: [`Self::get`] sees it is
    /// gone, so the write path never looks up the slot of the record it forgets. The spare
    /// room (1/64 of a budget of [`SPARE_FROM`] or more) makes forgetting a batch: a tight pass over records laid out
    /// in order, rather than one old record read on every write.
    fn make_room(&mut self, more: usize) {
        let budget = self.shared.shard_budget;
        if self.bytes + more <= budget {
            return;
        }
        let spare = if budget >= SPARE_FROM { budget / 64 } else { 0 };
        let target = budget.saturating_sub(more + spare);
        while self.bytes > target {
            let Some(l) = self.journal.pop_front() else {
                break;
            };
            self.base += 1;
            self.bytes -= l.bytes as usize;
            if l.left.is_some() {
                self.departed -= 1;
                self.dropped += 1;
            }
        }
    }

    /// Appends `records` (one stay's, oldest first, the first linked to `prev`) to the journal,
    /// forgetting the oldest records until they fit; the link to the last, or `None` if they
    /// cannot fit the budget at all.
    fn append(
        &mut self,
        prev: u64,
        records: impl IntoIterator<Item = (Record<K>, Option<(u64, K)>)>,
        bytes: usize,
    ) -> Option<u64> {
        if bytes > self.shared.shard_budget {
            return None;
        }
        if self.journal.capacity() == 0 {
            // The journal fills its budget soon after the first record; sized for it at once,
            // it is never copied to grow.
            self.journal
                .reserve(self.shared.shard_budget / size_of::<Logged<K>>());
        }
        self.make_room(bytes);
        // Making room may have taken the stay's earlier records.
        let mut prev = if self.get(prev).is_some() { prev } else { 0 };
        for (record, left) in records {
            let size = record.bytes() + Self::overhead();
            if left.is_some() {
                self.departed += 1;
            }
            self.journal.push_back(Logged {
                record,
                prev,
                bytes: size as u32,
                left,
            });
            self.bytes += size;
            prev = self.base + self.journal.len() as u64;
        }
        Some(prev)
    }

    /// Appends `record` to the stay in slot `idx`; with `left`, the stay ends with it.
    fn record(&mut self, idx: u32, record: Record<K>, left: Option<(u64, K)>) {
        let slot = idx as usize;
        if self.newest.len() <= slot {
            self.newest.resize(slot + 1, 0);
        }
        let ends = left.is_some();
        let bytes = record.bytes() + Self::overhead();
        let prev = self.newest[slot];
        match self.append(prev, [(record, left)], bytes) {
            Some(link) => self.newest[slot] = if ends { 0 } else { link },
            None => {
                self.refused += 1;
                if ends {
                    // The stay's earlier records stay as they are, but nothing follows them.
                    self.newest[slot] = 0;
                }
            }
        }
    }

    /// A write (`version` given) or a change in place (`None`) of the entry in slot `idx`.
    pub(crate) fn written(
        &mut self,
        idx: u32,
        at: u64,
        version: Option<u64>,
        tags: &[String],
        inherited: &[String],
        origin: Option<&Arc<Origin>>,
    ) {
        let happened = if version.is_some() {
            Happened::Written
        } else {
            Happened::Modified
        };
        let mut rec = Record::new(Timestamp(at), happened);
        rec.version = version;
        rec.set_tags(tags, inherited);
        rec.origin = origin.cloned();
        self.record(idx, rec, None);
    }

    /// The entry in slot `idx` (`key`, hashed to `hash`) leaves under `cause`: its stay ends
    /// with the removal's record.
    pub(crate) fn removed(
        &mut self,
        idx: u32,
        hash: u64,
        key: &K,
        cause: RemovalCause,
        ctx: &Context<K>,
    ) {
        let at = ctx.at.unwrap_or_else(|| self.now());
        let mut record = Record::new(at, Happened::Removed(cause));
        match cause {
            // Hidden by a tag (its own, or one inherited from a dependency) and reclaimed
            // later, during whatever write came by: the invalidation is the cause, not that
            // write.
            RemovalCause::Tag | RemovalCause::Dependency if ctx.matched.is_none() => {
                if let Some(t) = self.tag_cause(idx) {
                    record.at = t.at;
                    record.origin = t.origin;
                    record.set_matched(Some(Matched::Tag(t.tag)));
                }
            }
            RemovalCause::Tag => {}
            // The engine's own decisions, and floors reclaimed lazily: whoever happened to be
            // writing did not ask.
            RemovalCause::Expired | RemovalCause::Evicted => {}
            RemovalCause::Stale if ctx.matched.is_none() => {}
            _ => {
                record.set_matched(ctx.matched.clone());
                record.origin = ctx.origin.clone();
            }
        }
        self.record(idx, record, Some((hash, key.clone())));
    }

    /// A key that was never stored for good (a value too big for the cache, written and
    /// evicted at once): its records go in together.
    pub(crate) fn passed(&mut self, hash: u64, key: &K, written: Record<K>, removed: Record<K>) {
        let bytes = written.bytes() + removed.bytes() + 2 * Self::overhead();
        let records = [(written, None), (removed, Some((hash, key.clone())))];
        if self.append(0, records, bytes).is_none() {
            self.refused += 2;
        }
    }

    /// The latest tag invalidation covering a tag the entry in slot `idx` was last written
    /// with (or inherited).
    fn tag_cause(&self, idx: u32) -> Option<TagInvalidation> {
        let w = self
            .stay(self.newest_of(idx))
            .find(|r| r.happened == Happened::Written)?;
        let tags: Vec<&String> = w.tags().iter().chain(w.inherited()).collect();
        if tags.is_empty() {
            return None;
        }
        self.shared.tag_cause(&tags)
    }

    /// `key`'s records, newest first: those of its current stay (slot `live`, if cached), then
    /// those of its earlier stays still kept; at most `records_per_key`.
    pub(crate) fn of(&self, live: Option<u32>, hash: u64, key: &K) -> Vec<Record<K>> {
        let per_key = self.shared.config.records_per_key;
        let current = self.stay(live.map_or(0, |i| self.newest_of(i)));
        let earlier = self
            .journal
            .iter()
            .rev()
            .filter(|l| l.left.as_ref().is_some_and(|(h, k)| *h == hash && k == key))
            .flat_map(|l| std::iter::once(&l.record).chain(self.stay(l.prev)));
        current.chain(earlier).take(per_key).cloned().collect()
    }

    /// Adds this shard's figures to `stats`.
    pub(crate) fn add_stats(&self, stats: &mut HistoryStats) {
        // Counted here rather than kept up to date: keeping it would mean looking up, for
        // every record forgotten, whether it was its cached key's newest.
        let cached = self
            .newest
            .iter()
            .filter(|&&l| self.get(l).is_some())
            .count();
        stats.keys += self.departed + cached;
        stats.records += self.journal.len();
        stats.bytes += self.bytes;
        stats.keys_dropped += self.dropped;
        stats.slot_bytes += self.newest.capacity() * size_of::<u64>();
        stats.records_refused += self.refused;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn shared(records_per_key: usize, memory_budget: usize) -> Arc<HistoryShared> {
        Arc::new(HistoryShared::new(
            HistoryConfig {
                records_per_key,
                memory_budget,
            },
            1,
            Arc::new(ManualClock::new(Timestamp(5))),
        ))
    }

    fn stats(h: &ShardHistory<u32>) -> HistoryStats {
        let mut s = HistoryStats::default();
        h.add_stats(&mut s);
        s
    }

    #[test]
    fn a_key_shows_its_latest_records_newest_first_across_stays() {
        let mut h = ShardHistory::new(shared(3, 1 << 20));
        for v in 1..=5 {
            h.written(0, 5, Some(v), &[], &[], None);
        }
        let versions: Vec<_> = h.of(Some(0), 7, &7).iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![Some(5), Some(4), Some(3)]);
        h.removed(0, 7, &7, RemovalCause::Evicted, &Context::default());
        // The slot is free for another key, whose stay is linked on its own.
        h.written(0, 5, Some(1), &[], &[], None);
        assert_eq!(h.of(Some(0), 8, &8).len(), 1);
        let gone = h.of(None, 7, &7);
        assert_eq!(gone[0].happened, Happened::Removed(RemovalCause::Evicted));
        assert_eq!(gone[1].version, Some(5));
        assert_eq!(gone.len(), 3);
        assert!(h.of(None, 9, &9).is_empty());
        let s = stats(&h);
        assert_eq!((s.records, s.keys), (7, 2), "{s:?}");
    }

    #[test]
    fn over_the_budget_the_oldest_records_are_forgotten_first() {
        let one = size_of::<Logged<u32>>();
        let mut h = ShardHistory::new(shared(4, one * 6));
        for k in 0..1000u32 {
            h.written(0, 5, Some(1), &[], &[], None);
            h.removed(
                0,
                u64::from(k),
                &k,
                RemovalCause::Evicted,
                &Context::default(),
            );
        }
        let s = stats(&h);
        assert!(s.bytes <= h.shared.shard_budget, "{s:?}");
        assert_eq!((s.keys, s.records), (3, 6), "{s:?}");
        assert_eq!(s.keys_dropped as usize, 1000 - s.keys);
        assert_eq!(h.of(None, 999, &999).len(), 2);
        assert!(h.of(None, 0, &0).is_empty());
    }

    #[test]
    fn cached_keys_lose_their_oldest_records_too_and_a_record_over_the_budget_is_refused() {
        let one = size_of::<Logged<u32>>();
        let mut h = ShardHistory::new(shared(2, one * 2));
        h.written(0, 5, Some(1), &[], &[], None);
        h.written(1, 5, Some(1), &[], &[], None);
        // A new key is still recorded: the oldest record, slot 0's, makes room.
        h.written(2, 5, Some(1), &[], &[], None);
        assert_eq!(h.of(Some(2), 2, &2).len(), 1);
        assert!(h.of(Some(0), 0, &0).is_empty());
        assert_eq!(h.of(Some(1), 1, &1).len(), 1);
        let s = stats(&h);
        // `keys_dropped` counts departed keys only.
        assert_eq!((s.keys, s.keys_dropped, s.records_refused), (2, 0, 0));
        assert!(s.bytes <= one * 2, "{s:?}");
        // Slot 0's key is written again: a new stay, linked to nothing forgotten.
        h.written(0, 6, Some(2), &[], &[], None);
        let again = h.of(Some(0), 0, &0);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].version, Some(2));
        // A budget below one record refuses.
        let mut tiny = ShardHistory::new(shared(2, one / 2));
        tiny.written(0, 5, Some(1), &[], &[], None);
        assert!(tiny.of(Some(0), 0, &0).is_empty());
        assert_eq!(stats(&tiny).records_refused, 1);
    }

    #[test]
    fn a_key_never_stored_keeps_its_write_and_removal_together() {
        let mut h = ShardHistory::new(shared(4, 1 << 20));
        let w = Record::new(Timestamp(5), Happened::Written);
        let r = Record::new(Timestamp(5), Happened::Removed(RemovalCause::Evicted));
        h.passed(3, &3, w, r);
        let recs = h.of(None, 3, &3);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].happened, Happened::Removed(RemovalCause::Evicted));
        assert_eq!(recs[1].happened, Happened::Written);
        assert_eq!(stats(&h).keys, 1);
    }

    #[test]
    fn a_tag_removal_is_matched_to_the_invalidation_covering_the_written_tags() {
        let shared = shared(16, 1 << 20);
        let mut h = ShardHistory::new(shared.clone());
        h.written(0, 5, Some(1), &["user:42:profile".into()], &[], None);
        h.written(1, 5, Some(1), &["user:420".into()], &[], None);
        let origin = Arc::new(Origin::client("id=3"));
        shared.tag_invalidated("user:42", Some(origin.clone()));
        h.removed(0, 1, &1, RemovalCause::Tag, &Context::default());
        h.removed(1, 2, &2, RemovalCause::Tag, &Context::default());
        let one = &h.of(None, 1, &1)[0];
        assert_eq!(one.matched(), Some(&Matched::Tag("user:42".into())));
        assert_eq!(one.origin.as_deref(), Some(&*origin));
        // `user:42` does not cover `user:420`.
        assert_eq!(h.of(None, 2, &2)[0].matched(), None);
    }

    #[test]
    fn expiry_and_eviction_are_never_attributed_to_the_caller() {
        let mut h = ShardHistory::new(shared(16, 1 << 20));
        let ctx = Context::from_origin(Some(Arc::new(Origin::client("writer"))));
        h.written(0, 5, Some(1), &[], &[], None);
        h.removed(0, 1, &1, RemovalCause::Evicted, &ctx);
        h.written(0, 5, Some(1), &[], &[], None);
        h.removed(0, 1, &1, RemovalCause::Explicit, &ctx);
        let recs = h.of(None, 1, &1);
        assert!(recs[0].origin.is_some());
        assert!(recs[2].origin.is_none());
    }
}

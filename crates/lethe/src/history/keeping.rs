//! Where the history is kept: beside each shard's slots, under the shard's lock.
//!
//! Each slot has a place for the ring of its entry's records, in a vector beside the slots
//! (64 bytes: one record inline, more on the heap). When the entry leaves, its ring, and the
//! removal's record beside it, move to the shard's list of departed keys, oldest first. A
//! write thus touches its slot's ring and an eviction moves one: there is no second table to
//! probe and no other lock, and a key written once and then evicted allocates nothing. (A
//! boxed ring per stay, tried first, cost an allocation and a pointer chase per write; a
//! per-key table, before that, a lock and a probe per record: `history_throughput` in
//! BENCHMARKS.md measures what is left.) The price is on the (rare) read side:
//! [`ShardHistory::of`] scans the shard's departed list for the key's earlier stays, linear in
//! what the shard's share of the budget holds.
//!
//! Tag invalidations are logged once per cache ([`HistoryShared::tag_invalidated`]), so a
//! reclaimed entry's removal is matched to the invalidation that hid it, not to the write that
//! happened to reclaim it.

use super::{Context, Happened, HistoryConfig, HistoryStats, Matched, Origin, Record};
use crate::clock::{Clock, Timestamp};
use crate::listener::RemovalCause;
use crate::sync::{Arc, Mutex};
use crate::tag_registry::TAG_SEPARATOR;
use smallvec::SmallVec;
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

/// The records of one stay of a key in the cache: one record inline (a 64-byte slot for a
/// `u64` key), so the usual stay — written once, then gone — allocates nothing.
struct Ring<K> {
    /// Oldest first from `head`, wrapping: once full, a new record overwrites the oldest.
    records: SmallVec<[Record<K>; 1]>,
    head: u32,
    /// What the records cost, as the budget counts them (kept so dropping the ring touches no
    /// record).
    bytes: u32,
}

impl<K> Ring<K> {
    fn empty() -> Self {
        Ring {
            records: SmallVec::new(),
            head: 0,
            bytes: 0,
        }
    }

    fn newest_first(&self) -> impl Iterator<Item = &Record<K>> {
        let (older, newer) = self.records.split_at(self.head as usize);
        newer.iter().chain(older).rev()
    }

    /// What the ring costs besides its records' own size.
    fn overhead() -> usize {
        size_of::<Self>() - size_of::<Record<K>>()
    }
}

/// A stay that ended: the key, its ring and the removal's record. The record is kept here,
/// not appended to the ring, so a removal does not touch (or grow) the ring's heap part.
struct Departed<K> {
    hash: u64,
    key: K,
    ring: Ring<K>,
    last: Record<K>,
}

impl<K> Departed<K> {
    /// What the stay costs, its ring's records included.
    fn bytes(&self) -> usize {
        size_of::<Self>() - size_of::<Ring<K>>() - size_of::<Record<K>>()
            + self.last.bytes()
            + Ring::<K>::overhead()
            + self.ring.bytes as usize
    }

    fn records(&self) -> usize {
        1 + self.ring.records.len()
    }
}

/// One shard's history.
pub(crate) struct ShardHistory<K> {
    shared: Arc<HistoryShared>,
    /// By slot: the ring of the entry in it (empty if it has no records).
    live: Vec<Ring<K>>,
    /// Stays that ended, oldest first.
    departed: VecDeque<Departed<K>>,
    bytes: usize,
    records: usize,
    live_rings: usize,
    /// Where [`Self::drop_live`] looks next.
    hand: usize,
    dropped: u64,
    refused: u64,
}

impl<K> fmt::Debug for ShardHistory<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardHistory")
            .field("bytes", &self.bytes)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Clone> ShardHistory<K> {
    pub(crate) fn new(shared: Arc<HistoryShared>) -> Self {
        ShardHistory {
            shared,
            live: Vec::new(),
            departed: VecDeque::new(),
            bytes: 0,
            records: 0,
            live_rings: 0,
            hand: 0,
            dropped: 0,
            refused: 0,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.shared.now()
    }

    /// Drops departed rings, oldest first, then rings of cached keys other than slot `keep`'s
    /// (in slot order, from where the last drop stopped), until `more` bytes fit the budget;
    /// false if they still do not.
    fn make_room(&mut self, more: usize, keep: Option<usize>) -> bool {
        let budget = self.shared.shard_budget;
        while self.bytes + more > budget {
            if !self.drop_oldest() && !self.drop_live(keep) {
                return false;
            }
        }
        true
    }

    /// Drops the ring of the next cached key after the hand, other than slot `keep`'s; false if
    /// there is none.
    fn drop_live(&mut self, keep: Option<usize>) -> bool {
        let others =
            self.live_rings - usize::from(keep.is_some_and(|k| !self.live[k].records.is_empty()));
        if others == 0 {
            return false;
        }
        let n = self.live.len();
        for step in 0..n {
            let i = (self.hand + step) % n;
            if Some(i) == keep || self.live[i].records.is_empty() {
                continue;
            }
            let ring = std::mem::replace(&mut self.live[i], Ring::empty());
            self.bytes -= Ring::<K>::overhead() + ring.bytes as usize;
            self.records -= ring.records.len();
            self.live_rings -= 1;
            self.dropped += 1;
            self.hand = i + 1;
            return true;
        }
        false
    }

    /// Drops the oldest departed stay; false if there is none.
    fn drop_oldest(&mut self) -> bool {
        let Some(d) = self.departed.pop_front() else {
            return false;
        };
        self.bytes -= d.bytes();
        self.records -= d.records();
        self.dropped += 1;
        true
    }

    /// Appends `record` to the ring of the entry in slot `idx`.
    pub(crate) fn append(&mut self, idx: u32, record: Record<K>) {
        let size = record.bytes();
        let per_key = self.shared.config.records_per_key;
        let slot = idx as usize;
        if self.live.len() <= slot {
            self.live.resize_with(slot + 1, Ring::empty);
        }
        let len = self.live[slot].records.len();
        if len >= per_key {
            // Full: the oldest is overwritten in place (a full ring turns over even when the
            // budget is reached; its size hardly changes).
            let ring = &mut self.live[slot];
            let old = std::mem::replace(&mut ring.records[ring.head as usize], record).bytes();
            ring.head = (ring.head + 1) % len as u32;
            ring.bytes = (ring.bytes as usize - old + size) as u32;
            self.bytes = self.bytes - old + size;
            return;
        }
        let more = if len == 0 {
            size + Ring::<K>::overhead()
        } else {
            size
        };
        if !self.make_room(more, Some(slot)) {
            self.refused += 1;
            return;
        }
        if len == 0 {
            self.live_rings += 1;
        }
        let ring = &mut self.live[slot];
        ring.records.push(record);
        ring.bytes += size as u32;
        self.bytes += more;
        self.records += 1;
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
        self.append(idx, rec);
    }

    /// The entry in slot `idx` (`key`, hashed to `hash`) leaves under `cause`: its ring
    /// departs with the removal's record.
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
        let ring = self
            .live
            .get_mut(idx as usize)
            .map_or_else(Ring::empty, |r| std::mem::replace(r, Ring::empty()));
        let had_ring = !ring.records.is_empty();
        if had_ring {
            self.live_rings -= 1;
            self.bytes -= Ring::<K>::overhead() + ring.bytes as usize;
        }
        let departed = Departed {
            hash,
            key: key.clone(),
            ring,
            last: record,
        };
        self.bytes += departed.bytes();
        self.records += 1;
        self.departed.push_back(departed);
        let budget = self.shared.shard_budget;
        while self.bytes > budget && self.drop_oldest() {}
    }

    /// A key that was never stored for good (a value too big for the cache, written and
    /// evicted at once): its records depart together.
    pub(crate) fn passed(&mut self, hash: u64, key: &K, written: Record<K>, removed: Record<K>) {
        let size = written.bytes();
        let departed = Departed {
            hash,
            key: key.clone(),
            ring: Ring {
                records: std::iter::once(written).collect(),
                head: 0,
                bytes: size as u32,
            },
            last: removed,
        };
        if !self.make_room(departed.bytes(), None) {
            self.refused += 2;
            return;
        }
        self.bytes += departed.bytes();
        self.records += 2;
        self.departed.push_back(departed);
    }

    /// The latest tag invalidation covering a tag the entry in slot `idx` was last written
    /// with (or inherited).
    fn tag_cause(&self, idx: u32) -> Option<TagInvalidation> {
        let ring = self.live.get(idx as usize)?;
        let w = ring
            .newest_first()
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
        let current = live.and_then(|i| self.live.get(i as usize));
        let current = current.into_iter().flat_map(|r| r.newest_first());
        let earlier = self
            .departed
            .iter()
            .rev()
            .filter(|d| d.hash == hash && d.key == *key)
            .flat_map(|d| {
                let ring = d.ring.newest_first();
                std::iter::once(&d.last).chain(ring)
            });
        current.chain(earlier).take(per_key).cloned().collect()
    }

    /// Adds this shard's figures to `stats`.
    pub(crate) fn add_stats(&self, stats: &mut HistoryStats) {
        stats.keys += self.live_rings + self.departed.len();
        stats.records += self.records;
        stats.bytes += self.bytes;
        stats.keys_dropped += self.dropped;
        stats.slot_bytes += self.live.capacity() * size_of::<Ring<K>>();
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
    fn a_ring_keeps_the_latest_records_newest_first_across_stays() {
        let mut h = ShardHistory::new(shared(3, 1 << 20));
        for v in 1..=5 {
            h.written(0, 5, Some(v), &[], &[], None);
        }
        let versions: Vec<_> = h.of(Some(0), 7, &7).iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![Some(5), Some(4), Some(3)]);
        h.removed(0, 7, &7, RemovalCause::Evicted, &Context::default());
        // The slot is free for another key, whose stay starts a new ring.
        h.written(0, 5, Some(1), &[], &[], None);
        assert_eq!(h.of(Some(0), 8, &8).len(), 1);
        let gone = h.of(None, 7, &7);
        assert_eq!(gone[0].happened, Happened::Removed(RemovalCause::Evicted));
        assert_eq!(gone[1].version, Some(5));
        assert_eq!(gone.len(), 3);
        assert!(h.of(None, 9, &9).is_empty());
        assert_eq!(stats(&h).records, 5);
    }

    #[test]
    fn over_the_budget_the_oldest_departed_keys_are_forgotten_first() {
        let per_stay = size_of::<Departed<u32>>();
        let mut h = ShardHistory::new(shared(4, per_stay * 3 + size_of::<Ring<u32>>()));
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
        assert!(s.keys > 0 && s.keys < 1000, "{s:?}");
        assert_eq!(s.keys_dropped as usize, 1000 - s.keys);
        assert_eq!(h.of(None, 999, &999).len(), 2);
        assert!(h.of(None, 0, &0).is_empty());
    }

    #[test]
    fn with_only_cached_rings_left_the_next_one_after_the_hand_goes() {
        let one = size_of::<Ring<u32>>();
        let mut h = ShardHistory::new(shared(2, one * 2));
        h.written(0, 5, Some(1), &[], &[], None);
        h.written(1, 5, Some(1), &[], &[], None);
        // A new key is still recorded: the ring of slot 0 makes room.
        h.written(2, 5, Some(1), &[], &[], None);
        assert_eq!(h.of(Some(2), 2, &2).len(), 1);
        assert!(h.of(Some(0), 0, &0).is_empty());
        assert_eq!(h.of(Some(1), 1, &1).len(), 1);
        let s = stats(&h);
        assert_eq!((s.keys, s.keys_dropped, s.records_refused), (2, 1, 0));
        assert!(s.bytes <= one * 2, "{s:?}");
        // A budget below one ring refuses.
        let mut tiny = ShardHistory::new(shared(2, one / 2));
        tiny.written(0, 5, Some(1), &[], &[], None);
        assert!(tiny.of(Some(0), 0, &0).is_empty());
        assert_eq!(stats(&tiny).records_refused, 1);
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

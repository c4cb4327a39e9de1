//! Eviction: which entry leaves when a shard is over capacity.
//!
//! The policy is W-TinyLFU (Einziger, Friedman and Manes, ACM ToS 2017) shaped so that reads
//! never take a write lock:
//!
//! - **Window**: new entries enter a small FIFO (initially 1 % of the capacity). It absorbs
//!   bursts of new keys and gives each a chance to prove itself.
//! - **Main**: a CLOCK ring holding the rest. A read only bumps the entry's 3-bit hit counter (an
//!   atomic in the entry, no lock, no list movement); the hand gives a second chance to entries
//!   read since it last passed and folds those hits into the sketch.
//! - **Admission**: when the window overflows and the cache is full, the window's oldest entry
//!   (the candidate) duels the CLOCK's victim. The [`FrequencySketch`] estimates how often each
//!   was accessed recently; the candidate gets in only if it is clearly more popular (by two
//!   counts, see [`EvictionPolicy::admit`]). This is what makes the cache scan-resistant: a one-pass scan
//!   never beats established keys.
//! - **Window size** adapts to the workload through two small ghost tables, one on each side of
//!   the window/main boundary: the fingerprints of candidates that admission just turned away,
//!   and of main victims just evicted, each stamped with its side's eviction count. A miss on a
//!   key that was turned away within the last 1 % of the capacity's worth of rejections would
//!   have hit had the window been that much larger, so the window grows by the key's weight; a
//!   miss on a key that left main as recently would have hit with a larger main, so the window
//!   shrinks. The window ranges from one entry to 80 % of the capacity, starting at 1 %.
//!   Recency-biased workloads grow it (towards LRU); workloads whose main victims come back soon
//!   shrink it (towards LFU).
//!
//!   The window's adaptation replaces hill climbing on the hit ratio (Caffeine's approach).
//!   Measured on the ARC and LIRS traces with `lethe-bench hitratio`, a climber sampling every
//!   `10 × capacity` accesses made about ten moves per trace, too few to matter, and one
//!   sampling every `capacity` to `4 × capacity` accesses lost 7 to 38 points summed over the
//!   OLTP, loop and zigzag cases: successive samples of a loop or a zigzag differ by more than
//!   the effect of a step, so the climber walks on noise. The ghosts measure both sides of the
//!   boundary over the same accesses, so each signal is an actual hit that one more step would
//!   have made, not the difference of two noisy rates. Their reach is short on purpose: on a loop
//!   longer than the cache a rejected key returns only after every other key has been turned
//!   away once, far beyond it, so loops do not grow the window.
//! - **Ageing on demand**: the same rejected-ghost hit that grows the window also ages the
//!   sketch, bringing its next halving forward by 3/80 of the period (which is `20 × capacity`
//!   increments, twice Caffeine's, so that history lasts where nothing contradicts it). A
//!   candidate turned away that comes straight back is evidence that the incumbents' counts are
//!   stale: on a large cache the CLOCK victim is often a key that was hot long ago, not read for a
//!   whole turn of the hand, whose saturated counters outscore every newcomer until the next
//!   halving (measured on P6 at 131072 entries, victims that won their duel mostly had estimates
//!   of 4 to 11). Ageing on a fixed shorter period fixed those caches but lost on the small ones
//!   (period `2 × capacity`: P6@131072 75.5 → 79.9 %, but OLTP@256 26.6 → 22.6 % and zigzag@500
//!   23.3 → 19.9 %); regret-driven ageing adapts per workload. Measured with `lethe-bench
//!   hitratio`, tuned on OLTP, P6, loop and multi1 and checked on P3, multi2, 2_pools and zigzag:
//!   P6@131072 75.5 → 78.1 %, P3@131072 44.6 → 46.4 %, P3@32768 +0.4, OLTP@2000 and P6@8192
//!   −0.1, the rest within run-to-run noise.
//!
//!   Also tried and rejected, on the same traces: evicting a victim outright once it had won a
//!   duel and then gone another turn unread (P3/P6@131072 reach quick_cache's 49 / 80.5 %, but
//!   the 8192-entry caches fall from 6-8 % to 1.5 %, OLTP loses up to 8 points and loop@256 drops
//!   to 0), with its probability steered by ghosts (still collapses the 8192-entry caches);
//!   charging a victim one count per duel won (same collapse); picking the lowest-estimate victim
//!   among the next 2 or 4 unread entries (−1 to −1.6 on P3/P6@8192); admitting unconditionally a
//!   rejected candidate that returns within 30 % of the capacity's worth of rejections (P6@131072
//!   79.4 %, but zigzag −7 and −13 points); a margin of zero for such returns (no gain); and
//!   counting saturated increments towards the halving period (no gain).
//!
//! The policy works on slot indices and keeps its links in a vector parallel to the shard's
//! slots; the entries' hashes, weights and hit counters are read through [`EvictionEntries`].

use crate::sketch::FrequencySketch;

const NIL: u32 = u32::MAX;

/// What the policy needs to know about the shard's entries.
pub(crate) trait EvictionEntries {
    fn hash(&self, idx: u32) -> u64;
    fn weight(&self, idx: u32) -> u64;
    /// Hits since the last call, resetting the counter.
    fn take_hits(&self, idx: u32) -> u8;
    /// Counts one access, as a read does.
    fn record_hit(&self, idx: u32);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    None,
    Window,
    Main,
}

/// A slot's ring links in 8 bytes: the region rides in `next`'s top bit, and a free node is
/// one whose `prev` is [`NIL`] (a linked node always has neighbours, itself when alone). Slot
/// indices stay below 2^31 for this (the shard asserts it before adding a slot).
#[derive(Clone, Copy, Debug)]
struct Node {
    prev: u32,
    /// The next slot's index, with [`MAIN_BIT`] set in the main ring.
    next: u32,
}

const MAIN_BIT: u32 = 1 << 31;

/// The most slots a shard may have: their indices must leave [`MAIN_BIT`] free.
pub(crate) const MAX_SLOTS: usize = MAIN_BIT as usize - 1;

const FREE_NODE: Node = Node {
    prev: NIL,
    next: NIL,
};

impl Node {
    fn linked(prev: u32, next: u32, region: Region) -> Node {
        debug_assert!(prev < MAIN_BIT && next < MAIN_BIT);
        let bit = match region {
            Region::Main => MAIN_BIT,
            Region::Window => 0,
            Region::None => unreachable!("a linked node is in a region"),
        };
        Node {
            prev,
            next: next | bit,
        }
    }

    fn region(self) -> Region {
        if self.prev == NIL {
            Region::None
        } else if self.next & MAIN_BIT != 0 {
            Region::Main
        } else {
            Region::Window
        }
    }

    fn next(self) -> u32 {
        self.next & !MAIN_BIT
    }

    fn set_next(&mut self, next: u32) {
        self.next = (self.next & MAIN_BIT) | next;
    }
}

/// A circular doubly linked list by slot index; `head` is the newest, `head.prev` the oldest.
#[derive(Debug, Default)]
struct Ring {
    head: Option<u32>,
    weight: u64,
    len: usize,
}

/// The window's target size and the ghost tables that steer it.
#[derive(Debug)]
struct Boundary {
    /// Target window weight, fractional so sub-entry adjustments of heavy caches accumulate.
    window: f64,
    min: f64,
    max: f64,
    /// Fingerprints of recently rejected candidates, each with `rejections` when it left.
    rejected: Vec<u64>,
    /// Fingerprints of recent main victims, each with `evictions` when it left.
    evicted: Vec<u64>,
    mask: usize,
    rejections: u32,
    evictions: u32,
    /// How many departures back a ghost still counts.
    reach: u32,
}

/// Share of the entries a ghost's reach spans. Measured on the ARC and LIRS traces: 1 % and 2 %
/// did the same, 5 % and more cost up to 7 points on zigzag and OLTP, whose rejected keys then
/// count as window hits though the window would have had to grow far beyond one step to keep them.
/// Since rejected ghosts also age the sketch, 2 % and 3 % cost up to 0.5 and 1 point on OLTP
/// and zigzag (too many ageings) for no gain on the large caches.
const REACH_PER_ENTRY: f64 = 0.01;
/// Ghost slots per unit of reach: a ghost is overwritten (forgotten early) by a colliding one
/// with a probability of about 1/8 before it goes out of reach.
const SLOTS_PER_REACH: u32 = 8;

impl Boundary {
    fn new(capacity: u64, entries: usize) -> Self {
        let reach = ((entries as f64 * REACH_PER_ENTRY) as u32).max(1);
        let slots = (reach.saturating_mul(SLOTS_PER_REACH) as usize)
            .clamp(16, 1 << 24)
            .next_power_of_two();
        Boundary {
            window: (capacity as f64 * 0.01).max(1.0),
            min: 1.0,
            max: (capacity as f64 * 0.8).max(1.0),
            rejected: vec![0; slots],
            evicted: vec![0; slots],
            mask: slots - 1,
            rejections: 0,
            evictions: 0,
            reach,
        }
    }

    /// A ghost: 32 bits of the hash not used for the slot (never zero, so empty slots never
    /// match) above the departure count.
    fn ghost(hash: u64, seq: u32) -> u64 {
        (u64::from(hash.rotate_right(29) as u32 | 1) << 32) | u64::from(seq)
    }

    fn reject(&mut self, hash: u64) {
        self.rejections = self.rejections.wrapping_add(1);
        self.rejected[hash as usize & self.mask] = Self::ghost(hash, self.rejections);
    }

    fn evict(&mut self, hash: u64) {
        self.evictions = self.evictions.wrapping_add(1);
        self.evicted[hash as usize & self.mask] = Self::ghost(hash, self.evictions);
    }

    /// Whether `hash` left `table` at most `reach` departures before `now`; forgets it either way.
    fn recent(table: &mut [u64], mask: usize, hash: u64, now: u32, reach: u32) -> bool {
        let slot = &mut table[hash as usize & mask];
        if *slot >> 32 != Self::ghost(hash, 0) >> 32 {
            return false;
        }
        let left = *slot as u32;
        *slot = 0;
        now.wrapping_sub(left) < reach
    }

    /// A miss on `hash`: moves the boundary by `weight` if a ghost says which side would have
    /// kept the key. Returns whether the key is a candidate that admission turned away shortly
    /// before.
    fn on_miss(&mut self, hash: u64, weight: u64) -> bool {
        let (mask, reach) = (self.mask, self.reach);
        if Self::recent(&mut self.rejected, mask, hash, self.rejections, reach) {
            self.window = (self.window + weight as f64).min(self.max);
            true
        } else {
            if Self::recent(&mut self.evicted, mask, hash, self.evictions, reach) {
                self.window = (self.window - weight as f64).max(self.min);
            }
            false
        }
    }
}

#[derive(Debug)]
pub(crate) struct EvictionPolicy {
    nodes: Vec<Node>,
    window: Ring,
    main: Ring,
    capacity: u64,
    window_max: u64,
    sketch: FrequencySketch,
    boundary: Boundary,
}

impl EvictionPolicy {
    /// A policy for a shard of `capacity`, expected to hold about `expected_entries` entries.
    pub(crate) fn new(capacity: u64, expected_entries: usize) -> Self {
        let boundary = Boundary::new(capacity, expected_entries);
        EvictionPolicy {
            nodes: Vec::new(),
            window: Ring::default(),
            main: Ring::default(),
            capacity,
            window_max: boundary.window as u64,
            sketch: FrequencySketch::new(expected_entries),
            boundary,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn weight(&self) -> u64 {
        self.window.weight + self.main.weight
    }

    fn ring(&mut self, region: Region) -> &mut Ring {
        match region {
            Region::Window => &mut self.window,
            Region::Main => &mut self.main,
            Region::None => unreachable!("entry not in a region"),
        }
    }

    fn push_head(&mut self, region: Region, idx: u32, weight: u64) {
        let i = idx as usize;
        if self.nodes.len() <= i {
            self.nodes.resize(i + 1, FREE_NODE);
        }
        let ring = self.ring(region);
        let head = ring.head;
        ring.head = Some(idx);
        ring.weight += weight;
        ring.len += 1;
        let node = match head {
            None => Node::linked(idx, idx, region),
            Some(h) => {
                let tail = self.nodes[h as usize].prev;
                self.nodes[tail as usize].set_next(idx);
                self.nodes[h as usize].prev = idx;
                Node::linked(tail, h, region)
            }
        };
        self.nodes[i] = node;
    }

    fn unlink(&mut self, idx: u32, weight: u64) -> Region {
        let node = self.nodes[idx as usize];
        let region = node.region();
        if region == Region::None {
            return Region::None;
        }
        let next = node.next();
        if next == idx {
            let ring = self.ring(region);
            ring.head = None;
        } else {
            self.nodes[node.prev as usize].set_next(next);
            self.nodes[next as usize].prev = node.prev;
            let ring = self.ring(region);
            if ring.head == Some(idx) {
                ring.head = Some(next);
            }
        }
        let ring = self.ring(region);
        ring.weight -= weight;
        ring.len -= 1;
        self.nodes[idx as usize] = FREE_NODE;
        region
    }

    fn tail(&self, ring: &Ring) -> Option<u32> {
        ring.head.map(|h| self.nodes[h as usize].prev)
    }

    /// A new entry. Pushes the slots to evict, if any, onto `victims` (they are already unlinked).
    pub(crate) fn on_insert(
        &mut self,
        idx: u32,
        entries: &impl EvictionEntries,
        victims: &mut Vec<u32>,
    ) {
        let hash = entries.hash(idx);
        let weight = entries.weight(idx);
        self.sketch.increment(hash);
        if self.boundary.on_miss(hash, weight) {
            // Admission was wrong about this key: the sketch's history overrates the incumbents
            // (see the module docs), so age it sooner.
            self.sketch.age();
        }
        self.window_max = self.boundary.window as u64;
        self.push_head(Region::Window, idx, weight);
        self.evict(entries, victims);
    }

    /// An entry's value (and so maybe its weight) was replaced in place.
    pub(crate) fn on_update(
        &mut self,
        idx: u32,
        old_weight: u64,
        entries: &impl EvictionEntries,
        victims: &mut Vec<u32>,
    ) {
        // The write counts as an access through the entry's hit counter (folded into the sketch
        // when the policy next looks at it), which avoids a sketch update on every overwrite.
        entries.record_hit(idx);
        let new_weight = entries.weight(idx);
        if new_weight == old_weight {
            // Nothing moves: skip the node lookup (a cache miss in a parallel vector).
            return;
        }
        let region = self.nodes[idx as usize].region();
        let ring = self.ring(region);
        ring.weight = ring.weight - old_weight + new_weight;
        if new_weight > old_weight {
            self.evict(entries, victims);
        }
    }

    /// An entry left for a reason of its own (removed, expired, invalidated).
    pub(crate) fn on_remove(&mut self, idx: u32, weight: u64) {
        self.unlink(idx, weight);
    }

    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.window = Ring::default();
        self.main = Ring::default();
    }

    /// Grows the sketch when the shard holds more entries than it was sized for (weighted caches
    /// do not know their entry count in advance).
    pub(crate) fn observe_len(&mut self, len: usize) {
        self.sketch.ensure_capacity(len);
        if (len as f64 * REACH_PER_ENTRY) as u32 > self.boundary.reach.saturating_mul(2) {
            // The ghosts' reach is a share of the entries; past twice that, resize them (their
            // history restarts, the window size stays).
            let window = self.boundary.window;
            self.boundary = Boundary::new(self.capacity, len);
            self.boundary.window = window;
        }
    }

    fn fold_hits(&mut self, idx: u32, entries: &impl EvictionEntries) -> bool {
        let hits = entries.take_hits(idx);
        if hits > 0 {
            self.sketch.add(entries.hash(idx), hits);
        }
        hits > 0
    }

    /// The main ring's CLOCK victim: the oldest entry not read since the hand last passed it.
    fn main_victim(&mut self, entries: &impl EvictionEntries) -> Option<u32> {
        // After one full turn every entry has had its hits taken, so two turns always find one.
        for _ in 0..self.main.len.saturating_mul(2).max(1) {
            let tail = self.tail(&self.main)?;
            if self.fold_hits(tail, entries) {
                // Second chance: the ring rotates so the old tail becomes the head.
                self.main.head = Some(tail);
            } else {
                return Some(tail);
            }
        }
        self.tail(&self.main)
    }

    /// TinyLFU admission: the candidate must be clearly more popular than the victim, by at
    /// least two counts of the sketch. One count is within the estimates' own noise (count-min
    /// overestimates on collisions, the halving rounds odd counts down, and an entry's reads
    /// reach the sketch only when the policy next looks at it), so admitting on it swaps keys of
    /// equal worth: measured with `lethe-bench hitratio`, the margin of two is worth 3 points on
    /// zigzag and 2 on P3/P6 at 8192 entries, and costs 1.5 on P3 at 131072. Ties keep the
    /// incumbent, which is what holds a stable resident set on loops larger than the cache.
    /// (Caffeine also admits a warm candidate at random, against hash-flooding of the sketch; here
    /// key hashes are seeded per cache, so sketch counters cannot be aimed at, and measured on the
    /// LIRS loop trace the random admissions cost up to 10 points of hit ratio.)
    fn admit(&self, candidate: u64, victim: u64) -> bool {
        self.sketch.estimate(candidate) > self.sketch.estimate(victim).saturating_add(1)
    }

    fn evict(&mut self, entries: &impl EvictionEntries, victims: &mut Vec<u32>) {
        while self.window.weight > self.window_max {
            let Some(candidate) = self.tail(&self.window) else {
                break;
            };
            let cw = entries.weight(candidate);
            self.unlink(candidate, cw);
            self.fold_hits(candidate, entries);
            loop {
                if self.weight() + cw <= self.capacity {
                    self.push_head(Region::Main, candidate, cw);
                    break;
                }
                let Some(victim) = self.main_victim(entries) else {
                    // Main is empty and the candidate alone is too heavy.
                    victims.push(candidate);
                    break;
                };
                let candidate_hash = entries.hash(candidate);
                let victim_hash = entries.hash(victim);
                if self.admit(candidate_hash, victim_hash) {
                    self.unlink(victim, entries.weight(victim));
                    victims.push(victim);
                    self.boundary.evict(victim_hash);
                } else {
                    victims.push(candidate);
                    self.boundary.reject(candidate_hash);
                    break;
                }
            }
        }
        while self.weight() > self.capacity {
            let victim = match self.main_victim(entries) {
                Some(v) => v,
                None => match self.tail(&self.window) {
                    Some(v) => v,
                    None => break,
                },
            };
            self.unlink(victim, entries.weight(victim));
            victims.push(victim);
        }
    }

    #[cfg(test)]
    pub(crate) fn window_max(&self) -> u64 {
        self.window_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};

    #[derive(Default)]
    struct Entries {
        hits: RefCell<HashMap<u32, u8>>,
    }

    impl EvictionEntries for Entries {
        fn hash(&self, idx: u32) -> u64 {
            u64::from(idx).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
        fn weight(&self, _: u32) -> u64 {
            1
        }
        fn take_hits(&self, idx: u32) -> u8 {
            self.hits.borrow_mut().remove(&idx).unwrap_or(0)
        }
        fn record_hit(&self, idx: u32) {
            *self.hits.borrow_mut().entry(idx).or_default() += 1;
        }
    }

    /// Replays `keys` (slot index = key) against a policy of `cap` entries, returning hits.
    fn replay(cap: u64, keys: impl Iterator<Item = u32>) -> (usize, EvictionPolicy) {
        replay_with(EvictionPolicy::new(cap, cap as usize), cap, keys)
    }

    fn replay_with(
        mut p: EvictionPolicy,
        cap: u64,
        keys: impl Iterator<Item = u32>,
    ) -> (usize, EvictionPolicy) {
        let e = Entries::default();
        let mut resident = HashSet::new();
        let mut hits = 0;
        let mut victims = Vec::new();
        for k in keys {
            if resident.contains(&k) {
                hits += 1;
                *e.hits.borrow_mut().entry(k).or_default() += 1;
                continue;
            }
            resident.insert(k);
            p.on_insert(k, &e, &mut victims);
            for v in victims.drain(..) {
                assert!(resident.remove(&v));
            }
            assert!(p.weight() <= cap);
            assert_eq!(resident.len() as u64, p.weight());
        }
        (hits, p)
    }

    #[test]
    fn a_node_is_eight_bytes_and_keeps_its_region() {
        assert_eq!(std::mem::size_of::<Node>(), 8);
        assert_eq!(FREE_NODE.region(), Region::None);
        let top = MAX_SLOTS as u32 - 1;
        for region in [Region::Window, Region::Main] {
            let mut n = Node::linked(top, 0, region);
            assert_eq!((n.region(), n.prev, n.next()), (region, top, 0));
            n.set_next(top);
            assert_eq!((n.region(), n.next()), (region, top));
        }
    }

    #[test]
    fn stays_within_capacity_and_keeps_hot_keys_through_a_scan() {
        let hot = (0..50u32).cycle().take(5_000);
        let scan = 1_000..3_000u32; // 20x the capacity, each key once
        let after = (0..50u32).cycle().take(500);
        let (hits, _) = replay(100, hot.chain(scan).chain(after));
        // The hot set survives the one-pass scan: nearly all of the last 500 reads hit.
        assert!(hits >= 4_900 + 480, "hits {hits}");
    }

    #[test]
    fn loop_larger_than_cache_keeps_a_stable_resident_set() {
        // LRU and FIFO get zero hits on a loop longer than the cache; admission must not.
        let (hits, _) = replay(500, (0..1000u32).cycle().take(100_000));
        assert!(hits > 30_000, "hits {hits}");
    }

    #[test]
    fn admission_needs_a_lead_of_two_counts() {
        let mut p = EvictionPolicy::new(100, 100);
        let (candidate, victim) = (0x1234_5678_9abc_def1_u64, 0x0fed_cba9_8765_4321_u64);
        p.sketch.increment(victim);
        p.sketch.increment(candidate);
        assert!(!p.admit(candidate, victim), "a tie keeps the incumbent");
        p.sketch.increment(candidate);
        assert!(
            !p.admit(candidate, victim),
            "one count ahead is within the noise"
        );
        p.sketch.increment(candidate);
        assert!(p.admit(candidate, victim), "two counts ahead get in");
    }

    #[test]
    fn ghosts_move_the_boundary_by_one_step_within_reach_only() {
        let mut b = Boundary::new(10_000, 10_000);
        assert_eq!(b.reach, 100);
        let start = b.window;
        b.reject(1);
        b.on_miss(1, 1);
        assert_eq!(
            b.window,
            start + 1.0,
            "a rejected key back soon grows the window"
        );
        b.on_miss(1, 1);
        assert_eq!(b.window, start + 1.0, "a ghost counts once");
        b.evict(2);
        b.on_miss(2, 3);
        assert_eq!(
            b.window,
            start - 2.0,
            "a main victim back soon shrinks it by its weight"
        );
        b.reject(3);
        for k in 0..100u64 {
            b.reject(1_000_000 + k * 7919);
        }
        b.on_miss(3, 1);
        assert_eq!(b.window, start - 2.0, "beyond reach a ghost says nothing");
        b.on_miss(4, 1);
        assert_eq!(b.window, start - 2.0, "an unknown key says nothing");
    }

    #[test]
    fn a_rejected_key_coming_back_ages_the_sketch() {
        let e = Entries::default();
        let mut victims = Vec::new();
        let mut p = EvictionPolicy::new(100, 100);
        let stale = 0x0fed_cba9_8765_4321_u64;
        p.sketch.add(stale, 15);
        // Each return of a just-rejected key brings the halving forward; no other traffic does
        // enough to reach it in 40 misses.
        for k in 0..40u32 {
            p.boundary.reject(e.hash(k));
            p.on_insert(k, &e, &mut victims);
        }
        assert!(p.sketch.estimate(stale) < 15, "not aged");
        let mut q = EvictionPolicy::new(100, 100);
        q.sketch.add(stale, 15);
        for k in 0..40u32 {
            q.on_insert(k, &e, &mut victims);
        }
        assert_eq!(q.sketch.estimate(stale), 15, "aged without regrets");
    }

    #[test]
    fn window_stays_within_its_bounds() {
        let mut b = Boundary::new(1000, 1000);
        for k in 0..5_000u64 {
            b.reject(k);
            b.on_miss(k, 1);
        }
        assert_eq!(b.window, b.max);
        assert_eq!(b.max, 800.0);
        for k in 0..5_000u64 {
            b.evict(k);
            b.on_miss(k, 1);
        }
        assert_eq!(b.window, b.min);
    }

    /// Every new key comes back once, `gap` misses later: the second access hits only if the
    /// window holds the last `gap` new keys.
    fn recency(first: u32, n: u32, gap: u32) -> impl Iterator<Item = u32> {
        (0..n).flat_map(move |i| {
            let again = (i >= gap).then(|| first + i - gap);
            std::iter::once(first + i).chain(again)
        })
    }

    #[test]
    fn window_grows_when_recency_pays() {
        let cap = 10_000u64;
        let start = EvictionPolicy::new(cap, cap as usize).window_max();
        assert_eq!(start, 100);
        // Main fills with keys read three times, so new keys lose their admission duels.
        let warm = (0..3).flat_map(|_| 0..9_000u32);
        let (hits, p) = replay(cap, warm.clone().chain(recency(100_000, 20_000, 150)));
        let grown = p.window_max();
        assert!(
            grown >= 150,
            "window {grown} did not grow to hold the returning keys"
        );
        // With the window that large, nearly all of the late returns hit.
        let (fixed_hits, _) = {
            let mut fixed = EvictionPolicy::new(cap, cap as usize);
            fixed.boundary.max = fixed.boundary.window; // pinned at the initial 1 %
            replay_with(fixed, cap, warm.chain(recency(100_000, 20_000, 150)))
        };
        assert!(
            hits > fixed_hits + 10_000,
            "adaptive {hits} vs pinned {fixed_hits}"
        );
    }
}

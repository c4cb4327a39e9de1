//! A shard's tag index: tag sets shared by entries, and which sets carry which tag.
//!
//! Entries with the same tags share one *tag set* record, and the entry keeps only the set's id
//! (23 bits in the entry, beside the hash and deadline the read path already reads). Invalidating a
//! tag marks every set carrying it (or a tag below it) dead, under each shard's lock: the cost
//! is the number of such sets, not the number of entries, and a read learns that its entry is
//! gone from one byte in a dense per-shard array, with no extra cache miss per tagged read. New
//! writes with the same tags get a fresh set. The entries of a dead set are reclaimed later, in
//! batches bounded in entries and in time per hold of the shard's lock, from the set's member
//! list. Rewriting a key with the same tags keeps its membership as it is (nothing recorded).
//!
//! Member lists are append-only with lazy deletion: each member is recorded with the slot's tag
//! generation, which the shard bumps whenever a tagged entry leaves or is replaced in the slot;
//! a member is current exactly when its generation matches the slot's (a dense array of four
//! bytes per slot). A list is compacted when it holds more than twice as many records as live
//! members, amortised O(1) per write. The same lazy scheme keeps each tag's list of sets.
//!
//! A freed set's member list is not freed here but handed out ([`TagIndex::take_retired`]) to
//! be dropped after the shard's lock is released. Freeing a large block can make the allocator
//! do work proportional to everything freed before it: glibc's `free` of a block of 64 KiB or
//! more first merges every small free chunk of the arena (`malloc_consolidate`), and after the
//! keys of a million-entry invalidation were dropped that took 30-37 ms on the bench machine,
//! under the lock and so in front of every reader of the shard (`lethe-bench invalidation`,
//! `tag_1m:during`, longest get).
//!
//! Only the first use of a tag name in a shard goes to the cache-wide registry; later writes
//! find the tag by name in the shard's own map (names stored inline), under the shard lock,
//! with no atomic operation.

use crate::collections::HashMap;
use crate::sync::Arc;
use crate::tag_registry::{TagNode, TagRegistry, validate_tag};
use compact_str::CompactString;
use smallvec::SmallVec;

/// A set's tags: `(tag id, inherited)`, in the order given on insert. Inherited tags come from a dependency:
/// invalidating one removes the entry as a dependency, not as a tag of its own.
pub(crate) type Membership = SmallVec<[(u32, bool); 4]>;

/// Why a set is dead (0 while alive).
pub(crate) const DEAD_TAG: u8 = 1;
pub(crate) const DEAD_DEPENDENCY: u8 = 2;

/// A 128-bit fingerprint of a sequence of tag names (with their inherited flags): sets are
/// found by it, so equal name sequences share a set. Two independent 64-bit hashes with fixed
/// keys; a collision (about 2^-128 per pair) would give an entry another set's tags.
pub(crate) fn fingerprint<'a>(names: impl Iterator<Item = (&'a str, bool)>) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    // foldhash's fast variant: the quality one only adds a final fold, and this runs on every
    // tagged insert. The byte write takes the name's length into account, and the flag byte
    // ends each name, so name boundaries cannot shift.
    let mut a = foldhash::fast::FixedState::with_seed(0x7a95_e7a9_0001).build_hasher();
    let mut b = foldhash::fast::FixedState::with_seed(0x7a95_e7a9_0002).build_hasher();
    for (name, inherited) in names {
        let end = 0xfe | u8::from(inherited);
        a.write(name.as_bytes());
        a.write_u8(end);
        b.write(name.as_bytes());
        b.write_u8(end);
    }
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Largest set id: ids live in 23 bits of the entry.
const MAX_SET: u32 = crate::entry::MAX_TAGSET;

#[derive(Debug, Default)]
struct TagList {
    /// Sets carrying this tag, plus former ones not yet compacted away.
    sets: Vec<u32>,
    count: u32,
}

/// What only creating, killing and freeing a set need; what every write touches (member
/// count and list) is kept apart, in dense vectors.
#[derive(Debug, Default)]
struct TagSet {
    /// [`fingerprint`] of the tag names the set was created for.
    fp: u128,
    tags: Membership,
    in_use: bool,
}

/// A set's member records, `(slot, generation)`.
pub(crate) type MemberList = Vec<(u32, u32)>;

/// A set's members.
#[derive(Debug, Default)]
struct Members {
    list: MemberList,
    live: u32,
}

#[derive(Debug)]
pub(crate) struct TagIndex {
    by_name: HashMap<CompactString, u32>,
    nodes: Vec<Option<Arc<TagNode>>>,
    lists: Vec<TagList>,
    free_lists: Vec<u32>,
    sets: Vec<TagSet>,
    /// Per set: members' `(slot, generation)`, plus former members not yet compacted away,
    /// and the count of current members: what a write touches, in one place.
    members: Vec<Members>,
    /// Per set, dense for the read path: 0 alive, else [`DEAD_TAG`] or [`DEAD_DEPENDENCY`].
    dead: Vec<u8>,
    /// Live sets by the fingerprint of their tag names, so equal tag sets are shared and a write
    /// finds its set with one lookup (the fingerprint is computed before the lock is taken).
    by_fp: HashMap<u128, u32>,
    free_sets: Vec<u32>,
    /// Live sets with no member (kept for reuse; swept when they pile up).
    idle: usize,
    /// Member lists of freed sets, to be dropped once the shard's lock is released.
    retired: Vec<MemberList>,
}

impl Default for TagIndex {
    fn default() -> Self {
        TagIndex {
            by_name: HashMap::default(),
            nodes: Vec::new(),
            lists: Vec::new(),
            free_lists: Vec::new(),
            // Set 0 means "untagged".
            sets: vec![TagSet::default()],
            members: vec![Members::default()],
            dead: vec![0],
            by_fp: HashMap::default(),
            free_sets: Vec::new(),
            idle: 0,
            retired: Vec::new(),
        }
    }
}

impl TagIndex {
    /// Tags known to this shard.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether set `set` is dead, and why (0: alive).
    #[inline]
    pub(crate) fn dead(&self, set: u32) -> u8 {
        self.dead[set as usize]
    }

    /// The node of tag `id`.
    pub(crate) fn node(&self, id: u32) -> &TagNode {
        self.nodes[id as usize].as_deref().expect("live tag")
    }

    /// The tags of set `set`.
    pub(crate) fn tags(&self, set: u32) -> &Membership {
        &self.sets[set as usize].tags
    }

    /// The id of tag `name`, created (and the tag interned) on first use. Fails for a malformed
    /// name.
    pub(crate) fn resolve(&mut self, name: &str, registry: &TagRegistry) -> Result<u32, String> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        validate_tag(name)?;
        let node = registry.intern(name);
        let id = match self.free_lists.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                self.lists.push(TagList::default());
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 tags per shard")
            }
        };
        self.by_name.insert(name.into(), id);
        Ok(id)
    }

    /// Drops tag `id` if no set carries it (resolved for a write that did not happen).
    pub(crate) fn release(&mut self, id: u32) {
        if self.lists[id as usize].count == 0 && self.nodes[id as usize].is_some() {
            self.drop_tag(id);
        }
    }

    fn drop_tag(&mut self, id: u32) {
        let node = self.nodes[id as usize].take().expect("live tag");
        self.by_name.remove(node.name());
        self.lists[id as usize] = TagList::default();
        self.free_lists.push(id);
    }

    /// The live set for the tag names with fingerprint `fp`, if there is one.
    #[inline]
    pub(crate) fn set_by_fingerprint(&self, fp: u128) -> Option<u32> {
        self.by_fp.get(&fp).copied()
    }

    /// The live set with these tags (whose names have fingerprint `fp`), created if needed.
    pub(crate) fn set_for(&mut self, tags: Membership, fp: u128) -> u32 {
        if let Some(&id) = self.by_fp.get(&fp) {
            return id;
        }
        let id = match self.free_sets.pop() {
            Some(id) => id,
            None => {
                self.sets.push(TagSet::default());
                self.members.push(Members::default());
                self.dead.push(0);
                let id = u32::try_from(self.sets.len() - 1).expect("set ids fit");
                assert!(
                    id <= MAX_SET,
                    "more than 2^23 distinct tag sets in one shard"
                );
                id
            }
        };
        for &(t, _) in &tags {
            let list = &mut self.lists[t as usize];
            list.sets.push(id);
            list.count += 1;
            if list.sets.len() > 2 * list.count as usize + 16 {
                let (sets, lists_t) = (&self.sets, t);
                list.sets.retain(|&s| {
                    s == id
                        || (sets[s as usize].in_use
                            && sets[s as usize].tags.iter().any(|m| m.0 == lists_t))
                });
                list.sets.sort_unstable();
                list.sets.dedup();
            }
        }
        self.sets[id as usize] = TagSet {
            fp,
            tags,
            in_use: true,
        };
        self.members[id as usize] = Members::default();
        self.dead[id as usize] = 0;
        self.by_fp.insert(fp, id);
        self.idle += 1;
        id
    }

    /// Records `slot` (at tag generation `generation`) as a member of `set`; compacts the
    /// member list against the slots' generations `gens` when former members pile up.
    pub(crate) fn join(&mut self, set: u32, slot: u32, generation: u32, gens: &[u32]) {
        let m = &mut self.members[set as usize];
        m.list.push((slot, generation));
        m.live += 1;
        if m.list.len() > 2 * m.live as usize + 16 {
            m.list.retain(|&(s, g)| gens[s as usize] == g);
        }
        if m.live == 1 && self.dead[set as usize] == 0 {
            self.idle -= 1;
        }
    }

    /// Counts one member out of `set` (its slot's generation already moved on).
    pub(crate) fn leave(&mut self, set: u32) {
        let m = &mut self.members[set as usize];
        m.live -= 1;
        if m.live > 0 {
            return;
        }
        m.list.clear();
        if self.dead[set as usize] != 0 {
            self.free_set(set);
        } else {
            self.idle += 1;
            if self.idle > 64 && self.idle * 2 > self.by_fp.len() {
                self.sweep();
            }
        }
    }

    fn free_set(&mut self, set: u32) {
        let s = std::mem::take(&mut self.sets[set as usize]);
        let list = std::mem::take(&mut self.members[set as usize]).list;
        if list.capacity() > 0 {
            self.retired.push(list);
        }
        if self.dead[set as usize] == 0 {
            self.by_fp.remove(&s.fp);
        }
        self.dead[set as usize] = 0;
        for &(t, _) in &s.tags {
            let list = &mut self.lists[t as usize];
            list.count -= 1;
            if list.count == 0 {
                self.drop_tag(t);
            }
        }
        self.free_sets.push(set);
    }

    /// The member lists of sets freed since the last call, for the caller to drop after
    /// releasing the shard's lock (see the module docs).
    /// Whether member lists of freed sets wait to be handed over ([`Self::take_retired`]).
    pub(crate) fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    pub(crate) fn take_retired(&mut self) -> Vec<MemberList> {
        std::mem::take(&mut self.retired)
    }

    /// Frees live sets without members, and tags no set carries any more.
    pub(crate) fn sweep(&mut self) {
        let idle: Vec<u32> = self
            .by_fp
            .values()
            .copied()
            .filter(|&s| self.members[s as usize].live == 0)
            .collect();
        for s in idle {
            self.free_set(s);
        }
        self.idle = 0;
    }

    /// Sets carrying tag `id`, each once (a freed set's id may be reused by another set with
    /// the same tag, and then appear twice in the tag's lazy list).
    fn sets_with(&self, id: u32) -> Vec<u32> {
        let mut sets: Vec<u32> = self.lists[id as usize]
            .sets
            .iter()
            .copied()
            .filter(|&s| {
                let set = &self.sets[s as usize];
                set.in_use && set.tags.iter().any(|m| m.0 == id)
            })
            .collect();
        sets.sort_unstable();
        sets.dedup();
        sets
    }

    /// Sets carrying tag `name` (or `None` if no set in this shard does).
    pub(crate) fn sets_of(&self, name: &str) -> Option<(u32, Vec<u32>)> {
        let &id = self.by_name.get(name)?;
        Some((id, self.sets_with(id)))
    }

    /// Current members of `set`.
    pub(crate) fn members<'a>(
        &'a self,
        set: u32,
        gens: &'a [u32],
    ) -> impl Iterator<Item = u32> + 'a {
        self.members[set as usize]
            .list
            .iter()
            .filter(move |&&(s, g)| gens[s as usize] == g)
            .map(|&(s, _)| s)
    }

    /// The members [`Self::pop_dead_member`] will return next, in that order, without taking
    /// them (none if the set is not dead).
    pub(crate) fn next_dead_members<'a>(
        &'a self,
        set: u32,
        gens: &'a [u32],
    ) -> impl Iterator<Item = u32> + 'a {
        let list: &[(u32, u32)] = if self.dead[set as usize] == 0 {
            &[]
        } else {
            &self.members[set as usize].list
        };
        list.iter()
            .rev()
            .filter(move |&&(s, g)| gens[s as usize] == g)
            .map(|&(s, _)| s)
    }

    /// Marks dead every live set carrying tag `id`; the newly dead sets go to `out`, for their
    /// members to be reclaimed later ([`Self::pop_dead_member`]). O(sets), not O(entries).
    pub(crate) fn kill(&mut self, id: u32, out: &mut Vec<u32>) {
        let mut sets = self.sets_with(id);
        sets.retain(|&s| self.dead[s as usize] == 0);
        for s in sets {
            let own = self.sets[s as usize]
                .tags
                .iter()
                .any(|&(t, inh)| t == id && !inh);
            if self.members[s as usize].live == 0 {
                // No entry to hide: the set just goes.
                self.free_set(s);
                self.idle -= 1;
                continue;
            }
            self.dead[s as usize] = if own { DEAD_TAG } else { DEAD_DEPENDENCY };
            let fp = self.sets[s as usize].fp;
            self.by_fp.remove(&fp);
            out.push(s);
        }
    }

    /// Takes a current member of dead set `set` off its list, to be reclaimed; `None` when the
    /// set has none left (or is no longer dead: freed, and perhaps reused by a live set).
    pub(crate) fn pop_dead_member(&mut self, set: u32, gens: &[u32]) -> Option<u32> {
        if self.dead[set as usize] == 0 {
            return None;
        }
        let members = &mut self.members[set as usize].list;
        while let Some((slot, g)) = members.pop() {
            if gens[slot as usize] == g {
                return Some(slot);
            }
        }
        None
    }

    /// Ids of every tag known to this shard, with their nodes.
    pub(crate) fn all_tags(&self) -> impl Iterator<Item = (u32, &TagNode)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i as u32, n.as_deref()?)))
    }

    /// The id of tag `name`, if this shard knows it.
    pub(crate) fn id_of(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn clear(&mut self) {
        *self = TagIndex::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(tags: &[(u32, bool)]) -> (Membership, u128) {
        let fp = tags.iter().fold(0u128, |acc, &(t, i)| {
            acc * 31 + u128::from(t) * 2 + u128::from(i) + 1
        });
        (tags.iter().copied().collect(), fp)
    }

    fn set_for(t: &mut TagIndex, tags: &[(u32, bool)]) -> u32 {
        let (m, fp) = m(tags);
        t.set_for(m, fp)
    }

    #[test]
    fn equal_tags_share_a_set_and_a_killed_set_is_replaced() {
        let registry = TagRegistry::new();
        let mut t = TagIndex::default();
        let a = t.resolve("a", &registry).unwrap();
        let b = t.resolve("b", &registry).unwrap();
        assert_eq!(t.resolve("a", &registry).unwrap(), a);
        assert!(t.resolve("a::b", &registry).is_err());
        let mut gens = vec![0u32; 64];
        let ab = set_for(&mut t, &[(a, false), (b, false)]);
        assert_eq!(set_for(&mut t, &[(a, false), (b, false)]), ab);
        let only_b = set_for(&mut t, &[(b, false)]);
        let inherits_a = set_for(&mut t, &[(a, true)]);
        t.join(ab, 1, 0, &gens);
        t.join(ab, 2, 0, &gens);
        t.join(only_b, 3, 0, &gens);
        t.join(inherits_a, 4, 0, &gens);
        // Slot 2's entry leaves.
        gens[2] += 1;
        t.leave(ab);
        let mut dead = Vec::new();
        t.kill(a, &mut dead);
        dead.sort_unstable();
        assert_eq!(dead, [ab, inherits_a]);
        assert_eq!(t.pop_dead_member(ab, &gens), Some(1));
        assert_eq!(t.pop_dead_member(ab, &gens), None, "slot 2 left before");
        assert_eq!(t.pop_dead_member(only_b, &gens), None, "alive");
        assert_eq!(t.dead(ab), DEAD_TAG);
        assert_eq!(t.dead(inherits_a), DEAD_DEPENDENCY);
        assert_eq!(t.dead(only_b), 0);
        // A new write with tags a and b gets a fresh, live set.
        let fresh = set_for(&mut t, &[(a, false), (b, false)]);
        assert_ne!(fresh, ab);
        assert_eq!(t.dead(fresh), 0);
        // The dead sets are freed when their last members leave.
        gens[1] += 1;
        t.leave(ab);
        assert_eq!(t.dead(ab), 0, "freed");
        gens[4] += 1;
        t.leave(inherits_a);
        assert_eq!(t.sets_of("a").unwrap().1, [fresh]);
        assert_eq!(t.members(only_b, &gens).collect::<Vec<_>>(), [3]);
        t.sweep();
        assert!(t.sets_of("a").is_none(), "no set carries `a` any more");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn member_lists_compact() {
        let registry = TagRegistry::new();
        let mut t = TagIndex::default();
        let a = t.resolve("a", &registry).unwrap();
        let s = set_for(&mut t, &[(a, false)]);
        let mut gens = vec![0u32; 64];
        for slot in 0..40 {
            t.join(s, slot, 0, &gens);
        }
        for g in &mut gens[10..40] {
            *g += 1;
            t.leave(s);
        }
        t.join(s, 12, gens[12], &gens);
        assert_eq!(t.members[s as usize].list.len(), 11);
        assert_eq!(t.members(s, &gens).count(), 11);
    }

    #[test]
    fn a_freed_sets_member_list_is_handed_out_not_dropped() {
        let registry = TagRegistry::new();
        let mut t = TagIndex::default();
        let a = t.resolve("a", &registry).unwrap();
        let s = set_for(&mut t, &[(a, false)]);
        let mut gens = vec![0u32; 1_000];
        for slot in 0..1_000 {
            t.join(s, slot, 0, &gens);
        }
        let mut dead = Vec::new();
        t.kill(a, &mut dead);
        assert!(t.take_retired().is_empty(), "nothing freed yet");
        while let Some(slot) = t.pop_dead_member(s, &gens) {
            gens[slot as usize] += 1;
            t.leave(s);
        }
        assert_eq!(t.dead(s), 0, "freed with its last member");
        let retired = t.take_retired();
        assert_eq!(retired.len(), 1);
        assert!(
            retired[0].capacity() >= 1_000,
            "the list's memory, untouched"
        );
        assert!(t.take_retired().is_empty());
    }
}

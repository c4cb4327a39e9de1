//! A shard's tag index: for each tag used in the shard, the list of its entries' slots.
//!
//! It answers "which entries of this shard carry tag T" (for reclaiming after an invalidation,
//! and for [`crate::Cache::keys_with_tag`]) and holds the shard's reference to each tag's node,
//! so entries need not hold one each. Only the first use of a tag name in a shard goes to the
//! cache-wide registry; later inserts find the list by name in the shard's own map, under the
//! shard lock, with no atomic operation.
//!
//! Lists are append-only with lazy deletion: removing an entry only decrements its lists'
//! live counts, because finding and fixing its position would touch other entries' memory (a
//! cache miss per tag per eviction, which dominated tagged writes). Each member is recorded
//! with the slot's tag generation, which the shard bumps whenever a tagged entry leaves or is
//! replaced in the slot; a member is current exactly when its generation matches the slot's,
//! a check against a dense array of 4 bytes per slot. A list is compacted when it holds more
//! than twice as many members as live ones (amortised O(1) per insert). A list whose last member goes is kept for reuse (tags come and go with the entries
//! of a busy shard, and re-creating a list means a trip to the registry); empty lists are
//! dropped with their node references in a sweep once they outnumber the others.

use crate::collections::HashMap;
use crate::sync::Arc;
use crate::tags::{TagNode, TagRegistry, validate_tag};
use compact_str::CompactString;
use smallvec::SmallVec;

/// An entry's tag memberships: up to three inline, so a typical tagged entry needs no
/// allocation beyond its extras box.
pub(crate) type TagRefs = SmallVec<[TagRef; 3]>;

/// An entry's membership in one tag list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TagRef {
    pub(crate) list: u32,
    /// Carried because a dependency carries it, not given on insert: the entry goes when the
    /// tag is invalidated, but the tag's version floor judges the dependency, not this entry.
    pub(crate) inherited: bool,
    /// For a tag inherited from a dependency stored after this entry: the dependency's stamp
    /// (only invalidations after it concern the dependency this entry now relies on). 0
    /// otherwise.
    pub(crate) since: u64,
}

#[derive(Debug)]
struct TagList {
    /// `(slot, generation)` of members, plus former members not yet compacted away.
    members: Vec<(u32, u32)>,
    live: u32,
}

#[derive(Debug, Default)]
pub(crate) struct TagLists {
    /// Names inline (up to 24 bytes): a lookup compares bytes in the table itself rather than
    /// chasing a pointer per probe.
    by_name: HashMap<CompactString, u32>,
    /// Each list's node, apart from the lists so the read path's lookups stay dense.
    nodes: Vec<Option<Arc<TagNode>>>,
    lists: Vec<Option<TagList>>,
    free: Vec<u32>,
    /// Lists with no live member.
    empty: usize,
}

impl TagLists {
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    fn list(&self, id: u32) -> &TagList {
        self.lists[id as usize].as_ref().expect("live tag list")
    }

    fn list_mut(&mut self, id: u32) -> &mut TagList {
        self.lists[id as usize].as_mut().expect("live tag list")
    }

    /// The node of list `id`.
    pub(crate) fn node(&self, id: u32) -> &TagNode {
        self.nodes[id as usize].as_deref().expect("live tag list")
    }

    /// The list for tag `name`, created (and the tag interned) on first use. Fails for a
    /// malformed name.
    pub(crate) fn resolve(&mut self, name: &str, registry: &TagRegistry) -> Result<u32, String> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        validate_tag(name)?;
        let node = registry.intern(name);
        let list = TagList {
            members: Vec::new(),
            live: 0,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.lists[id as usize] = Some(list);
                self.nodes[id as usize] = Some(node);
                id
            }
            None => {
                self.lists.push(Some(list));
                self.nodes.push(Some(node));
                u32::try_from(self.lists.len() - 1).expect("fewer than 2^32 tags per shard")
            }
        };
        self.by_name.insert(name.into(), id);
        self.empty += 1;
        Ok(id)
    }

    /// Adds `slot` at generation `generation` to list `id`; compacts the list against the
    /// slots' current generations `gens` when former members pile up.
    pub(crate) fn push(&mut self, id: u32, slot: u32, generation: u32, gens: &[u32]) {
        let list = self.list_mut(id);
        list.members.push((slot, generation));
        list.live += 1;
        if list.members.len() > 2 * list.live as usize + 16 {
            list.members.retain(|&(s, g)| gens[s as usize] == g);
        }
        if list.live == 1 {
            self.empty -= 1;
        }
    }

    /// Forgets one member of list `id`.
    pub(crate) fn remove(&mut self, id: u32) {
        let list = self.list_mut(id);
        list.live -= 1;
        if list.live == 0 {
            list.members.clear();
            self.empty += 1;
            if self.empty > 64 && self.empty * 2 > self.by_name.len() {
                self.sweep();
            }
        }
    }

    /// Drops every list without members, with its node reference.
    pub(crate) fn sweep(&mut self) {
        for id in 0..self.lists.len() {
            if self.lists[id].as_ref().is_some_and(|l| l.live == 0) {
                self.lists[id] = None;
                let node = self.nodes[id].take().expect("live tag list");
                self.by_name.remove(node.name());
                self.free.push(id as u32);
            }
        }
        self.empty = 0;
    }

    /// Slots of the current members of tag `name` in this shard.
    pub(crate) fn members<'a>(
        &'a self,
        name: &str,
        gens: &'a [u32],
    ) -> impl Iterator<Item = u32> + 'a {
        let list = self.by_name.get(name).map(|&id| self.list(id));
        list.into_iter()
            .flat_map(|l| l.members.iter())
            .filter(move |&&(s, g)| gens[s as usize] == g)
            .map(|&(s, _)| s)
    }

    /// Every list's node, with the slots of its current members.
    pub(crate) fn iter<'a>(
        &'a self,
        gens: &'a [u32],
    ) -> impl Iterator<Item = (&'a TagNode, impl Iterator<Item = u32> + 'a)> {
        self.lists
            .iter()
            .zip(&self.nodes)
            .filter_map(|(l, n)| Some((l.as_ref()?, n.as_deref()?)))
            .map(move |(l, n)| {
                let members = l
                    .members
                    .iter()
                    .filter(move |&&(s, g)| gens[s as usize] == g)
                    .map(|&(s, _)| s);
                (n, members)
            })
    }

    pub(crate) fn clear(&mut self) {
        self.by_name.clear();
        self.lists.clear();
        self.nodes.clear();
        self.free.clear();
        self.empty = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_count_members_compact_and_are_swept_when_empty() {
        let registry = TagRegistry::new();
        let mut t = TagLists::default();
        let a = t.resolve("a", &registry).unwrap();
        assert_eq!(t.resolve("a", &registry).unwrap(), a);
        assert!(t.resolve("a::b", &registry).is_err());
        let mut gens = vec![0u32; 64];
        for s in 0..40 {
            t.push(a, s, 0, &gens);
        }
        // Thirty entries leave: their slots' generations move on.
        for g in &mut gens[10..40] {
            *g += 1;
            t.remove(a);
        }
        let members = |t: &TagLists, gens: &[u32]| t.members("a", gens).collect::<Vec<u32>>();
        assert_eq!(members(&t, &gens), (0..10).collect::<Vec<u32>>());
        // Slot 12 is reused by a new member.
        t.push(a, 12, gens[12], &gens);
        assert_eq!(members(&t, &gens).len(), 11);
        // That push compacted the list (41 members recorded for 11 live).
        assert_eq!(t.list(a).members.len(), 11);
        for s in (0..10).chain([12]) {
            gens[s as usize] += 1;
            t.remove(a);
        }
        // Kept for reuse until swept.
        assert_eq!(members(&t, &gens), Vec::<u32>::new());
        assert!(t.members("a", &gens).next().is_none());
        t.sweep();
        assert!(t.is_empty());
        let b = t.resolve("b", &registry).unwrap();
        assert_eq!(b, a, "list ids are reused");
        assert_eq!(t.node(b).name(), "b");
    }
}

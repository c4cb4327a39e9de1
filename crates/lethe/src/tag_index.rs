//! A shard's tag index: for each tag used in the shard, the list of its entries' slots.
//!
//! It answers "which entries of this shard carry tag T" (for reclaiming after an invalidation,
//! and for [`crate::Cache::keys_with_tag`]) and holds the shard's reference to each tag's node,
//! so entries need not hold one each. An entry records, per tag, which list it is in and at
//! which position; removal swaps the list's last slot into that position and fixes the moved
//! entry's record, so membership costs O(1) with no hashing on removal. Only the first use of a
//! tag name in a shard goes to the cache-wide registry; later inserts find the list by name in
//! the shard's own map, under the shard lock, with no atomic operation.

use crate::collections::HashMap;
use crate::sync::Arc;
use crate::tags::{TagNode, TagRegistry, validate_tag};

/// An entry's membership in one tag list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TagRef {
    pub(crate) list: u32,
    pub(crate) pos: u32,
    /// Carried because a dependency carries it, not given on insert: the entry goes when the
    /// tag is invalidated, but the tag's version floor judges the dependency, not this entry.
    pub(crate) inherited: bool,
}

#[derive(Debug)]
struct TagList {
    node: Arc<TagNode>,
    slots: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct TagLists {
    by_name: HashMap<Box<str>, u32>,
    lists: Vec<Option<TagList>>,
    free: Vec<u32>,
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

    /// The node of list `id`.
    pub(crate) fn node(&self, id: u32) -> &TagNode {
        &self.list(id).node
    }

    /// The list for tag `name`, created (and the tag interned) on first use. Fails for a
    /// malformed name.
    pub(crate) fn resolve(&mut self, name: &str, registry: &TagRegistry) -> Result<u32, String> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        validate_tag(name)?;
        let list = TagList {
            node: registry.intern(name),
            slots: Vec::new(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.lists[id as usize] = Some(list);
                id
            }
            None => {
                self.lists.push(Some(list));
                u32::try_from(self.lists.len() - 1).expect("fewer than 2^32 tags per shard")
            }
        };
        self.by_name.insert(name.into(), id);
        Ok(id)
    }

    /// Adds `slot` to list `id`.
    pub(crate) fn push(&mut self, id: u32, slot: u32, inherited: bool) -> TagRef {
        let list = self.lists[id as usize].as_mut().expect("live tag list");
        list.slots.push(slot);
        TagRef {
            list: id,
            pos: u32::try_from(list.slots.len() - 1).expect("fewer than 2^32 members"),
            inherited,
        }
    }

    /// Removes a membership. Returns the slot that moved into its position, if any: the caller
    /// must update that entry's [`TagRef`]. An emptied list is dropped with its node reference.
    pub(crate) fn remove(&mut self, r: TagRef) -> Option<u32> {
        let list = self.lists[r.list as usize].as_mut().expect("live tag list");
        list.slots.swap_remove(r.pos as usize);
        if list.slots.is_empty() {
            let list = self.lists[r.list as usize].take().expect("live tag list");
            self.by_name.remove(list.node.name());
            self.free.push(r.list);
            return None;
        }
        list.slots.get(r.pos as usize).copied()
    }

    /// Drops those of `ids` that have no members (resolved for a write that was refused).
    pub(crate) fn release(&mut self, ids: impl Iterator<Item = u32>) {
        for id in ids {
            if self.lists[id as usize]
                .as_ref()
                .is_some_and(|l| l.slots.is_empty())
            {
                let list = self.lists[id as usize].take().expect("live tag list");
                self.by_name.remove(list.node.name());
                self.free.push(id);
            }
        }
    }

    /// Slots of the entries tagged `name` in this shard.
    pub(crate) fn slots_of(&self, name: &str) -> &[u32] {
        match self.by_name.get(name) {
            Some(&id) => &self.list(id).slots,
            None => &[],
        }
    }

    /// Every list: its node and slots.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TagNode, &[u32])> {
        self.lists
            .iter()
            .flatten()
            .map(|l| (&*l.node, l.slots.as_slice()))
    }

    pub(crate) fn clear(&mut self) {
        self.by_name.clear();
        self.lists.clear();
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_reports_the_moved_slot_and_drops_empty_lists() {
        let registry = TagRegistry::new();
        let mut t = TagLists::default();
        let a = t.resolve("a", &registry).unwrap();
        assert_eq!(t.resolve("a", &registry).unwrap(), a);
        assert!(t.resolve("a::b", &registry).is_err());
        let r0 = t.push(a, 10, false);
        let r1 = t.push(a, 11, false);
        let r2 = t.push(a, 12, true);
        assert_eq!((r0.pos, r1.pos, r2.pos), (0, 1, 2));
        assert_eq!(t.remove(r0), Some(12));
        assert_eq!(t.slots_of("a"), &[12, 11]);
        let at = |pos| TagRef {
            list: a,
            pos,
            inherited: false,
        };
        assert_eq!(t.remove(at(1)), None);
        assert_eq!(t.remove(at(0)), None);
        assert!(t.is_empty());
        assert_eq!(t.slots_of("a"), &[] as &[u32]);
        let b = t.resolve("b", &registry).unwrap();
        assert_eq!(b, a, "list ids are reused");
        assert_eq!(t.node(b).name(), "b");
    }
}

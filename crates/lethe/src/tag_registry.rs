//! Tags: named groups of entries, hierarchical on `:`, invalidated in O(1).
//!
//! Every tag name in use has one `TagNode`, interned in the `TagRegistry`; a node points to
//! its parent (`user:42:profile` -> `user:42` -> `user`) and knows its children, so invalidating
//! `user:42` reaches `user:42:*` (its subtree) and not `user:420` (another node). A node records
//! the epoch (a cache-wide counter) of its latest invalidation and its version floor.
//!
//! The entries themselves are reached through each shard's tag index (`tag_index.rs`): an
//! invalidation marks the tag sets carrying any tag of the subtree dead, shard by shard, never
//! visiting the entries; reads see the mark at once, and the memory is reclaimed later in
//! bounded batches. The epochs serve leases: a fill is refused if a tag it carries (or an
//! ancestor) was invalidated after its lease was issued.
//!
//! Nodes live as long as an entry, a child node or a floor needs them. Unused nodes are swept in
//! batches, amortised over node creation; the invalidation epoch of a swept node is folded into
//! a small table indexed by the name's hash, so a node re-created later still remembers that it
//! was invalidated (what a lease issued before the invalidation must see). A hash collision there
//! can only make a lease fill be refused, never accept a stale one.

use crate::collections::HashMap;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, RwLock};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Weak;

/// Separator of tag levels.
pub const TAG_SEPARATOR: char = ':';

/// Size of the table remembering invalidations of swept nodes.
const RETIRED_SLOTS: usize = 4096;
const REGISTRY_SHARDS: usize = 16;

/// One tag name in use.
pub(crate) struct TagNode {
    name: Box<str>,
    parent: Option<Arc<TagNode>>,
    /// Epoch of the latest invalidation of this tag (0: never).
    invalidated_at: AtomicU64,
    /// Entries under this tag whose version is below the floor are stale (0: no floor).
    floor: AtomicU64,
    children: Mutex<Vec<Weak<TagNode>>>,
}

impl fmt::Debug for TagNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagNode")
            .field("name", &self.name)
            .field("invalidated_at", &self.invalidated_at)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl TagNode {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The latest invalidation epoch of this tag or any ancestor.
    pub(crate) fn latest_invalidation(&self) -> u64 {
        let mut node = self;
        let mut latest = 0;
        loop {
            latest = latest.max(node.invalidated_at.load(Ordering::Acquire));
            match &node.parent {
                Some(p) => node = p,
                None => return latest,
            }
        }
    }

    /// The highest floor of this tag or any ancestor.
    pub(crate) fn floor(&self) -> u64 {
        let mut node = self;
        let mut floor = 0;
        loop {
            floor = floor.max(node.floor.load(Ordering::Acquire));
            match &node.parent {
                Some(p) => node = p,
                None => return floor,
            }
        }
    }

    /// This node and every live descendant.
    pub(crate) fn subtree(self: &Arc<Self>) -> Vec<Arc<TagNode>> {
        let mut out = vec![self.clone()];
        let mut i = 0;
        while i < out.len() {
            let children: Vec<Arc<TagNode>> = out[i]
                .children
                .lock()
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            out.extend(children);
            i += 1;
        }
        out
    }

    pub(crate) fn has_children(&self) -> bool {
        self.children.lock().iter().any(|c| c.strong_count() > 0)
    }
}

/// Checks a tag name: non-empty levels separated by `:`.
pub(crate) fn validate_tag(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty tag".into());
    }
    if name.split(TAG_SEPARATOR).any(str::is_empty) {
        return Err(format!(
            "tag `{name}` has an empty level (leading, trailing or doubled `{TAG_SEPARATOR}`)"
        ));
    }
    Ok(())
}

fn parent_name(name: &str) -> Option<&str> {
    name.rfind(TAG_SEPARATOR).map(|i| &name[..i])
}

/// One shard of the registry: name -> node.
type NodeMap = RwLock<HashMap<Box<str>, Arc<TagNode>>>;

/// Every tag node of one cache.
pub(crate) struct TagRegistry {
    maps: Box<[NodeMap]>,
    hasher: foldhash::fast::FixedState,
    /// Invalidation epochs of swept nodes, by name hash (max).
    retired: Box<[AtomicU64]>,
    created_since_sweep: AtomicUsize,
    live: AtomicUsize,
    /// Whether any tag has a version floor; until one does, writes skip the floor walk.
    any_floor: AtomicBool,
}

impl fmt::Debug for TagRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagRegistry")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl TagRegistry {
    pub(crate) fn new() -> Self {
        TagRegistry {
            maps: (0..REGISTRY_SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x1e7e),
            retired: (0..RETIRED_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            created_since_sweep: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            any_floor: AtomicBool::new(false),
        }
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn map(&self, hash: u64) -> &NodeMap {
        &self.maps[(hash >> 58) as usize % REGISTRY_SHARDS]
    }

    fn retired_slot(&self, hash: u64) -> &AtomicU64 {
        &self.retired[hash as usize % RETIRED_SLOTS]
    }

    /// Tags currently known (live nodes).
    pub(crate) fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The node for `name`, if it exists.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<TagNode>> {
        let h = self.hash(name);
        self.map(h).read().get(name).cloned()
    }

    /// The node for `name`, creating it (and its ancestors) if needed. `name` must be valid.
    pub(crate) fn intern(&self, name: &str) -> Arc<TagNode> {
        let h = self.hash(name);
        if let Some(n) = self.map(h).read().get(name) {
            return n.clone();
        }
        // Ancestors first, outside this map's lock: they may live in the same map.
        let parent = parent_name(name).map(|p| self.intern(p));
        let node = {
            let mut map = self.map(h).write();
            if let Some(n) = map.get(name) {
                return n.clone();
            }
            let node = Arc::new(TagNode {
                name: name.into(),
                parent: parent.clone(),
                invalidated_at: AtomicU64::new(self.retired_slot(h).load(Ordering::Acquire)),
                floor: AtomicU64::new(0),
                children: Mutex::new(Vec::new()),
            });
            map.insert(name.into(), node.clone());
            node
        };
        if let Some(p) = &parent {
            p.children.lock().push(Arc::downgrade(&node));
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        let created = self.created_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        if created > 4096 && created > self.len() / 2 {
            self.sweep();
        }
        node
    }

    /// Marks `name` (and so its subtree) invalidated at `epoch`. Returns the node, if the tag is
    /// in use; an unused tag is remembered in the retired table for leases.
    pub(crate) fn invalidate(&self, name: &str, epoch: u64) -> Option<Arc<TagNode>> {
        let h = self.hash(name);
        self.retired_slot(h).fetch_max(epoch, Ordering::AcqRel);
        let node = self.get(name)?;
        node.invalidated_at.fetch_max(epoch, Ordering::AcqRel);
        Some(node)
    }

    /// Sets a version floor on `name` (raising only). Returns the node.
    pub(crate) fn set_floor(&self, name: &str, floor: u64) -> Arc<TagNode> {
        let node = self.intern(name);
        node.floor.fetch_max(floor, Ordering::AcqRel);
        self.any_floor.store(true, Ordering::Release);
        node
    }

    /// Whether any tag has a version floor.
    pub(crate) fn any_floor(&self) -> bool {
        self.any_floor.load(Ordering::Acquire)
    }

    /// The latest invalidation epoch that applies to `name` (itself or an ancestor), including
    /// swept nodes. Used to validate lease fills.
    pub(crate) fn latest_invalidation(&self, name: &str) -> u64 {
        let mut latest = 0;
        let mut cur = Some(name);
        while let Some(n) = cur {
            let h = self.hash(n);
            latest = latest.max(self.retired_slot(h).load(Ordering::Acquire));
            if let Some(node) = self.map(h).read().get(n) {
                latest = latest.max(node.latest_invalidation());
                break;
            }
            cur = parent_name(n);
        }
        latest
    }

    /// Drops nodes nothing refers to (no entry, no child, no floor). Amortised: runs after as
    /// many creations as there are live nodes, and from `run_pending_tasks`.
    pub(crate) fn sweep(&self) {
        self.created_since_sweep.store(0, Ordering::Relaxed);
        // Leaves go first; their parents become collectable on the next pass.
        loop {
            let mut swept = 0;
            for map in self.maps.iter() {
                let mut map = map.write();
                map.retain(|name, node| {
                    let unused = Arc::strong_count(node) == 1
                        && node.floor.load(Ordering::Acquire) == 0
                        && !node.has_children();
                    if unused {
                        let h = self.hasher.hash_one(&**name);
                        self.retired_slot(h).fetch_max(
                            node.invalidated_at.load(Ordering::Acquire),
                            Ordering::AcqRel,
                        );
                        swept += 1;
                    }
                    !unused
                });
            }
            if swept == 0 {
                break;
            }
            self.live.fetch_sub(swept, Ordering::Relaxed);
        }
        for map in self.maps.iter() {
            for node in map.read().values() {
                node.children.lock().retain(|c| c.strong_count() > 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_shares_ancestors_and_separates_siblings() {
        let r = TagRegistry::new();
        let profile = r.intern("user:42:profile");
        let other = r.intern("user:420");
        assert_eq!(r.len(), 4); // user, user:42, user:42:profile, user:420
        r.invalidate("user:42", 10);
        assert_eq!(profile.latest_invalidation(), 10);
        assert_eq!(other.latest_invalidation(), 0);
        r.set_floor("user", 5);
        assert_eq!(other.floor(), 5);
        assert_eq!(profile.floor(), 5);
        assert!(r.any_floor());
    }

    #[test]
    fn swept_nodes_remember_their_invalidation() {
        let r = TagRegistry::new();
        drop(r.intern("a:b"));
        r.invalidate("a:b", 7);
        r.sweep();
        assert_eq!(r.len(), 0);
        assert!(r.latest_invalidation("a:b") >= 7);
        assert!(r.latest_invalidation("a:b:c") >= 7);
        let again = r.intern("a:b");
        assert!(again.latest_invalidation() >= 7);
    }

    #[test]
    fn tag_names_are_checked() {
        assert!(validate_tag("user:1").is_ok());
        assert!(validate_tag("").is_err());
        assert!(validate_tag("user::1").is_err());
        assert!(validate_tag("user:").is_err());
    }
}

//! The ordered structure of a large sorted set: an order-statistic treap over `(score, member)`
//! with subtree sizes, plus a hash index from member to node.
//!
//! Redis keeps large sorted sets in a skiplist with span counts next to a dict; what the
//! commands need from it is O(log n) insert, remove, rank (ZRANK), select by rank (ZRANGE with
//! indices) and the first element past a bound (ZRANGEBYSCORE, ZRANGEBYLEX), plus O(1) score
//! lookup (ZSCORE). A treap with subtree sizes gives the first four in expected O(log n) with
//! no unsafe code: nodes live in one vector and link by index, so the only allocations are the
//! vector, the index table and the members' own bytes. The index stores node numbers only and
//! hashes the member through the node, so a member's bytes are held once.
//!
//! Priorities are random, so no insertion order (sorted, reversed, adversarial members) can
//! make the tree deep. Removed nodes' slots are reused; when most slots are free the tree is
//! rebuilt compactly in O(n), so memory follows the set down as it empties.

use super::small::{SmallBytes, alloc_size};
use hashbrown::HashTable;
use std::cmp::Ordering;
use std::hash::BuildHasher;

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    member: SmallBytes,
    score: f64,
    prio: u32,
    left: u32,
    right: u32,
    /// Nodes in the subtree rooted here, this one included.
    size: u32,
}

/// Orders elements as Redis's sorted sets do: by score, then by member bytes.
#[inline]
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a_member.cmp(b_member))
}

/// A large sorted set's elements, ordered, with ranks.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Heap bytes the members own.
    strings: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            index: HashTable::new(),
            hasher: Default::default(),
            strings: 0,
        }
    }
}

impl Tree {
    /// Elements held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no element is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Heap bytes held, as the allocator counts them (O(1)).
    pub fn heap_size(&self) -> usize {
        let buckets = if self.index.capacity() == 0 {
            0
        } else {
            (self.index.capacity() * 8 / 7).max(4).next_power_of_two()
        };
        alloc_size(self.nodes.capacity() * std::mem::size_of::<Node>())
            + alloc_size(self.free.capacity() * 4)
            + alloc_size(buckets * 5 + 16)
            + self.strings
    }

    /// Bytes an element costs besides its member's, with room for a doubling: a node and an
    /// index slot (what converting a listpack's elements into a tree costs at most).
    pub const SLOT: usize = 2 * (std::mem::size_of::<Node>() + 5);

    /// At most how many bytes adding `n` elements can add besides their members': the node
    /// vector and the index growing if they are full (neither grows while there is room).
    pub fn growth_bound(&self, n: usize) -> usize {
        let nodes = if self.free.len() >= n || self.nodes.len() + n <= self.nodes.capacity() {
            0
        } else {
            2 * (self.nodes.len() + n) * std::mem::size_of::<Node>()
        };
        let index = if self.len() + n <= self.index.capacity() {
            0
        } else {
            2 * (self.len() + n) * 5 + 64
        };
        nodes + index
    }

    #[inline]
    fn size(&self, n: u32) -> u32 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].size
        }
    }

    #[inline]
    fn fix(&mut self, n: u32) {
        let (l, r) = (self.nodes[n as usize].left, self.nodes[n as usize].right);
        self.nodes[n as usize].size = 1 + self.size(l) + self.size(r);
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index
            .find(self.hash(member), |&i| &*nodes[i as usize].member == member)
            .copied()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|i| self.nodes[i as usize].score)
    }

    /// Whether `n`'s element sorts before `(score, member)`.
    #[inline]
    fn before(&self, n: u32, score: f64, member: &[u8]) -> bool {
        let node = &self.nodes[n as usize];
        compare(node.score, &node.member, score, member) == Ordering::Less
    }

    /// Splits the subtree `t` into the elements before `(score, member)` and the rest.
    fn split(&mut self, t: u32, score: f64, member: &[u8]) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if self.before(t, score, member) {
            let (l, r) = self.split(self.nodes[t as usize].right, score, member);
            self.nodes[t as usize].right = l;
            self.fix(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.nodes[t as usize].left, score, member);
            self.nodes[t as usize].left = r;
            self.fix(t);
            (l, t)
        }
    }

    /// Joins two subtrees, every element of `a` before every element of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.fix(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.fix(b);
            b
        }
    }

    fn insert_node(&mut self, t: u32, n: u32) -> u32 {
        if t == NIL {
            return n;
        }
        if self.nodes[n as usize].prio > self.nodes[t as usize].prio {
            let (score, member) = {
                let node = &self.nodes[n as usize];
                (node.score, node.member.clone())
            };
            let (l, r) = self.split(t, score, &member);
            self.nodes[n as usize].left = l;
            self.nodes[n as usize].right = r;
            self.fix(n);
            return n;
        }
        let t_first = {
            let node = &self.nodes[n as usize];
            self.before(t, node.score, &node.member)
        };
        if t_first {
            let r = self.insert_node(self.nodes[t as usize].right, n);
            self.nodes[t as usize].right = r;
        } else {
            let l = self.insert_node(self.nodes[t as usize].left, n);
            self.nodes[t as usize].left = l;
        }
        self.fix(t);
        t
    }

    fn remove_node(&mut self, t: u32, n: u32) -> u32 {
        if t == n {
            let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
            return self.merge(l, r);
        }
        let (score, member) = {
            let node = &self.nodes[n as usize];
            (node.score, node.member.clone())
        };
        if self.before(t, score, &member) {
            let r = self.remove_node(self.nodes[t as usize].right, n);
            self.nodes[t as usize].right = r;
        } else {
            let l = self.remove_node(self.nodes[t as usize].left, n);
            self.nodes[t as usize].left = l;
        }
        self.fix(t);
        t
    }

    /// Adds `member` (not present) with `score`.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        debug_assert!(self.find(member).is_none());
        let member = SmallBytes::new(member);
        self.strings += member.heap_size();
        let node = Node {
            member,
            score,
            prio: fastrand::u32(..),
            left: NIL,
            right: NIL,
            size: 1,
        };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let hash = self.hash(&self.nodes[n as usize].member);
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.index
            .insert_unique(hash, n, |&i| hasher.hash_one(&*nodes[i as usize].member));
        self.root = self.insert_node(self.root, n);
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let hash = self.hash(member);
        let nodes = &self.nodes;
        let entry = self
            .index
            .find_entry(hash, |&i| &*nodes[i as usize].member == member)
            .ok()?;
        let (n, _) = entry.remove();
        self.root = self.remove_node(self.root, n);
        let node = &mut self.nodes[n as usize];
        let score = node.score;
        self.strings -= node.member.heap_size();
        node.member = SmallBytes::new(b"");
        // A free slot has no subtree: what [`Tree::scan`] skips.
        node.size = 0;
        self.free.push(n);
        self.compact();
        Some(score)
    }

    /// Moves the live nodes down into fewer slots once most are free. Nodes keep their
    /// relative slot order, so a [`Tree::scan`] in progress (which walks slots downward) still
    /// reaches every node it has not passed.
    fn compact(&mut self) {
        if self.nodes.len() <= 64 || self.len() * 4 >= self.nodes.len() {
            return;
        }
        let free: Vec<bool> = self.nodes.iter().map(|n| n.size == 0).collect();
        let mut new_of = vec![NIL; self.nodes.len()];
        let mut next = 0u32;
        for (i, is_free) in free.iter().enumerate() {
            if !is_free {
                new_of[i] = next;
                next += 1;
            }
        }
        let remap = |n: u32| if n == NIL { NIL } else { new_of[n as usize] };
        let old = std::mem::take(&mut self.nodes);
        let mut nodes = Vec::with_capacity(self.len());
        for (i, mut node) in old.into_iter().enumerate() {
            if !free[i] {
                node.left = remap(node.left);
                node.right = remap(node.right);
                nodes.push(node);
            }
        }
        self.root = remap(self.root);
        self.nodes = nodes;
        self.free = Vec::new();
        let mut index = HashTable::with_capacity(self.nodes.len());
        for (n, node) in self.nodes.iter().enumerate() {
            let hash = self.hasher.hash_one(&*node.member);
            let nodes = &self.nodes;
            let hasher = &self.hasher;
            index.insert_unique(hash, n as u32, |&i| {
                hasher.hash_one(&*nodes[i as usize].member)
            });
        }
        self.index = index;
    }

    /// One step of ZSCAN from `cursor` (0 to start): the elements of about `count` slots and
    /// the next cursor (0 when done). Slots are walked from the top down, and neither a
    /// removal (which frees a slot in place) nor [`Tree::compact`] (which moves nodes down,
    /// keeping their order) can move an unvisited element above the cursor: every element
    /// present for the whole scan is returned at least once.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(&[u8], f64)>) {
        let top = if cursor == 0 {
            self.nodes.len()
        } else {
            usize::try_from(cursor)
                .unwrap_or(usize::MAX)
                .min(self.nodes.len())
        };
        let bottom = top.saturating_sub(count.max(1));
        let page = (bottom..top)
            .rev()
            .filter(|&i| self.nodes[i].size != 0)
            .map(|i| (&*self.nodes[i].member, self.nodes[i].score))
            .collect();
        (bottom as u64, page)
    }

    /// A tree of `items`, already in order and distinct, built in O(n): a Cartesian tree over
    /// fresh random priorities, so it is shaped as if the items had been inserted one by one.
    pub fn from_sorted(items: Vec<(SmallBytes, f64)>) -> Tree {
        let mut tree = Tree {
            nodes: Vec::with_capacity(items.len()),
            ..Tree::default()
        };
        tree.index.reserve(items.len(), |_| 0);
        let mut spine: Vec<u32> = Vec::new();
        for (member, score) in items {
            tree.strings += member.heap_size();
            let n = tree.nodes.len() as u32;
            let prio = fastrand::u32(..);
            tree.nodes.push(Node {
                member,
                score,
                prio,
                left: NIL,
                right: NIL,
                size: 1,
            });
            let mut last = NIL;
            while let Some(&top) = spine.last() {
                if tree.nodes[top as usize].prio >= prio {
                    break;
                }
                spine.pop();
                last = top;
            }
            tree.nodes[n as usize].left = last;
            if let Some(&top) = spine.last() {
                tree.nodes[top as usize].right = n;
            }
            spine.push(n);
        }
        tree.root = spine.first().copied().unwrap_or(NIL);
        // Sizes bottom-up: children always come before parents in a post-order walk.
        if tree.root != NIL {
            let mut order = Vec::with_capacity(tree.nodes.len());
            let mut stack = vec![tree.root];
            while let Some(n) = stack.pop() {
                order.push(n);
                let node = &tree.nodes[n as usize];
                for c in [node.left, node.right] {
                    if c != NIL {
                        stack.push(c);
                    }
                }
            }
            for &n in order.iter().rev() {
                tree.fix(n);
            }
        }
        for n in 0..tree.nodes.len() as u32 {
            let (nodes, hasher) = (&tree.nodes, &tree.hasher);
            let hash = hasher.hash_one(&*nodes[n as usize].member);
            tree.index
                .insert_unique(hash, n, |&i| hasher.hash_one(&*nodes[i as usize].member));
        }
        tree
    }

    /// Elements that sort before `(score, member)`: the rank it has or would have.
    pub fn rank_of(&self, score: f64, member: &[u8]) -> usize {
        self.count_while(|s, m| compare(s, m, score, member) == Ordering::Less)
    }

    /// How many elements, from the first, satisfy `pred` (which must hold for a prefix of the
    /// order and fail for the rest).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut t = self.root;
        let mut count = 0;
        while t != NIL {
            let node = &self.nodes[t as usize];
            if pred(node.score, &node.member) {
                count += self.size(node.left) as usize + 1;
                t = node.right;
            } else {
                t = node.left;
            }
        }
        count
    }

    /// The rank of `member`, if present.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.rank_of(score, member))
    }

    /// Elements in order from rank `start` (ascending), or from rank `start` down to the first
    /// when `rev`; empty when `start` is past the end.
    pub fn iter_from(&self, start: usize, rev: bool) -> TreeIter<'_> {
        let mut stack = Vec::new();
        let mut t = self.root;
        let mut r = start;
        if start < self.len() {
            while t != NIL {
                let node = &self.nodes[t as usize];
                let ls = self.size(node.left) as usize;
                match r.cmp(&ls) {
                    Ordering::Less => {
                        if !rev {
                            stack.push(t);
                        }
                        t = node.left;
                    }
                    Ordering::Equal => {
                        stack.push(t);
                        break;
                    }
                    Ordering::Greater => {
                        if rev {
                            stack.push(t);
                        }
                        r -= ls + 1;
                        t = node.right;
                    }
                }
            }
        }
        TreeIter {
            tree: self,
            stack,
            rev,
        }
    }
}

/// Walks a [`Tree`] in order (or in reverse) with an explicit stack: O(1) amortized a step.
#[derive(Debug)]
pub struct TreeIter<'a> {
    tree: &'a Tree,
    stack: Vec<u32>,
    rev: bool,
}

impl<'a> Iterator for TreeIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        let t = self.stack.pop()?;
        let nodes = &self.tree.nodes;
        let node = &nodes[t as usize];
        let mut c = if self.rev { node.left } else { node.right };
        while c != NIL {
            self.stack.push(c);
            let child = &nodes[c as usize];
            c = if self.rev { child.right } else { child.left };
        }
        Some((&node.member, node.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    /// The model: (score bits made orderable, member) -> (), plus member -> score.
    #[derive(Default)]
    struct Model {
        order: BTreeMap<(i64, Vec<u8>), f64>,
        scores: HashMap<Vec<u8>, f64>,
    }

    /// An integer with the same order as the (non-NaN) float.
    fn key(s: f64) -> i64 {
        let s = if s == 0.0 { 0.0 } else { s };
        let b = s.to_bits() as i64;
        if b < 0 { b ^ i64::MAX } else { b }
    }

    impl Model {
        fn insert(&mut self, m: &[u8], s: f64) {
            if let Some(old) = self.scores.insert(m.to_vec(), s) {
                self.order.remove(&(key(old), m.to_vec()));
            }
            self.order.insert((key(s), m.to_vec()), s);
        }
        fn remove(&mut self, m: &[u8]) -> Option<f64> {
            let old = self.scores.remove(m)?;
            self.order.remove(&(key(old), m.to_vec()));
            Some(old)
        }
        fn items(&self) -> Vec<(Vec<u8>, f64)> {
            self.order
                .iter()
                .map(|((_, m), s)| (m.clone(), *s))
                .collect()
        }
    }

    fn check(tree: &Tree, model: &Model) {
        let items = model.items();
        assert_eq!(tree.len(), items.len());
        let got: Vec<(Vec<u8>, f64)> = tree
            .iter_from(0, false)
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        assert_eq!(got, items);
        for (i, (m, s)) in items.iter().enumerate() {
            assert_eq!(tree.rank(m), Some(i));
            assert_eq!(tree.score(m), Some(*s));
            let from: Vec<_> = tree.iter_from(i, false).map(|(m, _)| m.to_vec()).collect();
            assert_eq!(from.len(), items.len() - i);
            let back: Vec<_> = tree.iter_from(i, true).map(|(m, _)| m.to_vec()).collect();
            let want: Vec<_> = items[..=i].iter().rev().map(|(m, _)| m.clone()).collect();
            assert_eq!(back, want);
        }
        assert_eq!(tree.iter_from(items.len(), false).count(), 0);
        assert_eq!(tree.iter_from(items.len(), true).count(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Insert(m, s)),
            1 => any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        #[test]
        fn the_tree_agrees_with_an_ordered_map(ops in proptest::collection::vec(op(), 1..400)) {
            let mut tree = Tree::default();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Insert(m, s) => {
                        let m = format!("m{}", m % 64).into_bytes();
                        // Few distinct scores: ties are ordered by member.
                        let s = f64::from(s / 16);
                        tree.remove(&m);
                        tree.insert(&m, s);
                        model.insert(&m, s);
                    }
                    Op::Remove(m) => {
                        let m = format!("m{}", m % 64).into_bytes();
                        prop_assert_eq!(tree.remove(&m), model.remove(&m));
                    }
                }
            }
            check(&tree, &model);
            let bound = 0.0;
            let below = model.items().iter().filter(|(_, s)| *s < bound).count();
            prop_assert_eq!(tree.count_while(|s, _| s < bound), below);
        }
    }

    #[test]
    fn sorted_insertions_stay_shallow_and_memory_follows_removals() {
        let mut tree = Tree::default();
        for i in 0..20_000 {
            tree.insert(format!("{i:08}").as_bytes(), f64::from(i));
        }
        let full = tree.heap_size();
        assert_eq!(tree.rank(b"00012345"), Some(12345));
        for i in 0..19_990 {
            assert_eq!(
                tree.remove(format!("{i:08}").as_bytes()),
                Some(f64::from(i))
            );
        }
        assert_eq!(tree.len(), 10);
        assert!(tree.heap_size() < full / 100, "{}", tree.heap_size());
        let mut model = Model::default();
        for i in 19_990..20_000 {
            model.insert(format!("{i:08}").as_bytes(), f64::from(i));
        }
        check(&tree, &model);
    }

    #[test]
    fn a_scan_survives_removals_and_compaction() {
        let mut tree = Tree::default();
        for i in 0..1000 {
            tree.insert(format!("k{i}").as_bytes(), f64::from(i % 7));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut removed = 0;
        loop {
            let (next, page) = tree.scan(cursor, 10);
            let page: Vec<Vec<u8>> = page.into_iter().map(|(m, _)| m.to_vec()).collect();
            // Remove what was just seen and more besides: compaction happens along the way.
            for m in &page {
                if removed < 900 && tree.remove(m).is_some() {
                    removed += 1;
                }
            }
            seen.extend(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert!(tree.nodes.len() < 1000);
        for (m, _) in tree.iter_from(0, false) {
            assert!(seen.contains(m), "{:?} missed", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn bulk_builds_match_insertions() {
        let items: Vec<(SmallBytes, f64)> = (0..1000)
            .map(|i| {
                (
                    SmallBytes::new(format!("x{i:04}").as_bytes()),
                    f64::from(i / 3),
                )
            })
            .collect();
        let tree = Tree::from_sorted(items.clone());
        let mut model = Model::default();
        for (m, s) in &items {
            model.insert(m, *s);
        }
        check(&tree, &model);
    }
}

//! List values: sequences of byte strings with cheap pushes and pops at both ends, changed in
//! place.
//!
//! As Redis's quicklist, a list is a deque of nodes, each a compact buffer of at most
//! [`NODE_BYTES`] (Redis's default `list-max-listpack-size -2`, 8 KiB) holding its elements back
//! to back: a few bytes of framing per element instead of a pointer and an allocation each. A
//! list that fits one node is what Redis 7.2+ calls the `listpack` encoding; past it, the
//! `quicklist` encoding, and back to `listpack` once it shrinks to one node of at most half the
//! limit (Redis's hysteresis, so a list on the edge does not flip at every push).
//!
//! Each element is framed `[len][bytes][len reversed]`: the length as LEB128 before the bytes
//! and again after them written backwards, so a node is walked from either end (RPOP, LINDEX
//! with a negative index, LRANGE near the tail) without scanning from its front. The heap a list
//! owns is kept up to date on every change, so weighing it is O(1).

use super::small::alloc_size;
use std::collections::VecDeque;

/// The largest node, in bytes (Redis's `list-max-listpack-size -2`).
pub const NODE_BYTES: usize = 8192;

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

/// Bytes an element of `len` bytes takes in a node.
fn framed_len(len: usize) -> usize {
    2 * varint_len(len) + len
}

/// The LEB128 length prefix of an element of `len` bytes, and how many bytes of it are used.
fn prefix(mut len: usize) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut i = 0;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out[i] = b;
            return (out, i + 1);
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// `bytes` framed: `[len][bytes][len reversed]`, as an iterator of exactly its length.
fn frame(bytes: &[u8]) -> impl ExactSizeIterator<Item = u8> + '_ {
    let (p, n) = prefix(bytes.len());
    let before = p.into_iter().take(n);
    let after = p.into_iter().take(n).rev();
    Framed {
        inner: before.chain(bytes.iter().copied()).chain(after),
        left: 2 * n + bytes.len(),
    }
}

/// An iterator that knows its length (a chain of `take`s does not say it).
struct Framed<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator<Item = u8>> Iterator for Framed<I> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = self.inner.next()?;
        self.left -= 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator<Item = u8>> ExactSizeIterator for Framed<I> {}

/// One node: framed elements back to back.
#[derive(Clone, Debug, Default)]
struct Node {
    buf: Vec<u8>,
    count: u32,
}

/// An element's place in a node: where its frame starts, its bytes, and where its frame ends.
#[derive(Clone, Copy, Debug)]
struct At {
    start: usize,
    data: usize,
    len: usize,
    end: usize,
}

impl Node {
    fn heap(&self) -> usize {
        alloc_size(self.buf.capacity())
    }

    /// The element whose frame starts at `start`.
    fn at(&self, start: usize) -> At {
        let (mut len, mut shift, mut p) = (0usize, 0, start);
        loop {
            let b = self.buf[p];
            p += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        At {
            start,
            data: p,
            len,
            end: p + len + (p - start),
        }
    }

    /// The element whose frame ends at `end`.
    fn before(&self, end: usize) -> At {
        let (mut len, mut shift, mut p) = (0usize, 0, end);
        loop {
            p -= 1;
            let b = self.buf[p];
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let prefix = end - p;
        let data = p - len;
        At {
            start: data - prefix,
            data,
            len,
            end,
        }
    }

    fn bytes(&self, at: At) -> &[u8] {
        &self.buf[at.data..at.data + at.len]
    }

    /// The `i`th element, walking from the nearer end.
    fn nth(&self, i: usize) -> At {
        let count = self.count as usize;
        if i < count / 2 {
            let mut at = self.at(0);
            for _ in 0..i {
                at = self.at(at.end);
            }
            at
        } else {
            let mut at = self.before(self.buf.len());
            for _ in 0..count - 1 - i {
                at = self.before(at.start);
            }
            at
        }
    }

    fn splice(&mut self, range: std::ops::Range<usize>, with: impl ExactSizeIterator<Item = u8>) {
        let grow = with.len().saturating_sub(range.len());
        if self.buf.len() + grow > self.buf.capacity() {
            self.buf.reserve_exact(grow);
        }
        self.buf.splice(range, with);
        if self.buf.capacity() > self.buf.len() + 256 {
            self.buf.shrink_to_fit();
        }
    }

    fn elements(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        let mut v = Vec::with_capacity(self.count as usize);
        let mut p = 0;
        while p < self.buf.len() {
            let at = self.at(p);
            v.push(self.bytes(at));
            p = at.end;
        }
        v.into_iter()
    }
}

/// A list value.
#[derive(Clone, Debug, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    /// Heap bytes the nodes' buffers own.
    heap: usize,
    /// Whether the list is a single small node (the `listpack` encoding).
    quick: bool,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no element is left (Redis removes such a key).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `OBJECT ENCODING`'s name for the representation.
    pub fn encoding(&self) -> &'static str {
        if self.quick { "quicklist" } else { "listpack" }
    }

    /// Heap bytes held, as the allocator counts them (O(1)).
    pub fn heap_size(&self) -> usize {
        self.heap + alloc_size(self.nodes.capacity() * std::mem::size_of::<Node>())
    }

    /// Runs `f` on node `i`, keeping the heap count right.
    fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        let node = &mut self.nodes[i];
        let before = node.heap();
        let r = f(node);
        self.heap = self.heap + node.heap() - before;
        r
    }

    /// After a change that may have emptied nodes anywhere: drops them, then [`Self::settle`].
    fn drop_empty(&mut self) {
        if self.nodes.iter().any(|n| n.count == 0) {
            let mut freed = 0;
            self.nodes.retain(|n| {
                if n.count == 0 {
                    freed += n.heap();
                }
                n.count > 0
            });
            self.heap -= freed;
        }
        self.settle();
    }

    /// After any change: drops an emptied end node and settles the encoding (O(1)).
    fn settle(&mut self) {
        for front in [true, false] {
            let end = if front {
                self.nodes.front()
            } else {
                self.nodes.back()
            };
            if end.is_some_and(|n| n.count == 0) {
                let n = if front {
                    self.nodes.pop_front()
                } else {
                    self.nodes.pop_back()
                };
                self.heap -= n.map_or(0, |n| n.heap());
            }
        }
        if self.nodes.len() > 1 || self.nodes.front().is_some_and(|n| n.buf.len() > NODE_BYTES) {
            self.quick = true;
        } else if self
            .nodes
            .front()
            .is_none_or(|n| n.buf.len() <= NODE_BYTES / 2)
        {
            self.quick = false;
        }
        if self.nodes.capacity() > 16 && self.nodes.len() * 4 < self.nodes.capacity() {
            self.nodes.shrink_to_fit();
        }
    }

    fn fits(node: &Node, add: usize) -> bool {
        node.count == 0 || node.buf.len() + add <= NODE_BYTES
    }

    /// At most how many heap bytes adding elements of `lens` bytes can add: their frames with
    /// the allocator's rounding, a new node's, and the node deque's growth.
    pub fn growth_bound(&self, lens: impl Iterator<Item = usize>) -> usize {
        let framed: usize = lens.map(framed_len).sum();
        framed + framed / 4 + NODE_BYTES + 2 * std::mem::size_of::<Node>() * (self.nodes.len() + 1)
    }

    /// Adds an empty node at one end. The first node gets a deque of exactly one slot (most
    /// lists are one node); more grow it as usual.
    fn new_node(&mut self, front: bool) {
        if self.nodes.capacity() == 0 {
            self.nodes.reserve_exact(1);
        }
        if front {
            self.nodes.push_front(Node::default());
        } else {
            self.nodes.push_back(Node::default());
        }
    }

    /// Appends `bytes` at the tail.
    pub fn push_back(&mut self, bytes: &[u8]) {
        let size = framed_len(bytes.len());
        if !self.nodes.back().is_some_and(|n| Self::fits(n, size)) {
            self.new_node(false);
        }
        let last = self.nodes.len() - 1;
        self.with_node(last, |n| {
            let end = n.buf.len();
            n.splice(end..end, frame(bytes));
            n.count += 1;
        });
        self.len += 1;
        self.settle();
    }

    /// Prepends `bytes` at the head.
    pub fn push_front(&mut self, bytes: &[u8]) {
        let size = framed_len(bytes.len());
        if !self.nodes.front().is_some_and(|n| Self::fits(n, size)) {
            self.new_node(true);
        }
        self.with_node(0, |n| {
            n.splice(0..0, frame(bytes));
            n.count += 1;
        });
        self.len += 1;
        self.settle();
    }

    /// Removes and returns the head.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        if self.len == 0 {
            return None;
        }
        let v = self.with_node(0, |n| {
            let at = n.at(0);
            let v = n.bytes(at).to_vec();
            n.splice(0..at.end, std::iter::empty());
            n.count -= 1;
            v
        });
        self.len -= 1;
        self.settle();
        Some(v)
    }

    /// Removes and returns the tail.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        if self.len == 0 {
            return None;
        }
        let last = self.nodes.len() - 1;
        let v = self.with_node(last, |n| {
            let at = n.before(n.buf.len());
            let v = n.bytes(at).to_vec();
            n.buf.truncate(at.start);
            if n.buf.capacity() > n.buf.len() + 256 {
                n.buf.shrink_to_fit();
            }
            n.count -= 1;
            v
        });
        self.len -= 1;
        self.settle();
        Some(v)
    }

    /// The node holding element `i` (below `len`) and its index there, walking from the
    /// nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rest = i;
            for (n, node) in self.nodes.iter().enumerate() {
                if rest < node.count as usize {
                    return (n, rest);
                }
                rest -= node.count as usize;
            }
        } else {
            let mut from_end = self.len - 1 - i;
            for (n, node) in self.nodes.iter().enumerate().rev() {
                if from_end < node.count as usize {
                    return (n, node.count as usize - 1 - from_end);
                }
                from_end -= node.count as usize;
            }
        }
        unreachable!("index {i} below length {}", self.len)
    }

    /// Element `i` (below [`Self::len`]).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.len).then(|| {
            let (n, k) = self.locate(i);
            let node = &self.nodes[n];
            node.bytes(node.nth(k))
        })
    }

    /// Splits node `n` in two halves when it has grown past the limit.
    fn split_if_big(&mut self, n: usize) {
        let node = &self.nodes[n];
        if node.buf.len() <= NODE_BYTES || node.count < 2 {
            return;
        }
        let half = node.count as usize / 2;
        let cut = node.nth(half).start;
        let tail = Node {
            buf: node.buf[cut..].to_vec(),
            count: node.count - half as u32,
        };
        self.heap += tail.heap();
        self.with_node(n, |node| {
            node.buf.truncate(cut);
            node.buf.shrink_to_fit();
            node.count = half as u32;
        });
        self.nodes.insert(n + 1, tail);
    }

    /// Replaces element `i` (below [`Self::len`]).
    pub fn set(&mut self, i: usize, bytes: &[u8]) {
        let (n, k) = self.locate(i);
        self.with_node(n, |node| {
            let at = node.nth(k);
            node.splice(at.start..at.end, frame(bytes));
        });
        self.split_if_big(n);
        self.settle();
    }

    /// Inserts `bytes` so that it becomes element `i` (at most [`Self::len`]).
    pub fn insert(&mut self, i: usize, bytes: &[u8]) {
        if i == 0 {
            return self.push_front(bytes);
        }
        if i >= self.len {
            return self.push_back(bytes);
        }
        let (n, k) = self.locate(i);
        self.with_node(n, |node| {
            let at = node.nth(k).start;
            node.splice(at..at, frame(bytes));
            node.count += 1;
        });
        self.len += 1;
        self.split_if_big(n);
        self.settle();
    }

    /// Removes `count` elements from element `start` on (clamped to the list).
    pub fn remove_range(&mut self, start: usize, count: usize) {
        let count = count.min(self.len.saturating_sub(start));
        if count == 0 {
            return;
        }
        let (mut n, mut k) = self.locate(start);
        let mut left = count;
        while left > 0 {
            let in_node = self.nodes[n].count as usize - k;
            let take = left.min(in_node);
            self.with_node(n, |node| {
                if take == node.count as usize {
                    node.buf = Vec::new();
                } else {
                    let from = node.nth(k).start;
                    let to = if k + take == node.count as usize {
                        node.buf.len()
                    } else {
                        node.nth(k + take).start
                    };
                    node.splice(from..to, std::iter::empty());
                }
                node.count -= take as u32;
            });
            left -= take;
            n += 1;
            k = 0;
        }
        self.len -= count;
        self.drop_empty();
    }

    /// Removes up to `limit` elements equal to `value` (0: all), from the tail backwards if
    /// `from_tail`; returns how many went.
    pub fn remove_matching(&mut self, value: &[u8], limit: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let order: Vec<usize> = if from_tail {
            (0..self.nodes.len()).rev().collect()
        } else {
            (0..self.nodes.len()).collect()
        };
        for n in order {
            if limit != 0 && removed == limit {
                break;
            }
            let node = &self.nodes[n];
            let mut elems: Vec<&[u8]> = node.elements().collect();
            if !elems.contains(&value) {
                continue;
            }
            let mut drop = vec![false; elems.len()];
            let idx: Box<dyn Iterator<Item = usize>> = if from_tail {
                Box::new((0..elems.len()).rev())
            } else {
                Box::new(0..elems.len())
            };
            for i in idx {
                if limit != 0 && removed == limit {
                    break;
                }
                if elems[i] == value {
                    drop[i] = true;
                    removed += 1;
                }
            }
            let mut keep = drop.iter();
            elems.retain(|_| !*keep.next().unwrap());
            let mut buf = Vec::with_capacity(elems.iter().map(|e| framed_len(e.len())).sum());
            for e in &elems {
                buf.extend(frame(e));
            }
            let count = elems.len() as u32;
            let gone = drop.iter().filter(|d| **d).count();
            self.with_node(n, |node| {
                node.buf = buf;
                node.count = count;
            });
            self.len -= gone;
        }
        self.drop_empty();
        removed
    }

    /// The elements from `start` on, head to tail.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (first, skip) = if start < self.len {
            self.locate(start)
        } else {
            (self.nodes.len(), 0)
        };
        self.nodes
            .iter()
            .skip(first)
            .enumerate()
            .flat_map(move |(j, node)| node.elements().skip(if j == 0 { skip } else { 0 }))
    }

    /// The elements, tail to head.
    pub fn iter_rev(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.nodes.iter().rev().flat_map(|n| n.elements().rev())
    }

    /// The elements, head to tail.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.iter_from(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    /// The heap count kept incrementally equals a recount.
    fn check(l: &List) {
        let recount: usize = l.nodes.iter().map(Node::heap).sum();
        assert_eq!(l.heap, recount);
        assert_eq!(
            l.len,
            l.nodes.iter().map(|n| n.count as usize).sum::<usize>()
        );
        assert_eq!(l.iter().count(), l.len);
        let mut back: Vec<_> = l.iter_rev().map(<[u8]>::to_vec).collect();
        back.reverse();
        assert_eq!(back, all(l));
    }

    #[test]
    fn pushes_pops_and_edits_at_both_ends_and_inside() {
        let mut l = List::new();
        l.push_back(b"b");
        l.push_front(b"a");
        l.push_back(&[b'x'; 300]);
        l.push_back(b"");
        check(&l);
        assert_eq!(l.get(0), Some(&b"a"[..]));
        assert_eq!(l.get(2), Some(&[b'x'; 300][..]));
        assert_eq!(l.get(3), Some(&b""[..]));
        assert_eq!(l.get(4), None);
        l.set(1, b"bee");
        l.insert(1, b"ins");
        assert_eq!(
            all(&l),
            vec![
                b"a".to_vec(),
                b"ins".to_vec(),
                b"bee".to_vec(),
                vec![b'x'; 300],
                vec![]
            ]
        );
        assert_eq!(l.pop_back(), Some(vec![]));
        assert_eq!(l.pop_front(), Some(b"a".to_vec()));
        l.remove_range(2, 1);
        assert_eq!(all(&l), vec![b"ins".to_vec(), b"bee".to_vec()]);
        check(&l);
        assert_eq!(l.encoding(), "listpack");
    }

    #[test]
    fn a_list_past_8k_is_a_quicklist_until_it_shrinks_to_half() {
        let mut l = List::new();
        // 100-byte elements frame to 102 bytes: 80 fit a node.
        for i in 0..200u8 {
            l.push_back(&[i; 100]);
        }
        assert_eq!(l.encoding(), "quicklist");
        assert!(l.nodes.len() >= 3);
        check(&l);
        for i in 0..200u8 {
            assert_eq!(l.get(i as usize), Some(&[i; 100][..]));
        }
        // Down to one node of more than half the limit: still a quicklist.
        l.remove_range(0, 140);
        assert_eq!(l.len(), 60);
        assert_eq!(l.encoding(), "quicklist");
        l.remove_range(0, 30);
        assert_eq!(l.nodes.len(), 1);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(l.get(0), Some(&[170; 100][..]));
        check(&l);
        // One element bigger than a node.
        let mut l = List::new();
        l.push_back(&[1; 9000]);
        assert_eq!(l.encoding(), "quicklist");
    }

    #[test]
    fn inserts_split_full_nodes_and_removals_by_value_work_from_either_end() {
        let mut l = List::new();
        for i in 0..1000 {
            l.push_back(if i % 3 == 0 { b"x" } else { b"yy" });
        }
        for i in 0..100 {
            l.insert(500 + i, &[b'z'; 50]);
        }
        check(&l);
        assert_eq!(l.len(), 1100);
        assert_eq!(l.get(550), Some(&[b'z'; 50][..]));
        assert_eq!(l.remove_matching(b"x", 2, true), 2);
        assert_eq!(l.get(l.len() - 1), Some(&b"yy"[..]));
        let xs = l.iter().filter(|e| *e == b"x").count();
        assert_eq!(l.remove_matching(b"x", 0, false), xs);
        assert!(l.iter().all(|e| e != b"x"));
        check(&l);
        let full = l.heap_size();
        l.remove_range(0, l.len());
        assert!(l.is_empty());
        assert!(l.heap_size() < full / 10);
        check(&l);
    }
}

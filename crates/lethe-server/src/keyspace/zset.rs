//! Sorted set values: distinct members, each with a score, ordered by score then member.
//!
//! Two representations, as Redis keeps sorted sets:
//! - `listpack`: small sets (at most [`MAX_LISTPACK_ENTRIES`] members, none longer than
//!   [`MAX_LISTPACK_VALUE`] bytes) as member/score pairs in order in one [`Listpack`] buffer,
//!   searched linearly; a score is its 8 bytes (Redis stores it as text or an integer, a detail
//!   only memory shows);
//! - `skiplist`: anything larger, the order-statistic [`Tree`] (Redis uses a skiplist; the name
//!   is what `OBJECT ENCODING` reports).
//!
//! A set only converts upward while it is changed in place (as Redis 7.0); a set built whole
//! (ZUNIONSTORE, ZRANGESTORE, ...) takes the small form when it fits, as Redis's do. The heap
//! a set owns is kept up to date on every change, so weighing is O(1).

use super::listpack::{Listpack, Pos};
use super::small::{SmallBytes, alloc_size};
use super::zset_tree::{Tree, compare};
use std::cmp::Ordering;

/// Members a listpack sorted set keeps at most (Redis's `zset-max-listpack-entries`).
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Longest member a listpack sorted set keeps (Redis's `zset-max-listpack-value`).
pub const MAX_LISTPACK_VALUE: usize = 64;

#[derive(Clone, Debug)]
enum Repr {
    Listpack(Listpack),
    /// Boxed: a tree is large, and small sets should not pay for it.
    Tree(Box<Tree>),
}

/// A sorted set value.
#[derive(Clone, Debug)]
pub struct Zset {
    repr: Repr,
}

impl Default for Zset {
    fn default() -> Self {
        Zset::new()
    }
}

fn score_of(bytes: &[u8]) -> f64 {
    f64::from_le_bytes(bytes.try_into().expect("a listpack score is 8 bytes"))
}

/// The pairs of a listpack: (member's position, member, score).
fn pairs(lp: &Listpack) -> impl Iterator<Item = (Pos, &[u8], f64)> + '_ {
    let mut it = lp.positions();
    std::iter::from_fn(move || {
        let (pos, member) = it.next()?;
        let (_, score) = it.next()?;
        Some((pos, member, score_of(score)))
    })
}

/// A score as a listpack keeps it: Redis's listpack stores `-0` as the integer 0, so a small
/// set reads it back as `0` (a skiplist keeps the sign).
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 { 0.0 } else { score }
}

/// Whether a set of `len` members, the longest `widest` bytes, is kept as a listpack.
fn fits_listpack(len: usize, widest: usize) -> bool {
    len <= MAX_LISTPACK_ENTRIES && widest <= MAX_LISTPACK_VALUE
}

/// Elements in order, from a rank, either way.
pub type Iter<'a> = Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a>;

impl Zset {
    /// An empty sorted set (a listpack until it grows).
    pub fn new() -> Zset {
        Zset {
            repr: Repr::Listpack(Listpack::new()),
        }
    }

    /// A set of `items` (distinct members, in any order), in the form a new set of its size
    /// takes.
    pub fn from_items(mut items: Vec<(SmallBytes, f64)>) -> Zset {
        items.sort_by(|a, b| compare(a.1, &a.0, b.1, &b.0));
        let widest = items.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        if fits_listpack(items.len(), widest) {
            let mut lp = Listpack::new();
            for (m, s) in &items {
                lp.push(m);
                lp.push(&listpack_score(*s).to_le_bytes());
            }
            Zset {
                repr: Repr::Listpack(lp),
            }
        } else {
            Zset {
                repr: Repr::Tree(Box::new(Tree::from_sorted(items))),
            }
        }
    }

    /// Members held.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len() / 2,
            Repr::Tree(t) => t.len(),
        }
    }

    /// Whether no member is left (Redis removes such a key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`'s name for the representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Tree(_) => "skiplist",
        }
    }

    /// Heap bytes held, as the allocator counts them (O(1)).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.heap_size(),
            Repr::Tree(t) => alloc_size(std::mem::size_of::<Tree>()) + t.heap_size(),
        }
    }

    /// At most how many heap bytes adding `members` can add (whether or not they are new):
    /// their bytes, a conversion to a tree, or the tree's vectors growing if they are full.
    pub fn growth_bound<'a>(&self, members: impl ExactSizeIterator<Item = &'a [u8]>) -> usize {
        let n = members.len();
        let strings: usize = members.map(|m| alloc_size(m.len()) + 16).sum();
        let slots = match &self.repr {
            Repr::Tree(t) => t.growth_bound(n),
            // Growing in place, or converting every member into a tree.
            Repr::Listpack(_) => (self.len() + n) * (Tree::SLOT + MAX_LISTPACK_VALUE),
        };
        strings + slots + 256
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(lp) => pairs(lp).find(|(_, m, _)| *m == member).map(|(_, _, s)| s),
            Repr::Tree(t) => t.score(member),
        }
    }

    /// Gives `member` `score`, adding it if new; returns its old score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.remove(member);
        if let Repr::Listpack(lp) = &self.repr {
            if !fits_listpack(lp.len() / 2 + 1, member.len()) {
                self.convert_to_tree();
            }
        }
        match &mut self.repr {
            Repr::Listpack(lp) => {
                let score = listpack_score(score);
                let at = pairs(lp)
                    .find(|(_, m, s)| compare(*s, m, score, member) == Ordering::Greater)
                    .map(|(pos, _, _)| pos);
                match at {
                    Some(pos) => {
                        lp.insert_before(pos, &score.to_le_bytes());
                        lp.insert_before(pos, member);
                    }
                    None => {
                        lp.push(member);
                        lp.push(&score.to_le_bytes());
                    }
                }
            }
            Repr::Tree(t) => t.insert(member, score),
        }
        old
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(lp) => {
                let (pos, _, score) = pairs(lp).find(|(_, m, _)| *m == member)?;
                lp.remove(pos, 2);
                Some(score)
            }
            Repr::Tree(t) => t.remove(member),
        }
    }

    /// The rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Listpack(lp) => pairs(lp).position(|(_, m, _)| m == member),
            Repr::Tree(t) => t.rank(member),
        }
    }

    /// How many elements, from the first, satisfy `pred` (true for a prefix of the order).
    pub fn count_while(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => pairs(lp).take_while(|(_, m, s)| pred(*s, m)).count(),
            Repr::Tree(t) => t.count_while(pred),
        }
    }

    /// The elements from rank `start` on (ascending), or from rank `start` down to the first
    /// when `rev`; empty when `start` is past the end.
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let it = pairs(lp).map(|(_, m, s)| (m, s));
                if rev {
                    // A listpack holds at most 128 pairs: reversing a copy of the references
                    // costs what the walk does.
                    let mut v: Vec<_> = it.take(start.saturating_add(1)).collect();
                    if start >= self.len() {
                        v.clear();
                    }
                    v.reverse();
                    Box::new(v.into_iter())
                } else {
                    Box::new(it.skip(start))
                }
            }
            Repr::Tree(t) => Box::new(t.iter_from(start, rev)),
        }
    }

    /// The elements in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// The element at rank `i`.
    pub fn get(&self, i: usize) -> Option<(&[u8], f64)> {
        self.iter_from(i, false).next()
    }

    /// One step of ZSCAN from `cursor` (0 to start): small sets come whole, as in Redis; a
    /// tree is walked as [`Tree::scan`] says.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<(&[u8], f64)>) {
        match &self.repr {
            Repr::Listpack(_) => (0, self.iter().collect()),
            Repr::Tree(t) => t.scan(cursor, count),
        }
    }

    fn convert_to_tree(&mut self) {
        if let Repr::Listpack(lp) = &self.repr {
            let items = pairs(lp).map(|(_, m, s)| (SmallBytes::new(m), s)).collect();
            self.repr = Repr::Tree(Box::new(Tree::from_sorted(items)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(z: &Zset) -> Vec<(Vec<u8>, f64)> {
        z.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    #[test]
    fn small_sets_stay_ordered_and_convert_past_the_thresholds() {
        let mut z = Zset::new();
        assert_eq!(z.insert(b"b", 2.0), None);
        assert_eq!(z.insert(b"a", 2.0), None);
        assert_eq!(z.insert(b"c", 1.0), None);
        assert_eq!(z.insert(b"c", 3.0), Some(1.0));
        assert_eq!(
            members(&z),
            vec![
                (b"a".to_vec(), 2.0),
                (b"b".to_vec(), 2.0),
                (b"c".to_vec(), 3.0)
            ]
        );
        assert_eq!(z.rank(b"b"), Some(1));
        assert_eq!(z.encoding(), "listpack");
        let back: Vec<_> = z.iter_from(1, true).map(|(m, _)| m.to_vec()).collect();
        assert_eq!(back, vec![b"b".to_vec(), b"a".to_vec()]);
        assert_eq!(z.iter_from(3, true).count(), 0);
        assert_eq!(z.count_while(|s, _| s < 3.0), 2);
        z.insert(&[b'x'; 65], 0.0);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"b"), Some(2));

        let mut z = Zset::new();
        for i in 0..128 {
            z.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"m128", 128.0);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.len(), 129);
        assert_eq!(z.get(128), Some((&b"m128"[..], 128.0)));
        // Removing does not convert back.
        z.remove(b"m128");
        assert_eq!(z.encoding(), "skiplist");
        assert!(z.heap_size() > 0);
    }

    #[test]
    fn growth_bounds_cover_what_adding_costs() {
        let mut z = Zset::new();
        for i in 0..5000 {
            let m = format!("member:{i:040}");
            let before = z.heap_size();
            let bound = z.growth_bound([m.as_bytes()].into_iter());
            z.insert(m.as_bytes(), f64::from(i));
            assert!(
                z.heap_size() <= before + bound,
                "{i}: {} > {before} + {bound}",
                z.heap_size()
            );
        }
        // A large set with room to spare is not charged for a doubling.
        let bound = z.growth_bound([&b"x"[..]].into_iter());
        assert!(bound < z.heap_size() / 4, "{bound} vs {}", z.heap_size());
    }

    #[test]
    fn built_sets_take_the_form_that_fits() {
        let items = |n: usize| {
            (0..n)
                .map(|i| (SmallBytes::new(format!("m{i}").as_bytes()), -(i as f64)))
                .collect::<Vec<_>>()
        };
        let z = Zset::from_items(items(128));
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(z.get(0), Some((&b"m127"[..], -127.0)));
        let z = Zset::from_items(items(129));
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.get(0), Some((&b"m128"[..], -128.0)));
    }
}

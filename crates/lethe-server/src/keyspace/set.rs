//! Set values: unordered collections of distinct byte strings, changed in place.
//!
//! Three representations, as Redis 7.2+ keeps sets:
//! - `intset`: every member is the canonical form of an integer (at most
//!   [`MAX_INTSET_ENTRIES`]): a sorted vector of integers, 8 bytes a member and no hashing;
//! - `listpack`: small sets (at most [`MAX_LISTPACK_ENTRIES`] members, none longer than
//!   [`MAX_LISTPACK_VALUE`] bytes) in one [`Listpack`] buffer, searched linearly;
//! - `hashtable`: anything larger, an insertion-ordered hash set whose dense entry vector gives
//!   SPOP and SRANDMEMBER an O(1) random member and SSCAN a cursor that survives rehashing.
//!
//! A set only ever converts upward (intset to listpack or hashtable, listpack to hashtable), as
//! Redis does. The heap a set owns is kept up to date on every change, so weighing is O(1).

use super::intset::IntSet;
use super::listpack::Listpack;
use super::small::{SmallBytes, alloc_size};
use super::value::canonical_int;
use indexmap::IndexSet;
use std::borrow::Cow;

/// Integer members an intset keeps at most (Redis's `set-max-intset-entries`).
pub const MAX_INTSET_ENTRIES: usize = 512;
/// Members a listpack set keeps at most (Redis's `set-max-listpack-entries`).
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Longest member a listpack set keeps (Redis's `set-max-listpack-value`).
pub const MAX_LISTPACK_VALUE: usize = 64;

type Table = IndexSet<SmallBytes, foldhash::fast::RandomState>;

/// Bytes per table entry besides its string's heap: the cached hash and the inline string.
const ENTRY: usize = 8 + std::mem::size_of::<SmallBytes>();

#[derive(Clone, Debug)]
enum Repr {
    Ints(IntSet),
    Listpack(Listpack),
    /// Boxed: a table is large, and small sets should not pay for it.
    Table(Box<Table>),
}

/// A set value.
#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
    /// Heap bytes the strings of a table own.
    strings: usize,
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

/// How many decimal digits (with sign) `n` takes.
fn digits(n: i64) -> usize {
    itoa::Buffer::new().format(n).len()
}

impl Set {
    /// An empty set (an intset until a member says otherwise).
    pub fn new() -> Set {
        Set {
            repr: Repr::Ints(IntSet::default()),
            strings: 0,
        }
    }

    /// A set of `members`.
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Set {
        let mut set = Set::new();
        for m in members {
            set.insert(m);
        }
        set
    }

    /// Members held.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Listpack(lp) => lp.len(),
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether no member is left (Redis removes such a key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`'s name for the representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Heap bytes held, as the allocator counts them (O(1)).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.heap_size(),
            Repr::Listpack(lp) => lp.heap_size(),
            Repr::Table(t) => {
                let cap = t.capacity();
                let buckets = (cap * 8 / 7).max(1).next_power_of_two();
                alloc_size(std::mem::size_of::<Table>())
                    + alloc_size(cap * ENTRY)
                    + alloc_size(buckets * 9 + 16)
                    + self.strings
            }
        }
    }

    /// At most how many heap bytes adding `members` can add (whether or not they are new):
    /// their strings, a conversion to a table, and the table doubling if it is full.
    pub fn growth_bound<'a>(&self, members: impl ExactSizeIterator<Item = &'a [u8]>) -> usize {
        let n = members.len();
        let strings: usize = members.map(|m| alloc_size(m.len()) + 2).sum();
        let slot = ENTRY + 9;
        let table = match &self.repr {
            Repr::Table(t) if t.len() + n <= t.capacity() => 0,
            Repr::Table(t) => 2 * (t.len() + n) * slot + 64,
            // Converting copies every member into a table.
            _ => 2 * (self.len() + n) * (slot + MAX_LISTPACK_VALUE) + 64,
        };
        strings + table
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => canonical_int(member).is_some_and(|n| v.contains(n)),
            Repr::Listpack(lp) => lp.iter().any(|m| m == member),
            Repr::Table(t) => t.contains(member),
        }
    }

    /// Adds `member`; true if it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => {
                if let Some(n) = canonical_int(member) {
                    let Err(at) = v.search(n) else {
                        return false;
                    };
                    v.insert(at, n);
                    if v.len() > MAX_INTSET_ENTRIES {
                        self.convert_to_table();
                    }
                    return true;
                }
                // A non-integer: a listpack if everything fits one, else a table.
                let widest = v.bounds().map_or(0, |(lo, hi)| digits(lo).max(digits(hi)));
                if v.len() < MAX_LISTPACK_ENTRIES
                    && member.len() <= MAX_LISTPACK_VALUE
                    && widest <= MAX_LISTPACK_VALUE
                {
                    self.convert_to_listpack();
                } else {
                    self.convert_to_table();
                }
                self.insert(member)
            }
            Repr::Listpack(lp) => {
                if lp.iter().any(|m| m == member) {
                    return false;
                }
                if lp.len() >= MAX_LISTPACK_ENTRIES || member.len() > MAX_LISTPACK_VALUE {
                    self.convert_to_table();
                    return self.insert(member);
                }
                lp.push(member);
                true
            }
            Repr::Table(t) => {
                if t.contains(member) {
                    return false;
                }
                let m = SmallBytes::new(member);
                self.strings += m.heap_size();
                t.insert(m);
                true
            }
        }
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => {
                let Some(at) = canonical_int(member).and_then(|n| v.search(n).ok()) else {
                    return false;
                };
                v.remove(at);
                true
            }
            Repr::Listpack(lp) => match lp.positions().find(|(_, m)| *m == member) {
                Some((pos, _)) => {
                    lp.remove(pos, 1);
                    true
                }
                None => false,
            },
            Repr::Table(t) => match t.swap_remove_full(member) {
                Some((_, m)) => {
                    self.strings -= m.heap_size();
                    self.shrink();
                    true
                }
                None => false,
            },
        }
    }

    /// Gives memory back as a table empties, as Redis's dict resizes down.
    fn shrink(&mut self) {
        if let Repr::Table(t) = &mut self.repr {
            if t.capacity() > 64 && t.len() * 8 < t.capacity() {
                t.shrink_to_fit();
            }
        }
    }

    /// The member at `index` (below [`Self::len`]) in the representation's order.
    pub fn get_index(&self, index: usize) -> Option<Cow<'_, [u8]>> {
        match &self.repr {
            Repr::Ints(v) => v
                .get(index)
                .map(|n| Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec())),
            Repr::Listpack(lp) => lp.iter().nth(index).map(Cow::Borrowed),
            Repr::Table(t) => t.get_index(index).map(|m| Cow::Borrowed(&**m)),
        }
    }

    /// A member chosen uniformly at random.
    pub fn random(&self) -> Option<Cow<'_, [u8]>> {
        match self.len() {
            0 => None,
            n => self.get_index(fastrand::usize(..n)),
        }
    }

    /// Removes and returns a member chosen uniformly at random.
    pub fn pop_random(&mut self) -> Option<Vec<u8>> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let i = fastrand::usize(..n);
        let member = match &mut self.repr {
            Repr::Ints(v) => {
                let m = v.remove(i);
                itoa::Buffer::new().format(m).as_bytes().to_vec()
            }
            Repr::Listpack(lp) => {
                let (pos, m) = lp.positions().nth(i).expect("index below len");
                let m = m.to_vec();
                lp.remove(pos, 1);
                m
            }
            Repr::Table(t) => {
                let m = t.swap_remove_index(i).expect("index below len");
                self.strings -= m.heap_size();
                self.shrink();
                m.to_vec()
            }
        };
        Some(member)
    }

    /// The members, in the representation's order (ascending for an intset, insertion order
    /// for a listpack, arbitrary for a table).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'_, [u8]>> + '_> {
        match &self.repr {
            Repr::Ints(v) => Box::new(
                v.iter()
                    .map(|n| Cow::Owned(itoa::Buffer::new().format(n).as_bytes().to_vec())),
            ),
            Repr::Listpack(lp) => Box::new(lp.iter().map(Cow::Borrowed)),
            Repr::Table(t) => Box::new(t.iter().map(|m| Cow::Borrowed(&**m))),
        }
    }

    /// One step of SSCAN from `cursor` (0 to start): up to about `count` members and the next
    /// cursor (0 when done). Small sets come whole in one step, as in Redis. A table is walked
    /// from its last entry down, so that a removal (which moves the last entry into the hole)
    /// can only bring an unvisited member below the cursor, never hide one above it: every
    /// member present for the whole scan is returned at least once.
    pub fn scan(&self, cursor: u64, count: usize) -> (u64, Vec<Cow<'_, [u8]>>) {
        let Repr::Table(t) = &self.repr else {
            return (0, self.iter().collect());
        };
        let top = if cursor == 0 {
            t.len()
        } else {
            usize::try_from(cursor).unwrap_or(usize::MAX).min(t.len())
        };
        let bottom = top.saturating_sub(count.max(1));
        let page = (bottom..top)
            .rev()
            .filter_map(|i| t.get_index(i).map(|m| Cow::Borrowed(&**m)))
            .collect();
        (bottom as u64, page)
    }

    fn convert_to_listpack(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut lp = Listpack::new();
            let mut buf = itoa::Buffer::new();
            for n in v.iter() {
                lp.push(buf.format(n).as_bytes());
            }
            self.repr = Repr::Listpack(lp);
        }
    }

    fn convert_to_table(&mut self) {
        let mut t = Table::with_capacity_and_hasher(self.len() + 1, Default::default());
        let mut strings = 0;
        for m in self.iter() {
            let m = SmallBytes::new(&m);
            strings += m.heap_size();
            t.insert(m);
        }
        self.repr = Repr::Table(Box::new(t));
        self.strings = strings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<_> = s.iter().map(|m| m.into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_set_is_small_until_it_needs_a_table() {
        assert!(
            std::mem::size_of::<Set>() <= 48,
            "{}",
            std::mem::size_of::<Set>()
        );
    }

    #[test]
    fn integers_stay_an_intset_until_a_string_or_the_513th() {
        let mut s = Set::new();
        assert!(s.insert(b"3"));
        assert!(s.insert(b"-1"));
        assert!(!s.insert(b"3"));
        assert_eq!(s.encoding(), "intset");
        // Ascending, as Redis's intset replies.
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![&b"-1"[..], b"3"]);
        // "03" is not an integer's canonical form: a string member.
        assert!(!s.contains(b"03"));
        assert!(s.insert(b"03"));
        assert_eq!(s.encoding(), "listpack");
        assert!(s.contains(b"3") && s.contains(b"03") && s.contains(b"-1"));

        let mut s = Set::new();
        for i in 0..512 {
            s.insert(i.to_string().as_bytes());
        }
        assert_eq!(s.encoding(), "intset");
        s.insert(b"512");
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 513);
        assert!(s.contains(b"0") && s.contains(b"512"));
    }

    #[test]
    fn a_big_intset_meeting_a_string_becomes_a_table() {
        let mut s = Set::new();
        for i in 0..200 {
            s.insert(i.to_string().as_bytes());
        }
        s.insert(b"x");
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 201);
    }

    #[test]
    fn listpacks_convert_past_128_members_or_a_long_one() {
        let mut s = Set::new();
        for i in 0..128 {
            s.insert(format!("m{i}").as_bytes());
        }
        assert_eq!(s.encoding(), "listpack");
        s.insert(b"m129");
        assert_eq!(s.encoding(), "hashtable");
        let mut s = Set::from_members([&b"a"[..]]);
        assert_eq!(s.encoding(), "listpack");
        s.insert(&[b'x'; 65]);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(sorted(&s), vec![b"a".to_vec(), vec![b'x'; 65]]);
    }

    #[test]
    fn removals_pops_and_memory_follow_every_representation() {
        for members in [
            (0..100).map(|i| i.to_string()).collect::<Vec<_>>(),
            (0..100).map(|i| format!("m{i}")).collect(),
            (0..1000).map(|i| format!("member:{i:030}")).collect(),
        ] {
            let mut s = Set::from_members(members.iter().map(|m| m.as_bytes()));
            let full = s.heap_size();
            assert!(full > 0);
            assert!(s.remove(members[0].as_bytes()));
            assert!(!s.remove(members[0].as_bytes()));
            let mut popped = 0;
            while let Some(m) = s.pop_random() {
                assert!(members.iter().any(|x| x.as_bytes() == m));
                popped += 1;
            }
            assert_eq!(popped, members.len() - 1);
            assert!(s.heap_size() < full / 4 + 64, "{}", s.heap_size());
        }
    }

    #[test]
    fn a_table_scan_survives_removals_behind_and_ahead() {
        let members: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
        let mut s = Set::from_members(members.iter().map(|m| m.as_bytes()));
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut removed = Vec::new();
        loop {
            let (next, page) = s.scan(cursor, 10);
            seen.extend(page.into_iter().map(|m| m.into_owned()));
            // Remove a member seen and one not yet seen, every step.
            let victim = seen.iter().next().cloned().unwrap();
            if s.remove(&victim) {
                removed.push(victim);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for m in s.iter() {
            assert!(
                seen.contains(&*m),
                "{:?} missed",
                String::from_utf8_lossy(&m)
            );
        }
    }
}

//! Hash values: field -> value maps, changed in place.
//!
//! Small hashes (at most [`MAX_LISTPACK_ENTRIES`] fields, none longer than
//! [`MAX_LISTPACK_VALUE`] bytes, Redis 7's `hash-max-listpack-*` defaults) are a [`Listpack`] of
//! alternating fields and values, in insertion order as Redis replies for them; past either
//! threshold the hash converts, once and for good, to a hash table (Redis's `hashtable`
//! encoding; its reply order is arbitrary, as Redis's is). The memory a hash holds is kept up to
//! date on every change, so weighing it is O(1) however large it grows.

use super::listpack::{Listpack, Pos};
use super::small::{SmallBytes, alloc_size};
use hashbrown::HashMap;

/// Fields a hash keeps in a listpack at most (Redis's `hash-max-listpack-entries`).
pub const MAX_LISTPACK_ENTRIES: usize = 128;
/// Longest field or value a listpack hash keeps (Redis's `hash-max-listpack-value`).
pub const MAX_LISTPACK_VALUE: usize = 64;

type Table = HashMap<SmallBytes, SmallBytes, foldhash::fast::RandomState>;

/// Bytes a table slot costs besides the heap its strings own: field and value inline, and a
/// control byte, at the table's typical load.
const TABLE_SLOT: usize = 2 * std::mem::size_of::<SmallBytes>() * 8 / 7 + 2;

#[derive(Clone, Debug)]
enum Repr {
    Listpack(Listpack),
    Table(Table),
}

/// A hash value.
#[derive(Clone, Debug)]
pub struct Hash {
    repr: Repr,
    /// Heap bytes the strings of a table own (the listpack knows its own size).
    strings: usize,
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty hash (a listpack).
    pub fn new() -> Hash {
        Hash {
            repr: Repr::Listpack(Listpack::new()),
            strings: 0,
        }
    }

    /// Fields held.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len() / 2,
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether no field is left (Redis removes such a key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`'s name for the representation.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Heap bytes held, as the allocator counts them.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.heap_size(),
            Repr::Table(t) => alloc_size(t.capacity() * TABLE_SLOT) + self.strings,
        }
    }

    /// An upper bound of the heap bytes setting `pairs` could add: their strings, and a table
    /// that doubles (or the conversion from a listpack) when they do not fit its capacity.
    pub fn growth_bound<'a>(
        &self,
        pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> usize {
        let n = pairs.len();
        let strings: usize = pairs
            .map(|(f, v)| alloc_size(f.len()) + alloc_size(v.len()) + 4)
            .sum();
        let table = match &self.repr {
            Repr::Table(t) if t.len() + n <= t.capacity() => 0,
            Repr::Table(t) => alloc_size(2 * (t.len() + n) * TABLE_SLOT) + 64,
            // Converting copies every field and value into a table.
            Repr::Listpack(lp) => {
                alloc_size(2 * (self.len() + n) * TABLE_SLOT) + lp.heap_size() + 64
            }
        };
        strings + table
    }

    fn find(lp: &Listpack, field: &[u8]) -> Option<Pos> {
        let mut it = lp.positions();
        while let Some((pos, f)) = it.next() {
            if f == field {
                return Some(pos);
            }
            it.next();
        }
        None
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(lp) => {
                Self::find(lp, field).map(|p| lp.get(lp.next(p).expect("value follows field")))
            }
            Repr::Table(t) => t.get(field).map(|v| &**v),
        }
    }

    /// Whether `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Repr::Listpack(lp) = &self.repr {
            let fits = field.len() <= MAX_LISTPACK_VALUE && value.len() <= MAX_LISTPACK_VALUE;
            let grows = !fits || (lp.len() / 2 >= MAX_LISTPACK_ENTRIES && !self.contains(field));
            if grows {
                self.convert();
            }
        }
        match &mut self.repr {
            Repr::Listpack(lp) => match Self::find(lp, field) {
                Some(p) => {
                    let v = lp.next(p).expect("value follows field");
                    lp.replace(v, value);
                    false
                }
                None => {
                    lp.push(field);
                    lp.push(value);
                    true
                }
            },
            Repr::Table(t) => {
                let value = SmallBytes::new(value);
                self.strings += value.heap_size();
                match t.get_mut(field) {
                    Some(old) => {
                        self.strings -= old.heap_size();
                        *old = value;
                        false
                    }
                    None => {
                        let field = SmallBytes::new(field);
                        self.strings += field.heap_size();
                        t.insert(field, value);
                        true
                    }
                }
            }
        }
    }

    /// Removes `field`; true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(lp) => match Self::find(lp, field) {
                Some(p) => {
                    lp.remove(p, 2);
                    true
                }
                None => false,
            },
            Repr::Table(t) => match t.remove_entry(field) {
                Some((f, v)) => {
                    self.strings -= f.heap_size() + v.heap_size();
                    // Give memory back as the table empties, as Redis's dict resizes down.
                    if t.capacity() > 64 && t.len() * 8 < t.capacity() {
                        t.shrink_to_fit();
                    }
                    true
                }
                None => false,
            },
        }
    }

    /// The fields and values, in Redis's reply order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let mut it = lp.iter();
                Box::new(std::iter::from_fn(move || {
                    let f = it.next()?;
                    Some((f, it.next().expect("value follows field")))
                }))
            }
            Repr::Table(t) => Box::new(t.iter().map(|(f, v)| (&**f, &**v))),
        }
    }

    /// Converts to a hash table.
    fn convert(&mut self) {
        let Repr::Listpack(lp) = &self.repr else {
            return;
        };
        let mut t = Table::with_capacity_and_hasher(lp.len() / 2 + 1, Default::default());
        let mut strings = 0;
        let mut it = lp.iter();
        while let Some(f) = it.next() {
            let v = it.next().expect("value follows field");
            let (f, v) = (SmallBytes::new(f), SmallBytes::new(v));
            strings += f.heap_size() + v.heap_size();
            t.insert(f, v);
        }
        self.repr = Repr::Table(t);
        self.strings = strings;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hashes_keep_insertion_order_and_convert_past_the_thresholds() {
        let mut h = Hash::new();
        assert!(h.insert(b"b", b"1"));
        assert!(h.insert(b"a", b"2"));
        assert!(!h.insert(b"b", b"3"));
        assert_eq!(h.encoding(), "listpack");
        let got: Vec<_> = h.iter().collect();
        assert_eq!(got, vec![(&b"b"[..], &b"3"[..]), (b"a", b"2")]);
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(h.len(), 1);
        // A long value converts.
        h.insert(b"long", &[b'x'; 65]);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        assert_eq!(h.get(b"long").map(<[u8]>::len), Some(65));
        // So does the 129th field.
        let mut h = Hash::new();
        for i in 0..128 {
            h.insert(format!("f{i}").as_bytes(), b"v");
        }
        assert_eq!(h.encoding(), "listpack");
        h.insert(b"f0", b"again");
        assert_eq!(h.encoding(), "listpack");
        h.insert(b"f128", b"v");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 129);
        assert_eq!(h.get(b"f0"), Some(&b"again"[..]));
    }

    #[test]
    fn the_memory_count_follows_every_change() {
        let mut h = Hash::new();
        for i in 0..1000 {
            h.insert(format!("field:{i}").as_bytes(), &[b'v'; 40]);
        }
        let full = h.heap_size();
        // 1000 fields with 40-byte values (a 48-byte allocation each) and a table.
        assert!(full > 1000 * 48, "{full}");
        for i in 0..1000 {
            h.remove(format!("field:{i}").as_bytes());
        }
        assert!(h.is_empty());
        assert!(h.heap_size() < full / 10, "{}", h.heap_size());
    }
}

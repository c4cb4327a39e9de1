//! Hash values: field -> value maps, changed in place.
//!
//! Small hashes (at most [`MAX_LISTPACK_ENTRIES`] fields, none longer than
//! [`MAX_LISTPACK_VALUE`] bytes, Redis 7's `hash-max-listpack-*` defaults) are a [`Listpack`] of
//! alternating fields and values, in insertion order as Redis replies for them; past either
//! threshold the hash converts, once and for good, to a hash table (Redis's `hashtable`
//! encoding; its reply order is arbitrary, as Redis's is). The memory a hash holds is kept up to
//! date on every change, so weighing it is O(1) however large it grows.
//!
//! # Field expiration (Redis 7.4's HEXPIRE family)
//! Deadlines of fields live in a side table (field -> Unix milliseconds) that exists only once a
//! field of the hash has one, so hashes that use none pay one empty pointer. A field past its
//! deadline is invisible to every read ([`Hash::get`], [`Hash::len`], [`Hash::iter`], ...) from
//! that moment, whoever removes it: writes remove expired fields before changing the hash
//! ([`Hash::purge_expired`], called by `Value::as_hash_mut`), and the server's active sweep
//! removes them from hashes nobody writes (see `keyspace::FieldExpiry`).

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

/// Deadlines of fields that have one, in Unix milliseconds.
#[derive(Clone, Debug)]
struct Deadlines {
    at: HashMap<SmallBytes, i64, foldhash::fast::RandomState>,
    /// At most every deadline in `at` (exact after a purge, lower after removals): while it
    /// has not passed, nothing is expired and no scan is needed, so writes and HLEN on a hash
    /// with many deadlines cost O(1) until one falls due.
    earliest: i64,
    /// Heap bytes the field names in `at` own.
    strings: usize,
}

impl Deadlines {
    fn new() -> Deadlines {
        Deadlines {
            at: HashMap::default(),
            earliest: i64::MAX,
            strings: 0,
        }
    }

    /// Whether a deadline may have passed at `now` (a field expires once its deadline is
    /// before now).
    fn maybe_due(&self, now: i64) -> bool {
        self.earliest < now
    }
}

/// A hash value.
#[derive(Clone, Debug)]
pub struct Hash {
    repr: Repr,
    /// Heap bytes the strings of a table own (the listpack knows its own size).
    strings: usize,
    /// Field deadlines; `None` while no field has one (and once none has any more).
    deadlines: Option<Box<Deadlines>>,
}

/// Wall-clock time now, in Unix milliseconds: what field deadlines are compared with.
fn now() -> i64 {
    super::now_millis()
}

/// What [`Hash::field_ttl`] finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldTtl {
    /// No such (live) field.
    Missing,
    /// The field has no deadline.
    Persistent,
    /// The field's deadline, in Unix milliseconds.
    At(i64),
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
            deadlines: None,
        }
    }

    /// Fields held, expired ones included (until removed).
    fn stored_len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len() / 2,
            Repr::Table(t) => t.len(),
        }
    }

    /// Whether `field`'s deadline passed at `now` (Redis: a deadline before now).
    fn expired_at(&self, field: &[u8], now: i64) -> bool {
        self.deadlines
            .as_ref()
            .filter(|d| d.maybe_due(now))
            .and_then(|d| d.at.get(field))
            .is_some_and(|&at| at < now)
    }

    /// Live fields: what HLEN reports. O(1) without field deadlines, else O(fields with one).
    pub fn len(&self) -> usize {
        let stored = self.stored_len();
        match &self.deadlines {
            None => stored,
            Some(d) => {
                let now = now();
                if !d.maybe_due(now) {
                    return stored;
                }
                stored - d.at.values().filter(|&&at| at < now).count()
            }
        }
    }

    /// Whether no field is left (Redis removes such a key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`'s name for the representation: a listpack with field deadlines is
    /// `listpackex`, as in Redis 7.4.
    pub fn encoding(&self) -> &'static str {
        match (&self.repr, &self.deadlines) {
            (Repr::Listpack(_), None) => "listpack",
            (Repr::Listpack(_), Some(_)) => "listpackex",
            (Repr::Table(_), _) => "hashtable",
        }
    }

    /// Heap bytes held, as the allocator counts them.
    pub fn heap_size(&self) -> usize {
        let fields = match &self.repr {
            Repr::Listpack(lp) => lp.heap_size(),
            Repr::Table(t) => alloc_size(t.capacity() * TABLE_SLOT) + self.strings,
        };
        // A deadline slot holds a copy of its field name (rarely on the heap) and 8 bytes.
        let deadlines = self.deadlines.as_ref().map_or(0, |d| {
            alloc_size(std::mem::size_of::<Deadlines>())
                + alloc_size(d.at.capacity() * (std::mem::size_of::<SmallBytes>() + 9))
                + d.strings
        });
        fields + deadlines
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

    /// The value of `field` (none once its deadline passed).
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        if self.deadlines.is_some() && self.expired_at(field, now()) {
            return None;
        }
        self.stored_get(field)
    }

    fn stored_get(&self, field: &[u8]) -> Option<&[u8]> {
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

    /// Sets `field` to `value`, dropping any deadline it had (HSET); true if the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.forget_deadline(field);
        self.insert_keep_ttl(field, value)
    }

    /// Sets `field` to `value`, keeping its deadline (HINCRBY, as Redis 7.4); true if new.
    pub fn insert_keep_ttl(&mut self, field: &[u8], value: &[u8]) -> bool {
        if let Repr::Listpack(lp) = &self.repr {
            let fits = field.len() <= MAX_LISTPACK_VALUE && value.len() <= MAX_LISTPACK_VALUE;
            let grows =
                !fits || (lp.len() / 2 >= MAX_LISTPACK_ENTRIES && self.stored_get(field).is_none());
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

    /// Removes `field`; true if it existed (and was live).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let live = !(self.deadlines.is_some() && self.expired_at(field, now()));
        self.forget_deadline(field);
        self.stored_remove(field) && live
    }

    fn forget_deadline(&mut self, field: &[u8]) {
        if let Some(d) = &mut self.deadlines {
            if let Some((f, _)) = d.at.remove_entry(field) {
                d.strings -= f.heap_size();
                if d.at.is_empty() {
                    self.deadlines = None;
                }
            }
        }
    }

    /// `field`'s deadline, if it is live.
    pub fn field_ttl(&self, field: &[u8]) -> FieldTtl {
        if self.get(field).is_none() {
            return FieldTtl::Missing;
        }
        match self.deadlines.as_ref().and_then(|d| d.at.get(field)) {
            Some(&at) => FieldTtl::At(at),
            None => FieldTtl::Persistent,
        }
    }

    /// Sets the deadline of `field` (which must exist) to `at`, Unix milliseconds.
    pub fn set_field_deadline(&mut self, field: &[u8], at: i64) {
        let d = self
            .deadlines
            .get_or_insert_with(|| Box::new(Deadlines::new()));
        d.earliest = d.earliest.min(at);
        if let Some(old) = d.at.get_mut(field) {
            *old = at;
        } else {
            let f = SmallBytes::new(field);
            d.strings += f.heap_size();
            d.at.insert(f, at);
        }
    }

    /// Removes `field`'s deadline (HPERSIST); true if it had one.
    pub fn persist_field(&mut self, field: &[u8]) -> bool {
        let had = self
            .deadlines
            .as_ref()
            .is_some_and(|d| d.at.contains_key(field));
        self.forget_deadline(field);
        had
    }

    /// When a field may first expire (at most the earliest deadline: exact after
    /// [`Hash::purge_expired`]), if any field has a deadline. O(1).
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.as_ref().map(|d| d.earliest)
    }

    /// Whether a field's deadline passed at `now` (a field to purge).
    pub fn has_due(&self, now: i64) -> bool {
        self.deadlines
            .as_ref()
            .is_some_and(|d| d.maybe_due(now) && d.at.values().any(|&at| at < now))
    }

    /// The earliest field deadline, exactly (O(fields with a deadline)).
    pub fn exact_next_deadline(&self) -> Option<i64> {
        self.deadlines.as_ref()?.at.values().min().copied()
    }

    /// Removes the fields whose deadline passed at `now`; how many it removed.
    pub fn purge_expired(&mut self, now: i64) -> usize {
        let Some(d) = &mut self.deadlines else {
            return 0;
        };
        if !d.maybe_due(now) {
            return 0;
        }
        let due: Vec<SmallBytes> =
            d.at.iter()
                .filter(|&(_, &at)| at < now)
                .map(|(f, _)| f.clone())
                .collect();
        d.earliest =
            d.at.values()
                .copied()
                .filter(|&at| at >= now)
                .min()
                .unwrap_or(i64::MAX);
        for f in &due {
            self.forget_deadline(f);
            self.stored_remove(f);
        }
        due.len()
    }

    fn stored_remove(&mut self, field: &[u8]) -> bool {
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

    /// The live fields and values, in Redis's reply order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match &self.deadlines {
            None => self.stored_iter(),
            Some(d) => {
                let now = now();
                if !d.maybe_due(now) {
                    return self.stored_iter();
                }
                Box::new(
                    self.stored_iter()
                        .filter(move |(f, _)| d.at.get(*f).is_none_or(|&at| at >= now)),
                )
            }
        }
    }

    fn stored_iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
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

impl Hash {
    /// Whether any field has a deadline.
    pub fn has_field_deadlines(&self) -> bool {
        self.deadlines.is_some()
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
    fn expired_fields_are_invisible_and_purged() {
        let mut h = Hash::new();
        h.insert(b"a", b"1");
        h.insert(b"b", b"2");
        h.insert(b"c", b"3");
        assert_eq!(h.encoding(), "listpack");
        let past = now() - 10;
        let future = now() + 100_000;
        h.set_field_deadline(b"a", past);
        h.set_field_deadline(b"b", future);
        assert_eq!(h.encoding(), "listpackex");
        assert_eq!(h.get(b"a"), None);
        assert_eq!(h.field_ttl(b"a"), FieldTtl::Missing);
        assert_eq!(h.field_ttl(b"b"), FieldTtl::At(future));
        assert_eq!(h.field_ttl(b"c"), FieldTtl::Persistent);
        assert_eq!(h.len(), 2);
        let live: Vec<_> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(live, vec![b"b".to_vec(), b"c".to_vec()]);
        assert!(!h.remove(b"a"), "an expired field is not removed as live");
        // A lower bound until a purge makes it exact.
        assert!(h.next_deadline() <= Some(future));
        assert!(!h.has_due(now()));
        assert_eq!(h.exact_next_deadline(), Some(future));
        h.purge_expired(now());
        assert_eq!(h.next_deadline(), Some(future));
        // HSET drops the deadline; HINCRBY-style updates keep it.
        h.insert_keep_ttl(b"b", b"20");
        assert_eq!(h.field_ttl(b"b"), FieldTtl::At(future));
        h.insert(b"b", b"21");
        assert_eq!(h.field_ttl(b"b"), FieldTtl::Persistent);
        assert!(!h.has_field_deadlines());
        assert_eq!(h.encoding(), "listpack");
        h.set_field_deadline(b"c", past);
        assert_eq!(h.purge_expired(now()), 1);
        assert_eq!(h.stored_len(), 1);
        assert!(!h.persist_field(b"b"));
        assert_eq!(h.len(), 1);
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

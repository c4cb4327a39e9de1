//! A compact list of short byte strings in one buffer, for small collections.
//!
//! Redis keeps small hashes, sets, sorted sets and lists in a "listpack": one allocation holding
//! the elements back to back with a length prefix each, searched linearly. Below a few hundred
//! elements a linear scan of one contiguous buffer is as fast as a hash lookup and costs a
//! couple of bytes per element instead of a table slot and separate allocations; past the
//! thresholds (Redis's `*-max-listpack-entries` / `*-max-listpack-value`), the collection
//! converts to a hashed form. This is the same idea with a simpler encoding of our own: each
//! element is a LEB128 length followed by its bytes (Redis's format also carries back-pointers
//! for reverse walks and integer encodings, which the sizes involved here do not need).
//!
//! The buffer is grown exactly (no doubling slack), as Redis reallocates its listpacks: a change
//! costs a copy of at most a few kilobytes, and memory is what the elements need.

/// Elements in one buffer: `[len][bytes][len][bytes]...`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    count: u32,
}

/// Writes `n` as LEB128.
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a LEB128 length at `pos`: the length and where the bytes start.
#[inline]
fn get_len(buf: &[u8], mut pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let byte = buf[pos];
        pos += 1;
        n |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (n, pos);
        }
        shift += 7;
    }
}

fn encoded_len(bytes: &[u8]) -> usize {
    let mut n = bytes.len();
    let mut prefix = 1;
    while n >= 0x80 {
        n >>= 7;
        prefix += 1;
    }
    prefix + bytes.len()
}

/// Where an element is: the offset of its length prefix and of its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    start: usize,
    end: usize,
}

impl Listpack {
    /// An empty listpack.
    pub const fn new() -> Listpack {
        Listpack {
            buf: Vec::new(),
            count: 0,
        }
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes used (exact: the buffer is grown exactly).
    pub fn heap_size(&self) -> usize {
        crate::keyspace::small::alloc_size(self.buf.capacity())
    }

    /// The elements in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// The elements with their positions.
    pub fn positions(&self) -> Positions<'_> {
        Positions {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// The element at `pos`.
    pub fn get(&self, pos: Pos) -> &[u8] {
        let (len, at) = get_len(&self.buf, pos.start);
        &self.buf[at..at + len]
    }

    /// The position after `pos`'s element, if any.
    pub fn next(&self, pos: Pos) -> Option<Pos> {
        (pos.end < self.buf.len()).then(|| {
            let (len, at) = get_len(&self.buf, pos.end);
            Pos {
                start: pos.end,
                end: at + len,
            }
        })
    }

    fn reserve(&mut self, extra: usize) {
        let need = self.buf.len() + extra;
        if need > self.buf.capacity() {
            self.buf.reserve_exact(need - self.buf.len());
        }
    }

    /// Appends an element.
    pub fn push(&mut self, bytes: &[u8]) {
        self.reserve(encoded_len(bytes));
        put_len(&mut self.buf, bytes.len());
        self.buf.extend_from_slice(bytes);
        self.count += 1;
    }

    /// Inserts an element at the front.
    pub fn push_front(&mut self, bytes: &[u8]) {
        self.insert_at(0, bytes);
    }

    /// Inserts an element before the element starting at byte offset `at` (or at the end when
    /// `at` is the buffer's length).
    fn insert_at(&mut self, at: usize, bytes: &[u8]) {
        let mut enc = Vec::with_capacity(encoded_len(bytes));
        put_len(&mut enc, bytes.len());
        enc.extend_from_slice(bytes);
        self.reserve(enc.len());
        self.buf.splice(at..at, enc);
        self.count += 1;
    }

    /// Inserts before the element at `pos`.
    pub fn insert_before(&mut self, pos: Pos, bytes: &[u8]) {
        self.insert_at(pos.start, bytes);
    }

    /// Inserts after the element at `pos`.
    pub fn insert_after(&mut self, pos: Pos, bytes: &[u8]) {
        self.insert_at(pos.end, bytes);
    }

    /// Replaces the element at `pos`; returns the new element's position.
    pub fn replace(&mut self, pos: Pos, bytes: &[u8]) -> Pos {
        let mut enc = Vec::with_capacity(encoded_len(bytes));
        put_len(&mut enc, bytes.len());
        enc.extend_from_slice(bytes);
        let new_end = pos.start + enc.len();
        if enc.len() > pos.end - pos.start {
            self.reserve(enc.len() - (pos.end - pos.start));
        }
        self.buf.splice(pos.start..pos.end, enc);
        self.shrink();
        Pos {
            start: pos.start,
            end: new_end,
        }
    }

    /// Removes `n` consecutive elements starting at `pos`.
    pub fn remove(&mut self, pos: Pos, n: usize) {
        let mut end = pos.end;
        for _ in 1..n {
            let (len, at) = get_len(&self.buf, end);
            end = at + len;
        }
        self.buf.drain(pos.start..end);
        self.count -= n as u32;
        self.shrink();
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        *self = Listpack::new();
    }

    /// Gives back memory after removals, as Redis's listpack reallocation does.
    fn shrink(&mut self) {
        if self.buf.capacity() > self.buf.len() + 64 || self.buf.is_empty() {
            self.buf.shrink_to_fit();
        }
    }
}

/// Iterator over a listpack's elements.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let (len, at) = get_len(self.buf, self.pos);
        self.pos = at + len;
        Some(&self.buf[at..at + len])
    }
}

/// Iterator over a listpack's elements with their positions.
#[derive(Debug, Clone)]
pub struct Positions<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Positions<'a> {
    type Item = (Pos, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(Pos, &'a [u8])> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let (len, at) = get_len(self.buf, self.pos);
        self.pos = at + len;
        Some((
            Pos {
                start,
                end: self.pos,
            },
            &self.buf[at..at + len],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_through_every_change() {
        let mut lp = Listpack::new();
        let long = vec![b'x'; 300];
        lp.push(b"a");
        lp.push(&long);
        lp.push(b"");
        lp.push_front(b"first");
        assert_eq!(
            lp.iter().collect::<Vec<_>>(),
            vec![&b"first"[..], b"a", &long, b""]
        );
        let (p, _) = lp.positions().nth(1).unwrap();
        let p = lp.replace(p, b"replaced, longer");
        lp.insert_after(p, b"after");
        lp.insert_before(p, b"before");
        assert_eq!(
            lp.iter().collect::<Vec<_>>(),
            vec![
                &b"first"[..],
                b"before",
                b"replaced, longer",
                b"after",
                &long,
                b""
            ]
        );
        let (p, _) = lp.positions().nth(2).unwrap();
        lp.remove(p, 3);
        assert_eq!(
            lp.iter().collect::<Vec<_>>(),
            vec![&b"first"[..], b"before", b""]
        );
        assert_eq!(lp.len(), 3);
        let (p, _) = lp.positions().next().unwrap();
        assert_eq!(lp.get(p), b"first");
        assert_eq!(lp.get(lp.next(p).unwrap()), b"before");
        lp.clear();
        assert!(lp.is_empty());
        assert_eq!(lp.iter().count(), 0);
    }

    #[test]
    fn memory_is_the_elements_and_their_prefixes() {
        let mut lp = Listpack::new();
        for i in 0..10 {
            lp.push(format!("field:{i}").as_bytes());
            lp.push(b"value");
        }
        // 10 x (1 + 7) + 10 x (1 + 5) = 140 bytes, in a 160-byte allocation.
        assert_eq!(lp.buf.len(), 140);
        assert_eq!(lp.heap_size(), 160);
    }
}

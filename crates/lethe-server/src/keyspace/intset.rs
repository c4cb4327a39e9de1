//! A sorted set of integers stored at the narrowest width that holds them all (16, 32 or 64
//! bits), as Redis's `intset`: a set of small ids costs 2 bytes a member, and the width only
//! grows (a member that needs 64 bits widens every member once).

use super::small::alloc_size;

#[derive(Clone, Debug)]
enum Repr {
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

/// Sorted distinct integers.
#[derive(Clone, Debug)]
pub struct IntSet(Repr);

impl Default for IntSet {
    fn default() -> Self {
        IntSet(Repr::I16(Vec::new()))
    }
}

macro_rules! each {
    ($set:expr, $v:ident => $body:expr) => {
        match $set {
            Repr::I16($v) => $body,
            Repr::I32($v) => $body,
            Repr::I64($v) => $body,
        }
    };
}

// `i64::from` is the identity for the widest representation, which the macro covers too.
#[allow(clippy::useless_conversion)]
impl IntSet {
    /// Members held.
    pub fn len(&self) -> usize {
        each!(&self.0, v => v.len())
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held, as the allocator counts them.
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::I16(v) => alloc_size(v.capacity() * 2),
            Repr::I32(v) => alloc_size(v.capacity() * 4),
            Repr::I64(v) => alloc_size(v.capacity() * 8),
        }
    }

    /// The `i`th smallest member.
    pub fn get(&self, i: usize) -> Option<i64> {
        each!(&self.0, v => v.get(i).map(|&n| i64::from(n)))
    }

    /// Where `n` is (`Ok`) or would go (`Err`).
    pub fn search(&self, n: i64) -> Result<usize, usize> {
        match &self.0 {
            Repr::I16(v) => match i16::try_from(n) {
                Ok(n) => v.binary_search(&n),
                Err(_) => Err(if n < 0 { 0 } else { v.len() }),
            },
            Repr::I32(v) => match i32::try_from(n) {
                Ok(n) => v.binary_search(&n),
                Err(_) => Err(if n < 0 { 0 } else { v.len() }),
            },
            Repr::I64(v) => v.binary_search(&n),
        }
    }

    /// Whether `n` is a member.
    pub fn contains(&self, n: i64) -> bool {
        self.search(n).is_ok()
    }

    /// Inserts `n` at `at` (from [`Self::search`]), widening every member if `n` needs it.
    pub fn insert(&mut self, at: usize, n: i64) {
        let widen = match &self.0 {
            Repr::I16(_) => i16::try_from(n).is_err(),
            Repr::I32(_) => i32::try_from(n).is_err(),
            Repr::I64(_) => false,
        };
        if widen {
            let all: Vec<i64> = self.iter().collect();
            self.0 = if i32::try_from(n).is_ok() {
                Repr::I32(all.iter().map(|&m| m as i32).collect())
            } else {
                Repr::I64(all)
            };
        }
        // The checks above make these conversions exact.
        match &mut self.0 {
            Repr::I16(v) => {
                v.reserve_exact(1);
                v.insert(at, n as i16);
            }
            Repr::I32(v) => {
                v.reserve_exact(1);
                v.insert(at, n as i32);
            }
            Repr::I64(v) => {
                v.reserve_exact(1);
                v.insert(at, n);
            }
        }
    }

    /// Removes and returns the member at `at`, giving memory back as Redis's intset does.
    pub fn remove(&mut self, at: usize) -> i64 {
        each!(&mut self.0, v => {
            let n = i64::from(v.remove(at));
            if v.capacity() > v.len() + 8 {
                v.shrink_to_fit();
            }
            n
        })
    }

    /// The members, ascending.
    pub fn iter(&self) -> Box<dyn Iterator<Item = i64> + '_> {
        each!(&self.0, v => Box::new(v.iter().map(|&n| i64::from(n))))
    }

    /// The smallest and largest members.
    pub fn bounds(&self) -> Option<(i64, i64)> {
        Some((self.get(0)?, self.get(self.len() - 1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_widen_as_needed_and_stay_sorted() {
        let mut s = IntSet::default();
        for n in [5, -3, 100] {
            let at = s.search(n).unwrap_err();
            s.insert(at, n);
        }
        assert_eq!(s.heap_size(), 8); // three i16 in an 8-byte allocation
        let at = s.search(70_000).unwrap_err();
        s.insert(at, 70_000);
        assert!(matches!(s.0, Repr::I32(_)));
        let at = s.search(i64::MIN).unwrap_err();
        s.insert(at, i64::MIN);
        assert!(matches!(s.0, Repr::I64(_)));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![i64::MIN, -3, 5, 100, 70_000]
        );
        assert!(s.contains(100) && !s.contains(101));
        assert_eq!(s.remove(0), i64::MIN);
        assert_eq!(s.bounds(), Some((-3, 70_000)));
        // A narrow set answers for numbers outside its width.
        let mut s = IntSet::default();
        s.insert(0, 1);
        assert_eq!(s.search(1 << 40), Err(1));
        assert_eq!(s.search(-(1 << 40)), Err(0));
    }
}

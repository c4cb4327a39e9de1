//! Short byte strings kept inline: keys, string values, hash fields and members.
//!
//! Most keys and many values are short (Redis's own benchmarks use 10 to 20 byte keys). A
//! `Bytes` costs 32 bytes plus a separate allocation (with its allocator overhead) and, once
//! shared, a second one; a `Box<[u8]>` 16 bytes plus the allocation. [`SmallBytes`] is 24 bytes
//! and holds up to [`INLINE`] bytes with no allocation at all, longer ones in one exact-size
//! allocation. Measured on one million `SET key:<11 digits> <32 bytes>`, this is what brings the
//! per-key cost of the keyspace to Redis's level (BENCHMARKS.md, server memory case).
//!
//! Hand-written (a safe enum, no unsafe) because the layout is the point: no crate offers an
//! inline byte string of exactly this size without UTF-8 checks or unsafe code.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Bytes stored inline, without an allocation.
pub const INLINE: usize = 22;

/// A byte string, inline up to [`INLINE`] bytes. Equality, ordering and hashing are those of
/// its bytes (so a `&[u8]` can look one up).
#[derive(Clone)]
pub enum SmallBytes {
    /// Up to [`INLINE`] bytes in place.
    Inline {
        /// Bytes used.
        len: u8,
        /// The bytes (the first `len`).
        data: [u8; INLINE],
    },
    /// Longer ones, in one allocation of their exact size.
    Heap(Box<[u8]>),
}

impl SmallBytes {
    /// The empty string.
    pub const EMPTY: SmallBytes = SmallBytes::Inline {
        len: 0,
        data: [0; INLINE],
    };

    /// A copy of `bytes`.
    #[inline]
    pub fn new(bytes: &[u8]) -> SmallBytes {
        if bytes.len() <= INLINE {
            let mut data = [0; INLINE];
            data[..bytes.len()].copy_from_slice(bytes);
            SmallBytes::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            SmallBytes::Heap(bytes.into())
        }
    }

    /// `prefix` followed by `bytes`, built without an intermediate copy.
    #[inline]
    pub fn with_prefix(prefix: u8, bytes: &[u8]) -> SmallBytes {
        let len = bytes.len() + 1;
        if len <= INLINE {
            let mut data = [0; INLINE];
            data[0] = prefix;
            data[1..len].copy_from_slice(bytes);
            SmallBytes::Inline {
                len: len as u8,
                data,
            }
        } else {
            let mut v = Vec::with_capacity(len);
            v.push(prefix);
            v.extend_from_slice(bytes);
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }

    /// Takes a vector's bytes (inline if short, else its buffer, trimmed to size).
    pub fn from_vec(v: Vec<u8>) -> SmallBytes {
        if v.len() <= INLINE {
            SmallBytes::new(&v)
        } else {
            SmallBytes::Heap(v.into_boxed_slice())
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, data } => &data[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }

    /// The bytes, to change in place (bitmap and HyperLogLog commands edit strings where
    /// they are instead of copying them).
    #[inline]
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        match self {
            SmallBytes::Inline { len, data } => &mut data[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }

    /// Heap bytes this string owns (0 when inline), as the allocator rounds them.
    pub fn heap_size(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(b) => alloc_size(b.len()),
        }
    }
}

/// What an allocation of `n` bytes really takes: jemalloc's size classes (16-byte spacing up to
/// 128, then four classes per doubling), which the server allocates with.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            // Four classes per power of two: spacing is a quarter of the lower power.
            let lower = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let step = (lower / 4).max(16);
            n.div_ceil(step) * step
        }
    }
}

impl Default for SmallBytes {
    fn default() -> Self {
        SmallBytes::EMPTY
    }
}

impl Deref for SmallBytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for SmallBytes {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for SmallBytes {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for SmallBytes {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for SmallBytes {
    /// As `[u8]` hashes, so lookups by a byte slice find it.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(b: &[u8]) -> Self {
        SmallBytes::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn short_strings_are_inline_and_the_type_is_24_bytes() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        assert_eq!(std::mem::size_of::<Option<SmallBytes>>(), 24);
        let s = SmallBytes::new(b"key:00000000001");
        assert!(matches!(s, SmallBytes::Inline { .. }));
        assert_eq!(s.heap_size(), 0);
        let long = SmallBytes::new(&[7; 40]);
        assert!(matches!(long, SmallBytes::Heap(_)));
        assert_eq!(long.heap_size(), 48);
        assert_eq!(&*long, &[7; 40][..]);
        assert_eq!(SmallBytes::new(&[1; INLINE]).heap_size(), 0);
    }

    #[test]
    fn equality_and_hash_are_the_bytes() {
        let h = foldhash::fast::FixedState::default();
        for bytes in [&b""[..], b"a", &[9; 22], &[9; 23], &[0; 100]] {
            let s = SmallBytes::new(bytes);
            assert_eq!(h.hash_one(&s), h.hash_one(bytes));
            assert_eq!(s, SmallBytes::from_vec(bytes.to_vec()));
        }
        let p = SmallBytes::with_prefix(3, b"abc");
        assert_eq!(&*p, b"\x03abc");
        let p = SmallBytes::with_prefix(3, &[1; 30]);
        assert_eq!(p.len(), 31);
        assert_eq!(p[0], 3);
    }

    #[test]
    fn allocation_sizes_follow_jemalloc_classes() {
        let classes = [
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (100, 112),
            (128, 128),
            (129, 160),
            (200, 224),
            (257, 320),
            (1000, 1024),
            (1025, 1280),
        ];
        for (n, want) in classes {
            assert_eq!(alloc_size(n), want, "{n}");
        }
    }
}

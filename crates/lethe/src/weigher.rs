//! Entry weights: how much of the capacity an entry uses.
//!
//! A cache bounded by entry count weighs every entry 1 ([`UnitWeigher`]). A cache bounded by bytes
//! uses a weigher such as [`ByteWeigher`], which counts key and value payload bytes plus a fixed
//! per-entry overhead, so that many tiny entries cannot exceed the memory the capacity implies.

use std::fmt;

/// Computes an entry's weight.
///
/// # Contract
/// - Deterministic for a given key and value: the engine weighs an entry when it is written and
///   trusts that weight until the entry leaves.
/// - Cheap; called under a shard lock on every insert.
/// - Weights are `u32`; a weight of 0 is allowed (the entry never triggers eviction by itself).
///   The capacity is split evenly across shards and each shard enforces its share, so an entry
///   heavier than one share ([`crate::Cache::max_entry_weight`]) is refused and reported as
///   evicted. Set [`crate::CacheBuilder::shards`] lower if single entries may be that large.
pub trait Weigher<K, V>: Send + Sync + 'static {
    /// The weight of this entry.
    fn weigh(&self, key: &K, value: &V) -> u32;
}

impl<K, V, F> Weigher<K, V> for F
where
    F: Fn(&K, &V) -> u32 + Send + Sync + 'static,
{
    fn weigh(&self, key: &K, value: &V) -> u32 {
        self(key, value)
    }
}

/// Every entry weighs 1: capacity counts entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitWeigher;

impl<K, V> Weigher<K, V> for UnitWeigher {
    fn weigh(&self, _: &K, _: &V) -> u32 {
        1
    }
}

/// Something with a size in bytes, for [`ByteWeigher`].
pub trait ByteSize {
    /// Payload bytes.
    fn byte_size(&self) -> usize;
}

impl ByteSize for Vec<u8> {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for String {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for str {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl ByteSize for [u8] {
    fn byte_size(&self) -> usize {
        self.len()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for Box<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<T: ByteSize + ?Sized> ByteSize for std::sync::Arc<T> {
    fn byte_size(&self) -> usize {
        (**self).byte_size()
    }
}
impl<const N: usize> ByteSize for [u8; N] {
    fn byte_size(&self) -> usize {
        N
    }
}
macro_rules! fixed_size {
    ($($t:ty),*) => {$(impl ByteSize for $t { fn byte_size(&self) -> usize { std::mem::size_of::<$t>() } })*};
}
fixed_size!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// Weighs an entry by its key and value bytes plus a fixed per-entry overhead, so a capacity in
/// bytes approximates the memory the cache uses. Works for `Vec<u8>`, `String`, `Box<[u8]>`,
/// `Arc<str>`, integers, byte arrays, and anything implementing [`ByteSize`] (for example a
/// `Bytes` newtype).
#[derive(Clone, Copy)]
pub struct ByteWeigher {
    overhead: u32,
}

impl ByteWeigher {
    /// The engine's bookkeeping per entry, in bytes, as documented in the crate docs.
    pub const DEFAULT_OVERHEAD: u32 = 96;

    /// Key + value bytes + [`Self::DEFAULT_OVERHEAD`].
    pub const fn new() -> Self {
        ByteWeigher {
            overhead: Self::DEFAULT_OVERHEAD,
        }
    }

    /// Key + value bytes + `overhead`.
    pub const fn with_overhead(overhead: u32) -> Self {
        ByteWeigher { overhead }
    }
}

impl Default for ByteWeigher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ByteWeigher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteWeigher")
            .field("overhead", &self.overhead)
            .finish()
    }
}

impl<K: ByteSize, V: ByteSize> Weigher<K, V> for ByteWeigher {
    fn weigh(&self, key: &K, value: &V) -> u32 {
        let total = key.byte_size() + value.byte_size() + self.overhead as usize;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_weigher_counts_payload_and_overhead() {
        let w = ByteWeigher::with_overhead(10);
        assert_eq!(w.weigh(&"abc".to_string(), &vec![0u8; 5]), 18);
        assert_eq!(w.weigh(&7u64, &std::sync::Arc::<str>::from("xy")), 20);
        assert_eq!(UnitWeigher.weigh(&1, &2), 1);
    }
}

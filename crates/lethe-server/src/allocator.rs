//! The allocator's own statistics, for INFO memory.
//!
//! The `lethe` binary runs on jemalloc (its `#[global_allocator]` is set in `main.rs`, where a
//! library must not set one): the keyspace weighs each entry with jemalloc's size classes
//! ([`crate::keyspace::small::alloc_size`]), so what `--max-memory` counts matches what the
//! process holds. What jemalloc itself reports is read here, so INFO can show both and an
//! operator (or the benchmark's memory case) can see how far the keyspace's count is from the
//! allocator's. In a process whose global allocator is not jemalloc (the library's tests)
//! these read jemalloc's idle state and stay near zero.

use tikv_jemalloc_ctl::{epoch, stats};

/// What the allocator holds, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes allocated by the application (jemalloc's `stats.allocated`).
    pub allocated: u64,
    /// Bytes in active pages (`stats.active`).
    pub active: u64,
    /// Bytes in physically resident pages the allocator maps (`stats.resident`).
    pub resident: u64,
}

/// The allocator's current statistics (refreshed first: jemalloc caches them per epoch), or
/// `None` if they cannot be read.
pub fn stats() -> Option<AllocatorStats> {
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

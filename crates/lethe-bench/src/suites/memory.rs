//! Memory suite: live heap bytes per entry with 1,000,000 entries resident.
//!
//! Keys are `[u8; 16]` and values `[u8; 32]` (48 bytes of payload per entry), inserted into a
//! cache sized so that nothing is evicted. The figure comes from the counting global allocator
//! in [`crate::alloc`]: live bytes after the last insert minus live bytes before the cache was
//! built, divided by the number of entries. It is therefore the heap the cache asked for,
//! including the payload itself and any per-entry boxing, and excluding malloc's own headers
//! and fragmentation. Caches are measured one at a time and dropped before the next, so one
//! system's memory is never counted against another.

use crate::alloc;
use crate::report::{RunContext, SuiteReport, thousands};
use crate::systems::{BenchCache, System, with_system};

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "memory";
const ENTRIES: usize = 1_000_000;
/// Slightly above `ENTRIES`: sharded caches split capacity per shard, and an unlucky shard
/// would otherwise start evicting before the cache as a whole is full.
const CAPACITY: u64 = 1_050_000;
const PAYLOAD: usize = size_of::<Key>() + size_of::<Val>();
const DEFAULT_SYSTEMS: [System; 4] = [System::Lethe, System::Moka, System::QuickCache, System::Lru];

type Key = [u8; 16];
type Val = [u8; 32];

fn key(i: usize) -> Key {
    (i as u128).to_le_bytes()
}

fn value(i: usize) -> Val {
    let k = key(i);
    let mut v = [0u8; 32];
    v[..16].copy_from_slice(&k);
    v[16..].copy_from_slice(&k.map(|b| !b));
    v
}

pub fn run(ctx: &RunContext) {
    let systems = ctx.systems(&DEFAULT_SYSTEMS);
    let case = "1M [u8;16]->[u8;32]";
    let (entries, capacity) = (thousands(ENTRIES as u64), thousands(CAPACITY));
    let mode = format!(
        "{entries} entries into capacity {capacity}; the measurement is deterministic, so \
         `--quick` measures exactly what a full run does"
    );
    let mut report = SuiteReport::new(SUITE, "Memory", &systems, mode);
    report.note(format!(
        "Allocator-counted live heap bytes: a counting `#[global_allocator]` over the system \
         allocator sums requested sizes (allocations minus frees, all threads) from just before \
         the cache is built to just after the last of {entries} inserts, and `bytes_per_entry` \
         is that delta / {entries}. It **includes the {PAYLOAD} bytes of payload** per entry (a \
         16-byte `[u8; 16]` key and a 32-byte `[u8; 32]` value), so `overhead_bytes_per_entry` \
         = bytes_per_entry − {PAYLOAD}. It does not include malloc's per-block headers, \
         size-class rounding or fragmentation, so resident memory is higher for every system, \
         most for those that allocate per entry. Capacity is {capacity}, slightly above \
         {entries}, because sharded caches split capacity per shard and a full shard evicts \
         before the whole cache is full; `len` (each cache's own count afterwards) confirms \
         nothing was evicted. Structures sized from the capacity rather than the contents (e.g. \
         frequency sketches, preallocated tables) are counted at that capacity. For moka, \
         `run_pending_tasks()` is called (repeatedly, until its entry count is stable) before \
         measuring, so its internal read/write logs are drained and its count is exact. `lru` \
         is the `lru` crate behind a `Mutex`. lethe/x below 1 means lethe uses less memory."
    ));
    if !ctx.selects_case(case) {
        return;
    }
    say!(
        "[memory] allocator-counted live heap bytes per entry, including the {PAYLOAD} B \
         key+value payload (overhead = bytes/entry - {PAYLOAD})"
    );
    for &system in &systems {
        let (bytes, len) = with_system!(system, Key, Val, |C| measure::<C>());
        let per_entry = bytes as f64 / ENTRIES as f64;
        say!(
            "[memory] {:<12} {per_entry:>6.1} B/entry ({:.1} overhead), len {len}, {:.1} MiB",
            system.name(),
            per_entry - PAYLOAD as f64,
            bytes as f64 / (1024.0 * 1024.0)
        );
        if len != ENTRIES {
            let w = format!(
                "{} holds {len} of {entries} entries after inserting all of them (bytes/entry \
                 is still divided by {entries})",
                system.name()
            );
            say!("WARNING: {w}");
            report.note(format!("**WARNING:** {w}"));
        }
        report.push(case, system, "bytes_per_entry", per_entry);
        report.push(
            case,
            system,
            "overhead_bytes_per_entry",
            per_entry - PAYLOAD as f64,
        );
        report.push(case, system, "len", len as f64);
    }
    report.finish(ctx);
}

/// Live bytes attributable to a cache holding `ENTRIES` entries, and its reported length.
fn measure<C: BenchCache<Key, Val>>() -> (isize, usize) {
    alloc::start_counting();
    let cache = C::with_capacity(CAPACITY);
    for i in 0..ENTRIES {
        cache.insert(key(i), value(i));
    }
    cache.settle();
    let bytes = alloc::live_bytes();
    alloc::stop_counting();
    let len = cache.entry_count();
    drop(cache);
    (bytes, len)
}

//! A counting global allocator, used by the memory suite to measure live heap bytes.
//!
//! It wraps [`System`] and, only while counting is switched on, keeps a running total of bytes
//! requested minus bytes freed. Counting is off by default because a shared counter updated on
//! every allocation would become a contended cache line in the multi-threaded throughput suite
//! and penalise whichever cache allocates most; a relaxed load of a flag that never changes
//! during those runs costs next to nothing.
//!
//! The figure is what the program asked the allocator for (`Layout::size`), not what the
//! allocator really holds: malloc's per-block headers, size-class rounding and fragmentation are
//! not included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

#[derive(Debug)]
struct CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
// Signed: blocks allocated before counting started may be freed while it is on.
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[inline]
fn record(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees carry over; the bookkeeping only touches atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            record(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by this allocator (hence by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr`/`layout` come from this allocator and the caller guarantees `new_size`
        // is valid for `layout.align()`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Live heap bytes counted since the last [`start_counting`].
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Zero the counter and start counting every allocation and free, from any thread.
pub fn start_counting() {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
}

/// Stop counting; frees of blocks counted earlier are no longer subtracted.
pub fn stop_counting() {
    COUNTING.store(false, Ordering::SeqCst);
}

//! The one place the engine takes its synchronisation primitives from.
//!
//! Every lock and atomic of the engine's core (shards, leases, tag sets, reclamation) is
//! imported from here rather than from `std` or `parking_lot` directly, so that the `shuttle`
//! feature can substitute Shuttle's primitives in this one file: under it, every lock and
//! atomic is a point where Shuttle's scheduler may switch threads, and `tests/shuttle.rs` runs
//! the shipped code (not a copy) under many random schedules. Normal builds use parking_lot's
//! locks and std's atomics, unchanged.
//!
//! The loader's worker threads wait on parking_lot condvars with parking_lot mutexes of their
//! own; they are outside the Shuttle tests, which drive the cache from Shuttle's threads.
//!
//! Only what is created at run time comes from here: a `static` would be created outside the
//! checker (Shuttle's types panic there), so the few statics use std's atomics directly.

#[cfg(not(feature = "shuttle"))]
pub(crate) use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(feature = "shuttle"))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

#[cfg(feature = "shuttle")]
pub(crate) use checked::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(feature = "shuttle")]
pub(crate) use shuttle::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

pub(crate) use std::sync::Arc;

/// Releases a write guard, handing the lock fairly to a waiter (parking_lot's eager hand-off,
/// so a long run of short holds cannot starve readers); under Shuttle, a plain release.
#[cfg(not(feature = "shuttle"))]
pub(crate) fn unlock_fair<T>(guard: RwLockWriteGuard<'_, T>) {
    RwLockWriteGuard::unlock_fair(guard);
}

/// Releases a write guard (Shuttle's scheduler decides who runs next).
#[cfg(feature = "shuttle")]
pub(crate) fn unlock_fair<T>(guard: RwLockWriteGuard<'_, T>) {
    drop(guard);
}

/// Lets other threads run (a spin that waits for another thread must yield to Shuttle's
/// scheduler, or the schedule never reaches that thread).
#[cfg(not(feature = "shuttle"))]
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

/// Lets other threads run, as Shuttle schedules them.
#[cfg(feature = "shuttle")]
pub(crate) fn yield_now() {
    shuttle::thread::yield_now();
}

/// Shuttle's locks behind parking_lot's API (no poisoning: a panic fails the test anyway).
#[cfg(feature = "shuttle")]
mod checked {
    use std::fmt;

    pub(crate) type RwLockWriteGuard<'a, T> = shuttle::sync::RwLockWriteGuard<'a, T>;
    pub(crate) type RwLockReadGuard<'a, T> = shuttle::sync::RwLockReadGuard<'a, T>;

    #[derive(Default)]
    pub(crate) struct Mutex<T: ?Sized>(shuttle::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(shuttle::sync::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub(crate) fn lock(&self) -> shuttle::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: ?Sized> fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Mutex { .. }")
        }
    }

    #[derive(Default)]
    pub(crate) struct RwLock<T: ?Sized>(shuttle::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> RwLock<T> {
            RwLock(shuttle::sync::RwLock::new(value))
        }
    }

    impl<T: ?Sized> RwLock<T> {
        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            self.0.try_write().ok()
        }
    }

    impl<T: ?Sized> fmt::Debug for RwLock<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("RwLock { .. }")
        }
    }
}

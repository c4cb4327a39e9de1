//! The one place the engine takes its synchronisation primitives from.
//!
//! Every lock and atomic in the engine is imported from here rather than from `std` or
//! `parking_lot` directly, so that a model checker's primitives (loom, shuttle) can later be
//! substituted in one file; no such substitution exists yet.

pub(crate) use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

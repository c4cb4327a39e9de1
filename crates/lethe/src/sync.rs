//! The one place the engine takes its synchronisation primitives from.
//!
//! Every lock and atomic in the engine is imported from here rather than from `std` or
//! `parking_lot` directly, so a concurrency checker (loom, shuttle) can be swapped in by changing
//! this file alone.

pub(crate) use parking_lot::RwLock;
pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

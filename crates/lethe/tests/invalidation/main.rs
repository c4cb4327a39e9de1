//! Invalidation behaviour: hierarchical tags, prefix and glob patterns, the dependency cascade,
//! versions and floors, ETags, leases (including the stale-fill race they exist to close),
//! subscribers and stale reads. Every test asserts something the engine could get wrong.

mod common;
mod dependencies;
mod leases;
mod patterns;
mod stale;
mod subscribers;
mod tags;
mod versions;

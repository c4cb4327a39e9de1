//! The three benchmark suites. Each one builds its caches through [`crate::systems`], reports
//! through [`crate::report`], and knows nothing about the other suites.

pub mod hitratio;
pub mod memory;
pub mod throughput;

//! The benchmark suites. Each one builds its caches through [`crate::systems`] and reports
//! through [`crate::report`]. The invalidation suite reuses the throughput suite's measurement
//! loop for its tagged-throughput case; otherwise suites know nothing about each other. The
//! invalidation and server suites start their servers through [`crate::redis_server`] and
//! [`crate::lethe_server`]; the cdc and consistency suites start their own PostgreSQL through `lethe_cdc::testing`, the bus
//! and cluster suites their nats-server through `lethe_bus::testing`.
//!
//! [`ALL`] is the one list of suites: the command line, `all`'s order and the header of
//! `BENCHMARKS.md` are all read from it, so a new suite cannot be runnable yet unlisted.

use crate::report::RunContext;

pub mod bus;
mod bus_cluster;
pub mod cdc;
pub mod cluster;
pub mod consistency;
pub mod hitratio;
pub mod invalidation;
pub mod memory;
pub mod robustness;
pub mod server;
pub mod server_memory;
pub mod throughput;

/// A suite the command line can name.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// Its argument, and its `lethe-bench:<name>` section of `BENCHMARKS.md`.
    pub name: &'static str,
    /// Runs it; an error when it could not run (a missing service, a failed setup).
    pub run: fn(&RunContext) -> Result<(), String>,
}

/// Every suite, in the order `all` runs them.
pub const ALL: [Suite; 10] = [
    Suite {
        name: throughput::SUITE,
        run: |ctx| {
            throughput::run(ctx);
            Ok(())
        },
    },
    Suite {
        name: hitratio::SUITE,
        run: |ctx| hitratio::run(ctx, &ctx.traces_dir()),
    },
    Suite {
        name: memory::SUITE,
        run: |ctx| {
            memory::run(ctx);
            Ok(())
        },
    },
    Suite {
        name: invalidation::SUITE,
        run: |ctx| {
            invalidation::run(ctx);
            Ok(())
        },
    },
    Suite {
        name: server::SUITE,
        run: server::run,
    },
    Suite {
        name: cdc::SUITE,
        run: cdc::run,
    },
    Suite {
        name: consistency::SUITE,
        run: consistency::run,
    },
    Suite {
        name: robustness::SUITE,
        run: robustness::run,
    },
    Suite {
        name: bus::SUITE,
        run: bus::run,
    },
    Suite {
        name: cluster::SUITE,
        run: cluster::run,
    },
];

/// The names of [`ALL`], in order.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_not_reserved() {
        let names = names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} listed twice");
            assert!(
                !["all", "header"].contains(n),
                "{n} is reserved (the command line's `all`, BENCHMARKS.md's header section)"
            );
        }
    }
}

//! `lethe-bench`: the benchmark harness that compares Lethe against moka, quick_cache, lru and
//! Redis.
//!
//! This file owns the command line and the dispatch to suites, nothing else. Each suite lives in
//! `suites/` (listed once, in [`suites::ALL`]) and reports through [`report`], which prints one
//! JSON line per result (the machine-readable output), a human summary table, and rewrites the
//! suite's own section of the workspace's `BENCHMARKS.md`, with its charts ([`charts`]) in
//! `benchmarks/<suite>/` beside it, so published figures always come from a recorded command.
//! Long runs on a terminal show their progress through [`progress`].

// Denied rather than forbidden: the counting allocator must implement `GlobalAlloc`, an unsafe
// trait, and only that module is allowed to.
#![deny(unsafe_code)]

#[macro_use]
mod progress;

// SAFETY: the global allocator is an `unsafe impl GlobalAlloc` by necessity; each of its methods
// only forwards to `System` with the caller's arguments (see the SAFETY comment on the impl).
// Nothing else in the crate may use unsafe code.
#[allow(unsafe_code)]
mod alloc;
mod charts;
mod lethe_server;
mod redis_server;
mod report;
mod resp;
mod suites;
mod systems;
mod traces;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clap::builder::PossibleValuesParser;

use crate::report::RunContext;
use crate::systems::System;

/// Benchmark Lethe against other Rust caches.
///
/// Every result is printed to stdout as one JSON line; a summary table goes to stderr, and the
/// suite's section of BENCHMARKS.md (at the workspace root) and its charts (benchmarks/<suite>/
/// beside it) are rewritten unless --no-write.
#[derive(Debug, Parser)]
#[command(name = "lethe-bench", version)]
struct Cli {
    /// Which suite to run; `all` runs every suite in turn, in the order listed.
    #[arg(value_parser = PossibleValuesParser::new(suite_choices()))]
    suite: String,

    /// Short, noisier run meant to finish each suite in well under a minute (no progress bars).
    #[arg(long)]
    quick: bool,

    /// Directory holding the `arc/` and `lirs/` traces [default: <workspace>/../shared/traces].
    #[arg(long, env = "LETHE_TRACES", value_name = "DIR")]
    traces: Option<PathBuf>,

    /// Do not rewrite BENCHMARKS.md or its charts.
    #[arg(long)]
    no_write: bool,

    /// Only run these systems (comma separated) instead of the suite's default set.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SYSTEMS")]
    systems: Vec<System>,

    /// Only run cases whose name contains this substring (e.g. `2t`, `OLTP`).
    #[arg(long, value_name = "SUBSTRING")]
    cases: Option<String>,
}

fn suite_choices() -> Vec<&'static str> {
    let mut names = suites::names();
    names.push("all");
    names
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = RunContext::new(
        cli.quick,
        !cli.no_write,
        cli.systems.clone(),
        cli.cases.clone(),
    )
    .with_traces(cli.traces.clone());
    progress::init(!cli.quick);
    if cfg!(debug_assertions) {
        say!("warning: this is a debug build; throughput figures are meaningless (use --release)");
    }

    let selected: Vec<&suites::Suite> = suites::ALL
        .iter()
        .filter(|s| cli.suite == "all" || cli.suite == s.name)
        .collect();
    let mut failed = false;
    for (i, suite) in selected.iter().enumerate() {
        let _bar = progress::suite(suite.name, i, selected.len());
        if let Err(e) = (suite.run)(&ctx) {
            say!("error: {} suite failed: {e}", suite.name);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

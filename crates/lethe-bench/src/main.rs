//! `lethe-bench`: the benchmark harness that compares Lethe against moka, quick_cache, lru and
//! Redis.
//!
//! This file owns the command line and the dispatch to suites, nothing else. Each suite lives in
//! `suites/` and reports through [`report`], which prints one JSON line per result (the
//! machine-readable output), a human summary table, and rewrites the suite's own section of the
//! workspace's `BENCHMARKS.md` so published figures always come from a recorded command.

mod alloc;
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

use clap::{Parser, ValueEnum};

use crate::report::RunContext;
use crate::systems::System;

/// Benchmark Lethe against other Rust caches.
///
/// Every result is printed to stdout as one JSON line; a summary table goes to stderr, and the
/// suite's section of BENCHMARKS.md (at the workspace root) is rewritten unless --no-write.
#[derive(Debug, Parser)]
#[command(name = "lethe-bench", version)]
struct Cli {
    /// Which suite to run (`all` runs throughput, hitratio, memory, invalidation, server, cdc,
    /// consistency, robustness and bus in turn).
    #[arg(value_enum)]
    suite: SuiteArg,

    /// Short, noisier run meant to finish each suite in well under a minute.
    #[arg(long)]
    quick: bool,

    /// Directory holding the `arc/` and `lirs/` traces [default: <workspace>/../shared/traces].
    #[arg(long, env = "LETHE_TRACES", value_name = "DIR")]
    traces: Option<PathBuf>,

    /// Do not rewrite BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,

    /// Only run these systems (comma separated) instead of the suite's default set.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "SYSTEMS")]
    systems: Vec<System>,

    /// Only run cases whose name contains this substring (e.g. `2t`, `OLTP`).
    #[arg(long, value_name = "SUBSTRING")]
    cases: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SuiteArg {
    Throughput,
    Hitratio,
    Memory,
    Invalidation,
    Server,
    Cdc,
    Consistency,
    Robustness,
    Bus,
    All,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = RunContext::new(
        cli.quick,
        !cli.no_write,
        cli.systems.clone(),
        cli.cases.clone(),
    );
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; throughput figures are meaningless (use --release)"
        );
    }

    let run_throughput = matches!(cli.suite, SuiteArg::Throughput | SuiteArg::All);
    let run_hitratio = matches!(cli.suite, SuiteArg::Hitratio | SuiteArg::All);
    let run_memory = matches!(cli.suite, SuiteArg::Memory | SuiteArg::All);
    let run_invalidation = matches!(cli.suite, SuiteArg::Invalidation | SuiteArg::All);
    let run_server = matches!(cli.suite, SuiteArg::Server | SuiteArg::All);
    let run_cdc = matches!(cli.suite, SuiteArg::Cdc | SuiteArg::All);
    let run_consistency = matches!(cli.suite, SuiteArg::Consistency | SuiteArg::All);
    let run_robustness = matches!(cli.suite, SuiteArg::Robustness | SuiteArg::All);
    let run_bus = matches!(cli.suite, SuiteArg::Bus | SuiteArg::All);

    let mut failed = false;
    if run_throughput {
        suites::throughput::run(&ctx);
    }
    if run_hitratio {
        let dir = cli
            .traces
            .clone()
            .unwrap_or_else(|| report::workspace_root().join("../shared/traces"));
        if let Err(e) = suites::hitratio::run(&ctx, &dir) {
            eprintln!("error: hitratio suite failed: {e}");
            failed = true;
        }
    }
    if run_memory {
        suites::memory::run(&ctx);
    }
    if run_invalidation {
        suites::invalidation::run(&ctx);
    }
    if run_server {
        if let Err(e) = suites::server::run(&ctx) {
            eprintln!("error: server suite failed: {e}");
            failed = true;
        }
    }
    if run_cdc {
        if let Err(e) = suites::cdc::run(&ctx) {
            eprintln!("error: cdc suite failed: {e}");
            failed = true;
        }
    }
    if run_consistency {
        if let Err(e) = suites::consistency::run(&ctx) {
            eprintln!("error: consistency suite failed: {e}");
            failed = true;
        }
    }
    if run_robustness {
        if let Err(e) = suites::robustness::run(&ctx) {
            eprintln!("error: robustness suite failed: {e}");
            failed = true;
        }
    }
    if run_bus {
        if let Err(e) = suites::bus::run(&ctx) {
            eprintln!("error: bus suite failed: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

//! Server suite: `lethe serve` against `redis-server` over loopback TCP.
//!
//! The harness starts both servers on free loopback ports (never 6379 or 6380): Lethe through
//! [`crate::lethe_server`] (a release build of `lethe-server`, built if needed, keyspace budget
//! [`MAX_MEMORY`]) and Redis through [`crate::redis_server`] (persistence off). Both run for the
//! whole suite and are stopped on drop, also when the suite panics. Before any measurement each
//! server is loaded with the whole keyspace (`key:000000000000` ... the same names
//! `redis-benchmark -r` generates, 3-byte values like its `SET`s), untimed, and checked, so
//! every `GET` hits.
//!
//! Cases (names are stable across modes; `--quick` only shrinks the request counts):
//!
//! - `set:P1`, `get:P1`, `set:P16`, `get:P16`: `redis-benchmark -c 50 -n N -r 100000 -P p -t
//!   set|get --csv` against each server, one invocation per test (so the CPU reading covers
//!   one command only). `ops_per_sec` is the requests per second redis-benchmark reports
//!   (wall clock, 50 connections, `p` commands in flight per connection).
//! - `incr_hot:P16`: `-t incr -r 1000` (INCR on 1,000 hot counters, `counter:__rand_int__`).
//! - `mset10:P16`: `-t mset` (one MSET of 10 keys per request, keys from the whole keyspace).
//! - `hset_1k:P16`: `HSET hash:1k f:__rand_int__ xxx` with `-r 1000`, after the hash was
//!   loaded with its 1,000 fields: every request updates a field of a 1,000-field hash.
//! - `sadd:P16`: `-t sadd` (`SADD myset element:__rand_int__`: one set growing to up to
//!   100,000 members, a hash table).
//! - `lpush:P16`, `lpop:P16`: `-t lpush` then `-t lpop` (one list, `mylist`, grown by N pushes
//!   at its head and emptied again by N pops).
//! - `tagged_set`: one logical write = a value stored with two tags, `t:{k % 1000}` and
//!   `g:{k % 100}`, for a uniformly random `k` below 100,000. On Lethe it is one command,
//!   `LETHE.SET key:k xxx TAGS 2 t:.. g:..`; on Redis the usual emulation, `SET key:k xxx`,
//!   `SADD t:.. key:k`, `SADD g:.. key:k` sent as one pipeline (one round trip, no `MULTI`).
//!   redis-benchmark cannot send a different pipeline per request, so both sides are driven by
//!   the same Rust client instead: 50 threads, each with its own synchronous connection from
//!   the `redis` crate, each doing its share of the logical writes one round trip at a time
//!   (so 50 in flight, like `-c 50 -P 1`). `ops_per_sec` is logical writes per second of wall
//!   clock, from releasing the threads (all connected) until the last one finishes. After the
//!   runs the suite checks that a key's tags (Lethe: `LETHE.TAGS`; Redis: `SISMEMBER`) are set.
//! - `tagged_set:P16`: the same logical writes, 16 per round trip (one pipeline of 16
//!   `LETHE.SET`s against one of 48 commands on Redis), like `-P 16`: with fewer round trips
//!   the servers' own work per logical write shows more than the client's.
//!
//! `cpu_s_per_1m_ops` is the server process's CPU time (user + system, all threads, from
//! `/proc/<pid>/stat`, in clock ticks of `getconf CLK_TCK`) across one run, per million
//! requests (logical writes for `tagged_set`). It includes the little work of accepting and
//! closing the 50 connections. Tick resolution is 10 ms at the usual 100 Hz, so short quick runs
//! are coarse.
//!
//! Two charts show the throughput and CPU figures side by side, Lethe against Redis per case.
//! The tables and charts are made from the collected records in `server/render.rs`.
//!
//! Every measurement is repeated (3 runs) and the median reported; within a run the two
//! servers alternate, and which goes first alternates between runs. The load generator runs on
//! the same machine and competes with the server for cores; it is the same for both servers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::lethe_server::{self, LetheServer};
use crate::progress;
use crate::redis_server::RedisServer;
use crate::report::{RunContext, SuiteReport, thousands};
use crate::systems::System;

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "server";

mod render;

use render::{collection_case, figures, render};
/// Concurrent connections, for redis-benchmark and the tagged-set client alike.
const CLIENTS: usize = 50;
/// Distinct keys (`-r`).
const KEYSPACE: u64 = 100_000;
/// Logical tagged writes per round trip: one (the `tagged_set` case), and 16 like `-P 16`.
const TAGGED_DEPTHS: [u64; 2] = [1, 16];
/// Pipeline depths measured with redis-benchmark.
const PIPELINES: [u32; 2] = [1, 16];
/// Runs per measurement (median reported).
const RUNS: usize = 3;
/// Lethe's keyspace budget: far above what the suite stores, so nothing is evicted.
const MAX_MEMORY: u64 = 1 << 30;
/// Value written by the prefill and the tagged sets (redis-benchmark's default 3-byte value).
const VALUE: &str = "xxx";
/// Keys per pipeline when loading the keyspace.
const LOAD_BATCH: u64 = 10_000;
/// The memory case's name.
const MEMORY_CASE: &str = "memory_1m";
/// The collection memory case's name (its rows are `memory_<type>_<members>`).
const COLLECTIONS_CASE: &str = "memory_collections";
/// Collection members loaded per measurement (a tenth with `--quick`).
const COLLECTION_MEMBERS: u64 = 100_000;
/// Targets from the issue.
const TARGET_P1: f64 = 1.0;
const TARGET_P16: f64 = 1.3;
const TARGET_CPU: f64 = 0.8;
const TARGET_TAGGED: f64 = 2.0;
/// The keyspace issue's cases: at least Redis's throughput at -P 16.
const TARGET_NEW_CASES: f64 = 1.0;

/// One redis-benchmark case: its name, the `-t` test or the command line, `-r`, `-P`, `-n`.
#[derive(Debug, Clone)]
struct BenchCase {
    name: String,
    load: Load,
    keyspace: u64,
    pipeline: u32,
    requests: u64,
}

#[derive(Debug, Clone)]
enum Load {
    /// A built-in test (`-t set`), named so in the CSV.
    Test(&'static str),
    /// A command line given after the options (its CSV row is named by the line).
    Command(&'static [&'static str]),
}

/// The fields `hset_1k` updates, all loaded first.
const HASH_FIELDS: u64 = 1_000;
/// The hot counters of `incr_hot`.
const HOT_KEYS: u64 = 1_000;
const HSET_1K: &[&str] = &["HSET", "hash:1k", "f:__rand_int__", VALUE];
/// The first ten members with scores of the sorted set redis-benchmark's `zadd` test fills.
const ZRANGE_10: &[&str] = &["ZRANGE", "myzset", "0", "9", "WITHSCORES"];

#[derive(Debug)]
struct Settings {
    /// `-n` per redis-benchmark run, by pipeline depth (index into [`PIPELINES`]).
    requests: [u64; 2],
    /// Logical writes per `tagged_set` run.
    tagged_ops: u64,
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Settings {
                requests: [50_000, 200_000],
                tagged_ops: 20_000,
            }
        } else {
            Settings {
                requests: [300_000, 1_500_000],
                tagged_ops: 200_000,
            }
        }
    }
}

/// One server under test, as the measurements see it.
#[derive(Debug, Clone, Copy)]
struct Target {
    name: &'static str,
    port: u16,
    pid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lethe,
    Redis,
}

/// The suite's records, kept alongside the report so the suite can render its own table.
#[derive(Debug)]
struct Sink {
    report: SuiteReport,
    rows: Vec<(String, &'static str, &'static str, f64)>,
}

impl Sink {
    fn push(&mut self, case: &str, system: &'static str, metric: &'static str, value: f64) {
        self.report.push_named(case, system, metric, value);
        self.rows.push((case.to_string(), system, metric, value));
    }

    fn get(&self, case: &str, system: &str, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.0 == case && r.1 == system && r.2 == metric)
            .map(|r| r.3)
    }
}

pub fn run(ctx: &RunContext) -> Result<(), String> {
    if !ctx.systems(&[System::Lethe]).contains(&System::Lethe) {
        say!("[{SUITE}] skipped: lethe is not among --systems");
        return Ok(());
    }
    let s = Settings::new(ctx.quick);
    let mut bench_cases: Vec<BenchCase> = Vec::new();
    for (&p, n) in PIPELINES.iter().zip(s.requests) {
        for t in ["set", "get"] {
            bench_cases.push(BenchCase {
                name: format!("{t}:P{p}"),
                load: Load::Test(t),
                keyspace: KEYSPACE,
                pipeline: p,
                requests: n,
            });
        }
    }
    let deep = s.requests[1];
    for (name, load, keyspace, requests) in [
        ("incr_hot:P16", Load::Test("incr"), HOT_KEYS, deep),
        // Ten keys per request: a tenth of the requests for about the same work.
        ("mset10:P16", Load::Test("mset"), KEYSPACE, deep / 10),
        ("hset_1k:P16", Load::Command(HSET_1K), HASH_FIELDS, deep),
        ("sadd:P16", Load::Test("sadd"), KEYSPACE, deep),
        // LPUSH grows one list that LPOP, run next, empties again.
        ("lpush:P16", Load::Test("lpush"), KEYSPACE, deep),
        ("lpop:P16", Load::Test("lpop"), KEYSPACE, deep),
        // ZADD fills redis-benchmark's `myzset` (up to 100,000 members), which ZRANGE reads.
        ("zadd:P16", Load::Test("zadd"), KEYSPACE, deep),
        ("zrange:P16", Load::Command(ZRANGE_10), KEYSPACE, deep),
    ] {
        bench_cases.push(BenchCase {
            name: name.into(),
            load,
            keyspace,
            pipeline: 16,
            requests,
        });
    }
    bench_cases.retain(|c| ctx.selects_case(&c.name));
    let tagged_cases: Vec<(String, u64)> = TAGGED_DEPTHS
        .iter()
        .map(|&d| (tagged_name(d), d))
        .filter(|c| ctx.selects_case(&c.0))
        .collect();
    let tagged = !tagged_cases.is_empty();
    let memory = ctx.selects_case(MEMORY_CASE);
    let collections = ctx.selects_case(COLLECTIONS_CASE);
    if bench_cases.is_empty() && !tagged && !memory && !collections {
        say!("[{SUITE}] no cases selected");
        return Ok(());
    }

    let lethe_bin = lethe_server::binary()?;
    let lethe = LetheServer::start(&lethe_bin, MAX_MEMORY)?;
    let redis = match RedisServer::start() {
        Ok(r) => Some(r),
        Err(e) => {
            say!("[{SUITE}] redis-server unavailable, measuring lethe alone: {e}");
            None
        }
    };
    let mut servers = vec![(
        Kind::Lethe,
        Target {
            name: "lethe",
            port: lethe.port(),
            pid: lethe.pid(),
        },
    )];
    if let Some(r) = &redis {
        servers.push((
            Kind::Redis,
            Target {
                name: "redis",
                port: r.port(),
                pid: r.pid(),
            },
        ));
    }
    let tick = clock_ticks_per_second();

    let mode = format!(
        "redis-benchmark -n {} (-P 1) / {} (-P 16), tagged_set {} logical writes; {RUNS} runs \
         each, median; {CLIENTS} connections, keyspace {}",
        thousands(s.requests[0]),
        thousands(s.requests[1]),
        thousands(s.tagged_ops),
        thousands(KEYSPACE)
    );
    let mut sink = Sink {
        report: SuiteReport::new(
            SUITE,
            "Server (lethe serve vs redis-server)",
            &[System::Lethe],
            mode,
        ),
        rows: Vec::new(),
    };
    sink.report.note(
        "Methodology (full detail in `crates/lethe-bench/src/suites/server.rs`): both servers \
         run on free loopback ports for the whole suite (Redis with persistence off, Lethe a \
         release build with a 1 GiB budget) and are loaded with the whole 100,000-key keyspace \
         first, so every `GET` hits. `set:Pp` / `get:Pp` run `redis-benchmark -c 50 -n N -r \
         100000 -P p -t set|get --csv`, one test per invocation; `ops_per_sec` is the rate it \
         reports. `tagged_set` is one write with two tags (`t:{k%1000}`, `g:{k%100}`): \
         `LETHE.SET key v TAGS 2 ..` on Lethe, `SET` + 2 `SADD` in one pipeline (one round \
         trip, no `MULTI`) on Redis, both sent by the same Rust client (50 threads, one \
         synchronous `redis` crate connection each, one round trip in flight per connection); \
         `ops_per_sec` is logical writes per second. `cpu_s_per_1m_ops` is the server \
         process's user + system CPU time (all threads, `/proc/<pid>/stat`) over a run, per \
         million requests (logical writes for `tagged_set`). Each figure is the median of 3 \
         runs; the servers alternate within a run and the first one alternates between runs. \
         The load generator shares the machine's cores with the server under test.",
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut versions = format!(
        "Servers: `lethe` (release build of `lethe-server` from this tree), `redis-server` {}; \
         `{}`. {cores} cores: Lethe's server uses a multi-threaded runtime (one worker per \
         core), Redis one thread.",
        redis
            .as_ref()
            .map_or_else(|| "–".into(), RedisServer::version),
        redis_benchmark_version()
    );
    if redis.is_none() {
        versions.push_str(" **redis-server did not start; Redis figures are missing.**");
    }
    sink.report.note(versions);

    let t0 = Instant::now();
    for &(kind, target) in &servers {
        let mut con = match kind {
            Kind::Lethe => lethe.connection(),
            Kind::Redis => redis
                .as_ref()
                .expect("listed only when started")
                .connection(),
        };
        load_keyspace(&mut con, target.name);
    }
    say!(
        "[{SUITE}] loaded {} keys into each server in {:.2} s",
        thousands(KEYSPACE),
        t0.elapsed().as_secs_f64()
    );

    // samples[case][server] = [(ops/s, cpu s per 1M)]
    let names: Vec<String> = bench_cases
        .iter()
        .map(|c| c.name.clone())
        .chain(tagged_cases.iter().map(|c| c.0.clone()))
        .collect();
    let mut samples = vec![vec![Vec::new(); servers.len()]; names.len()];
    let mut failed = None;
    let steps = RUNS * names.len() * servers.len()
        + usize::from(memory)
        + usize::from(collections)
            * super::server_memory::COLLECTION_TYPES.len()
            * super::server_memory::COLLECTION_SIZES.len();
    let bar = progress::steps(SUITE, steps as u64);
    'runs: for run in 0..RUNS {
        for (ci, name) in names.iter().enumerate() {
            bar.set_message(format!("{name} run {}/{RUNS}", run + 1));
            for i in 0..servers.len() {
                let si = (i + run) % servers.len();
                let (kind, target) = servers[si];
                let result = match bench_cases.get(ci) {
                    Some(case) => redis_benchmark(target, case, tick),
                    None => {
                        let depth = tagged_cases[ci - bench_cases.len()].1;
                        Ok(tagged_set(target, kind, s.tagged_ops, depth, tick))
                    }
                };
                match result {
                    Ok((ops, cpu)) => {
                        say!(
                            "[{SUITE}] {name} run {}/{RUNS}: {} {:.0} ops/s, {:.3} CPU s per 1M",
                            run + 1,
                            target.name,
                            ops,
                            cpu
                        );
                        samples[ci][si].push((ops, cpu));
                        bar.inc(1);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break 'runs;
                    }
                }
            }
        }
    }
    if tagged {
        check_tags(&lethe, redis.as_ref());
    }
    drop(redis);
    drop(lethe);
    if memory && failed.is_none() {
        bar.set_message(MEMORY_CASE);
        let keys = if ctx.quick { 100_000 } else { 1_000_000 };
        match super::server_memory::run(&lethe_bin, keys) {
            Ok((l, r)) => {
                say!("[{SUITE}] {MEMORY_CASE}: lethe {l:?}, redis {r:?}");
                sink.push(MEMORY_CASE, "lethe", "keys", l.keys as f64);
                sink.push(
                    MEMORY_CASE,
                    "lethe",
                    "resident_bytes_per_key",
                    l.resident_per_key,
                );
                sink.push(
                    MEMORY_CASE,
                    "lethe",
                    "used_memory_bytes_per_key",
                    l.used_memory_per_key,
                );
                if let Some(e) = l.used_memory_error {
                    sink.push(MEMORY_CASE, "lethe", "used_memory_error", e);
                }
                if let Some(r) = r {
                    sink.push(
                        MEMORY_CASE,
                        "redis",
                        "resident_bytes_per_key",
                        r.resident_per_key,
                    );
                    sink.push(
                        MEMORY_CASE,
                        "redis",
                        "used_memory_bytes_per_key",
                        r.used_memory_per_key,
                    );
                    sink.push(
                        MEMORY_CASE,
                        "lethe",
                        "resident_over_redis",
                        l.resident_per_key / r.resident_per_key.max(1.0),
                    );
                }
            }
            Err(e) => failed = Some(e),
        }
        bar.inc(1);
    }
    if collections && failed.is_none() {
        let members = if ctx.quick {
            COLLECTION_MEMBERS / 10
        } else {
            COLLECTION_MEMBERS
        };
        'kinds: for kind in super::server_memory::COLLECTION_TYPES {
            for size in super::server_memory::COLLECTION_SIZES {
                let case = collection_case(kind, size);
                bar.set_message(case.clone());
                let result = super::server_memory::run_collections(&lethe_bin, kind, size, members);
                bar.inc(1);
                match result {
                    Ok((l, r)) => {
                        say!("[{SUITE}] {case}: lethe {l:?}, redis {r:?}");
                        sink.push(&case, "lethe", "members", l.members as f64);
                        sink.push(&case, "lethe", "bytes_per_member", l.allocated_per_member);
                        sink.push(
                            &case,
                            "lethe",
                            "resident_bytes_per_member",
                            l.resident_per_member,
                        );
                        if let Some(r) = r {
                            sink.push(&case, "redis", "bytes_per_member", r.allocated_per_member);
                            sink.push(
                                &case,
                                "redis",
                                "resident_bytes_per_member",
                                r.resident_per_member,
                            );
                            sink.push(
                                &case,
                                "lethe",
                                "bytes_over_redis",
                                l.allocated_per_member / r.allocated_per_member.max(1.0),
                            );
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break 'kinds;
                    }
                }
            }
        }
    }
    if let Some(e) = &failed {
        say!("[{SUITE}] stopped early: {e}");
        sink.report
            .note(format!("**The suite stopped early:** {e}."));
    }

    // The memory case's rows are pushed above; the rest are medians of the samples.
    for (ci, name) in names.iter().enumerate() {
        for (si, &(_, target)) in servers.iter().enumerate() {
            let s = &samples[ci][si];
            if s.is_empty() {
                continue;
            }
            let ops = median(&mut s.iter().map(|x| x.0).collect::<Vec<_>>());
            let cpu = median(&mut s.iter().map(|x| x.1).collect::<Vec<_>>());
            sink.push(name, target.name, "ops_per_sec", ops);
            sink.push(name, target.name, "cpu_s_per_1m_ops", cpu);
        }
        let l = sink.get(name, "lethe", "ops_per_sec");
        let r = sink.get(name, "redis", "ops_per_sec");
        if let (Some(l), Some(r)) = (l, r) {
            sink.push(name, "lethe", "ops_over_redis", l / r);
        }
        let l = sink.get(name, "lethe", "cpu_s_per_1m_ops");
        let r = sink.get(name, "redis", "cpu_s_per_1m_ops");
        if let (Some(l), Some(r)) = (l, r) {
            if r > 0.0 {
                sink.push(name, "lethe", "cpu_over_redis", l / r);
            }
        }
    }
    drop(bar);
    say!("[{SUITE}] done in {:.1} s", t0.elapsed().as_secs_f64());
    for figure in figures(&sink, &names) {
        sink.report.figure(figure);
    }
    let table = render(&sink);
    sink.report.finish_with_table(ctx, &table);
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `SET key:{i:012} xxx` for the whole keyspace (redis-benchmark's `-r` key names) and the
/// 1,000 fields of `hash:1k`, then a check that the first and last keys are there.
fn load_keyspace(con: &mut redis::Connection, name: &str) {
    let mut pipe = redis::pipe();
    for i in 0..HASH_FIELDS {
        pipe.cmd("HSET")
            .arg("hash:1k")
            .arg(format!("f:{i:012}"))
            .arg(VALUE)
            .ignore();
    }
    pipe.query::<()>(con)
        .unwrap_or_else(|e| panic!("loading hash:1k into {name} failed: {e}"));
    for start in (0..KEYSPACE).step_by(LOAD_BATCH as usize) {
        let mut pipe = redis::pipe();
        for i in start..(start + LOAD_BATCH).min(KEYSPACE) {
            pipe.cmd("SET").arg(bench_key(i)).arg(VALUE).ignore();
        }
        pipe.query::<()>(con)
            .unwrap_or_else(|e| panic!("loading the keyspace into {name} failed: {e}"));
    }
    for i in [0, KEYSPACE - 1] {
        let v: Option<String> = redis::cmd("GET")
            .arg(bench_key(i))
            .query(con)
            .unwrap_or_else(|e| panic!("GET on {name} failed: {e}"));
        assert_eq!(
            v.as_deref(),
            Some(VALUE),
            "{name} lost {} right after loading it",
            bench_key(i)
        );
    }
}

/// The key name `redis-benchmark -r` generates for `key:__rand_int__`.
fn bench_key(i: u64) -> String {
    format!("key:{i:012}")
}

/// One redis-benchmark invocation: (requests per second, server CPU seconds per 1M requests).
fn redis_benchmark(target: Target, case: &BenchCase, tick: f64) -> Result<(f64, f64), String> {
    let requests = case.requests;
    let mut cmd = Command::new(redis_benchmark_binary());
    cmd.args(["-h", "127.0.0.1"])
        .args(["-p", &target.port.to_string()])
        .args(["-c", &CLIENTS.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-r", &case.keyspace.to_string()])
        .args(["-P", &case.pipeline.to_string()])
        .arg("--csv")
        .stdin(Stdio::null());
    let test = match &case.load {
        Load::Test(t) => {
            cmd.args(["-t", t]);
            t.to_string()
        }
        Load::Command(line) => {
            cmd.args(line.iter());
            line.join(" ")
        }
    };
    let test = test.as_str();
    let before = cpu_ticks(target.pid)?;
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    let after = cpu_ticks(target.pid)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark against {} exited with {}: {}",
            target.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let rps = parse_csv_rps(&stdout, test).ok_or_else(|| {
        format!(
            "no {} result in redis-benchmark's output against {}: {stdout:?} (stderr: {:?})",
            test.to_uppercase(),
            target.name,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let cpu = (after - before) as f64 / tick;
    Ok((rps, cpu / requests as f64 * 1e6))
}

/// The `rps` field of the `"SET","...",...` line of `redis-benchmark --csv`.
fn parse_csv_rps(csv: &str, test: &str) -> Option<f64> {
    csv.lines().find_map(|line| {
        let mut fields = line.split(',').map(|f| f.trim().trim_matches('"'));
        // MSET's row reads "MSET (10 keys)".
        let name = fields.next()?;
        let name = name.split(" (").next().unwrap_or(name);
        if !name.eq_ignore_ascii_case(test) {
            return None;
        }
        fields.next()?.parse().ok()
    })
}

fn redis_benchmark_binary() -> &'static str {
    if Path::new("/usr/bin/redis-benchmark").is_file() {
        "/usr/bin/redis-benchmark"
    } else {
        "redis-benchmark"
    }
}

fn redis_benchmark_version() -> String {
    Command::new(redis_benchmark_binary())
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "redis-benchmark (version unknown)".into())
}

/// The case name for tagged writes sent `depth` per round trip.
fn tagged_name(depth: u64) -> String {
    if depth == 1 {
        "tagged_set".to_string()
    } else {
        format!("tagged_set:P{depth}")
    }
}

/// One `tagged_set` run, `depth` logical writes per round trip: (logical writes per second,
/// server CPU seconds per 1M writes).
fn tagged_set(target: Target, kind: Kind, ops: u64, depth: u64, tick: f64) -> (f64, f64) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", target.port))
        .expect("a loopback address is valid");
    let barrier = Barrier::new(CLIENTS + 1);
    let (elapsed, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let share = ops / CLIENTS as u64 + u64::from((c as u64) < ops % CLIENTS as u64);
                let (client, barrier) = (&client, &barrier);
                scope.spawn(move || {
                    let mut con = client.get_connection().unwrap_or_else(|e| {
                        panic!("cannot connect to {} for tagged_set: {e}", target.name)
                    });
                    let mut rng = StdRng::seed_from_u64(0x7A66_0000 + c as u64);
                    barrier.wait();
                    let mut left = share;
                    while left > 0 {
                        let n = left.min(depth);
                        left -= n;
                        let mut pipe = redis::pipe();
                        for _ in 0..n {
                            tagged_write(&mut pipe, kind, rng.gen_range(0..KEYSPACE));
                        }
                        pipe.query::<()>(&mut con).unwrap_or_else(|e| {
                            panic!("tagged write to {} failed: {e}", target.name)
                        });
                    }
                })
            })
            .collect();
        let before = cpu_ticks(target.pid).expect("the server is running");
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        let elapsed = t.elapsed().as_secs_f64();
        let after = cpu_ticks(target.pid).expect("the server is running");
        (elapsed, (after - before) as f64 / tick)
    });
    (ops as f64 / elapsed, cpu / ops as f64 * 1e6)
}

/// Adds one logical tagged write of key `k` to `pipe`: one command on Lethe, three on Redis.
fn tagged_write(pipe: &mut redis::Pipeline, kind: Kind, k: u64) {
    let key = bench_key(k);
    let (t, g) = tags(k);
    match kind {
        Kind::Lethe => {
            pipe.cmd("LETHE.SET")
                .arg(&key)
                .arg(VALUE)
                .arg("TAGS")
                .arg(2)
                .arg(t)
                .arg(g)
                .ignore();
        }
        Kind::Redis => {
            pipe.cmd("SET")
                .arg(&key)
                .arg(VALUE)
                .ignore()
                .cmd("SADD")
                .arg(t)
                .arg(&key)
                .ignore()
                .cmd("SADD")
                .arg(g)
                .arg(&key)
                .ignore();
        }
    }
}

fn tags(k: u64) -> (String, String) {
    (format!("t:{}", k % 1000), format!("g:{}", k % 100))
}

/// Panics unless a key written by `tagged_set` carries its two tags on both servers.
fn check_tags(lethe: &LetheServer, redis: Option<&RedisServer>) {
    let k = 4242;
    let (key, (t, g)) = (bench_key(k), tags(k));
    let write = |con: &mut redis::Connection, kind| {
        let mut pipe = redis::pipe();
        tagged_write(&mut pipe, kind, k);
        pipe.query::<()>(con)
    };
    let mut con = lethe.connection();
    write(&mut con, Kind::Lethe).expect("LETHE.SET");
    let got: Vec<String> = redis::cmd("LETHE.TAGS")
        .arg(&key)
        .query(&mut con)
        .expect("LETHE.TAGS");
    let mut want = vec![t.clone(), g.clone()];
    want.sort();
    assert_eq!(got, want, "lethe stored the wrong tags for {key}");
    if let Some(redis) = redis {
        let mut con = redis.connection();
        write(&mut con, Kind::Redis).expect("SET + SADD");
        for tag in [&t, &g] {
            let member: bool = redis::cmd("SISMEMBER")
                .arg(tag)
                .arg(&key)
                .query(&mut con)
                .expect("SISMEMBER");
            assert!(member, "redis set {tag} lacks {key}");
        }
    }
}

/// utime + stime of process `pid` (all its threads), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    parse_stat_ticks(&stat).ok_or_else(|| format!("cannot parse /proc/{pid}/stat: {stat:?}"))
}

/// Fields 14 (utime) and 15 (stime) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `getconf CLK_TCK`, or the usual 100 when that fails.
pub(crate) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

fn median(v: &mut [f64]) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::render::target_row;
    use super::*;

    #[test]
    fn parses_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\
                   \"SET\",\"152671.77\",\"3.710\",\"0.336\"\n";
        assert_eq!(parse_csv_rps(csv, "set"), Some(152_671.77));
        assert_eq!(parse_csv_rps(csv, "get"), None);
        assert_eq!(parse_csv_rps("", "set"), None);
    }

    #[test]
    fn parses_proc_stat() {
        // A command name with spaces and a parenthesis; utime 1234, stime 56.
        let stat = "4242 (we ird) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 \
                    3 0 12345 1000000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1290));
        assert_eq!(parse_stat_ticks("garbage"), None);
        let own = cpu_ticks(std::process::id()).expect("own /proc/self/stat");
        assert!(own < u64::MAX / 2);
    }

    #[test]
    fn key_names_match_redis_benchmark() {
        assert_eq!(bench_key(42), "key:000000000042");
        assert_eq!(tags(12_345), ("t:345".to_string(), "g:45".to_string()));
    }

    #[test]
    fn targets_render() {
        let row = target_row("x", Some(1.5), TARGET_P16, true);
        assert_eq!(row[1], "1.50×");
        assert_eq!(row[3], "yes");
        let row = target_row("y", Some(0.9), TARGET_CPU, false);
        assert_eq!(row[3], "**no**");
        assert_eq!(target_row("z", None, 1.0, true)[1], "not measured");
    }
}

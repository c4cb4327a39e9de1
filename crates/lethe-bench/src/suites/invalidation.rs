//! Invalidation suite: what invalidating a large group of entries costs, and what it costs
//! everyone else.
//!
//! Three cases (names are stable across modes; `--quick` only shrinks the sizes):
//!
//! - `tag_1m`: one tag carried by 1,000,000 entries (`String` keys, `u64` values), in a cache
//!   that also holds 200,000 untagged entries and is sized so nothing is evicted.
//!   - `lethe`: `seconds` is the `invalidate_tag` call alone (from then on no tagged entry is
//!     served); `reclaim_seconds` is the `run_pending_tasks` call that then frees their memory.
//!     Both are reported because the first is what a reader sees and the second is work the
//!     engine still has to do. Timed with no other thread running; median of the repetitions.
//!   - `redis_sets`: the approach the Lethe seeds started from, on a real `redis-server` the
//!     harness starts on a free loopback port: every entry is `SET key value` + `SADD tag key`
//!     (loaded with pipelines, not timed), and invalidating the tag is `SMEMBERS tag`, then
//!     `DEL` of all members in commands of 10,000 keys sent as one pipeline, then `DEL tag`.
//!     Timed from the `SMEMBERS` to the last reply. The 200,000 untagged keys are loaded too.
//!     When `redis-server` is missing or does not start, the case is recorded as `skipped`.
//!   - `tag_1m:idle` / `tag_1m:during`: latency of `get` on the lethe cache from a reader
//!     thread (one per spare core, at most three; one on a 2-core machine) looping over
//!     uniformly random keys, 1,000,000 tagged and 200,000 untagged. `during` records from
//!     just before `invalidate_tag` to the return of `run_pending_tasks` (the whole
//!     invalidation including reclamation, on the main thread); `idle` records for exactly as
//!     long with the cache repopulated to the same contents and the main thread asleep. Each
//!     repetition runs one `during` window, repopulates, then one `idle` window, so both
//!     windows see the same entries; all repetitions' samples are pooled. Every `get` is timed
//!     with `Instant::now()` on both sides (its cost, some tens of nanoseconds, is in both
//!     windows) into a log-linear histogram with under 1.6 % relative error. Quantiles are
//!     reported per completed get (`get_p99_us`) and corrected for coordinated omission
//!     (`get_p99_us_corrected`, HdrHistogram's correction with the reader's mean idle time per
//!     get as the expected interval): a reader blocked for milliseconds completes few gets in
//!     that time, so per-get quantiles alone understate a stall. `gets_per_sec` shows the same
//!     from the other side.
//!     Each get is also filed by when it started within its window (`invalidation/timeline.rs`)
//!     for the chart of reader latency over time, during against idle, with the moments
//!     `invalidate_tag` returned and reclamation ended marked.
//!   - `tag_1m:busy`: a third window of the same length in which the main thread spins on its
//!     own, so every core is as busy as in `during` but nothing is invalidated: on a virtual
//!     machine the host may deschedule a busy vCPU for milliseconds, which `idle` (one core
//!     free) never shows. `steal_ms` is the machine's steal time in each kind of window, from
//!     `/proc/stat` (`invalidation/reader_windows.rs`).
//! - `deps_100k`: 100,000 entries depending on one root, as a `fanout` (each depends on the
//!   root) and as a `chain` (entry i depends on entry i-1, the first on the root). `seconds` is
//!   the `invalidate_key(root)` call, which runs the cascade on the calling thread; every
//!   dependent is checked to be gone afterwards. A fresh cache per repetition.
//! - `tagged_throughput`: the throughput suite's 90/10 case at 2 threads (Zipf(1.0) over 1M
//!   `u64` keys, capacity 100,000, same pre-generated streams and prefill, median of the
//!   repetitions, orders rotated), with every insert carrying three tags derived from the key,
//!   `t:{k%1000}`, `g:{k%100}` and `r:{k%10}:{k%1000}` (a two-level tag), against the same case
//!   untagged. All three tags are functions of `k % 1000`, so the 1,000 distinct
//!   `InsertOptions` are built once per cache, outside the timed loop, and an insert borrows
//!   the one for its key: the figure includes everything the engine does with tags (validating
//!   and interning the names, indexing the entry per tag) and no allocation of tag strings by
//!   the harness.
//!
//! The latency histogram is in `invalidation/histogram.rs`, the table in
//! `invalidation/render.rs`.
//!
//! Correctness is asserted, not assumed: after each invalidation the suite checks that sampled
//! tagged keys are no longer served and untagged ones still are, that `len` drops to the
//! untagged count after reclamation, that Redis deleted every member, and that every dependent
//! is gone; a failure panics with what was found.

use std::time::{Duration, Instant};

use lethe::{Cache, InsertOptions};

use crate::charts;
use crate::progress;
use crate::redis_server::RedisServer;
use crate::report::{RunContext, SuiteReport, thousands};
use crate::suites::throughput;
use crate::systems::{BenchCache, LetheCache, System};
use crate::workload::{self, OpStream};

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "invalidation";

mod histogram;
mod history;
mod reader_windows;
mod render;
mod timeline;

use histogram::Histogram;
use reader_windows::{BUSY, DURING, IDLE, KINDS, latency_windows};
use render::{format_seconds, render};
const TAG: &str = "bulk";
/// Keys per `DEL` command (and per loading pipeline) on Redis.
const REDIS_BATCH: usize = 10_000;
/// Tagged and untagged keys checked after each invalidation.
const CHECK_SAMPLES: usize = 1_000;
/// Targets from the issue.
const TARGET_SPEEDUP: f64 = 1000.0;
const TARGET_P99_RATIO: f64 = 2.0;
/// Issue 16: no get waits longer than this during the invalidation (µs).
const TARGET_MAX_GET_US: f64 = 1000.0;
const TARGET_TAGGED_RATIO: f64 = 0.85;
/// Throughput with the per-key history on, as a fraction of without (issue target).
const TARGET_HISTORY_RATIO: f64 = 0.9;
/// Read percentage of the tagged-throughput case, and its thread count.
const READ_PCT: u8 = 90;
const THREADS: usize = 2;
/// Distinct tag sets in the tagged-throughput case (every tag is a function of `k % TAG_SETS`).
const TAG_SETS: u64 = 1000;

#[derive(Debug)]
struct Settings {
    tagged: usize,
    untagged: usize,
    dependents: usize,
    repetitions: usize,
    throughput_duration: Duration,
    throughput_repetitions: usize,
    warmup: Duration,
}

impl Settings {
    fn new(quick: bool) -> Self {
        if quick {
            Settings {
                tagged: 100_000,
                untagged: 20_000,
                dependents: 10_000,
                repetitions: 3,
                throughput_duration: Duration::from_secs(1),
                throughput_repetitions: 1,
                warmup: Duration::from_millis(100),
            }
        } else {
            Settings {
                tagged: 1_000_000,
                untagged: 200_000,
                dependents: 100_000,
                repetitions: 3,
                throughput_duration: Duration::from_secs(3),
                throughput_repetitions: 3,
                warmup: Duration::from_millis(300),
            }
        }
    }
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

pub fn run(ctx: &RunContext) {
    if !ctx.systems(&[System::Lethe]).contains(&System::Lethe) {
        // `--systems` names only in-process caches; this suite measures lethe (and Redis).
        say!("[{SUITE}] skipped: lethe is not among --systems");
        return;
    }
    let s = Settings::new(ctx.quick);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let readers = cores.saturating_sub(1).clamp(1, 3);
    let mode = format!(
        "tag_1m: {} tagged + {} untagged entries; deps_100k: {} dependents; {} repetition(s) \
         of each (median; latency samples pooled); tagged_throughput: {} s per measurement, {} \
         repetition(s), median",
        thousands(s.tagged as u64),
        thousands(s.untagged as u64),
        thousands(s.dependents as u64),
        s.repetitions,
        s.throughput_duration.as_secs_f64(),
        s.throughput_repetitions
    );
    let mut sink = Sink {
        report: SuiteReport::new(SUITE, "Invalidation", &[System::Lethe], mode),
        rows: Vec::new(),
    };
    sink.report.note(
        "Methodology (full detail in `crates/lethe-bench/src/suites/invalidation.rs`): \
         `tag_1m` times lethe's `invalidate_tag` call (after which no tagged entry is served) \
         and, separately, the `run_pending_tasks` call that frees their memory \
         (`reclaim_seconds`), with no other thread running. `redis_sets` is the seeds' \
         approach on a `redis-server` started by the harness on a free loopback port \
         (persistence off): `SET` + `SADD tag key` per entry, loaded with pipelines (not \
         timed); invalidation = `SMEMBERS tag`, `DEL` of the members in commands of 10,000 keys \
         sent as one pipeline, `DEL tag`, timed from the first command to the last reply. \
         `tag_1m:during` times every `get` of a reader thread (uniformly random keys over the \
         tagged and untagged ones) from just before `invalidate_tag` until `run_pending_tasks` \
         returns; `tag_1m:idle` for a window of the same length on the same contents (the \
         tagged entries written again) with the invalidating thread asleep; `tag_1m:busy` for \
         one with that thread spinning on its own (every core busy, nothing invalidated), since \
         on a virtual machine the host may deschedule a busy vCPU for milliseconds; `steal_ms` \
         is the machine's steal time (`/proc/stat`) summed over each kind of window. `get_p99_us` is \
         per completed get; `get_p99_us_corrected` corrects for coordinated omission \
         (HdrHistogram's method, with the reader's mean idle time per get as the expected \
         interval), since a reader blocked for milliseconds completes few gets meanwhile and \
         per-get quantiles then hide the stall; `gets_per_sec` is the reader's rate in each \
         window. `deps_100k` times \
         `invalidate_key(root)`, which runs the whole cascade on the calling thread; \
         `entries_removed` includes the root. `tagged_throughput` is the throughput suite's \
         90/10 case at 2 threads, where every insert carries the tags `t:{k%1000}`, \
         `g:{k%100}`, `r:{k%10}:{k%1000}` (1,000 `InsertOptions` prebuilt per cache, so no tag \
         string is allocated in the timed loop), against the same case untagged. Every \
         invalidation is checked (tagged keys no longer served, untagged ones still served, \
         `len` after reclamation, Redis delete counts, every dependent gone). \
         `history_throughput` is the same workload at 90/10 and 50/50, 2 threads, with the \
         per-key history on (16 records per key, 16 MiB; every insert names a shared origin, as \
         the server's writes do) against the same cache without it. Both ratios are the median \
         of back-to-back pairs' ratios (at least 7 pairs of half the throughput duration, \
         alternating which runs first), as single runs on a shared machine vary by a third.",
    );
    sink.report.note(format!(
        "Latency readers: {readers} thread(s) on this {cores}-core machine (cores − 1, at least \
         1, at most 3), so the invalidating thread does not compete with them for a core."
    ));

    let t0 = Instant::now();
    type Case = fn(&mut Sink, &Settings, usize);
    let cases: [(&str, Case); 4] = [
        ("tag_1m", tag_1m),
        ("deps_100k", |sink, s, _| deps(sink, s)),
        ("tagged_throughput", |sink, s, _| tagged_throughput(sink, s)),
        ("history_throughput", |sink, s, _| {
            history::history_throughput(sink, s)
        }),
    ];
    let selected: Vec<_> = cases
        .iter()
        .filter(|(name, _)| ctx.selects_case(name))
        .collect();
    let bar = progress::steps(SUITE, selected.len() as u64);
    for (name, case) in selected {
        bar.set_message(*name);
        case(&mut sink, &s, readers);
        bar.inc(1);
    }
    drop(bar);
    say!("[{SUITE}] done in {:.1} s", t0.elapsed().as_secs_f64());
    let table = render(&sink);
    sink.report.finish_with_table(ctx, &table);
}

// ---------------------------------------------------------------------------------------------
// tag_1m

fn tag_1m(sink: &mut Sink, s: &Settings, readers: usize) {
    let (n, m) = (s.tagged, s.untagged);
    let keys: Vec<String> = (0..n)
        .map(|i| format!("item:{i}"))
        .chain((0..m).map(|i| format!("other:{i}")))
        .collect();
    let (tagged_keys, untagged_keys) = keys.split_at(n);

    // lethe, alone on the machine.
    let capacity = ((n + m) as u64) * 5 / 4;
    let cache: Cache<String, u64> = Cache::builder().max_capacity(capacity).build();
    let tagged = InsertOptions::new().tag(TAG);
    let t = Instant::now();
    populate(&cache, tagged_keys, &tagged);
    for (i, k) in untagged_keys.iter().enumerate() {
        cache.insert(k.clone(), (n + i) as u64);
    }
    settle_and_check_len(&cache, n + m, "after loading");
    say!(
        "[{SUITE}] tag_1m: lethe loaded {} entries in {:.2} s",
        thousands((n + m) as u64),
        t.elapsed().as_secs_f64()
    );
    let mut calls = Vec::new();
    let mut reclaims = Vec::new();
    for rep in 0..s.repetitions {
        if rep > 0 {
            populate(&cache, tagged_keys, &tagged);
            settle_and_check_len(&cache, n + m, "after repopulating");
        }
        let t = Instant::now();
        cache.invalidate_tag(TAG);
        let call = t.elapsed();
        check_hidden(&cache, tagged_keys, untagged_keys);
        let t = Instant::now();
        cache.run_pending_tasks();
        let reclaim = t.elapsed();
        check_len(&cache, m, "after invalidate_tag + run_pending_tasks");
        say!(
            "[{SUITE}] tag_1m rep {}/{}: lethe invalidate_tag {}, reclaim {}",
            rep + 1,
            s.repetitions,
            format_seconds(call.as_secs_f64()),
            format_seconds(reclaim.as_secs_f64())
        );
        calls.push(call.as_secs_f64());
        reclaims.push(reclaim.as_secs_f64());
    }
    let lethe_call = median(&mut calls);
    let lethe_reclaim = median(&mut reclaims);
    sink.push("tag_1m", "lethe", "entries", n as f64);
    sink.push("tag_1m", "lethe", "seconds", lethe_call);
    sink.push("tag_1m", "lethe", "reclaim_seconds", lethe_reclaim);

    // lethe, with readers.
    populate(&cache, tagged_keys, &tagged);
    settle_and_check_len(&cache, n + m, "before the latency windows");
    let lat = latency_windows(&cache, &keys, n, &tagged, s, readers);
    // Time each reader spent in windows of one kind (every kind's windows are equally long).
    let window_total: f64 = lat.windows.iter().sum::<f64>() * readers as f64;
    // A reader's mean time per get when idle: the pace a steady client would keep up.
    let interval_ns = (window_total * 1e9 / lat.histograms[IDLE].count().max(1) as f64) as u64;
    let us = |h: &Histogram, q: f64| h.quantile(q) as f64 / 1e3;
    let mut p99 = [0.0; 3];
    let mut p99_corrected = [0.0; 3];
    let mut max = [0.0; 3];
    for (i, h) in lat.histograms.iter().enumerate() {
        let case = format!("tag_1m:{}", KINDS[i]);
        let corrected = h.corrected(interval_ns);
        p99[i] = us(h, 0.99);
        p99_corrected[i] = us(&corrected, 0.99);
        max[i] = us(h, 1.0);
        sink.push(&case, "lethe", "get_p50_us", us(h, 0.50));
        sink.push(&case, "lethe", "get_p99_us", p99[i]);
        sink.push(&case, "lethe", "get_p999_us", us(h, 0.999));
        sink.push(&case, "lethe", "get_max_us", max[i]);
        sink.push(&case, "lethe", "get_p99_us_corrected", p99_corrected[i]);
        sink.push(&case, "lethe", "samples", h.count() as f64);
        sink.push(
            &case,
            "lethe",
            "gets_per_sec",
            h.count() as f64 / window_total * readers as f64,
        );
        if let Some(steal) = lat.steal_ms {
            sink.push(&case, "lethe", "steal_ms", steal[i]);
        }
    }
    sink.push(
        "tag_1m:during",
        "lethe",
        "window_seconds",
        median(&mut lat.windows.clone()),
    );
    sink.push(
        "tag_1m",
        "lethe",
        "p99_during_over_idle",
        p99[DURING] / p99[IDLE].max(1e-3),
    );
    sink.push(
        "tag_1m",
        "lethe",
        "p99_corrected_during_over_idle",
        p99_corrected[DURING] / p99_corrected[IDLE].max(1e-3),
    );
    sink.push(
        "tag_1m",
        "lethe",
        "p99_corrected_during_over_busy",
        p99_corrected[DURING] / p99_corrected[BUSY].max(1e-3),
    );
    sink.push(
        "tag_1m",
        "lethe",
        "max_during_over_busy",
        max[DURING] / max[BUSY].max(1e-3),
    );
    sink.report.figure(charts::latency_timeline(
        "reader-latency-timeline",
        "tag_1m: reader get latency over time, invalidate_tag + reclaim vs busy and idle",
        &[
            lat.timelines[DURING].chart("during invalidation"),
            lat.timelines[BUSY].chart("busy (every core busy, no invalidation)"),
            lat.timelines[IDLE].chart("idle"),
        ],
        &[
            (
                "invalidate_tag returned (median)".to_string(),
                median(&mut lat.calls.clone()) * 1e3,
            ),
            (
                "memory reclaimed, window ends (median)".to_string(),
                median(&mut lat.windows.clone()) * 1e3,
            ),
        ],
    ));
    drop(cache);

    // Redis.
    match redis_sets(s, tagged_keys, untagged_keys) {
        Ok((seconds, version)) => {
            sink.push("tag_1m", "redis_sets", "entries", n as f64);
            sink.push("tag_1m", "redis_sets", "seconds", seconds);
            sink.push(
                "tag_1m",
                "lethe",
                "speedup_vs_redis_sets",
                seconds / lethe_call,
            );
            sink.push(
                "tag_1m",
                "lethe",
                "speedup_incl_reclaim_vs_redis_sets",
                seconds / (lethe_call + lethe_reclaim),
            );
            sink.report.note(format!(
                "Redis: `redis-server` {version} (from the distribution's package), one \
                 synchronous connection from the `redis` crate over loopback TCP."
            ));
        }
        Err(e) => {
            say!("[{SUITE}] tag_1m: redis_sets SKIPPED: {e}");
            sink.push("tag_1m", "redis_sets", "skipped", 1.0);
            sink.report.note(format!(
                "**redis_sets was skipped:** {e}. The speedup target is therefore not measured."
            ));
        }
    }
}

fn populate(cache: &Cache<String, u64>, keys: &[String], options: &InsertOptions<String>) {
    for (i, k) in keys.iter().enumerate() {
        cache.insert_with_options(k.clone(), i as u64, options);
    }
}

fn settle_and_check_len(cache: &Cache<String, u64>, expected: usize, when: &str) {
    cache.run_pending_tasks();
    check_len(cache, expected, when);
}

fn check_len(cache: &Cache<String, u64>, expected: usize, when: &str) {
    let len = cache.len();
    assert_eq!(
        len,
        expected,
        "lethe holds {len} entries {when}, expected {expected} (capacity {})",
        cache.capacity()
    );
}

/// Panics unless sampled tagged keys are hidden and sampled untagged keys are still served.
fn check_hidden(cache: &Cache<String, u64>, tagged: &[String], untagged: &[String]) {
    for k in tagged.iter().step_by((tagged.len() / CHECK_SAMPLES).max(1)) {
        assert!(
            cache.get(k).is_none(),
            "lethe still serves {k} after invalidate_tag({TAG:?})"
        );
    }
    for k in untagged
        .iter()
        .step_by((untagged.len() / CHECK_SAMPLES).max(1))
    {
        assert!(
            cache.get(k).is_some(),
            "lethe lost untagged {k} in invalidate_tag({TAG:?})"
        );
    }
}

/// The seeds' tag scheme on Redis: returns the median invalidation time and the server version.
fn redis_sets(
    s: &Settings,
    tagged: &[String],
    untagged: &[String],
) -> Result<(f64, String), String> {
    let server = RedisServer::start()?;
    let version = server.version();
    say!(
        "[{SUITE}] tag_1m: redis-server {version} started on 127.0.0.1:{}",
        server.port()
    );
    let mut con = server.connection();
    let fail = |what: &str, e: redis::RedisError| format!("Redis {what} failed: {e}");
    let mut times = Vec::new();
    for rep in 0..s.repetitions {
        let t = Instant::now();
        redis::cmd("FLUSHALL")
            .exec(&mut con)
            .map_err(|e| fail("FLUSHALL", e))?;
        for (b, batch) in tagged.chunks(REDIS_BATCH).enumerate() {
            let mut pipe = redis::pipe();
            for (i, k) in batch.iter().enumerate() {
                let value = (b * REDIS_BATCH + i) as u64;
                pipe.cmd("SET").arg(k).arg(value).ignore();
                pipe.cmd("SADD").arg(TAG).arg(k).ignore();
            }
            pipe.exec(&mut con).map_err(|e| fail("load", e))?;
        }
        for (b, batch) in untagged.chunks(REDIS_BATCH).enumerate() {
            let mut pipe = redis::pipe();
            for (i, k) in batch.iter().enumerate() {
                let value = (tagged.len() + b * REDIS_BATCH + i) as u64;
                pipe.cmd("SET").arg(k).arg(value).ignore();
            }
            pipe.exec(&mut con).map_err(|e| fail("load", e))?;
        }
        let (scard, dbsize): (usize, usize) = redis::pipe()
            .cmd("SCARD")
            .arg(TAG)
            .cmd("DBSIZE")
            .query(&mut con)
            .map_err(|e| fail("SCARD/DBSIZE", e))?;
        assert_eq!(scard, tagged.len(), "Redis tag set has {scard} members");
        assert_eq!(
            dbsize,
            tagged.len() + untagged.len() + 1,
            "Redis holds {dbsize} keys after loading"
        );
        let load = t.elapsed();

        let t = Instant::now();
        let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(TAG)
            .query(&mut con)
            .map_err(|e| fail("SMEMBERS", e))?;
        let mut pipe = redis::pipe();
        for batch in members.chunks(REDIS_BATCH) {
            pipe.cmd("DEL").arg(batch);
        }
        pipe.cmd("DEL").arg(TAG);
        let deleted: Vec<u64> = pipe.query(&mut con).map_err(|e| fail("DEL", e))?;
        let elapsed = t.elapsed();

        let total: u64 = deleted.iter().sum();
        assert_eq!(
            total,
            tagged.len() as u64 + 1,
            "Redis deleted {total} keys (members + the set)"
        );
        let dbsize: usize = redis::cmd("DBSIZE")
            .query(&mut con)
            .map_err(|e| fail("DBSIZE", e))?;
        assert_eq!(
            dbsize,
            untagged.len(),
            "Redis holds {dbsize} keys after the invalidation"
        );
        say!(
            "[{SUITE}] tag_1m rep {}/{}: redis_sets SMEMBERS + DEL {} (load {:.2} s, untimed)",
            rep + 1,
            s.repetitions,
            format_seconds(elapsed.as_secs_f64()),
            load.as_secs_f64()
        );
        times.push(elapsed.as_secs_f64());
    }
    Ok((median(&mut times), version))
}

// ---------------------------------------------------------------------------------------------
// deps_100k

#[derive(Debug, Clone, Copy)]
enum Shape {
    Fanout,
    Chain,
}

fn deps(sink: &mut Sink, s: &Settings) {
    for (shape, name) in [
        (Shape::Fanout, "deps_100k:fanout"),
        (Shape::Chain, "deps_100k:chain"),
    ] {
        let mut times = Vec::new();
        let mut removed = 0;
        for rep in 0..s.repetitions {
            let (seconds, r) = deps_once(shape, s.dependents);
            say!(
                "[{SUITE}] {name} rep {}/{}: invalidate_key(root) {} removed {}",
                rep + 1,
                s.repetitions,
                format_seconds(seconds),
                thousands(r as u64)
            );
            times.push(seconds);
            removed = r;
        }
        sink.push(name, "lethe", "seconds", median(&mut times));
        sink.push(name, "lethe", "entries_removed", removed as f64);
    }
}

/// Builds one dependency shape, invalidates its root, checks every dependent is gone. Returns
/// the call's duration and how many entries it removed (root included).
fn deps_once(shape: Shape, dependents: usize) -> (f64, usize) {
    let cache: Cache<String, u64> = Cache::builder()
        .max_capacity((dependents as u64 + 1) * 5 / 4)
        .build();
    let root = "root".to_string();
    let keys: Vec<String> = (0..dependents).map(|i| format!("dep:{i}")).collect();
    cache.insert(root.clone(), 0);
    for (i, k) in keys.iter().enumerate() {
        let parent = match shape {
            Shape::Fanout => root.clone(),
            Shape::Chain if i == 0 => root.clone(),
            Shape::Chain => keys[i - 1].clone(),
        };
        let options = InsertOptions::new().depends_on(parent);
        cache.insert_with_options(k.clone(), i as u64 + 1, &options);
    }
    settle_and_check_len(
        &cache,
        dependents + 1,
        "after building the dependency graph",
    );
    let direct = cache.dependents_of(&root).len();
    let expected_direct = match shape {
        Shape::Fanout => dependents,
        Shape::Chain => 1,
    };
    assert_eq!(
        direct, expected_direct,
        "root has {direct} direct dependents"
    );

    let before = cache.len();
    let t = Instant::now();
    let was_cached = cache.invalidate_key(root.as_str());
    let seconds = t.elapsed().as_secs_f64();
    assert!(was_cached, "the root was not cached");
    let removed = before - cache.len();
    for k in &keys {
        assert!(
            cache.get(k).is_none(),
            "{k} is still served after invalidate_key(root) ({shape:?})"
        );
    }
    assert_eq!(
        removed,
        dependents + 1,
        "invalidate_key(root) removed {removed} entries ({shape:?})"
    );
    (seconds, removed)
}

// ---------------------------------------------------------------------------------------------
// tagged_throughput

/// Lethe where every insert carries three tags derived from the key.
struct TaggedLethe {
    cache: Cache<u64, u64>,
    /// Indexed by `k % TAG_SETS`.
    options: Box<[InsertOptions<u64>]>,
}

impl std::fmt::Debug for TaggedLethe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaggedLethe")
    }
}

fn tags_for(k: u64) -> [String; 3] {
    [
        format!("t:{}", k % 1000),
        format!("g:{}", k % 100),
        format!("r:{}:{}", k % 10, k % 1000),
    ]
}

impl BenchCache<u64, u64> for TaggedLethe {
    fn with_capacity(capacity: u64) -> Self {
        let options = (0..TAG_SETS)
            .map(|r| InsertOptions::new().tags(tags_for(r)))
            .collect();
        TaggedLethe {
            cache: Cache::builder().max_capacity(capacity).build(),
            options,
        }
    }
    #[inline]
    fn get(&self, key: &u64) -> Option<u64> {
        self.cache.get(key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        let options = &self.options[(key % TAG_SETS) as usize];
        self.cache.insert_with_options(key, value, options);
    }
    fn entry_count(&self) -> usize {
        self.cache.len()
    }
    fn settle(&self) {
        self.cache.run_pending_tasks();
    }
}

/// Panics unless [`TaggedLethe`] really tags its entries (and a parent tag covers them).
fn check_tagged_cache() {
    let c = TaggedLethe::with_capacity(10_000);
    let k = 123_457;
    c.insert(k, 1);
    let mut tags = c.cache.tags_of(&k).expect("entry just inserted");
    tags.sort();
    let mut want = tags_for(k).to_vec();
    want.sort();
    assert_eq!(tags, want, "tagged insert stored the wrong tags");
    c.cache.invalidate_tag(&format!("r:{}", k % 10));
    assert!(
        c.get(&k).is_none(),
        "invalidating the parent tag r:{} did not hide the entry",
        k % 10
    );
}

fn tagged_throughput(sink: &mut Sink, s: &Settings) {
    check_tagged_cache();
    let t = Instant::now();
    let (prefill, streams) = zipf_workload();
    say!(
        "[{SUITE}] tagged_throughput: generated key streams in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let variants = ["tagged_throughput:3_tags", "tagged_throughput:untagged"];
    let ([tagged, untagged], ratio) =
        paired("tagged_throughput", ["3 tags", "untagged"], s, |v, d| {
            if v == 0 {
                throughput::measure::<TaggedLethe>(&prefill, &streams, READ_PCT, d)
            } else {
                throughput::measure::<LetheCache<u64, u64>>(&prefill, &streams, READ_PCT, d)
            }
        });
    sink.push(variants[0], "lethe", "ops_per_sec", tagged);
    sink.push(variants[1], "lethe", "ops_per_sec", untagged);
    sink.push("tagged_throughput", "lethe", "tagged_over_untagged", ratio);
}

/// The throughput suite's Zipf workload at [`THREADS`] threads: the keys to prefill and each
/// thread's operation stream (the same seeds as that suite, so the cases compare).
fn zipf_workload() -> (Vec<u64>, Vec<OpStream>) {
    let prefill = workload::zipf_keys(
        0x5EED_0000,
        (throughput::PREFILL_FACTOR * throughput::CAPACITY) as usize,
    );
    let streams = (0..THREADS)
        .map(|t| OpStream::generate(0x5EED_1000 + t as u64))
        .collect();
    (prefill, streams)
}

/// On/off pairs measured at least, per comparison.
const PAIRS: usize = 7;

/// Two variants of one workload (`run(variant, duration)` returns ops/s) measured in
/// back-to-back pairs, alternating which goes first: each variant's median, and the median of
/// the pairs' ratios (first over second). The machines are shared and noisy: a slow spell then
/// hits both sides of a pair rather than one side of the comparison.
fn paired(
    case: &str,
    labels: [&str; 2],
    s: &Settings,
    mut run: impl FnMut(usize, Duration) -> f64,
) -> ([f64; 2], f64) {
    let pairs = (s.throughput_repetitions * 2 + 1).max(PAIRS);
    let duration = s.throughput_duration / 2;
    let mut samples = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for rep in 0..pairs {
        let mut pair = [0.0; 2];
        for i in 0..2 {
            let v = (i + rep) % 2;
            let ops = run(v, duration);
            say!(
                "[{SUITE}] {case} {} pair {}/{pairs}: {:.2} M ops/s",
                labels[v],
                rep + 1,
                ops / 1e6
            );
            pair[v] = ops;
            samples[v].push(ops);
        }
        ratios.push(pair[0] / pair[1]);
    }
    (
        [median(&mut samples[0]), median(&mut samples[1])],
        median(&mut ratios),
    )
}

fn median(v: &mut [f64]) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::render::format_ratio;
    use super::*;

    #[test]
    fn tagged_cache_tags_its_entries() {
        check_tagged_cache();
    }

    #[test]
    fn history_cache_records_its_writes_and_evictions() {
        history::check_history_cache();
    }

    #[test]
    fn dependency_shapes_cascade_fully() {
        assert_eq!(deps_once(Shape::Fanout, 500).1, 501);
        assert_eq!(deps_once(Shape::Chain, 500).1, 501);
    }

    #[test]
    fn ratios_and_durations_format() {
        assert_eq!(format_ratio(1.5), "1.50×");
        assert_eq!(format_ratio(123_456.4), "123,456×");
        assert_eq!(format_seconds(0.000_002_5), "2.50 µs");
        assert_eq!(format_seconds(0.25), "250.00 ms");
        assert_eq!(format_seconds(2.0), "2.000 s");
    }
}

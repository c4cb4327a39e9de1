//! Throughput suite: operations per second under a Zipf(1.0) key distribution.
//!
//! Keys are drawn over 1,000,000 ids into a cache of 100,000 `u64 -> u64` entries, at read/write
//! mixes of 100/0, 90/10 and 50/50, on 1 and 2 threads. Reads are `get`, writes are
//! `insert(k, k)`. Every random choice (key, read or write) is pre-generated per thread, so the
//! timed loop measures the cache and not the RNG. Each measurement gets a fresh, prefilled
//! cache; systems run in a rotated order on each repetition so that slow drift of the machine
//! (thermal, other tenants) is spread over all of them, and the median repetition is reported.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::progress;
use crate::report::{RunContext, SuiteReport, thousands};
use crate::systems::{BenchCache, System, with_system};
use crate::workload::{self, KEY_SPACE, OpStream, ZIPF_S};

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "throughput";
pub(crate) const CAPACITY: u64 = 100_000;
/// Prefill inserts, as a multiple of capacity. Zipf(1) repeats keys heavily: 2x capacity draws
/// yield only ~73k distinct keys, 4x yield ~127k, enough to fill the cache and start evicting.
pub(crate) const PREFILL_FACTOR: u64 = 4;
/// Operations between checks of the stop flag; small enough that stopping is prompt, large
/// enough that the check is noise.
const BATCH: usize = 1024;
const MIXES: [u8; 3] = [100, 90, 50];
const THREADS: [usize; 2] = [1, 2];
const DEFAULT_SYSTEMS: [System; 3] = [System::Lethe, System::Moka, System::QuickCache];

struct Settings {
    duration: Duration,
    repetitions: usize,
}

pub fn run(ctx: &RunContext) {
    let settings = if ctx.quick {
        Settings {
            duration: Duration::from_millis(500),
            repetitions: 1,
        }
    } else {
        Settings {
            duration: Duration::from_secs(3),
            repetitions: 3,
        }
    };
    let systems = ctx.systems(&DEFAULT_SYSTEMS);
    let mode = format!(
        "{} s per measurement, {} repetition(s), median reported",
        settings.duration.as_secs_f64(),
        settings.repetitions
    );
    let mut report = SuiteReport::new(SUITE, "Throughput", &systems, mode);
    report.note(format!(
        "Keys drawn from Zipf(s={ZIPF_S:.1}) over {} ids (ranks mapped through a bijective mixer \
         so popular keys are not small integers); `u64` keys and values; capacity {} entries. \
         A read is `get`, a write is `insert(k, k)`. Each thread replays its own pre-generated \
         stream of {} operations (cycled), so RNG cost is not timed. Every measurement starts \
         from a fresh cache prefilled with {} inserts from the same distribution. Systems run \
         in rotated order each repetition. Threads share one cache; the harness's timing \
         thread sleeps while they run. lethe/x above 1 means lethe is faster.",
        thousands(KEY_SPACE),
        thousands(CAPACITY),
        thousands(workload::STREAM_LEN as u64),
        thousands(PREFILL_FACTOR * CAPACITY)
    ));

    let t0 = Instant::now();
    let prefill = workload::zipf_keys(0x5EED_0000, (PREFILL_FACTOR * CAPACITY) as usize);
    let max_threads = *THREADS.iter().max().unwrap();
    let streams: Vec<OpStream> = (0..max_threads)
        .map(|t| OpStream::generate(0x5EED_1000 + t as u64))
        .collect();
    say!(
        "[throughput] generated key streams in {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    let case_name =
        |read_pct: u8, threads: usize| format!("{read_pct}/{} {threads}t", 100 - read_pct);
    let cases = THREADS
        .iter()
        .flat_map(|&t| MIXES.iter().map(move |&m| (m, t)))
        .filter(|&(m, t)| ctx.selects_case(&case_name(m, t)))
        .count();
    let bar = progress::steps(SUITE, (cases * systems.len() * settings.repetitions) as u64);
    for &threads in &THREADS {
        for &read_pct in &MIXES {
            let case = case_name(read_pct, threads);
            if !ctx.selects_case(&case) {
                continue;
            }
            bar.set_message(case.clone());
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
            for rep in 0..settings.repetitions {
                for i in 0..systems.len() {
                    let idx = (i + rep) % systems.len();
                    let ops = with_system!(systems[idx], u64, u64, |C| measure::<C>(
                        &prefill,
                        &streams[..threads],
                        read_pct,
                        settings.duration,
                    ));
                    say!(
                        "[throughput] {case} rep {}/{}: {:<12} {:>8.2} M ops/s",
                        rep + 1,
                        settings.repetitions,
                        systems[idx].name(),
                        ops / 1e6
                    );
                    samples[idx].push(ops);
                    bar.inc(1);
                }
            }
            for (system, mut s) in systems.iter().zip(samples) {
                s.sort_by(f64::total_cmp);
                report.push(&case, *system, "ops_per_sec", s[s.len() / 2]);
            }
        }
    }
    drop(bar);
    say!("[throughput] done in {:.1} s", t0.elapsed().as_secs_f64());
    report.finish(ctx);
}

/// One measurement: build and prefill a cache, then run `streams.len()` threads for `duration`.
pub(crate) fn measure<C: BenchCache<u64, u64>>(
    prefill: &[u64],
    streams: &[OpStream],
    read_pct: u8,
    duration: Duration,
) -> f64 {
    let cache = C::with_capacity(CAPACITY);
    for &k in prefill {
        cache.insert(k, k);
    }
    let stop = AtomicBool::new(false);
    // +1 for this thread, so the clock starts when every worker is released together.
    let barrier = Barrier::new(streams.len() + 1);
    let (ops, elapsed) = std::thread::scope(|s| {
        let workers: Vec<_> = streams
            .iter()
            .map(|stream| s.spawn(|| worker(&cache, stream, read_pct, &barrier, &stop)))
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        (ops, start.elapsed())
    });
    drop(cache);
    ops as f64 / elapsed.as_secs_f64()
}

fn worker<C: BenchCache<u64, u64>>(
    cache: &C,
    stream: &OpStream,
    read_pct: u8,
    barrier: &Barrier,
    stop: &AtomicBool,
) -> u64 {
    barrier.wait();
    let mut ops = 0u64;
    loop {
        for (keys, dice) in stream
            .keys
            .chunks_exact(BATCH)
            .zip(stream.dice.chunks_exact(BATCH))
        {
            for (&k, &d) in keys.iter().zip(dice) {
                if d < read_pct {
                    black_box(cache.get(&k));
                } else {
                    cache.insert(k, k);
                }
            }
            ops += BATCH as u64;
            if stop.load(Ordering::Relaxed) {
                return ops;
            }
        }
    }
}

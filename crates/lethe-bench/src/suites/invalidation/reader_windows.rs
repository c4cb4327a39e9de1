//! The reader-latency windows of `tag_1m`. Reader threads `get` random keys without pause while
//! the main thread runs windows of three kinds, all as long as a `during` window:
//! - `during`: `invalidate_tag`, then `run_pending_tasks` (the reclamation), on a full cache;
//! - `idle`: the main thread sleeps;
//! - `busy`: the main thread spins on its own, touching no cache, so the machine's cores are as
//!   busy as in `during`.
//!
//! Why `busy`: on a virtual machine the host may deschedule a busy vCPU for milliseconds (steal
//! time). `idle` leaves a core free, so it never sees that; `during` keeps every core busy, so
//! it does. `busy` shows what the readers suffer from a busy machine alone, which tells stalls
//! the reclamation causes from stalls the host causes. Each window kind's steal time, read from
//! `/proc/stat`, is reported too.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lethe::{Cache, InsertOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::histogram::Histogram;
use super::render::format_seconds;
use super::timeline::Timeline;
use super::{SUITE, Settings, TAG, check_len, populate, settle_and_check_len};
use crate::report::thousands;

/// The window kinds, in the order of [`Latencies`]' arrays.
pub(super) const KINDS: [&str; 3] = ["idle", "busy", "during"];
pub(super) const IDLE: usize = 0;
pub(super) const BUSY: usize = 1;
pub(super) const DURING: usize = 2;

const PHASE_OFF: u8 = u8::MAX;
const PHASE_STOP: u8 = u8::MAX - 1;
/// Random key indices each reader cycles through (pre-generated, so the RNG is not timed).
const READER_STREAM: usize = 1 << 20;

pub(super) struct Latencies {
    /// By window kind ([`KINDS`]).
    pub(super) histograms: [Histogram; 3],
    /// Latency by time since the window began, pooled over readers and repetitions.
    pub(super) timelines: [Timeline; 3],
    /// The machine's steal time in each kind of window, summed over repetitions (ms); `None`
    /// where `/proc/stat` cannot be read.
    pub(super) steal_ms: Option<[f64; 3]>,
    /// Each `during` window's length (s); the other windows are as long.
    pub(super) windows: Vec<f64>,
    /// How long `invalidate_tag` took within each `during` window (s).
    pub(super) calls: Vec<f64>,
}

/// Runs `readers` reader threads over `keys` while the main thread runs `during`, `idle` and
/// `busy` windows in turn, repopulating the tagged keys after each `during`.
pub(super) fn latency_windows(
    cache: &Cache<String, u64>,
    keys: &[String],
    n_tagged: usize,
    tagged: &InsertOptions<String>,
    s: &Settings,
    readers: usize,
) -> Latencies {
    let phase = AtomicU8::new(PHASE_OFF);
    // When the current window began, in ns since `epoch`; written before the phase changes.
    let epoch = Instant::now();
    let window_start = AtomicU64::new(0);
    let clock = WindowClock {
        epoch,
        start: &window_start,
    };
    let barrier = Barrier::new(readers + 1);
    let streams: Vec<Vec<u32>> = (0..readers)
        .map(|r| {
            let mut rng = StdRng::seed_from_u64(0x1A7E_0000 + r as u64);
            (0..READER_STREAM)
                .map(|_| rng.gen_range(0..keys.len() as u32))
                .collect()
        })
        .collect();
    let mut windows = Vec::new();
    let mut calls = Vec::new();
    let mut steal = steal_ticks().map(|_| [0u64; 3]);
    let begin = |t: Instant, kind: usize| {
        window_start.store(t.duration_since(epoch).as_nanos() as u64, Ordering::Release);
        phase.store(kind as u8, Ordering::SeqCst);
    };
    // Runs `f` as a window of `kind`, adding the steal time it saw.
    let mut timed = |kind: usize, f: &mut dyn FnMut()| {
        let before = steal_ticks();
        f();
        phase.store(PHASE_OFF, Ordering::SeqCst);
        if let (Some(total), Some(b), Some(a)) = (steal.as_mut(), before, steal_ticks()) {
            total[kind] += a.saturating_sub(b);
        }
    };
    let (histograms, timelines) = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|stream| scope.spawn(|| reader(cache, keys, stream, &phase, &clock, &barrier)))
            .collect();
        barrier.wait();
        std::thread::sleep(s.warmup);
        for rep in 0..s.repetitions {
            let mut window = Duration::ZERO;
            timed(DURING, &mut || {
                let t = Instant::now();
                begin(t, DURING);
                cache.invalidate_tag(TAG);
                calls.push(t.elapsed().as_secs_f64());
                cache.run_pending_tasks();
                window = t.elapsed();
            });
            check_len(cache, keys.len() - n_tagged, "after the `during` window");
            populate(cache, &keys[..n_tagged], tagged);
            settle_and_check_len(
                cache,
                keys.len(),
                "after repopulating for the `idle` window",
            );
            std::thread::sleep(s.warmup);
            timed(IDLE, &mut || {
                begin(Instant::now(), IDLE);
                std::thread::sleep(window);
            });
            std::thread::sleep(s.warmup);
            timed(BUSY, &mut || {
                let t = Instant::now();
                begin(t, BUSY);
                let mut x = 0u64;
                while t.elapsed() < window {
                    for _ in 0..1_000 {
                        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
                    }
                }
            });
            say!(
                "[{SUITE}] tag_1m rep {}/{}: latency windows of {} (invalidate + reclaim, idle, \
                 busy; {readers} reader(s))",
                rep + 1,
                s.repetitions,
                format_seconds(window.as_secs_f64())
            );
            windows.push(window.as_secs_f64());
        }
        phase.store(PHASE_STOP, Ordering::SeqCst);
        let mut histograms = [Histogram::new(), Histogram::new(), Histogram::new()];
        let mut timelines = [
            Timeline::default(),
            Timeline::default(),
            Timeline::default(),
        ];
        for h in handles {
            let (hs, ts) = h.join().expect("reader thread panicked");
            for (mine, theirs) in histograms.iter_mut().zip(&hs) {
                mine.merge(theirs);
            }
            for (mine, theirs) in timelines.iter_mut().zip(&ts) {
                mine.merge(theirs);
            }
        }
        (histograms, timelines)
    });
    for (kind, h) in KINDS.iter().zip(&histograms) {
        say!(
            "[{SUITE}] tag_1m get latency, {kind}: p50 {:.3} µs, p99 {:.3} µs, max {:.3} µs ({} \
             samples)",
            h.quantile(0.5) as f64 / 1e3,
            h.quantile(0.99) as f64 / 1e3,
            h.quantile(1.0) as f64 / 1e3,
            thousands(h.count())
        );
    }
    Latencies {
        histograms,
        timelines,
        steal_ms: steal.map(|t| t.map(|ticks| ticks as f64 * MS_PER_TICK)),
        windows,
        calls,
    }
}

/// `/proc/stat` counts in USER_HZ ticks, 100 per second on every Linux architecture the
/// harness runs on.
const MS_PER_TICK: f64 = 10.0;

/// The machine's total steal time so far (ticks over all CPUs), from `/proc/stat`'s `cpu` line
/// (its eighth value); `None` off Linux or in a guest that does not report it.
fn steal_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// Where the readers read the current window's start.
struct WindowClock<'a> {
    epoch: Instant,
    /// ns since `epoch`.
    start: &'a AtomicU64,
}

/// Gets keys in a loop, timing each one into the histogram and the timeline of the current
/// window's kind.
fn reader(
    cache: &Cache<String, u64>,
    keys: &[String],
    stream: &[u32],
    phase: &AtomicU8,
    clock: &WindowClock<'_>,
    barrier: &Barrier,
) -> ([Histogram; 3], [Timeline; 3]) {
    let mut hist = [Histogram::new(), Histogram::new(), Histogram::new()];
    let mut timeline = [
        Timeline::default(),
        Timeline::default(),
        Timeline::default(),
    ];
    let mut last = PHASE_OFF;
    let mut start = 0u64;
    barrier.wait();
    loop {
        for &i in stream {
            // Acquire: a new phase's window start, stored before it, is visible with it.
            let p = phase.load(Ordering::Acquire);
            if p != last {
                last = p;
                start = clock.start.load(Ordering::Acquire);
            }
            let key = &keys[i as usize];
            let t = Instant::now();
            black_box(cache.get(key));
            let ns = t.elapsed().as_nanos() as u64;
            let w = match p {
                PHASE_STOP => return (hist, timeline),
                p if (p as usize) < KINDS.len() => p as usize,
                _ => continue,
            };
            hist[w].record(ns);
            let offset = (t.duration_since(clock.epoch).as_nanos() as u64).saturating_sub(start);
            timeline[w].record(offset, ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_time_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(steal_ticks().is_some(), "no steal value in /proc/stat");
        }
    }
}

//! `lethe-fuzz`: runs the fuzz targets of this crate on the stable toolchain, for a bounded
//! time each, from the corpus in `fuzz/corpus/<target>/`. CI runs every target this way.
//!
//! Inputs are seeds from the corpus, mutated (bit flips, random bytes, insertions, deletions,
//! duplicated ranges, splices of two inputs, the target's dictionary tokens, boundary numbers).
//! An input that panics is saved under the crash directory and the run fails; an input that
//! runs longer than `--hang-ms` is reported as a hang, saved, and the process aborts. Each
//! target prints one JSON line: executions, seconds, crashes.
//!
//! This is not coverage-guided; `cargo +nightly fuzz run <target>` (in `fuzz/`) is, over the
//! same targets, and what it finds worth keeping goes into the same corpus.

#![forbid(unsafe_code)]

use clap::Parser;
use lethe_fuzz::{TARGETS, Target};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs the fuzz targets for a bounded time each.
#[derive(Debug, Parser)]
#[command(name = "lethe-fuzz")]
struct Cli {
    /// Targets to run [default: all].
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Corpus root (one directory per target) [default: <workspace>/fuzz/corpus].
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Where crashing inputs are written [default: <workspace>/target/fuzz-crashes].
    #[arg(long)]
    crashes: Option<PathBuf>,
    /// An input running longer than this is a hang.
    #[arg(long, default_value_t = 10_000)]
    hang_ms: u64,
    /// Seed of the random generator [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Largest input generated, in bytes.
    #[arg(long, default_value_t = 4096)]
    max_len: usize,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for t in TARGETS {
            println!("{}", t.name);
        }
        return ExitCode::SUCCESS;
    }
    let targets: Vec<Target> = if cli.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        let mut v = Vec::new();
        for name in &cli.targets {
            match lethe_fuzz::target(name) {
                Some(t) => v.push(t),
                None => {
                    eprintln!("unknown target {name}; --list shows them");
                    return ExitCode::FAILURE;
                }
            }
        }
        v
    };
    let corpus = cli
        .corpus
        .clone()
        .unwrap_or_else(|| workspace().join("fuzz/corpus"));
    let crashes = cli
        .crashes
        .clone()
        .unwrap_or_else(|| workspace().join("target/fuzz-crashes"));
    let seed = cli.seed.unwrap_or_else(|| fastrand::u64(..));
    // Panics are expected findings here, reported once per input rather than as a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = 0;
    let (mut total_execs, mut total_crashes) = (0u64, 0u64);
    for t in &targets {
        let report = fuzz(t, &corpus, &crashes, seed, &cli);
        total_execs += report.execs;
        total_crashes += report.crashes;
        println!(
            "{}",
            serde_json::json!({
                "target": t.name,
                "execs": report.execs,
                "seconds": (report.seconds * 10.0).round() / 10.0,
                "execs_per_second": (report.execs as f64 / report.seconds).round(),
                "seeds": report.seeds,
                "crashes": report.crashes,
                "seed": seed,
            })
        );
        if report.crashes > 0 {
            failed += 1;
        }
    }
    eprintln!(
        "fuzz: {total_execs} executions over {} targets, {total_crashes} crashes (seed {seed})",
        targets.len()
    );
    println!("{} passed, {failed} failed", targets.len() - failed);
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

struct Report {
    execs: u64,
    crashes: u64,
    seeds: usize,
    seconds: f64,
}

fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
        .collect();
    seeds.sort();
    let mut seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, s)| s).collect();
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

fn fuzz(t: &Target, corpus: &Path, crashes: &Path, seed: u64, cli: &Cli) -> Report {
    let seeds = read_corpus(&corpus.join(t.name));
    let mut rng = fastrand::Rng::with_seed(seed ^ fxhash(t.name.as_bytes()));
    let started = Instant::now();
    let budget = Duration::from_secs_f64(cli.seconds);
    // The watchdog: the start time of the input running now (0 when none), checked by a
    // thread that aborts on a hang (a hang cannot be caught in-process).
    let running = Arc::new(AtomicU64::new(0));
    let current = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let watchdog = {
        let (running, current) = (running.clone(), current.clone());
        let hang = cli.hang_ms;
        let dir = crashes.join(t.name);
        let name = t.name;
        let epoch = started;
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let since = running.load(Ordering::Acquire);
                if since == u64::MAX {
                    return;
                }
                let now = epoch.elapsed().as_millis() as u64 + 1;
                if since != 0 && now.saturating_sub(since) > hang {
                    let input = current.lock().map(|c| c.clone()).unwrap_or_default();
                    let path = save(&dir, "hang", &input);
                    eprintln!("{name}: input running over {hang} ms, saved to {path}");
                    std::process::abort();
                }
            }
        })
    };
    let mut execs = 0u64;
    let mut found = 0u64;
    // Each seed as it is, first.
    let mut queue: Vec<Vec<u8>> = seeds.clone();
    while started.elapsed() < budget || !queue.is_empty() {
        let input = queue.pop().unwrap_or_else(|| {
            let base = &seeds[rng.usize(..seeds.len())];
            let other = &seeds[rng.usize(..seeds.len())];
            mutate(base, other, t.dictionary, &mut rng, cli.max_len)
        });
        if let Ok(mut c) = current.lock() {
            c.clone_from(&input);
        }
        running.store(started.elapsed().as_millis() as u64 + 1, Ordering::Release);
        let result = std::panic::catch_unwind(|| (t.run)(&input));
        running.store(0, Ordering::Release);
        execs += 1;
        if result.is_err() {
            found += 1;
            let path = save(&crashes.join(t.name), "crash", &input);
            eprintln!("{}: crashing input saved to {path}", t.name);
            if found >= 10 {
                break;
            }
        }
    }
    running.store(u64::MAX, Ordering::Release);
    let _ = watchdog.join();
    Report {
        execs,
        crashes: found,
        seeds: seeds.len(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn save(dir: &Path, kind: &str, input: &[u8]) -> String {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{kind}-{:016x}", fxhash(input)));
    let _ = std::fs::write(&path, input);
    path.display().to_string()
}

/// A stable hash for file names and per-target seeds.
fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Numbers at the edges of what length fields and counters accept.
const BOUNDARIES: &[&[u8]] = &[
    b"0",
    b"-1",
    b"1",
    b"127",
    b"128",
    b"255",
    b"256",
    b"32767",
    b"32768",
    b"65535",
    b"65536",
    b"2147483647",
    b"2147483648",
    b"4294967295",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"18446744073709551615",
];

/// One to eight random edits of `base`.
fn mutate(
    base: &[u8],
    other: &[u8],
    dict: &[&[u8]],
    rng: &mut fastrand::Rng,
    max_len: usize,
) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.usize(1..=8) {
        let pos = rng.usize(..=v.len());
        match rng.u8(..10) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] ^= 1 << rng.u8(..8);
            }
            1 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] = rng.u8(..);
            }
            2 => {
                let n = rng.usize(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
                v.splice(pos..pos, bytes);
            }
            3 if !v.is_empty() => {
                let start = rng.usize(..v.len());
                let end = (start + rng.usize(1..=16)).min(v.len());
                v.drain(start..end);
            }
            4 if !v.is_empty() => {
                let start = rng.usize(..v.len());
                let end = (start + rng.usize(1..=64)).min(v.len());
                let copy = v[start..end].to_vec();
                let at = rng.usize(..=v.len());
                v.splice(at..at, copy);
            }
            5 if !other.is_empty() => {
                let start = rng.usize(..other.len());
                let end = (start + rng.usize(1..=other.len())).min(other.len());
                v.splice(pos..pos, other[start..end].iter().copied());
            }
            6 | 7 if !dict.is_empty() => {
                let token = dict[rng.usize(..dict.len())];
                v.splice(pos..pos, token.iter().copied());
            }
            8 => {
                let token = BOUNDARIES[rng.usize(..BOUNDARIES.len())];
                // Replace a run of digits if there is one here, else insert.
                let end = v[pos..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(v.len(), |n| pos + n);
                v.splice(pos..end, token.iter().copied());
            }
            _ => {
                if v.len() > 1 {
                    let cut = rng.usize(..v.len());
                    v.truncate(cut.max(1));
                }
            }
        }
    }
    v.truncate(max_len);
    v
}

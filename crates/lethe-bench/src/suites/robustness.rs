//! Robustness suite: what hostile or clumsy clients cost `lethe serve`, against `redis-server`
//! in the same run.
//!
//! Both servers run on free loopback ports (Lethe a release build with a 1 GiB budget, Redis
//! with persistence off), one after the other for each case. Cases:
//!
//! - `trickle`: 4 clients each send a request of `A` arguments (`DEL` and `A` small keys, none
//!   of which exists) at full speed except its last bulk argument, whose payload they then
//!   trickle at 10 KB/s (1 KiB every 100 ms) for `D` seconds before completing it. A parser that
//!   starts over on every read does `A` arguments' work per trickled piece; one that keeps its
//!   place does the piece's. Meanwhile a fifth client sends `PING` every 10 ms: `ping_max_ms`
//!   and `ping_p50_ms` are its worst and median round trips (how much the trickling clients
//!   delay everyone else).
//! - `trickle_parse`: the same with `GET` as the command, which both servers refuse for its
//!   arity once the request is read: reading and parsing only, without `DEL`'s `A` removals.
//! - `mset_16x16mb`: one `MSET` of 16 values of 16 MiB each (4 MiB in `--quick`), sent at full
//!   speed; the case ends with the reply. Large arguments are where copying and re-scanning
//!   show.
//!
//! `cpu_s` is the server process's user + system CPU time (all threads, `/proc/<pid>/stat`)
//! from the case's start to its end; `cpu_over_redis` is Lethe's over Redis's. Each figure is
//! the median of 3 runs (1 in `--quick`). Target from the issue: `cpu_over_redis` ≤ 2.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::lethe_server::{self, LetheServer};
use crate::redis_server::RedisServer;
use crate::report::{RunContext, SuiteReport};
use crate::systems::System;

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "robustness";
/// Trickling clients.
const TRICKLERS: usize = 4;
/// Trickled bytes per step, and the pause between steps (10 KB/s).
const STEP_BYTES: usize = 1024;
const STEP_PAUSE: Duration = Duration::from_millis(100);
/// Values in the MSET case.
const MSET_VALUES: usize = 16;
/// Target from the issue: Lethe's CPU at most this times Redis's.
const TARGET_CPU: f64 = 2.0;

#[derive(Debug, Clone, Copy)]
struct Settings {
    args: usize,
    trickle: Duration,
    value_bytes: usize,
    runs: usize,
}

impl Settings {
    fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                args: 100_000,
                trickle: Duration::from_secs(3),
                value_bytes: 4 << 20,
                runs: 1,
            }
        } else {
            Settings {
                args: 1_000_000,
                trickle: Duration::from_secs(20),
                value_bytes: 16 << 20,
                runs: 3,
            }
        }
    }
}

/// A server under test.
#[derive(Debug, Clone, Copy)]
struct Target {
    name: &'static str,
    port: u16,
    pid: u32,
}

pub fn run(ctx: &RunContext) -> Result<(), String> {
    let settings = Settings::new(ctx.quick);
    let binary = lethe_server::binary()?;
    let lethe = LetheServer::start(&binary, 1 << 30)?;
    let redis = match RedisServer::start() {
        Ok(r) => Some(r),
        Err(e) => {
            say!("[robustness] redis-server did not start ({e}); Lethe only");
            None
        }
    };
    let mut targets = vec![Target {
        name: "lethe",
        port: lethe.port(),
        pid: lethe.pid(),
    }];
    if let Some(r) = &redis {
        targets.push(Target {
            name: "redis",
            port: r.port(),
            pid: r.pid(),
        });
    }
    let mode = format!(
        "{} run(s) per figure, median; trickle: {} clients × {} arguments, the last one \
         trickled at 10 KB/s for {} s; MSET of {} × {} MiB",
        settings.runs,
        TRICKLERS,
        settings.args,
        settings.trickle.as_secs(),
        MSET_VALUES,
        settings.value_bytes >> 20
    );
    let mut report = SuiteReport::new(
        SUITE,
        "Robustness (hostile clients: lethe serve vs redis-server)",
        &[System::Lethe],
        mode,
    );
    report.note(
        "Methodology (full detail in `crates/lethe-bench/src/suites/robustness.rs`): \
         `trickle` has 4 clients each send a `DEL` of many missing keys at full speed except \
         the last argument, which they trickle at 10 KB/s, while a fifth client PINGs every \
         10 ms; `trickle_parse` is the same request under `GET`, refused for its arity once \
         read (reading and parsing only); `mset_16x16mb` sends one MSET of 16 large values. `cpu_s` is the \
         server process's user + system CPU time over the case (`/proc/<pid>/stat`), \
         `ping_*_ms` the PING client's round trips during the trickle. Servers run one after \
         the other, in the same run.",
    );
    if redis.is_none() {
        report.note("**redis-server did not start; Redis figures are missing.**");
    }
    let mut rows: Vec<(String, &'static str, &'static str, f64)> = Vec::new();
    for case in ["trickle", "trickle_parse", "mset_16x16mb"] {
        if !ctx.selects_case(case) {
            continue;
        }
        for t in &targets {
            let mut cpu = Vec::new();
            let mut p50 = Vec::new();
            let mut pmax = Vec::new();
            for _ in 0..settings.runs {
                match case {
                    "trickle" | "trickle_parse" => {
                        let command = if case == "trickle" { "DEL" } else { "GET" };
                        let (c, median, max) = trickle(t, &settings, command)?;
                        cpu.push(c);
                        p50.push(median);
                        pmax.push(max);
                    }
                    _ => cpu.push(mset(t, &settings)?),
                }
            }
            let cpu = median(&mut cpu);
            report.push_named(case, t.name, "cpu_s", cpu);
            rows.push((case.into(), t.name, "cpu_s", cpu));
            if !p50.is_empty() {
                for (metric, v) in [
                    ("ping_p50_ms", median(&mut p50)),
                    ("ping_max_ms", median(&mut pmax)),
                ] {
                    report.push_named(case, t.name, metric, v);
                    rows.push((case.into(), t.name, metric, v));
                }
            }
        }
        let get = |system: &str, metric: &str| {
            rows.iter()
                .find(|r| r.0 == case && r.1 == system && r.2 == metric)
                .map(|r| r.3)
        };
        if let (Some(l), Some(r)) = (get("lethe", "cpu_s"), get("redis", "cpu_s")) {
            // One clock tick is the resolution: a server that used none counts as one.
            let tick = 1.0 / clock_ticks_per_second();
            let ratio = l.max(tick) / r.max(tick);
            report.push_named(case, "lethe", "cpu_over_redis", ratio);
            rows.push((case.into(), "lethe", "cpu_over_redis", ratio));
        }
    }
    report.finish_with_table(ctx, &render(&rows));
    Ok(())
}

fn render(rows: &[(String, &'static str, &'static str, f64)]) -> String {
    let get = |case: &str, system: &str, metric: &str| {
        rows.iter()
            .find(|r| r.0 == case && r.1 == system && r.2 == metric)
            .map(|r| r.3)
    };
    let fmt =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "–".into(), |v| format!("{v:.2}{unit}"));
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| case | lethe CPU s | redis CPU s | lethe/redis | lethe PING p50 / max ms | redis \
         PING p50 / max ms |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    let mut cases: Vec<&str> = Vec::new();
    for r in rows {
        if !cases.contains(&r.0.as_str()) {
            cases.push(&r.0);
        }
    }
    for case in &cases {
        let ping = |s: &str| match (get(case, s, "ping_p50_ms"), get(case, s, "ping_max_ms")) {
            (Some(a), Some(b)) => format!("{a:.2} / {b:.2}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            t,
            "| {case} | {} | {} | {} | {} | {} |",
            fmt(get(case, "lethe", "cpu_s"), " s"),
            fmt(get(case, "redis", "cpu_s"), " s"),
            fmt(get(case, "lethe", "cpu_over_redis"), "×"),
            ping("lethe"),
            ping("redis"),
        );
    }
    let _ = writeln!(t, "\n| target | measured | required | met |");
    let _ = writeln!(t, "|---|---|---|---|");
    for case in &cases {
        match get(case, "lethe", "cpu_over_redis") {
            Some(v) => {
                let met = if v <= TARGET_CPU { "yes" } else { "**no**" };
                let _ = writeln!(
                    t,
                    "| `{case}`: lethe / redis server CPU s | {v:.2}× | ≤ {TARGET_CPU:.2}× | {met} |"
                );
            }
            None => {
                let _ = writeln!(
                    t,
                    "| `{case}`: lethe / redis server CPU s | not measured | ≤ {TARGET_CPU:.2}× | – |"
                );
            }
        }
    }
    t
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

/// Reads one simple reply line (`+OK`, `:n`, `-ERR ...`).
fn read_line(r: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    Ok(line)
}

/// The `trickle` case on `t`: (server CPU s, PING p50 ms, PING max ms).
fn trickle(t: &Target, s: &Settings, command: &'static str) -> Result<(f64, f64, f64), String> {
    let steps = (s.trickle.as_millis() / STEP_PAUSE.as_millis()) as usize;
    // The last argument lasts the whole trickle.
    let last_arg = steps * STEP_BYTES;
    let mut head = format!("*{}\r\n$3\r\n{command}\r\n", s.args + 2).into_bytes();
    for i in 0..s.args {
        let key = format!("k{i}");
        let _ = write!(head, "${}\r\n{key}\r\n", key.len());
    }
    let _ = write!(head, "${last_arg}\r\n");
    let head = std::sync::Arc::new(head);
    let cpu_before = cpu_seconds(t.pid)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let (port, stop) = (t.port, stop.clone());
        std::thread::spawn(move || -> Result<Vec<f64>, String> {
            let s = connect(port)?;
            let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
            let mut w = s;
            let mut samples = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                w.write_all(b"*1\r\n$4\r\nPING\r\n")
                    .map_err(|e| e.to_string())?;
                let line = read_line(&mut r)?;
                if line != "+PONG\r\n" {
                    return Err(format!("PING answered {line:?}"));
                }
                samples.push(start.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(samples)
        })
    };
    let clients: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            let (port, head) = (t.port, head.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut w = connect(port)?;
                w.write_all(&head).map_err(|e| e.to_string())?;
                for _ in 0..steps {
                    std::thread::sleep(STEP_PAUSE);
                    w.write_all(&[b'x'; STEP_BYTES])
                        .map_err(|e| e.to_string())?;
                }
                w.write_all(b"\r\n").map_err(|e| e.to_string())?;
                let mut r = BufReader::new(w);
                let line = read_line(&mut r)?;
                let expected = if command == "DEL" {
                    ":"
                } else {
                    "-ERR wrong number"
                };
                if !line.starts_with(expected) {
                    return Err(format!("{command} answered {line:?}"));
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().map_err(|_| "trickling client panicked")??;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut pings = pinger.join().map_err(|_| "PING client panicked")??;
    let cpu = cpu_seconds(t.pid)? - cpu_before;
    if pings.is_empty() {
        return Err("no PING answered".into());
    }
    let max = pings.iter().copied().fold(0.0, f64::max);
    Ok((cpu, median(&mut pings), max))
}

/// The `mset_16x16mb` case on `t`: server CPU s.
fn mset(t: &Target, s: &Settings) -> Result<f64, String> {
    let value = vec![b'v'; s.value_bytes];
    let mut w = connect(t.port)?;
    let cpu_before = cpu_seconds(t.pid)?;
    let _ = write!(w, "*{}\r\n$4\r\nMSET\r\n", 1 + 2 * MSET_VALUES);
    for i in 0..MSET_VALUES {
        let key = format!("big:{i}");
        let _ = write!(w, "${}\r\n{key}\r\n${}\r\n", key.len(), value.len());
        w.write_all(&value).map_err(|e| e.to_string())?;
        w.write_all(b"\r\n").map_err(|e| e.to_string())?;
    }
    let mut r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
    let line = read_line(&mut r)?;
    let cpu = cpu_seconds(t.pid)? - cpu_before;
    if line != "+OK\r\n" {
        return Err(format!("MSET answered {line:?}"));
    }
    // Free the memory for the next case; not measured.
    w.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n")
        .map_err(|e| e.to_string())?;
    let mut sink = [0u8; 5];
    r.read_exact(&mut sink).map_err(|e| e.to_string())?;
    Ok(cpu)
}

/// utime + stime of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || -> Result<f64, String> {
        fields
            .next()
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| format!("cannot parse /proc/{pid}/stat"))
    };
    let ticks = next()? + next()?;
    Ok(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
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
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

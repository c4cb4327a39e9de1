//! The `cluster` suite: what running `lethe serve --cluster` costs and how fast it heals.
//!
//! - `cpu_per_op`: one node with cluster mode on (a one-node cluster serving every slot)
//!   against one with it off, both members of the same bus, in the same run: pipelined SET
//!   and GET from two client threads; the server's CPU time per operation (utime + stime of
//!   its process, `/proc/<pid>/stat`) and its throughput. Target: CPU per op with cluster
//!   mode on <= 1.1x off.
//! - `redirect_storm`: three nodes; two clients read keys of every slot, each following MOVED
//!   with a slot table of its own (as cluster clients do). A third of one node's slots move
//!   (`lethe cluster move`); the time from the move's return until the last MOVED any client
//!   gets, and how many MOVED replies that was.
//! - `failover`: three nodes; one is killed with SIGKILL; the time until a survivor's CLUSTER
//!   SLOTS gives every slot to a live node. Target: <= 2x the heartbeat TTL (6 s).
//!
//! Every node is a release `lethe serve` process; nats-server (JetStream) is the suite's own
//! (`lethe_bus::testing`).

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lethe_bus::testing::NatsServer;
use lethe_cluster::key_slot;

use crate::lethe_server::{self, LetheServer};
use crate::report::{RunContext, SuiteReport};
use crate::resp::{self, Frame};
use crate::systems::System;

use super::server::{clock_ticks_per_second, cpu_ticks};

pub const SUITE: &str = "cluster";

/// Keyspace budget per node: far above what the suite stores.
const MAX_MEMORY: u64 = 2 << 30;
/// The heartbeat TTL nodes use (the membership's default).
const HEARTBEAT_TTL: Duration = Duration::from_secs(6);
/// Commands per pipeline in the CPU case.
const PIPELINE: usize = 16;
/// Keys the clients of the redirect case read, spread over every slot.
const STORM_KEYS: usize = 20_000;

struct Settings {
    ops: usize,
    storm_after: Duration,
}

impl Settings {
    fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                ops: 40_000,
                storm_after: Duration::from_secs(2),
            }
        } else {
            Settings {
                ops: 800_000,
                storm_after: Duration::from_secs(4),
            }
        }
    }
}

pub fn run(ctx: &RunContext) -> Result<(), String> {
    if !ctx.systems(&[System::Lethe]).contains(&System::Lethe) {
        say!("[{SUITE}] skipped: lethe is not among --systems");
        return Ok(());
    }
    let s = Settings::new(ctx.quick);
    let binary = lethe_server::binary()?;
    let nats = NatsServer::start();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mode = format!(
        "{} operations per configuration in pipelines of {PIPELINE} from 2 threads; 3 nodes \
         for the redirect and failover cases; heartbeat TTL {} s; one run each",
        crate::report::thousands(s.ops as u64),
        HEARTBEAT_TTL.as_secs()
    );
    let mut report = SuiteReport::new(SUITE, "Cluster", &[System::Lethe], mode);
    let mut table = String::from("| case | metric | value |\n|---|---|---|\n");
    let mut row = |report: &mut SuiteReport, case: &str, metric: &'static str, v: f64| {
        report.push_named(case, "lethe", metric, v);
        table.push_str(&format!("| {case} | {metric} | {v:.3} |\n"));
    };

    if ctx.selects_case("cpu_per_op") {
        say!("[{SUITE}] cpu_per_op");
        let off = cpu_case(&binary, &nats, false, s.ops)?;
        let on = cpu_case(&binary, &nats, true, s.ops)?;
        row(
            &mut report,
            "cpu_per_op:off",
            "ops_per_sec",
            off.ops_per_sec,
        );
        row(
            &mut report,
            "cpu_per_op:off",
            "cpu_us_per_op",
            off.cpu_us_per_op,
        );
        row(&mut report, "cpu_per_op:on", "ops_per_sec", on.ops_per_sec);
        row(
            &mut report,
            "cpu_per_op:on",
            "cpu_us_per_op",
            on.cpu_us_per_op,
        );
        let ratio = on.cpu_us_per_op / off.cpu_us_per_op;
        row(&mut report, "cpu_per_op", "on_over_off", ratio);
        report.note(format!(
            "CPU per operation with cluster mode on is {ratio:.2}x off (target <= 1.1x: {}); \
             throughput {:.2}x.",
            met(ratio <= 1.1),
            on.ops_per_sec / off.ops_per_sec
        ));
    }

    if ctx.selects_case("redirect_storm") || ctx.selects_case("failover") {
        let mut trio = Trio::start(&binary, &nats)?;
        if ctx.selects_case("redirect_storm") {
            say!("[{SUITE}] redirect_storm");
            let r = redirect_storm(&binary, &nats, &trio, s.storm_after)?;
            row(&mut report, "redirect_storm", "slots_moved", r.slots as f64);
            row(
                &mut report,
                "redirect_storm",
                "moved_replies",
                r.moved as f64,
            );
            row(&mut report, "redirect_storm", "last_moved_ms", r.last_ms);
            report.note(format!(
                "After {} slots moved, clients got {} MOVED replies; the last {:.1} ms after \
                 the move returned.",
                r.slots, r.moved, r.last_ms
            ));
        }
        if ctx.selects_case("failover") {
            say!("[{SUITE}] failover");
            let ms = failover(&mut trio)?;
            row(&mut report, "failover", "failover_ms", ms);
            let ratio = ms / HEARTBEAT_TTL.as_millis() as f64;
            row(&mut report, "failover", "over_heartbeat_ttl", ratio);
            report.note(format!(
                "SIGKILL to every slot on a live node: {:.0} ms, {ratio:.2}x the heartbeat \
                 TTL (target <= 2x: {}).",
                ms,
                met(ratio <= 2.0)
            ));
        }
    }
    report.note(format!(
        "This machine has {cores} cores; nats-server, the nodes and the clients share them."
    ));
    report.finish_with_table(ctx, &table);
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn lethe(binary: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(binary)
        .args(args)
        .env_remove("LETHE_LOG")
        .output()
        .map_err(|e| format!("cannot run lethe: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "lethe {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn node(
    binary: &Path,
    nats: &NatsServer,
    name: &str,
    cluster: bool,
) -> Result<LetheServer, String> {
    let mut extra: Vec<std::ffi::OsString> = vec![
        "--bus".into(),
        nats.url().into(),
        "--node-id".into(),
        name.into(),
    ];
    if cluster {
        extra.push("--cluster".into());
    }
    LetheServer::start_with(binary, MAX_MEMORY, &extra)
}

/// One command on a fresh connection to `port`.
fn command(port: u16, args: &[&str]) -> Result<Frame, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    resp::encode(&mut out, args);
    (&s).write_all(&out).map_err(|e| e.to_string())?;
    resp::read_frame(&mut BufReader::new(&s)).map_err(|e| e.to_string())
}

/// Slot ranges and their owners' ports, per CLUSTER SLOTS of the node on `port`.
fn slot_table(port: u16) -> Result<Vec<(u16, u16, u16)>, String> {
    let Frame::Array(Some(ranges)) = command(port, &["CLUSTER", "SLOTS"])? else {
        return Err("CLUSTER SLOTS did not answer an array".into());
    };
    let mut out = Vec::new();
    for r in ranges {
        let Frame::Array(Some(items)) = r else {
            continue;
        };
        if let (Some(Frame::Int(a)), Some(Frame::Int(b)), Some(Frame::Array(Some(n)))) =
            (items.first(), items.get(1), items.get(2))
        {
            if let Some(Frame::Int(p)) = n.get(1) {
                out.push((*a as u16, *b as u16, *p as u16));
            }
        }
    }
    Ok(out)
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !ok() {
        if Instant::now() > deadline {
            return Err(format!("[{SUITE}] timed out: {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

struct Cpu {
    ops_per_sec: f64,
    cpu_us_per_op: f64,
}

/// A node with cluster mode `on` (a one-node cluster with every slot) or off, loaded with
/// `ops` pipelined SET/GET; its CPU time per op.
fn cpu_case(binary: &Path, nats: &NatsServer, on: bool, ops: usize) -> Result<Cpu, String> {
    let name = if on { "cpu-on" } else { "cpu-off" };
    let server = node(binary, nats, name, on)?;
    let port = server.port();
    if on {
        // A map of its own: this node alone, with every slot (`--force` replaces the map of
        // an earlier case).
        lethe(
            binary,
            &[
                "cluster",
                "create",
                "--force",
                "--bus",
                &nats.url(),
                "--nodes",
                &format!("{name}=127.0.0.1:{port}"),
            ],
        )?;
        wait_until("the node takes the map", Duration::from_secs(20), || {
            slot_table(port).is_ok_and(|t| t.iter().any(|r| r.0 == 0 && r.1 == 16383))
        })?;
    }
    let before = cpu_ticks(server.pid())?;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || -> Result<(), String> {
                let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
                let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                let mut w = s;
                let mut buf = Vec::new();
                for batch in 0..ops / 2 / PIPELINE {
                    buf.clear();
                    for i in 0..PIPELINE {
                        let key = format!("k:{t}:{}", (batch * PIPELINE + i) % 50_000);
                        if i % 2 == 0 {
                            resp::encode(
                                &mut buf,
                                &[
                                    "SET",
                                    &key,
                                    "value-of-48-bytes-value-of-48-bytes-value-of-48",
                                ],
                            );
                        } else {
                            resp::encode(&mut buf, &["GET", &key]);
                        }
                    }
                    w.write_all(&buf).map_err(|e| e.to_string())?;
                    for _ in 0..PIPELINE {
                        if let Frame::Error(e) =
                            resp::read_frame(&mut r).map_err(|e| e.to_string())?
                        {
                            return Err(format!("the server refused a command: {e}"));
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a client thread panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(server.pid())? - before;
    let done = (ops / 2 / PIPELINE * PIPELINE * 2) as f64;
    Ok(Cpu {
        ops_per_sec: done / secs,
        cpu_us_per_op: ticks as f64 / clock_ticks_per_second() * 1e6 / done,
    })
}

/// Three cluster nodes with the even split.
struct Trio {
    nodes: Vec<Option<LetheServer>>,
    ports: Vec<u16>,
}

impl Trio {
    fn start(binary: &Path, nats: &NatsServer) -> Result<Trio, String> {
        let names = ["n1", "n2", "n3"];
        let nodes = names
            .iter()
            .map(|n| node(binary, nats, n, true))
            .collect::<Result<Vec<_>, _>>()?;
        let ports: Vec<u16> = nodes.iter().map(LetheServer::port).collect();
        let list = names
            .iter()
            .zip(&ports)
            .map(|(n, p)| format!("{n}=127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        lethe(
            binary,
            &[
                "cluster",
                "create",
                "--force",
                "--bus",
                &nats.url(),
                "--nodes",
                &list,
            ],
        )?;
        for &p in &ports {
            wait_until("every node takes the map", Duration::from_secs(20), || {
                slot_table(p).is_ok_and(|t| {
                    t.iter().map(|r| usize::from(r.1 - r.0) + 1).sum::<usize>() == 16384
                        && t.iter().all(|r| ports.contains(&r.2))
                })
            })?;
        }
        Ok(Trio {
            nodes: nodes.into_iter().map(Some).collect(),
            ports,
        })
    }
}

struct Storm {
    slots: usize,
    moved: u64,
    last_ms: f64,
}

/// Two clients read keys of every slot while a third of n3's slots move to n1.
fn redirect_storm(
    binary: &Path,
    nats: &NatsServer,
    trio: &Trio,
    after: Duration,
) -> Result<Storm, String> {
    let table = slot_table(trio.ports[0])?;
    let n3 = trio.ports[2];
    let theirs: Vec<u16> = table
        .iter()
        .filter(|r| r.2 == n3)
        .flat_map(|r| r.0..=r.1)
        .collect();
    let moving = &theirs[..theirs.len() / 3];
    let slots_arg = format!("{}-{}", moving[0], moving[moving.len() - 1]);
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let last_moved = Arc::new(AtomicU64::new(0));
    let moved = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (stop, last_moved, moved) = (stop.clone(), last_moved.clone(), moved.clone());
            let mut owner = [0u16; 16384];
            for r in &table {
                for s in r.0..=r.1 {
                    owner[usize::from(s)] = r.2;
                }
            }
            std::thread::spawn(move || -> Result<(), String> {
                let mut conns: std::collections::HashMap<u16, (BufReader<TcpStream>, TcpStream)> =
                    std::collections::HashMap::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("storm:{}", i % STORM_KEYS);
                    i += 2;
                    let slot = key_slot(key.as_bytes());
                    // Bounded: a reply either answers or redirects, and a redirect updates the
                    // table, so the second try goes where the slot now is.
                    for _ in 0..3 {
                        let port = owner[usize::from(slot)];
                        let (r, w) = match conns.entry(port) {
                            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::hash_map::Entry::Vacant(e) => {
                                let s = TcpStream::connect(("127.0.0.1", port))
                                    .map_err(|e| e.to_string())?;
                                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                                e.insert((r, s))
                            }
                        };
                        let mut out = Vec::new();
                        resp::encode(&mut out, &["GET", &key]);
                        w.write_all(&out).map_err(|e| e.to_string())?;
                        match resp::read_frame(r).map_err(|e| e.to_string())? {
                            Frame::Error(e) if e.starts_with("MOVED ") => {
                                moved.fetch_add(1, Ordering::Relaxed);
                                last_moved
                                    .store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                                let to = e
                                    .rsplit(':')
                                    .next()
                                    .and_then(|p| p.parse().ok())
                                    .ok_or_else(|| format!("bad MOVED: {e}"))?;
                                owner[usize::from(slot)] = to;
                            }
                            Frame::Error(e) => return Err(format!("GET refused: {e}")),
                            _ => break,
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let n1 = "n1";
    lethe(
        binary,
        &[
            "cluster",
            "move",
            &slots_arg,
            "--to",
            n1,
            "--bus",
            &nats.url(),
        ],
    )?;
    let moved_at = epoch.elapsed();
    std::thread::sleep(after);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().map_err(|_| "a client panicked")??;
    }
    let last = Duration::from_nanos(last_moved.load(Ordering::Relaxed));
    Ok(Storm {
        slots: moving.len(),
        moved: moved.load(Ordering::Relaxed),
        last_ms: last.saturating_sub(moved_at).as_secs_f64() * 1e3,
    })
}

/// Kills n3 with SIGKILL; milliseconds until n1's CLUSTER SLOTS gives every slot to n1 or n2.
fn failover(trio: &mut Trio) -> Result<f64, String> {
    let victim = trio.nodes[2].take().ok_or("n3 is already gone")?;
    let pid = victim.pid();
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("kill -KILL failed".into());
    }
    let live = [trio.ports[0], trio.ports[1]];
    wait_until("the dead node's slots move", HEARTBEAT_TTL * 5, || {
        slot_table(live[0]).is_ok_and(|t| {
            t.iter().map(|r| usize::from(r.1 - r.0) + 1).sum::<usize>() == 16384
                && t.iter().all(|r| live.contains(&r.2))
        })
    })?;
    let ms = killed.elapsed().as_secs_f64() * 1e3;
    drop(victim);
    Ok(ms)
}

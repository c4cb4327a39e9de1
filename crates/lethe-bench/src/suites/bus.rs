//! Bus suite: how soon an invalidation issued on one node is applied on all three, how many
//! per second the bus sustains, and how many are lost when a member is cut off, for Lethe's
//! invalidation bus (NATS JetStream) and for the Redis pub/sub fan-out it replaces, side by
//! side. [`super::bus_cluster`] describes both clusters and the observers.
//!
//! Cases (the same for both systems; `--quick` only shortens them), after a warm-up of
//! [`WARM_UP_KEYS`] invalidations at 1k/s applied everywhere (untimed):
//!
//! - `rate:1k`, `rate:10k`: an origin client sends one invalidation of one key (Lethe:
//!   `LETHE.INVALIDATE KEY bus:<id>`; Redis: `DEL bus:<id>` + `PUBLISH`) to node 1 at a fixed
//!   rate, open loop: invalidation `i` is due at `start + i / rate` and written then (a late
//!   writer writes everything due at once, never waiting for replies, which a second thread
//!   reads). Every key was stored on every node first. The latency of an invalidation is from
//!   its scheduled time (so a stalled sender cannot hide delay: no coordinated omission) to the
//!   last of the three tracking pushes saying the key left a node. `lost`: keys still not
//!   removed on some node 10 s after the last send. `achieved_per_sec`: invalidations sent per
//!   second of the sending window, to show whether the origin held the rate.
//! - `sustained`: [`BATCH`] keys per command (Lethe: one `LETHE.INVALIDATE KEY` with all of
//!   them; Redis: one `DEL` with all of them and one `PUBLISH` of the list, which each
//!   subscriber deletes with one `DEL`), written as fast as the socket takes them;
//!   `invalidations_per_sec` is keys from the first write until `DBSIZE` on all three nodes
//!   shows every one gone (polled every 2 ms).
//! - `partition`: node 3 holds [`PARTITION_KEYS`]-ish keys (and 100 control keys nobody
//!   invalidates); its link is cut (Lethe: its NATS connection; Redis: its subscriber's
//!   connection to node 1) for 2 s, during which node 1 invalidates every one of those keys,
//!   paced over 1.5 s. After the link is restored and node 3 has caught up (Lethe: connected,
//!   no consumer lag, node 1's outbox empty; Redis: subscribed again), plus [`GRACE`],
//!   `lost` counts the keys node 3 still holds. `member_flushes` counts flushes node 3 did
//!   (a flush would hide losses; the control keys are checked too), `recovery_ms` is from
//!   the restore until node 3 held none of the keys.
//!
//! Everything (NATS, six servers, the observers, the origin) runs on this one machine and
//! shares its cores, which the report states.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::bus_cluster::{Cluster, Kind, NODES, TRACKED_PREFIX, nats_available};
use crate::lethe_server;
use crate::report::{RunContext, SuiteReport, thousands};
use crate::systems::System;

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "bus";
/// Invalidations sent before the measured cases (see [`warm_up`]).
const WARM_UP_KEYS: usize = 500;
/// Keys per command in the sustained case.
const BATCH: usize = 100;
/// Rates measured, invalidations per second.
const RATES: [(u32, &str); 2] = [(1_000, "rate:1k"), (10_000, "rate:10k")];
/// Invalidations issued while node 3 is cut off (a fifth with `--quick`).
const PARTITION_KEYS: usize = 5_000;
/// How long node 3 is cut off, and the part of it invalidations are sent in.
const CUT: Duration = Duration::from_secs(2);
const SEND_WINDOW: Duration = Duration::from_millis(1_500);
/// Keys node 3 holds that nobody invalidates: a flush would remove them.
const CONTROL_KEYS: usize = 100;
/// How long keys may still leave node 3 after it caught up, before they count as lost.
const GRACE: Duration = Duration::from_secs(2);
/// Targets from the issue.
const TARGET_P99_MS: f64 = 5.0;
const TARGET_SUSTAINED: f64 = 100_000.0;

#[derive(Debug)]
struct Settings {
    seconds: f64,
    sustained: usize,
    partition: usize,
}

impl Settings {
    fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                seconds: 1.0,
                sustained: 50_000,
                partition: PARTITION_KEYS / 5,
            }
        } else {
            Settings {
                seconds: 10.0,
                sustained: 500_000,
                partition: PARTITION_KEYS,
            }
        }
    }

    fn tracked(&self) -> usize {
        RATES
            .iter()
            .map(|&(r, _)| (f64::from(r) * self.seconds) as usize)
            .sum()
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Debug)]
struct RateResult {
    achieved: f64,
    p50: f64,
    p99: f64,
    max: f64,
    lost: usize,
    /// Each node's median latency, for the report.
    per_node: String,
}

#[derive(Debug)]
struct PartitionResult {
    lost: usize,
    lost_elsewhere: usize,
    controls_kept: usize,
    flushes: u64,
    recovery_ms: Option<f64>,
    resubscribes: u64,
}

pub fn run(ctx: &RunContext) -> Result<(), String> {
    if !ctx.systems(&[System::Lethe]).contains(&System::Lethe) {
        say!("[{SUITE}] skipped: lethe is not among --systems");
        return Ok(());
    }
    if !nats_available() {
        return Err("nats-server not found (Debian package `nats-server`)".into());
    }
    let s = Settings::new(ctx.quick);
    let binary = lethe_server::binary()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mode = format!(
        "{} s per rate case, {} invalidations in batches of {BATCH} in the sustained case, {} \
         invalidations during a {} s cut, 3 nodes per system, one run each",
        s.seconds,
        thousands(s.sustained as u64),
        thousands(s.partition as u64),
        CUT.as_secs()
    );
    let mut report = SuiteReport::new(SUITE, "Invalidation bus", &[System::Lethe], mode);
    let mut rows: Vec<(String, &'static str, &'static str, f64)> = Vec::new();
    let mut push =
        |report: &mut SuiteReport, case: &str, kind: Kind, metric: &'static str, value: f64| {
            report.push_named(case, kind.name(), metric, value);
            rows.push((case.to_string(), kind.name(), metric, value));
        };

    let mut redis_error = None;
    for kind in [Kind::Lethe, Kind::Redis] {
        say!("[{SUITE}] starting the {} cluster", kind.name());
        let cluster = match kind {
            Kind::Lethe => Cluster::lethe(&binary, s.tracked())?,
            Kind::Redis => match Cluster::redis(s.tracked()) {
                Ok(c) => c,
                Err(e) => {
                    say!("[{SUITE}] Redis fan-out skipped: {e}");
                    redis_error = Some(e);
                    continue;
                }
            },
        };
        warm_up(&cluster)?;
        let mut first = 0;
        for (rate, case) in RATES {
            let count = (f64::from(rate) * s.seconds) as usize;
            let ids = first..first + count;
            first += count;
            if !ctx.selects_case(case) {
                continue;
            }
            say!("[{SUITE}] {} {case}", kind.name());
            let r = fixed_rate(&cluster, ids, f64::from(rate))?;
            push(&mut report, case, kind, "achieved_per_sec", r.achieved);
            push(&mut report, case, kind, "latency_p50_ms", r.p50);
            push(&mut report, case, kind, "latency_p99_ms", r.p99);
            push(&mut report, case, kind, "latency_max_ms", r.max);
            push(&mut report, case, kind, "lost", r.lost as f64);
            report.note(format!(
                "{} {case}, median per node: {}.",
                kind.name(),
                r.per_node
            ));
        }
        if ctx.selects_case("sustained") {
            say!("[{SUITE}] {} sustained", kind.name());
            let rate = sustained(&cluster, s.sustained)?;
            push(
                &mut report,
                "sustained",
                kind,
                "invalidations_per_sec",
                rate,
            );
        }
        if ctx.selects_case("partition") {
            say!("[{SUITE}] {} partition", kind.name());
            let p = partition(&cluster, s.partition)?;
            push(&mut report, "partition", kind, "lost", p.lost as f64);
            push(
                &mut report,
                "partition",
                kind,
                "lost_on_other_nodes",
                p.lost_elsewhere as f64,
            );
            push(
                &mut report,
                "partition",
                kind,
                "member_flushes",
                p.flushes as f64,
            );
            if let Some(ms) = p.recovery_ms {
                push(&mut report, "partition", kind, "recovery_ms", ms);
            }
            if p.controls_kept != CONTROL_KEYS {
                report.note(format!(
                    "{}: node 3 kept only {} of its {CONTROL_KEYS} control keys after the \
                     partition (a flush), so its `lost` count cannot show losses.",
                    kind.name(),
                    p.controls_kept
                ));
            }
            if kind == Kind::Redis {
                report.note(format!(
                    "Redis partition: node 3's subscriber subscribed again {} time(s); every \
                     message published while it was away is gone, which is what `lost` counts.",
                    p.resubscribes
                ));
            }
        }
        let flushes = cluster
            .stamps
            .flushes
            .load(std::sync::atomic::Ordering::Relaxed);
        if flushes > 0 {
            report.note(format!(
                "{}: the tracking clients were told of {flushes} whole-keyspace flush(es).",
                kind.name()
            ));
        }
    }
    if let Some(e) = redis_error {
        report.note(format!("The Redis fan-out could not be measured: {e}."));
    }

    let get = |case: &str, system: &str, metric: &str| {
        rows.iter()
            .find(|r| r.0 == case && r.1 == system && r.2 == metric)
            .map(|r| r.3)
    };
    if let Some(p99) = get("rate:10k", "lethe", "latency_p99_ms") {
        report.note(format!(
            "Lethe at 10k invalidations/s: p99 {p99:.2} ms from scheduled send to applied on \
             all 3 nodes, against the target of <= {TARGET_P99_MS} ms: {}.",
            met(p99 <= TARGET_P99_MS)
        ));
    }
    if let Some(rate) = get("sustained", "lethe", "invalidations_per_sec") {
        report.note(format!(
            "Lethe sustained {rate:.0} invalidations/s (batches of {BATCH}) applied on all 3 \
             nodes, against the target of >= {TARGET_SUSTAINED:.0}: {}.",
            met(rate >= TARGET_SUSTAINED)
        ));
    }
    let lethe_lost: f64 = rows
        .iter()
        .filter(|r| r.1 == "lethe" && r.2.starts_with("lost"))
        .map(|r| r.3)
        .sum();
    report.note(format!(
        "Lethe lost {lethe_lost:.0} invalidations over every case, against the target of 0: {}.",
        met(lethe_lost == 0.0)
    ));
    report.note(
        "Method (full detail in `crates/lethe-bench/src/suites/bus.rs`): three Lethe nodes on \
         one nats-server (JetStream), against three redis-servers where node 1's channel is \
         fanned out by one subscriber per other node that deletes the keys it receives (the \
         pub/sub way). Rate cases: one key per invalidation sent open loop to node 1; latency \
         from the scheduled send to the key's removal on the last of the 3 nodes. Sustained: \
         100 keys per command, until DBSIZE shows every key gone on all nodes. Partition: node \
         3 cut off for 2 s (Lethe: its NATS connection; Redis: its subscriber's connection) \
         while node 1 invalidates keys it holds; `lost` = keys node 3 still holds once it has \
         caught up. Ratios are lethe / redis: above 1 means Lethe is slower for latencies and \
         faster for rates.",
    );
    report.note(format!(
        "This machine has {cores} cores; nats-server, the three nodes of each system, the \
         tracking clients, the Redis subscribers and the origin all share them, so latency \
         includes waiting for a core. Latency is measured from the scheduled send time to the \
         last node's tracking push (RESP3 `CLIENT TRACKING on BCAST PREFIX {TRACKED_PREFIX}` on \
         each node), the same way for both systems."
    ));

    let mut table = String::from("| case | metric | lethe | redis-pubsub | lethe/redis |\n");
    table.push_str("|---|---|---|---|---|\n");
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for r in &rows {
        if seen.contains(&(r.0.as_str(), r.2)) {
            continue;
        }
        seen.push((r.0.as_str(), r.2));
        let l = get(&r.0, "lethe", r.2);
        let o = get(&r.0, "redis-pubsub", r.2);
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format_metric(r.2, v));
        let ratio = match (l, o) {
            (Some(l), Some(o)) if l != 0.0 && o != 0.0 && !r.2.starts_with("lost") => {
                format!("{:.2}×", l / o)
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {ratio} |",
            r.0,
            r.2,
            cell(l),
            cell(o)
        );
    }
    report.finish_with_table(ctx, &table);
    Ok(())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn format_metric(metric: &str, v: f64) -> String {
    if metric.ends_with("_ms") {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

/// Invalidations sent, and applied everywhere, before anything is timed: the first ones after
/// start pay for connections and consumers getting going, which is not the steady state.
fn warm_up(cluster: &Cluster) -> Result<(), String> {
    let keys: Vec<String> = (0..WARM_UP_KEYS).map(|i| format!("warm:{i}")).collect();
    cluster.preload(&keys)?;
    let start = Instant::now();
    paced(cluster, &keys, 1_000.0, start)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut left = 0;
        for n in 0..NODES {
            left += cluster.present(n, &keys)?;
        }
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: {left} warm-up invalidations not applied everywhere within 30 s",
                cluster.kind.name()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    say!(
        "[{SUITE}] {} warmed up: {WARM_UP_KEYS} invalidations at 1k/s applied everywhere {:.0} \
         ms after the first was sent",
        cluster.kind.name(),
        start.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// Sends one invalidation per key in `keys` to node 1, key `i` due at `start + i / rate`,
/// without waiting for replies. Returns when the last one was written.
fn paced(cluster: &Cluster, keys: &[String], rate: f64, start: Instant) -> Result<Instant, String> {
    let mut origin = cluster.origin()?;
    let due = |i: usize| start + Duration::from_secs_f64(i as f64 / rate);
    let mut buf = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let now = Instant::now();
        if due(i) > now {
            std::thread::sleep(due(i) - now);
        }
        let now = Instant::now();
        buf.clear();
        // Everything already due goes in one write.
        while i < keys.len() && due(i) <= now {
            origin.encode(&mut buf, std::slice::from_ref(&keys[i]));
            i += 1;
        }
        origin.write(&buf)?;
    }
    let last = Instant::now();
    origin.finish(Duration::from_secs(30))?;
    Ok(last)
}

fn fixed_rate(
    cluster: &Cluster,
    ids: std::ops::Range<usize>,
    rate: f64,
) -> Result<RateResult, String> {
    let first_id = ids.start;
    let keys: Vec<String> = ids
        .clone()
        .map(|i| format!("{TRACKED_PREFIX}{i}"))
        .collect();
    cluster.preload(&keys)?;
    // Let the load's own traffic settle before anything is timed.
    std::thread::sleep(Duration::from_millis(200));
    cluster.stamps.arm();
    let start = Instant::now();
    let last = paced(cluster, &keys, rate, start)?;
    let stamps = &cluster.stamps;
    let everywhere = |id: usize| (0..NODES).all(|n| stamps.at(n, id) != 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ids.clone().all(everywhere) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let start_ns = stamps.nanos(start);
    let mut lat = Vec::with_capacity(keys.len());
    let mut lost = 0;
    for (i, id) in ids.enumerate() {
        if !everywhere(id) {
            lost += 1;
            continue;
        }
        let applied = (0..NODES).map(|n| stamps.at(n, id)).max().unwrap_or(0);
        let scheduled = start_ns + (i as f64 * 1e9 / rate) as u64;
        lat.push(applied.saturating_sub(scheduled) as f64 / 1e6);
    }
    lat.sort_by(f64::total_cmp);
    // Which node is slow, for the log: each node's median from the scheduled time.
    let per_node: Vec<String> = (0..NODES)
        .map(|n| {
            let mut v: Vec<f64> = (0..keys.len())
                .filter_map(|i| {
                    let at = stamps.at(n, first_id + i);
                    let scheduled = start_ns + (i as f64 * 1e9 / rate) as u64;
                    (at != 0).then(|| at.saturating_sub(scheduled) as f64 / 1e6)
                })
                .collect();
            v.sort_by(f64::total_cmp);
            format!("node {} p50 {:.2} ms", n + 1, percentile(&v, 0.5))
        })
        .collect();
    say!("[{SUITE}]   {}", per_node.join(", "));
    let per_node = per_node.join(", ");
    let window = last.duration_since(start).as_secs_f64().max(1e-9);
    Ok(RateResult {
        // The first send is due at 0 s: n sends span (n - 1) intervals.
        achieved: (keys.len().saturating_sub(1)) as f64 / window,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
        lost,
        per_node,
    })
}

fn sustained(cluster: &Cluster, count: usize) -> Result<f64, String> {
    let mut conns = (0..NODES)
        .map(|n| cluster.conn(n))
        .collect::<Result<Vec<_>, _>>()?;
    let base = conns
        .iter_mut()
        .map(|c| cluster.dbsize(c))
        .collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<String> = (0..count).map(|i| format!("bulk:{i}")).collect();
    cluster.preload(&keys)?;
    for (n, c) in conns.iter_mut().enumerate() {
        let size = cluster.dbsize(c)?;
        if size != base[n] + count as u64 {
            return Err(format!(
                "node {} holds {size} keys after loading {count} on top of {}",
                n + 1,
                base[n]
            ));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut origin = cluster.origin()?;
    let start = Instant::now();
    let mut buf = Vec::new();
    for chunk in keys.chunks(BATCH) {
        origin.encode(&mut buf, chunk);
        if buf.len() >= 64 * 1024 {
            origin.write(&buf)?;
            buf.clear();
        }
    }
    origin.write(&buf)?;
    let limit = Duration::from_secs(120);
    let deadline = start + limit;
    loop {
        let mut done = true;
        for (n, c) in conns.iter_mut().enumerate() {
            done &= cluster.dbsize(c)? <= base[n];
        }
        if done {
            break;
        }
        if Instant::now() > deadline {
            let left = conns
                .iter_mut()
                .map(|c| cluster.dbsize(c).map(|s| s.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            return Err(format!(
                "{}: not every node applied {count} invalidations within {} s (keys left per \
                 node, including {base:?} from before: {})",
                cluster.kind.name(),
                limit.as_secs(),
                left.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = start.elapsed().as_secs_f64();
    origin.finish(Duration::from_secs(10))?;
    Ok(count as f64 / elapsed)
}

fn partition(cluster: &Cluster, count: usize) -> Result<PartitionResult, String> {
    let keys: Vec<String> = (0..count).map(|i| format!("part:{i}")).collect();
    let controls: Vec<String> = (0..CONTROL_KEYS).map(|i| format!("keep:{i}")).collect();
    cluster.preload(&keys)?;
    cluster.preload(&controls)?;
    let member = NODES - 1;
    if cluster.present(member, &keys)? != count {
        return Err("node 3 does not hold every key before the partition".into());
    }
    std::thread::sleep(Duration::from_millis(200));
    let resubscribes_before = cluster
        .resubscribes
        .load(std::sync::atomic::Ordering::Relaxed);
    cluster.proxy.cut();
    let cut_at = Instant::now();
    paced(
        cluster,
        &keys,
        count as f64 / SEND_WINDOW.as_secs_f64(),
        cut_at,
    )?;
    if let Some(rest) = CUT.checked_sub(cut_at.elapsed()) {
        std::thread::sleep(rest);
    }
    cluster.proxy.restore();
    let restored = Instant::now();
    let mut recovery_ms = None;
    let deadline = restored + Duration::from_secs(30);
    let mut caught_up_at: Option<Instant> = None;
    loop {
        let left = cluster.present(member, &keys)?;
        if left == 0 {
            recovery_ms = Some(restored.elapsed().as_secs_f64() * 1e3);
            break;
        }
        let now = Instant::now();
        match caught_up_at {
            // Caught up a while ago and keys are still there: they will stay there.
            Some(t) if now.duration_since(t) >= GRACE => break,
            None if cluster.member3_caught_up() => caught_up_at = Some(now),
            _ => {}
        }
        if now > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let lost = cluster.present(member, &keys)?;
    let mut lost_elsewhere = 0;
    for n in 0..member {
        lost_elsewhere += cluster.present(n, &keys)?;
    }
    Ok(PartitionResult {
        lost,
        lost_elsewhere,
        controls_kept: cluster.present(member, &controls)?,
        flushes: cluster.member_flushes(member),
        recovery_ms,
        resubscribes: cluster
            .resubscribes
            .load(std::sync::atomic::Ordering::Relaxed)
            - resubscribes_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn quick_mode_tracks_fewer_keys() {
        let quick = Settings::new(true);
        let full = Settings::new(false);
        assert_eq!(quick.tracked(), 11_000);
        assert_eq!(full.tracked(), 110_000);
        assert!(quick.sustained < full.sustained && quick.partition < full.partition);
    }
}

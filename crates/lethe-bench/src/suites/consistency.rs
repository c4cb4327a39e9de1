//! Consistency suite, after Meta's Polaris: does any read return data older than an applied
//! invalidation, and does anything stay stale for good?
//!
//! The harness starts its own PostgreSQL (`lethe_cdc::testing::PgCluster`), a table
//! `items (id int primary key, version bigint)` of [`ROWS`] rows, and for each case a fresh
//! `lethe serve` (built from the working tree, see [`crate::lethe_server`]). Writers commit
//! version bumps (`UPDATE items SET version = version + 1 WHERE id = $1 RETURNING version`,
//! random rows, [`WRITE_RATE`] tx/s in all) and log each version with the instant its commit
//! was acknowledged. Readers, cache-aside against the server, read random rows in one of three
//! modes:
//!
//! - `naive`: `GET item:{id}`; on a miss `SELECT` the row, wait the fill delay, `SET` it;
//! - `leases`: `LETHE.LEASE`; when granted `SELECT`, wait, `LETHE.FILL` with the token; when
//!   another reader holds the lease, read the database directly;
//! - `fences`: as `leases`, the fill carrying `VERSION v` and the rule naming the version
//!   column, so change capture fences each invalidated key at the new version.
//!
//! Change capture runs inside the server (`lethe serve --cdc FILE`) or as its own process
//! (`lethe cdc --target ...`), or not at all (the `control` case, which must report stale
//! reads: the check is shown able to fail). Every read (its start instant, row and the version
//! it returned) is checked against the log of committed versions: a read is *stale past B* if a
//! newer version had been acknowledged more than B before the read started. After the writers
//! stop and a quiet period, every row's cached value is compared with the database: a cached
//! version below the row's is *permanently stale*. A probe row, cached then updated every
//! 100 ms, gives the commit-to-invalidation latency (acknowledgement to the key's absence).
//!
//! Faults: `pg-restart` restarts PostgreSQL mid-run; `cdc-kill` SIGKILLs the `lethe cdc`
//! process and starts it again; `standby-stalls` makes a `pg_receivewal --synchronous` standby
//! the synchronous replica and stops it (SIGSTOP) for 400 ms of every second, so commits wait,
//! invisible, after change capture has decoded them (not a fault window: staleness is judged
//! from acknowledgements, which the stalls delay as well). Stale reads past 1 s are also
//! counted outside fault windows (a restart's start to 3 s after its end).
//!
//! Targets: leases + fences, with a 100 ms fill delay and with faults: 0 permanently stale keys
//! in every run; stale reads past 1 s only inside fault windows. Naive mode with the fill delay
//! shows the race (> 0): the reason leases exist.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lethe_cdc::testing::PgCluster;
use rand::Rng;
use redis::Value;

use crate::lethe_server::{self, LetheServer};
use crate::report::{RunContext, SuiteReport};

/// The suite's name: its command-line argument and its section of BENCHMARKS.md.
pub const SUITE: &str = "consistency";
/// Rows readers and writers use; the probe row is `ROWS`.
const ROWS: i32 = 100;
/// Version bumps per second, over all writers.
const WRITE_RATE: u32 = 200;
/// Connections committing: many, so a stalled standby holds many commits at once.
const WRITERS: usize = 16;
const READERS: usize = 8;
/// Pause between one reader's reads.
const READ_PAUSE: Duration = Duration::from_millis(1);
/// Of every second of a standby-stalls case, how long the standby is stopped.
const STALL: Duration = Duration::from_millis(400);
/// Fill delay: between the database read and the fill.
const FILL_DELAY: Duration = Duration::from_millis(100);
/// After a fault ends, how long its effects may last and still count as inside it.
const FAULT_TAIL: Duration = Duration::from_secs(3);
const BOUNDS_MS: [u64; 3] = [100, 1_000, 5_000];
const SYSTEM: &str = "lethe";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadMode {
    Naive,
    Leases,
    Fences,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    None,
    InServer,
    Process,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    PgRestart,
    CdcKill,
    StandbyStalls,
}

struct Case {
    name: &'static str,
    mode: ReadMode,
    capture: Capture,
    faults: &'static [Fault],
    /// Change capture waits for visibility (the default); off only to show what it prevents.
    visibility_wait: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "control:no-capture",
        mode: ReadMode::Leases,
        capture: Capture::None,
        faults: &[],
        visibility_wait: true,
    },
    Case {
        name: "naive",
        mode: ReadMode::Naive,
        capture: Capture::InServer,
        faults: &[],
        visibility_wait: true,
    },
    Case {
        name: "leases",
        mode: ReadMode::Leases,
        capture: Capture::InServer,
        faults: &[],
        visibility_wait: true,
    },
    Case {
        name: "fences",
        mode: ReadMode::Fences,
        capture: Capture::InServer,
        faults: &[],
        visibility_wait: true,
    },
    Case {
        name: "fences:pg-restart",
        mode: ReadMode::Fences,
        capture: Capture::InServer,
        faults: &[Fault::PgRestart],
        visibility_wait: true,
    },
    Case {
        name: "leases:cdc-process:cdc-kill+pg-restart",
        mode: ReadMode::Leases,
        capture: Capture::Process,
        faults: &[Fault::CdcKill, Fault::PgRestart],
        visibility_wait: true,
    },
    Case {
        name: "fences:standby-stalls",
        mode: ReadMode::Fences,
        capture: Capture::InServer,
        faults: &[Fault::StandbyStalls],
        visibility_wait: true,
    },
    Case {
        name: "leases:standby-stalls",
        mode: ReadMode::Leases,
        capture: Capture::InServer,
        faults: &[Fault::StandbyStalls],
        visibility_wait: true,
    },
    Case {
        name: "leases:standby-stalls:no-visibility-wait",
        mode: ReadMode::Leases,
        capture: Capture::InServer,
        faults: &[Fault::StandbyStalls],
        visibility_wait: false,
    },
];

/// Runs the suite; an error when PostgreSQL or the server cannot be set up.
pub fn run(ctx: &RunContext) -> Result<(), String> {
    if lethe_cdc::testing::find_bin().is_none() {
        return Err("PostgreSQL server binaries not found under /usr/lib/postgresql".into());
    }
    let binary = lethe_server::binary()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_async(ctx, &binary))
}

struct Durations {
    writes: Duration,
    quiet: Duration,
}

async fn run_async(ctx: &RunContext, binary: &Path) -> Result<(), String> {
    let d = if ctx.quick {
        Durations {
            writes: Duration::from_secs(5),
            quiet: Duration::from_secs(2),
        }
    } else {
        Durations {
            writes: Duration::from_secs(30),
            quiet: Duration::from_secs(5),
        }
    };
    let mode = format!(
        "{} s of writes ({WRITE_RATE} tx/s over {ROWS} rows, {WRITERS} writers) and {} s of \
         quiet per case, {READERS} readers, fill delay {} ms, one run each{}",
        d.writes.as_secs(),
        d.quiet.as_secs(),
        FILL_DELAY.as_millis(),
        if ctx.quick { " (quick)" } else { "" }
    );
    let mut report = SuiteReport::new(SUITE, "Consistency under races and faults", &[], mode);
    let mut pg = PgCluster::start();
    let setup = pg.client().await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, version bigint NOT NULL);
             INSERT INTO items SELECT g, 1 FROM generate_series(0, {ROWS}) g;"
        ))
        .await
        .map_err(|e| format!("creating the table: {e}"))?;
    drop(setup);
    let dir = std::env::temp_dir().join(format!("lethe-consistency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let mut table = String::from(
        "| case | reads | stale >100 ms | stale >1 s | stale >5 s | stale >1 s outside faults \
         | permanently stale keys | fills refused | inv. latency p50 ms | p99 ms | max ms \
         | visibility wait mean ms | max ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut outcomes = Vec::new();
    for case in CASES {
        if !ctx.selects_case(case.name) {
            continue;
        }
        let started = Instant::now();
        let r = run_case(case, &mut pg, binary, &dir, &d).await?;
        say!(
            "[{SUITE}] {} ({:.1} s)",
            case.name,
            started.elapsed().as_secs_f64()
        );
        for (metric, value) in [
            ("reads", r.reads as f64),
            ("stale_past_100ms", r.stale[0] as f64),
            ("stale_past_1s", r.stale[1] as f64),
            ("stale_past_5s", r.stale[2] as f64),
            ("stale_past_1s_outside_faults", r.stale_outside as f64),
            ("permanently_stale_keys", r.permanent as f64),
            ("fills_refused", r.refused as f64),
            ("invalidation_p50_ms", r.latency.0),
            ("invalidation_p99_ms", r.latency.1),
            ("invalidation_max_ms", r.latency.2),
            ("visibility_wait_mean_ms", r.visibility_wait.0),
            ("visibility_wait_max_ms", r.visibility_wait.1),
        ] {
            report.push_named(case.name, SYSTEM, metric, value);
        }
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |\n",
            case.name,
            r.reads,
            r.stale[0],
            r.stale[1],
            r.stale[2],
            r.stale_outside,
            r.permanent,
            r.refused,
            r.latency.0,
            r.latency.1,
            r.latency.2,
            r.visibility_wait.0,
            r.visibility_wait.1
        ));
        outcomes.push((case, r));
    }
    let _ = std::fs::remove_dir_all(&dir);
    for (case, r) in &outcomes {
        let verdict = match (case.capture, case.mode, case.visibility_wait) {
            (Capture::None, ..) => Some((
                r.stale[1] > 0 && r.permanent > 0,
                "the control must report stale reads and stale keys (the check can fail)",
            )),
            (_, ReadMode::Naive, _) => Some((
                r.stale[1] > 0 || r.permanent > 0,
                "naive cache-aside with a fill delay shows the race leases close",
            )),
            (_, _, true) => Some((
                r.permanent == 0 && r.stale_outside == 0,
                "target: 0 permanently stale keys, stale reads past 1 s only inside fault windows",
            )),
            (_, _, false) => {
                report.note(format!(
                    "`{}` (change capture applying commits as soon as they are decoded, before \
                     they are visible): {} stale reads past 1 s, {} past 100 ms, {} permanently \
                     stale keys, of {} reads. This is the race waiting for visibility closes.",
                    case.name, r.stale[1], r.stale[0], r.permanent, r.reads
                ));
                None
            }
        };
        if let Some((ok, what)) = verdict {
            report.note(format!(
                "`{}`: {} permanently stale keys, {} stale reads past 1 s ({} outside fault \
                 windows) of {} reads: {} ({what}).",
                case.name,
                r.permanent,
                r.stale[1],
                r.stale_outside,
                r.reads,
                if ok { "as expected" } else { "NOT as expected" }
            ));
        }
    }
    report.note(
        "Invalidation latency is from a probe commit's acknowledgement to its key's absence \
         (polled every millisecond). It includes change capture's wait for visibility, which \
         mostly overlaps the acknowledgement: a commit held by a stalled standby is acknowledged \
         when it becomes visible, so the visibility wait columns (decoding to visibility, from \
         the server's INFO; in-server capture only) show what the stalls cost. Standby stalls \
         are not fault windows: staleness is judged from acknowledgements, which they delay too.",
    );
    report.finish_with_table(ctx, &table);
    Ok(())
}

struct CaseResult {
    reads: usize,
    stale: [usize; 3],
    stale_outside: usize,
    permanent: usize,
    refused: u64,
    latency: (f64, f64, f64),
    /// Change capture's mean and longest wait for visibility, ms (in-server capture only).
    visibility_wait: (f64, f64),
}

/// Committed versions per row, with their acknowledgement instants, in commit order.
type Log = Arc<Vec<Mutex<Vec<(i64, Instant)>>>>;

/// One read: its start, the row, the version it returned.
type Read = (Instant, i32, i64);

async fn run_case(
    case: &Case,
    pg: &mut PgCluster,
    binary: &Path,
    dir: &Path,
    d: &Durations,
) -> Result<CaseResult, String> {
    let conn = pg.connection_string();
    // Every row back to a known state, logged as committed long ago.
    {
        let c = pg.client().await;
        c.batch_execute("UPDATE items SET version = version + 1")
            .await
            .map_err(|e| e.to_string())?;
    }
    let start_versions: Vec<i64> = {
        let c = pg.client().await;
        let rows = c
            .query("SELECT id, version FROM items ORDER BY id", &[])
            .await
            .map_err(|e| e.to_string())?;
        rows.iter().map(|r| r.get::<_, i64>(1)).collect()
    };
    let epoch = Instant::now();
    let log: Log = Arc::new(
        start_versions
            .iter()
            .map(|&v| Mutex::new(vec![(v, epoch)]))
            .collect(),
    );

    let rules = format!(
        "connection = \"{conn}\"\nslot = \"lethe_consistency\"\nreconnect_min_ms = 50\n\
         reconnect_max_ms = 1000\napply_after_visible = {}\n[[table]]\ntable = \"items\"\n\
         keys = [\"item:{{id}}\"]\n{}",
        case.visibility_wait,
        if case.mode == ReadMode::Fences {
            "version = \"version\"\n"
        } else {
            ""
        }
    );
    let cdc_file = dir.join(format!("{}.toml", case.name.replace([':', '+'], "_")));
    std::fs::write(&cdc_file, &rules).map_err(|e| e.to_string())?;
    let server = match case.capture {
        Capture::InServer => LetheServer::start_with(
            binary,
            256 << 20,
            &["--cdc".into(), cdc_file.clone().into_os_string()],
        )?,
        _ => LetheServer::start(binary, 256 << 20)?,
    };
    let url = format!("redis://127.0.0.1:{}", server.port());
    let cdc_process = Arc::new(Mutex::new(match case.capture {
        Capture::Process => Some(spawn_cdc(binary, &cdc_file, &url)?),
        _ => None,
    }));
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let mut standby = if case.faults.contains(&Fault::StandbyStalls) {
        Some(pg.sync_standby().await)
    } else {
        None
    };
    // Change capture is streaming once a probe change comes through.
    if case.capture != Capture::None {
        let mut redis = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let pgc = pg.client().await;
        probe(&mut redis, &pgc, Duration::from_secs(60))
            .await
            .ok_or("change capture did not apply a first change within 60 s")?;
    }
    let _: () = redis::cmd("FLUSHALL")
        .query_async(
            &mut client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?;

    let stop = Arc::new(AtomicBool::new(false));
    let reads: Arc<Mutex<Vec<Read>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        tasks.push(tokio::spawn(writer(
            conn.clone(),
            log.clone(),
            stop.clone(),
            w,
        )));
    }
    for _ in 0..READERS {
        tasks.push(tokio::spawn(reader(
            conn.clone(),
            client.clone(),
            case.mode,
            reads.clone(),
            stop.clone(),
        )));
    }
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let prober = (case.capture != Capture::None).then(|| {
        tokio::spawn(prober(
            conn.clone(),
            client.clone(),
            latencies.clone(),
            stop.clone(),
        ))
    });

    // Faults, on this task, while the workload runs.
    let mut windows: Vec<(Instant, Instant)> = Vec::new();
    let run_start = Instant::now();
    let end = run_start + d.writes;
    let mut next_fault = run_start + d.writes / 3;
    let mut fault_index = 0;
    let disruptive: Vec<Fault> = case
        .faults
        .iter()
        .copied()
        .filter(|f| *f != Fault::StandbyStalls)
        .collect();
    while Instant::now() < end {
        if let Some(s) = standby.as_mut() {
            // Not a fault window: a stalled commit is acknowledged only after the stall, and
            // staleness is judged from acknowledgements, so a stall excuses no stale read.
            s.pause();
            tokio::time::sleep(STALL).await;
            s.resume();
            tokio::time::sleep(Duration::from_secs(1) - STALL).await;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !disruptive.is_empty() && Instant::now() >= next_fault && fault_index < 2 {
            let fault = disruptive[fault_index % disruptive.len()];
            let fault_start = Instant::now();
            match fault {
                Fault::PgRestart => {
                    say!("[{SUITE}]   fault: PostgreSQL restart");
                    tokio::task::block_in_place(|| pg.restart());
                }
                Fault::CdcKill => {
                    say!("[{SUITE}]   fault: SIGKILL of lethe cdc, then restart");
                    let mut guard = cdc_process.lock().expect("not poisoned");
                    if let Some(mut child) = guard.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    *guard = Some(spawn_cdc(binary, &cdc_file, &url)?);
                }
                Fault::StandbyStalls => {}
            }
            windows.push((fault_start, Instant::now()));
            fault_index += 1;
            next_fault = Instant::now() + d.writes / 3;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    if let Some(p) = prober {
        let _ = p.await;
    }
    if let Some(s) = standby.take() {
        drop(s);
        pg.no_sync_standby().await;
    }
    tokio::time::sleep(d.quiet).await;

    // Permanently stale: what the cache holds now, against the database.
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pgc = pg.client().await;
    let now_rows = pgc
        .query("SELECT id, version FROM items WHERE id < $1", &[&ROWS])
        .await
        .map_err(|e| e.to_string())?;
    let mut permanent = 0;
    for row in now_rows {
        let (id, version): (i32, i64) = (row.get(0), row.get(1));
        let cached: Option<String> = redis::cmd("GET")
            .arg(format!("item:{id}"))
            .query_async(&mut redis)
            .await
            .map_err(|e| e.to_string())?;
        if cached
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v < version)
        {
            permanent += 1;
        }
    }
    let info: String = redis::cmd("INFO")
        .query_async(&mut redis)
        .await
        .unwrap_or_default();
    let refused = info_field(&info, "lethe_fills_refused");
    let visible = info_field(&info, "cdc_visible_commits");
    let visibility_wait = (
        if visible > 0 {
            info_field(&info, "cdc_visibility_wait_us") as f64 / visible as f64 / 1e3
        } else {
            0.0
        },
        info_field(&info, "cdc_visibility_wait_max_us") as f64 / 1e3,
    );
    drop(redis);
    if let Some(mut child) = cdc_process.lock().expect("not poisoned").take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    drop(server);
    // The next case starts from a fresh slot (and the flush that comes with it).
    let _ = pgc
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = 'lethe_consistency' AND NOT active",
            &[],
        )
        .await;

    // Every read against the log.
    let reads = std::mem::take(&mut *reads.lock().expect("not poisoned"));
    let logs: Vec<Vec<(i64, Instant)>> = log
        .iter()
        .map(|m| m.lock().expect("not poisoned").clone())
        .collect();
    let mut stale = [0usize; 3];
    let mut stale_outside = 0;
    for &(at, id, version) in &reads {
        let versions = &logs[id as usize];
        for (i, bound) in BOUNDS_MS.iter().enumerate() {
            let Some(cutoff) = at.checked_sub(Duration::from_millis(*bound)) else {
                continue;
            };
            let newest = versions
                .iter()
                .filter(|(_, acked)| *acked <= cutoff)
                .map(|(v, _)| *v)
                .max();
            if newest.is_some_and(|n| n > version) {
                stale[i] += 1;
                if i == 1
                    && !windows
                        .iter()
                        .any(|&(s, e)| at >= s && at <= e + FAULT_TAIL)
                {
                    stale_outside += 1;
                }
            }
        }
    }
    let mut lat = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    Ok(CaseResult {
        reads: reads.len(),
        stale,
        stale_outside,
        permanent,
        refused,
        latency: (pct(0.5), pct(0.99), lat.last().copied().unwrap_or(0.0)),
        visibility_wait,
    })
}

fn spawn_cdc(binary: &Path, config: &PathBuf, url: &str) -> Result<Child, String> {
    Command::new(binary)
        .arg("cdc")
        .arg("--config")
        .arg(config)
        .args(["--target", url])
        .env_remove("LETHE_CDC_CONFIG")
        .env_remove("LETHE_CDC_TARGETS")
        .env_remove("LETHE_CDC_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start lethe cdc: {e}"))
}

async fn pg_connect(conn: &str) -> Option<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(client)
}

/// A connected client, retrying while PostgreSQL restarts; `None` once asked to stop.
async fn pg_retry(conn: &str, stop: &AtomicBool) -> Option<tokio_postgres::Client> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(c) = pg_connect(conn).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn writer(conn: String, log: Log, stop: Arc<AtomicBool>, index: usize) {
    let per_writer = f64::from(WRITE_RATE) / WRITERS as f64;
    let start = Instant::now() + Duration::from_secs_f64(index as f64 / f64::from(WRITE_RATE));
    let mut i = 0u64;
    let mut client = None;
    while !stop.load(Ordering::Relaxed) {
        let due = start + Duration::from_secs_f64(i as f64 / per_writer);
        tokio::time::sleep_until(due.into()).await;
        i += 1;
        if client.is_none() {
            client = pg_retry(&conn, &stop).await;
        }
        let Some(c) = client.as_ref() else { break };
        let id = rand::thread_rng().gen_range(0..ROWS);
        match c
            .query_one(
                "UPDATE items SET version = version + 1 WHERE id = $1 RETURNING version",
                &[&id],
            )
            .await
        {
            Ok(row) => {
                let acked = Instant::now();
                log[id as usize]
                    .lock()
                    .expect("not poisoned")
                    .push((row.get(0), acked));
            }
            // Lost with a restart: the outcome is unknown, but a committed bump is still logged
            // by the row's next bump (versions only rise), so nothing is judged against it.
            Err(_) => client = None,
        }
    }
}

async fn select_version(c: &tokio_postgres::Client, id: i32) -> Option<i64> {
    c.query_one("SELECT version FROM items WHERE id = $1", &[&id])
        .await
        .ok()
        .map(|r| r.get(0))
}

async fn reader(
    conn: String,
    client: redis::Client,
    mode: ReadMode,
    reads: Arc<Mutex<Vec<Read>>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut pg = None;
    let mut local = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(READ_PAUSE).await;
        if pg.is_none() {
            pg = pg_retry(&conn, &stop).await;
        }
        let Some(c) = pg.as_ref() else { break };
        let id = rand::thread_rng().gen_range(0..ROWS);
        let key = format!("item:{id}");
        let at = Instant::now();
        let got = match mode {
            ReadMode::Naive => {
                let cached: Option<String> =
                    match redis::cmd("GET").arg(&key).query_async(&mut redis).await {
                        Ok(v) => v,
                        Err(_) => continue,
                    };
                match cached.and_then(|v| v.parse::<i64>().ok()) {
                    Some(v) => Some(v),
                    None => {
                        let v = select_version(c, id).await;
                        if let Some(v) = v {
                            tokio::time::sleep(FILL_DELAY).await;
                            let _: redis::RedisResult<()> = redis::cmd("SET")
                                .arg(&key)
                                .arg(v.to_string())
                                .query_async(&mut redis)
                                .await;
                        }
                        v
                    }
                }
            }
            ReadMode::Leases | ReadMode::Fences => {
                let reply: Value = match redis::cmd("LETHE.LEASE")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                match lease_reply(&reply) {
                    LeaseReply::Hit(v) => Some(v),
                    LeaseReply::Granted(token) => {
                        let v = select_version(c, id).await;
                        if let Some(v) = v {
                            tokio::time::sleep(FILL_DELAY).await;
                            let mut fill = redis::cmd("LETHE.FILL");
                            fill.arg(&key).arg(token).arg(v.to_string());
                            if mode == ReadMode::Fences {
                                fill.arg("VERSION").arg(v);
                            }
                            // Refused fills are the point; the reader serves what it read.
                            let _: redis::RedisResult<Value> = fill.query_async(&mut redis).await;
                        }
                        v
                    }
                    LeaseReply::Pending => select_version(c, id).await,
                    LeaseReply::Other => None,
                }
            }
        };
        match got {
            Some(v) => local.push((at, id, v)),
            None => pg = None,
        }
    }
    reads.lock().expect("not poisoned").extend(local);
}

enum LeaseReply {
    Hit(i64),
    Granted(u64),
    Pending,
    Other,
}

fn lease_reply(v: &Value) -> LeaseReply {
    let Value::Array(items) = v else {
        return LeaseReply::Other;
    };
    let status = match items.first() {
        Some(Value::SimpleString(s)) => s.as_str(),
        _ => return LeaseReply::Other,
    };
    match (status, items.get(1)) {
        ("hit", Some(Value::BulkString(b))) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(LeaseReply::Other, LeaseReply::Hit),
        ("granted", Some(Value::Int(t))) => LeaseReply::Granted(*t as u64),
        ("pending", _) => LeaseReply::Pending,
        _ => LeaseReply::Other,
    }
}

/// Caches the probe row's key, bumps the row, and waits (up to `limit`) until the key is gone;
/// the time from the commit's acknowledgement, in milliseconds.
async fn probe(
    redis: &mut redis::aio::MultiplexedConnection,
    pg: &tokio_postgres::Client,
    limit: Duration,
) -> Option<f64> {
    let key = format!("item:{ROWS}");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("probe")
        .query_async(redis)
        .await
        .ok()?;
    pg.execute(
        "UPDATE items SET version = version + 1 WHERE id = $1",
        &[&ROWS],
    )
    .await
    .ok()?;
    let acked = Instant::now();
    while acked.elapsed() < limit {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(redis)
            .await
            .ok()?;
        if exists == 0 {
            return Some(acked.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

async fn prober(
    conn: String,
    client: redis::Client,
    out: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut redis) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let mut pg = None;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if pg.is_none() {
            pg = pg_retry(&conn, &stop).await;
        }
        let Some(c) = pg.as_ref() else { break };
        match probe(&mut redis, c, Duration::from_secs(10)).await {
            Some(ms) => out.lock().expect("not poisoned").push(ms),
            None => pg = None,
        }
    }
}

/// A numeric INFO field, 0 if not reported.
fn info_field(info: &str, name: &str) -> u64 {
    info.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

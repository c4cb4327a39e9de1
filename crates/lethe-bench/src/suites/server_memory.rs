//! The server suite's memory case (`memory_1m`): what a key really costs in `lethe serve` and in
//! `redis-server`, and whether Lethe's `used_memory` (what `--max-memory` is enforced on) tells
//! the truth about it.
//!
//! Each server is started fresh for the case (Lethe with a budget far above what is stored, so
//! nothing is evicted; Redis with persistence off) and loaded with `SET key:<11 digits> <32
//! bytes>` for 1,000,000 keys (100,000 with `--quick`) in pipelines of 10,000, then checked.
//! Measured before and after the load:
//!
//! - resident memory: `VmRSS` of the server process (`/proc/<pid>/status`);
//! - `used_memory` from `INFO memory` (Redis: what its allocator holds; Lethe: the weight of
//!   the stored entries, which its budget counts);
//! - for Lethe, `allocator_allocated` from `INFO memory` (jemalloc's `stats.allocated`).
//!
//! Reported: `resident_bytes_per_key` = ΔRSS / keys for both; `used_memory_bytes_per_key` =
//! Δused_memory / keys; and for Lethe `used_memory_error` = |Δused_memory − Δallocated| /
//! Δallocated, the fraction by which its accounting misses what the allocator really holds.
//!
//! The `memory_collections` case does the same per collection member: hashes, sets and sorted
//! sets of 10 members (10,000 keys) and of 10,000 members (10 keys), 100,000 members in each
//! load (a tenth with `--quick`), each into a fresh server. Members are `m:<8 digits>` (not
//! integers, so sets are not Redis's `intset`), hash values and sorted-set scores are small
//! numbers. Reported per member: Δ of what the allocator holds (Lethe's
//! `allocator_allocated`, Redis's `used_memory`, which is its allocator's count) and ΔRSS.

use crate::lethe_server::LetheServer;
use crate::redis_server::RedisServer;
use std::path::Path;

/// Keys per pipeline while loading.
const BATCH: u64 = 10_000;
/// The 32-byte value.
const VALUE: &str = "0123456789abcdefghijklmnopqrstuv";

/// What one server's load cost.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUse {
    pub keys: u64,
    pub resident_per_key: f64,
    pub used_memory_per_key: f64,
    /// Lethe only: |Δused_memory − Δallocated| / Δallocated.
    pub used_memory_error: Option<f64>,
}

/// `VmRSS` of `pid`, in bytes.
fn resident(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// A numeric field of `INFO memory`.
fn info_field(con: &mut redis::Connection, field: &str) -> Option<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(con).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

fn load(con: &mut redis::Connection, keys: u64, name: &str) -> Result<(), String> {
    for start in (0..keys).step_by(BATCH as usize) {
        let mut pipe = redis::pipe();
        for i in start..(start + BATCH).min(keys) {
            pipe.cmd("SET")
                .arg(format!("key:{i:011}"))
                .arg(VALUE)
                .ignore();
        }
        pipe.query::<()>(con)
            .map_err(|e| format!("loading {name} failed: {e}"))?;
    }
    let last: Option<String> = redis::cmd("GET")
        .arg(format!("key:{:011}", keys - 1))
        .query(con)
        .map_err(|e| format!("GET on {name} failed: {e}"))?;
    if last.as_deref() != Some(VALUE) {
        return Err(format!("{name} lost a key right after loading it"));
    }
    Ok(())
}

fn measure(
    con: &mut redis::Connection,
    pid: u32,
    keys: u64,
    name: &str,
    allocator: bool,
) -> Result<MemoryUse, String> {
    let used = |con: &mut redis::Connection| {
        info_field(con, "used_memory").ok_or_else(|| format!("{name}: no used_memory in INFO"))
    };
    let allocated = |con: &mut redis::Connection| {
        info_field(con, "allocator_allocated")
            .ok_or_else(|| format!("{name}: no allocator_allocated in INFO"))
    };
    let (rss0, used0) = (resident(pid)?, used(con)?);
    let alloc0 = if allocator {
        Some(allocated(con)?)
    } else {
        None
    };
    load(con, keys, name)?;
    let (rss1, used1) = (resident(pid)?, used(con)?);
    let error = match alloc0 {
        Some(a0) => {
            let grown = allocated(con)?.saturating_sub(a0) as f64;
            let counted = used1.saturating_sub(used0) as f64;
            Some((counted - grown).abs() / grown.max(1.0))
        }
        None => None,
    };
    Ok(MemoryUse {
        keys,
        resident_per_key: rss1.saturating_sub(rss0) as f64 / keys as f64,
        used_memory_per_key: used1.saturating_sub(used0) as f64 / keys as f64,
        used_memory_error: error,
    })
}

/// Runs the case on a fresh Lethe (from `binary`) and, when it starts, a fresh Redis.
pub fn run(binary: &Path, keys: u64) -> Result<(MemoryUse, Option<MemoryUse>), String> {
    let lethe = LetheServer::start(binary, 16 << 30)?;
    let l = measure(&mut lethe.connection(), lethe.pid(), keys, "lethe", true)?;
    drop(lethe);
    let r = match RedisServer::start() {
        Ok(redis) => Some(measure(
            &mut redis.connection(),
            redis.pid(),
            keys,
            "redis",
            false,
        )?),
        Err(e) => {
            say!("[server] memory_1m: redis-server unavailable: {e}");
            None
        }
    };
    Ok((l, r))
}

/// Members per collection in the `memory_collections` case.
pub const COLLECTION_SIZES: [u64; 2] = [10, 10_000];
/// The collection types of the `memory_collections` case.
pub const COLLECTION_TYPES: [&str; 3] = ["hash", "set", "zset"];
/// Members per command while loading a collection.
const MEMBERS_PER_COMMAND: u64 = 100;

/// What one collection load cost, per member.
#[derive(Debug, Clone, Copy)]
pub struct MemberUse {
    pub members: u64,
    pub allocated_per_member: f64,
    pub resident_per_member: f64,
}

fn load_collections(
    con: &mut redis::Connection,
    kind: &str,
    size: u64,
    members: u64,
    name: &str,
) -> Result<(), String> {
    let keys = members / size;
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for k in 0..keys {
        let key = format!("{kind}:{k:08}");
        for start in (0..size).step_by(MEMBERS_PER_COMMAND as usize) {
            let cmd = pipe.cmd(match kind {
                "hash" => "HSET",
                "set" => "SADD",
                _ => "ZADD",
            });
            cmd.arg(&key);
            for m in start..(start + MEMBERS_PER_COMMAND).min(size) {
                match kind {
                    "hash" => cmd.arg(format!("m:{m:08}")).arg(m % 1000),
                    "set" => cmd.arg(format!("m:{m:08}")),
                    _ => cmd.arg(m % 1000).arg(format!("m:{m:08}")),
                };
            }
            cmd.ignore();
            queued += 1;
            if queued == 1_000 {
                pipe.query::<()>(con)
                    .map_err(|e| format!("loading {kind}s into {name} failed: {e}"))?;
                pipe = redis::pipe();
                queued = 0;
            }
        }
    }
    if queued > 0 {
        pipe.query::<()>(con)
            .map_err(|e| format!("loading {kind}s into {name} failed: {e}"))?;
    }
    let card: u64 = redis::cmd(match kind {
        "hash" => "HLEN",
        "set" => "SCARD",
        _ => "ZCARD",
    })
    .arg(format!("{kind}:{:08}", keys - 1))
    .query(con)
    .map_err(|e| format!("counting on {name} failed: {e}"))?;
    if card != size {
        return Err(format!(
            "{name} holds {card} members of {kind}:{:08}, not {size}",
            keys - 1
        ));
    }
    Ok(())
}

fn measure_members(
    con: &mut redis::Connection,
    pid: u32,
    kind: &str,
    size: u64,
    members: u64,
    name: &str,
    allocator_field: &str,
) -> Result<MemberUse, String> {
    let allocated = |con: &mut redis::Connection| {
        info_field(con, allocator_field)
            .ok_or_else(|| format!("{name}: no {allocator_field} in INFO"))
    };
    let (rss0, a0) = (resident(pid)?, allocated(con)?);
    load_collections(con, kind, size, members, name)?;
    let (rss1, a1) = (resident(pid)?, allocated(con)?);
    Ok(MemberUse {
        members,
        allocated_per_member: a1.saturating_sub(a0) as f64 / members as f64,
        resident_per_member: rss1.saturating_sub(rss0) as f64 / members as f64,
    })
}

/// Runs one `memory_collections` measurement (`kind` of `size` members, `members` in all) on a
/// fresh Lethe and, when it starts, a fresh Redis.
pub fn run_collections(
    binary: &Path,
    kind: &str,
    size: u64,
    members: u64,
) -> Result<(MemberUse, Option<MemberUse>), String> {
    let lethe = LetheServer::start(binary, 16 << 30)?;
    let l = measure_members(
        &mut lethe.connection(),
        lethe.pid(),
        kind,
        size,
        members,
        "lethe",
        "allocator_allocated",
    )?;
    drop(lethe);
    let r = match RedisServer::start() {
        Ok(redis) => Some(measure_members(
            &mut redis.connection(),
            redis.pid(),
            kind,
            size,
            members,
            "redis",
            "used_memory",
        )?),
        Err(e) => {
            say!("[server] memory_collections: redis-server unavailable: {e}");
            None
        }
    };
    Ok((l, r))
}

//! Server introspection: CLIENT (ID, SETNAME, GETNAME, INFO, LIST, KILL; the tracking
//! subcommands are in `tracking`), INFO and CONFIG
//! (GET, SET).
//!
//! Other clients are seen through [`crate::clients::Clients`]; INFO reads that registry and
//! the engine's statistics. CONFIG knows the settings Lethe has: `bind`, `port`, `maxmemory`
//! and `databases` cannot change while the server runs (CONFIG SET answers with Redis's
//! immutable-config error); the limits of [`crate::limits`] can.

use super::connection::REDIS_COMPAT_VERSION;
use super::{Command, CommandError, Ctx, Reply};
use crate::clients::ClientInfo;
use crate::frame::Frame;
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use lethe::pattern::Glob;
use std::fmt::Write as _;

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(super) fn sub_arity(cmd: &str, sub: &str) -> CommandError {
    CommandError::new(
        super::ErrorKind::Arity,
        format!("ERR wrong number of arguments for '{cmd}|{sub}' command"),
    )
}

pub(super) fn unknown_sub(cmd: &str, sub: &[u8]) -> CommandError {
    CommandError::err(&format!(
        "unknown subcommand '{}'. Try {cmd} HELP.",
        lossy(sub)
    ))
}

/// The client types CLIENT LIST and CLIENT KILL filter on. Lethe has no replication, so
/// `master` and `replica` match nobody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

fn client_type(b: &[u8]) -> Result<ClientType, CommandError> {
    match lossy(b).to_ascii_lowercase().as_str() {
        "normal" => Ok(ClientType::Normal),
        "slave" | "replica" => Ok(ClientType::Replica),
        "master" => Ok(ClientType::Master),
        "pubsub" => Ok(ClientType::PubSub),
        _ => Err(CommandError::err(&format!(
            "Unknown client type '{}'",
            lossy(b)
        ))),
    }
}

fn type_of(c: &ClientInfo) -> ClientType {
    if ClientInfo::is_pubsub(&c.state()) {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

#[derive(Debug)]
pub struct Client(Vec<Bytes>);

impl Command for Client {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Client(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let mut args = self.0.into_iter();
        let sub = args.next().unwrap_or_default();
        let rest: Vec<Bytes> = args.collect();
        let name = lossy(&sub).to_ascii_lowercase();
        let arity_ok = match name.as_str() {
            "id" | "getname" | "info" => rest.is_empty(),
            "setname" => rest.len() == 1,
            "list" => true,
            "kill" | "tracking" => !rest.is_empty(),
            "caching" => rest.len() == 1,
            "trackinginfo" | "getredir" => rest.is_empty(),
            other => match super::client_ctl::arity(other, &rest) {
                Some(checked) => {
                    checked?;
                    return super::client_ctl::run(cx, other, &sub, &rest);
                }
                None => return Err(unknown_sub("CLIENT", &sub)),
            },
        };
        if !arity_ok {
            return Err(sub_arity("client", &name));
        }
        match name.as_str() {
            "id" => Ok(Frame::Integer(cx.session.id as i64)),
            "getname" => Ok(cx.session.name.clone().map_or(Frame::Null, Frame::Bulk)),
            "setname" => {
                let new = &rest[0];
                // Redis keeps names printable and space-free so CLIENT LIST stays parseable.
                if !new.iter().all(|b| (b'!'..=b'~').contains(b)) {
                    return Err(CommandError::err(
                        "Client names cannot contain spaces, newlines or special characters.",
                    ));
                }
                cx.session.name = (!new.is_empty()).then(|| new.clone());
                // Visible to CLIENT LIST at once, also from within this very command batch.
                cx.session
                    .client
                    .update(|s| s.name = cx.session.name.clone());
                Ok(Frame::ok())
            }
            "info" => Ok(Frame::Verbatim(Bytes::from(cx.session.client.line()))),
            "list" => client_list(cx, &rest),
            "tracking" => super::tracking::tracking(cx, &rest),
            "caching" => super::tracking::caching(cx, &rest[0]),
            "trackinginfo" => super::tracking::tracking_info(cx),
            "getredir" => super::tracking::get_redir(cx),
            _ => client_kill(cx, &rest),
        }
    }
}

fn client_list(cx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut kind = None;
    let mut ids: Option<Vec<i64>> = None;
    let mut i = 0;
    while i < args.len() {
        let opt = lossy(&args[i]).to_ascii_lowercase();
        if opt == "type" && i + 1 < args.len() {
            kind = Some(client_type(&args[i + 1])?);
            i += 2;
        } else if opt == "id" && i + 1 < args.len() {
            let mut list = Vec::new();
            for id in &args[i + 1..] {
                // Any integer is accepted; ids no client has (0, negatives) just match nothing.
                let n = parse_int(id).ok_or_else(|| CommandError::err("Invalid client ID"))?;
                list.push(n);
            }
            ids = Some(list);
            i = args.len();
        } else {
            return Err(CommandError::syntax());
        }
    }
    let mut out = String::new();
    for c in cx.state.clients().all() {
        if kind.is_some_and(|k| type_of(&c) != k) {
            continue;
        }
        if ids
            .as_ref()
            .is_some_and(|ids| !ids.contains(&(c.id as i64)))
        {
            continue;
        }
        out.push_str(&c.line());
    }
    Ok(Frame::Verbatim(Bytes::from(out)))
}

fn client_kill(cx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let me = cx.session.id;
    // The old form, CLIENT KILL addr:port: OK or an error, and the caller may kill itself.
    if args.len() == 1 {
        let addr = lossy(&args[0]);
        let Some(c) = cx
            .state
            .clients()
            .all()
            .into_iter()
            .find(|c| c.addr.to_string() == addr)
        else {
            return Err(CommandError::err("No such client"));
        };
        c.kill();
        return Ok(Frame::ok());
    }
    if args.len() % 2 != 0 {
        return Err(CommandError::syntax());
    }
    let (mut id, mut kind, mut addr, mut laddr, mut skip_me) = (None, None, None, None, true);
    for pair in args.chunks(2) {
        let (opt, value) = (lossy(&pair[0]).to_ascii_lowercase(), &pair[1]);
        match opt.as_str() {
            "id" => match parse_int(value) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return Err(CommandError::err("client-id should be greater than 0")),
            },
            "type" => kind = Some(client_type(value)?),
            "addr" => addr = Some(lossy(value)),
            "laddr" => laddr = Some(lossy(value)),
            "user" => {
                // Only the passwordless `default` user exists, and every client is it.
                if &value[..] != b"default" {
                    return Err(CommandError::err(&format!(
                        "No such user '{}'",
                        lossy(value)
                    )));
                }
            }
            "skipme" => match lossy(value).to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return Err(CommandError::syntax()),
            },
            _ => return Err(CommandError::syntax()),
        }
    }
    let mut killed = 0;
    for c in cx.state.clients().all() {
        let matches = id.is_none_or(|id| c.id == id)
            && kind.is_none_or(|k| type_of(&c) == k)
            && addr.as_ref().is_none_or(|a| c.addr.to_string() == *a)
            && laddr.as_ref().is_none_or(|a| c.laddr.to_string() == *a)
            && !(skip_me && c.id == me);
        if matches {
            // Killing oneself takes effect after this reply, as in Redis.
            c.kill();
            killed += 1;
        }
    }
    Ok(Frame::Integer(killed))
}

/// The settings CONFIG knows that cannot change while the server runs (the keyspace's
/// capacity is fixed when the engine is built); the limits in [`crate::limits::CONFIG_NAMES`]
/// can.
const FIXED_PARAMS: &[&str] = &["bind", "port", "maxmemory", "databases"];

fn config_params() -> impl Iterator<Item = &'static str> {
    FIXED_PARAMS
        .iter()
        .chain(crate::limits::CONFIG_NAMES.iter())
        .copied()
}

fn config_value(cx: &Ctx<'_>, param: &str) -> String {
    let laddr = cx.session.client.laddr;
    if let Some(v) = cx.session.limits.config_value(param) {
        return v;
    }
    match param {
        "bind" => laddr.ip().to_string(),
        "port" => laddr.port().to_string(),
        "maxmemory" => cx.state.cache().stats().capacity.to_string(),
        _ => "1".into(),
    }
}

#[derive(Debug)]
pub struct Config(Vec<Bytes>);

impl Command for Config {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Config(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let sub = &self.0[0];
        let args = &self.0[1..];
        match lossy(sub).to_ascii_lowercase().as_str() {
            "get" => {
                if args.is_empty() {
                    return Err(sub_arity("config", "get"));
                }
                let globs: Vec<Glob> = args
                    .iter()
                    .map(|a| Glob::new(a.to_ascii_lowercase()))
                    .collect();
                let pairs = config_params()
                    .filter(|p| globs.iter().any(|g| g.matches(p.as_bytes())))
                    .map(|p| (Frame::bulk(p), Frame::bulk(config_value(cx, p))))
                    .collect();
                Ok(Frame::Map(pairs))
            }
            "set" => {
                if args.len() < 2 {
                    return Err(sub_arity("config", "set"));
                }
                if args.len() % 2 != 0 {
                    return Err(CommandError::syntax());
                }
                for pair in args.chunks(2) {
                    let param = lossy(&pair[0]).to_ascii_lowercase();
                    if !config_params().any(|p| p == param) {
                        return Err(CommandError::err(&format!(
                            "Unknown option or number of arguments for CONFIG SET - '{}'",
                            lossy(&pair[0])
                        )));
                    }
                }
                let failed = |param: &[u8], why: &str| {
                    CommandError::err(&format!(
                        "CONFIG SET failed (possibly related to argument '{}') - {why}",
                        lossy(param)
                    ))
                };
                if let Some(pair) = args
                    .chunks(2)
                    .find(|p| FIXED_PARAMS.contains(&lossy(&p[0]).to_ascii_lowercase().as_str()))
                {
                    return Err(failed(&pair[0], "can't set immutable config"));
                }
                for pair in args.chunks(2) {
                    let param = lossy(&pair[0]).to_ascii_lowercase();
                    cx.session
                        .limits
                        .config_set(&param, &pair[1])
                        .map_err(|why| failed(&pair[0], &why))?;
                }
                Ok(Frame::ok())
            }
            _ => Err(unknown_sub("CONFIG", sub)),
        }
    }
}

#[derive(Debug)]
pub struct Info(Vec<Bytes>);

impl Command for Info {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Info(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        const ALL: [&str; 9] = [
            "server", "clients", "memory", "stats", "cluster", "keyspace", "lethe", "cdc", "bus",
        ];
        let asked: Vec<String> = self
            .0
            .iter()
            .map(|a| lossy(a).to_ascii_lowercase())
            .collect();
        let everything = asked.is_empty()
            || asked
                .iter()
                .any(|a| matches!(a.as_str(), "all" | "default" | "everything"));
        let sections: Vec<String> = ALL
            .iter()
            .filter(|s| everything || asked.iter().any(|a| a == *s))
            // Change capture has a section only where it runs.
            .filter(|s| **s != "cdc" || cx.state.cdc_metrics().is_some())
            .filter(|s| **s != "bus" || cx.state.bus().is_some())
            .map(|s| section(cx, s))
            .collect();
        Ok(Frame::Verbatim(Bytes::from(sections.join("\r\n"))))
    }
}

/// One INFO section, each line ending in CRLF.
fn section(cx: &Ctx<'_>, name: &str) -> String {
    let clients = cx.state.clients();
    let stats = cx.state.cache().stats();
    let mut out = String::new();
    match name {
        "server" => {
            let uptime = clients.started().elapsed().as_secs();
            out.push_str("# Server\r\n");
            kv(&mut out, "redis_version", &REDIS_COMPAT_VERSION);
            kv(&mut out, "lethe_version", &env!("CARGO_PKG_VERSION"));
            let mode = if cx.state.cluster().is_some() {
                "cluster"
            } else {
                "standalone"
            };
            kv(&mut out, "redis_mode", &mode);
            kv(&mut out, "os", &std::env::consts::OS);
            kv(&mut out, "arch_bits", &(usize::BITS));
            kv(&mut out, "process_id", &std::process::id());
            kv(&mut out, "tcp_port", &cx.session.client.laddr.port());
            kv(&mut out, "uptime_in_seconds", &uptime);
            kv(&mut out, "uptime_in_days", &(uptime / 86_400));
        }
        "clients" => {
            let all = clients.all();
            let pubsub = all
                .iter()
                .filter(|c| ClientInfo::is_pubsub(&c.state()))
                .count();
            out.push_str("# Clients\r\n");
            kv(&mut out, "connected_clients", &all.len());
            kv(&mut out, "maxclients", &cx.session.limits.max_clients());
            kv(&mut out, "pubsub_clients", &pubsub);
            kv(
                &mut out,
                "blocked_clients",
                &cx.state.keyspace().blocking().blocked(),
            );
            kv(
                &mut out,
                "tracking_clients",
                &cx.state.tracking().tracking_clients(),
            );
        }
        "memory" => {
            out.push_str("# Memory\r\n");
            // What the budget counts: every entry weighed by what it costs (the engine's
            // bytes per entry and the heap its key and value own, in jemalloc size classes).
            kv(&mut out, "used_memory", &stats.weight);
            kv(&mut out, "maxmemory", &stats.capacity);
            if let Some(a) = crate::allocator::stats() {
                kv(&mut out, "mem_allocator", &"jemalloc");
                kv(&mut out, "allocator_allocated", &a.allocated);
                kv(&mut out, "allocator_active", &a.active);
                kv(&mut out, "allocator_resident", &a.resident);
            }
            kv(&mut out, "maxmemory_policy", &"lethe-w-tinylfu");
        }
        "stats" => {
            out.push_str("# Stats\r\n");
            kv(
                &mut out,
                "total_connections_received",
                &clients.connections_received(),
            );
            kv(
                &mut out,
                "total_commands_processed",
                &clients.commands_processed(),
            );
            let limits = &cx.session.limits;
            kv(
                &mut out,
                "rejected_connections",
                &limits.rejected_connections(),
            );
            // Redis 7.2's name; 7.0 only logs these disconnections.
            kv(
                &mut out,
                "client_output_buffer_limit_disconnections",
                &limits.output_buffer_disconnections(),
            );
            let tracking = cx.state.tracking();
            kv(&mut out, "tracking_total_keys", &tracking.tracked_keys());
            kv(
                &mut out,
                "tracking_total_prefixes",
                &tracking.tracked_prefixes(),
            );
            kv(&mut out, "keyspace_hits", &stats.hits);
            kv(&mut out, "keyspace_misses", &stats.misses);
            kv(
                &mut out,
                "expired_keys",
                &stats.removals.get(lethe::RemovalCause::Expired),
            );
            kv(
                &mut out,
                "evicted_keys",
                &stats.removals.get(lethe::RemovalCause::Evicted),
            );
        }
        "cluster" => {
            out.push_str("# Cluster\r\n");
            match cx.state.cluster() {
                Some(c) => {
                    kv(&mut out, "cluster_enabled", &1);
                    kv(&mut out, "cluster_slot_keys_dropped", &c.keys_dropped());
                    let (watched, registered, published) = cx.state.remote_dependents().counts();
                    kv(&mut out, "cluster_watched_keys", &watched);
                    kv(&mut out, "cluster_watch_registrations", &registered);
                    kv(&mut out, "cluster_watched_changes_published", &published);
                }
                None => kv(&mut out, "cluster_enabled", &0),
            }
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            if stats.entries > 0 {
                let (expires, avg_ttl) = sample_expiry(cx, stats.entries);
                let used = cx.state.database_numbers_in_use();
                if used.len() == 1 {
                    let _ = write!(
                        out,
                        "db{}:keys={},expires={expires},avg_ttl={avg_ttl}\r\n",
                        used[0], stats.entries
                    );
                } else {
                    // Several databases: each counted (O(keys)); the TTL figures are the
                    // whole keyspace's estimate.
                    for db in used {
                        let keys = cx.state.db_size(db);
                        if keys > 0 {
                            let _ = write!(
                                out,
                                "db{db}:keys={keys},expires={expires},avg_ttl={avg_ttl}\r\n"
                            );
                        }
                    }
                }
            }
        }
        "cdc" => {
            if let Some(m) = cx.state.cdc_metrics() {
                crate::cdc::info_section(&m, &mut out);
            }
        }
        "bus" => {
            if let Some(bus) = cx.state.bus() {
                bus.info_section(&mut out);
            }
        }
        _ => {
            out.push_str("# Lethe\r\n");
            kv(&mut out, "lethe_entries", &stats.entries);
            kv(&mut out, "lethe_weight", &stats.weight);
            kv(&mut out, "lethe_capacity", &stats.capacity);
            kv(&mut out, "lethe_hits", &stats.hits);
            kv(&mut out, "lethe_misses", &stats.misses);
            kv(
                &mut out,
                "lethe_hit_ratio",
                &format!("{:.4}", stats.hit_ratio()),
            );
            kv(&mut out, "lethe_inserts", &stats.inserts);
            kv(&mut out, "lethe_updates", &stats.updates);
            kv(&mut out, "lethe_invalidations", &stats.invalidations);
            kv(&mut out, "lethe_leases_granted", &stats.leases_granted);
            kv(&mut out, "lethe_fills_refused", &stats.fills_refused);
            kv(&mut out, "lethe_writes_fenced", &stats.writes_fenced);
            kv(&mut out, "lethe_tags", &stats.tags);
            kv(&mut out, "lethe_dependency_edges", &stats.dependency_edges);
            for (cause, n) in stats.removals.iter() {
                let cause = format!("{cause:?}").to_ascii_lowercase();
                let _ = write!(out, "lethe_removed_{cause}:{n}\r\n");
            }
            // The per-key history behind LETHE.WHY (zeros when it is off).
            let h = cx.state.cache().history_stats().unwrap_or_default();
            kv(&mut out, "lethe_history_keys", &h.keys);
            kv(&mut out, "lethe_history_records", &h.records);
            kv(&mut out, "lethe_history_bytes", &h.bytes);
            kv(&mut out, "lethe_history_budget", &h.budget);
            kv(&mut out, "lethe_history_keys_dropped", &h.keys_dropped);
            kv(
                &mut out,
                "lethe_history_records_refused",
                &h.records_refused,
            );
            kv(&mut out, "lethe_history_slot_bytes", &h.slot_bytes);
        }
    }
    out
}

fn kv(out: &mut String, k: &str, v: &dyn std::fmt::Display) {
    let _ = write!(out, "{k}:{v}\r\n");
}

/// Keys with a TTL and their average remaining TTL in milliseconds, estimated from up to
/// [`EXPIRY_SAMPLE`] entries (Redis's own `avg_ttl` is an estimate too), so INFO stays cheap
/// on a large keyspace. Exact when the keyspace is smaller than the sample.
fn sample_expiry(cx: &Ctx<'_>, entries: u64) -> (u64, u64) {
    let (mut seen, mut with_ttl, mut ttl_sum) = (0u64, 0u64, 0u128);
    for (key, _) in cx.state.cache().iter().take(EXPIRY_SAMPLE) {
        seen += 1;
        if let lethe::expiry::KeyTtl::Expires(d) = cx.state.cache().ttl(&key) {
            with_ttl += 1;
            ttl_sum += d.as_millis();
        }
    }
    if seen == 0 || with_ttl == 0 {
        return (0, 0);
    }
    let expires = (with_ttl as u128 * entries as u128 / seen as u128) as u64;
    (expires, (ttl_sum / with_ttl as u128) as u64)
}

const EXPIRY_SAMPLE: usize = 1024;

//! Cluster mode's commands: CLUSTER (SLOTS, SHARDS, NODES, MYID, INFO, KEYSLOT,
//! COUNTKEYSINSLOT, GETKEYSINSLOT, HELP), ASKING, READONLY, READWRITE; and the routing of
//! every command by hash slot, which the dispatcher calls ([`route`], [`route_queue`]).
//!
//! Routing follows Redis Cluster's `getNodeByQuery`: the keys a command names (its key specs,
//! as COMMAND GETKEYS finds them, plus the channels of sharded pub/sub) must all hash to one
//! slot (else `CROSSSLOT`), which this node must serve (else `MOVED <slot> <host>:<port>`, or
//! `CLUSTERDOWN Hash slot not served` when no node does). Keyless commands run anywhere. A
//! command queued by MULTI is checked when queued (a refusal makes EXEC abort), and EXEC
//! checks the whole queue against one slot (a refusal discards the transaction). The check
//! costs one CRC16 per key and one load of the node's slot bitmap; the map itself is read (and
//! the reply allocated) only to refuse.
//!
//! The map is [`crate::cluster`]'s. COUNTKEYSINSLOT and GETKEYSINSLOT scan the keyspace
//! (O(keys)): no per-slot index is kept, so writes cost nothing more in cluster mode; these
//! two are resharding tools' commands, which Lethe's clusters (slots start empty on their new
//! owner) do not need.

use super::command::{Doc, Meta, Sub, acl, f};
use super::{COMMANDS, Command, CommandError, Ctx, ErrorKind, Reply, Spec, position};
use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::keyspace::key_name;
use crate::parse::Parse;
use bytes::Bytes;
use lethe_cluster::{NodeInfo, SLOTS, SlotMap, key_slot};
use std::fmt::Write;

/// `CROSSSLOT`, as Redis words it.
fn cross_slot() -> CommandError {
    CommandError::new(
        ErrorKind::Other,
        "CROSSSLOT Keys in request don't hash to the same slot",
    )
}

/// Folds the slots of the keys `args` (name first) names into `slot`; a second slot is
/// `CROSSSLOT`.
fn fold_slots(spec: &Spec, args: &[Bytes], slot: &mut Option<u16>) -> Result<(), CommandError> {
    let mut cross = false;
    let mut see = |i: usize| {
        let s = key_slot(&args[i]);
        match *slot {
            None => *slot = Some(s),
            Some(first) => cross |= first != s,
        }
    };
    super::command::for_each_key_position(sub_meta(spec, args), args, true, &mut see);
    // SORT's STORE key has an `unknown` key spec; COMMAND GETKEYS finds it the same way.
    if matches!(spec.name, "sort" | "sort_ro") {
        if let Some(i) = super::sort::store_position(args) {
            see(i);
        }
    }
    if cross { Err(cross_slot()) } else { Ok(()) }
}

/// The metadata of the subcommand `args` names, for containers (OBJECT ENCODING key).
fn sub_meta<'a>(spec: &'a Spec, args: &[Bytes]) -> &'a Meta {
    if let Some(sub) = args.get(1).filter(|_| !spec.meta.subs.is_empty()) {
        for s in spec.meta.subs {
            let tail = s.name.split_once('|').map_or(s.name, |(_, t)| t);
            if tail.as_bytes().eq_ignore_ascii_case(sub) {
                return &s.meta;
            }
        }
    }
    &spec.meta
}

/// Whether this node serves `slot`: else `MOVED` to its owner, or `CLUSTERDOWN` if none.
pub(super) fn serves(cluster: &Cluster, slot: u16) -> Result<(), CommandError> {
    if cluster.is_mine(slot) {
        return Ok(());
    }
    cluster.with_map(|map| match map.owner(slot) {
        Some(n) if n.name == cluster.name() => Ok(()),
        Some(n) => Err(CommandError::new(
            ErrorKind::Other,
            format!("MOVED {slot} {}", n.address()),
        )),
        None => Err(CommandError::new(
            ErrorKind::Other,
            "CLUSTERDOWN Hash slot not served",
        )),
    })
}

/// Whether the command `args` (name first, found as `spec`) may run on this node.
pub(super) fn route(cluster: &Cluster, spec: &Spec, args: &[Bytes]) -> Result<(), CommandError> {
    if spec.meta.keys.is_empty() && spec.meta.subs.is_empty() && spec.name != "sort" {
        return Ok(());
    }
    let mut slot = None;
    fold_slots(spec, args, &mut slot)?;
    slot.map_or(Ok(()), |s| serves(cluster, s))
}

/// Whether EXEC may run `queue` on this node: all of its keys in one slot served here.
pub(super) fn route_queue(cluster: &Cluster, queue: &[Vec<Bytes>]) -> Result<(), CommandError> {
    let mut slot = None;
    for args in queue {
        if let Some(i) = position(&args[0]) {
            fold_slots(COMMANDS[i], args, &mut slot)?;
        }
    }
    slot.map_or(Ok(()), |s| serves(cluster, s))
}

/// Redis's refusal of cluster commands by a standalone server.
fn disabled() -> CommandError {
    CommandError::err("This instance has cluster support disabled")
}

fn cluster_of<'c>(cx: &'c Ctx<'_>) -> Result<&'c Cluster, CommandError> {
    cx.state.cluster().map(|c| &**c).ok_or_else(disabled)
}

/// The subcommands served, with their arity (name included).
const SUBCOMMANDS: &[(&str, usize)] = &[
    ("slots", 2),
    ("shards", 2),
    ("nodes", 2),
    ("myid", 2),
    ("info", 2),
    ("keyslot", 3),
    ("countkeysinslot", 3),
    ("getkeysinslot", 4),
    ("help", 2),
];

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "HELP",
    "    Print this help.",
];

/// CLUSTER <subcommand> ...
#[derive(Debug)]
pub struct ClusterCmd {
    sub: &'static str,
    args: Vec<Bytes>,
}

impl Command for ClusterCmd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let raw = args.next_bytes()?;
        let rest: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        let Some(&(sub, arity)) = SUBCOMMANDS
            .iter()
            .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(&raw))
        else {
            return Err(super::server_info::unknown_sub("CLUSTER", &raw));
        };
        if rest.len() + 2 != arity {
            return Err(CommandError::new(
                ErrorKind::Arity,
                format!("ERR wrong number of arguments for 'cluster|{sub}' command"),
            ));
        }
        Ok(ClusterCmd { sub, args: rest })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if self.sub == "help" {
            return Ok(Frame::Array(
                HELP.iter().map(|l| Frame::Simple((*l).into())).collect(),
            ));
        }
        let cluster = cluster_of(cx)?;
        let map = cluster.map();
        match self.sub {
            "slots" => Ok(slots(&map)),
            "shards" => Ok(shards(&map)),
            "nodes" => Ok(Frame::Verbatim(Bytes::from(nodes(cluster, &map)))),
            "myid" => Ok(Frame::bulk(cluster.me(&map).cluster_id())),
            "info" => Ok(Frame::Verbatim(Bytes::from(info(cluster, &map)))),
            "keyslot" => Ok(Frame::Integer(i64::from(key_slot(&self.args[0])))),
            "countkeysinslot" => {
                let slot =
                    slot_arg(&self.args[0])?.ok_or_else(|| CommandError::err("Invalid slot"))?;
                Ok(Frame::Integer(
                    keys_in_slot(cx, slot, usize::MAX).len() as i64
                ))
            }
            _ => {
                let slot = slot_arg(&self.args[0])?;
                let count = int_arg(&self.args[1])?;
                let (Some(slot), Ok(count)) = (slot, usize::try_from(count)) else {
                    return Err(CommandError::err("Invalid slot or number of keys"));
                };
                let keys = keys_in_slot(cx, slot, count);
                Ok(Frame::Array(keys.into_iter().map(Frame::Bulk).collect()))
            }
        }
    }
}

fn int_arg(raw: &[u8]) -> Result<i64, CommandError> {
    crate::parse::parse_int(raw).ok_or_else(CommandError::not_integer)
}

/// A slot number argument: not a number is Redis's integer error, out of range `None`.
fn slot_arg(raw: &[u8]) -> Result<Option<u16>, CommandError> {
    let n = int_arg(raw)?;
    Ok(u16::try_from(n).ok().filter(|s| *s < SLOTS))
}

/// Up to `count` keys of the client's database in `slot` (O(keys in the database)).
fn keys_in_slot(cx: &Ctx<'_>, slot: u16, count: usize) -> Vec<Bytes> {
    if count == 0 {
        return Vec::new();
    }
    let cache = cx.state.cache();
    // Expired entries not yet reclaimed are not keys, as DBSIZE counts.
    cache.run_pending_tasks();
    cache
        .keys_with_prefix([cx.prefix(cx.session.db)])
        .into_iter()
        .filter(|k| key_slot(key_name(k)) == slot)
        .take(count)
        .map(|k| Bytes::copy_from_slice(key_name(&k)))
        .collect()
}

/// A node as CLUSTER SLOTS lists it: address, port, id, and no other endpoint (an empty map).
fn slots_node(n: &NodeInfo) -> Frame {
    Frame::Array(vec![
        Frame::bulk(n.host.clone()),
        Frame::Integer(i64::from(n.port)),
        Frame::bulk(n.cluster_id()),
        Frame::Map(Vec::new()),
    ])
}

fn slots(map: &SlotMap) -> Frame {
    Frame::Array(
        map.ranges()
            .into_iter()
            .map(|(a, b, n)| {
                Frame::Array(vec![
                    Frame::Integer(i64::from(a)),
                    Frame::Integer(i64::from(b)),
                    slots_node(n),
                ])
            })
            .collect(),
    )
}

fn shards(map: &SlotMap) -> Frame {
    let ranges = map.ranges();
    let shards = map
        .nodes()
        .iter()
        .map(|n| {
            let slots = ranges
                .iter()
                .filter(|(_, _, m)| m.name == n.name)
                .flat_map(|(a, b, _)| {
                    [Frame::Integer(i64::from(*a)), Frame::Integer(i64::from(*b))]
                })
                .collect();
            let node = Frame::Map(vec![
                (Frame::bulk("id"), Frame::bulk(n.cluster_id())),
                (Frame::bulk("port"), Frame::Integer(i64::from(n.port))),
                (Frame::bulk("ip"), Frame::bulk(n.host.clone())),
                (Frame::bulk("endpoint"), Frame::bulk(n.host.clone())),
                (Frame::bulk("role"), Frame::bulk("master")),
                (Frame::bulk("replication-offset"), Frame::Integer(0)),
                (Frame::bulk("health"), Frame::bulk("online")),
            ]);
            Frame::Map(vec![
                (Frame::bulk("slots"), Frame::Array(slots)),
                (Frame::bulk("nodes"), Frame::Array(vec![node])),
            ])
        })
        .collect();
    Frame::Array(shards)
}

/// CLUSTER NODES: one line per node, as Redis writes them. There is no cluster bus: its port
/// shows as 0, and every node in the map counts as connected.
fn nodes(cluster: &Cluster, map: &SlotMap) -> String {
    let ranges = map.ranges();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut out = String::new();
    let mut listed = map.nodes().to_vec();
    if map.node(cluster.name()).is_none() {
        listed.push(cluster.me(map));
    }
    for n in &listed {
        let myself = n.name == cluster.name();
        let _ = write!(
            out,
            "{} {}:{}@0 {} - 0 {} {} connected",
            n.cluster_id(),
            n.host,
            n.port,
            if myself { "myself,master" } else { "master" },
            if myself { 0 } else { now },
            map.epoch(),
        );
        for (a, b, _) in ranges.iter().filter(|(_, _, m)| m.name == n.name) {
            if a == b {
                let _ = write!(out, " {a}");
            } else {
                let _ = write!(out, " {a}-{b}");
            }
        }
        out.push('\n');
    }
    out
}

fn info(cluster: &Cluster, map: &SlotMap) -> String {
    let assigned = map.assigned();
    let serving = map
        .nodes()
        .iter()
        .filter(|n| map.ranges().iter().any(|(_, _, m)| m.name == n.name))
        .count();
    let mut out = String::new();
    let mut kv = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    let full = assigned == usize::from(SLOTS);
    kv("cluster_state", &if full { "ok" } else { "fail" });
    kv("cluster_slots_assigned", &assigned);
    kv("cluster_slots_ok", &assigned);
    kv("cluster_slots_pfail", &0);
    kv("cluster_slots_fail", &0);
    kv("cluster_known_nodes", &map.nodes().len());
    kv("cluster_size", &serving);
    kv("cluster_current_epoch", &map.epoch());
    kv("cluster_my_epoch", &map.epoch());
    kv("cluster_stats_messages_sent", &0);
    kv("cluster_stats_messages_received", &0);
    kv("total_cluster_links_buffer_limit_exceeded", &0);
    kv("cluster_slot_keys_dropped", &cluster.keys_dropped());
    out
}

/// ASKING, READONLY, READWRITE: accepted in cluster mode (Lethe has no migrating slots and no
/// replicas, so they change nothing), refused as Redis refuses them without it.
#[derive(Debug)]
pub struct ClientFlag;

impl Command for ClientFlag {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(ClientFlag)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cluster_of(cx)?;
        Ok(Frame::ok())
    }
}

const fn sub(
    name: &'static str,
    arity: i32,
    flags: u32,
    tips: &'static [&'static str],
    doc: Doc,
) -> Sub {
    Sub {
        name,
        arity,
        meta: Meta {
            flags,
            acl: 0,
            tips,
            keys: &[],
            doc,
            subs: &[],
        },
    }
}

const ND: &[&str] = &["nondeterministic_output"];

super::command_table! {
    pub(super) CLUSTER;
    "cluster" -2 ClusterCmd {
        flags: 0,
        doc: Doc::new("cluster", "3.0.0", "Depends on subcommand.", "A container for Redis Cluster commands"),
        subs: &[
            sub("cluster|countkeysinslot", 3, f::STALE, &[], Doc::new("cluster", "3.0.0", "O(1)", "Return the number of local keys in the specified hash slot")),
            sub("cluster|getkeysinslot", 4, f::STALE, ND, Doc::new("cluster", "3.0.0", "O(N) where N is the number of requested keys", "Return local key names in the specified hash slot")),
            sub("cluster|help", 2, f::LOADING | f::STALE, &[], Doc::new("cluster", "5.0.0", "O(1)", "Show helpful text about the different subcommands")),
            sub("cluster|info", 2, f::STALE, ND, Doc::new("cluster", "3.0.0", "O(1)", "Provides info about Redis Cluster node state")),
            sub("cluster|keyslot", 3, f::STALE, &[], Doc::new("cluster", "3.0.0", "O(N) where N is the number of bytes in the key", "Returns the hash slot of the specified key")),
            sub("cluster|myid", 2, f::STALE, &[], Doc::new("cluster", "3.0.0", "O(1)", "Return the node id")),
            sub("cluster|nodes", 2, f::STALE, ND, Doc::new("cluster", "3.0.0", "O(N) where N is the total number of Cluster nodes", "Get Cluster config for the node")),
            sub("cluster|shards", 2, f::STALE, ND, Doc::new("cluster", "7.0.0", "O(N) where N is the total number of cluster nodes", "Get array of cluster slots to node mappings")),
            sub("cluster|slots", 2, f::STALE, ND, Doc::new("cluster", "3.0.0", "O(N) where N is the total number of Cluster nodes", "Get array of Cluster slot to node mappings")),
        ],
    }
    "asking" 1 ClientFlag {
        flags: f::FAST,
        acl: acl::CONNECTION,
        doc: Doc::new("cluster", "3.0.0", "O(1)", "Sent by cluster clients after an -ASK redirect"),
    }
    "readonly" 1 ClientFlag {
        flags: f::LOADING | f::STALE | f::FAST,
        acl: acl::CONNECTION,
        doc: Doc::new("cluster", "3.0.0", "O(1)", "Enables read queries for a connection to a cluster replica node"),
    }
    "readwrite" 1 ClientFlag {
        flags: f::LOADING | f::STALE | f::FAST,
        acl: acl::CONNECTION,
        doc: Doc::new("cluster", "3.0.0", "O(1)", "Disables read queries for a connection to a cluster replica node"),
    }
}

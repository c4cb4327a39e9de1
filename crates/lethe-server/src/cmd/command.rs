//! COMMAND (bare, COUNT, INFO, DOCS, LIST, GETKEYS) and the metadata it reports.
//!
//! The metadata lives in the command table itself (`table!` in `cmd/mod.rs`): each row carries
//! its flags, explicit ACL categories, request/response tips, key specs and documentation, so
//! there is one place to say what a command is. Everything else is derived here the way Redis
//! derives it: the implicit ACL categories from the flags (`write` gives `@write`, no `fast`
//! gives `@slow`, ...) and the legacy first/last/step key positions from the key specs.
//! Reply shapes are Redis 7.0's: flags and categories are sets of simple strings, key specs
//! maps, subcommands an array (COMMAND INFO) or map (COMMAND DOCS).
//!
//! For the Redis commands the metadata is Redis 7.0.15's (7.2/7.4's for commands 7.0 lacks);
//! `LETHE.*` commands describe themselves the way a module's commands would (group `module`).

use super::{COMMANDS, Command, CommandError, Ctx, Reply, Spec};
use crate::frame::Frame;
use crate::parse::Parse;
use bytes::Bytes;
use lethe::pattern::Glob;

/// The version `LETHE.*` commands appeared in, for COMMAND DOCS `since`.
pub(super) const LETHE: &str = env!("CARGO_PKG_VERSION");

/// Command flags, in the order Redis lists them.
#[allow(dead_code)] // the whole set is Redis's; not every flag has a command here yet
pub(super) mod f {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    /// Derived from the key specs (a `keynum` spec), never set in a table row.
    pub const MOVABLEKEYS: u32 = 1 << 15;
    pub const ALLOW_BUSY: u32 = 1 << 16;
    pub(crate) const NAMES: [&str; 17] = [
        "write",
        "readonly",
        "denyoom",
        "admin",
        "pubsub",
        "noscript",
        "blocking",
        "loading",
        "stale",
        "skip_monitor",
        "skip_slowlog",
        "fast",
        "no_auth",
        "may_replicate",
        "no_multi",
        "movablekeys",
        "allow_busy",
    ];
}

/// ACL categories, in the order Redis lists them.
#[allow(dead_code)] // the whole set is Redis's; not every category has a command here yet
pub(super) mod acl {
    pub const KEYSPACE: u32 = 1;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;
    pub(crate) const NAMES: [&str; 21] = [
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "bitmap",
        "hyperloglog",
        "geo",
        "stream",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
    ];
}

/// Key spec flags, in the order Redis lists them.
#[allow(dead_code)] // the whole set is Redis's
pub(super) mod ks {
    pub const RO: u32 = 1;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;
    pub(crate) const NAMES: [&str; 11] = [
        "RO",
        "RW",
        "OW",
        "RM",
        "access",
        "update",
        "insert",
        "delete",
        "not_key",
        "incomplete",
        "variable_flags",
    ];
}

/// Where a command's keys are: from argument `begin`, up to `last` (relative to `begin`, or
/// negative from the end), every `step` arguments (Redis's `index`/`range` form); or, for a
/// `keynum` spec, as many keys as argument `begin + last` says, from `begin + first` on, every
/// `step` arguments (LMPOP, SINTERCARD).
#[derive(Debug)]
pub(super) struct KeySpec {
    flags: u32,
    notes: &'static str,
    begin: i64,
    last: i64,
    step: i64,
    /// For a `keynum` spec, where the first key is relative to `begin`.
    keynum_first: Option<i64>,
    /// Redis's `unknown` begin_search and find_keys: the keys cannot be told from the
    /// arguments' positions (SORT's BY, GET and STORE).
    unknown: bool,
    /// For a `keyword` spec (GEORADIUS's STORE): the keyword searched for from argument
    /// `begin` on (from the end back if negative); the key follows it.
    keyword: Option<&'static str>,
}

impl KeySpec {
    pub(super) const fn range(flags: u32, begin: i64, last: i64, step: i64) -> KeySpec {
        KeySpec::noted(flags, begin, last, step, "")
    }

    pub(super) const fn noted(
        flags: u32,
        begin: i64,
        last: i64,
        step: i64,
        notes: &'static str,
    ) -> KeySpec {
        KeySpec {
            flags,
            notes,
            begin,
            last,
            step,
            keynum_first: None,
            unknown: false,
            keyword: None,
        }
    }

    /// An `unknown` spec (begin_search and find_keys both unknown), with its notes.
    pub(super) const fn unknown(flags: u32, notes: &'static str) -> KeySpec {
        KeySpec {
            flags,
            notes,
            begin: 0,
            last: 0,
            step: 0,
            keynum_first: None,
            unknown: true,
            keyword: None,
        }
    }

    /// A `keyword` spec with a one-key range after the keyword (GEORADIUS's STORE).
    pub(super) const fn keyword(flags: u32, keyword: &'static str, startfrom: i64) -> KeySpec {
        KeySpec {
            flags,
            notes: "",
            begin: startfrom,
            last: 0,
            step: 1,
            keynum_first: None,
            unknown: false,
            keyword: Some(keyword),
        }
    }

    /// A `keynum` spec: the key count at `begin + keynumidx`, the keys from `begin + first`.
    pub(super) const fn keynum(
        flags: u32,
        begin: i64,
        keynumidx: i64,
        first: i64,
        step: i64,
    ) -> KeySpec {
        KeySpec {
            flags,
            notes: "",
            begin,
            last: keynumidx,
            step,
            keynum_first: Some(first),
            unknown: false,
            keyword: None,
        }
    }
}

/// What COMMAND DOCS says of a command.
#[derive(Debug)]
pub(super) struct Doc {
    group: &'static str,
    since: &'static str,
    complexity: &'static str,
    summary: &'static str,
}

impl Doc {
    pub(super) const fn new(
        group: &'static str,
        since: &'static str,
        complexity: &'static str,
        summary: &'static str,
    ) -> Doc {
        Doc {
            group,
            since,
            complexity,
            summary,
        }
    }

    /// The command's group (`string`, `hash`, `module`, ...).
    pub(super) const fn group(&self) -> &'static str {
        self.group
    }
}

/// A command's metadata: a table row's fields besides name, arity and implementation.
#[derive(Debug)]
pub(super) struct Meta {
    /// [`f`] bits.
    pub(super) flags: u32,
    /// [`acl`] bits beyond those the flags imply.
    pub(super) acl: u32,
    pub(super) tips: &'static [&'static str],
    pub(super) keys: &'static [KeySpec],
    pub(super) doc: Doc,
    pub(super) subs: &'static [Sub],
}

impl Meta {
    /// Defaults for the fields a row leaves out.
    pub(super) const NONE: Meta = Meta {
        flags: 0,
        acl: 0,
        tips: &[],
        keys: &[],
        doc: Doc::new("generic", "1.0.0", "O(1)", ""),
        subs: &[],
    };
}

/// A subcommand (`client|list`); it runs through its container's row.
#[derive(Debug)]
pub(super) struct Sub {
    pub(super) name: &'static str,
    pub(super) arity: i32,
    pub(super) meta: Meta,
}

/// Whether a key spec says the command may change its keys (RW, OW, RM), which a `readonly`
/// command can: PFCOUNT refreshes the count cached in the value.
pub(super) fn changes_keys(meta: &Meta) -> bool {
    meta.keys
        .iter()
        .any(|k| k.flags & (ks::RW | ks::OW | ks::RM) != 0)
}

/// The flags, with `movablekeys` where a key spec is `keynum`, `keyword` or `unknown`, as
/// Redis derives
/// it.
fn flags(meta: &Meta) -> u32 {
    if meta
        .keys
        .iter()
        .any(|k| k.keynum_first.is_some() || k.keyword.is_some() || k.unknown)
    {
        meta.flags | f::MOVABLEKEYS
    } else {
        meta.flags
    }
}

/// The ACL categories Redis adds from the flags, plus the explicit ones.
fn categories(meta: &Meta) -> u32 {
    let mut c = meta.acl;
    let has = |flag| meta.flags & flag != 0;
    if has(f::WRITE) {
        c |= acl::WRITE;
    }
    if has(f::READONLY) {
        c |= acl::READ;
    }
    if has(f::ADMIN) {
        c |= acl::ADMIN | acl::DANGEROUS;
    }
    if has(f::PUBSUB) {
        c |= acl::PUBSUB;
    }
    if has(f::BLOCKING) {
        c |= acl::BLOCKING;
    }
    c |= if has(f::FAST) { acl::FAST } else { acl::SLOW };
    c
}

/// Redis's legacy (first, last, step) key positions, derived from the key specs as Redis does:
/// one spec gives its own range; several merge into one range with step 1.
fn legacy_range(keys: &[KeySpec]) -> (i64, i64, i64) {
    // Redis leaves `keynum`, `keyword` and `unknown` specs out of the legacy range (the
    // command has `movablekeys`).
    let ranges: Vec<&KeySpec> = keys
        .iter()
        .filter(|k| k.keynum_first.is_none() && k.keyword.is_none() && !k.unknown)
        .collect();
    let Some((head, rest)) = ranges.split_first() else {
        return (0, 0, 0);
    };
    let absolute = |k: &KeySpec| {
        if k.last < 0 { k.last } else { k.begin + k.last }
    };
    let (mut first, mut last, mut step) = (head.begin, absolute(head), head.step);
    for &k in rest {
        first = first.min(k.begin);
        let l = absolute(k);
        last = if last < 0 || l < 0 {
            last.min(l)
        } else {
            last.max(l)
        };
        step = 1;
    }
    (first, last, step)
}

fn names(bits: u32, names: &[&'static str]) -> Vec<Frame> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| Frame::Simple((*n).into()))
        .collect()
}

fn pair(k: &'static str, v: Frame) -> (Frame, Frame) {
    (Frame::bulk(k), v)
}

fn key_spec(k: &KeySpec) -> Frame {
    let mut map = Vec::new();
    if !k.notes.is_empty() {
        map.push(pair("notes", Frame::bulk(k.notes)));
    }
    map.push(pair("flags", Frame::Set(names(k.flags, &ks::NAMES))));
    if k.unknown {
        let unknown = || {
            Frame::Map(vec![
                pair("type", Frame::bulk("unknown")),
                pair("spec", Frame::Map(Vec::new())),
            ])
        };
        map.push(pair("begin_search", unknown()));
        map.push(pair("find_keys", unknown()));
        return Frame::Map(map);
    }
    let begin = match k.keyword {
        Some(word) => Frame::Map(vec![
            pair("type", Frame::bulk("keyword")),
            pair(
                "spec",
                Frame::Map(vec![
                    pair("keyword", Frame::bulk(word)),
                    pair("startfrom", Frame::Integer(k.begin)),
                ]),
            ),
        ]),
        None => Frame::Map(vec![
            pair("type", Frame::bulk("index")),
            pair(
                "spec",
                Frame::Map(vec![pair("index", Frame::Integer(k.begin))]),
            ),
        ]),
    };
    map.push(pair("begin_search", begin));
    if let Some(first) = k.keynum_first {
        map.push(pair(
            "find_keys",
            Frame::Map(vec![
                pair("type", Frame::bulk("keynum")),
                pair(
                    "spec",
                    Frame::Map(vec![
                        pair("keynumidx", Frame::Integer(k.last)),
                        pair("firstkey", Frame::Integer(first)),
                        pair("keystep", Frame::Integer(k.step)),
                    ]),
                ),
            ]),
        ));
        return Frame::Map(map);
    }
    map.push(pair(
        "find_keys",
        Frame::Map(vec![
            pair("type", Frame::bulk("range")),
            pair(
                "spec",
                Frame::Map(vec![
                    pair("lastkey", Frame::Integer(k.last)),
                    pair("keystep", Frame::Integer(k.step)),
                    pair("limit", Frame::Integer(0)),
                ]),
            ),
        ]),
    ));
    Frame::Map(map)
}

/// One command's COMMAND INFO entry: Redis 7's ten elements.
fn info(name: &str, arity: i32, meta: &Meta) -> Frame {
    let (first, last, step) = legacy_range(meta.keys);
    let subs = if meta.subs.is_empty() {
        Frame::Set(Vec::new())
    } else {
        Frame::Array(
            meta.subs
                .iter()
                .map(|s| info(s.name, s.arity, &s.meta))
                .collect(),
        )
    };
    Frame::Array(vec![
        Frame::bulk(Bytes::copy_from_slice(name.as_bytes())),
        Frame::Integer(arity.into()),
        Frame::Set(names(flags(meta), &f::NAMES)),
        Frame::Integer(first),
        Frame::Integer(last),
        Frame::Integer(step),
        Frame::Set(
            names(categories(meta), &acl::NAMES)
                .into_iter()
                .map(|n| match n {
                    Frame::Simple(s) => Frame::Simple(format!("@{s}")),
                    other => other,
                })
                .collect(),
        ),
        Frame::Set(meta.tips.iter().map(|t| Frame::bulk(*t)).collect()),
        Frame::Set(meta.keys.iter().map(key_spec).collect()),
        subs,
    ])
}

/// One command's COMMAND DOCS entry (without the argument descriptions Redis also gives).
fn docs(meta: &Meta) -> Frame {
    let d = &meta.doc;
    let mut map = vec![
        pair("summary", Frame::bulk(d.summary)),
        pair("since", Frame::bulk(d.since)),
        pair("group", Frame::bulk(d.group)),
        pair("complexity", Frame::bulk(d.complexity)),
    ];
    if !meta.subs.is_empty() {
        map.push(pair(
            "subcommands",
            Frame::Map(
                meta.subs
                    .iter()
                    .map(|s| (Frame::bulk(s.name), docs(&s.meta)))
                    .collect(),
            ),
        ));
    }
    Frame::Map(map)
}

/// A command or `container|sub` by name, case-insensitively.
fn find(name: &[u8]) -> Option<(&'static str, i32, &'static Meta)> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    match lower.split_once('|') {
        None => super::BY_NAME
            .get(lower.as_str())
            .map(|s| (s.name, s.arity, &s.meta)),
        Some((container, _)) => super::BY_NAME
            .get(container)?
            .meta
            .subs
            .iter()
            .find(|s| s.name == lower)
            .map(|s| (s.name, s.arity, &s.meta)),
    }
}

fn all_info() -> Frame {
    Frame::Array(
        COMMANDS
            .iter()
            .map(|s| info(s.name, s.arity, &s.meta))
            .collect(),
    )
}

#[derive(Debug)]
pub struct CommandCmd(Vec<Bytes>);

impl Command for CommandCmd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(CommandCmd(std::iter::from_fn(|| args.try_next()).collect()))
    }

    fn apply(self, _: &mut Ctx<'_>) -> Reply {
        let Some((sub, args)) = self.0.split_first() else {
            return Ok(all_info());
        };
        let name = String::from_utf8_lossy(sub).to_ascii_lowercase();
        let arity = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(super::server_info::sub_arity("command", &name))
            }
        };
        match name.as_str() {
            "count" => {
                arity(args.is_empty())?;
                Ok(Frame::Integer(COMMANDS.len() as i64))
            }
            "info" => {
                if args.is_empty() {
                    return Ok(all_info());
                }
                Ok(Frame::Array(
                    args.iter()
                        .map(|a| find(a).map_or(Frame::Null, |(n, ar, m)| info(n, ar, m)))
                        .collect(),
                ))
            }
            "docs" => {
                let entry = |s: &Spec| (Frame::bulk(s.name), docs(&s.meta));
                if args.is_empty() {
                    return Ok(Frame::Map(COMMANDS.iter().map(|s| entry(s)).collect()));
                }
                // Unknown names are left out, as in Redis.
                Ok(Frame::Map(
                    args.iter()
                        .filter_map(|a| find(a))
                        .map(|(n, _, m)| (Frame::bulk(n), docs(m)))
                        .collect(),
                ))
            }
            "list" => list(args),
            "getkeys" => {
                arity(args.len() >= 2)?;
                get_keys(args)
            }
            _ => Err(super::server_info::unknown_sub("COMMAND", sub)),
        }
    }
}

/// COMMAND GETKEYS command arg...: the key arguments, found through the key specs.
fn get_keys(args: &[Bytes]) -> Reply {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let Some(spec) = super::BY_NAME.get(name.as_str()) else {
        return Err(CommandError::err("Invalid command specified"));
    };
    let (arity, meta) = match args.get(1) {
        // A container's subcommand has its own arity and keys (none, for those here).
        Some(sub) if !spec.meta.subs.is_empty() => {
            let full = format!(
                "{name}|{}",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            );
            match spec.meta.subs.iter().find(|s| s.name == full) {
                Some(s) => (s.arity, &s.meta),
                None => (spec.arity, &spec.meta),
            }
        }
        _ => (spec.arity, &spec.meta),
    };
    let argc = args.len() as i64;
    if (arity > 0 && argc != i64::from(arity)) || argc < -i64::from(arity) {
        return Err(CommandError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    if meta.keys.iter().all(|k| k.flags & ks::NOT_KEY != 0) {
        return Err(CommandError::err("The command has no key arguments"));
    }
    let mut positions = key_positions(meta, args);
    // SORT's STORE key has an `unknown` key spec; Redis finds it by scanning the options.
    if name == "sort" {
        positions.extend(super::sort::store_position(args));
    }
    let keys: Vec<Frame> = positions
        .into_iter()
        .map(|i| Frame::Bulk(args[i].clone()))
        .collect();
    if keys.is_empty() {
        return Err(CommandError::err("Invalid arguments specified for command"));
    }
    Ok(Frame::Array(keys))
}

/// Where a command's keys are among its arguments `args` (the name at 0), per its key specs.
/// A `keynum` spec whose count is not a number, or names more keys than there are arguments,
/// gives none (the command itself refuses such arguments).
pub(super) fn key_positions(meta: &Meta, args: &[Bytes]) -> Vec<usize> {
    let mut out = Vec::new();
    for_each_key_position(meta, args, false, |i| out.push(i));
    out
}

/// [`key_positions`] without collecting them: `f` gets each position in turn. With
/// `channels`, the `not_key` specs of shard channels (SPUBLISH, SSUBSCRIBE) count too, as
/// cluster routing needs (a shard channel lives in its slot like a key).
pub(super) fn for_each_key_position(
    meta: &Meta,
    args: &[Bytes],
    channels: bool,
    mut f: impl FnMut(usize),
) {
    let argc = args.len() as i64;
    // Shard channels (SPUBLISH, SSUBSCRIBE) have `not_key` specs: they are not keys; `unknown`
    // specs name no positions.
    for k in meta
        .keys
        .iter()
        .filter(|k| (channels || k.flags & ks::NOT_KEY == 0) && !k.unknown)
    {
        let step = k.step.max(1) as usize;
        if let Some(word) = k.keyword {
            // The key follows the first argument spelling the keyword, searched from
            // `begin` on (or, negative, from that far from the end back).
            let found = if k.begin >= 0 {
                (k.begin..argc).find(|&i| args[i as usize].eq_ignore_ascii_case(word.as_bytes()))
            } else {
                (1..=(argc + k.begin))
                    .rev()
                    .find(|&i| args[i as usize].eq_ignore_ascii_case(word.as_bytes()))
            };
            if let Some(i) = found.filter(|i| i + 1 < argc) {
                f((i + 1) as usize);
            }
            continue;
        }
        if let Some(first) = k.keynum_first {
            let Some(n) = args
                .get((k.begin + k.last) as usize)
                .and_then(|a| crate::parse::parse_int(a))
                .filter(|n| *n > 0)
            else {
                continue;
            };
            let from = k.begin + first;
            let Some(to) = n
                .checked_sub(1)
                .and_then(|n| n.checked_mul(k.step))
                .and_then(|n| n.checked_add(from))
                .filter(|to| *to < argc)
            else {
                continue;
            };
            (from..=to).step_by(step).for_each(|i| f(i as usize));
            continue;
        }
        let end = if k.last >= 0 {
            k.begin + k.last
        } else {
            argc + k.last
        };
        (k.begin..=end.min(argc - 1))
            .step_by(step)
            .for_each(|i| f(i as usize));
    }
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
fn list(args: &[Bytes]) -> Reply {
    let keep: Box<dyn Fn(&Spec) -> bool> = match args {
        [] => Box::new(|_| true),
        [by, kind, value] if by.eq_ignore_ascii_case(b"filterby") => {
            match String::from_utf8_lossy(kind).to_ascii_lowercase().as_str() {
                // No modules are loaded: no command belongs to one.
                "module" => Box::new(|_| false),
                "aclcat" => {
                    let cat = String::from_utf8_lossy(value).to_ascii_lowercase();
                    let bit = acl::NAMES.iter().position(|n| *n == cat);
                    Box::new(move |s| bit.is_some_and(|b| categories(&s.meta) & (1 << b) != 0))
                }
                "pattern" => {
                    let glob = Glob::new(value.to_ascii_lowercase());
                    Box::new(move |s| glob.matches(s.name.as_bytes()))
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        _ => return Err(CommandError::syntax()),
    };
    Ok(Frame::Array(
        COMMANDS
            .iter()
            .filter(|s| keep(s))
            .map(|s| Frame::bulk(s.name))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_range_follows_the_key_specs() {
        assert_eq!(legacy_range(&[]), (0, 0, 0));
        assert_eq!(legacy_range(&[KeySpec::range(ks::RO, 1, 0, 1)]), (1, 1, 1));
        assert_eq!(
            legacy_range(&[KeySpec::range(ks::OW, 1, -1, 2)]),
            (1, -1, 2)
        );
        let rename = [
            KeySpec::range(ks::RW, 1, 0, 1),
            KeySpec::range(ks::OW, 2, 0, 1),
        ];
        assert_eq!(legacy_range(&rename), (1, 2, 1));
    }

    #[test]
    fn writes_flag_and_key_positions_agree_with_arity() {
        for s in COMMANDS.iter() {
            let (first, last, _) = legacy_range(s.meta.keys);
            // A fixed-arity command cannot name a key past its last argument.
            if s.arity > 0 {
                assert!(last < i64::from(s.arity), "{}", s.name);
                assert!(first < i64::from(s.arity), "{}", s.name);
            }
            assert!(
                s.meta.flags & (f::WRITE | f::READONLY) != f::WRITE | f::READONLY,
                "{} is both write and readonly",
                s.name
            );
            assert!(!s.meta.doc.summary.is_empty(), "{} has no summary", s.name);
            for sub in s.meta.subs {
                assert!(
                    sub.name.starts_with(&format!("{}|", s.name)),
                    "{}",
                    sub.name
                );
            }
        }
    }

    #[test]
    fn implicit_categories_match_redis() {
        let m = Meta {
            flags: f::WRITE | f::DENYOOM,
            acl: acl::STRING,
            ..Meta::NONE
        };
        assert_eq!(categories(&m), acl::WRITE | acl::STRING | acl::SLOW);
        let m = Meta {
            flags: f::ADMIN | f::FAST,
            ..Meta::NONE
        };
        assert_eq!(categories(&m), acl::ADMIN | acl::DANGEROUS | acl::FAST);
    }
}

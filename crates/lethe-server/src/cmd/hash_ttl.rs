//! Hash field expiration, Redis 7.4's commands: HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT set
//! deadlines on fields; HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME report them; HPERSIST removes
//! them. The deadlines live in the hash itself (see [`crate::keyspace::hash`]); a command that
//! sets one also registers the key for the server's active sweep
//! ([`crate::keyspace::FieldExpiry`]).
//!
//! Replies and errors are Redis 7.4's (src/t_hash.c, src/commands/hexpire.json and relatives):
//! one integer per field named, in order; a missing key answers as if none of its fields
//! existed. The type of the key is checked before the arguments, as Redis does.

use super::command::{Doc, KeySpec, acl, f, ks};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::hash::FieldTtl;
use crate::keyspace::{Value, now_millis, stored_key};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;

super::command_table! {
    pub(super) HASH_TTL;
    "hexpire" -6 HExpire {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Set expiry for hash field using relative time to expire (seconds)"),
    }
    "hpexpire" -6 HPExpire {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Set expiry for hash field using relative time to expire (milliseconds)"),
    }
    "hexpireat" -6 HExpireAt {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Set expiry for hash field using an absolute Unix timestamp (seconds)"),
    }
    "hpexpireat" -6 HPExpireAt {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Set expiry for hash field using an absolute Unix timestamp (milliseconds)"),
    }
    "httl" -5 HTtl {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Returns the TTL in seconds of a hash field."),
    }
    "hpttl" -5 HPTtl {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Returns the TTL in milliseconds of a hash field."),
    }
    "hexpiretime" -5 HExpireTime {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Returns the expiration time of a hash field as a Unix timestamp, in seconds."),
    }
    "hpexpiretime" -5 HPExpireTime {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Returns the expiration time of a hash field as a Unix timestamp, in msec."),
    }
    "hpersist" -5 HPersist {
        flags: f::WRITE | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "7.4.0", "O(N) where N is the number of specified fields", "Removes the expiration time for each specified field"),
    }
}

/// The latest deadline a field may have: Redis 7.4's `HFE_MAX_ABS_TIME_MSEC`
/// (`EB_EXPIRE_TIME_MAX >> 2`, with `EB_EXPIRE_TIME_MAX` = 2^48 - 1), src/t_hash.c.
const MAX_DEADLINE_MS: i64 = ((1 << 48) - 1) >> 2;

/// Per-field replies (src/t_hash.c's `HFE_*` / `HSETEX_*` codes).
const NO_FIELD: i64 = -2;
const NO_TTL: i64 = -1;
const NOT_MET: i64 = 0;
const SET: i64 = 1;
const DELETED: i64 = 2;

fn err(text: &str) -> CommandError {
    CommandError::err(text)
}

/// `FIELDS numfields field ...` starting at `args[at]`.
fn fields_block(args: &[Bytes], at: usize) -> Result<Vec<Bytes>, CommandError> {
    if !args
        .get(at)
        .is_some_and(|a| a.eq_ignore_ascii_case(b"fields"))
    {
        return Err(err(
            "Mandatory argument FIELDS is missing or not at the right position",
        ));
    }
    let n = args
        .get(at + 1)
        .and_then(|a| parse_int(a))
        .filter(|&n| n >= 1)
        .ok_or_else(|| err("Parameter `numFields` should be greater than 0"))?;
    let rest = &args[at + 2..];
    if usize::try_from(n).ok() != Some(rest.len()) {
        return Err(err(
            "The `numfields` parameter must match the number of arguments",
        ));
    }
    Ok(rest.to_vec())
}

/// Whether `key` holds something other than a hash (checked first, as Redis does).
fn check_type(cx: &mut Ctx<'_>, key: &[u8]) -> Result<(), CommandError> {
    cx.read([key], |t| match t.peek(key) {
        Some(v) if !matches!(v, Value::Hash(_)) => Err(CommandError::wrong_type()),
        _ => Ok(()),
    })?
}

fn integers(codes: Vec<i64>) -> Frame {
    Frame::Array(codes.into_iter().map(Frame::Integer).collect())
}

/// The condition of HEXPIRE and relatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// Whether a field whose deadline is `prev` (`None`: none) may get `at` under `cond`. A field
/// without a deadline counts as never expiring: GT and XX refuse it, LT accepts.
fn allowed(cond: Cond, prev: Option<i64>, at: i64) -> bool {
    match (cond, prev) {
        (Cond::Always, _) => true,
        (Cond::Nx, p) => p.is_none(),
        (Cond::Xx, p) => p.is_some(),
        (Cond::Gt, None) => false,
        (Cond::Gt, Some(p)) => at > p,
        (Cond::Lt, None) => true,
        (Cond::Lt, Some(p)) => at < p,
    }
}

/// HEXPIRE and relatives: `seconds` scales the time, `absolute` makes it a Unix time.
#[derive(Debug)]
struct ExpireArgs {
    key: Bytes,
    rest: Vec<Bytes>,
}

impl ExpireArgs {
    fn parse(args: &mut Parse) -> ExpireArgs {
        let key = args.try_next().unwrap_or_default();
        ExpireArgs {
            key,
            rest: std::iter::from_fn(|| args.try_next()).collect(),
        }
    }

    fn apply(self, cx: &mut Ctx<'_>, cmd: &str, seconds: bool, absolute: bool) -> Reply {
        check_type(cx, &self.key)?;
        let args = &self.rest;
        let n = parse_int(&args[0]).ok_or_else(CommandError::not_integer)?;
        if n < 0 {
            return Err(err("invalid expire time, must be >= 0"));
        }
        let invalid = || CommandError::invalid_expire(cmd);
        let ms = if seconds {
            if n > MAX_DEADLINE_MS / 1000 {
                return Err(invalid());
            }
            n * 1000
        } else {
            n
        };
        let now = now_millis();
        let base = if absolute { 0 } else { now };
        if ms > MAX_DEADLINE_MS - base {
            return Err(invalid());
        }
        let at = ms + base;
        let (cond, at_fields) = match args.get(1).map(|a| a.to_ascii_uppercase()) {
            Some(a) if a == b"NX" => (Cond::Nx, 2),
            Some(a) if a == b"XX" => (Cond::Xx, 2),
            Some(a) if a == b"GT" => (Cond::Gt, 2),
            Some(a) if a == b"LT" => (Cond::Lt, 2),
            _ => (Cond::Always, 1),
        };
        let fields = fields_block(args, at_fields)?;
        let key = &self.key[..];
        let state = cx.state;
        let db = cx.session.db;
        let (codes, next) = cx.write([key], |t| {
            t.compute(key, |e| {
                let Some(Value::Hash(h)) = e.get() else {
                    return (vec![NO_FIELD; fields.len()], None);
                };
                // Decided on the hash as it is, field by field in order (a field named twice
                // sees what the first naming did), before changing anything: a command whose
                // conditions all fail leaves the key untouched.
                let mut overlay: Vec<(&[u8], Option<i64>)> = Vec::new();
                let mut codes = Vec::with_capacity(fields.len());
                for f in &fields {
                    let seen = overlay.iter().rev().find(|(g, _)| *g == &f[..]);
                    let prev = match seen {
                        Some((_, None)) => {
                            codes.push(NO_FIELD);
                            continue;
                        }
                        Some((_, Some(p))) => Some(*p).filter(|&p| p != i64::MAX),
                        None => match h.field_ttl(f) {
                            FieldTtl::Missing => {
                                codes.push(NO_FIELD);
                                continue;
                            }
                            FieldTtl::Persistent => None,
                            FieldTtl::At(p) => Some(p),
                        },
                    };
                    if !allowed(cond, prev, at) {
                        codes.push(NOT_MET);
                        overlay.push((f, Some(prev.unwrap_or(i64::MAX))));
                    } else if at <= now {
                        codes.push(DELETED);
                        overlay.push((f, None));
                    } else {
                        codes.push(SET);
                        overlay.push((f, Some(at)));
                    }
                }
                if !codes.iter().any(|&c| c == SET || c == DELETED) {
                    return (codes, None);
                }
                let Some(Ok(h)) = e.get_mut().map(Value::as_hash_mut) else {
                    return (codes, None);
                };
                for (f, &code) in fields.iter().zip(&codes) {
                    match code {
                        SET => h.set_field_deadline(f, at),
                        DELETED => {
                            h.remove(f);
                        }
                        _ => {}
                    }
                }
                let next = h.next_deadline();
                // A hash left without fields is no key, as in Redis.
                if h.is_empty() {
                    e.remove();
                    return (codes, None);
                }
                (codes, next)
            })
        })?;
        if let Some(at) = next {
            state
                .keyspace()
                .field_expiry()
                .register(&stored_key(db, key), at);
        }
        Ok(integers(codes))
    }
}

macro_rules! hexpire_command {
    ($ty:ident, $name:literal, $seconds:literal, $absolute:literal) => {
        #[derive(Debug)]
        pub struct $ty(ExpireArgs);

        impl Command for $ty {
            fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
                Ok($ty(ExpireArgs::parse(args)))
            }

            fn apply(self, cx: &mut Ctx<'_>) -> Reply {
                self.0.apply(cx, $name, $seconds, $absolute)
            }
        }
    };
}

hexpire_command!(HExpire, "hexpire", true, false);
hexpire_command!(HPExpire, "hpexpire", false, false);
hexpire_command!(HExpireAt, "hexpireat", true, true);
hexpire_command!(HPExpireAt, "hpexpireat", false, true);

/// The arguments of HTTL and relatives, and of HPERSIST: `key FIELDS numfields field ...`.
#[derive(Debug)]
pub struct FieldArgs(Bytes, Vec<Bytes>);

impl FieldArgs {
    fn parse(args: &mut Parse) -> FieldArgs {
        let key = args.try_next().unwrap_or_default();
        FieldArgs(key, std::iter::from_fn(|| args.try_next()).collect())
    }
}

/// What HTTL and relatives report of a field's deadline `at` at `now`.
#[derive(Clone, Copy, Debug)]
enum Report {
    Seconds,
    Millis,
    UnixSeconds,
    UnixMillis,
}

fn report(what: Report, at: i64, now: i64) -> i64 {
    match what {
        // Rounded up, as Redis does.
        Report::Seconds => (at + 999 - now) / 1000,
        Report::Millis => at - now,
        Report::UnixSeconds => (at + 999) / 1000,
        Report::UnixMillis => at,
    }
}

fn ttl_apply(args: FieldArgs, cx: &mut Ctx<'_>, what: Report) -> Reply {
    let FieldArgs(key, rest) = args;
    check_type(cx, &key)?;
    let fields = fields_block(&rest, 0)?;
    let now = now_millis();
    cx.read([&key[..]], |t| {
        let hash = match t.get(&key) {
            Some(Value::Hash(h)) => Some(h),
            _ => None,
        };
        let codes = fields
            .iter()
            .map(
                |f| match hash.map_or(FieldTtl::Missing, |h| h.field_ttl(f)) {
                    FieldTtl::Missing => NO_FIELD,
                    FieldTtl::Persistent => NO_TTL,
                    FieldTtl::At(at) if at < now => NO_FIELD,
                    FieldTtl::At(at) => report(what, at, now),
                },
            )
            .collect();
        integers(codes)
    })
}

macro_rules! httl_command {
    ($ty:ident, $what:expr) => {
        #[derive(Debug)]
        pub struct $ty(FieldArgs);

        impl Command for $ty {
            fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
                Ok($ty(FieldArgs::parse(args)))
            }

            fn apply(self, cx: &mut Ctx<'_>) -> Reply {
                ttl_apply(self.0, cx, $what)
            }
        }
    };
}

httl_command!(HTtl, Report::Seconds);
httl_command!(HPTtl, Report::Millis);
httl_command!(HExpireTime, Report::UnixSeconds);
httl_command!(HPExpireTime, Report::UnixMillis);

#[derive(Debug)]
pub struct HPersist(FieldArgs);

impl Command for HPersist {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HPersist(FieldArgs::parse(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let FieldArgs(key, rest) = self.0;
        check_type(cx, &key)?;
        let fields = fields_block(&rest, 0)?;
        let codes = cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                let Some(Value::Hash(h)) = e.get() else {
                    return vec![NO_FIELD; fields.len()];
                };
                let mut codes: Vec<i64> = fields
                    .iter()
                    .map(|f| match h.field_ttl(f) {
                        FieldTtl::Missing => NO_FIELD,
                        FieldTtl::Persistent => NO_TTL,
                        FieldTtl::At(_) => SET,
                    })
                    .collect();
                if codes.contains(&SET) {
                    if let Some(Ok(h)) = e.get_mut().map(Value::as_hash_mut) {
                        for (f, code) in fields.iter().zip(codes.iter_mut()) {
                            // A field named twice is persisted once; then it has no TTL.
                            if *code == SET && !h.persist_field(f) {
                                *code = NO_TTL;
                            }
                        }
                    }
                }
                codes
            })
        })?;
        Ok(integers(codes))
    }
}

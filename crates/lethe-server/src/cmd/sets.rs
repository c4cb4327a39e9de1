//! Set commands, changing the stored set in place (see [`crate::keyspace::Set`]): SADD on a
//! set of any size costs what it adds, under the key's shard lock. The multi-key commands
//! (SMOVE, SINTERSTORE, ...) hold all of their keys' locks at once, so each is one atomic step
//! to every other client.
//!
//! Sets are unordered: replies that list members come in the representation's order (ascending
//! for an intset, insertion order for a listpack), which may differ from Redis's for a table.

use super::keys::parse_cursor;
use super::strings::put;
use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::frame::Frame;
use crate::keyspace::{Set, Txn, Value};
use crate::parse::{Parse, parse_int};
use crate::state::{ServerState, refused};
use bytes::Bytes;
use lethe::{InsertOptions, pattern::Glob};
use std::borrow::Cow;

/// The set at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
fn get_set<'t>(t: &'t Txn<'_, '_>, name: &[u8]) -> Result<Option<&'t Set>, CommandError> {
    t.get(name).map(Value::as_set).transpose()
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

/// A member as a reply: an integer's digits (formatted for the reply) are taken, not copied.
fn member(m: Cow<'_, [u8]>) -> Frame {
    match m {
        Cow::Owned(v) => Frame::Bulk(v.into()),
        Cow::Borrowed(b) => bulk(b),
    }
}

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

fn keys_of(keys: &[Bytes]) -> impl Iterator<Item = &[u8]> {
    keys.iter().map(|k| &k[..])
}

/// Adds `members` to the set at `key`, creating it; returns how many were new. A set that
/// gains nothing is not written (no invalidation, no new version).
fn add_members(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    key: &[u8],
    members: &[Bytes],
) -> Result<i64, CommandError> {
    t.compute(key, |e| {
        if let Some(v) = e.get() {
            let set = v.as_set()?;
            if members.iter().all(|m| set.contains(m)) {
                return Ok(0);
            }
            let extra = set.growth_bound(members.iter().map(|m| &m[..]));
            state.check_grows(e.key(), v, extra)?;
        }
        match e.get_mut() {
            Some(v) => {
                let set = v.as_set_mut()?;
                Ok(members.iter().filter(|m| set.insert(m)).count() as i64)
            }
            None => {
                let set = Set::from_members(keys_of(members));
                let added = set.len() as i64;
                put(state, e, Value::Set(Box::new(set)))?;
                Ok(added)
            }
        }
    })
}

#[derive(Debug)]
pub struct SAdd(Bytes, Vec<Bytes>);

impl Command for SAdd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SAdd(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let added = cx.write([&self.0[..]], |t| add_members(state, t, &self.0, &self.1))??;
        Ok(Frame::Integer(added))
    }
}

#[derive(Debug)]
pub struct SRem(Bytes, Vec<Bytes>);

impl Command for SRem {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SRem(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let removed = cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                match e.get() {
                    None => return Ok(0),
                    Some(v) => {
                        if !self
                            .1
                            .iter()
                            .any(|m| v.as_set().is_ok_and(|s| s.contains(m)))
                        {
                            v.as_set()?;
                            return Ok(0);
                        }
                    }
                }
                let Some(Value::Set(set)) = e.get_mut() else {
                    return Ok(0);
                };
                let removed = self.1.iter().filter(|m| set.remove(m)).count();
                if set.is_empty() {
                    e.remove();
                }
                Ok::<_, CommandError>(removed as i64)
            })
        })??;
        Ok(Frame::Integer(removed))
    }
}

#[derive(Debug)]
pub struct SMembers(Bytes);

impl Command for SMembers {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SMembers(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Set(
                get_set(t, &self.0)?.map_or_else(Vec::new, |s| s.iter().map(member).collect()),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct SIsMember(Bytes, Bytes);

impl Command for SIsMember {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SIsMember(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(bool_reply(
                get_set(t, &self.0)?.is_some_and(|s| s.contains(&self.1)),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct SMIsMember(Bytes, Vec<Bytes>);

impl Command for SMIsMember {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SMIsMember(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let set = get_set(t, &self.0)?;
            Ok(Frame::Array(
                self.1
                    .iter()
                    .map(|m| bool_reply(set.is_some_and(|s| s.contains(m))))
                    .collect(),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct SCard(Bytes);

impl Command for SCard {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SCard(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Integer(
                get_set(t, &self.0)?.map_or(0, |s| s.len() as i64),
            ))
        })?
    }
}

/// The optional count of SPOP and SRANDMEMBER (a third argument is a syntax error).
fn optional_count(args: &mut Parse) -> Result<Option<Bytes>, CommandError> {
    let count = args.try_next();
    if args.remaining() > 0 {
        return Err(CommandError::syntax());
    }
    Ok(count)
}

#[derive(Debug)]
pub struct SPop(Bytes, Option<Bytes>);

impl Command for SPop {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SPop(args.next_bytes()?, optional_count(args)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let count = match &self.1 {
            None => None,
            Some(raw) => {
                let n = parse_int(raw)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?;
                Some(n as u64)
            }
        };
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let Some(v) = e.get() else {
                    return Ok(count.map_or(Frame::Null, |_| Frame::Set(Vec::new())));
                };
                v.as_set()?;
                if count == Some(0) {
                    return Ok(Frame::Set(Vec::new()));
                }
                let Some(Value::Set(set)) = e.get_mut() else {
                    return Ok(Frame::Null);
                };
                let reply = match count {
                    None => bulk(&set.pop_random().expect("sets are never empty")),
                    Some(n) if n >= set.len() as u64 => {
                        Frame::Set(set.iter().map(member).collect())
                    }
                    Some(n) => Frame::Set(
                        (0..n)
                            .filter_map(|_| set.pop_random())
                            .map(|m| Frame::Bulk(m.into()))
                            .collect(),
                    ),
                };
                let emptied = match count {
                    Some(n) => n >= set.len() as u64,
                    None => set.is_empty(),
                };
                if emptied {
                    e.remove();
                }
                Ok::<_, CommandError>(reply)
            })
        })?
    }
}

/// The most members SRANDMEMBER returns with repetitions (a negative count): a reply is built
/// in memory, so a count of billions is refused rather than exhausting it.
const MAX_RANDOM_REPLY: u64 = 1 << 27;

#[derive(Debug)]
pub struct SRandMember(Bytes, Option<Bytes>);

impl Command for SRandMember {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SRandMember(args.next_bytes()?, optional_count(args)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let count = match &self.1 {
            None => None,
            Some(raw) => {
                let n = parse_int(raw).ok_or_else(CommandError::not_integer)?;
                if n == i64::MIN {
                    return Err(CommandError::err(&format!(
                        "value is out of range, value must between {} and {}",
                        -i64::MAX,
                        i64::MAX
                    )));
                }
                Some(n)
            }
        };
        cx.read([&self.0[..]], |t| {
            let set = get_set(t, &self.0)?;
            let Some(n) = count else {
                return Ok(set.and_then(|s| s.random()).map_or(Frame::Null, member));
            };
            let Some(set) = set else {
                return Ok(Frame::Array(Vec::new()));
            };
            if n == 0 {
                return Ok(Frame::Array(Vec::new()));
            }
            if n < 0 {
                let want = n.unsigned_abs();
                if want > MAX_RANDOM_REPLY {
                    return Err(CommandError::err("value is out of range"));
                }
                return Ok(Frame::Array(
                    (0..want).filter_map(|_| set.random()).map(member).collect(),
                ));
            }
            let n = n as u64;
            if n >= set.len() as u64 {
                return Ok(Frame::Array(set.iter().map(member).collect()));
            }
            // Distinct members: a partial Fisher-Yates shuffle of the indices.
            let mut idx: Vec<usize> = (0..set.len()).collect();
            let n = n as usize;
            for i in 0..n {
                let j = fastrand::usize(i..idx.len());
                idx.swap(i, j);
            }
            Ok(Frame::Array(
                idx[..n]
                    .iter()
                    .filter_map(|&i| set.get_index(i))
                    .map(member)
                    .collect(),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct SMove(Bytes, Bytes, Bytes);

impl Command for SMove {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SMove(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let SMove(src, dst, member) = &self;
        let state = cx.state;
        cx.write([&src[..], &dst[..]], |t| {
            let Some(from) = t.get(src) else {
                return Ok(Frame::Integer(0));
            };
            let from = from.as_set()?;
            if let Some(to) = t.get(dst) {
                to.as_set()?;
            }
            if src == dst || !from.contains(member) {
                return Ok(bool_reply(src == dst && from.contains(member)));
            }
            t.compute(src, |e| {
                if let Some(Value::Set(set)) = e.get_mut() {
                    set.remove(member);
                    if set.is_empty() {
                        e.remove();
                    }
                }
            });
            add_members(state, t, dst, std::slice::from_ref(member))?;
            Ok(Frame::Integer(1))
        })?
    }
}

/// SINTER, SUNION or SDIFF.
#[derive(Clone, Copy, Debug)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The sets at `keys` (missing ones empty), every one checked for its type first, as Redis.
fn load<'t>(t: &'t Txn<'_, '_>, keys: &[Bytes]) -> Result<Vec<Option<&'t Set>>, CommandError> {
    keys.iter().map(|k| get_set(t, k)).collect()
}

/// The members of the result of `op` over `sets`, stopping after `limit` (0: all).
fn combine<'t>(op: Op, sets: &[Option<&'t Set>], limit: usize) -> Vec<Cow<'t, [u8]>> {
    let full = |out: &Vec<Cow<'t, [u8]>>| limit != 0 && out.len() >= limit;
    let mut out = Vec::new();
    match op {
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return out;
            }
            let mut sets: Vec<&Set> = sets.iter().map(|s| s.expect("checked")).collect();
            sets.sort_by_key(|s| s.len());
            let (smallest, others) = sets.split_first().expect("one key at least");
            for m in smallest.iter() {
                if others.iter().all(|s| s.contains(&m)) {
                    out.push(m);
                    if full(&out) {
                        break;
                    }
                }
            }
        }
        Op::Union => {
            let mut seen = Set::new();
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    if seen.insert(&m) {
                        out.push(m);
                    }
                }
            }
        }
        Op::Diff => {
            let Some((Some(first), others)) = sets.split_first() else {
                return out;
            };
            for m in first.iter() {
                if !others.iter().flatten().any(|s| s.contains(&m)) {
                    out.push(m);
                }
            }
        }
    }
    out
}

#[derive(Debug)]
pub struct SetOp<const OP: u8>(Vec<Bytes>);

fn op_of(code: u8) -> Op {
    match code {
        0 => Op::Inter,
        1 => Op::Union,
        _ => Op::Diff,
    }
}

impl<const OP: u8> Command for SetOp<OP> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetOp(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read(keys_of(&self.0), |t| {
            let sets = load(t, &self.0)?;
            let members = combine(op_of(OP), &sets, 0);
            // A union or difference replies in the order of the set it makes (ascending
            // integers when they stay an intset), as Redis builds one too.
            let reply = match op_of(OP) {
                Op::Inter => members.iter().map(|m| bulk(m)).collect(),
                _ => Set::from_members(members.iter().map(|m| &**m))
                    .iter()
                    .map(member)
                    .collect(),
            };
            Ok(Frame::Set(reply))
        })?
    }
}

/// SINTERSTORE (`OP` 0), SUNIONSTORE (1), SDIFFSTORE (2).
#[derive(Debug)]
pub struct SetOpStore<const OP: u8>(Bytes, Vec<Bytes>);

impl<const OP: u8> Command for SetOpStore<OP> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetOpStore(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let dst = &self.0;
        let names = std::iter::once(&dst[..]).chain(keys_of(&self.1));
        cx.write(names, |t| {
            let result = {
                let sets = load(t, &self.1)?;
                let members = combine(op_of(OP), &sets, 0);
                Set::from_members(members.iter().map(|m| &**m))
            };
            if result.is_empty() {
                t.delete(dst);
                return Ok(Frame::Integer(0));
            }
            let len = result.len() as i64;
            let value = Value::Set(Box::new(result));
            state.check_fits(&t.key(dst), &value)?;
            t.insert(dst, value, &InsertOptions::new())
                .map_err(refused)?;
            Ok(Frame::Integer(len))
        })?
    }
}

#[derive(Debug)]
pub struct SInterCard(Vec<Bytes>, usize);

/// LMPOP-style `numkeys key...`: the keys, with Redis's errors for a bad count.
pub(super) fn numkeys(args: &mut Parse, zero: &'static str) -> Result<Vec<Bytes>, CommandError> {
    let n = parse_int(&args.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CommandError::err(zero))?;
    if n as u64 > args.remaining() as u64 {
        return Err(CommandError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    (0..n).map(|_| args.next_bytes()).collect()
}

impl Command for SInterCard {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let keys = numkeys(args, "numkeys should be greater than 0")?;
        let mut limit = 0;
        while let Some(opt) = args.try_next() {
            if opt.eq_ignore_ascii_case(b"LIMIT") && args.remaining() > 0 {
                let n = parse_int(&args.next_bytes()?)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| CommandError::err("LIMIT can't be negative"))?;
                limit = usize::try_from(n).unwrap_or(usize::MAX);
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(SInterCard(keys, limit))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read(keys_of(&self.0), |t| {
            let sets = load(t, &self.0)?;
            Ok(Frame::Integer(
                combine(Op::Inter, &sets, self.1).len() as i64
            ))
        })?
    }
}

#[derive(Debug)]
pub struct SScan(Bytes, u64, Vec<Bytes>);

impl Command for SScan {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let cursor =
            parse_cursor(&args.next_bytes()?).ok_or_else(|| CommandError::err("invalid cursor"))?;
        Ok(SScan(key, cursor, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let empty = || Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())]);
            // As Redis: a missing key answers before the options are read.
            let Some(set) = get_set(t, &self.0)? else {
                return Ok(empty());
            };
            let (mut count, mut pattern) = (10usize, None);
            let mut opts = self.2.iter();
            while let Some(opt) = opts.next() {
                let more = opts.len() > 0;
                if opt.eq_ignore_ascii_case(b"COUNT") && more {
                    let n = parse_int(opts.next().expect("more"))
                        .ok_or_else(CommandError::not_integer)?;
                    if n < 1 {
                        return Err(CommandError::syntax());
                    }
                    count = usize::try_from(n).unwrap_or(usize::MAX);
                } else if opt.eq_ignore_ascii_case(b"MATCH") && more {
                    pattern = Some(Glob::new(opts.next().expect("more")));
                } else {
                    return Err(CommandError::new(ErrorKind::Syntax, "ERR syntax error"));
                }
            }
            let (next, page) = set.scan(self.1, count);
            Ok(Frame::Array(vec![
                Frame::bulk(next.to_string()),
                Frame::Array(
                    page.iter()
                        .filter(|m| pattern.as_ref().is_none_or(|g| g.matches(m)))
                        .map(|m| bulk(m))
                        .collect(),
                ),
            ]))
        })?
    }
}

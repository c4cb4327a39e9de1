//! Operations over several sorted sets: ZUNION, ZINTER, ZDIFF, their STORE forms (WEIGHTS,
//! AGGREGATE SUM|MIN|MAX) and ZINTERCARD. Plain sets count as sorted sets whose members all
//! score 1, as in Redis.
//!
//! Every command holds all of its keys' locks at once (the destination's too), so each is one
//! atomic step to every other client. The inputs' types are checked before the options are
//! read, and the sources are combined smallest first, in Redis 7.0's order, so that sums of
//! floating-point scores round as Redis's do.

use super::zset_range::store;
use super::zsets::{parse_score, scored};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{Set, SmallBytes, Txn, Value, Zset};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::HashMap;

/// An input: a sorted set, a plain set (scores 1), or nothing.
#[derive(Clone, Copy)]
enum Src<'t> {
    Missing,
    Zset(&'t Zset),
    Set(&'t Set),
}

impl<'t> Src<'t> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Zset(z) => z.len(),
            Src::Set(s) => s.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Zset(z) => z.score(m),
            Src::Set(s) => s.contains(m).then_some(1.0),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (Cow<'t, [u8]>, f64)> + 't> {
        match *self {
            Src::Missing => Box::new(std::iter::empty()),
            Src::Zset(z) => Box::new(z.iter().map(|(m, s)| (Cow::Borrowed(m), s))),
            Src::Set(s) => Box::new(s.iter().map(|m| (m, 1.0))),
        }
    }

    fn same(&self, other: &Src<'_>) -> bool {
        match (self, other) {
            (Src::Zset(a), Src::Zset(b)) => std::ptr::eq(*a, *b),
            (Src::Set(a), Src::Set(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

fn load<'t>(t: &'t Txn<'_, '_>, keys: &[Bytes]) -> Result<Vec<Src<'t>>, CommandError> {
    keys.iter()
        .map(|k| match t.get(k) {
            None => Ok(Src::Missing),
            Some(Value::Zset(z)) => Ok(Src::Zset(z)),
            Some(Value::Set(s)) => Ok(Src::Set(s)),
            Some(_) => Err(CommandError::wrong_type()),
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, Debug)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: a sum of opposite infinities is 0, not NaN.
fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// `numkeys key...` of these commands, with Redis's errors naming `cmd`.
fn numkeys(args: &mut Parse, cmd: &str) -> Result<Vec<Bytes>, CommandError> {
    let n = parse_int(&args.next_bytes()?).ok_or_else(CommandError::not_integer)?;
    if n < 1 {
        return Err(CommandError::err(&format!(
            "at least 1 input key is needed for '{cmd}' command"
        )));
    }
    if n as u64 > args.remaining() as u64 {
        return Err(CommandError::syntax());
    }
    (0..n).map(|_| args.next_bytes()).collect()
}

/// The options after the keys, read once the keys' types are known to be right.
#[derive(Debug)]
struct Options {
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
}

fn options(op: Op, nkeys: usize, raw: &[Bytes], store: bool) -> Result<Options, CommandError> {
    let mut o = Options {
        weights: vec![1.0; nkeys],
        aggregate: Aggregate::Sum,
        withscores: false,
    };
    let mut i = 0;
    while i < raw.len() {
        let left = raw.len() - i;
        let opt = &raw[i];
        if op != Op::Diff && left > nkeys && opt.eq_ignore_ascii_case(b"WEIGHTS") {
            for (w, arg) in o.weights.iter_mut().zip(&raw[i + 1..]) {
                *w = parse_score(arg)
                    .ok_or_else(|| CommandError::err("weight value is not a float"))?;
            }
            i += 1 + nkeys;
        } else if op != Op::Diff && left >= 2 && opt.eq_ignore_ascii_case(b"AGGREGATE") {
            let how = &raw[i + 1];
            o.aggregate = if how.eq_ignore_ascii_case(b"SUM") {
                Aggregate::Sum
            } else if how.eq_ignore_ascii_case(b"MIN") {
                Aggregate::Min
            } else if how.eq_ignore_ascii_case(b"MAX") {
                Aggregate::Max
            } else {
                return Err(CommandError::syntax());
            };
            i += 2;
        } else if !store && opt.eq_ignore_ascii_case(b"WITHSCORES") {
            o.withscores = true;
            i += 1;
        } else {
            return Err(CommandError::syntax());
        }
    }
    Ok(o)
}

/// The result of `op` over `srcs` (weighted as `o` says): distinct members with their scores,
/// in no particular order. `limit` stops an intersection early (0: no limit).
fn combine(op: Op, srcs: &[Src<'_>], o: &Options, limit: usize) -> Vec<(SmallBytes, f64)> {
    let weighted = |w: f64, s: f64| {
        let v = w * s;
        if v.is_nan() { 0.0 } else { v }
    };
    let mut order: Vec<(Src<'_>, f64)> = srcs.iter().copied().zip(o.weights.clone()).collect();
    let mut out = Vec::new();
    match op {
        Op::Union => {
            order.sort_by_key(|(s, _)| s.len());
            let mut acc: HashMap<SmallBytes, f64> = HashMap::new();
            let mut keys: Vec<SmallBytes> = Vec::new();
            for (src, w) in &order {
                for (m, s) in src.iter() {
                    let v = weighted(*w, s);
                    match acc.get_mut(&*m) {
                        Some(t) => aggregate(t, v, o.aggregate),
                        None => {
                            let m = SmallBytes::new(&m);
                            keys.push(m.clone());
                            acc.insert(m, v);
                        }
                    }
                }
            }
            out = keys
                .into_iter()
                .map(|m| {
                    let s = acc[&m];
                    (m, s)
                })
                .collect();
        }
        Op::Inter => {
            order.sort_by_key(|(s, _)| s.len());
            let Some(((first, w0), rest)) = order.split_first() else {
                return out;
            };
            if first.len() == 0 {
                return out;
            }
            'members: for (m, s) in first.iter() {
                let mut score = weighted(*w0, s);
                for (src, w) in rest {
                    let value = if src.same(first) {
                        s * w
                    } else {
                        match src.score(&m) {
                            Some(v) => v * w,
                            None => continue 'members,
                        }
                    };
                    aggregate(&mut score, value, o.aggregate);
                }
                out.push((SmallBytes::new(&m), score));
                if limit != 0 && out.len() >= limit {
                    break;
                }
            }
        }
        Op::Diff => {
            let Some((first, rest)) = srcs.split_first() else {
                return out;
            };
            for (m, s) in first.iter() {
                if !rest.iter().any(|r| r.score(&m).is_some()) {
                    out.push((SmallBytes::new(&m), s));
                }
            }
        }
    }
    out
}

fn op_of(code: u8) -> (Op, &'static str, &'static str) {
    match code {
        0 => (Op::Union, "zunion", "zunionstore"),
        1 => (Op::Inter, "zinter", "zinterstore"),
        _ => (Op::Diff, "zdiff", "zdiffstore"),
    }
}

/// ZUNION (`OP` 0), ZINTER (1), ZDIFF (2).
#[derive(Debug)]
pub struct ZSetOp<const OP: u8>(Vec<Bytes>, Vec<Bytes>);

impl<const OP: u8> Command for ZSetOp<OP> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let keys = numkeys(args, op_of(OP).1)?;
        Ok(ZSetOp(
            keys,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let proto = cx.session.protocol;
        let op = op_of(OP).0;
        cx.read(self.0.iter().map(|k| &k[..]), |t| {
            let srcs = load(t, &self.0)?;
            let o = options(op, self.0.len(), &self.1, false)?;
            let result = Zset::from_items(combine(op, &srcs, &o, 0));
            let items = result.iter();
            Ok(Frame::Array(if o.withscores {
                scored(
                    items.map(|(m, s)| (Bytes::copy_from_slice(m), s)),
                    proto,
                    true,
                )
            } else {
                items
                    .map(|(m, _)| Frame::Bulk(Bytes::copy_from_slice(m)))
                    .collect()
            }))
        })?
    }
}

/// ZUNIONSTORE (`OP` 0), ZINTERSTORE (1), ZDIFFSTORE (2).
#[derive(Debug)]
pub struct ZSetOpStore<const OP: u8>(Bytes, Vec<Bytes>, Vec<Bytes>);

impl<const OP: u8> Command for ZSetOpStore<OP> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let dst = args.next_bytes()?;
        let keys = numkeys(args, op_of(OP).2)?;
        Ok(ZSetOpStore(
            dst,
            keys,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let op = op_of(OP).0;
        let ZSetOpStore(dst, keys, raw) = &self;
        let names = std::iter::once(&dst[..]).chain(keys.iter().map(|k| &k[..]));
        cx.write(names, |t| {
            let items = {
                let srcs = load(t, keys)?;
                let o = options(op, keys.len(), raw, true)?;
                combine(op, &srcs, &o, 0)
            };
            store(state, t, dst, items)
        })?
    }
}

#[derive(Debug)]
pub struct ZInterCard(Vec<Bytes>, Vec<Bytes>);

impl Command for ZInterCard {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let keys = numkeys(args, "zintercard")?;
        Ok(ZInterCard(
            keys,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read(self.0.iter().map(|k| &k[..]), |t| {
            let srcs = load(t, &self.0)?;
            let mut limit = 0;
            let mut raw = self.1.iter();
            while let Some(opt) = raw.next() {
                if opt.eq_ignore_ascii_case(b"LIMIT") && raw.len() > 0 {
                    let n = parse_int(raw.next().expect("checked"))
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| CommandError::err("LIMIT can't be negative"))?;
                    limit = usize::try_from(n).unwrap_or(usize::MAX);
                } else {
                    return Err(CommandError::syntax());
                }
            }
            let o = Options {
                weights: vec![1.0; srcs.len()],
                aggregate: Aggregate::Sum,
                withscores: false,
            };
            Ok(Frame::Integer(
                combine(Op::Inter, &srcs, &o, limit).len() as i64
            ))
        })?
    }
}

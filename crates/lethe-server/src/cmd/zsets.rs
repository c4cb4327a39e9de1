//! Sorted set commands on single keys (ZADD, ZINCRBY, ZREM, ZSCORE, ZRANK, ZRANDMEMBER, ZSCAN),
//! changing the stored [`Zset`] in place under the key's shard lock, and what the family's
//! other modules share (score parsing, replies of scored members); the pops and their blocking
//! forms are in `zset_pops`, the range commands in `zset_range`, the multi-set operations in
//! `zset_ops`. The family's COMMAND rows are at the end ([`ZSETS`]).
//!
//! Scores are parsed as Redis 7.0 parses them (`strtod` over the whole argument, NaN and
//! out-of-range refused) and printed as it prints them ([`crate::frame::format_double`]).

use super::command::{Doc, KeySpec, acl, f, ks};
use super::keys::parse_cursor;
use super::strings::put;
use super::{Command, CommandError, Ctx, ErrorKind, Reply, zset_ops, zset_pops, zset_range};
use crate::frame::{Frame, Protocol, format_double};
use crate::keyspace::{Txn, Value, Zset};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;
use lethe::pattern::Glob;

/// The sorted set at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
pub(super) fn get_zset<'t>(
    t: &'t Txn<'_, '_>,
    name: &[u8],
) -> Result<Option<&'t Zset>, CommandError> {
    t.get(name).map(Value::as_zset).transpose()
}

pub(super) fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

/// C's `isspace`.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A C99 hexadecimal float (`0x1.8p3`) without its sign, as `strtod` reads one.
fn hex_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    let (digits, exp) = match body.find(['p', 'P']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int.chars().chain(frac.chars()) {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let shift = exp.saturating_sub(4 * i32::try_from(frac.len()).ok()?);
    Some(value * 2f64.powi(shift))
}

/// `strtod` over all of `s`: the value and whether it was out of range (`ERANGE`: too large
/// for a double, or a nonzero number rounding to zero). `None` if `s` is not all a number.
/// With `lenient`, leading spaces are skipped and an empty string reads as 0, as in Redis's
/// range parsing, which checks only where `strtod` stopped.
fn strtod(s: &[u8], lenient: bool) -> Option<(f64, bool)> {
    if lenient && s.is_empty() {
        return Some((0.0, false));
    }
    let start = if lenient {
        s.iter().position(|&b| !is_c_space(b))?
    } else {
        0
    };
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    if unsigned.starts_with(|c: char| !c.is_ascii_alphanumeric() && c != '.') {
        return None;
    }
    let value = match hex_float(unsigned) {
        Some(v) => {
            if negative {
                -v
            } else {
                v
            }
        }
        None if unsigned.starts_with("0x") || unsigned.starts_with("0X") => return None,
        None => text.parse::<f64>().ok()?,
    };
    let literal_inf = unsigned.starts_with(['i', 'I']);
    let mantissa = unsigned.split(['e', 'E']).next().unwrap_or("");
    let out_of_range = (value.is_infinite() && !literal_inf)
        || (value == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)));
    Some((value, out_of_range))
}

/// A score argument (ZADD, ZINCRBY): Redis's `getDoubleFromObject`.
pub(super) fn parse_score(b: &[u8]) -> Option<f64> {
    match strtod(b, false) {
        Some((v, false)) if !v.is_nan() => Some(v),
        _ => None,
    }
}

/// `value is not a valid float`.
pub(super) fn not_float() -> CommandError {
    CommandError::new(ErrorKind::NotANumber, "ERR value is not a valid float")
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ScoreBound {
    pub(super) value: f64,
    pub(super) exclusive: bool,
}

impl ScoreBound {
    /// Redis's `zslParseRange` for one end (it does not check `strtod`'s range errors).
    pub(super) fn parse(b: &[u8]) -> Option<ScoreBound> {
        let (rest, exclusive) = match b.strip_prefix(b"(") {
            Some(rest) => (rest, true),
            None => (b, false),
        };
        let (value, _) = strtod(rest, true)?;
        (!value.is_nan()).then_some(ScoreBound { value, exclusive })
    }

    /// Whether `score` is below this bound as a minimum (before the range starts).
    pub(super) fn below_min(&self, score: f64) -> bool {
        score < self.value || (self.exclusive && score == self.value)
    }

    /// Whether `score` is within this bound as a maximum.
    pub(super) fn within_max(&self, score: f64) -> bool {
        score < self.value || (!self.exclusive && score == self.value)
    }
}

/// ZADD's flags (GEOADD uses NX, XX and CH).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct AddOpts {
    pub(super) nx: bool,
    pub(super) xx: bool,
    pub(super) gt: bool,
    pub(super) lt: bool,
    pub(super) ch: bool,
    pub(super) incr: bool,
}

/// What ZADD does to one member: its new score, or `None` if it is left alone.
fn plan(opts: AddOpts, current: Option<f64>, score: f64) -> Result<Option<f64>, CommandError> {
    match current {
        None if opts.xx => Ok(None),
        None => Ok(Some(score)),
        Some(_) if opts.nx => Ok(None),
        Some(cur) => {
            let new = if opts.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(CommandError::err("resulting score is not a number (NaN)"));
            }
            if (opts.lt && new >= cur) || (opts.gt && new <= cur) {
                return Ok(None);
            }
            Ok(Some(new))
        }
    }
}

/// The outcome of a ZADD: members added, members whose score changed, and (for INCR) the
/// member's score after the call if it was added or changed.
#[derive(Debug, Default)]
pub(super) struct Added {
    pub(super) added: i64,
    pub(super) updated: i64,
    pub(super) score: Option<f64>,
}

/// Applies `pairs` to the set at `key` as ZADD with `opts` does. A call that changes nothing
/// does not write the key (no new version, no invalidation).
pub(super) fn zadd(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    key: &[u8],
    opts: AddOpts,
    pairs: &[(f64, Bytes)],
) -> Result<Added, CommandError> {
    t.compute(key, |e| {
        let mut out = Added::default();
        match e.get() {
            Some(v) => {
                let z = v.as_zset()?;
                // Nothing changes unless some member changes against the stored state: the
                // first change of a sequence is always against it.
                let mut changes = false;
                for (score, m) in pairs {
                    let cur = z.score(m);
                    if let Some(new) = plan(opts, cur, *score)? {
                        changes |= cur != Some(new) || cur.is_none();
                        if opts.incr {
                            out.score = Some(new);
                        }
                    } else if opts.incr {
                        out.score = None;
                    }
                }
                if !changes {
                    return Ok(out);
                }
                let extra = z.growth_bound(pairs.iter().map(|(_, m)| &m[..]));
                state.check_grows(e.key(), v, extra)?;
            }
            None if opts.xx => return Ok(out),
            None => {}
        }
        let mut fresh = Zset::new();
        let z = match e.get_mut() {
            Some(v) => v.as_zset_mut()?,
            None => &mut fresh,
        };
        out = Added::default();
        for (score, m) in pairs {
            let cur = z.score(m);
            match plan(opts, cur, *score)? {
                Some(new) => {
                    match cur {
                        None => out.added += 1,
                        Some(c) if c != new => out.updated += 1,
                        // The same score: nothing to move.
                        Some(_) => {
                            out.score = Some(new);
                            continue;
                        }
                    }
                    z.insert(m, new);
                    out.score = Some(new);
                }
                None => out.score = None,
            }
        }
        if e.get().is_none() {
            put(state, e, Value::Zset(Box::new(fresh)))?;
        }
        Ok(out)
    })
}

#[derive(Debug)]
pub struct ZAdd(Bytes, AddOpts, Vec<(f64, Bytes)>);

impl Command for ZAdd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let mut rest: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        let mut o = AddOpts::default();
        let mut used = 0;
        for arg in &rest {
            let flag = match arg.to_ascii_uppercase().as_slice() {
                b"NX" => &mut o.nx,
                b"XX" => &mut o.xx,
                b"GT" => &mut o.gt,
                b"LT" => &mut o.lt,
                b"CH" => &mut o.ch,
                b"INCR" => &mut o.incr,
                _ => break,
            };
            *flag = true;
            used += 1;
        }
        let pairs = rest.split_off(used);
        if pairs.is_empty() || pairs.len() % 2 != 0 {
            return Err(CommandError::syntax());
        }
        if o.nx && o.xx {
            return Err(CommandError::err(
                "XX and NX options at the same time are not compatible",
            ));
        }
        // Any two of GT, LT and NX.
        if [o.gt, o.lt, o.nx].iter().filter(|b| **b).count() > 1 {
            return Err(CommandError::err(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if o.incr && pairs.len() > 2 {
            return Err(CommandError::err(
                "INCR option supports a single increment-element pair",
            ));
        }
        let pairs = pairs
            .chunks(2)
            .map(|p| Ok((parse_score(&p[0]).ok_or_else(not_float)?, p[1].clone())))
            .collect::<Result<_, CommandError>>()?;
        Ok(ZAdd(key, o, pairs))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let ZAdd(key, opts, pairs) = &self;
        let out = cx.write([&key[..]], |t| zadd(state, t, key, *opts, pairs))??;
        Ok(if opts.incr {
            out.score.map_or(Frame::Null, Frame::Double)
        } else if opts.ch {
            Frame::Integer(out.added + out.updated)
        } else {
            Frame::Integer(out.added)
        })
    }
}

#[derive(Debug)]
pub struct ZIncrBy(Bytes, f64, Bytes);

impl Command for ZIncrBy {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let by = parse_score(&args.next_bytes()?).ok_or_else(not_float)?;
        Ok(ZIncrBy(key, by, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let opts = AddOpts {
            incr: true,
            ..AddOpts::default()
        };
        let pairs = [(self.1, self.2.clone())];
        let out = cx.write([&self.0[..]], |t| zadd(state, t, &self.0, opts, &pairs))??;
        Ok(out.score.map_or(Frame::Null, Frame::Double))
    }
}

#[derive(Debug)]
pub struct ZRem(Bytes, Vec<Bytes>);

impl Command for ZRem {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(ZRem(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let removed = cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let Some(v) = e.get() else { return Ok(0) };
                let z = v.as_zset()?;
                if !self.1.iter().any(|m| z.score(m).is_some()) {
                    return Ok(0);
                }
                let Some(Value::Zset(z)) = e.get_mut() else {
                    return Ok(0);
                };
                let n = self.1.iter().filter(|m| z.remove(m).is_some()).count();
                if z.is_empty() {
                    e.remove();
                }
                Ok::<_, CommandError>(n as i64)
            })
        })??;
        Ok(Frame::Integer(removed))
    }
}

#[derive(Debug)]
pub struct ZCard(Bytes);

impl Command for ZCard {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(ZCard(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Integer(
                get_zset(t, &self.0)?.map_or(0, |z| z.len() as i64),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct ZScore(Bytes, Bytes);

impl Command for ZScore {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(ZScore(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(get_zset(t, &self.0)?
                .and_then(|z| z.score(&self.1))
                .map_or(Frame::Null, Frame::Double))
        })?
    }
}

#[derive(Debug)]
pub struct ZMScore(Bytes, Vec<Bytes>);

impl Command for ZMScore {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(ZMScore(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            Ok(Frame::Array(
                self.1
                    .iter()
                    .map(|m| {
                        z.and_then(|z| z.score(m))
                            .map_or(Frame::Null, Frame::Double)
                    })
                    .collect(),
            ))
        })?
    }
}

/// ZRANK (`REV` 0) and ZREVRANK (1), with Redis 7.2's `WITHSCORE`.
#[derive(Debug)]
pub struct ZRank<const REV: u8>(Bytes, Bytes, bool);

impl<const REV: u8> Command for ZRank<REV> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (key, member) = (args.next_bytes()?, args.next_bytes()?);
        let with = match args.try_next() {
            None => false,
            Some(a) if a.eq_ignore_ascii_case(b"WITHSCORE") && args.remaining() == 0 => true,
            Some(_) => return Err(CommandError::syntax()),
        };
        Ok(ZRank(key, member, with))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let with = self.2;
        cx.read([&self.0[..]], |t| {
            let found = get_zset(t, &self.0)?.and_then(|z| {
                let rank = z.rank(&self.1)?;
                let rank = if REV == 1 { z.len() - 1 - rank } else { rank };
                Some((rank, z.score(&self.1)?))
            });
            Ok(match found {
                None if with => Frame::NullArray,
                None => Frame::Null,
                Some((rank, score)) if with => {
                    Frame::Array(vec![Frame::Integer(rank as i64), Frame::Double(score)])
                }
                Some((rank, _)) => Frame::Integer(rank as i64),
            })
        })?
    }
}

/// Members with their scores, as Redis replies them: flat pairs in RESP2, an array of pairs
/// in RESP3 (`pairs` false: a flat list either way, as ZPOPMIN without a count).
pub(super) fn scored(
    items: impl IntoIterator<Item = (Bytes, f64)>,
    proto: Protocol,
    pairs: bool,
) -> Vec<Frame> {
    let mut out = Vec::new();
    for (m, s) in items {
        if pairs && proto == Protocol::Resp3 {
            out.push(Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]));
        } else {
            out.push(Frame::Bulk(m));
            out.push(Frame::Double(s));
        }
    }
    out
}

/// The most members ZRANDMEMBER returns with repetitions (a negative count): a reply is built
/// in memory, so a count of billions is refused rather than exhausting it (as SRANDMEMBER).
const MAX_RANDOM_REPLY: u64 = 1 << 27;

#[derive(Debug)]
pub struct ZRandMember(Bytes, Option<(i64, bool)>);

impl Command for ZRandMember {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let Some(raw) = args.try_next() else {
            return Ok(ZRandMember(key, None));
        };
        let n = parse_int(&raw).ok_or_else(CommandError::not_integer)?;
        if n == i64::MIN {
            return Err(CommandError::err(&format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let with = match args.try_next() {
            None => false,
            Some(a) if a.eq_ignore_ascii_case(b"WITHSCORES") && args.remaining() == 0 => true,
            Some(_) => return Err(CommandError::syntax()),
        };
        Ok(ZRandMember(key, Some((n, with))))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let proto = cx.session.protocol;
        cx.read([&self.0[..]], |t| {
            let z = get_zset(t, &self.0)?;
            let Some((n, with)) = self.1 else {
                return Ok(z
                    .and_then(|z| z.get(fastrand::usize(..z.len())))
                    .map_or(Frame::Null, |(m, _)| bulk(m)));
            };
            let Some(z) = z else {
                return Ok(Frame::Array(Vec::new()));
            };
            let reply = |items: Vec<(&[u8], f64)>| {
                if with {
                    Frame::Array(scored(
                        items
                            .into_iter()
                            .map(|(m, s)| (Bytes::copy_from_slice(m), s)),
                        proto,
                        true,
                    ))
                } else {
                    Frame::Array(items.into_iter().map(|(m, _)| bulk(m)).collect())
                }
            };
            if n == 0 {
                return Ok(Frame::Array(Vec::new()));
            }
            if n < 0 {
                let want = n.unsigned_abs();
                if want > MAX_RANDOM_REPLY {
                    return Err(CommandError::err("value is out of range"));
                }
                let len = z.len();
                return Ok(reply(
                    (0..want)
                        .filter_map(|_| z.get(fastrand::usize(..len)))
                        .collect(),
                ));
            }
            let n = n as u64;
            if n >= z.len() as u64 {
                // The whole set, from the highest score down, as Redis 7.0 replies it.
                return Ok(reply(z.iter_from(z.len() - 1, true).collect()));
            }
            // Distinct members. A few of many: random ranks drawn until enough are distinct
            // (expected O(count)); a large share: a partial Fisher-Yates shuffle of the ranks.
            let n = n as usize;
            let len = z.len();
            let idx: Vec<usize> = if n * 4 <= len {
                let mut seen = std::collections::HashSet::with_capacity(n);
                let mut picked = Vec::with_capacity(n);
                while picked.len() < n {
                    let i = fastrand::usize(..len);
                    if seen.insert(i) {
                        picked.push(i);
                    }
                }
                picked
            } else {
                let mut all: Vec<usize> = (0..len).collect();
                for i in 0..n {
                    let j = fastrand::usize(i..len);
                    all.swap(i, j);
                }
                all.truncate(n);
                all
            };
            Ok(reply(idx.iter().filter_map(|&i| z.get(i)).collect()))
        })?
    }
}

#[derive(Debug)]
pub struct ZScan(Bytes, u64, Vec<Bytes>);

impl Command for ZScan {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let cursor =
            parse_cursor(&args.next_bytes()?).ok_or_else(|| CommandError::err("invalid cursor"))?;
        Ok(ZScan(
            key,
            cursor,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let empty = || Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())]);
            // As Redis: a missing key answers before the options are read.
            let Some(z) = get_zset(t, &self.0)? else {
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
                    return Err(CommandError::syntax());
                }
            }
            let (next, page) = z.scan(self.1, count);
            // Scores as strings: a scan replies with the stored text, never RESP3 doubles.
            let mut items = Vec::new();
            for (m, s) in page {
                if pattern.as_ref().is_none_or(|g| g.matches(m)) {
                    items.push(bulk(m));
                    items.push(Frame::bulk(format_double(s)));
                }
            }
            Ok(Frame::Array(vec![
                Frame::bulk(next.to_string()),
                Frame::Array(items),
            ]))
        })?
    }
}

// The family's rows, copied from Redis 7.0's command metadata, except ZRANK and ZREVRANK's
// arity: they take Redis 7.2's `WITHSCORE`, so they accept a fourth argument (-3).
super::command_table! {
    pub(super) ZSETS;
    "zadd" -4 ZAdd {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(log(N)) for each item added, where N is the number of elements in the sorted set.", "Add one or more members to a sorted set, or update its score if it already exists"),
    }
    "zincrby" 4 ZIncrBy {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(log(N)) where N is the number of elements in the sorted set.", "Increment the score of a member in a sorted set"),
    }
    "zrem" -3 ZRem {
        flags: f::WRITE | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", "Remove one or more members from a sorted set"),
    }
    "zcard" 2 ZCard {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(1)", "Get the number of members in a sorted set"),
    }
    "zcount" 4 zset_range::ZCount<0> {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Count the members in a sorted set with scores within the given values"),
    }
    "zlexcount" 4 zset_range::ZCount<1> {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.8.9", "O(log(N)) with N being the number of elements in the sorted set.", "Count the number of members in a sorted set between a given lexicographical range"),
    }
    "zscore" 3 ZScore {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(1)", "Get the score associated with the given member in a sorted set"),
    }
    "zmscore" -3 ZMScore {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(N) where N is the number of members being requested.", "Get the score associated with the given members in a sorted set"),
    }
    "zrank" -3 ZRank<0> {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(log(N))", "Determine the index of a member in a sorted set"),
    }
    "zrevrank" -3 ZRank<1> {
        flags: f::READONLY | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(log(N))", "Determine the index of a member in a sorted set, with scores ordered from high to low"),
    }
    "zrange" -4 zset_range::ZRange {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "Return a range of members in a sorted set"),
    }
    "zrangestore" -5 zset_range::ZRangeStore {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::range(ks::RO | ks::ACCESS, 2, 0, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", "Store a range of members from sorted set into another key"),
    }
    "zrangebyscore" -4 zset_range::ZRangeBy<0> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.0.5", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by score"),
    }
    "zrevrangebyscore" -4 zset_range::ZRangeBy<1> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by score, with scores ordered from high to low"),
    }
    "zrangebylex" -4 zset_range::ZRangeBy<2> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by lexicographical range"),
    }
    "zrevrangebylex" -4 zset_range::ZRangeBy<3> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."),
    }
    "zrevrange" -4 zset_range::ZRevRange {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", "Return a range of members in a sorted set, by index, with scores ordered from high to low"),
    }
    "zpopmin" -2 zset_pops::ZPop<0> {
        flags: f::WRITE | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with the lowest scores in a sorted set"),
    }
    "zpopmax" -2 zset_pops::ZPop<1> {
        flags: f::WRITE | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "5.0.0", "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with the highest scores in a sorted set"),
    }
    "bzpopmin" -3 zset_pops::BZPop<0> {
        flags: f::WRITE | f::NOSCRIPT | f::BLOCKING | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, -2, 1)],
        doc: Doc::new("sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available"),
    }
    "bzpopmax" -3 zset_pops::BZPop<1> {
        flags: f::WRITE | f::NOSCRIPT | f::BLOCKING | f::FAST,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, -2, 1)],
        doc: Doc::new("sorted-set", "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.", "Remove and return the member with the highest score from one or more sorted sets, or block until one is available"),
    }
    "zmpop" -4 zset_pops::ZMPop {
        flags: f::WRITE,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1, 1)],
        doc: Doc::new("sorted-set", "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with scores in a sorted set"),
    }
    "bzmpop" -5 zset_pops::BZMPop {
        flags: f::WRITE | f::BLOCKING,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RW | ks::ACCESS | ks::DELETE, 2, 0, 1, 1)],
        doc: Doc::new("sorted-set", "7.0.0", "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", "Remove and return members with scores in a sorted set or block until one is available"),
    }
    "zrandmember" -2 ZRandMember {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(N) where N is the number of elements returned", "Get one or multiple random elements from a sorted set"),
    }
    "zremrangebyscore" 4 zset_range::ZRemRange<0> {
        flags: f::WRITE,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "1.2.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set within the given scores"),
    }
    "zremrangebyrank" 4 zset_range::ZRemRange<1> {
        flags: f::WRITE,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set within the given indexes"),
    }
    "zremrangebylex" 4 zset_range::ZRemRange<2> {
        flags: f::WRITE,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.8.9", "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", "Remove all members in a sorted set between the given lexicographical range"),
    }
    "zunion" -3 zset_ops::ZSetOp<0> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RO | ks::ACCESS, 1, 0, 1, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "Add multiple sorted sets"),
    }
    "zinter" -3 zset_ops::ZSetOp<1> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RO | ks::ACCESS, 1, 0, 1, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "Intersect multiple sorted sets"),
    }
    "zdiff" -3 zset_ops::ZSetOp<2> {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RO | ks::ACCESS, 1, 0, 1, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "Subtract multiple sorted sets"),
    }
    "zunionstore" -4 zset_ops::ZSetOpStore<0> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::keynum(ks::RO | ks::ACCESS, 2, 0, 1, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", "Add multiple sorted sets and store the resulting sorted set in a new key"),
    }
    "zinterstore" -4 zset_ops::ZSetOpStore<1> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::keynum(ks::RO | ks::ACCESS, 2, 0, 1, 1)],
        doc: Doc::new("sorted-set", "2.0.0", "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", "Intersect multiple sorted sets and store the resulting sorted set in a new key"),
    }
    "zdiffstore" -4 zset_ops::ZSetOpStore<2> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::keynum(ks::RO | ks::ACCESS, 2, 0, 1, 1)],
        doc: Doc::new("sorted-set", "6.2.0", "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", "Subtract multiple sorted sets and store the resulting sorted set in a new key"),
    }
    "zintercard" -3 zset_ops::ZInterCard {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        keys: &[KeySpec::keynum(ks::RO | ks::ACCESS, 1, 0, 1, 1)],
        doc: Doc::new("sorted-set", "7.0.0", "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", "Intersect multiple sorted sets and return the cardinality of the result"),
    }
    "zscan" -3 ZScan {
        flags: f::READONLY,
        acl: acl::SORTEDSET,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("sorted-set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate sorted sets elements and associated scores"),
    }

}

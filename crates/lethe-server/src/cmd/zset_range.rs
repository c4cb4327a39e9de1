//! Sorted set ranges: ZRANGE in all its forms (by rank, score or member, reversed, with LIMIT
//! and WITHSCORES), the older ZRANGEBYSCORE / ZREVRANGE / ... spellings, ZRANGESTORE, ZCOUNT,
//! ZLEXCOUNT and the ZREMRANGEBY* removals.
//!
//! A range is resolved to ranks first ([`crate::keyspace::Zset::count_while`] finds where a
//! score or member bound falls in O(log n) on a large set), then only the elements asked for
//! are walked: a range of billions or a LIMIT past the end costs what the set holds.
//! Arguments are checked in Redis 7.0's order: options, then the range, then the key.

use super::zsets::{ScoreBound, bulk, get_zset, scored};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::{Frame, Protocol};
use crate::keyspace::{SmallBytes, Value, Zset};
use crate::parse::{Parse, parse_int};
use crate::state::refused;
use bytes::Bytes;
use lethe::InsertOptions;

/// One end of a member range: `-`, `+`, `[member` (inclusive), `(member` (exclusive).
#[derive(Clone, Debug)]
pub(super) enum LexBound {
    NegInf,
    PosInf,
    Incl(Bytes),
    Excl(Bytes),
}

impl LexBound {
    fn parse(b: &Bytes) -> Option<LexBound> {
        match b.first() {
            Some(b'-') if b.len() == 1 => Some(LexBound::NegInf),
            Some(b'+') if b.len() == 1 => Some(LexBound::PosInf),
            Some(b'[') => Some(LexBound::Incl(b.slice(1..))),
            Some(b'(') => Some(LexBound::Excl(b.slice(1..))),
            _ => None,
        }
    }

    fn below_min(&self, m: &[u8]) -> bool {
        match self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m < &x[..],
            LexBound::Excl(x) => m <= &x[..],
        }
    }

    fn within_max(&self, m: &[u8]) -> bool {
        match self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(x) => m <= &x[..],
            LexBound::Excl(x) => m < &x[..],
        }
    }
}

fn score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), CommandError> {
    match (ScoreBound::parse(min), ScoreBound::parse(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CommandError::err("min or max is not a float")),
    }
}

fn lex_range(min: &Bytes, max: &Bytes) -> Result<(LexBound, LexBound), CommandError> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(CommandError::err("min or max not valid string range item")),
    }
}

/// A parsed range.
#[derive(Clone, Debug)]
pub(super) enum Bounds {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// Redis's rank range over `len` elements (negative counts from the end): the first rank and
/// how many, or `None` when empty.
fn rank_span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, (end - start + 1) as usize))
}

impl Bounds {
    /// The ascending ranks `lo..hi` the range covers in `z`.
    fn ranks(&self, z: &Zset, rev: bool) -> (usize, usize) {
        match self {
            Bounds::Rank(start, end) => match rank_span(*start, *end, z.len()) {
                None => (0, 0),
                Some((first, n)) if rev => (z.len() - first - n, z.len() - first),
                Some((first, n)) => (first, first + n),
            },
            Bounds::Score(min, max) => (
                z.count_while(|s, _| min.below_min(s)),
                z.count_while(|s, _| max.within_max(s)),
            ),
            Bounds::Lex(min, max) => (
                z.count_while(|_, m| min.below_min(m)),
                z.count_while(|_, m| max.within_max(m)),
            ),
        }
    }

    /// The elements of the range in `z`, in the order asked for, after `limit` (offset,
    /// count: a negative offset gives nothing, a negative count everything).
    fn select<'z>(
        &self,
        z: &'z Zset,
        rev: bool,
        limit: Option<(i64, i64)>,
    ) -> Vec<(&'z [u8], f64)> {
        let (lo, hi) = self.ranks(z, rev);
        if hi <= lo {
            return Vec::new();
        }
        let n = hi - lo;
        let (skip, take) = match limit {
            None => (0, n),
            Some((offset, _)) if offset < 0 => return Vec::new(),
            Some((offset, count)) => {
                let skip = usize::try_from(offset).unwrap_or(usize::MAX).min(n);
                let left = n - skip;
                let take = if count < 0 {
                    left
                } else {
                    usize::try_from(count).unwrap_or(usize::MAX).min(left)
                };
                (skip, take)
            }
        };
        if take == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(take);
        if rev {
            out.extend(z.iter_from(hi - 1 - skip, true).take(take));
        } else {
            out.extend(z.iter_from(lo + skip, false).take(take));
        }
        out
    }
}

/// What a ZRANGE-family command asks for, once its options are read.
#[derive(Clone, Debug)]
pub(super) struct RangeArgs {
    bounds: Bounds,
    rev: bool,
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// The kind of range a command fixes (the older spellings), or `None` for ZRANGE's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

impl RangeArgs {
    /// Reads `start stop [options]` as Redis 7.0's `zrangeGenericCommand` does; `by` and `rev`
    /// are fixed by the older commands, chosen by options in ZRANGE and ZRANGESTORE.
    fn parse(
        args: &mut Parse,
        mut by: Option<By>,
        mut rev: Option<bool>,
        store: bool,
    ) -> Result<RangeArgs, CommandError> {
        let (first, second) = (args.next_bytes()?, args.next_bytes()?);
        let mut limit = None;
        let mut withscores = false;
        while let Some(opt) = args.try_next() {
            if !store && opt.eq_ignore_ascii_case(b"WITHSCORES") {
                withscores = true;
            } else if opt.eq_ignore_ascii_case(b"LIMIT") && args.remaining() >= 2 {
                let offset = args.next_int()?;
                let count = args.next_int()?;
                limit = Some((offset, count));
            } else if rev.is_none() && opt.eq_ignore_ascii_case(b"REV") {
                rev = Some(true);
            } else if by.is_none() && opt.eq_ignore_ascii_case(b"BYLEX") {
                by = Some(By::Lex);
            } else if by.is_none() && opt.eq_ignore_ascii_case(b"BYSCORE") {
                by = Some(By::Score);
            } else {
                return Err(CommandError::syntax());
            }
        }
        let by = by.unwrap_or(By::Rank);
        let rev = rev.unwrap_or(false);
        // Redis takes a LIMIT whose count is -1 as no LIMIT.
        if by == By::Rank && limit.is_some_and(|(_, count)| count != -1) {
            return Err(CommandError::err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if withscores && by == By::Lex {
            return Err(CommandError::err(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // Reversed score and member ranges are given as max, min.
        let (min, max) = if rev && by != By::Rank {
            (second, first)
        } else {
            (first, second)
        };
        let bounds = match by {
            By::Rank => {
                let start = parse_int(&min).ok_or_else(CommandError::not_integer)?;
                let end = parse_int(&max).ok_or_else(CommandError::not_integer)?;
                Bounds::Rank(start, end)
            }
            By::Score => {
                let (a, b) = score_range(&min, &max)?;
                Bounds::Score(a, b)
            }
            By::Lex => {
                let (a, b) = lex_range(&min, &max)?;
                Bounds::Lex(a, b)
            }
        };
        Ok(RangeArgs {
            bounds,
            rev,
            limit: if by == By::Rank { None } else { limit },
            withscores,
        })
    }

    fn reply(&self, z: Option<&Zset>, proto: Protocol) -> Frame {
        let Some(z) = z else {
            return Frame::Array(Vec::new());
        };
        let items = self.bounds.select(z, self.rev, self.limit);
        Frame::Array(if self.withscores {
            scored(
                items
                    .into_iter()
                    .map(|(m, s)| (Bytes::copy_from_slice(m), s)),
                proto,
                true,
            )
        } else {
            items.into_iter().map(|(m, _)| bulk(m)).collect()
        })
    }
}

fn run_range(cx: &mut Ctx<'_>, key: &Bytes, range: &RangeArgs) -> Reply {
    let proto = cx.session.protocol;
    cx.read([&key[..]], |t| Ok(range.reply(get_zset(t, key)?, proto)))?
}

#[derive(Debug)]
pub struct ZRange(Bytes, RangeArgs);

impl Command for ZRange {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(ZRange(key, RangeArgs::parse(args, None, None, false)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        run_range(cx, &self.0, &self.1)
    }
}

/// The older spellings: ZRANGEBYSCORE (`KIND` 0), ZREVRANGEBYSCORE (1), ZRANGEBYLEX (2),
/// ZREVRANGEBYLEX (3).
#[derive(Debug)]
pub struct ZRangeBy<const KIND: u8>(Bytes, RangeArgs);

impl<const KIND: u8> Command for ZRangeBy<KIND> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let by = if KIND < 2 { By::Score } else { By::Lex };
        let range = RangeArgs::parse(args, Some(by), Some(KIND % 2 == 1), false)?;
        Ok(ZRangeBy(key, range))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        run_range(cx, &self.0, &self.1)
    }
}

#[derive(Debug)]
pub struct ZRevRange(Bytes, RangeArgs);

impl Command for ZRevRange {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let range = RangeArgs::parse(args, Some(By::Rank), Some(true), false)?;
        Ok(ZRevRange(key, range))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        run_range(cx, &self.0, &self.1)
    }
}

/// Stores `items` at `dst` as a new sorted set (removing `dst` when there are none); replies
/// their count.
pub(super) fn store(
    state: &crate::state::ServerState,
    t: &mut crate::keyspace::Txn<'_, '_>,
    dst: &[u8],
    items: Vec<(SmallBytes, f64)>,
) -> Reply {
    if items.is_empty() {
        t.delete(dst);
        return Ok(Frame::Integer(0));
    }
    let len = items.len() as i64;
    let value = Value::Zset(Box::new(Zset::from_items(items)));
    state.check_fits(&t.key(dst), &value)?;
    t.insert(dst, value, &InsertOptions::new())
        .map_err(refused)?;
    Ok(Frame::Integer(len))
}

#[derive(Debug)]
pub struct ZRangeStore(Bytes, Bytes, RangeArgs);

impl Command for ZRangeStore {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (dst, src) = (args.next_bytes()?, args.next_bytes()?);
        Ok(ZRangeStore(
            dst,
            src,
            RangeArgs::parse(args, None, None, true)?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let ZRangeStore(dst, src, range) = &self;
        cx.write([&dst[..], &src[..]], |t| {
            let items: Vec<(SmallBytes, f64)> = match get_zset(t, src)? {
                None => Vec::new(),
                Some(z) => range
                    .bounds
                    .select(z, range.rev, range.limit)
                    .into_iter()
                    .map(|(m, s)| (SmallBytes::new(m), s))
                    .collect(),
            };
            store(state, t, dst, items)
        })?
    }
}

/// ZCOUNT (`LEX` 0) and ZLEXCOUNT (1).
#[derive(Debug)]
pub struct ZCount<const LEX: u8>(Bytes, Bounds);

impl<const LEX: u8> Command for ZCount<LEX> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let (min, max) = (args.next_bytes()?, args.next_bytes()?);
        let bounds = if LEX == 1 {
            let (a, b) = lex_range(&min, &max)?;
            Bounds::Lex(a, b)
        } else {
            let (a, b) = score_range(&min, &max)?;
            Bounds::Score(a, b)
        };
        Ok(ZCount(key, bounds))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let n = get_zset(t, &self.0)?.map_or(0, |z| {
                let (lo, hi) = self.1.ranks(z, false);
                hi.saturating_sub(lo)
            });
            Ok(Frame::Integer(n as i64))
        })?
    }
}

/// ZREMRANGEBYSCORE (`KIND` 0), ZREMRANGEBYRANK (1), ZREMRANGEBYLEX (2).
#[derive(Debug)]
pub struct ZRemRange<const KIND: u8>(Bytes, Bounds);

impl<const KIND: u8> Command for ZRemRange<KIND> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let (min, max) = (args.next_bytes()?, args.next_bytes()?);
        let bounds = match KIND {
            0 => {
                let (a, b) = score_range(&min, &max)?;
                Bounds::Score(a, b)
            }
            1 => Bounds::Rank(
                parse_int(&min).ok_or_else(CommandError::not_integer)?,
                parse_int(&max).ok_or_else(CommandError::not_integer)?,
            ),
            _ => {
                let (a, b) = lex_range(&min, &max)?;
                Bounds::Lex(a, b)
            }
        };
        Ok(ZRemRange(key, bounds))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let removed = cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let doomed: Vec<Bytes> = match e.get() {
                    None => return Ok(0),
                    Some(v) => {
                        let z = v.as_zset()?;
                        let (lo, hi) = self.1.ranks(z, false);
                        if hi <= lo {
                            return Ok(0);
                        }
                        z.iter_from(lo, false)
                            .take(hi - lo)
                            .map(|(m, _)| Bytes::copy_from_slice(m))
                            .collect()
                    }
                };
                let Some(Value::Zset(z)) = e.get_mut() else {
                    return Ok(0);
                };
                for m in &doomed {
                    z.remove(m);
                }
                if z.is_empty() {
                    e.remove();
                }
                Ok::<_, CommandError>(doomed.len() as i64)
            })
        })??;
        Ok(Frame::Integer(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_spans_follow_redis() {
        assert_eq!(rank_span(0, -1, 3), Some((0, 3)));
        assert_eq!(rank_span(-2, -1, 3), Some((1, 2)));
        assert_eq!(rank_span(-100, 100, 3), Some((0, 3)));
        assert_eq!(rank_span(2, 1, 3), None);
        assert_eq!(rank_span(3, 5, 3), None);
        assert_eq!(rank_span(0, i64::MAX, 0), None);
        assert_eq!(rank_span(i64::MIN + 1, i64::MAX, 5), Some((0, 5)));
    }
}

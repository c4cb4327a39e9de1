//! List commands, changing the stored list in place (see [`crate::keyspace::List`]): a push or
//! pop costs what it moves, under the key's shard lock. LMOVE and RPOPLPUSH hold both keys'
//! locks at once, so an element is never seen in both lists or in neither.

use super::sets::numkeys;
use super::strings::put;
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{List, Txn, Value};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;

/// The list at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
fn get_list<'t>(t: &'t Txn<'_, '_>, name: &[u8]) -> Result<Option<&'t List>, CommandError> {
    t.get(name).map(Value::as_list).transpose()
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

fn int_arg(b: &[u8]) -> Result<i64, CommandError> {
    parse_int(b).ok_or_else(CommandError::not_integer)
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` or `RIGHT`, any case; a syntax error otherwise.
    pub(super) fn parse(b: &[u8]) -> Result<End, CommandError> {
        if b.eq_ignore_ascii_case(b"LEFT") {
            Ok(End::Left)
        } else if b.eq_ignore_ascii_case(b"RIGHT") {
            Ok(End::Right)
        } else {
            Err(CommandError::syntax())
        }
    }
}

impl List {
    fn push(&mut self, end: End, bytes: &[u8]) {
        match end {
            End::Left => self.push_front(bytes),
            End::Right => self.push_back(bytes),
        }
    }

    fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        match end {
            End::Left => self.pop_front(),
            End::Right => self.pop_back(),
        }
    }
}

/// Pushes `elements` at `end` of the list at `key` (creating it unless `only_existing`);
/// returns the new length (0 when `only_existing` and there is no list).
fn push(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    key: &[u8],
    end: End,
    elements: &[Bytes],
    only_existing: bool,
) -> Result<i64, CommandError> {
    t.compute(key, |e| {
        match e.get() {
            None if only_existing => return Ok(0),
            Some(v) => {
                let extra = v.as_list()?.growth_bound(elements.iter().map(|e| e.len()));
                state.check_grows(e.key(), v, extra)?;
            }
            None => {}
        }
        match e.get_mut() {
            Some(v) => {
                let list = v.as_list_mut()?;
                for el in elements {
                    list.push(end, el);
                }
                Ok(list.len() as i64)
            }
            None => {
                let mut list = List::new();
                for el in elements {
                    list.push(end, el);
                }
                let len = list.len() as i64;
                put(state, e, Value::List(Box::new(list)))?;
                Ok(len)
            }
        }
    })
}

/// LPUSH (`END` 0), RPUSH (1), LPUSHX (2), RPUSHX (3).
#[derive(Debug)]
pub struct Push<const KIND: u8>(Bytes, Vec<Bytes>);

impl<const KIND: u8> Command for Push<KIND> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Push(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let end = if KIND % 2 == 0 { End::Left } else { End::Right };
        let len = cx.write([&self.0[..]], |t| {
            push(state, t, &self.0, end, &self.1, KIND >= 2)
        })??;
        Ok(Frame::Integer(len))
    }
}

/// Pops up to `count` elements from `end` of the list at `key`, removing the key when it
/// empties; `None` when there is no list.
fn pop(
    t: &mut Txn<'_, '_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CommandError> {
    t.compute(key, |e| {
        match e.get() {
            None => return Ok(None),
            Some(v) => {
                v.as_list()?;
            }
        }
        if count == 0 {
            return Ok(Some(Vec::new()));
        }
        let Some(Value::List(list)) = e.get_mut() else {
            return Ok(None);
        };
        let popped: Vec<Vec<u8>> = (0..count).map_while(|_| list.pop(end)).collect();
        if list.is_empty() {
            e.remove();
        }
        Ok(Some(popped))
    })
}

/// LPOP (`END` 0) and RPOP (1), with an optional count.
#[derive(Debug)]
pub struct Pop<const END: u8>(Bytes, Option<usize>);

impl<const END: u8> Command for Pop<END> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let count = match args.try_next() {
            None => None,
            Some(raw) => {
                if args.remaining() > 0 {
                    let name = if END == 0 { "lpop" } else { "rpop" };
                    return Err(CommandError::new(
                        super::ErrorKind::Arity,
                        format!("ERR wrong number of arguments for '{name}' command"),
                    ));
                }
                let n = parse_int(&raw)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?;
                Some(usize::try_from(n).unwrap_or(usize::MAX))
            }
        };
        Ok(Pop(key, count))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let end = if END == 0 { End::Left } else { End::Right };
        let popped = cx.write([&self.0[..]], |t| pop(t, &self.0, end, self.1.unwrap_or(1)))??;
        Ok(match (popped, self.1) {
            (None, None) => Frame::Null,
            (None, Some(_)) => Frame::NullArray,
            (Some(mut v), None) => v.pop().map_or(Frame::Null, |e| Frame::Bulk(e.into())),
            (Some(v), Some(_)) => {
                Frame::Array(v.into_iter().map(|e| Frame::Bulk(e.into())).collect())
            }
        })
    }
}

/// Redis's range normalization: negative indices from the end, clamped; `None` when empty.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

#[derive(Debug)]
pub struct LRange(Bytes, i64, i64);

impl Command for LRange {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LRange(
            args.next_bytes()?,
            args.next_int()?,
            args.next_int()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let Some(list) = get_list(t, &self.0)? else {
                return Ok(Frame::Array(Vec::new()));
            };
            let Some((from, to)) = range(self.1, self.2, list.len()) else {
                return Ok(Frame::Array(Vec::new()));
            };
            Ok(Frame::Array(
                list.iter_from(from).take(to - from + 1).map(bulk).collect(),
            ))
        })?
    }
}

/// An index into a list of `len`: negative from the end; `None` when outside.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

#[derive(Debug)]
pub struct LIndex(Bytes, Bytes);

impl Command for LIndex {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LIndex(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let Some(list) = get_list(t, &self.0)? else {
                return Ok(Frame::Null);
            };
            let i = int_arg(&self.1)?;
            Ok(index(i, list.len())
                .and_then(|i| list.get(i))
                .map_or(Frame::Null, bulk))
        })?
    }
}

#[derive(Debug)]
pub struct LLen(Bytes);

impl Command for LLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LLen(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Integer(
                get_list(t, &self.0)?.map_or(0, |l| l.len() as i64),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct LInsert(Bytes, bool, Bytes, Bytes);

impl Command for LInsert {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let where_ = args.next_bytes()?;
        let after = if where_.eq_ignore_ascii_case(b"AFTER") {
            true
        } else if where_.eq_ignore_ascii_case(b"BEFORE") {
            false
        } else {
            return Err(CommandError::syntax());
        };
        Ok(LInsert(key, after, args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let LInsert(key, after, pivot, element) = &self;
        let state = cx.state;
        cx.write([&key[..]], |t| {
            t.compute(key, |e| {
                let Some(v) = e.get() else {
                    return Ok(Frame::Integer(0));
                };
                let list = v.as_list()?;
                let Some(at) = list.iter().position(|x| x == &pivot[..]) else {
                    return Ok(Frame::Integer(-1));
                };
                let extra = list.growth_bound(std::iter::once(element.len()));
                state.check_grows(e.key(), v, extra)?;
                let Some(Value::List(list)) = e.get_mut() else {
                    return Ok(Frame::Integer(0));
                };
                list.insert(at + usize::from(*after), element);
                Ok(Frame::Integer(list.len() as i64))
            })
        })?
    }
}

#[derive(Debug)]
pub struct LSet(Bytes, Bytes, Bytes);

impl Command for LSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LSet(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let LSet(key, i, element) = &self;
        let state = cx.state;
        cx.write([&key[..]], |t| {
            t.compute(key, |e| {
                let Some(v) = e.get() else {
                    return Err(CommandError::err("no such key"));
                };
                let list = v.as_list()?;
                let i = index(int_arg(i)?, list.len())
                    .ok_or_else(|| CommandError::err("index out of range"))?;
                let extra = list.growth_bound(std::iter::once(element.len()));
                state.check_grows(e.key(), v, extra)?;
                if let Some(Value::List(list)) = e.get_mut() {
                    list.set(i, element);
                }
                Ok(Frame::ok())
            })
        })?
    }
}

#[derive(Debug)]
pub struct LTrim(Bytes, i64, i64);

impl Command for LTrim {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LTrim(
            args.next_bytes()?,
            args.next_int()?,
            args.next_int()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let Some(v) = e.get() else {
                    return Ok(Frame::ok());
                };
                let len = v.as_list()?.len();
                let (keep_from, keep_to) = match range(self.1, self.2, len) {
                    Some((from, to)) => (from, to + 1),
                    None => (0, 0),
                };
                if keep_from == 0 && keep_to == len {
                    return Ok(Frame::ok());
                }
                if let Some(Value::List(list)) = e.get_mut() {
                    list.remove_range(keep_to, len - keep_to);
                    list.remove_range(0, keep_from);
                    if list.is_empty() {
                        e.remove();
                    }
                }
                Ok(Frame::ok())
            })
        })?
    }
}

#[derive(Debug)]
pub struct LRem(Bytes, Bytes, Bytes);

impl Command for LRem {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LRem(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let count = int_arg(&self.1)?;
        let removed = cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let Some(v) = e.get() else {
                    return Ok(0);
                };
                if !v.as_list()?.iter().any(|x| x == &self.2[..]) {
                    return Ok(0);
                }
                let Some(Value::List(list)) = e.get_mut() else {
                    return Ok(0);
                };
                let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
                let n = list.remove_matching(&self.2, limit, count < 0);
                if list.is_empty() {
                    e.remove();
                }
                Ok::<_, CommandError>(n as i64)
            })
        })??;
        Ok(Frame::Integer(removed))
    }
}

#[derive(Debug)]
pub struct LPos {
    key: Bytes,
    element: Bytes,
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

impl Command for LPos {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut pos = LPos {
            key: args.next_bytes()?,
            element: args.next_bytes()?,
            rank: 1,
            count: None,
            maxlen: 0,
        };
        let positive = |b: &[u8], msg: &str| {
            parse_int(b)
                .filter(|n| *n >= 0)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| CommandError::err(msg))
        };
        while let Some(opt) = args.try_next() {
            let more = args.remaining() > 0;
            if opt.eq_ignore_ascii_case(b"RANK") && more {
                pos.rank = int_arg(&args.next_bytes()?)?;
                if pos.rank == 0 {
                    return Err(CommandError::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    ));
                }
            } else if opt.eq_ignore_ascii_case(b"COUNT") && more {
                pos.count = Some(positive(&args.next_bytes()?, "COUNT can't be negative")?);
            } else if opt.eq_ignore_ascii_case(b"MAXLEN") && more {
                pos.maxlen = positive(&args.next_bytes()?, "MAXLEN can't be negative")?;
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(pos)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.key[..]], |t| {
            let Some(list) = get_list(t, &self.key)? else {
                return Ok(match self.count {
                    Some(_) => Frame::Array(Vec::new()),
                    None => Frame::Null,
                });
            };
            let len = list.len();
            // A negative rank searches from the tail (Redis negates it, wrapping at the
            // minimum, where every match then qualifies).
            let from_tail = self.rank < 0;
            let rank = if from_tail {
                self.rank.wrapping_neg()
            } else {
                self.rank
            };
            let walk: Box<dyn Iterator<Item = &[u8]>> = if from_tail {
                Box::new(list.iter_rev())
            } else {
                Box::new(list.iter())
            };
            let limit = if self.maxlen == 0 { len } else { self.maxlen };
            let want = self
                .count
                .map_or(1, |c| if c == 0 { usize::MAX } else { c });
            let mut found = Vec::new();
            let mut matches: i64 = 0;
            for (i, x) in walk.take(limit).enumerate() {
                if x == &self.element[..] {
                    matches += 1;
                    if matches >= rank {
                        found.push(if from_tail { len - 1 - i } else { i } as i64);
                        if found.len() >= want {
                            break;
                        }
                    }
                }
            }
            Ok(match self.count {
                Some(_) => Frame::Array(found.into_iter().map(Frame::Integer).collect()),
                None => found.first().map_or(Frame::Null, |&i| Frame::Integer(i)),
            })
        })?
    }
}

/// Moves one element from `from`'s `from_end` to `to`'s `to_end`: the element, or `None` when
/// `from` is missing. `to` is type-checked before anything moves.
pub(super) fn move_element(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    from: &[u8],
    to: &[u8],
    from_end: End,
    to_end: End,
) -> Result<Option<Vec<u8>>, CommandError> {
    if get_list(t, from)?.is_none() {
        return Ok(None);
    }
    get_list(t, to)?;
    if from == to {
        return t.compute(from, |e| {
            let Some(Value::List(list)) = e.get_mut() else {
                return Ok(None);
            };
            let v = list.pop(from_end).expect("lists are never empty");
            list.push(to_end, &v);
            Ok(Some(v))
        });
    }
    let v = pop(t, from, from_end, 1)?
        .and_then(|mut v| v.pop())
        .expect("lists are never empty");
    push(state, t, to, to_end, &[Bytes::copy_from_slice(&v)], false)?;
    Ok(Some(v))
}

#[derive(Debug)]
pub struct LMove(Bytes, Bytes, End, End);

impl Command for LMove {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (from, to) = (args.next_bytes()?, args.next_bytes()?);
        let from_end = End::parse(&args.next_bytes()?)?;
        Ok(LMove(from, to, from_end, End::parse(&args.next_bytes()?)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let LMove(from, to, from_end, to_end) = &self;
        let moved = cx.write([&from[..], &to[..]], |t| {
            move_element(state, t, from, to, *from_end, *to_end)
        })??;
        Ok(moved.map_or(Frame::Null, |v| Frame::Bulk(v.into())))
    }
}

#[derive(Debug)]
pub struct RPopLPush(Bytes, Bytes);

impl Command for RPopLPush {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(RPopLPush(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        LMove(self.0, self.1, End::Right, End::Left).apply(cx)
    }
}

/// `numkeys key... LEFT|RIGHT [COUNT count]` of LMPOP and BLMPOP.
#[derive(Debug)]
pub(super) struct MPopArgs {
    pub(super) keys: Vec<Bytes>,
    pub(super) end: End,
    pub(super) count: usize,
}

impl MPopArgs {
    pub(super) fn parse(args: &mut Parse) -> Result<MPopArgs, CommandError> {
        // More keys than arguments leaves no room for the direction: a syntax error, as Redis.
        let keys = numkeys(args, "numkeys should be greater than 0").map_err(|e| {
            if e.text().starts_with("ERR Number of keys") {
                CommandError::syntax()
            } else {
                e
            }
        })?;
        let end = End::parse(&args.try_next().ok_or_else(CommandError::syntax)?)?;
        let mut count = None;
        while let Some(opt) = args.try_next() {
            if count.is_none() && opt.eq_ignore_ascii_case(b"COUNT") && args.remaining() > 0 {
                let n = parse_int(&args.next_bytes()?)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CommandError::err("count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            } else {
                return Err(CommandError::syntax());
            }
        }
        Ok(MPopArgs {
            keys,
            end,
            count: count.unwrap_or(1),
        })
    }

    /// Pops from the first non-empty list: `[key, [elements]]`, or `None` if all are empty.
    pub(super) fn pop(&self, t: &mut Txn<'_, '_>) -> Result<Option<Frame>, CommandError> {
        for key in &self.keys {
            if let Some(popped) = pop(t, key, self.end, self.count)? {
                return Ok(Some(Frame::Array(vec![
                    Frame::Bulk(key.clone()),
                    Frame::Array(popped.into_iter().map(|e| Frame::Bulk(e.into())).collect()),
                ])));
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
pub struct LMPop(MPopArgs);

impl Command for LMPop {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LMPop(MPopArgs::parse(args)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let popped = cx.write(self.0.keys.iter().map(|k| &k[..]), |t| self.0.pop(t))??;
        Ok(popped.unwrap_or(Frame::NullArray))
    }
}

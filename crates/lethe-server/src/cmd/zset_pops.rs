//! Sorted set pops: ZPOPMIN, ZPOPMAX, ZMPOP, and the blocking BZPOPMIN, BZPOPMAX and BZMPOP,
//! which wait (see `blocking`) until a write leaves a sorted set at one of their keys.
//!
//! A pop removes the lowest (or highest) members under the key's shard lock and deletes the
//! key once empty; a pop of nothing, or from a key of another type, writes nothing.

use super::blocking::{parse_timeout, serve_or_block};
use super::zsets::{get_zset, scored};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{Txn, Value};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;

/// Members with their scores as an array of pairs in both protocols (ZMPOP, BZMPOP).
fn nested(items: impl IntoIterator<Item = (Bytes, f64)>) -> Vec<Frame> {
    items
        .into_iter()
        .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
        .collect()
}

/// Removes and returns up to `count` of the lowest (or, with `max`, highest) members of the
/// set at `key`; deletes the key once empty. `None` if there is no set there.
pub(super) fn pop(
    t: &mut Txn<'_, '_>,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Vec<(Bytes, f64)>>, CommandError> {
    t.compute(key, |e| {
        match e.get() {
            None => return Ok(None),
            Some(v) => v.as_zset()?,
        };
        let Some(Value::Zset(z)) = e.get_mut() else {
            return Ok(None);
        };
        let take = count.min(z.len());
        let start = if max { z.len() - 1 } else { 0 };
        let items: Vec<(Bytes, f64)> = z
            .iter_from(start, max)
            .take(take)
            .map(|(m, s)| (Bytes::copy_from_slice(m), s))
            .collect();
        for (m, _) in &items {
            z.remove(m);
        }
        if z.is_empty() {
            e.remove();
        }
        Ok(Some(items))
    })
}

/// ZPOPMIN (`MAX` 0) and ZPOPMAX (1).
#[derive(Debug)]
pub struct ZPop<const MAX: u8>(Bytes, Option<usize>);

impl<const MAX: u8> Command for ZPop<MAX> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let count = match args.try_next() {
            None => None,
            Some(raw) => {
                let n = parse_int(&raw)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?;
                Some(usize::try_from(n).unwrap_or(usize::MAX))
            }
        };
        if args.remaining() > 0 {
            return Err(CommandError::syntax());
        }
        Ok(ZPop(key, count))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let proto = cx.session.protocol;
        let key = &self.0;
        let popped = if self.1 == Some(0) {
            // The type is checked, but a zero-element pop writes nothing.
            cx.read([&key[..]], |t| get_zset(t, key).map(|_| None))??
        } else {
            cx.write([&key[..]], |t| pop(t, key, MAX == 1, self.1.unwrap_or(1)))??
        };
        let items = popped.unwrap_or_default();
        Ok(Frame::Array(scored(items, proto, self.1.is_some())))
    }
}

/// `numkeys key... MIN|MAX [COUNT count]` of ZMPOP and BZMPOP.
#[derive(Clone, Debug)]
pub(super) struct MPopArgs {
    keys: Vec<Bytes>,
    max: bool,
    count: usize,
}

impl MPopArgs {
    fn parse(args: &mut Parse) -> Result<MPopArgs, CommandError> {
        let keys = super::sets::numkeys(args, "numkeys should be greater than 0").map_err(|e| {
            if e.text().starts_with("ERR Number of keys") {
                CommandError::syntax()
            } else {
                e
            }
        })?;
        let dir = args.try_next().ok_or_else(CommandError::syntax)?;
        let max = if dir.eq_ignore_ascii_case(b"MIN") {
            false
        } else if dir.eq_ignore_ascii_case(b"MAX") {
            true
        } else {
            return Err(CommandError::syntax());
        };
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
            max,
            count: count.unwrap_or(1),
        })
    }

    /// Pops from the first non-empty set: `[key, members]`, or `None` if all are empty.
    /// `skip_other` passes over keys of other types (a blocked client's retries).
    fn pop(&self, t: &mut Txn<'_, '_>, skip_other: bool) -> Result<Option<Frame>, CommandError> {
        for key in &self.keys {
            match get_zset(t, key) {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(_) if skip_other => continue,
                Err(e) => return Err(e),
            }
            if let Some(items) = pop(t, key, self.max, self.count)? {
                return Ok(Some(Frame::Array(vec![
                    Frame::Bulk(key.clone()),
                    Frame::Array(nested(items)),
                ])));
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
pub struct ZMPop(MPopArgs);

impl Command for ZMPop {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(ZMPop(MPopArgs::parse(args)?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let popped = cx.write(self.0.keys.iter().map(|k| &k[..]), |t| self.0.pop(t, false))??;
        Ok(popped.unwrap_or(Frame::NullArray))
    }
}

/// BZPOPMIN (`MAX` 0) and BZPOPMAX (1).
#[derive(Debug)]
pub struct BZPop<const MAX: u8>(Vec<Bytes>, Option<std::time::Duration>);

impl<const MAX: u8> Command for BZPop<MAX> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut keys: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        let timeout = parse_timeout(&keys.pop().expect("arity"))?;
        Ok(BZPop(keys, timeout))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let keys = self.0.clone();
        let attempt = Box::new(move |_: &ServerState, t: &mut Txn<'_, '_>, retry: bool| {
            for key in &keys {
                match get_zset(t, key) {
                    Ok(Some(_)) => {}
                    Ok(None) => continue,
                    Err(_) if retry => continue,
                    Err(e) => return Err(e),
                }
                if let Some(mut items) = pop(t, key, MAX == 1, 1)? {
                    if let Some((m, s)) = items.pop() {
                        return Ok(Some(Frame::Array(vec![
                            Frame::Bulk(key.clone()),
                            Frame::Bulk(m),
                            Frame::Double(s),
                        ])));
                    }
                }
            }
            Ok(None)
        });
        serve_or_block(
            cx,
            self.0.clone(),
            &self.0,
            self.1,
            Frame::NullArray,
            Frame::NullArray,
            attempt,
        )
    }
}

#[derive(Debug)]
pub struct BZMPop(Option<std::time::Duration>, MPopArgs);

impl Command for BZMPop {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let timeout = args.next_bytes()?;
        let mpop = MPopArgs::parse(args)?;
        Ok(BZMPop(parse_timeout(&timeout)?, mpop))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let BZMPop(timeout, mpop) = self;
        let keys = mpop.keys.clone();
        let attempt =
            Box::new(move |_: &ServerState, t: &mut Txn<'_, '_>, retry: bool| mpop.pop(t, retry));
        serve_or_block(
            cx,
            keys.clone(),
            &keys,
            timeout,
            Frame::NullArray,
            Frame::NullArray,
            attempt,
        )
    }
}

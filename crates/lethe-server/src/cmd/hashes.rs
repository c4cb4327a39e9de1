//! Hash commands, changing the stored hash in place (see [`crate::keyspace::Hash`]): an HSET
//! on a hash of any size costs what it sets, under the key's shard lock, so concurrent writers
//! to one hash never lose each other's fields.

use super::strings::put;
use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::frame::Frame;
use crate::keyspace::{Hash, Txn, Value};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;

/// The hash at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
fn get_hash<'t>(t: &'t Txn<'_, '_>, name: &[u8]) -> Result<Option<&'t Hash>, CommandError> {
    t.get(name).map(Value::as_hash).transpose()
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

fn field_pairs(args: &mut Parse, cmd: &str) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
    if args.remaining() % 2 != 0 {
        return Err(CommandError::new(
            ErrorKind::Arity,
            format!("ERR wrong number of arguments for '{cmd}' command"),
        ));
    }
    let mut out = Vec::with_capacity(args.remaining() / 2);
    while let Some(f) = args.try_next() {
        out.push((f, args.next_bytes()?));
    }
    Ok(out)
}

/// Sets fields; returns how many were new.
/// Sets the fields of the hash at `key` in place (creating it); returns how many were new.
fn set_fields(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    key: &[u8],
    pairs: &[(Bytes, Bytes)],
) -> Result<i64, CommandError> {
    t.compute(key, |e| {
        let mut added = 0;
        match e.get_mut() {
            Some(v) => {
                let hash = v.as_hash_mut()?;
                for (f, v) in pairs {
                    added += i64::from(hash.insert(f, v));
                }
            }
            None => {
                let mut hash = Hash::new();
                for (f, v) in pairs {
                    added += i64::from(hash.insert(f, v));
                }
                put(state, e, Value::Hash(Box::new(hash)))?;
            }
        }
        Ok(added)
    })
}

#[derive(Debug)]
pub struct HSet(Bytes, Vec<(Bytes, Bytes)>);

impl Command for HSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(HSet(key, field_pairs(args, "hset")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let added = cx.write([&self.0[..]], |t| set_fields(state, t, &self.0, &self.1))??;
        Ok(Frame::Integer(added))
    }
}

#[derive(Debug)]
pub struct HMSet(Bytes, Vec<(Bytes, Bytes)>);

impl Command for HMSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(HMSet(key, field_pairs(args, "hmset")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        cx.write([&self.0[..]], |t| set_fields(state, t, &self.0, &self.1))??;
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct HGet(Bytes, Bytes);

impl Command for HGet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HGet(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(get_hash(t, &self.0)?
                .and_then(|h| h.get(&self.1))
                .map_or(Frame::Null, bulk))
        })?
    }
}

#[derive(Debug)]
pub struct HMGet(Bytes, Vec<Bytes>);

impl Command for HMGet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(HMGet(key, std::iter::from_fn(|| args.try_next()).collect()))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let hash = get_hash(t, &self.0)?;
            Ok(Frame::Array(
                self.1
                    .iter()
                    .map(|f| hash.and_then(|h| h.get(f)).map_or(Frame::Null, bulk))
                    .collect(),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct HGetAll(Bytes);

impl Command for HGetAll {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HGetAll(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Map(
                get_hash(t, &self.0)?.map_or_else(Vec::new, |h| {
                    h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()
                }),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct HDel(Bytes, Vec<Bytes>);

impl Command for HDel {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(HDel(key, std::iter::from_fn(|| args.try_next()).collect()))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let removed = cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                // Only a hash that loses a field is changed (and reported as changed).
                match e.get() {
                    None => return Ok(0),
                    Some(v)
                        if !self
                            .1
                            .iter()
                            .any(|f| v.as_hash().is_ok_and(|h| h.contains(f))) =>
                    {
                        v.as_hash()?;
                        return Ok(0);
                    }
                    Some(_) => {}
                }
                let Some(Value::Hash(hash)) = e.get_mut() else {
                    return Ok(0);
                };
                let removed = self.1.iter().filter(|f| hash.remove(f)).count();
                // A hash with no fields left is no key, as in Redis.
                if hash.is_empty() {
                    e.remove();
                }
                Ok::<_, CommandError>(removed)
            })
        })??;
        Ok(Frame::Integer(removed as i64))
    }
}

#[derive(Debug)]
pub struct HExists(Bytes, Bytes);

impl Command for HExists {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HExists(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(bool_reply(
                get_hash(t, &self.0)?.is_some_and(|h| h.contains(&self.1)),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct HLen(Bytes);

impl Command for HLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HLen(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let len = match t.peek(&self.0) {
                None => 0,
                Some(v) => v.as_hash()?.len(),
            };
            Ok(Frame::Integer(len as i64))
        })?
    }
}

#[derive(Debug)]
pub struct HKeys(Bytes);

impl Command for HKeys {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HKeys(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Array(
                get_hash(t, &self.0)?
                    .map_or_else(Vec::new, |h| h.iter().map(|(f, _)| bulk(f)).collect()),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct HVals(Bytes);

impl Command for HVals {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HVals(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            Ok(Frame::Array(
                get_hash(t, &self.0)?
                    .map_or_else(Vec::new, |h| h.iter().map(|(_, v)| bulk(v)).collect()),
            ))
        })?
    }
}

#[derive(Debug)]
pub struct HIncrBy(Bytes, Bytes, i64);

impl Command for HIncrBy {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HIncrBy(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_int()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let HIncrBy(key, field, delta) = self;
        let state = cx.state;
        cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                let current = match e.get() {
                    None => None,
                    Some(v) => v.as_hash()?.get(&field),
                };
                let current = match current {
                    None => 0,
                    Some(v) => parse_int(v)
                        .ok_or_else(|| CommandError::err("hash value is not an integer"))?,
                };
                let new = current
                    .checked_add(delta)
                    .ok_or_else(|| CommandError::err("increment or decrement would overflow"))?;
                let mut text = itoa::Buffer::new();
                let text = text.format(new).as_bytes();
                match e.get_mut() {
                    Some(v) => {
                        v.as_hash_mut()?.insert(&field, text);
                    }
                    None => {
                        let mut hash = Hash::new();
                        hash.insert(&field, text);
                        put(state, e, Value::Hash(Box::new(hash)))?;
                    }
                }
                Ok(Frame::Integer(new))
            })
        })?
    }
}

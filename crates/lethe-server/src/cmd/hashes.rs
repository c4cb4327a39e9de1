//! Hash commands. A hash is an insertion-ordered field map shared behind an `Arc`: reads clone a
//! pointer, writes copy the map and store the copy (keeping the key's TTL), under the keyspace's
//! write lock so concurrent writers to one hash cannot lose each other's fields.

use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::db::{Db, HashFields, Value};
use crate::frame::Frame;
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use std::sync::Arc;

/// The hash at `key`: `None` if missing, WRONGTYPE if another type.
fn get_hash(db: &Db, key: &[u8]) -> Result<Option<Arc<HashFields>>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(CommandError::wrong_type()),
    }
}

/// Stores `fields` at `key` keeping its TTL, or removes the key when no field is left (Redis
/// never keeps an empty hash).
fn store(db: &Db, key: Bytes, fields: HashFields) -> Result<(), CommandError> {
    if fields.is_empty() {
        db.remove(&key);
        Ok(())
    } else {
        db.replace(key, Value::Hash(Arc::new(fields)))
    }
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
fn set_fields(db: &Db, key: Bytes, pairs: Vec<(Bytes, Bytes)>) -> Result<i64, CommandError> {
    let mut fields = get_hash(db, &key)?.map_or_else(HashFields::new, |h| (*h).clone());
    let mut added = 0;
    for (f, v) in pairs {
        if fields.insert(f, v).is_none() {
            added += 1;
        }
    }
    store(db, key, fields)?;
    Ok(added)
}

#[derive(Debug)]
pub struct HSet(Bytes, Vec<(Bytes, Bytes)>);

impl Command for HSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        Ok(HSet(key, field_pairs(args, "hset")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(Frame::Integer(set_fields(cx.db, self.0, self.1)?))
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
        set_fields(cx.db, self.0, self.1)?;
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
        let value = get_hash(cx.db, &self.0)?.and_then(|h| h.get(&self.1).cloned());
        Ok(value.map_or(Frame::Null, Frame::Bulk))
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
        let hash = get_hash(cx.db, &self.0)?;
        Ok(Frame::Array(
            self.1
                .iter()
                .map(|f| {
                    hash.as_ref()
                        .and_then(|h| h.get(f).cloned())
                        .map_or(Frame::Null, Frame::Bulk)
                })
                .collect(),
        ))
    }
}

#[derive(Debug)]
pub struct HGetAll(Bytes);

impl Command for HGetAll {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HGetAll(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let hash = get_hash(cx.db, &self.0)?.unwrap_or_default();
        Ok(Frame::Map(
            hash.iter()
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ))
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
        let Some(hash) = get_hash(cx.db, &self.0)? else {
            return Ok(Frame::Integer(0));
        };
        let mut fields = (*hash).clone();
        // shift_remove keeps the remaining fields in order, as Redis's listpack does.
        let removed = self
            .1
            .iter()
            .filter(|f| fields.shift_remove(*f).is_some())
            .count();
        if removed > 0 {
            store(cx.db, self.0, fields)?;
        }
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
        let hash = get_hash(cx.db, &self.0)?;
        Ok(bool_reply(hash.is_some_and(|h| h.contains_key(&self.1))))
    }
}

#[derive(Debug)]
pub struct HLen(Bytes);

impl Command for HLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HLen(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let len = get_hash(cx.db, &self.0)?.map_or(0, |h| h.len());
        Ok(Frame::Integer(len as i64))
    }
}

#[derive(Debug)]
pub struct HKeys(Bytes);

impl Command for HKeys {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HKeys(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let hash = get_hash(cx.db, &self.0)?.unwrap_or_default();
        Ok(Frame::Array(
            hash.keys().cloned().map(Frame::Bulk).collect(),
        ))
    }
}

#[derive(Debug)]
pub struct HVals(Bytes);

impl Command for HVals {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HVals(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let hash = get_hash(cx.db, &self.0)?.unwrap_or_default();
        Ok(Frame::Array(
            hash.values().cloned().map(Frame::Bulk).collect(),
        ))
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
        let mut fields = get_hash(cx.db, &key)?.map_or_else(HashFields::new, |h| (*h).clone());
        let current = match fields.get(&field) {
            None => 0,
            Some(v) => {
                parse_int(v).ok_or_else(|| CommandError::err("hash value is not an integer"))?
            }
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| CommandError::err("increment or decrement would overflow"))?;
        fields.insert(field, Bytes::from(new.to_string()));
        store(cx.db, key, fields)?;
        Ok(Frame::Integer(new))
    }
}

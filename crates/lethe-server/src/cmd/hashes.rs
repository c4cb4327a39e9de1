//! Hash commands, changing the stored hash in place (see [`crate::keyspace::Hash`]): an HSET
//! on a hash of any size costs what it sets, under the key's shard lock, so concurrent writers
//! to one hash never lose each other's fields.

use super::long_double::LongDouble;
use super::strings::{long_double, put};
use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::frame::Frame;
use crate::keyspace::{Hash, Txn, Value};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;

/// The hash at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
/// A hash whose fields all expired is no hash to the reads (until it is swept away).
fn get_hash<'t>(t: &'t Txn<'_, '_>, name: &[u8]) -> Result<Option<&'t Hash>, CommandError> {
    Ok(t.get(name)
        .map(Value::as_hash)
        .transpose()?
        .filter(|h| !h.is_empty()))
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
        if let Some(v) = e.get() {
            // Refused before the change: grown past one entry's share, the engine would evict
            // the whole hash.
            let extra = v
                .as_hash()?
                .growth_bound(pairs.iter().map(|(f, v)| (&f[..], &v[..])));
            state.check_grows(e.key(), v, extra)?;
        }
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
                    // The field keeps its deadline, as in Redis 7.4.
                    Some(v) => {
                        v.as_hash_mut()?.insert_keep_ttl(&field, text);
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

#[derive(Debug)]
pub struct HSetNx(Bytes, Bytes, Bytes);

impl Command for HSetNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HSetNx(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let HSetNx(key, field, value) = self;
        let state = cx.state;
        let set = cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                match e.get() {
                    Some(v) if v.as_hash()?.contains(&field) => return Ok(false),
                    Some(v) => {
                        let extra = v
                            .as_hash()?
                            .growth_bound([(&field[..], &value[..])].into_iter());
                        state.check_grows(e.key(), v, extra)?;
                        if let Some(Value::Hash(h)) = e.get_mut() {
                            h.insert(&field, &value);
                        }
                    }
                    None => {
                        let mut hash = Hash::new();
                        hash.insert(&field, &value);
                        put(state, e, Value::Hash(Box::new(hash)))?;
                    }
                }
                Ok::<_, CommandError>(true)
            })
        })??;
        Ok(bool_reply(set))
    }
}

#[derive(Debug)]
pub struct HStrLen(Bytes, Bytes);

impl Command for HStrLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(HStrLen(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| {
            let len = get_hash(t, &self.0)?
                .and_then(|h| h.get(&self.1))
                .map_or(0, <[u8]>::len);
            Ok(Frame::Integer(len as i64))
        })?
    }
}

#[derive(Debug)]
pub struct HIncrByFloat(Bytes, Bytes, Bytes);

impl Command for HIncrByFloat {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (key, field, increment) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
        crate::parse::parse_float(&increment)
            .ok_or_else(|| CommandError::err("value is not a valid float"))?;
        Ok(HIncrByFloat(key, field, increment))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let HIncrByFloat(key, field, increment) = self;
        let state = cx.state;
        cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                let current = match e.get() {
                    None => None,
                    Some(v) => v.as_hash()?.get(&field),
                };
                let current = match current {
                    None => LongDouble::from_i64(0),
                    Some(text) => long_double(text)
                        .map_err(|_| CommandError::err("hash value is not a float"))?,
                };
                let text = current
                    .add(long_double(&increment)?)
                    .ok_or_else(|| CommandError::err("increment would produce NaN or Infinity"))?
                    .to_human();
                match e.get_mut() {
                    // The field keeps its deadline, as in Redis 7.4.
                    Some(v) => {
                        v.as_hash_mut()?.insert_keep_ttl(&field, text.as_bytes());
                    }
                    None => {
                        let mut hash = Hash::new();
                        hash.insert(&field, text.as_bytes());
                        put(state, e, Value::Hash(Box::new(hash)))?;
                    }
                }
                Ok(Frame::Bulk(Bytes::from(text)))
            })
        })?
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`.
#[derive(Debug)]
pub struct HRandField {
    key: Bytes,
    count: Option<i64>,
    with_values: bool,
}

impl Command for HRandField {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let count = match args.try_next() {
            None => None,
            Some(raw) => Some(parse_int(&raw).ok_or_else(CommandError::not_integer)?),
        };
        let with_values = match args.try_next() {
            None => false,
            Some(w) if count.is_some() && w.eq_ignore_ascii_case(b"withvalues") => true,
            Some(_) => return Err(CommandError::syntax()),
        };
        if args.remaining() > 0 {
            return Err(CommandError::syntax());
        }
        // Redis refuses counts whose reply could not be sized.
        if let Some(c) = count {
            let limit = if with_values { i64::MAX / 2 } else { i64::MAX };
            if c < -limit {
                return Err(CommandError::err("value is out of range"));
            }
        }
        Ok(HRandField {
            key,
            count,
            with_values,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let resp3 = cx.session.protocol == crate::frame::Protocol::Resp3;
        cx.read([&self.key[..]], |t| {
            let hash = get_hash(t, &self.key)?;
            let Some(count) = self.count else {
                return Ok(match hash {
                    None => Frame::Null,
                    Some(h) => {
                        let i = fastrand::usize(..h.len());
                        h.iter().nth(i).map_or(Frame::Null, |(f, _)| bulk(f))
                    }
                });
            };
            let Some(h) = hash else {
                return Ok(Frame::Array(Vec::new()));
            };
            let fields: Vec<(&[u8], &[u8])> = h.iter().collect();
            let picked: Vec<(&[u8], &[u8])> = if count >= 0 {
                // Distinct fields, at most all of them.
                let mut all = fields;
                fastrand::shuffle(&mut all);
                all.truncate(count as usize);
                all
            } else {
                (0..count.unsigned_abs())
                    .map(|_| fields[fastrand::usize(..fields.len())])
                    .collect()
            };
            Ok(Frame::Array(if !self.with_values {
                picked.into_iter().map(|(f, _)| bulk(f)).collect()
            } else if resp3 {
                picked
                    .into_iter()
                    .map(|(f, v)| Frame::Array(vec![bulk(f), bulk(v)]))
                    .collect()
            } else {
                picked
                    .into_iter()
                    .flat_map(|(f, v)| [bulk(f), bulk(v)])
                    .collect()
            }))
        })?
    }
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: a small (listpack) hash in one call, as
/// Redis does; a large one in the stable order of its fields' hashes, as SCAN.
#[derive(Debug)]
pub struct HScan {
    key: Bytes,
    cursor: u64,
    pattern: Option<Bytes>,
    count: usize,
}

impl Command for HScan {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let raw = args.next_bytes()?;
        let cursor =
            super::keys::parse_cursor(&raw).ok_or_else(|| CommandError::err("invalid cursor"))?;
        let mut scan = HScan {
            key,
            cursor,
            pattern: None,
            count: 10,
        };
        while let Some(opt) = args.try_next() {
            if args.remaining() == 0 {
                return Err(CommandError::syntax());
            }
            match String::from_utf8_lossy(&opt).to_ascii_uppercase().as_str() {
                "COUNT" => {
                    let n = args.next_int()?;
                    if n < 1 {
                        return Err(CommandError::syntax());
                    }
                    scan.count = usize::try_from(n).unwrap_or(usize::MAX);
                }
                "MATCH" => scan.pattern = Some(args.next_bytes()?),
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(scan)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let glob = self.pattern.as_ref().map(lethe::pattern::Glob::new);
        let keep = |f: &[u8]| glob.as_ref().is_none_or(|g| g.matches(f));
        cx.read([&self.key[..]], |t| {
            let Some(h) = get_hash(t, &self.key)? else {
                return Ok(scan_reply(0, Vec::new()));
            };
            if h.encoding() != "hashtable" {
                let items = h
                    .iter()
                    .filter(|(f, _)| keep(f))
                    .flat_map(|(f, v)| [bulk(f), bulk(v)])
                    .collect();
                return Ok(scan_reply(0, items));
            }
            let mut ahead: Vec<(u64, &[u8], &[u8])> = h
                .iter()
                .map(|(f, v)| (super::keys::scan_position(f), f, v))
                .filter(|(pos, _, _)| *pos >= self.cursor)
                .collect();
            ahead.sort_unstable();
            let next = ahead.get(self.count).map_or(0, |(pos, _, _)| *pos);
            let items = ahead
                .into_iter()
                .take(self.count)
                .filter(|(_, f, _)| keep(f))
                .flat_map(|(_, f, v)| [bulk(f), bulk(v)])
                .collect();
            Ok(scan_reply(next, items))
        })?
    }
}

fn scan_reply(cursor: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::bulk(cursor.to_string()), Frame::Array(items)])
}

//! String commands: GET, SET and its variants, ranges, counters.
//!
//! Redis checks options before numbers and types before values; the parse/apply split follows
//! that order so error precedence matches (`SET k v EX abc NX XX` is a syntax error, not a
//! number error).

use super::long_double::{LongDouble, Parsed};
use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::frame::{Frame, MAX_BULK};
use crate::keyspace::{Entry, Txn, Value, duration_millis, now_millis, timestamp_millis};
use crate::parse::{Parse, parse_float, parse_int};
use crate::state::{ServerState, refused};
use bytes::Bytes;
use lethe::{InsertOptions, expiry::ExpireCondition, version::WriteCondition};

/// The string at `name` (a hit or miss): `None` if missing, WRONGTYPE if another type.
pub(crate) fn get_string(t: &Txn<'_, '_>, name: &[u8]) -> Result<Option<Bytes>, CommandError> {
    t.get(name).map(Value::to_bytes).transpose()
}

fn bulk_or_null(v: Option<Bytes>) -> Frame {
    v.map_or(Frame::Null, Frame::Bulk)
}

/// How a write sets the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpiryUnit {
    Seconds,
    Millis,
    UnixSeconds,
    UnixMillis,
}

/// An expiry option still unparsed: Redis reads the number only after all options are valid.
#[derive(Debug)]
struct ExpiryArg {
    unit: ExpiryUnit,
    value: Bytes,
}

impl ExpiryArg {
    /// The absolute deadline in Unix milliseconds, with Redis's checks and error texts.
    fn deadline_millis(&self, cmd: &str) -> Result<i64, CommandError> {
        let n = parse_int(&self.value).ok_or_else(CommandError::not_integer)?;
        let seconds = matches!(self.unit, ExpiryUnit::Seconds | ExpiryUnit::UnixSeconds);
        if n <= 0 || (seconds && n > i64::MAX / 1000) {
            return Err(CommandError::invalid_expire(cmd));
        }
        let ms = if seconds { n * 1000 } else { n };
        match self.unit {
            ExpiryUnit::Seconds | ExpiryUnit::Millis => ms
                .checked_add(now_millis())
                .ok_or_else(|| CommandError::invalid_expire(cmd)),
            ExpiryUnit::UnixSeconds | ExpiryUnit::UnixMillis => Ok(ms),
        }
    }

    fn parse(keyword: &str, args: &mut Parse) -> Option<Result<ExpiryArg, CommandError>> {
        let unit = match keyword {
            "EX" => ExpiryUnit::Seconds,
            "PX" => ExpiryUnit::Millis,
            "EXAT" => ExpiryUnit::UnixSeconds,
            "PXAT" => ExpiryUnit::UnixMillis,
            _ => return None,
        };
        Some(
            args.try_next()
                .map(|value| ExpiryArg { unit, value })
                .ok_or_else(CommandError::syntax),
        )
    }
}

/// Writes a string with an optional absolute deadline. A deadline already past leaves the key
/// absent, as Redis's SET with a past EXAT does. Returns false if `condition` refused it.
fn write_string(
    state: &ServerState,
    t: &mut Txn<'_, '_>,
    name: &[u8],
    value: Value,
    deadline_ms: Option<i64>,
    keep_ttl: bool,
    condition: Option<WriteCondition>,
) -> Result<bool, CommandError> {
    let mut options = InsertOptions::new();
    if let Some(c) = condition {
        options = options.condition(c);
    }
    if keep_ttl {
        options = options.keep_ttl();
    }
    let expired = match deadline_ms {
        // The engine counts durations in nanoseconds: a far deadline is set as a timestamp.
        Some(at) if at > crate::keyspace::FAR_MILLIS => false,
        Some(at) => {
            let left = at - now_millis();
            options = options.ttl(duration_millis(left));
            left <= 0
        }
        None => false,
    };
    if expired {
        // Checked like any write (NX/XX), then gone at once.
        let allowed = match condition {
            Some(WriteCondition::IfAbsent) => !t.exists(name),
            Some(WriteCondition::IfPresent) => t.exists(name),
            _ => true,
        };
        if allowed {
            t.delete(name);
        }
        return Ok(allowed);
    }
    state.check_fits(&t.key(name), &value)?;
    let written = t.insert(name, value, &options).is_ok();
    // Pinned to the exact timestamp asked for, far or not: the engine's clock is anchored to
    // the wall clock once and drifts from it, so a deadline set as `at - now` from the wall
    // clock can land a millisecond off, which PEXPIRETIME would show (seen in the differential
    // test against redis-server).
    if let Some(at) = deadline_ms.filter(|_| written) {
        t.expire_at(name, timestamp_millis(at), ExpireCondition::Always);
    }
    Ok(written)
}

/// Replaces the live value of `e` with `value` (keeping its TTL) or creates it, refusing a
/// value too big to keep.
pub(crate) fn put(
    state: &ServerState,
    e: &mut Entry<'_>,
    value: Value,
) -> Result<(), CommandError> {
    state.check_fits(e.key(), &value)?;
    match e.get_mut() {
        Some(v) => *v = value,
        None => {
            e.insert(value).map_err(refused)?;
        }
    }
    Ok(())
}

#[derive(Debug)]
pub struct Get(Bytes);

impl Command for Get {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Get(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(bulk_or_null(
            cx.read([&self.0[..]], |t| get_string(t, &self.0))??,
        ))
    }
}

#[derive(Debug)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    expiry: Option<ExpiryArg>,
    condition: Option<WriteCondition>,
    keep_ttl: bool,
    get: bool,
}

impl Command for Set {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut set = Set {
            key: args.next_bytes()?,
            value: args.next_bytes()?,
            expiry: None,
            condition: None,
            keep_ttl: false,
            get: false,
        };
        while let Some(opt) = args.try_next() {
            let keyword = String::from_utf8_lossy(&opt).to_ascii_uppercase();
            match keyword.as_str() {
                "NX" if set.condition.is_none() => set.condition = Some(WriteCondition::IfAbsent),
                "XX" if set.condition.is_none() => {
                    set.condition = Some(WriteCondition::IfPresent);
                }
                // Redis accepts a repeated NX or XX, only the two together are an error.
                "NX" if set.condition == Some(WriteCondition::IfAbsent) => {}
                "XX" if set.condition == Some(WriteCondition::IfPresent) => {}
                "GET" => set.get = true,
                "KEEPTTL" if set.expiry.is_none() => set.keep_ttl = true,
                _ => match ExpiryArg::parse(&keyword, args) {
                    Some(e) if set.expiry.is_none() && !set.keep_ttl => set.expiry = Some(e?),
                    _ => return Err(CommandError::syntax()),
                },
            }
        }
        Ok(set)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let deadline = self
            .expiry
            .as_ref()
            .map(|e| e.deadline_millis("set"))
            .transpose()?;
        let state = cx.state;
        let value = Value::bulk(self.value);
        let (old, written) = cx.write([&self.key[..]], |t| {
            let old = if self.get {
                get_string(t, &self.key)?
            } else {
                None
            };
            let written = write_string(
                state,
                t,
                &self.key,
                value,
                deadline,
                self.keep_ttl,
                self.condition,
            )?;
            Ok::<_, CommandError>((old, written))
        })??;
        Ok(match (self.get, written) {
            (true, _) => bulk_or_null(old),
            (false, true) => Frame::ok(),
            (false, false) => Frame::Null,
        })
    }
}

#[derive(Debug)]
pub struct GetEx {
    key: Bytes,
    expiry: Option<ExpiryArg>,
    persist: bool,
}

impl Command for GetEx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut cmd = GetEx {
            key: args.next_bytes()?,
            expiry: None,
            persist: false,
        };
        while let Some(opt) = args.try_next() {
            let keyword = String::from_utf8_lossy(&opt).to_ascii_uppercase();
            match keyword.as_str() {
                "PERSIST" if cmd.expiry.is_none() => cmd.persist = true,
                _ => match ExpiryArg::parse(&keyword, args) {
                    Some(e) if cmd.expiry.is_none() && !cmd.persist => cmd.expiry = Some(e?),
                    _ => return Err(CommandError::syntax()),
                },
            }
        }
        Ok(cmd)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = &self.key[..];
        cx.write([key], |t| {
            let Some(value) = get_string(t, key)? else {
                return Ok(Frame::Null);
            };
            if let Some(e) = &self.expiry {
                // A deadline not in the future removes the key.
                let at = e.deadline_millis("getex")?;
                t.expire_at(key, timestamp_millis(at), ExpireCondition::Always);
            } else if self.persist {
                t.persist(key);
            }
            Ok(Frame::Bulk(value))
        })?
    }
}

#[derive(Debug)]
pub struct GetDel(Bytes);

impl Command for GetDel {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetDel(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = &self.0[..];
        cx.write([key], |t| {
            let value = get_string(t, key)?;
            if value.is_some() {
                t.delete(key);
            }
            Ok(bulk_or_null(value))
        })?
    }
}

#[derive(Debug)]
pub struct GetSet(Bytes, Bytes);

impl Command for GetSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetSet(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        cx.write([&self.0[..]], |t| {
            let old = get_string(t, &self.0)?;
            write_string(state, t, &self.0, Value::string(&self.1), None, false, None)?;
            Ok(bulk_or_null(old))
        })?
    }
}

#[derive(Debug)]
pub struct MGet(Vec<Bytes>);

impl Command for MGet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(MGet(std::iter::from_fn(|| args.try_next()).collect()))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // Keys of another type read as missing here, not as an error.
        cx.read(self.0.iter().map(|k| &k[..]), |t| {
            Frame::Array(
                self.0
                    .iter()
                    .map(|k| bulk_or_null(get_string(t, k).ok().flatten()))
                    .collect(),
            )
        })
    }
}

/// Key-value pairs of MSET and MSETNX; an odd count is an arity error naming the command.
fn pairs(args: &mut Parse, cmd: &str) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
    if args.remaining() % 2 != 0 {
        return Err(CommandError::new(
            ErrorKind::Arity,
            format!("ERR wrong number of arguments for '{cmd}' command"),
        ));
    }
    let mut out = Vec::with_capacity(args.remaining() / 2);
    while let Some(k) = args.try_next() {
        out.push((k, args.next_bytes()?));
    }
    Ok(out)
}

/// The values of MSET's pairs, each checked to fit before anything is written: all or nothing.
/// The values are taken out of `pairs` (so large ones are stored without a copy).
fn fitting(
    state: &ServerState,
    db: u8,
    pairs: &mut [(Bytes, Bytes)],
) -> Result<Vec<Value>, CommandError> {
    let mut values = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let value = Value::bulk(std::mem::take(v));
        state.check_fits(&crate::keyspace::stored_key(db, k), &value)?;
        values.push(value);
    }
    Ok(values)
}

#[derive(Debug)]
pub struct MSet(Vec<(Bytes, Bytes)>);

impl Command for MSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(MSet(pairs(args, "mset")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let mut pairs = self.0;
        let values = fitting(state, cx.session.db, &mut pairs)?;
        cx.write(pairs.iter().map(|(k, _)| &k[..]), |t| {
            for ((k, _), v) in pairs.iter().zip(values) {
                t.insert(k, v, &InsertOptions::new()).map_err(refused)?;
            }
            Ok(Frame::ok())
        })?
    }
}

#[derive(Debug)]
pub struct MSetNx(Vec<(Bytes, Bytes)>);

impl Command for MSetNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(MSetNx(pairs(args, "msetnx")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let mut pairs = self.0;
        let values = fitting(state, cx.session.db, &mut pairs)?;
        cx.write(pairs.iter().map(|(k, _)| &k[..]), |t| {
            if pairs.iter().any(|(k, _)| t.exists(k)) {
                return Ok(Frame::Integer(0));
            }
            for ((k, _), v) in pairs.iter().zip(values) {
                t.insert(k, v, &InsertOptions::new()).map_err(refused)?;
            }
            Ok(Frame::Integer(1))
        })?
    }
}

#[derive(Debug)]
pub struct SetNx(Bytes, Bytes);

impl Command for SetNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetNx(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let set = cx.write([&self.0[..]], |t| {
            write_string(
                state,
                t,
                &self.0,
                Value::string(&self.1),
                None,
                false,
                Some(WriteCondition::IfAbsent),
            )
        })??;
        Ok(bool_reply(set))
    }
}

/// SETEX and PSETEX: a string with a relative expiry.
fn set_with_expiry(
    args: &mut Parse,
    unit: ExpiryUnit,
) -> Result<(Bytes, ExpiryArg, Bytes), CommandError> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let expiry = ExpiryArg { unit, value };
    Ok((key, expiry, args.next_bytes()?))
}

#[derive(Debug)]
pub struct SetEx(Bytes, ExpiryArg, Bytes);

impl Command for SetEx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (k, e, v) = set_with_expiry(args, ExpiryUnit::Seconds)?;
        Ok(SetEx(k, e, v))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let at = self.1.deadline_millis("setex")?;
        let state = cx.state;
        cx.write([&self.0[..]], |t| {
            write_string(
                state,
                t,
                &self.0,
                Value::string(&self.2),
                Some(at),
                false,
                None,
            )
        })??;
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct PSetEx(Bytes, ExpiryArg, Bytes);

impl Command for PSetEx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (k, e, v) = set_with_expiry(args, ExpiryUnit::Millis)?;
        Ok(PSetEx(k, e, v))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let at = self.1.deadline_millis("psetex")?;
        let state = cx.state;
        cx.write([&self.0[..]], |t| {
            write_string(
                state,
                t,
                &self.0,
                Value::string(&self.2),
                Some(at),
                false,
                None,
            )
        })??;
        Ok(Frame::ok())
    }
}

fn too_big() -> CommandError {
    CommandError::err("string exceeds maximum allowed size (proto-max-bulk-len)")
}

#[derive(Debug)]
pub struct Append(Bytes, Bytes);

impl Command for Append {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Append(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let (state, suffix) = (cx.state, &self.1[..]);
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let old_len = e.get().map_or(Ok(0), Value::str_len)?;
                if (old_len + suffix.len()) as i64 > MAX_BULK {
                    return Err(too_big());
                }
                let new = match e.get() {
                    None => Value::string(suffix),
                    Some(v) => v.with_bytes(|old| {
                        let mut new = Vec::with_capacity(old.len() + suffix.len());
                        new.extend_from_slice(old);
                        new.extend_from_slice(suffix);
                        Value::from_vec(new)
                    })?,
                };
                put(state, e, new)?;
                Ok(Frame::Integer((old_len + suffix.len()) as i64))
            })
        })?
    }
}

#[derive(Debug)]
pub struct StrLen(Bytes);

impl Command for StrLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(StrLen(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let len = cx.read([&self.0[..]], |t| {
            t.peek(&self.0).map_or(Ok(0), Value::str_len)
        })??;
        Ok(Frame::Integer(len as i64))
    }
}

#[derive(Debug)]
pub struct GetRange(Bytes, i64, i64);

impl Command for GetRange {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetRange(
            args.next_bytes()?,
            args.next_int()?,
            args.next_int()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.read([&self.0[..]], |t| match t.get(&self.0) {
            None => Ok(Frame::Bulk(Bytes::new())),
            Some(v) => v.with_bytes(|s| range(s, self.1, self.2)),
        })?
    }
}

/// GETRANGE's slice of `s`, with Redis's index rules.
fn range(s: &[u8], start: i64, end: i64) -> Frame {
    {
        let len = s.len() as i64;
        let (mut start, mut end) = (start, end);
        if start < 0 && end < 0 && start > end {
            return Frame::Bulk(Bytes::new());
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0).min(len - 1);
        if len == 0 || start > end {
            return Frame::Bulk(Bytes::new());
        }
        Frame::Bulk(Bytes::copy_from_slice(&s[start as usize..=end as usize]))
    }
}

#[derive(Debug)]
pub struct SetRange(Bytes, i64, Bytes);

impl Command for SetRange {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetRange(
            args.next_bytes()?,
            args.next_int()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let SetRange(key, offset, patch) = self;
        if offset < 0 {
            return Err(CommandError::err("offset is out of range"));
        }
        let state = cx.state;
        cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                let old_len = e.get().map_or(Ok(0), Value::str_len)?;
                if patch.is_empty() {
                    return Ok(Frame::Integer(old_len as i64));
                }
                if offset.saturating_add(patch.len() as i64) > MAX_BULK {
                    return Err(too_big());
                }
                let offset = offset as usize;
                let mut new = match e.get() {
                    None => Vec::new(),
                    Some(v) => v.with_bytes(<[u8]>::to_vec)?,
                };
                if new.len() < offset + patch.len() {
                    new.resize(offset + patch.len(), 0);
                }
                new[offset..offset + patch.len()].copy_from_slice(&patch);
                let len = new.len() as i64;
                put(state, e, Value::from_vec(new))?;
                Ok(Frame::Integer(len))
            })
        })?
    }
}

/// INCR and relatives: adds `delta` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(cx: &mut Ctx<'_>, key: Bytes, delta: i64) -> Reply {
    cx.write([&key[..]], |t| {
        t.compute(&key, |e| {
            let current = match e.get() {
                None => 0,
                Some(Value::Int(n)) => *n,
                Some(v) => v
                    .with_bytes(parse_int)?
                    .ok_or_else(CommandError::not_integer)?,
            };
            let new = current
                .checked_add(delta)
                .ok_or_else(|| CommandError::err("increment or decrement would overflow"))?;
            // In place: an integer stays an integer, with its TTL.
            match e.get_mut() {
                Some(v) => *v = Value::Int(new),
                None => {
                    e.insert(Value::Int(new)).map_err(refused)?;
                }
            }
            Ok(Frame::Integer(new))
        })
    })?
}

#[derive(Debug)]
pub struct Incr(Bytes);

impl Command for Incr {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Incr(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        incr_by(cx, self.0, 1)
    }
}

#[derive(Debug)]
pub struct Decr(Bytes);

impl Command for Decr {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Decr(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        incr_by(cx, self.0, -1)
    }
}

#[derive(Debug)]
pub struct IncrBy(Bytes, i64);

impl Command for IncrBy {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(IncrBy(args.next_bytes()?, args.next_int()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        incr_by(cx, self.0, self.1)
    }
}

#[derive(Debug)]
pub struct DecrBy(Bytes, i64);

impl Command for DecrBy {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(DecrBy(args.next_bytes()?, args.next_int()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // The one decrement that cannot be negated.
        if self.1 == i64::MIN {
            return Err(CommandError::err("decrement would overflow"));
        }
        incr_by(cx, self.0, -self.1)
    }
}

#[derive(Debug)]
pub struct IncrByFloat(Bytes, Bytes);

impl Command for IncrByFloat {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let increment = args.next_bytes()?;
        parse_float(&increment).ok_or_else(not_a_float)?;
        Ok(IncrByFloat(key, increment))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let current = match e.get() {
                    None => LongDouble::from_i64(0),
                    Some(Value::Int(n)) => LongDouble::from_i64(*n),
                    Some(v) => v.with_bytes(long_double)??,
                };
                let text = current
                    .add(long_double(&self.1)?)
                    .ok_or_else(|| CommandError::err("increment would produce NaN or Infinity"))?
                    .to_human();
                put(state, e, Value::string(text.as_bytes()))?;
                Ok(Frame::Bulk(Bytes::from(text)))
            })
        })?
    }
}

fn not_a_float() -> CommandError {
    CommandError::err("value is not a valid float")
}

/// A float argument or stored value as Redis's `long double`: decimal text exactly, other
/// spellings `strtold` takes (hexadecimal) through `f64`; infinities cannot be incremented.
pub(crate) fn long_double(text: &[u8]) -> Result<LongDouble, CommandError> {
    let v = parse_float(text).ok_or_else(not_a_float)?;
    match LongDouble::parse(text) {
        Some(Parsed::Value(ld)) => Ok(ld),
        Some(Parsed::OutOfRange) => Err(not_a_float()),
        None => LongDouble::from_f64(v)
            .ok_or_else(|| CommandError::err("increment would produce NaN or Infinity")),
    }
}

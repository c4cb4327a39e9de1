//! String commands: GET, SET and its variants, ranges, counters.
//!
//! Redis checks options before numbers and types before values; the parse/apply split follows
//! that order so error precedence matches (`SET k v EX abc NX XX` is a syntax error, not a
//! number error).

use super::{Command, CommandError, Ctx, ErrorKind, Reply, bool_reply};
use crate::db::{Db, Value, duration_millis, now_millis};
use crate::frame::{Frame, MAX_BULK};
use crate::parse::{Parse, parse_float, parse_int};
use bytes::{Bytes, BytesMut};
use lethe::{InsertOptions, WriteCondition};

/// The string at `key`: `None` if missing, WRONGTYPE if another type.
pub(crate) fn get_string(db: &Db, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(CommandError::wrong_type()),
    }
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
    db: &Db,
    key: Bytes,
    value: Bytes,
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
            Some(WriteCondition::IfAbsent) => db.get(&key).is_none(),
            Some(WriteCondition::IfPresent) => db.get(&key).is_some(),
            _ => true,
        };
        if allowed {
            db.remove(&key);
        }
        return Ok(allowed);
    }
    db.set(key, Value::Str(value), &options)
}

#[derive(Debug)]
pub struct Get(Bytes);

impl Command for Get {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Get(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(bulk_or_null(get_string(cx.db, &self.0)?))
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
        let old = if self.get {
            get_string(cx.db, &self.key)?
        } else {
            None
        };
        let written = write_string(
            cx.db,
            self.key,
            self.value,
            deadline,
            self.keep_ttl,
            self.condition,
        )?;
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
        let Some(value) = get_string(cx.db, &self.key)? else {
            return Ok(Frame::Null);
        };
        if let Some(e) = &self.expiry {
            let at = e.deadline_millis("getex")?;
            let left = at - now_millis();
            if left <= 0 {
                cx.db.remove(&self.key);
            } else {
                cx.db.cache().expire(
                    &self.key[..],
                    duration_millis(left),
                    lethe::ExpireCondition::Always,
                );
            }
        } else if self.persist {
            cx.db.cache().persist(&self.key[..]);
        }
        Ok(Frame::Bulk(value))
    }
}

#[derive(Debug)]
pub struct GetDel(Bytes);

impl Command for GetDel {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetDel(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let value = get_string(cx.db, &self.0)?;
        if value.is_some() {
            cx.db.remove(&self.0);
        }
        Ok(bulk_or_null(value))
    }
}

#[derive(Debug)]
pub struct GetSet(Bytes, Bytes);

impl Command for GetSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetSet(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let old = get_string(cx.db, &self.0)?;
        write_string(cx.db, self.0, self.1, None, false, None)?;
        Ok(bulk_or_null(old))
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
        Ok(Frame::Array(
            self.0
                .iter()
                .map(|k| bulk_or_null(get_string(cx.db, k).ok().flatten()))
                .collect(),
        ))
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

#[derive(Debug)]
pub struct MSet(Vec<(Bytes, Bytes)>);

impl Command for MSet {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(MSet(pairs(args, "mset")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        for (k, v) in self.0 {
            write_string(cx.db, k, v, None, false, None)?;
        }
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct MSetNx(Vec<(Bytes, Bytes)>);

impl Command for MSetNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(MSetNx(pairs(args, "msetnx")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if self.0.iter().any(|(k, _)| cx.db.get(k).is_some()) {
            return Ok(Frame::Integer(0));
        }
        for (k, v) in self.0 {
            write_string(cx.db, k, v, None, false, None)?;
        }
        Ok(Frame::Integer(1))
    }
}

#[derive(Debug)]
pub struct SetNx(Bytes, Bytes);

impl Command for SetNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetNx(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let set = write_string(
            cx.db,
            self.0,
            self.1,
            None,
            false,
            Some(WriteCondition::IfAbsent),
        )?;
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
        write_string(cx.db, self.0, self.2, Some(at), false, None)?;
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
        write_string(cx.db, self.0, self.2, Some(at), false, None)?;
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
        let old = get_string(cx.db, &self.0)?.unwrap_or_default();
        if (old.len() + self.1.len()) as i64 > MAX_BULK {
            return Err(too_big());
        }
        let mut new = BytesMut::with_capacity(old.len() + self.1.len());
        new.extend_from_slice(&old);
        new.extend_from_slice(&self.1);
        let len = new.len() as i64;
        cx.db.replace(self.0, Value::Str(new.freeze()))?;
        Ok(Frame::Integer(len))
    }
}

#[derive(Debug)]
pub struct StrLen(Bytes);

impl Command for StrLen {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(StrLen(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let len = get_string(cx.db, &self.0)?.map_or(0, |s| s.len());
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
        let s = get_string(cx.db, &self.0)?.unwrap_or_default();
        let len = s.len() as i64;
        let (mut start, mut end) = (self.1, self.2);
        if start < 0 && end < 0 && start > end {
            return Ok(Frame::Bulk(Bytes::new()));
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
            return Ok(Frame::Bulk(Bytes::new()));
        }
        Ok(Frame::Bulk(s.slice(start as usize..=end as usize)))
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
        let old = get_string(cx.db, &key)?;
        if patch.is_empty() {
            return Ok(Frame::Integer(old.map_or(0, |s| s.len() as i64)));
        }
        if offset.saturating_add(patch.len() as i64) > MAX_BULK {
            return Err(too_big());
        }
        let old = old.unwrap_or_default();
        let offset = offset as usize;
        let mut new = BytesMut::from(&old[..]);
        if new.len() < offset + patch.len() {
            new.resize(offset + patch.len(), 0);
        }
        new[offset..offset + patch.len()].copy_from_slice(&patch);
        let len = new.len() as i64;
        cx.db.replace(key, Value::Str(new.freeze()))?;
        Ok(Frame::Integer(len))
    }
}

/// INCR and relatives: adds `delta` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(cx: &mut Ctx<'_>, key: Bytes, delta: i64) -> Reply {
    let current = match get_string(cx.db, &key)? {
        None => 0,
        Some(s) => parse_int(&s).ok_or_else(CommandError::not_integer)?,
    };
    let new = current
        .checked_add(delta)
        .ok_or_else(|| CommandError::err("increment or decrement would overflow"))?;
    cx.db
        .replace(key, Value::Str(Bytes::from(new.to_string())))?;
    Ok(Frame::Integer(new))
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
pub struct IncrByFloat(Bytes, f64);

impl Command for IncrByFloat {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(IncrByFloat(args.next_bytes()?, args.next_float()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let current = match get_string(cx.db, &self.0)? {
            None => 0.0,
            Some(s) => {
                parse_float(&s).ok_or_else(|| CommandError::err("value is not a valid float"))?
            }
        };
        let new = current + self.1;
        if !new.is_finite() {
            return Err(CommandError::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(format_incr_float(new));
        cx.db.replace(self.0, Value::Str(text.clone()))?;
        Ok(Frame::Bulk(text))
    }
}

/// Redis computes in `long double` and prints 17 decimals with trailing zeros trimmed, so
/// `0.1 + 0.2` reads back as `0.3`. Rounding the `f64` sum to 15 significant digits (all an
/// `f64` holds reliably) and printing the shortest form gives the same text for ordinary values.
fn format_incr_float(v: f64) -> String {
    let rounded: f64 = format!("{v:.14e}").parse().unwrap_or(v);
    let s = rounded.to_string();
    if s == "-0" { "0".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::format_incr_float;

    #[test]
    fn incr_float_prints_like_redis() {
        assert_eq!(format_incr_float(0.1 + 0.2), "0.3");
        assert_eq!(format_incr_float(10.5 + 0.1), "10.6");
        assert_eq!(format_incr_float(5200.0), "5200");
        assert_eq!(format_incr_float(-0.0), "0");
        assert_eq!(format_incr_float(1e20), "100000000000000000000");
    }
}

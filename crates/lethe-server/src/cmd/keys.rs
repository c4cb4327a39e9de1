//! Keyspace commands: existence, deletion, types, expiry, listing (KEYS, SCAN, RANDOMKEY),
//! RENAME and flushing.
//!
//! SCAN's cursor is a position in a fixed order of keys (a hash of each key), so a key present
//! for the whole scan is returned at least once however the keyspace changes between calls, as
//! Redis guarantees, without keeping any state per scan on the server.

use super::{Command, CommandError, Ctx, Reply, bool_reply};
use crate::frame::Frame;
use crate::keyspace::{key_name, now_millis, timestamp_millis};
use crate::parse::Parse;
use bytes::Bytes;
use lethe::expiry::ExpireCondition;
use std::hash::{DefaultHasher, Hash, Hasher};

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

#[derive(Debug)]
pub struct Del(Vec<Bytes>);

impl Command for Del {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Del(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let removed = cx.write(self.0.iter().map(|k| &k[..]), |t| {
            self.0.iter().filter(|k| t.delete(k)).count()
        })?;
        Ok(Frame::Integer(removed as i64))
    }
}

#[derive(Debug)]
pub struct Exists(Vec<Bytes>);

impl Command for Exists {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Exists(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // Repeated keys count each time, as in Redis.
        let n = cx.read(self.0.iter().map(|k| &k[..]), |t| {
            self.0.iter().filter(|k| t.exists(k)).count()
        })?;
        Ok(Frame::Integer(n as i64))
    }
}

#[derive(Debug)]
pub struct Touch(Vec<Bytes>);

impl Command for Touch {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Touch(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // A read is what records the access for eviction.
        let n = cx.read(self.0.iter().map(|k| &k[..]), |t| {
            self.0.iter().filter(|k| t.get(k).is_some()).count()
        })?;
        Ok(Frame::Integer(n as i64))
    }
}

#[derive(Debug)]
pub struct Type(Bytes);

impl Command for Type {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Type(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let name = cx.read([&self.0[..]], |t| {
            t.get(&self.0).map_or("none", |v| v.type_name())
        })?;
        Ok(Frame::Simple(name.into()))
    }
}

/// The shared form of EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
#[derive(Debug)]
struct ExpireArgs {
    key: Bytes,
    when: Bytes,
    cond: ExpireCondition,
    /// XX together with LT: the engine's LT also applies to keys without a TTL, XX does not.
    needs_ttl: bool,
}

impl ExpireArgs {
    fn parse(args: &mut Parse) -> Result<ExpireArgs, CommandError> {
        let key = args.next_bytes()?;
        let when = args.next_bytes()?;
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        while let Some(opt) = args.try_next() {
            match String::from_utf8_lossy(&opt).to_ascii_uppercase().as_str() {
                "NX" => nx = true,
                "XX" => xx = true,
                "GT" => gt = true,
                "LT" => lt = true,
                _ => {
                    return Err(CommandError::err(&format!(
                        "Unsupported option {}",
                        String::from_utf8_lossy(&opt)
                    )));
                }
            }
        }
        if nx && (xx || gt || lt) {
            return Err(CommandError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(CommandError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        let cond = match (nx, xx, gt, lt) {
            (true, ..) => ExpireCondition::Nx,
            (_, _, true, _) => ExpireCondition::Gt,
            (_, _, _, true) => ExpireCondition::Lt,
            (_, true, ..) => ExpireCondition::Xx,
            _ => ExpireCondition::Always,
        };
        Ok(ExpireArgs {
            key,
            when,
            cond,
            needs_ttl: xx && lt,
        })
    }

    /// Applies the expiry; `seconds` scales the number, `absolute` makes it a Unix time.
    fn apply(self, cx: &mut Ctx<'_>, cmd: &str, seconds: bool, absolute: bool) -> Reply {
        let n = crate::parse::parse_int(&self.when).ok_or_else(CommandError::not_integer)?;
        let ms = if seconds {
            n.checked_mul(1000)
                .ok_or_else(|| CommandError::invalid_expire(cmd))?
        } else {
            n
        };
        let now = now_millis();
        let at = if absolute {
            Some(ms)
        } else {
            ms.checked_add(now)
        }
        .ok_or_else(|| CommandError::invalid_expire(cmd))?;
        let key = &self.key[..];
        let set = cx.write([key], |t| {
            if self.needs_ttl && t.ttl(key) == lethe::expiry::KeyTtl::Persistent {
                return false;
            }
            // A deadline not in the future removes the key.
            t.expire_at(key, timestamp_millis(at), self.cond)
        })?;
        Ok(bool_reply(set))
    }
}

macro_rules! expire_command {
    ($ty:ident, $name:literal, $seconds:literal, $absolute:literal) => {
        #[derive(Debug)]
        pub struct $ty(ExpireArgs);

        impl Command for $ty {
            fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
                Ok($ty(ExpireArgs::parse(args)?))
            }

            fn apply(self, cx: &mut Ctx<'_>) -> Reply {
                self.0.apply(cx, $name, $seconds, $absolute)
            }
        }
    };
}

expire_command!(Expire, "expire", true, false);
expire_command!(PExpire, "pexpire", false, false);
expire_command!(ExpireAt, "expireat", true, true);
expire_command!(PExpireAt, "pexpireat", false, true);

/// TTL, PTTL, EXPIRETIME and PEXPIRETIME: which quantity, in which unit.
macro_rules! ttl_command {
    ($ty:ident, |$cx:ident, $key:ident| $body:expr) => {
        #[derive(Debug)]
        pub struct $ty(Bytes);

        impl Command for $ty {
            fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
                Ok($ty(args.next_bytes()?))
            }

            fn apply(self, $cx: &mut Ctx<'_>) -> Reply {
                let $key = &self.0[..];
                Ok(Frame::Integer($cx.read([$key], |$cx| $body)?))
            }
        }
    };
}

ttl_command!(Ttl, |t, key| t.ttl_seconds(key));
ttl_command!(PTtl, |t, key| t.pttl_millis(key));
ttl_command!(ExpireTime, |t, key| match t.expire_time_millis(key) {
    ms if ms < 0 => ms,
    // Rounded to the nearest second, as Redis does (without overflow near i64::MAX).
    ms => ((i128::from(ms) + 500) / 1000) as i64,
});
ttl_command!(PExpireTime, |t, key| t.expire_time_millis(key));

#[derive(Debug)]
pub struct Persist(Bytes);

impl Command for Persist {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Persist(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(bool_reply(cx.write([&self.0[..]], |t| t.persist(&self.0))?))
    }
}

#[derive(Debug)]
pub struct Keys(Bytes);

impl Command for Keys {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Keys(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let mut keys = db_keys(cx, Some(&self.0));
        // Redis's order is its hash table's; sorted is as valid and easier to read.
        keys.sort_unstable();
        Ok(Frame::Array(keys.into_iter().map(Frame::Bulk).collect()))
    }
}

/// The names of the live keys of the client's database matching `pattern` (all without one).
fn db_keys(cx: &Ctx<'_>, pattern: Option<&[u8]>) -> Vec<Bytes> {
    // The database byte is never a glob character, so it prefixes the pattern as a literal.
    let glob = cx.stored_key(pattern.unwrap_or(b"*"));
    cx.state
        .cache()
        .keys_matching(glob.as_bytes())
        .into_iter()
        .map(|k| Bytes::copy_from_slice(key_name(&k)))
        .collect()
}

/// A key's place in SCAN order: a stable 63-bit hash, shifted so that no key sits at 0 (the
/// cursor that starts and ends a scan).
pub(super) fn scan_position(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() >> 1) + 1
}

/// A cursor as Redis reads it (`strtoul` over the whole argument, no leading space): an
/// optional sign and digits, a negative number wrapping around as in C, and the empty string
/// meaning 0 (`strtoul` converts nothing and stops at the end).
pub(crate) fn parse_cursor(raw: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(raw).ok()?;
    if text.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(if negative { n.wrapping_neg() } else { n })
}

#[derive(Debug)]
pub struct Scan {
    cursor: u64,
    pattern: Option<Bytes>,
    count: usize,
    type_name: Option<String>,
}

impl Command for Scan {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let raw = args.next_bytes()?;
        let cursor = parse_cursor(&raw).ok_or_else(|| CommandError::err("invalid cursor"))?;
        let mut scan = Scan {
            cursor,
            pattern: None,
            count: 10,
            type_name: None,
        };
        while let Some(opt) = args.try_next() {
            let keyword = String::from_utf8_lossy(&opt).to_ascii_uppercase();
            if args.remaining() == 0 {
                return Err(CommandError::syntax());
            }
            match keyword.as_str() {
                "COUNT" => {
                    let n = args.next_int()?;
                    if n < 1 {
                        return Err(CommandError::syntax());
                    }
                    scan.count = usize::try_from(n).unwrap_or(usize::MAX);
                }
                "MATCH" => scan.pattern = Some(args.next_bytes()?),
                "TYPE" => {
                    scan.type_name =
                        Some(String::from_utf8_lossy(&args.next_bytes()?).into_owned());
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(scan)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let keys = db_keys(cx, self.pattern.as_deref());
        let mut ahead: Vec<(u64, Bytes)> = keys
            .into_iter()
            .map(|k| (scan_position(&k), k))
            .filter(|(pos, _)| *pos >= self.cursor)
            .collect();
        ahead.sort_unstable();
        let next = ahead.get(self.count).map_or(0, |(pos, _)| *pos);
        let page = ahead.into_iter().take(self.count).filter(|(_, k)| {
            self.type_name.as_deref().is_none_or(|t| {
                let key = cx.stored_key(k);
                let value = cx.state.cache().peek_value(key.as_bytes());
                value.is_some_and(|v| v.type_name().eq_ignore_ascii_case(t))
            })
        });
        Ok(Frame::Array(vec![
            Frame::bulk(next.to_string()),
            Frame::Array(page.map(|(_, k)| Frame::Bulk(k)).collect()),
        ]))
    }
}

#[derive(Debug)]
pub struct RandomKey;

impl Command for RandomKey {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(RandomKey)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let keys = db_keys(cx, None);
        if keys.is_empty() {
            return Ok(Frame::Null);
        }
        Ok(Frame::Bulk(keys[fastrand::usize(..keys.len())].clone()))
    }
}

#[derive(Debug)]
pub struct Rename(Bytes, Bytes);

impl Command for Rename {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Rename(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        rename(cx, &self.0, &self.1, false)?;
        Ok(Frame::ok())
    }
}

/// The earliest field deadline of a hash value: a hash moved or copied to a new key is
/// registered there for the active sweep of fields.
fn field_deadline(value: &crate::keyspace::Value) -> Option<i64> {
    match value {
        crate::keyspace::Value::Hash(h) => h.next_deadline(),
        _ => None,
    }
}

/// RENAME and RENAMENX (`nx`): moves the value of `from` to `to` with its TTL, under the locks
/// of both; false when nothing moved (the same name, or for RENAMENX an existing `to`).
fn rename(cx: &mut Ctx<'_>, from: &[u8], to: &[u8], nx: bool) -> Result<bool, CommandError> {
    let state = cx.state;
    cx.write([from, to], |t| {
        let Some(expires_at) = t.metadata(from).map(|m| m.expires_at) else {
            return Err(CommandError::err("no such key"));
        };
        // Since Redis 3.2 the same name is not an error, just nothing done.
        if from == to || (nx && t.exists(to)) {
            return Ok(false);
        }
        let value = t
            .remove(from)
            .ok_or_else(|| CommandError::err("no such key"))?;
        state.check_fits(&t.key(to), &value)?;
        let fields_due = field_deadline(&value);
        t.insert(to, value, &lethe::InsertOptions::new())
            .map_err(crate::state::refused)?;
        if let Some(at) = fields_due {
            state.keyspace().field_expiry().register(&t.key(to), at);
        }
        // The TTL moves with the value.
        if let Some(at) = expires_at {
            t.expire_at(to, at, ExpireCondition::Always);
        }
        Ok(true)
    })?
}

#[derive(Debug)]
pub struct RenameNx(Bytes, Bytes);

impl Command for RenameNx {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(RenameNx(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(bool_reply(rename(cx, &self.0, &self.1, true)?))
    }
}

/// The database number argument of COPY and MOVE.
fn database_arg(raw: &[u8]) -> Result<u8, CommandError> {
    let n = crate::parse::parse_int(raw).ok_or_else(CommandError::not_integer)?;
    u8::try_from(n)
        .ok()
        .filter(|&db| db < crate::keyspace::DATABASES)
        .ok_or_else(|| CommandError::err("DB index is out of range"))
}

/// Copies the live value of `from` (database `src`) to `to` (database `dst`) with its TTL,
/// under locks held on both; `replace` overwrites, `remove` moves. 1 if done.
fn copy_value(
    cx: &mut Ctx<'_>,
    (src, from): (u8, &[u8]),
    (dst, to): (u8, &[u8]),
    replace: bool,
    remove: bool,
) -> Result<i64, CommandError> {
    let state = cx.state;
    let (psrc, pdst) = (cx.prefix(src), cx.prefix(dst));
    cx.write_across([(src, from), (dst, to)], |t| {
        t.use_db(psrc);
        let Some(meta) = t.metadata(from) else {
            return Ok(0);
        };
        let value = t
            .peek(from)
            .cloned()
            .ok_or_else(|| CommandError::err("no such key"))?;
        t.use_db(pdst);
        if t.exists(to) && !replace {
            return Ok(0);
        }
        state.check_fits(&t.key(to), &value)?;
        let fields_due = field_deadline(&value);
        t.insert(to, value, &lethe::InsertOptions::new())
            .map_err(crate::state::refused)?;
        if let Some(at) = fields_due {
            state.keyspace().field_expiry().register(&t.key(to), at);
        }
        if let Some(at) = meta.expires_at {
            t.expire_at(to, at, ExpireCondition::Always);
        }
        if remove {
            t.use_db(psrc);
            t.delete(from);
        }
        Ok(1)
    })?
}

#[derive(Debug)]
pub struct Copy {
    from: Bytes,
    to: Bytes,
    db: Option<Bytes>,
    replace: bool,
}

impl Command for Copy {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut copy = Copy {
            from: args.next_bytes()?,
            to: args.next_bytes()?,
            db: None,
            replace: false,
        };
        while let Some(opt) = args.try_next() {
            match String::from_utf8_lossy(&opt).to_ascii_uppercase().as_str() {
                "REPLACE" => copy.replace = true,
                "DB" if args.remaining() > 0 => copy.db = Some(args.next_bytes()?),
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(copy)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let src = cx.session.db;
        let dst = match &self.db {
            Some(raw) => database_arg(raw)?,
            None => src,
        };
        if src == dst && self.from == self.to {
            return Err(CommandError::err(
                "source and destination objects are the same",
            ));
        }
        let done = copy_value(cx, (src, &self.from), (dst, &self.to), self.replace, false)?;
        Ok(Frame::Integer(done))
    }
}

#[derive(Debug)]
pub struct Move(Bytes, Bytes);

impl Command for Move {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Move(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if cx.state.cluster().is_some() {
            return Err(CommandError::err("MOVE is not allowed in cluster mode"));
        }
        let src = cx.session.db;
        let dst = database_arg(&self.1)?;
        if src == dst {
            return Err(CommandError::err(
                "source and destination objects are the same",
            ));
        }
        let done = copy_value(cx, (src, &self.0), (dst, &self.0), false, true)?;
        Ok(Frame::Integer(done))
    }
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key` and `OBJECT HELP`.
#[derive(Debug)]
pub struct Object(Bytes, Option<Bytes>);

impl Command for Object {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let sub = args.next_bytes()?;
        let key = args.try_next();
        let name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
        let wants_key = match name.as_str() {
            "help" => false,
            "encoding" | "refcount" | "idletime" | "freq" => true,
            _ => {
                return Err(CommandError::err(&format!(
                    "unknown subcommand '{}'. Try OBJECT HELP.",
                    String::from_utf8_lossy(&sub)
                )));
            }
        };
        if args.remaining() > 0 || key.is_some() != wants_key {
            return Err(CommandError::new(
                super::ErrorKind::Arity,
                format!("ERR wrong number of arguments for 'object|{name}' command"),
            ));
        }
        Ok(Object(sub, key))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let sub = String::from_utf8_lossy(&self.0).to_ascii_lowercase();
        let Some(key) = self.1 else {
            return Ok(Frame::Array(
                OBJECT_HELP
                    .iter()
                    .map(|l| Frame::Simple((*l).into()))
                    .collect(),
            ));
        };
        cx.read([&key[..]], |t| {
            let Some(value) = t.peek(&key) else {
                return Ok(Frame::Null);
            };
            Ok(match sub.as_str() {
                "encoding" => Frame::bulk(value.encoding()),
                // Redis shares the integers below 10,000 and reports them as immortal.
                "refcount" => Frame::Integer(match value {
                    crate::keyspace::Value::Int(n) if (0..10_000).contains(n) => 2_147_483_647,
                    _ => 1,
                }),
                "idletime" => {
                    let idle = t
                        .metadata(&key)
                        .map_or(0, |m| now_ns().saturating_sub(m.last_access.as_nanos()));
                    Frame::Integer((idle / 1_000_000_000) as i64)
                }
                _ => {
                    return Err(CommandError::err(
                        "An LFU maxmemory policy is not selected, access frequency not \
                         tracked. Please note that when switching between policies at runtime \
                         LRU and LFU data will take some time to adjust.",
                    ));
                }
            })
        })?
    }
}

fn now_ns() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0) * 1_000_000
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

#[derive(Debug)]
pub struct DbSize;

impl Command for DbSize {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(DbSize)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(Frame::Integer(cx.state.db_size(cx.session.db) as i64))
    }
}

/// FLUSHDB (`ALL` false) and FLUSHALL; ASYNC and SYNC are accepted (both flush at once).
#[derive(Debug)]
pub struct Flush<const ALL: bool>;

impl<const ALL: bool> Command for Flush<ALL> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        match args.try_next() {
            None => Ok(Flush),
            Some(mode) if args.remaining() == 0 => {
                match String::from_utf8_lossy(&mode).to_ascii_uppercase().as_str() {
                    "ASYNC" | "SYNC" => Ok(Flush),
                    _ => Err(CommandError::syntax()),
                }
            }
            Some(_) => Err(CommandError::syntax()),
        }
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if ALL {
            cx.state.flush();
        } else {
            cx.state.flush_db(cx.session.db);
        }
        Ok(Frame::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_cursor, scan_position};

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        for bad in [&b" 1"[..], b"1 ", b"-", b"0x1", b"18446744073709551616"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scan_positions_are_stable_and_never_zero() {
        assert_eq!(scan_position(b"a"), scan_position(b"a"));
        assert!((0..1000).all(|i| scan_position(format!("k{i}").as_bytes()) != 0));
    }
}

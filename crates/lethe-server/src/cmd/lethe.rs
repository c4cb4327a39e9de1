//! The `LETHE.*` commands: the engine's invalidation model over RESP, the way a Redis module
//! adds its own commands under a prefix.
//!
//! Plain Redis commands can only store and delete; what Lethe is for (tags, dependencies,
//! versions, leases, rules) needs commands of its own. Values written here are ordinary string
//! values, so `GET`, `TTL` and `DEL` work on them, and the invalidations reach keys written by
//! `SET` too. Every command, its reply shapes and its errors are documented in
//! `docs/commands.md`; keep the two in step.
//!
//! Rejections name the cause in the error text (`ERR stale version: stored 7`) rather than
//! replying nil, because a client that asked for a conditional write needs to know why it lost.

use super::strings::get_string;
use super::{Command, CommandError, Ctx, ErrorKind, Reply};
use crate::frame::Frame;
use crate::keyspace::{SmallBytes, Value, key_name};
use crate::parse::{Parse, parse_float};
use crate::state::{Databases, refused as rejected};
use bytes::Bytes;
use lethe::Invalidation;
use lethe::rules::RuleSet;
use lethe::{
    InsertOptions, RemovalCause, event::Event, event::Operation, expiry::AdaptiveTtl, expiry::Ttl,
    lease::LeaseOutcome, version::ETag, version::WriteCondition,
};
use std::sync::Arc;
use std::time::Duration;

/// The next argument, uppercased, for keyword matching.
fn keyword(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

/// The next argument as UTF-8 text (tags, rule entities and fields are text in the engine).
fn next_text(args: &mut Parse, what: &str) -> Result<String, CommandError> {
    String::from_utf8(args.next_bytes()?.to_vec())
        .map_err(|_| CommandError::err(&format!("{what} is not valid UTF-8")))
}

/// The next argument as a non-negative integer (versions, counts, tokens).
fn next_u64(args: &mut Parse) -> Result<u64, CommandError> {
    u64::try_from(args.next_int()?).map_err(|_| CommandError::not_integer())
}

/// The next argument as a positive number of `unit_ms` milliseconds.
fn next_duration(args: &mut Parse, unit_ms: u64, cmd: &str) -> Result<Duration, CommandError> {
    let n = args.next_int()?;
    let ms = u64::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| CommandError::invalid_expire(cmd))?;
    Ok(Duration::from_millis(ms))
}

/// `n item1 .. itemn`: a counted list, so items may look like keywords.
fn counted(args: &mut Parse) -> Result<Vec<Bytes>, CommandError> {
    let n = next_u64(args)?;
    if n as usize > args.remaining() {
        return Err(CommandError::syntax());
    }
    (0..n).map(|_| args.next_bytes()).collect()
}

fn utf8(b: Bytes, what: &str) -> Result<String, CommandError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| CommandError::err(&format!("{what} is not valid UTF-8")))
}

fn bulk_strings<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Frame {
    Frame::Array(
        items
            .into_iter()
            .map(|i| Frame::Bulk(Bytes::copy_from_slice(i.as_ref())))
            .collect(),
    )
}

/// Key names of the client's database `db` (stored keys of other databases left out), sorted
/// so replies are stable whatever the shard order.
fn sorted_keys(keys: Vec<SmallBytes>, db: u8) -> Frame {
    let mut names: Vec<&[u8]> = keys
        .iter()
        .filter(|k| k.as_bytes()[0] == db)
        .map(|k| key_name(k))
        .collect();
    names.sort();
    bulk_strings(names)
}

/// A string value as its bytes; WRONGTYPE for other types.
fn string_value(v: Value) -> Result<Bytes, CommandError> {
    v.to_bytes()
}

/// The write options shared by `LETHE.SET` and `LETHE.FILL`.
#[derive(Debug, Default)]
struct WriteArgs {
    ttl: Option<Ttl>,
    jitter: Option<f64>,
    tags: Vec<String>,
    depends: Vec<Bytes>,
    version: Option<u64>,
    if_newer: bool,
    policy: Option<(String, Vec<(String, String)>)>,
}

impl WriteArgs {
    /// Parses options until the arguments run out; `cmd` names the command in errors.
    fn parse(args: &mut Parse, cmd: &str) -> Result<WriteArgs, CommandError> {
        let mut w = WriteArgs::default();
        while let Some(opt) = args.try_next() {
            let kw = keyword(&opt);
            match kw.as_str() {
                "EX" | "PX" | "IDLE" | "ADAPTIVE" if w.ttl.is_some() => {
                    return Err(CommandError::syntax());
                }
                "EX" => w.ttl = Some(Ttl::Fixed(next_duration(args, 1000, cmd)?)),
                "PX" => w.ttl = Some(Ttl::Fixed(next_duration(args, 1, cmd)?)),
                "IDLE" => w.ttl = Some(Ttl::Sliding(next_duration(args, 1000, cmd)?)),
                "ADAPTIVE" => {
                    let base = next_duration(args, 1000, cmd)?;
                    let min = next_duration(args, 1000, cmd)?;
                    let max = next_duration(args, 1000, cmd)?;
                    if !(min <= base && base <= max) {
                        return Err(CommandError::err("ADAPTIVE needs min <= base <= max"));
                    }
                    w.ttl = Some(Ttl::Adaptive(AdaptiveTtl::new(base, min, max)));
                }
                "JITTER" => {
                    let f = parse_float(&args.next_bytes()?)
                        .filter(|f| (0.0..1.0).contains(f))
                        .ok_or_else(|| CommandError::err("JITTER must be a number in [0, 1)"))?;
                    w.jitter = Some(f);
                }
                "TAGS" => {
                    for t in counted(args)? {
                        w.tags.push(utf8(t, "tag")?);
                    }
                }
                "DEPENDS" => w.depends.extend(counted(args)?),
                "VERSION" => w.version = Some(next_u64(args)?),
                "IFNEWER" => w.if_newer = true,
                "POLICY" => {
                    let name = next_text(args, "policy name")?;
                    w.policy = Some((name, Vec::new()));
                }
                "FIELD" => {
                    let Some((_, fields)) = w.policy.as_mut() else {
                        return Err(CommandError::err("FIELD needs a POLICY before it"));
                    };
                    let f = next_text(args, "field")?;
                    let v = next_text(args, "field value")?;
                    fields.push((f, v));
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        if w.if_newer && w.version.is_none() {
            return Err(CommandError::err("IFNEWER needs VERSION"));
        }
        Ok(w)
    }

    /// The engine's options: the policy's first (if any), then the explicit options on top
    /// (an explicit TTL replaces the policy's; tags and dependencies add to its). In cluster
    /// mode, dependencies add their owners' tags, and those on other nodes must have been
    /// watched by their owners for this client ([`crate::cluster::remote_deps`]).
    fn options(self, cx: &Ctx<'_>) -> Result<InsertOptions<SmallBytes>, CommandError> {
        let mut o = self.by_name(&cx.state.rules())?;
        if let Some(cluster) = cx.state.cluster() {
            if !o.depends_on.is_empty() {
                let tags = cluster.with_map(|map| {
                    o.depends_on
                        .iter()
                        .map(|d| {
                            let slot = lethe_cluster::key_slot(d);
                            let owner = map.owner(slot).ok_or_else(|| {
                                CommandError::new(
                                    ErrorKind::Other,
                                    format!(
                                        "CLUSTERDOWN Hash slot {slot} of a dependency is not served"
                                    ),
                                )
                            })?;
                            let watched = owner.name == cluster.name()
                                || cx
                                    .session
                                    .dependency_watches
                                    .iter()
                                    .any(|(k, n)| k == d && *n == owner.name);
                            if !watched {
                                return Err(CommandError::new(
                                    ErrorKind::Other,
                                    "TRYAGAIN The owner of a dependency changed while the write \
                                     waited: retry",
                                ));
                            }
                            Ok(crate::cluster::remote_deps::dependency_tag(
                                &owner.name,
                                slot,
                            ))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })?;
                o = o.tags(tags);
            }
        }
        o = attributed(o, cx);
        let db = cx.session.db;
        let keyspace = cx.state.keyspace();
        Ok(o.map_keys(|k| keyspace.key(db, &k)))
    }

    /// The options with keys as the client named them (before they are stored keys).
    fn by_name(&self, rules: &RuleSet) -> Result<InsertOptions<Bytes>, CommandError> {
        let mut o = match &self.policy {
            Some((name, fields)) => {
                let policy = rules
                    .policy(name)
                    .ok_or_else(|| CommandError::err(&format!("no such policy '{name}'")))?;
                policy
                    .insert_options::<Bytes>(|f| {
                        fields.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone())
                    })
                    .map_err(|e| CommandError::err(&e.to_string()))?
            }
            None => InsertOptions::new(),
        };
        if let Some(ttl) = self.ttl.clone() {
            o = o.expiry(ttl);
        }
        if let Some(j) = self.jitter {
            o = o.jitter(j);
        }
        o = o.tags(self.tags.iter().cloned());
        for d in &self.depends {
            o = o.depends_on(d.clone());
        }
        if let Some(v) = self.version {
            o = o.version(v);
        }
        if self.if_newer {
            o = o.condition(WriteCondition::IfNewer);
        }
        Ok(o)
    }
}

/// The commands whose entries can depend on other keys.
pub(crate) const DEPENDENT_WRITES: [&str; 3] = ["lethe.set", "lethe.fill", "lethe.attach"];

/// The dependencies a `LETHE.SET`, `LETHE.FILL` or `LETHE.ATTACH` request (`args`, name
/// first) names, itself or through its policy, and how long its entry lives at most (`None`:
/// no fixed deadline): what cluster mode registers with the keys' owners before the write
/// runs. `None` for other requests, and for requests that do not parse (the command itself
/// reports why).
pub(crate) fn dependencies_of(
    args: &[Bytes],
    rules: &RuleSet,
) -> Option<(Vec<Bytes>, Option<Duration>)> {
    let name = args.first()?;
    let mut parse = Parse::new(args[1..].to_vec());
    let write = if name.eq_ignore_ascii_case(b"lethe.set") {
        Set::parse_frames(&mut parse).ok()?.write
    } else if name.eq_ignore_ascii_case(b"lethe.fill") {
        Fill::parse_frames(&mut parse).ok()?.write
    } else if name.eq_ignore_ascii_case(b"lethe.attach") {
        Attach::parse_frames(&mut parse).ok()?.write
    } else {
        return None;
    };
    let o = write.by_name(rules).ok()?;
    if o.depends_on.is_empty() {
        return None;
    }
    let lives = match &o.ttl {
        Some(Ttl::Fixed(d)) => Some(*d),
        _ => None,
    };
    Some((o.depends_on, lives))
}

/// `LETHE.SET key value [options]`.
#[derive(Debug)]
pub struct Set {
    key: Bytes,
    value: Bytes,
    write: WriteArgs,
}

impl Command for Set {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Set {
            key: args.next_bytes()?,
            value: args.next_bytes()?,
            write: WriteArgs::parse(args, "lethe.set")?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let options = self.write.options(cx)?;
        let key = cx.stored_key(&self.key);
        cx.state
            .try_set(key, Value::string(&self.value), &options, cx.changes)?
            .map_err(rejected)?;
        Ok(Frame::ok())
    }
}

/// `LETHE.ATTACH key [options]`: gives an existing key of any type (a hash, a set, a string
/// written by `SET`) the tags, dependencies, version, TTL or policy `LETHE.SET` would, keeping
/// its value and, unless a TTL is given, its deadline. `:1` if attached, `:0` if the key does
/// not exist.
///
/// The entry is rewritten with its current value only if it was not written in between
/// (compare-and-set on its version, retried): a concurrent write is never undone. Like any
/// write, it invalidates the keys that depend on this one.
#[derive(Debug)]
pub struct Attach {
    key: Bytes,
    write: WriteArgs,
}

/// How often ATTACH retries when a concurrent write beat it.
const ATTACH_RETRIES: usize = 64;

impl Command for Attach {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let attach = Attach {
            key: args.next_bytes()?,
            write: WriteArgs::parse(args, "lethe.attach")?,
        };
        if attach.write.if_newer {
            return Err(CommandError::err("IFNEWER is not allowed in an attach"));
        }
        Ok(attach)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let mut options = self.write.options(cx)?;
        if options.ttl.is_none() {
            options.keep_ttl = true;
        }
        let key = cx.stored_key(&self.key);
        let cache = cx.state.cache();
        for _ in 0..ATTACH_RETRIES {
            let Some(meta) = cache.metadata(key.as_bytes()) else {
                return Ok(Frame::Integer(0));
            };
            // Read after the version: if it is newer than `meta.version`, the write below is
            // refused and retried.
            let Some(value) = cache.peek_value(key.as_bytes()) else {
                return Ok(Frame::Integer(0));
            };
            let mut attempt = options.clone();
            attempt.condition = Some(WriteCondition::IfVersion(meta.version));
            match cx.state.try_set(key.clone(), value, &attempt, cx.changes)? {
                Ok(_) => return Ok(Frame::Integer(1)),
                Err(r) if r.reason == lethe::version::RejectReason::VersionMismatch => continue,
                Err(r) if r.reason == lethe::version::RejectReason::Missing => {
                    return Ok(Frame::Integer(0));
                }
                Err(r) => return Err(rejected(r)),
            }
        }
        Err(CommandError::err(
            "attach gave up: the key is written too often to attach to it",
        ))
    }
}

/// `LETHE.FENCE key version ms`: for `ms` milliseconds, a write or fill of `key` carrying a
/// version below `version` is refused (and a stored entry below it goes now). What change
/// capture sets with the invalidation of a row whose new version it knows, so a reader that
/// read the row before the change can never fill the old version after it.
#[derive(Debug)]
pub struct Fence {
    key: Bytes,
    version: u64,
    hold: Duration,
}

impl Command for Fence {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Fence {
            key: args.next_bytes()?,
            version: next_u64(args)?,
            hold: next_duration(args, 1, "lethe.fence")?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = cx.stored_key(&self.key);
        cx.state.cache().fence(&key, self.version, self.hold);
        cx.changes.record(&key);
        Ok(Frame::ok())
    }
}

/// What `LETHE.INVALIDATE` removes.
#[derive(Debug)]
pub enum Invalidate {
    Tags(Vec<String>),
    Prefix(Bytes),
    Glob(Bytes),
    Keys(Vec<Bytes>),
}

/// A prefix or glob matching every key is refused: emptying the cache takes FLUSHALL (a
/// prefix built from an empty variable must not do it silently).
fn everything_refused(arg: Bytes, kind: &str) -> Result<Bytes, CommandError> {
    let everything = if kind == "prefix" {
        crate::limits::prefix_matches_everything(&arg)
    } else {
        crate::limits::glob_matches_everything(&arg)
    };
    if everything {
        return Err(CommandError::err(&format!(
            "this {kind} matches every key; use FLUSHALL to invalidate everything"
        )));
    }
    Ok(arg)
}

impl Command for Invalidate {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let kind = keyword(&args.next_bytes()?);
        let rest = |args: &mut Parse| -> Result<Vec<Bytes>, CommandError> {
            let mut v = vec![args.next_bytes()?];
            v.extend(std::iter::from_fn(|| args.try_next()));
            Ok(v)
        };
        let single = |args: &mut Parse| -> Result<Bytes, CommandError> {
            let b = args.next_bytes()?;
            match args.remaining() {
                0 => Ok(b),
                _ => Err(CommandError::syntax()),
            }
        };
        Ok(match kind.as_str() {
            "TAG" => Invalidate::Tags(
                rest(args)?
                    .into_iter()
                    .map(|t| utf8(t, "tag"))
                    .collect::<Result<_, _>>()?,
            ),
            "PREFIX" => Invalidate::Prefix(everything_refused(single(args)?, "prefix")?),
            "GLOB" => Invalidate::Glob(everything_refused(single(args)?, "glob")?),
            "KEY" => Invalidate::Keys(rest(args)?),
            _ => return Err(CommandError::syntax()),
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        use ::lethe::Invalidation as I;
        let what: Vec<I<Bytes>> = match self {
            Invalidate::Tags(tags) => tags.into_iter().map(I::Tag).collect(),
            Invalidate::Prefix(p) => vec![I::Prefix(p.to_vec())],
            Invalidate::Glob(g) => vec![I::Glob(g.to_vec())],
            Invalidate::Keys(keys) => keys.into_iter().map(I::Key).collect(),
        };
        let origin = cx.state.keeps_history().then(|| cx.session.origin());
        let n = cx
            .state
            .invalidate_held(&what, Databases::One(cx.session.db), origin)
            .map_err(|e| CommandError::err(&e))?;
        Ok(Frame::Integer(n as i64))
    }
}

/// `LETHE.TAGS key`: the key's tags.
#[derive(Debug)]
pub struct Tags(Bytes);

impl Command for Tags {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Tags(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = cx.stored_key(&self.0);
        let mut tags = cx.state.cache().tags_of(key.as_bytes()).unwrap_or_default();
        tags.sort();
        Ok(bulk_strings(tags))
    }
}

/// `options` naming the calling client as the write's origin, when history is kept.
fn attributed<K>(options: InsertOptions<K>, cx: &Ctx<'_>) -> InsertOptions<K> {
    if cx.state.keeps_history() {
        options.origin(cx.session.origin())
    } else {
        options
    }
}

/// `LETHE.WHY key`: why the key is or is not cached (see [`crate::why`]).
#[derive(Debug)]
pub struct Why(Bytes);

impl Command for Why {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Why(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(crate::why::WhyReport::of(cx.state, cx.session.db, &self.0).to_frame())
    }
}

/// `LETHE.KEYS.TAG tag`: live keys under the tag (or a tag below it).
#[derive(Debug)]
pub struct KeysTag(String);

impl Command for KeysTag {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(KeysTag(next_text(args, "tag")?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let keys = cx.state.cache().keys_with_tag(&self.0);
        Ok(sorted_keys(keys, cx.prefix(cx.session.db)))
    }
}

/// `LETHE.DEPS key`: the keys `key` depends on.
#[derive(Debug)]
pub struct Deps(Bytes);

impl Command for Deps {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Deps(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = cx.stored_key(&self.0);
        let keys = cx.state.cache().dependencies_of(key.as_bytes());
        Ok(sorted_keys(keys, cx.prefix(cx.session.db)))
    }
}

/// `LETHE.DEPENDENTS key`: the keys that depend directly on `key`.
#[derive(Debug)]
pub struct Dependents(Bytes);

impl Command for Dependents {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Dependents(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = cx.stored_key(&self.0);
        let keys = cx.state.cache().dependents_of(&key);
        Ok(sorted_keys(keys, cx.prefix(cx.session.db)))
    }
}

/// `LETHE.VERSION key`.
#[derive(Debug)]
pub struct Version(Bytes);

impl Command for Version {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Version(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = cx.stored_key(&self.0);
        Ok(cx
            .state
            .cache()
            .version(key.as_bytes())
            .map_or(Frame::Null, |v| Frame::Integer(v as i64)))
    }
}

/// `LETHE.SETIFNEWER key version value`.
#[derive(Debug)]
pub struct SetIfNewer {
    key: Bytes,
    version: u64,
    value: Bytes,
}

impl Command for SetIfNewer {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetIfNewer {
            key: args.next_bytes()?,
            version: next_u64(args)?,
            value: args.next_bytes()?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let options = attributed(
            InsertOptions::new()
                .version(self.version)
                .condition(WriteCondition::IfNewer),
            cx,
        );
        let key = cx.stored_key(&self.key);
        cx.state
            .try_set(key, Value::string(&self.value), &options, cx.changes)?
            .map_err(rejected)?;
        Ok(Frame::ok())
    }
}

/// `LETHE.CAS key expected value [VERSION new]`: replies with the stored version.
#[derive(Debug)]
pub struct Cas {
    key: Bytes,
    expected: u64,
    value: Bytes,
    version: Option<u64>,
}

impl Command for Cas {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut cas = Cas {
            key: args.next_bytes()?,
            expected: next_u64(args)?,
            value: args.next_bytes()?,
            version: None,
        };
        match args.try_next() {
            None => {}
            Some(kw) if keyword(&kw) == "VERSION" && args.remaining() == 1 => {
                cas.version = Some(next_u64(args)?);
            }
            Some(_) => return Err(CommandError::syntax()),
        }
        Ok(cas)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let mut options = attributed(
            InsertOptions::new().condition(WriteCondition::IfVersion(self.expected)),
            cx,
        );
        if let Some(v) = self.version {
            options = options.version(v);
        }
        let key = cx.stored_key(&self.key);
        cx.state
            .try_set(
                key.clone(),
                Value::string(&self.value),
                &options,
                cx.changes,
            )?
            .map_err(rejected)?;
        // Read right after the write: with an explicit VERSION that is the one stored; a
        // concurrent write in between can only make it newer.
        Ok(cx
            .state
            .cache()
            .version(key.as_bytes())
            .map_or(Frame::Null, |v| Frame::Integer(v as i64)))
    }
}

/// `LETHE.ETAG key`: the strong ETag of a string value.
#[derive(Debug)]
pub struct Etag(Bytes);

impl Command for Etag {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Etag(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // The engine's `Cache::etag` needs `V: Hash`, which the keyspace's `Value` (with its
        // hash type) is not; the tag of a string is `ETag::of` its bytes, computed here.
        Ok(cx
            .read([&self.0[..]], |t| get_string(t, &self.0))??
            .map_or(Frame::Null, |v| Frame::bulk(ETag::of(&v[..]).to_string())))
    }
}

/// `LETHE.GETIFNONEMATCH key etag`.
#[derive(Debug)]
pub struct GetIfNoneMatch {
    key: Bytes,
    etag: ETag,
}

impl Command for GetIfNoneMatch {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let etag = std::str::from_utf8(&args.next_bytes()?)
            .ok()
            .and_then(ETag::parse)
            .ok_or_else(|| CommandError::err("invalid etag"))?;
        Ok(GetIfNoneMatch { key, etag })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let Some(v) = cx.read([&self.key[..]], |t| get_string(t, &self.key))?? else {
            return Ok(Frame::Null);
        };
        let current = ETag::of(&v[..]);
        let tag = Frame::bulk(current.to_string());
        Ok(Frame::Array(if current == self.etag {
            vec![Frame::Simple("not-modified".into()), tag, Frame::Null]
        } else {
            vec![Frame::Simple("modified".into()), tag, Frame::Bulk(v)]
        }))
    }
}

/// `LETHE.LEASE key`.
#[derive(Debug)]
pub struct LeaseCmd(Bytes);

impl Command for LeaseCmd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(LeaseCmd(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let status = |s: &str| Frame::Simple(s.into());
        let key = cx.stored_key(&self.0);
        Ok(Frame::Array(match cx.state.lease(&key) {
            LeaseOutcome::Hit(v) => vec![status("hit"), Frame::Bulk(string_value(v)?)],
            LeaseOutcome::Granted(lease) => {
                vec![status("granted"), Frame::Integer(lease.token() as i64)]
            }
            LeaseOutcome::Pending { stale } => vec![
                status("pending"),
                stale
                    .map(string_value)
                    .transpose()?
                    .map_or(Frame::Null, Frame::Bulk),
            ],
        }))
    }
}

/// `LETHE.FILL key token value [options]`.
#[derive(Debug)]
pub struct Fill {
    key: Bytes,
    token: u64,
    value: Bytes,
    write: WriteArgs,
}

impl Command for Fill {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let fill = Fill {
            key: args.next_bytes()?,
            token: next_u64(args)?,
            value: args.next_bytes()?,
            write: WriteArgs::parse(args, "lethe.fill")?,
        };
        if fill.write.if_newer {
            return Err(CommandError::err("IFNEWER is not allowed in a fill"));
        }
        Ok(fill)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let options = self.write.options(cx)?;
        let key = cx.stored_key(&self.key);
        match cx.state.fill(
            &key,
            self.token,
            Value::string(&self.value),
            &options,
            cx.changes,
        )? {
            None => Err(CommandError::err("fill refused: no such lease")),
            Some(Err(r)) => Err(rejected(r)),
            Some(Ok(_)) => Ok(Frame::ok()),
        }
    }
}

/// `entity op id [OLD f v ...] [NEW f v ...]`, as `LETHE.EVENT` and `LETHE.RULES TEST` take it.
fn parse_event(args: &mut Parse) -> Result<Event, CommandError> {
    let entity = next_text(args, "entity")?;
    let op: Operation = next_text(args, "operation")?
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: lethe::event::ParseOperationError| CommandError::err(&e.to_string()))?;
    let mut event = Event::new(entity, op).id(next_text(args, "id")?);
    let mut side = None;
    while let Some(arg) = args.try_next() {
        match keyword(&arg).as_str() {
            "OLD" => side = Some(false),
            "NEW" => side = Some(true),
            _ => {
                let field = utf8(arg, "field")?;
                let value = next_text(args, "field value")?;
                event = match side {
                    Some(true) => event.with_new(field, value),
                    Some(false) => event.with_old(field, value),
                    None => return Err(CommandError::syntax()),
                };
            }
        }
    }
    Ok(event)
}

fn target_frame(t: &Invalidation<String>) -> Frame {
    let (kind, what) = match t {
        Invalidation::Key(k) => ("key", Bytes::copy_from_slice(k.as_bytes())),
        Invalidation::Tag(t) => ("tag", Bytes::copy_from_slice(t.as_bytes())),
        Invalidation::Prefix(p) => ("prefix", Bytes::copy_from_slice(p)),
        Invalidation::Glob(g) => ("glob", Bytes::copy_from_slice(g)),
        // Rules render keys, tags, prefixes and globs only.
        other => ("other", Bytes::from(format!("{other:?}"))),
    };
    Frame::Array(vec![Frame::bulk(kind), Frame::bulk(what)])
}

/// `LETHE.RULES LOAD text | LIST | TEST event`.
#[derive(Debug)]
pub enum Rules {
    Load(Bytes),
    List,
    Test(Event),
}

impl Command for Rules {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let sub = keyword(&args.next_bytes()?);
        let rules = match sub.as_str() {
            "LOAD" => Rules::Load(args.next_bytes()?),
            "LIST" => Rules::List,
            "TEST" => Rules::Test(parse_event(args)?),
            _ => {
                return Err(CommandError::err(&format!(
                    "unknown subcommand '{sub}'. Try LOAD, LIST or TEST."
                )));
            }
        };
        if args.remaining() > 0 {
            return Err(CommandError::syntax());
        }
        Ok(rules)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        match self {
            Rules::Load(text) => {
                let text = utf8(text, "rule file")?;
                let set = RuleSet::from_toml(&text)
                    .map_err(|e| CommandError::err(&format!("rules not loaded: {e}")))?;
                cx.state.set_rules(set);
                Ok(Frame::ok())
            }
            Rules::List => {
                let rules = cx.state.rules();
                let mut out: Vec<Frame> = rules
                    .rules()
                    .iter()
                    .map(|r| {
                        Frame::Map(vec![
                            (Frame::bulk("type"), Frame::bulk("rule")),
                            (Frame::bulk("name"), Frame::bulk(r.name().to_owned())),
                            (Frame::bulk("entity"), Frame::bulk(r.entity().to_owned())),
                            (
                                Frame::bulk("operations"),
                                bulk_strings(r.operations().map(Operation::as_str)),
                            ),
                            (Frame::bulk("line"), Frame::Integer(r.line() as i64)),
                        ])
                    })
                    .collect();
                let mut policies: Vec<&str> = rules.policies().map(|p| p.name.as_str()).collect();
                policies.sort_unstable();
                out.extend(policies.into_iter().map(|name| {
                    Frame::Map(vec![
                        (Frame::bulk("type"), Frame::bulk("policy")),
                        (Frame::bulk("name"), Frame::bulk(name.to_owned())),
                    ])
                }));
                Ok(Frame::Array(out))
            }
            Rules::Test(event) => Ok(Frame::Array(
                cx.state
                    .rules()
                    .evaluate(&event)
                    .iter()
                    .map(target_frame)
                    .collect(),
            )),
        }
    }
}

/// `LETHE.EVENT entity op id [OLD f v ...] [NEW f v ...]`: applies the rules' targets.
#[derive(Debug)]
pub struct EventCmd(Event);

impl Command for EventCmd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        parse_event(args).map(EventCmd)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // A change event is about the data behind every database's keys, like change capture's.
        let rules = cx.state.rules();
        let targets = rules.evaluate(&self.0);
        // Rules render keys, tags, prefixes and globs, each of which the server has a form for.
        let what: Vec<_> = targets
            .iter()
            .filter_map(crate::state::server_form)
            .collect();
        let origin = cx.state.keeps_history().then(|| {
            let client = cx.session.origin();
            let names: Vec<&str> = rules.matching_rules(&self.0).map(|r| r.name()).collect();
            let mut o = (*client).clone().with_change(format!(
                "LETHE.EVENT {} {}{}",
                self.0.entity,
                self.0.operation,
                self.0
                    .id
                    .as_deref()
                    .map(|id| format!(" {id}"))
                    .unwrap_or_default()
            ));
            if !names.is_empty() {
                o = o.with_rule(names.join(","));
            }
            Arc::new(o)
        });
        cx.state
            .invalidate_held(&what, Databases::InUse, origin)
            .map_err(|e| CommandError::err(&e))?;
        Ok(Frame::Integer(targets.len() as i64))
    }
}

/// `LETHE.STATS [TAG tag]`.
#[derive(Debug)]
pub struct Stats(Option<String>);

impl Command for Stats {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        match args.try_next() {
            None => Ok(Stats(None)),
            Some(kw) if keyword(&kw) == "TAG" && args.remaining() == 1 => {
                Ok(Stats(Some(next_text(args, "tag")?)))
            }
            Some(_) => Err(CommandError::syntax()),
        }
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let cache = cx.state.cache();
        let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        if let Some(tag) = self.0 {
            // Live keys come from the engine's tag index; the history from the server's
            // per-tag record (the engine keeps none).
            let keys = cache.keys_with_tag(&tag).len() as u64;
            let record = cx.state.tag_stats().get(&tag);
            return Ok(Frame::Map(vec![
                (Frame::bulk("tag"), Frame::bulk(tag)),
                (Frame::bulk("keys"), int(keys)),
                (Frame::bulk("invalidations"), int(record.invalidations)),
                (
                    Frame::bulk("last_invalidated_ms"),
                    Frame::Integer(record.last_ms),
                ),
            ]));
        }
        let s = cache.stats();
        let mut out = vec![
            ("hits", s.hits),
            ("misses", s.misses),
            ("inserts", s.inserts),
            ("updates", s.updates),
            ("entries", s.entries),
            ("weight", s.weight),
            ("capacity", s.capacity),
            ("invalidations", s.invalidations),
            ("leases_granted", s.leases_granted),
            ("fills_refused", s.fills_refused),
            ("writes_fenced", s.writes_fenced),
            ("tags", s.tags),
            ("dependency_edges", s.dependency_edges),
        ];
        let causes = [
            ("removed_explicit", RemovalCause::Explicit),
            ("removed_replaced", RemovalCause::Replaced),
            ("removed_expired", RemovalCause::Expired),
            ("removed_evicted", RemovalCause::Evicted),
            ("removed_tag", RemovalCause::Tag),
            ("removed_pattern", RemovalCause::Pattern),
            ("removed_dependency", RemovalCause::Dependency),
            ("removed_stale", RemovalCause::Stale),
        ];
        out.extend(causes.map(|(name, c)| (name, s.removals.get(c))));
        Ok(Frame::Map(
            out.into_iter()
                .map(|(k, v)| (Frame::bulk(k), int(v)))
                .collect(),
        ))
    }
}

//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE and PFDEBUG, over strings in Redis's format (see
//! [`crate::keyspace::hyperloglog`]).
//!
//! A dense value (12 KiB) is changed where it is stored; a sparse one (at most
//! `hll-sparse-max-bytes`) is edited in a copy and stored back only if a register changed.
//! PFCOUNT of one key refreshes the cached count in the value as Redis does, so its key spec
//! is RW although the command is `readonly`; [`super::lockable_keys`] reads the key specs for
//! that reason. A union of several keys is computed aside and changes nothing.

use super::strings::put;
use super::{Command, CommandError, Ctx, ErrorKind, Reply};
use crate::frame::Frame;
use crate::keyspace::hyperloglog::{self as hll, Corrupt};
use crate::keyspace::{SmallBytes, Value};
use crate::parse::Parse;
use bytes::Bytes;

use super::command::{Doc, KeySpec, acl, f, ks};

super::command_table! {
    pub(super) HYPERLOGLOG;
    "pfadd" -2 PfAdd {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HYPERLOGLOG,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("hyperloglog", "2.8.9", "O(1) to add every element.", "Adds the specified elements to the specified HyperLogLog."),
    }
    "pfcount" -2 PfCount {
        flags: f::READONLY,
        acl: acl::HYPERLOGLOG,
        keys: &[KeySpec::noted(ks::RW | ks::ACCESS, 1, -1, 1, "RW because it may change the internal representation of the key, and propagate to replicas")],
        doc: Doc::new("hyperloglog", "2.8.9", "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.", "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s)."),
    }
    "pfmerge" -2 PfMerge {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::HYPERLOGLOG,
        keys: &[
            KeySpec::range(ks::RW | ks::ACCESS | ks::INSERT, 1, 0, 1),
            KeySpec::range(ks::RO | ks::ACCESS, 2, -1, 1),
        ],
        doc: Doc::new("hyperloglog", "2.8.9", "O(N) to merge N HyperLogLogs, but with high constant times.", "Merge N different HyperLogLogs into a single one."),
    }
    "pfdebug" 3 PfDebug {
        flags: f::WRITE | f::DENYOOM | f::ADMIN,
        acl: acl::HYPERLOGLOG,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS, 2, 0, 1)],
        doc: Doc::new("hyperloglog", "2.8.9", "N/A", "Internal commands for debugging HyperLogLog values"),
    }
}

/// Redis's reply for a string that is not a HyperLogLog.
fn not_hll() -> CommandError {
    CommandError::new(
        ErrorKind::WrongType,
        "WRONGTYPE Key is not a valid HyperLogLog string value.",
    )
}

/// Redis's reply for a sparse value whose opcodes do not add up.
fn corrupt(_: Corrupt) -> CommandError {
    CommandError::new(ErrorKind::Other, "INVALIDOBJ Corrupted HLL object detected")
}

/// The bytes of a stored HyperLogLog: WRONGTYPE for other types, Redis's HyperLogLog error for
/// strings that are not one (integers included: Redis keeps those in another encoding).
fn hll_bytes(v: &Value) -> Result<&[u8], CommandError> {
    match v {
        Value::Str(s) if hll::is_valid(s) => Ok(s),
        Value::Str(_) | Value::Int(_) => Err(not_hll()),
        _ => Err(CommandError::wrong_type()),
    }
}

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

#[derive(Debug)]
pub struct PfAdd(Bytes, Vec<Bytes>);

impl Command for PfAdd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PfAdd(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let elements = &self.1;
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let dense = match e.get() {
                    None => None,
                    Some(v) => Some(hll::is_dense(hll_bytes(v)?)),
                };
                if dense == Some(true) {
                    // In place: registers only rise, the size never changes.
                    let Some(Value::Str(s)) = e.get_mut() else {
                        return Err(not_hll());
                    };
                    let bytes = s.as_mut_bytes();
                    let mut updated = false;
                    for el in elements {
                        let (index, count) = hll::pattern(el);
                        updated |= hll::dense_set(bytes, index, count);
                    }
                    if updated {
                        hll::invalidate_cache(bytes);
                    }
                    return Ok(Frame::Integer(i64::from(updated)));
                }
                let (mut v, mut updated) = match e.get() {
                    None => (hll::new_sparse(), true),
                    Some(v) => (hll_bytes(v)?.to_vec(), false),
                };
                for el in elements {
                    updated |= hll::add(&mut v, el).map_err(corrupt)?;
                }
                if updated {
                    hll::invalidate_cache(&mut v);
                    put(state, e, Value::Str(SmallBytes::from_vec(v)))?;
                }
                Ok(Frame::Integer(i64::from(updated)))
            })
        })?
    }
}

/// The registers of the union of `keys` (missing keys are empty), one byte each.
fn union(
    t: &crate::keyspace::Txn<'_, '_>,
    keys: &[Bytes],
    max: &mut [u8],
) -> Result<bool, CommandError> {
    let mut dense = false;
    for k in keys {
        if let Some(v) = t.get(k) {
            let bytes = hll_bytes(v)?;
            dense |= hll::is_dense(bytes);
            hll::merge_into(max, bytes).map_err(corrupt)?;
        }
    }
    Ok(dense)
}

#[derive(Debug)]
pub struct PfCount(Vec<Bytes>);

impl Command for PfCount {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PfCount(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let keys = &self.0;
        if keys.len() > 1 {
            return cx.read(keys.iter().map(|k| &k[..]), |t| {
                let mut max = vec![0u8; hll::REGISTERS];
                union(t, keys, &mut max)?;
                Ok(Frame::Integer(hll::count_registers(&max) as i64))
            })?;
        }
        let key = &keys[0];
        cx.write([&key[..]], |t| {
            t.compute(key, |e| {
                let Some(v) = e.get() else {
                    return Ok(Frame::Integer(0));
                };
                let bytes = hll_bytes(v)?;
                if let Some(card) = hll::cached(bytes) {
                    return Ok(Frame::Integer(card as i64));
                }
                let card = hll::count(bytes).map_err(corrupt)?;
                // Redis stores the fresh count in the value: GET shows it.
                if let Some(Value::Str(s)) = e.get_mut() {
                    hll::set_cache(s.as_mut_bytes(), card);
                }
                Ok(Frame::Integer(card as i64))
            })
        })?
    }
}

#[derive(Debug)]
pub struct PfMerge(Bytes, Vec<Bytes>);

impl Command for PfMerge {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PfMerge(args.next_bytes()?, rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let dest = &self.0;
        let names = std::iter::once(&dest[..]).chain(self.1.iter().map(|k| &k[..]));
        cx.write(names, |t| {
            let mut max = vec![0u8; hll::REGISTERS];
            // The destination counts as a source, as in Redis.
            let dense =
                union(t, std::slice::from_ref(dest), &mut max)? | union(t, &self.1, &mut max)?;
            t.compute(dest, |e| {
                let mut v = match e.get() {
                    None => hll::new_sparse(),
                    Some(v) => hll_bytes(v)?.to_vec(),
                };
                if dense {
                    hll::to_dense(&mut v).map_err(corrupt)?;
                }
                for (i, &m) in max.iter().enumerate() {
                    if m > 0 {
                        hll::set(&mut v, i, m).map_err(corrupt)?;
                    }
                }
                hll::invalidate_cache(&mut v);
                put(state, e, Value::Str(SmallBytes::from_vec(v)))?;
                Ok(Frame::ok())
            })
        })?
    }
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's internal inspection of a value. GETREG
/// and TODENSE turn a sparse value dense, as in Redis.
#[derive(Debug)]
pub struct PfDebug(Bytes, Bytes);

impl Command for PfDebug {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PfDebug(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let PfDebug(sub, key) = self;
        cx.write([&key[..]], |t| {
            t.compute(&key, |e| {
                let Some(v) = e.get() else {
                    return Err(CommandError::err("The specified key does not exist"));
                };
                let bytes = hll_bytes(v)?;
                let dense = hll::is_dense(bytes);
                match sub.to_ascii_lowercase().as_slice() {
                    b"encoding" => Ok(Frame::Simple(if dense { "dense" } else { "sparse" }.into())),
                    b"decode" if dense => Err(CommandError::err("HLL encoding is not sparse")),
                    b"decode" => Ok(Frame::Bulk(hll::decode_sparse(bytes).into())),
                    op @ (b"getreg" | b"todense") => {
                        let getreg = op == b"getreg";
                        let mut bytes = bytes.to_vec();
                        if !dense {
                            hll::to_dense(&mut bytes).map_err(corrupt)?;
                        }
                        let reply = if getreg {
                            Frame::Array(
                                hll::dense_registers(&bytes)
                                    .into_iter()
                                    .map(|r| Frame::Integer(i64::from(r)))
                                    .collect(),
                            )
                        } else {
                            Frame::Integer(i64::from(!dense))
                        };
                        if !dense {
                            put(state, e, Value::Str(SmallBytes::from_vec(bytes)))?;
                        }
                        Ok(reply)
                    }
                    _ => Err(CommandError::err(&format!(
                        "Unknown PFDEBUG subcommand '{}'",
                        String::from_utf8_lossy(&sub)
                    ))),
                }
            })
        })?
    }
}

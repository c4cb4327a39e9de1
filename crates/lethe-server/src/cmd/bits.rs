//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
//!
//! Bitmaps are plain strings (bit 0 is the most significant bit of the first byte, as in
//! Redis), so every string command sees what these write. Writes change the stored bytes in
//! place ([`string_mut`]) and only grow the string when an offset lies past its end; the grown
//! size is checked against the cache's per-entry limit before anything is allocated, and offsets
//! beyond `proto-max-bulk-len` are refused as Redis refuses them.
//!
//! Argument checks follow Redis 7.0's order (`bitops.c` behaviour, checked against a real
//! server): BITCOUNT and BITPOS look the key up before parsing their range, BITFIELD parses all of
//! its operations before touching the key.

use super::command::{Doc, KeySpec, acl, f, ks};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::small::alloc_size;
use crate::keyspace::{Entry, SmallBytes, Value};
use crate::parse::{Parse, parse_int};
use crate::state::ServerState;
use bytes::Bytes;
use lethe::InsertOptions;

super::command_table! {
    pub(super) BITS;
    "setbit" 4 SetBit {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::BITMAP,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("bitmap", "2.2.0", "O(1)", "Sets or clears the bit at offset in the string value stored at key"),
    }
    "getbit" 3 GetBit {
        flags: f::READONLY | f::FAST,
        acl: acl::BITMAP,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("bitmap", "2.2.0", "O(1)", "Returns the bit value at offset in the string value stored at key"),
    }
    "bitcount" -2 BitCount {
        flags: f::READONLY,
        acl: acl::BITMAP,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("bitmap", "2.6.0", "O(N)", "Count set bits in a string"),
    }
    "bitpos" -3 BitPos {
        flags: f::READONLY,
        acl: acl::BITMAP,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("bitmap", "2.8.7", "O(N)", "Find first bit set or clear in a string"),
    }
    "bitop" -4 BitOp {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::BITMAP,
        keys: &[
            KeySpec::range(ks::OW | ks::UPDATE, 2, 0, 1),
            KeySpec::range(ks::RO | ks::ACCESS, 3, -1, 1),
        ],
        doc: Doc::new("bitmap", "2.6.0", "O(N)", "Perform bitwise operations between strings"),
    }
    "bitfield" -2 BitField {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::BITMAP,
        keys: &[KeySpec::noted(ks::RW | ks::ACCESS | ks::UPDATE | ks::VARIABLE_FLAGS, 1, 0, 1, "This command allows both access and modification of the key")],
        doc: Doc::new("bitmap", "3.2.0", "O(1) for each subcommand specified", "Perform arbitrary bitfield integer operations on strings"),
    }
    "bitfield_ro" -2 BitFieldRo {
        flags: f::READONLY | f::FAST,
        acl: acl::BITMAP,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("bitmap", "6.0.0", "O(1) for each subcommand specified", "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"),
    }
}

fn offset_error() -> CommandError {
    CommandError::err("bit offset is not an integer or out of range")
}

/// A bit offset argument as Redis reads it: an integer, or with `hash_width` (BITFIELD) also
/// `#n` meaning `n` times the field width; refused when negative or when its byte lies at or past
/// `proto-max-bulk-len`, so no command can ask for a string longer than a request could carry.
fn bit_offset(arg: &[u8], hash_width: Option<u32>, max_bulk: u64) -> Result<u64, CommandError> {
    let (width, digits) = match hash_width {
        Some(w) if arg.len() > 1 && arg[0] == b'#' => (Some(w), &arg[1..]),
        _ => (None, arg),
    };
    let mut n = parse_int(digits).ok_or_else(offset_error)?;
    if let Some(w) = width {
        // Redis multiplies in a C `long long`; a product past its range wraps there too.
        n = n.wrapping_mul(i64::from(w));
    }
    if n < 0 || (n as u64 >> 3) >= max_bulk {
        return Err(offset_error());
    }
    Ok(n as u64)
}

/// The string at `e`, as bytes to change in place, at least `min_len` long (zero padded) and
/// created if missing; WRONGTYPE for other types. Growing checks the new size against the
/// cache's limit for one entry before allocating it.
pub(super) fn string_mut<'e>(
    state: &ServerState,
    e: &'e mut Entry<'_>,
    min_len: usize,
) -> Result<&'e mut [u8], CommandError> {
    let (len, is_int) = match e.get() {
        None => (None, false),
        Some(v) => (Some(v.str_len()?), matches!(v, Value::Int(_))),
    };
    if len.is_none_or(|l| l < min_len) || is_int {
        let grown = len.unwrap_or(0).max(min_len);
        let empty = Value::Str(SmallBytes::EMPTY);
        state.check_grows(e.key(), &empty, alloc_size(grown))?;
        // The old buffer is grown where the allocator can (realloc), not copied to a new one.
        let mut bytes = match e.get_mut() {
            None => Vec::new(),
            Some(Value::Str(s)) => match std::mem::take(s) {
                SmallBytes::Heap(b) => b.into_vec(),
                inline => inline.to_vec(),
            },
            Some(v) => v.with_bytes(<[u8]>::to_vec)?,
        };
        if bytes.try_reserve_exact(grown - bytes.len()).is_err() {
            if let Some(Value::Str(s)) = e.get_mut() {
                *s = SmallBytes::from_vec(bytes);
            }
            return Err(CommandError::err("out of memory growing the string"));
        }
        bytes.resize(grown, 0);
        // Kept as a string even if its bytes spell an integer: Redis's `raw` encoding. Its
        // size was checked above, so nothing can fail once the old buffer is taken.
        let value = Value::Str(SmallBytes::from_vec(bytes));
        match e.get_mut() {
            Some(v) => *v = value,
            None => {
                e.insert(value).map_err(crate::state::refused)?;
            }
        }
    }
    match e.get_mut() {
        Some(Value::Str(s)) => Ok(s.as_mut_bytes()),
        _ => Err(CommandError::wrong_type()),
    }
}

fn max_bulk(cx: &Ctx<'_>) -> u64 {
    cx.session.limits.proto_max_bulk_len()
}

fn bit_at(s: &[u8], pos: u64) -> bool {
    s.get((pos >> 3) as usize)
        .is_some_and(|b| b >> (7 - (pos & 7)) & 1 == 1)
}

#[derive(Debug)]
pub struct SetBit(Bytes, Bytes, Bytes);

impl Command for SetBit {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SetBit(
            args.next_bytes()?,
            args.next_bytes()?,
            args.next_bytes()?,
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let offset = bit_offset(&self.1, None, max_bulk(cx))?;
        let on = match parse_int(&self.2) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(CommandError::err("bit is not an integer or out of range")),
        };
        let state = cx.state;
        cx.write([&self.0[..]], |t| {
            t.compute(&self.0, |e| {
                let bytes = string_mut(state, e, (offset >> 3) as usize + 1)?;
                let byte = &mut bytes[(offset >> 3) as usize];
                let mask = 1u8 << (7 - (offset & 7));
                let old = *byte & mask != 0;
                if on {
                    *byte |= mask;
                } else {
                    *byte &= !mask;
                }
                Ok(Frame::Integer(i64::from(old)))
            })
        })?
    }
}

#[derive(Debug)]
pub struct GetBit(Bytes, Bytes);

impl Command for GetBit {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(GetBit(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let offset = bit_offset(&self.1, None, max_bulk(cx))?;
        cx.read([&self.0[..]], |t| match t.get(&self.0) {
            None => Ok(Frame::Integer(0)),
            Some(v) => v.with_bytes(|s| Frame::Integer(i64::from(bit_at(s, offset)))),
        })?
    }
}

/// A BITCOUNT/BITPOS range in bits, inclusive, with Redis's rules: negative indexes count from
/// the end, then both ends are clamped to the string; `None` when empty.
fn bit_range(len: usize, start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits {
        (len as i64).saturating_mul(8)
    } else {
        len as i64
    };
    let fix = |i: i64| if i < 0 { (i + total).max(0) } else { i };
    let (start, end) = (fix(start), fix(end).min(total - 1));
    if start > end {
        return None;
    }
    Some(if in_bits {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    })
}

/// `BYTE` or `BIT` (any case): whether the range is in bits.
fn unit(arg: &[u8]) -> Result<bool, CommandError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(CommandError::syntax())
    }
}

fn int_arg(arg: &[u8]) -> Result<i64, CommandError> {
    parse_int(arg).ok_or_else(CommandError::not_integer)
}

/// Set bits of `s` from bit `first` to bit `last`, inclusive.
fn count_ones(s: &[u8], first: u64, last: u64) -> u64 {
    let bytes = &s[(first >> 3) as usize..=(last >> 3) as usize];
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or_default()).count_ones()))
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>();
    // Less the bits of the first and last bytes outside the range: the `head` high bits of
    // the first, the `tail` low bits of the last.
    let head = first & 7;
    if head > 0 {
        n -= u64::from((bytes[0] >> (8 - head)).count_ones());
    }
    let tail = 7 - (last & 7);
    if tail > 0 {
        n -= u64::from((bytes[bytes.len() - 1] & ((1u8 << tail) - 1)).count_ones());
    }
    n
}

#[derive(Debug)]
pub struct BitCount(Bytes, Vec<Bytes>);

impl Command for BitCount {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(BitCount(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let opts = &self.1;
        cx.read([&self.0[..]], |t| {
            let Some(v) = t.get(&self.0) else {
                return Ok(Frame::Integer(0));
            };
            v.with_bytes(|s| {
                let range = match opts.len() {
                    0 => bit_range(s.len(), 0, -1, false),
                    2 | 3 => {
                        let (start, end) = (int_arg(&opts[0])?, int_arg(&opts[1])?);
                        let in_bits = opts.get(2).map_or(Ok(false), |u| unit(u))?;
                        bit_range(s.len(), start, end, in_bits)
                    }
                    _ => return Err(CommandError::syntax()),
                };
                Ok(Frame::Integer(
                    range.map_or(0, |(a, b)| count_ones(s, a, b)) as i64,
                ))
            })?
        })?
    }
}

/// The first bit equal to `bit` from bit `first` to bit `last`, inclusive.
fn find_bit(s: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let skip = if bit { 0u8 } else { 0xff };
    let mut pos = first;
    while pos <= last {
        let byte = s[(pos >> 3) as usize];
        if pos & 7 == 0 && pos + 7 <= last && byte == skip {
            pos += 8;
            continue;
        }
        if (byte >> (7 - (pos & 7)) & 1 == 1) == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[derive(Debug)]
pub struct BitPos(Bytes, Bytes, Vec<Bytes>);

impl Command for BitPos {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(BitPos(
            args.next_bytes()?,
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let bit = match int_arg(&self.1)? {
            0 => false,
            1 => true,
            _ => return Err(CommandError::err("The bit argument must be 1 or 0.")),
        };
        let opts = &self.2;
        cx.read([&self.0[..]], |t| {
            // A missing key is an endless run of zeros.
            let Some(v) = t.get(&self.0) else {
                return Ok(Frame::Integer(if bit { -1 } else { 0 }));
            };
            v.with_bytes(|s| {
                let (range, end_given) = match opts.len() {
                    0 => (bit_range(s.len(), 0, -1, false), false),
                    1..=3 => {
                        let start = int_arg(&opts[0])?;
                        let in_bits = opts.get(2).map_or(Ok(false), |u| unit(u))?;
                        let end = opts.get(1).map_or(Ok(-1), |e| int_arg(e))?;
                        (bit_range(s.len(), start, end, in_bits), opts.len() > 1)
                    }
                    _ => return Err(CommandError::syntax()),
                };
                let Some((first, last)) = range else {
                    return Ok(Frame::Integer(-1));
                };
                Ok(Frame::Integer(match find_bit(s, first, last, bit) {
                    Some(pos) => pos as i64,
                    // Without an explicit end the string reads as followed by zeros.
                    None if !bit && !end_given => last as i64 + 1,
                    None => -1,
                }))
            })?
        })?
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    And,
    Or,
    Xor,
    Not,
}

#[derive(Debug)]
pub struct BitOp(Op, Bytes, Vec<Bytes>);

impl Command for BitOp {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let name = args.next_bytes()?;
        let op = match name.to_ascii_lowercase().as_slice() {
            b"and" => Op::And,
            b"or" => Op::Or,
            b"xor" => Op::Xor,
            b"not" => Op::Not,
            _ => return Err(CommandError::syntax()),
        };
        let dest = args.next_bytes()?;
        let sources: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        if op == Op::Not && sources.len() != 1 {
            return Err(CommandError::err(
                "BITOP NOT must be called with a single source key.",
            ));
        }
        Ok(BitOp(op, dest, sources))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let BitOp(op, dest, sources) = self;
        let state = cx.state;
        let names = std::iter::once(&dest[..]).chain(sources.iter().map(|k| &k[..]));
        cx.write(names, |t| {
            let mut inputs: Vec<Bytes> = Vec::with_capacity(sources.len());
            let mut max = 0;
            for k in &sources {
                // A missing key is an empty string, which ANDs everything away.
                let s = t
                    .get(k)
                    .map(Value::to_bytes)
                    .transpose()?
                    .unwrap_or_default();
                max = max.max(s.len());
                inputs.push(s);
            }
            if max == 0 {
                t.delete(&dest);
                return Ok(Frame::Integer(0));
            }
            let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
            let out: Vec<u8> =
                (0..max)
                    .map(|i| {
                        let first = byte(&inputs[0], i);
                        inputs[1..].iter().fold(
                            if op == Op::Not { !first } else { first },
                            |acc, s| match op {
                                Op::And => acc & byte(s, i),
                                Op::Or => acc | byte(s, i),
                                Op::Xor => acc ^ byte(s, i),
                                Op::Not => acc,
                            },
                        )
                    })
                    .collect();
            let value = Value::Str(SmallBytes::from_vec(out));
            state.check_fits(&t.key(&dest), &value)?;
            t.insert(&dest, value, &InsertOptions::new())
                .map_err(crate::state::refused)?;
            Ok(Frame::Integer(max as i64))
        })?
    }
}

/// What BITFIELD does when a write does not fit its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, Debug)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD operation on the field of `width` bits at bit `offset`.
#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    signed: bool,
    width: u32,
    offset: u64,
    overflow: Overflow,
}

fn type_error() -> CommandError {
    CommandError::err(
        "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
    )
}

/// `i1`..`i64` or `u1`..`u63` (lowercase only, as in Redis).
fn field_type(arg: &[u8]) -> Result<(bool, u32), CommandError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(type_error()),
    };
    match parse_int(&arg[1..]) {
        Some(w) if w >= 1 && w <= if signed { 64 } else { 63 } => Ok((signed, w as u32)),
        _ => Err(type_error()),
    }
}

/// BITFIELD's operations, all parsed (with their errors) before the key is looked at.
fn parse_fields(rest: &[Bytes], max_bulk: u64) -> Result<Vec<Field>, CommandError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 0;
    while j < rest.len() {
        let remaining = rest.len() - j - 1;
        let sub = rest[j].to_ascii_lowercase();
        let needs = match sub.as_slice() {
            b"get" => 2,
            b"set" | b"incrby" => 3,
            b"overflow" if remaining >= 1 => {
                overflow = match rest[j + 1].to_ascii_lowercase().as_slice() {
                    b"wrap" => Overflow::Wrap,
                    b"sat" => Overflow::Sat,
                    b"fail" => Overflow::Fail,
                    _ => return Err(CommandError::err("Invalid OVERFLOW type specified")),
                };
                j += 2;
                continue;
            }
            _ => return Err(CommandError::syntax()),
        };
        if remaining < needs {
            return Err(CommandError::syntax());
        }
        let (signed, width) = field_type(&rest[j + 1])?;
        let offset = bit_offset(&rest[j + 2], Some(width), max_bulk)?;
        let op = match sub.as_slice() {
            b"get" => FieldOp::Get,
            b"set" => FieldOp::Set(int_arg(&rest[j + 3])?),
            _ => FieldOp::IncrBy(int_arg(&rest[j + 3])?),
        };
        fields.push(Field {
            op,
            signed,
            width,
            offset,
            overflow,
        });
        j += needs + 1;
    }
    Ok(fields)
}

/// The `width` bits at bit `offset` as an unsigned number (bits past the string read as 0).
fn get_field(s: &[u8], offset: u64, width: u32) -> u64 {
    (0..u64::from(width)).fold(0, |v, i| v << 1 | u64::from(bit_at(s, offset + i)))
}

fn set_field(s: &mut [u8], offset: u64, width: u32, value: u64) {
    for i in 0..u64::from(width) {
        let pos = offset + i;
        let mask = 1u8 << (7 - (pos & 7));
        let byte = &mut s[(pos >> 3) as usize];
        if value >> (u64::from(width) - 1 - i) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

fn sign_extend(v: u64, width: u32) -> i64 {
    if width < 64 && v >> (width - 1) & 1 == 1 {
        (v | (u64::MAX << width)) as i64
    } else {
        v as i64
    }
}

impl Field {
    /// The field's value as a reply number.
    fn read(&self, s: &[u8]) -> i64 {
        let raw = get_field(s, self.offset, self.width);
        if self.signed {
            sign_extend(raw, self.width)
        } else {
            raw as i64
        }
    }

    /// Whether `value + incr` overflows the field (1 above, -1 below, 0 not), decided exactly
    /// as Redis's overflow checks decide it, quirks included: a SET far below a signed
    /// field's minimum counts as overflowing *above* when Redis's `max - value` wraps, so
    /// OVERFLOW SAT stores the maximum there (checked against a real server).
    fn overflow(&self, value: i64, incr: i64) -> i8 {
        let w = self.width;
        if self.signed {
            let max = if w == 64 {
                i64::MAX
            } else {
                (1i64 << (w - 1)) - 1
            };
            let min = -max - 1;
            let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
            let min_incr = min.wrapping_sub(value);
            if value > max
                || (w != 64 && incr > max_incr)
                || (value >= 0 && incr > 0 && incr > max_incr)
            {
                1
            } else if value < min
                || (w != 64 && incr < min_incr)
                || (value < 0 && incr < 0 && incr < min_incr)
            {
                -1
            } else {
                0
            }
        } else {
            // An unsigned field takes a negative SET value as its two's-complement bits.
            let max = (1i128 << w) - 1;
            let sum = i128::from(value as u64) + i128::from(incr);
            if i128::from(value as u64) > max || sum > max {
                1
            } else if sum < 0 {
                -1
            } else {
                0
            }
        }
    }

    /// Applies a SET or INCRBY to `s` (long enough), returning the reply.
    fn write(&self, s: &mut [u8]) -> Frame {
        let old = self.read(s);
        let (value, incr) = match self.op {
            FieldOp::Set(v) => (v, 0),
            FieldOp::IncrBy(d) => (old, d),
            FieldOp::Get => return Frame::Integer(old),
        };
        let mask = u64::MAX >> (64 - self.width);
        // In range, or wrapped: the low bits of the sum.
        let bits = (value as u64).wrapping_add(incr as u64) & mask;
        let new = match (self.overflow(value, incr), self.overflow) {
            (0, _) | (_, Overflow::Wrap) => bits,
            (_, Overflow::Fail) => return Frame::Null,
            (dir, Overflow::Sat) => {
                let top = if self.signed { mask >> 1 } else { mask };
                match (dir > 0, self.signed) {
                    (true, _) => top,
                    (false, true) => !top & mask,
                    (false, false) => 0,
                }
            }
        };
        set_field(s, self.offset, self.width, new);
        Frame::Integer(match self.op {
            FieldOp::Set(_) => old,
            _ => self.read(s),
        })
    }
}

/// BITFIELD and BITFIELD_RO.
fn bitfield(cx: &mut Ctx<'_>, key: &Bytes, fields: &[Field], read_only: bool) -> Reply {
    let writes = fields.iter().any(|f| !matches!(f.op, FieldOp::Get));
    if !writes {
        return cx.read([&key[..]], |t| {
            let s = t.get(key).map(Value::to_bytes).transpose()?;
            let s = s.as_deref().unwrap_or_default();
            Ok(Frame::Array(
                fields.iter().map(|f| Frame::Integer(f.read(s))).collect(),
            ))
        })?;
    }
    if read_only {
        return Err(CommandError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    let highest = fields
        .iter()
        .filter(|f| !matches!(f.op, FieldOp::Get))
        .map(|f| f.offset + u64::from(f.width) - 1)
        .max()
        .unwrap_or(0);
    let state = cx.state;
    cx.write([&key[..]], |t| {
        t.compute(key, |e| {
            let s = string_mut(state, e, (highest >> 3) as usize + 1)?;
            Ok(Frame::Array(fields.iter().map(|f| f.write(s)).collect()))
        })
    })?
}

/// BITFIELD's key and its operations, parsed when run (offsets depend on `proto-max-bulk-len`).
#[derive(Debug)]
pub struct BitField(Bytes, Vec<Bytes>);

impl Command for BitField {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(BitField(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let fields = parse_fields(&self.1, max_bulk(cx))?;
        bitfield(cx, &self.0, &fields, false)
    }
}

#[derive(Debug)]
pub struct BitFieldRo(Bytes, Vec<Bytes>);

impl Command for BitFieldRo {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(BitFieldRo(
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let fields = parse_fields(&self.1, max_bulk(cx))?;
        bitfield(cx, &self.0, &fields, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_matches_bit_by_bit() {
        let s = [
            0b1011_0110u8,
            0xff,
            0x00,
            0b0100_0001,
            0x5a,
            0xa5,
            1,
            2,
            3,
            4,
            0x80,
        ];
        let total = s.len() as u64 * 8;
        for first in 0..total {
            for last in first..total {
                let want = (first..=last).filter(|&p| bit_at(&s, p)).count() as u64;
                assert_eq!(count_ones(&s, first, last), want, "{first}..={last}");
                for bit in [false, true] {
                    let want = (first..=last).find(|&p| bit_at(&s, p) == bit);
                    assert_eq!(
                        find_bit(&s, first, last, bit),
                        want,
                        "{first}..={last} {bit}"
                    );
                }
            }
        }
    }

    #[test]
    fn fields_round_trip_at_any_offset_and_width() {
        let mut s = [0u8; 12];
        for width in 1..=64 {
            for offset in [0, 1, 7, 8, 13, 31] {
                let v = 0xdead_beef_cafe_f00d_u64 & (u64::MAX >> (64 - width));
                set_field(&mut s, offset, width, v);
                assert_eq!(get_field(&s, offset, width), v, "{width} at {offset}");
            }
        }
        assert_eq!(sign_extend(0b111, 3), -1);
        assert_eq!(sign_extend(0b011, 3), 3);
        assert_eq!(sign_extend(u64::MAX, 64), -1);
    }
}

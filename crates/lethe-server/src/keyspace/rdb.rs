//! DUMP and RESTORE payloads: one value in Redis's RDB encoding, so values move between Lethe
//! and Redis in both directions.
//!
//! Format (from Redis's RDB file format as documented in `rdb.h`/`rdb.c` of Redis 7.0 and the
//! listpack, ziplist and intset specifications in `listpack.md`, `ziplist.c` and `intset.c`;
//! written here from those descriptions):
//!
//! ```text
//! payload = type:u8  value  rdb_version:u16le  crc64:u64le
//! ```
//!
//! The CRC is CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, init 0, no final xor)
//! over everything before it. Redis 7.0 writes RDB version 10 and refuses newer payloads.
//!
//! Decoding accepts what Redis 7.0 (and 7.2, version 11) write for the types Lethe stores:
//! strings (plain, integer-encoded, LZF-compressed), lists (plain, ziplist, quicklist of
//! ziplists, quicklist of listpacks), sets (plain, intset, listpack) and hashes (plain,
//! ziplist, listpack). Every length is checked against the bytes left before anything is
//! allocated for it, and an LZF block may expand only by LZF's own bound, so a hostile payload
//! costs memory and time linear in its length. Encoding writes the plain forms (string, list,
//! set, hash), which every Redis since 2.6 loads; the bytes differ from Redis's own DUMP,
//! which picks compact encodings.
//!
//! [`decode_value`] and [`encode_value`] have one arm per type; sorted sets decode from types
//! 3, 5, 12 and 17 and are written as type 5 (RDB_TYPE_ZSET_2, binary doubles).

use super::zset::Zset;
use super::{Hash, List, Set, Value};

/// The RDB version Lethe writes: Redis 7.0's.
pub const RDB_VERSION: u16 = 10;
/// The newest version read: Redis 7.2's (which adds the set listpack type, read here too).
const MAX_READ_VERSION: u16 = 11;

// Object types (rdb.h).
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;

// Quicklist 2 node containers (quicklist.h).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

// Special string encodings after a length byte of 0b11xxxxxx (rdb.h).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Why a payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Too short, a version newer than known, or a checksum mismatch.
    Envelope,
    /// The value itself is malformed, of a type Lethe does not store, or empty.
    Format,
}

type Result<T> = std::result::Result<T, Error>;

/// CRC-64/Jones lookup table (reflected form of polynomial 0xad93d23594c935a9).
const CRC_TABLE: [u64; 256] = {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 bit-reversed
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-64/Jones of `bytes`, as Redis's `crc64(0, ...)`.
pub fn crc64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |crc, &b| {
        CRC_TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// The DUMP payload of `value`.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value a RESTORE payload holds, after checking its version and checksum.
pub fn restore(payload: &[u8]) -> Result<Value> {
    let body = check_envelope(payload)?;
    let mut r = Reader { buf: body, pos: 0 };
    let kind = r.u8()?;
    // Bytes after the value are ignored, as Redis does.
    decode_value(kind, &mut r)
}

/// The value part of a payload whose trailer (version, CRC) checks out.
fn check_envelope(payload: &[u8]) -> Result<&[u8]> {
    if payload.len() < 10 {
        return Err(Error::Envelope);
    }
    let (data, crc) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([data[data.len() - 2], data[data.len() - 1]]);
    if version > MAX_READ_VERSION {
        return Err(Error::Envelope);
    }
    let crc = u64::from_le_bytes(crc.try_into().map_err(|_| Error::Envelope)?);
    if crc64(data) != crc {
        return Err(Error::Envelope);
    }
    Ok(&data[..data.len() - 2])
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(n) => {
            out.push(TYPE_STRING);
            write_int_string(*n, out);
        }
        Value::Str(s) => {
            out.push(TYPE_STRING);
            write_string(s, out);
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            write_len(l.len() as u64, out);
            for e in l.iter() {
                write_string(e, out);
            }
        }
        Value::Set(s) => {
            out.push(TYPE_SET);
            write_len(s.len() as u64, out);
            for m in s.iter() {
                write_string(&m, out);
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            write_len(h.len() as u64, out);
            for (f, v) in h.iter() {
                write_string(f, out);
                write_string(v, out);
            }
        }
        Value::Zset(z) => {
            // RDB_TYPE_ZSET_2: the length, then each member and its score as a little-endian
            // binary double.
            out.push(TYPE_ZSET_2);
            write_len(z.len() as u64, out);
            for (member, score) in z.iter() {
                write_string(member, out);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
    }
}

/// An RDB length: 6 bits, 14 bits, or a marker and 32 or 64 bits big-endian.
fn write_len(n: u64, out: &mut Vec<u8>) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_string(bytes: &[u8], out: &mut Vec<u8>) {
    write_len(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// An integer as Redis saves it: the int encodings up to 32 bits, else its decimal text.
fn write_int_string(n: i64, out: &mut Vec<u8>) {
    if let Ok(n) = i8::try_from(n) {
        out.extend_from_slice(&[0xc0 | ENC_INT8, n as u8]);
    } else if let Ok(n) = i16::try_from(n) {
        out.push(0xc0 | ENC_INT16);
        out.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = i32::try_from(n) {
        out.push(0xc0 | ENC_INT32);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        write_string(itoa::Buffer::new().format(n).as_bytes(), out);
    }
}

/// A cursor over bytes where every read past the end is a [`Error::Format`].
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(Error::Format);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| Error::Format)
    }

    /// An RDB length, or `Err(encoding)` when the length byte marks a special string encoding.
    fn len_or_encoding(&mut self) -> Result<std::result::Result<u64, u8>> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3f)),
            1 => Ok((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 if b == 0x80 => Ok(u64::from(u32::from_be_bytes(self.array()?))),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.array()?)),
            2 => return Err(Error::Format),
            _ => Err(b & 0x3f),
        })
    }

    fn len(&mut self) -> Result<u64> {
        self.len_or_encoding()?.map_err(|_| Error::Format)
    }

    /// A length that counts bytes still to read: more than are left is malformed.
    fn byte_len(&mut self) -> Result<usize> {
        let n = self.len()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.left())
            .ok_or(Error::Format)
    }

    /// An RDB string: plain, integer-encoded or LZF-compressed.
    fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_encoding()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| Error::Format)?;
                Ok(self.take(n)?.to_vec())
            }
            Err(ENC_INT8) => Ok(decimal(i64::from(self.u8()? as i8))),
            Err(ENC_INT16) => Ok(decimal(i64::from(i16::from_le_bytes(self.array()?)))),
            Err(ENC_INT32) => Ok(decimal(i64::from(i32::from_le_bytes(self.array()?)))),
            Err(ENC_LZF) => {
                let compressed = self.byte_len()?;
                let plain = self.len()?;
                lzf_decompress(self.take(compressed)?, plain)
            }
            Err(_) => Err(Error::Format),
        }
    }
}

fn decimal(n: i64) -> Vec<u8> {
    itoa::Buffer::new().format(n).as_bytes().to_vec()
}

/// LZF decompression (the liblzf format: a control byte below 32 starts a literal run of
/// control+1 bytes; otherwise its top 3 bits are a length (7: one more byte adds to it) and the
/// low 5 bits with the next byte an offset back into the output, copying length+2 bytes). The
/// output must be exactly `expected` bytes, which LZF bounds: a 3-byte back reference yields
/// at most 264 bytes, so a claim beyond 88 times the input is refused before allocating.
pub fn lzf_decompress(input: &[u8], expected: u64) -> Result<Vec<u8>> {
    let bound = (input.len() as u64).saturating_mul(88);
    if expected > bound {
        return Err(Error::Format);
    }
    let expected = expected as usize;
    let mut out = Vec::with_capacity(expected);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(i..i + run).ok_or(Error::Format)?;
            if out.len() + run > expected {
                return Err(Error::Format);
            }
            out.extend_from_slice(lit);
            i += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or(Error::Format)?);
                i += 1;
            }
            let low = usize::from(*input.get(i).ok_or(Error::Format)?);
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if back > out.len() || out.len() + len > expected {
                return Err(Error::Format);
            }
            let from = out.len() - back;
            // Byte by byte: the source may overlap what is being written (a repeated run).
            for k in 0..len {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    if out.len() != expected {
        return Err(Error::Format);
    }
    Ok(out)
}

/// Decodes a value of RDB type `kind`; empty collections are malformed, as Redis says.
fn decode_value(kind: u8, r: &mut Reader<'_>) -> Result<Value> {
    let value = match kind {
        TYPE_STRING => return Ok(Value::from_vec(r.string()?)),
        TYPE_LIST => {
            let n = r.len()?;
            let mut list = List::new();
            for _ in 0..n {
                list.push_back(&r.string()?);
            }
            Value::List(Box::new(list))
        }
        TYPE_LIST_ZIPLIST => {
            let mut list = List::new();
            for e in ziplist(&r.string()?)? {
                list.push_back(&e);
            }
            Value::List(Box::new(list))
        }
        TYPE_LIST_QUICKLIST => {
            let nodes = r.len()?;
            let mut list = List::new();
            for _ in 0..nodes {
                for e in ziplist(&r.string()?)? {
                    list.push_back(&e);
                }
            }
            Value::List(Box::new(list))
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.len()?;
            let mut list = List::new();
            for _ in 0..nodes {
                match r.len()? {
                    CONTAINER_PLAIN => list.push_back(&r.string()?),
                    CONTAINER_PACKED => {
                        for e in listpack(&r.string()?)? {
                            list.push_back(&e);
                        }
                    }
                    _ => return Err(Error::Format),
                }
            }
            Value::List(Box::new(list))
        }
        TYPE_SET => {
            let n = r.len()?;
            let mut set = Set::new();
            for _ in 0..n {
                add_member(&mut set, &r.string()?)?;
            }
            Value::Set(Box::new(set))
        }
        TYPE_SET_INTSET => {
            let mut set = Set::new();
            for n in intset(&r.string()?)? {
                add_member(&mut set, &decimal(n))?;
            }
            Value::Set(Box::new(set))
        }
        TYPE_SET_LISTPACK => {
            let mut set = Set::new();
            for m in listpack(&r.string()?)? {
                add_member(&mut set, &m)?;
            }
            Value::Set(Box::new(set))
        }
        TYPE_HASH => {
            let n = r.len()?;
            let mut hash = Hash::new();
            for _ in 0..n {
                let field = r.string()?;
                let value = r.string()?;
                add_field(&mut hash, &field, &value)?;
            }
            Value::Hash(Box::new(hash))
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let entries = if kind == TYPE_HASH_ZIPLIST {
                ziplist(&blob)?
            } else {
                listpack(&blob)?
            };
            if entries.len() % 2 != 0 {
                return Err(Error::Format);
            }
            let mut hash = Hash::new();
            for pair in entries.chunks_exact(2) {
                add_field(&mut hash, &pair[0], &pair[1])?;
            }
            Value::Hash(Box::new(hash))
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut zset = Zset::new();
            for _ in 0..n {
                let member = r.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    f64::from_le_bytes(r.array()?)
                } else {
                    // The old text form: a length byte (253 NaN, 254 +inf, 255 -inf), then
                    // that many bytes of decimal text.
                    match r.u8()? {
                        253 => f64::NAN,
                        254 => f64::INFINITY,
                        255 => f64::NEG_INFINITY,
                        len => {
                            let text: Vec<u8> = (0..len).map(|_| r.u8()).collect::<Result<_>>()?;
                            score_text(&text)?
                        }
                    }
                };
                add_scored(&mut zset, &member, score)?;
            }
            Value::Zset(Box::new(zset))
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let entries = if kind == TYPE_ZSET_ZIPLIST {
                ziplist(&blob)?
            } else {
                listpack(&blob)?
            };
            if entries.len() % 2 != 0 {
                return Err(Error::Format);
            }
            let mut zset = Zset::new();
            for pair in entries.chunks_exact(2) {
                add_scored(&mut zset, &pair[0], score_text(&pair[1])?)?;
            }
            Value::Zset(Box::new(zset))
        }
        // Zipmaps (9), modules (6, 7) and streams (15, 19, 21) are not types Lethe stores.
        _ => return Err(Error::Format),
    };
    let empty = match &value {
        Value::List(l) => l.is_empty(),
        Value::Set(s) => s.is_empty(),
        Value::Hash(h) => h.is_empty(),
        Value::Zset(z) => z.is_empty(),
        _ => false,
    };
    if empty {
        return Err(Error::Format);
    }
    Ok(value)
}

/// A duplicate member makes the payload malformed (Redis refuses it too).
fn add_member(set: &mut Set, member: &[u8]) -> Result<()> {
    if set.insert(member) {
        Ok(())
    } else {
        Err(Error::Format)
    }
}

/// A member with its score; a duplicate member or a NaN score makes the payload malformed.
fn add_scored(zset: &mut Zset, member: &[u8], score: f64) -> Result<()> {
    if score.is_nan() || zset.insert(member, score).is_some() {
        return Err(Error::Format);
    }
    Ok(())
}

/// A score saved as decimal text (listpacks, ziplists and the old ZSET type).
fn score_text(text: &[u8]) -> Result<f64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|s| !s.is_nan())
        .ok_or(Error::Format)
}

fn add_field(hash: &mut Hash, field: &[u8], value: &[u8]) -> Result<()> {
    if hash.insert(field, value) {
        Ok(())
    } else {
        Err(Error::Format)
    }
}

/// The entries of a Redis listpack: `total_bytes:u32le count:u16le entries 0xff`, each entry an
/// encoding byte (7-bit uint, 6/12/32-bit string lengths, 13/16/24/32/64-bit ints), its data,
/// and its length again as a backward varint of 1 to 5 bytes.
pub fn listpack(blob: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, pos: 0 };
    let total = u32::from_le_bytes(r.array()?) as usize;
    let count = u16::from_le_bytes(r.array()?);
    if total != blob.len() || blob.last() != Some(&0xff) {
        return Err(Error::Format);
    }
    let mut out = Vec::new();
    loop {
        let start = r.pos;
        let b = r.u8()?;
        let entry = if b & 0x80 == 0 {
            decimal(i64::from(b))
        } else if b & 0xc0 == 0x80 {
            r.take(usize::from(b & 0x3f))?.to_vec()
        } else if b & 0xe0 == 0xc0 {
            let raw = (i64::from(b & 0x1f) << 8) | i64::from(r.u8()?);
            decimal(if raw >= 1 << 12 { raw - (1 << 13) } else { raw })
        } else if b & 0xf0 == 0xe0 {
            let n = (usize::from(b & 0x0f) << 8) | usize::from(r.u8()?);
            r.take(n)?.to_vec()
        } else {
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(r.array()?) as usize;
                    r.take(n)?.to_vec()
                }
                0xf1 => decimal(i64::from(i16::from_le_bytes(r.array()?))),
                0xf2 => {
                    let [x, y, z] = r.array()?;
                    decimal(i64::from(i32::from_le_bytes([0, x, y, z]) >> 8))
                }
                0xf3 => decimal(i64::from(i32::from_le_bytes(r.array()?))),
                0xf4 => decimal(i64::from_le_bytes(r.array()?)),
                0xff => break,
                _ => return Err(Error::Format),
            }
        };
        let size = r.pos - start;
        let backlen = match size {
            0..=127 => 1,
            128..16383 => 2,
            16383..2_097_151 => 3,
            2_097_151..268_435_455 => 4,
            _ => 5,
        };
        r.take(backlen)?;
        out.push(entry);
    }
    // The terminator must be the last byte; the count is exact unless saturated (65535).
    if r.pos != blob.len() || (count != u16::MAX && usize::from(count) != out.len()) {
        return Err(Error::Format);
    }
    Ok(out)
}

/// The entries of a ziplist: `zlbytes:u32le zltail:u32le zllen:u16le entries 0xff`, each entry
/// the previous entry's length (1 byte, or 0xfe and 4 bytes), an encoding (6/14/32-bit string
/// lengths big-endian, or 8/16/24/32/64-bit ints, or an immediate 0 to 12) and its data.
pub fn ziplist(blob: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader { buf: blob, pos: 0 };
    let total = u32::from_le_bytes(r.array()?) as usize;
    let _tail = u32::from_le_bytes(r.array()?);
    let count = u16::from_le_bytes(r.array()?);
    if total != blob.len() || blob.last() != Some(&0xff) {
        return Err(Error::Format);
    }
    let mut out = Vec::new();
    loop {
        match r.u8()? {
            0xff => break,
            0xfe => {
                r.take(4)?;
            }
            _ => {}
        }
        let e = r.u8()?;
        let entry = match e >> 6 {
            0 => r.take(usize::from(e & 0x3f))?.to_vec(),
            1 => {
                let n = (usize::from(e & 0x3f) << 8) | usize::from(r.u8()?);
                r.take(n)?.to_vec()
            }
            2 if e == 0x80 => {
                let n = u32::from_be_bytes(r.array()?) as usize;
                r.take(n)?.to_vec()
            }
            2 => return Err(Error::Format),
            _ => match e {
                0xc0 => decimal(i64::from(i16::from_le_bytes(r.array()?))),
                0xd0 => decimal(i64::from(i32::from_le_bytes(r.array()?))),
                0xe0 => decimal(i64::from_le_bytes(r.array()?)),
                0xf0 => {
                    let [x, y, z] = r.array()?;
                    decimal(i64::from(i32::from_le_bytes([0, x, y, z]) >> 8))
                }
                0xfe => decimal(i64::from(r.u8()? as i8)),
                0xf1..=0xfd => decimal(i64::from(e & 0x0f) - 1),
                _ => return Err(Error::Format),
            },
        };
        out.push(entry);
    }
    if r.pos != blob.len() || (count != u16::MAX && usize::from(count) != out.len()) {
        return Err(Error::Format);
    }
    Ok(out)
}

/// The members of an intset: `encoding:u32le` (2, 4 or 8 bytes per member), `length:u32le`,
/// then the members little-endian.
pub fn intset(blob: &[u8]) -> Result<Vec<i64>> {
    let mut r = Reader { buf: blob, pos: 0 };
    let width = u32::from_le_bytes(r.array()?) as usize;
    let n = u32::from_le_bytes(r.array()?) as usize;
    if !matches!(width, 2 | 4 | 8) || r.left() != n.checked_mul(width).ok_or(Error::Format)? {
        return Err(Error::Format);
    }
    Ok(r.buf[r.pos..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes(c.try_into().unwrap_or_default()),
        })
        .collect())
}

#[cfg(test)]
mod tests;

//! HyperLogLog values, stored as strings in Redis's own format so that values move between
//! Lethe and Redis unchanged (GET from one, SET into the other) and counts agree exactly.
//!
//! The format and constants are those documented at the top of Redis's `hyperloglog.c`
//! (Redis 7.0) and in the Redis manual's HyperLogLog notes:
//!
//! - a 16-byte header: the magic `HYLL`, one encoding byte (0 dense, 1 sparse), three unused
//!   bytes, and the cached cardinality as a little-endian u64 whose top bit set means "stale";
//! - 2^14 registers (P = 14) of 6 bits; the dense encoding packs them least significant bit
//!   first into 12,288 bytes;
//! - the sparse encoding is a run-length code of opcodes: `00xxxxxx` ZERO (1-64 zero
//!   registers), `01xxxxxx yyyyyyyy` XZERO (1-16,384 zero registers), `1vvvvvxx` VAL (1-4
//!   registers of value 1-32); a new value starts as one XZERO covering every register and
//!   turns dense once it would pass `hll-sparse-max-bytes` (3,000 by default) or a register
//!   needs more than 32;
//! - elements are hashed with MurmurHash64A (seed `0xadc83b19`): the low 14 bits pick the
//!   register, the run of zero bits above them (plus one) is the value;
//! - the count is Otmar Ertl's improved raw estimator ("New cardinality estimation algorithms
//!   for HyperLogLog sketches", arXiv:1702.01284), which Redis uses since 5.0.
//!
//! Edits reproduce Redis's byte layout exactly, including how it splits and re-merges sparse
//! runs, since GET shows the bytes.

/// Header bytes before the registers.
pub const HEADER: usize = 16;
/// Register index bits (Redis's `HLL_P`).
const P: u32 = 14;
/// Hash bits left for the run length (`HLL_Q`).
const Q: usize = 64 - P as usize;
/// Registers (`HLL_REGISTERS`).
pub const REGISTERS: usize = 1 << P;
/// Bytes of a dense value, header included (`HLL_DENSE_SIZE`).
pub const DENSE_SIZE: usize = HEADER + (REGISTERS * 6).div_ceil(8);
/// Redis's default `hll-sparse-max-bytes`: past it a sparse value turns dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
/// The hash seed Redis uses for elements.
const SEED: u64 = 0xadc8_3b19;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// Largest value a sparse VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Longest run of a VAL opcode.
const VAL_MAX_LEN: usize = 4;
/// Longest run of a ZERO opcode.
const ZERO_MAX_LEN: usize = 64;
/// `0.5 / ln 2`, the estimator's constant for m -> infinity (`HLL_ALPHA_INF`).
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A value whose sparse opcodes do not cover exactly the registers (Redis's INVALIDOBJ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Whether `bytes` pass Redis's checks for a HyperLogLog: long enough, the magic, a known
/// encoding, and the exact size if dense. (The sparse opcodes are checked as they are read.)
pub fn is_valid(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER
        && &bytes[..4] == b"HYLL"
        && bytes[4] <= SPARSE
        && (bytes[4] != DENSE || bytes.len() == DENSE_SIZE)
}

/// Whether a (valid) value is dense.
pub fn is_dense(bytes: &[u8]) -> bool {
    bytes[4] == DENSE
}

/// A new, empty value: sparse, one XZERO opcode, cached count 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0; HEADER];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    push_xzero(&mut v, REGISTERS);
    v
}

/// Marks the cached cardinality stale (its top bit).
pub fn invalidate_cache(bytes: &mut [u8]) {
    bytes[15] |= 0x80;
}

/// The cached cardinality, if not stale.
pub fn cached(bytes: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    (bytes[15] & 0x80 == 0).then_some(card)
}

/// Stores `card` as the cached cardinality.
pub fn set_cache(bytes: &mut [u8], card: u64) {
    bytes[8..16].copy_from_slice(&card.to_le_bytes());
}

/// MurmurHash64A (Austin Appleby's public-domain hash, 64-bit version A) reading words
/// little-endian, as Redis does on little-endian machines and as its big-endian variant
/// reproduces.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for w in words.by_ref() {
        let mut k = u64::from_le_bytes(w.try_into().unwrap_or_default());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the value it offers it.
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // A bit above the hash's 50 ends the run, so the value is at most 51.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, shift) = (i * 6 / 8, i * 6 % 8);
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> shift) | (b1 << (8 - shift))) & 63) as u8
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let (byte, shift) = (i * 6 / 8, i * 6 % 8);
    let bits = u16::from(v) << shift;
    regs[byte] = (regs[byte] & !((63u16 << shift) as u8)) | bits as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next = (*next & !((63u16 << shift) >> 8) as u8) | (bits >> 8) as u8;
    }
}

/// Raises register `i` of a dense value to `count`; whether it changed.
pub fn dense_set(bytes: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut bytes[HEADER..];
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// One sparse opcode at `p`: (registers it covers, value, bytes it takes). An XZERO cut off
/// at the end reads its missing byte as 0, as Redis reads the string's terminator.
fn opcode(v: &[u8], p: usize) -> (usize, u8, usize) {
    let op = v[p];
    if op & 0x80 != 0 {
        (usize::from(op & 3) + 1, ((op >> 2) & 0x1f) + 1, 1)
    } else if op & 0x40 == 0 {
        (usize::from(op & 0x3f) + 1, 0, 1)
    } else {
        let low = v.get(p + 1).copied().unwrap_or(0);
        ((usize::from(op & 0x3f) << 8 | usize::from(low)) + 1, 0, 2)
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | (value - 1) << 2 | (len - 1) as u8
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(0x40 | (l >> 8) as u8);
    v.push((l & 0xff) as u8);
}

/// A run of `len` zero registers as the shortest opcode.
fn push_zeros(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

/// Turns a sparse value dense (a dense one is left as it is), keeping the header.
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), Corrupt> {
    if is_dense(v) {
        return Ok(());
    }
    let mut dense = vec![0; DENSE_SIZE];
    dense[..HEADER].copy_from_slice(&v[..HEADER]);
    dense[4] = DENSE;
    let (mut idx, mut p) = (0, HEADER);
    while p < v.len() {
        let (run, value, len) = opcode(v, p);
        if value > 0 {
            if idx + run > REGISTERS {
                break;
            }
            for i in idx..idx + run {
                dense_put(&mut dense[HEADER..], i, value);
            }
        }
        idx += run;
        p += len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *v = dense;
    Ok(())
}

/// Raises register `index` to `count` in a value of either encoding, turning a sparse one
/// dense when Redis would; whether it changed.
pub fn set(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if is_dense(v) {
        return Ok(dense_set(v, index, count));
    }
    sparse_set(v, index, count)
}

/// Adds `element`; whether a register changed.
pub fn add(v: &mut Vec<u8>, element: &[u8]) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    set(v, index, count)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    dense_set(v, index, count);
    Ok(true)
}

fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // The opcode covering `index`, the first register it covers, and the opcode before it.
    let (mut p, mut first, mut prev, mut found) = (HEADER, 0, None, None);
    while p < v.len() {
        let op = opcode(v, p);
        if index < first + op.0 {
            found = Some(op);
            break;
        }
        prev = Some(p);
        p += op.2;
        first += op.0;
    }
    let Some((run, old, oplen)) = found else {
        return Err(Corrupt);
    };
    if old >= count {
        return Ok(false);
    }
    if run == 1 && oplen == 1 {
        // A single register (VAL or ZERO of one) is rewritten where it is.
        v[p] = val_op(count, 1);
    } else {
        // Split the run around `index`: zeros or the old value on either side.
        let last = first + run - 1;
        let mut seq = Vec::with_capacity(5);
        let side = |seq: &mut Vec<u8>, len: usize| {
            if old == 0 {
                push_zeros(seq, len);
            } else {
                seq.push(val_op(old, len));
            }
        };
        if index != first {
            side(&mut seq, index - first);
        }
        seq.push(val_op(count, 1));
        if index != last {
            side(&mut seq, last - index);
        }
        if seq.len() > oplen && v.len() + seq.len() - oplen > SPARSE_MAX_BYTES {
            return promote(v, index, count);
        }
        v.splice(p..p + oplen, seq);
    }
    merge_runs(v, prev.unwrap_or(HEADER));
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value, looking at up to five opcodes from `p`, as
/// Redis does after each change (so the bytes stay the same as Redis's).
fn merge_runs(v: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let (run, value, len) = opcode(v, p);
        if value == 0 {
            p += len;
            continue;
        }
        if let Some(&next) = v.get(p + 1) {
            if next & 0x80 != 0 {
                let (run2, value2, _) = opcode(v, p + 1);
                if value == value2 && run + run2 <= VAL_MAX_LEN {
                    v[p + 1] = val_op(value, run + run2);
                    v.remove(p);
                    continue;
                }
            }
        }
        p += 1;
    }
}

/// Raises each register of `max` (one byte per register) to the value's.
pub fn merge_into(max: &mut [u8], bytes: &[u8]) -> Result<(), Corrupt> {
    if is_dense(bytes) {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&bytes[HEADER..], i));
        }
        return Ok(());
    }
    let (mut idx, mut p) = (0, HEADER);
    while p < bytes.len() {
        let (run, value, len) = opcode(bytes, p);
        if value > 0 {
            if idx + run > REGISTERS {
                break;
            }
            for m in &mut max[idx..idx + run] {
                *m = (*m).max(value);
            }
        }
        idx += run;
        p += len;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// The registers of a dense value, one byte each.
pub fn dense_registers(bytes: &[u8]) -> Vec<u8> {
    (0..REGISTERS)
        .map(|i| dense_get(&bytes[HEADER..], i))
        .collect()
}

/// A sparse value's opcodes as text (`z:len` ZERO, `Z:len` XZERO, `v:value,len` VAL), the way
/// Redis's PFDEBUG DECODE prints them.
pub fn decode_sparse(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HEADER;
    while p < bytes.len() {
        let (run, value, len) = opcode(bytes, p);
        out.push(match (value, len) {
            (0, 1) => format!("z:{run}"),
            (0, _) => format!("Z:{run}"),
            _ => format!("v:{value},{run}"),
        });
        p += len;
    }
    out.join(" ")
}

/// The estimated cardinality of a valid value.
pub fn count(bytes: &[u8]) -> Result<u64, Corrupt> {
    let mut histogram = [0u32; 64];
    if is_dense(bytes) {
        for i in 0..REGISTERS {
            histogram[usize::from(dense_get(&bytes[HEADER..], i))] += 1;
        }
    } else {
        let (mut idx, mut p) = (0, HEADER);
        while p < bytes.len() {
            let (run, value, len) = opcode(bytes, p);
            idx += run;
            histogram[usize::from(value)] += run as u32;
            p += len;
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histogram))
}

/// The estimated cardinality of registers given one byte each (a multi-key union).
pub fn count_registers(registers: &[u8]) -> u64 {
    let mut histogram = [0u32; 64];
    for &r in registers {
        histogram[usize::from(r & 63)] += 1;
    }
    estimate(&histogram)
}

/// Ertl's improved raw estimator over the histogram of register values.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histogram[Q + 1])) / m);
    for &h in histogram[1..=Q].iter().rev() {
        z += f64::from(h);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Ertl's sigma function, by its series (until it stops changing).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// Ertl's tau function, by its series (until it stops changing).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_is_one_xzero_and_counts_zero() {
        let v = new_sparse();
        assert_eq!(v.len(), HEADER + 2);
        assert_eq!(&v[HEADER..], &[0x7f, 0xff]);
        assert!(is_valid(&v));
        assert_eq!(count(&v), Ok(0));
    }

    #[test]
    fn dense_registers_round_trip_at_every_bit_offset() {
        let mut v = new_sparse();
        to_dense(&mut v).unwrap();
        assert_eq!(v.len(), DENSE_SIZE);
        for i in [0, 1, 2, 3, 4, 5, 1000, REGISTERS - 2, REGISTERS - 1] {
            assert!(dense_set(&mut v, i, 51));
            assert_eq!(dense_get(&v[HEADER..], i), 51);
            assert!(!dense_set(&mut v, i, 3));
        }
        assert_eq!(dense_get(&v[HEADER..], 6), 0);
    }

    #[test]
    fn sparse_and_dense_count_alike() {
        let mut sparse = new_sparse();
        for i in 0..500 {
            add(&mut sparse, format!("e{i}").as_bytes()).unwrap();
        }
        assert!(!is_dense(&sparse));
        let mut dense = sparse.clone();
        to_dense(&mut dense).unwrap();
        assert_eq!(count(&sparse), count(&dense));
        let mut max = vec![0; REGISTERS];
        merge_into(&mut max, &sparse).unwrap();
        assert_eq!(count_registers(&max), count(&dense).unwrap());
        let n = count(&dense).unwrap();
        assert!((490..=510).contains(&n), "{n}");
    }

    #[test]
    fn corrupt_sparse_values_are_detected() {
        let mut v = new_sparse();
        v.truncate(HEADER + 1);
        v[HEADER] = 0x00;
        assert_eq!(count(&v), Err(Corrupt));
        assert_eq!(set(&mut v, 5, 1), Err(Corrupt));
    }
}

//! INCRBYFLOAT's arithmetic, as Redis does it: in x87 80-bit `long double` (a 64-bit mantissa),
//! printed with `%.17Lf` and trailing zeros trimmed (`ld2string(..., LD_STR_HUMAN)`).
//!
//! Rust has no 80-bit float, and `f64` gives different text (1000 + 0.1 is
//! `1000.09999999999999998` in Redis, the long double's own rounding error showing in the 17th
//! decimal; in `f64` it would be `1000.10000000000002274`). Matching Redis's replies byte for
//! byte needs the same arithmetic, so it is written here: decimal text is parsed to the
//! nearest value with a 64-bit mantissa (as `strtold` does), sums are rounded to 64 bits (ties to
//! even, as the x87 unit does), and the value is printed exactly, rounded to 17 decimals (as
//! glibc's `printf` does). Big integers keep every step exact before its one rounding.

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};
use std::cmp::Ordering;

/// x87 extended precision: the largest binary exponent of a finite value (2^16384 overflows).
const MAX_EXP: i64 = 16384;
/// Decimal magnitudes (digits before the point) outside this range are beyond the long double
/// (its largest value is about 1.19e4932, its smallest subnormal about 3.6e-4951): `strtold`
/// reports them out of range. Values just inside are checked exactly after rounding.
const DECIMAL_RANGE: std::ops::RangeInclusive<i64> = -4950..=4933;

/// What [`LongDouble::parse`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Value(LongDouble),
    /// Beyond the long double's range: `strtold`'s `ERANGE`, which Redis refuses.
    OutOfRange,
}

/// `(-1)^neg × mant × 2^exp`, with `mant` normalized (top bit set) unless the value is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

impl LongDouble {
    const ZERO: LongDouble = LongDouble {
        neg: false,
        mant: 0,
        exp: 0,
    };

    /// The nearest value to decimal text `[+-]digits[.digits][e[+-]digits]` (as `strtold`);
    /// `None` for other spellings (hexadecimal, `inf`), [`Parsed::OutOfRange`] for what
    /// `strtold` reports as `ERANGE` (overflow, or a nonzero value underflowing to zero).
    pub fn parse(text: &[u8]) -> Option<Parsed> {
        let (neg, rest) = match text.first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, &[][..]),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.iter().chain(frac).all(u8::is_ascii_digit) {
            return None;
        }
        let mut exp10: i64 = match exponent {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(b"-").or(e.strip_prefix(b"+")).unwrap_or(e);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                // Saturate: a longer exponent is an infinity or a zero either way.
                let n = std::str::from_utf8(digits)
                    .ok()?
                    .parse::<i64>()
                    .unwrap_or(i64::MAX / 2)
                    .min(i64::MAX / 4);
                if e.first() == Some(&b'-') { -n } else { n }
            }
        };
        exp10 -= frac.len() as i64;
        let digits: Vec<u8> = int.iter().chain(frac).map(|d| d - b'0').collect();
        let m = BigUint::from_radix_be(&digits, 10)?;
        if m.is_zero() {
            return Some(Parsed::Value(LongDouble { neg, ..Self::ZERO }));
        }
        let magnitude = exp10 + digits.len() as i64;
        if !DECIMAL_RANGE.contains(&magnitude) {
            return Some(Parsed::OutOfRange);
        }
        let v = if exp10 >= 0 {
            round(m * pow10(exp10 as u32), false, 0, neg)
        } else {
            // Enough quotient bits for a correctly rounded 64-bit mantissa, the rest sticky.
            let d = pow10((-exp10) as u32);
            let k = (66 + d.bits() as i64 - m.bits() as i64).max(0);
            let (q, r) = (m << k as usize).div_rem(&d);
            round(q, !r.is_zero(), -k, neg)
        };
        Some(v.finite().map_or(Parsed::OutOfRange, Parsed::Value))
    }

    /// A double, exactly (for spellings [`LongDouble::parse`] leaves to `f64`, such as
    /// hexadecimal); `None` for infinities and NaN.
    pub fn from_f64(v: f64) -> Option<LongDouble> {
        if !v.is_finite() {
            return None;
        }
        if v == 0.0 {
            return Some(LongDouble {
                neg: v.is_sign_negative(),
                ..Self::ZERO
            });
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (mant, exp) = if exp == 0 {
            (frac, -1074)
        } else {
            (frac | (1 << 52), exp - 1075)
        };
        Some(round(BigUint::from(mant), false, exp, v < 0.0))
    }

    /// An integer, exactly (every i64 fits a 64-bit mantissa).
    pub fn from_i64(n: i64) -> LongDouble {
        if n == 0 {
            return Self::ZERO;
        }
        round(BigUint::from(n.unsigned_abs()), false, 0, n < 0)
    }

    /// `self + other`, rounded to a 64-bit mantissa (ties to even); `None` if it overflows.
    pub fn add(self, other: LongDouble) -> Option<LongDouble> {
        if self.mant == 0 {
            return Some(other);
        }
        if other.mant == 0 {
            return Some(self);
        }
        let e = self.exp.min(other.exp);
        let a = BigUint::from(self.mant) << (self.exp - e) as usize;
        let b = BigUint::from(other.mant) << (other.exp - e) as usize;
        let (sum, neg) = if self.neg == other.neg {
            (a + b, self.neg)
        } else {
            match a.cmp(&b) {
                Ordering::Equal => return Some(Self::ZERO),
                Ordering::Greater => (a - b, self.neg),
                Ordering::Less => (b - a, other.neg),
            }
        };
        round(sum, false, e, neg).finite()
    }

    /// `%.17Lf` with trailing zeros (and a bare point) trimmed, and `-0` as `0`: Redis's
    /// `LD_STR_HUMAN` text.
    pub fn to_human(self) -> String {
        // The value times 10^17, rounded to an integer (ties to even).
        let m = BigUint::from(self.mant) * pow10(17);
        let scaled = if self.exp >= 0 {
            m << self.exp as usize
        } else {
            let shift = (-self.exp) as usize;
            let q = &m >> shift;
            let rem = &m - (&q << shift);
            let half = BigUint::one() << (shift - 1);
            match rem.cmp(&half) {
                Ordering::Greater => q + 1u32,
                Ordering::Equal if q.bit(0) => q + 1u32,
                _ => q,
            }
        };
        let digits = scaled.to_str_radix(10);
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::new();
        if self.neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" { "0".into() } else { out }
    }

    fn finite(self) -> Option<LongDouble> {
        (self.mant == 0 || self.exp + 64 <= MAX_EXP).then_some(self)
    }
}

fn pow10(n: u32) -> BigUint {
    BigUint::from(10u32).pow(n)
}

/// `n × 2^exp` (plus a nonzero tail below `n`'s last bit when `sticky`) rounded to a 64-bit
/// mantissa, ties to even.
fn round(n: BigUint, sticky: bool, exp: i64, neg: bool) -> LongDouble {
    let bits = n.bits() as i64;
    if bits == 0 {
        return LongDouble {
            neg,
            ..LongDouble::ZERO
        };
    }
    if bits <= 64 {
        let mant = n.iter_u64_digits().next().unwrap_or(0);
        let shift = 64 - bits;
        // A sticky tail below an exact 64-bit value cannot change it: it is below half an ulp.
        return LongDouble {
            neg,
            mant: mant << shift,
            exp: exp - shift,
        };
    }
    let shift = (bits - 64) as usize;
    let q = &n >> shift;
    let rem = &n - (&q << shift);
    let half = BigUint::one() << (shift - 1);
    let mut mant = q.iter_u64_digits().next().unwrap_or(0);
    let up = match rem.cmp(&half) {
        Ordering::Greater => true,
        Ordering::Equal => sticky || mant & 1 == 1,
        Ordering::Less => false,
    };
    let mut e = exp + shift as i64;
    if up {
        match mant.checked_add(1) {
            Some(m) => mant = m,
            None => {
                mant = 1 << 63;
                e += 1;
            }
        }
    }
    LongDouble { neg, mant, exp: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> LongDouble {
        match LongDouble::parse(text.as_bytes()) {
            Some(Parsed::Value(v)) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn sum(a: &str, b: &str) -> String {
        value(a).add(value(b)).unwrap().to_human()
    }

    #[test]
    fn prints_like_redis() {
        // Replies of redis-server 7.0.15's INCRBYFLOAT (SET k a; INCRBYFLOAT k b), read off a
        // real server.
        for (a, b, redis) in [
            ("1000", "0.1", "1000.09999999999999998"),
            ("0.1", "0.2", "0.3"),
            ("10.5", "0.1", "10.6"),
            ("5.0e3", "200", "5200"),
            ("1e20", "0", "100000000000000000000"),
            ("-1.5", "0.25", "-1.25"),
            ("3", "-3", "0"),
            ("123456789.123", "0.000001", "123456789.12300099999993108"),
            ("1.23456789012345678", "0", "1.23456789012345678"),
            ("0", "1e-18", "0"),
            ("99999999999999999", "1", "100000000000000000"),
            ("0", "-0", "0"),
        ] {
            assert_eq!(sum(a, b), redis, "{a} + {b}");
        }
        assert_eq!(LongDouble::from_i64(-7).to_human(), "-7");
    }

    #[test]
    fn doubles_convert_exactly() {
        assert_eq!(LongDouble::from_f64(16.0), Some(value("16")));
        assert_eq!(LongDouble::from_f64(-0.5).unwrap().to_human(), "-0.5");
        assert!(LongDouble::from_f64(f64::INFINITY).is_none());
    }

    #[test]
    fn rejects_other_spellings_and_overflow() {
        for bad in ["", ".", "1e", "1e+", "0x10", "inf", "1.2.3", "--1", "1 "] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert_eq!(LongDouble::parse(b"1e5000"), Some(Parsed::OutOfRange));
        assert_eq!(LongDouble::parse(b"1e-7000"), Some(Parsed::OutOfRange));
        assert_eq!(
            value("1e400").add(value("0")).map(|v| v.to_human().len()),
            Some(401)
        );
        let big = value("1e4931");
        assert!(big.add(big).is_some());
        let huge = value("1.1e4932");
        assert!(huge.add(huge).is_none());
    }
}

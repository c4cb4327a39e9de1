//! A cursor over a command's arguments, with Redis's parsing rules and error texts.
//!
//! Commands read their arguments in order through [`Parse`]; the number parsers are the strict
//! ones Redis uses (`string2ll`, `strtold`), so `+1`, ` 1` and `01` are rejected exactly where
//! Redis rejects them.

use crate::cmd::CommandError;
use bytes::Bytes;

/// The arguments after the command name.
#[derive(Debug)]
pub struct Parse {
    args: std::vec::IntoIter<Bytes>,
}

impl Parse {
    /// A cursor over `args` (without the command name).
    pub fn new(args: Vec<Bytes>) -> Parse {
        Parse {
            args: args.into_iter(),
        }
    }

    /// Arguments not yet read.
    pub fn remaining(&self) -> usize {
        self.args.len()
    }

    /// The next argument. Arity is checked before parsing, so running out is a syntax error.
    pub fn next_bytes(&mut self) -> Result<Bytes, CommandError> {
        self.args.next().ok_or_else(CommandError::syntax)
    }

    /// The next argument, if any.
    pub fn try_next(&mut self) -> Option<Bytes> {
        self.args.next()
    }

    /// The next argument as a 64-bit integer (`value is not an integer or out of range`).
    pub fn next_int(&mut self) -> Result<i64, CommandError> {
        parse_int(&self.next_bytes()?).ok_or_else(CommandError::not_integer)
    }
}

/// Redis's `string2ll`: an optional `-`, then digits without leading zeros (except `0` itself),
/// no spaces or `+`, within `i64`.
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let valid = match digits {
        [] => false,
        [b'0'] => b.len() == 1,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !valid || b.len() > 20 {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Redis's float parsing (`strtold` over the whole string): no surrounding spaces, no NaN.
pub fn parse_float(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty()
        || s.starts_with(|c: char| c.is_ascii_whitespace())
        || s.ends_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_reject_spaces_and_nan() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        for bad in [&b""[..], b" 1", b"nan", b"abc"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
    }
}

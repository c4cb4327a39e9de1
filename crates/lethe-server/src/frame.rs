//! RESP frames: the reply type commands build, the encoder that writes it in the connection's
//! protocol (RESP2 or RESP3), and the request parser (multibulk and inline).
//!
//! Replies are built once in RESP3 terms and lowered at encoding time, so commands never care
//! which protocol the client chose: maps become flat arrays, sets become arrays, booleans become
//! integers, doubles become bulk strings, and nulls take the RESP2 shape Redis uses for the reply
//! type (`$-1` for a missing string, `*-1` for a missing array).
//!
//! Requests are parsed straight from the connection's buffer. The parser distinguishes input that
//! is merely incomplete (read more) from input that can never become a valid request; the latter
//! carries Redis's own protocol-error text, which the connection sends before closing.

use bytes::Bytes;
use std::fmt;

/// Longest inline request (without a newline) or multibulk header line, as in Redis.
const MAX_INLINE: usize = 64 * 1024;
/// Most arguments in one request: Redis 7 accepts up to `INT_MAX`.
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Largest bulk argument, Redis's default `proto-max-bulk-len`.
pub const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Most arguments a client that still has to AUTH may send in one request (Redis's limit, so
/// an unauthenticated client cannot make the server allocate much).
const MAX_MULTIBULK_UNAUTHENTICATED: i64 = 10;
/// Largest bulk argument from a client that still has to AUTH.
const MAX_BULK_UNAUTHENTICATED: i64 = 16384;

/// What a request may be: the limits that depend on settings and on the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`.
    pub max_bulk: i64,
    /// Whether the client must still AUTH (Redis then allows only small requests).
    pub unauthenticated: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk: MAX_BULK,
            unauthenticated: false,
        }
    }
}

/// The protocol a connection speaks, chosen with `HELLO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, every connection's initial protocol.
    Resp2,
    /// RESP3.
    Resp3,
}

impl Protocol {
    /// The number `HELLO` reports.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// A reply (or, for requests, an array of bulk strings).
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`; the text includes the error code.
    Error(String),
    /// `:1`.
    Integer(i64),
    /// `$3\r\nfoo`.
    Bulk(Bytes),
    /// A missing string: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*2 ...`.
    Array(Vec<Frame>),
    /// RESP3 map; a flat array of keys and values in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Frame>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 boolean; `:1`/`:0` in RESP2.
    Boolean(bool),
    /// RESP3 push; an array in RESP2.
    Push(Vec<Frame>),
    /// RESP3 verbatim text (`=`, format `txt`); a bulk string in RESP2. INFO and CLIENT LIST
    /// reply with it.
    Verbatim(Bytes),
    /// Several replies sent back to back, for the commands that answer once per argument
    /// (SUBSCRIBE and its relatives confirm each channel separately).
    Multi(Vec<Frame>),
}

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// An error reply; `text` starts with the error code (`ERR`, `WRONGTYPE`, ...).
    pub fn error(text: impl Into<String>) -> Frame {
        Frame::Error(text.into())
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// Appends this frame's encoding in `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut Vec<u8>) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            // A CR or LF inside would end the line early and desynchronize the client.
            Frame::Error(s) => line(out, b'-', s.replace(['\r', '\n'], " ").as_bytes()),
            Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(b) => bulk(out, b),
            Frame::Null | Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Frame::Null => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => aggregate(out, b'*', items, proto),
            Frame::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
            Frame::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
            Frame::Map(pairs) => {
                if resp3 {
                    line(out, b'%', pairs.len().to_string().as_bytes());
                } else {
                    line(out, b'*', (pairs.len() * 2).to_string().as_bytes());
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Frame::Boolean(b) if resp3 => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::Boolean(b) => line(out, b':', if *b { b"1" } else { b"0" }),
            Frame::Verbatim(text) if resp3 => {
                line(out, b'=', (text.len() + 4).to_string().as_bytes());
                out.extend_from_slice(b"txt:");
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Verbatim(text) => bulk(out, text),
            Frame::Multi(frames) => {
                for f in frames {
                    f.encode(proto, out);
                }
            }
        }
    }

    /// Parses one request from the start of `buf`: a multibulk array of bulk strings, or an
    /// inline command (space-separated, with Redis's quoting). Returns the arguments and the
    /// bytes consumed; an empty argument list means a blank line or an empty multibulk, which
    /// Redis silently skips.
    pub fn parse_request(buf: &[u8]) -> Result<(Vec<Bytes>, usize), ParseError> {
        Frame::parse_request_with(buf, ParseLimits::default())
    }

    /// [`Frame::parse_request`] under `limits`.
    pub fn parse_request_with(
        buf: &[u8],
        limits: ParseLimits,
    ) -> Result<(Vec<Bytes>, usize), ParseError> {
        match buf.first() {
            None => Err(ParseError::Incomplete),
            Some(b'*') => parse_multibulk(buf, limits),
            Some(_) => parse_inline(buf),
        }
    }

    /// About how many bytes this frame takes encoded: what it weighs in an output buffer.
    pub fn approx_size(&self) -> usize {
        // A type byte, a length of a few digits and CRLFs.
        const HEADER: usize = 8;
        match self {
            Frame::Simple(s) | Frame::Error(s) => s.len() + HEADER,
            Frame::Bulk(b) | Frame::Verbatim(b) => b.len() + 2 * HEADER,
            Frame::Integer(_) | Frame::Double(_) => 24,
            Frame::Null | Frame::NullArray | Frame::Boolean(_) => HEADER,
            Frame::Array(items) | Frame::Set(items) | Frame::Push(items) | Frame::Multi(items) => {
                HEADER + items.iter().map(Frame::approx_size).sum::<usize>()
            }
            Frame::Map(pairs) => {
                HEADER
                    + pairs
                        .iter()
                        .map(|(k, v)| k.approx_size() + v.approx_size())
                        .sum::<usize>()
            }
        }
    }
}

/// Redis's spelling of a double: `inf`, `-inf`, `nan`, or the shortest decimal that reads back.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        d.to_string()
    }
}

fn line(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    line(out, b'$', data.len().to_string().as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, tag: u8, items: &[Frame], proto: Protocol) {
    line(out, tag, items.len().to_string().as_bytes());
    for item in items {
        item.encode(proto, out);
    }
}

/// Why a request could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not enough data yet; read more and retry.
    Incomplete,
    /// The input can never be a valid request. The text is Redis's, after `Protocol error: `.
    Protocol(&'static str),
    /// Like [`ParseError::Protocol`] for messages that quote the input.
    ProtocolOwned(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Incomplete => f.write_str("incomplete request"),
            ParseError::Protocol(m) => write!(f, "Protocol error: {m}"),
            ParseError::ProtocolOwned(m) => write!(f, "Protocol error: {m}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Finds the CRLF-terminated line starting at `start`; returns the line and the index after it.
fn crlf_line(buf: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = &buf[start..];
    let mut from = 0;
    loop {
        let cr = from + rest[from..].iter().position(|&b| b == b'\r')?;
        match rest.get(cr + 1) {
            Some(b'\n') => return Some((&rest[..cr], start + cr + 2)),
            Some(_) => from = cr + 1,
            None => return None,
        }
    }
}

/// Protocol lengths, as `str::parse::<i64>` reads them: an optional sign, then at least one
/// digit and nothing else, within `i64`.
fn parse_len(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, digits),
    };
    if body.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

fn parse_multibulk(buf: &[u8], limits: ParseLimits) -> Result<(Vec<Bytes>, usize), ParseError> {
    let Some((header, mut pos)) = crlf_line(buf, 1) else {
        return if buf.len() > MAX_INLINE {
            Err(ParseError::Protocol("too big mbulk count string"))
        } else {
            Err(ParseError::Incomplete)
        };
    };
    let count = match parse_len(header) {
        Some(n) if n <= MAX_MULTIBULK => n,
        _ => return Err(ParseError::Protocol("invalid multibulk length")),
    };
    if limits.unauthenticated && count > MAX_MULTIBULK_UNAUTHENTICATED {
        return Err(ParseError::Protocol("unauthenticated multibulk length"));
    }
    if count <= 0 {
        return Ok((Vec::new(), pos));
    }
    let mut args = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let Some(&tag) = buf.get(pos) else {
            return Err(ParseError::Incomplete);
        };
        if tag != b'$' {
            return Err(ParseError::ProtocolOwned(format!(
                "expected '$', got '{}'",
                tag as char
            )));
        }
        let Some((len_digits, data_start)) = crlf_line(buf, pos + 1) else {
            return if buf.len() - pos > MAX_INLINE {
                Err(ParseError::Protocol("too big bulk count string"))
            } else {
                Err(ParseError::Incomplete)
            };
        };
        let len = match parse_len(len_digits) {
            Some(n) if (0..=limits.max_bulk).contains(&n) => n,
            _ => return Err(ParseError::Protocol("invalid bulk length")),
        };
        if limits.unauthenticated && len > MAX_BULK_UNAUTHENTICATED {
            return Err(ParseError::Protocol("unauthenticated bulk length"));
        }
        let len = len as usize;
        // As Redis, the two bytes after the payload are taken as the terminator unchecked.
        if buf.len() < data_start + len + 2 {
            return Err(ParseError::Incomplete);
        }
        let arg = &buf[data_start..data_start + len];
        args.push(if args.is_empty() {
            command_name(arg)
        } else {
            copy_arg(arg)
        });
        pos = data_start + len + 2;
    }
    Ok((args, pos))
}

/// Command names common enough that a request naming one (spelt as clients usually do, all
/// upper or all lower case) shares a static copy of the name instead of allocating its own.
const COMMON_NAMES: &[&[u8]] = &[
    b"GET",
    b"get",
    b"SET",
    b"set",
    b"DEL",
    b"del",
    b"PING",
    b"ping",
    b"INCR",
    b"incr",
    b"MGET",
    b"mget",
    b"MSET",
    b"mset",
    b"EXISTS",
    b"exists",
    b"EXPIRE",
    b"expire",
    b"TTL",
    b"ttl",
    b"HGET",
    b"hget",
    b"HSET",
    b"hset",
    b"LETHE.SET",
    b"lethe.set",
];

/// The first argument of a request, the command's name.
fn command_name(arg: &[u8]) -> Bytes {
    match COMMON_NAMES.iter().find(|name| **name == arg) {
        Some(name) => Bytes::from_static(name),
        None => copy_arg(arg),
    }
}

/// A small argument's bytes kept inline, in the same allocation as the reference count of the
/// [`Bytes`] owning them. Keys and values are mostly small: a value stored from a request and
/// later cloned out of the keyspace and copied into a reply then touches one cache line, where
/// a copied `Vec` (plus the shared header its first clone allocates) takes two allocations and
/// two cache misses.
struct Inline<const N: usize> {
    len: u8,
    data: [u8; N],
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }
}

fn inline<const N: usize>(arg: &[u8]) -> Bytes {
    let mut data = [0u8; N];
    data[..arg.len()].copy_from_slice(arg);
    Bytes::from_owner(Inline {
        len: arg.len() as u8,
        data,
    })
}

/// An argument's own copy of its bytes (inline for small ones; sizes chosen so the
/// allocation, with its reference count, fills a 32-, 48- or 64-byte block).
fn copy_arg(arg: &[u8]) -> Bytes {
    match arg.len() {
        0 => Bytes::new(),
        1..=15 => inline::<15>(arg),
        16..=31 => inline::<31>(arg),
        32..=47 => inline::<47>(arg),
        _ => Bytes::copy_from_slice(arg),
    }
}

fn parse_inline(buf: &[u8]) -> Result<(Vec<Bytes>, usize), ParseError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Err(ParseError::Protocol("too big inline request"))
        } else {
            Err(ParseError::Incomplete)
        };
    };
    let mut text = &buf[..nl];
    if let [rest @ .., b'\r'] = text {
        text = rest;
    }
    match split_args(text) {
        Some(args) => Ok((args, nl + 1)),
        None => Err(ParseError::Protocol("unbalanced quotes in request")),
    }
}

/// Splits an inline command as Redis's `sdssplitargs` does: whitespace-separated words, double
/// quotes with C escapes (`\n`, `\xHH`, ...), single quotes with `\'`. `None` when quotes are
/// unbalanced or a closing quote is not followed by a space.
pub fn split_args(text: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == text.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = text.get(i).copied();
            if in_double {
                match c {
                    None => return None,
                    Some(b'\\')
                        if text.get(i + 1) == Some(&b'x')
                            && hex(text.get(i + 2)).is_some()
                            && hex(text.get(i + 3)).is_some() =>
                    {
                        cur.push(hex(text.get(i + 2))? * 16 + hex(text.get(i + 3))?);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < text.len() => {
                        i += 1;
                        cur.push(match text[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if text.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => cur.push(other),
                }
            } else if in_single {
                match c {
                    None => return None,
                    Some(b'\\') if text.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if text.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => cur.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(b) if b.is_ascii_whitespace() => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(other) => cur.push(other),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

fn hex(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn enc(f: &Frame, p: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(p, &mut out);
        out
    }

    #[test]
    fn multibulk_parses_and_reports_consumed_bytes() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1";
        let (a, n) = Frame::parse_request(buf).unwrap();
        assert_eq!(a, args(&["GET", "k"]));
        assert_eq!(n, buf.len() - 2);
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let buf = b"*2\r\n$3\r\nSET\r\n$5\r\nhello\r\n";
        for end in 0..buf.len() {
            assert_eq!(
                Frame::parse_request(&buf[..end]),
                Err(ParseError::Incomplete),
                "prefix of {end} bytes"
            );
        }
        assert!(Frame::parse_request(buf).is_ok());
    }

    #[test]
    fn bad_lengths_are_protocol_errors_with_redis_text() {
        let cases: [(&[u8], &str); 5] = [
            (b"*x\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\n$x\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
            (
                b"*3000000000\r\n",
                "Protocol error: invalid multibulk length",
            ),
        ];
        for (input, text) in cases {
            let err = Frame::parse_request(input).unwrap_err();
            assert_eq!(err.to_string(), text, "{input:?}");
        }
    }

    #[test]
    fn lengths_parse_like_str_parse() {
        for text in [
            "0",
            "12",
            "-1",
            "+7",
            "007",
            "-0",
            "",
            "-",
            "+",
            "1x",
            " 1",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
        ] {
            assert_eq!(
                parse_len(text.as_bytes()),
                text.parse::<i64>().ok(),
                "{text:?}"
            );
        }
        assert_eq!(crlf_line(b"ab\rc\r\nd", 0), Some((&b"ab\rc"[..], 6)));
        assert_eq!(crlf_line(b"ab\r", 0), None);
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        assert_eq!(Frame::parse_request(b"*0\r\n"), Ok((vec![], 4)));
        assert_eq!(Frame::parse_request(b"*-1\r\n"), Ok((vec![], 5)));
    }

    #[test]
    fn inline_commands_split_like_redis() {
        assert_eq!(Frame::parse_request(b"PING\r\n"), Ok((args(&["PING"]), 6)));
        assert_eq!(
            Frame::parse_request(b"set  k \"a b\\x41\\n\"\n"),
            Ok((args(&["set", "k", "a bA\n"]), 19))
        );
        assert_eq!(
            Frame::parse_request(b"echo 'it\\'s'\r\n").unwrap().0,
            args(&["echo", "it's"])
        );
        assert_eq!(Frame::parse_request(b"  \r\n"), Ok((vec![], 4)));
        assert_eq!(Frame::parse_request(b"PING"), Err(ParseError::Incomplete));
    }

    #[test]
    fn unbalanced_inline_quotes_are_an_error() {
        for input in [&b"echo \"abc\r\n"[..], b"echo \"a\"b\r\n", b"echo 'x\r\n"] {
            assert_eq!(
                Frame::parse_request(input).unwrap_err().to_string(),
                "Protocol error: unbalanced quotes in request"
            );
        }
    }

    #[test]
    fn oversized_inline_without_newline_is_an_error() {
        let buf = vec![b'a'; MAX_INLINE + 1];
        assert_eq!(
            Frame::parse_request(&buf),
            Err(ParseError::Protocol("too big inline request"))
        );
    }

    #[test]
    fn nulls_take_the_shape_of_their_reply_type() {
        assert_eq!(enc(&Frame::Null, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp2), b"*-1\r\n");
        assert_eq!(enc(&Frame::Null, Protocol::Resp3), b"_\r\n");
        assert_eq!(enc(&Frame::NullArray, Protocol::Resp3), b"_\r\n");
    }

    #[test]
    fn resp3_types_lower_to_resp2() {
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, Protocol::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, Protocol::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp2), b"$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), Protocol::Resp3), b",1.5\r\n");
        assert_eq!(
            enc(&Frame::Double(f64::NEG_INFINITY), Protocol::Resp3),
            b",-inf\r\n"
        );
        assert_eq!(enc(&Frame::Boolean(true), Protocol::Resp2), b":1\r\n");
        assert_eq!(enc(&Frame::Boolean(false), Protocol::Resp3), b"#f\r\n");
        let set = Frame::Set(vec![Frame::Integer(7)]);
        assert_eq!(enc(&set, Protocol::Resp2), b"*1\r\n:7\r\n");
        assert_eq!(enc(&set, Protocol::Resp3), b"~1\r\n:7\r\n");
        let push = Frame::Push(vec![Frame::Simple("x".into())]);
        assert_eq!(enc(&push, Protocol::Resp3), b">1\r\n+x\r\n");
    }

    #[test]
    fn error_text_cannot_break_the_line() {
        assert_eq!(
            enc(&Frame::error("ERR a\r\nb"), Protocol::Resp2),
            b"-ERR a  b\r\n"
        );
    }

    #[test]
    fn verbatim_and_multi_encode_per_protocol() {
        let v = Frame::Verbatim(Bytes::from_static(b"a\r\nb"));
        assert_eq!(enc(&v, Protocol::Resp2), b"$4\r\na\r\nb\r\n");
        assert_eq!(enc(&v, Protocol::Resp3), b"=8\r\ntxt:a\r\nb\r\n");
        let m = Frame::Multi(vec![
            Frame::Push(vec![Frame::Integer(1)]),
            Frame::Push(vec![Frame::Integer(2)]),
        ]);
        assert_eq!(enc(&m, Protocol::Resp2), b"*1\r\n:1\r\n*1\r\n:2\r\n");
        assert_eq!(enc(&m, Protocol::Resp3), b">1\r\n:1\r\n>1\r\n:2\r\n");
    }

    #[test]
    fn limits_apply_per_client() {
        let small = ParseLimits {
            max_bulk: 4,
            unauthenticated: false,
        };
        assert_eq!(
            Frame::parse_request_with(b"*1\r\n$5\r\n", small)
                .unwrap_err()
                .to_string(),
            "Protocol error: invalid bulk length"
        );
        assert!(Frame::parse_request_with(b"*1\r\n$4\r\nPING\r\n", small).is_ok());
        let unauth = ParseLimits {
            unauthenticated: true,
            ..ParseLimits::default()
        };
        assert_eq!(
            Frame::parse_request_with(b"*11\r\n", unauth)
                .unwrap_err()
                .to_string(),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            Frame::parse_request_with(b"*1\r\n$16385\r\n", unauth)
                .unwrap_err()
                .to_string(),
            "Protocol error: unauthenticated bulk length"
        );
        assert_eq!(
            Frame::parse_request_with(b"*10\r\n$16384\r\n", unauth),
            Err(ParseError::Incomplete)
        );
        // A million arguments are fine for an authenticated client: only INT_MAX is refused.
        assert_eq!(
            Frame::parse_request(b"*2000000\r\n"),
            Err(ParseError::Incomplete)
        );
    }

    #[test]
    fn approx_size_grows_with_the_payload() {
        let small = Frame::Push(vec![Frame::bulk("message"), Frame::bulk("x")]);
        let big = Frame::Push(vec![Frame::bulk("message"), Frame::bulk(vec![0u8; 1000])]);
        assert!(big.approx_size() >= 1000 + small.approx_size() - 1);
        let mut out = Vec::new();
        big.encode(Protocol::Resp3, &mut out);
        assert!(big.approx_size() >= out.len());
    }
}

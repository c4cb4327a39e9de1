//! The request parser: RESP multibulk arrays and inline commands, read incrementally.
//!
//! A [`RequestParser`] keeps its place between reads: the argument count, the arguments already
//! complete, the length of the bulk being read and how far the current line was searched for its
//! end. Each byte received is therefore examined a bounded number of times, whatever the pacing
//! of the client: a request trickled one byte per read costs the same as one read whole. (A parser
//! that starts over on every read costs quadratic work, which a slow client turns into a denial of
//! service.)
//!
//! Large bulk arguments (at least [`BIG_ARG`] bytes) are not gathered in the connection's buffer:
//! the parser hands the connection a [`BigArg`], an exactly sized buffer the socket reads into
//! directly, which then becomes the argument without a copy and without pinning a larger
//! allocation, as Redis does for its `PROTO_MBULK_BIG_ARG`.
//!
//! Length fields are read as Redis reads them (`string2ll`: no sign but `-`, no leading zero),
//! with Redis's checks in Redis's order and Redis's error texts, which quote the offending byte
//! as it is, not re-encoded.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Longest inline request (without a newline) or multibulk header line, as in Redis.
pub const MAX_INLINE: usize = 64 * 1024;
/// Most arguments in one request: Redis 7 accepts up to `INT_MAX`.
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Largest bulk argument, Redis's default `proto-max-bulk-len`.
pub const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Most arguments a client that still has to AUTH may send in one request (Redis's limit, so
/// an unauthenticated client cannot make the server allocate much).
const MAX_MULTIBULK_UNAUTHENTICATED: i64 = 10;
/// Largest bulk argument from a client that still has to AUTH.
const MAX_BULK_UNAUTHENTICATED: i64 = 16384;
/// Bulk arguments from this size on are read into their own buffer ([`BigArg`]); Redis's
/// `PROTO_MBULK_BIG_ARG`.
pub const BIG_ARG: usize = 32 * 1024;
/// The first allocation of a big argument's buffer, and the least it grows by: a claimed length
/// is not allocated before the bytes arrive, so a client announcing 512 MB and sending nothing
/// costs nothing; growth doubles with what arrived, so copying stays linear.
const BIG_ARG_STEP: usize = 1024 * 1024;
/// Arguments preallocated from a claimed count; more grow with what arrives.
const PREALLOCATED_ARGS: usize = 1024;

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

/// Input that can never become a valid request. [`Self::text`] is what Redis replies after
/// `-ERR ` (it begins with `Protocol error: `), byte for byte; the connection sends it and
/// closes.
#[derive(Clone, PartialEq, Eq)]
pub struct ProtocolError {
    text: Vec<u8>,
}

impl ProtocolError {
    fn new(what: &str) -> ProtocolError {
        ProtocolError {
            text: format!("Protocol error: {what}").into_bytes(),
        }
    }

    /// Redis's `expected '$', got '%c'`, with the byte as it came (a CR or LF becomes a space,
    /// as Redis's error replies do, so the reply stays one line).
    fn expected_dollar(got: u8) -> ProtocolError {
        let mut text = b"Protocol error: expected '$', got '".to_vec();
        text.push(if got == b'\r' || got == b'\n' {
            b' '
        } else {
            got
        });
        text.push(b'\'');
        ProtocolError { text }
    }

    /// The error text, without the `ERR ` code.
    pub fn text(&self) -> &[u8] {
        &self.text
    }
}

impl fmt::Debug for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProtocolError({:?})",
            String::from_utf8_lossy(&self.text)
        )
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.text))
    }
}

impl std::error::Error for ProtocolError {}

/// A big bulk argument being received into its own buffer. The connection reads at most
/// [`Self::wanted`] bytes into [`Self::buffer`] (after [`Self::reserve`]), then parses again.
#[derive(Debug)]
pub struct BigArg {
    data: Vec<u8>,
    len: usize,
}

impl BigArg {
    /// Payload bytes still missing.
    pub fn wanted(&self) -> usize {
        self.len - self.data.len()
    }

    /// Makes room for the next read: at least one byte, at most what is missing, growing
    /// geometrically with what arrived, and never past the argument's exact size.
    pub fn reserve(&mut self) {
        if self.data.capacity() == self.data.len() {
            let grow = self.data.len().max(BIG_ARG_STEP).min(self.wanted());
            self.data.reserve_exact(grow);
        }
    }

    /// The buffer the socket reads into; read no more than [`Self::wanted`] bytes.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }
}

/// Where the parser is within a request.
#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Start,
    /// In a multibulk request, `remaining` arguments to go; `bulk` is the announced length of
    /// the argument being read, once its header line was read.
    Multibulk {
        remaining: usize,
        bulk: Option<usize>,
    },
    /// Receiving a big argument into its own buffer; then 2 bytes of terminator to skip.
    Big { remaining: usize, arg: BigArg },
    /// A big argument complete; its 2-byte terminator (not checked, as in Redis) still to skip.
    Terminator { remaining: usize, skip: usize },
}

/// An incremental request parser; one per connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    args: Vec<Bytes>,
    /// Bytes at the start of the buffer already searched for the current line's end.
    scanned: usize,
}

impl RequestParser {
    /// A parser between requests.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Whether the parser is between requests (nothing of a request received).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Start)
    }

    /// The big argument being received, if any: the connection then reads into it rather
    /// than into its buffer.
    pub fn big_arg(&mut self) -> Option<&mut BigArg> {
        match &mut self.state {
            State::Big { arg, .. } => Some(arg),
            _ => None,
        }
    }

    /// Parses from the start of `buf`, consuming what it used: `Ok(Some(args))` for a complete
    /// request (empty for a blank line or an empty multibulk, which Redis skips), `Ok(None)`
    /// when more input is needed (all of `buf` is then accounted for in the parser's state, or
    /// kept to be read again only past where it was searched). After an error the parser must
    /// not be used again: the connection closes.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            match &mut self.state {
                State::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        return self.inline(buf);
                    }
                    let Some(line) = line(&mut self.scanned, buf, 1) else {
                        return if buf.len() > MAX_INLINE {
                            Err(ProtocolError::new("too big mbulk count string"))
                        } else {
                            Ok(None)
                        };
                    };
                    let count = match parse_len(&buf[1..line]) {
                        Some(n) if n <= MAX_MULTIBULK => n,
                        _ => return Err(ProtocolError::new("invalid multibulk length")),
                    };
                    if limits.unauthenticated && count > MAX_MULTIBULK_UNAUTHENTICATED {
                        return Err(ProtocolError::new("unauthenticated multibulk length"));
                    }
                    buf.advance(line + 2);
                    if count <= 0 {
                        return Ok(Some(Vec::new()));
                    }
                    let count = count as usize;
                    self.args = Vec::with_capacity(count.min(PREALLOCATED_ARGS));
                    self.state = State::Multibulk {
                        remaining: count,
                        bulk: None,
                    };
                }
                State::Multibulk { remaining, bulk } => {
                    let len = match *bulk {
                        Some(len) => len,
                        None => {
                            // As Redis: the line first, then its first byte is checked.
                            let Some(line) = line(&mut self.scanned, buf, 0) else {
                                return if buf.len() > MAX_INLINE {
                                    Err(ProtocolError::new("too big bulk count string"))
                                } else {
                                    Ok(None)
                                };
                            };
                            if buf[0] != b'$' {
                                return Err(ProtocolError::expected_dollar(buf[0]));
                            }
                            let len = match parse_len(&buf[1.min(line)..line]) {
                                Some(n) if (0..=limits.max_bulk).contains(&n) => n,
                                _ => return Err(ProtocolError::new("invalid bulk length")),
                            };
                            if limits.unauthenticated && len > MAX_BULK_UNAUTHENTICATED {
                                return Err(ProtocolError::new("unauthenticated bulk length"));
                            }
                            buf.advance(line + 2);
                            let len = len as usize;
                            *bulk = Some(len);
                            len
                        }
                    };
                    // As Redis, the two bytes after the payload are taken as the terminator
                    // unchecked.
                    if buf.len() >= len + 2 {
                        let arg = if self.args.is_empty() {
                            command_name(&buf[..len])
                        } else {
                            copy_arg(&buf[..len])
                        };
                        buf.advance(len + 2);
                        self.args.push(arg);
                    } else if len >= BIG_ARG {
                        // The payload goes to its own buffer, starting with what is here.
                        let have = buf.len().min(len);
                        let mut data = Vec::with_capacity(have.max(BIG_ARG_STEP).min(len));
                        data.extend_from_slice(&buf[..have]);
                        buf.advance(have);
                        self.state = State::Big {
                            remaining: *remaining,
                            arg: BigArg { data, len },
                        };
                        continue;
                    } else {
                        return Ok(None);
                    }
                    *bulk = None;
                    *remaining -= 1;
                    if *remaining == 0 {
                        return Ok(Some(self.finish()));
                    }
                }
                State::Big { remaining, arg } => {
                    if arg.wanted() > 0 {
                        return Ok(None);
                    }
                    let data = std::mem::take(&mut arg.data);
                    self.args.push(Bytes::from(data));
                    self.state = State::Terminator {
                        remaining: *remaining - 1,
                        skip: 2,
                    };
                }
                State::Terminator { remaining, skip } => {
                    let n = (*skip).min(buf.len());
                    buf.advance(n);
                    *skip -= n;
                    if *skip > 0 {
                        return Ok(None);
                    }
                    if *remaining == 0 {
                        return Ok(Some(self.finish()));
                    }
                    self.state = State::Multibulk {
                        remaining: *remaining,
                        bulk: None,
                    };
                }
            }
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        self.state = State::Start;
        std::mem::take(&mut self.args)
    }

    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let start = self.scanned;
        let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
            self.scanned = buf.len();
            return if buf.len() > MAX_INLINE {
                Err(ProtocolError::new("too big inline request"))
            } else {
                Ok(None)
            };
        };
        self.scanned = 0;
        let nl = start + nl;
        let mut text = &buf[..nl];
        if let [rest @ .., b'\r'] = text {
            text = rest;
        }
        let args =
            split_args(text).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"));
        buf.advance(nl + 1);
        args.map(Some)
    }
}

/// The index of the `\r` ending the line that starts at `buf[0]` (searching from `from`),
/// once the byte after it has arrived too; Redis ends a line at its first `\r` and skips the
/// byte after it unchecked. Remembers how far it searched, so a line trickled in is searched
/// once.
fn line(scanned: &mut usize, buf: &[u8], from: usize) -> Option<usize> {
    let start = (*scanned).max(from);
    match buf
        .get(start..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
    {
        Some(i) if start + i + 1 < buf.len() => {
            *scanned = 0;
            Some(start + i)
        }
        // The `\r` is the last byte: search from it again next time.
        Some(i) => {
            *scanned = start + i;
            None
        }
        None => {
            *scanned = buf.len();
            None
        }
    }
}

/// Parses one request from the start of `buf` in one go: the arguments and the bytes consumed,
/// `Ok(None)` if `buf` holds no complete request. For tests and tools; connections keep a
/// [`RequestParser`].
pub fn parse_request(
    buf: &[u8],
    limits: ParseLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
    let mut parser = RequestParser::new();
    let mut b = BytesMut::from(buf);
    match parser.parse(&mut b, limits)? {
        Some(args) => Ok(Some((args, buf.len() - b.len()))),
        None => Ok(None),
    }
}

/// Redis's `string2ll` for protocol lengths: an optional `-`, then digits without a leading
/// zero (`0` alone excepted), within `i64`. `+1`, `01`, `-0` and the empty string are refused.
fn parse_len(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] | [b'0', _, ..] => return None,
        [b'0'] => return (!negative).then_some(0),
        // 19 digits always fit in a u64; i64 has 19 digits at most.
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    if negative {
        (n <= i64::MIN.unsigned_abs()).then(|| 0i64.wrapping_sub_unsigned(n))
    } else {
        i64::try_from(n).ok()
    }
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

    fn whole(buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
        parse_request(buf, ParseLimits::default())
    }

    fn err(buf: &[u8]) -> String {
        whole(buf).unwrap_err().to_string()
    }

    /// Feeds `input` in chunks of `step` bytes, as a connection would (big arguments read
    /// into their own buffer), and returns the requests parsed.
    fn feed(input: &[u8], step: usize) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            while let Some(req) = parser.parse(&mut buf, ParseLimits::default())? {
                out.push(req);
            }
            if pos == input.len() {
                return Ok(out);
            }
            let mut n = step.min(input.len() - pos);
            if let Some(big) = parser.big_arg() {
                n = n.min(big.wanted());
                big.reserve();
                big.buffer().extend_from_slice(&input[pos..pos + n]);
            } else {
                buf.extend_from_slice(&input[pos..pos + n]);
            }
            pos += n;
        }
    }

    #[test]
    fn multibulk_parses_and_reports_consumed_bytes() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1";
        let (a, n) = whole(buf).unwrap().unwrap();
        assert_eq!(a, args(&["GET", "k"]));
        assert_eq!(n, buf.len() - 2);
    }

    #[test]
    fn any_pacing_gives_the_same_requests() {
        let big = "x".repeat(BIG_ARG * 3 + 7);
        let mut input = Vec::new();
        for req in [
            vec!["SET", "k", big.as_str()],
            vec!["GET", "k"],
            vec!["ECHO", ""],
        ] {
            let mut enc = format!("*{}\r\n", req.len()).into_bytes();
            for a in req {
                enc.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
            }
            input.extend_from_slice(&enc);
        }
        input.extend_from_slice(b"PING\r\n*0\r\n");
        let expected = feed(&input, input.len()).unwrap();
        assert_eq!(expected.len(), 5);
        assert_eq!(expected[0][2].len(), big.len());
        assert_eq!(expected[3], args(&["PING"]));
        assert!(expected[4].is_empty());
        for step in [1, 2, 3, 7, 1000, 40_000] {
            assert_eq!(feed(&input, step).unwrap(), expected, "step {step}");
        }
    }

    #[test]
    fn strict_lengths_as_redis() {
        for bad in [
            "*+1\r\n", "*01\r\n", "* 1\r\n", "*\r\n", "*1x\r\n", "*-0\r\n",
        ] {
            assert_eq!(
                err(bad.as_bytes()),
                "Protocol error: invalid multibulk length",
                "{bad:?}"
            );
        }
        for bad in [
            "$04\r\n", "$+3\r\n", "$-0\r\n", "$-1\r\n", "$\r\n", "$3 \r\n",
        ] {
            let input = format!("*1\r\n{bad}");
            assert_eq!(
                err(input.as_bytes()),
                "Protocol error: invalid bulk length",
                "{bad:?}"
            );
        }
        assert_eq!(
            err(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        // Non-positive counts are empty requests, skipped.
        assert_eq!(whole(b"*0\r\n").unwrap(), Some((vec![], 4)));
        assert_eq!(whole(b"*-1\r\n").unwrap(), Some((vec![], 5)));
        assert_eq!(whole(b"*-7\r\n").unwrap(), Some((vec![], 5)));
    }

    #[test]
    fn the_offending_byte_is_quoted_raw() {
        assert_eq!(whole(b"*1\r\n\xff"), Ok(None));
        let e = whole(b"*1\r\n\xff\r\n").unwrap_err();
        assert_eq!(e.text(), b"Protocol error: expected '$', got '\xff'");
        let e = whole(b"*1\r\n\r\n").unwrap_err();
        assert_eq!(e.text(), b"Protocol error: expected '$', got ' '");
    }

    #[test]
    fn inline_commands_split_like_redis() {
        assert_eq!(whole(b"PING\r\n").unwrap(), Some((args(&["PING"]), 6)));
        assert_eq!(
            whole(b"set  k \"a b\\x41\\n\"\n").unwrap(),
            Some((args(&["set", "k", "a bA\n"]), 19))
        );
        assert_eq!(
            whole(b"echo 'it\\'s'\r\n").unwrap().unwrap().0,
            args(&["echo", "it's"])
        );
        assert_eq!(whole(b"  \r\n").unwrap(), Some((vec![], 4)));
        assert_eq!(whole(b"PING").unwrap(), None);
        for input in [&b"echo \"abc\r\n"[..], b"echo \"a\"b\r\n", b"echo 'x\r\n"] {
            assert_eq!(err(input), "Protocol error: unbalanced quotes in request");
        }
        assert_eq!(
            err(&vec![b'a'; MAX_INLINE + 1]),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn long_header_lines_are_refused() {
        let mut line = b"*".to_vec();
        line.extend(std::iter::repeat_n(b'1', MAX_INLINE + 1));
        assert_eq!(err(&line), "Protocol error: too big mbulk count string");
        let mut line = b"*1\r\n$".to_vec();
        line.extend(std::iter::repeat_n(b'1', MAX_INLINE + 1));
        assert_eq!(err(&line), "Protocol error: too big bulk count string");
    }

    #[test]
    fn limits_apply_per_client() {
        let small = ParseLimits {
            max_bulk: 4,
            unauthenticated: false,
        };
        assert_eq!(
            parse_request(b"*1\r\n$5\r\n", small)
                .unwrap_err()
                .to_string(),
            "Protocol error: invalid bulk length"
        );
        assert!(
            parse_request(b"*1\r\n$4\r\nPING\r\n", small)
                .unwrap()
                .is_some()
        );
        let unauth = ParseLimits {
            unauthenticated: true,
            ..ParseLimits::default()
        };
        assert_eq!(
            parse_request(b"*11\r\n", unauth).unwrap_err().to_string(),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            parse_request(b"*1\r\n$16385\r\n", unauth)
                .unwrap_err()
                .to_string(),
            "Protocol error: unauthenticated bulk length"
        );
        assert_eq!(parse_request(b"*10\r\n$16384\r\n", unauth), Ok(None));
        // A million arguments are fine for an authenticated client: only INT_MAX is refused.
        assert_eq!(whole(b"*2000000\r\n"), Ok(None));
    }

    #[test]
    fn a_claimed_length_is_not_allocated_before_it_arrives() {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$536870912\r\nabc"[..]);
        assert_eq!(parser.parse(&mut buf, ParseLimits::default()), Ok(None));
        let big = parser.big_arg().expect("a big argument");
        assert!(big.buffer().capacity() <= BIG_ARG_STEP);
        big.reserve();
        assert!(big.buffer().capacity() <= 2 * BIG_ARG_STEP);
    }

    #[test]
    fn lengths_are_read_as_redis_string2ll() {
        for text in [
            "0",
            "1",
            "-1",
            "12",
            "-0",
            "+1",
            "01",
            "-01",
            "",
            "-",
            "1x",
            " 1",
            "1 ",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_len(text.as_bytes()),
                crate::parse::parse_int(text.as_bytes()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn trickled_lines_are_searched_once() {
        // Byte by byte, a long count line is scanned incrementally (the parser remembers how
        // far it looked), and yields the same result as whole.
        let mut input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$".to_vec();
        input.extend_from_slice(format!("{}\r\n", 5000).as_bytes());
        input.extend(std::iter::repeat_n(b'v', 5000));
        input.extend_from_slice(b"\r\n");
        let got = feed(&input, 1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][2].len(), 5000);
    }
}

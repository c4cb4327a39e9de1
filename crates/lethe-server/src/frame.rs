//! RESP frames: the reply type commands build, the encoder that writes it in the connection's
//! protocol (RESP2 or RESP3). Requests are parsed in [`crate::request`].
//!
//! Replies are built once in RESP3 terms and lowered at encoding time, so commands never care
//! which protocol the client chose: maps become flat arrays, sets become arrays, booleans become
//! integers, doubles become bulk strings, and nulls take the RESP2 shape Redis uses for the reply
//! type (`$-1` for a missing string, `*-1` for a missing array).

use bytes::Bytes;

/// Largest bulk argument a request may carry by default (`proto-max-bulk-len`).
pub use crate::request::MAX_BULK;

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
    /// A RESP3 double spelled by the command (Redis's `addReplyHumanLongDouble`: GEOPOS's
    /// coordinates); a bulk string of the same text in RESP2.
    DoubleText(String),
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
            Frame::DoubleText(text) if resp3 => line(out, b',', text.as_bytes()),
            Frame::DoubleText(text) => bulk(out, text.as_bytes()),
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

    /// About how many bytes this frame takes encoded: what it weighs in an output buffer.
    pub fn approx_size(&self) -> usize {
        // A type byte, a length of a few digits and CRLFs.
        const HEADER: usize = 8;
        match self {
            Frame::Simple(s) | Frame::Error(s) => s.len() + HEADER,
            Frame::Bulk(b) | Frame::Verbatim(b) => b.len() + 2 * HEADER,
            Frame::DoubleText(t) => t.len() + 2 * HEADER,
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

/// Redis 7.0's spelling of a double (`addReplyDouble`, sorted set scores included): `inf`,
/// `-inf`, `nan`, or C's `%.17g`: 17 significant digits, trailing zeros dropped, in exponent
/// form (`1.0000000000000001e-05`) when the exponent is below -4 or at least 17.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust rounds exactly (round half to even on the exact binary value), as glibc does.
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let fixed = format!("{d:.*}", (16 - exp) as usize);
        trim(&fixed).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, p: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(p, &mut out);
        out
    }

    #[test]
    fn doubles_print_as_percent_17g() {
        for (d, want) in [
            (1.1, "1.1000000000000001"),
            (2.0, "2"),
            (-0.0, "-0"),
            (0.0001, "0.0001"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (-2.5e300, "-2.5000000000000001e+300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_double(d), want, "{d:e}");
        }
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
    fn approx_size_grows_with_the_payload() {
        let small = Frame::Push(vec![Frame::bulk("message"), Frame::bulk("x")]);
        let big = Frame::Push(vec![Frame::bulk("message"), Frame::bulk(vec![0u8; 1000])]);
        assert!(big.approx_size() >= 1000 + small.approx_size() - 1);
        let mut out = Vec::new();
        big.encode(Protocol::Resp3, &mut out);
        assert!(big.approx_size() >= out.len());
    }
}

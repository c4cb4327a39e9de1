//! A minimal RESP2/RESP3 client side for the suites that need what the `redis` crate's
//! synchronous connection does not give: reading server pushes (client-tracking invalidations,
//! pub/sub messages) as they arrive, and writing commands open-loop on one socket while
//! another thread reads the replies.
//!
//! Only what a client reads is parsed: every RESP3 type is understood so that an unexpected
//! reply never desynchronises the stream, but nothing is interpreted beyond
//! [`invalidated_keys`] and [`pubsub_message`]. The format is the one the Redis protocol
//! specification describes (type byte, CRLF-terminated header, length-prefixed blobs).

use std::io::{self, BufRead, Read};

/// One reply or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+` simple strings, and the line types without further structure (`,` doubles, `(` big
    /// numbers, `#` booleans) kept as their text.
    Line(String),
    /// `-` simple errors and `!` blob errors.
    Error(String),
    Int(i64),
    /// `$` and `=` blobs; `None` for RESP2's null bulk.
    Bulk(Option<Vec<u8>>),
    /// `*` arrays and `~` sets; `None` for RESP2's null array.
    Array(Option<Vec<Frame>>),
    /// `%` maps and `|` attributes, as their 2n elements.
    Map(Vec<Frame>),
    /// `>` pushes.
    Push(Vec<Frame>),
    /// `_`
    Null,
}

/// Elements allocated up front at most, whatever length a header claims.
const PREALLOC: usize = 1024;

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn line(r: &mut impl BufRead) -> io::Result<String> {
    let mut buf = Vec::new();
    if r.read_until(b'\n', &mut buf)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !buf.ends_with(b"\r\n") {
        return Err(bad("a RESP line does not end with CRLF"));
    }
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).map_err(|_| bad("a RESP line is not UTF-8"))
}

fn number(s: &str) -> io::Result<i64> {
    s.parse().map_err(|_| bad(format!("bad RESP length {s:?}")))
}

fn blob(r: &mut impl BufRead, len: i64) -> io::Result<Option<Vec<u8>>> {
    if len < 0 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| bad("blob too long"))?;
    let mut data = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64 + 2).read_to_end(&mut data)?;
    if data.len() != len + 2 || !data.ends_with(b"\r\n") {
        return Err(bad("truncated RESP blob"));
    }
    data.truncate(len);
    Ok(Some(data))
}

fn elements(r: &mut impl BufRead, n: usize) -> io::Result<Vec<Frame>> {
    let mut items = Vec::with_capacity(n.min(PREALLOC));
    for _ in 0..n {
        items.push(read_frame(r)?);
    }
    Ok(items)
}

/// Reads one frame. `UnexpectedEof` when the peer closed the connection.
pub fn read_frame(r: &mut impl BufRead) -> io::Result<Frame> {
    let head = line(r)?;
    let Some(kind) = head.bytes().next() else {
        return Err(bad("empty RESP line"));
    };
    let rest = &head[1..];
    Ok(match kind {
        b'+' | b',' | b'(' | b'#' => Frame::Line(rest.to_string()),
        b'-' => Frame::Error(rest.to_string()),
        b':' => Frame::Int(number(rest)?),
        b'_' => Frame::Null,
        b'$' | b'=' => Frame::Bulk(blob(r, number(rest)?)?),
        b'!' => {
            let text = blob(r, number(rest)?)?.unwrap_or_default();
            Frame::Error(String::from_utf8_lossy(&text).into_owned())
        }
        b'*' | b'~' | b'>' => {
            let n = number(rest)?;
            if n < 0 {
                Frame::Array(None)
            } else {
                let items = elements(r, n as usize)?;
                if kind == b'>' {
                    Frame::Push(items)
                } else {
                    Frame::Array(Some(items))
                }
            }
        }
        b'%' | b'|' => {
            let n = usize::try_from(number(rest)?).map_err(|_| bad("negative map length"))?;
            Frame::Map(elements(r, n.saturating_mul(2))?)
        }
        other => return Err(bad(format!("unknown RESP type byte {:?}", other as char))),
    })
}

/// Appends one command (an array of bulk strings) to `out`.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// What a client-tracking invalidation push says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// These keys changed or left.
    Keys(Vec<Vec<u8>>),
    /// Everything was flushed (the push carries a null instead of keys).
    All,
}

/// The keys a RESP3 `invalidate` push names; `None` for any other frame.
pub fn invalidated_keys(frame: &Frame) -> Option<Invalidation> {
    let Frame::Push(items) = frame else {
        return None;
    };
    match items.as_slice() {
        [Frame::Bulk(Some(kind)), keys] if kind == b"invalidate" => match keys {
            Frame::Array(Some(keys)) => Some(Invalidation::Keys(
                keys.iter()
                    .filter_map(|k| match k {
                        Frame::Bulk(Some(k)) => Some(k.clone()),
                        _ => None,
                    })
                    .collect(),
            )),
            Frame::Null | Frame::Array(None) | Frame::Bulk(None) => Some(Invalidation::All),
            _ => None,
        },
        _ => None,
    }
}

/// The payload of a pub/sub `message` (RESP2 array or RESP3 push) on any channel.
pub fn pubsub_message(frame: &Frame) -> Option<&[u8]> {
    let (Frame::Array(Some(items)) | Frame::Push(items)) = frame else {
        return None;
    };
    match items.as_slice() {
        [Frame::Bulk(Some(kind)), _, Frame::Bulk(Some(payload))] if kind == b"message" => {
            Some(payload)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Vec<Frame> {
        let mut r = io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut r) {
                Ok(f) => out.push(f),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn tracking_pushes_between_replies() {
        let wire = b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n*2\r\n$5\r\nbus:7\r\n$6\r\nbus:12\r\n\
                     :3\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n\
                     >2\r\n$10\r\ninvalidate\r\n*-1\r\n";
        let frames = parse_all(wire);
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0], Frame::Line("OK".into()));
        assert_eq!(
            invalidated_keys(&frames[1]),
            Some(Invalidation::Keys(vec![
                b"bus:7".to_vec(),
                b"bus:12".to_vec()
            ]))
        );
        assert_eq!(frames[2], Frame::Int(3));
        assert_eq!(invalidated_keys(&frames[2]), None);
        assert_eq!(invalidated_keys(&frames[3]), Some(Invalidation::All));
        assert_eq!(invalidated_keys(&frames[4]), None);
        assert_eq!(invalidated_keys(&frames[5]), Some(Invalidation::All));
    }

    #[test]
    fn pubsub_messages_in_both_protocols() {
        let wire = b"*3\r\n$9\r\nsubscribe\r\n$3\r\ninv\r\n:1\r\n\
                     *3\r\n$7\r\nmessage\r\n$3\r\ninv\r\n$7\r\nk1 k2 3\r\n\
                     >3\r\n$7\r\nmessage\r\n$3\r\ninv\r\n$0\r\n\r\n";
        let frames = parse_all(wire);
        assert_eq!(frames.len(), 3);
        assert_eq!(pubsub_message(&frames[0]), None);
        assert_eq!(pubsub_message(&frames[1]), Some(&b"k1 k2 3"[..]));
        assert_eq!(pubsub_message(&frames[2]), Some(&b""[..]));
    }

    #[test]
    fn blobs_may_hold_crlf_and_truncation_is_an_error() {
        let frames = parse_all(b"$4\r\na\r\nb\r\n=7\r\ntxt:a\r\n\r\n!3\r\nERR\r\n");
        assert_eq!(frames[0], Frame::Bulk(Some(b"a\r\nb".to_vec())));
        assert_eq!(frames[1], Frame::Bulk(Some(b"txt:a\r\n".to_vec())));
        assert_eq!(frames[2], Frame::Error("ERR".into()));
        let mut r = io::BufReader::new(&b"$10\r\nshort\r\n"[..]);
        assert!(read_frame(&mut r).is_err());
        let mut r = io::BufReader::new(&b"?x\r\n"[..]);
        assert_eq!(
            read_frame(&mut r).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn encoding_round_trips() {
        let mut out = Vec::new();
        encode(&mut out, &["LETHE.INVALIDATE", "KEY", "a b"]);
        assert_eq!(
            out,
            b"*3\r\n$16\r\nLETHE.INVALIDATE\r\n$3\r\nKEY\r\n$3\r\na b\r\n".to_vec()
        );
        let frames = parse_all(&out);
        assert_eq!(
            frames,
            vec![Frame::Array(Some(vec![
                Frame::Bulk(Some(b"LETHE.INVALIDATE".to_vec())),
                Frame::Bulk(Some(b"KEY".to_vec())),
                Frame::Bulk(Some(b"a b".to_vec())),
            ]))]
        );
    }
}

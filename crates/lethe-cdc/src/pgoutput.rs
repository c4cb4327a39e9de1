//! Decoding of the replication stream: the walsender's CopyData envelopes (XLogData, primary
//! keepalive), the standby status update we send back, and the `pgoutput` logical decoding
//! messages (protocol version 1) inside XLogData.
//!
//! The formats are those of PostgreSQL's "Streaming Replication Protocol" and "Logical
//! Replication Message Formats" documentation. Only text-format tuples are expected (this
//! crate never asks for `binary`), and streaming of in-progress transactions is never
//! requested, so every change arrives between a Begin and its Commit.

use crate::error::{Error, Result};
use crate::rules::Column;
use bytes::{BufMut, Bytes, BytesMut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A write-ahead log position.
pub type Lsn = u64;

/// Formats an LSN as PostgreSQL does (`16/B374D848`).
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parses PostgreSQL's `X/Y` LSN text.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some((hi << 32) | lo)
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// Now, in PostgreSQL's timestamp representation (microseconds since 2000-01-01).
pub(crate) fn pg_now() -> i64 {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    since_unix.as_micros() as i64 - PG_EPOCH_OFFSET_MICROS
}

/// A CopyData message from the walsender.
#[derive(Debug)]
pub(crate) enum ServerMessage {
    /// WAL data: a pgoutput message starting at `start`.
    XLogData { wal_end: Lsn, data: Bytes },
    /// A keepalive; `reply` asks for a status update at once.
    Keepalive { wal_end: Lsn, reply: bool },
}

/// A standby status update: everything up to `lsn` is written, flushed and applied.
pub(crate) fn status_update(lsn: Lsn, reply: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(34);
    buf.put_u8(b'r');
    buf.put_u64(lsn);
    buf.put_u64(lsn);
    buf.put_u64(lsn);
    buf.put_i64(pg_now());
    buf.put_u8(u8::from(reply));
    buf.freeze()
}

/// A cursor over one message's bytes, failing (rather than panicking) on truncation.
struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() - self.pos < n {
            return Err(Error::protocol(format!(
                "replication message truncated: needed {n} bytes at offset {}",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }

    fn cstr(&mut self) -> Result<String> {
        let rest = &self.buf[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::protocol("replication message: unterminated string"))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes> {
        self.take(n)?;
        Ok(self.buf.slice(self.pos - n..self.pos))
    }

    fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }
}

/// Decodes a CopyData payload from the walsender.
pub(crate) fn decode_server_message(data: Bytes) -> Result<ServerMessage> {
    let mut r = Reader::new(data);
    match r.u8()? {
        b'w' => {
            let _start = r.u64()?;
            let wal_end = r.u64()?;
            let _sent_at = r.i64()?;
            Ok(ServerMessage::XLogData {
                wal_end,
                data: r.rest(),
            })
        }
        b'k' => {
            let wal_end = r.u64()?;
            let _sent_at = r.i64()?;
            let reply = r.u8()? != 0;
            Ok(ServerMessage::Keepalive { wal_end, reply })
        }
        tag => Err(Error::protocol(format!(
            "unexpected replication message `{}`",
            tag as char
        ))),
    }
}

/// One column of a Relation message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RelationColumn {
    pub name: String,
    pub type_oid: u32,
}

/// A decoded pgoutput message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Logical {
    Begin {
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
        /// The transaction's id (32 bits: without its epoch).
        xid: u32,
    },
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time: i64,
    },
    Relation {
        id: u32,
        schema: String,
        name: String,
        columns: Vec<RelationColumn>,
    },
    Insert {
        relation: u32,
        new: Vec<Column>,
    },
    Update {
        relation: u32,
        old: Option<Vec<Column>>,
        new: Vec<Column>,
    },
    Delete {
        relation: u32,
        old: Vec<Column>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    Message {
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Bytes,
    },
    /// Origin and Type messages, which carry nothing invalidation needs.
    Other,
}

fn tuple(r: &mut Reader) -> Result<Vec<Column>> {
    let n = r.u16()? as usize;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let col = match r.u8()? {
            b'n' => Column::Null,
            b'u' => Column::Unknown,
            b't' => {
                let len = r.u32()? as usize;
                Column::Text(String::from_utf8_lossy(r.take(len)?).into_owned())
            }
            b'b' => {
                // Never requested; skip the value rather than misread the rest.
                let len = r.u32()? as usize;
                r.take(len)?;
                Column::Unknown
            }
            kind => {
                return Err(Error::protocol(format!(
                    "pgoutput: unknown tuple column kind `{}`",
                    kind as char
                )));
            }
        };
        cols.push(col);
    }
    Ok(cols)
}

/// Decodes one pgoutput message (the payload of an XLogData).
pub(crate) fn decode_logical(data: Bytes) -> Result<Logical> {
    let mut r = Reader::new(data);
    let msg = match r.u8()? {
        b'B' => {
            let final_lsn = r.u64()?;
            let commit_time = r.i64()?;
            let xid = r.u32()?;
            Logical::Begin {
                final_lsn,
                commit_time,
                xid,
            }
        }
        b'C' => {
            let _flags = r.u8()?;
            let commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            let commit_time = r.i64()?;
            Logical::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let _identity = r.u8()?;
            let n = r.u16()? as usize;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                let _flags = r.u8()?;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(RelationColumn { name, type_oid });
            }
            Logical::Relation {
                id,
                schema,
                name,
                columns,
            }
        }
        b'I' => {
            let relation = r.u32()?;
            expect(r.u8()?, b'N', "insert")?;
            Logical::Insert {
                relation,
                new: tuple(&mut r)?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut kind = r.u8()?;
            if kind == b'K' || kind == b'O' {
                old = Some(tuple(&mut r)?);
                kind = r.u8()?;
            }
            expect(kind, b'N', "update")?;
            Logical::Update {
                relation,
                old,
                new: tuple(&mut r)?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            let kind = r.u8()?;
            if kind != b'K' && kind != b'O' {
                return Err(Error::protocol(format!(
                    "pgoutput delete: expected an old row, got `{}`",
                    kind as char
                )));
            }
            Logical::Delete {
                relation,
                old: tuple(&mut r)?,
            }
        }
        b'T' => {
            let n = r.u32()? as usize;
            let _options = r.u8()?;
            let relations = (0..n).map(|_| r.u32()).collect::<Result<_>>()?;
            Logical::Truncate { relations }
        }
        b'M' => {
            let flags = r.u8()?;
            let lsn = r.u64()?;
            let prefix = r.cstr()?;
            let len = r.u32()? as usize;
            Logical::Message {
                transactional: flags & 1 != 0,
                lsn,
                prefix,
                content: r.bytes(len)?,
            }
        }
        b'O' | b'Y' => Logical::Other,
        tag => {
            return Err(Error::protocol(format!(
                "pgoutput: unknown message `{}`",
                tag as char
            )));
        }
    };
    Ok(msg)
}

fn expect(got: u8, want: u8, what: &str) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::protocol(format!(
            "pgoutput {what}: expected `{}`, got `{}`",
            want as char, got as char
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_round_trip_through_text() {
        for lsn in [0, 1, 0x16_B374_D848, u64::MAX] {
            assert_eq!(parse_lsn(&format_lsn(lsn)), Some(lsn));
        }
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nope"), None);
    }

    #[test]
    fn updates_with_and_without_old_rows_decode() {
        let mut b = BytesMut::new();
        b.put_u8(b'U');
        b.put_u32(42);
        b.put_u8(b'O');
        b.put_u16(2);
        b.put_u8(b't');
        b.put_u32(1);
        b.put_slice(b"5");
        b.put_u8(b'n');
        b.put_u8(b'N');
        b.put_u16(2);
        b.put_u8(b't');
        b.put_u32(1);
        b.put_slice(b"6");
        b.put_u8(b'u');
        let msg = decode_logical(b.freeze()).unwrap();
        assert_eq!(
            msg,
            Logical::Update {
                relation: 42,
                old: Some(vec![Column::Text("5".into()), Column::Null]),
                new: vec![Column::Text("6".into()), Column::Unknown],
            }
        );
        // Truncated input is an error, not a panic.
        assert!(decode_logical(Bytes::from_static(b"U\0\0")).is_err());
    }

    #[test]
    fn messages_decode_with_their_flags() {
        let mut b = BytesMut::new();
        b.put_u8(b'M');
        b.put_u8(1);
        b.put_u64(99);
        b.put_slice(b"lethe\0");
        b.put_u32(2);
        b.put_slice(b"{}");
        assert_eq!(
            decode_logical(b.freeze()).unwrap(),
            Logical::Message {
                transactional: true,
                lsn: 99,
                prefix: "lethe".into(),
                content: Bytes::from_static(b"{}"),
            }
        );
    }
}

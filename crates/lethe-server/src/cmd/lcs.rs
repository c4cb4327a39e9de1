//! LCS: the longest common subsequence of two strings, with Redis 7.0's options (LEN, IDX,
//! MINMATCHLEN, WITHMATCHLEN) and reply shapes.
//!
//! The algorithm is the textbook dynamic program over an (n+1) x (m+1) table of u32 lengths,
//! as in Redis, so it costs O(n*m) time and table memory. The table is bounded the way Redis
//! 7.0 bounds it: refused when it would take more than `proto-max-bulk-len` bytes (512 MiB by
//! default), with Redis's error text. With LEN alone only two rows are kept.

use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::parse::{Parse, parse_int};
use bytes::Bytes;

use super::command::{Doc, KeySpec, acl, f, ks};

super::command_table! {
    pub(super) LCS;
    "lcs" -3 Lcs {
        flags: f::READONLY,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 1, 1)],
        doc: Doc::new("string", "7.0.0", "O(N*M) where N and M are the lengths of s1 and s2, respectively", "Find longest common substring"),
    }
}

#[derive(Debug)]
pub struct Lcs(Bytes, Bytes, Vec<Bytes>);

impl Command for Lcs {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Lcs(
            args.next_bytes()?,
            args.next_bytes()?,
            std::iter::from_fn(|| args.try_next()).collect(),
        ))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // Redis reads both keys before it looks at the options.
        let (a, b) = cx.read([&self.0[..], &self.1[..]], |t| {
            let get = |k: &[u8]| match t.get(k) {
                None => Ok(Bytes::new()),
                Some(v) if v.is_string() => v.to_bytes(),
                Some(_) => Err(CommandError::err(
                    "The specified keys must contain string values",
                )),
            };
            Ok::<_, CommandError>((get(&self.0)?, get(&self.1)?))
        })??;
        let opts = Options::parse(&self.2)?;
        let cells = table_cells(&a, &b, cx.session.limits.proto_max_bulk_len())?;
        if opts.len && !opts.idx {
            // Refused past the bound like the full table, though two rows are enough here.
            return Ok(Frame::Integer(i64::from(lcs_len(&a, &b))));
        }
        let table = Table::build(&a, &b, cells)?;
        Ok(table.reply(&a, &b, &opts))
    }
}

#[derive(Debug, Default)]
struct Options {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

impl Options {
    fn parse(args: &[Bytes]) -> Result<Options, CommandError> {
        let mut o = Options::default();
        let mut i = 0;
        while i < args.len() {
            let opt = args[i].to_ascii_uppercase();
            match opt.as_slice() {
                b"IDX" => o.idx = true,
                b"LEN" => o.len = true,
                b"WITHMATCHLEN" => o.with_match_len = true,
                b"MINMATCHLEN" if i + 1 < args.len() => {
                    let n = parse_int(&args[i + 1]).ok_or_else(CommandError::not_integer)?;
                    o.min_match_len = n.max(0) as u64;
                    i += 1;
                }
                _ => return Err(CommandError::syntax()),
            }
            i += 1;
        }
        if o.idx && o.len {
            return Err(CommandError::err(
                "If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(o)
    }
}

/// The cells of the table for `a` and `b`, refused when they would take more than
/// `max_bytes` (Redis's bound and error text).
fn table_cells(a: &[u8], b: &[u8], max_bytes: u64) -> Result<usize, CommandError> {
    let size = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    if size.saturating_mul(4) > max_bytes {
        return Err(CommandError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    Ok(size as usize)
}

/// The LCS length alone, in two rows of memory.
fn lcs_len(a: &[u8], b: &[u8]) -> u32 {
    let mut prev = vec![0u32; b.len() + 1];
    let mut row = vec![0u32; b.len() + 1];
    for &x in a {
        for (j, &y) in b.iter().enumerate() {
            row[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(row[j])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The full table: `cells[i * (m + 1) + j]` is the LCS length of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    /// The table of `size` cells (see [`table_cells`]).
    fn build(a: &[u8], b: &[u8], size: usize) -> Result<Table, CommandError> {
        let width = b.len() + 1;
        let mut cells = Vec::new();
        cells.try_reserve_exact(size).map_err(|_| {
            CommandError::err("Insufficient memory, failed allocating transient memory for LCS")
        })?;
        cells.resize(size, 0);
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                let here = (i + 1) * width + j + 1;
                cells[here] = if x == y {
                    cells[i * width + j] + 1
                } else {
                    cells[i * width + j + 1].max(cells[here - 1])
                };
            }
        }
        Ok(Table { cells, width })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walks back from the end as Redis does (preferring to drop from `b` on ties), collecting
    /// the common string and the matching ranges, last first.
    fn reply(&self, a: &[u8], b: &[u8], o: &Options) -> Frame {
        let total = self.at(a.len(), b.len());
        let mut text = vec![0u8; total as usize];
        let mut left = total as usize;
        let mut matches = Vec::new();
        // The current run of matches: (a start, a end, b start, b end).
        let mut run: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        let mut emit = |run: (usize, usize, usize, usize)| {
            let len = (run.1 - run.0 + 1) as u64;
            if o.min_match_len == 0 || len >= o.min_match_len {
                let range = |s: usize, e: usize| {
                    Frame::Array(vec![Frame::Integer(s as i64), Frame::Integer(e as i64)])
                };
                let mut m = vec![range(run.0, run.1), range(run.2, run.3)];
                if o.with_match_len {
                    m.push(Frame::Integer(len as i64));
                }
                matches.push(Frame::Array(m));
            }
        };
        while i > 0 && j > 0 {
            if a[i - 1] == b[j - 1] {
                text[left - 1] = a[i - 1];
                left -= 1;
                let r = match run {
                    Some((_, ae, _, be)) => (i - 1, ae, j - 1, be),
                    None => (i - 1, i - 1, j - 1, j - 1),
                };
                i -= 1;
                j -= 1;
                if r.0 == 0 || r.2 == 0 {
                    emit(r);
                    run = None;
                } else {
                    run = Some(r);
                }
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                if let Some(r) = run.take() {
                    emit(r);
                }
            }
        }
        if !o.idx {
            return Frame::Bulk(text.into());
        }
        Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(i64::from(total))),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_row_length_agrees_with_the_table() {
        for (a, b) in [
            (&b"ohmytext"[..], &b"mynewtext"[..]),
            (b"", b"abc"),
            (b"abc", b"abc"),
            (b"abcbdab", b"bdcaba"),
        ] {
            let t = Table::build(a, b, table_cells(a, b, u64::MAX).unwrap()).unwrap();
            assert_eq!(lcs_len(a, b), t.at(a.len(), b.len()), "{a:?} {b:?}");
        }
    }

    #[test]
    fn tables_past_the_bound_are_refused() {
        assert!(table_cells(&[1; 100], &[1; 100], 100 * 100 * 4).is_err());
        assert_eq!(
            table_cells(&[1; 99], &[1; 99], 100 * 100 * 4),
            Ok(100 * 100)
        );
    }
}

//! Readers for the hit-ratio traces, decoding a compressed trace file into a flat `Vec<u64>` of
//! accessed keys.
//!
//! Two formats, both described in the traces directory's README:
//! - ARC (`*.lis.zst`, zstd): each line is `start length _ _` and stands for `length` accesses
//!   to `start, start+1, ..., start+length-1`, in that order.
//! - LIRS (`*.trace.gz`, gzip): one integer key per line; a line holding only `*` is a marker
//!   and is skipped.
//!
//! A trace is decoded once and then replayed many times (every system, every size), so decoding
//! to a vector up front is both simpler and cheaper than streaming it per replay.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// How a trace file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Arc,
    Lirs,
}

/// Decode the trace at `path`, stopping after `limit` accesses if given.
pub fn read(path: &Path, format: Format, limit: Option<usize>) -> io::Result<Vec<u64>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let limit = limit.unwrap_or(usize::MAX);
    let result = match format {
        Format::Arc => parse_arc(
            BufReader::new(zstd::stream::read::Decoder::new(file)?),
            limit,
        ),
        Format::Lirs => parse_lirs(
            BufReader::new(flate2::read::MultiGzDecoder::new(file)),
            limit,
        ),
    };
    result.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn invalid(line_no: usize, line: &[u8], what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "line {line_no}: {what}: {:?}",
            String::from_utf8_lossy(line).trim_end()
        ),
    )
}

fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

// Lines are read as bytes into one reused buffer: P6 expands to millions of lines, and a
// String per line would dominate decode time.
fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(usize, &[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64);
    let mut line_no = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if !f(line_no, &buf)? {
            return Ok(());
        }
    }
}

fn parse_arc(input: impl BufRead, limit: usize) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for_each_line(input, |line_no, line| {
        let mut it = fields(line);
        let Some(start) = it.next() else {
            return Ok(true); // blank line
        };
        let start = parse_u64(start).ok_or_else(|| invalid(line_no, line, "bad start"))?;
        let len = it
            .next()
            .and_then(parse_u64)
            .ok_or_else(|| invalid(line_no, line, "bad length"))?;
        let take = len.min((limit - out.len()) as u64);
        out.extend(start..start + take);
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

fn parse_lirs(input: impl BufRead, limit: usize) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for_each_line(input, |line_no, line| {
        let mut it = fields(line);
        match it.next() {
            None | Some(b"*") => {}
            Some(key) => {
                out.push(parse_u64(key).ok_or_else(|| invalid(line_no, line, "bad key"))?);
            }
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// Only used by tests, to feed in-memory text through the same parsers.
#[cfg(test)]
fn parse(format: Format, text: &str, limit: Option<usize>) -> io::Result<Vec<u64>> {
    let input = BufReader::new(text.as_bytes());
    let limit = limit.unwrap_or(usize::MAX);
    match format {
        Format::Arc => parse_arc(input, limit),
        Format::Lirs => parse_lirs(input, limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_lines_expand_to_runs() {
        let keys = parse(Format::Arc, "5 3 0 0\n1 1 0 0\n\n9 2 0 0", None).unwrap();
        assert_eq!(keys, vec![5, 6, 7, 1, 9, 10]);
    }

    #[test]
    fn arc_limit_cuts_inside_a_run() {
        let keys = parse(Format::Arc, "5 3 0 0\n1 1 0 0\n", Some(2)).unwrap();
        assert_eq!(keys, vec![5, 6]);
    }

    #[test]
    fn lirs_skips_markers() {
        let keys = parse(Format::Lirs, "3\n*\n4\n  *  \n3", None).unwrap();
        assert_eq!(keys, vec![3, 4, 3]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(Format::Lirs, "3\nx\n", None).is_err());
        assert!(parse(Format::Arc, "3\n", None).is_err());
    }
}

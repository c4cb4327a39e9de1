//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted
//! numerically or as strings, by themselves or by other keys (`BY pattern`), with values of
//! other keys returned in their place (`GET pattern`) and the result optionally stored as a
//! list (`STORE`).
//!
//! Patterns name keys derived from the elements, so the keys read are only known after the
//! sorted key is. SORT reads the key once to learn them, then locks the key, every key the
//! patterns name and the STORE destination together and runs under those locks; if the
//! elements changed between the two steps so that another key is needed, it starts again. The
//! whole result is thus one consistent state to every other client. Inside MULTI/EXEC a SORT
//! with key-reading patterns is a whole-keyspace command (`lockable_keys` in `cmd/mod.rs`):
//! EXEC holds the gate exclusively and SORT locks as it does outside.

use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{List, Txn, Value};
use crate::parse::Parse;
use crate::state::ServerState;
use bytes::Bytes;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

/// SORT (`RO` false) and SORT_RO.
#[derive(Debug)]
pub struct Sort<const RO: bool> {
    key: Bytes,
    by: Option<Bytes>,
    /// `BY` a pattern without `*`: the elements keep their order.
    dontsort: bool,
    start: i64,
    count: i64,
    gets: Vec<Bytes>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

impl<const RO: bool> Command for Sort<RO> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut s = Sort {
            key: args.next_bytes()?,
            by: None,
            dontsort: false,
            start: 0,
            count: -1,
            gets: Vec::new(),
            desc: false,
            alpha: false,
            store: None,
        };
        while let Some(opt) = args.try_next() {
            let left = args.remaining();
            match String::from_utf8_lossy(&opt).to_ascii_uppercase().as_str() {
                "ASC" => s.desc = false,
                "DESC" => s.desc = true,
                "ALPHA" => s.alpha = true,
                "LIMIT" if left >= 2 => {
                    s.start = args.next_int()?;
                    s.count = args.next_int()?;
                }
                "STORE" if left >= 1 && !RO => s.store = Some(args.next_bytes()?),
                "BY" if left >= 1 => {
                    let by = args.next_bytes()?;
                    s.dontsort = !c_str(&by).contains(&b'*');
                    s.by = Some(by);
                }
                "GET" if left >= 1 => s.gets.push(args.next_bytes()?),
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(s)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let key = self.key.clone();
        let state = cx.state;
        if !self.reads_other_keys() {
            let names = std::iter::once(&key[..]).chain(self.store.as_deref());
            return if self.store.is_some() {
                cx.write(names, |t| self.run(state, t, None))?
            } else {
                cx.read(names, |t| match self.sorted(t, None)? {
                    Ok(sorted) => sorted.reply(),
                    Err(Retry) => Err(internal()),
                })?
            };
        }
        loop {
            // First look: which keys the patterns name for the elements there now.
            let needed = cx.read([&key[..]], |t| self.referenced(t))??;
            let mut names: Vec<&[u8]> = needed.iter().map(|k| &k[..]).collect();
            names.push(&key);
            if let Some(dest) = &self.store {
                names.push(dest);
            }
            let allowed: HashSet<&[u8]> = names.iter().copied().collect();
            // Then everything under the locks of all of them; a key outside them means the
            // elements changed meanwhile: look again.
            let outcome = if self.store.is_some() {
                cx.write(names.iter().copied(), |t| {
                    self.run(state, t, Some(&allowed))
                })?
            } else {
                cx.read(names.iter().copied(), |t| {
                    match self.sorted(t, Some(&allowed))? {
                        Ok(sorted) => sorted.reply(),
                        Err(Retry) => Err(retry_marker()),
                    }
                })?
            };
            match outcome {
                Err(e) if is_retry(&e) => continue,
                other => return other,
            }
        }
    }
}

/// A key a pattern named was not locked: the elements changed since the first look.
struct Retry;

fn internal() -> CommandError {
    CommandError::err("internal error: SORT read a key outside its locks")
}

const RETRY: &str = "\u{0}retry";

fn retry_marker() -> CommandError {
    CommandError::err(RETRY)
}

fn is_retry(e: &CommandError) -> bool {
    e.text().ends_with(RETRY)
}

/// A pattern up to its first NUL byte: what Redis's C string functions see of it.
fn c_str(p: &[u8]) -> &[u8] {
    p.split(|&b| b == 0).next().unwrap_or(p)
}

/// What a pattern names for one element.
enum Target<'p> {
    /// `#`: the element itself.
    Itself,
    /// A key (with the `*` replaced by the element), and a hash field after `->`.
    Key(Vec<u8>, Option<&'p [u8]>),
    /// No `*`: nothing.
    Nothing,
}

/// Resolves `pattern` for `element` as Redis does: `#` alone is the element; otherwise the
/// first `*` is replaced by it, and `->field` after the `*` (with a non-empty field) reads a
/// hash field instead of a string.
fn target<'p>(pattern: &'p [u8], element: &[u8]) -> Target<'p> {
    if pattern == b"#" || (pattern.len() > 1 && pattern[0] == b'#' && pattern[1] == 0) {
        return Target::Itself;
    }
    let Some(star) = c_str(pattern).iter().position(|&b| b == b'*') else {
        return Target::Nothing;
    };
    let after = &pattern[star + 1..];
    let arrow = c_str(after)
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&a| a + 2 < after.len() && after[a + 2] != 0);
    let (postfix, field) = match arrow {
        Some(a) => (&after[..a], Some(&after[a + 2..])),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(star + element.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(postfix);
    Target::Key(key, field)
}

/// A value a pattern found: a string's bytes, or an integer.
enum Found<'v> {
    Bytes(Cow<'v, [u8]>),
    Int(i64),
}

impl Found<'_> {
    fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Found::Bytes(b) => Cow::Borrowed(b),
            Found::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
        }
    }
}

/// The value `pattern` names for `element`: `None` for a missing key or field, or a key of
/// another type than the pattern reads (a string, or a hash for `->field`).
fn lookup<'v>(
    t: &'v Txn<'_, '_>,
    allowed: Option<&HashSet<&[u8]>>,
    pattern: &[u8],
    element: &'v [u8],
) -> Result<Option<Found<'v>>, Retry> {
    let (key, field) = match target(pattern, element) {
        Target::Itself => return Ok(Some(Found::Bytes(Cow::Borrowed(element)))),
        Target::Nothing => return Ok(None),
        Target::Key(key, field) => (key, field),
    };
    if allowed.is_some_and(|a| !a.contains(&key[..])) {
        return Err(Retry);
    }
    Ok(match (t.get(&key), field) {
        (Some(Value::Int(n)), None) => Some(Found::Int(*n)),
        (Some(Value::Str(s)), None) => Some(Found::Bytes(Cow::Borrowed(s.as_bytes()))),
        (Some(Value::Hash(h)), Some(f)) => h.get(f).map(|v| Found::Bytes(Cow::Borrowed(v))),
        _ => None,
    })
}

/// Redis's numeric reading of a sort key: C's `strtod` over the whole string (leading
/// whitespace, hex and `inf` allowed; the empty string is 0), refusing NaN and out-of-range
/// values.
fn score(found: &Found<'_>) -> Option<f64> {
    let bytes = match found {
        Found::Int(n) => return Some(*n as f64),
        Found::Bytes(b) => c_str(b),
    };
    if bytes.is_empty() {
        return Some(0.0);
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let value = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        hex_float(hex)?
    } else {
        if !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        let nonzero = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
        // strtod's ERANGE: overflow to infinity, or underflow below the normal range.
        if v.is_infinite() || (nonzero && v.abs() < f64::MIN_POSITIVE) {
            return None;
        }
        v
    };
    Some(if negative { -value } else { value })
}

/// A hexadecimal float after `0x`: digits, an optional fraction, an optional `p` exponent.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    v.is_finite().then_some(v)
}

/// The result of a sort: the elements in the output range, and what each GET found.
struct Sorted {
    rows: Vec<Vec<Option<Vec<u8>>>>,
    failed: bool,
}

impl Sorted {
    fn reply(self) -> Reply {
        if self.failed {
            return Err(conversion_error());
        }
        Ok(Frame::Array(
            self.rows
                .into_iter()
                .flatten()
                .map(|v| v.map_or(Frame::Null, |b| Frame::Bulk(b.into())))
                .collect(),
        ))
    }
}

fn conversion_error() -> CommandError {
    CommandError::err("One or more scores can't be converted into double")
}

impl<const RO: bool> Sort<RO> {
    /// Whether BY or GET patterns read keys (a `*` in them; `#` and constant patterns do not).
    fn reads_other_keys(&self) -> bool {
        let reads = |p: &Bytes| matches!(target(p, b""), Target::Key(..));
        (!self.dontsort && self.by.as_ref().is_some_and(reads)) || self.gets.iter().any(reads)
    }

    /// The keys the patterns name for the elements of the sorted key now.
    fn referenced(&self, t: &Txn<'_, '_>) -> Result<Vec<Vec<u8>>, CommandError> {
        let elements = elements(t, &self.key)?.map_or_else(Vec::new, |(e, _)| e);
        let by = self.by.as_ref().filter(|_| !self.dontsort);
        let mut keys = HashSet::new();
        for p in by.into_iter().chain(&self.gets) {
            for e in &elements {
                if let Target::Key(k, _) = target(p, e) {
                    keys.insert(k);
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// Sorts under the held locks; `allowed`, when the patterns read keys, is what is locked.
    fn sorted(
        &self,
        t: &Txn<'_, '_>,
        allowed: Option<&HashSet<&[u8]>>,
    ) -> Result<Result<Sorted, Retry>, CommandError> {
        let (elements, is_set) = elements(t, &self.key)?.unwrap_or_default();
        let (mut dontsort, mut alpha, mut by) = (self.dontsort, self.alpha, self.by.as_deref());
        // A set stored unsorted would depend on its internal order: sorted as strings instead.
        if dontsort && is_set && self.store.is_some() {
            (dontsort, alpha, by) = (false, true, None);
        }
        let n = elements.len() as i64;
        let mut start = self.start.clamp(0, n);
        let count = self.count.clamp(-1, n);
        let mut end = if count < 0 { n - 1 } else { start + count - 1 };
        if start >= n {
            start = n - 1;
            end = n - 2;
        }
        end = end.min(n - 1);
        let mut order: Vec<usize> = (0..elements.len()).collect();
        if !dontsort {
            let mut failed = false;
            let mut keys: Vec<(f64, Option<Vec<u8>>)> = Vec::with_capacity(elements.len());
            for e in &elements {
                let found = match by {
                    Some(p) => match lookup(t, allowed, p, e) {
                        Ok(f) => f,
                        Err(Retry) => return Ok(Err(Retry)),
                    },
                    None => Some(Found::Bytes(Cow::Borrowed(e))),
                };
                keys.push(match (alpha, found) {
                    (true, f) => (0.0, f.filter(|_| by.is_some()).map(|f| f.bytes().to_vec())),
                    (false, None) => (0.0, None),
                    (false, Some(f)) => (
                        score(&f).unwrap_or_else(|| {
                            failed = true;
                            0.0
                        }),
                        None,
                    ),
                });
            }
            if failed {
                return Ok(Ok(Sorted {
                    rows: Vec::new(),
                    failed: true,
                }));
            }
            order.sort_by(|&a, &b| {
                let cmp = if !alpha {
                    keys[a]
                        .0
                        .partial_cmp(&keys[b].0)
                        .unwrap_or(Ordering::Equal)
                        .then_with(|| elements[a].cmp(&elements[b]))
                } else if by.is_some() {
                    // A missing sort key sorts first.
                    keys[a].1.cmp(&keys[b].1)
                } else {
                    elements[a].cmp(&elements[b])
                };
                if self.desc { cmp.reverse() } else { cmp }
            });
        } else if self.desc && !is_set {
            // Unsorted lists keep their order, read from the tail for DESC.
            order.reverse();
        }
        let range = if end >= start {
            order[start as usize..=end as usize].to_vec()
        } else {
            Vec::new()
        };
        let mut rows = Vec::with_capacity(range.len());
        for i in range {
            let e = &elements[i];
            if self.gets.is_empty() {
                rows.push(vec![Some(e.clone())]);
                continue;
            }
            let mut row = Vec::with_capacity(self.gets.len());
            for p in &self.gets {
                match lookup(t, allowed, p, e) {
                    Ok(f) => row.push(f.map(|f| f.bytes().to_vec())),
                    Err(Retry) => return Ok(Err(Retry)),
                }
            }
            rows.push(row);
        }
        Ok(Ok(Sorted {
            rows,
            failed: false,
        }))
    }

    /// SORT ... STORE (or a SORT without patterns, which also runs here when it stores).
    fn run(
        &self,
        state: &ServerState,
        t: &mut Txn<'_, '_>,
        allowed: Option<&HashSet<&[u8]>>,
    ) -> Reply {
        let sorted = match self.sorted(t, allowed)? {
            Ok(s) => s,
            Err(Retry) => return Err(retry_marker()),
        };
        let Some(dest) = &self.store else {
            return sorted.reply();
        };
        if sorted.failed {
            return Err(conversion_error());
        }
        let mut list = List::new();
        for v in sorted.rows.into_iter().flatten() {
            list.push_back(v.as_deref().unwrap_or(b""));
        }
        let len = list.len();
        let value = Value::List(Box::new(list));
        if len > 0 {
            state.check_fits(&t.key(dest), &value)?;
        }
        // The destination is replaced whatever it held (and loses its TTL), or removed when
        // the result is empty.
        t.delete(dest);
        if len > 0 {
            t.insert(dest, value, &lethe::InsertOptions::new())
                .map_err(crate::state::refused)?;
        }
        Ok(Frame::Integer(len as i64))
    }
}

/// The elements of the list or set at `key` (strings; a set's in its own order) and whether it
/// is a set; `None` for a missing key, WRONGTYPE for other types.
#[allow(clippy::type_complexity)]
fn elements(t: &Txn<'_, '_>, key: &[u8]) -> Result<Option<(Vec<Vec<u8>>, bool)>, CommandError> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some((l.iter().map(<[u8]>::to_vec).collect(), false))),
        Some(Value::Set(s)) => Ok(Some((s.iter().map(|m| m.into_owned()).collect(), true))),
        // A sorted set's members in score order, which `BY nosort` keeps (as a list's).
        Some(Value::Zset(z)) => Ok(Some((z.iter().map(|(m, _)| m.to_vec()).collect(), false))),
        Some(_) => Err(CommandError::wrong_type()),
    }
}

/// Where SORT's STORE destination is among `args` (the name at 0), as COMMAND GETKEYS reports
/// it: Redis scans the options skipping LIMIT's two arguments and BY's and GET's one, and the
/// last STORE wins.
pub(super) fn store_position(args: &[Bytes]) -> Option<usize> {
    let mut found = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            found = Some(i + 1);
        }
        i += 1;
    }
    found
}

/// The arguments of SORT inside MULTI: the keys EXEC must lock (the sorted key and the STORE
/// destination), or `None` when BY or GET patterns read other keys (a whole-keyspace command).
pub(super) fn lockable(args: &[Bytes]) -> Option<(Vec<Bytes>, bool)> {
    let ro = args[0].eq_ignore_ascii_case(b"sort_ro");
    let mut parse = Parse::new(args[1..].to_vec());
    let (keys, store) = if ro {
        let s = Sort::<true>::parse_frames(&mut parse).ok()?;
        (s.reads_other_keys(), s.store)
    } else {
        let s = Sort::<false>::parse_frames(&mut parse).ok()?;
        (s.reads_other_keys(), s.store)
    };
    if keys {
        return None;
    }
    let mut names = vec![args.get(1)?.clone()];
    let writes = store.is_some();
    names.extend(store);
    Some((names, writes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str, e: &str) -> Option<(String, Option<String>)> {
        match target(p.as_bytes(), e.as_bytes()) {
            Target::Key(k, f) => Some((
                String::from_utf8(k).unwrap(),
                f.map(|f| String::from_utf8(f.to_vec()).unwrap()),
            )),
            Target::Itself => Some(("#".into(), None)),
            Target::Nothing => None,
        }
    }

    #[test]
    fn patterns_resolve_like_redis() {
        assert_eq!(key("w_*", "1"), Some(("w_1".into(), None)));
        assert_eq!(key("#", "x"), Some(("#".into(), None)));
        assert_eq!(key("nostar", "x"), None);
        assert_eq!(key("h_*->f", "1"), Some(("h_1".into(), Some("f".into()))));
        // An arrow with nothing after it is part of the key name.
        assert_eq!(key("h_*->", "1"), Some(("h_1->".into(), None)));
        // An arrow before the star is part of the key name.
        assert_eq!(key("a->*", "1"), Some(("a->1".into(), None)));
        assert_eq!(
            key("*_x->f->g", "1"),
            Some(("1_x".into(), Some("f->g".into())))
        );
    }

    #[test]
    fn scores_read_like_strtod() {
        let s = |t: &str| score(&Found::Bytes(Cow::Borrowed(t.as_bytes())));
        assert_eq!(s(""), Some(0.0));
        assert_eq!(s(" 1.5"), Some(1.5));
        assert_eq!(s("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(s("0x10"), Some(16.0));
        assert_eq!(s("1e3"), Some(1000.0));
        for bad in ["1 ", "abc", "nan", "1e400", "1e-400", " ", "1x"] {
            assert_eq!(s(bad), None, "{bad:?}");
        }
    }
}

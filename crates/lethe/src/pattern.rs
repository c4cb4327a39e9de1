//! Key patterns with Redis `KEYS` syntax, and the literal prefix that narrows a search.
//!
//! Syntax (as Redis documents for `KEYS`): `*` any run of bytes, `?` any one byte, `[abc]` one
//! of the listed bytes, `[^abc]` (or `[!abc]`) any other byte, `[a-z]` a range, and `\` escapes
//! the next byte. Matching works on bytes. The matcher backtracks only to the last `*`, so a
//! match costs O(pattern x key) in the worst case and O(pattern + key) for patterns without
//! `*`.
//!
//! Cost of an invalidation by glob: with the key index ([`crate::CacheBuilder::index_keys`]),
//! only keys starting with the pattern's literal prefix (the bytes before its first
//! metacharacter) are visited, so `user:42:*` costs as much as the keys under `user:42:`;
//! a pattern starting with a metacharacter, or a cache without the index, scans every entry.

/// A parsed glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<[u8]>,
    prefix: Box<[u8]>,
}

impl Glob {
    /// Parses a Redis-style glob. Every byte string is a valid pattern (an unclosed `[` matches
    /// up to the end of the pattern, as in Redis).
    pub fn new(pattern: impl AsRef<[u8]>) -> Self {
        let pattern: Box<[u8]> = pattern.as_ref().into();
        let prefix = literal_prefix(&pattern).into();
        Glob { pattern, prefix }
    }

    /// The glob matching every key that starts with `prefix` (metacharacters in it are
    /// escaped).
    pub fn prefix(prefix: impl AsRef<[u8]>) -> Self {
        let prefix = prefix.as_ref();
        let mut pattern = Vec::with_capacity(prefix.len() + 1);
        for &b in prefix {
            if matches!(b, b'*' | b'?' | b'[' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        Glob {
            pattern: pattern.into(),
            prefix: prefix.into(),
        }
    }

    /// The bytes every matching key starts with.
    pub fn literal_prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Whether the pattern is its literal prefix followed by a single trailing `*` (so a prefix
    /// search alone answers it).
    pub fn is_prefix(&self) -> bool {
        self.pattern.last() == Some(&b'*') && literal_len(&self.pattern) == self.pattern.len() - 1
    }

    /// Whether `key` matches.
    pub fn matches(&self, key: &[u8]) -> bool {
        glob_match(&self.pattern, key)
    }
}

/// Length in pattern bytes of the literal prefix (escapes count two).
fn literal_len(p: &[u8]) -> usize {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < p.len() => i += 2,
            _ => i += 1,
        }
    }
    i
}

fn literal_prefix(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < p.len() => {
                out.push(p[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Matches one byte against the class starting after `[` at `p[i..]`; returns whether it matched
/// and the index after the closing `]`.
/// A `[...]` class at `p[i..]` (just after the `[`) against `c`: whether it matches, and where
/// the pattern goes on. Exactly Redis's `stringmatchlen`: only `^` negates, a `]` right after
/// `[` (or `[^`) closes an empty class, `\\` escapes, `x-y` is a range in either order (even
/// `x-]`), and an unterminated class ends the pattern.
fn match_class(p: &[u8], mut i: usize, c: u8) -> (bool, usize) {
    let negate = i < p.len() && p[i] == b'^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        if i >= p.len() {
            break;
        }
        if p[i] == b'\\' && i + 1 < p.len() {
            matched |= p[i + 1] == c;
            i += 2;
        } else if p[i] == b']' {
            i += 1;
            break;
        } else if i + 2 < p.len() && p[i + 1] == b'-' {
            let (lo, hi) = if p[i] <= p[i + 2] {
                (p[i], p[i + 2])
            } else {
                (p[i + 2], p[i])
            };
            matched |= (lo..=hi).contains(&c);
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    (matched != negate, i)
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    // Collapse runs of stars; remember where to resume on a mismatch.
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, si));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    let (ok, next) = match_class(p, pi + 1, s[si]);
                    if ok {
                        pi = next;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == s[si] {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[si] {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).matches(s.as_bytes())
    }

    #[test]
    fn redis_keys_syntax() {
        assert!(m("user:*:session", "user:42:session"));
        assert!(m("user:*:session", "user::session"));
        assert!(!m("user:*:session", "user:42:sessions"));
        assert!(m("h?llo", "hello") && m("h?llo", "hallo") && !m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hello") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
        // Only `^` negates, as in Redis; `]` right after `[^` closes an empty class.
        assert!(!m("h[!e]llo", "hallo") && m("h[!e]llo", "h!llo"));
        assert!(m("abc[^]e", "abcxe") && !m("abc[]e", "abcxe"));
        assert!(m("h[a-b]llo", "hbllo") && !m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        assert!(m("*", "") && m("*", "anything"));
        assert!(m("**a**", "bab"));
        assert!(m("*a*b", "xxaxxb") && !m("*a*b", "xxaxxbx"));
        assert!(!m("", "a") && m("", ""));
        // An empty class matches nothing (Redis), so `[]]` matches no key.
        assert!(!m("[]]", "]") && !m("[]]", "]]"));
    }

    #[test]
    fn literal_prefix_stops_at_the_first_metacharacter() {
        assert_eq!(Glob::new("user:*:x").literal_prefix(), b"user:");
        assert_eq!(Glob::new("a\\*b*").literal_prefix(), b"a*b");
        assert_eq!(Glob::new("*x").literal_prefix(), b"");
        assert!(Glob::new("user:42:*").is_prefix());
        assert!(!Glob::new("user:*:x").is_prefix());
        let p = Glob::prefix("a*[b");
        assert!(p.is_prefix());
        assert_eq!(p.literal_prefix(), b"a*[b");
        assert!(p.matches(b"a*[bcd") && !p.matches(b"axbcd"));
    }
}

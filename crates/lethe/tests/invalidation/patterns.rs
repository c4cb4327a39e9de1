//! Invalidation tests: patterns.

use super::common::*;
use lethe::{Cache, InsertOptions, RemovalCause};

/// Both ways of finding keys: the ordered index and the scan.
fn pattern_caches() -> Vec<(&'static str, C, Log)> {
    let (plain, _, log1) = setup(|b| b);
    let (indexed, _, log2) = setup(|b| b.index_keys());
    vec![("scan", plain, log1), ("index", indexed, log2)]
}

const PATTERN_KEYS: &[&str] = &[
    "user:1",
    "user:10",
    "user:1:x",
    "user:1:session",
    "user:42:session",
    "user:42:sessions",
    "user::session",
    "user:42:profile",
    "user:2",
    "users",
    "admin:user:1",
    "session",
    "k1",
    "k2",
    "k10",
    "item:a",
    "item:b",
    "item:c",
    "item:d",
    "item:ab",
    "a*b",
    "ab",
    "",
];

fn fill_patterns(c: &C) {
    for k in PATTERN_KEYS {
        c.insert(s(k), format!("value of {k}"));
    }
}

#[test]
fn prefix_invalidation_with_and_without_the_key_index() {
    for (name, c, log) in pattern_caches() {
        fill_patterns(&c);
        let n = c.invalidate_prefix("user:1");
        let gone = strs(&["user:1", "user:10", "user:1:x", "user:1:session"]);
        assert_eq!(n, gone.len(), "{name}");
        let heard = causes(&log);
        assert_eq!(sorted(heard.keys().cloned().collect()), gone, "{name}");
        assert!(
            heard.values().all(|c| *c == RemovalCause::Pattern),
            "{name}"
        );
        for k in PATTERN_KEYS {
            assert_eq!(c.get(*k).is_some(), !gone.contains(&s(k)), "{name}: {k:?}");
        }
        // Metacharacters in a prefix are literal.
        assert_eq!(c.invalidate_prefix("a*"), 1, "{name}");
        assert_eq!(c.get("a*b"), None);
        assert!(c.get("ab").is_some(), "{name}");
        // A prefix matching nothing; the empty prefix matches everything.
        assert_eq!(c.invalidate_prefix("zzz"), 0, "{name}");
        let left = c.len();
        assert_eq!(c.invalidate_prefix(""), left, "{name}");
        assert!(c.is_empty(), "{name}");
        assert_eq!(
            c.stats().removals.get(RemovalCause::Pattern) as usize,
            gone.len() + 1 + left,
            "{name}"
        );
    }
}

#[test]
fn glob_invalidation_with_and_without_the_key_index() {
    let cases: &[(&str, &[&str])] = &[
        (
            "user:*:session",
            &["user:1:session", "user:42:session", "user::session"],
        ),
        ("k?", &["k1", "k2"]),
        ("k??", &["k10"]),
        ("item:[abc]", &["item:a", "item:b", "item:c"]),
        ("item:[^abc]", &["item:d"]),
        ("item:[a-b]*", &["item:a", "item:b", "item:ab"]),
        (
            "*session",
            &[
                "user:1:session",
                "user:42:session",
                "user::session",
                "session",
            ],
        ),
        ("user:?", &["user:1", "user:2"]),
        ("a\\*b", &["a*b"]),
        ("nothing*", &[]),
        ("*:1", &["user:1", "admin:user:1"]),
    ];
    for (pattern, expected) in cases {
        let mut results = Vec::new();
        for (name, c, log) in pattern_caches() {
            fill_patterns(&c);
            assert_eq!(
                sorted(c.keys_matching(pattern)),
                strs(expected),
                "{name}: keys_matching({pattern})"
            );
            let n = c.invalidate_glob(pattern);
            assert_eq!(n, expected.len(), "{name}: {pattern}");
            let heard = causes(&log);
            assert_eq!(sorted(heard.keys().cloned().collect()), strs(expected));
            assert!(heard.values().all(|c| *c == RemovalCause::Pattern));
            let left = sorted(c.iter().map(|(k, _)| k).collect());
            assert_eq!(left.len(), PATTERN_KEYS.len() - expected.len());
            assert!(c.keys_matching(pattern).is_empty(), "{name}: {pattern}");
            results.push(left);
        }
        assert_eq!(results[0], results[1], "{pattern}: scan and index disagree");
    }
}

#[test]
fn keys_matching_and_keys_with_prefix_skip_invalid_entries() {
    for (name, c, _) in pattern_caches() {
        put(&c, "user:1", "v", &tags(&["gone"]));
        put(&c, "user:10", "v", &InsertOptions::new());
        put(&c, "user:1:x", "v", &InsertOptions::new());
        put(&c, "user:2", "v", &InsertOptions::new());
        put(&c, "other", "v", &InsertOptions::new());
        assert_eq!(
            sorted(c.keys_with_prefix("user:1")),
            strs(&["user:1", "user:10", "user:1:x"]),
            "{name}"
        );
        assert_eq!(
            sorted(c.keys_matching("user:?")),
            strs(&["user:1", "user:2"]),
            "{name}"
        );
        c.invalidate_tag("gone");
        c.remove("user:2");
        assert_eq!(
            sorted(c.keys_with_prefix("user:1")),
            strs(&["user:10", "user:1:x"]),
            "{name}"
        );
        assert!(c.keys_matching("user:?").is_empty(), "{name}");
        assert_eq!(sorted(c.keys_matching("*")).len(), 3, "{name}");
        // The invalidated entry is not counted as removed by a pattern.
        assert_eq!(c.invalidate_prefix("user:1"), 2, "{name}");
    }
}

/// A prefix, glob or floor invalidation counts (and reports to subscribers) every matching
/// entry it removed, "before any dependency cascade": the count must not depend on whether a
/// match was first reached through the cascade of another match in an earlier shard.
#[test]
fn pattern_invalidation_counts_every_match_whatever_the_shard_order() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::BuildHasherDefault;
    type H = BuildHasherDefault<DefaultHasher>;
    for index in [false, true] {
        for how in ["prefix", "glob", "floor"] {
            let mut b = Cache::<String, String>::builder()
                .hasher(H::default())
                .max_capacity(10_000)
                .shards(16);
            if index {
                b = b.index_keys();
            }
            let c: Cache<String, String, H> = b.build();
            // 32 pairs, each dependent in a shard of its own choosing relative to its source.
            for i in 0..32 {
                put_h(&c, &format!("p{i}:src"), &InsertOptions::new().version(1));
                put_h(
                    &c,
                    &format!("p{i}:dep"),
                    &InsertOptions::new()
                        .version(1)
                        .depends_on(format!("p{i}:src")),
                );
            }
            let n = match how {
                "prefix" => c.invalidate_prefix("p"),
                "glob" => c.invalidate_glob("p*:*"),
                _ => c.set_version_floor_prefix("p", 2),
            };
            assert!(c.is_empty());
            assert_eq!(n, 64, "index {index}, {how}: every matching entry counts");
        }
    }
}

fn put_h<S>(c: &Cache<String, String, S>, k: &str, o: &InsertOptions<String>)
where
    S: std::hash::BuildHasher + Clone + Send + Sync + 'static,
{
    c.try_insert(s(k), s("v"), o)
        .unwrap_or_else(|e| panic!("insert {k}: {e}"));
}

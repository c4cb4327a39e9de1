//! Invalidation behaviour: hierarchical tags, prefix and glob patterns, the dependency cascade,
//! versions and floors, ETags, leases (including the stale-fill race they exist to close),
//! subscribers and stale reads. Every test asserts something the engine could get wrong.

use lethe::{
    Applied, Cache, CacheBuilder, Conditional, ETag, ErrorKind, InsertOptions, Inserted,
    Invalidation, LeaseOutcome, ManualClock, RejectReason, Rejected, RemovalCause, Timestamp,
    WriteCondition,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START: u64 = 1_700_000_000_000_000_000;

type C = Cache<String, String>;
type B = CacheBuilder<String, String>;
type Log = Arc<Mutex<Vec<(String, String, RemovalCause)>>>;

fn s(x: &str) -> String {
    x.to_owned()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache on a manual clock with a listener recording every removal.
fn setup(configure: impl FnOnce(B) -> B) -> (C, Arc<ManualClock>, Log) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let log: Log = Arc::default();
    let sink = log.clone();
    let builder = Cache::builder()
        .max_capacity(10_000)
        .clock(clock.clone())
        .removal_listener(move |k: &String, v: &String, c: RemovalCause| {
            sink.lock().unwrap().push((k.clone(), v.clone(), c));
        });
    (configure(builder).build(), clock, log)
}

fn cache() -> (C, Log) {
    let (c, _, log) = setup(|b| b);
    (c, log)
}

fn drain(log: &Log) -> Vec<(String, String, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// The drained log as `key -> cause`, asserting that no key was reported twice.
fn causes(log: &Log) -> HashMap<String, RemovalCause> {
    let mut out = HashMap::new();
    for (k, _, c) in drain(log) {
        assert!(out.insert(k.clone(), c).is_none(), "{k} reported twice");
    }
    out
}

fn tags(t: &[&str]) -> InsertOptions<String> {
    InsertOptions::new().tags(t.iter().copied())
}

fn deps(d: &[&str]) -> InsertOptions<String> {
    d.iter()
        .fold(InsertOptions::new(), |o, k| o.depends_on(s(k)))
}

fn put(c: &C, k: &str, v: &str, o: &InsertOptions<String>) {
    c.try_insert(s(k), s(v), o)
        .unwrap_or_else(|e| panic!("insert {k}: {e}"));
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|x| s(x)).collect();
    v.sort();
    v
}

fn present(c: &C, keys: &[&str]) -> Vec<String> {
    strs(
        &keys
            .iter()
            .copied()
            .filter(|k| c.get(*k).is_some())
            .collect::<Vec<_>>(),
    )
}

fn granted(c: &C, k: &str) -> lethe::Lease<String> {
    match c.lease(&s(k)) {
        LeaseOutcome::Granted(l) => l,
        other => panic!("lease({k}): expected a grant, got {other:?}"),
    }
}

fn rejected(reason: RejectReason, current_version: Option<u64>) -> Result<Inserted, Rejected> {
    Err(Rejected {
        reason,
        current_version,
    })
}

// =============================================================================================
// Tags

#[test]
fn tag_hierarchy_covers_the_subtree_and_nothing_else() {
    let (c, _) = cache();
    put(&c, "self", "v", &tags(&["user:1001"]));
    put(&c, "child", "v", &tags(&["user:1001:profile"]));
    put(&c, "grandchild", "v", &tags(&["user:1001:profile:avatar"]));
    put(&c, "longer", "v", &tags(&["user:10010"]));
    put(&c, "shorter", "v", &tags(&["user:100"]));
    put(&c, "parent", "v", &tags(&["user"]));
    put(&c, "untagged", "v", &InsertOptions::new());
    let all = [
        "self",
        "child",
        "grandchild",
        "longer",
        "shorter",
        "parent",
        "untagged",
    ];

    c.invalidate_tag("user:1001");
    assert_eq!(
        present(&c, &all),
        strs(&["longer", "shorter", "parent", "untagged"])
    );

    // `user:100` is a sibling of `user:1001` and `user:10010`, not their ancestor.
    c.invalidate_tag("user:100");
    assert_eq!(present(&c, &all), strs(&["longer", "parent", "untagged"]));

    c.invalidate_tag("user");
    assert_eq!(present(&c, &all), strs(&["untagged"]));
}

#[test]
fn invalidating_a_subtree_root_hides_every_level_below_it_only() {
    let (c, _) = cache();
    for (k, t) in [
        ("l1", "a"),
        ("l2", "a:b"),
        ("l3", "a:b:c"),
        ("l4", "a:b:c:d"),
        ("sib", "a:bc"),
        ("cousin", "a:x:c"),
    ] {
        put(&c, k, "v", &tags(&[t]));
    }
    let all = ["l1", "l2", "l3", "l4", "sib", "cousin"];
    c.invalidate_tag("a:b:c");
    assert_eq!(present(&c, &all), strs(&["l1", "l2", "sib", "cousin"]));
    c.invalidate_tag("a:b");
    assert_eq!(present(&c, &all), strs(&["l1", "sib", "cousin"]));
    c.invalidate_tag("a");
    assert!(present(&c, &all).is_empty());
}

#[test]
fn invalidate_tags_takes_many_tags_at_once() {
    let (c, _) = cache();
    for i in 0..5 {
        put(&c, &format!("k{i}"), "v", &tags(&[&format!("t{i}")]));
    }
    put(&c, "sub", "v", &tags(&["t3:x"]));
    let before = c.last_seq();
    let seq = c.invalidate_tags(&["t1", "t3", "never-used"]).unwrap();
    assert_eq!(seq, before + 3, "one sequence number per tag");
    assert_eq!(c.last_seq(), seq);
    assert_eq!(
        present(&c, &["k0", "k1", "k2", "k3", "k4", "sub"]),
        strs(&["k0", "k2", "k4"])
    );
    // An empty list is fine and invalidates nothing.
    c.invalidate_tags::<&str>(&[]).unwrap();
    assert_eq!(present(&c, &["k0", "k2", "k4"]).len(), 3);
}

#[test]
fn entries_written_after_an_invalidation_stay_valid() {
    let (c, _) = cache();
    put(&c, "old", "v1", &tags(&["t"]));
    put(&c, "old-child", "v1", &tags(&["t:x"]));
    c.invalidate_tag("t");
    assert_eq!(c.get("old"), None);
    assert_eq!(c.get("old-child"), None);

    put(&c, "old", "v2", &tags(&["t"]));
    put(&c, "new", "v2", &tags(&["t"]));
    put(&c, "new-child", "v2", &tags(&["t:x"]));
    assert_eq!(c.get("old").as_deref(), Some("v2"));
    assert_eq!(c.get("new").as_deref(), Some("v2"));
    assert_eq!(c.get("new-child").as_deref(), Some("v2"));

    // Reclaiming the invalidated entries leaves the new ones alone.
    c.run_pending_tasks();
    assert_eq!(c.get("old").as_deref(), Some("v2"));
    assert_eq!(c.get("new").as_deref(), Some("v2"));
    assert_eq!(c.get("new-child").as_deref(), Some("v2"));
    assert_eq!(c.len(), 3);

    // And a second invalidation still works on them.
    c.invalidate_tag("t");
    assert_eq!(
        present(&c, &["old", "new", "new-child"]),
        Vec::<String>::new()
    );
}

#[test]
fn keys_with_tag_lists_valid_keys_of_the_subtree_and_tags_of_gives_the_tags() {
    let (c, _) = cache();
    put(&c, "a", "v", &tags(&["a"]));
    put(&c, "a1", "v", &tags(&["a:1"]));
    put(&c, "a1x", "v", &tags(&["a:1:x", "b"]));
    put(&c, "a2", "v", &tags(&["a:2"]));
    put(&c, "a10", "v", &tags(&["a:10"]));
    put(&c, "b", "v", &tags(&["b"]));
    put(&c, "plain", "v", &InsertOptions::new());

    assert_eq!(
        sorted(c.keys_with_tag("a")),
        strs(&["a", "a1", "a1x", "a2", "a10"])
    );
    assert_eq!(sorted(c.keys_with_tag("a:1")), strs(&["a1", "a1x"]));
    assert_eq!(sorted(c.keys_with_tag("b")), strs(&["a1x", "b"]));
    assert!(c.keys_with_tag("nope").is_empty());
    assert!(c.keys_with_tag("a:1:x:y").is_empty());

    assert_eq!(c.tags_of("a1x"), Some(vec![s("a:1:x"), s("b")]));
    assert_eq!(c.tags_of("plain"), Some(vec![]));
    assert_eq!(c.tags_of("missing"), None);

    c.invalidate_tag("a:1");
    assert_eq!(sorted(c.keys_with_tag("a")), strs(&["a", "a2", "a10"]));
    assert!(c.keys_with_tag("a:1").is_empty());
    assert_eq!(sorted(c.keys_with_tag("b")), strs(&["b"]));
    assert_eq!(
        c.tags_of("a1x"),
        None,
        "an invalidated entry has no tags to give"
    );
    assert_eq!(c.tags_of("a2"), Some(vec![s("a:2")]));
}

/// `tags_of` gives the tags "as given on insert": in the order given, whatever tags the shard
/// already knew.
#[test]
fn tags_of_keeps_the_order_given() {
    let (c, _, _) = setup(|b| b.shards(1));
    put(&c, "first", "v", &tags(&["z", "m"]));
    put(&c, "k", "v", &tags(&["a", "m", "z"]));
    assert_eq!(c.tags_of("k"), Some(vec![s("a"), s("m"), s("z")]));
    put(&c, "k", "v2", &tags(&["z", "a"]));
    assert_eq!(c.tags_of("k"), Some(vec![s("z"), s("a")]));
}

#[test]
fn tag_invalidation_is_reclaimed_and_reported_once_per_entry() {
    let (c, log) = cache();
    for i in 0..1000 {
        put(&c, &format!("t{i}"), "v", &tags(&["group", "other"]));
    }
    for i in 0..10 {
        put(&c, &format!("u{i}"), "v", &tags(&["unrelated"]));
    }
    assert_eq!(c.len(), 1010);
    drain(&log);
    c.invalidate_tag("group");
    c.run_pending_tasks();
    assert_eq!(c.len(), 10);
    let heard = causes(&log);
    assert_eq!(heard.len(), 1000);
    for i in 0..1000 {
        assert_eq!(heard.get(&format!("t{i}")), Some(&RemovalCause::Tag));
    }
    assert_eq!(c.stats().removals.get(RemovalCause::Tag), 1000);
    // Nothing more to reclaim, nothing reported twice.
    c.run_pending_tasks();
    assert!(drain(&log).is_empty());
    assert_eq!(c.stats().removals.get(RemovalCause::Tag), 1000);
    // The other tag of the removed entries does not resurrect anything.
    assert!(c.keys_with_tag("other").is_empty());
}

#[test]
fn tag_invalidation_is_reclaimed_by_later_writes_too() {
    let (c, _, log) = setup(|b| b.shards(1));
    for i in 0..100 {
        put(&c, &format!("t{i}"), "v", &tags(&["t"]));
    }
    c.invalidate_tag("t");
    // Each write reclaims a bounded batch; enough writes reclaim everything.
    for i in 0..100 {
        c.insert(format!("w{i}"), s("v"));
    }
    assert_eq!(c.len(), 100);
    let heard = causes(&log);
    assert_eq!(
        heard.values().filter(|c| **c == RemovalCause::Tag).count(),
        100
    );
}

#[test]
fn malformed_tags_are_rejected() {
    let (c, _) = cache();
    put(&c, "k", "old", &tags(&["ok"]));
    let seq = c.last_seq();
    for bad in ["a::b", "", ":a", "a:", ":", "a:b:"] {
        let e = c.try_invalidate_tag(bad).expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::InvalidTag, "{bad:?}");
        assert_eq!(
            c.try_insert(s("k"), s("new"), &tags(&[bad]))
                .map_err(|e| e.reason),
            Err(RejectReason::BadTag),
            "insert with tag {bad:?}"
        );
        assert!(!c.insert_with_options(s("fresh"), s("v"), &tags(&["fine", bad])));
        assert_eq!(
            c.set_version_floor_tag(bad, 10).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidTag)
        );
    }
    // One bad tag in a batch refuses the whole batch, before anything is invalidated.
    assert!(c.invalidate_tags(&["ok", "a::b"]).is_err());
    assert_eq!(c.get("k").as_deref(), Some("old"));
    assert_eq!(c.get("fresh"), None);
    assert_eq!(c.last_seq(), seq, "refused invalidations are not published");
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.invalidate_tag("a::b");
        }))
        .is_err(),
        "invalidate_tag panics on a malformed tag"
    );
}

#[test]
fn an_entry_goes_when_any_one_of_its_tags_is_invalidated() {
    for victim in ["x", "y", "z:1", "z"] {
        let (c, _) = cache();
        put(&c, "multi", "v", &tags(&["x", "y", "z:1"]));
        put(&c, "only-x", "v", &tags(&["x"]));
        c.invalidate_tag(victim);
        assert_eq!(c.get("multi"), None, "after invalidating {victim}");
        assert_eq!(c.get("only-x").is_some(), victim != "x");
    }
}

#[test]
fn invalidating_a_tag_of_100k_entries_hides_them_all_at_once() {
    const N: usize = 100_000;
    let c: C = Cache::builder().max_capacity(2 * N as u64).build();
    let opts = tags(&["big"]);
    for i in 0..N {
        put(&c, &format!("e{i}"), "v", &opts);
    }
    put(&c, "bystander", "v", &tags(&["small"]));
    assert_eq!(c.len(), N + 1);
    c.invalidate_tag("big");
    // Before any reclamation: every read already misses.
    for i in 0..N {
        assert_eq!(c.get(format!("e{i}").as_str()), None, "e{i}");
    }
    assert!(c.keys_with_tag("big").is_empty());
    assert_eq!(c.get("bystander").as_deref(), Some("v"));
    c.run_pending_tasks();
    assert_eq!(c.len(), 1);
}

#[test]
fn replacing_a_tagged_entry_moves_it_between_tags() {
    let (c, log) = cache();
    put(&c, "k", "v1", &tags(&["t"]));
    put(&c, "k", "v2", &tags(&["t"]));
    assert_eq!(c.keys_with_tag("t"), vec![s("k")]);
    put(&c, "k", "v3", &tags(&["t", "u"]));
    assert_eq!(c.keys_with_tag("u"), vec![s("k")]);
    put(&c, "k", "v4", &tags(&["u"]));
    assert!(c.keys_with_tag("t").is_empty());
    assert_eq!(c.tags_of("k"), Some(vec![s("u")]));
    c.invalidate_tag("t");
    assert_eq!(c.get("k").as_deref(), Some("v4"), "no longer tagged t");
    c.invalidate_tag("u");
    assert_eq!(c.get("k"), None);
    c.run_pending_tasks();
    assert!(c.is_empty());
    let heard = drain(&log);
    assert_eq!(heard.len(), 4);
    assert_eq!(heard[3], (s("k"), s("v4"), RemovalCause::Tag));
}

/// Entries moving between tag sets (tagged, untagged, retagged) and a reclamation pass in
/// between, then an invalidation of an ancestor of the tags they no longer carry.
#[test]
fn retagged_entries_survive_an_invalidation_of_their_old_tags_parent() {
    let (c, _, _) = setup(|b| b.shards(1));
    put(&c, "k2", "v1", &tags(&["a:2"]));
    put(&c, "k2", "v2", &InsertOptions::new());
    put(&c, "k0", "v1", &tags(&["a:2", "b:2"]));
    c.run_pending_tasks();
    put(&c, "k0", "v2", &tags(&["a:2"]));
    put(&c, "k0", "v3", &InsertOptions::new());
    c.invalidate_tag("a");
    assert_eq!(c.get("k0").as_deref(), Some("v3"));
    assert_eq!(c.get("k2").as_deref(), Some("v2"));
    c.invalidate_tag("b");
    c.run_pending_tasks();
    assert_eq!(c.len(), 2);
}

// =============================================================================================
// Patterns

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

// =============================================================================================
// Dependencies

/// A <- B <- C (C depends on B, B on A), plus an unrelated D.
fn chain(c: &C) {
    put(c, "A", "a", &InsertOptions::new());
    put(c, "B", "b", &deps(&["A"]));
    put(c, "C", "c", &deps(&["B"]));
    put(c, "D", "d", &InsertOptions::new());
}

fn assert_chain_gone(c: &C, log: &Log, root_cause: RemovalCause) {
    assert_eq!(present(c, &["A", "B", "C", "D"]), strs(&["D"]));
    let heard = causes(log);
    assert_eq!(heard.get("A"), Some(&root_cause));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("D"), None);
    assert_eq!(c.stats().removals.get(RemovalCause::Dependency), 2);
}

#[test]
fn dependency_cascade_on_invalidate_key() {
    let (c, log) = cache();
    chain(&c);
    assert!(c.invalidate_key("A"));
    assert_chain_gone(&c, &log, RemovalCause::Explicit);
    assert!(c.dependents_of(&s("A")).is_empty());
    assert!(c.dependents_of(&s("B")).is_empty());
}

#[test]
fn dependency_cascade_on_remove() {
    let (c, log) = cache();
    chain(&c);
    assert_eq!(c.remove("A").as_deref(), Some("a"));
    assert_chain_gone(&c, &log, RemovalCause::Explicit);
}

#[test]
fn dependency_cascade_on_replace() {
    let (c, log) = cache();
    chain(&c);
    c.insert(s("A"), s("a2"));
    assert_eq!(present(&c, &["A", "B", "C", "D"]), strs(&["A", "D"]));
    assert_eq!(c.get("A").as_deref(), Some("a2"));
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Replaced));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));
    // Replacing the middle of a chain takes only what is below it.
    chain(&c);
    drain(&log);
    c.insert(s("B"), s("b2"));
    assert_eq!(present(&c, &["A", "B", "C"]), strs(&["A", "B"]));
}

#[test]
fn dependency_cascade_on_expiry() {
    // Reclaimed by run_pending_tasks.
    let (c, clock, log) = setup(|b| b);
    put(&c, "A", "a", &InsertOptions::new().ttl(secs(1)));
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "C", "c", &deps(&["B"]));
    clock.advance(secs(2));
    c.run_pending_tasks();
    assert_eq!(present(&c, &["A", "B", "C"]), Vec::<String>::new());
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Expired));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));

    // Reclaimed by a write to the shard.
    let (c, clock, log) = setup(|b| b.shards(1));
    put(&c, "A", "a", &InsertOptions::new().ttl(secs(1)));
    put(&c, "B", "b", &deps(&["A"]));
    clock.advance(secs(2));
    c.insert(s("unrelated"), s("x"));
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Expired));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(c.get("B"), None);
}

#[test]
fn dependency_cascade_on_eviction() {
    let (c, _, log) = setup(|b| b.max_capacity(8).shards(1));
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "B", "b", &deps(&["A"]));
    let mut evicted_a = false;
    for i in 0..10_000 {
        // Keep B popular so the policy prefers evicting A.
        for _ in 0..3 {
            c.get("B");
        }
        c.insert(format!("filler{i}"), s("x"));
        let events = drain(&log);
        if let Some(a) = events.iter().position(|(k, _, _)| k == "A") {
            assert_eq!(events[a].2, RemovalCause::Evicted);
            let b = events
                .iter()
                .find(|(k, _, _)| k == "B")
                .expect("B removed in the same call as A");
            assert!(
                matches!(b.2, RemovalCause::Dependency | RemovalCause::Evicted),
                "{b:?}"
            );
            evicted_a = true;
            break;
        }
        assert!(
            events.iter().all(|(k, _, _)| k != "B"),
            "B left before A: {events:?}"
        );
    }
    assert!(evicted_a, "A was never evicted");
    assert_eq!(c.get("B"), None);
}

#[test]
fn transitive_chain_is_removed_entirely() {
    let (c, log) = cache();
    put(&c, "n0", "v", &InsertOptions::new());
    for i in 1..50 {
        put(&c, &format!("n{i}"), "v", &deps(&[&format!("n{}", i - 1)]));
    }
    assert_eq!(c.dependency_chain(&s("n0")).len(), 49);
    c.invalidate_key("n0");
    assert!(c.is_empty());
    let heard = causes(&log);
    assert_eq!(heard.len(), 50);
    assert_eq!(
        heard
            .values()
            .filter(|c| **c == RemovalCause::Dependency)
            .count(),
        49
    );
}

#[test]
fn dependency_cycle_terminates_and_removes_both() {
    let (c, log) = cache();
    put(&c, "A", "a", &deps(&["B"]));
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "C", "c", &deps(&["A"]));
    assert_eq!(c.dependency_chain(&s("A")).len(), 2); // B and C (A itself excluded)
    assert!(c.invalidate_key("A"));
    assert_eq!(present(&c, &["A", "B", "C"]), Vec::<String>::new());
    let heard = causes(&log);
    assert_eq!(heard.len(), 3);
    assert_eq!(heard["A"], RemovalCause::Explicit);
    assert_eq!(heard["B"], RemovalCause::Dependency);
    assert_eq!(heard["C"], RemovalCause::Dependency);

    // Self-dependency is ignored rather than looping.
    put(&c, "S", "s", &deps(&["S"]));
    assert!(c.dependents_of(&s("S")).is_empty());
    assert!(c.invalidate_key("S"));
}

#[test]
fn dependency_introspection() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "X", "x", &InsertOptions::new());
    put(&c, "B", "b", &deps(&["A", "X"]));
    put(&c, "C", "c", &deps(&["B"]));
    put(&c, "D", "d", &deps(&["A"]));
    assert_eq!(c.dependencies_of("B"), vec![s("A"), s("X")]);
    assert_eq!(c.dependencies_of("C"), vec![s("B")]);
    assert!(c.dependencies_of("A").is_empty());
    assert!(c.dependencies_of("missing").is_empty());
    assert_eq!(sorted(c.dependents_of(&s("A"))), strs(&["B", "D"]));
    assert_eq!(sorted(c.dependents_of(&s("B"))), strs(&["C"]));
    assert!(c.dependents_of(&s("C")).is_empty());
    assert_eq!(sorted(c.dependency_chain(&s("A"))), strs(&["B", "C", "D"]));
    assert_eq!(sorted(c.dependency_chain(&s("X"))), strs(&["B", "C"]));
    // Breadth first: direct dependents before C.
    let chain = c.dependency_chain(&s("A"));
    assert_eq!(chain.last().map(String::as_str), Some("C"));
    c.invalidate_key("X");
    assert!(c.dependency_chain(&s("A")) == vec![s("D")]);
    assert!(c.dependencies_of("B").is_empty());
}

#[test]
fn reinserting_a_dependent_with_new_dependencies_unlinks_the_old_ones() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "X", "x", &InsertOptions::new());
    put(&c, "S", "s", &InsertOptions::new());
    put(&c, "B", "b1", &deps(&["A", "S"]));
    put(&c, "B", "b2", &deps(&["X", "S"]));
    assert!(c.dependents_of(&s("A")).is_empty());
    assert_eq!(c.dependents_of(&s("S")), vec![s("B")]);
    c.invalidate_key("A");
    assert_eq!(c.get("B").as_deref(), Some("b2"), "old dependency unlinked");
    c.invalidate_key("X");
    assert_eq!(c.get("B"), None, "new dependency linked");

    // The shared dependency stays linked across the rewrite.
    put(&c, "B", "b3", &deps(&["S"]));
    put(&c, "B", "b4", &deps(&["S"]));
    c.invalidate_key("S");
    assert_eq!(c.get("B"), None);

    // A plain rewrite drops every dependency.
    put(&c, "S", "s", &InsertOptions::new());
    put(&c, "B", "b5", &deps(&["S"]));
    put(&c, "B", "b6", &InsertOptions::new());
    c.invalidate_key("S");
    assert_eq!(c.get("B").as_deref(), Some("b6"));
}

#[test]
fn invalidating_an_uncached_key_still_cascades_to_its_dependents() {
    let (c, log) = cache();
    put(&c, "B", "b", &deps(&["A"]));
    assert!(!c.invalidate_key("A"));
    assert_eq!(c.get("B"), None);
    assert_eq!(causes(&log).get("B"), Some(&RemovalCause::Dependency));
}

/// A dependent's source was invalidated by a tag: the dependent must not be served either
/// ("when one goes, this entry goes").
#[test]
fn dependents_of_a_tag_invalidated_entry_are_not_served() {
    let (c, log) = cache();
    put(&c, "A", "a", &tags(&["t"]));
    put(&c, "B", "b", &deps(&["A"]));
    c.invalidate_tag("t");
    assert_eq!(c.get("A"), None);
    assert_eq!(
        c.get("B"),
        None,
        "B depends on A, which a tag invalidation removed"
    );
    c.run_pending_tasks();
    assert_eq!(c.get("B"), None);
    assert_eq!(causes(&log).get("B"), Some(&RemovalCause::Dependency));
}

/// Same with a tag version floor.
#[test]
fn dependents_of_an_entry_below_a_tag_floor_are_not_served() {
    let (c, _) = cache();
    put(&c, "A", "a", &tags(&["t"]).version(1));
    put(&c, "B", "b", &deps(&["A"]));
    c.set_version_floor_tag("t", 5).unwrap();
    assert_eq!(c.get("A"), None);
    assert_eq!(c.get("B"), None, "B depends on A, which is now stale");
}

/// A self-dependency is ignored: the entry does not depend on (or inherit anything from) the
/// value it replaces.
#[test]
fn a_self_dependency_is_ignored() {
    let (c, log) = cache();
    put(&c, "k", "old", &tags(&["t"]));
    put(&c, "k", "new", &deps(&["k"]));
    assert_eq!(c.tags_of("k"), Some(vec![]));
    assert!(c.dependents_of(&s("k")).is_empty());
    c.invalidate_tag("t");
    assert_eq!(
        c.get("k").as_deref(),
        Some("new"),
        "the new value has no tag"
    );
    c.run_pending_tasks();
    assert_eq!(c.get("k").as_deref(), Some("new"));
    assert_eq!(
        drain(&log),
        vec![(s("k"), s("old"), RemovalCause::Replaced)]
    );
}

/// The dependency is written (with a tag) after its dependent; invalidating the tag still
/// takes the dependent.
#[test]
fn a_dependent_written_before_its_tagged_dependency_is_not_served_after_the_tag_goes() {
    let (c, _) = cache();
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "A", "a", &tags(&["t"]));
    c.invalidate_tag("t");
    assert_eq!(c.get("A"), None);
    assert_eq!(
        c.get("B"),
        None,
        "B depends on A, which the tag invalidation removed"
    );
}

/// A refused write must not touch the dependency edges of the entry that stays.
#[test]
fn a_refused_write_keeps_the_stored_entrys_dependencies() {
    for refusal in ["exists", "not-newer", "below-floor", "cas-mismatch"] {
        let (c, _) = cache();
        put(&c, "A", "a", &InsertOptions::new());
        put(&c, "B", "b", &deps(&["A"]).version(10));
        let again = deps(&["A"]);
        let r = match refusal {
            "exists" => c.try_insert(s("B"), s("b2"), &again.condition(WriteCondition::IfAbsent)),
            "not-newer" => c.try_insert(
                s("B"),
                s("b2"),
                &again.version(3).condition(WriteCondition::IfNewer),
            ),
            "below-floor" => {
                c.set_version_floor_prefix("B", 5);
                c.try_insert(s("B"), s("b2"), &again.version(3))
            }
            _ => c.compare_and_set(s("B"), 99, s("b2"), &again),
        };
        assert!(r.is_err(), "{refusal}");
        assert_eq!(c.get("B").as_deref(), Some("b"), "{refusal}");
        assert_eq!(
            c.dependents_of(&s("A")),
            vec![s("B")],
            "{refusal}: edge kept"
        );
        c.invalidate_key("A");
        assert_eq!(c.get("B"), None, "{refusal}: B must follow A");
    }
}

/// Rewriting an entry hidden by a tag invalidation (not yet reclaimed) with the same dependency
/// must leave the new entry linked to it.
#[test]
fn rewriting_a_hidden_entry_keeps_the_new_entrys_dependencies() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "B", "b1", &tags(&["t"]).depends_on(s("A")));
    c.invalidate_tag("t");
    put(&c, "B", "b2", &deps(&["A"]));
    assert_eq!(c.get("B").as_deref(), Some("b2"));
    assert_eq!(c.dependents_of(&s("A")), vec![s("B")]);
    c.invalidate_key("A");
    assert_eq!(c.get("B"), None, "b2 depends on A");
}

// =============================================================================================
// Versions

#[test]
fn insert_if_newer_refuses_older_and_equal_versions() {
    let (c, _) = cache();
    assert_eq!(c.insert_if_newer(s("k"), s("v5"), 5), Ok(Inserted::New));
    assert_eq!(
        c.insert_if_newer(s("k"), s("v3"), 3),
        rejected(RejectReason::NotNewer, Some(5))
    );
    assert_eq!(
        c.insert_if_newer(s("k"), s("v5b"), 5),
        rejected(RejectReason::NotNewer, Some(5))
    );
    assert_eq!(c.get("k").as_deref(), Some("v5"));
    assert_eq!(
        c.insert_if_newer(s("k"), s("v6"), 6),
        Ok(Inserted::Replaced)
    );
    assert_eq!(c.get("k").as_deref(), Some("v6"));
    assert_eq!(c.version("k"), Some(6));
    // An invalidated entry no longer blocks an older version.
    c.invalidate_key("k");
    assert_eq!(c.insert_if_newer(s("k"), s("v1"), 1), Ok(Inserted::New));
}

#[test]
fn compare_and_set_matches_mismatches_and_misses() {
    let (c, _) = cache();
    c.insert(s("k"), s("v1"));
    assert_eq!(c.version("k"), Some(1));
    c.insert(s("k"), s("v2"));
    assert_eq!(c.version("k"), Some(2), "the engine counts writes");
    assert_eq!(
        c.compare_and_set(s("k"), 1, s("x"), &InsertOptions::new()),
        rejected(RejectReason::VersionMismatch, Some(2))
    );
    assert_eq!(c.get("k").as_deref(), Some("v2"));
    assert_eq!(
        c.compare_and_set(s("k"), 2, s("v3"), &InsertOptions::new()),
        Ok(Inserted::Replaced)
    );
    assert_eq!(c.version("k"), Some(3));
    assert_eq!(
        c.compare_and_set(s("k"), 3, s("v100"), &InsertOptions::new().version(100)),
        Ok(Inserted::Replaced)
    );
    assert_eq!(c.version("k"), Some(100));
    assert_eq!(c.get("k").as_deref(), Some("v100"));
    assert_eq!(
        c.compare_and_set(s("missing"), 1, s("x"), &InsertOptions::new()),
        rejected(RejectReason::Missing, None)
    );
    assert_eq!(c.get("missing"), None);
}

#[test]
fn if_absent_and_if_present_conditions() {
    let (c, _) = cache();
    let absent = InsertOptions::new().condition(WriteCondition::IfAbsent);
    let present = InsertOptions::new().condition(WriteCondition::IfPresent);
    assert_eq!(
        c.try_insert(s("k"), s("x"), &present),
        rejected(RejectReason::Missing, None)
    );
    assert_eq!(c.get("k"), None);
    assert_eq!(c.try_insert(s("k"), s("v1"), &absent), Ok(Inserted::New));
    assert_eq!(
        c.try_insert(s("k"), s("v2"), &absent),
        rejected(RejectReason::Exists, Some(1))
    );
    assert_eq!(c.get("k").as_deref(), Some("v1"));
    assert_eq!(
        c.try_insert(s("k"), s("v3"), &present),
        Ok(Inserted::Replaced)
    );
    assert_eq!(c.get("k").as_deref(), Some("v3"));
    // A tag-invalidated entry counts as absent.
    put(&c, "t", "v", &tags(&["t"]));
    c.invalidate_tag("t");
    assert_eq!(c.try_insert(s("t"), s("again"), &absent), Ok(Inserted::New));
}

#[test]
fn prefix_version_floor_removes_older_entries_and_refuses_older_writes() {
    for index in [false, true] {
        let (c, _, log) = setup(|b| if index { b.index_keys() } else { b });
        let v = |n| InsertOptions::new().version(n);
        put(&c, "product:1", "old", &v(3));
        put(&c, "product:2", "new", &v(10));
        put(&c, "product:3", "newer", &v(12));
        put(&c, "products", "old", &v(1));
        put(&c, "other:1", "old", &v(1));
        drain(&log);
        assert_eq!(c.set_version_floor_prefix("product:", 10), 1);
        assert_eq!(
            present(
                &c,
                &["product:1", "product:2", "product:3", "products", "other:1"]
            ),
            strs(&["product:2", "product:3", "products", "other:1"])
        );
        let heard = causes(&log);
        assert_eq!(heard.len(), 1);
        assert_eq!(heard["product:1"], RemovalCause::Stale);
        assert_eq!(c.stats().removals.get(RemovalCause::Stale), 1);

        assert_eq!(
            c.try_insert(s("product:1"), s("late"), &v(9)),
            rejected(RejectReason::BelowFloor, None)
        );
        assert_eq!(
            c.try_insert(s("product:2"), s("late"), &v(9)),
            rejected(RejectReason::BelowFloor, Some(10))
        );
        assert_eq!(c.get("product:2").as_deref(), Some("new"));
        assert_eq!(
            c.try_insert(s("product:1"), s("fresh"), &v(10)),
            Ok(Inserted::New)
        );
        assert_eq!(c.get("product:1").as_deref(), Some("fresh"));
        assert!(c.try_insert(s("products"), s("x"), &v(2)).is_ok());
        // Floors only rise.
        c.set_version_floor_prefix("product:", 4);
        assert_eq!(
            c.try_insert(s("product:9"), s("x"), &v(9))
                .map_err(|e| e.reason),
            Err(RejectReason::BelowFloor)
        );
        // A longer prefix can raise it further.
        assert_eq!(c.set_version_floor_prefix("product:3", 20), 1);
        assert_eq!(c.get("product:3"), None);
        assert!(c.try_insert(s("product:3"), s("x"), &v(15)).is_err());
        assert!(c.try_insert(s("product:4"), s("x"), &v(15)).is_ok());
    }
}

#[test]
fn tag_version_floor_hides_older_entries_under_the_tag_and_its_subtree() {
    let (c, log) = cache();
    let tv = |t: &str, n| tags(&[t]).version(n);
    put(&c, "t-old", "v", &tv("shop", 3));
    put(&c, "t-new", "v", &tv("shop", 10));
    put(&c, "sub-old", "v", &tv("shop:cart", 3));
    put(&c, "sub-new", "v", &tv("shop:cart", 11));
    put(&c, "parent-old", "v", &tv("top", 3));
    put(&c, "sibling-old", "v", &tv("shopping", 3));
    put(&c, "untagged-old", "v", &InsertOptions::new().version(3));
    let all = [
        "t-old",
        "t-new",
        "sub-old",
        "sub-new",
        "parent-old",
        "sibling-old",
        "untagged-old",
    ];
    c.set_version_floor_tag("shop", 10).unwrap();
    assert_eq!(
        present(&c, &all),
        strs(&[
            "t-new",
            "sub-new",
            "parent-old",
            "sibling-old",
            "untagged-old"
        ])
    );
    assert_eq!(c.version("t-old"), None);
    assert_eq!(
        c.try_insert(s("k"), s("v"), &tv("shop:cart:item", 9)),
        rejected(RejectReason::BelowFloor, None)
    );
    assert_eq!(
        c.try_insert(s("t-new"), s("v2"), &tv("shop", 9)),
        rejected(RejectReason::BelowFloor, Some(10))
    );
    assert_eq!(
        c.try_insert(s("k"), s("v"), &tv("shop:cart:item", 10)),
        Ok(Inserted::New)
    );
    assert!(c.try_insert(s("k2"), s("v"), &tv("shopping", 1)).is_ok());
    c.run_pending_tasks();
    let heard = causes(&log);
    assert_eq!(heard.get("t-old"), Some(&RemovalCause::Stale));
    assert_eq!(heard.get("sub-old"), Some(&RemovalCause::Stale));
    assert_eq!(heard.len(), 2, "{heard:?}");
}

#[test]
fn etags_and_conditional_reads() {
    let (c, _) = cache();
    assert_eq!(c.etag("k"), None);
    assert_eq!(c.get_if_none_match("k", ETag(0)), Conditional::Missing);
    c.insert(s("k"), s("hello"));
    let tag = c.etag("k").unwrap();
    assert_eq!(tag, ETag::of(&s("hello")));
    assert_eq!(c.get_if_none_match("k", tag), Conditional::NotModified(tag));
    c.insert(s("k"), s("world"));
    let new_tag = c.etag("k").unwrap();
    assert_ne!(new_tag, tag);
    assert_eq!(
        c.get_if_none_match("k", tag),
        Conditional::Modified(s("world"), new_tag)
    );
    // Same content, same tag, whatever the key or the write.
    c.insert(s("other"), s("world"));
    assert_eq!(c.etag("other"), Some(new_tag));
    c.invalidate_key("k");
    assert_eq!(c.get_if_none_match("k", new_tag), Conditional::Missing);
}

#[test]
fn etag_display_and_parse_round_trip() {
    for t in [
        ETag(0),
        ETag(1),
        ETag(u128::MAX),
        ETag::of("x"),
        ETag(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
    ] {
        let shown = t.to_string();
        assert_eq!(shown.len(), 34, "{shown}");
        assert!(shown.starts_with('"') && shown.ends_with('"'));
        assert_eq!(ETag::parse(&shown), Some(t));
        assert_eq!(
            ETag::parse(shown.trim_matches('"')),
            Some(t),
            "quotes optional"
        );
    }
    assert_eq!(ETag::parse("\"abc\""), None);
    assert_eq!(ETag::parse(""), None);
    assert_eq!(ETag::parse(&"g".repeat(32)), None);
}

#[test]
fn is_fresh_compares_the_source_last_modified_time() {
    let (c, clock, _) = setup(|b| b);
    let t = Timestamp(START - 1_000_000_000);
    put(&c, "k", "v", &InsertOptions::new().last_modified(t));
    assert!(c.is_fresh("k", t));
    assert!(c.is_fresh("k", Timestamp(t.0 - 1)));
    assert!(!c.is_fresh("k", Timestamp(t.0 + 1)));
    assert!(!c.is_fresh("missing", Timestamp(0)));
    assert_eq!(c.get_with_metadata("k").unwrap().metadata.last_modified, t);
    // Without a source time, the write time counts.
    clock.advance(secs(5));
    c.insert(s("w"), s("v"));
    let written = Timestamp(START + 5_000_000_000);
    assert!(c.is_fresh("w", written));
    assert!(!c.is_fresh("w", Timestamp(written.0 + 1)));
    // An invalidated entry is never fresh.
    c.invalidate_key("k");
    assert!(!c.is_fresh("k", Timestamp(0)));
}

// =============================================================================================
// Leases

#[test]
fn lease_on_a_miss_is_granted_once_and_fill_stores() {
    let (c, _) = cache();
    let l = granted(&c, "k");
    assert_eq!(l.key(), "k");
    assert!(matches!(
        c.lease(&s("k")),
        LeaseOutcome::Pending { stale: None }
    ));
    assert_eq!(c.fill(l, s("v"), &InsertOptions::new()), Ok(Inserted::New));
    assert_eq!(c.get("k").as_deref(), Some("v"));
    match c.lease(&s("k")) {
        LeaseOutcome::Hit(v) => assert_eq!(v, "v"),
        other => panic!("{other:?}"),
    }
    // The fill carried its options.
    let l = granted(&c, "t");
    c.fill(l, s("v"), &tags(&["group"]).version(7)).unwrap();
    assert_eq!(c.version("t"), Some(7));
    c.invalidate_tag("group");
    assert_eq!(c.get("t"), None);
}

#[test]
fn pending_lease_offers_the_retained_stale_value() {
    let (c, clock, _) = setup(|b| b);
    put(
        &c,
        "k",
        "old",
        &InsertOptions::new().ttl(secs(1)).retain_stale(secs(10)),
    );
    clock.advance(secs(2));
    assert_eq!(c.get("k"), None);
    let l = granted(&c, "k");
    match c.lease(&s("k")) {
        LeaseOutcome::Pending { stale } => assert_eq!(stale.as_deref(), Some("old")),
        other => panic!("{other:?}"),
    }
    c.fill(l, s("new"), &InsertOptions::new()).unwrap();
    assert_eq!(c.get("k").as_deref(), Some("new"));

    // Past the grace there is nothing stale to offer.
    put(
        &c,
        "g",
        "old",
        &InsertOptions::new().ttl(secs(1)).retain_stale(secs(3)),
    );
    clock.advance(secs(5));
    let _l = granted(&c, "g");
    assert!(matches!(
        c.lease(&s("g")),
        LeaseOutcome::Pending { stale: None }
    ));
}

/// A waiting misser is never offered an invalidated value as "stale".
#[test]
fn pending_lease_never_offers_an_invalidated_stale_value() {
    let (c, clock, _) = setup(|b| b);
    put(
        &c,
        "k",
        "old",
        &tags(&["t"]).ttl(secs(1)).retain_stale(secs(60)),
    );
    c.invalidate_tag("t");
    clock.advance(secs(2));
    let _l = granted(&c, "k");
    match c.lease(&s("k")) {
        LeaseOutcome::Pending { stale } => assert_eq!(stale, None, "invalidated, not just stale"),
        other => panic!("{other:?}"),
    }
}

/// The race leases close, single-threaded and deterministic: a reader misses, reads the
/// database, the row changes and its invalidation arrives, then the reader stores what it read.
#[test]
fn lease_closes_the_stale_fill_race_on_a_key() {
    let mut db = s("v1");

    // Without a lease: the stale value wins and stays.
    let (c, _) = cache();
    assert_eq!(c.get("row"), None);
    let read = db.clone();
    db = s("v2");
    c.invalidate_key("row"); // finds nothing to remove
    c.insert(s("row"), read);
    assert_eq!(
        c.get("row").as_deref(),
        Some("v1"),
        "the plain fill stored the stale value"
    );
    assert_ne!(c.get("row").unwrap(), db);

    // With a lease: the fill is refused.
    let mut db = s("v1");
    let (c, _) = cache();
    let lease = granted(&c, "row");
    let read = db.clone();
    db = s("v2");
    c.invalidate_key("row");
    assert_eq!(
        c.fill(lease, read, &InsertOptions::new()),
        rejected(RejectReason::LeaseInvalid, None)
    );
    assert_eq!(c.get("row"), None);
    // The next reader gets a lease and stores the current value.
    let lease = granted(&c, "row");
    c.fill(lease, db.clone(), &InsertOptions::new()).unwrap();
    assert_eq!(c.get("row"), Some(db));

    // A write of the key after the lease also wins over the fill.
    let (c, _) = cache();
    let lease = granted(&c, "row");
    c.insert(s("row"), s("written"));
    assert_eq!(
        c.fill(lease, s("stale"), &InsertOptions::new())
            .map_err(|e| e.reason),
        Err(RejectReason::LeaseInvalid)
    );
    assert_eq!(c.get("row").as_deref(), Some("written"));
}

#[test]
fn lease_fill_is_refused_after_an_invalidation_of_its_tag_or_an_ancestor() {
    for invalidated in ["user:1:profile", "user:1", "user"] {
        let (c, _) = cache();
        // The tag is in use at lease time.
        put(&c, "other", "v", &tags(&["user:1:profile"]));
        let lease = granted(&c, "k");
        c.invalidate_tag(invalidated);
        assert_eq!(
            c.fill(lease, s("stale"), &tags(&["user:1:profile"])),
            rejected(RejectReason::InvalidatedSinceLease, None),
            "{invalidated}"
        );
        assert_eq!(c.get("k"), None);
        // The refused fill gave its lease back.
        let again = granted(&c, "k");
        c.fill(again, s("fresh"), &tags(&["user:1:profile"]))
            .unwrap();
        assert_eq!(c.get("k").as_deref(), Some("fresh"));
    }
}

#[test]
fn lease_fill_is_refused_after_an_invalidation_of_a_tag_that_did_not_exist_yet() {
    let (c, _) = cache();
    assert_eq!(c.tag_count(), 0);
    let lease = granted(&c, "k");
    c.invalidate_tag("brand:new");
    assert_eq!(
        c.fill(lease, s("stale"), &tags(&["brand:new:child"])),
        rejected(RejectReason::InvalidatedSinceLease, None)
    );
    assert_eq!(c.get("k"), None);

    // Also when the tag's node existed, was swept, and is re-created by the fill.
    let (c, _) = cache();
    put(&c, "x", "v", &tags(&["swept"]));
    c.remove("x");
    c.run_pending_tasks();
    let lease = granted(&c, "k");
    c.invalidate_tag("swept");
    assert_eq!(
        c.fill(lease, s("stale"), &tags(&["swept"]))
            .map_err(|e| e.reason),
        Err(RejectReason::InvalidatedSinceLease)
    );
}

#[test]
fn lease_fill_is_accepted_when_only_unrelated_tags_were_invalidated() {
    let (c, _) = cache();
    let lease = granted(&c, "k");
    c.invalidate_tag("user:2");
    c.invalidate_tag("user:1:profile"); // a descendant of the fill's tag
    assert_eq!(c.fill(lease, s("v"), &tags(&["user:1"])), Ok(Inserted::New));
    assert_eq!(c.get("k").as_deref(), Some("v"));
}

#[test]
fn lease_fill_is_refused_after_an_invalidation_of_a_dependency() {
    // The dependency is cached, and invalidated after the lease.
    let (c, _) = cache();
    put(&c, "dep", "d1", &InsertOptions::new());
    let lease = granted(&c, "k");
    c.invalidate_key("dep");
    assert_eq!(
        c.fill(lease, s("from d1"), &deps(&["dep"])),
        rejected(RejectReason::InvalidatedSinceLease, None)
    );
    assert_eq!(c.get("k"), None);

    // The dependency is not cached at all.
    let (c, _) = cache();
    let lease = granted(&c, "k");
    c.invalidate_key("dep");
    assert_eq!(
        c.fill(lease, s("stale"), &deps(&["dep"]))
            .map_err(|e| e.reason),
        Err(RejectReason::InvalidatedSinceLease)
    );

    // The dependency is replaced after the lease.
    let (c, _) = cache();
    put(&c, "dep", "d1", &InsertOptions::new());
    let lease = granted(&c, "k");
    c.insert(s("dep"), s("d2"));
    assert!(c.fill(lease, s("from d1"), &deps(&["dep"])).is_err());
    assert_eq!(c.get("k"), None);

    // The dependency is removed through a cascade of its own.
    let (c, _) = cache();
    put(&c, "root", "r", &InsertOptions::new());
    put(&c, "dep", "d1", &deps(&["root"]));
    let lease = granted(&c, "k");
    c.invalidate_key("root");
    assert!(c.fill(lease, s("from d1"), &deps(&["dep"])).is_err());
    assert_eq!(c.get("k"), None);

    // Control: nothing changed, the fill is stored and linked.
    let (c, _) = cache();
    put(&c, "dep", "d1", &InsertOptions::new());
    let lease = granted(&c, "k");
    assert_eq!(
        c.fill(lease, s("from d1"), &deps(&["dep"])),
        Ok(Inserted::New)
    );
    c.invalidate_key("dep");
    assert_eq!(c.get("k"), None, "the filled entry follows its dependency");
}

/// A tag invalidation hides the dependency at once; a fill derived from it must not be stored.
#[test]
fn lease_fill_is_refused_after_a_tag_invalidation_of_a_dependency() {
    let (c, _) = cache();
    put(&c, "dep", "d1", &tags(&["t"]));
    let lease = granted(&c, "k");
    c.invalidate_tag("t");
    assert_eq!(c.get("dep"), None);
    let r = c.fill(lease, s("from d1"), &deps(&["dep"]));
    assert_eq!(
        c.get("k"),
        None,
        "fill derived from an invalidated dependency is served"
    );
    assert_eq!(
        r.map_err(|e| e.reason),
        Err(RejectReason::InvalidatedSinceLease),
        "the caller is told the fill was not stored"
    );
}

/// The same race as `lease_closes_the_stale_fill_race_on_a_key`, with the invalidation arriving
/// as a prefix or a glob covering the (uncached) key.
#[test]
fn lease_fill_is_refused_after_a_pattern_invalidation_covering_the_key() {
    for index in [false, true] {
        for how in ["prefix", "glob"] {
            let (c, _, _) = setup(|b| if index { b.index_keys() } else { b });
            let lease = granted(&c, "user:1");
            match how {
                "prefix" => assert_eq!(c.invalidate_prefix("user:"), 0),
                _ => assert_eq!(c.invalidate_glob("user:?"), 0),
            }
            let r = c.fill(lease, s("stale"), &InsertOptions::new());
            assert!(
                r.is_err(),
                "index {index}, {how}: fill after an invalidation covering the key: {r:?}"
            );
            assert_eq!(c.get("user:1"), None, "index {index}, {how}");
        }
    }
}

#[test]
fn lease_timeout_grants_a_new_lease_and_refuses_the_old_fill() {
    let (c, clock, _) = setup(|b| b.lease_timeout(secs(5)));
    let first = granted(&c, "k");
    clock.advance(secs(4));
    assert!(matches!(c.lease(&s("k")), LeaseOutcome::Pending { .. }));
    clock.advance(secs(2));
    let second = granted(&c, "k");
    assert_ne!(first.token(), second.token());
    assert_eq!(
        c.fill(first, s("slow"), &InsertOptions::new()),
        rejected(RejectReason::LeaseInvalid, None)
    );
    assert_eq!(c.get("k"), None);
    c.fill(second, s("fast"), &InsertOptions::new()).unwrap();
    assert_eq!(c.get("k").as_deref(), Some("fast"));

    // A lease that timed out with no one else asking is refused as well.
    let lone = granted(&c, "z");
    clock.advance(secs(6));
    assert_eq!(
        c.fill(lone, s("late"), &InsertOptions::new())
            .map_err(|e| e.reason),
        Err(RejectReason::LeaseInvalid)
    );
    assert_eq!(c.get("z"), None);
}

#[test]
fn release_lets_the_next_caller_lease_at_once() {
    let (c, _) = cache();
    let l = granted(&c, "k");
    assert!(matches!(c.lease(&s("k")), LeaseOutcome::Pending { .. }));
    c.release(&l);
    let next = granted(&c, "k");
    // The released lease can no longer fill.
    assert_eq!(
        c.fill(l, s("x"), &InsertOptions::new())
            .map_err(|e| e.reason),
        Err(RejectReason::LeaseInvalid)
    );
    assert_eq!(
        c.fill(next, s("y"), &InsertOptions::new()),
        Ok(Inserted::New)
    );
    assert_eq!(c.get("k").as_deref(), Some("y"));
}

#[test]
fn a_used_lease_cannot_fill_twice() {
    let (c, _) = cache();
    let l = granted(&c, "k");
    c.fill(l.clone(), s("v1"), &InsertOptions::new()).unwrap();
    c.remove("k");
    assert!(c.fill(l, s("v0"), &InsertOptions::new()).is_err());
    assert_eq!(c.get("k"), None);
}

// =============================================================================================
// Subscribers

type Seen = Arc<Mutex<Vec<Applied<String>>>>;

fn subscribed(configure: impl FnOnce(B) -> B) -> (C, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let c = configure(
        Cache::builder()
            .max_capacity(10_000)
            .subscriber(move |a: &Applied<String>| sink.lock().unwrap().push(a.clone())),
    )
    .build();
    (c, seen)
}

#[test]
fn subscribers_hear_every_invalidation_in_sequence() {
    let (c, seen) = subscribed(|b| b);
    assert_eq!(c.last_seq(), 0);
    c.insert(s("key:1"), s("v"));
    c.insert(s("key:2"), s("v"));
    c.insert(s("key:3"), s("v"));
    put(&c, "tagged", "v", &tags(&["t"]));

    assert!(c.invalidate_key("key:1"));
    assert!(!c.invalidate_key("absent"));
    assert_eq!(c.invalidate_tag("t"), 3);
    assert_eq!(c.invalidate_prefix("key:"), 2);
    assert_eq!(c.invalidate_glob("x*"), 0);
    c.set_version_floor_prefix("p:", 5);
    c.set_version_floor_tag("f", 6).unwrap();
    assert_eq!(c.invalidate_tags(&["u", "w"]).unwrap(), 9);
    assert_eq!(c.invalidate(Invalidation::Tag(s("t2"))).unwrap().seq, 10);
    assert_eq!(c.invalidate(Invalidation::Key(s("k"))).unwrap().seq, 11);
    assert_eq!(
        c.invalidate(Invalidation::Prefix(b"q".to_vec())).unwrap(),
        Applied {
            seq: 12,
            invalidation: Invalidation::Prefix(b"q".to_vec()),
            removed: Some(0),
        }
    );
    assert!(c.invalidate(Invalidation::Tag(s("bad::tag"))).is_err());
    assert_eq!(c.last_seq(), 12);

    let seen = seen.lock().unwrap().clone();
    let seqs: Vec<u64> = seen.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    let what: Vec<(Invalidation<String>, Option<usize>)> = seen
        .into_iter()
        .map(|a| match a.invalidation {
            // A tag floor may remove eagerly (and count) or hide lazily (no count); nothing
            // was under `f` here either way.
            Invalidation::TagFloor(..) if a.removed == Some(0) => (a.invalidation, None),
            _ => (a.invalidation, a.removed),
        })
        .collect();
    assert_eq!(
        what,
        vec![
            (Invalidation::Key(s("key:1")), Some(1)),
            (Invalidation::Key(s("absent")), Some(0)),
            (Invalidation::Tag(s("t")), None),
            (Invalidation::Prefix(b"key:".to_vec()), Some(2)),
            (Invalidation::Glob(b"x*".to_vec()), Some(0)),
            (Invalidation::PrefixFloor(b"p:".to_vec(), 5), Some(0)),
            (Invalidation::TagFloor(s("f"), 6), None),
            (Invalidation::Tag(s("u")), None),
            (Invalidation::Tag(s("w")), None),
            (Invalidation::Tag(s("t2")), None),
            (Invalidation::Key(s("k")), Some(0)),
            (Invalidation::Prefix(b"q".to_vec()), Some(0)),
        ]
    );
}

#[test]
fn invalidate_applies_every_kind() {
    let (c, _) = subscribed(|b| b.index_keys());
    put(&c, "a", "v", &tags(&["t:1"]));
    put(&c, "b:1", "v", &InsertOptions::new());
    put(&c, "c:x", "v", &InsertOptions::new());
    put(&c, "d", "v", &InsertOptions::new().version(1));
    put(&c, "e", "v", &tags(&["f"]).version(1));
    put(&c, "k", "v", &InsertOptions::new());
    let all = ["a", "b:1", "c:x", "d", "e", "k"];
    let removed = |i: Invalidation<String>| c.invalidate(i).unwrap().removed;
    assert_eq!(removed(Invalidation::Tag(s("t"))), None);
    assert_eq!(removed(Invalidation::Prefix(b"b:".to_vec())), Some(1));
    assert_eq!(removed(Invalidation::Glob(b"c:?".to_vec())), Some(1));
    assert_eq!(
        removed(Invalidation::PrefixFloor(b"d".to_vec(), 2)),
        Some(1)
    );
    assert!(matches!(
        removed(Invalidation::TagFloor(s("f"), 2)),
        None | Some(1)
    ));
    assert_eq!(present(&c, &all), strs(&["k"]));
    let applied = c.invalidate(Invalidation::Key(s("k"))).unwrap();
    assert_eq!((applied.seq, applied.removed), (6, Some(1)));
    assert_eq!(c.get("k"), None);
    assert_eq!(c.last_seq(), 6);
}

#[test]
fn subscriber_sequence_is_contiguous_under_concurrent_invalidations() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 400;
    let log: Arc<Mutex<Vec<(u64, std::thread::ThreadId)>>> = Arc::default();
    let sink = log.clone();
    let c: C = Cache::builder()
        .max_capacity(10_000)
        .index_keys()
        .subscriber(move |a: &Applied<String>| {
            sink.lock()
                .unwrap()
                .push((a.seq, std::thread::current().id()));
        })
        .build();
    for i in 0..200 {
        put(
            &c,
            &format!("k{i}"),
            "v",
            &tags(&[&format!("t:{}", i % 10)]),
        );
    }
    let returned: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = c.clone();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..PER_THREAD {
                        match i % 4 {
                            0 => mine.push(c.invalidate_tag(&format!("t:{}", i % 10))),
                            1 => {
                                c.invalidate_key(format!("k{}", (t * 7 + i) % 200).as_str());
                            }
                            2 => {
                                c.invalidate_prefix(format!("k{}", i % 20));
                            }
                            _ => {
                                c.invalidate_glob(format!("k?{}", i % 10));
                            }
                        }
                        if i % 16 == 0 {
                            c.insert(format!("k{i}"), s("v"));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(c.last_seq(), total);
    let log = log.lock().unwrap().clone();
    // Delivered in order, one each: exactly 1, 2, 3, ...
    let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    // Each thread saw its own invalidations in increasing order.
    let mut by_thread: HashMap<std::thread::ThreadId, Vec<u64>> = HashMap::new();
    for (seq, t) in &log {
        by_thread.entry(*t).or_default().push(*seq);
    }
    assert_eq!(by_thread.len(), THREADS);
    for v in by_thread.values() {
        assert_eq!(v.len(), PER_THREAD);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
    }
    // The sequence numbers handed back to callers are increasing per thread and, together,
    // exactly the ones the subscriber heard for tags.
    let mut all = BTreeSet::new();
    for mine in &returned {
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        for s in mine {
            assert!(all.insert(*s), "sequence number {s} handed out twice");
        }
    }
    assert_eq!(all.len(), THREADS * PER_THREAD / 4);
    assert!(all.iter().all(|s| (1..=total).contains(s)));
}

#[test]
fn subscriber_may_read_the_cache_and_sees_the_invalidation_applied() {
    let slot: Arc<Mutex<Option<C>>> = Arc::default();
    let observed: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let (s2, o2) = (slot.clone(), observed.clone());
    let c: C = Cache::builder()
        .max_capacity(100)
        .subscriber(move |_: &Applied<String>| {
            if let Some(c) = s2.lock().unwrap().as_ref() {
                o2.lock().unwrap().push(c.get("k"));
            }
        })
        .build();
    *slot.lock().unwrap() = Some(c.clone());
    put(&c, "k", "v", &tags(&["t"]));
    c.invalidate_tag("t");
    put(&c, "k", "v", &InsertOptions::new());
    c.invalidate_key("k");
    assert_eq!(*observed.lock().unwrap(), vec![None, None]);
    slot.lock().unwrap().take();
}

// =============================================================================================
// Stale reads

#[test]
fn get_stale_serves_expired_entries_within_their_grace_only() {
    let (c, clock, _) = setup(|b| b);
    put(
        &c,
        "k",
        "v",
        &InsertOptions::new().ttl(secs(10)).retain_stale(secs(5)),
    );
    let fresh = c.get_stale("k").unwrap();
    assert_eq!(fresh.value, "v");
    assert_eq!(fresh.metadata.expired_for, None);
    clock.advance(secs(12));
    assert_eq!(c.get("k"), None);
    let stale = c.get_stale("k").unwrap();
    assert_eq!(stale.value, "v");
    assert_eq!(stale.metadata.expired_for, Some(secs(2)));
    // A write elsewhere does not reclaim it while in grace.
    c.insert(s("other"), s("x"));
    c.run_pending_tasks();
    assert!(c.get_stale("k").is_some());
    clock.advance(secs(3));
    assert_eq!(c.get_stale("k"), None, "past the grace");
    // Without a grace, nothing is kept.
    put(&c, "n", "v", &InsertOptions::new().ttl(secs(1)));
    clock.advance(secs(2));
    assert_eq!(c.get_stale("n"), None);
}

#[test]
fn get_stale_never_returns_an_invalidated_entry() {
    let (c, clock, _) = setup(|b| b);
    let opts = tags(&["t"]).ttl(secs(10)).retain_stale(secs(60));
    put(&c, "live", "v", &opts);
    put(&c, "expired", "v", &opts);
    put(
        &c,
        "keyed",
        "v",
        &InsertOptions::new().ttl(secs(10)).retain_stale(secs(60)),
    );
    clock.advance(secs(5));
    c.invalidate_tag("t");
    assert_eq!(c.get_stale("live"), None, "tag-invalidated, not expired");
    clock.advance(secs(10));
    assert_eq!(c.get_stale("expired"), None, "tag-invalidated and expired");
    assert!(c.get_stale("keyed").is_some());
    c.invalidate_key("keyed");
    assert_eq!(c.get_stale("keyed"), None);
    // Nor one below a tag floor.
    put(
        &c,
        "floored",
        "v",
        &tags(&["f"]).version(1).ttl(secs(1)).retain_stale(secs(60)),
    );
    clock.advance(secs(2));
    assert!(c.get_stale("floored").is_some());
    c.set_version_floor_tag("f", 2).unwrap();
    assert_eq!(c.get_stale("floored"), None);
}

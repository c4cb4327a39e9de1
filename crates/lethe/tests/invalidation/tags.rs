//! Invalidation tests: tags.

use super::common::*;
use lethe::{Cache, ErrorKind, InsertOptions, RemovalCause, version::RejectReason};

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

#[test]
fn hidden_keys_of_a_tag_are_listed_until_reclaimed_then_heard_by_the_listener() {
    let (c, log) = cache();
    put(&c, "a", "v", &tags(&["team:1"]));
    put(&c, "b", "v", &tags(&["team:1:members"]));
    put(&c, "other", "v", &tags(&["team:2"]));
    put(&c, "plain", "v", &InsertOptions::new());
    // Nothing is hidden before the invalidation.
    assert!(c.keys_hidden_by_tag("team:1").is_empty());

    c.invalidate_tag("team:1");
    assert_eq!(sorted(c.keys_hidden_by_tag("team:1")), strs(&["a", "b"]));
    assert!(c.keys_hidden_by_tag("team:2").is_empty());
    assert!(c.keys_with_tag("team:1").is_empty());

    // Once reclaimed, the entries are no longer listed: the listener heard them instead.
    c.run_pending_tasks();
    assert!(c.keys_hidden_by_tag("team:1").is_empty());
    let heard: Vec<String> = drain(&log)
        .into_iter()
        .filter(|(_, _, cause)| *cause == RemovalCause::Tag)
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(sorted(heard), strs(&["a", "b"]));
}

#[test]
fn bulk_reclamation_in_bounded_batches_reports_every_removal_once_with_its_cause() {
    let (c, _, log) = setup(|b| b.max_capacity(100_000).shards(4));
    // Far more entries per shard than one batch of `run_pending_tasks` reclaims, some in
    // sets of their own, some depending on a tagged entry (so they carry its tag inherited).
    for i in 0..20_000 {
        put(
            &c,
            &format!("t{i}"),
            "v",
            &tags(&["bulk", &format!("own:{}", i % 7)]),
        );
    }
    for i in 0..2_000 {
        put(&c, &format!("d{i}"), "v", &deps(&[&format!("t{i}")]));
    }
    for i in 0..500 {
        put(&c, &format!("u{i}"), "v", &tags(&["unrelated"]));
    }
    assert_eq!(c.len(), 22_500);
    drain(&log);
    c.invalidate_tag("bulk");
    c.run_pending_tasks();
    assert_eq!(c.len(), 500, "every hidden entry is reclaimed in one call");
    let heard = causes(&log);
    assert_eq!(heard.len(), 22_000);
    for i in 0..20_000 {
        assert_eq!(
            heard.get(&format!("t{i}")),
            Some(&RemovalCause::Tag),
            "t{i}"
        );
    }
    for i in 0..2_000 {
        assert_eq!(
            heard.get(&format!("d{i}")),
            Some(&RemovalCause::Dependency),
            "d{i}"
        );
    }
    let stats = c.stats();
    assert_eq!(stats.removals.get(RemovalCause::Tag), 20_000);
    assert_eq!(stats.removals.get(RemovalCause::Dependency), 2_000);
    c.run_pending_tasks();
    assert!(drain(&log).is_empty(), "nothing reported twice");
    assert_eq!(c.keys_with_tag("unrelated").len(), 500);
}

#[test]
fn each_write_reclaims_a_bounded_batch_until_nothing_is_left() {
    let (c, _, log) = setup(|b| b.shards(1));
    for i in 0..1_000 {
        put(&c, &format!("t{i}"), "v", &tags(&["t"]));
    }
    c.invalidate_tag("t");
    let mut len = c.len();
    let mut writes = 0;
    while len > writes {
        c.insert(format!("w{writes}"), s("v"));
        writes += 1;
        let now = c.len();
        // One new entry, at most one write's batch (32) reclaimed.
        assert!(
            now + 32 > len,
            "a write reclaimed {} entries",
            len + 1 - now
        );
        assert!(now <= len, "a write reclaimed nothing with work queued");
        len = now;
        assert!(writes <= 1_000, "reclamation by writes does not finish");
    }
    assert_eq!(c.len(), writes);
    let heard = causes(&log);
    assert_eq!(
        heard.values().filter(|c| **c == RemovalCause::Tag).count(),
        1_000
    );
}

#[test]
fn rewriting_a_key_with_the_same_tags_keeps_one_membership() {
    let (c, log) = cache();
    for v in 0..100 {
        put(&c, "k", &v.to_string(), &tags(&["a", "b:c"]));
        put(&c, "other", &v.to_string(), &tags(&["a", "b:c"]));
    }
    assert_eq!(sorted(c.keys_with_tag("b")), strs(&["k", "other"]));
    assert_eq!(c.tags_of("k"), Some(vec![s("a"), s("b:c")]));
    assert_eq!(drain(&log).len(), 198, "99 replacements of each key");
    // Moving to other tags leaves the old ones.
    put(&c, "other", "moved", &tags(&["z"]));
    assert_eq!(c.keys_with_tag("a"), vec![s("k")]);
    c.invalidate_tag("b");
    assert_eq!(c.get("k"), None);
    assert_eq!(c.get("other").as_deref(), Some("moved"));
    c.run_pending_tasks();
    let heard = drain(&log);
    assert_eq!(
        heard,
        vec![
            (s("other"), s("99"), RemovalCause::Replaced),
            (s("k"), s("99"), RemovalCause::Tag)
        ]
    );
    assert_eq!(c.len(), 1);
}

#[test]
fn slots_freed_by_bulk_reclamation_are_reused_intact() {
    // Bulk reclamation grows each shard's list of free slots outside the lock and moves it in;
    // every freed slot must come back exactly once, round after round.
    let cache: Cache<u32, u32> = Cache::builder().max_capacity(100_000).build();
    let tagged = InsertOptions::new().tag("batch");
    for round in 0..3u32 {
        for k in 0..20_000u32 {
            cache
                .try_insert(k, k ^ round, &tagged)
                .expect("a tagged write is stored");
        }
        for k in 20_000..20_100u32 {
            cache.insert(k, k);
        }
        cache.run_pending_tasks();
        assert_eq!(cache.len(), 20_100, "round {round}");
        cache.invalidate_tag("batch");
        cache.run_pending_tasks();
        assert_eq!(
            cache.len(),
            100,
            "round {round}: the tagged entries reclaimed"
        );
        assert!((0..20_000u32).all(|k| cache.get(&k).is_none()));
        assert!((20_000..20_100u32).all(|k| cache.get(&k) == Some(k)));
    }
    // Every slot freed above is handed out once: distinct keys keep distinct values.
    for k in 0..30_000u32 {
        cache.insert(k, k.wrapping_mul(7));
    }
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 30_000);
    assert!((0..30_000u32).all(|k| cache.get(&k) == Some(k.wrapping_mul(7))));
}

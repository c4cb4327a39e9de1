//! Invalidation tests: versions.

use super::common::*;
use lethe::{
    InsertOptions, RemovalCause, clock::Timestamp, version::Conditional, version::ETag,
    version::Inserted, version::RejectReason, version::WriteCondition,
};

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

//! Invalidation tests: leases.

use super::common::*;
use lethe::{InsertOptions, lease::LeaseOutcome, version::Inserted, version::RejectReason};
use std::time::Duration;

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

#[test]
fn lease_tokens_are_random_and_a_guessed_token_fills_nothing() {
    let (c, _) = cache();
    let mut tokens = Vec::new();
    for i in 0..64 {
        let l = granted(&c, &format!("k{i}"));
        assert!(l.token() >= 1 && l.token() <= i64::MAX as u64);
        tokens.push(l.token());
        c.release(&l);
    }
    // Sequential tokens would differ by small steps; random ones are spread over 63 bits.
    let mut sorted = tokens.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), tokens.len(), "tokens repeat");
    let close = tokens
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) < 1 << 32)
        .count();
    assert!(close < 4, "tokens look sequential: {tokens:?}");
    // A fill is matched by its token: another key's lease, or the same key's earlier one,
    // fills nothing (the server hands out tokens and matches them back to leases this way).
    let l = granted(&c, "x");
    c.release(&l);
    let l2 = granted(&c, "x");
    assert_ne!(l.token(), l2.token());
    assert_eq!(
        c.fill(l, s("old"), &InsertOptions::new())
            .unwrap_err()
            .reason,
        RejectReason::LeaseInvalid
    );
    assert_eq!(c.fill(l2, s("v"), &InsertOptions::new()), Ok(Inserted::New));
}

#[test]
fn a_fence_refuses_older_versions_for_its_hold_time_and_only_those() {
    let (c, clock, _) = setup(|b| b);
    // A reader leased and read version 1; the row moved to version 2 and its invalidation
    // came with a fence at 2 before the reader filled.
    c.insert_with_options(s("item:1"), s("v1"), &InsertOptions::new().version(1));
    c.fence(&s("item:1"), 2, Duration::from_millis(300));
    assert_eq!(
        c.get("item:1"),
        None,
        "the entry below the fence is removed"
    );
    let l = granted(&c, "item:1");
    let refused = c
        .fill(l, s("v1"), &InsertOptions::new().version(1))
        .unwrap_err();
    assert_eq!(refused.reason, RejectReason::Fenced);
    // Versioned writes are judged alike; the fence's own version and newer ones pass.
    let older = c.try_insert(s("item:1"), s("v1"), &InsertOptions::new().version(1));
    assert_eq!(older.unwrap_err().reason, RejectReason::Fenced);
    let l = granted(&c, "item:1");
    assert!(c.fill(l, s("v2"), &InsertOptions::new().version(2)).is_ok());
    assert!(
        c.insert_if_newer(s("item:1"), s("v3"), 3).is_ok(),
        "newer versions pass"
    );
    // Writes without a version are not judged by fences (leases cover those).
    c.insert(s("item:1"), s("unversioned"));
    // Other keys are not fenced.
    c.insert_with_options(s("item:2"), s("v1"), &InsertOptions::new().version(1));
    assert_eq!(c.get("item:2").as_deref(), Some("v1"));
    let stats = c.stats();
    assert_eq!(stats.writes_fenced, 2);
    // Fences lapse after their hold time; they only ever rise while they last.
    c.fence(&s("item:3"), 5, Duration::from_millis(50));
    c.fence(&s("item:3"), 4, Duration::from_millis(50));
    let below = c.try_insert(s("item:3"), s("v"), &InsertOptions::new().version(4));
    assert_eq!(below.unwrap_err().reason, RejectReason::Fenced);
    clock.advance(Duration::from_millis(80));
    assert!(
        c.try_insert(s("item:3"), s("v"), &InsertOptions::new().version(4))
            .is_ok()
    );
}

//! Invalidation tests: stale reads.

use super::common::*;
use lethe::InsertOptions;

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

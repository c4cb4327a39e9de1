//! The per-key history: what each kind of change records, what it matched, who asked, and
//! `why` for a cached key.

use lethe::history::{Happened, HistoryConfig, Matched, Origin, Record};
use lethe::{
    Cache, InsertOptions, Invalidation, RemovalCause, clock::ManualClock, clock::Timestamp,
    expiry::ExpireCondition,
};
use std::sync::Arc;
use std::time::Duration;

const START: u64 = 1_700_000_000_000_000_000;

fn cache(capacity: u64) -> (Cache<String, String>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let cache = Cache::builder()
        .max_capacity(capacity)
        .clock(clock.clone())
        .index_keys()
        .history(HistoryConfig::default())
        .build();
    (cache, clock)
}

fn removal(records: &[Record<String>]) -> &Record<String> {
    records
        .iter()
        .find(|r| matches!(r.happened, Happened::Removed(_)))
        .expect("a removal was recorded")
}

#[test]
fn a_write_records_its_version_tags_and_origin() {
    let (cache, _) = cache(100);
    let client = Arc::new(Origin::client("id=7 addr=127.0.0.1:5000"));
    cache.insert_with_options(
        "user:1".into(),
        "Ada".into(),
        &InsertOptions::new()
            .tag("user:1")
            .version(5)
            .origin(client.clone()),
    );
    let h = cache.history(&"user:1".to_string());
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].happened, Happened::Written);
    assert_eq!(h[0].version, Some(5));
    assert_eq!(h[0].tags(), ["user:1".to_string()]);
    assert_eq!(h[0].origin.as_deref(), Some(&*client));
    assert_eq!(h[0].at, Timestamp(START));
}

#[test]
fn a_tag_removal_names_the_tag_its_time_and_origin_not_the_reclaiming_writer() {
    let (cache, clock) = cache(100);
    cache.insert_with_options(
        "a".into(),
        "1".into(),
        &InsertOptions::new().tag("user:42:profile"),
    );
    clock.advance(Duration::from_secs(1));
    let rule = Arc::new(
        Origin::default()
            .with_rule("users")
            .with_change("lsn 0/10 table users"),
    );
    cache
        .invalidate_from(Invalidation::Tag("user:42".into()), rule.clone())
        .unwrap();
    let invalidated_at = Timestamp(START + 1_000_000_000);
    clock.advance(Duration::from_secs(1));
    // Reclaimed later, during another client's write.
    let writer = Arc::new(Origin::client("someone else"));
    cache.insert_with_options("b".into(), "2".into(), &InsertOptions::new().origin(writer));
    cache.run_pending_tasks();
    let h = cache.history(&"a".to_string());
    let r = removal(&h);
    assert_eq!(r.happened, Happened::Removed(RemovalCause::Tag));
    assert_eq!(r.matched(), Some(&Matched::Tag("user:42".into())));
    assert_eq!(r.at, invalidated_at);
    assert_eq!(r.origin.as_deref(), Some(&*rule));
    // Newest first: the removal, then the write.
    assert_eq!(h[0].happened, Happened::Removed(RemovalCause::Tag));
    assert_eq!(h[1].happened, Happened::Written);
}

#[test]
fn a_cascade_names_the_dependency_and_carries_the_root_origin() {
    let (cache, _) = cache(100);
    cache.insert("profile:1".into(), "Ada".into());
    cache.insert_with_options(
        "page:1".into(),
        "<h1>Ada</h1>".into(),
        &InsertOptions::new().depends_on("profile:1".into()),
    );
    cache.insert_with_options(
        "feed:1".into(),
        "[page]".into(),
        &InsertOptions::new().depends_on("page:1".into()),
    );
    let admin = Arc::new(Origin::client("http 127.0.0.1:1"));
    cache
        .invalidate_from(Invalidation::Key("profile:1".into()), admin.clone())
        .unwrap();
    let root = cache.history(&"profile:1".to_string());
    assert_eq!(
        removal(&root).happened,
        Happened::Removed(RemovalCause::Explicit)
    );
    assert_eq!(removal(&root).origin.as_deref(), Some(&*admin));
    let page = cache.history(&"page:1".to_string());
    assert_eq!(
        removal(&page).happened,
        Happened::Removed(RemovalCause::Dependency)
    );
    assert_eq!(
        removal(&page).matched(),
        Some(&Matched::Dependency("profile:1".into()))
    );
    assert_eq!(removal(&page).origin.as_deref(), Some(&*admin));
    let feed = cache.history(&"feed:1".to_string());
    assert_eq!(
        removal(&feed).matched(),
        Some(&Matched::Dependency("page:1".into()))
    );
}

#[test]
fn patterns_and_floors_name_what_they_matched() {
    let (cache, _) = cache(100);
    cache.insert("user:1".into(), "a".into());
    cache.insert("user:2".into(), "b".into());
    cache.insert_with_options(
        "order:1".into(),
        "c".into(),
        &InsertOptions::new().version(3),
    );
    cache.invalidate_prefix("user:");
    cache.invalidate_glob("user:?");
    cache.set_version_floor_prefix("order:", 10);
    let user = cache.history(&"user:1".to_string());
    assert_eq!(
        removal(&user).happened,
        Happened::Removed(RemovalCause::Pattern)
    );
    assert_eq!(
        removal(&user).matched(),
        Some(&Matched::Pattern(b"user:*".to_vec()))
    );
    let order = cache.history(&"order:1".to_string());
    assert_eq!(
        removal(&order).happened,
        Happened::Removed(RemovalCause::Stale)
    );
    assert_eq!(
        removal(&order).matched(),
        Some(&Matched::Floor {
            on: "order:*".into(),
            version: 10
        })
    );
}

#[test]
fn expiry_eviction_and_in_place_changes_are_recorded() {
    let (cache, clock) = cache(4);
    cache.insert("t".into(), "x".into());
    assert!(cache.expire(
        &"t".to_string(),
        Duration::from_secs(1),
        ExpireCondition::Always
    ));
    clock.advance(Duration::from_secs(2));
    cache.run_pending_tasks();
    let t = cache.history(&"t".to_string());
    assert_eq!(
        removal(&t).happened,
        Happened::Removed(RemovalCause::Expired)
    );
    assert!(removal(&t).origin.is_none());

    cache.compute("n".to_string(), |e| {
        e.insert("1".into()).unwrap();
    });
    cache.compute("n".to_string(), |e| {
        e.get_mut().unwrap().push('0');
    });
    let n = cache.history(&"n".to_string());
    assert_eq!(n[0].happened, Happened::Modified);
    assert_eq!(n[1].happened, Happened::Written);

    for i in 0..200 {
        cache.insert(format!("k{i}"), "v".into());
    }
    cache.run_pending_tasks();
    let evicted = (0..200).any(|i| {
        cache
            .history(&format!("k{i}"))
            .iter()
            .any(|r| r.happened == Happened::Removed(RemovalCause::Evicted))
    });
    assert!(evicted, "a capacity of 4 evicted none of 200 keys");
}

#[test]
fn why_tells_what_keeps_a_cached_key() {
    let (cache, _) = cache(100);
    cache.insert("dep".into(), "d".into());
    cache.insert_with_options(
        "k".into(),
        "v".into(),
        &InsertOptions::new()
            .tag("t:1")
            .version(9)
            .ttl(Duration::from_secs(60))
            .depends_on("dep".into()),
    );
    let why = cache.why(&"k".to_string());
    assert!(why.cached);
    assert_eq!(why.tags, vec!["t:1".to_string()]);
    assert_eq!(why.dependencies, vec!["dep".to_string()]);
    assert_eq!(why.version, Some(9));
    assert_eq!(why.ttl, Some(Duration::from_secs(60)));
    assert_eq!(why.history.len(), 1);
    cache.invalidate_tag("t");
    // Hidden, not yet reclaimed (no write since): `why` still says which tag took it.
    let why = cache.why(&"k".to_string());
    assert!(!why.cached);
    assert!(why.tags.is_empty());
    assert_eq!(why.history.len(), 2);
    assert_eq!(
        why.history[0].happened,
        Happened::Removed(RemovalCause::Tag)
    );
    assert_eq!(why.history[0].matched(), Some(&Matched::Tag("t".into())));
    assert_eq!(cache.stats().removals.get(RemovalCause::Tag), 1);
}

#[test]
fn why_of_an_expired_key_shows_the_expiry_but_a_stale_grace_keeps_the_entry() {
    let (cache, clock) = cache(100);
    let opts = InsertOptions::new().ttl(Duration::from_secs(10));
    cache.insert_with_options("short".into(), "1".into(), &opts);
    cache.insert_with_options(
        "graced".into(),
        "2".into(),
        &opts.clone().retain_stale(Duration::from_secs(60)),
    );
    clock.advance(Duration::from_secs(20));
    let short = "short".to_string();
    let h = cache.history(&short);
    assert_eq!(h[0].happened, Happened::Written, "history only reads");
    let h = cache.why(&short).history;
    assert_eq!(h[0].happened, Happened::Removed(RemovalCause::Expired));
    let h = cache.why(&"graced".to_string()).history;
    assert_eq!(
        h[0].happened,
        Happened::Written,
        "within its grace: still stored"
    );
    assert_eq!(
        cache
            .get_stale(&"graced".to_string())
            .map(|l| l.value)
            .as_deref(),
        Some("2")
    );
}

#[test]
fn key_lock_writes_carry_its_origin_and_history_off_keeps_nothing() {
    let (cache, _) = cache(100);
    let origin = Arc::new(Origin::client("id=1"));
    {
        let keys = ["a".to_string(), "b".to_string()];
        let mut lock = cache.lock(keys.iter());
        lock.set_origin(origin.clone());
        lock.insert("a".into(), "1".into(), &InsertOptions::new())
            .unwrap();
        lock.delete(&"b".to_string());
        lock.insert("b".into(), "2".into(), &InsertOptions::new())
            .unwrap();
        lock.delete(&"b".to_string());
    }
    assert_eq!(
        cache.history(&"a".to_string())[0].origin.as_deref(),
        Some(&*origin)
    );
    let b = cache.history(&"b".to_string());
    assert_eq!(b[0].happened, Happened::Removed(RemovalCause::Explicit));
    assert_eq!(b[0].origin.as_deref(), Some(&*origin));

    let plain: Cache<String, String> = Cache::new(100);
    plain.insert("a".into(), "1".into());
    assert!(plain.history(&"a".to_string()).is_empty());
    assert!(plain.history_stats().is_none());
    let stats = cache.history_stats().unwrap();
    assert_eq!(stats.keys, 2);
    assert!(stats.bytes > 0 && stats.bytes <= stats.budget);
}

#[test]
fn a_dependent_hidden_through_an_inherited_tag_names_the_tag_and_its_origin() {
    let (cache, _) = cache(100);
    cache.insert_with_options(
        "profile".into(),
        "Ada".into(),
        &InsertOptions::new().tag("user:42"),
    );
    cache.insert_with_options(
        "page".into(),
        "<h1>Ada</h1>".into(),
        &InsertOptions::new().depends_on("profile".into()),
    );
    let admin = Arc::new(Origin::client("admin"));
    cache
        .invalidate_from(Invalidation::Tag("user:42".into()), admin.clone())
        .unwrap();
    // Reclaimed during someone else's write.
    let other = Arc::new(Origin::client("other"));
    cache.insert_with_options("x".into(), "y".into(), &InsertOptions::new().origin(other));
    cache.run_pending_tasks();
    let page = cache.history(&"page".to_string());
    let r = removal(&page);
    assert_eq!(r.happened, Happened::Removed(RemovalCause::Dependency));
    assert_eq!(r.matched(), Some(&Matched::Tag("user:42".into())));
    assert_eq!(r.origin.as_deref(), Some(&*admin));
}

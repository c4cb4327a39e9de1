//! A tour of the embedded engine: bounded storage, TTL strategies, the invalidation model
//! (tags, patterns, dependencies, versions, leases, rules), removal causes, stats.
//!
//! Run with `cargo run --release -p lethe --example embedded`.

use lethe::{
    Cache, InsertOptions, RemovalCause, expiry::AdaptiveTtl, expiry::EarlyRefresh,
    expiry::ExpireCondition, expiry::Ttl, lease::LeaseOutcome,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let evicted = Arc::new(AtomicU64::new(0));
    let counter = evicted.clone();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(600))
        .jitter(0.1)
        .removal_listener(move |_: &String, _: &String, cause: RemovalCause| {
            if cause == RemovalCause::Evicted {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build();

    // Write well past capacity with a skewed read pattern: the hot keys stay.
    let start = Instant::now();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..500_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let hot = format!("product:{}", rng % 1_000);
        if cache.get(&hot).is_none() {
            cache.insert(hot, format!("row {i}"));
        }
        cache.insert(format!("scan:{i}"), "once".into());
    }
    let elapsed = start.elapsed();
    let hot_present = (0..1_000)
        .filter(|k| cache.contains(&format!("product:{k}")))
        .count();
    println!(
        "1,000,000 operations in {elapsed:?}; {} entries (capacity 100,000)",
        cache.len()
    );
    println!("hot keys still cached after a 500,000-key scan: {hot_present} of 1000");
    println!("evicted: {}", evicted.load(Ordering::Relaxed));

    // Per-entry expiry choices.
    cache.insert_with_options(
        "session:1".into(),
        "token".into(),
        &InsertOptions::new().idle(Duration::from_secs(30)),
    );
    let adaptive = AdaptiveTtl::new(
        Duration::from_secs(60),
        Duration::from_secs(5),
        Duration::from_secs(3600),
    );
    cache.insert_with_options(
        "user:42".into(),
        "Ada".into(),
        &InsertOptions::new().expiry(Ttl::Adaptive(adaptive)),
    );
    for _ in 0..100 {
        cache.get("user:42");
    }
    let meta = cache
        .get_with_metadata("user:42")
        .expect("present")
        .metadata;
    println!(
        "adaptive TTL of a key read 100 times: {:?} (base 60s)",
        meta.remaining().unwrap()
    );
    cache.insert_with_options(
        "report".into(),
        "slow to build".into(),
        &InsertOptions::new()
            .ttl(Duration::from_secs(10))
            .early_refresh(EarlyRefresh::new(1.0, Duration::from_secs(2))),
    );
    let hints = (0..1000)
        .filter(|_| {
            cache
                .get_with_metadata("report")
                .is_some_and(|l| l.metadata.refresh)
        })
        .count();
    println!(
        "early refresh hints in 1000 reads ~10s before expiry (delta 2s, expect ~1%): {hints}"
    );
    println!(
        "EXPIRE user:42 5 GT applied: {}",
        cache.expire("user:42", Duration::from_secs(5), ExpireCondition::Gt)
    );
    println!(
        "TTL session:1 = {}",
        cache.ttl("session:1").as_redis_seconds()
    );
    println!("TTL missing = {}", cache.ttl("missing").as_redis_seconds());
    let s = cache.stats();
    println!(
        "stats: hits {} misses {} hit ratio {:.3} inserts {} updates {} evicted {}",
        s.hits,
        s.misses,
        s.hit_ratio(),
        s.inserts,
        s.updates,
        s.removals.get(RemovalCause::Evicted)
    );

    invalidation_tour();
}

fn invalidation_tour() {
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(2_000_000)
        .index_keys()
        .build();

    // One tag on a million entries, invalidated in O(1).
    for i in 0..1_000_000u32 {
        let tag = format!("tenant:{}", i % 2);
        cache.insert_with_options(
            format!("row:{i}"),
            "v".into(),
            &InsertOptions::new().tag(tag),
        );
    }
    let start = Instant::now();
    cache.invalidate_tag("tenant:0");
    let call = start.elapsed();
    let hidden = (0..1000u32)
        .filter(|i| cache.get(&format!("row:{}", i * 2)).is_none())
        .count();
    let start = Instant::now();
    cache.run_pending_tasks();
    println!(
        "invalidate_tag on 500,000 entries: {call:?} (then {hidden} of 1000 sampled reads miss); reclaimed in {:?}, {} entries left",
        start.elapsed(),
        cache.len()
    );

    // Prefix and glob, through the ordered key index.
    for i in 0..1000 {
        cache.insert(format!("session:{i}:token"), "t".into());
    }
    let start = Instant::now();
    let n = cache.invalidate_glob("session:1?:token");
    println!(
        "invalidate_glob session:1?:token removed {n} in {:?}",
        start.elapsed()
    );

    // A dependency cascade.
    cache.insert("org:7".into(), "Acme".into());
    for i in 0..10_000 {
        cache.insert_with_options(
            format!("member:{i}"),
            "m".into(),
            &InsertOptions::new().depends_on("org:7".into()),
        );
    }
    let start = Instant::now();
    cache.insert("org:7".into(), "Acme Inc.".into()); // replacing a dependency cascades
    println!(
        "replacing org:7 invalidated its 10,000 dependents in {:?} (member:0 cached: {})",
        start.elapsed(),
        cache.contains("member:0")
    );

    // Versions: an out-of-order write loses.
    cache
        .insert_if_newer("price:1".into(), "10".into(), 5)
        .unwrap();
    let late = cache.insert_if_newer("price:1".into(), "9".into(), 4);
    println!("insert_if_newer with an older version: {late:?}");

    // A lease closes the "invalidation before fill" race.
    if let LeaseOutcome::Granted(lease) = cache.lease(&"user:7".to_string()) {
        cache.invalidate_key("user:7"); // the row changed while we read it
        let fill = cache.fill(lease, "old row".into(), &InsertOptions::new());
        println!(
            "fill after an invalidation: {:?}; cached: {:?}",
            fill.map_err(|r| r.reason),
            cache.get("user:7")
        );
    }
    // Rules turn a change event into invalidations.
    let rules = lethe::rules::RuleSet::from_toml(
        r#"
[[rule]]
name = "user changed"
entity = "users"
operations = ["update", "delete"]
tags = ["user:{id}"]
keys = ["profile:{id}"]
"#,
    )
    .expect("valid rules");
    cache.insert_with_options(
        "feed:9".into(),
        "...".into(),
        &InsertOptions::new().tag("user:9:feed"),
    );
    cache.insert("profile:9".into(), "Grace".into());
    let event = lethe::event::Event::new("users", lethe::event::Operation::Update)
        .id("9")
        .with_old("name", "Grace")
        .with_new("name", "Grace Hopper");
    let (applied, _) = cache.apply_event(&rules, &event);
    println!(
        "event users/9 update applied {} invalidations (seq {:?}); feed:9 cached: {}, profile:9 cached: {}",
        applied.len(),
        applied.iter().map(|a| a.seq).collect::<Vec<_>>(),
        cache.contains("feed:9"),
        cache.contains("profile:9")
    );
    let s = cache.stats();
    println!(
        "removals: tag {} pattern {} dependency {} replaced {}",
        s.removals.get(RemovalCause::Tag),
        s.removals.get(RemovalCause::Pattern),
        s.removals.get(RemovalCause::Dependency),
        s.removals.get(RemovalCause::Replaced)
    );
}

//! The public API: builder validation, weights, borrowed lookups, iteration, statistics,
//! metadata, trait bounds and the eviction policy's scan resistance.

use lethe::{
    Cache, CacheBuilder, ErrorKind, InsertOptions, RemovalCause, clock::ManualClock,
    clock::Timestamp, expiry::AdaptiveTtl, expiry::EarlyRefresh, expiry::ExpiryPolicy, expiry::Ttl,
    weigher::ByteWeigher,
};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START: u64 = 1_700_000_000_000_000_000;

type Log<K, V> = Arc<Mutex<Vec<(K, V, RemovalCause)>>>;

fn listened<K, V>(builder: CacheBuilder<K, V>) -> (Cache<K, V>, Log<K, V>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let log: Log<K, V> = Arc::default();
    let sink = log.clone();
    let cache = builder
        .removal_listener(move |k: &K, v: &V, c: RemovalCause| {
            sink.lock().unwrap().push((k.clone(), v.clone(), c));
        })
        .build();
    (cache, log)
}

fn drain<K, V>(log: &Log<K, V>) -> Vec<(K, V, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Builder validation

fn invalid(builder: CacheBuilder<u32, u32>, names: &[&str]) {
    let e = builder
        .try_build()
        .expect_err("configuration must be rejected");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    for n in names {
        assert!(
            e.message().contains(n),
            "message {:?} should name {n:?}",
            e.message()
        );
    }
    let shown = e.to_string();
    assert!(shown.starts_with("invalid configuration"), "{shown}");
    assert!(shown.contains(e.message()));
    // It is a std error.
    let _: &dyn std::error::Error = &e;
}

#[test]
fn builder_rejects_invalid_settings_with_a_named_reason() {
    invalid(Cache::builder(), &["capacity"]);
    invalid(
        Cache::builder().time_to_live(Duration::from_secs(1)),
        &["capacity"],
    );
    for j in [1.0, 1.5, -0.1, f64::NAN, f64::INFINITY] {
        invalid(Cache::builder().max_capacity(10).jitter(j), &["jitter"]);
    }
    for n in [0, 3, 6, 100, 1 << 17] {
        invalid(Cache::builder().max_capacity(10).shards(n), &["shards"]);
    }
    invalid(
        Cache::builder()
            .max_capacity(10)
            .weigher(|_: &u32, _: &u32| 1),
        &["weigher", "max_weight"],
    );
    // Order does not matter: the last capacity call decides.
    invalid(
        Cache::builder()
            .weigher(|_: &u32, _: &u32| 1)
            .max_weight(10)
            .max_capacity(10),
        &["weigher"],
    );
    let backwards = AdaptiveTtl::new(
        Duration::from_secs(10),
        Duration::from_secs(60),
        Duration::from_secs(1),
    );
    invalid(
        Cache::builder().max_capacity(10).expiry(ExpiryPolicy {
            ttl: Ttl::Adaptive(backwards),
            ..ExpiryPolicy::default()
        }),
        &["adaptive", "min"],
    );
    for beta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        invalid(
            Cache::builder()
                .max_capacity(10)
                .early_refresh(EarlyRefresh::new(beta, Duration::from_secs(1))),
            &["beta"],
        );
    }
}

#[test]
fn builder_accepts_edge_values() {
    for j in [0.0, 0.5, 0.999] {
        assert!(
            Cache::<u32, u32>::builder()
                .max_capacity(10)
                .jitter(j)
                .try_build()
                .is_ok()
        );
    }
    for n in [1, 2, 64, 1024] {
        let c = Cache::<u32, u32>::builder()
            .max_capacity(10)
            .shards(n)
            .try_build()
            .unwrap();
        assert_eq!(c.capacity(), 10);
    }
    assert!(
        Cache::<u32, u32>::builder()
            .max_weight(10)
            .weigher(|_: &u32, v: &u32| *v)
            .try_build()
            .is_ok()
    );
    // A weighted cache without a weigher weighs every entry 1.
    let c = Cache::<u32, u32>::builder().max_weight(5).shards(1).build();
    for k in 0..50 {
        c.insert(k, k);
    }
    assert!(c.weighted_size() <= 5);
    assert_eq!(c.weighted_size(), c.len() as u64);
}

#[test]
#[should_panic(expected = "jitter")]
fn build_panics_on_invalid_configuration() {
    let _ = Cache::<u32, u32>::builder()
        .max_capacity(10)
        .jitter(2.0)
        .build();
}

// ---------------------------------------------------------------------------------------------
// Weights

#[test]
fn byte_weighted_cache_stays_within_its_weight() {
    const MAX: u64 = 10_000;
    let cache: Cache<String, Vec<u8>> = Cache::builder()
        .max_weight(MAX)
        .weigher(ByteWeigher::new())
        .build();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..3_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = format!("key:{}", seed % 400);
        let len = (seed >> 20) as usize % 600;
        cache.insert(key, vec![i as u8; len]);
        if seed % 3 == 0 {
            let _ = cache.get(&format!("key:{}", (seed >> 8) % 400));
        }
        let w = cache.weighted_size();
        assert!(w <= MAX, "weight {w} over {MAX}");
    }
    let stats = cache.stats();
    assert_eq!(stats.weight, cache.weighted_size());
    assert_eq!(stats.capacity, MAX);
    assert!(stats.removals.get(RemovalCause::Evicted) > 0);
    // Each entry weighs key + value + the default overhead, and the total is their sum.
    let mut total = 0u64;
    for (k, v) in cache.iter() {
        let expected = (k.len() + v.len()) as u32 + ByteWeigher::DEFAULT_OVERHEAD;
        let meta = cache.get_with_metadata(&k).unwrap().metadata;
        assert_eq!(meta.weight, expected);
        total += u64::from(expected);
    }
    assert_eq!(total, cache.weighted_size());
}

#[test]
fn an_entry_heavier_than_the_capacity_is_refused() {
    let (cache, log) = listened(
        Cache::<String, Vec<u8>>::builder()
            .max_weight(1_000)
            .weigher(ByteWeigher::with_overhead(0)),
    );
    let heavy = vec![7u8; 2_000];
    assert!(!cache.insert_with_options("k".into(), heavy.clone(), &InsertOptions::new()));
    assert_eq!(cache.get("k"), None);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(
        drain(&log),
        vec![("k".to_string(), heavy.clone(), RemovalCause::Evicted)]
    );

    // A live value for the key does not survive a newer write that cannot be stored.
    cache.insert("k".into(), vec![1, 2, 3]);
    assert!(cache.insert_with_options("k".into(), heavy.clone(), &InsertOptions::new()));
    assert_eq!(cache.get("k"), None, "the old value must not come back");
    assert!(!cache.contains("k"));
    assert_eq!(
        drain(&log),
        vec![
            ("k".to_string(), vec![1, 2, 3], RemovalCause::Replaced),
            ("k".to_string(), heavy, RemovalCause::Evicted),
        ]
    );
    let s = cache.stats();
    assert_eq!(s.removals.get(RemovalCause::Evicted), 2);
    assert_eq!(s.removals.get(RemovalCause::Replaced), 1);
    assert_eq!(s.entries, 0);
    // Exactly the capacity fits.
    cache.insert("exact".into(), vec![0; 995]);
    assert_eq!(cache.weighted_size(), 1_000);
    assert!(cache.contains("exact"));
}

#[test]
fn the_per_entry_weight_limit_is_one_shards_share() {
    // Documented (Weigher contract, `max_weight`): capacity is split evenly across shards, and an
    // entry heavier than one shard's share is refused. With 4 shards each gets 250 of the 1000.
    let (cache, log) = listened(
        Cache::<u32, u32>::builder()
            .max_weight(1_000)
            .shards(4)
            .weigher(|_: &u32, v: &u32| *v),
    );
    cache.insert(1, 250);
    assert_eq!(drain(&log), vec![], "a full share fits");
    assert_eq!(cache.get(&1), Some(250));
    cache.insert(2, 251);
    assert_eq!(
        drain(&log),
        vec![(2, 251, RemovalCause::Evicted)],
        "over one share: refused"
    );
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.max_entry_weight(), 250);
}

#[test]
fn a_refused_overwrite_counts_as_an_update() {
    let cache = Cache::<u32, u32>::builder()
        .max_weight(10)
        .shards(1)
        .weigher(|_: &u32, v: &u32| *v)
        .build();
    cache.insert(1, 5);
    // Too heavy: the live value is replaced (and the new one refused).
    assert!(cache.insert_with_options(1, 50, &InsertOptions::new()));
    let s = cache.stats();
    assert_eq!(s.removals.get(RemovalCause::Replaced), 1);
    // `Stats::updates` is documented as "writes that replaced a live entry".
    assert_eq!(s.updates, 1, "updates should match the Replaced removal");
}

#[test]
fn weight_growth_on_update_evicts_to_stay_within_capacity() {
    let (cache, log) = listened(
        Cache::<u32, u32>::builder()
            .max_weight(10)
            .shards(1)
            .weigher(|_: &u32, v: &u32| *v),
    );
    cache.insert(1, 3);
    cache.insert(2, 3);
    cache.insert(3, 3);
    assert_eq!(cache.weighted_size(), 9);
    assert!(drain(&log).is_empty());
    cache.insert(1, 5);
    assert!(cache.weighted_size() <= 10);
    let events = drain(&log);
    assert_eq!(events[0], (1, 3, RemovalCause::Replaced));
    assert!(events[1..].iter().all(|e| e.2 == RemovalCause::Evicted));
    assert!(events.len() >= 2, "something had to go: {events:?}");
    let stored: u64 = cache.iter().map(|(_, v)| u64::from(v)).sum();
    assert_eq!(stored, cache.weighted_size());
}

#[test]
fn zero_weight_entries_are_allowed() {
    let cache = Cache::<u32, u32>::builder()
        .max_weight(10)
        .shards(1)
        .weigher(|_: &u32, _: &u32| 0)
        .build();
    for k in 0..100 {
        cache.insert(k, k);
    }
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(
        cache.len(),
        100,
        "weightless entries never force an eviction"
    );
}

#[test]
fn count_bounded_cache_evicts_to_its_capacity() {
    let (cache, log) = listened(Cache::<u32, u32>::builder().max_capacity(100));
    for k in 0..1_000 {
        cache.insert(k, k);
        assert!(cache.len() <= 100);
    }
    let evicted = drain(&log);
    assert!(
        evicted
            .iter()
            .all(|e| e.2 == RemovalCause::Evicted && e.0 == e.1)
    );
    assert_eq!(
        evicted.len() + cache.len(),
        1_000,
        "every key is stored or reported"
    );
    let s = cache.stats();
    assert_eq!(s.inserts, 1_000);
    assert_eq!(s.removals.get(RemovalCause::Evicted), evicted.len() as u64);
    assert_eq!(Cache::<u32, u32>::new(100).capacity(), 100);
}

// ---------------------------------------------------------------------------------------------
// Lookups, iteration and removal

#[test]
fn string_keys_are_looked_up_by_str() {
    let cache: Cache<String, u32> = Cache::new(100);
    cache.insert("alpha".to_string(), 1);
    cache.insert("beta".to_string(), 2);
    let key: &str = "alpha";
    assert_eq!(cache.get(key), Some(1));
    assert!(cache.contains("beta"));
    assert!(cache.get_with_metadata("beta").is_some());
    assert!(cache.expire("beta", Duration::from_secs(60), Default::default()));
    assert!(cache.persist("beta"));
    assert_eq!(cache.ttl("beta"), lethe::expiry::KeyTtl::Persistent);
    assert_eq!(cache.remove("alpha"), Some(1));
    assert_eq!(cache.get("alpha"), None);
    assert_eq!(cache.remove("gamma"), None);
}

#[test]
fn iter_yields_exactly_the_live_entries() {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(1_000)
        .shards(4)
        .clock(clock.clone())
        .build();
    let mut expected = HashMap::new();
    for k in 0..200u32 {
        let v = format!("v{k}");
        if k % 5 == 0 {
            cache.insert_with_options(k, v, &InsertOptions::new().ttl(Duration::from_secs(1)));
        } else {
            cache.insert(k, v.clone());
            expected.insert(k, v);
        }
    }
    for k in (1..200).step_by(7) {
        if cache.remove(&k).is_some() {
            expected.remove(&k);
        }
    }
    cache.insert(3, "replaced".into());
    expected.insert(3, "replaced".into());
    clock.advance(Duration::from_secs(1));
    // Expired entries still stored (not yet reclaimed) are not yielded.
    assert!(cache.len() > expected.len());

    let before = cache.stats();
    let mut it = cache.iter();
    assert!(format!("{it:?}").contains("Iter"));
    let mut seen = HashMap::new();
    for (k, v) in &mut it {
        assert!(seen.insert(k, v).is_none(), "key {k} yielded twice");
    }
    assert!(it.next().is_none(), "fused after the end");
    assert_eq!(seen, expected);
    assert_eq!(cache.stats(), before, "iteration is not an access");
}

#[test]
fn keys_with_prefix_matches_live_keys() {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let cache: Cache<String, u32> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clone())
        .build();
    for k in ["user:1", "user:2", "user:30", "session:1", "use", "users"] {
        cache.insert(k.to_string(), 0);
    }
    cache.insert_with_options(
        "user:9".into(),
        0,
        &InsertOptions::new().ttl(Duration::from_secs(1)),
    );
    clock.advance(Duration::from_secs(2));
    let mut keys = cache.keys_with_prefix(b"user:");
    keys.sort();
    assert_eq!(keys, vec!["user:1", "user:2", "user:30"]);
    assert_eq!(cache.keys_with_prefix(b"user").len(), 4);
    assert_eq!(cache.keys_with_prefix(b"").len(), 6);
    assert!(cache.keys_with_prefix(b"nope").is_empty());
}

#[test]
fn explicit_removal_replacement_and_clear_are_reported() {
    let (cache, log) = listened(Cache::<u32, String>::builder().max_capacity(100));
    for k in 0..10 {
        cache.insert(k, format!("a{k}"));
    }
    assert_eq!(cache.remove(&3), Some("a3".to_string()));
    assert_eq!(
        drain(&log),
        vec![(3, "a3".to_string(), RemovalCause::Explicit)]
    );
    assert!(cache.insert_with_options(4, "b4".into(), &InsertOptions::new()));
    assert!(!cache.insert_with_options(3, "b3".into(), &InsertOptions::new()));
    assert_eq!(
        drain(&log),
        vec![(4, "a4".to_string(), RemovalCause::Replaced)]
    );
    cache.clear();
    let mut cleared = drain(&log);
    cleared.sort_by_key(|e| e.0);
    let expected: Vec<_> = (0..10)
        .map(|k| {
            let v = if k == 3 || k == 4 {
                format!("b{k}")
            } else {
                format!("a{k}")
            };
            (k, v, RemovalCause::Explicit)
        })
        .collect();
    assert_eq!(cleared, expected);
    assert!(cache.is_empty());
    let s = cache.stats();
    assert_eq!(s.removals.get(RemovalCause::Explicit), 11);
    assert_eq!(s.removals.get(RemovalCause::Replaced), 1);
    assert_eq!(s.removals.total(), 12);
    assert_eq!((s.inserts, s.updates), (11, 1));
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[test]
fn contains_ttl_and_iteration_are_not_counted_as_reads() {
    let cache: Cache<String, u32> = Cache::new(100);
    cache.insert("a".into(), 1);
    let before = cache.stats();
    assert!(cache.contains("a"));
    assert!(!cache.contains("b"));
    let _ = cache.ttl("a");
    let _ = cache.ttl("b");
    let _ = cache.iter().count();
    let _ = cache.keys_with_prefix(b"a");
    assert_eq!(cache.stats(), before);
    assert_eq!((before.hits, before.misses), (0, 0));
}

#[test]
fn hit_ratio_and_requests() {
    let cache: Cache<u32, u32> = Cache::new(100);
    assert_eq!(cache.stats().hit_ratio(), 0.0, "no reads yet");
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.get(&1), Some(1));
    assert!(cache.get_with_metadata(&1).is_some());
    assert_eq!(cache.get(&2), None);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (3, 1));
    assert_eq!(s.requests(), 4);
    assert!((s.hit_ratio() - 0.75).abs() < 1e-12);
    assert_eq!(s.entries, 1);
    assert_eq!(s.capacity, 100);
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn version_counts_writes_unless_supplied() {
    let cache: Cache<u32, u32> = Cache::new(100);
    let version = |k: u32| cache.get_with_metadata(&k).unwrap().metadata.version;
    cache.insert(1, 0);
    assert_eq!(version(1), 1);
    cache.insert(1, 1);
    assert_eq!(version(1), 2);
    cache.insert(1, 2);
    assert_eq!(version(1), 3);
    cache.insert_with_options(1, 3, &InsertOptions::new().version(42));
    assert_eq!(version(1), 42);
    cache.insert(1, 4);
    assert_eq!(version(1), 43);
    cache.insert_with_options(2, 0, &InsertOptions::new().version(7));
    assert_eq!(version(2), 7);
    cache.insert_with_options(3, 0, &InsertOptions::new().version(u64::MAX));
    cache.insert(3, 1);
    assert_eq!(version(3), 0, "wraps");
    // A removed key starts over.
    cache.remove(&1);
    cache.insert(1, 5);
    assert_eq!(version(1), 1);
}

#[test]
fn created_is_kept_across_replacement_and_updated_moves() {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let cache: Cache<u32, u32> = Cache::builder()
        .max_capacity(10)
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    clock.advance(Duration::from_secs(5));
    cache.insert(1, 2);
    clock.advance(Duration::from_secs(1));
    let m = cache.get_with_metadata(&1).unwrap().metadata;
    assert_eq!(m.created, Timestamp(START));
    assert_eq!(m.updated, Timestamp(START + 5_000_000_000));
    assert_eq!(m.last_access, Timestamp(START + 6_000_000_000));
    assert_eq!(m.weight, 1);
    assert_eq!(m.expires_at, None);
    assert_eq!(m.remaining(), None);
    assert!(!m.refresh);
    assert_eq!(cache.clock().now(), Timestamp(START + 6_000_000_000));
}

// ---------------------------------------------------------------------------------------------
// Traits

const fn assert_handle<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
const _: () = assert_handle::<Cache<String, Vec<u8>>>();
const _: () = assert_handle::<Cache<u64, Arc<str>>>();

#[test]
fn clones_share_entries() {
    let a: Cache<u32, u32> = Cache::new(10);
    let b = a.clone();
    a.insert(1, 1);
    assert_eq!(b.get(&1), Some(1));
    b.remove(&1);
    assert!(!a.contains(&1));
    assert!(format!("{a:?}").starts_with("Cache"));
    std::thread::scope(|s| {
        s.spawn(|| b.insert(2, 2));
    });
    assert_eq!(a.get(&2), Some(2));
}

#[test]
fn custom_hasher() {
    let cache: Cache<String, u32, std::collections::hash_map::RandomState> = Cache::builder()
        .max_capacity(10)
        .hasher(std::collections::hash_map::RandomState::new())
        .build();
    cache.insert("x".into(), 1);
    assert_eq!(cache.get("x"), Some(1));
}

#[test]
fn timestamps_and_clocks() {
    use std::time::{SystemTime, UNIX_EPOCH};
    assert_eq!(
        Timestamp(5).saturating_add(Duration::MAX),
        Timestamp(u64::MAX)
    );
    assert_eq!(
        Timestamp(5).saturating_add(Duration::from_nanos(7)),
        Timestamp(12)
    );
    assert_eq!(
        Timestamp(10).saturating_duration_since(Timestamp(20)),
        Duration::ZERO
    );
    assert_eq!(
        Timestamp(20).saturating_duration_since(Timestamp(10)),
        Duration::from_nanos(10)
    );
    assert_eq!(
        Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
        Timestamp(0)
    );
    let t = Timestamp(START + 123);
    assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
    assert_eq!(t.as_nanos(), START + 123);

    let clock = ManualClock::new(Timestamp(START));
    clock.advance(Duration::from_secs(1));
    clock.set(Timestamp(START)); // backwards: ignored
    assert_eq!(
        lethe::clock::Clock::now(&clock),
        Timestamp(START + 1_000_000_000)
    );

    // The default clock follows wall time: a one-hour TTL reads as (a little under) an hour.
    let cache: Cache<u32, u32> = Cache::new(10);
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(Duration::from_secs(3_600)));
    let left = cache.get_with_metadata(&1).unwrap().metadata;
    let remaining = left.remaining().unwrap();
    assert!(remaining <= Duration::from_secs(3_600) && remaining > Duration::from_secs(3_000));
    let wall = Timestamp::from_system_time(SystemTime::now());
    let expires = left.expires_at.unwrap();
    assert!(expires.saturating_duration_since(wall) > Duration::from_secs(3_000));
    assert!(expires.saturating_duration_since(wall) <= Duration::from_secs(3_700));
}

#[test]
fn removal_cause_names() {
    let names: Vec<&str> = RemovalCause::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "explicit",
            "replaced",
            "expired",
            "evicted",
            "tag",
            "pattern",
            "dependency",
            "stale"
        ]
    );
    assert_eq!(RemovalCause::Expired.to_string(), "expired");
    let automatic: Vec<bool> = RemovalCause::ALL.iter().map(|c| c.was_evicted()).collect();
    assert_eq!(
        automatic,
        [false, false, true, true, false, false, false, false]
    );
}

// ---------------------------------------------------------------------------------------------
// Eviction policy

/// Key hashing with fixed keys, so the policy tests see the same sketch collisions every run.
type FixedHasher = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// Hot keys (read over and over) surviving a one-pass scan of 20x the capacity in new keys.
fn scan_survivors(hot: std::ops::Range<u64>, scan: std::ops::Range<u64>) -> usize {
    let cache: Cache<u64, u64, FixedHasher> = Cache::builder()
        .max_capacity(1_000)
        .shards(1)
        .hasher(FixedHasher::default())
        .build();
    // Warm up: the hot set is read over and over (read-through on miss).
    for _ in 0..20 {
        for k in hot.clone() {
            if cache.get(&k).is_none() {
                cache.insert(k, k);
            }
        }
    }
    for k in scan {
        if cache.get(&k).is_none() {
            cache.insert(k, k);
        }
    }
    assert!(cache.len() <= 1_000);
    hot.filter(|k| cache.contains(k)).count()
}

#[test]
fn hot_set_survives_a_one_pass_scan() {
    // Crate docs: "a one-pass scan never beats established keys". Three hot sets of 100 keys in
    // a 1000-entry cache; each must keep at least 90 % through a scan of 20,000 new keys.
    for (i, base) in [0u64, 50_000, 90_000].into_iter().enumerate() {
        let scan_start = 1_000_000 * (i as u64 + 1);
        let survivors = scan_survivors(base..base + 100, scan_start..scan_start + 20_000);
        assert!(
            survivors >= 90,
            "trial {i}: only {survivors} of 100 hot keys survived the scan"
        );
    }
}

#[test]
fn frequently_read_keys_beat_one_hit_wonders() {
    // Mixed: a hot set read between scan keys keeps a high hit ratio on its own reads.
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(500).shards(1).build();
    let mut hot_hits = 0;
    let mut hot_reads = 0;
    let mut scan = 10_000u64;
    for round in 0..200 {
        for k in 0..50u64 {
            hot_reads += 1;
            if cache.get(&k).is_some() {
                hot_hits += 1;
            } else {
                cache.insert(k, k);
            }
        }
        for _ in 0..100 {
            scan += 1;
            if cache.get(&scan).is_none() {
                cache.insert(scan, round);
            }
        }
    }
    let ratio = f64::from(hot_hits) / f64::from(hot_reads);
    assert!(ratio > 0.9, "hot hit ratio {ratio}");
    let s = cache.stats();
    assert!(
        s.hit_ratio() > 0.25 && s.hit_ratio() < 0.4,
        "{}",
        s.hit_ratio()
    );
}

#[test]
fn metadata_and_peek_do_not_count_as_accesses() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000)));
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clone())
        .time_to_idle(Duration::from_secs(10))
        .build();
    cache.insert("k".into(), "v".into());
    clock.advance(Duration::from_secs(6));
    // Neither keeps the idle entry alive nor counts a hit.
    assert!(cache.metadata("k").unwrap().remaining().unwrap() <= Duration::from_secs(4));
    assert_eq!(cache.peek_value("k").as_deref(), Some("v"));
    clock.advance(Duration::from_secs(6));
    assert_eq!(cache.peek_value("k"), None);
    assert!(cache.metadata("k").is_none());
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (0, 0));
}

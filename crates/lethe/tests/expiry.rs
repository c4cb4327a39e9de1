//! Expiry behaviour with a hand-driven clock: fixed, sliding and adaptive TTL, jitter, early
//! refresh, the Redis-style commands, and reclamation by the timer wheel.

use lethe::{
    Cache, CacheBuilder, InsertOptions, RemovalCause, clock::ManualClock, clock::Timestamp,
    expiry::AdaptiveTtl, expiry::EarlyRefresh, expiry::ExpireCondition, expiry::ExpiryPolicy,
    expiry::KeyTtl, expiry::Ttl,
};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START: u64 = 1_700_000_000_000_000_000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

type Log<K, V> = Arc<Mutex<Vec<(K, V, RemovalCause)>>>;

/// A cache on a manual clock with a listener recording every removal.
fn cache_with<K, V>(
    configure: impl FnOnce(CacheBuilder<K, V>) -> CacheBuilder<K, V>,
) -> (Cache<K, V>, Arc<ManualClock>, Log<K, V>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let log: Log<K, V> = Arc::default();
    let sink = log.clone();
    let builder = Cache::builder().clock(clock.clone()).removal_listener(
        move |k: &K, v: &V, c: RemovalCause| {
            sink.lock().unwrap().push((k.clone(), v.clone(), c));
        },
    );
    (configure(builder).build(), clock, log)
}

fn drain<K, V>(log: &Log<K, V>) -> Vec<(K, V, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// Remaining TTL as reported by `ttl()` (not an access), panicking if it has none.
fn remaining<V>(cache: &Cache<u32, V>, key: u32) -> Duration
where
    V: Clone + Send + Sync + 'static,
{
    match cache.ttl(&key) {
        KeyTtl::Expires(d) => d,
        other => panic!("key {key} has no deadline: {other:?}"),
    }
}

/// Deterministic xorshift, so the tests need no RNG crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed TTL

#[test]
fn fixed_ttl_expires_exactly_at_the_deadline() {
    let (cache, clock, log) =
        cache_with::<u32, &str>(|b| b.max_capacity(100).time_to_live(secs(10)));
    cache.insert(1, "a");
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(secs(10)));

    clock.advance(secs(10) - Duration::from_nanos(1));
    assert_eq!(
        cache.get(&1),
        Some("a"),
        "one nanosecond before the deadline"
    );
    assert!(cache.contains(&1));
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(Duration::from_nanos(1)));
    assert_eq!(cache.ttl(&1).as_redis_millis(), 1, "PTTL rounds up");
    let meta = cache.get_with_metadata(&1).unwrap().metadata;
    assert_eq!(meta.remaining(), Some(Duration::from_nanos(1)));
    assert_eq!(meta.expires_at, Some(Timestamp(START + 10_000_000_000)));
    assert!(drain(&log).is_empty());

    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get(&1), None, "at the deadline the entry is gone");
    assert!(!cache.contains(&1));
    assert_eq!(cache.ttl(&1), KeyTtl::Missing);
    assert!(cache.get_with_metadata(&1).is_none());
    assert_eq!(cache.iter().count(), 0);
    // The read that met the expired entry reclaimed it.
    assert_eq!(drain(&log), vec![(1, "a", RemovalCause::Expired)]);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.remove(&1), None);
    assert!(drain(&log).is_empty(), "reported once");

    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (2, 2));
    assert_eq!(s.removals.get(RemovalCause::Expired), 1);
}

#[test]
fn per_entry_ttl_overrides_the_default() {
    let (cache, clock, _log) =
        cache_with::<u32, u32>(|b| b.max_capacity(100).time_to_live(secs(10)));
    cache.insert(1, 1);
    cache.insert_with_options(2, 2, &InsertOptions::new().expiry(Ttl::Never));
    cache.insert_with_options(3, 3, &InsertOptions::new().ttl(secs(30)));
    cache.insert_with_options(4, 4, &InsertOptions::new().idle(secs(5)));
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(secs(10)));
    assert_eq!(cache.ttl(&2), KeyTtl::Persistent);
    assert_eq!(cache.ttl(&3), KeyTtl::Expires(secs(30)));
    assert_eq!(cache.ttl(&4), KeyTtl::Expires(secs(5)));
    clock.advance(secs(20));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    assert_eq!(cache.get(&3), Some(3));
    assert_eq!(cache.get(&4), None);
}

#[test]
fn zero_ttl_insert_is_never_visible() {
    let (cache, _clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(10).shards(1));
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(Duration::ZERO));
    assert_eq!(cache.get(&1), None);
    assert!(!cache.contains(&1));
    assert_eq!(drain(&log), vec![(1, 1, RemovalCause::Expired)]);
}

// ---------------------------------------------------------------------------------------------
// Sliding TTL

#[test]
fn sliding_ttl_is_extended_by_reads_and_expires_when_idle() {
    let (cache, clock, log) =
        cache_with::<u32, u32>(|b| b.max_capacity(100).time_to_idle(secs(10)));
    cache.insert(1, 100);
    // Read every 9 s for 90 s: well past the 10 s idle time, the entry stays.
    for _ in 0..10 {
        clock.advance(secs(9));
        assert_eq!(cache.get(&1), Some(100));
        assert_eq!(
            cache.ttl(&1),
            KeyTtl::Expires(secs(10)),
            "read restarts the countdown"
        );
    }
    clock.advance(secs(9));
    let meta = cache.get_with_metadata(&1).unwrap().metadata;
    assert_eq!(
        meta.remaining(),
        Some(secs(10)),
        "get_with_metadata is a read too"
    );

    // `contains` and `ttl` are not accesses: they do not extend it.
    clock.advance(secs(9));
    assert!(cache.contains(&1));
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(secs(1)));
    clock.advance(secs(1));
    assert!(!cache.contains(&1));
    assert_eq!(cache.get(&1), None);
    assert_eq!(drain(&log), vec![(1, 100, RemovalCause::Expired)]);
}

#[test]
fn sliding_entries_are_not_reclaimed_at_their_original_deadline() {
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(100).shards(1));
    cache.insert_with_options(1, 1, &InsertOptions::new().idle(secs(10)));
    clock.advance(secs(9));
    assert_eq!(cache.get(&1), Some(1)); // deadline moves to 19 s
    clock.advance(secs(6)); // 15 s: past the original deadline
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.scheduled_timers(), 1, "rescheduled, not dropped");
    assert!(drain(&log).is_empty());
    clock.advance(secs(4)); // 19 s
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.scheduled_timers(), 0);
    assert_eq!(drain(&log), vec![(1, 1, RemovalCause::Expired)]);
}

// ---------------------------------------------------------------------------------------------
// Adaptive TTL

fn adaptive() -> AdaptiveTtl {
    AdaptiveTtl::new(secs(10), secs(2), secs(60))
}

#[test]
fn adaptive_ttl_grows_with_reads() {
    let policy = ExpiryPolicy {
        ttl: Ttl::Adaptive(adaptive()),
        ..ExpiryPolicy::default()
    };
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100).expiry(policy));
    cache.insert(1, 1); // hot
    cache.insert(2, 2); // cold
    assert_eq!(remaining(&cache, 1), secs(10), "no reads yet: the base TTL");
    assert_eq!(remaining(&cache, 2), secs(10));

    let mut last = secs(10);
    for _ in 0..100 {
        assert_eq!(cache.get(&1), Some(1));
        let r = remaining(&cache, 1);
        assert!(r >= last, "reads never shorten the lifetime");
        assert!(r <= secs(60), "clamped to max: {r:?}");
        last = r;
    }
    assert!(
        last > secs(10),
        "a read-heavy entry lives longer than base: {last:?}"
    );
    assert_eq!(
        last,
        secs(60),
        "100 reads: 10 s x (1 + log2 101) clamps to the max"
    );

    // Past the base TTL the cold entry is gone, the hot one is still there.
    clock.advance(secs(30));
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&1), Some(1));
    let meta = cache.get_with_metadata(&1).unwrap().metadata;
    let lifetime = meta.expires_at.unwrap().as_nanos() - meta.updated.as_nanos();
    assert!(Duration::from_nanos(lifetime) <= secs(60));
}

#[test]
fn adaptive_ttl_shrinks_for_frequently_updated_entries() {
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    let opts = InsertOptions::new().expiry(Ttl::Adaptive(adaptive()));
    cache.insert_with_options(1, 0, &opts);
    for i in 1..=5 {
        clock.advance(secs(1));
        cache.insert_with_options(1, i, &opts);
        let r = remaining(&cache, 1);
        assert!(
            r < secs(10),
            "updated every second: shorter than base, got {r:?}"
        );
        assert!(r >= secs(2), "never below min, got {r:?}");
    }
    // 10 s x (1 s / 10 s) = 1 s, clamped to the 2 s minimum.
    assert_eq!(remaining(&cache, 1), secs(2));
    // A slowly updated entry is not penalised: interval >= base keeps the factor at 1.
    cache.insert_with_options(2, 0, &opts);
    clock.advance(secs(20));
    cache.insert_with_options(2, 1, &opts);
    assert_eq!(remaining(&cache, 2), secs(10));
}

#[test]
fn adaptive_ttl_always_within_bounds() {
    let a = adaptive();
    let (cache, clock, _log) = cache_with::<u32, u64>(|b| b.max_capacity(1_000).shards(1));
    let opts = InsertOptions::new().expiry(Ttl::Adaptive(a.clone()));
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut checked = 0;
    for step in 0..5_000u64 {
        let key = rng.below(20) as u32;
        match rng.below(10) {
            0..=2 => {
                cache.insert_with_options(key, step, &opts);
            }
            3..=7 => {
                if let Some(l) = cache.get_with_metadata(&key) {
                    let m = l.metadata;
                    let expires = m.expires_at.expect("adaptive entries have a deadline");
                    let lifetime = Duration::from_nanos(expires.as_nanos() - m.updated.as_nanos());
                    assert!(
                        lifetime >= a.min && lifetime <= a.max,
                        "lifetime {lifetime:?} outside [{:?}, {:?}]",
                        a.min,
                        a.max
                    );
                    assert!(m.remaining().unwrap() <= a.max);
                    checked += 1;
                }
            }
            _ => clock.advance(ms(rng.below(3_000))),
        }
    }
    assert!(
        checked > 500,
        "too few live reads to mean anything: {checked}"
    );
}

// ---------------------------------------------------------------------------------------------
// Jitter

#[test]
fn jitter_spreads_deadlines_of_keys_written_together() {
    let (cache, _clock, _log) =
        cache_with::<u32, u32>(|b| b.max_capacity(10_000).time_to_live(secs(100)).jitter(0.2));
    for k in 0..500 {
        cache.insert(k, k);
    }
    let ttls: Vec<Duration> = (0..500).map(|k| remaining(&cache, k)).collect();
    for t in &ttls {
        assert!(*t >= secs(80) && *t <= secs(120), "outside +-20%: {t:?}");
    }
    let distinct: HashSet<_> = ttls.iter().collect();
    assert!(
        distinct.len() > 450,
        "only {} distinct deadlines",
        distinct.len()
    );
    let min = ttls.iter().min().unwrap();
    let max = ttls.iter().max().unwrap();
    assert!(
        *min < secs(85) && *max > secs(115),
        "not spread: {min:?}..{max:?}"
    );
    let mean = ttls.iter().map(Duration::as_secs_f64).sum::<f64>() / 500.0;
    assert!((mean - 100.0).abs() < 5.0, "mean {mean}");
}

#[test]
fn per_entry_jitter_and_no_jitter() {
    let (cache, _clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(10_000));
    for k in 0..200 {
        cache.insert_with_options(k, k, &InsertOptions::new().ttl(secs(100)).jitter(0.5));
        cache.insert_with_options(1_000 + k, k, &InsertOptions::new().ttl(secs(100)));
    }
    let jittered: HashSet<Duration> = (0..200).map(|k| remaining(&cache, k)).collect();
    assert!(jittered.iter().all(|t| *t >= secs(50) && *t <= secs(150)));
    assert!(jittered.len() > 180);
    assert!((1_000..1_200).all(|k| remaining(&cache, k) == secs(100)));
}

#[test]
fn sliding_ttl_keeps_its_jitter_factor_on_reads() {
    let (cache, clock, _log) =
        cache_with::<u32, u32>(|b| b.max_capacity(1_000).time_to_idle(secs(100)).jitter(0.2));
    for k in 0..50 {
        cache.insert(k, k);
    }
    let initial: Vec<Duration> = (0..50).map(|k| remaining(&cache, k)).collect();
    clock.advance(secs(30));
    for k in 0..50 {
        assert_eq!(cache.get(&k), Some(k));
        let after = remaining(&cache, k);
        // The idle time scaled by the same factor (up to float rounding of a nanosecond).
        let diff = after.abs_diff(initial[k as usize]);
        assert!(
            diff <= Duration::from_nanos(2),
            "key {k}: {after:?} vs {:?}",
            initial[k as usize]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Early refresh (XFetch)

fn refresh_rate(cache: &Cache<u32, u32>, key: u32, reads: usize) -> usize {
    (0..reads)
        .filter(|_| {
            cache
                .get_with_metadata(&key)
                .expect("live")
                .metadata
                .refresh
        })
        .count()
}

#[test]
fn early_refresh_is_rare_far_from_expiry_and_likely_near_it() {
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| {
        b.max_capacity(100)
            .time_to_live(secs(100))
            .early_refresh(EarlyRefresh::new(1.0, secs(1)))
    });
    cache.insert(1, 1);
    let deadline = START + 100_000_000_000;

    clock.advance(secs(10)); // 90 s left, P = e^-90
    assert!(refresh_rate(&cache, 1, 2_000) <= 2);

    clock.set(Timestamp(deadline - 1_000_000_000)); // one delta left, P = e^-1 ~ 0.37
    let one_delta = refresh_rate(&cache, 1, 2_000);
    assert!((500..=1_000).contains(&one_delta), "{one_delta}");

    clock.set(Timestamp(deadline - 10_000_000)); // 10 ms left, P ~ 0.99
    let near = refresh_rate(&cache, 1, 2_000);
    assert!(near >= 1_800, "{near}");

    clock.set(Timestamp(deadline - 1)); // 1 ns left
    let at = refresh_rate(&cache, 1, 2_000);
    assert!(at >= 1_950, "{at}");

    // Refresh hints never move the deadline.
    let meta = cache.get_with_metadata(&1).unwrap().metadata;
    assert_eq!(meta.expires_at, Some(Timestamp(deadline)));
}

#[test]
fn early_refresh_only_for_entries_that_ask_for_it() {
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(secs(10)));
    cache.insert_with_options(
        2,
        2,
        &InsertOptions::new()
            .ttl(secs(10))
            .early_refresh(EarlyRefresh::new(1.0, secs(5))),
    );
    // Early refresh on an entry without a deadline: nothing to refresh before.
    cache.insert_with_options(
        3,
        3,
        &InsertOptions::new().early_refresh(EarlyRefresh::new(1.0, secs(5))),
    );
    clock.set(Timestamp(START + 10_000_000_000 - 1_000));
    assert_eq!(
        refresh_rate(&cache, 1, 500),
        0,
        "no early refresh configured"
    );
    assert!(refresh_rate(&cache, 2, 500) > 450);
    assert_eq!(refresh_rate(&cache, 3, 500), 0, "no deadline");
}

#[test]
fn early_refresh_survives_an_explicit_expire() {
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| {
        b.max_capacity(100)
            .early_refresh(EarlyRefresh::new(1.0, secs(1)))
    });
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(secs(100)));
    assert!(cache.expire(&1, secs(5), ExpireCondition::Always));
    clock.advance(secs(5) - ms(10));
    assert!(
        refresh_rate(&cache, 1, 1_000) > 900,
        "hints apply to the new deadline"
    );
}

// ---------------------------------------------------------------------------------------------
// Redis semantics

#[test]
fn redis_ttl_replies() {
    let (cache, clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    assert_eq!(cache.ttl(&1).as_redis_seconds(), -2, "missing");
    assert_eq!(cache.ttl(&1).as_redis_millis(), -2);
    cache.insert(1, 1);
    assert_eq!(cache.ttl(&1).as_redis_seconds(), -1, "no TTL");
    assert_eq!(cache.ttl(&1).as_redis_millis(), -1);
    assert!(cache.expire(&1, secs(10), ExpireCondition::Always));
    assert_eq!(cache.ttl(&1).as_redis_seconds(), 10);
    assert_eq!(cache.ttl(&1).as_redis_millis(), 10_000);
    clock.advance(ms(400)); // 9.6 s left: TTL rounds to nearest
    assert_eq!(cache.ttl(&1).as_redis_seconds(), 10);
    clock.advance(ms(200)); // 9.4 s
    assert_eq!(cache.ttl(&1).as_redis_seconds(), 9);
    assert_eq!(cache.ttl(&1).as_redis_millis(), 9_400);
    clock.advance(ms(9_400));
    assert_eq!(
        cache.ttl(&1).as_redis_seconds(),
        -2,
        "expired counts as missing"
    );
}

#[test]
fn redis_expire_conditions() {
    let (cache, _clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    use ExpireCondition::*;
    // Missing key: nothing applies.
    for c in [Always, Nx, Xx, Gt, Lt] {
        assert!(!cache.expire(&9, secs(1), c), "{c:?} on a missing key");
    }
    cache.insert(1, 1);
    // No TTL: XX and GT refuse (no TTL counts as infinite), NX and LT accept.
    assert!(!cache.expire(&1, secs(10), Xx));
    assert!(!cache.expire(&1, secs(10), Gt));
    assert_eq!(cache.ttl(&1), KeyTtl::Persistent);
    assert!(cache.expire(&1, secs(20), Nx));
    assert_eq!(remaining(&cache, 1), secs(20));
    assert!(
        !cache.expire(&1, secs(30), Nx),
        "NX refuses once a TTL is set"
    );
    assert!(cache.expire(&1, secs(30), Xx));
    assert_eq!(remaining(&cache, 1), secs(30));
    assert!(!cache.expire(&1, secs(10), Gt));
    assert!(!cache.expire(&1, secs(30), Gt), "GT needs strictly later");
    assert!(cache.expire(&1, secs(40), Gt));
    assert_eq!(remaining(&cache, 1), secs(40));
    assert!(!cache.expire(&1, secs(50), Lt));
    assert!(!cache.expire(&1, secs(40), Lt), "LT needs strictly earlier");
    assert!(cache.expire(&1, secs(5), Lt));
    assert_eq!(remaining(&cache, 1), secs(5));

    cache.insert(2, 2);
    assert!(
        cache.expire(&2, secs(7), Lt),
        "LT applies to a key without TTL"
    );
    assert_eq!(remaining(&cache, 2), secs(7));

    // PERSIST.
    assert!(cache.persist(&1));
    assert_eq!(cache.ttl(&1), KeyTtl::Persistent);
    assert_eq!(cache.ttl(&1).as_redis_seconds(), -1);
    assert!(!cache.persist(&1), "already persistent");
    assert!(!cache.persist(&9), "missing");
    assert_eq!(cache.get(&1), Some(1));
}

#[test]
fn expire_replaces_sliding_behaviour() {
    let (cache, clock, _log) =
        cache_with::<u32, u32>(|b| b.max_capacity(100).time_to_idle(secs(10)));
    cache.insert(1, 1);
    assert!(cache.expire(&1, secs(20), ExpireCondition::Always));
    clock.advance(secs(15));
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(
        remaining(&cache, 1),
        secs(5),
        "reads no longer slide the deadline"
    );
    clock.advance(secs(5));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn expire_with_zero_removes_as_expired() {
    let (cache, _clock, log) = cache_with::<u32, &str>(|b| b.max_capacity(100));
    cache.insert(1, "one");
    assert!(cache.expire(&1, Duration::ZERO, ExpireCondition::Always));
    assert_eq!(drain(&log), vec![(1, "one", RemovalCause::Expired)]);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.ttl(&1), KeyTtl::Missing);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.stats().removals.get(RemovalCause::Expired), 1);
    assert!(
        !cache.expire(&1, Duration::ZERO, ExpireCondition::Always),
        "now missing"
    );
    assert!(drain(&log).is_empty());

    // A condition that refuses leaves the key alone.
    cache.insert(2, "two");
    assert!(!cache.expire(&2, Duration::ZERO, ExpireCondition::Xx));
    assert_eq!(cache.get(&2), Some("two"));
    assert!(drain(&log).is_empty());
}

#[test]
fn expire_at_past_and_future() {
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    cache.insert(1, 1);
    cache.insert(2, 2);
    cache.insert(3, 3);
    clock.advance(secs(100));
    let now = START + 100_000_000_000;

    assert!(cache.expire_at(&1, Timestamp(now + 5_000_000_000), ExpireCondition::Always));
    assert_eq!(remaining(&cache, 1), secs(5));
    assert_eq!(
        cache.get_with_metadata(&1).unwrap().metadata.expires_at,
        Some(Timestamp(now + 5_000_000_000))
    );

    // In the past (or exactly now): removed, reported as expired.
    assert!(cache.expire_at(&2, Timestamp(START), ExpireCondition::Always));
    assert!(cache.expire_at(&3, Timestamp(now), ExpireCondition::Always));
    let mut events = drain(&log);
    events.sort_unstable_by_key(|e| e.0);
    assert_eq!(
        events,
        vec![(2, 2, RemovalCause::Expired), (3, 3, RemovalCause::Expired)]
    );
    assert_eq!(cache.get(&2), None);

    // GT with a past time on a key with a TTL: refused, key intact.
    assert!(!cache.expire_at(&1, Timestamp(START), ExpireCondition::Gt));
    assert_eq!(cache.get(&1), Some(1));
    // The epoch is a valid absolute time too.
    assert!(cache.expire_at(&1, Timestamp(0), ExpireCondition::Lt));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn expire_with_a_huge_duration_keeps_a_ttl() {
    let (cache, _clock, _log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    cache.insert(1, 1);
    // NX on a key without a TTL: the TTL is "set", so TTL must no longer reply -1.
    assert!(cache.expire(&1, Duration::MAX, ExpireCondition::Nx));
    assert_ne!(
        cache.ttl(&1),
        KeyTtl::Persistent,
        "expire returned true but no TTL was set"
    );
    // expire_at clamps the same request to a real deadline.
    cache.insert(2, 2);
    assert!(cache.expire_at(&2, Timestamp(u64::MAX), ExpireCondition::Nx));
    assert_ne!(cache.ttl(&2), KeyTtl::Persistent);
}

// ---------------------------------------------------------------------------------------------
// KEEPTTL

#[test]
fn keep_ttl_keeps_the_current_deadline() {
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(100));
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(secs(10)));
    clock.advance(secs(4));
    assert!(cache.insert_with_options(1, 2, &InsertOptions::new().keep_ttl()));
    assert_eq!(cache.get(&1), Some(2));
    assert_eq!(remaining(&cache, 1), secs(6));
    // Even when the write asks for another TTL.
    cache.insert_with_options(1, 3, &InsertOptions::new().ttl(secs(100)).keep_ttl());
    assert_eq!(remaining(&cache, 1), secs(6));
    // Without keep_ttl a write resets it.
    cache.insert_with_options(1, 4, &InsertOptions::new().ttl(secs(100)));
    assert_eq!(remaining(&cache, 1), secs(100));

    // A persistent key stays persistent.
    cache.insert(2, 1);
    cache.insert_with_options(2, 2, &InsertOptions::new().ttl(secs(5)).keep_ttl());
    assert_eq!(cache.ttl(&2), KeyTtl::Persistent);

    // A missing (or expired) key has no TTL to keep: the write's own TTL applies.
    cache.insert_with_options(3, 1, &InsertOptions::new().ttl(secs(7)).keep_ttl());
    assert_eq!(remaining(&cache, 3), secs(7));
    cache.insert_with_options(4, 1, &InsertOptions::new().ttl(secs(1)));
    clock.advance(secs(2));
    assert!(!cache.insert_with_options(4, 2, &InsertOptions::new().ttl(secs(9)).keep_ttl()));
    assert_eq!(remaining(&cache, 4), secs(9));

    let causes: Vec<RemovalCause> = drain(&log).into_iter().map(|e| e.2).collect();
    assert_eq!(
        causes
            .iter()
            .filter(|c| **c == RemovalCause::Replaced)
            .count(),
        4
    );
    assert!(causes.contains(&RemovalCause::Expired));
}

// ---------------------------------------------------------------------------------------------
// Reclamation by the timer wheel

#[test]
fn expired_entries_are_reclaimed_by_the_next_write_without_a_scan() {
    const N: u32 = 200;
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(10_000).shards(1));
    for k in 0..N {
        cache.insert_with_options(k, k, &InsertOptions::new().ttl(secs(5)));
    }
    for k in N..N + 50 {
        cache.insert(k, k); // no TTL: never scheduled
    }
    assert_eq!(cache.scheduled_timers(), N as usize);
    clock.advance(secs(6));
    // Nothing has touched the shard since: expired entries still count towards len.
    assert_eq!(cache.len(), (N + 50) as usize);
    assert!(drain(&log).is_empty());

    cache.insert(99_999, 0); // one unrelated write
    assert_eq!(cache.len(), 51);
    assert_eq!(cache.scheduled_timers(), 0);
    let events = drain(&log);
    assert_eq!(events.len(), N as usize);
    assert!(
        events
            .iter()
            .all(|e| e.2 == RemovalCause::Expired && e.0 == e.1 && e.0 < N)
    );
    let keys: HashSet<u32> = events.iter().map(|e| e.0).collect();
    assert_eq!(keys.len(), N as usize, "each reported once");
    assert_eq!(
        cache.stats().removals.get(RemovalCause::Expired),
        u64::from(N)
    );
}

#[test]
fn a_read_of_an_expired_entry_reclaims_in_an_idle_cache() {
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(1_000).shards(1));
    for k in 0..100 {
        cache.insert_with_options(k, k, &InsertOptions::new().ttl(secs(1)));
    }
    clock.advance(secs(2));
    assert_eq!(cache.len(), 100);
    // Only reads from here on.
    assert_eq!(cache.get(&7), None);
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.scheduled_timers(), 0);
    assert_eq!(drain(&log).len(), 100);
}

#[test]
fn run_pending_tasks_reclaims_without_any_write() {
    let (cache, clock, log) = cache_with::<u32, u32>(|b| b.max_capacity(1_000).shards(4));
    for k in 0..100 {
        cache.insert_with_options(k, k, &InsertOptions::new().ttl(secs(1)));
    }
    clock.advance(secs(1));
    cache.run_pending_tasks();
    assert_eq!(cache.len(), 0);
    assert_eq!(drain(&log).len(), 100);
}

/// Deadlines from a millisecond to more than a year (every level of the wheel, and beyond its
/// range): after each step, exactly the entries whose deadline has passed have been reported.
#[test]
fn wheel_reports_each_entry_exactly_when_due_at_every_scale() {
    let (cache, clock, log) = cache_with::<u32, u64>(|b| b.max_capacity(100_000).shards(1));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut deadlines = HashMap::new();
    let scales = [
        1_000_000u64,
        67_000_000,
        4_300_000_000,
        275_000_000_000,
        17_600_000_000_000,
        1_126_000_000_000_000,
        40_000_000_000_000_000,
    ];
    for k in 0..3_000u32 {
        let scale = scales[k as usize % scales.len()];
        let ttl = 1 + rng.below(scale * 2);
        cache.insert_with_options(k, ttl, &InsertOptions::new().ttl(Duration::from_nanos(ttl)));
        deadlines.insert(k, START + ttl);
    }
    let mut now = START;
    let mut reported = HashSet::new();
    let end = START + 80_000_000_000_000_000; // ~2.5 years
    let mut step = 300_000u64;
    while now < end {
        let jump = 1 + rng.below(step);
        step = (step + step / 8).min(5_000_000_000_000_000);
        clock.advance(Duration::from_nanos(jump));
        now += jump;
        cache.run_pending_tasks();
        for (k, v, cause) in drain(&log) {
            assert_eq!(cause, RemovalCause::Expired);
            assert!(deadlines[&k] <= now, "key {k} (ttl {v}) reclaimed early");
            assert!(reported.insert(k), "key {k} reported twice");
        }
        let due = deadlines.values().filter(|d| **d <= now).count();
        assert_eq!(reported.len(), due, "at {now}: every due entry reclaimed");
        assert_eq!(cache.len(), deadlines.len() - due);
        assert_eq!(cache.scheduled_timers(), deadlines.len() - due);
    }
    assert_eq!(reported.len(), deadlines.len());
}

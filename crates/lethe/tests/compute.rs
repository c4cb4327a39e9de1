//! Atomic read-modify-write (`Cache::compute`) and multi-key locks (`Cache::lock`): no lost
//! updates under contention, all-or-nothing multi-key changes, and the same bookkeeping as the
//! equivalent insert or remove (weights, TTL, leases, dependents, listener).

use lethe::{
    Cache, InsertOptions, RemovalCause, clock::ManualClock, clock::Timestamp, expiry::KeyTtl,
    lease::LeaseOutcome, listener::RemovalListener, version::RejectReason,
};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

#[test]
fn concurrent_increments_are_never_lost() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 5_000;
    let cache: Cache<u32, u64> = Cache::new(1_000);
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, start) = (cache.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for i in 0..ROUNDS {
                    // Four hot keys, hit in a different order by each thread.
                    let key = ((i + t as u64) % 4) as u32;
                    cache.compute(key, |e| *e.or_insert_with(|| 0).unwrap() += 1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total: u64 = (0..4).map(|k| cache.get(&k).unwrap()).sum();
    assert_eq!(total, THREADS as u64 * ROUNDS);
    // Each increment was one write: the first created the entry, the rest changed it.
    let stats = cache.stats();
    assert_eq!(stats.inserts, 4);
    assert_eq!(stats.updates, THREADS as u64 * ROUNDS - 4);
}

#[test]
fn multi_key_changes_are_seen_whole() {
    const ACCOUNTS: u32 = 16;
    const TOTAL: i64 = 1_000 * ACCOUNTS as i64;
    let cache: Cache<u32, i64> = Cache::builder().max_capacity(1_000).shards(8).build();
    for a in 0..ACCOUNTS {
        cache.insert(a, 1_000);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3u32)
        .map(|t| {
            let cache = cache.clone();
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(u64::from(t));
                for _ in 0..20_000 {
                    let (a, b) = (rng.u32(0..ACCOUNTS), rng.u32(0..ACCOUNTS));
                    let amount = rng.i64(1..50);
                    let mut lock = cache.lock([&a, &b]);
                    lock.compute(&a, |e| *e.get_mut().unwrap() -= amount);
                    lock.compute(&b, |e| *e.get_mut().unwrap() += amount);
                }
            })
        })
        .collect();
    let reader = {
        let (cache, stop) = (cache.clone(), stop.clone());
        thread::spawn(move || {
            let keys: Vec<u32> = (0..ACCOUNTS).collect();
            let mut checks = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let lock = cache.lock_read(keys.iter());
                let sum: i64 = keys.iter().map(|k| *lock.peek(k).unwrap()).sum();
                assert_eq!(sum, TOTAL, "a reader saw half of a transfer");
                checks += 1;
            }
            checks
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let sum: i64 = (0..ACCOUNTS).map(|k| cache.get(&k).unwrap()).sum();
    assert_eq!(sum, TOTAL);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "called from code holding its shard locks")]
fn calling_back_into_the_cache_from_a_closure_panics_in_debug_builds() {
    let cache: Cache<u32, u32> = Cache::new(100);
    let inner = cache.clone();
    cache.compute(1, |_| inner.get(&2));
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "called from code holding its shard locks")]
fn calling_the_cache_while_a_key_lock_is_alive_panics_in_debug_builds() {
    let cache: Cache<u32, u32> = Cache::new(100);
    let _lock = cache.lock([&1]);
    cache.insert(5, 5);
}

#[test]
fn the_lock_is_released_after_a_panicking_closure() {
    let cache: Cache<u32, u32> = Cache::new(100);
    let c = cache.clone();
    let r = thread::spawn(move || c.compute(1, |_| -> u32 { panic!("boom") })).join();
    assert!(r.is_err());
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
}

#[test]
#[should_panic(expected = "does not hold its shard")]
fn a_key_outside_the_lock_is_refused() {
    let cache: Cache<u32, u32> = Cache::builder().max_capacity(10_000).shards(64).build();
    // Find a key in another shard than key 0 by trying: with 64 shards one of 1..1000 is.
    let lock = cache.lock([&0]);
    for k in 1..1000 {
        let _ = lock.peek(&k);
    }
}

#[test]
fn a_growing_value_is_re_weighed_and_evicted_when_too_heavy() {
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let log = evicted.clone();
    let cache: Cache<u32, Vec<u8>> = Cache::builder()
        .max_weight(1_000)
        .shards(1)
        .weigher(|_: &u32, v: &Vec<u8>| v.len() as u32)
        .removal_listener(move |k: &u32, _: &Vec<u8>, c: RemovalCause| {
            log.lock().unwrap().push((*k, c));
        })
        .build();
    cache.compute(1, |e| e.or_insert_with(Vec::new).unwrap().extend([0; 100]));
    assert_eq!(cache.weighted_size(), 100);
    cache.compute(1, |e| e.get_mut().unwrap().extend([0; 300]));
    assert_eq!(cache.weighted_size(), 400);
    cache.compute(1, |e| e.get_mut().unwrap().truncate(10));
    assert_eq!(cache.weighted_size(), 10);
    // Past the capacity: the entry cannot stay.
    cache.compute(1, |e| e.get_mut().unwrap().extend([0; 2_000]));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(*evicted.lock().unwrap(), vec![(1, RemovalCause::Evicted)]);
}

#[test]
fn changes_keep_the_deadline_unless_the_closure_sets_one() {
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000_000)));
    let cache: Cache<u32, u32> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clone())
        .build();
    cache.insert_with_options(1, 1, &InsertOptions::new().ttl(Duration::from_secs(10)));
    cache.compute(1, |e| *e.get_mut().unwrap() += 1);
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(Duration::from_secs(10)));
    cache.compute(1, |e| e.set_ttl(Some(Duration::from_secs(3))));
    assert_eq!(cache.ttl(&1), KeyTtl::Expires(Duration::from_secs(3)));
    cache.compute(1, |e| e.set_ttl(None));
    assert_eq!(cache.ttl(&1), KeyTtl::Persistent);
    // A new entry with a deadline, and one born expired (not stored, as Redis does).
    cache.compute(2, |e| {
        e.insert(7).unwrap();
        e.set_ttl(Some(Duration::from_secs(5)));
        assert_eq!(e.ttl(), KeyTtl::Expires(Duration::from_secs(5)));
    });
    assert_eq!(cache.ttl(&2), KeyTtl::Expires(Duration::from_secs(5)));
    cache.compute(3, |e| {
        e.insert(7).unwrap();
        e.set_deadline(Timestamp(1));
    });
    assert_eq!(cache.get(&3), None);
    clock.advance(Duration::from_secs(6));
    // Expired entries are absent to the closure.
    assert!(cache.compute(2, |e| e.get().is_none()));
}

#[test]
fn a_change_refuses_an_outstanding_fill_and_cascades_to_dependents() {
    let cache: Cache<String, u32> = Cache::new(100);
    // The key is missing and leased; a concurrent compute creates it: the fill (of an older
    // read) must not overwrite it.
    let LeaseOutcome::Granted(lease) = cache.lease(&"k".to_string()) else {
        panic!("lease")
    };
    cache.compute("k".into(), |e| e.insert(2).map(|_| ()).unwrap());
    let refused = cache.fill(lease, 1, &InsertOptions::new()).unwrap_err();
    assert_eq!(refused.reason, RejectReason::LeaseInvalid);
    assert_eq!(cache.get("k"), Some(2));
    // A dependent of the key goes when the key changes in place.
    cache.insert_with_options(
        "page".into(),
        9,
        &InsertOptions::new().depends_on("k".into()),
    );
    cache.compute("k".into(), |e| *e.get_mut().unwrap() += 1);
    assert_eq!(cache.get("page"), None);
    assert_eq!(cache.get("k"), Some(3));
    // A look that changes nothing is not a write: the dependent stays.
    cache.insert_with_options(
        "page".into(),
        9,
        &InsertOptions::new().depends_on("k".into()),
    );
    let v = cache.version("k");
    cache.compute("k".into(), |e| e.get().copied());
    assert_eq!(cache.get("page"), Some(9));
    assert_eq!(cache.version("k"), v);
}

#[derive(Default)]
struct Heard {
    removed: Mutex<Vec<(u32, u32, RemovalCause)>>,
    modified: Mutex<Vec<u32>>,
}

struct Listener(Arc<Heard>);

impl RemovalListener<u32, u32> for Listener {
    fn on_removal(&self, key: &u32, value: &u32, cause: RemovalCause) {
        self.0.removed.lock().unwrap().push((*key, *value, cause));
    }

    fn on_modified(&self, key: &u32) {
        self.0.modified.lock().unwrap().push(*key);
    }
}

#[test]
fn the_listener_hears_each_change_once_with_its_kind() {
    let heard = Arc::new(Heard::default());
    let cache: Cache<u32, u32> = Cache::builder()
        .max_capacity(100)
        .removal_listener(Listener(heard.clone()))
        .build();
    cache.compute(1, |e| e.insert(10).map(|_| ()).unwrap());
    // In place, several changes in one closure: one notification.
    cache.compute(1, |e| {
        *e.get_mut().unwrap() += 1;
        *e.get_mut().unwrap() += 1;
    });
    // Replaced with a new value: the old value is handed over.
    cache.compute(1, |e| e.insert(20).map(|_| ()).unwrap());
    // Removed: reported with its value; `take` hands it to the caller as well.
    cache.compute(1, |e| assert!(e.remove()));
    cache.insert(2, 5);
    assert_eq!(cache.compute(2, |e| e.take()), Some(5));
    // Under a multi-key lock.
    cache.insert(3, 30);
    {
        let mut lock = cache.lock([&3, &4]);
        assert!(lock.delete(&3));
        lock.compute(&4, |e| e.insert(40).map(|_| ()).unwrap());
    }
    assert_eq!(*heard.modified.lock().unwrap(), vec![1]);
    assert_eq!(
        *heard.removed.lock().unwrap(),
        vec![
            (1, 12, RemovalCause::Replaced),
            (1, 20, RemovalCause::Explicit),
            (2, 5, RemovalCause::Explicit),
            (3, 30, RemovalCause::Explicit),
        ]
    );
    assert_eq!(cache.get(&4), Some(40));
}

#[test]
fn creating_under_a_version_floor_is_refused() {
    let cache: Cache<String, u32> = Cache::builder().max_capacity(100).index_keys().build();
    cache.set_version_floor_prefix("user:", 5);
    let r = cache.compute("user:1".into(), |e| e.insert(1).map(|_| ()));
    assert_eq!(r.unwrap_err().reason, RejectReason::BelowFloor);
    assert_eq!(cache.get("user:1"), None);
    // An entry written at or above the floor may be changed in place (its version only grows).
    cache.insert_if_newer("user:2".into(), 1, 6).unwrap();
    cache.compute("user:2".into(), |e| *e.get_mut().unwrap() += 1);
    assert_eq!(cache.get("user:2"), Some(2));
    assert_eq!(cache.version("user:2"), Some(7));
}

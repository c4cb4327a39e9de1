//! Multi-threaded stress: several threads mixing every operation on overlapping keys, with
//! listeners that call back into the cache. Iteration counts are fixed (no time loops, no
//! timing assertions); a watchdog turns a deadlock into a failure instead of a hung run.

use lethe::{
    Cache, InsertOptions, RemovalCause, clock::ManualClock, clock::Timestamp,
    expiry::ExpireCondition,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const THREADS: u64 = 4;
const START: u64 = 1_700_000_000_000_000_000;

/// A value that names its key and its writer: `key << 40 | thread << 32 | sequence`.
fn value(key: u32, thread: u64, seq: u64) -> u64 {
    (u64::from(key) << 40) | (thread << 32) | seq
}

fn key_of(v: u64) -> u32 {
    (v >> 40) as u32
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs `f` on its own thread; fails if it does not finish within a generous limit (a hang here
/// means a deadlock), and re-raises its panic if it panicked.
fn with_watchdog(name: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(300)) {
        Ok(()) => worker.join().expect("worker finished"),
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("finished without signalling"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("{name}: no progress in 300 s, deadlock suspected")
        }
    }
}

fn cause_index(c: RemovalCause) -> usize {
    RemovalCause::ALL
        .iter()
        .position(|&x| x == c)
        .expect("known cause")
}

/// What the removal listener saw.
#[derive(Default)]
struct Removals {
    /// value -> (cause, times reported)
    reports: Mutex<HashMap<u64, (RemovalCause, u32)>>,
    by_cause: [AtomicU64; RemovalCause::ALL.len()],
    wrong_key: AtomicU64,
    /// The listener read back the value it was told had been removed.
    resurrected: AtomicU64,
    /// Reads the listener itself made (they count in the stats).
    listener_reads: AtomicU64,
}

impl Removals {
    fn record(&self, k: u32, v: u64, cause: RemovalCause) {
        let mut reports = self.reports.lock().unwrap();
        let e = reports.entry(v).or_insert((cause, 0));
        e.1 += 1;
        drop(reports);
        self.by_cause[cause_index(cause)].fetch_add(1, Ordering::Relaxed);
        if key_of(v) != k {
            self.wrong_key.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Handle = Arc<RwLock<Option<Cache<u32, u64>>>>;

/// A cache whose listener records every removal and calls back into the cache: it reads the
/// key (the removed value must not be visible any more), asks `contains` and `len` (which takes
/// every shard's lock) and takes a stats snapshot.
fn reentrant_cache(
    capacity: u64,
    shards: usize,
    clock: &Arc<ManualClock>,
) -> (Cache<u32, u64>, Arc<Removals>, Handle) {
    let removals = Arc::new(Removals::default());
    let handle: Handle = Arc::default();
    let (r, h) = (removals.clone(), handle.clone());
    let cache = Cache::builder()
        .max_capacity(capacity)
        .shards(shards)
        .clock(clock.clone())
        .removal_listener(move |k: &u32, v: &u64, cause: RemovalCause| {
            r.record(*k, *v, cause);
            if let Some(cache) = h.read().unwrap().as_ref() {
                r.listener_reads.fetch_add(1, Ordering::Relaxed);
                if cache.get(k) == Some(*v) {
                    r.resurrected.fetch_add(1, Ordering::Relaxed);
                }
                let _ = cache.contains(k);
                assert!(cache.len() as u64 <= cache.capacity());
                let _ = cache.stats();
            }
        })
        .build();
    *handle.write().unwrap() = Some(cache.clone());
    (cache, removals, handle)
}

/// Per-thread tallies.
#[derive(Default)]
struct Tally {
    inserted: Vec<u64>,
    read: Vec<u64>,
    removed: Vec<u64>,
    reads: u64,
}

fn random_condition(rng: &mut Rng) -> ExpireCondition {
    match rng.below(5) {
        0 => ExpireCondition::Always,
        1 => ExpireCondition::Nx,
        2 => ExpireCondition::Xx,
        3 => ExpireCondition::Gt,
        _ => ExpireCondition::Lt,
    }
}

fn worker(cache: &Cache<u32, u64>, clock: &ManualClock, thread: u64, ops: u64, keys: u64) -> Tally {
    let mut rng = Rng::new(thread + 1);
    let mut t = Tally::default();
    let ms = Duration::from_millis;
    for seq in 0..ops {
        let key = rng.below(keys) as u32;
        match rng.below(100) {
            0..=39 => {
                t.reads += 1;
                if let Some(v) = cache.get(&key) {
                    assert_eq!(key_of(v), key, "get({key}) returned another key's value");
                    t.read.push(v);
                }
            }
            40..=44 => {
                t.reads += 1;
                if let Some(l) = cache.get_with_metadata(&key) {
                    assert_eq!(key_of(l.value), key);
                    assert!(l.metadata.version >= 1);
                    assert_eq!(l.metadata.weight, 1);
                    if let Some(r) = l.metadata.remaining() {
                        assert!(r <= ms(50), "remaining {r:?} beyond any TTL used");
                    }
                    t.read.push(l.value);
                }
            }
            45..=69 => {
                let v = value(key, thread, seq);
                let opts = match rng.below(4) {
                    0 => InsertOptions::new().ttl(ms(1 + rng.below(50))),
                    1 => InsertOptions::new().idle(ms(1 + rng.below(50))),
                    _ => InsertOptions::new(),
                };
                cache.insert_with_options(key, v, &opts);
                t.inserted.push(v);
            }
            70..=79 => {
                if let Some(v) = cache.remove(&key) {
                    assert_eq!(key_of(v), key);
                    t.removed.push(v);
                }
            }
            80..=87 => {
                cache.expire(&key, ms(rng.below(30)), random_condition(&mut rng));
            }
            88..=90 => {
                cache.persist(&key);
            }
            91..=94 => {
                let _ = cache.ttl(&key);
                let _ = cache.contains(&key);
            }
            95..=97 => {
                if thread == 0 {
                    clock.advance(ms(rng.below(20)));
                } else {
                    for (k, v) in cache.iter().take(8) {
                        assert_eq!(key_of(v), k, "iter paired {k} with another key's value");
                    }
                }
            }
            _ => {
                if rng.below(40) == 0 {
                    cache.clear();
                } else {
                    cache.run_pending_tasks();
                }
            }
        }
        let w = cache.weighted_size();
        assert!(w <= cache.capacity(), "weight {w} over capacity");
    }
    t
}

fn run_mixed(shards: usize, capacity: u64, keys: u64, ops: u64) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let (cache, removals, handle) = reentrant_cache(capacity, shards, &clock);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cache, clock) = (&cache, &clock);
                s.spawn(move || worker(cache, clock, t, ops, keys))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    assert!(cache.weighted_size() <= capacity);
    assert!(cache.len() as u64 <= capacity);
    assert_eq!(removals.wrong_key.load(Ordering::Relaxed), 0);
    assert_eq!(
        removals.resurrected.load(Ordering::Relaxed),
        0,
        "a listener read back a value it was told was removed"
    );

    let inserted: HashSet<u64> = tallies
        .iter()
        .flat_map(|t| t.inserted.iter().copied())
        .collect();
    let total_inserts: usize = tallies.iter().map(|t| t.inserted.len()).sum();
    assert_eq!(
        inserted.len(),
        total_inserts,
        "values are unique by construction"
    );
    for t in &tallies {
        for v in &t.read {
            assert!(inserted.contains(v), "read a value nobody wrote: {v:#x}");
        }
    }

    // Before the final clear every value has been reported at most once.
    {
        let reports = removals.reports.lock().unwrap();
        assert!(
            reports.values().all(|(_, n)| *n == 1),
            "a value reported twice"
        );
        assert!(reports.keys().all(|v| inserted.contains(v)));
    }

    cache.run_pending_tasks();
    cache.clear();
    *handle.write().unwrap() = None; // the listener no longer calls back; breaks the cycle
    assert_eq!(cache.len(), 0);
    assert_eq!(cache.weighted_size(), 0);
    assert_eq!(cache.scheduled_timers(), 0);

    // After the clear: every inserted value reported exactly once.
    let reports = removals.reports.lock().unwrap();
    assert_eq!(reports.len(), total_inserts, "inserts vs notifications");
    for v in &inserted {
        match reports.get(v) {
            Some((_, 1)) => {}
            other => panic!("value {v:#x} reported {other:?}"),
        }
    }
    // Values handed back by remove() were reported as explicit removals.
    for t in &tallies {
        for v in &t.removed {
            assert_eq!(reports[v].0, RemovalCause::Explicit, "removed value {v:#x}");
        }
    }

    let s = cache.stats();
    assert_eq!(
        s.inserts + s.updates,
        total_inserts as u64,
        "every write created or updated"
    );
    assert_eq!(s.removals.get(RemovalCause::Replaced), s.updates);
    assert_eq!(s.removals.total(), total_inserts as u64);
    for c in RemovalCause::ALL {
        assert_eq!(
            s.removals.get(c),
            removals.by_cause[cause_index(c)].load(Ordering::Relaxed),
            "stats vs listener for {c:?}"
        );
    }
    let reads: u64 = tallies.iter().map(|t| t.reads).sum::<u64>()
        + removals.listener_reads.load(Ordering::Relaxed);
    assert_eq!(s.hits + s.misses, reads, "every get counted once");
    assert!(
        s.removals.get(RemovalCause::Evicted) > 0,
        "the run should cause evictions"
    );
    assert!(
        s.removals.get(RemovalCause::Expired) > 0,
        "the run should cause expiries"
    );
}

#[test]
fn concurrent_mixed_operations_keep_invariants_sharded() {
    with_watchdog("sharded", || run_mixed(4, 64, 256, 20_000));
}

#[test]
fn concurrent_mixed_operations_keep_invariants_one_shard() {
    with_watchdog("one shard", || run_mixed(1, 32, 128, 20_000));
}

/// Heavy contention on a handful of keys: whatever a read returns is a value some thread wrote
/// for that very key, and it is never older than a value the same thread saw after its own
/// write (each thread's writes to a key are totally ordered).
#[test]
fn reads_only_return_values_written_for_that_key() {
    with_watchdog("few keys", || {
        for shards in [1, 2] {
            let cache: Cache<u32, u64> = Cache::builder().max_capacity(4).shards(shards).build();
            let written: Vec<Vec<u64>> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let cache = &cache;
                        s.spawn(move || {
                            let mut rng = Rng::new(100 + t);
                            let mut mine = Vec::new();
                            for seq in 0..30_000 {
                                let key = rng.below(8) as u32;
                                match rng.below(10) {
                                    0..=3 => {
                                        let v = value(key, t, seq);
                                        cache.insert(key, v);
                                        mine.push(v);
                                        // Read-your-write, unless another thread overwrote or
                                        // the policy evicted it in between.
                                        if let Some(got) = cache.get(&key) {
                                            assert_eq!(key_of(got), key);
                                        }
                                    }
                                    4..=7 => {
                                        if let Some(v) = cache.get(&key) {
                                            assert_eq!(key_of(v), key);
                                        }
                                    }
                                    8 => {
                                        if let Some(v) = cache.remove(&key) {
                                            assert_eq!(key_of(v), key);
                                        }
                                    }
                                    _ => {
                                        for (k, v) in cache.iter() {
                                            assert_eq!(key_of(v), k);
                                        }
                                    }
                                }
                            }
                            mine
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            let all: HashSet<u64> = written.into_iter().flatten().collect();
            for (k, v) in cache.iter() {
                assert_eq!(key_of(v), k);
                assert!(all.contains(&v), "final value {v:#x} was never written");
            }
            assert!(cache.len() <= 4);
        }
    });
}

/// A listener that writes back into the cache (re-inserting explicitly removed entries under a
/// shadow key) while other threads remove and clear: no deadlock, and every value, including
/// those the listener wrote, is reported exactly once.
#[test]
fn listener_may_write_into_the_cache() {
    with_watchdog("writing listener", || {
        const SHADOW: u32 = 1_000;
        const FLAG: u64 = 1 << 63;
        let reports: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let shadow_writes = Arc::new(AtomicU64::new(0));
        let handle: Handle = Arc::default();
        let (r, h, sw) = (reports.clone(), handle.clone(), shadow_writes.clone());
        let cache: Cache<u32, u64> = Cache::builder()
            .max_capacity(128)
            .shards(4)
            .removal_listener(move |k: &u32, v: &u64, cause: RemovalCause| {
                *r.lock().unwrap().entry(*v).or_default() += 1;
                if cause == RemovalCause::Explicit && *k < SHADOW {
                    if let Some(cache) = h.read().unwrap().as_ref() {
                        cache.insert(*k + SHADOW, *v | FLAG);
                        sw.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .build();
        *handle.write().unwrap() = Some(cache.clone());

        let inserted: u64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let cache = &cache;
                    s.spawn(move || {
                        let mut rng = Rng::new(7 + t);
                        let mut n = 0;
                        for seq in 0..10_000 {
                            let key = rng.below(200) as u32;
                            match rng.below(20) {
                                0..=9 => {
                                    cache.insert(key, value(key, t, seq));
                                    n += 1;
                                }
                                10..=15 => {
                                    cache.remove(&key);
                                }
                                16..=18 => {
                                    let _ = cache.get(&(key + SHADOW));
                                }
                                _ => {
                                    if rng.below(50) == 0 {
                                        cache.clear();
                                    }
                                }
                            }
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });

        // Shadow keys are never re-shadowed, so one more clear empties the cache for good.
        cache.clear();
        *handle.write().unwrap() = None;
        cache.clear();
        assert_eq!(cache.len(), 0);
        let reports = reports.lock().unwrap();
        let total = inserted + shadow_writes.load(Ordering::Relaxed);
        assert!(shadow_writes.load(Ordering::Relaxed) > 0);
        assert_eq!(
            reports.len() as u64,
            total,
            "inserts (incl. listener's) vs notifications"
        );
        assert!(
            reports.values().all(|n| *n == 1),
            "a value reported more than once"
        );
        assert_eq!(cache.stats().removals.total(), total);
    });
}

/// Threads writing tagged and dependent entries while others invalidate tags (and their
/// parents), prefixes and keys, and reclaim: nothing deadlocks or panics, every removal is
/// reported once, and once quiet the cache's count, its reads and its tag queries agree.
#[test]
fn concurrent_invalidations_keep_the_tag_index_consistent() {
    with_watchdog("tag invalidations", || {
        let reported: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let log = reported.clone();
        let cache: Cache<String, u64> = Cache::builder()
            .max_capacity(4_096)
            .shards(4)
            .index_keys()
            .removal_listener(move |_: &String, v: &u64, _cause: RemovalCause| {
                *log.lock().unwrap().entry(*v).or_insert(0) += 1;
            })
            .build();
        let writes = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let cache = cache.clone();
                let writes = writes.clone();
                std::thread::spawn(move || {
                    let mut rng = Rng::new(t + 11);
                    for i in 0..20_000u64 {
                        let k = rng.below(3_000);
                        let key = format!("k:{}:{k}", k % 7);
                        match rng.below(12) {
                            0..=5 => {
                                let v = writes.fetch_add(1, Ordering::Relaxed) + 1;
                                let mut o = InsertOptions::new()
                                    .tag(format!("g:{}:{}", k % 5, k % 3))
                                    .tag(format!("h:{}", k % 11));
                                if rng.below(4) == 0 {
                                    o = o.depends_on(format!("k:{}:{}", (k + 1) % 7, k + 1));
                                }
                                let _ = cache.try_insert(key, v, &o);
                            }
                            6 => {
                                cache.invalidate_tag(&format!("g:{}", k % 5));
                            }
                            7 => {
                                cache.invalidate_tag(&format!("h:{}", k % 11));
                            }
                            8 => {
                                cache.invalidate_prefix(format!("k:{}:", k % 7));
                            }
                            9 => {
                                cache.invalidate_key(&key);
                            }
                            10 if i % 50 == 0 => cache.run_pending_tasks(),
                            _ => {
                                if let Some(v) = cache.get(&key) {
                                    assert!(v > 0);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        cache.run_pending_tasks();
        // Every removal reported at most once.
        let reported = reported.lock().unwrap();
        assert!(
            reported.values().all(|&n| n == 1),
            "a value was reported twice"
        );
        // Quiet: what is stored can be read, and the tag index finds exactly those entries.
        let live: Vec<(String, u64)> = cache.iter().collect();
        assert_eq!(live.len(), cache.len());
        for (k, v) in &live {
            assert_eq!(cache.get(k), Some(*v));
            assert!(
                !reported.contains_key(v),
                "{k} is stored but was reported removed"
            );
        }
        let mut tagged: Vec<String> = (0..11)
            .flat_map(|h| cache.keys_with_tag(&format!("h:{h}")))
            .collect();
        tagged.sort();
        tagged.dedup();
        let mut stored: Vec<String> = live.into_iter().map(|(k, _)| k).collect();
        stored.sort();
        assert_eq!(tagged, stored, "every stored entry carries one h: tag");
        // Written values are either stored or were reported removed (nothing leaks silently).
        let stats = cache.stats();
        assert_eq!(
            stats.removals.total() + cache.len() as u64,
            stats.inserts + stats.updates,
            "{stats:?}"
        );
    });
}

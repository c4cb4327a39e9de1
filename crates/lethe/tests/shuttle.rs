//! The engine's shard, lease, tag-set and reclamation paths under many random thread
//! schedules (Shuttle). Built with `--features shuttle`, which puts Shuttle's locks and
//! atomics in the engine (src/sync.rs) so every lock and atomic of the shipped code is a
//! point where the scheduler may switch threads. Each test explores a bounded number of
//! schedules (`LETHE_SHUTTLE_ITERATIONS`, 300 by default); a failure prints the schedule to
//! replay.
#![cfg(feature = "shuttle")]

use lethe::{Cache, InsertOptions, RemovalCause, lease::LeaseOutcome};
use shuttle::rand::{Rng, thread_rng};
use shuttle::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use shuttle::thread;
use std::sync::{Arc, Mutex as StdMutex};

fn iterations() -> usize {
    std::env::var("LETHE_SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn small_cache() -> Cache<u32, u32> {
    Cache::builder().max_capacity(64).shards(2).build()
}

/// Writers racing on one key leave one of their values; a remove racing with them leaves the
/// key absent or holding a value some writer wrote; `len` agrees with what `get` sees.
#[test]
fn racing_writes_and_removes_on_a_shard_stay_consistent() {
    shuttle::check_random(
        || {
            let cache = small_cache();
            let writers: Vec<_> = (1..=2u32)
                .map(|w| {
                    let c = cache.clone();
                    thread::spawn(move || {
                        for k in 0..3u32 {
                            c.insert(k, w * 100 + k);
                        }
                    })
                })
                .collect();
            let remover = {
                let c = cache.clone();
                thread::spawn(move || {
                    c.remove(&1);
                })
            };
            for h in writers {
                h.join().unwrap();
            }
            remover.join().unwrap();
            let mut present = 0;
            for k in 0..3u32 {
                match cache.get(&k) {
                    Some(v) => {
                        assert!(v == 100 + k || v == 200 + k, "key {k} holds {v}");
                        present += 1;
                    }
                    None => assert_eq!(k, 1, "only the removed key may be missing"),
                }
            }
            assert!(present >= 2);
            assert_eq!(cache.len(), present);
        },
        iterations(),
    );
}

/// A fill under a lease is refused when an invalidation of the key ran entirely between the
/// lease and the fill: a slow fill never undoes a newer invalidation.
#[test]
fn a_fill_never_undoes_an_invalidation_after_its_lease() {
    shuttle::check_random(
        || {
            let cache = small_cache();
            let started = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            let leased = Arc::new(AtomicBool::new(false));
            let invalidator = {
                let (c, started, done) = (cache.clone(), started.clone(), done.clone());
                let leased = leased.clone();
                thread::spawn(move || {
                    // The change arrives at some point while the filler works, in half the
                    // runs after its lease (Shuttle's random numbers: a failure replays).
                    if thread_rng().gen_bool(0.5) {
                        for _ in 0..10_000 {
                            if leased.load(Ordering::SeqCst) {
                                break;
                            }
                            thread::yield_now();
                        }
                    }
                    for _ in 0..thread_rng().gen_range(0..12) {
                        thread::yield_now();
                    }
                    started.store(true, Ordering::SeqCst);
                    c.invalidate_key(&7);
                    done.store(true, Ordering::SeqCst);
                })
            };
            let filler = {
                let (c, started, done) = (cache.clone(), started.clone(), done.clone());
                thread::spawn(move || {
                    let LeaseOutcome::Granted(lease) = c.lease(&7) else {
                        panic!("the key was never cached, so the first caller gets the lease");
                    };
                    leased.store(true, Ordering::SeqCst);
                    // Read after the lease was granted: false means the invalidation began
                    // after it; `finished` true means it ended before the fill.
                    let began_before = started.load(Ordering::SeqCst);
                    // The load from the database: the slow part, where others run.
                    for _ in 0..thread_rng().gen_range(0..40) {
                        thread::yield_now();
                    }
                    let finished = done.load(Ordering::SeqCst);
                    let accepted = c.fill(lease, 1, &InsertOptions::new()).is_ok();
                    if !began_before && finished {
                        assert!(!accepted, "a fill was accepted after a newer invalidation");
                    }
                    accepted
                })
            };
            invalidator.join().unwrap();
            let accepted = filler.join().unwrap();
            if !accepted {
                assert_eq!(cache.get(&7), None);
            }
        },
        iterations(),
    );
}

/// Entries whose insert finished before a tag invalidation started are gone after it, with
/// reclamation running concurrently; the listener hears each removed entry exactly once, with
/// the tag invalidation as its cause, and never an entry still cached.
#[test]
fn tag_invalidation_and_concurrent_reclamation_forget_exactly_once() {
    shuttle::check_random(
        || {
            let heard: Arc<StdMutex<Vec<(u32, RemovalCause)>>> = Arc::default();
            let cache: Cache<u32, u32> = {
                let heard = heard.clone();
                Cache::builder()
                    .max_capacity(64)
                    .shards(2)
                    .removal_listener(move |k: &u32, _: &u32, cause| {
                        heard.lock().unwrap().push((*k, cause));
                    })
                    .build()
            };
            let started = Arc::new(AtomicBool::new(false));
            let before: Arc<StdMutex<Vec<u32>>> = Arc::default();
            let writer = {
                let (c, started, before) = (cache.clone(), started.clone(), before.clone());
                thread::spawn(move || {
                    for k in 0..4u32 {
                        c.insert_with_options(k, k, &InsertOptions::new().tag("t"));
                        if !started.load(Ordering::SeqCst) {
                            before.lock().unwrap().push(k);
                        }
                    }
                })
            };
            let invalidator = {
                let (c, started) = (cache.clone(), started.clone());
                thread::spawn(move || {
                    for _ in 0..thread_rng().gen_range(0..60) {
                        thread::yield_now();
                    }
                    started.store(true, Ordering::SeqCst);
                    c.invalidate_tag("t");
                })
            };
            let reclaimer = {
                let c = cache.clone();
                thread::spawn(move || {
                    c.run_pending_tasks();
                    let _ = c.get(&0);
                })
            };
            writer.join().unwrap();
            invalidator.join().unwrap();
            reclaimer.join().unwrap();
            for k in before.lock().unwrap().iter() {
                assert_eq!(cache.get(k), None, "key {k} outlived the tag invalidation");
            }
            cache.run_pending_tasks();
            let heard = heard.lock().unwrap();
            let mut keys: Vec<u32> = heard.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            let unique = {
                let mut u = keys.clone();
                u.dedup();
                u
            };
            assert_eq!(
                keys, unique,
                "an entry was reported removed twice: {heard:?}"
            );
            for (k, cause) in heard.iter() {
                assert_eq!(*cause, RemovalCause::Tag, "{k}: {cause:?}");
                assert_eq!(cache.get(k), None, "reported removed but still cached: {k}");
            }
            for k in 0..4u32 {
                assert!(
                    cache.get(&k).is_some() || unique.contains(&k),
                    "key {k} vanished without a removal"
                );
            }
        },
        iterations(),
    );
}

/// Counting readers and writers across shards: concurrent inserts of distinct keys are all
/// found, and the entry count matches.
#[test]
fn distinct_inserts_from_many_threads_are_all_kept() {
    shuttle::check_random(
        || {
            let cache = small_cache();
            let inserted = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..3u32)
                .map(|t| {
                    let (c, inserted) = (cache.clone(), inserted.clone());
                    thread::spawn(move || {
                        for i in 0..3u32 {
                            c.insert(t * 10 + i, i);
                            inserted.fetch_add(1, Ordering::SeqCst);
                            let _ = c.get(&((t + 1) % 3 * 10 + i));
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(inserted.load(Ordering::SeqCst), 9);
            assert_eq!(cache.len(), 9);
            for t in 0..3u32 {
                for i in 0..3u32 {
                    assert_eq!(cache.get(&(t * 10 + i)), Some(i));
                }
            }
        },
        iterations(),
    );
}

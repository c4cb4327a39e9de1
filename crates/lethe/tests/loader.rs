//! Loaders: single flight, errors and negative caching, refresh-ahead, stale-while-revalidate
//! and stale-if-error, lease protection against invalidations during a load, write-through,
//! and write-behind (order, batching, backpressure, retries, dead letters, shutdown).
//!
//! Threads are synchronised with gates the test source blocks on and with the loader's own
//! counters, so each test knows (rather than hopes) that its threads overlapped.

use lethe::loader::{
    LoadErrorKind, Loader, LoaderBuilder, RetryPolicy, Source, WritableSource, WriteBehindConfig,
    WriteErrorKind, WriteMode, WriteOp,
};
use lethe::{
    Cache, ErrorKind, InsertOptions, clock::ManualClock, clock::Timestamp, expiry::EarlyRefresh,
    lease::LeaseOutcome,
};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const START: u64 = 1_700_000_000_000_000_000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Polls `cond` until it holds; fails the test after ten seconds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A point the source's calls stop at while closed; counts arrivals.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, usize)>,
    cv: Condvar,
}

impl Gate {
    fn close(&self) {
        self.state.lock().unwrap().0 = true;
    }

    fn open(&self) {
        self.state.lock().unwrap().0 = false;
        self.cv.notify_all();
    }

    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.cv.notify_all();
        while s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn arrivals(&self) -> usize {
        self.state.lock().unwrap().1
    }
}

#[derive(Debug)]
struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// A table with knobs: gates, injected failures and panics, and a log of applied writes.
#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<u32, String>>,
    loads: AtomicUsize,
    load_gate: Gate,
    fail_loads: AtomicUsize,
    panic_next_load: AtomicBool,
    write_gate: Gate,
    fail_writes: AtomicUsize,
    /// Fail every n-th write call (0: never), on top of `fail_writes`.
    fail_every: AtomicUsize,
    write_calls: AtomicUsize,
    applied: Mutex<Vec<WriteOp<u32, String>>>,
    batches: Mutex<Vec<usize>>,
}

impl Db {
    fn set(&self, k: u32, v: &str) {
        self.rows.lock().unwrap().insert(k, v.to_owned());
    }

    fn row(&self, k: u32) -> Option<String> {
        self.rows.lock().unwrap().get(&k).cloned()
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn apply(&self, batch: &[WriteOp<u32, String>]) -> Result<(), DbError> {
        self.write_gate.pass();
        let call = self.write_calls.fetch_add(1, Ordering::SeqCst) + 1;
        let every = self.fail_every.load(Ordering::SeqCst);
        if Db::take(&self.fail_writes) || (every > 0 && call % every == 0) {
            return Err(DbError(format!("write {call} failed")));
        }
        let mut rows = self.rows.lock().unwrap();
        for op in batch {
            match op {
                WriteOp::Put(k, v) => rows.insert(*k, v.clone()),
                WriteOp::Delete(k) => rows.remove(k),
            };
        }
        self.applied.lock().unwrap().extend(batch.iter().cloned());
        self.batches.lock().unwrap().push(batch.len());
        Ok(())
    }
}

impl Source<u32, String> for Db {
    type Error = DbError;

    fn load(&self, key: &u32) -> Result<Option<String>, DbError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        // Read first, then be slow: what a load returns may be outdated by the time it ends.
        let row = self.row(*key);
        self.load_gate.pass();
        if self.panic_next_load.swap(false, Ordering::SeqCst) {
            panic!("the database driver panicked");
        }
        if Db::take(&self.fail_loads) {
            return Err(DbError("connection refused".into()));
        }
        Ok(row)
    }
}

impl WritableSource<u32, String> for Db {
    fn write(&self, key: &u32, value: &String) -> Result<(), DbError> {
        self.apply(&[WriteOp::Put(*key, value.clone())])
    }

    fn delete(&self, key: &u32) -> Result<(), DbError> {
        self.apply(&[WriteOp::Delete(*key)])
    }

    fn write_batch(&self, batch: &[WriteOp<u32, String>]) -> Result<(), DbError> {
        self.apply(batch)
    }
}

type DbLoader = Loader<u32, String, Db>;
type Builder = LoaderBuilder<u32, String, Db>;

struct Fixture {
    loader: DbLoader,
    db: Arc<Db>,
    clock: Arc<ManualClock>,
    cache: Cache<u32, String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // A failed assertion must not leave the loader's threads (joined on drop) parked.
        self.db.load_gate.open();
        self.db.write_gate.open();
    }
}

fn fixture(configure: impl FnOnce(Builder) -> Builder) -> Fixture {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(100_000)
        .clock(clock.clone())
        .build();
    let db = Arc::new(Db::default());
    let loader = configure(Loader::builder(cache.clone(), db.clone())).build();
    Fixture {
        loader,
        db,
        clock,
        cache,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Single flight, errors, negative caching

#[test]
fn concurrent_missers_cause_exactly_one_load() {
    let f = fixture(|b| b);
    f.db.set(1, "one");
    f.db.load_gate.close();
    thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| f.loader.get(&1))).collect();
        // The leader is inside the source and the seven others wait for it.
        eventually("seven waiters", || {
            f.loader.stats().single_flight_waits == 7 && f.db.load_gate.arrivals() == 1
        });
        f.db.load_gate.open();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), s("one"));
        }
    });
    assert_eq!(f.db.loads(), 1);
    assert_eq!(f.loader.stats().loads, 1);
    assert_eq!(f.cache.get(&1), s("one"));
}

#[test]
fn waiters_share_the_leaders_error() {
    let f = fixture(|b| b);
    f.db.fail_loads.store(1, Ordering::SeqCst);
    f.db.load_gate.close();
    thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| f.loader.get(&1))).collect();
        eventually("three waiters", || {
            f.loader.stats().single_flight_waits == 3
        });
        f.db.load_gate.open();
        for h in handles {
            let e = h.join().unwrap().unwrap_err();
            assert_eq!(e.kind(), LoadErrorKind::Source);
            assert_eq!(e.source_error().unwrap().0, "connection refused");
        }
    });
    assert_eq!(f.db.loads(), 1);
}

#[test]
fn load_errors_are_returned_not_cached() {
    let f = fixture(|b| b);
    f.db.set(1, "one");
    f.db.fail_loads.store(1, Ordering::SeqCst);
    let e = f.loader.get(&1).unwrap_err();
    assert_eq!(e.kind(), LoadErrorKind::Source);
    assert!(e.to_string().contains("connection refused"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    // The next read goes to the source again, and succeeds.
    assert_eq!(f.loader.get(&1).unwrap(), s("one"));
    assert_eq!(f.db.loads(), 2);
    let st = f.loader.stats();
    assert_eq!((st.loads, st.load_errors), (2, 1));
}

#[test]
fn absence_is_rechecked_without_negative_caching() {
    let f = fixture(|b| b);
    assert_eq!(f.loader.get(&9).unwrap(), None);
    assert_eq!(f.loader.get(&9).unwrap(), None);
    assert_eq!(f.db.loads(), 2);
}

#[test]
fn negative_caching_lasts_its_ttl_and_yields_to_invalidations() {
    let f = fixture(|b| b.negative_ttl(secs(5)));
    assert_eq!(f.loader.get(&9).unwrap(), None);
    assert_eq!(f.loader.get(&9).unwrap(), None);
    assert_eq!(f.db.loads(), 1);
    assert_eq!(f.loader.stats().negative_hits, 1);

    f.clock.advance(secs(6));
    assert_eq!(f.loader.get(&9).unwrap(), None);
    assert_eq!(f.db.loads(), 2, "the negative entry expired");

    // The row appears and the application says so: the negative entry must not hide it.
    f.db.set(9, "nine");
    f.cache.invalidate_key(&9);
    assert_eq!(f.loader.get(&9).unwrap(), s("nine"));
    assert_eq!(f.db.loads(), 3);
}

#[test]
fn a_write_through_the_loader_clears_a_negative_entry() {
    let f = fixture(|b| b.negative_ttl(secs(60)).write_mode(WriteMode::Through));
    assert_eq!(f.loader.get(&9).unwrap(), None);
    f.loader.insert(9, "nine".into()).unwrap();
    f.cache.remove(&9); // evicted, say
    assert_eq!(f.loader.get(&9).unwrap(), s("nine"));
    assert_eq!(f.db.loads(), 2);
}

#[test]
fn a_panicking_load_wakes_its_waiters_with_an_error() {
    let f = fixture(|b| b);
    f.db.set(1, "one");
    f.db.panic_next_load.store(true, Ordering::SeqCst);
    f.db.load_gate.close();
    let results: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| f.loader.get(&1))).collect();
        eventually("three waiters", || {
            f.loader.stats().single_flight_waits == 3
        });
        f.db.load_gate.open();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let panicked = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(panicked, 1, "the leader's thread panics");
    for r in results.into_iter().flatten() {
        assert_eq!(r.unwrap_err().kind(), LoadErrorKind::Panicked);
    }
    assert_eq!(f.loader.stats().load_panics, 1);
    // Nothing was left behind: no flight, no lease.
    assert_eq!(f.loader.get(&1).unwrap(), s("one"));
    assert_eq!(f.db.loads(), 2);
}

// ---------------------------------------------------------------------------------------------
// Leases: a slow load never undoes a newer change

#[test]
fn an_invalidation_during_a_slow_load_refuses_its_fill() {
    let f = fixture(|b| b);
    f.db.set(1, "old");
    f.db.load_gate.close();
    thread::scope(|scope| {
        let reader = scope.spawn(|| f.loader.get(&1));
        eventually("the load has read the old row", || {
            f.db.load_gate.arrivals() == 1
        });
        f.db.set(1, "new");
        f.cache.invalidate_key(&1);
        f.db.load_gate.open();
        // Its caller gets what it loaded...
        assert_eq!(reader.join().unwrap().unwrap(), s("old"));
    });
    // ...but the cache does not keep it.
    assert_eq!(f.cache.get(&1), None);
    assert_eq!(f.loader.stats().fills_refused, 1);
    assert_eq!(f.loader.get(&1).unwrap(), s("new"));
    assert_eq!(f.cache.get(&1), s("new"));
}

#[test]
fn a_write_during_a_slow_load_is_not_overwritten() {
    let f = fixture(|b| b.write_mode(WriteMode::Through));
    f.db.set(1, "old");
    f.db.load_gate.close();
    thread::scope(|scope| {
        let reader = scope.spawn(|| f.loader.get(&1));
        eventually("the load has read the old row", || {
            f.db.load_gate.arrivals() == 1
        });
        f.loader.insert(1, "new".into()).unwrap();
        f.db.load_gate.open();
        assert_eq!(reader.join().unwrap().unwrap(), s("old"));
    });
    assert_eq!(f.cache.get(&1), s("new"));
    assert_eq!(f.loader.get(&1).unwrap(), s("new"));
    assert_eq!(f.db.loads(), 1);
}

#[test]
fn a_lease_held_elsewhere_is_waited_for_not_duplicated() {
    let f = fixture(|b| b);
    f.db.set(1, "from the source");
    let LeaseOutcome::Granted(lease) = f.cache.lease(&1) else {
        panic!("a miss grants a lease")
    };
    thread::scope(|scope| {
        let reader = scope.spawn(|| f.loader.get(&1));
        eventually("the loader waits on the lease", || {
            f.loader.stats().lease_waits == 1
        });
        f.cache
            .fill(lease, "from the holder".into(), &InsertOptions::new())
            .unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), s("from the holder"));
    });
    assert_eq!(f.db.loads(), 0);
}

#[test]
fn a_lease_never_filled_is_waited_out_then_loaded_uncached() {
    let f = fixture(|b| b.lease_wait(Duration::from_millis(20)));
    f.db.set(1, "one");
    let LeaseOutcome::Granted(_abandoned) = f.cache.lease(&1) else {
        panic!("a miss grants a lease")
    };
    assert_eq!(f.loader.get(&1).unwrap(), s("one"));
    assert_eq!(f.cache.get(&1), None, "loaded without a lease: not cached");
    let st = f.loader.stats();
    assert_eq!((st.lease_waits, st.unleased_loads, st.loads), (1, 1, 1));
}

// ---------------------------------------------------------------------------------------------
// Staleness on purpose

#[test]
fn refresh_ahead_reloads_once_in_the_background() {
    let f = fixture(|b| {
        b.refresh_ahead(true).insert_options(
            InsertOptions::new()
                .ttl(secs(100))
                .early_refresh(EarlyRefresh::new(1.0, secs(1))),
        )
    });
    f.db.set(1, "v1");
    assert_eq!(f.loader.get(&1).unwrap(), s("v1"));
    f.db.set(1, "v2");
    f.db.load_gate.close();
    // A microsecond before expiry early refresh fires with probability 1 - 1e-6 per read.
    f.clock.advance(secs(100) - Duration::from_micros(1));
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..20 {
                tx.send(f.loader.get(&1)).unwrap();
            }
        });
        for _ in 0..20 {
            let got = rx.recv_timeout(secs(5)).expect("a reader was blocked");
            assert_eq!(got.unwrap(), s("v1"));
        }
        // The first load passed the gate too.
        eventually("the refresh reached the source", || {
            f.db.load_gate.arrivals() == 2
        });
        f.db.load_gate.open();
    });
    eventually("the refreshed value is cached", || {
        f.cache.get(&1) == s("v2")
    });
    assert_eq!(f.db.loads(), 2, "exactly one background reload");
    assert_eq!(f.loader.stats().refreshes, 1);
    // The refreshed entry has a new deadline, far away: no more refreshes.
    assert_eq!(f.loader.get(&1).unwrap(), s("v2"));
    assert!(f.cache.get_with_metadata(&1).unwrap().metadata.remaining() > Some(secs(99)));
    assert_eq!(f.db.loads(), 2);
}

#[test]
fn stale_while_revalidate_serves_stale_during_one_refresh_then_blocks_after_grace() {
    let f = fixture(|b| {
        b.stale_while_revalidate(secs(30))
            .insert_options(InsertOptions::new().ttl(secs(10)))
    });
    f.db.set(1, "v1");
    assert_eq!(f.loader.get(&1).unwrap(), s("v1"));
    f.db.set(1, "v2");
    f.db.load_gate.close();
    f.clock.advance(secs(15));
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..2 {
                tx.send(f.loader.get(&1)).unwrap();
            }
        });
        for _ in 0..2 {
            let got = rx.recv_timeout(secs(5)).expect("a reader was blocked");
            assert_eq!(got.unwrap(), s("v1"), "the stale value, at once");
        }
        // The first load passed the gate too.
        eventually("the refresh reached the source", || {
            f.db.load_gate.arrivals() == 2
        });
        f.db.load_gate.open();
    });
    eventually("the refreshed value is cached", || {
        f.cache.get(&1) == s("v2")
    });
    let st = f.loader.stats();
    assert_eq!((st.loads, st.refreshes, st.stale_served), (2, 1, 2));

    // Past the grace (the refreshed entry expired at +25 s, its grace ended at +55 s).
    f.db.set(1, "v3");
    f.clock.advance(secs(41));
    assert_eq!(f.loader.get(&1).unwrap(), s("v3"), "a blocking load");
    let st = f.loader.stats();
    assert_eq!((st.loads, st.refreshes, st.stale_served), (3, 1, 2));
}

#[test]
fn stale_if_error_serves_stale_within_grace_and_errors_after() {
    let f = fixture(|b| {
        b.stale_if_error(secs(30))
            .insert_options(InsertOptions::new().ttl(secs(10)))
    });
    f.db.set(1, "v1");
    assert_eq!(f.loader.get(&1).unwrap(), s("v1"));

    f.clock.advance(secs(15));
    f.db.fail_loads.store(1, Ordering::SeqCst);
    assert_eq!(f.loader.get(&1).unwrap(), s("v1"));
    let st = f.loader.stats();
    assert_eq!((st.loads, st.load_errors, st.stale_served), (2, 1, 1));

    f.clock.advance(secs(30)); // 35 s past expiry
    f.db.fail_loads.store(1, Ordering::SeqCst);
    let e = f.loader.get(&1).unwrap_err();
    assert_eq!(e.kind(), LoadErrorKind::Source);
}

// ---------------------------------------------------------------------------------------------
// Write-through

#[test]
fn write_through_writes_the_source_before_returning() {
    let f = fixture(|b| b.write_mode(WriteMode::Through));
    f.loader.insert(1, "a".into()).unwrap();
    assert_eq!(f.db.row(1), s("a"));
    assert_eq!(f.cache.get(&1), s("a"));

    f.db.fail_writes.store(1, Ordering::SeqCst);
    let e = f.loader.insert(1, "b".into()).unwrap_err();
    assert_eq!(e.kind(), WriteErrorKind::Source);
    assert_eq!(e.source_error().unwrap().0, "write 2 failed");
    assert_eq!(
        f.cache.get(&1),
        s("a"),
        "a failed write leaves the cache as it was"
    );
    assert_eq!(f.db.row(1), s("a"));

    f.loader.remove(&1).unwrap();
    assert_eq!(f.db.row(1), None);
    assert_eq!(f.cache.get(&1), None);
    assert_eq!(f.loader.get(&1).unwrap(), None);

    f.loader.shutdown();
    let e = f.loader.insert(2, "c".into()).unwrap_err();
    assert_eq!(e.kind(), WriteErrorKind::Closed);
}

#[test]
fn without_a_write_mode_writes_reach_the_cache_only() {
    let f = fixture(|b| b);
    f.loader.insert(1, "cached".into()).unwrap();
    assert_eq!(f.loader.get(&1).unwrap(), s("cached"));
    assert_eq!(f.db.row(1), None);
    assert_eq!(f.db.loads(), 0);
}

// ---------------------------------------------------------------------------------------------
// Write-behind

fn behind(config: WriteBehindConfig) -> impl FnOnce(Builder) -> Builder {
    move |b| b.write_mode(WriteMode::Behind(config))
}

#[test]
fn write_behind_keeps_per_key_order() {
    let f = fixture(behind(
        WriteBehindConfig::new()
            .max_batch(8)
            .max_delay(Duration::from_millis(1)),
    ));
    for i in 0..300u32 {
        f.loader.insert(i % 3, i.to_string()).unwrap();
        if i % 50 == 49 {
            f.loader.remove(&(i % 3)).unwrap();
        }
    }
    f.loader.flush();
    let applied = f.db.applied.lock().unwrap().clone();
    for k in 0..3 {
        let mut last = None;
        for op in applied.iter().filter(|op| *op.key() == k) {
            if let WriteOp::Put(_, v) = op {
                let v: u32 = v.parse().unwrap();
                assert!(last < Some(v), "key {k}: {v} written after {last:?}");
                last = Some(v);
            }
        }
        assert_eq!(
            f.db.row(k),
            f.cache.get(&k),
            "key {k}: cache and source agree"
        );
    }
    assert_eq!(f.db.row(0), s("297"));
    assert_eq!(f.db.row(2), None, "299 % 3 was removed last");
}

#[test]
fn write_behind_batches_and_coalesces() {
    let f = fixture(behind(WriteBehindConfig::new().max_delay(secs(3600))));
    f.loader.insert(1, "a".into()).unwrap();
    f.loader.insert(2, "b".into()).unwrap();
    f.loader.insert(1, "c".into()).unwrap();
    f.loader.insert(3, "d".into()).unwrap();
    assert!(
        f.db.batches.lock().unwrap().is_empty(),
        "held for the batch"
    );
    f.loader.flush();
    assert_eq!(*f.db.batches.lock().unwrap(), vec![3]);
    assert_eq!(f.db.row(1), s("c"));
    let st = f.loader.stats();
    assert_eq!(
        (st.writes_queued, st.writes_written, st.writes_coalesced),
        (4, 3, 1)
    );
}

#[test]
fn write_behind_applies_backpressure() {
    let f = fixture(behind(
        WriteBehindConfig::new()
            .queue_capacity(2)
            .max_batch(1)
            .max_delay(Duration::ZERO),
    ));
    f.db.write_gate.close();
    f.loader.insert(1, "a".into()).unwrap();
    f.loader.insert(2, "b".into()).unwrap();
    let e = f.loader.try_insert(3, "c".into()).unwrap_err();
    assert_eq!(e.kind(), WriteErrorKind::Full);
    assert_eq!(
        f.cache.get(&3),
        None,
        "a refused write leaves the cache untouched"
    );
    assert_eq!(
        f.loader.try_remove(&1).unwrap_err().kind(),
        WriteErrorKind::Full
    );

    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        scope.spawn(|| tx.send(f.loader.insert(3, "c".into())).unwrap());
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the third write waits while two are unwritten"
        );
        f.db.write_gate.open();
        rx.recv_timeout(secs(5)).expect("room was made").unwrap();
    });
    f.loader.flush();
    for (k, v) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(f.db.row(k), s(v));
    }
}

#[test]
fn write_behind_retries_failed_batches() {
    let f = fixture(behind(
        WriteBehindConfig::new().retry(RetryPolicy::new(5, Duration::from_millis(1))),
    ));
    f.db.fail_writes.store(2, Ordering::SeqCst);
    f.loader.insert(1, "a".into()).unwrap();
    f.loader.flush();
    assert_eq!(f.db.row(1), s("a"));
    assert_eq!(f.db.batches.lock().unwrap().len(), 1, "written once");
    let st = f.loader.stats();
    assert_eq!(
        (st.write_retries, st.writes_written, st.writes_failed),
        (2, 1, 0)
    );
    assert!(f.loader.failed_writes().is_empty());
}

#[test]
fn write_behind_gives_up_after_its_retries_and_says_so() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    let f = fixture(|b| {
        b.write_mode(WriteMode::Behind(
            WriteBehindConfig::new().retry(RetryPolicy::new(2, Duration::from_millis(1))),
        ))
        .on_write_failure(move |w: &lethe::loader::FailedWrite<u32, String>| {
            sink.lock().unwrap().push(w.op.clone())
        })
    });
    f.db.fail_writes.store(usize::MAX, Ordering::SeqCst);
    f.loader.insert(1, "lost".into()).unwrap();
    f.loader.flush();
    let failed = f.loader.failed_writes();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].op, WriteOp::Put(1, "lost".to_string()));
    assert_eq!(failed[0].attempts, 2);
    assert!(failed[0].error.contains("failed"), "{}", failed[0].error);
    assert_eq!(*heard.lock().unwrap(), vec![WriteOp::Put(1, "lost".into())]);
    // The cache no longer claims a write the source never got.
    assert_eq!(f.cache.get(&1), None);
    assert_eq!(f.loader.get(&1).unwrap(), None);
    assert_eq!(f.loader.stats().writes_failed, 1);
    assert_eq!(f.loader.shutdown().failed, failed);
}

#[test]
fn write_behind_reads_its_own_pending_writes() {
    let f = fixture(behind(WriteBehindConfig::new()));
    f.db.set(1, "old");
    f.db.write_gate.close();
    f.loader.insert(1, "new".into()).unwrap();
    f.cache.remove(&1); // evicted before the write reached the source
    assert_eq!(f.loader.get(&1).unwrap(), s("new"));
    assert_eq!(f.db.loads(), 0);
    f.db.write_gate.open();
    f.loader.flush();
    assert_eq!(f.db.row(1), s("new"));
}

#[test]
fn no_acknowledged_write_is_lost_on_shutdown() {
    const THREADS: u32 = 8;
    const KEYS: u32 = 200;
    let f = fixture(behind(
        WriteBehindConfig::new()
            .queue_capacity(16)
            .max_batch(8)
            .max_delay(Duration::from_millis(1))
            .retry(RetryPolicy::new(10, Duration::from_micros(100))),
    ));
    // Transient failures all along: every third write call fails.
    f.db.fail_every.store(3, Ordering::SeqCst);
    let acknowledged: HashMap<u32, String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let loader = &f.loader;
                scope.spawn(move || {
                    let mut acked = HashMap::new();
                    for round in 0..3 {
                        for i in 0..KEYS {
                            let k = t * 1000 + i;
                            let v = format!("{k}/{round}");
                            loader.insert(k, v.clone()).unwrap();
                            acked.insert(k, v);
                        }
                    }
                    acked
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let report = f.loader.shutdown();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(acknowledged.len(), (THREADS * KEYS) as usize);
    for (k, v) in &acknowledged {
        assert_eq!(f.db.row(*k).as_ref(), Some(v), "key {k}");
    }
    let st = f.loader.stats();
    assert!(st.write_retries > 0, "failures were injected");
    assert_eq!(st.writes_queued, u64::from(THREADS * KEYS * 3));
    assert_eq!(
        st.writes_queued,
        st.writes_written + st.writes_coalesced + st.writes_failed
    );
    assert_eq!(report.written, st.writes_written);
    assert_eq!(
        f.loader.insert(1, "late".into()).unwrap_err().kind(),
        WriteErrorKind::Closed
    );
}

#[test]
fn dropping_the_loader_writes_everything_too() {
    let f = fixture(behind(WriteBehindConfig::new().max_delay(secs(3600))));
    for k in 0..100 {
        f.loader.insert(k, format!("v{k}")).unwrap();
    }
    let db = f.db.clone();
    drop(f);
    for k in 0..100 {
        assert_eq!(db.row(k), Some(format!("v{k}")));
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn loaders_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<DbLoader>();
    shareable::<lethe::loader::LoadError<DbError>>();
    shareable::<lethe::loader::WriteError<DbError>>();
}

#[test]
fn invalid_settings_are_rejected_with_a_reason() {
    let cache: Cache<u32, String> = Cache::new(10);
    let db = Arc::new(Db::default());
    let e = Loader::builder(cache.clone(), db.clone())
        .stale_while_revalidate(secs(1))
        .refresh_threads(0)
        .try_build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.message().contains("refresh_threads"));
    let e = Loader::builder(cache, db)
        .write_mode(WriteMode::Behind(
            WriteBehindConfig::new().queue_capacity(0),
        ))
        .try_build()
        .unwrap_err();
    assert!(e.message().contains("queue_capacity"));
}

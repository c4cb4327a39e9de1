//! Helpers shared by the invalidation tests.

use lethe::{
    Cache, CacheBuilder, InsertOptions, RemovalCause, clock::ManualClock, clock::Timestamp,
    lease::LeaseOutcome, version::Inserted, version::RejectReason, version::Rejected,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const START: u64 = 1_700_000_000_000_000_000;

pub(crate) type C = Cache<String, String>;
pub(crate) type B = CacheBuilder<String, String>;
pub(crate) type Log = Arc<Mutex<Vec<(String, String, RemovalCause)>>>;

pub(crate) fn s(x: &str) -> String {
    x.to_owned()
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache on a manual clock with a listener recording every removal.
pub(crate) fn setup(configure: impl FnOnce(B) -> B) -> (C, Arc<ManualClock>, Log) {
    let clock = Arc::new(ManualClock::new(Timestamp(START)));
    let log: Log = Arc::default();
    let sink = log.clone();
    let builder = Cache::builder()
        .max_capacity(10_000)
        .clock(clock.clone())
        .removal_listener(move |k: &String, v: &String, c: RemovalCause| {
            sink.lock().unwrap().push((k.clone(), v.clone(), c));
        });
    (configure(builder).build(), clock, log)
}

pub(crate) fn cache() -> (C, Log) {
    let (c, _, log) = setup(|b| b);
    (c, log)
}

pub(crate) fn drain(log: &Log) -> Vec<(String, String, RemovalCause)> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// The drained log as `key -> cause`, asserting that no key was reported twice.
pub(crate) fn causes(log: &Log) -> HashMap<String, RemovalCause> {
    let mut out = HashMap::new();
    for (k, _, c) in drain(log) {
        assert!(out.insert(k.clone(), c).is_none(), "{k} reported twice");
    }
    out
}

pub(crate) fn tags(t: &[&str]) -> InsertOptions<String> {
    InsertOptions::new().tags(t.iter().copied())
}

pub(crate) fn deps(d: &[&str]) -> InsertOptions<String> {
    d.iter()
        .fold(InsertOptions::new(), |o, k| o.depends_on(s(k)))
}

pub(crate) fn put(c: &C, k: &str, v: &str, o: &InsertOptions<String>) {
    c.try_insert(s(k), s(v), o)
        .unwrap_or_else(|e| panic!("insert {k}: {e}"));
}

pub(crate) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub(crate) fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|x| s(x)).collect();
    v.sort();
    v
}

pub(crate) fn present(c: &C, keys: &[&str]) -> Vec<String> {
    strs(
        &keys
            .iter()
            .copied()
            .filter(|k| c.get(*k).is_some())
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn granted(c: &C, k: &str) -> lethe::lease::Lease<String> {
    match c.lease(&s(k)) {
        LeaseOutcome::Granted(l) => l,
        other => panic!("lease({k}): expected a grant, got {other:?}"),
    }
}

pub(crate) fn rejected(
    reason: RejectReason,
    current_version: Option<u64>,
) -> Result<Inserted, Rejected> {
    Err(Rejected {
        reason,
        current_version,
    })
}

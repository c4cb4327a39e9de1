//! Invalidation tests: subscribers.

use super::common::*;
use lethe::{Cache, InsertOptions, Invalidation, invalidate::Applied};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<Applied<String>>>>;

fn subscribed(configure: impl FnOnce(B) -> B) -> (C, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let c = configure(
        Cache::builder()
            .max_capacity(10_000)
            .subscriber(move |a: &Applied<String>| sink.lock().unwrap().push(a.clone())),
    )
    .build();
    (c, seen)
}

#[test]
fn subscribers_hear_every_invalidation_in_sequence() {
    let (c, seen) = subscribed(|b| b);
    assert_eq!(c.last_seq(), 0);
    c.insert(s("key:1"), s("v"));
    c.insert(s("key:2"), s("v"));
    c.insert(s("key:3"), s("v"));
    put(&c, "tagged", "v", &tags(&["t"]));

    assert!(c.invalidate_key("key:1"));
    assert!(!c.invalidate_key("absent"));
    assert_eq!(c.invalidate_tag("t"), 3);
    assert_eq!(c.invalidate_prefix("key:"), 2);
    assert_eq!(c.invalidate_glob("x*"), 0);
    c.set_version_floor_prefix("p:", 5);
    c.set_version_floor_tag("f", 6).unwrap();
    assert_eq!(c.invalidate_tags(&["u", "w"]).unwrap(), 9);
    assert_eq!(c.invalidate(Invalidation::Tag(s("t2"))).unwrap().seq, 10);
    assert_eq!(c.invalidate(Invalidation::Key(s("k"))).unwrap().seq, 11);
    assert_eq!(
        c.invalidate(Invalidation::Prefix(b"q".to_vec())).unwrap(),
        Applied {
            seq: 12,
            invalidation: Invalidation::Prefix(b"q".to_vec()),
            removed: Some(0),
        }
    );
    assert!(c.invalidate(Invalidation::Tag(s("bad::tag"))).is_err());
    assert_eq!(c.last_seq(), 12);

    let seen = seen.lock().unwrap().clone();
    let seqs: Vec<u64> = seen.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    let what: Vec<(Invalidation<String>, Option<usize>)> = seen
        .into_iter()
        .map(|a| match a.invalidation {
            // A tag floor may remove eagerly (and count) or hide lazily (no count); nothing
            // was under `f` here either way.
            Invalidation::TagFloor(..) if a.removed == Some(0) => (a.invalidation, None),
            _ => (a.invalidation, a.removed),
        })
        .collect();
    assert_eq!(
        what,
        vec![
            (Invalidation::Key(s("key:1")), Some(1)),
            (Invalidation::Key(s("absent")), Some(0)),
            (Invalidation::Tag(s("t")), None),
            (Invalidation::Prefix(b"key:".to_vec()), Some(2)),
            (Invalidation::Glob(b"x*".to_vec()), Some(0)),
            (Invalidation::PrefixFloor(b"p:".to_vec(), 5), Some(0)),
            (Invalidation::TagFloor(s("f"), 6), None),
            (Invalidation::Tag(s("u")), None),
            (Invalidation::Tag(s("w")), None),
            (Invalidation::Tag(s("t2")), None),
            (Invalidation::Key(s("k")), Some(0)),
            (Invalidation::Prefix(b"q".to_vec()), Some(0)),
        ]
    );
}

#[test]
fn invalidate_applies_every_kind() {
    let (c, _) = subscribed(|b| b.index_keys());
    put(&c, "a", "v", &tags(&["t:1"]));
    put(&c, "b:1", "v", &InsertOptions::new());
    put(&c, "c:x", "v", &InsertOptions::new());
    put(&c, "d", "v", &InsertOptions::new().version(1));
    put(&c, "e", "v", &tags(&["f"]).version(1));
    put(&c, "k", "v", &InsertOptions::new());
    let all = ["a", "b:1", "c:x", "d", "e", "k"];
    let removed = |i: Invalidation<String>| c.invalidate(i).unwrap().removed;
    assert_eq!(removed(Invalidation::Tag(s("t"))), None);
    assert_eq!(removed(Invalidation::Prefix(b"b:".to_vec())), Some(1));
    assert_eq!(removed(Invalidation::Glob(b"c:?".to_vec())), Some(1));
    assert_eq!(
        removed(Invalidation::PrefixFloor(b"d".to_vec(), 2)),
        Some(1)
    );
    assert!(matches!(
        removed(Invalidation::TagFloor(s("f"), 2)),
        None | Some(1)
    ));
    assert_eq!(present(&c, &all), strs(&["k"]));
    let applied = c.invalidate(Invalidation::Key(s("k"))).unwrap();
    assert_eq!((applied.seq, applied.removed), (6, Some(1)));
    assert_eq!(c.get("k"), None);
    assert_eq!(c.last_seq(), 6);
}

#[test]
fn subscriber_sequence_is_contiguous_under_concurrent_invalidations() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 400;
    let log: Arc<Mutex<Vec<(u64, std::thread::ThreadId)>>> = Arc::default();
    let sink = log.clone();
    let c: C = Cache::builder()
        .max_capacity(10_000)
        .index_keys()
        .subscriber(move |a: &Applied<String>| {
            sink.lock()
                .unwrap()
                .push((a.seq, std::thread::current().id()));
        })
        .build();
    for i in 0..200 {
        put(
            &c,
            &format!("k{i}"),
            "v",
            &tags(&[&format!("t:{}", i % 10)]),
        );
    }
    let returned: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let c = c.clone();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..PER_THREAD {
                        match i % 4 {
                            0 => mine.push(c.invalidate_tag(&format!("t:{}", i % 10))),
                            1 => {
                                c.invalidate_key(format!("k{}", (t * 7 + i) % 200).as_str());
                            }
                            2 => {
                                c.invalidate_prefix(format!("k{}", i % 20));
                            }
                            _ => {
                                c.invalidate_glob(format!("k?{}", i % 10));
                            }
                        }
                        if i % 16 == 0 {
                            c.insert(format!("k{i}"), s("v"));
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(c.last_seq(), total);
    let log = log.lock().unwrap().clone();
    // Delivered in order, one each: exactly 1, 2, 3, ...
    let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    // Each thread saw its own invalidations in increasing order.
    let mut by_thread: HashMap<std::thread::ThreadId, Vec<u64>> = HashMap::new();
    for (seq, t) in &log {
        by_thread.entry(*t).or_default().push(*seq);
    }
    assert_eq!(by_thread.len(), THREADS);
    for v in by_thread.values() {
        assert_eq!(v.len(), PER_THREAD);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
    }
    // The sequence numbers handed back to callers are increasing per thread and, together,
    // exactly the ones the subscriber heard for tags.
    let mut all = BTreeSet::new();
    for mine in &returned {
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        for s in mine {
            assert!(all.insert(*s), "sequence number {s} handed out twice");
        }
    }
    assert_eq!(all.len(), THREADS * PER_THREAD / 4);
    assert!(all.iter().all(|s| (1..=total).contains(s)));
}

#[test]
fn subscriber_may_read_the_cache_and_sees_the_invalidation_applied() {
    let slot: Arc<Mutex<Option<C>>> = Arc::default();
    let observed: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let (s2, o2) = (slot.clone(), observed.clone());
    let c: C = Cache::builder()
        .max_capacity(100)
        .subscriber(move |_: &Applied<String>| {
            if let Some(c) = s2.lock().unwrap().as_ref() {
                o2.lock().unwrap().push(c.get("k"));
            }
        })
        .build();
    *slot.lock().unwrap() = Some(c.clone());
    put(&c, "k", "v", &tags(&["t"]));
    c.invalidate_tag("t");
    put(&c, "k", "v", &InsertOptions::new());
    c.invalidate_key("k");
    assert_eq!(*observed.lock().unwrap(), vec![None, None]);
    slot.lock().unwrap().take();
}

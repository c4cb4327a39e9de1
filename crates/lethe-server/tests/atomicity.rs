//! Atomicity without a global lock: many clients changing the same keys at once must lose no
//! update (each read-modify-write runs under its key's shard lock), multi-key commands must be
//! seen whole, and MULTI/EXEC must be isolated from every other client.

mod common;

use common::{Client, Lethe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

const CLIENTS: usize = 8;
const ROUNDS: usize = 300;

/// Runs `work(client, i)` on `CLIENTS` connections at once.
fn in_parallel(lethe: &Lethe, work: impl Fn(&mut Client, usize) + Send + Sync + 'static) {
    let work = Arc::new(work);
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut c = lethe.client();
            let work = work.clone();
            thread::spawn(move || work(&mut c, i))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_read_modify_writes_lose_no_update() {
    let lethe = Lethe::start();
    in_parallel(&lethe, |c, i| {
        for r in 0..ROUNDS {
            let key = format!("counter:{}", r % 4);
            assert!(c.cmd(&["INCR", &key]).starts_with(':'));
            assert!(
                c.cmd(&["HINCRBY", "h", &format!("f{}", r % 3), "2"])
                    .starts_with(':')
            );
            assert!(c.cmd(&["APPEND", "log", "x"]).starts_with(':'));
            assert!(c.cmd(&["INCRBYFLOAT", "float", "0.5"]).starts_with('$'));
            // A field per client and round: HSET must keep every other writer's fields.
            assert_eq!(
                c.cmd(&["HSET", "wide", &format!("c{i}:r{r}"), "v"]),
                ":1\r\n"
            );
        }
    });
    let mut c = lethe.client();
    let total: i64 = (0..4)
        .map(|k| {
            let reply = c.cmd(&["GET", &format!("counter:{k}")]);
            reply.lines().nth(1).unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(total, (CLIENTS * ROUNDS) as i64);
    let fields = c.cmd(&["HVALS", "h"]);
    let sum: i64 = fields
        .lines()
        .filter(|l| !l.starts_with(['*', '$']))
        .map(|l| l.parse::<i64>().unwrap())
        .sum();
    assert_eq!(sum, (2 * CLIENTS * ROUNDS) as i64);
    assert_eq!(
        c.cmd(&["STRLEN", "log"]),
        format!(":{}\r\n", CLIENTS * ROUNDS)
    );
    let float = c.cmd(&["GET", "float"]);
    assert_eq!(
        float.lines().nth(1).unwrap(),
        (CLIENTS * ROUNDS / 2).to_string()
    );
    assert_eq!(
        c.cmd(&["HLEN", "wide"]),
        format!(":{}\r\n", CLIENTS * ROUNDS)
    );
}

/// Parses `*2 $n a $n b` into two integers.
fn two_ints(reply: &str) -> (i64, i64) {
    let v: Vec<i64> = reply
        .lines()
        .filter(|l| !l.starts_with(['*', '$']))
        .map(|l| l.parse().unwrap())
        .collect();
    (v[0], v[1])
}

#[test]
fn mset_is_seen_whole_by_mget() {
    let lethe = Lethe::start();
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = lethe.client();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = lethe.client();
            let done = done.clone();
            thread::spawn(move || {
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) && seen < 20_000 {
                    let reply = c.cmd(&["MGET", "left", "right"]);
                    if reply.contains("$-1") {
                        continue;
                    }
                    let (a, b) = two_ints(&reply);
                    assert_eq!(a, b, "MGET saw half of an MSET");
                    seen += 1;
                }
            })
        })
        .collect();
    for i in 0..2_000 {
        let v = i.to_string();
        assert_eq!(writer.cmd(&["MSET", "left", &v, "right", &v]), "+OK\r\n");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn multi_exec_transfers_are_isolated() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    // Several pairs, so that some pair's keys sit in different shards.
    const PAIRS: usize = 4;
    const WIDEN: usize = 32;
    for p in 0..PAIRS {
        c.cmd(&[
            "MSET",
            &format!("acct:{p}:a"),
            "1000",
            &format!("acct:{p}:b"),
            "0",
        ]);
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|n| {
            let mut c = lethe.client();
            let done = done.clone();
            thread::spawn(move || {
                let mut rounds = 0;
                while !done.load(Ordering::Relaxed) && rounds < 20_000 {
                    let p = rounds % PAIRS;
                    let (a, b) = (format!("acct:{p}:a"), format!("acct:{p}:b"));
                    // One reader reads with MGET, the other inside its own transaction.
                    let reply = if n == 0 {
                        c.cmd(&["MGET", &a, &b])
                    } else {
                        assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
                        c.cmd(&["GET", &a]);
                        c.cmd(&["GET", &b]);
                        c.cmd(&["EXEC"])
                    };
                    let (x, y) = two_ints(&reply);
                    assert_eq!(x + y, 1000, "a transaction was seen half done: {reply:?}");
                    rounds += 1;
                }
            })
        })
        .collect();
    in_parallel(&lethe, |c, i| {
        for r in 0..ROUNDS / 2 {
            let p = (i + r) % PAIRS;
            assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
            assert_eq!(
                c.cmd(&["DECRBY", &format!("acct:{p}:a"), "1"]),
                "+QUEUED\r\n"
            );
            // Work between the two halves widens the window a non-isolated EXEC would show.
            for k in 0..WIDEN {
                let other = format!("other:{i}:{k}");
                assert_eq!(c.cmd(&["APPEND", &other, "x"]), "+QUEUED\r\n");
            }
            assert_eq!(
                c.cmd(&["INCRBY", &format!("acct:{p}:b"), "1"]),
                "+QUEUED\r\n"
            );
            assert!(c.cmd(&["EXEC"]).starts_with(&format!("*{}\r\n", WIDEN + 2)));
        }
    });
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let moved: i64 = (0..PAIRS)
        .map(|p| two_ints(&c.cmd(&["MGET", &format!("acct:{p}:a"), &format!("acct:{p}:b")])).1)
        .sum();
    assert_eq!(moved, (CLIENTS * (ROUNDS / 2)) as i64);
}

#[test]
fn watch_retries_make_optimistic_increments_exact() {
    let lethe = Lethe::start();
    in_parallel(&lethe, |c, _| {
        for _ in 0..50 {
            // Redis's check-and-set recipe: retry until EXEC is not aborted.
            for attempt in 0.. {
                assert!(attempt < 10_000, "WATCH never let a transaction through");
                c.cmd(&["WATCH", "cas"]);
                let reply = c.cmd(&["GET", "cas"]);
                let n: i64 = reply.lines().nth(1).map_or(0, |v| v.parse().unwrap());
                c.cmd(&["MULTI"]);
                c.cmd(&["SET", "cas", &(n + 1).to_string()]);
                if c.cmd(&["EXEC"]) != "*-1\r\n" {
                    break;
                }
            }
        }
    });
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["GET", "cas"]),
        format!(
            "${}\r\n{}\r\n",
            (CLIENTS * 50).to_string().len(),
            CLIENTS * 50
        )
    );
}

#[test]
fn transactions_holding_the_keyspace_whole_run_invalidations_and_let_others_go_on() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let mut other = lethe.client();
    assert_eq!(c.cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LETHE.SET", "b", "2", "TAGS", "1", "t"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "KEY", "a"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "t"]), "+QUEUED\r\n");
    assert_eq!(
        c.cmd(&["LETHE.EVENT", "user", "update", "1"]),
        "+QUEUED\r\n"
    );
    assert_eq!(c.cmd(&["KEYS", "*"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["FLUSHALL"]), "+QUEUED\r\n");
    assert_eq!(
        c.cmd(&["EXEC"]),
        "*5\r\n:1\r\n:1\r\n:0\r\n*0\r\n+OK\r\n",
        "EXEC of whole-keyspace commands ran to the end"
    );
    // The gate was released: another client's write goes through.
    assert_eq!(other.cmd(&["SET", "a", "3"]), "+OK\r\n");
}

/// Sorted sets: concurrent ZINCRBY and ZADD lose nothing, and ZPOPMIN hands each member to
/// exactly one client.
#[test]
fn concurrent_sorted_set_updates_lose_nothing() {
    let lethe = Lethe::start();
    in_parallel(&lethe, |c, i| {
        for r in 0..ROUNDS {
            assert!(
                c.cmd(&["ZINCRBY", "scores", "1", &format!("m{}", r % 5)])
                    .starts_with('$')
            );
            assert_eq!(
                c.cmd(&["ZADD", "wide", &r.to_string(), &format!("c{i}:r{r}")]),
                ":1\r\n"
            );
        }
    });
    let mut c = lethe.client();
    let reply = c.cmd(&["ZRANGE", "scores", "0", "-1", "WITHSCORES"]);
    let scores: f64 = reply
        .lines()
        .filter(|l| !l.starts_with(['*', '$', 'm']))
        .map(|l| l.parse::<f64>().unwrap())
        .sum();
    assert_eq!(scores, (CLIENTS * ROUNDS) as f64);
    assert_eq!(
        c.cmd(&["ZCARD", "wide"]),
        format!(":{}\r\n", CLIENTS * ROUNDS)
    );
    // Every member popped once, by one client.
    let popped = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = popped.clone();
    in_parallel(&lethe, move |c, _| {
        loop {
            let reply = c.cmd(&["ZPOPMIN", "wide"]);
            if reply == "*0\r\n" {
                break;
            }
            let member = reply.lines().nth(2).unwrap().to_string();
            sink.lock().push(member);
        }
    });
    let mut popped = popped.lock().clone();
    assert_eq!(popped.len(), CLIENTS * ROUNDS);
    popped.sort();
    popped.dedup();
    assert_eq!(popped.len(), CLIENTS * ROUNDS);
}

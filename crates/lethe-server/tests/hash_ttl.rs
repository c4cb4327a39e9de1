//! Hash field expiration (Redis 7.4's HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT, HTTL, HPTTL,
//! HEXPIRETIME, HPEXPIRETIME, HPERSIST). The redis-server the other suites compare against is
//! 7.0, which lacks these, so the replies Redis 7.4 documents are asserted directly, raw.
//! Deadlines are short and reached by polling with a bound, never by timed assertions.

mod common;

use common::{Client, Lethe};
use std::time::{Duration, Instant};

/// Polls `check` until it holds, for at most 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn int(reply: &str) -> i64 {
    reply.trim_start_matches(':').trim().parse().unwrap()
}

/// An array reply of integers.
fn ints(reply: &str) -> Vec<i64> {
    let mut lines = reply.split("\r\n");
    let head = lines.next().unwrap();
    assert!(head.starts_with('*'), "{reply}");
    lines.filter(|l| !l.is_empty()).map(int).collect()
}

#[test]
fn replies_and_errors_are_redis_7_4s() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2", "f3", "v3"]),
        ":3\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "100", "FIELDS", "2", "f1", "nosuch"]),
        "*2\r\n:1\r\n:-2\r\n"
    );
    let ttl = ints(&c.cmd(&["HTTL", "h", "FIELDS", "3", "f1", "f2", "nosuch"]));
    assert!(
        (99..=100).contains(&ttl[0]) && ttl[1..] == [-1, -2],
        "{ttl:?}"
    );
    let pttl = ints(&c.cmd(&["HPTTL", "h", "FIELDS", "1", "f1"]))[0];
    assert!((98_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "h"]), "$10\r\nlistpackex\r\n");
    // Conditions, field by field.
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "200", "NX", "FIELDS", "2", "f1", "f2"]),
        "*2\r\n:0\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "300", "XX", "FIELDS", "2", "f1", "f3"]),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "250", "GT", "FIELDS", "3", "f1", "f2", "f3"]),
        "*3\r\n:0\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "50", "lt", "FIELDS", "3", "f1", "f2", "f3"]),
        "*3\r\n:1\r\n:1\r\n:1\r\n"
    );
    // Absolute times, reported back exactly.
    assert_eq!(
        c.cmd(&["HPEXPIREAT", "h", "69999999999999", "FIELDS", "1", "f1"]),
        "*1\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HPEXPIRETIME", "h", "FIELDS", "2", "f1", "nosuch"]),
        "*2\r\n:69999999999999\r\n:-2\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIREAT", "h", "69999999999", "FIELDS", "1", "f1"]),
        "*1\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRETIME", "h", "FIELDS", "1", "f1"]),
        "*1\r\n:69999999999\r\n"
    );
    // A time now or past deletes the field: 2.
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "0", "FIELDS", "1", "f3"]),
        "*1\r\n:2\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIREAT", "h", "1", "FIELDS", "1", "f3"]),
        "*1\r\n:-2\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "f3"]), "$-1\r\n");
    assert_eq!(c.cmd(&["HLEN", "h"]), ":2\r\n");
    // HPERSIST: 1 removed, -1 no TTL, -2 no field.
    assert_eq!(c.cmd(&["HSET", "h", "f4", "v4"]), ":1\r\n");
    assert_eq!(
        c.cmd(&["HPERSIST", "h", "FIELDS", "4", "f1", "f4", "nosuch", "f1"]),
        "*4\r\n:1\r\n:-1\r\n:-2\r\n:-1\r\n"
    );
    assert_eq!(c.cmd(&["HTTL", "h", "FIELDS", "1", "f1"]), "*1\r\n:-1\r\n");
    // A missing key: every field is missing.
    for cmd in [
        &["HEXPIRE", "none", "10", "FIELDS", "2", "a", "b"][..],
        &["HTTL", "none", "FIELDS", "2", "a", "b"],
        &["HPERSIST", "none", "FIELDS", "2", "a", "b"],
    ] {
        assert_eq!(c.cmd(cmd), "*2\r\n:-2\r\n:-2\r\n", "{cmd:?}");
    }
    // Errors, with the type checked first.
    assert_eq!(c.cmd(&["SET", "s", "x"]), "+OK\r\n");
    for (cmd, want) in [
        (
            &["HEXPIRE", "s", "x", "FIELDS", "1", "a"][..],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["HTTL", "s", "FIELDS", "0", "a"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["HEXPIRE", "h", "x", "FIELDS", "1", "a"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"],
            "ERR invalid expire time, must be >= 0",
        ),
        (
            &["HEXPIRE", "h", "70368744178", "FIELDS", "1", "a"],
            "ERR invalid expire time in 'hexpire' command",
        ),
        (
            &["HPEXPIREAT", "h", "70368744177664", "FIELDS", "1", "a"],
            "ERR invalid expire time in 'hpexpireat' command",
        ),
        (
            &["HPEXPIRE", "h", "9223372036854775807", "FIELDS", "1", "a"],
            "ERR invalid expire time in 'hpexpire' command",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELD", "1", "a"],
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ),
        (
            &["HEXPIRE", "h", "10", "NX", "XX", "FIELDS", "1", "a"],
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "0", "a"],
            "ERR Parameter `numFields` should be greater than 0",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "x", "a"],
            "ERR Parameter `numFields` should be greater than 0",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "2", "a"],
            "ERR The `numfields` parameter must match the number of arguments",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "1", "a", "b"],
            "ERR The `numfields` parameter must match the number of arguments",
        ),
        (
            &["HTTL", "h", "FIELDS", "3", "a", "b"],
            "ERR The `numfields` parameter must match the number of arguments",
        ),
        (
            &["HPERSIST", "h", "FIELDS", "-1", "a"],
            "ERR Parameter `numFields` should be greater than 0",
        ),
        (
            &["HTTL", "h", "NOTFIELDS", "1", "a"],
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "1"],
            "ERR wrong number of arguments for 'hexpire' command",
        ),
        (
            &["HTTL", "h", "FIELDS", "1"],
            "ERR wrong number of arguments for 'httl' command",
        ),
    ] {
        assert_eq!(c.cmd(cmd), format!("-{want}\r\n"), "{cmd:?}");
    }
}

#[test]
fn expired_fields_are_invisible_and_removed() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["HSET", "h", "gone", "xyz", "kept", "1"]), ":2\r\n");
    assert_eq!(
        c.cmd(&["HPEXPIRE", "h", "30", "FIELDS", "1", "gone"]),
        "*1\r\n:1\r\n"
    );
    eventually("the field expires", || {
        c.cmd(&["HGET", "h", "gone"]) == "$-1\r\n"
    });
    assert_eq!(c.cmd(&["HEXISTS", "h", "gone"]), ":0\r\n");
    assert_eq!(c.cmd(&["HSTRLEN", "h", "gone"]), ":0\r\n");
    assert_eq!(c.cmd(&["HLEN", "h"]), ":1\r\n");
    assert_eq!(c.cmd(&["HGETALL", "h"]), "*2\r\n$4\r\nkept\r\n$1\r\n1\r\n");
    assert_eq!(c.cmd(&["HKEYS", "h"]), "*1\r\n$4\r\nkept\r\n");
    assert_eq!(c.cmd(&["HVALS", "h"]), "*1\r\n$1\r\n1\r\n");
    assert_eq!(
        c.cmd(&["HMGET", "h", "gone", "kept"]),
        "*2\r\n$-1\r\n$1\r\n1\r\n"
    );
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "5"]), "*1\r\n$4\r\nkept\r\n");
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0"]),
        "*2\r\n$1\r\n0\r\n*2\r\n$4\r\nkept\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        c.cmd(&["HTTL", "h", "FIELDS", "1", "gone"]),
        "*1\r\n:-2\r\n"
    );
    // Gone for good (removed, not only hidden): the encoding has no deadlines left.
    eventually("the sweep removes it", || {
        c.cmd(&["OBJECT", "ENCODING", "h"]) == "$8\r\nlistpack\r\n"
    });
    // HINCRBY on the expired field starts from nothing.
    assert_eq!(c.cmd(&["HINCRBY", "h", "gone", "5"]), ":5\r\n");
    // A hash whose last field expires is deleted, by the sweep, with nobody touching it.
    assert_eq!(c.cmd(&["HSET", "solo", "a", "1", "b", "2"]), ":2\r\n");
    assert_eq!(
        c.cmd(&["HPEXPIRE", "solo", "20", "FIELDS", "2", "a", "b"]),
        "*2\r\n:1\r\n:1\r\n"
    );
    eventually("the hash is deleted", || {
        c.cmd(&["EXISTS", "solo"]) == ":0\r\n"
    });
    // A large (hashtable) hash too, and RENAME carries the deadlines to the new name.
    let mut args = vec!["HSET".to_string(), "big".to_string()];
    for i in 0..200 {
        args.push(format!("f{i}"));
        args.push("v".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(c.cmd(&args), ":200\r\n");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "big"]), "$9\r\nhashtable\r\n");
    assert_eq!(
        c.cmd(&["HPEXPIRE", "big", "1000000", "FIELDS", "2", "f0", "f1"]),
        "*2\r\n:1\r\n:1\r\n"
    );
    assert_eq!(c.cmd(&["RENAME", "big", "big2"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["HPEXPIRE", "big2", "20", "FIELDS", "1", "f0"]),
        "*1\r\n:1\r\n"
    );
    assert_eq!(c.cmd(&["RENAME", "big2", "big3"]), "+OK\r\n");
    eventually("the renamed hash loses its field", || {
        c.cmd(&["HLEN", "big3"]) == ":199\r\n"
    });
}

#[test]
fn hset_clears_a_field_deadline_and_hincrby_keeps_it() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    c.cmd(&["HSET", "h", "n", "1", "s", "x"]);
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "1000", "FIELDS", "2", "n", "s"]),
        "*2\r\n:1\r\n:1\r\n"
    );
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "2"]), ":3\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "n", "0.5"]), "$3\r\n3.5\r\n");
    assert!(ints(&c.cmd(&["HTTL", "h", "FIELDS", "1", "n"]))[0] > 0);
    assert_eq!(c.cmd(&["HSET", "h", "n", "0", "s", "y"]), ":0\r\n");
    assert_eq!(
        c.cmd(&["HTTL", "h", "FIELDS", "2", "n", "s"]),
        "*2\r\n:-1\r\n:-1\r\n"
    );
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "h"]), "$8\r\nlistpack\r\n");
    // HSETNX on a live field changes nothing, its deadline included.
    c.cmd(&["HEXPIRE", "h", "1000", "FIELDS", "1", "n"]);
    assert_eq!(c.cmd(&["HSETNX", "h", "n", "9"]), ":0\r\n");
    assert!(ints(&c.cmd(&["HTTL", "h", "FIELDS", "1", "n"]))[0] > 0);
    // HDEL drops the field and its deadline.
    assert_eq!(c.cmd(&["HDEL", "h", "n"]), ":1\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "n", "1"]), ":1\r\n");
    assert_eq!(c.cmd(&["HTTL", "h", "FIELDS", "1", "n"]), "*1\r\n:-1\r\n");
}

#[test]
fn tracking_clients_hear_of_fields_expiring() {
    let lethe = Lethe::start();
    let mut reader = lethe.client();
    let mut writer = lethe.client();
    assert!(reader.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    writer.cmd(&["HSET", "h", "short", "1", "long", "2"]);
    let set = Instant::now();
    assert_eq!(
        writer.cmd(&["HPEXPIRE", "h", "1000", "FIELDS", "1", "short"]),
        "*1\r\n:1\r\n"
    );
    // Read a field that stays, so the key is tracked.
    assert_eq!(reader.cmd(&["HGET", "h", "long"]), "$1\r\n2\r\n");
    if set.elapsed() >= Duration::from_millis(900) {
        // Too slow a machine to be sure the read came before the expiry; nothing to assert.
        return;
    }
    // Nobody writes the hash: the invalidation comes from the field's expiry.
    reader.set_read_timeout(Duration::from_secs(10));
    let push = String::from_utf8_lossy(&reader.read_reply()).into_owned();
    assert_eq!(push, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nh\r\n");
    assert_eq!(
        reader.cmd(&["HGETALL", "h"]),
        "%1\r\n$4\r\nlong\r\n$1\r\n2\r\n"
    );
}

#[test]
fn command_info_lists_the_field_ttl_commands() {
    let lethe = Lethe::start();
    let mut c: Client = lethe.client();
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "hexpire"]),
        "*1\r\n*10\r\n$7\r\nhexpire\r\n:-6\r\n*3\r\n+write\r\n+denyoom\r\n+fast\r\n:1\r\n:1\r\n:1\r\n\
         *3\r\n+@write\r\n+@hash\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RW\r\n\
         +update\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n\
         $5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n\
         *6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
    );
    for name in [
        "hpexpire",
        "hexpireat",
        "hpexpireat",
        "httl",
        "hpttl",
        "hexpiretime",
        "hpexpiretime",
        "hpersist",
    ] {
        assert!(c.cmd(&["COMMAND", "INFO", name]).contains(name), "{name}");
    }
}

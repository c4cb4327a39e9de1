//! Differential tests: the same command scripts against a real Redis 7 and against Lethe, with
//! the raw replies compared byte for byte. Replies that depend on timing are written so both
//! servers must give the same answer (whole-second TTLs far from a rounding edge, absolute
//! expiry times), and orders that Redis leaves unspecified are avoided (one key per KEYS/SCAN).

mod common;

use common::differential::{compare, run_both};
use common::{Client, Lethe, Redis};

#[test]
fn connection_commands_match() {
    let long = "x".repeat(200);
    let medium = "y".repeat(100);
    compare(&[
        &["nosuch", &long, "more"],
        &["nosuch", &medium, &medium, "z"],
        &[&long],
        &["PING"],
        &["PING", "hello"],
        &["PING", "a", "b"],
        &["ping"],
        &["ECHO", "x y"],
        &["ECHO"],
        &["SELECT", "0"],
        &["SELECT", "x"],
        &["SELECT", "-1"],
        &["HELLO", "4"],
        &["HELLO", "x"],
        &["HELLO", "1"],
        &["HELLO", "3", "AUTH", "x"],
        &["HELLO", "3", "FOO"],
        &["HELLO", "2", "SETNAME"],
        &["RESET"],
        &["TIME", "x"],
        &["NOSUCHCOMMAND"],
        &["nosuch", "a", "b c"],
        &["GET"],
        &["GET", "a", "b"],
        &["QUIT", "x", "y"],
    ]);
}

#[test]
fn string_commands_match() {
    compare(&[
        &["GET", "s"],
        &["SET", "s", "v"],
        &["GET", "s"],
        &["SET", "s", "w", "NX"],
        &["SET", "s", "w", "XX"],
        &["SET", "t", "w", "XX"],
        &["SET", "s", "x", "GET"],
        &["SET", "new", "x", "GET"],
        &["SET", "s", "y", "NX", "GET"],
        &["SET", "s", "v", "NX", "XX"],
        &["SET", "s", "v", "EX", "10", "PX", "100"],
        &["SET", "s", "v", "KEEPTTL", "EX", "5"],
        &["SET", "s", "v", "EX", "5", "KEEPTTL"],
        &["SET", "s", "v", "EX"],
        &["SET", "s", "v", "EX", "abc"],
        &["SET", "s", "v", "EX", "abc", "NX", "XX"],
        &["SET", "s", "v", "EX", "0"],
        &["SET", "s", "v", "PX", "-5"],
        &["SET", "s", "v", "EX", "9223372036854775807"],
        &["SET", "s", "v", "bogus"],
        &["SET", "s", "v", "NX", "NX"],
        &["SET", "e", "v", "EX", "100"],
        &["TTL", "e"],
        &["SET", "e", "v2", "KEEPTTL"],
        &["TTL", "e"],
        &["SET", "e", "v3"],
        &["TTL", "e"],
        &["SET", "gone", "v", "EXAT", "1000"],
        &["GET", "gone"],
        &["SET", "gone", "v", "PXAT", "1"],
        &["EXISTS", "gone"],
        &["SET", "far", "v", "EXAT", "4102444800"],
        &["EXPIRETIME", "far"],
        &["PEXPIRETIME", "far"],
        &["SETNX", "s", "z"],
        &["SETNX", "n1", "z"],
        &["SETEX", "se", "100", "v"],
        &["TTL", "se"],
        &["SETEX", "se", "0", "v"],
        &["SETEX", "se", "x", "v"],
        &["PSETEX", "pse", "-5", "v"],
        &["PSETEX", "pse", "100000", "v"],
        &["TTL", "pse"],
        &["GETSET", "s", "g"],
        &["GETSET", "nokey", "g"],
        &["GETDEL", "s"],
        &["GETDEL", "s"],
        &["MSET", "a", "1", "b", "2"],
        &["MSET", "a"],
        &["MSET", "a", "1", "b"],
        &["MGET", "a", "b", "nokey"],
        &["MSETNX", "a", "1", "zz", "2"],
        &["MSETNX", "y1", "1", "y2", "2"],
        &["MSETNX", "a"],
        &["MGET", "y1", "y2"],
        &["APPEND", "ap", "hello"],
        &["APPEND", "ap", " world"],
        &["STRLEN", "ap"],
        &["STRLEN", "nokey"],
        &["GETRANGE", "ap", "0", "4"],
        &["GETRANGE", "ap", "-5", "-1"],
        &["GETRANGE", "ap", "-1", "-5"],
        &["GETRANGE", "ap", "5", "1"],
        &["GETRANGE", "ap", "0", "1000"],
        &["GETRANGE", "ap", "-1000", "2"],
        &["GETRANGE", "nokey", "0", "-1"],
        &["GETRANGE", "ap", "a", "b"],
        &["SETRANGE", "ap", "6", "WORLD"],
        &["GET", "ap"],
        &["SETRANGE", "sr", "3", "abc"],
        &["GET", "sr"],
        &["SETRANGE", "sr2", "3", ""],
        &["EXISTS", "sr2"],
        &["SETRANGE", "ap", "0", ""],
        &["SETRANGE", "ap", "-1", "x"],
        &["SETRANGE", "ap", "536870912", "x"],
        &["INCR", "c"],
        &["INCRBY", "c", "41"],
        &["DECR", "c"],
        &["DECRBY", "c", "10"],
        &["DECRBY", "c", "-9223372036854775808"],
        &["INCRBY", "c", "x"],
        &["INCR", "ap"],
        &["SET", "big", "9223372036854775807"],
        &["INCR", "big"],
        &["SET", "lead", "01"],
        &["INCR", "lead"],
        &["SET", "f", "10.5"],
        &["INCRBYFLOAT", "f", "0.25"],
        &["INCRBYFLOAT", "f", "-5"],
        &["INCRBYFLOAT", "f", "1e3"],
        &["INCRBYFLOAT", "nf", "3"],
        &["INCRBYFLOAT", "fz", "0.1"],
        &["INCRBYFLOAT", "fz", "0.2"],
        &["INCRBYFLOAT", "f", "abc"],
        &["INCRBYFLOAT", "f", "inf"],
        &["INCRBYFLOAT", "ap", "1"],
        &["SET", "ex", "v"],
        &["GETEX", "ex"],
        &["GETEX", "ex", "EX", "100"],
        &["TTL", "ex"],
        &["GETEX", "ex", "PERSIST"],
        &["TTL", "ex"],
        &["GETEX", "ex", "EX", "1", "PERSIST"],
        &["GETEX", "ex", "PERSIST", "EX", "1"],
        &["GETEX", "ex", "foo"],
        &["GETEX", "ex", "EX", "0"],
        &["GETEX", "ex", "EX", "x"],
        &["GETEX", "nokey", "EX", "10"],
        &["GETEX", "ex", "PXAT", "1"],
        &["EXISTS", "ex"],
        &["HSET", "h", "f", "v"],
        &["GET", "h"],
        &["SET", "h", "x", "GET"],
        &["GETSET", "h", "x"],
        &["APPEND", "h", "x"],
        &["INCR", "h"],
        &["STRLEN", "h"],
        &["MGET", "h", "a"],
        &["GETDEL", "h"],
        &["SET", "h", "now-a-string"],
        &["GET", "h"],
    ]);
}

#[test]
fn key_commands_match() {
    compare(&[
        &["SET", "k", "v"],
        &["HSET", "hk", "f", "v"],
        &["EXISTS", "k", "k", "nokey", "hk"],
        &["TYPE", "k"],
        &["TYPE", "hk"],
        &["TYPE", "nokey"],
        &["TOUCH", "k", "nokey", "hk"],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["TTL", "nokey"],
        &["PTTL", "nokey"],
        &["EXPIRETIME", "k"],
        &["EXPIRETIME", "nokey"],
        &["PEXPIRETIME", "nokey"],
        &["EXPIRE", "k", "100"],
        &["TTL", "k"],
        &["EXPIRE", "k", "200", "NX"],
        &["EXPIRE", "k", "200", "GT"],
        &["TTL", "k"],
        &["EXPIRE", "k", "50", "GT"],
        &["EXPIRE", "k", "50", "LT"],
        &["TTL", "k"],
        &["EXPIRE", "k", "500", "LT"],
        &["EXPIRE", "k", "500", "XX"],
        &["TTL", "k"],
        &["PERSIST", "k"],
        &["PERSIST", "k"],
        &["TTL", "k"],
        &["EXPIRE", "k", "10", "XX"],
        &["EXPIRE", "k", "10", "GT"],
        &["EXPIRE", "k", "10", "XX", "LT"],
        &["EXPIRE", "k", "100", "LT"],
        &["TTL", "k"],
        &["EXPIRE", "k", "10", "NX", "XX"],
        &["EXPIRE", "k", "10", "GT", "LT"],
        &["EXPIRE", "k", "10", "foo"],
        &["EXPIRE", "k", "x"],
        &["EXPIRE", "k", "x", "foo"],
        &["EXPIRE", "k", "9223372036854775807"],
        &["EXPIRE", "nokey", "10"],
        &["PEXPIRE", "k", "100000"],
        &["TTL", "k"],
        &["EXPIREAT", "k", "4102444800"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["PEXPIREAT", "k", "4102444800123"],
        &["PEXPIRETIME", "k"],
        &["EXPIRETIME", "k"],
        &["EXPIREAT", "k", "x"],
        &["EXPIRE", "k", "-1"],
        &["EXISTS", "k"],
        &["SET", "k", "v"],
        &["EXPIREAT", "k", "1"],
        &["GET", "k"],
        &["SET", "k", "v"],
        &["PEXPIRE", "k", "0"],
        &["TYPE", "k"],
        &["SET", "k", "v", "EX", "100"],
        &["RENAME", "k", "k2"],
        &["GET", "k"],
        &["GET", "k2"],
        &["TTL", "k2"],
        &["RENAME", "k2", "k2"],
        &["RENAME", "nokey", "x"],
        &["RENAME", "hk", "hk2"],
        &["HGET", "hk2", "f"],
        &["SET", "dst", "old", "EX", "100"],
        &["SET", "src", "new"],
        &["RENAME", "src", "dst"],
        &["TTL", "dst"],
        &["GET", "dst"],
        &["DBSIZE"],
        &["KEYS", "d*"],
        &["KEYS", "nomatch*"],
        &["KEYS", "h?2"],
        &["SCAN", "0", "MATCH", "dst"],
        &["SCAN", "0", "MATCH", "hk*", "TYPE", "hash"],
        &["SCAN", "0", "MATCH", "hk*", "TYPE", "string"],
        &["SCAN", "x"],
        &["SCAN", "0", "COUNT", "0"],
        &["SCAN", "0", "COUNT", "x"],
        &["SCAN", "0", "MATCH"],
        &["SCAN", "0", "FOO", "bar"],
        &["DEL", "dst", "nokey", "hk2"],
        &["UNLINK", "k2", "k2"],
        &["DBSIZE"],
        &["RANDOMKEY"],
        &["SET", "only", "1"],
        &["RANDOMKEY"],
        &["FLUSHDB", "FOO"],
        &["FLUSHDB", "ASYNC", "SYNC"],
        &["FLUSHDB", "SYNC"],
        &["DBSIZE"],
        &["SET", "a", "1"],
        &["FLUSHALL"],
        &["EXISTS", "a"],
        &["DEL"],
        &["EXISTS"],
        &["KEYS"],
    ]);
}

#[test]
fn numeric_edges_match() {
    compare(&[
        &["SET", "k", "v", "PX", "9223372036854775807"],
        &["SET", "k", "v", "EX", "9223372036854775"],
        &["SET", "k", "v", "EXAT", "9223372036854775807"],
        &["SET", "k", "v", "PXAT", "-1"],
        &["SET", "k", "v", "EX", "+1"],
        &["SET", "k", "v", "EX", " 1"],
        &["SET", "k", "v", "EX", "01"],
        &["SET", "k", "v"],
        &["PEXPIRE", "k", "9223372036854775807"],
        &["PEXPIRE", "k", "-9223372036854775808"],
        &["EXISTS", "k"],
        &["SET", "k", "v"],
        &["EXPIRE", "k", "-9223372036854775808"],
        &["EXPIREAT", "k", "-1"],
        &["EXISTS", "k"],
        &["SET", "k", "v"],
        &["GETEX", "k", "EXAT", "9223372036854775807"],
        &["GETEX", "k", "PX", "9223372036854775807"],
        &["GETEX", "k", "EX"],
        &["INCRBY", "n", "9223372036854775808"],
        &["INCRBY", "n", "-9223372036854775808"],
        &["DECR", "n"],
        &["SET", "n", "-0"],
        &["INCR", "n"],
        &["SET", "n", " 1"],
        &["INCR", "n"],
        &["SET", "n", "1.5"],
        &["INCR", "n"],
        &["INCRBYFLOAT", "n", "1.5"],
        &["INCRBYFLOAT", "n", " 1"],
        &["INCRBYFLOAT", "n", ""],
        &["SET", "n", ""],
        &["INCR", "n"],
        &["INCRBYFLOAT", "n", "1"],
        &["SETRANGE", "r", "9223372036854775807", "x"],
        &["SETRANGE", "r", "x", "y"],
        &[
            "GETRANGE",
            "r",
            "-9223372036854775808",
            "9223372036854775807",
        ],
        &["SET", "r", "hello"],
        &[
            "GETRANGE",
            "r",
            "-9223372036854775808",
            "9223372036854775807",
        ],
        &[
            "GETRANGE",
            "r",
            "9223372036854775807",
            "-9223372036854775808",
        ],
        &["HINCRBY", "h", "f", "9223372036854775807"],
        &["HINCRBY", "h", "f", "1"],
        &["HINCRBY", "h", "g", "-9223372036854775808"],
        &["HINCRBY", "h", "g", "-1"],
        &["SCAN", "18446744073709551616"],
        &["SCAN", "-1", "MATCH", "nomatch"],
        &["SCAN", "+0", "MATCH", "r"],
        &["SCAN", " 0", "MATCH", "r"],
        &["SCAN", "0x"],
        &["SCAN", "", "MATCH", "r"],
        &["SCAN", "0", "COUNT", "-1"],
        &["HELLO", "3", "SETNAME", "has space"],
    ]);
}

#[test]
fn hash_commands_match() {
    compare(&[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HSET", "h", "a", "10", "c", "3"],
        &["HSET", "h", "a"],
        &["HSET", "h", "a", "1", "b"],
        &["HMSET", "h", "d", "4"],
        &["HMSET", "h", "d"],
        &["HGET", "h", "a"],
        &["HGET", "h", "nofield"],
        &["HGET", "nokey", "a"],
        &["HMGET", "h", "a", "nofield", "c"],
        &["HMGET", "nokey", "a", "b"],
        &["HGETALL", "h"],
        &["HGETALL", "nokey"],
        &["HKEYS", "h"],
        &["HVALS", "h"],
        &["HKEYS", "nokey"],
        &["HLEN", "h"],
        &["HLEN", "nokey"],
        &["HEXISTS", "h", "a"],
        &["HEXISTS", "h", "zz"],
        &["HDEL", "h", "b", "nofield", "b"],
        &["HGETALL", "h"],
        &["HINCRBY", "h", "a", "5"],
        &["HINCRBY", "h", "new", "-3"],
        &["HINCRBY", "h", "a", "x"],
        &["HSET", "h", "s", "abc"],
        &["HINCRBY", "h", "s", "1"],
        &["HSET", "h", "max", "9223372036854775807"],
        &["HINCRBY", "h", "max", "1"],
        &["HGETALL", "h"],
        &["HDEL", "h", "a", "c", "d", "new", "s", "max"],
        &["EXISTS", "h"],
        &["HDEL", "nokey", "a"],
        &["SET", "str", "v"],
        &["HSET", "str", "a", "1"],
        &["HGET", "str", "a"],
        &["HMGET", "str", "a"],
        &["HGETALL", "str"],
        &["HDEL", "str", "a"],
        &["HLEN", "str"],
        &["HEXISTS", "str", "a"],
        &["HKEYS", "str"],
        &["HVALS", "str"],
        &["HINCRBY", "str", "a", "1"],
        &["HSET", "t", "f", "v"],
        &["EXPIRE", "t", "100"],
        &["HSET", "t", "g", "w"],
        &["TTL", "t"],
        &["HINCRBY", "t", "n", "1"],
        &["TTL", "t"],
    ]);
}

#[test]
fn hello_option_errors_and_resp2_shapes_match() {
    compare(&[
        &["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "x", "BAD"],
        &["SET", "k", "v"],
        &["GET", "nokey"],
        &["MGET", "k", "nokey"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HGETALL", "h"],
        &["HGETALL", "nokey"],
        &["HMGET", "h", "a", "zz"],
        &["SET", "k", "v", "NX"],
        &["INCRBYFLOAT", "n", "1.5"],
        &["GETRANGE", "k", "0", "0"],
        &["EXISTS", "k"],
        &["SCAN", "0", "MATCH", "k"],
        &["HKEYS", "h"],
    ]);
}

#[test]
fn resp3_session_matches() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    // HELLO's reply carries the server's own version and client id, so only its shape and
    // the negotiated protocol are compared; everything after is compared byte for byte.
    let hello = ["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me"];
    let (hr, hl) = (r.cmd(&hello), l.cmd(&hello));
    assert!(hr.starts_with("%7\r\n") && hl.starts_with("%7\r\n"), "{hl}");
    assert!(hl.contains("$5\r\nproto\r\n:3\r\n"), "{hl}");
    run_both(
        &mut r,
        &mut l,
        &[
            &["FLUSHALL"],
            &["GET", "nokey"],
            &["SET", "k", "v", "XX"],
            &["MGET", "a", "b"],
            &["HSET", "h", "f", "v"],
            &["HGETALL", "h"],
            &["HGETALL", "nokey"],
            &["HMGET", "h", "f", "g"],
            &["RANDOMKEY"],
            &["GETEX", "nokey"],
            &["SET", "k", "1"],
            &["SET", "k", "2", "GET"],
            &["RESET"],
            &["GET", "nokey"],
            &["HGETALL", "h"],
        ],
    );
}

#[test]
fn inline_commands_match() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    for line in [
        &b"PING\r\n"[..],
        b"ping hi\n",
        b"SET \"a b\" 'c d'\r\n",
        b"GET \"a b\"\r\n",
        b"ECHO \"\\x41\\n\"\r\n",
        b"\r\n   \r\nPING\r\n",
        b"NOPE x\r\n",
    ] {
        r.send(line);
        l.send(line);
        assert_eq!(
            String::from_utf8_lossy(&l.read_reply()),
            String::from_utf8_lossy(&r.read_reply()),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn protocol_errors_match_and_close() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    for bad in [
        &b"*x\r\n"[..],
        b"*1\r\n$x\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n:1\r\n",
        b"*1\r\n$3\r\nGET\r\n*1\r\n+x\r\n",
        b"ECHO \"abc\r\n",
        b"ECHO \"a\"b\r\n",
    ] {
        let (mut r, mut l) = (redis.client(), lethe.client());
        r.send(bad);
        l.send(bad);
        let want = r.read_reply();
        let mut got = l.read_reply();
        // The pipelined GET before the bad frame is answered first by both.
        if want.starts_with(b"-ERR wrong") {
            assert_eq!(got, want);
            let want = r.read_reply();
            got = l.read_reply();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        } else {
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
        assert!(r.is_closed(), "redis closes after {bad:?}");
        assert!(l.is_closed(), "lethe closes after {bad:?}");
    }
}

/// Sends `cmd` to both servers and compares the next `replies` replies (SUBSCRIBE answers once
/// per channel).
fn both_n(r: &mut Client, l: &mut Client, cmd: &[&str], replies: usize) {
    r.send(&common::encode(cmd));
    l.send(&common::encode(cmd));
    for i in 0..replies {
        let (want, got) = (r.read_reply(), l.read_reply());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "reply #{i} to {cmd:?}: Lethe's reply differs from Redis's"
        );
    }
}

/// Reads one reply from each server and compares them (a message pushed to a subscriber).
fn pushed(r: &mut Client, l: &mut Client) {
    let (want, got) = (r.read_reply(), l.read_reply());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn pubsub_confirmations_and_subscribed_context_match() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    both_n(&mut r, &mut l, &["UNSUBSCRIBE"], 1);
    both_n(&mut r, &mut l, &["PUNSUBSCRIBE"], 1);
    both_n(&mut r, &mut l, &["PUBLISH", "nobody", "x"], 1);
    both_n(&mut r, &mut l, &["SUBSCRIBE", "a", "b", "a"], 3);
    both_n(&mut r, &mut l, &["PSUBSCRIBE", "a*", "b?"], 2);
    run_both(
        &mut r,
        &mut l,
        &[
            &["GET", "x"],
            &["PUBLISH", "a", "1"],
            &["MULTI"],
            &["nosuch"],
            &["get"],
            &["SUBSCRIBE"],
            &["PSUBSCRIBE"],
            &["PING"],
            &["PING", "hi"],
            &["UNSUBSCRIBE", "b", "zz"],
            &["PUNSUBSCRIBE", "b?"],
        ],
    );
    both_n(&mut r, &mut l, &["UNSUBSCRIBE", "a", "c"], 2);
    run_both(
        &mut r,
        &mut l,
        &[&["PUNSUBSCRIBE"], &["GET", "x"], &["PING"]],
    );
    both_n(&mut r, &mut l, &["SUBSCRIBE", "a"], 1);
    run_both(
        &mut r,
        &mut l,
        &[&["RESET"], &["GET", "x"], &["PUBLISH", "a", "m"]],
    );
}

#[test]
fn pubsub_delivery_between_clients_matches_in_resp2_and_resp3() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    let (mut r_sub, mut l_sub) = (redis.client(), lethe.client());
    let (mut r_pub, mut l_pub) = (redis.client(), lethe.client());
    both_n(&mut r_sub, &mut l_sub, &["SUBSCRIBE", "news"], 1);
    both_n(&mut r_sub, &mut l_sub, &["PSUBSCRIBE", "n*", "x*"], 2);
    // One subscriber on the channel and on one matching pattern: two deliveries.
    run_both(&mut r_pub, &mut l_pub, &[&["PUBLISH", "news", "hello"]]);
    pushed(&mut r_sub, &mut l_sub);
    pushed(&mut r_sub, &mut l_sub);
    run_both(&mut r_pub, &mut l_pub, &[&["PUBLISH", "nope", "p"]]);
    pushed(&mut r_sub, &mut l_sub);
    run_both(&mut r_pub, &mut l_pub, &[&["PUBLISH", "other", "p"]]);

    // RESP3: the same messages arrive as push frames, and other commands are allowed.
    let (mut r3, mut l3) = (redis.client(), lethe.client());
    let (hr, hl) = (r3.cmd(&["HELLO", "3"]), l3.cmd(&["HELLO", "3"]));
    assert!(hr.starts_with("%7\r\n") && hl.starts_with("%7\r\n"), "{hl}");
    both_n(&mut r3, &mut l3, &["SUBSCRIBE", "news"], 1);
    both_n(&mut r3, &mut l3, &["PSUBSCRIBE", "ne?s"], 1);
    run_both(&mut r3, &mut l3, &[&["GET", "x"], &["PING"]]);
    run_both(&mut r_pub, &mut l_pub, &[&["PUBLISH", "news", "three"]]);
    pushed(&mut r3, &mut l3);
    pushed(&mut r3, &mut l3);
    pushed(&mut r_sub, &mut l_sub);
    pushed(&mut r_sub, &mut l_sub);
    both_n(&mut r3, &mut l3, &["UNSUBSCRIBE", "news"], 1);
    both_n(&mut r3, &mut l3, &["PUNSUBSCRIBE", "ne?s"], 1);
    run_both(&mut r_pub, &mut l_pub, &[&["PUBLISH", "news", "four"]]);
}

#[test]
fn transactions_match() {
    compare(&[
        &["EXEC"],
        &["DISCARD"],
        &["MULTI", "x"],
        &["WATCH"],
        &["UNWATCH", "x"],
        &["MULTI"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["WATCH", "a"],
        &["nosuch"],
        &["GET"],
        &["EXEC"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["INCR", "a"],
        &["HSET", "a", "f", "v"],
        &["UNWATCH"],
        &["PING"],
        &["GET", "a"],
        &["EXEC"],
        &["MULTI"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "b", "2"],
        &["DISCARD"],
        &["GET", "b"],
        // A watched key written by this very client aborts too.
        &["WATCH", "a", "a", "nokey"],
        &["SET", "a", "2"],
        &["MULTI"],
        &["GET", "a"],
        &["EXEC"],
        // A refused write changes nothing, so it does not abort.
        &["WATCH", "a"],
        &["SET", "a", "3", "NX"],
        &["MULTI"],
        &["GET", "a"],
        &["EXEC"],
        // Neither does a watch that UNWATCH dropped.
        &["WATCH", "a"],
        &["SET", "a", "4"],
        &["UNWATCH"],
        &["MULTI"],
        &["INCR", "a"],
        &["EXEC"],
        // Deleting and expiring a watched key abort; touching a missing one that stays missing
        // does not.
        &["WATCH", "a"],
        &["DEL", "a"],
        &["MULTI"],
        &["EXEC"],
        &["SET", "e", "1"],
        &["WATCH", "e"],
        &["EXPIRE", "e", "100"],
        &["MULTI"],
        &["TTL", "e"],
        &["EXEC"],
        &["WATCH", "missing"],
        &["DEL", "missing"],
        &["MULTI"],
        &["GET", "missing"],
        &["EXEC"],
    ]);
}

#[test]
fn watch_aborts_on_another_clients_write_as_in_redis() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let lethe = Lethe::start();
    let (mut r1, mut l1) = (redis.client(), lethe.client());
    let (mut r2, mut l2) = (redis.client(), lethe.client());
    run_both(
        &mut r1,
        &mut l1,
        &[&["SET", "k", "1"], &["WATCH", "k", "j"]],
    );
    run_both(&mut r2, &mut l2, &[&["SET", "k", "1"]]);
    run_both(&mut r1, &mut l1, &[&["MULTI"], &["INCR", "k"], &["EXEC"]]);
    // Another client writing an unwatched key leaves the transaction alone.
    run_both(&mut r1, &mut l1, &[&["WATCH", "k"]]);
    run_both(&mut r2, &mut l2, &[&["SET", "other", "1"], &["GET", "k"]]);
    run_both(&mut r1, &mut l1, &[&["MULTI"], &["INCR", "k"], &["EXEC"]]);
    // RESP3 spells the aborted EXEC as a null.
    let (hr, hl) = (r1.cmd(&["HELLO", "3"]), l1.cmd(&["HELLO", "3"]));
    assert!(hr.starts_with("%7\r\n") && hl.starts_with("%7\r\n"), "{hl}");
    run_both(&mut r1, &mut l1, &[&["WATCH", "k"]]);
    run_both(&mut r2, &mut l2, &[&["DEL", "k"]]);
    run_both(&mut r1, &mut l1, &[&["MULTI"], &["GET", "k"], &["EXEC"]]);
}

#[test]
fn client_and_config_replies_match() {
    compare(&[
        &["CLIENT"],
        &["CLIENT", "foo"],
        &["CLIENT", "SETNAME"],
        &["CLIENT", "SETNAME", "a b"],
        &["CLIENT", "SETNAME", "x"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "SETNAME", ""],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "GETNAME", "x"],
        &["CLIENT", "ID", "x"],
        &["CLIENT", "INFO", "x"],
        &["CLIENT", "KILL"],
        &["CLIENT", "KILL", "1.2.3.4:5"],
        &["CLIENT", "KILL", "ID", "9999"],
        &["CLIENT", "KILL", "ID", "x"],
        &["CLIENT", "KILL", "ID", "0"],
        &["CLIENT", "KILL", "foo", "bar"],
        &["CLIENT", "KILL", "TYPE", "foo"],
        &["CLIENT", "KILL", "TYPE", "master"],
        &["CLIENT", "KILL", "SKIPME", "x"],
        &["CLIENT", "KILL", "USER", "bob"],
        &["CLIENT", "KILL", "ID", "1", "TYPE"],
        &["CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "no"],
        &["CLIENT", "LIST", "TYPE", "pubsub"],
        &["CLIENT", "LIST", "ID", "x"],
        &["CLIENT", "LIST", "ID", "999998", "0", "-1"],
        &["CLIENT", "LIST", "ID", "999999"],
        &["CLIENT", "LIST", "foo"],
        &["CLIENT", "LIST", "TYPE", "foo"],
        &["CONFIG"],
        &["CONFIG", "foo"],
        &["CONFIG", "GET"],
        &["CONFIG", "GET", "nosuch*"],
        &["CONFIG", "GET", "bind"],
        &["CONFIG", "SET", "nosuch", "1"],
        &["CONFIG", "SET", "maxmemory"],
        &["CONFIG", "SET", "port", "1", "x"],
        &["CONFIG", "SET", "databases", "3"],
        &["INFO", "nosuchsection"],
        &["INFO", "a", "b"],
    ]);
}

/// The names of the Redis commands Lethe has (its own `LETHE.*` left out), from COMMAND LIST.
fn shared_commands(l: &mut Client) -> Vec<String> {
    let list = l.cmd(&["COMMAND", "LIST"]);
    list.split("\r\n")
        .filter(|s| !s.is_empty() && !s.starts_with(['*', '$']))
        .filter(|s| !s.starts_with("lethe."))
        .map(str::to_string)
        .collect()
}

#[test]
fn command_info_matches_for_every_shared_command() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let mut r = redis.client();
    let mut l = lethe.client();
    // Commands of later Redis versions (7.4's HEXPIRE family) are checked in their own tests.
    let redis_has = shared_commands(&mut r);
    let names: Vec<String> = shared_commands(&mut l)
        .into_iter()
        .filter(|n| redis_has.contains(n))
        .collect();
    assert!(names.len() > 60, "{names:?}");
    for proto in ["2", "3"] {
        assert_eq!(r.raw(&["HELLO", proto])[..1], l.raw(&["HELLO", proto])[..1]);
        for name in &names {
            // Containers list their subcommands in Redis's hash order, and Lethe has fewer.
            if matches!(
                name.as_str(),
                "client" | "config" | "command" | "object" | "pubsub" | "cluster"
            ) {
                continue;
            }
            // ZRANK and ZREVRANK take Redis 7.2's WITHSCORE: their arity is 7.2's (-3, at
            // least three arguments), everything else 7.0's.
            if matches!(name.as_str(), "zrank" | "zrevrank") {
                let want = String::from_utf8_lossy(&r.raw(&["COMMAND", "INFO", name]))
                    .replacen(":3\r\n", ":-3\r\n", 1);
                let got = String::from_utf8_lossy(&l.raw(&["COMMAND", "INFO", name])).into_owned();
                assert_eq!(got, want, "COMMAND INFO {name}");
                continue;
            }
            run_both(&mut r, &mut l, &[&["COMMAND", "INFO", name]]);
        }
        run_both(
            &mut r,
            &mut l,
            &[
                &["COMMAND", "INFO", "get", "nosuch", "set"],
                &["COMMAND", "INFO", "client|id", "client|list", "config|get"],
                &[
                    "COMMAND",
                    "INFO",
                    "cluster|slots",
                    "cluster|shards",
                    "cluster|nodes",
                    "cluster|myid",
                    "cluster|info",
                    "cluster|keyslot",
                    "cluster|countkeysinslot",
                    "cluster|getkeysinslot",
                    "cluster|help",
                ],
                &[
                    "COMMAND",
                    "INFO",
                    "object|encoding",
                    "object|help",
                    "object|freq",
                    "object|idletime",
                    "object|refcount",
                ],
                &["COMMAND", "COUNT", "x"],
                &["COMMAND", "FOO"],
                &["COMMAND", "LIST", "FILTERBY", "PATTERN", "ech*"],
                &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"],
                &["COMMAND", "LIST", "FILTERBY", "X", "y"],
                &["COMMAND", "DOCS", "nosuch"],
                &["COMMAND", "GETKEYS"],
                &["COMMAND", "GETKEYS", "get"],
                &["COMMAND", "GETKEYS", "nosuch", "x"],
                &["COMMAND", "GETKEYS", "get", "a", "b"],
                &["COMMAND", "GETKEYS", "ping", "x"],
                &["COMMAND", "GETKEYS", "client", "id"],
                &["COMMAND", "GETKEYS", "GET", "k"],
                &["COMMAND", "GETKEYS", "mset", "a", "1", "b", "2", "c"],
                &["COMMAND", "GETKEYS", "mset", "a", "1", "b"],
                &["COMMAND", "GETKEYS", "rename", "a", "b"],
                &["COMMAND", "GETKEYS", "set", "k", "v", "EX", "5"],
                &["COMMAND", "GETKEYS", "del", "a", "b", "c"],
                &["COMMAND", "INFO", "command|getkeys"],
            ],
        );
    }
    // Redis has more commands: compare shapes, not values.
    let (rc, lc) = (r.cmd(&["COMMAND", "COUNT"]), l.cmd(&["COMMAND", "COUNT"]));
    assert!(rc.starts_with(':') && lc.starts_with(':'), "{rc} {lc}");
    let lethe_count: usize = lc[1..].trim().parse().unwrap();
    let lethe_all = l.cmd(&["COMMAND"]);
    assert!(lethe_all.starts_with(&format!("*{lethe_count}\r\n*10\r\n")));
    assert!(r.cmd(&["COMMAND"]).contains("*10\r\n"));
    for name in ["get", "hset", "ping", "asking", "readonly", "readwrite"] {
        let (rd, ld) = (
            r.cmd(&["COMMAND", "DOCS", name]),
            l.cmd(&["COMMAND", "DOCS", name]),
        );
        // Lethe gives summary, since, group and complexity, not the argument descriptions.
        let fields = &ld[ld.find("$7\r\nsummary").expect(&ld)..];
        assert!(
            fields.ends_with("\r\n") && rd.contains(fields),
            "{rd}\n{ld}"
        );
    }
}

#[test]
fn auth_and_limit_settings_match() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let mut r = redis.client();
    let mut l = lethe.client();
    run_both(
        &mut r,
        &mut l,
        &[
            &["AUTH", "x"],
            &["AUTH", "default", "x"],
            &["AUTH", "bob", "x"],
            &["AUTH", "a", "b", "c"],
            &["AUTH"],
            &["CONFIG", "GET", "maxclients"],
            &["CONFIG", "GET", "timeout"],
            &["CONFIG", "GET", "proto-max-bulk-len"],
            &["CONFIG", "GET", "client-output-buffer-limit"],
            &["CONFIG", "GET", "protected-mode"],
            &["CONFIG", "GET", "requirepass"],
            &["CONFIG", "SET", "maxclients", "abc"],
            &["CONFIG", "SET", "maxclients", "0"],
            &["CONFIG", "SET", "timeout", "-1"],
            &["CONFIG", "SET", "proto-max-bulk-len", "10"],
            &["CONFIG", "SET", "proto-max-bulk-len", "x"],
            &["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 2"],
            &["CONFIG", "SET", "client-output-buffer-limit", "foo 1 2 3"],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub x 2 3",
            ],
            &["CONFIG", "SET", "protected-mode", "maybe"],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 64kb 32kb 10",
            ],
            &["CONFIG", "GET", "client-output-buffer-limit"],
            &["CONFIG", "SET", "proto-max-bulk-len", "2mb"],
            &["CONFIG", "GET", "proto-max-bulk-len"],
            &["CONFIG", "SET", "timeout", "100"],
            &["CONFIG", "GET", "timeout"],
            &["CONFIG", "SET", "requirepass", "pw"],
            &["PING"],
        ],
    );
    let (mut r2, mut l2) = (redis.client(), lethe.client());
    run_both(
        &mut r2,
        &mut l2,
        &[
            &["PING"],
            &["GET"],
            &["NOSUCH"],
            &["HELLO", "3"],
            &["HELLO", "3", "AUTH"],
            &["HELLO", "3", "AUTH", "default", "no"],
            &["AUTH", "no"],
            &["AUTH", "default", "no"],
            &["CLIENT", "ID"],
            &["AUTH", "pw"],
            &["GET", "k"],
        ],
    );
    for (mut c, name) in [(redis.client(), "redis"), (lethe.client(), "lethe")] {
        c.send(b"*11\r\n");
        assert_eq!(
            c.read_to_close(),
            b"-ERR Protocol error: unauthenticated multibulk length\r\n",
            "{name}"
        );
    }
    for (mut c, name) in [(redis.client(), "redis"), (lethe.client(), "lethe")] {
        c.send(b"*1\r\n$16385\r\n");
        assert_eq!(
            c.read_to_close(),
            b"-ERR Protocol error: unauthenticated bulk length\r\n",
            "{name}"
        );
    }
    run_both(&mut r, &mut l, &[&["CONFIG", "SET", "requirepass", ""]]);
}

#[test]
fn databases_match() {
    let script: &[&[&str]] = &[
        &["SELECT", "16"],
        &["SELECT", "-1"],
        &["SELECT", "x"],
        &["SET", "k", "zero"],
        &["SELECT", "3"],
        &["GET", "k"],
        &["EXISTS", "k"],
        &["SET", "k", "three"],
        &["INCR", "n"],
        &["HSET", "h", "f", "v"],
        &["DBSIZE"],
        &["KEYS", "h*"],
        &["SCAN", "0", "MATCH", "k"],
        &["SELECT", "0"],
        &["GET", "k"],
        &["DBSIZE"],
        &["KEYS", "n"],
        &["SELECT", "3"],
        &["WATCH", "k"],
        &["SELECT", "0"],
        &["SET", "k", "other"],
        &["SELECT", "3"],
        &["MULTI"],
        &["GET", "k"],
        &["EXEC"],
        &["MULTI"],
        &["SELECT", "0"],
        &["GET", "k"],
        &["SELECT", "3"],
        &["GET", "k"],
        &["EXEC"],
        &["FLUSHDB"],
        &["DBSIZE"],
        &["GET", "n"],
        &["SELECT", "0"],
        &["GET", "k"],
        &["DBSIZE"],
        &["FLUSHALL"],
        &["DBSIZE"],
    ];
    compare(script);
    // The same in RESP3.
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    let (hr, hl) = (r.cmd(&["HELLO", "3"]), l.cmd(&["HELLO", "3"]));
    assert!(hr.starts_with("%7\r\n") && hl.starts_with("%7\r\n"), "{hl}");
    run_both(&mut r, &mut l, script);
}

#[test]
fn multi_key_string_commands_match() {
    compare(&[
        &["MSET", "a", "1", "b", "2", "c"],
        &["MSET", "a", "1", "b", "2"],
        &["MGET", "a", "b", "nosuch"],
        &["MSETNX", "b", "3", "d", "4"],
        &["MGET", "b", "d"],
        &["MSETNX", "d", "4", "e", "5"],
        &["MGET", "d", "e"],
        &["HSET", "h", "f", "v"],
        &["MGET", "a", "h"],
        &["MSET", "h", "now-a-string"],
        &["GET", "h"],
        &["RENAME", "nosuch", "x"],
        &["SET", "t", "v", "EX", "1000"],
        &["RENAME", "t", "u"],
        &["TTL", "u"],
        &["EXISTS", "t"],
        &["RENAME", "u", "u"],
        &["GET", "u"],
        &["RENAME", "u", "a"],
        &["GET", "a"],
        &["TTL", "a"],
        &["APPEND", "n", "12"],
        &["INCR", "n"],
        &["APPEND", "n", "x"],
        &["INCR", "n"],
        &["SETRANGE", "n", "0", "9"],
        &["GET", "n"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCR", "f"],
        &["GETRANGE", "f", "0", "-1"],
        &["STRLEN", "f"],
        &["GETDEL", "f"],
        &["GETEX", "a", "PX", "100000"],
        &["GETEX", "a", "PERSIST"],
        &["TTL", "a"],
        &["GETEX", "a", "EXAT", "1"],
        &["EXISTS", "a"],
    ]);
}

#[test]
fn incrbyfloat_keys_glob_and_exec_edges_match() {
    compare(&[
        // Redis computes in long double and prints 17 decimals: the same text here.
        &["SET", "f", "1000"],
        &["INCRBYFLOAT", "f", "0.1"],
        &["INCRBYFLOAT", "f", "-0.1"],
        &["SET", "g", "123456789.123"],
        &["INCRBYFLOAT", "g", "0.000001"],
        &["INCRBYFLOAT", "h", "1.23456789012345678"],
        &["INCRBYFLOAT", "h", "5.0e3"],
        &["INCRBYFLOAT", "h", "abc"],
        &["INCRBYFLOAT", "h", "1e5000"],
        &["HINCRBYFLOAT", "hf", "x", "10.5"],
        &["HINCRBYFLOAT", "hf", "x", "0.1"],
        &["HINCRBYFLOAT", "hf", "x", "1000.1"],
        &["HSET", "hf", "s", "text"],
        &["HINCRBYFLOAT", "hf", "s", "1"],
        &["HINCRBYFLOAT", "hf", "x", "nope"],
        // KEYS classes as Redis's stringmatchlen reads them.
        &["SET", "abcxe", "1"],
        &["SET", "zz!e", "1"],
        &["KEYS", "abc[^]e"],
        &["KEYS", "abc[]e"],
        &["KEYS", "abc[!]e"],
        &["KEYS", "zz[!]e"],
        &["KEYS", "zz[^]e"],
        &["KEYS", "abc[w-y]e"],
        &["KEYS", "abc[y-w]e"],
        // EXEC with arguments.
        &["MULTI"],
        &["SET", "t", "1"],
        &["EXEC", "now"],
        &["EXEC"],
        &["GET", "t"],
    ]);
}

#[test]
fn more_key_and_hash_commands_match() {
    compare(&[
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["RENAMENX", "a", "b"],
        &["RENAMENX", "a", "a"],
        &["RENAMENX", "a", "c"],
        &["RENAMENX", "nosuch", "d"],
        &["MGET", "a", "c"],
        &["COPY", "c", "d"],
        &["COPY", "c", "d"],
        &["COPY", "c", "d", "REPLACE"],
        &["COPY", "c", "c"],
        &["COPY", "c", "e", "DB"],
        &["COPY", "c", "e", "DB", "x"],
        &["COPY", "c", "e", "DB", "16"],
        &["COPY", "c", "e", "FOO"],
        &["COPY", "c", "c", "DB", "1"],
        &["SELECT", "1"],
        &["GET", "c"],
        &["SELECT", "0"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["COPY", "ttl", "ttl2"],
        &["TTL", "ttl2"],
        &["MOVE", "ttl", "0"],
        &["MOVE", "ttl", "99"],
        &["MOVE", "nosuch", "2"],
        &["MOVE", "ttl", "2"],
        &["EXISTS", "ttl"],
        &["SELECT", "2"],
        &["TTL", "ttl"],
        &["SET", "c", "in-2"],
        &["SELECT", "1"],
        &["MOVE", "c", "2"],
        &["SELECT", "0"],
        &["SET", "n", "123"],
        &["SET", "s", "hello"],
        &["HSET", "h", "f", "v"],
        &["OBJECT", "ENCODING", "n"],
        &["OBJECT", "ENCODING", "s"],
        &["OBJECT", "ENCODING", "h"],
        &["OBJECT", "ENCODING", "nosuch"],
        &["OBJECT", "REFCOUNT", "n"],
        &["OBJECT", "REFCOUNT", "s"],
        &["OBJECT", "FREQ", "s"],
        &["OBJECT", "HELP"],
        &["OBJECT", "HELP", "x"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "nosuch", "k"],
        &["SUBSTR", "s", "1", "3"],
        &["SUBSTR", "s", "-3", "-1"],
        &["HSETNX", "h", "f", "other"],
        &["HSETNX", "h", "g", "new"],
        &["HSETNX", "s", "f", "v"],
        &["HGET", "h", "g"],
        &["HSTRLEN", "h", "g"],
        &["HSTRLEN", "h", "nosuch"],
        &["HSTRLEN", "nosuch", "f"],
        &["HSTRLEN", "s", "f"],
        &["HRANDFIELD", "nosuch"],
        &["HRANDFIELD", "nosuch", "3"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "h", "0"],
        &["HSET", "one", "only", "1"],
        &["HRANDFIELD", "one"],
        &["HRANDFIELD", "one", "5"],
        &["HRANDFIELD", "one", "-2"],
        &["HRANDFIELD", "one", "1", "WITHVALUES"],
        &["HRANDFIELD", "one", "1", "NOPE"],
        &["HRANDFIELD", "one", "x"],
        &["HSCAN", "one", "0"],
        &["HSCAN", "one", "0", "MATCH", "on*"],
        &["HSCAN", "one", "0", "MATCH", "x*"],
        &["HSCAN", "nosuch", "0"],
        &["HSCAN", "s", "0"],
        &["HSCAN", "one", "0", "COUNT", "0"],
        &["HSCAN", "one", "abc"],
    ]);
}

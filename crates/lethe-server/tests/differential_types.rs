//! Differential tests of the collection types (sets, lists): the same scripts against a real
//! Redis 7 and against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.
//!
//! Sets are unordered, so the scripts list members only where both servers agree on an order:
//! sets of integers (an `intset` in both, ascending), single members, and counts.

mod common;

use common::{Client, Lethe, Redis};

fn run_both(r: &mut Client, l: &mut Client, script: &[&[&str]]) {
    for (i, cmd) in script.iter().enumerate() {
        let want = r.raw(cmd);
        let got = l.raw(cmd);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "command #{i} {cmd:?}: Lethe's reply differs from Redis's"
        );
    }
}

/// Runs `script` on both servers from an empty keyspace, once in RESP2 and once in RESP3.
fn compare(script: &[&[&str]]) {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    for proto in ["2", "3"] {
        let mut r = redis.client();
        let mut l = lethe.client();
        let (hr, hl) = (r.raw(&["HELLO", proto]), l.raw(&["HELLO", proto]));
        assert_eq!(hr[..1], hl[..1]);
        assert_eq!(r.raw(&["FLUSHALL"]), l.raw(&["FLUSHALL"]));
        run_both(&mut r, &mut l, script);
    }
}

#[test]
fn set_commands_match() {
    compare(&[
        &["SADD", "s", "3", "1", "2", "1"],
        &["SADD", "s", "2"],
        &["SADD", "s"],
        &["SMEMBERS", "s"],
        &["SMEMBERS", "nokey"],
        &["SCARD", "s"],
        &["SCARD", "nokey"],
        &["SISMEMBER", "s", "1"],
        &["SISMEMBER", "s", "01"],
        &["SISMEMBER", "nokey", "1"],
        &["SISMEMBER", "s"],
        &["SMISMEMBER", "s", "1", "9", "3"],
        &["SMISMEMBER", "nokey", "1"],
        &["SMISMEMBER", "s"],
        &["SREM", "s", "1", "9", "1"],
        &["SREM", "s", "9"],
        &["SREM", "nokey", "1"],
        &["SREM", "s"],
        &["SMEMBERS", "s"],
        &["SREM", "s", "2", "3"],
        &["EXISTS", "s"],
        &["SADD", "t", "-5", "100", "7"],
        &["SMEMBERS", "t"],
        &["TYPE", "t"],
        &["SADD", "one", "x"],
        &["SMEMBERS", "one"],
        &["SPOP", "one"],
        &["EXISTS", "one"],
        &["SPOP", "nokey"],
        &["SPOP", "nokey", "2"],
        &["SPOP", "t", "0"],
        &["SPOP", "t", "-1"],
        &["SPOP", "t", "x"],
        &["SPOP", "t", "1", "2"],
        &["SPOP", "t", "3"],
        &["EXISTS", "t"],
        &["SADD", "t", "1", "2", "3"],
        &["SPOP", "t", "10"],
        &["EXISTS", "t"],
        &["SADD", "one", "x"],
        &["SRANDMEMBER", "one"],
        &["SRANDMEMBER", "one", "1"],
        &["SRANDMEMBER", "one", "-3"],
        &["SRANDMEMBER", "one", "0"],
        &["SRANDMEMBER", "nokey"],
        &["SRANDMEMBER", "nokey", "3"],
        &["SRANDMEMBER", "one", "x"],
        &["SRANDMEMBER", "one", "-9223372036854775808"],
        &["SRANDMEMBER", "one", "1", "2"],
        &["SADD", "t", "3", "1", "2"],
        &["SRANDMEMBER", "t", "3"],
        &["SRANDMEMBER", "t", "30"],
        &["SET", "str", "v"],
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "1"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "1"],
        &["SSCAN", "str", "0"],
        &["GET", "t"],
        &["SADD", "e", "1"],
        &["EXPIRE", "e", "100"],
        &["SADD", "e", "2"],
        &["TTL", "e"],
    ]);
}

#[test]
fn set_algebra_and_moves_match() {
    compare(&[
        &["SADD", "a", "1", "2", "3", "4"],
        &["SADD", "b", "3", "4", "5"],
        &["SADD", "c", "4", "5", "6"],
        &["SINTER", "a", "b"],
        &["SINTER", "a", "b", "c"],
        &["SINTER", "a", "nokey"],
        &["SINTER", "a"],
        &["SUNION", "a", "b", "c"],
        &["SUNION", "a", "nokey"],
        &["SUNION", "nokey"],
        &["SDIFF", "a", "b"],
        &["SDIFF", "a", "b", "c"],
        &["SDIFF", "nokey", "a"],
        &["SDIFF", "a", "nokey"],
        &["SINTERCARD", "2", "a", "b"],
        &["SINTERCARD", "3", "a", "b", "c"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["SINTERCARD", "2", "a", "b", "LIMIT", "0"],
        &["SINTERCARD", "2", "a", "nokey"],
        &["SINTERCARD", "0", "a"],
        &["SINTERCARD", "x", "a"],
        &["SINTERCARD", "3", "a", "b"],
        &["SINTERCARD", "1", "a", "LIMIT", "-1"],
        &["SINTERCARD", "1", "a", "LIMIT"],
        &["SINTERCARD", "1", "a", "FOO", "1"],
        &["SINTERCARD", "1"],
        &["SINTERSTORE", "d", "a", "b"],
        &["SMEMBERS", "d"],
        &["SUNIONSTORE", "d", "a", "b", "c"],
        &["SMEMBERS", "d"],
        &["SDIFFSTORE", "d", "a", "b"],
        &["SMEMBERS", "d"],
        &["EXPIRE", "d", "100"],
        &["SINTERSTORE", "d", "a", "c"],
        &["TTL", "d"],
        &["SINTERSTORE", "d", "a", "nokey"],
        &["EXISTS", "d"],
        &["SET", "d", "string"],
        &["SUNIONSTORE", "d", "a"],
        &["TYPE", "d"],
        &["SDIFFSTORE", "d", "nokey"],
        &["EXISTS", "d"],
        &["SINTERSTORE", "a2", "a"],
        &["SMEMBERS", "a2"],
        &["SET", "str", "v"],
        &["SINTER", "a", "str"],
        &["SINTER", "nokey", "str"],
        &["SUNION", "a", "str"],
        &["SDIFF", "a", "str"],
        &["SDIFF", "str", "a"],
        &["SINTERSTORE", "d", "str", "a"],
        &["SUNIONSTORE", "d", "a", "str"],
        &["SINTERCARD", "2", "a", "str"],
        &["SINTERSTORE", "d"],
        &["SMOVE", "a", "b", "1"],
        &["SMOVE", "a", "b", "1"],
        &["SMOVE", "a", "a", "2"],
        &["SMOVE", "a", "a", "9"],
        &["SMOVE", "nokey", "b", "1"],
        &["SMOVE", "nokey", "str", "1"],
        &["SMOVE", "a", "str", "2"],
        &["SMOVE", "str", "a", "2"],
        &["SMOVE", "a", "new", "2"],
        &["SMEMBERS", "new"],
        &["SMEMBERS", "a"],
        &["SMEMBERS", "b"],
        &["SMOVE", "new", "a", "2"],
        &["EXISTS", "new"],
        &["SMOVE", "a", "b"],
    ]);
}

#[test]
fn set_scans_and_conversions_match() {
    let many: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let mut sadd: Vec<&str> = vec!["SADD", "big"];
    sadd.extend(many.iter().map(String::as_str));
    compare(&[
        &["SADD", "s", "1", "2", "3"],
        &["SSCAN", "s", "0"],
        &["SSCAN", "s", "0", "MATCH", "2*"],
        &["SSCAN", "s", "0", "COUNT", "1"],
        &["SSCAN", "s", "0", "COUNT", "0"],
        &["SSCAN", "s", "0", "COUNT", "x"],
        &["SSCAN", "s", "0", "TYPE", "set"],
        &["SSCAN", "s", "0", "MATCH"],
        &["SSCAN", "s", "x"],
        &["SSCAN", "nokey", "0", "COUNT", "0"],
        &["SSCAN", "nokey", "x"],
        &["SSCAN", "s"],
        &["SADD", "s", "-9223372036854775808", "9223372036854775807"],
        &["SMEMBERS", "s"],
        &["SADD", "s", "9223372036854775808"],
        &["SCARD", "s"],
        &["SISMEMBER", "s", "9223372036854775808"],
        &["SISMEMBER", "s", "9223372036854775807"],
        &sadd,
        &["SCARD", "big"],
        &["SISMEMBER", "big", "599"],
        &["SINTERCARD", "2", "big", "big"],
        &["SINTERCARD", "2", "big", "big", "LIMIT", "17"],
        &["SREM", "big", "0", "1", "599"],
        &["SCARD", "big"],
    ]);
}

/// The classic Redis tagging pattern, as applications write it against Redis: cache a value
/// with a TTL, record its key in a tag set, later invalidate by reading the tag and deleting.
#[test]
fn the_tag_pattern_works_as_on_redis() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    run_both(
        &mut r,
        &mut l,
        &[
            &["SETEX", "user:1:profile", "300", "alice"],
            &["SADD", "tag:user:1", "user:1:profile"],
            &["SETEX", "user:1:posts", "300", "[1,2]"],
            &["SADD", "tag:user:1", "user:1:posts"],
            &["SADD", "tag:user:1", "user:1:posts"],
            &["SCARD", "tag:user:1"],
            &["GET", "user:1:profile"],
            &["SISMEMBER", "tag:user:1", "user:1:posts"],
        ],
    );
    // Invalidation: read the tag, delete its keys and the tag itself in one DEL.
    let members = l.cmd(&["SMEMBERS", "tag:user:1"]);
    let mut keys: Vec<&str> = members
        .split("\r\n")
        .filter(|s| s.starts_with("user:"))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["user:1:posts", "user:1:profile"], "{members}");
    let mut del = vec!["DEL", "tag:user:1"];
    del.extend(&keys);
    run_both(
        &mut r,
        &mut l,
        &[
            &del,
            &["GET", "user:1:profile"],
            &["GET", "user:1:posts"],
            &["SMEMBERS", "tag:user:1"],
            &["EXISTS", "tag:user:1"],
        ],
    );
}

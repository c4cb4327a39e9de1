//! Differential tests of the collection types (sets, lists): the same scripts against a real
//! Redis 7 and against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.
//!
//! Sets are unordered, so the scripts list members only where both servers agree on an order:
//! sets of integers (an `intset` in both, ascending), single members, and counts.

mod common;

use common::differential::{compare, run_both};
use common::{Client, Lethe, Redis};

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

#[test]
fn list_push_pop_and_reads_match() {
    compare(&[
        &["LPUSH", "l", "a", "b", "c"],
        &["RPUSH", "l", "x", "y"],
        &["LRANGE", "l", "0", "-1"],
        &["LPUSH", "l"],
        &["LPUSHX", "nokey", "a"],
        &["RPUSHX", "nokey", "a"],
        &["EXISTS", "nokey"],
        &["LPUSHX", "l", "p1", "p2"],
        &["RPUSHX", "l", "r1"],
        &["LLEN", "l"],
        &["LLEN", "nokey"],
        &["LRANGE", "l", "0", "2"],
        &["LRANGE", "l", "-3", "-1"],
        &["LRANGE", "l", "-100", "100"],
        &["LRANGE", "l", "5", "2"],
        &["LRANGE", "l", "100", "200"],
        &["LRANGE", "l", "-1", "-2"],
        &["LRANGE", "l", "x", "1"],
        &["LRANGE", "nokey", "0", "-1"],
        &["LRANGE", "nokey", "x", "1"],
        &["LINDEX", "l", "0"],
        &["LINDEX", "l", "-1"],
        &["LINDEX", "l", "100"],
        &["LINDEX", "l", "-100"],
        &["LINDEX", "l", "x"],
        &["LINDEX", "nokey", "x"],
        &["LPOP", "l"],
        &["RPOP", "l"],
        &["LPOP", "l", "2"],
        &["RPOP", "l", "2"],
        &["LPOP", "l", "0"],
        &["LPOP", "l", "-1"],
        &["LPOP", "l", "x"],
        &["LPOP", "l", "1", "2"],
        &["LPOP", "nokey"],
        &["LPOP", "nokey", "1"],
        &["LPOP", "nokey", "0"],
        &["RPOP", "nokey", "2"],
        &["LRANGE", "l", "0", "-1"],
        &["RPOP", "l", "100"],
        &["EXISTS", "l"],
        &["RPUSH", "l", "only"],
        &["LPOP", "l"],
        &["EXISTS", "l"],
        &["SET", "str", "v"],
        &["LPUSH", "str", "a"],
        &["RPUSH", "str", "a"],
        &["LPUSHX", "str", "a"],
        &["LPOP", "str"],
        &["RPOP", "str", "2"],
        &["LRANGE", "str", "0", "-1"],
        &["LRANGE", "str", "x", "-1"],
        &["LINDEX", "str", "x"],
        &["LLEN", "str"],
        &["SADD", "set", "1"],
        &["LPUSH", "set", "a"],
        &["SADD", "str2", "1"],
        &["RPUSH", "e", "1"],
        &["EXPIRE", "e", "100"],
        &["RPUSH", "e", "2"],
        &["TTL", "e"],
        &["TYPE", "e"],
    ]);
}

#[test]
fn list_edits_match() {
    compare(&[
        &["RPUSH", "l", "a", "b", "c", "b", "a", "b"],
        &["LINSERT", "l", "BEFORE", "b", "X"],
        &["LINSERT", "l", "after", "b", "Y"],
        &["LINSERT", "l", "AFTER", "nope", "Z"],
        &["LINSERT", "l", "MIDDLE", "b", "Z"],
        &["LINSERT", "nokey", "BEFORE", "a", "Z"],
        &["LINSERT", "nokey", "MIDDLE", "a", "Z"],
        &["LRANGE", "l", "0", "-1"],
        &["LSET", "l", "0", "first"],
        &["LSET", "l", "-1", "last"],
        &["LSET", "l", "100", "x"],
        &["LSET", "l", "x", "x"],
        &["LSET", "nokey", "0", "x"],
        &["LSET", "nokey", "x", "x"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "1", "b"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "-1", "b"],
        &["LRANGE", "l", "0", "-1"],
        &["LREM", "l", "0", "b"],
        &["LREM", "l", "0", "nothere"],
        &["LREM", "l", "x", "b"],
        &["LREM", "nokey", "1", "b"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "1", "-2"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "0", "100"],
        &["LTRIM", "l", "x", "1"],
        &["LTRIM", "nokey", "0", "1"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "5", "1"],
        &["EXISTS", "l"],
        &[
            "RPUSH", "p", "a", "b", "c", "1", "2", "3", "c", "b", "a", "b",
        ],
        &["LPOS", "p", "b"],
        &["LPOS", "p", "b", "RANK", "2"],
        &["LPOS", "p", "b", "RANK", "-1"],
        &["LPOS", "p", "b", "RANK", "-2"],
        &["LPOS", "p", "b", "RANK", "10"],
        &["LPOS", "p", "b", "COUNT", "0"],
        &["LPOS", "p", "b", "COUNT", "2"],
        &["LPOS", "p", "b", "COUNT", "2", "RANK", "-1"],
        &["LPOS", "p", "b", "COUNT", "0", "RANK", "2"],
        &["LPOS", "p", "b", "MAXLEN", "1"],
        &["LPOS", "p", "b", "MAXLEN", "2"],
        &["LPOS", "p", "b", "COUNT", "0", "MAXLEN", "8"],
        &["LPOS", "p", "b", "RANK", "-1", "MAXLEN", "2"],
        &["LPOS", "p", "zz"],
        &["LPOS", "p", "zz", "COUNT", "1"],
        &["LPOS", "nokey", "b"],
        &["LPOS", "nokey", "b", "COUNT", "1"],
        &["LPOS", "p", "b", "RANK", "0"],
        &["LPOS", "p", "b", "RANK", "x"],
        &["LPOS", "p", "b", "RANK", "-9223372036854775808"],
        &["LPOS", "p", "b", "COUNT", "-1"],
        &["LPOS", "p", "b", "COUNT", "x"],
        &["LPOS", "p", "b", "MAXLEN", "-1"],
        &["LPOS", "p", "b", "RANK"],
        &["LPOS", "p", "b", "FOO", "1"],
        &["SET", "str", "v"],
        &["LINSERT", "str", "BEFORE", "a", "b"],
        &["LSET", "str", "0", "x"],
        &["LSET", "str", "x", "x"],
        &["LREM", "str", "0", "x"],
        &["LTRIM", "str", "0", "1"],
        &["LPOS", "str", "a"],
    ]);
}

#[test]
fn list_moves_match() {
    compare(&[
        &["RPUSH", "a", "1", "2", "3"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["LMOVE", "a", "b", "right", "left"],
        &["LRANGE", "a", "0", "-1"],
        &["LRANGE", "b", "0", "-1"],
        &["LMOVE", "a", "a", "LEFT", "RIGHT"],
        &["RPUSH", "a", "4"],
        &["LMOVE", "a", "a", "LEFT", "RIGHT"],
        &["LRANGE", "a", "0", "-1"],
        &["LMOVE", "a", "b", "UP", "LEFT"],
        &["LMOVE", "a", "b", "LEFT", "UP"],
        &["LMOVE", "nokey", "b", "LEFT", "LEFT"],
        &["SET", "str", "v"],
        &["LMOVE", "nokey", "str", "LEFT", "LEFT"],
        &["LMOVE", "a", "str", "LEFT", "LEFT"],
        &["LMOVE", "str", "a", "LEFT", "LEFT"],
        &["LRANGE", "a", "0", "-1"],
        &["RPOPLPUSH", "a", "b"],
        &["RPOPLPUSH", "a", "b"],
        &["EXISTS", "a"],
        &["RPOPLPUSH", "a", "b"],
        &["RPOPLPUSH", "b", "str"],
        &["RPOPLPUSH", "b", "b"],
        &["LRANGE", "b", "0", "-1"],
        &["LMOVE", "b", "c", "LEFT", "LEFT"],
        &["LRANGE", "c", "0", "-1"],
        &["RPUSH", "m1", "a", "b", "c"],
        &["RPUSH", "m2", "x"],
        &["LMPOP", "2", "nokey", "m1", "LEFT"],
        &["LMPOP", "2", "m1", "m2", "RIGHT", "COUNT", "10"],
        &["EXISTS", "m1"],
        &["LMPOP", "2", "m1", "m2", "LEFT", "COUNT", "1"],
        &["LMPOP", "2", "m1", "m2", "LEFT"],
        &["LMPOP", "1", "str", "LEFT"],
        &["RPUSH", "m1", "a"],
        &["LMPOP", "2", "m1", "str", "LEFT"],
        &["LMPOP", "2", "str", "m1", "LEFT"],
        &["LMPOP", "2", "nokey", "m1", "LEFT"],
        &["LMPOP", "0", "m1", "LEFT"],
        &["LMPOP", "x", "m1", "LEFT"],
        &["LMPOP", "3", "m1", "LEFT"],
        &["LMPOP", "1", "m1", "UP"],
        &["LMPOP", "1", "m1", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "m1", "LEFT", "COUNT", "x"],
        &["LMPOP", "1", "m1", "LEFT", "COUNT", "1", "COUNT", "1"],
        &["LMPOP", "1", "m1", "LEFT", "COUNT"],
        &["LMPOP", "1", "m1", "LEFT", "FOO"],
        &["LMPOP", "1", "m1"],
        &["LMPOP", "1", "m1", "m2"],
        &["LMOVE", "a", "b", "LEFT"],
    ]);
}

#[test]
fn big_lists_match_across_many_nodes() {
    let elements: Vec<String> = (0..3000)
        .map(|i| format!("element-{i}-{}", "x".repeat(i % 50)))
        .collect();
    let mut rpush: Vec<&str> = vec!["RPUSH", "big"];
    rpush.extend(elements.iter().map(String::as_str));
    compare(&[
        &rpush,
        &["LLEN", "big"],
        &["LINDEX", "big", "1500"],
        &["LINDEX", "big", "-1"],
        &["LRANGE", "big", "1000", "1020"],
        &["LRANGE", "big", "-30", "-1"],
        &["LINSERT", "big", "BEFORE", "element-2000-", "inserted"],
        &["LSET", "big", "2500", "set"],
        &["LPOS", "big", "set"],
        &["LPOS", "big", "inserted", "RANK", "-1"],
        &["LREM", "big", "0", "element-10-xxxxxxxxxx"],
        &["LTRIM", "big", "100", "-100"],
        &["LLEN", "big"],
        &["LRANGE", "big", "0", "3"],
        &["LRANGE", "big", "2790", "-1"],
        &["LPOP", "big", "500"],
        &["RPOP", "big", "3"],
        &["LLEN", "big"],
        &["LINDEX", "big", "0"],
    ]);
}

#[test]
fn collection_key_specs_and_transactions_match() {
    compare(&[
        &[
            "COMMAND",
            "GETKEYS",
            "sintercard",
            "2",
            "a",
            "b",
            "LIMIT",
            "1",
        ],
        &["COMMAND", "GETKEYS", "lmpop", "2", "a", "b", "LEFT"],
        &["COMMAND", "GETKEYS", "sinterstore", "d", "a", "b"],
        &["COMMAND", "GETKEYS", "smove", "a", "b", "m"],
        &["COMMAND", "GETKEYS", "lmove", "a", "b", "LEFT", "RIGHT"],
        &["SADD", "s", "1", "2"],
        &["RPUSH", "l", "a", "b"],
        &["MULTI"],
        &["SMOVE", "s", "t", "1"],
        &["SINTERCARD", "2", "s", "t"],
        &["SUNIONSTORE", "u", "s", "t"],
        &["LMOVE", "l", "m", "LEFT", "LEFT"],
        &["LMPOP", "2", "l", "m", "RIGHT", "COUNT", "2"],
        &["SMEMBERS", "u"],
        &["EXEC"],
    ]);
}

#[test]
fn blocking_commands_served_at_once_or_timing_out_match() {
    compare(&[
        &["RPUSH", "a", "1", "2", "3"],
        &["BLPOP", "nokey", "a", "0"],
        &["BRPOP", "a", "0"],
        &["BLPOP", "nokey", "0.01"],
        &["BRPOP", "nokey", "0.01"],
        &["BLPOP", "a", "x"],
        &["BLPOP", "a", "-1"],
        &["BLPOP", "a", "-0.0001"],
        &["BLPOP", "a", "inf"],
        &["BLPOP", "a", "1e30"],
        &["BLPOP", "a"],
        &["SET", "str", "v"],
        &["BLPOP", "str", "a", "0"],
        &["BLPOP", "nokey", "str", "0.01"],
        &["RPUSH", "a", "2", "3"],
        &["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"],
        &["BRPOPLPUSH", "a", "b", "0"],
        &["LRANGE", "b", "0", "-1"],
        &["BLMOVE", "nokey", "b", "LEFT", "RIGHT", "0.01"],
        &["BRPOPLPUSH", "nokey", "b", "0.01"],
        &["BLMOVE", "a", "b", "UP", "RIGHT", "0"],
        &["BLMOVE", "a", "b", "LEFT", "RIGHT", "x"],
        &["BLMOVE", "b", "str", "LEFT", "RIGHT", "0"],
        &["BLMOVE", "str", "b", "LEFT", "RIGHT", "0"],
        &["BLMOVE", "nokey", "str", "LEFT", "RIGHT", "0.01"],
        &["BRPOPLPUSH", "a", "b", "-1"],
        &["BLMPOP", "0", "2", "nokey", "b", "LEFT", "COUNT", "5"],
        &["BLMPOP", "0.01", "1", "nokey", "LEFT"],
        &["BLMPOP", "x", "1", "b", "LEFT"],
        &["BLMPOP", "-1", "1", "b", "LEFT"],
        &["BLMPOP", "0", "0", "b", "LEFT"],
        &["BLMPOP", "0", "3", "b", "LEFT"],
        &["BLMPOP", "0", "1", "b", "UP"],
        &["BLMPOP", "0", "1", "b", "LEFT", "COUNT", "0"],
        &["BLMPOP", "x", "0", "b", "LEFT"],
        &["BLMPOP", "0", "1", "str", "LEFT"],
        &["BLMPOP", "0", "1", "b"],
        &["MULTI"],
        &["BLPOP", "nokey", "0"],
        &["BRPOP", "nokey", "0"],
        &["BLMOVE", "nokey", "b", "LEFT", "LEFT", "0"],
        &["BRPOPLPUSH", "nokey", "b", "0"],
        &["BLMPOP", "0", "1", "nokey", "LEFT"],
        &["RPUSH", "q", "x"],
        &["BLPOP", "q", "0"],
        &["EXEC"],
        &["COMMAND", "GETKEYS", "blmpop", "0", "2", "a", "b", "LEFT"],
        &["COMMAND", "GETKEYS", "blpop", "a", "b", "0"],
    ]);
}

/// Waits (bounded) until the server counts `n` blocked clients.
fn until_blocked(c: &mut Client, n: usize) {
    let want = format!("blocked_clients:{n}\r\n");
    for _ in 0..500 {
        if c.cmd(&["INFO", "clients"]).contains(&want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("never saw {want:?}");
}

/// The same multi-client story on a server: two clients block on `k` (the first also on
/// `other`), a third pushes two elements in one RPUSH and later one to `other`; what each
/// client receives, in order.
fn blocking_story(port: u16) -> Vec<String> {
    let mut first = Client::connect(port);
    let mut second = Client::connect(port);
    let mut third = Client::connect(port);
    let mut seen = Vec::new();
    first.send(&common::encode(&["BLPOP", "other", "k", "0"]));
    until_blocked(&mut third, 1);
    second.send(&common::encode(&["BRPOP", "k", "5"]));
    until_blocked(&mut third, 2);
    seen.push(third.cmd(&["RPUSH", "k", "x", "y"]));
    // First come, first served: the first blocked client gets the head.
    seen.push(String::from_utf8_lossy(&first.read_reply()).into_owned());
    seen.push(String::from_utf8_lossy(&second.read_reply()).into_owned());
    until_blocked(&mut third, 0);
    seen.push(third.cmd(&["EXISTS", "k"]));
    // A push to a key of another type's name does not wake anyone; a BLMOVE moves atomically
    // into a list that wakes a BLPOP on it.
    first.send(&common::encode(&[
        "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0",
    ]));
    until_blocked(&mut third, 1);
    second.send(&common::encode(&["BLPOP", "dst", "0"]));
    until_blocked(&mut third, 2);
    seen.push(third.cmd(&["LPUSH", "src", "moved"]));
    seen.push(String::from_utf8_lossy(&first.read_reply()).into_owned());
    seen.push(String::from_utf8_lossy(&second.read_reply()).into_owned());
    seen.push(third.cmd(&["EXISTS", "src", "dst"]));
    // A timeout while others push elsewhere.
    seen.push(first.cmd(&["BLPOP", "k", "0.05"]));
    // A client blocked in BLMPOP gets up to COUNT elements of the first list pushed to.
    first.send(&common::encode(&[
        "BLMPOP", "0", "2", "m1", "m2", "RIGHT", "COUNT", "2",
    ]));
    until_blocked(&mut third, 1);
    seen.push(third.cmd(&["RPUSH", "m2", "a", "b", "c"]));
    seen.push(String::from_utf8_lossy(&first.read_reply()).into_owned());
    seen.push(third.cmd(&["LRANGE", "m2", "0", "-1"]));
    // A blocked client that disconnects is never served: the element stays.
    let mut gone = Client::connect(port);
    gone.send(&common::encode(&["BLPOP", "lost", "0"]));
    until_blocked(&mut third, 1);
    drop(gone);
    until_blocked(&mut third, 0);
    seen.push(third.cmd(&["RPUSH", "lost", "kept"]));
    seen.push(third.cmd(&["LRANGE", "lost", "0", "-1"]));
    seen
}

#[test]
fn blocked_clients_are_woken_in_order_as_in_redis() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let want = blocking_story(redis.port);
    let got = blocking_story(lethe.port);
    assert_eq!(got, want);
    assert!(want[1].contains("x") && want[2].contains("y"), "{want:?}");
}

/// A collection about to grow past what one value may weigh is refused with the OOM error and
/// left as it was, never evicted whole (which would silently lose every element).
#[test]
fn collections_growing_past_the_value_limit_are_refused_and_kept() {
    let limits = std::sync::Arc::new(lethe_server::limits::Limits::default());
    let lethe = Lethe::start_with("127.0.0.1:0", limits, 8 << 20);
    let mut c = lethe.client();
    let batch: Vec<String> = (0..500).map(|i| format!("{i:0>60}")).collect();
    for (key, push) in [("l", "RPUSH"), ("s", "SADD")] {
        let mut refused = false;
        for round in 0..400 {
            let members: Vec<String> = batch.iter().map(|m| format!("{round}:{m}")).collect();
            let mut cmd = vec![push, key];
            cmd.extend(members.iter().map(String::as_str));
            let reply = c.cmd(&cmd);
            if reply.starts_with("-ERR value too large for this cache") {
                refused = true;
                break;
            }
            assert!(reply.starts_with(':'), "{reply}");
        }
        assert!(refused, "{push} was never refused");
        let len = c.cmd(&[if key == "l" { "LLEN" } else { "SCARD" }, key]);
        let len: usize = len.trim_start_matches(':').trim().parse().unwrap();
        assert!(len >= 500 && len % 500 == 0, "{key} kept {len} elements");
    }
}

#[test]
fn hashes_growing_past_the_value_limit_are_refused_and_kept() {
    let limits = std::sync::Arc::new(lethe_server::limits::Limits::new());
    let lethe = Lethe::start_with("127.0.0.1:0", limits, 8 << 20);
    let mut c = lethe.client();
    let mut refused = false;
    let mut fields = 0;
    for round in 0..400 {
        let pairs: Vec<String> = (0..250)
            .flat_map(|i| [format!("{round}:{i:0>40}"), format!("{i:0>20}")])
            .collect();
        let mut cmd = vec!["HSET", "h"];
        cmd.extend(pairs.iter().map(String::as_str));
        let reply = c.cmd(&cmd);
        if reply.starts_with("-ERR value too large for this cache") {
            refused = true;
            break;
        }
        assert_eq!(reply, ":250\r\n");
        fields += 250;
        let len = c.cmd(&["HLEN", "h"]);
        assert_eq!(
            len,
            format!(":{fields}\r\n"),
            "round {round}: {}",
            c.cmd(&["INFO", "memory"])
        );
    }
    assert!(refused, "HSET was never refused");
    // Nothing evicted and nothing half applied.
    assert_eq!(c.cmd(&["HLEN", "h"]), format!(":{fields}\r\n"));
}

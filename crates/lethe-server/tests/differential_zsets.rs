//! Differential tests of sorted sets: the same scripts against a real Redis 7.0 and against
//! Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.
//!
//! Sorted sets are ordered, so almost every reply can be compared; the exceptions are random
//! picks (ZRANDMEMBER of part of a set) and scans of large sets (Redis walks its hash table),
//! which are checked on Lethe alone for what they must satisfy.

mod common;

use common::differential::{compare, compare_owned, line};
use common::{Client, Lethe, Redis};

#[test]
fn zadd_options_scores_and_errors_match() {
    compare(&[
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZADD", "z", "1", "a"],
        &["ZADD", "z", "10", "a", "1", "a"],
        &["ZADD", "z", "CH", "5", "a", "2", "b", "7", "d"],
        &["ZADD", "z", "NX", "100", "a", "8", "e"],
        &["ZADD", "z", "XX", "100", "a", "9", "f"],
        &["ZADD", "z", "XX", "CH", "101", "a", "9", "f"],
        &["ZADD", "z", "GT", "CH", "50", "a", "200", "b"],
        &["ZADD", "z", "LT", "CH", "50", "a", "1", "b", "0", "new"],
        &["ZADD", "z", "gt", "xx", "ch", "1000", "c"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZADD", "z", "INCR", "1.5", "a"],
        &["ZADD", "z", "INCR", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "XX", "1", "nosuch"],
        &["ZADD", "z", "INCR", "GT", "-1", "a"],
        &["ZADD", "z", "INCR", "LT", "-1", "a"],
        &["ZADD", "nokey", "XX", "1", "a"],
        &["EXISTS", "nokey"],
        &["ZADD", "nokey", "XX", "INCR", "1", "a"],
        &["ZADD", "z", "NX", "XX", "1", "a"],
        &["ZADD", "z", "GT", "LT", "1", "a"],
        &["ZADD", "z", "GT", "NX", "1", "a"],
        &["ZADD", "z", "LT", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a", "2", "b"],
        &["ZADD", "z", "1", "a", "2"],
        &["ZADD", "z", "1", "a", "INCR"],
        &["ZADD", "z", "NX"],
        &["ZADD", "z", "NX", "1"],
        &["ZADD", "z"],
        &["ZADD", "z", "x", "a"],
        &["ZADD", "z", "1", "a", "nan", "b"],
        &["ZADD", "z", " 1", "a"],
        &["ZADD", "z", "1 ", "a"],
        &["ZADD", "z", "", "a"],
        &["ZADD", "z", "1e400", "a"],
        &["ZADD", "z", "1e-400", "a"],
        &["ZADD", "z", "0x10", "hex"],
        &["ZADD", "z", "+inf", "top", "-inf", "bottom", "inf", "top2"],
        &[
            "ZADD",
            "z",
            "1.1",
            "f1",
            "0.1",
            "f2",
            "1e-5",
            "f3",
            "123456789012345678",
            "f4",
        ],
        &[
            "ZADD", "z", "-0", "negzero", "+5", "plus", ".5", "dot", "5.", "dot2",
        ],
        &[
            "ZADD",
            "z",
            "1E3",
            "exp",
            "2.5e-3",
            "exp2",
            "-1.7976931348623157e308",
            "min",
        ],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZSCORE", "z", "f1"],
        &["ZSCORE", "z", "top"],
        &["ZSCORE", "z", "bottom"],
        &["ZSCORE", "z", "negzero"],
        &["ZSCORE", "z", "nosuch"],
        &["ZSCORE", "nokey", "a"],
        &["ZMSCORE", "z", "f1", "nosuch", "top", "f4"],
        &["ZMSCORE", "nokey", "a", "b"],
        &["ZMSCORE", "z"],
        &["ZINCRBY", "z", "1", "f2"],
        &["ZINCRBY", "z", "-inf", "top"],
        &["ZINCRBY", "z", "1", "newmember"],
        &["ZINCRBY", "newkey", "2.5", "m"],
        &["ZINCRBY", "z", "x", "a"],
        &["ZINCRBY", "z", "nan", "a"],
        &["ZINCRBY", "z", "1"],
        &["ZADD", "z", "INCR", "-inf", "top2"],
        &["ZADD", "z", "INCR", "+inf", "bottom"],
        &["ZSCORE", "z", "top2"],
        &["ZCARD", "z"],
        &["ZCARD", "nokey"],
        &["ZREM", "z", "a", "nosuch", "a", "b"],
        &["ZREM", "nokey", "a"],
        &["ZREM", "z"],
        &["ZADD", "one", "1", "x"],
        &["ZREM", "one", "x"],
        &["EXISTS", "one"],
        &["TYPE", "z"],
        &["OBJECT", "ENCODING", "z"],
        &["SET", "str", "v"],
        &["ZADD", "str", "1", "a"],
        &["ZINCRBY", "str", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZCARD", "str"],
        &["ZSCORE", "str", "a"],
        &["ZMSCORE", "str", "a"],
        &["ZRANK", "str", "a"],
        &["SADD", "set", "a"],
        &["ZADD", "set", "1", "a"],
        &["ZCARD", "set"],
        &["ZADD", "z", "nx", "1", "NX"],
        &["ZSCORE", "z", "NX"],
    ]);
}

#[test]
fn ranks_and_ranges_match() {
    compare(&[
        &[
            "ZADD", "z", "1", "a", "2", "b", "2", "bb", "3", "c", "-inf", "lo", "+inf", "hi",
        ],
        &["ZADD", "z", "2", "ba", "4.5", "d"],
        &["ZRANK", "z", "a"],
        &["ZRANK", "z", "hi"],
        &["ZRANK", "z", "nosuch"],
        &["ZRANK", "nokey", "a"],
        &["ZREVRANK", "z", "a"],
        &["ZREVRANK", "z", "hi"],
        &["ZREVRANK", "z", "nosuch"],
        &["ZRANGE", "z", "0", "-1"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "-3", "-1"],
        &["ZRANGE", "z", "-100", "100"],
        &["ZRANGE", "z", "2", "1"],
        &["ZRANGE", "z", "100", "200"],
        &["ZRANGE", "z", "0", "9223372036854775807"],
        &["ZRANGE", "z", "-9223372036854775808", "0"],
        &["ZRANGE", "z", "0", "-1", "REV"],
        &["ZRANGE", "z", "1", "3", "REV", "WITHSCORES"],
        &["ZRANGE", "z", "x", "1"],
        &["ZRANGE", "z", "0", "1.5"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0"],
        &["ZRANGE", "z", "0", "-1", "FOO"],
        &["ZRANGE", "z", "0", "-1", "REV", "REV"],
        &["ZRANGE", "z", "(1", "3", "BYSCORE"],
        &["ZRANGE", "z", "1", "(3", "BYSCORE", "WITHSCORES"],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE"],
        &[
            "ZRANGE",
            "z",
            "+inf",
            "-inf",
            "BYSCORE",
            "REV",
            "WITHSCORES",
        ],
        &["ZRANGE", "z", "3", "1", "BYSCORE", "REV"],
        &["ZRANGE", "z", "1", "3", "BYSCORE", "REV"],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1"],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"],
        &[
            "ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "100", "2",
        ],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"],
        &[
            "ZRANGE",
            "z",
            "+inf",
            "-inf",
            "BYSCORE",
            "REV",
            "LIMIT",
            "2",
            "3",
            "WITHSCORES",
        ],
        &[
            "ZRANGE",
            "z",
            "-inf",
            "+inf",
            "BYSCORE",
            "LIMIT",
            "0",
            "9223372036854775807",
        ],
        &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "x", "1"],
        &["ZRANGE", "z", "a", "b", "BYSCORE"],
        &["ZRANGE", "z", "nan", "1", "BYSCORE"],
        &["ZRANGE", "z", "(", "5", "BYSCORE"],
        &["ZRANGE", "z", "", "5", "BYSCORE"],
        &["ZRANGE", "z", " 1", "5", "BYSCORE"],
        &["ZRANGE", "z", "1e400", "-1e400", "BYSCORE", "REV"],
        &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
        &["ZRANGE", "z", "0", "-1", "BYLEX"],
        &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
        &["ZRANGE", "nokey", "0", "-1"],
        &["ZRANGE", "nokey", "a", "b", "BYSCORE"],
        &["ZRANGEBYSCORE", "z", "2", "2"],
        &["ZRANGEBYSCORE", "z", "2", "2", "WITHSCORES"],
        &[
            "ZRANGEBYSCORE",
            "z",
            "(2",
            "+inf",
            "LIMIT",
            "1",
            "2",
            "WITHSCORES",
        ],
        &["ZRANGEBYSCORE", "z", "-inf", "+inf", "REV"],
        &["ZRANGEBYSCORE", "z", "-inf", "+inf", "BYSCORE"],
        &["ZRANGEBYSCORE", "z", "x", "1"],
        &["ZREVRANGEBYSCORE", "z", "+inf", "-inf"],
        &["ZREVRANGEBYSCORE", "z", "(3", "(1", "WITHSCORES"],
        &["ZREVRANGEBYSCORE", "z", "2", "2", "LIMIT", "1", "1"],
        &["ZREVRANGEBYSCORE", "z", "1", "3"],
        &["ZREVRANGE", "z", "0", "2"],
        &["ZREVRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZREVRANGE", "z", "-2", "-1"],
        &["ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        &["ZREVRANGE", "z", "0", "-1", "BYSCORE"],
        &["ZCOUNT", "z", "-inf", "+inf"],
        &["ZCOUNT", "z", "(1", "(3"],
        &["ZCOUNT", "z", "2", "2"],
        &["ZCOUNT", "z", "3", "1"],
        &["ZCOUNT", "z", "x", "1"],
        &["ZCOUNT", "nokey", "0", "1"],
        &["ZCOUNT", "nokey", "x", "1"],
        &["DEL", "z"],
        &[
            "ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f", "0", "",
        ],
        &["ZRANGEBYLEX", "lex", "-", "+"],
        &["ZRANGEBYLEX", "lex", "[b", "(e"],
        &["ZRANGEBYLEX", "lex", "(b", "[e"],
        &["ZRANGEBYLEX", "lex", "[", "(b"],
        &["ZRANGEBYLEX", "lex", "+", "-"],
        &["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "2", "3"],
        &["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "2", "-1"],
        &["ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"],
        &["ZRANGEBYLEX", "lex", "b", "e"],
        &["ZRANGEBYLEX", "lex", "[b", "++"],
        &["ZREVRANGEBYLEX", "lex", "+", "-"],
        &["ZREVRANGEBYLEX", "lex", "(e", "[b", "LIMIT", "1", "2"],
        &["ZREVRANGEBYLEX", "lex", "-", "+"],
        &["ZRANGE", "lex", "[c", "+", "BYLEX", "LIMIT", "1", "10"],
        &["ZRANGE", "lex", "+", "[c", "BYLEX", "REV"],
        &["ZLEXCOUNT", "lex", "-", "+"],
        &["ZLEXCOUNT", "lex", "[b", "(d"],
        &["ZLEXCOUNT", "lex", "(d", "[b"],
        &["ZLEXCOUNT", "lex", "b", "d"],
        &["ZLEXCOUNT", "nokey", "-", "+"],
        &["SET", "str", "v"],
        &["ZRANGE", "str", "0", "-1"],
        &["ZRANGE", "str", "x", "-1"],
        &["ZRANGEBYSCORE", "str", "0", "1"],
        &["ZRANGEBYLEX", "str", "-", "+"],
        &["ZREVRANGE", "str", "0", "1"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZRANGESTORE", "dst", "str", "0", "-1"],
    ]);
}

#[test]
fn range_stores_and_removals_match() {
    compare(&[
        &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
        &["ZRANGESTORE", "dst", "z", "1", "3"],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGESTORE",
            "dst",
            "z",
            "(1",
            "4",
            "BYSCORE",
            "LIMIT",
            "1",
            "5",
        ],
        &["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "z", "+", "[b", "BYLEX", "REV"],
        &["ZRANGE", "dst", "0", "-1"],
        &["ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "dst", "z", "10", "20"],
        &["EXISTS", "dst"],
        &["SET", "dst", "string"],
        &["ZRANGESTORE", "dst", "z", "0", "0"],
        &["TYPE", "dst"],
        &["ZRANGESTORE", "dst", "nokey", "0", "-1"],
        &["EXISTS", "dst"],
        &["ZRANGESTORE", "z", "z", "0", "1"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["DEL", "z"],
        &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
        ],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZREMRANGEBYRANK", "z", "-2", "-1"],
        &["ZREMRANGEBYRANK", "z", "5", "10"],
        &["ZREMRANGEBYRANK", "z", "2", "1"],
        &["ZREMRANGEBYRANK", "z", "x", "1"],
        &["ZRANGE", "z", "0", "-1"],
        &["ZREMRANGEBYSCORE", "z", "(2", "3"],
        &["ZREMRANGEBYSCORE", "z", "10", "20"],
        &["ZREMRANGEBYSCORE", "z", "x", "20"],
        &["ZRANGE", "z", "0", "-1"],
        &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"],
        &["EXISTS", "z"],
        &["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"],
        &["ZREMRANGEBYLEX", "lex", "(a", "[c"],
        &["ZREMRANGEBYLEX", "lex", "x", "[c"],
        &["ZREMRANGEBYLEX", "lex", "[x", "[z"],
        &["ZRANGE", "lex", "0", "-1"],
        &["ZREMRANGEBYLEX", "lex", "-", "+"],
        &["EXISTS", "lex"],
        &["ZREMRANGEBYRANK", "nokey", "0", "-1"],
        &["ZREMRANGEBYSCORE", "nokey", "x", "1"],
        &["SET", "str", "v"],
        &["ZREMRANGEBYRANK", "str", "0", "-1"],
        &["ZREMRANGEBYSCORE", "str", "0", "1"],
        &["ZREMRANGEBYLEX", "str", "-", "+"],
    ]);
}

#[test]
fn pops_and_random_members_match() {
    compare(&[
        &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
        ],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z"],
        &["ZPOPMIN", "z", "2"],
        &["ZPOPMAX", "z", "0"],
        &["ZPOPMIN", "z", "1"],
        &["EXISTS", "z"],
        &["ZPOPMIN", "z"],
        &["ZPOPMIN", "nokey", "3"],
        &["ZPOPMAX", "nokey"],
        &["ZPOPMIN", "z", "-1"],
        &["ZPOPMIN", "z", "x"],
        &["ZPOPMIN", "z", "1", "2"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMAX", "z", "9223372036854775807"],
        &["EXISTS", "z"],
        &["ZADD", "y", "1", "a", "2", "b", "3", "c"],
        &["ZMPOP", "2", "nokey", "y", "MIN"],
        &["ZMPOP", "2", "nokey", "y", "MAX", "COUNT", "10"],
        &["ZMPOP", "1", "y", "MIN"],
        &["ZMPOP", "0", "y", "MIN"],
        &["ZMPOP", "-1", "y", "MIN"],
        &["ZMPOP", "x", "y", "MIN"],
        &["ZMPOP", "3", "y", "MIN"],
        &["ZMPOP", "1", "y", "UP"],
        &["ZMPOP", "1", "y"],
        &["ZMPOP", "1", "y", "MIN", "COUNT", "0"],
        &["ZMPOP", "1", "y", "MIN", "COUNT", "-1"],
        &["ZMPOP", "1", "y", "MIN", "COUNT", "1", "COUNT", "2"],
        &["ZMPOP", "1", "y", "MIN", "FOO"],
        &["SET", "str", "v"],
        &["ZPOPMIN", "str"],
        &["ZPOPMIN", "str", "0"],
        &["ZMPOP", "1", "str", "MIN"],
        &["ZADD", "w", "1", "x"],
        &["ZMPOP", "2", "w", "str", "MIN"],
        &["ZMPOP", "2", "nokey", "str", "MIN"],
        &["ZADD", "one", "7.5", "only"],
        &["ZRANDMEMBER", "one"],
        &["ZRANDMEMBER", "one", "1"],
        &["ZRANDMEMBER", "one", "-3"],
        &["ZRANDMEMBER", "one", "-3", "WITHSCORES"],
        &["ZRANDMEMBER", "one", "5", "WITHSCORES"],
        &["ZRANDMEMBER", "one", "0"],
        &["ZRANDMEMBER", "one", "0", "WITHSCORES"],
        &["ZADD", "three", "1", "a", "2", "b", "3", "c"],
        &["ZRANDMEMBER", "three", "3", "WITHSCORES"],
        &["ZRANDMEMBER", "three", "100"],
        &["ZRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey", "5"],
        &["ZRANDMEMBER", "nokey", "-5", "WITHSCORES"],
        &["ZRANDMEMBER", "one", "x"],
        &["ZRANDMEMBER", "one", "1", "FOO"],
        &["ZRANDMEMBER", "one", "1", "WITHSCORES", "x"],
        &["ZRANDMEMBER", "one", "-9223372036854775808"],
        &["ZRANDMEMBER", "str"],
        &["ZRANDMEMBER", "str", "1"],
        &["ZRANDMEMBER", "str", "x"],
        &["ZSCAN", "three", "0"],
        &["ZSCAN", "three", "0", "MATCH", "b*"],
        &["ZSCAN", "three", "0", "COUNT", "1"],
        &["ZSCAN", "three", "0", "COUNT", "0"],
        &["ZSCAN", "three", "0", "COUNT", "x"],
        &["ZSCAN", "three", "0", "FOO"],
        &["ZSCAN", "three", "x"],
        &["ZSCAN", "nokey", "0", "FOO"],
        &["ZSCAN", "str", "0"],
        &["ZADD", "fl", "1.1", "a", "inf", "b", "-0", "c", "1e-5", "d"],
        &["ZSCAN", "fl", "0"],
    ]);
}

#[test]
fn unions_intersections_and_differences_match() {
    compare(&[
        &["ZADD", "a", "1", "x", "2", "y", "3", "z"],
        &["ZADD", "b", "10", "y", "20", "z", "30", "w"],
        &["SADD", "s", "x", "w", "q"],
        &["ZUNION", "2", "a", "b"],
        &["ZUNION", "2", "a", "b", "WITHSCORES"],
        &["ZUNION", "3", "a", "b", "s", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "2", "0.5", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "max", "WITHSCORES"],
        &[
            "ZUNION",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "1",
            "-1",
            "AGGREGATE",
            "SUM",
            "WITHSCORES",
        ],
        &["ZUNION", "2", "a", "nokey", "WITHSCORES"],
        &["ZUNION", "1", "nokey"],
        &["ZINTER", "2", "a", "b", "WITHSCORES"],
        &["ZINTER", "2", "a", "b", "AGGREGATE", "MAX", "WITHSCORES"],
        &["ZINTER", "3", "a", "b", "s"],
        &["ZINTER", "2", "a", "s", "WITHSCORES"],
        &["ZINTER", "2", "a", "a", "WEIGHTS", "1", "2", "WITHSCORES"],
        &["ZINTER", "2", "a", "nokey"],
        &["ZDIFF", "2", "a", "b", "WITHSCORES"],
        &["ZDIFF", "2", "b", "a", "WITHSCORES"],
        &["ZDIFF", "3", "b", "a", "s"],
        &["ZDIFF", "2", "nokey", "a"],
        &["ZDIFF", "1", "a", "WITHSCORES"],
        &["ZDIFF", "2", "a", "b", "WEIGHTS", "1", "1"],
        &["ZDIFF", "2", "a", "b", "AGGREGATE", "MIN"],
        &["ZADD", "i", "inf", "x", "-inf", "y"],
        &["ZADD", "j", "-inf", "x", "inf", "y"],
        &["ZUNION", "2", "i", "j", "WITHSCORES"],
        &["ZINTER", "2", "i", "j", "WITHSCORES"],
        &["ZUNION", "2", "i", "j", "WEIGHTS", "0", "1", "WITHSCORES"],
        &["ZUNION", "1", "a", "WEIGHTS", "inf", "WITHSCORES"],
        &["ZUNION", "0", "a"],
        &["ZUNION", "-1", "a"],
        &["ZUNION", "x", "a"],
        &["ZUNION", "3", "a", "b"],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"],
        &["ZUNION", "2", "a", "b", "WEIGHTS", "1", "nan"],
        &["ZUNION", "2", "a", "b", "AGGREGATE"],
        &["ZUNION", "2", "a", "b", "AGGREGATE", "AVG"],
        &["ZUNION", "2", "a", "b", "FOO"],
        &["ZUNIONSTORE", "d", "2", "a", "b"],
        &["ZRANGE", "d", "0", "-1", "WITHSCORES"],
        &["ZUNIONSTORE", "d", "2", "a", "b", "WITHSCORES"],
        &["ZINTERSTORE", "d", "2", "a", "b", "WEIGHTS", "2", "3"],
        &["ZRANGE", "d", "0", "-1", "WITHSCORES"],
        &["ZDIFFSTORE", "d", "2", "a", "b"],
        &["ZRANGE", "d", "0", "-1", "WITHSCORES"],
        &["ZINTERSTORE", "d", "2", "a", "nokey"],
        &["EXISTS", "d"],
        &["ZUNIONSTORE", "a", "2", "a", "b"],
        &["ZRANGE", "a", "0", "-1", "WITHSCORES"],
        &["ZUNIONSTORE", "d", "0", "a"],
        &["ZINTERSTORE", "d", "0", "a"],
        &["ZDIFFSTORE", "d", "0", "a"],
        &["SET", "str", "v"],
        &["ZUNION", "2", "a", "str"],
        &["ZUNION", "1", "str", "WEIGHTS", "x"],
        &["ZINTER", "2", "nokey", "str"],
        &["ZDIFF", "2", "a", "str"],
        &["ZUNIONSTORE", "d", "2", "a", "str"],
        &["ZUNIONSTORE", "str", "1", "a"],
        &["TYPE", "str"],
        &["ZINTERCARD", "2", "a", "b"],
        &["ZINTERCARD", "2", "a", "b", "LIMIT", "1"],
        &["ZINTERCARD", "2", "a", "b", "LIMIT", "0"],
        &["ZINTERCARD", "2", "a", "s"],
        &["ZINTERCARD", "2", "a", "nokey"],
        &["ZINTERCARD", "0", "a"],
        &["ZINTERCARD", "x", "a"],
        &["ZINTERCARD", "3", "a"],
        &["ZINTERCARD", "1", "a", "LIMIT", "-1"],
        &["ZINTERCARD", "1", "a", "LIMIT"],
        &["ZINTERCARD", "1", "a", "FOO"],
        &["SET", "str2", "v"],
        &["ZINTERCARD", "1", "str2", "LIMIT", "-1"],
        &[
            "COMMAND",
            "GETKEYS",
            "zunionstore",
            "d",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "1",
            "2",
        ],
        &["COMMAND", "GETKEYS", "zinter", "2", "a", "b"],
        &["COMMAND", "GETKEYS", "zrangestore", "d", "s", "0", "1"],
    ]);
}

/// Members `prefix0000..` with scores `i * step`, as one ZADD.
fn zadd_many(key: &str, n: usize, prefix: &str, step: f64) -> Vec<String> {
    let mut cmd = vec!["ZADD".to_string(), key.to_string()];
    for i in 0..n {
        cmd.push(format!("{}", i as f64 * step));
        cmd.push(format!("{prefix}{i:04}"));
    }
    cmd
}

#[test]
fn encodings_switch_at_the_thresholds_and_large_sets_match() {
    let long = "x".repeat(64);
    let longer = "x".repeat(65);
    let script = vec![
        zadd_many("small", 128, "m", 1.0),
        line(&["OBJECT", "ENCODING", "small"]),
        line(&["ZADD", "small", "128", "m0128"]),
        line(&["OBJECT", "ENCODING", "small"]),
        line(&["ZREM", "small", "m0128", "m0000"]),
        line(&["OBJECT", "ENCODING", "small"]),
        line(&["ZADD", "v", "1", &long]),
        line(&["OBJECT", "ENCODING", "v"]),
        line(&["ZADD", "v", "2", &longer]),
        line(&["OBJECT", "ENCODING", "v"]),
        line(&["ZADD", "w", "1", &longer]),
        line(&["OBJECT", "ENCODING", "w"]),
        line(&["ZRANGESTORE", "back", "small", "0", "9"]),
        line(&["OBJECT", "ENCODING", "back"]),
        line(&["ZRANGESTORE", "back", "small", "0", "-1"]),
        line(&["OBJECT", "ENCODING", "back"]),
        line(&["ZUNIONSTORE", "u", "1", "small"]),
        line(&["OBJECT", "ENCODING", "u"]),
        line(&["ZUNIONSTORE", "u", "1", "v"]),
        line(&["OBJECT", "ENCODING", "u"]),
        line(&["ZINTERSTORE", "u", "2", "small", "small"]),
        line(&["OBJECT", "ENCODING", "u"]),
        line(&["ZRANGE", "w", "0", "-1", "WITHSCORES"]),
        line(&["ZADD", "neg", "-0", &longer]),
        line(&["ZSCORE", "neg", &longer]),
        // A large set: every command on the skiplist form.
        zadd_many("big", 1000, "k", 0.5),
        zadd_many("big", 300, "t", 0.25),
        line(&["ZCARD", "big"]),
        line(&["OBJECT", "ENCODING", "big"]),
        line(&["ZRANK", "big", "k0500"]),
        line(&["ZREVRANK", "big", "k0500"]),
        line(&["ZRANK", "big", "t0299"]),
        line(&["ZSCORE", "big", "k0999"]),
        line(&["ZRANGE", "big", "100", "120", "WITHSCORES"]),
        line(&["ZRANGE", "big", "-20", "-1", "REV"]),
        line(&["ZRANGE", "big", "(10", "20", "BYSCORE", "WITHSCORES"]),
        line(&[
            "ZRANGE", "big", "20", "(10", "BYSCORE", "REV", "LIMIT", "3", "7",
        ]),
        line(&["ZRANGEBYSCORE", "big", "74.75", "75.25"]),
        line(&["ZCOUNT", "big", "(10", "100"]),
        zadd_many("lexbig", 300, "k", 0.0),
        line(&["ZRANGEBYLEX", "lexbig", "[k0290", "+"]),
        line(&[
            "ZRANGEBYLEX",
            "lexbig",
            "(k0100",
            "[k0110",
            "LIMIT",
            "2",
            "3",
        ]),
        line(&["ZREVRANGEBYLEX", "lexbig", "(k0110", "-", "LIMIT", "0", "4"]),
        line(&["ZLEXCOUNT", "lexbig", "[k0010", "(k0200"]),
        line(&["ZREMRANGEBYLEX", "lexbig", "[k0010", "(k0200"]),
        line(&["ZCARD", "lexbig"]),
        line(&["ZINCRBY", "big", "1000", "k0000"]),
        line(&["ZRANK", "big", "k0000"]),
        line(&["ZPOPMAX", "big", "3"]),
        line(&["ZPOPMIN", "big", "3"]),
        line(&["ZMPOP", "1", "big", "MIN", "COUNT", "2"]),
        line(&["ZREMRANGEBYRANK", "big", "10", "19"]),
        line(&["ZREMRANGEBYSCORE", "big", "100", "200"]),
        line(&["ZCARD", "big"]),
        line(&["ZRANGE", "big", "0", "30"]),
        line(&["ZRANGESTORE", "part", "big", "0", "499"]),
        line(&["OBJECT", "ENCODING", "part"]),
        line(&[
            "ZUNION",
            "2",
            "big",
            "small",
            "WEIGHTS",
            "1",
            "3",
            "WITHSCORES",
        ]),
        line(&["ZINTER", "2", "big", "part", "AGGREGATE", "MAX"]),
        line(&["ZDIFF", "2", "big", "part"]),
        line(&["ZINTERCARD", "2", "big", "part", "LIMIT", "100"]),
        line(&["ZRANDMEMBER", "big", "100000", "WITHSCORES"]),
        line(&["ZREMRANGEBYSCORE", "big", "-inf", "+inf"]),
        line(&["EXISTS", "big"]),
    ];
    compare_owned(&script);
}

#[test]
fn blocking_pops_served_at_once_or_timing_out_match() {
    compare(&[
        &["ZADD", "a", "1", "x", "2", "y", "3", "z"],
        &["BZPOPMIN", "nokey", "a", "0"],
        &["BZPOPMAX", "a", "0"],
        &["BZPOPMIN", "nokey", "0.01"],
        &["BZPOPMAX", "nokey", "0.01"],
        &["BZPOPMIN", "a", "x"],
        &["BZPOPMIN", "a", "-1"],
        &["BZPOPMIN", "a"],
        &["SET", "str", "v"],
        &["BZPOPMIN", "str", "a", "0"],
        &["BZPOPMIN", "nokey", "str", "0.01"],
        &["ZADD", "a", "5", "p", "6", "q"],
        &["BZMPOP", "0", "2", "nokey", "a", "MAX", "COUNT", "2"],
        &["BZMPOP", "0.01", "1", "nokey", "MIN"],
        &["BZMPOP", "x", "1", "a", "MIN"],
        &["BZMPOP", "-1", "1", "a", "MIN"],
        &["BZMPOP", "0", "0", "a", "MIN"],
        &["BZMPOP", "0", "3", "a", "MIN"],
        &["BZMPOP", "0", "1", "a", "UP"],
        &["BZMPOP", "0", "1", "a", "MIN", "COUNT", "0"],
        &["BZMPOP", "0", "1", "str", "MIN"],
        &["BZMPOP", "0", "1", "a"],
        &["BZMPOP", "0", "1", "a", "MIN", "COUNT", "10"],
        &["EXISTS", "a"],
        &["MULTI"],
        &["BZPOPMIN", "nokey", "0"],
        &["BZPOPMAX", "nokey", "0"],
        &["BZMPOP", "0", "1", "nokey", "MIN"],
        &["ZADD", "q", "1", "m"],
        &["BZPOPMIN", "q", "0"],
        &["EXEC"],
        &["COMMAND", "GETKEYS", "bzmpop", "0", "2", "a", "b", "MIN"],
        &["COMMAND", "GETKEYS", "bzpopmin", "a", "b", "0"],
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

fn read(c: &mut Client) -> String {
    String::from_utf8_lossy(&c.read_reply()).into_owned()
}

/// The same multi-client story on a server: clients block on sorted set keys, others write
/// to them; what each client receives, in order.
fn blocking_story(port: u16) -> Vec<String> {
    let mut first = Client::connect(port);
    let mut second = Client::connect(port);
    let mut third = Client::connect(port);
    let mut seen = Vec::new();
    first.send(&common::encode(&["BZPOPMIN", "other", "k", "0"]));
    until_blocked(&mut third, 1);
    second.send(&common::encode(&["BZPOPMAX", "k", "5"]));
    until_blocked(&mut third, 2);
    seen.push(third.cmd(&["ZADD", "k", "1", "low", "2", "high"]));
    // First come, first served: the first blocked client gets the lowest.
    seen.push(read(&mut first));
    seen.push(read(&mut second));
    until_blocked(&mut third, 0);
    seen.push(third.cmd(&["EXISTS", "k"]));
    // A write of another type under the key does not serve the client; a later ZINCRBY does.
    first.send(&common::encode(&["BZPOPMIN", "t", "0"]));
    until_blocked(&mut third, 1);
    seen.push(third.cmd(&["SET", "t", "string"]));
    seen.push(third.cmd(&["DEL", "t"]));
    seen.push(third.cmd(&["ZINCRBY", "t", "2.5", "m"]));
    seen.push(read(&mut first));
    // BZMPOP takes up to COUNT from the first set written to.
    first.send(&common::encode(&[
        "BZMPOP", "0", "2", "m1", "m2", "MAX", "COUNT", "2",
    ]));
    until_blocked(&mut third, 1);
    seen.push(third.cmd(&["ZADD", "m2", "1", "a", "2", "b", "3", "c"]));
    seen.push(read(&mut first));
    seen.push(third.cmd(&["ZRANGE", "m2", "0", "-1"]));
    // A list push does not serve a sorted set waiter, and a sorted set not a list waiter.
    first.send(&common::encode(&["BZPOPMIN", "mixed", "0"]));
    until_blocked(&mut third, 1);
    second.send(&common::encode(&["BLPOP", "mixed2", "0"]));
    until_blocked(&mut third, 2);
    seen.push(third.cmd(&["ZADD", "mixed2", "1", "z"]));
    seen.push(third.cmd(&["RPUSH", "mixed", "l"]));
    seen.push(third.cmd(&["DEL", "mixed", "mixed2"]));
    seen.push(third.cmd(&["RPUSH", "mixed2", "l"]));
    seen.push(read(&mut second));
    seen.push(third.cmd(&["ZADD", "mixed", "4", "z"]));
    seen.push(read(&mut first));
    // ZUNIONSTORE creating the key serves a waiter too.
    first.send(&common::encode(&["BZPOPMAX", "made", "0"]));
    until_blocked(&mut third, 1);
    seen.push(third.cmd(&["ZADD", "src", "1", "u", "2", "v"]));
    seen.push(third.cmd(&["ZUNIONSTORE", "made", "1", "src"]));
    seen.push(read(&mut first));
    // Timeouts while others write elsewhere.
    seen.push(first.cmd(&["BZPOPMIN", "k", "0.05"]));
    seen.push(first.cmd(&["BZMPOP", "0.05", "1", "k", "MIN"]));
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
    assert!(
        want[1].contains("low") && want[2].contains("high"),
        "{want:?}"
    );
}

/// ZRANK and ZREVRANK take Redis 7.2's WITHSCORE (Redis 7.0 refuses it: not compared).
#[test]
fn rank_with_score_follows_redis_7_2() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    c.cmd(&["ZADD", "z", "1.5", "a", "2", "b"]);
    assert_eq!(
        c.cmd(&["ZRANK", "z", "b", "WITHSCORE"]),
        "*2\r\n:1\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        c.cmd(&["ZREVRANK", "z", "b", "withscore"]),
        "*2\r\n:0\r\n$1\r\n2\r\n"
    );
    assert_eq!(c.cmd(&["ZRANK", "z", "nosuch", "WITHSCORE"]), "*-1\r\n");
    assert_eq!(c.cmd(&["ZRANK", "z", "a", "FOO"]), "-ERR syntax error\r\n");
    assert_eq!(
        c.cmd(&["ZRANK", "z", "a", "WITHSCORE", "x"]),
        "-ERR syntax error\r\n"
    );
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        c.cmd(&["ZRANK", "z", "a", "WITHSCORE"]),
        "*2\r\n:0\r\n,1.5\r\n"
    );
    assert_eq!(c.cmd(&["ZRANK", "z", "nosuch", "WITHSCORE"]), "_\r\n");
}

/// What Redis picks at random cannot be compared; what it must satisfy can.
#[test]
fn random_members_and_large_scans_keep_their_promises() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let add = zadd_many("big", 500, "m", 1.0);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    assert_eq!(c.cmd(&add), ":500\r\n");
    // Distinct members for a positive count below the size (a few, and most of them).
    for n in [100, 450] {
        let reply = c.cmd(&["ZRANDMEMBER", "big", &n.to_string()]);
        let members: Vec<&str> = reply.split("\r\n").filter(|l| l.starts_with('m')).collect();
        assert_eq!(members.len(), n);
        let distinct: std::collections::HashSet<_> = members.iter().collect();
        assert_eq!(distinct.len(), n);
    }
    // A negative count repeats as needed.
    let reply = c.cmd(&["ZRANDMEMBER", "big", "-1000", "WITHSCORES"]);
    assert!(reply.starts_with("*2000\r\n"), "{}", &reply[..20]);
    // A huge negative count is refused rather than built.
    assert!(
        c.cmd(&["ZRANDMEMBER", "big", "-9223372036854775807"])
            .starts_with("-ERR value is out of range")
    );
    // A full scan of a large set returns every member, with its score.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = c.cmd(&["ZSCAN", "big", &cursor, "COUNT", "7"]);
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        for pair in lines[4..].chunks(4) {
            if pair.len() == 4 {
                let (m, s) = (pair[1], pair[3]);
                assert_eq!(format!("m{:04}", s.parse::<usize>().unwrap()), m);
                seen.insert(m.to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 500);
}

/// A sorted set about to grow past what one value may weigh is refused with the OOM error and
/// left as it was, never evicted whole.
#[test]
fn sorted_sets_growing_past_the_value_limit_are_refused_and_kept() {
    let limits = std::sync::Arc::new(lethe_server::limits::Limits::default());
    let lethe = Lethe::start_with("127.0.0.1:0", limits, 8 << 20);
    let mut c = lethe.client();
    let mut refused = false;
    let mut members = 0;
    for round in 0..400 {
        let mut cmd = vec!["ZADD".to_string(), "z".to_string()];
        for i in 0..500 {
            cmd.push(format!("{i}"));
            cmd.push(format!("{round}:{i:0>60}"));
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let reply = c.cmd(&cmd);
        if reply.starts_with("-ERR value too large for this cache") {
            refused = true;
            break;
        }
        assert_eq!(reply, ":500\r\n");
        members += 500;
    }
    assert!(refused, "ZADD was never refused");
    assert_eq!(c.cmd(&["ZCARD", "z"]), format!(":{members}\r\n"));
}

/// Client-side caching: a client that read a sorted set is told when another client changes
/// it, and not when a write changes nothing; the same story on both servers.
fn tracking_story(port: u16) -> Vec<String> {
    let mut reader = Client::connect(port);
    let mut writer = Client::connect(port);
    let mut seen = Vec::new();
    reader.cmd(&["HELLO", "3"]);
    seen.push(reader.cmd(&["CLIENT", "TRACKING", "ON"]));
    seen.push(writer.cmd(&["ZADD", "z", "1", "a", "2", "b"]));
    seen.push(reader.cmd(&["ZSCORE", "z", "a"]));
    // The same score again changes nothing: no invalidation.
    seen.push(writer.cmd(&["ZADD", "z", "1", "a"]));
    seen.push(writer.cmd(&["ZREM", "z", "nosuch"]));
    seen.push(reader.cmd(&["PING"]));
    seen.push(writer.cmd(&["ZINCRBY", "z", "1", "a"]));
    seen.push(read(&mut reader));
    seen.push(reader.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]));
    seen.push(writer.cmd(&["ZPOPMIN", "z"]));
    seen.push(read(&mut reader));
    seen.push(reader.cmd(&["ZUNION", "2", "z", "y", "WITHSCORES"]));
    seen.push(writer.cmd(&["ZUNIONSTORE", "y", "1", "z"]));
    seen.push(read(&mut reader));
    seen.push(reader.cmd(&["ZCARD", "z"]));
    seen.push(writer.cmd(&["ZREMRANGEBYSCORE", "z", "-inf", "+inf"]));
    seen.push(read(&mut reader));
    seen.push(reader.cmd(&["PING"]));
    seen
}

#[test]
fn tracking_invalidates_sorted_sets_as_in_redis() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let want = tracking_story(redis.port);
    let got = tracking_story(lethe.port);
    assert_eq!(got, want);
    assert!(want[7].contains("invalidate"), "{want:?}");
}

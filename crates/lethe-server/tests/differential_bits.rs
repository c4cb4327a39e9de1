//! Differential tests of the bitmap, HyperLogLog and LCS commands: the same scripts against a
//! real Redis 7 and against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.
//!
//! HyperLogLogs are strings in Redis's format, so besides replies the tests compare the
//! stored bytes (GET) and move values between the servers (GET from one, SET into the other).
//! Arguments may carry `\xHH` escapes for binary bytes.

mod common;

use common::differential::{clients, servers};
use common::{Client, Lethe};

/// `s` with `\xHH` escapes turned into bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() + 1 {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Sends `args` (binary-safe) and returns the raw reply.
fn send(c: &mut Client, args: &[Vec<u8>]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    c.send(&req);
    c.read_reply()
}

/// Runs one command on both servers and asserts the replies are the same bytes; returns it.
fn both(r: &mut Client, l: &mut Client, args: &[Vec<u8>], what: &str) -> Vec<u8> {
    let want = send(r, args);
    let got = send(l, args);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{what} {:?}: Lethe's reply differs from Redis's",
        args.iter()
            .take(12)
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
    want
}

fn args(cmd: &[&str]) -> Vec<Vec<u8>> {
    cmd.iter().map(|a| unescape(a)).collect()
}

/// Runs `script` on both servers from an empty keyspace, once in RESP2 and once in RESP3.
fn compare(script: &[&[&str]]) {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        for (i, cmd) in script.iter().enumerate() {
            both(
                &mut r,
                &mut l,
                &args(cmd),
                &format!("RESP{proto} command #{i}"),
            );
        }
    }
}

#[test]
fn setbit_getbit_bitcount_bitpos_match() {
    compare(&[
        &["SETBIT", "k", "7", "1"],
        &["GET", "k"],
        &["SETBIT", "k", "7", "0"],
        &["SETBIT", "k", "100", "1"],
        &["GET", "k"],
        &["GETBIT", "k", "100"],
        &["GETBIT", "k", "101"],
        &["GETBIT", "k", "999999"],
        &["GETBIT", "nokey", "3"],
        &["SETBIT", "k", "-1", "1"],
        &["SETBIT", "k", "4294967296", "1"],
        &["SETBIT", "k", "4294967295", "2"],
        &["SETBIT", "k", "x", "1"],
        &["SETBIT", "k", "1", "x"],
        &["SETBIT", "k", "1", "-1"],
        &["GETBIT", "k", "x"],
        &["GETBIT", "k", "4294967296"],
        &["SET", "n", "123"],
        &["SETBIT", "n", "1", "1"],
        &["GET", "n"],
        &["SET", "s", "foobar"],
        &["BITCOUNT", "s"],
        &["BITCOUNT", "s", "0", "0"],
        &["BITCOUNT", "s", "1", "1"],
        &["BITCOUNT", "s", "1", "1", "BYTE"],
        &["BITCOUNT", "s", "5", "30", "BIT"],
        &["BITCOUNT", "s", "-5", "-1", "BIT"],
        &["BITCOUNT", "s", "0"],
        &["BITCOUNT", "s", "0", "1", "2", "3"],
        &["BITCOUNT", "s", "0", "1", "FOO"],
        &["BITCOUNT", "nokey", "0", "1", "FOO"],
        &["BITCOUNT", "nokey", "x", "y"],
        &["BITCOUNT", "s", "x", "y"],
        &["BITCOUNT", "s", "-100", "100"],
        &["BITCOUNT", "s", "3", "1"],
        &["BITCOUNT", "s", "-1", "-3"],
        &["BITCOUNT", "s", "0", "-1", "BIT"],
        &["BITCOUNT", "s", "7", "7", "bit"],
        &[
            "BITCOUNT",
            "s",
            "9223372036854775807",
            "-9223372036854775808",
        ],
        &[
            "BITCOUNT",
            "s",
            "-9223372036854775808",
            "9223372036854775807",
            "BIT",
        ],
        &["SET", "e", ""],
        &["BITCOUNT", "e"],
        &["BITCOUNT", "e", "0", "0"],
        &["BITPOS", "e", "0"],
        &["BITPOS", "e", "1"],
        &["BITPOS", "nokey", "0"],
        &["BITPOS", "nokey", "1"],
        &["BITPOS", "nokey", "2"],
        &["BITPOS", "s", "2"],
        &["BITPOS", "s", "x"],
        &["SET", "ff", r"\xff\xf0\x00"],
        &["BITPOS", "ff", "0"],
        &["BITPOS", "ff", "1"],
        &["BITPOS", "ff", "1", "2"],
        &["BITPOS", "ff", "0", "1"],
        &["BITPOS", "ff", "0", "0", "0"],
        &["BITPOS", "ff", "0", "0", "-1"],
        &["SET", "full", r"\xff\xff\xff"],
        &["BITPOS", "full", "0"],
        &["BITPOS", "full", "0", "1"],
        &["BITPOS", "full", "0", "1", "2"],
        &["BITPOS", "full", "0", "1", "-1"],
        &["BITPOS", "full", "0", "3", "20", "BIT"],
        &["BITPOS", "full", "1", "3", "20", "BIT"],
        &["BITPOS", "ff", "0", "3", "20", "BIT"],
        &["BITPOS", "ff", "0", "13", "20", "bit"],
        &["BITPOS", "ff", "1", "13", "20", "BIT"],
        &["BITPOS", "ff", "1", "5", "5", "BIT"],
        &["BITPOS", "ff", "0", "5", "5", "BIT"],
        &["BITPOS", "ff", "1", "0", "-1", "BYTE"],
        &["BITPOS", "ff", "1", "0", "-1", "FOO"],
        &["BITPOS", "nokey", "1", "0", "-1", "FOO"],
        &["BITPOS", "ff", "1", "0", "-1", "BIT", "x"],
        &["BITPOS", "ff", "1", "x"],
        &["BITPOS", "ff", "1", "0", "x"],
        &["BITPOS", "ff", "0", "-100", "100"],
        &["BITPOS", "ff", "0", "10", "1"],
        &["LPUSH", "l", "a"],
        &["BITPOS", "l", "1"],
        &["BITCOUNT", "l"],
        &["GETBIT", "l", "0"],
        &["SETBIT", "l", "0", "1"],
        &["SET", "t", "abc"],
        &["EXPIRE", "t", "100"],
        &["SETBIT", "t", "30", "1"],
        &["TTL", "t"],
        &["SETBIT", "t", "7", "1"],
        &["GET", "t"],
        &["SETBIT", "new", "0", "0"],
        &["GET", "new"],
        &["SETBIT", "b8", "8", "1"],
        &["BITCOUNT", "b8", "0", "-1", "BIT"],
        &["BITCOUNT", "b8", "8", "8", "BIT"],
        &["BITCOUNT", "b8", "9", "15", "BIT"],
        &["BITPOS", "b8", "1", "8", "8", "BIT"],
        &["BITPOS", "b8", "1", "9", "-1", "BIT"],
        &["BITPOS", "b8", "0", "0", "-1", "BIT"],
        &["BITPOS", "b8", "1", "1"],
        &["BITPOS", "b8", "0", "1"],
    ]);
}

#[test]
fn bitop_and_bitfield_match() {
    compare(&[
        &["SET", "a", r"\xff\x0f"],
        &["SET", "b", r"\xf0"],
        &["BITOP", "AND", "d", "a", "b"],
        &["GET", "d"],
        &["BITOP", "OR", "d", "a", "b"],
        &["GET", "d"],
        &["BITOP", "XOR", "d", "a", "b", "nokey"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a", "b"],
        &["BITOP", "NOT", "d"],
        &["BITOP", "FOO", "d", "a"],
        &["BITOP", "and", "d", "nokey", "nokey2"],
        &["EXISTS", "d"],
        &["SET", "d", "x"],
        &["EXPIRE", "d", "100"],
        &["BITOP", "or", "d", "a"],
        &["TTL", "d"],
        &["BITOP", "or", "d", "nokey"],
        &["EXISTS", "d"],
        &["LPUSH", "l", "x"],
        &["BITOP", "or", "d", "a", "l"],
        &["BITOP", "or", "l", "a"],
        &["TYPE", "l"],
        &["SET", "n", "12"],
        &["BITOP", "NOT", "d", "n"],
        &["GET", "d"],
        &[
            "BITFIELD", "bf", "SET", "i8", "0", "-100", "GET", "u8", "0", "GET", "i8", "0",
        ],
        &["GET", "bf"],
        &["BITFIELD", "bf", "INCRBY", "i8", "0", "200"],
        &[
            "BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "200", "INCRBY", "i8", "0",
            "-1000",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "200", "GET", "i8", "0",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u2", "100", "1", "INCRBY", "u2",
            "100", "1", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "1",
        ],
        &[
            "BITFIELD", "bf", "SET", "u8", "#2", "255", "GET", "u8", "#2", "GET", "u4", "#5",
            "GET", "i64", "0", "GET", "u63", "1",
        ],
        &["GET", "bf"],
        &[
            "BITFIELD",
            "bf",
            "SET",
            "i64",
            "0",
            "9223372036854775807",
            "INCRBY",
            "i64",
            "0",
            "1",
            "OVERFLOW",
            "SAT",
            "INCRBY",
            "i64",
            "0",
            "1",
            "SET",
            "i64",
            "0",
            "-9223372036854775808",
            "INCRBY",
            "i64",
            "0",
            "-1",
        ],
        &[
            "BITFIELD",
            "bf",
            "OVERFLOW",
            "FAIL",
            "SET",
            "i64",
            "64",
            "-9223372036854775808",
            "INCRBY",
            "i64",
            "64",
            "-1",
            "INCRBY",
            "i64",
            "64",
            "9223372036854775807",
            "INCRBY",
            "i64",
            "64",
            "1",
        ],
        &[
            "BITFIELD", "bf", "SET", "u63", "0", "-1", "OVERFLOW", "SAT", "SET", "u63", "0", "-1",
            "SET", "u8", "0", "300", "SET", "u8", "0", "-5", "OVERFLOW", "FAIL", "SET", "u8", "0",
            "256", "SET", "i8", "0", "128", "SET", "i8", "0", "-129", "SET", "i8", "0", "-128",
        ],
        &[
            "BITFIELD", "bf", "OVERFLOW", "WRAP", "SET", "i8", "0", "200", "SET", "i4", "0", "9",
            "GET", "i4", "0", "SET", "u1", "0", "3",
        ],
        &["BITFIELD", "bf", "GET", "u64", "0"],
        &["BITFIELD", "bf", "GET", "i65", "0"],
        &["BITFIELD", "bf", "GET", "i0", "0"],
        &["BITFIELD", "bf", "GET", "I8", "0"],
        &["BITFIELD", "bf", "GET", "u", "0"],
        &["BITFIELD", "bf", "GET", "i8", "-1"],
        &["BITFIELD", "bf", "GET", "i8", "#-1"],
        &["BITFIELD", "bf", "GET", "i8", "#"],
        &["BITFIELD", "bf", "GET", "i8", "x"],
        &["BITFIELD", "bf", "GET", "i8", "4294967296"],
        &["BITFIELD", "bf", "GET", "i8", "4294967295"],
        &["BITFIELD", "bf", "GET", "i8", "#536870912"],
        &["BITFIELD", "bf", "GET", "i8", "#536870911"],
        &["BITFIELD", "bf", "GET", "i64", "#9223372036854775807"],
        &["BITFIELD", "bf", "GET", "i64", "#1152921504606846976"],
        &["BITFIELD", "bf", "OVERFLOW", "foo", "GET", "i8", "0"],
        &["BITFIELD", "bf", "OVERFLOW"],
        &["BITFIELD", "bf", "GET", "i8"],
        &["BITFIELD", "bf", "SET", "i8", "0"],
        &["BITFIELD", "bf", "SET", "i8", "0", "x"],
        &["BITFIELD", "bf", "INCRBY", "i8", "0", "x"],
        &["BITFIELD", "bf", "FOO"],
        &["BITFIELD", "bf"],
        &["BITFIELD", "nokey", "GET", "i8", "0"],
        &["BITFIELD", "nokey2"],
        &["EXISTS", "nokey2"],
        &[
            "BITFIELD", "nokey3", "OVERFLOW", "FAIL", "INCRBY", "u8", "16", "300",
        ],
        &["GET", "nokey3"],
        &["BITFIELD", "l", "GET", "i8", "0"],
        &["BITFIELD", "l", "SET", "i8", "0", "1"],
        &["BITFIELD", "l"],
        &["BITFIELD_RO", "bf", "GET", "i8", "0", "GET", "u4", "4"],
        &["BITFIELD_RO", "bf", "SET", "i8", "0", "1"],
        &["BITFIELD_RO", "l", "SET", "i8", "0", "1"],
        &["BITFIELD_RO", "l", "GET", "i8", "0"],
        &["BITFIELD_RO", "bf", "SET", "i8", "x", "1"],
        &["BITFIELD_RO", "bf"],
        &["BITFIELD_RO", "bf", "overflow", "sat", "get", "i8", "0"],
        &["BITFIELD", "n", "GET", "u8", "0", "SET", "u8", "8", "65"],
        &["GET", "n"],
        &["BITFIELD", "s", "SET", "u8", "100", "1"],
        &["STRLEN", "s"],
        &["SET", "same", "\x0f"],
        &["BITOP", "NOT", "same", "same"],
        &["GET", "same"],
        &["BITOP", "XOR", "same", "same", "same"],
        &["GET", "same"],
        &[
            "BITFIELD", "neg", "SET", "i5", "3", "-3", "GET", "i5", "3", "GET", "u5", "3", "GET",
            "u3", "0",
        ],
        &[
            "BITFIELD",
            "neg",
            "INCRBY",
            "u63",
            "#1",
            "9223372036854775807",
            "INCRBY",
            "u63",
            "#1",
            "1",
        ],
        &[
            "BITFIELD",
            "neg",
            "OVERFLOW",
            "SAT",
            "INCRBY",
            "u63",
            "#1",
            "1",
            "INCRBY",
            "u63",
            "#1",
            "-9223372036854775808",
        ],
        &["GET", "neg"],
    ]);
}

#[test]
fn huge_offsets_are_refused_as_redis_refuses_them() {
    compare(&[
        &["CONFIG", "SET", "proto-max-bulk-len", "1mb"],
        &["SETBIT", "b", "8388608", "1"],
        &["GETBIT", "b", "8388608"],
        &["BITFIELD", "b", "GET", "u8", "8388608"],
        &["BITFIELD", "b", "SET", "u8", "#1048576", "1"],
        &["BITFIELD_RO", "b", "GET", "u8", "8388608"],
        &["SETBIT", "b", "8388607", "1"],
        &["STRLEN", "b"],
        &["BITCOUNT", "b"],
        &["BITPOS", "b", "1"],
        &["CONFIG", "SET", "proto-max-bulk-len", "512mb"],
        &["SETBIT", "b", "4294967296", "1"],
        &["SETBIT", "b", "9223372036854775807", "1"],
        &["SETBIT", "b", "9223372036854775808", "1"],
        &["BITFIELD", "b", "GET", "i64", "#9223372036854775807"],
        &["BITFIELD", "b", "SET", "i64", "#67108864", "1"],
        &["STRLEN", "b"],
    ]);
}

#[test]
fn hyperloglog_commands_match() {
    compare(&[
        &["PFADD", "h"],
        &["GET", "h"],
        &["PFCOUNT", "h"],
        &["GET", "h"],
        &["PFADD", "h", "a", "b", "c"],
        &["GET", "h"],
        &["PFADD", "h", "a"],
        &["PFCOUNT", "h"],
        &["GET", "h"],
        &["PFADD", "h", "d"],
        &["GET", "h"],
        &["PFCOUNT", "h", "nokey"],
        &["GET", "h"],
        &["PFCOUNT", "nokey"],
        &["PFADD", "h2", "x", "y", "z", "a"],
        &["PFMERGE", "m", "h", "h2"],
        &["GET", "m"],
        &["PFCOUNT", "m"],
        &["PFMERGE", "m2"],
        &["GET", "m2"],
        &["PFMERGE", "m3", "nokey"],
        &["EXISTS", "m3"],
        &["SET", "s", "foo"],
        &["PFADD", "s", "a"],
        &["PFCOUNT", "s"],
        &["PFCOUNT", "h", "s"],
        &["PFMERGE", "s", "h"],
        &["PFMERGE", "h", "s"],
        &["SET", "i", "123"],
        &["PFADD", "i", "a"],
        &["PFCOUNT", "i"],
        &["LPUSH", "l", "a"],
        &["PFADD", "l", "a"],
        &["PFCOUNT", "l"],
        &["PFCOUNT", "h", "l"],
        &["PFMERGE", "l", "h"],
        &["PFMERGE", "h", "l"],
        &[
            "SET",
            "bad",
            r"HYLL\x01\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x80\x00",
        ],
        &["PFCOUNT", "bad"],
        &["PFADD", "bad", "x"],
        &[
            "SET",
            "bad2",
            r"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x00",
        ],
        &["PFCOUNT", "bad2"],
        &[
            "SET",
            "bad3",
            r"HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff",
        ],
        &["PFCOUNT", "bad3"],
        &[
            "SET",
            "c",
            r"HYLL\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x7f\xff",
        ],
        &["PFCOUNT", "c"],
        &["PFADD", "c", "zz"],
        &["PFCOUNT", "c"],
        &["GET", "c"],
        &["PFADD", "t", "a"],
        &["EXPIRE", "t", "100"],
        &["PFADD", "t", "b"],
        &["TTL", "t"],
        &["PFCOUNT", "t"],
        &["TTL", "t"],
        &["PFADD", "u", "a", "b", "q"],
        &["GET", "u"],
        &["PFCOUNT", "t", "u"],
        &["GET", "u"],
        &["MULTI"],
        &["PFADD", "x", "1", "2", "3"],
        &["PFCOUNT", "x"],
        &["PFCOUNT", "x", "u"],
        &["PFMERGE", "x", "u"],
        &["EXEC"],
        &["GET", "x"],
        &["PFMERGE", "t", "t"],
        &["GET", "t"],
        &["PFADD"],
        &["PFCOUNT"],
        &["PFMERGE"],
    ]);
}

#[test]
fn lcs_matches() {
    compare(&[
        &["SET", "a", "ohmytext"],
        &["SET", "b", "mynewtext"],
        &["LCS", "a", "b"],
        &["LCS", "a", "b", "LEN"],
        &["LCS", "a", "b", "IDX"],
        &["LCS", "a", "b", "IDX", "WITHMATCHLEN"],
        &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4"],
        &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
        &["LCS", "a", "b", "IDX", "MINMATCHLEN", "-5", "WITHMATCHLEN"],
        &["LCS", "a", "b", "LEN", "MINMATCHLEN", "2"],
        &["LCS", "a", "b", "IDX", "LEN"],
        &["LCS", "a", "b", "MINMATCHLEN"],
        &["LCS", "a", "b", "MINMATCHLEN", "x"],
        &["LCS", "a", "b", "FOO"],
        &["LCS", "a", "nokey"],
        &["LCS", "nokey", "nokey2", "IDX"],
        &["LCS", "a", "nokey", "LEN"],
        &["LCS", "a", "a", "IDX", "WITHMATCHLEN"],
        &["LCS", "a", "b", "idx", "withmatchlen", "minmatchlen", "1"],
        &["SET", "n", "12345"],
        &["SET", "m", "2345"],
        &["LCS", "n", "m"],
        &["LCS", "n", "m", "IDX"],
        &["LPUSH", "l", "x"],
        &["LCS", "a", "l"],
        &["LCS", "l", "a", "FOO"],
        &["LCS", "a"],
        &["SET", "x", "abcabcabcxyzabc"],
        &["SET", "y", "xyzabcabcxyzabcaaa"],
        &["LCS", "x", "y", "IDX", "WITHMATCHLEN"],
        &["LCS", "y", "x", "IDX", "WITHMATCHLEN"],
        &["LCS", "x", "y"],
        &["CONFIG", "SET", "proto-max-bulk-len", "1mb"],
        &["SETRANGE", "big1", "1000", "a"],
        &["SETRANGE", "big2", "1000", "b"],
        &["LCS", "big1", "big2", "LEN"],
        &["LCS", "big1", "big2"],
        &["SETRANGE", "big3", "200", "c"],
        &["LCS", "big1", "big3", "LEN"],
        &["LCS", "big1", "big3", "IDX", "MINMATCHLEN", "150"],
        &["CONFIG", "SET", "proto-max-bulk-len", "512mb"],
    ]);
}

#[test]
fn pfdebug_matches() {
    compare(&[
        &["PFDEBUG", "ENCODING", "nokey"],
        &["PFADD", "h", "a", "b", "c", "d", "e", "f", "g"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["PFDEBUG", "decode", "h"],
        &["PFDEBUG", "FOO", "h"],
        &["PFDEBUG", "FOO", "nokey"],
        &["PFDEBUG", "TODENSE", "h"],
        &["PFDEBUG", "TODENSE", "h"],
        &["PFDEBUG", "ENCODING", "h"],
        &["PFDEBUG", "DECODE", "h"],
        &["GET", "h"],
        &["PFCOUNT", "h"],
        &["PFADD", "h2", "x", "y"],
        &["PFDEBUG", "GETREG", "h2"],
        &["PFDEBUG", "ENCODING", "h2"],
        &["GET", "h2"],
        &["SET", "s", "foo"],
        &["PFDEBUG", "ENCODING", "s"],
        &["LPUSH", "l", "a"],
        &["PFDEBUG", "ENCODING", "l"],
        &["PFDEBUG", "GETREG", "l"],
        &["PFDEBUG", "x"],
        &["PFDEBUG", "x", "y", "z"],
        &["COMMAND", "INFO", "pfdebug"],
        &[
            "SET",
            "bad",
            r"HYLL\x01\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x80\x00",
        ],
        &["PFDEBUG", "DECODE", "bad"],
        &["PFDEBUG", "TODENSE", "bad"],
        &["PFDEBUG", "GETREG", "bad"],
    ]);
}

/// A small deterministic generator (an LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }

    fn text(&mut self, max: u64) -> String {
        let n = self.next(max + 1);
        (0..n)
            .map(|_| (b'a' + self.next(3) as u8) as char)
            .collect()
    }
}

#[test]
fn lcs_of_random_strings_matches() {
    let (redis, lethe) = servers();
    let mut rng = Lcg(7);
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        for _ in 0..150 {
            let (x, y) = (rng.text(30), rng.text(30));
            for cmd in [
                &["SET", "x", &x][..],
                &["SET", "y", &y],
                &["LCS", "x", "y"],
                &["LCS", "x", "y", "LEN"],
                &["LCS", "x", "y", "IDX", "WITHMATCHLEN"],
                &["LCS", "y", "x", "IDX", "MINMATCHLEN", "2"],
            ] {
                both(
                    &mut r,
                    &mut l,
                    &args(cmd),
                    &format!("RESP{proto} x={x:?} y={y:?}"),
                );
            }
        }
    }
}

#[test]
fn bitfield_of_random_operations_matches() {
    let (redis, lethe) = servers();
    let mut rng = Lcg(11);
    let (mut r, mut l) = clients(&redis, &lethe, "2");
    let modes = ["WRAP", "SAT", "FAIL"];
    for i in 0..2000 {
        let signed = rng.next(2) == 0;
        let width = 1 + rng.next(if signed { 64 } else { 63 });
        let ty = format!("{}{width}", if signed { 'i' } else { 'u' });
        let offset = rng.next(80).to_string();
        let value = match rng.next(4) {
            0 => (rng.next(1 << 20) as i64 - (1 << 19)).to_string(),
            1 => i64::MAX.to_string(),
            2 => i64::MIN.to_string(),
            _ => ((rng.next(u64::MAX) as i64) >> rng.next(63)).to_string(),
        };
        let op = ["SET", "INCRBY", "GET"][rng.next(3) as usize];
        let mode = modes[rng.next(3) as usize];
        let mut cmd = vec!["BITFIELD", "f", "OVERFLOW", mode, op, &ty, &offset];
        if op != "GET" {
            cmd.push(&value);
        }
        both(&mut r, &mut l, &args(&cmd), &format!("op #{i}"));
        if i % 10 == 0 {
            both(
                &mut r,
                &mut l,
                &args(&["GET", "f"]),
                &format!("GET after #{i} {cmd:?}"),
            );
        }
    }
    both(&mut r, &mut l, &args(&["GET", "f"]), "final GET");
}

/// PFADD in batches up to `sizes`, comparing the count, the union count and the stored bytes at
/// each size (so the sparse encoding, its switch to dense, and the dense one all agree).
#[test]
fn hyperloglog_counts_and_bytes_match_at_every_size() {
    let (redis, lethe) = servers();
    let (mut r, mut l) = clients(&redis, &lethe, "3");
    let mut added = 0;
    for size in [0, 1, 100, 1000, 2000, 10_000, 200_000] {
        while added < size {
            let n = (size - added).min(1000);
            let mut cmd = vec![b"PFADD".to_vec(), b"h".to_vec()];
            cmd.extend((added..added + n).map(|i| format!("element:{i}").into_bytes()));
            both(&mut r, &mut l, &cmd, "PFADD batch");
            let mut other = vec![b"PFADD".to_vec(), b"other".to_vec()];
            other.extend((added..added + n).map(|i| format!("{}", i * 7).into_bytes()));
            both(&mut r, &mut l, &other, "PFADD other");
            added += n;
            if size <= 2000 {
                both(&mut r, &mut l, &args(&["GET", "h"]), "GET while growing");
            }
        }
        let what = format!("at {size}");
        both(&mut r, &mut l, &args(&["PFCOUNT", "h"]), &what);
        both(&mut r, &mut l, &args(&["GET", "h"]), &what);
        both(&mut r, &mut l, &args(&["PFCOUNT", "h", "other"]), &what);
        both(
            &mut r,
            &mut l,
            &args(&["PFMERGE", "m", "other", "h"]),
            &what,
        );
        both(&mut r, &mut l, &args(&["GET", "m"]), &what);
        both(&mut r, &mut l, &args(&["PFCOUNT", "m"]), &what);
    }
    let count = String::from_utf8(send(&mut l, &args(&["PFCOUNT", "h"]))).unwrap();
    let n: i64 = count.trim_start_matches(':').trim().parse().unwrap();
    assert!((195_000..=205_000).contains(&n), "{n}");
}

#[test]
fn sparse_values_turn_dense_where_redis_turns_them() {
    let (redis, lethe) = servers();
    let (mut r, mut l) = clients(&redis, &lethe, "2");
    for i in 0..2500 {
        let el = format!("x{i}");
        both(&mut r, &mut l, &args(&["PFADD", "s", &el]), "PFADD one");
        if i % 10 == 0 {
            both(&mut r, &mut l, &args(&["STRLEN", "s"]), "STRLEN");
        }
        if i % 100 == 0 {
            both(&mut r, &mut l, &args(&["GET", "s"]), "GET");
        }
    }
    let len = send(&mut l, &args(&["STRLEN", "s"]));
    assert_eq!(len, b":12304\r\n", "2500 elements make a dense value");
    both(&mut r, &mut l, &args(&["GET", "s"]), "GET dense");
}

/// Values made by one server, stored in the other with SET: counts and later additions agree.
#[test]
fn values_move_between_redis_and_lethe() {
    let (redis, lethe) = servers();
    let (mut r, mut l) = clients(&redis, &lethe, "2");
    let bulk = |reply: Vec<u8>| {
        let start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
        reply[start..reply.len() - 2].to_vec()
    };
    for (n, name) in [(5, "small"), (500, "sparse"), (5000, "dense")] {
        let mut cmd = vec![b"PFADD".to_vec(), name.as_bytes().to_vec()];
        cmd.extend((0..n).map(|i| format!("{name}{i}").into_bytes()));
        send(&mut r, &cmd);
        let from_redis = bulk(send(&mut r, &args(&["GET", name])));
        // Into Lethe, then the same commands on both.
        let set = vec![b"SET".to_vec(), name.as_bytes().to_vec(), from_redis];
        assert_eq!(send(&mut l, &set), b"+OK\r\n");
        both(&mut r, &mut l, &args(&["PFCOUNT", name]), name);
        both(&mut r, &mut l, &args(&["GET", name]), name);
        both(
            &mut r,
            &mut l,
            &args(&["PFADD", name, "one more", "and another"]),
            name,
        );
        both(&mut r, &mut l, &args(&["GET", name]), name);
        both(&mut r, &mut l, &args(&["PFCOUNT", name]), name);
        // And back: Lethe's value counts the same in Redis.
        let from_lethe = bulk(send(&mut l, &args(&["GET", name])));
        let copy = format!("{name}-copy");
        send(
            &mut r,
            &[b"SET".to_vec(), copy.as_bytes().to_vec(), from_lethe],
        );
        assert_eq!(
            send(&mut r, &args(&["PFCOUNT", &copy])),
            send(&mut l, &args(&["PFCOUNT", name]))
        );
    }
    both(
        &mut r,
        &mut l,
        &args(&["PFMERGE", "all", "small", "sparse", "dense"]),
        "merge",
    );
    both(&mut r, &mut l, &args(&["GET", "all"]), "merged bytes");
    both(&mut r, &mut l, &args(&["PFCOUNT", "all"]), "merged count");
}

/// Reads what a tracking client receives after sending PING: any pushes, then PONG.
fn pushes_then_pong(c: &mut Client) -> Vec<u8> {
    c.send(&common::encode(&["PING"]));
    let mut out = Vec::new();
    loop {
        let reply = c.read_reply();
        out.extend_from_slice(&reply);
        if reply == b"+PONG\r\n" {
            return out;
        }
    }
}

/// PFCOUNT storing a fresh count changes the value: trackers of the key are told, but the
/// caller is not told about the read it was just answered (Redis remembers it afterwards).
// The transcript is built step by step, in the order things happen.
#[allow(clippy::vec_init_then_push)]
fn pfcount_tracking_transcript(port: u16) -> Vec<Vec<u8>> {
    let mut reader = Client::connect(port);
    let mut writer = Client::connect(port);
    let mut t = Vec::new();
    t.push(reader.raw(&["HELLO", "3"])[..1].to_vec());
    t.push(writer.raw(&["FLUSHALL"]));
    t.push(reader.raw(&["CLIENT", "TRACKING", "ON"]));
    t.push(writer.raw(&["PFADD", "h", "x", "y"]));
    // The reader's own refresh: no push.
    t.push(reader.raw(&["PFCOUNT", "h"]));
    t.push(pushes_then_pong(&mut reader));
    t.push(reader.raw(&["PFCOUNT", "h"]));
    t.push(writer.raw(&["PFADD", "h", "z"]));
    t.push(pushes_then_pong(&mut reader));
    // Another client's refresh changes the value the reader was given: a push.
    t.push(reader.raw(&["GET", "h"]));
    t.push(writer.raw(&["PFCOUNT", "h"]));
    t.push(pushes_then_pong(&mut reader));
    // A cached count is only read: nothing changes, no push.
    t.push(reader.raw(&["GET", "h"]));
    t.push(writer.raw(&["PFCOUNT", "h"]));
    t.push(writer.raw(&["PFCOUNT", "h", "other"]));
    t.push(pushes_then_pong(&mut reader));
    t
}

#[test]
fn pfcount_cache_refresh_invalidates_as_in_redis() {
    let (redis, lethe) = servers();
    let want = pfcount_tracking_transcript(redis.port);
    let got = pfcount_tracking_transcript(lethe.port);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w),
            "step #{i}"
        );
    }
}

/// An offset Redis accepts but that would need more memory than one entry may take here is
/// refused before anything is allocated, and the key is left as it was.
#[test]
fn bitmaps_larger_than_an_entry_may_be_are_refused() {
    let limits = std::sync::Arc::new(lethe_server::limits::Limits::new());
    let lethe = Lethe::start_with("127.0.0.1:0", limits, 64 << 20);
    let mut c = lethe.client();
    for cmd in [
        &["SETBIT", "b", "4294967295", "1"][..],
        &["BITFIELD", "b", "SET", "u8", "#536870911", "1"],
    ] {
        let reply = c.cmd(cmd);
        assert!(
            reply.starts_with("-ERR value too large for this cache"),
            "{reply}"
        );
        assert_eq!(c.cmd(&["EXISTS", "b"]), ":0\r\n");
    }
    assert_eq!(c.cmd(&["SETBIT", "b", "100", "1"]), ":0\r\n");
    let reply = c.cmd(&["SETBIT", "b", "4294967295", "1"]);
    assert!(reply.starts_with("-ERR value too large"), "{reply}");
    assert_eq!(c.cmd(&["STRLEN", "b"]), ":13\r\n");
}

/// COMMAND DOCS gives Redis's summary, since, group and complexity for each new command (COMMAND
/// INFO is compared for every shared command in `differential.rs`).
#[test]
fn command_docs_match() {
    let (redis, lethe) = servers();
    let (mut r, mut l) = clients(&redis, &lethe, "2");
    for name in [
        "setbit",
        "getbit",
        "bitcount",
        "bitpos",
        "bitop",
        "bitfield",
        "bitfield_ro",
        "pfadd",
        "pfcount",
        "pfmerge",
        "pfdebug",
        "lcs",
    ] {
        let (rd, ld) = (
            r.cmd(&["COMMAND", "DOCS", name]),
            l.cmd(&["COMMAND", "DOCS", name]),
        );
        let fields = &ld[ld.find("$7\r\nsummary").expect(&ld)..];
        assert!(
            fields.ends_with("\r\n") && rd.contains(fields),
            "{rd}\n{ld}"
        );
        both(&mut r, &mut l, &args(&["COMMAND", "INFO", name]), name);
    }
}

//! Differential tests of SWAPDB, SORT/SORT_RO and DUMP/RESTORE against a real Redis 7.0, in
//! RESP2 and RESP3, plus payloads crossing between the two servers in both directions.
//!
//! Sets are unordered, so SORT scripts sort them (the output is then defined) or use sets of
//! integers, which both servers iterate in ascending order.

mod common;

use common::differential::compare;
use common::{Client, Lethe, Redis};

const SORT_SETUP: &[&[&str]] = &[
    &["RPUSH", "l", "3", "1", "10", "2", "-4.5"],
    &["RPUSH", "words", "pear", "apple", "fig", "Banana"],
    &["SADD", "ints", "30", "10", "20"],
    &["SADD", "names", "bob", "alice", "carol"],
    &["MSET", "w_3", "1", "w_1", "3", "w_10", "2", "w_2", "5"],
    &[
        "MSET", "o_3", "three", "o_1", "one", "o_2", "two", "o_10", "ten",
    ],
    &["HSET", "h_3", "f", "30", "g", "c"],
    &["HSET", "h_1", "f", "10", "g", "a"],
    &["HSET", "h_10", "f", "-1", "g", "b"],
    &["SET", "str", "x"],
    &["RPUSH", "bad", "1", "x", "2"],
];

#[test]
fn sort_matches() {
    let mut script: Vec<&[&str]> = SORT_SETUP.to_vec();
    script.extend_from_slice(&[
        &["SORT", "l"],
        &["SORT", "l", "DESC"],
        &["ZADD", "z", "3", "10", "1", "2", "2", "33", "4", "-1"],
        &["SORT", "z"],
        &["SORT", "z", "DESC", "LIMIT", "1", "2"],
        &["SORT", "z", "ALPHA"],
        &["SORT", "z", "BY", "nosort"],
        &["SORT", "z", "BY", "nosort", "LIMIT", "1", "2"],
        &["SORT", "z", "STORE", "zdst"],
        &["LRANGE", "zdst", "0", "-1"],
        &["SORT", "l", "ASC", "LIMIT", "1", "2"],
        &["SORT", "l", "LIMIT", "-5", "2"],
        &["SORT", "l", "LIMIT", "3", "-1"],
        &["SORT", "l", "LIMIT", "10", "5"],
        &["SORT", "l", "LIMIT", "0", "0"],
        &["SORT", "l", "ALPHA"],
        &["SORT", "l", "ALPHA", "DESC", "LIMIT", "1", "3"],
        &["SORT", "words"],
        &["SORT", "words", "ALPHA"],
        &["SORT", "words", "alpha", "desc"],
        &["SORT", "ints"],
        &["SORT", "ints", "DESC"],
        &["SORT", "names", "ALPHA"],
        &["SORT", "nokey"],
        &["SORT", "nokey", "BY", "nosort", "GET", "#"],
        &["SORT", "str"],
        &["SORT", "bad"],
        &["SORT", "bad", "ALPHA"],
        &["SORT", "bad", "STORE", "dst"],
        // BY a pattern.
        &["SORT", "l", "BY", "w_*"],
        &["SORT", "l", "BY", "w_*", "DESC", "LIMIT", "0", "3"],
        &["SORT", "l", "BY", "o_*", "ALPHA"],
        &["SORT", "l", "BY", "h_*->f"],
        &["SORT", "l", "BY", "h_*->g", "ALPHA", "DESC"],
        &["SORT", "l", "BY", "o_*"],
        &["SORT", "ints", "BY", "w_*"],
        // BY without a star: no sorting (lists keep their order).
        &["SORT", "l", "BY", "nosort"],
        &["SORT", "l", "BY", "nosort", "DESC"],
        &["SORT", "l", "BY", "nosort", "LIMIT", "1", "2"],
        &["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"],
        &["SORT", "ints", "BY", "nosort", "STORE", "dst"],
        &["LRANGE", "dst", "0", "-1"],
        // GET.
        &["SORT", "l", "GET", "#"],
        &["SORT", "l", "GET", "o_*", "GET", "#", "GET", "h_*->g"],
        &["SORT", "l", "BY", "w_*", "GET", "o_*"],
        &["SORT", "l", "GET", "nostar"],
        &["SORT", "l", "GET", "h_*->nofield"],
        &["SORT", "l", "GET", "h_*->"],
        &["SORT", "l", "GET", "str"],
        &["SORT_RO", "l", "BY", "w_*", "GET", "#", "GET", "o_*"],
        &["SORT_RO", "ints", "DESC", "LIMIT", "0", "2"],
        // STORE.
        &["SET", "dst", "old"],
        &["EXPIRE", "dst", "100"],
        &["SORT", "l", "GET", "o_*", "STORE", "dst"],
        &["LRANGE", "dst", "0", "-1"],
        &["TTL", "dst"],
        &["TYPE", "dst"],
        &["SORT", "l", "STORE", "dst", "DESC"],
        &["LRANGE", "dst", "0", "-1"],
        &["SORT", "nokey", "STORE", "dst"],
        &["EXISTS", "dst"],
        &["SORT", "l", "STORE", "l"],
        &["LRANGE", "l", "0", "-1"],
        // Errors.
        &["SORT", "l", "LIMIT", "x", "1"],
        &["SORT", "l", "LIMIT", "1"],
        &["SORT", "l", "FOO"],
        &["SORT", "l", "BY"],
        &["SORT", "l", "GET"],
        &["SORT", "l", "STORE"],
        &["SORT_RO", "l", "STORE", "dst"],
        &["SORT"],
        &["SORT_RO"],
        &["SORT", "str", "LIMIT", "x", "1"],
        // The keys COMMAND GETKEYS finds.
        &["COMMAND", "GETKEYS", "SORT", "k", "STORE", "d"],
        &[
            "COMMAND", "GETKEYS", "SORT", "k", "BY", "w_*", "GET", "#", "STORE", "d", "LIMIT", "0",
            "1",
        ],
        &[
            "COMMAND", "GETKEYS", "sort", "k", "store", "a", "STORE", "b",
        ],
        &["COMMAND", "GETKEYS", "SORT", "k", "LIMIT", "STORE", "x"],
        &["COMMAND", "GETKEYS", "SORT", "k", "GET", "store", "x"],
        &["COMMAND", "GETKEYS", "SORT", "k", "STORE"],
        &["COMMAND", "GETKEYS", "SORT_RO", "k", "BY", "x"],
        // Inside MULTI: patterns make it a whole-keyspace command.
        &["MULTI"],
        &["SORT", "words", "ALPHA", "BY", "nosort"],
        &["SORT", "l", "BY", "w_*", "GET", "o_*"],
        &["SORT", "l", "STORE", "dst2"],
        &["SORT_RO", "ints"],
        &["EXEC"],
        &["LRANGE", "dst2", "0", "-1"],
    ]);
    compare(&script);
}

#[test]
fn swapdb_matches() {
    compare(&[
        &["SET", "a", "in0"],
        &["RPUSH", "l", "x"],
        &["SELECT", "1"],
        &["SET", "a", "in1"],
        &["SET", "b", "only1"],
        &["SELECT", "0"],
        &["SWAPDB", "0", "1"],
        &["GET", "a"],
        &["GET", "b"],
        &["EXISTS", "l"],
        &["DBSIZE"],
        &["EXISTS", "a", "b", "l"],
        &["SELECT", "1"],
        &["GET", "a"],
        &["LRANGE", "l", "0", "-1"],
        &["DBSIZE"],
        &["SELECT", "0"],
        &["SWAPDB", "1", "0"],
        &["GET", "a"],
        &["SWAPDB", "0", "0"],
        &["GET", "a"],
        &["SWAPDB", "0", "5"],
        &["GET", "a"],
        &["SELECT", "5"],
        &["GET", "a"],
        &["SWAPDB", "5", "0"],
        &["MOVE", "a", "3"],
        &["SWAPDB", "3", "0"],
        &["GET", "a"],
        &["COPY", "a", "c", "DB", "3"],
        &["SWAPDB", "3", "0"],
        &["GET", "c"],
        &["FLUSHDB"],
        &["SWAPDB", "3", "0"],
        &["DBSIZE"],
        // Errors.
        &["SWAPDB", "x", "1"],
        &["SWAPDB", "1", "x"],
        &["SWAPDB", "x", "y"],
        &["SWAPDB", "0", "16"],
        &["SWAPDB", "-1", "0"],
        &["SWAPDB", "0", "4294967296"],
        &["SWAPDB", "0"],
        &["SWAPDB", "0", "1", "2"],
        // In a transaction.
        &["SET", "t", "zero"],
        &["MULTI"],
        &["SWAPDB", "0", "2"],
        &["GET", "t"],
        &["SWAPDB", "2", "0"],
        &["GET", "t"],
        &["EXEC"],
    ]);
}

#[test]
fn restore_errors_match() {
    compare(&[
        &["DUMP", "nokey"],
        &["SET", "k", "v"],
        &["RESTORE", "n", "0", "garbage-payload"],
        &["RESTORE", "n", "0", "short"],
        &["RESTORE", "n", "0", ""],
        &["RESTORE", "k", "0", "garbage-payload"],
        &["RESTORE", "k", "0", "garbage-payload", "REPLACE"],
        &["RESTORE", "n", "x", "garbage-payload"],
        &["RESTORE", "n", "-1", "garbage-payload"],
        &["RESTORE", "n", "0", "garbage-payload", "FOO"],
        &["RESTORE", "n", "0", "garbage-payload", "IDLETIME"],
        &["RESTORE", "n", "0", "garbage-payload", "IDLETIME", "-1"],
        &["RESTORE", "n", "0", "garbage-payload", "IDLETIME", "x"],
        &["RESTORE", "n", "0", "garbage-payload", "FREQ", "256"],
        &["RESTORE", "n", "0", "garbage-payload", "FREQ", "-1"],
        &[
            "RESTORE",
            "n",
            "0",
            "garbage-payload",
            "IDLETIME",
            "1",
            "FREQ",
            "1",
        ],
        &[
            "RESTORE",
            "n",
            "0",
            "garbage-payload",
            "FREQ",
            "1",
            "IDLETIME",
            "1",
        ],
        &["RESTORE", "k", "x", "garbage-payload", "FOO"],
        &["RESTORE", "n", "0"],
        &["DUMP"],
        &["DUMP", "a", "b"],
    ]);
}

/// A request of binary arguments.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn send(c: &mut Client, args: &[&[u8]]) -> Vec<u8> {
    c.send(&encode(args));
    c.read_reply()
}

/// The body of a bulk string reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    assert_eq!(reply[0], b'$', "{}", String::from_utf8_lossy(reply));
    let nl = reply.iter().position(|&b| b == b'\n').unwrap();
    let n: usize = std::str::from_utf8(&reply[1..nl - 1])
        .unwrap()
        .parse()
        .unwrap();
    reply[nl + 1..nl + 1 + n].to_vec()
}

/// The bulk strings of a flat array reply (RESP2).
fn strings(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    while i < reply.len() {
        let nl = i + reply[i..].iter().position(|&b| b == b'\n').unwrap();
        let n: usize = std::str::from_utf8(&reply[i + 1..nl - 1])
            .unwrap()
            .parse()
            .unwrap();
        out.push(reply[nl + 1..nl + 1 + n].to_vec());
        i = nl + 1 + n + 2;
    }
    out
}

/// A key's type and contents as plain data (sets and hashes in sorted order).
fn contents(c: &mut Client, key: &str) -> (String, Vec<Vec<u8>>) {
    let kind = c.cmd(&["TYPE", key]);
    let items = match kind.as_str() {
        "+string\r\n" => vec![bulk(&c.raw(&["GET", key]))],
        "+list\r\n" => strings(&c.raw(&["LRANGE", key, "0", "-1"])),
        "+set\r\n" => {
            let mut m = strings(&c.raw(&["SMEMBERS", key]));
            m.sort();
            m
        }
        "+hash\r\n" => {
            let flat = strings(&c.raw(&["HGETALL", key]));
            let mut pairs: Vec<Vec<u8>> = flat.chunks(2).map(|p| p.concat()).collect();
            pairs.sort();
            pairs
        }
        "+zset\r\n" => strings(&c.raw(&["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        other => panic!("{key}: {other}"),
    };
    (kind, items)
}

/// Keys of every type and the encodings Redis picks for them: small and large integers,
/// compressible and incompressible strings, listpack and multi-node (compressed) quicklists,
/// intsets, hash-table sets, listpack and hash-table hashes, listpack and skiplist sorted sets.
fn populate(r: &mut Client) -> Vec<String> {
    assert_eq!(
        r.cmd(&["CONFIG", "SET", "list-compress-depth", "1"]),
        "+OK\r\n"
    );
    let mut keys = Vec::new();
    let mut set = |r: &mut Client, key: &str, args: Vec<Vec<u8>>| {
        let mut full: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        full.insert(1, key.as_bytes());
        let reply = send(r, &full);
        assert!(
            !reply.starts_with(b"-"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        keys.push(key.to_string());
    };
    let b = |s: &str| s.as_bytes().to_vec();
    for (key, v) in [
        ("s_i8", "-7"),
        ("s_i16", "1234"),
        ("s_i32", "-123456789"),
        ("s_i64", "1234567890123"),
        ("s_float", "3.25"),
        ("s_empty", ""),
        ("s_short", "hello"),
    ] {
        set(r, key, vec![b("SET"), b(v)]);
    }
    set(
        r,
        "s_lzf",
        vec![b("SET"), "abcdefgh".repeat(200).into_bytes()],
    );
    let noise: Vec<u8> = (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    set(r, "s_raw", vec![b("SET"), noise.clone()]);
    let small_list = vec![b("RPUSH"), b("a"), b("-1"), b("300"), b("70000"), b("x")];
    set(r, "l_small", small_list);
    let mut big = vec![b("RPUSH")];
    big.extend((0..3000).map(|i| format!("element-{i}-padding-padding").into_bytes()));
    big.push(noise.clone());
    big.push(vec![b'z'; 20_000]);
    set(r, "l_big", big);
    set(
        r,
        "set_ints",
        vec![b("SADD"), b("5"), b("-3"), b("100000"), b("1")],
    );
    let mut many = vec![b("SADD")];
    many.extend((0..600).map(|i| format!("member:{i}").into_bytes()));
    set(r, "set_big", many);
    set(r, "set_small", vec![b("SADD"), b("x"), b("y"), b("7")]);
    let small_hash = vec![b("HSET"), b("f"), b("v"), b("n"), b("-12"), b("e"), b("")];
    set(r, "h_small", small_hash);
    let mut hash = vec![b("HSET")];
    for i in 0..300 {
        hash.push(format!("field:{i}").into_bytes());
        hash.push(format!("{}", i * 7).into_bytes());
    }
    hash.push(b("long"));
    hash.push(vec![b'q'; 500]);
    set(r, "h_big", hash);
    // Sorted sets: listpack (small) and skiplist (large), with infinite and fractional scores.
    let small_zset = vec![
        b("ZADD"),
        b("1.5"),
        b("a"),
        b("-inf"),
        b("b"),
        b("+inf"),
        b("c"),
    ];
    set(r, "z_small", small_zset);
    let mut zset = vec![b("ZADD")];
    for i in 0..300 {
        zset.push(format!("{}", f64::from(i) / 8.0 - 3.0).into_bytes());
        zset.push(format!("member:{i}").into_bytes());
    }
    set(r, "z_big", zset);
    keys
}

#[test]
fn payloads_cross_between_redis_and_lethe() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let mut r = redis.client();
    let mut l = lethe.client();
    for key in populate(&mut r) {
        let from_redis = bulk(&r.raw(&["DUMP", &key]));
        let reply = send(&mut l, &[b"RESTORE", key.as_bytes(), b"0", &from_redis]);
        assert_eq!(
            reply,
            b"+OK\r\n",
            "{key}: {}",
            String::from_utf8_lossy(&reply)
        );
        let want = contents(&mut r, &key);
        assert_eq!(contents(&mut l, &key), want, "{key} restored in Lethe");
        assert_eq!(l.cmd(&["PTTL", &key]), ":-1\r\n");
        // And back: Lethe's payload restores in Redis to the same value.
        let from_lethe = bulk(&l.raw(&["DUMP", &key]));
        let copy = format!("{key}:copy");
        let reply = send(&mut r, &[b"RESTORE", copy.as_bytes(), b"0", &from_lethe]);
        assert_eq!(
            reply,
            b"+OK\r\n",
            "{key}: {}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(contents(&mut r, &copy), want, "{key} restored in Redis");
        // A Redis payload again, over an existing key: BUSYKEY unless REPLACE.
        let busy = send(&mut l, &[b"RESTORE", key.as_bytes(), b"0", &from_redis]);
        let busy_redis = send(&mut r, &[b"RESTORE", key.as_bytes(), b"0", &from_redis]);
        assert_eq!(busy, busy_redis);
        assert_eq!(busy, b"-BUSYKEY Target key name already exists.\r\n");
        // A corrupted payload: the checksum catches it on both.
        let mut bad = from_redis.clone();
        bad[1] ^= 0x55;
        let (lr, rr) = (
            send(&mut l, &[b"RESTORE", b"bad", b"0", &bad]),
            send(&mut r, &[b"RESTORE", b"bad", b"0", &bad]),
        );
        assert_eq!(lr, rr);
        assert_eq!(lr, b"-ERR DUMP payload version or checksum are wrong\r\n");
    }
}

#[test]
fn restore_ttl_replace_and_absttl_match() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    let mut r = redis.client();
    let mut l = lethe.client();
    r.raw(&["RPUSH", "src", "a", "b"]);
    let payload = bulk(&r.raw(&["DUMP", "src"]));
    for c in [&mut r, &mut l] {
        let run = |c: &mut Client, args: &[&[u8]]| String::from_utf8(send(c, args)).unwrap();
        assert_eq!(run(c, &[b"SET", b"k", b"old"]), "+OK\r\n");
        assert_eq!(
            run(c, &[b"RESTORE", b"k", b"100000", &payload, b"REPLACE"]),
            "+OK\r\n"
        );
        let pttl: i64 = c.cmd(&["PTTL", "k"])[1..].trim().parse().unwrap();
        assert!((1..=100_000).contains(&pttl), "{pttl}");
        assert_eq!(
            c.cmd(&["LRANGE", "k", "0", "-1"]),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        // An absolute deadline in the past: nothing stored, and REPLACE removed the old key.
        assert_eq!(
            run(
                c,
                &[b"RESTORE", b"k", b"1000", &payload, b"REPLACE", b"ABSTTL"]
            ),
            "+OK\r\n"
        );
        assert_eq!(c.cmd(&["EXISTS", "k"]), ":0\r\n");
        // An absolute deadline in the future.
        let at = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 500_000)
            .to_string();
        assert_eq!(
            run(c, &[b"RESTORE", b"k", at.as_bytes(), &payload, b"ABSTTL"]),
            "+OK\r\n"
        );
        assert_eq!(c.cmd(&["PEXPIRETIME", "k"]), format!(":{at}\r\n"));
        assert_eq!(
            run(c, &[b"RESTORE", b"i", b"0", &payload, b"IDLETIME", b"10"]),
            "+OK\r\n"
        );
        assert_eq!(
            run(c, &[b"RESTORE", b"j", b"0", &payload, b"FREQ", b"10"]),
            "+OK\r\n"
        );
        assert_eq!(c.cmd(&["LLEN", "j"]), ":2\r\n");
    }
}

#[test]
fn swapdb_wakes_blocked_clients_and_fails_watches_as_redis_does() {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    let lethe = Lethe::start();
    for (name, port) in [("redis", redis.port), ("lethe", lethe.port)] {
        let mut blocked = Client::connect(port);
        let mut other = Client::connect(port);
        assert_eq!(blocked.cmd(&["SELECT", "1"]), "+OK\r\n");
        // Blocks on list `q` in database 1; `q` exists only in database 0.
        blocked.send(&common::encode(&["BLPOP", "q", "0"]));
        // INFO shows the client blocked before the swap.
        while !other
            .cmd(&["INFO", "clients"])
            .contains("blocked_clients:1")
        {
            std::thread::yield_now();
        }
        assert_eq!(other.cmd(&["RPUSH", "q", "x"]), ":1\r\n");
        assert_eq!(other.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
        let served = blocked.read_reply();
        assert_eq!(served, b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n", "{name}");
        // WATCH: a swap that changes the watched key's database aborts EXEC.
        assert_eq!(other.cmd(&["SET", "w", "1"]), "+OK\r\n");
        assert_eq!(other.cmd(&["WATCH", "w"]), "+OK\r\n");
        assert_eq!(blocked.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
        assert_eq!(other.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(other.cmd(&["PING"]), "+QUEUED\r\n");
        assert_eq!(other.cmd(&["EXEC"]), "*-1\r\n", "{name}");
        // A swap of databases where the watched key exists in neither does not.
        assert_eq!(other.cmd(&["WATCH", "nowhere"]), "+OK\r\n");
        assert_eq!(blocked.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
        assert_eq!(other.cmd(&["MULTI"]), "+OK\r\n");
        assert_eq!(other.cmd(&["PING"]), "+QUEUED\r\n");
        assert_eq!(other.cmd(&["EXEC"]), "*1\r\n+PONG\r\n", "{name}");
    }
}

fn pushes_then_pong(c: &mut Client) -> String {
    c.send(&common::encode(&["PING"]));
    let mut out = String::new();
    loop {
        let reply = String::from_utf8_lossy(&c.read_reply()).into_owned();
        let done = reply == "+PONG\r\n";
        out.push_str(&reply);
        if done {
            return out;
        }
    }
}

/// Tracking knows key names, not databases: after a swap every name may hold another value,
/// so tracking clients are told to drop everything (one flush push), as for FLUSHDB. (Redis
/// 7.0 sends nothing here; this is where Lethe differs on purpose.)
#[test]
fn swapdb_tells_tracking_clients_to_flush() {
    let lethe = Lethe::start();
    let mut a = lethe.client();
    let mut b = lethe.client();
    assert!(a.cmd(&["HELLO", "3"]).starts_with("%7"));
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "k", "0"]), "+OK\r\n");
    assert_eq!(a.cmd(&["GET", "k"]), "$1\r\n0\r\n");
    assert_eq!(b.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
    assert_eq!(
        pushes_then_pong(&mut a),
        ">2\r\n$10\r\ninvalidate\r\n_\r\n+PONG\r\n"
    );
    // A swap of a database with itself changes nothing and says nothing.
    assert_eq!(a.cmd(&["GET", "k"]), "_\r\n");
    assert_eq!(b.cmd(&["SWAPDB", "1", "1"]), "+OK\r\n");
    assert_eq!(pushes_then_pong(&mut a), "+PONG\r\n");
}

/// Tags and dependencies describe values, and travel with them: after SWAPDB a tagged value now
/// in database 1 is still invalidated by its tag, and a key depending on another follows it.
#[test]
fn swapdb_keeps_tags_dependencies_and_versions_with_the_values() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let ok = "+OK\r\n";
    assert_eq!(
        c.cmd(&["LETHE.SET", "p", "v", "TAGS", "1", "user:1", "VERSION", "7"]),
        ok
    );
    assert_eq!(c.cmd(&["SET", "src", "s"]), ok);
    assert_eq!(
        c.cmd(&["LETHE.SET", "view", "w", "DEPENDS", "1", "src"]),
        ok
    );
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), ok);
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    // INFO counts the keys under the number that now holds them.
    let info = c.cmd(&["INFO", "keyspace"]);
    assert!(
        info.contains("db1:keys=3,") && !info.contains("db0:"),
        "{info}"
    );
    assert_eq!(c.cmd(&["SELECT", "1"]), ok);
    assert_eq!(c.cmd(&["LETHE.TAGS", "p"]), "*1\r\n$6\r\nuser:1\r\n");
    assert_eq!(c.cmd(&["LETHE.KEYS.TAG", "user:1"]), "*1\r\n$1\r\np\r\n");
    assert_eq!(c.cmd(&["LETHE.DEPS", "view"]), "*1\r\n$3\r\nsrc\r\n");
    // The dependency holds in the database the two keys now share.
    assert_eq!(c.cmd(&["SET", "src", "changed"]), ok);
    assert_eq!(c.cmd(&["GET", "view"]), "$-1\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "user:1"]), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "p"]), "$-1\r\n");
    // Database-scoped invalidations follow the number, not the old contents.
    assert_eq!(c.cmd(&["SET", "x", "in1"]), ok);
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), ok);
    assert_eq!(c.cmd(&["EXISTS", "x"]), ":0\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), ok);
    assert_eq!(c.cmd(&["GET", "x"]), "$3\r\nin1\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "KEY", "x"]), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "x"]), "$-1\r\n");
}

/// Runs `work(client, i)` on `n` connections at once.
fn in_parallel(lethe: &Lethe, n: usize, work: impl Fn(&mut Client, usize) + Send + Sync + 'static) {
    let work = std::sync::Arc::new(work);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let mut c = lethe.client();
            let work = work.clone();
            std::thread::spawn(move || work(&mut c, i))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// No client sees a SWAPDB half done: a database's two keys always come from the same side.
#[test]
fn swapdb_is_atomic_to_other_clients() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["MSET", "a", "0", "b", "0"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MSET", "a", "1", "b", "1"]), "+OK\r\n");
    in_parallel(&lethe, 4, |c, i| {
        for _ in 0..300 {
            if i == 0 {
                assert_eq!(c.cmd(&["SWAPDB", "0", "1"]), "+OK\r\n");
            } else {
                let both = strings(&c.raw(&["MGET", "a", "b"]));
                assert_eq!(both.len(), 2);
                assert_eq!(both[0], both[1], "a database seen half swapped");
            }
        }
    });
}

/// SORT reads the keys its patterns name under one lock with the sorted key: every GET of one
/// SORT sees the same MSET, and elements added meanwhile bring their keys along.
#[test]
fn sort_patterns_read_one_consistent_state() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["RPUSH", "l", "1", "2", "3", "4", "5"]), ":5\r\n");
    // Every pattern key exists from the start, so each GET returns a string.
    let init: Vec<String> = (1..=6)
        .flat_map(|k| [format!("w_{k}"), "0".into()])
        .collect();
    let mut mset: Vec<&str> = vec!["MSET"];
    mset.extend(init.iter().map(String::as_str));
    assert_eq!(c.cmd(&mset), "+OK\r\n");
    in_parallel(&lethe, 4, |c, i| {
        for r in 0..300 {
            match i {
                0 => {
                    let v = r.to_string();
                    let mut mset = vec!["MSET"];
                    let keys: Vec<String> = (1..=6).map(|k| format!("w_{k}")).collect();
                    for k in &keys {
                        mset.push(k);
                        mset.push(&v);
                    }
                    assert_eq!(c.cmd(&mset), "+OK\r\n");
                }
                1 => {
                    assert_eq!(c.cmd(&["RPUSH", "l", "6"]), ":6\r\n");
                    assert_eq!(c.cmd(&["RPOP", "l"]), "$1\r\n6\r\n");
                }
                2 => {
                    let got = strings(&c.raw(&["SORT", "l", "GET", "w_*"]));
                    assert!(got.len() == 5 || got.len() == 6, "{got:?}");
                    assert!(got.windows(2).all(|w| w[0] == w[1]), "{got:?}");
                }
                _ => {
                    let n = c.cmd(&["SORT", "l", "BY", "w_*", "GET", "w_*", "STORE", "dst"]);
                    assert!(n == ":5\r\n" || n == ":6\r\n", "{n}");
                    let got = strings(&c.raw(&["LRANGE", "dst", "0", "-1"]));
                    assert!(got.windows(2).all(|w| w[0] == w[1]), "{got:?}");
                }
            }
        }
    });
}

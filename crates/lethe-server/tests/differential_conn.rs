//! Differential tests of connection-level and pub/sub commands (CLIENT REPLY, PAUSE, UNBLOCK,
//! NO-EVICT, PUBSUB, sharded pub/sub) and of far expiry deadlines: the same scripts against a
//! real Redis 7 and against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.

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

/// Both servers, started fresh.
fn servers() -> (Redis, Lethe) {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    (redis, Lethe::start())
}

/// A client of each server speaking `proto`, on an empty keyspace.
fn clients(redis: &Redis, lethe: &Lethe, proto: &str) -> (Client, Client) {
    let mut r = redis.client();
    let mut l = lethe.client();
    let (hr, hl) = (r.raw(&["HELLO", proto]), l.raw(&["HELLO", proto]));
    assert_eq!(hr[..1], hl[..1]);
    assert_eq!(r.raw(&["FLUSHALL"]), l.raw(&["FLUSHALL"]));
    (r, l)
}

/// Runs `script` on both servers from an empty keyspace, once in RESP2 and once in RESP3.
fn compare(script: &[&[&str]]) {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        run_both(&mut r, &mut l, script);
    }
}

#[test]
fn far_expiry_deadlines_are_reported_exactly() {
    compare(&[
        &["SET", "k", "v"],
        &["EXPIREAT", "k", "33177117420"],
        &["EXPIRETIME", "k"],
        &["PEXPIRETIME", "k"],
        &["PEXPIREAT", "k", "9223372036854775807"],
        &["PEXPIRETIME", "k"],
        &["EXPIRETIME", "k"],
        // The order of far deadlines holds for GT and LT.
        &["PEXPIREAT", "k", "9223372036854775000", "GT"],
        &["PEXPIREAT", "k", "9223372036854775000", "LT"],
        &["PEXPIRETIME", "k"],
        &["EXPIREAT", "k", "33177117420", "GT"],
        &["EXPIREAT", "k", "18446744074", "LT"],
        &["PEXPIRETIME", "k"],
        &["EXPIREAT", "k", "4102444800", "LT"],
        &["EXPIRETIME", "k"],
        &["EXPIREAT", "k", "33177117420", "GT"],
        &["EXPIRETIME", "k"],
        &["SET", "s", "v", "PXAT", "9000000000001"],
        &["PEXPIRETIME", "s"],
        &["SET", "s", "v", "EXAT", "99999999999"],
        &["EXPIRETIME", "s"],
        &["GET", "s"],
        &["GETEX", "s", "PXAT", "123456789012345"],
        &["PEXPIRETIME", "s"],
        &["RENAME", "s", "t"],
        &["PEXPIRETIME", "t"],
        &["COPY", "t", "u"],
        &["PEXPIRETIME", "u"],
        &["PERSIST", "u"],
        &["PEXPIRETIME", "u"],
        &["EXPIRE", "u", "9223372036854775"],
        &["EXPIRE", "u", "9223372036854776"],
        &["PEXPIRE", "u", "9223372036854775807"],
    ]);
}

#[test]
fn ttl_of_far_deadlines_counts_from_the_real_deadline() {
    let lethe = Lethe::start();
    let mut l = lethe.client();
    assert_eq!(l.cmd(&["SET", "k", "v", "EXAT", "33177117420"]), "+OK\r\n");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let want = 33_177_117_420 - now;
    let ttl: i64 = l.cmd(&["TTL", "k"])[1..].trim().parse().unwrap();
    assert!((want - 2..=want + 1).contains(&ttl), "{ttl} vs {want}");
    let pttl: i64 = l.cmd(&["PTTL", "k"])[1..].trim().parse().unwrap();
    assert!(
        (want * 1000 - 3000..=want * 1000 + 1000).contains(&pttl),
        "{pttl}"
    );
}

#[test]
fn stream_commands_say_streams_are_not_supported() {
    let lethe = Lethe::start();
    let mut l = lethe.client();
    for name in [
        "XADD",
        "xrange",
        "XRevRange",
        "XLEN",
        "XREAD",
        "XREADGROUP",
        "XGROUP",
        "XACK",
        "XDEL",
        "XTRIM",
        "XINFO",
        "XCLAIM",
        "XAUTOCLAIM",
        "XPENDING",
        "XSETID",
    ] {
        assert_eq!(
            l.cmd(&[name, "s", "*", "f", "v"]),
            format!(
                "-ERR streams are not supported by Lethe ({})\r\n",
                name.to_ascii_uppercase()
            )
        );
        // Not listed by COMMAND.
        assert_eq!(l.cmd(&["COMMAND", "INFO", name]), "*1\r\n$-1\r\n");
    }
    let list = l.cmd(&["COMMAND", "LIST"]);
    assert!(list.contains("\r\nget\r\n") && !list.contains("\r\nxadd\r\n"));
    // Inside MULTI the error is a refused command, which aborts the transaction.
    assert_eq!(l.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(
        l.cmd(&["XLEN", "s"]),
        "-ERR streams are not supported by Lethe (XLEN)\r\n"
    );
    assert!(l.cmd(&["EXEC"]).starts_with("-EXECABORT"));
}

/// Reads one reply on each server's client and compares them (pushes delivered meanwhile).
fn same_next(r: &mut Client, l: &mut Client, what: &str) {
    let (want, got) = (r.read_reply(), l.read_reply());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{what}: Lethe's push differs from Redis's"
    );
}

#[test]
fn sharded_pubsub_and_pubsub_introspection_match() {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut rs, mut ls) = clients(&redis, &lethe, proto);
        let (mut rp, mut lp) = clients(&redis, &lethe, proto);
        run_both(
            &mut rp,
            &mut lp,
            &[
                &["PUBSUB", "CHANNELS"],
                &["PUBSUB", "SHARDCHANNELS"],
                &["PUBSUB", "NUMPAT"],
                &["PUBSUB", "NUMSUB"],
                &["PUBSUB", "NUMSUB", "a", "b"],
                &["PUBSUB", "SHARDNUMSUB", "a"],
                &["PUBSUB", "CHANNELS", "a", "b"],
                &["PUBSUB", "SHARDCHANNELS", "a", "b"],
                &["PUBSUB", "NUMPAT", "x"],
                &["PUBSUB", "HELP", "x"],
                &["PUBSUB", "HELP"],
                &["PUBSUB", "help"],
                &["PUBSUB", "FOO"],
                &["PUBSUB"],
                &["SPUBLISH", "s1", "nobody"],
                &["SPUBLISH", "s1"],
                &["SUNSUBSCRIBE"],
                &["SSUBSCRIBE"],
            ],
        );
        run_both(
            &mut rs,
            &mut ls,
            &[
                &["SSUBSCRIBE", "s1", "s2", "s1"],
                // Three confirmations; the run reads one reply per command.
                &["SUBSCRIBE", "c1"],
                &["PSUBSCRIBE", "s*"],
                &["SSUBSCRIBE", "s3"],
            ],
        );
        same_next(&mut rs, &mut ls, "the confirmations still queued");
        same_next(&mut rs, &mut ls, "the confirmations still queued");
        if proto == "2" {
            // Shard subscriptions alone put a RESP2 client in subscribed mode.
            run_both(
                &mut rs,
                &mut ls,
                &[&["GET", "x"], &["PING"], &["PING", "m"]],
            );
        }
        run_both(
            &mut rp,
            &mut lp,
            &[
                &["PUBSUB", "SHARDCHANNELS", "s[2x]"],
                &["PUBSUB", "SHARDCHANNELS", "nomatch*"],
                &["PUBSUB", "CHANNELS"],
                &["PUBSUB", "CHANNELS", "c*"],
                &["PUBSUB", "CHANNELS", "s*"],
                &["PUBSUB", "NUMSUB", "c1", "s1", "nobody"],
                &["PUBSUB", "SHARDNUMSUB", "s1", "c1", "s3"],
                &["PUBSUB", "NUMPAT"],
            ],
        );
        // SPUBLISH reaches shard subscribers only (not the `s*` pattern), PUBLISH the others.
        run_both(&mut rp, &mut lp, &[&["SPUBLISH", "s1", "hello"]]);
        same_next(&mut rs, &mut ls, "smessage");
        run_both(&mut rp, &mut lp, &[&["PUBLISH", "s1", "plain"]]);
        same_next(&mut rs, &mut ls, "pmessage");
        run_both(&mut rp, &mut lp, &[&["SPUBLISH", "s3", "x"]]);
        same_next(&mut rs, &mut ls, "smessage s3");
        run_both(&mut rs, &mut ls, &[&["SUNSUBSCRIBE", "s2", "nosuch"]]);
        same_next(&mut rs, &mut ls, "second sunsubscribe confirmation");
        run_both(
            &mut rs,
            &mut ls,
            &[
                &["SUNSUBSCRIBE", "s1"],
                &["UNSUBSCRIBE"],
                &["PUNSUBSCRIBE"],
                &["SUNSUBSCRIBE"],
                &["SUNSUBSCRIBE"],
                &["PING"],
                &["ECHO", "back in normal mode"],
            ],
        );
        run_both(
            &mut rp,
            &mut lp,
            &[
                &["SPUBLISH", "s1", "gone"],
                &["PUBSUB", "SHARDCHANNELS"],
                &["PUBSUB", "NUMPAT"],
                // Inside MULTI, SSUBSCRIBE is refused (SUBSCRIBE is not).
                &["MULTI"],
                &["SSUBSCRIBE", "m"],
                &["SPUBLISH", "m", "x"],
                &["EXEC"],
                &["PUBSUB", "SHARDCHANNELS"],
            ],
        );
    }
}

#[test]
fn command_metadata_of_the_new_subcommands_matches() {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        for name in [
            "pubsub|channels",
            "pubsub|numsub",
            "pubsub|numpat",
            "pubsub|shardchannels",
            "pubsub|shardnumsub",
            "pubsub|help",
        ] {
            run_both(&mut r, &mut l, &[&["COMMAND", "INFO", name]]);
        }
        run_both(
            &mut r,
            &mut l,
            &[
                &["COMMAND", "GETKEYS", "spublish", "ch", "msg"],
                &["COMMAND", "GETKEYS", "ssubscribe", "a", "b"],
            ],
        );
    }
}

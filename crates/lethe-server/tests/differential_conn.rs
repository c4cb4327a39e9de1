//! Differential tests of connection-level and pub/sub commands (CLIENT REPLY, PAUSE, UNBLOCK,
//! NO-EVICT, PUBSUB, sharded pub/sub) and of far expiry deadlines: the same scripts against a
//! real Redis 7 and against Lethe, raw replies compared byte for byte, in RESP2 and in RESP3.

mod common;

use common::differential::{clients, compare, run_both, servers};
use common::{Client, Lethe};

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

/// Sends `cmd` on both clients without reading.
fn send_both(r: &mut Client, l: &mut Client, cmd: &[&str]) {
    r.send(&common::encode(cmd));
    l.send(&common::encode(cmd));
}

#[test]
fn client_reply_matches() {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        run_both(
            &mut r,
            &mut l,
            &[
                &["CLIENT", "REPLY"],
                &["CLIENT", "REPLY", "maybe"],
                &["CLIENT", "REPLY", "ON", "x"],
                &["CLIENT", "REPLY", "ON"],
            ],
        );
        // OFF: nothing is answered, OFF included, until ON (answered).
        for cmd in [
            &["CLIENT", "REPLY", "OFF"][..],
            &["SET", "k", "1"],
            &["GET", "k"],
            &["NOSUCH"],
            &["CLIENT", "REPLY", "SKIP"],
            &["INCR", "k"],
        ] {
            send_both(&mut r, &mut l, cmd);
        }
        run_both(&mut r, &mut l, &[&["CLIENT", "REPLY", "ON"], &["GET", "k"]]);
        // SKIP: neither SKIP nor the next command is answered; the one after is.
        send_both(&mut r, &mut l, &["CLIENT", "REPLY", "SKIP"]);
        send_both(&mut r, &mut l, &["INCR", "k"]);
        run_both(&mut r, &mut l, &[&["GET", "k"], &["CLIENT", "REPLY", "ON"]]);
        send_both(&mut r, &mut l, &["CLIENT", "REPLY", "SKIP"]);
        run_both(
            &mut r,
            &mut l,
            &[&["CLIENT", "REPLY", "ON"], &["ECHO", "on"]],
        );
        // RESET turns replies back on; a SKIP that already applies to it still does.
        send_both(&mut r, &mut l, &["CLIENT", "REPLY", "OFF"]);
        run_both(&mut r, &mut l, &[&["RESET"], &["ECHO", "after reset"]]);
        send_both(&mut r, &mut l, &["CLIENT", "REPLY", "SKIP"]);
        send_both(&mut r, &mut l, &["RESET"]);
        run_both(&mut r, &mut l, &[&["ECHO", "after skipped reset"]]);
    }
}

#[test]
fn client_reply_off_still_delivers_pushes() {
    let (redis, lethe) = servers();
    let (mut rs, mut ls) = clients(&redis, &lethe, "3");
    let (mut rp, mut lp) = clients(&redis, &lethe, "3");
    run_both(&mut rs, &mut ls, &[&["SUBSCRIBE", "ch"]]);
    send_both(&mut rs, &mut ls, &["CLIENT", "REPLY", "OFF"]);
    // A round trip on the subscriber's connection is not possible while OFF: PING it and
    // look for nothing but the message below.
    send_both(&mut rs, &mut ls, &["PING"]);
    run_both(&mut rp, &mut lp, &[&["PUBLISH", "ch", "m1"]]);
    same_next(&mut rs, &mut ls, "message while replies are off");
    run_both(&mut rs, &mut ls, &[&["CLIENT", "REPLY", "ON"]]);
}

/// What a client pause does to `worker`: each step's reply, or `held` when none came within
/// a moment (then read once `pauser` lifts the pause).
fn pause_scenario(pauser: &mut Client, worker: &mut Client) -> Vec<String> {
    let mut seen = Vec::new();
    let step = |c: &mut Client, cmd: &[&str], seen: &mut Vec<String>| {
        c.send(&common::encode(cmd));
        if c.replies_within(std::time::Duration::from_millis(300)) {
            seen.push(String::from_utf8_lossy(&c.read_reply()).into_owned());
            true
        } else {
            seen.push(format!("held: {cmd:?}"));
            false
        }
    };
    let release = |pauser: &mut Client, worker: &mut Client, seen: &mut Vec<String>| {
        seen.push(pauser.cmd(&["CLIENT", "UNPAUSE"]));
        seen.push(String::from_utf8_lossy(&worker.read_reply()).into_owned());
    };
    for cmd in [
        &["CLIENT", "PAUSE"][..],
        &["CLIENT", "PAUSE", "x"],
        &["CLIENT", "PAUSE", "-1"],
        &["CLIENT", "PAUSE", "10", "FOO"],
        &["CLIENT", "PAUSE", "10", "WRITE", "x"],
        &["CLIENT", "UNPAUSE", "x"],
        &["CLIENT", "PAUSE", "0"],
        &["CLIENT", "PAUSE", "100000", "write"],
    ] {
        seen.push(pauser.cmd(cmd));
    }
    // WRITE: reads go on, writes (and PUBLISH) wait.
    step(worker, &["GET", "k"], &mut seen);
    step(worker, &["PING"], &mut seen);
    if !step(worker, &["SET", "k", "1"], &mut seen) {
        release(pauser, worker, &mut seen);
    }
    seen.push(pauser.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]));
    if !step(worker, &["PUBLISH", "ch", "m"], &mut seen) {
        release(pauser, worker, &mut seen);
    }
    // A transaction: reads queue and run; a write is held (when queued or at EXEC).
    seen.push(pauser.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]));
    step(worker, &["MULTI"], &mut seen);
    step(worker, &["GET", "k"], &mut seen);
    step(worker, &["EXEC"], &mut seen);
    step(worker, &["MULTI"], &mut seen);
    if !step(worker, &["INCR", "k"], &mut seen) {
        release(pauser, worker, &mut seen);
        seen.push(pauser.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]));
    }
    if !step(worker, &["EXEC"], &mut seen) {
        release(pauser, worker, &mut seen);
    }
    seen.push(pauser.cmd(&["CLIENT", "UNPAUSE"]));
    // Errors found before running (unknown command, arity) are not held.
    seen.push(pauser.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]));
    step(worker, &["SET", "k"], &mut seen);
    step(worker, &["NOSUCH", "k"], &mut seen);
    seen.push(pauser.cmd(&["CLIENT", "UNPAUSE"]));
    seen
}

#[test]
fn client_pause_matches() {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut ra, mut la) = clients(&redis, &lethe, proto);
        let (mut rb, mut lb) = clients(&redis, &lethe, proto);
        let want = pause_scenario(&mut ra, &mut rb);
        let got = pause_scenario(&mut la, &mut lb);
        assert_eq!(got, want, "RESP{proto}");
        assert!(want.iter().any(|s| s.starts_with("held")), "{want:?}");
    }
}

#[test]
fn client_pause_all_holds_every_command_until_it_ends() {
    let lethe = Lethe::start();
    let mut a = lethe.client();
    let mut b = lethe.client();
    let started = std::time::Instant::now();
    assert_eq!(a.cmd(&["CLIENT", "PAUSE", "400"]), "+OK\r\n");
    // The pauser itself is held too, as in Redis; so is a read.
    assert_eq!(b.cmd(&["GET", "k"]), "$-1\r\n");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    // A later, shorter WRITE pause does not shorten or relax one in force.
    let started = std::time::Instant::now();
    assert_eq!(a.cmd(&["CLIENT", "PAUSE", "500", "ALL"]), "+OK\r\n");
    assert_eq!(a.cmd(&["CLIENT", "PAUSE", "1", "WRITE"]), "+OK\r\n");
    assert_eq!(b.cmd(&["PING"]), "+PONG\r\n");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
}

/// CLIENT UNBLOCK of `blocked` (blocked in BLPOP) from `other`, both ways, and of clients that
/// are not blocked.
fn unblock_scenario(blocked: &mut Client, other: &mut Client) -> Vec<String> {
    let mut seen = Vec::new();
    let id = blocked.cmd(&["CLIENT", "ID"])[1..].trim().to_string();
    let own = other.cmd(&["CLIENT", "ID"])[1..].trim().to_string();
    for cmd in [
        &["CLIENT", "UNBLOCK"][..],
        &["CLIENT", "UNBLOCK", "x"],
        &["CLIENT", "UNBLOCK", "999999"],
        &["CLIENT", "UNBLOCK", "-1"],
        &["CLIENT", "UNBLOCK", &id, "foo"],
        &["CLIENT", "UNBLOCK", &id, "error", "x"],
        // Not blocked: 0.
        &["CLIENT", "UNBLOCK", &id],
        &["CLIENT", "UNBLOCK", &own],
    ] {
        seen.push(other.cmd(cmd));
    }
    for reason in [None, Some("TIMEOUT"), Some("error"), Some("ERROR")] {
        blocked.send(&common::encode(&["BLPOP", "nolist", "0"]));
        // Wait (bounded) until the server has it blocked.
        let mut tries = 0;
        while !other.cmd(&["CLIENT", "LIST"]).contains(" flags=b ") {
            tries += 1;
            assert!(tries < 500, "the client never blocked");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut cmd = vec!["CLIENT", "UNBLOCK", &id];
        cmd.extend(reason);
        seen.push(other.cmd(&cmd));
        seen.push(String::from_utf8_lossy(&blocked.read_reply()).into_owned());
        seen.push(other.cmd(&cmd));
        // Mark the next wait apart from this one in CLIENT LIST.
        seen.push(blocked.cmd(&["PING"]));
    }
    seen
}

#[test]
fn client_unblock_matches() {
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut ra, mut la) = clients(&redis, &lethe, proto);
        let (mut rb, mut lb) = clients(&redis, &lethe, proto);
        let want = unblock_scenario(&mut ra, &mut rb);
        let got = unblock_scenario(&mut la, &mut lb);
        assert_eq!(got, want, "RESP{proto}");
    }
}

#[test]
fn client_no_evict_matches() {
    compare(&[
        &["CLIENT", "NO-EVICT"],
        &["CLIENT", "NO-EVICT", "maybe"],
        &["CLIENT", "NO-EVICT", "on", "x"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-EVICT", "OFF"],
        &["CLIENT", "NO-EVICT", "On"],
        &["COMMAND", "INFO", "client|reply"],
        &["COMMAND", "INFO", "client|pause"],
        &["COMMAND", "INFO", "client|unpause"],
        &["COMMAND", "INFO", "client|unblock"],
        &["COMMAND", "INFO", "client|no-evict"],
    ]);
}

#[test]
fn client_no_touch_leaves_idle_time_alone_except_for_touch() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let idle = |c: &mut Client| -> i64 {
        c.cmd(&["OBJECT", "IDLETIME", "k"])[1..]
            .trim()
            .parse()
            .unwrap()
    };
    // (With a TTL: the engine records reads of such keys under a key lock.)
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "1000"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CLIENT", "NO-TOUCH", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "NO-TOUCH"]),
        "-ERR wrong number of arguments for 'client|no-touch' command\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" flags=T "));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k"]), ":1\r\n");
    let untouched = idle(&mut c);
    assert!(untouched >= 1, "{untouched}");
    // TOUCH still touches.
    assert_eq!(c.cmd(&["TOUCH", "k"]), ":1\r\n");
    assert!(idle(&mut c) < untouched);
    assert_eq!(c.cmd(&["CLIENT", "NO-TOUCH", "OFF"]), "+OK\r\n");
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" flags=N "));
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "client|no-touch"]),
        "*1\r\n*10\r\n$15\r\nclient|no-touch\r\n:3\r\n*3\r\n+noscript\r\n+loading\r\n+stale\r\n\
         :0\r\n:0\r\n:0\r\n*2\r\n+@slow\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"
    );
}

#[test]
fn client_setinfo_shows_in_client_list_and_info() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let mut other = lethe.client();
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" lib-name= lib-ver=\n"));
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "lib-ver", "5.0.1"]), "+OK\r\n");
    assert!(
        c.cmd(&["CLIENT", "INFO"])
            .contains(" lib-name=redis-py lib-ver=5.0.1\n")
    );
    let list = other.cmd(&["CLIENT", "LIST"]);
    assert!(
        list.contains(" lib-name=redis-py lib-ver=5.0.1\n"),
        "{list}"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "lib-name", "has space"]),
        "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "lib-color", "x"]),
        "-ERR Unrecognized option 'lib-color'\r\n"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "lib-name"]),
        "-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    // An empty value clears it.
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "lib-ver", ""]), "+OK\r\n");
    assert!(
        c.cmd(&["CLIENT", "INFO"])
            .contains(" lib-name=redis-py lib-ver=\n")
    );
    // NO-EVICT shows as the `e` flag.
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" flags=e "));
    assert_eq!(c.cmd(&["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    assert!(c.cmd(&["CLIENT", "INFO"]).contains(" flags=eT "));
    // RESET turns both off (and keeps the library's name, as Redis 7.2).
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    let info = c.cmd(&["CLIENT", "INFO"]);
    assert!(
        info.contains(" flags=N ") && info.contains(" lib-name=redis-py "),
        "{info}"
    );
}

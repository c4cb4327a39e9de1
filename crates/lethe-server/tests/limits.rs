//! Limits and safety, in-process over raw RESP: AUTH and `requirepass`, protected mode,
//! `maxclients`, request size limits, the idle `timeout`, output buffer limits for slow
//! subscribers, and `maxmemory` under a write flood. Texts are Redis 7.0's.

mod common;

use common::{Client, Lethe, encode};
use lethe_server::limits::Limits;
use std::sync::Arc;
use std::time::Duration;

fn start(limits: Limits) -> Lethe {
    Lethe::start_with("127.0.0.1:0", Arc::new(limits), 1 << 30)
}

fn with_password(pw: &str) -> Limits {
    let l = Limits::new();
    l.set_requirepass(pw.as_bytes());
    l
}

/// An INFO field's value.
fn info_field(c: &mut Client, section: &str, field: &str) -> String {
    let info = c.cmd(&["INFO", section]);
    let prefix = format!("{field}:");
    info.split("\r\n")
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO {section} lacks {field}: {info}"))
        .to_string()
}

const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

#[test]
fn commands_wait_for_auth_and_errors_come_in_redis_order() {
    let lethe = start(with_password("pw"));
    let mut c = lethe.client();
    assert_eq!(c.raw(&["GET", "k"]), NOAUTH);
    assert_eq!(c.raw(&["PING"]), NOAUTH);
    // Unknown commands and wrong arity are reported before authentication, as in Redis.
    assert_eq!(
        c.cmd(&["FOO"]),
        "-ERR unknown command 'FOO', with args beginning with: \r\n"
    );
    assert_eq!(
        c.cmd(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(c.raw(&["AUTH", "nope"]), WRONGPASS);
    assert_eq!(c.raw(&["AUTH", "bob", "pw"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "a", "b", "c"]), "-ERR syntax error\r\n");
    assert_eq!(c.raw(&["GET", "k"]), NOAUTH);
    assert_eq!(c.raw(&["AUTH", "pw"]), b"+OK\r\n");
    assert_eq!(c.raw(&["SET", "k", "v"]), b"+OK\r\n");
    let mut d = lethe.client();
    assert_eq!(d.raw(&["AUTH", "default", "pw"]), b"+OK\r\n");
    assert_eq!(d.raw(&["GET", "k"]), b"$1\r\nv\r\n");
    // QUIT needs no authentication.
    let mut e = lethe.client();
    assert_eq!(e.raw(&["QUIT"]), b"+OK\r\n");
    assert!(e.is_closed());
}

#[test]
fn hello_authenticates_or_refuses() {
    let lethe = start(with_password("pw"));
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["HELLO", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
         HELLO AUTH <user> <pass> option can be used to authenticate the client and select the \
         RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "AUTH"]),
        "-ERR Syntax error in HELLO option 'AUTH'\r\n"
    );
    assert_eq!(c.raw(&["HELLO", "3", "AUTH", "default", "x"]), WRONGPASS);
    assert_eq!(c.raw(&["HELLO", "3", "AUTH", "bob", "pw"]), WRONGPASS);
    assert!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "pw"])
            .starts_with("%7\r\n")
    );
    assert_eq!(c.raw(&["GET", "missing"]), b"_\r\n");
}

#[test]
fn auth_without_a_password_configured() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?\r\n"
    );
    // The passwordless default user takes any password; other users do not exist.
    assert_eq!(c.raw(&["AUTH", "default", "anything"]), b"+OK\r\n");
    assert_eq!(c.raw(&["AUTH", "bob", "x"]), WRONGPASS);
    assert!(
        c.cmd(&["HELLO", "2", "AUTH", "default", "zz"])
            .starts_with("*14\r\n")
    );
}

#[test]
fn config_set_requirepass_applies_to_new_clients() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$0\r\n\r\n"
    );
    assert_eq!(
        admin.raw(&["CONFIG", "SET", "requirepass", "s3"]),
        b"+OK\r\n"
    );
    // Connected while no password was set: stays authenticated, as in Redis.
    assert_eq!(admin.raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "requirepass"]),
        "*2\r\n$11\r\nrequirepass\r\n$2\r\ns3\r\n"
    );
    let mut late = lethe.client();
    assert_eq!(late.raw(&["PING"]), NOAUTH);
    assert_eq!(late.raw(&["AUTH", "s3"]), b"+OK\r\n");
    assert_eq!(late.raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(admin.raw(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    let mut free = lethe.client();
    assert_eq!(free.raw(&["PING"]), b"+PONG\r\n");
}

#[test]
fn unauthenticated_clients_may_only_send_small_requests() {
    let lethe = start(with_password("pw"));
    let mut many = lethe.client();
    many.send(b"*11\r\n");
    assert_eq!(
        many.read_to_close(),
        b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    let mut big = lethe.client();
    big.send(b"*2\r\n$3\r\nSET\r\n$16385\r\n");
    assert_eq!(
        big.read_to_close(),
        b"-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    // Once authenticated, the same requests are fine.
    let mut ok = lethe.client();
    assert_eq!(ok.raw(&["AUTH", "pw"]), b"+OK\r\n");
    let value = "v".repeat(16385);
    assert_eq!(ok.raw(&["SET", "k", &value]), b"+OK\r\n");
    let args: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let mut mset = vec!["MSET"];
    mset.extend(args.iter().map(String::as_str));
    assert_eq!(ok.raw(&mset), b"+OK\r\n");
}

#[test]
fn proto_max_bulk_len_closes_only_the_offender() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "proto-max-bulk-len"]),
        "*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "10"]),
        "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument \
         must be between 1048576 and 9223372036854775807 inclusive\r\n"
    );
    assert_eq!(
        admin.raw(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        b"+OK\r\n"
    );
    let mut bad = lethe.client();
    bad.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n");
    assert_eq!(
        bad.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    let exactly = "x".repeat(1 << 20);
    assert_eq!(admin.raw(&["SET", "k", &exactly]), b"+OK\r\n");
    assert_eq!(admin.raw(&["STRLEN", "k"]), b":1048576\r\n");
}

#[test]
fn multibulk_lengths_follow_redis_7() {
    let lethe = Lethe::start();
    // Two million arguments are allowed (only INT_MAX is refused): the server waits for them.
    let mut c = lethe.client();
    c.send(b"*2000000\r\n$4\r\nPING\r\n");
    let mut bystander = lethe.client();
    assert_eq!(bystander.raw(&["PING"]), b"+PONG\r\n");
    let mut bad = lethe.client();
    bad.send(b"*3000000000\r\n");
    assert_eq!(
        bad.read_to_close(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
}

#[test]
fn maxclients_refuses_the_extra_client_with_redis_text() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "maxclients", "0"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be \
         between 1 and 4294967295 inclusive\r\n"
    );
    assert_eq!(admin.raw(&["CONFIG", "SET", "maxclients", "2"]), b"+OK\r\n");
    let mut second = lethe.client();
    assert_eq!(second.raw(&["PING"]), b"+PONG\r\n");
    let mut third = lethe.client();
    assert_eq!(
        third.read_to_close(),
        b"-ERR max number of clients reached\r\n"
    );
    assert_eq!(info_field(&mut admin, "stats", "rejected_connections"), "1");
    assert_eq!(info_field(&mut admin, "clients", "maxclients"), "2");
    // Room frees up when a client leaves (once the server has seen it go).
    assert_eq!(second.raw(&["QUIT"]), b"+OK\r\n");
    assert!(second.is_closed());
    let mut admitted = false;
    for _ in 0..100 {
        let mut c = lethe.client();
        c.send(&encode(&["PING"]));
        if c.read_reply() == b"+PONG\r\n" {
            admitted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(admitted, "a slot never freed up");
}

/// A local address that is not loopback, if this machine has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the interface a packet would use.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn protected_mode_refuses_remote_clients_without_a_password() {
    let ip = non_loopback_ip().expect("this test needs a non-loopback interface address");
    let limits = Arc::new(Limits::new());
    let lethe = Lethe::start_with("0.0.0.0:0", limits.clone(), 1 << 30);
    let mut remote = Client::connect_to(ip, lethe.port);
    let denied = String::from_utf8(remote.read_to_close()).unwrap();
    assert!(
        denied.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.")
            && denied.ends_with("accepting connections from the outside.\r\n"),
        "{denied}"
    );
    assert_eq!(denied, lethe_server::limits::DENIED);
    let mut local = lethe.client();
    assert_eq!(local.raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(info_field(&mut local, "stats", "rejected_connections"), "1");
    // With a password, remote clients may connect (and must AUTH).
    assert_eq!(
        local.raw(&["CONFIG", "SET", "requirepass", "pw"]),
        b"+OK\r\n"
    );
    let mut remote = Client::connect_to(ip, lethe.port);
    assert_eq!(remote.raw(&["PING"]), NOAUTH);
    assert_eq!(local.raw(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    assert_eq!(
        local.cmd(&["CONFIG", "SET", "protected-mode", "maybe"]),
        "-ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must \
         be 'yes' or 'no'\r\n"
    );
    assert_eq!(
        local.raw(&["CONFIG", "SET", "protected-mode", "no"]),
        b"+OK\r\n"
    );
    let mut remote = Client::connect_to(ip, lethe.port);
    assert_eq!(remote.raw(&["PING"]), b"+PONG\r\n");
    assert!(!limits.protected_mode());
}

#[test]
fn idle_clients_are_closed_but_not_subscribers() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "timeout", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be \
         between 0 and 2147483647 inclusive\r\n"
    );
    let mut subscriber = lethe.client();
    assert!(subscriber.cmd(&["SUBSCRIBE", "ch"]).starts_with("*3\r\n"));
    // Set after the subscriber connected: a change reaches clients already waiting.
    assert_eq!(admin.raw(&["CONFIG", "SET", "timeout", "1"]), b"+OK\r\n");
    let mut idle = lethe.client();
    idle.set_read_timeout(Duration::from_secs(30));
    // Closed without a reply, as Redis does.
    assert_eq!(idle.read_to_close(), b"");
    // The subscriber has been idle at least as long, and is still served.
    assert_eq!(subscriber.raw(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    // The admin client sat idle as long as the closed one did: it is gone too.
    admin.set_read_timeout(Duration::from_secs(30));
    assert_eq!(admin.read_to_close(), b"");
    let mut fresh = lethe.client();
    assert_eq!(
        fresh.cmd(&["CONFIG", "GET", "timeout"]),
        "*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n"
    );
}

#[test]
fn a_client_still_sending_its_request_is_not_idle() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(admin.raw(&["CONFIG", "SET", "timeout", "2"]), b"+OK\r\n");
    let mut slow = lethe.client();
    // A request trickling in for longer than the timeout, a few bytes well within it each.
    let request = encode(&["SET", "k", &"v".repeat(15)]);
    for chunk in request.chunks(3) {
        slow.send(chunk);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(slow.read_reply(), b"+OK\r\n");
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected_at_its_limit() {
    let lethe = Lethe::start();
    let mut admin = lethe.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]),
        "*2\r\n$26\r\nclient-output-buffer-limit\r\n$67\r\nnormal 0 0 0 slave 268435456 \
         67108864 60 pubsub 33554432 8388608 60\r\n"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 2"]),
        "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - \
         Wrong number of arguments in buffer limit configuration.\r\n"
    );
    assert_eq!(
        admin.raw(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut slow = lethe.client();
    assert!(slow.cmd(&["SUBSCRIBE", "firehose"]).starts_with("*3\r\n"));
    let mut reader = lethe.client();
    assert!(reader.cmd(&["SUBSCRIBE", "other"]).starts_with("*3\r\n"));
    // Publish until the slow subscriber is gone: the kernel's socket buffers absorb some
    // megabytes first, then the server's queue reaches 256 KiB. PUBLISH never waits.
    let message = "m".repeat(64 * 1024);
    let mut published = 0;
    loop {
        let reply = admin.raw(&["PUBLISH", "firehose", &message]);
        if reply == b":0\r\n" {
            break;
        }
        assert_eq!(reply, b":1\r\n");
        published += 1;
        assert!(published < 4096, "still subscribed after 256 MiB");
    }
    assert_eq!(
        info_field(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections"
        ),
        "1"
    );
    // The slow client finds its connection closed once it reads what reached it.
    slow.set_read_timeout(Duration::from_secs(30));
    let got = slow.read_to_close();
    assert!(got.len() < published * message.len(), "everything arrived");
    // Others are unaffected.
    assert_eq!(admin.raw(&["PUBLISH", "other", "hi"]), b":1\r\n");
    assert_eq!(
        reader.read_reply(),
        b"*3\r\n$7\r\nmessage\r\n$5\r\nother\r\n$2\r\nhi\r\n"
    );
}

/// This process's resident memory in KiB (Linux), for a loose bound.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_write_flood_stays_within_maxmemory() {
    const MAX: u64 = 1 << 20;
    let lethe = Lethe::start_with("127.0.0.1:0", Arc::new(Limits::new()), MAX);
    let mut c = lethe.client();
    let before = rss_kib();
    let value = "v".repeat(1024);
    // Ten times the budget, pipelined in batches.
    let total = 10 * MAX as usize / value.len();
    for batch in 0..total / 100 {
        let mut out = Vec::new();
        for i in 0..100 {
            let key = format!("key:{}", batch * 100 + i);
            out.extend_from_slice(&encode(&["SET", &key, &value]));
        }
        c.send(&out);
        for _ in 0..100 {
            assert_eq!(c.read_reply(), b"+OK\r\n");
        }
    }
    let used: u64 = info_field(&mut c, "memory", "used_memory").parse().unwrap();
    let max: u64 = info_field(&mut c, "memory", "maxmemory").parse().unwrap();
    assert_eq!(max, MAX);
    assert!(used <= MAX, "used_memory {used} over maxmemory {MAX}");
    assert!(
        used > MAX / 4,
        "used_memory {used}: the cache holds something"
    );
    let keys: usize = c.cmd(&["DBSIZE"])[1..].trim().parse().unwrap();
    assert!(keys < total / 5, "{keys} of {total} keys kept");
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().unwrap();
    assert!(evicted > 0);
    if let (Some(before), Some(after)) = (before, rss_kib()) {
        // 10 MiB went through; the process must not have kept it all (a loose bound: tests
        // run in parallel in this process).
        assert!(
            after.saturating_sub(before) < 256 * 1024,
            "RSS grew {before} -> {after} KiB"
        );
    }
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "2mb"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - can't set immutable \
         config\r\n"
    );
}

#[test]
fn help_documents_every_limit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--requirepass",
        "LETHE_REQUIREPASS",
        "--protected-mode",
        "LETHE_PROTECTED_MODE",
        "--max-clients",
        "LETHE_MAX_CLIENTS",
        "--timeout",
        "LETHE_TIMEOUT",
        "--proto-max-bulk-len",
        "LETHE_PROTO_MAX_BULK_LEN",
        "--client-output-buffer-limit",
        "LETHE_CLIENT_OUTPUT_BUFFER_LIMIT",
        "--http-bind",
        "LETHE_HTTP_BIND",
        "--http-max-clients",
        "--http-timeout",
        "--http-max-body",
        "--tls-cert-file",
        "--tls-key-file",
        "--shutdown-timeout",
        "LETHE_SHUTDOWN_TIMEOUT",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn the_binary_requires_the_configured_password() {
    let (mut child, listening) = common::spawn_listening(
        std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["serve", "--port", "0", "--max-clients", "50"])
            .env("LETHE_REQUIREPASS", "from-env")
            .stderr(std::process::Stdio::null()),
        false,
    );
    let mut c = Client::connect(listening.port);
    assert_eq!(c.raw(&["PING"]), NOAUTH);
    assert_eq!(c.raw(&["AUTH", "from-env"]), b"+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]),
        "*2\r\n$10\r\nmaxclients\r\n$2\r\n50\r\n"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_client_library_authenticates_in_resp2_and_resp3() {
    let lethe = start(with_password("pw"));
    for proto in ["", "?protocol=resp3"] {
        let url = format!("redis://:pw@127.0.0.1:{}/{proto}", lethe.port);
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
        let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(v, "v");
        // What client libraries probe: COMMAND COUNT and COMMAND INFO.
        let n: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut con).unwrap();
        assert!(n > 80, "{n}");
        let info: redis::Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg("get")
            .query(&mut con)
            .unwrap();
        let redis::Value::Array(entries) = info else {
            panic!("{info:?}")
        };
        assert!(matches!(&entries[0], redis::Value::Array(e) if e.len() == 10));
    }
    let wrong = format!("redis://:nope@127.0.0.1:{}/", lethe.port);
    let err = redis::Client::open(wrong)
        .unwrap()
        .get_connection()
        .err()
        .expect("a wrong password must fail");
    assert_eq!(err.kind(), redis::ErrorKind::AuthenticationFailed, "{err}");
}

//! Wire-level tests against Lethe in-process: raw RESP in, raw bytes out.

mod common;

use common::{Lethe, encode};
use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn ping_echo_and_pipelining() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.raw(&["ECHO", "hi"]), b"$2\r\nhi\r\n");
    // Three requests in one write, one of them inline: three replies, in order.
    let mut batch = encode(&["SET", "a", "1"]);
    batch.extend_from_slice(b"INCR a\r\n");
    batch.extend_from_slice(&encode(&["GET", "a"]));
    c.send(&batch);
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.read_reply(), b":2\r\n");
    assert_eq!(c.read_reply(), b"$1\r\n2\r\n");
}

#[test]
fn hello_3_switches_to_resp3_and_reset_back() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.raw(&["GET", "missing"]), b"$-1\r\n");
    assert_eq!(
        c.cmd(&["HELLO", "3"]),
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.4.0\r\n\
         $5\r\nproto\r\n:3\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    );
    assert_eq!(c.raw(&["GET", "missing"]), b"_\r\n");
    assert_eq!(c.raw(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(c.raw(&["HGETALL", "h"]), b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(c.raw(&["RESET"]), b"+RESET\r\n");
    assert_eq!(c.raw(&["HGETALL", "h"]), b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    // HELLO 2 replies in RESP2: the map arrives as a flat array.
    assert!(c.cmd(&["HELLO", "2"]).starts_with("*14\r\n"));
}

#[test]
fn protocol_error_closes_only_that_connection() {
    let lethe = Lethe::start();
    let mut bystander = lethe.client();
    assert_eq!(bystander.raw(&["SET", "k", "v"]), b"+OK\r\n");
    let mut bad = lethe.client();
    bad.send(b"*1\r\n$nope\r\n");
    assert_eq!(
        bad.read_reply(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(bad.is_closed());
    assert_eq!(bystander.raw(&["GET", "k"]), b"$1\r\nv\r\n");
}

#[test]
fn quit_replies_then_closes() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.raw(&["QUIT"]), b"+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn keys_expire_on_time() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.raw(&["SET", "short", "v", "PX", "150"]), b"+OK\r\n");
    let pttl: i64 = c.cmd(&["PTTL", "short"])[1..].trim().parse().unwrap();
    assert!((1..=150).contains(&pttl), "{pttl}");
    assert_eq!(c.raw(&["SET", "long", "v", "EX", "100"]), b"+OK\r\n");
    assert_eq!(c.raw(&["HSET", "h", "f", "v"]), b":1\r\n");
    assert_eq!(c.raw(&["PEXPIRE", "h", "150"]), b":1\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.raw(&["GET", "short"]), b"$-1\r\n");
    assert_eq!(c.raw(&["TTL", "short"]), b":-2\r\n");
    assert_eq!(c.raw(&["HGET", "h", "f"]), b"$-1\r\n");
    assert_eq!(c.raw(&["TTL", "long"]), b":100\r\n");
    assert_eq!(c.raw(&["DBSIZE"]), b":1\r\n");
    assert_eq!(c.raw(&["KEYS", "*"]), b"*1\r\n$4\r\nlong\r\n");
}

#[test]
fn scan_cursor_covers_every_key_across_calls_while_keys_change() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let stable: BTreeSet<String> = (0..200).map(|i| format!("key:{i}")).collect();
    for k in &stable {
        assert_eq!(c.raw(&["SET", k, "v"]), b"+OK\r\n");
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let reply = c.cmd(&["SCAN", &cursor, "COUNT", "7"]);
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen.extend(lines[4..].iter().skip(1).step_by(2).map(|s| s.to_string()));
        // Keys come and go between calls; the stable ones must all still be reported.
        let churn = format!("churn:{calls}");
        c.raw(&["SET", &churn, "v"]);
        calls += 1;
        if cursor == "0" {
            break;
        }
        assert!(calls < 200, "scan did not terminate");
    }
    assert!(stable.is_subset(&seen));
    assert!(calls >= 200 / 7);
}

#[test]
fn concurrent_increments_are_not_lost() {
    let lethe = Lethe::start();
    let port = lethe.port;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = common::Client::connect(port);
                for _ in 0..250 {
                    c.raw(&["INCR", "n"]);
                    c.raw(&["HINCRBY", "h", "f", "1"]);
                    c.raw(&["APPEND", "s", "x"]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = lethe.client();
    assert_eq!(c.raw(&["GET", "n"]), b"$4\r\n1000\r\n");
    assert_eq!(c.raw(&["HGET", "h", "f"]), b"$4\r\n1000\r\n");
    assert_eq!(c.raw(&["STRLEN", "s"]), b":1000\r\n");
}

#[test]
fn shutdown_stops_accepting_and_closes_clients() {
    let lethe = Lethe::start();
    let port = lethe.port;
    let mut c = lethe.client();
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    lethe.shutdown();
    assert!(c.is_closed());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

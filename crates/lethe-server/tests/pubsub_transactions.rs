//! Pub/sub delivery and transactions on Lethe alone, raw RESP in and out (the differential
//! tests compare the same behaviour with Redis when a redis-server is installed).

mod common;

use common::{Lethe, encode};
use std::time::{Duration, Instant};

#[test]
fn messages_reach_channel_and_pattern_subscribers_in_resp2() {
    let lethe = Lethe::start();
    let (mut sub, mut publisher) = (lethe.client(), lethe.client());
    sub.send(&encode(&["SUBSCRIBE", "news", "sport"]));
    assert_eq!(
        String::from_utf8_lossy(&sub.read_reply()),
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&sub.read_reply()),
        "*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n"
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "n[ae]ws"]),
        "*3\r\n$10\r\npsubscribe\r\n$7\r\nn[ae]ws\r\n:3\r\n"
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "hi"]), ":2\r\n");
    assert_eq!(
        String::from_utf8_lossy(&sub.read_reply()),
        "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&sub.read_reply()),
        "*4\r\n$8\r\npmessage\r\n$7\r\nn[ae]ws\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "naws", "x"]), ":1\r\n");
    assert_eq!(
        String::from_utf8_lossy(&sub.read_reply()),
        "*4\r\n$8\r\npmessage\r\n$7\r\nn[ae]ws\r\n$4\r\nnaws\r\n$1\r\nx\r\n"
    );
    assert_eq!(
        sub.cmd(&["SET", "k", "v"]),
        "-ERR Can't execute 'set': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context\r\n"
    );
    assert_eq!(sub.cmd(&["PING"]), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

#[test]
fn messages_are_push_frames_in_resp3() {
    let lethe = Lethe::start();
    let (mut sub, mut publisher) = (lethe.client(), lethe.client());
    assert!(sub.cmd(&["HELLO", "3"]).starts_with("%7\r\n"));
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "c"]),
        ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
    );
    // RESP3 tells pushes from replies, so a subscribed client may run anything.
    assert_eq!(sub.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(sub.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "c", "m"]), ":1\r\n");
    assert_eq!(
        sub.cmd(&["GET", "k"]),
        ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
        "the push arrives before the reply to the next command"
    );
    assert_eq!(String::from_utf8_lossy(&sub.read_reply()), "$1\r\nv\r\n");
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]),
        ">3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n"
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "c", "m"]), ":0\r\n");
}

#[test]
fn a_disconnected_subscriber_stops_counting() {
    let lethe = Lethe::start();
    let mut publisher = lethe.client();
    {
        let mut sub = lethe.client();
        assert!(sub.cmd(&["PSUBSCRIBE", "*"]).ends_with(":1\r\n"));
        assert_eq!(publisher.cmd(&["PUBLISH", "c", "m"]), ":1\r\n");
    }
    // The server notices the closed socket on its own schedule.
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.cmd(&["PUBLISH", "c", "m"]) != ":0\r\n" {
        assert!(
            Instant::now() < deadline,
            "subscription outlived its client"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exec_runs_the_queue_and_watch_aborts_on_a_concurrent_write() {
    let lethe = Lethe::start();
    let (mut c, mut other) = (lethe.client(), lethe.client());
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "n", "1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), "+QUEUED\r\n");
    assert_eq!(
        other.cmd(&["GET", "n"]),
        "$-1\r\n",
        "nothing runs before EXEC"
    );
    assert_eq!(c.cmd(&["EXEC"]), "*2\r\n+OK\r\n:2\r\n");

    assert_eq!(c.cmd(&["WATCH", "n"]), "+OK\r\n");
    assert_eq!(other.cmd(&["INCR", "n"]), ":3\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*-1\r\n");
    assert_eq!(c.cmd(&["GET", "n"]), "$1\r\n3\r\n");

    // EXECABORT after a rejected command; the queue is gone afterwards.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), "+QUEUED\r\n");
    assert!(c.cmd(&["INCR"]).starts_with("-ERR wrong number"));
    assert_eq!(
        c.cmd(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(c.cmd(&["GET", "n"]), "$1\r\n3\r\n");
}

#[test]
fn reset_leaves_transactions_and_subscriptions() {
    let lethe = Lethe::start();
    let (mut c, mut publisher) = (lethe.client(), lethe.client());
    assert!(c.cmd(&["SUBSCRIBE", "c"]).ends_with(":1\r\n"));
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(publisher.cmd(&["PUBLISH", "c", "m"]), ":0\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
}

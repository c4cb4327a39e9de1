//! Every Redis type works with the invalidation model: tags, dependencies and versions attach
//! to keys of any type (LETHE.ATTACH), a tag invalidation removes them whatever their type, a
//! write to any type cascades to its dependents, and client tracking pushes for every type's
//! writes.

mod common;

use common::Lethe;

/// One key of each type, built with that type's own commands.
const BUILD: &[(&str, &[&str])] = &[
    ("str", &["SET", "str", "v"]),
    ("int", &["INCRBY", "int", "7"]),
    ("hash", &["HSET", "hash", "f", "v"]),
    ("list", &["RPUSH", "list", "a", "b"]),
    ("set", &["SADD", "set", "a", "b"]),
    ("intset", &["SADD", "intset", "1", "2"]),
    ("zset", &["ZADD", "zset", "1", "a", "2", "b"]),
    (
        "geo",
        &["GEOADD", "geo", "13.361389", "38.115556", "Palermo"],
    ),
    ("hll", &["PFADD", "hll", "a", "b", "c"]),
    ("bitmap", &["SETBIT", "bitmap", "7", "1"]),
];

#[test]
fn a_tag_attached_to_any_type_invalidates_it() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    for (key, build) in BUILD {
        assert!(!c.cmd(build).starts_with('-'), "{build:?}");
        assert_eq!(
            c.cmd(&["LETHE.ATTACH", key, "TAGS", "1", "user:42", "VERSION", "3"]),
            ":1\r\n",
            "{key}"
        );
        assert_eq!(c.cmd(&["LETHE.VERSION", key]), ":3\r\n", "{key}");
    }
    c.cmd(&["SET", "untagged", "v"]);
    let n = c.cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]);
    assert_eq!(n, format!(":{}\r\n", BUILD.len()));
    for (key, _) in BUILD {
        assert_eq!(c.cmd(&["EXISTS", key]), ":0\r\n", "{key} survived its tag");
    }
    assert_eq!(c.cmd(&["EXISTS", "untagged"]), ":1\r\n");
}

#[test]
fn writes_to_any_type_cascade_to_dependents_and_reach_tracking_clients() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let mut tracker = lethe.client();
    assert!(tracker.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    // The second write of each type: it changes the key, so its dependents and readers go.
    let change: &[(&str, &[&str])] = &[
        ("str", &["APPEND", "str", "x"]),
        ("int", &["INCR", "int"]),
        ("hash", &["HSET", "hash", "g", "w"]),
        ("list", &["LPOP", "list"]),
        ("set", &["SREM", "set", "a"]),
        ("intset", &["SADD", "intset", "3"]),
        ("zset", &["ZINCRBY", "zset", "5", "a"]),
        (
            "geo",
            &["GEOADD", "geo", "15.087269", "37.502669", "Catania"],
        ),
        ("hll", &["PFADD", "hll", "d"]),
        ("bitmap", &["BITOP", "NOT", "bitmap", "bitmap"]),
    ];
    for ((key, build), (_, write)) in BUILD.iter().zip(change) {
        assert!(!c.cmd(build).starts_with('-'), "{build:?}");
        let view = format!("view:{key}");
        assert_eq!(
            c.cmd(&["LETHE.SET", &view, "v", "DEPENDS", "1", key]),
            "+OK\r\n"
        );
        // The tracking client reads the key with its type's read command.
        let read: Vec<&str> = match *key {
            "str" | "int" | "bitmap" | "hll" => vec!["GET", key],
            "hash" => vec!["HGETALL", key],
            "list" => vec!["LRANGE", key, "0", "-1"],
            "set" | "intset" => vec!["SMEMBERS", key],
            _ => vec!["ZRANGE", key, "0", "-1"],
        };
        assert!(!tracker.cmd(&read).starts_with('-'), "{read:?}");
        assert!(!c.cmd(write).starts_with('-'), "{write:?}");
        assert_eq!(c.cmd(&["EXISTS", &view]), ":0\r\n", "{key}: dependent kept");
        tracker.send(&common::encode(&["PING"]));
        let push = String::from_utf8_lossy(&tracker.read_reply()).into_owned();
        assert_eq!(
            push,
            format!(
                ">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n",
                key.len()
            ),
            "{key}"
        );
        assert_eq!(tracker.read_reply(), b"+PONG\r\n");
    }
}

//! The `LETHE.*` commands over the wire: raw RESP in, raw bytes out, success and error paths of
//! each, and the invalidation scenarios they exist for (documented in `docs/commands.md`).

mod common;

use common::{Client, Lethe};

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn array(items: &[&str]) -> String {
    let mut out = format!("*{}\r\n", items.len());
    for i in items {
        out.push_str(&bulk(i));
    }
    out
}

const NIL: &str = "$-1\r\n";
const OK: &str = "+OK\r\n";

fn set_ok(c: &mut Client, args: &[&str]) {
    let mut full = vec!["LETHE.SET"];
    full.extend_from_slice(args);
    assert_eq!(c.cmd(&full), OK, "{args:?}");
}

#[test]
fn set_stores_a_string_with_ttl_tags_and_version() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(
        &mut c,
        &[
            "k", "v", "EX", "100", "TAGS", "2", "a", "b:c", "VERSION", "5",
        ],
    );
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(c.cmd(&["TTL", "k"]), ":100\r\n");
    assert_eq!(c.cmd(&["LETHE.TAGS", "k"]), array(&["a", "b:c"]));
    assert_eq!(c.cmd(&["LETHE.VERSION", "k"]), ":5\r\n");
    set_ok(&mut c, &["s", "v", "IDLE", "100", "JITTER", "0.1"]);
    set_ok(&mut c, &["p", "v", "PX", "100000"]);
    set_ok(&mut c, &["a", "v", "ADAPTIVE", "60", "10", "600"]);
    assert_eq!(c.cmd(&["TTL", "a"]), ":60\r\n");
    // Counted lists let a tag look like a keyword.
    set_ok(&mut c, &["kw", "v", "TAGS", "1", "EX"]);
    assert_eq!(c.cmd(&["LETHE.TAGS", "kw"]), array(&["EX"]));
    assert_eq!(c.cmd(&["LETHE.TAGS", "missing"]), "*0\r\n");
    assert_eq!(c.cmd(&["LETHE.VERSION", "missing"]), NIL);
}

#[test]
fn set_errors_name_the_problem() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["LETHE.SET", "k"]),
        "-ERR wrong number of arguments for 'lethe.set' command\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "BOGUS"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "EX", "1", "PX", "1"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "EX", "0"]),
        "-ERR invalid expire time in 'lethe.set' command\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "EX", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "TAGS", "3", "a"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "JITTER", "1.5"]),
        "-ERR JITTER must be a number in [0, 1)\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "ADAPTIVE", "5", "10", "20"]),
        "-ERR ADAPTIVE needs min <= base <= max\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "IFNEWER"]),
        "-ERR IFNEWER needs VERSION\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "TAGS", "1", "a::b"]),
        "-ERR invalid tag\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "POLICY", "nope"]),
        "-ERR no such policy 'nope'\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SET", "k", "v", "FIELD", "a", "b"]),
        "-ERR FIELD needs a POLICY before it\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), NIL);
}

#[test]
fn tag_invalidation_hides_every_tagged_key_and_nothing_else() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(&mut c, &["p1", "a", "TAGS", "1", "user:42"]);
    set_ok(&mut c, &["p2", "b", "TAGS", "2", "user:42:profile", "x"]);
    set_ok(&mut c, &["p3", "c", "TAGS", "1", "user:420"]);
    set_ok(&mut c, &["p4", "d"]);
    assert_eq!(c.cmd(&["SET", "plain", "e"]), OK);
    assert_eq!(c.cmd(&["LETHE.KEYS.TAG", "user:42"]), array(&["p1", "p2"]));
    // Hierarchical: user:42 covers user:42:profile, not user:420.
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]), ":2\r\n");
    assert_eq!(c.cmd(&["GET", "p1"]), NIL);
    assert_eq!(c.cmd(&["GET", "p2"]), NIL);
    assert_eq!(c.cmd(&["GET", "p3"]), bulk("c"));
    assert_eq!(c.cmd(&["GET", "p4"]), bulk("d"));
    assert_eq!(c.cmd(&["GET", "plain"]), bulk("e"));
    assert_eq!(c.cmd(&["LETHE.KEYS.TAG", "user:42"]), "*0\r\n");
    // Several tags at once; a tag nothing carries counts nothing.
    set_ok(&mut c, &["q", "v", "TAGS", "1", "t2"]);
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "TAG", "user:420", "t2", "none"]),
        ":2\r\n"
    );
    assert_eq!(c.cmd(&["GET", "p3"]), NIL);
    assert_eq!(c.cmd(&["GET", "q"]), NIL);
    // A malformed tag is refused with the engine's reason, before anything is invalidated.
    let reply = c.cmd(&["LETHE.INVALIDATE", "TAG", "ok", "a:"]);
    assert!(reply.starts_with("-ERR invalid tag: "), "{reply}");
}

#[test]
fn invalidate_by_key_prefix_and_glob() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    for k in [
        "session:1:a",
        "session:1:b",
        "session:2:a",
        "feed:x:42",
        "feed:y:42",
        "feed:x:7",
    ] {
        assert_eq!(c.cmd(&["SET", k, "v"]), OK);
    }
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "PREFIX", "session:1:"]),
        ":2\r\n"
    );
    assert_eq!(c.cmd(&["EXISTS", "session:1:a", "session:2:a"]), ":1\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "GLOB", "feed:*:42"]), ":2\r\n");
    assert_eq!(
        c.cmd(&["EXISTS", "feed:x:42", "feed:y:42", "feed:x:7"]),
        ":1\r\n"
    );
    assert_eq!(
        c.cmd(&[
            "LETHE.INVALIDATE",
            "KEY",
            "session:2:a",
            "feed:x:7",
            "missing"
        ]),
        ":2\r\n"
    );
    assert_eq!(c.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "NOPE", "x"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "PREFIX", "a", "b"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.INVALIDATE", "KEY"]),
        "-ERR wrong number of arguments for 'lethe.invalidate' command\r\n"
    );
}

#[test]
fn dependency_cascade_through_set_depends() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(&mut c, &["profile:42", "Ada"]);
    set_ok(
        &mut c,
        &["page:/u/42", "<h1>Ada</h1>", "DEPENDS", "1", "profile:42"],
    );
    set_ok(&mut c, &["feed:42", "[...]", "DEPENDS", "1", "page:/u/42"]);
    assert_eq!(c.cmd(&["LETHE.DEPS", "page:/u/42"]), array(&["profile:42"]));
    assert_eq!(
        c.cmd(&["LETHE.DEPENDENTS", "profile:42"]),
        array(&["page:/u/42"])
    );
    assert_eq!(c.cmd(&["LETHE.DEPS", "missing"]), "*0\r\n");
    // Replacing the profile cascades to the page and, transitively, the feed.
    assert_eq!(c.cmd(&["SET", "profile:42", "Ada L."]), OK);
    assert_eq!(c.cmd(&["GET", "page:/u/42"]), NIL);
    assert_eq!(c.cmd(&["GET", "feed:42"]), NIL);
    assert_eq!(c.cmd(&["GET", "profile:42"]), bulk("Ada L."));
    let stats = c.cmd(&["LETHE.STATS"]);
    assert!(
        stats.contains(&format!("{}:2\r\n", bulk("removed_dependency"))),
        "{stats}"
    );
}

#[test]
fn set_if_newer_rejects_older_versions() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.SETIFNEWER", "row", "7", "v7"]), OK);
    assert_eq!(
        c.cmd(&["LETHE.SETIFNEWER", "row", "5", "v5"]),
        "-ERR stale version: stored 7\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SETIFNEWER", "row", "7", "again"]),
        "-ERR stale version: stored 7\r\n"
    );
    assert_eq!(c.cmd(&["GET", "row"]), bulk("v7"));
    assert_eq!(c.cmd(&["LETHE.SETIFNEWER", "row", "8", "v8"]), OK);
    assert_eq!(c.cmd(&["LETHE.VERSION", "row"]), ":8\r\n");
    // The same through LETHE.SET.
    assert_eq!(
        c.cmd(&["LETHE.SET", "row", "v6", "VERSION", "6", "IFNEWER"]),
        "-ERR stale version: stored 8\r\n"
    );
    set_ok(&mut c, &["row", "v9", "VERSION", "9", "IFNEWER"]);
    assert_eq!(
        c.cmd(&["LETHE.SETIFNEWER", "row", "-1", "v"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.SETIFNEWER", "row", "1"]),
        "-ERR wrong number of arguments for 'lethe.setifnewer' command\r\n"
    );
}

#[test]
fn compare_and_set() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(&mut c, &["k", "a", "VERSION", "3"]);
    assert_eq!(
        c.cmd(&["LETHE.CAS", "k", "2", "b"]),
        "-ERR version mismatch: stored 3\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), bulk("a"));
    assert_eq!(
        c.cmd(&["LETHE.CAS", "k", "3", "b", "VERSION", "10"]),
        ":10\r\n"
    );
    assert_eq!(c.cmd(&["GET", "k"]), bulk("b"));
    // Without VERSION the engine's counter picks the new version: it differs from the old.
    let reply = c.cmd(&["LETHE.CAS", "k", "10", "c"]);
    let v: u64 = reply[1..reply.len() - 2].parse().unwrap();
    assert_ne!(v, 10);
    assert_eq!(c.cmd(&["LETHE.VERSION", "k"]), format!(":{v}\r\n"));
    assert_eq!(
        c.cmd(&["LETHE.CAS", "missing", "1", "x"]),
        "-ERR no such key\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.CAS", "k", "1", "x", "VERSION"]),
        "-ERR syntax error\r\n"
    );
}

#[test]
fn etag_round_trip() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.ETAG", "k"]), NIL);
    assert_eq!(c.cmd(&["SET", "k", "hello"]), OK);
    let reply = c.cmd(&["LETHE.ETAG", "k"]);
    // $34 then a quoted 32-hex-digit tag.
    assert!(reply.starts_with("$34\r\n\""), "{reply}");
    let etag = &reply[5..reply.len() - 2];
    assert_eq!(
        c.cmd(&["LETHE.GETIFNONEMATCH", "k", etag]),
        format!("*3\r\n+not-modified\r\n{}{NIL}", bulk(etag))
    );
    assert_eq!(c.cmd(&["SET", "k", "world"]), OK);
    let new = c.cmd(&["LETHE.ETAG", "k"]);
    let new_tag = &new[5..new.len() - 2];
    assert_ne!(new_tag, etag);
    assert_eq!(
        c.cmd(&["LETHE.GETIFNONEMATCH", "k", etag]),
        format!("*3\r\n+modified\r\n{}{}", bulk(new_tag), bulk("world"))
    );
    assert_eq!(c.cmd(&["LETHE.GETIFNONEMATCH", "missing", etag]), NIL);
    assert_eq!(
        c.cmd(&["LETHE.GETIFNONEMATCH", "k", "nope"]),
        "-ERR invalid etag\r\n"
    );
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert!(c.cmd(&["LETHE.ETAG", "h"]).starts_with("-WRONGTYPE"));
}

#[test]
fn lease_grant_fill_hit_and_pending() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let reply = c.cmd(&["LETHE.LEASE", "k"]);
    assert!(reply.starts_with("*2\r\n+granted\r\n:"), "{reply}");
    let token = reply["*2\r\n+granted\r\n:".len()..reply.len() - 2].to_string();
    // A second misser waits instead of also reading the database.
    assert_eq!(
        c.cmd(&["LETHE.LEASE", "k"]),
        format!("*2\r\n+pending\r\n{NIL}")
    );
    assert_eq!(
        c.cmd(&["LETHE.FILL", "k", "999999", "v"]),
        "-ERR fill refused: no such lease\r\n"
    );
    assert_eq!(
        c.cmd(&[
            "LETHE.FILL",
            "k",
            &token,
            "v",
            "EX",
            "100",
            "TAGS",
            "1",
            "t"
        ]),
        OK
    );
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(c.cmd(&["LETHE.TAGS", "k"]), array(&["t"]));
    assert_eq!(
        c.cmd(&["LETHE.LEASE", "k"]),
        format!("*2\r\n+hit\r\n{}", bulk("v"))
    );
    // The lease was used up.
    assert_eq!(
        c.cmd(&["LETHE.FILL", "k", &token, "v2"]),
        "-ERR fill refused: no such lease\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.FILL", "k", &token, "v", "VERSION", "1", "IFNEWER"]),
        "-ERR IFNEWER is not allowed in a fill\r\n"
    );
}

#[test]
fn lease_race_invalidation_refuses_the_fill() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let reply = c.cmd(&["LETHE.LEASE", "profile:42"]);
    let token = reply["*2\r\n+granted\r\n:".len()..reply.len() - 2].to_string();
    // The row changes while the misser reads it; the invalidation finds nothing to remove...
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "KEY", "profile:42"]), ":0\r\n");
    // ...but the stale fill is refused.
    assert_eq!(
        c.cmd(&["LETHE.FILL", "profile:42", &token, "old"]),
        "-ERR fill refused: lease invalid\r\n"
    );
    assert_eq!(c.cmd(&["GET", "profile:42"]), NIL);
    // The same race through a tag the fill would carry.
    let reply = c.cmd(&["LETHE.LEASE", "page"]);
    let token = reply["*2\r\n+granted\r\n:".len()..reply.len() - 2].to_string();
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]), ":0\r\n");
    assert_eq!(
        c.cmd(&[
            "LETHE.FILL",
            "page",
            &token,
            "old",
            "TAGS",
            "1",
            "user:42:page"
        ]),
        "-ERR fill refused: invalidated since lease\r\n"
    );
    assert_eq!(c.cmd(&["GET", "page"]), NIL);
    let stats = c.cmd(&["LETHE.STATS"]);
    assert!(
        stats.contains(&format!("{}:2\r\n", bulk("fills_refused"))),
        "{stats}"
    );
    assert!(
        stats.contains(&format!("{}:2\r\n", bulk("leases_granted"))),
        "{stats}"
    );
}

const RULES: &str = r#"
[[rule]]
name = "user profile"
entity = "users"
operations = ["update", "delete"]
keys = ["user:{id}:profile"]
tags = ["user:{id}"]

[[rule]]
name = "department members"
entity = "users"
changed = ["department_id"]
keys = ["department:{old.department_id}:members", "department:{new.department_id}:members"]

[policy.user]
ttl = "5m"
tags = ["user:{id}", "org:{org_id}"]
"#;

#[test]
fn rules_load_list_and_test() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.RULES", "LIST"]), "*0\r\n");
    assert_eq!(c.cmd(&["LETHE.RULES", "LOAD", RULES]), OK);
    let list = c.cmd(&["LETHE.RULES", "LIST"]);
    assert!(list.starts_with("*3\r\n*10\r\n"), "{list}");
    assert!(list.contains(&bulk("user profile")), "{list}");
    assert!(list.contains(&format!("{}:2\r\n", bulk("line"))), "{list}");
    assert!(
        list.contains(&format!("{}{}", bulk("type"), bulk("policy"))),
        "{list}"
    );
    assert_eq!(
        c.cmd(&[
            "LETHE.RULES",
            "TEST",
            "users",
            "update",
            "42",
            "OLD",
            "department_id",
            "7",
            "NEW",
            "department_id",
            "9"
        ]),
        format!(
            "*4\r\n{}{}{}{}",
            array(&["key", "user:42:profile"]),
            array(&["tag", "user:42"]),
            array(&["key", "department:7:members"]),
            array(&["key", "department:9:members"]),
        )
    );
    assert_eq!(
        c.cmd(&["LETHE.RULES", "TEST", "orders", "create", "1"]),
        "*0\r\n"
    );
    let reply = c.cmd(&["LETHE.RULES", "TEST", "users", "upsert", "1"]);
    assert!(
        reply.starts_with("-ERR ") && reply.contains("upsert"),
        "{reply}"
    );
    assert_eq!(
        c.cmd(&["LETHE.RULES", "TEST", "users", "update", "1", "f", "v"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.RULES", "NOPE"]),
        "-ERR unknown subcommand 'NOPE'. Try LOAD, LIST or TEST.\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.RULES", "LIST", "extra"]),
        "-ERR syntax error\r\n"
    );
}

#[test]
fn rules_load_error_names_the_line_and_keeps_the_old_set() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.RULES", "LOAD", RULES]), OK);
    let bad =
        "[[rule]]\nname = \"x\"\nentity = \"users\"\noperations = [\"upsert\"]\nkeys = [\"k\"]\n";
    let reply = c.cmd(&["LETHE.RULES", "LOAD", bad]);
    assert!(
        reply.starts_with("-ERR rules not loaded: line 4: unknown operation `upsert`"),
        "{reply}"
    );
    // All or nothing: the earlier set is still in force.
    assert!(c.cmd(&["LETHE.RULES", "LIST"]).starts_with("*3\r\n"));
}

#[test]
fn event_applies_rule_targets() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.RULES", "LOAD", RULES]), OK);
    assert_eq!(c.cmd(&["SET", "user:42:profile", "Ada"]), OK);
    set_ok(
        &mut c,
        &["orders:42", "[..]", "TAGS", "1", "user:42:orders"],
    );
    assert_eq!(c.cmd(&["SET", "department:7:members", "[42]"]), OK);
    assert_eq!(c.cmd(&["SET", "department:8:members", "[43]"]), OK);
    assert_eq!(c.cmd(&["SET", "user:43:profile", "Bob"]), OK);
    assert_eq!(
        c.cmd(&[
            "LETHE.EVENT",
            "users",
            "update",
            "42",
            "OLD",
            "department_id",
            "7",
            "NEW",
            "department_id",
            "9"
        ]),
        ":4\r\n"
    );
    assert_eq!(c.cmd(&["GET", "user:42:profile"]), NIL);
    assert_eq!(c.cmd(&["GET", "orders:42"]), NIL);
    assert_eq!(c.cmd(&["GET", "department:7:members"]), NIL);
    assert_eq!(c.cmd(&["GET", "department:8:members"]), bulk("[43]"));
    assert_eq!(c.cmd(&["GET", "user:43:profile"]), bulk("Bob"));
    // An event no rule matches applies nothing.
    assert_eq!(c.cmd(&["LETHE.EVENT", "orders", "create", "1"]), ":0\r\n");
    assert_eq!(
        c.cmd(&["LETHE.EVENT", "users", "update"]),
        "-ERR wrong number of arguments for 'lethe.event' command\r\n"
    );
}

#[test]
fn set_with_policy_takes_its_ttl_and_tags() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["LETHE.RULES", "LOAD", RULES]), OK);
    set_ok(
        &mut c,
        &[
            "u", "Ada", "POLICY", "user", "FIELD", "id", "42", "FIELD", "org_id", "7",
        ],
    );
    assert_eq!(c.cmd(&["TTL", "u"]), ":300\r\n");
    assert_eq!(c.cmd(&["LETHE.TAGS", "u"]), array(&["org:7", "user:42"]));
    // Explicit options go on top of the policy's.
    set_ok(
        &mut c,
        &[
            "u2", "Bob", "POLICY", "user", "FIELD", "id", "43", "FIELD", "org_id", "7", "EX", "10",
            "TAGS", "1", "extra",
        ],
    );
    assert_eq!(c.cmd(&["TTL", "u2"]), ":10\r\n");
    assert_eq!(
        c.cmd(&["LETHE.TAGS", "u2"]),
        array(&["extra", "org:7", "user:43"])
    );
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "org:7"]), ":2\r\n");
    let reply = c.cmd(&["LETHE.SET", "u3", "x", "POLICY", "user", "FIELD", "id", "1"]);
    assert!(reply.starts_with("-ERR invalid data policy: "), "{reply}");
    assert!(reply.contains("org_id"), "{reply}");
}

#[test]
fn stats_in_resp2_and_resp3_and_per_tag() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(&mut c, &["a", "1", "TAGS", "1", "t"]);
    set_ok(&mut c, &["b", "1", "TAGS", "1", "t:x"]);
    let never = format!(
        "*8\r\n{}{}{}:2\r\n{}:0\r\n{}:0\r\n",
        bulk("tag"),
        bulk("t"),
        bulk("keys"),
        bulk("invalidations"),
        bulk("last_invalidated_ms")
    );
    assert_eq!(c.cmd(&["LETHE.STATS", "TAG", "t"]), never);
    assert_eq!(c.cmd(&["LETHE.STATS", "TAG"]), "-ERR syntax error\r\n");
    // Invalidating the tag twice (once with a sibling) counts twice; a child's count is its own.
    let before = lethe_server::keyspace::now_millis();
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "t:x"]), ":1\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "t", "u"]), ":1\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "t"]), ":0\r\n");
    let after = c.cmd(&["LETHE.STATS", "TAG", "t"]);
    let prefix = format!(
        "*8\r\n{}{}{}:0\r\n{}:2\r\n{}:",
        bulk("tag"),
        bulk("t"),
        bulk("keys"),
        bulk("invalidations"),
        bulk("last_invalidated_ms")
    );
    let last: i64 = after
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{after}"))
        .trim_end()
        .parse()
        .unwrap();
    assert!(
        last >= before && last <= lethe_server::keyspace::now_millis(),
        "{last}"
    );
    set_ok(&mut c, &["a", "1", "TAGS", "1", "t"]);
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "KEY", "a"]), ":1\r\n");
    let flat = c.cmd(&["LETHE.STATS"]);
    assert!(flat.starts_with("*42\r\n"), "{flat}");
    assert!(
        flat.contains(&format!("{}:1\r\n", bulk("removed_explicit"))),
        "{flat}"
    );
    // Four tag invalidations (t:x, t, u, t) and one of a key.
    assert!(
        flat.contains(&format!("{}:5\r\n", bulk("invalidations"))),
        "{flat}"
    );
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    let map = c.cmd(&["LETHE.STATS"]);
    assert!(map.starts_with("%21\r\n"), "{map}");
}

#[test]
fn attach_gives_keys_of_any_type_tags_and_dependencies() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["HSET", "profile:42", "name", "Ada"]), ":1\r\n");
    assert_eq!(c.cmd(&["EXPIRE", "profile:42", "100"]), ":1\r\n");
    assert_eq!(
        c.cmd(&["LETHE.ATTACH", "profile:42", "TAGS", "1", "user:42"]),
        ":1\r\n"
    );
    // The value and its deadline stay; the tag is there.
    assert_eq!(c.cmd(&["HGET", "profile:42", "name"]), bulk("Ada"));
    assert_eq!(c.cmd(&["TTL", "profile:42"]), ":100\r\n");
    assert_eq!(c.cmd(&["LETHE.TAGS", "profile:42"]), array(&["user:42"]));
    // A page (a plain string) depending on the hash goes with it.
    assert_eq!(c.cmd(&["SET", "page:42", "<h1>Ada</h1>"]), OK);
    assert_eq!(
        c.cmd(&[
            "LETHE.ATTACH",
            "page:42",
            "DEPENDS",
            "1",
            "profile:42",
            "EX",
            "50"
        ]),
        ":1\r\n"
    );
    assert_eq!(c.cmd(&["TTL", "page:42"]), ":50\r\n");
    // The page inherits its dependency's tag, so both count under it.
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]), ":2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "profile:42", "page:42"]), ":0\r\n");
    // Missing keys and bad options.
    assert_eq!(
        c.cmd(&["LETHE.ATTACH", "nosuch", "TAGS", "1", "t"]),
        ":0\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.ATTACH", "k", "VERSION", "3", "IFNEWER"]),
        "-ERR IFNEWER is not allowed in an attach\r\n"
    );
    assert_eq!(
        c.cmd(&["LETHE.ATTACH", "k", "TAGS", "1", "a::b"]),
        ":0\r\n",
        "a missing key is reported before the tag is checked"
    );
    assert_eq!(c.cmd(&["SET", "k", "v"]), OK);
    assert!(
        c.cmd(&["LETHE.ATTACH", "k", "TAGS", "1", "a::b"])
            .starts_with("-ERR")
    );
    // A version makes the key's version that one.
    assert_eq!(c.cmd(&["LETHE.ATTACH", "k", "VERSION", "9"]), ":1\r\n");
    assert_eq!(c.cmd(&["LETHE.VERSION", "k"]), ":9\r\n");
}

#[test]
fn attach_never_undoes_a_concurrent_write() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["SET", "n", "0"]), OK);
    let mut writer = lethe.client();
    let handle = std::thread::spawn(move || {
        for _ in 0..500 {
            assert!(writer.cmd(&["INCR", "n"]).starts_with(':'));
        }
    });
    for i in 0..200 {
        let tag = format!("t:{i}");
        let reply = c.cmd(&["LETHE.ATTACH", "n", "TAGS", "1", &tag]);
        assert!(
            reply == ":1\r\n" || reply.starts_with("-ERR attach gave up"),
            "{reply}"
        );
    }
    handle.join().unwrap();
    assert_eq!(c.cmd(&["GET", "n"]), bulk("500"));
}

#[test]
fn fence_refuses_older_versioned_writes_for_its_hold() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    set_ok(&mut c, &["row", "v5", "VERSION", "5"]);
    assert_eq!(c.cmd(&["LETHE.FENCE", "row", "7", "60000"]), OK);
    // The stored version is below the fence: gone now.
    assert_eq!(c.cmd(&["EXISTS", "row"]), ":0\r\n");
    let refused = c.cmd(&["LETHE.SET", "row", "v6", "VERSION", "6"]);
    assert!(
        refused.starts_with("-ERR write refused: below the version fence"),
        "{refused}"
    );
    set_ok(&mut c, &["row", "v7", "VERSION", "7"]);
    // Writes without a version are not judged.
    assert_eq!(c.cmd(&["SET", "other", "x"]), OK);
    assert_eq!(c.cmd(&["LETHE.FENCE", "other", "3", "60000"]), OK);
    assert_eq!(c.cmd(&["SET", "other", "y"]), OK);
    // A short fence lapses.
    assert_eq!(c.cmd(&["LETHE.FENCE", "brief", "9", "1"]), OK);
    std::thread::sleep(std::time::Duration::from_millis(20));
    set_ok(&mut c, &["brief", "old", "VERSION", "2"]);
    for bad in [
        &["LETHE.FENCE", "k", "x", "10"][..],
        &["LETHE.FENCE", "k", "1", "0"],
        &["LETHE.FENCE", "k", "1"],
    ] {
        assert!(c.cmd(bad).starts_with("-ERR"), "{bad:?}");
    }
}

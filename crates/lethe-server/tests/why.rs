//! `LETHE.WHY` over the wire: each kind of removal names its cause, what it matched and who
//! asked (the client, the rule, the change), in RESP2 and RESP3, and a cached key says what
//! keeps it.

mod common;

use common::{Client, Lethe};
use lethe::history::HistoryConfig;
use lethe_server::state::ServerState;
use std::sync::Arc;

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// `field` followed by the bulk string `value` (a map entry, or two items of RESP2's flat
/// array).
fn entry(field: &str, value: &str) -> String {
    format!("{}{}", bulk(field), bulk(value))
}

/// Lethe keeping a key history (the server keeps none by default).
fn with_history() -> Lethe {
    Lethe::start_over(Arc::new(ServerState::with_history(
        64 << 20,
        Some(HistoryConfig::default()),
    )))
}

fn client_id(c: &mut Client) -> String {
    let reply = c.cmd(&["CLIENT", "ID"]);
    reply.trim_start_matches(':').trim_end().to_owned()
}

#[test]
fn a_tag_invalidation_names_the_tag_and_the_invalidating_client_not_the_writer() {
    let lethe = with_history();
    let mut writer = lethe.client();
    let mut admin = lethe.client();
    let admin_id = client_id(&mut admin);
    let writer_id = client_id(&mut writer);
    assert_eq!(
        writer.cmd(&[
            "LETHE.SET",
            "u:42",
            "Ada",
            "TAGS",
            "1",
            "user:42:profile",
            "VERSION",
            "7"
        ]),
        "+OK\r\n"
    );
    assert_eq!(admin.cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]), ":1\r\n");
    // Hidden at once, reclaimed when asked about (before any write reaches its shard), by
    // the writer's connection, and still blamed on the admin.
    let why = writer.cmd(&["LETHE.WHY", "u:42"]);
    assert!(why.starts_with('*'), "RESP2 flattens the map: {why}");
    assert!(why.contains(&format!("{}:0\r\n", bulk("cached"))), "{why}");
    assert!(why.contains(&entry("event", "removed")), "{why}");
    assert!(why.contains(&entry("cause", "tag")), "{why}");
    assert!(why.contains(&entry("matched", "tag user:42")), "{why}");
    assert!(
        why.contains(&format!("id={admin_id} addr=127.0.0.1:")),
        "{why}"
    );
    // The write before it: its version, its tags and its writer.
    assert!(why.contains(&entry("event", "write")), "{why}");
    assert!(why.contains(&format!("{}:7\r\n", bulk("version"))), "{why}");
    assert!(why.contains(&format!("id={writer_id} addr=")), "{why}");
    // Newest first.
    assert!(
        why.find("removed").unwrap() < why.find(&bulk("write")).unwrap(),
        "{why}"
    );
}

#[test]
fn resp3_answers_with_maps_and_a_cached_key_says_what_keeps_it() {
    let lethe = with_history();
    let mut c = lethe.client();
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(c.cmd(&["SET", "dep", "d"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&[
            "LETHE.SET",
            "page",
            "<p>",
            "EX",
            "60",
            "TAGS",
            "1",
            "t:1",
            "DEPENDS",
            "1",
            "dep"
        ]),
        "+OK\r\n"
    );
    let why = c.cmd(&["LETHE.WHY", "page"]);
    assert!(why.starts_with("%8\r\n"), "{why}");
    assert!(why.contains(&format!("{}:1\r\n", bulk("cached"))), "{why}");
    assert!(
        why.contains(&format!("{}*1\r\n{}", bulk("tags"), bulk("t:1"))),
        "{why}"
    );
    assert!(
        why.contains(&format!("{}*1\r\n{}", bulk("dependencies"), bulk("dep"))),
        "{why}"
    );
    let ttl_at = why.find(&bulk("ttl_ms")).unwrap() + bulk("ttl_ms").len();
    let ttl: i64 = why[ttl_at + 1..]
        .split("\r\n")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59_000..=60_000).contains(&ttl), "{why}");

    // The dependency goes: the page's history names it.
    assert_eq!(c.cmd(&["DEL", "dep"]), ":1\r\n");
    let why = c.cmd(&["LETHE.WHY", "page"]);
    assert!(why.contains(&entry("cause", "dependency")), "{why}");
    assert!(why.contains(&entry("matched", "dependency dep")), "{why}");
    // A key never seen: not cached, no history.
    let none = c.cmd(&["LETHE.WHY", "never"]);
    assert!(
        none.contains(&format!("{}*0\r\n", bulk("history"))),
        "{none}"
    );
    assert_eq!(
        c.cmd(&["LETHE.WHY"]),
        "-ERR wrong number of arguments for 'lethe.why' command\r\n"
    );
}

#[test]
fn an_event_names_its_rule_and_change_and_patterns_name_what_they_matched() {
    let lethe = with_history();
    let mut c = lethe.client();
    let rules = r#"
[[rule]]
name = "user profile"
entity = "users"
operations = ["update"]
keys = ["user:{id}:profile"]
"#;
    assert_eq!(c.cmd(&["LETHE.RULES", "LOAD", rules]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "user:42:profile", "Ada"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LETHE.EVENT", "users", "update", "42"]), ":1\r\n");
    let why = c.cmd(&["LETHE.WHY", "user:42:profile"]);
    assert!(why.contains(&entry("cause", "explicit")), "{why}");
    assert!(why.contains(&entry("rule", "user profile")), "{why}");
    assert!(
        why.contains(&entry("change", "LETHE.EVENT users update 42")),
        "{why}"
    );

    assert_eq!(c.cmd(&["SET", "session:1", "s"]), "+OK\r\n");
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "PREFIX", "session:"]), ":1\r\n");
    let why = c.cmd(&["LETHE.WHY", "session:1"]);
    assert!(why.contains(&entry("cause", "pattern")), "{why}");
    assert!(
        why.contains(&entry("matched", "pattern session:*")),
        "{why}"
    );

    // Changes in place and overwrites are writes too.
    c.cmd(&["INCR", "n"]);
    c.cmd(&["INCR", "n"]);
    let why = c.cmd(&["LETHE.WHY", "n"]);
    assert!(why.contains(&entry("event", "modified")), "{why}");
    let info = c.cmd(&["INFO", "lethe"]);
    assert!(info.contains("lethe_history_keys:"), "{info}");
    assert!(!info.contains("lethe_history_keys:0\r\n"), "{info}");
}

#[test]
fn without_a_history_why_still_tells_the_state_and_says_history_is_off() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    let why = c.cmd(&["LETHE.WHY", "k"]);
    assert!(why.contains(&format!("{}:1\r\n", bulk("cached"))), "{why}");
    assert!(
        why.contains(&format!("{}:0\r\n", bulk("history_enabled"))),
        "{why}"
    );
    assert!(why.contains(&format!("{}*0\r\n", bulk("history"))), "{why}");
    let info = c.cmd(&["INFO", "lethe"]);
    assert!(info.contains("lethe_history_budget:0\r\n"), "{info}");
}

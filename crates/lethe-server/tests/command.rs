//! COMMAND over raw RESP: COUNT, INFO, DOCS, LIST and bare COMMAND, in Redis 7's shapes.

mod common;

use common::Lethe;

/// `COMMAND INFO get` exactly as Redis 7.0 sends it in RESP2.
const GET_INFO_RESP2: &str = "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n\
:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n\
+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\n\
index\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\n\
lastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n";

#[test]
fn info_of_get_matches_redis_byte_for_byte() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["COMMAND", "INFO", "get"]), GET_INFO_RESP2);
    assert_eq!(c.cmd(&["command", "info", "GET"]), GET_INFO_RESP2);
}

#[test]
fn unknown_names_give_nil_entries() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "nosuch", "nosuch|sub"]),
        "*2\r\n$-1\r\n$-1\r\n"
    );
    let both = c.cmd(&["COMMAND", "INFO", "nosuch", "get"]);
    assert!(
        both.starts_with("*2\r\n$-1\r\n*10\r\n$3\r\nget\r\n"),
        "{both}"
    );
    // DOCS leaves unknown names out.
    assert_eq!(c.cmd(&["COMMAND", "DOCS", "nosuch"]), "*0\r\n");
}

#[test]
fn resp3_uses_sets_and_maps() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    c.cmd(&["HELLO", "3"]);
    let set = c.cmd(&["COMMAND", "INFO", "set"]);
    assert!(
        set.starts_with(
            "*1\r\n*10\r\n$3\r\nset\r\n:-3\r\n~2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n\
             ~3\r\n+@write\r\n+@string\r\n+@slow\r\n~0\r\n~1\r\n%4\r\n$5\r\nnotes\r\n"
        ),
        "{set}"
    );
    assert!(set.ends_with("$5\r\nlimit\r\n:0\r\n~0\r\n"), "{set}");
    assert_eq!(
        c.cmd(&["COMMAND", "DOCS", "get"]),
        "%1\r\n$3\r\nget\r\n%4\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n\
         $5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n\
         $4\r\nO(1)\r\n"
    );
    assert_eq!(c.cmd(&["COMMAND", "INFO", "nosuch"]), "*1\r\n_\r\n");
}

#[test]
fn count_list_and_bare_command_agree() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let count: usize = c.cmd(&["COMMAND", "COUNT"])[1..].trim().parse().unwrap();
    let list = c.cmd(&["COMMAND", "LIST"]);
    assert!(list.starts_with(&format!("*{count}\r\n")), "{list}");
    for name in ["get", "auth", "command", "lethe.set", "lethe.stats"] {
        assert!(
            list.contains(&format!("\r\n{name}\r\n")),
            "LIST lacks {name}"
        );
    }
    let all = c.cmd(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{count}\r\n*10\r\n")));
    assert!(all.matches("*10\r\n").count() >= count);
    assert_eq!(c.cmd(&["COMMAND", "INFO"]), all);
}

#[test]
fn list_filters() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "ech*"]),
        "*1\r\n$4\r\necho\r\n"
    );
    let hash = c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hash"]);
    assert!(
        hash.contains("$4\r\nhset\r\n") && !hash.contains("\r\nget\r\n"),
        "{hash}"
    );
    let pubsub = c.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "pubsub"]);
    assert!(pubsub.contains("\r\npublish\r\n"), "{pubsub}");
    assert_eq!(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "MODULE", "m"]),
        "*0\r\n"
    );
    for bad in [
        &["COMMAND", "LIST", "FILTERBY"][..],
        &["COMMAND", "LIST", "FILTERBY", "X", "y"],
        &["COMMAND", "LIST", "X"],
    ] {
        assert_eq!(c.cmd(bad), "-ERR syntax error\r\n", "{bad:?}");
    }
}

#[test]
fn errors_have_redis_texts() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["COMMAND", "COUNT", "x"]),
        "-ERR wrong number of arguments for 'command|count' command\r\n"
    );
    assert_eq!(
        c.cmd(&["COMMAND", "FOO"]),
        "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"
    );
}

#[test]
fn subcommands_are_described() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "client|id"]),
        "*1\r\n*10\r\n$9\r\nclient|id\r\n:2\r\n*3\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n\
         :0\r\n:0\r\n*2\r\n+@slow\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n"
    );
    let config = c.cmd(&["COMMAND", "INFO", "config"]);
    assert!(config.contains("$10\r\nconfig|get\r\n"), "{config}");
    assert!(config.contains("$10\r\nconfig|set\r\n"), "{config}");
    let docs = c.cmd(&["COMMAND", "DOCS", "config"]);
    assert!(docs.contains("$11\r\nsubcommands\r\n"), "{docs}");
}

#[test]
fn lethe_commands_describe_themselves() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    let info = c.cmd(&["COMMAND", "INFO", "lethe.set"]);
    assert!(
        info.starts_with(
            "*1\r\n*10\r\n$9\r\nlethe.set\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n"
        ),
        "{info}"
    );
    let docs = c.cmd(&["COMMAND", "DOCS", "lethe.invalidate"]);
    assert!(docs.contains("$5\r\ngroup\r\n$6\r\nmodule\r\n"), "{docs}");
    // No fixed key positions: keys follow a keyword.
    let inv = c.cmd(&["COMMAND", "INFO", "lethe.invalidate"]);
    assert!(inv.contains(":0\r\n:0\r\n:0\r\n"), "{inv}");
}

//! CLIENT, CONFIG and INFO on Lethe alone: the replies that name addresses, ids and counters,
//! which differ from a real Redis's and are checked for shape.

mod common;

use common::Lethe;
use std::time::{Duration, Instant};

fn bulk_text(reply: &str) -> &str {
    let body = reply.split_once("\r\n").expect("a bulk reply").1;
    body.strip_suffix("\r\n").unwrap_or(body)
}

#[test]
fn client_list_info_and_names() {
    let lethe = Lethe::start();
    let (mut a, mut b) = (lethe.client(), lethe.client());
    let id_a = a.cmd(&["CLIENT", "ID"]);
    let id_b = b.cmd(&["CLIENT", "ID"]);
    assert!(id_a.starts_with(':') && id_a != id_b, "{id_a} {id_b}");
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), "+OK\r\n");
    assert!(b.cmd(&["SUBSCRIBE", "c"]).ends_with(":1\r\n"));

    let list = a.cmd(&["CLIENT", "LIST"]);
    let lines: Vec<&str> = bulk_text(&list).lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let a_id = id_a.trim_start_matches(':').trim();
    let mine = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={a_id} ")))
        .expect("the caller is listed");
    for field in [
        "name=alpha",
        "flags=N",
        "db=0",
        "sub=0",
        "multi=-1",
        "cmd=client|list",
        "user=default",
        "resp=2",
    ] {
        assert!(mine.split(' ').any(|f| f == field), "{field} in {mine}");
    }
    assert!(mine.contains(" addr=127.0.0.1:") && mine.contains(" laddr=127.0.0.1:"));
    let other = lines
        .iter()
        .find(|l| !l.starts_with(&format!("id={a_id} ")));
    let other = other.expect("the subscriber is listed");
    assert!(
        other.contains(" flags=P ") && other.contains(" sub=1 "),
        "{other}"
    );

    let pubsub = a.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(bulk_text(&pubsub).lines().count(), 1, "{pubsub}");
    let info = a.cmd(&["CLIENT", "INFO"]);
    assert!(
        bulk_text(&info).starts_with(&format!("id={a_id} ")),
        "{info}"
    );
    assert!(bulk_text(&info).contains(" cmd=client|info "), "{info}");
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), "$5\r\nalpha\r\n");

    // RESP3 answers with verbatim text.
    assert!(a.cmd(&["HELLO", "3"]).starts_with("%7"));
    assert!(a.cmd(&["CLIENT", "INFO"]).starts_with('='));
}

#[test]
fn client_kill_closes_the_other_connection() {
    let lethe = Lethe::start();
    let (mut killer, mut victim, mut bystander) = (lethe.client(), lethe.client(), lethe.client());
    let id = victim.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim().to_string();
    assert_eq!(killer.cmd(&["CLIENT", "KILL", "ID", &id]), ":1\r\n");
    assert!(victim.is_closed());
    assert_eq!(bystander.cmd(&["PING"]), "+PONG\r\n");
    // The killed client leaves the list.
    let deadline = Instant::now() + Duration::from_secs(5);
    while bulk_text(&killer.cmd(&["CLIENT", "LIST"])).lines().count() != 2 {
        assert!(Instant::now() < deadline, "killed client still listed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The old form by address, and killing oneself: the reply still arrives, then the close.
    let list = bystander.cmd(&["CLIENT", "INFO"]);
    let addr = bulk_text(&list)
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_string();
    assert_eq!(bystander.cmd(&["CLIENT", "KILL", &addr]), "+OK\r\n");
    assert!(bystander.is_closed());
    assert_eq!(
        killer.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]),
        ":1\r\n"
    );
    assert!(killer.is_closed());
}

#[test]
fn info_sections_and_config_get() {
    let lethe = Lethe::start();
    let mut c = lethe.client();
    assert_eq!(c.cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "b", "1", "EX", "1000"]), "+OK\r\n");
    let info = c.cmd(&["INFO"]);
    let text = bulk_text(&info);
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Stats",
            "# Cluster",
            "# Keyspace",
            "# Lethe"
        ]
    );
    assert!(text.contains("redis_version:7.4.0\r\n"), "{text}");
    assert!(text.contains(&format!("tcp_port:{}\r\n", lethe.port)));
    assert!(text.contains("connected_clients:1\r\n"));
    let db0 = text.lines().find(|l| l.starts_with("db0:")).unwrap();
    assert!(db0.starts_with("db0:keys=2,expires=1,avg_ttl="), "{db0}");
    let ttl: u64 = db0.rsplit('=').next().unwrap().parse().unwrap();
    assert!(ttl > 990_000 && ttl <= 1_000_000, "{db0}");
    assert!(text.contains("lethe_entries:2\r\n"));

    let keyspace = c.cmd(&["INFO", "KEYSPACE"]);
    assert!(bulk_text(&keyspace).starts_with("# Keyspace\r\ndb0:keys=2,"));
    let two = c.cmd(&["INFO", "server", "lethe"]);
    let headers: Vec<&str> = bulk_text(&two)
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect();
    assert_eq!(headers, ["# Server", "# Lethe"]);

    let port = lethe.port.to_string();
    let want = format!("*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len());
    assert_eq!(c.cmd(&["CONFIG", "GET", "port"]), want);
    let max = c.cmd(&["CONFIG", "GET", "max*"]);
    assert!(max.starts_with("*4\r\n$9\r\nmaxmemory\r\n"), "{max}");
    assert!(
        max.contains("$10\r\nmaxclients\r\n$5\r\n10000\r\n"),
        "{max}"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - can't set \
         immutable config\r\n"
    );
}

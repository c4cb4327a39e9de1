//! `lethe cluster create|status|move` against a nats-server of the test's own.

use lethe_bus::testing::NatsServer;
use lethe_cluster::{ClusterConfig, ClusterStore, Heartbeat};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lethe");

fn lethe(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("LETHE_BUS")
        .env_remove("LETHE_LOG")
        .output()
        .expect("run the lethe binary")
}

fn ok(args: &[&str]) -> String {
    let out = lethe(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = lethe(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn line<'a>(report: &'a str, node: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(node))
        .unwrap_or_else(|| panic!("no line for {node} in:\n{report}"))
}

#[test]
fn create_status_and_move() {
    let nats = NatsServer::start();
    let url = nats.url();
    let bus = url.as_str();

    let err = fails(&["cluster", "status", "--bus", bus]);
    assert!(err.contains("no slot map"), "{err}");

    let nodes = "127.0.0.1:7000,127.0.0.1:7001,c=127.0.0.1:7002";
    let created = ok(&["cluster", "create", "--bus", bus, "--nodes", nodes]);
    assert!(line(&created, "node-7000").contains("0-5461"), "{created}");
    assert!(
        line(&created, "node-7001").contains("5462-10922"),
        "{created}"
    );
    assert!(line(&created, "c").contains("10923-16383"), "{created}");

    let err = fails(&["cluster", "create", "--bus", bus, "--nodes", nodes]);
    assert!(
        err.contains("exists already") && err.contains("--force"),
        "{err}"
    );

    // One node heartbeats; the others are reported dead.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(ClusterStore::connect(bus, ClusterConfig::default()))
        .unwrap();
    rt.block_on(store.beat("node-7000", &Heartbeat::now("127.0.0.1", 7000)))
        .unwrap();
    let status = ok(&["cluster", "status", "--bus", bus]);
    assert!(status.contains("16384 of 16384 slots assigned"), "{status}");
    assert!(status.contains("3 nodes"), "{status}");
    let epoch_before = rt.block_on(store.load()).unwrap().unwrap().0.epoch();
    assert!(
        status.starts_with(&format!("epoch {epoch_before},")),
        "{status}"
    );
    let a = line(&status, "node-7000");
    assert!(
        a.contains("127.0.0.1:7000") && a.contains("live") && a.contains("5462 slots"),
        "{a}"
    );
    let c = line(&status, "c");
    assert!(c.contains("dead") && c.contains("5461 slots"), "{c}");

    let moved = ok(&["cluster", "move", "0-100,200", "--to", "c", "--bus", bus]);
    assert!(moved.contains("moved 102 of 102 slots to c"), "{moved}");
    assert!(moved.contains("no live heartbeat"), "c is dead: {moved}");
    let (map, _) = rt.block_on(store.load()).unwrap().unwrap();
    assert!(map.epoch() > epoch_before);
    assert!((0..=100).chain([200]).all(|s| map.serves("c", s)));
    assert!(map.serves("node-7000", 101));
    let status = ok(&["cluster", "status", "--bus", bus]);
    assert!(
        line(&status, "c").contains("0-100,200,10923-16383"),
        "{status}"
    );
    assert!(
        line(&status, "node-7000").contains("101-199,201-5461"),
        "{status}"
    );

    let err = fails(&["cluster", "move", "5", "--to", "nobody", "--bus", bus]);
    assert_eq!(
        err.trim(),
        "lethe cluster: no node called \"nobody\" in the cluster",
        "one plain line, no log chatter"
    );
    let err = fails(&["cluster", "move", "16384", "--to", "c", "--bus", bus]);
    assert!(err.contains("0 to 16383"), "{err}");

    // A node serving slots cannot be forgotten; once emptied it can.
    let err = fails(&["cluster", "forget", "node-7001", "--bus", bus]);
    assert!(err.contains("move them to other nodes first"), "{err}");
    ok(&["cluster", "move", "5462-10922", "--to", "c", "--bus", bus]);
    let forgot = ok(&["cluster", "forget", "node-7001", "--bus", bus]);
    assert!(forgot.contains("removed node-7001"), "{forgot}");
    let status = ok(&["cluster", "status", "--bus", bus]);
    assert!(
        status.contains("2 nodes") && !status.contains("node-7001"),
        "{status}"
    );
    assert!(
        line(&status, "c").contains("0-100,200,5462-16383"),
        "{status}"
    );

    // --force replaces the map, its epoch past the old one.
    let replaced = ok(&[
        "cluster",
        "create",
        "--bus",
        bus,
        "--nodes",
        "x=127.0.0.1:8000",
        "--force",
        "--heartbeat-ttl",
        "3",
    ]);
    assert!(line(&replaced, "x").contains("0-16383"), "{replaced}");
    assert!(replaced.contains("heartbeat TTL 3s"), "{replaced}");
    let (map, _) = rt.block_on(store.load()).unwrap().unwrap();
    assert!(map.epoch() > epoch_before + 1);
    assert_eq!(map.nodes().len(), 1);
}

#[test]
fn bad_input_and_unreachable_nats_are_clear_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bus = format!("nats://127.0.0.1:{port}");
    let err = fails(&["cluster", "status", "--bus", &bus]);
    assert!(err.contains("cannot reach NATS"), "{err}");
    let err = fails(&["cluster", "create", "--bus", &bus, "--nodes", "h:1,h2:1"]);
    assert!(err.contains("appears twice"), "{err}");
    let err = fails(&["cluster", "create", "--bus", &bus, "--nodes", "nohostport"]);
    assert!(err.contains("HOST:PORT"), "{err}");
    let err = fails(&["cluster", "move", "9-1", "--to", "a", "--bus", &bus]);
    assert!(err.contains("first slot is after the last"), "{err}");
    let help = ok(&["cluster", "--help"]);
    for word in ["create", "status", "move", "forget"] {
        assert!(help.contains(word), "{help}");
    }
}

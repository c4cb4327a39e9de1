//! Servers as members of the invalidation bus, with a nats-server the test starts: an
//! invalidation of each kind issued on one node disappears on every node and in an embedded
//! cache on the same stream; a tracking client on another node gets the push; INFO reports it.

mod common;

use common::{Client, Lethe};
use lethe_bus::testing::NatsServer;
use lethe_bus::{BusConfig, attach};
use lethe_server::state::ServerState;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == ":1\r\n"
}

#[test]
fn invalidations_on_one_node_reach_every_node_and_embedded_cache() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nats = NatsServer::start();
    let nodes: Vec<(Arc<ServerState>, Lethe)> = (1..=3)
        .map(|i| {
            let db = Arc::new(ServerState::new(64 << 20));
            rt.block_on(lethe_server::bus::join(
                &db,
                BusConfig::new(nats.url(), format!("node-{i}")),
            ))
            .expect("joins the bus");
            let server = Lethe::start_over(db.clone());
            (db, server)
        })
        .collect();
    let near: lethe::Cache<String, String> = lethe::Cache::builder()
        .max_capacity(1000)
        .index_keys()
        .build();
    let attached = rt
        .block_on(attach(&near, BusConfig::new(nats.url(), "app-1")))
        .expect("the embedded cache joins");
    let mut clients: Vec<Client> = nodes.iter().map(|(_, s)| s.client()).collect();

    // Node 3 has a client caching a tagged key.
    let mut tracker = nodes[2].1.client();
    assert!(tracker.cmd(&["HELLO", "3"]).starts_with("%7"));
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");

    for c in clients.iter_mut() {
        for (k, tag) in [("profile:42", "user:42"), ("orders:42", "user:42")] {
            assert_eq!(c.cmd(&["LETHE.SET", k, "v", "TAGS", "1", tag]), "+OK\r\n");
        }
        for k in ["k1", "session:1", "session:2", "page:1:x", "other"] {
            assert_eq!(c.cmd(&["SET", k, "v"]), "+OK\r\n");
        }
    }
    near.insert_with_options(
        "profile:42".into(),
        "v".into(),
        &lethe::InsertOptions::new().tag("user:42"),
    );
    for k in ["k1", "session:1", "page:1:x", "other"] {
        near.insert(k.into(), "v".into());
    }
    tracker.cmd(&["GET", "profile:42"]);

    assert_eq!(
        clients[0].cmd(&["LETHE.INVALIDATE", "TAG", "user:42"]),
        ":2\r\n"
    );
    assert_eq!(clients[1].cmd(&["LETHE.INVALIDATE", "KEY", "k1"]), ":1\r\n");
    assert_eq!(
        clients[2].cmd(&["LETHE.INVALIDATE", "PREFIX", "session:"]),
        ":2\r\n"
    );
    attached.invalidate_glob(b"page:*:x");

    for (i, c) in clients.iter_mut().enumerate() {
        eventually(&format!("node {} applies everything", i + 1), || {
            [
                "profile:42",
                "orders:42",
                "k1",
                "session:1",
                "session:2",
                "page:1:x",
            ]
            .iter()
            .all(|k| !exists(c, k))
        });
        assert!(
            exists(c, "other"),
            "node {} lost a key nobody invalidated",
            i + 1
        );
    }
    eventually("the embedded cache applies everything", || {
        ["profile:42", "k1", "session:1", "page:1:x"]
            .iter()
            .all(|k| !near.contains(*k))
    });
    assert!(near.contains("other"));

    // The tracking client on node 3 was told about the tag invalidated on node 1.
    tracker.send(&common::encode(&["PING"]));
    let push = String::from_utf8_lossy(&tracker.read_reply()).into_owned();
    assert_eq!(
        push,
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$10\r\nprofile:42\r\n"
    );

    let info = clients[1].cmd(&["INFO", "bus"]);
    for field in ["bus_node_id:node-2", "bus_connected:1", "bus_flushes_gap:0"] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    let applied: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("bus_applied_messages:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(applied >= 3, "node 2 applied {applied} messages: {info}");
    drop(attached);
    for (_, s) in nodes {
        s.shutdown();
    }
}

/// `lethe cdc --target nats://..` publishes each committed transaction once; two server nodes
/// and an embedded cache apply it; killed and restarted, it resumes from its slot and every
/// change committed meanwhile reaches every member.
#[test]
fn lethe_cdc_into_the_bus_reaches_every_member_across_a_restart() {
    use lethe_cdc::testing::PgCluster;
    use std::process::{Command, Stdio};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let nats = NatsServer::start();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO items SELECT g, 0 FROM generate_series(0, 99) g;",
    ))
    .unwrap();
    let nodes: Vec<(Arc<ServerState>, Lethe)> = (1..=2)
        .map(|i| {
            let db = Arc::new(ServerState::new(64 << 20));
            rt.block_on(lethe_server::bus::join(
                &db,
                BusConfig::new(nats.url(), format!("node-{i}")),
            ))
            .expect("joins the bus");
            let server = Lethe::start_over(db.clone());
            (db, server)
        })
        .collect();
    let near: lethe::Cache<String, String> = lethe::Cache::builder().max_capacity(1000).build();
    let _attached = rt
        .block_on(attach(&near, BusConfig::new(nats.url(), "app-1")))
        .expect("the embedded cache joins");
    let mut clients: Vec<Client> = nodes.iter().map(|(_, s)| s.client()).collect();

    let dir = std::env::temp_dir().join(format!("lethe-bus-cdc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("cdc.toml");
    std::fs::write(
        &config,
        format!(
            "connection = \"{}\"\nslot = \"lethe_bus\"\npublication = \"lethe_bus\"\n\
             [[table]]\ntable = \"items\"\nkeys = [\"item:{{id}}\"]\n",
            pg.connection_string()
        ),
    )
    .unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["cdc", "--config"])
            .arg(&config)
            .args(["--target", &nats.url(), "--node-id", "cdc-1"])
            .env("LETHE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lethe cdc")
    };
    let cache_everywhere = |clients: &mut Vec<Client>, key: &str| {
        for c in clients.iter_mut() {
            c.cmd(&["SET", key, "cached"]);
        }
        near.insert(key.into(), "cached".into());
    };
    let gone_everywhere = |clients: &mut Vec<Client>, key: &str| {
        clients.iter_mut().all(|c| !exists(c, key)) && !near.contains(key)
    };

    let mut process = start();
    // A new slot flushes every member once; cache only once a change goes through.
    eventually("the first change applied everywhere", || {
        cache_everywhere(&mut clients, "item:0");
        rt.block_on(sql.execute("UPDATE items SET v = v + 1 WHERE id = 0", &[]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        gone_everywhere(&mut clients, "item:0")
    });
    cache_everywhere(&mut clients, "unrelated");

    process.kill().unwrap();
    process.wait().unwrap();
    for id in 1..=50 {
        cache_everywhere(&mut clients, &format!("item:{id}"));
    }
    for id in 1..=50 {
        rt.block_on(sql.execute("UPDATE items SET v = v + 1 WHERE id = $1", &[&id]))
            .unwrap();
    }
    let mut process = start();
    eventually("changes committed while down applied everywhere", || {
        (1..=50).all(|id| gone_everywhere(&mut clients, &format!("item:{id}")))
    });
    // The slot was there: no flush, so unrelated keys stayed on every member.
    assert!(clients.iter_mut().all(|c| exists(c, "unrelated")));
    assert!(near.contains("unrelated"));
    process.kill().unwrap();
    process.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for (_, s) in nodes {
        s.shutdown();
    }
}

fn info_field(c: &mut Client, field: &str) -> u64 {
    let info = c.cmd(&["INFO", "bus"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

/// `lethe serve --bus` as a process: killed without warning and started again, it starts
/// empty, joins at the stream's tail (nothing replayed, nothing flushed) and applies what
/// comes next.
#[test]
fn a_node_killed_and_restarted_joins_at_the_tail() {
    use std::process::{Command, Stdio};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nats = NatsServer::start();
    let origin = Arc::new(ServerState::new(64 << 20));
    rt.block_on(lethe_server::bus::join(
        &origin,
        BusConfig::new(nats.url(), "origin"),
    ))
    .unwrap();
    let origin_server = Lethe::start_over(origin);
    let mut o = origin_server.client();
    let start = || {
        let (child, listening) = common::spawn_listening(
            Command::new(env!("CARGO_BIN_EXE_lethe"))
                .args(["serve", "--port", "0", "--bus", &nats.url()])
                .args(["--node-id", "node-2"])
                .env("LETHE_LOG", "warn")
                .stderr(Stdio::null()),
            false,
        );
        (child, Client::connect(listening.port))
    };
    let (mut node, mut c) = start();
    c.cmd(&["SET", "a", "1"]);
    assert_eq!(o.cmd(&["LETHE.INVALIDATE", "KEY", "a"]), ":0\r\n");
    eventually("node 2 applies", || !exists(&mut c, "a"));
    node.kill().unwrap();
    node.wait().unwrap();
    for i in 0..20 {
        o.cmd(&["LETHE.INVALIDATE", "KEY", &format!("missed:{i}")]);
    }
    eventually("the origin published everything", || {
        info_field(&mut o, "bus_published_items") >= 21
    });
    let in_stream = info_field(&mut o, "bus_published_messages");
    let (mut node, mut c) = start();
    assert_eq!(
        c.cmd(&["DBSIZE"]),
        ":0\r\n",
        "a restarted node starts empty"
    );
    // It joined at the tail: the messages before it are neither replayed nor a gap.
    assert_eq!(info_field(&mut c, "bus_applied_messages"), 0);
    assert_eq!(info_field(&mut c, "bus_applied_seq"), in_stream);
    c.cmd(&["SET", "b", "1"]);
    o.cmd(&["LETHE.INVALIDATE", "KEY", "b"]);
    eventually("the restarted node applies", || !exists(&mut c, "b"));
    assert_eq!(info_field(&mut c, "bus_applied_messages"), 1);
    for reason in [
        "gap",
        "stream_recreated",
        "consumer_lost",
        "unreadable",
        "partition",
    ] {
        assert_eq!(info_field(&mut c, &format!("bus_flushes_{reason}")), 0);
    }
    node.kill().unwrap();
    node.wait().unwrap();
    origin_server.shutdown();
}

/// With `publish-writes`, a plain write or delete on one node drops the other nodes' copies of
/// the key (in the same database); without it, plain writes stay local.
#[test]
fn publish_writes_drops_copies_on_other_nodes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nats = NatsServer::start();
    let nodes: Vec<(Arc<ServerState>, Lethe)> = (1..=2)
        .map(|i| {
            let db = Arc::new(ServerState::new(64 << 20));
            rt.block_on(lethe_server::bus::join_with(
                &db,
                BusConfig::new(nats.url(), format!("node-{i}")),
                i == 1,
            ))
            .expect("joins the bus");
            let server = Lethe::start_over(db.clone());
            (db, server)
        })
        .collect();
    let (mut one, mut two) = (nodes[0].1.client(), nodes[1].1.client());
    for c in [&mut one, &mut two] {
        for k in ["a", "b", "h"] {
            c.cmd(&["SET", k, "v"]);
        }
        c.cmd(&["SELECT", "3"]);
        c.cmd(&["SET", "a", "v"]);
        c.cmd(&["SELECT", "0"]);
    }
    // Node 1 publishes its writes: node 2's copies go, in database 0 only.
    one.cmd(&["SET", "a", "new"]);
    one.cmd(&["DEL", "b"]);
    eventually("node 2 drops the written keys", || {
        !exists(&mut two, "a") && !exists(&mut two, "b")
    });
    assert!(exists(&mut two, "h"));
    two.cmd(&["SELECT", "3"]);
    assert!(exists(&mut two, "a"), "another database's key went");
    two.cmd(&["SELECT", "0"]);
    assert!(one.cmd(&["INFO", "bus"]).contains("bus_publish_writes:1"));
    // Node 2 does not publish its writes.
    two.cmd(&["SET", "h", "new"]);
    one.cmd(&["LETHE.INVALIDATE", "KEY", "marker"]);
    two.cmd(&["SET", "marker", "v"]);
    two.cmd(&["LETHE.INVALIDATE", "KEY", "marker"]);
    eventually("node 1 applied node 2's later message", || {
        let info = one.cmd(&["INFO", "bus"]);
        info.contains("bus_applied_messages:1")
    });
    assert!(
        exists(&mut one, "h"),
        "a plain write of node 2 was published"
    );
    for (_, s) in nodes {
        s.shutdown();
    }
}

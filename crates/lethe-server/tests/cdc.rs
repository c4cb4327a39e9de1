//! Change capture into the server, against a real PostgreSQL the test starts itself: into the
//! server's own keyspace (`lethe serve --cdc`), and as the separate `lethe cdc` process applying
//! over RESP, killed mid-stream and restarted.

mod common;

use common::Client;
use lethe_cdc::CdcConfig;
use lethe_cdc::testing::PgCluster;
use lethe_server::state::ServerState;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms for up to 20 s.
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
fn committed_changes_leave_the_servers_keyspace_and_reach_tracking_clients() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE products (id int PRIMARY KEY, category_id int NOT NULL, name text);
         ALTER TABLE products REPLICA IDENTITY FULL;
         INSERT INTO products VALUES (1, 5, 'lamp'), (2, 5, 'desk');",
    ))
    .unwrap();
    let config = CdcConfig::from_toml(&format!(
        "connection = \"{}\"\n\
         [[table]]\ntable = \"products\"\nkeys = [\"product:{{id}}\"]\n\
         tags = [\"category:{{old.category_id}}\", \"category:{{new.category_id}}\"]\n",
        pg.connection_string()
    ))
    .unwrap();

    let db = Arc::new(ServerState::new(64 << 20));
    let cdc = rt
        .block_on(lethe_server::cdc::prepare(&db, config))
        .expect("the rules match the table");
    let (stop_cdc, cdc_stopped) = tokio::sync::oneshot::channel::<()>();
    let capture = rt.spawn(lethe_server::cdc::run(cdc, db.clone(), async {
        let _ = cdc_stopped.await;
    }));
    let server = common::Lethe::start_over(db.clone());
    let port = server.port;

    let mut c = Client::connect(port);
    // A new slot flushes the keyspace once (what was cached before it is not covered); store
    // only once change capture streams.
    eventually("change capture streaming", || {
        c.cmd(&["INFO", "cdc"]).contains("cdc_connected:1")
    });
    let mut tracker = Client::connect(port);
    assert!(tracker.cmd(&["HELLO", "3"]).starts_with("%7"));
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    for (key, tag) in [
        ("product:1", "category:5"),
        ("product:2", "category:5"),
        ("listing:5", "category:5"),
        ("listing:6", "category:6"),
        ("listing:7", "category:7"),
    ] {
        assert_eq!(c.cmd(&["LETHE.SET", key, "v", "TAGS", "1", tag]), "+OK\r\n");
    }
    c.cmd(&["SET", "home", "v"]);
    tracker.cmd(&["GET", "listing:6"]);

    // Moving product 1 from category 5 to 6: its key and both categories go.
    rt.block_on(sql.execute("UPDATE products SET category_id = 6 WHERE id = 1", &[]))
        .unwrap();
    eventually("product 1's move applied", || !exists(&mut c, "listing:6"));
    for gone in ["product:1", "product:2", "listing:5", "listing:6"] {
        assert!(!exists(&mut c, gone), "{gone} should be gone");
    }
    assert!(exists(&mut c, "listing:7"));
    assert!(exists(&mut c, "home"));
    // The client caching listing:6 was told.
    tracker.send(&common::encode(&["PING"]));
    assert_eq!(
        String::from_utf8_lossy(&tracker.read_reply()),
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$9\r\nlisting:6\r\n"
    );
    assert_eq!(tracker.read_reply(), b"+PONG\r\n");

    // An explicit invalidation inside a transaction: nothing on rollback, applied on commit.
    let emit = "SELECT pg_logical_emit_message(true, 'lethe', '{\"keys\":[\"home\"]}')";
    rt.block_on(sql.batch_execute(&format!("BEGIN; {emit}; ROLLBACK;")))
        .unwrap();
    rt.block_on(sql.execute("UPDATE products SET name = 'x' WHERE id = 2", &[]))
        .unwrap();
    c.cmd(&["SET", "product:2", "again"]);
    rt.block_on(sql.execute("UPDATE products SET name = 'y' WHERE id = 2", &[]))
        .unwrap();
    eventually("the later update applied", || !exists(&mut c, "product:2"));
    assert!(
        exists(&mut c, "home"),
        "a rolled-back message must not apply"
    );
    rt.block_on(sql.batch_execute(&format!("BEGIN; {emit}; COMMIT;")))
        .unwrap();
    eventually("the committed message applied", || !exists(&mut c, "home"));

    // INFO reports change capture.
    let info = c.cmd(&["INFO", "cdc"]);
    assert!(info.contains("cdc_connected:1"), "{info}");
    let transactions: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("cdc_transactions:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(transactions >= 4, "{info}");
    assert!(info.contains("cdc_flushes_slot_missing:0"), "{info}");

    server.shutdown();
    let _ = stop_cdc.send(());
    rt.block_on(capture).unwrap().unwrap();
}

fn write_config(dir: &std::path::Path, pg: &PgCluster, table_rule: &str) -> std::path::PathBuf {
    let path = dir.join("cdc.toml");
    std::fs::write(
        &path,
        format!(
            "[cdc]\nconnection = \"{}\"\nslot = \"lethe_process\"\npublication = \"lethe_process\"\n{table_rule}",
            pg.connection_string()
        ),
    )
    .unwrap();
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lethe-cdc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lethe_cdc_process_killed_mid_stream_resumes_from_the_slot_and_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO items SELECT g, 0 FROM generate_series(0, 99) g;",
    ))
    .unwrap();
    let lethe = common::Lethe::start();
    let mut c = lethe.client();
    let dir = temp_dir("process");
    let config = write_config(
        &dir,
        &pg,
        "[[cdc.table]]\ntable = \"items\"\nkeys = [\"item:{id}\"]\n",
    );
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["cdc", "--config"])
            .arg(&config)
            .args(["--target", &format!("redis://127.0.0.1:{}", lethe.port)])
            .env("LETHE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lethe cdc")
    };
    let mut process = start();
    // Running: a change goes through.
    // (A new slot flushes the keyspace once, so the first key is stored until it stays.)
    eventually("the first change applied", || {
        c.cmd(&["SET", "item:0", "cached"]);
        rt.block_on(sql.execute("UPDATE items SET v = v + 1 WHERE id = 0", &[]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        !exists(&mut c, "item:0")
    });
    c.cmd(&["SET", "unrelated", "cached"]);

    // Killed without warning (no chance to confirm anything more), then changes commit.
    process.kill().unwrap();
    process.wait().unwrap();
    for id in 1..=50 {
        c.cmd(&["SET", &format!("item:{id}"), "cached"]);
    }
    for id in 1..=50 {
        rt.block_on(sql.execute("UPDATE items SET v = v + 1 WHERE id = $1", &[&id]))
            .unwrap();
    }
    assert!(
        exists(&mut c, "item:50"),
        "nobody applied changes while down"
    );

    // Restarted: it resumes from the slot and applies every change committed meanwhile.
    let mut process = start();
    eventually("changes committed while down applied", || {
        (1..=50).all(|id| !exists(&mut c, &format!("item:{id}")))
    });
    // The slot was there: no flush, so unrelated keys stayed.
    assert!(exists(&mut c, "unrelated"));
    process.kill().unwrap();
    process.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_to_start_when_a_rule_names_a_missing_column() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute("CREATE TABLE items (id int PRIMARY KEY, v int);"))
        .unwrap();
    let dir = temp_dir("badrule");
    let config = write_config(
        &dir,
        &pg,
        "[[cdc.table]]\ntable = \"items\"\nkeys = [\"item:{new.colour}\"]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--port", "0", "--cdc"])
        .arg(&config)
        .output()
        .expect("run lethe serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("colour"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it must not listen"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trigger_mode_installs_triggers_and_listens_through_the_binary() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO items VALUES (1, 0), (2, 0);",
    ))
    .unwrap();
    let lethe = common::Lethe::start();
    let mut c = lethe.client();
    let dir = temp_dir("triggers");
    let config = write_config(
        &dir,
        &pg,
        "[[cdc.table]]\ntable = \"items\"\nkeys = [\"item:{id}\"]\n",
    );
    let lethe_bin = env!("CARGO_BIN_EXE_lethe");
    let printed = Command::new(lethe_bin)
        .args(["cdc", "install-triggers", "--print", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert!(String::from_utf8_lossy(&printed.stdout).contains("CREATE TRIGGER"));
    let installed = Command::new(lethe_bin)
        .args(["cdc", "install-triggers", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let mut listener = Command::new(lethe_bin)
        .args(["cdc", "--mode", "triggers", "--config"])
        .arg(&config)
        .args(["--target", &format!("redis://127.0.0.1:{}", lethe.port)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The listener flushes once it listens (notifications sent before are unknown): store the
    // key until a change removes it.
    eventually("trigger-mode change applied", || {
        c.cmd(&["SET", "item:1", "cached"]);
        rt.block_on(sql.execute("UPDATE items SET v = v + 1 WHERE id = 1", &[]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        !exists(&mut c, "item:1")
    });
    c.cmd(&["SET", "item:2", "cached"]);
    c.cmd(&["SET", "other", "cached"]);
    rt.block_on(sql.execute("DELETE FROM items WHERE id = 2", &[]))
        .unwrap();
    eventually("the delete applied", || !exists(&mut c, "item:2"));
    assert!(exists(&mut c, "other"));
    listener.kill().unwrap();
    listener.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cdc_section_in_the_server_configuration_is_used() {
    // A port nothing listens on: the server must try it (and refuse to start), which shows the
    // section was read.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("section");
    let path = dir.join("lethe.toml");
    std::fs::write(
        &path,
        format!(
            "port = 0\n[cdc]\nconnection = \"host=127.0.0.1 port={closed} user=postgres \
             dbname=postgres connect_timeout=2\"\n[[cdc.table]]\ntable = \"items\"\n\
             keys = [\"item:{{id}}\"]\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lethe_cdc_process_sends_version_fences_to_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL);
         INSERT INTO items VALUES (1, 1);",
    ))
    .unwrap();
    let lethe = common::Lethe::start();
    let mut c = lethe.client();
    let dir = temp_dir("fences");
    let config = write_config(
        &dir,
        &pg,
        "[[cdc.table]]\ntable = \"items\"\nkeys = [\"item:{id}\"]\nversion = \"version\"\n",
    );
    let mut process = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["cdc", "--config"])
        .arg(&config)
        .args(["--target", &format!("redis://127.0.0.1:{}", lethe.port)])
        .env("LETHE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lethe cdc");
    // Each round commits a newer version; once one is applied, a fill of the version read
    // before it is refused by the fence that came with the invalidation.
    let mut version = 1;
    eventually("a fence applied", || {
        version += 1;
        rt.block_on(sql.execute("UPDATE items SET version = $1 WHERE id = 1", &[&version]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let old = (version - 1).to_string();
        let reply = c.cmd(&["LETHE.SET", "item:1", "old", "VERSION", &old]);
        reply.starts_with("-ERR write refused: below the version fence")
    });
    let current = version.to_string();
    assert_eq!(
        c.cmd(&["LETHE.SET", "item:1", "new", "VERSION", &current]),
        "+OK\r\n"
    );
    process.kill().unwrap();
    process.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

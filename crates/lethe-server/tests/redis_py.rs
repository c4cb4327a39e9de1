//! redis-py, the Python client, works against Lethe unchanged (RESP2 and RESP3): the script in
//! `tests/py/` drives an in-process server. `scripts/test-all` installs redis-py.

mod common;

use std::process::Command;

#[test]
fn redis_py_works_unchanged() {
    let lethe = common::Lethe::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/redis_py_smoke.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(lethe.port.to_string())
        .output()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    assert!(
        out.status.success(),
        "redis-py smoke failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The classic Redis tag pattern (SETEX + SADD tag:x, later SMEMBERS + DEL), sets, lists and a
/// blocking pop, driven by redis-py exactly as applications write them against Redis.
#[test]
fn redis_py_tag_pattern_and_collections_work_unchanged() {
    let lethe = common::Lethe::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/redis_py_collections.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(lethe.port.to_string())
        .output()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    assert!(
        out.status.success(),
        "redis-py collections script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// redis-py's own client-side cache (`cache_config`, which redis-py enables only for servers
/// reporting Redis 7.4 or later): a value served from the client's memory is dropped after a SET
/// from another client, a `LETHE.INVALIDATE TAG`, a dependency cascade and a change captured
/// from a PostgreSQL the test starts.
#[test]
fn redis_py_client_side_cache_drops_what_lethe_invalidates() {
    use lethe_cdc::CdcConfig;
    use lethe_cdc::testing::PgCluster;
    use lethe_server::state::ServerState;
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::Arc;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE products (id int PRIMARY KEY, name text);
         INSERT INTO products VALUES (1, 'lamp');",
    ))
    .unwrap();
    let config = CdcConfig::from_toml(&format!(
        "connection = \"{}\"\n[[table]]\ntable = \"products\"\nkeys = [\"product:{{id}}\"]\n",
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
    let lethe = common::Lethe::start_over(db);
    let mut c = lethe.client();
    // Change capture flushes once when its slot is new; cache only once it streams.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c.cmd(&["INFO", "cdc"]).contains("cdc_connected:1") {
        assert!(
            std::time::Instant::now() < deadline,
            "change capture did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/redis_py_client_cache.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(lethe.port.to_string())
        .arg("cdc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        if line == "UPDATE product:1" {
            rt.block_on(sql.execute("UPDATE products SET name = 'desk' WHERE id = 1", &[]))
                .unwrap();
            writeln!(stdin, "done").unwrap();
        }
        said.push(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "redis-py client-side cache script failed:\n{}\n{}",
        said.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(said.last().map(String::as_str), Some("ok"), "{said:?}");
    assert!(said.iter().any(|l| l == "UPDATE product:1"));

    let _ = stop_cdc.send(());
    rt.block_on(capture).unwrap().unwrap();
}

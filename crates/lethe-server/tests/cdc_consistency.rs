//! Change capture's consistency guarantees as a client of the server sees them: random lease
//! tokens, version fences set by a `version` rule refusing older fills and versioned writes,
//! and the visibility wait reported in INFO.

mod common;

use common::Client;
use lethe_cdc::CdcConfig;
use lethe_cdc::testing::PgCluster;
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

/// The token of a `[granted, token]` reply.
fn granted(c: &mut Client, key: &str) -> String {
    let reply = c.cmd(&["LETHE.LEASE", key]);
    let mut lines = reply.split("\r\n");
    assert_eq!(lines.next(), Some("*2"), "{reply}");
    assert_eq!(lines.next(), Some("+granted"), "{reply}");
    let token = lines.next().and_then(|l| l.strip_prefix(':')).unwrap();
    token.to_owned()
}

fn info_field(c: &mut Client, name: &str) -> u64 {
    let info = c.cmd(&["INFO", "cdc"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

#[test]
fn a_version_rule_fences_keys_against_older_fills_and_writes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pg = PgCluster::start();
    let sql = rt.block_on(pg.client());
    rt.block_on(sql.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, version bigint NOT NULL);
         INSERT INTO items VALUES (1, 1), (2, 1);",
    ))
    .unwrap();
    let config = CdcConfig::from_toml(&format!(
        "connection = \"{}\"\nfence_hold_ms = 60000\n\
         [[table]]\ntable = \"items\"\nkeys = [\"item:{{id}}\"]\nversion = \"version\"\n",
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
    let mut c = Client::connect(server.port);
    eventually("change capture streaming", || {
        c.cmd(&["INFO", "cdc"]).contains("cdc_connected:1")
    });
    // Something in database 0, so it is a database in use.
    assert_eq!(c.cmd(&["SET", "home", "v"]), "+OK\r\n");

    // Tokens are random, not a small sequence.
    let tokens: Vec<u64> = (0..8)
        .map(|i| granted(&mut c, &format!("other:{i}")).parse().unwrap())
        .collect();
    assert!(
        tokens.windows(2).any(|w| w[0].abs_diff(w[1]) > 1 << 32),
        "{tokens:?}"
    );

    // A reader leased item:1 and read version 1; then the row moved to version 2.
    let before = granted(&mut c, "item:1");
    rt.block_on(sql.execute("UPDATE items SET version = 2 WHERE id = 1", &[]))
        .unwrap();
    eventually("the change applied", || {
        info_field(&mut c, "cdc_visible_commits") >= 1
    });
    // Its fill is refused (the invalidation revoked its lease) ...
    let reply = c.cmd(&["LETHE.FILL", "item:1", &before, "1", "VERSION", "1"]);
    assert!(reply.starts_with("-ERR fill refused"), "{reply}");
    // ... and so is the fill of a reader that leased after the invalidation but read before
    // it, carrying the old version: the fence refuses it whatever the timing.
    let after = granted(&mut c, "item:1");
    let reply = c.cmd(&["LETHE.FILL", "item:1", &after, "1", "VERSION", "1"]);
    assert!(reply.contains("version fence"), "{reply}");
    assert_eq!(c.cmd(&["EXISTS", "item:1"]), ":0\r\n");
    // Versioned writes below the fence are refused too; the new version is stored.
    let reply = c.cmd(&["LETHE.SET", "item:1", "1", "VERSION", "1"]);
    assert!(reply.contains("version fence"), "{reply}");
    let fresh = granted(&mut c, "item:1");
    assert_eq!(
        c.cmd(&["LETHE.FILL", "item:1", &fresh, "2", "VERSION", "2"]),
        "+OK\r\n"
    );
    assert_eq!(c.cmd(&["GET", "item:1"]), "$1\r\n2\r\n");
    // Another row is not fenced.
    assert_eq!(
        c.cmd(&["LETHE.SET", "item:2", "1", "VERSION", "1"]),
        "+OK\r\n"
    );
    assert!(info_field(&mut c, "cdc_visibility_wait_max_us") > 0);

    server.shutdown();
    let _ = stop_cdc.send(());
    rt.block_on(capture).unwrap().unwrap();
}

//! Real SQL against a real PostgreSQL, streamed into an embedded cache (and a Lethe server).

mod common;

use common::*;
use lethe_cdc::testing::{PgCluster, PgOptions, eventually};
use lethe_cdc::{Cdc, CdcConfig, ErrorKind, FlushReason, RespTarget};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_invalidate_exactly_their_entries() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    let cache = new_cache();
    let cdc = Running::embedded(config(&pg, RULES), &cache);
    cdc.connected().await;

    for (key, tags) in [
        ("product:1", vec![]),
        ("product:2", vec![]),
        ("product:4", vec![]),
        ("list:5", vec!["category:5"]),
        ("list:6", vec!["category:6"]),
        ("list:7", vec!["category:7"]),
        ("list:8", vec!["category:8"]),
        ("unrelated", vec![]),
    ] {
        put(&cache, key, &tags);
    }

    // Insert: the new product's key and its category's listing.
    exec(&sql, "INSERT INTO products VALUES (4, 8, 40, 'four')").await;
    gone(&cache, "product:4").await;
    gone(&cache, "list:8").await;
    barrier(&sql, &cache).await;
    for k in [
        "product:1",
        "product:2",
        "list:5",
        "list:6",
        "list:7",
        "unrelated",
    ] {
        assert!(has(&cache, k), "{k} was invalidated by an unrelated insert");
    }

    // Update moving a product from category 5 to 6: both listings go.
    exec(&sql, "UPDATE products SET category_id = 6 WHERE id = 1").await;
    gone(&cache, "product:1").await;
    gone(&cache, "list:5").await;
    gone(&cache, "list:6").await;
    barrier(&sql, &cache).await;
    for k in ["product:2", "list:7", "unrelated"] {
        assert!(has(&cache, k), "{k} was invalidated by an unrelated update");
    }

    // Delete: the old row's key and category.
    put(&cache, "list:5", &["category:5"]);
    exec(&sql, "DELETE FROM products WHERE id = 3").await;
    gone(&cache, "list:7").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "product:2") && has(&cache, "list:5"));

    // A transaction touching several rows applies all of them at its commit.
    put(&cache, "product:1", &[]);
    exec(
        &sql,
        "BEGIN; UPDATE products SET name = 'x' WHERE id = 1; DELETE FROM products WHERE id = 2; COMMIT;",
    )
    .await;
    gone(&cache, "product:1").await;
    gone(&cache, "product:2").await;

    // Truncating a table whose rules only have literal templates: just that tag.
    put(&cache, "config", &["settings"]);
    put(&cache, "product:9", &[]);
    exec(&sql, "INSERT INTO settings VALUES ('a', 'b')").await;
    gone(&cache, "config").await;
    put(&cache, "config", &["settings"]);
    exec(&sql, "TRUNCATE settings").await;
    gone(&cache, "config").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "product:9") && has(&cache, "unrelated"));
    assert_eq!(cdc.metrics.snapshot().flushes(FlushReason::Truncate), 0);

    // Truncating products, whose rules need rows: the keyspace is flushed.
    exec(&sql, "TRUNCATE products").await;
    gone(&cache, "unrelated").await;
    assert_eq!(cdc.metrics.snapshot().flushes(FlushReason::Truncate), 1);
    // The first start created the slot, and flushed (the then empty cache) once for it.
    assert_eq!(cdc.metrics.snapshot().flushes(FlushReason::SlotCreated), 1);

    let m = cdc.metrics.snapshot();
    assert!(m.invalidations > 0 && m.transactions >= 6, "{m:?}");
    assert!(m.last_applied_lsn > 0);
    let c = cdc.metrics.clone();
    assert!(
        eventually(WAIT, || {
            let s = c.snapshot();
            s.last_confirmed_lsn >= s.last_applied_lsn
        })
        .await,
        "confirmed LSN never caught up: {:?}",
        cdc.metrics.snapshot()
    );
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_columns_filter_updates() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    let cache = new_cache();
    let cdc = Running::embedded(config(&pg, RULES), &cache);
    cdc.connected().await;

    put(&cache, "price:1", &[]);
    exec(&sql, "UPDATE products SET name = 'renamed' WHERE id = 1").await;
    barrier(&sql, &cache).await;
    assert!(
        has(&cache, "price:1"),
        "a name change reached the price list"
    );

    // Same value written again: not a change.
    exec(&sql, "UPDATE products SET price = 10 WHERE id = 1").await;
    barrier(&sql, &cache).await;
    assert!(
        has(&cache, "price:1"),
        "an unchanged price reached the price list"
    );

    exec(&sql, "UPDATE products SET price = 11 WHERE id = 1").await;
    gone(&cache, "price:1").await;
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitted_messages_apply_at_commit_and_never_on_rollback() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    let cache = new_cache();
    let cdc = Running::embedded(config(&pg, RULES), &cache);
    cdc.connected().await;

    put(&cache, "home", &[]);
    put(&cache, "card", &["category:5"]);
    put(&cache, "search:a", &[]);
    put(&cache, "keep", &[]);

    // Open transaction: nothing applied yet, even after later commits are applied.
    let mut other = pg.client().await;
    let tx = other.transaction().await.unwrap();
    tx.batch_execute(
        r#"SELECT pg_logical_emit_message(true, 'lethe', '{"keys":["home"],"tags":["category:5"],"prefixes":["search:"]}')"#,
    )
    .await
    .unwrap();
    barrier(&sql, &cache).await;
    assert!(has(&cache, "home") && has(&cache, "card") && has(&cache, "search:a"));
    tx.commit().await.unwrap();
    gone(&cache, "home").await;
    gone(&cache, "card").await;
    gone(&cache, "search:a").await;
    assert!(has(&cache, "keep"));

    // Rolled back: never applied.
    let tx = other.transaction().await.unwrap();
    tx.batch_execute(
        r#"SELECT pg_logical_emit_message(true, 'lethe', '{"keys":["keep"]}');
           UPDATE products SET price = 99 WHERE id = 2"#,
    )
    .await
    .unwrap();
    put(&cache, "product:2", &[]);
    tx.rollback().await.unwrap();
    barrier(&sql, &cache).await;
    assert!(has(&cache, "keep"), "a rolled-back message was applied");
    assert!(has(&cache, "product:2"), "a rolled-back update was applied");

    // Other prefixes are not ours; malformed bodies are counted and skipped.
    exec(
        &sql,
        r#"SELECT pg_logical_emit_message(true, 'other', '{"keys":["keep"]}');
           SELECT pg_logical_emit_message(true, 'lethe', 'not json');"#,
    )
    .await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "keep"));
    assert_eq!(cdc.metrics.snapshot().rejected_messages, 1);
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_naming_missing_tables_or_columns_fail_at_start() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;

    let run = |rules: &str| {
        let cdc = Cdc::new(config(&pg, rules)).expect("compiles");
        async move {
            tokio::time::timeout(WAIT, cdc.run(Vec::new(), std::future::pending::<()>()))
                .await
                .expect("fails promptly")
                .unwrap_err()
        }
    };
    let err = run("[[table]]\ntable = \"public.prodcts\"\nkeys = [\"p:{id}\"]\n").await;
    assert_eq!(err.kind(), ErrorKind::Catalog);
    assert!(err.to_string().contains("public.prodcts"), "{err}");

    let err = run("[[table]]\ntable = \"products\"\ntags = [\"c:{new.categry_id}\"]\n").await;
    assert_eq!(err.kind(), ErrorKind::Catalog);
    assert!(err.to_string().contains("`categry_id`"), "{err}");

    // Old values of a non-key column without REPLICA IDENTITY FULL.
    let err = run("[[table]]\ntable = \"settings\"\nkeys = [\"s:{old.value}\"]\n").await;
    assert_eq!(err.kind(), ErrorKind::Catalog);
    assert!(err.to_string().contains("REPLICA IDENTITY FULL"), "{err}");

    // A user without REPLICATION.
    exec(&sql, "CREATE ROLE plain LOGIN").await;
    let mut config = config(&pg, RULES);
    config.connection = config.connection.replace("user=postgres", "user=plain");
    let err = Cdc::new(config)
        .unwrap()
        .run(Vec::new(), std::future::pending::<()>())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setting);
    assert!(err.to_string().contains("REPLICATION"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_level_other_than_logical_is_refused() {
    init_tracing();
    let pg = PgCluster::start_with(PgOptions::default().wal_level("replica"));
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    let err = tokio::time::timeout(
        WAIT,
        Cdc::new(config(&pg, RULES))
            .unwrap()
            .run(Vec::new(), std::future::pending::<()>()),
    )
    .await
    .expect("fails promptly")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setting);
    let text = err.to_string();
    assert!(
        text.contains("wal_level") && text.contains("logical") && text.contains("restart"),
        "{text}"
    );
    // The check-only entry point says the same, without creating anything.
    let err = Cdc::new(config(&pg, RULES))
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setting);
    assert!(err.to_string().contains("wal_level"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_target_invalidates_a_lethe_server() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lethe_server::server::run(listener, async move {
        let _ = server_stopped.await;
    }));
    let url = format!("redis://{addr}");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let rules = format!(
        "{RULES}\n[[table]]\ntable = \"products\"\nname = \"search\"\nprefixes = [\"search:\"]\n"
    );
    let target = RespTarget::new([url.as_str()]).unwrap();
    let cdc = Running::start(config(&pg, &rules), vec![Box::new(target)]);
    cdc.connected().await;
    // Set after the start: the first start flushed the server, having created the slot.
    assert_eq!(cdc.metrics.snapshot().flushes(FlushReason::SlotCreated), 1);
    for key in ["product:1", "product:2", "search:x", "search:y", "other"] {
        let () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query_async(&mut redis)
            .await
            .unwrap();
    }

    exec(&sql, "UPDATE products SET category_id = 6 WHERE id = 1").await;
    let exists = |key: &'static str| {
        let mut conn = redis.clone();
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            n == 1
        }
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while exists("product:1").await || exists("search:x").await {
        assert!(tokio::time::Instant::now() < deadline, "never invalidated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!exists("search:y").await);
    assert!(exists("product:2").await && exists("other").await);
    cdc.stop().await.unwrap();
    let _ = stop_server.send(());
    let _ = server.await;
}

#[test]
fn config_errors_need_no_database() {
    let err = Cdc::new(
        CdcConfig::from_toml(
            "connection = \"host=x\"\n[[table]]\ntable = \"t\"\noperations = [\"upsert\"]\nkeys = [\"k\"]\n",
        )
        .unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rule);
    assert!(err.to_string().contains("upsert"), "{err}");
    let err = Cdc::new(
        CdcConfig::from_toml("connection = \"host=x\"\n[[table]]\ntable = \"t\"\n").unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Rule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication_scram_and_md5() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    exec(
        &sql,
        "CREATE ROLE scram_user LOGIN REPLICATION PASSWORD 'secret';
         SET password_encryption = 'md5';
         CREATE ROLE md5_user LOGIN REPLICATION PASSWORD 'secret';
         CREATE PUBLICATION lethe FOR TABLE products, settings;",
    )
    .await;
    pg.hba_first(
        "host replication scram_user 127.0.0.1/32 scram-sha-256\n\
         host all scram_user 127.0.0.1/32 scram-sha-256\n\
         host replication md5_user 127.0.0.1/32 md5\n\
         host all md5_user 127.0.0.1/32 md5",
    );
    for (i, user) in ["scram_user", "md5_user"].into_iter().enumerate() {
        let cache = new_cache();
        let mut config = config(&pg, RULES);
        config.slot = format!("slot_{user}");
        config.connection = config
            .connection
            .replace("user=postgres", &format!("user={user} password=secret"));
        let cdc = Running::embedded(config, &cache);
        cdc.connected().await;
        put(&cache, "product:1", &[]);
        exec(
            &sql,
            &format!("UPDATE products SET price = {} WHERE id = 1", 100 + i),
        )
        .await;
        gone(&cache, "product:1").await;
        cdc.stop().await.unwrap();
    }

    // A wrong password is a setup error, reported at start rather than retried.
    let mut config = config(&pg, RULES);
    config.connection = config
        .connection
        .replace("user=postgres", "user=scram_user password=wrong");
    let err = tokio::time::timeout(
        WAIT,
        Cdc::new(config)
            .unwrap()
            .run(Vec::new(), std::future::pending::<()>()),
    )
    .await
    .expect("fails promptly")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setting, "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_tables_are_seen_under_their_own_name() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(
        &sql,
        "CREATE TABLE orders (id int, region int, total int, PRIMARY KEY (id, region))
             PARTITION BY LIST (region);
         CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN (1);
         CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN (2);",
    )
    .await;
    let rules =
        "[[table]]\ntable = \"orders\"\nkeys = [\"order:{id}\"]\ntags = [\"region:{region}\"]\n";
    let cache = new_cache();
    let cdc = Running::embedded(config(&pg, rules), &cache);
    cdc.connected().await;
    put(&cache, "order:1", &[]);
    put(&cache, "list", &["region:2"]);
    put(&cache, "other", &["region:1"]);
    exec(&sql, "INSERT INTO orders VALUES (1, 2, 10)").await;
    gone(&cache, "order:1").await;
    gone(&cache, "list").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "other"));
    cdc.stop().await.unwrap();
}

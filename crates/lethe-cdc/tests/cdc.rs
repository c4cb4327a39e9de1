//! Real SQL against a real PostgreSQL, streamed into an embedded cache (and a Lethe server).

mod common;

use common::*;
use lethe_cdc::testing::PgOptions;
use lethe_cdc::{Cdc, CdcConfig, ErrorKind, FlushReason, RespTarget};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_invalidate_exactly_their_entries() {
    let (pg, sql) = database(SCHEMA).await;
    let (cache, cdc) = embedded(Mode::Replication, &pg, RULES).await;
    common::row_changes_invalidate_exactly_their_entries(Mode::Replication, &sql, &cache, &cdc)
        .await;
    // The first start created the slot, and flushed (the then empty cache) once for it.
    assert_eq!(cdc.flushes(FlushReason::SlotCreated), 1);

    let m = cdc.metrics.snapshot();
    assert!(m.invalidations > 0 && m.transactions >= 6, "{m:?}");
    assert!(m.last_applied_lsn > 0);
    cdc.until("confirmed LSN never caught up", |s| {
        s.last_confirmed_lsn >= s.last_applied_lsn
    })
    .await;
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_columns_filter_updates() {
    let (pg, sql) = database(SCHEMA).await;
    let (cache, cdc) = embedded(Mode::Replication, &pg, RULES).await;

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
    let (pg, sql) = database(SCHEMA).await;
    let (cache, cdc) = embedded(Mode::Replication, &pg, RULES).await;

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
    let (pg, sql) = database(SCHEMA).await;
    let run = |rules: &str| Mode::Replication.start_error(config(&pg, rules));
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
    let err = Mode::Replication.start_error(config).await;
    assert_eq!(err.kind(), ErrorKind::Setting);
    assert!(err.to_string().contains("REPLICATION"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_level_other_than_logical_is_refused() {
    let (pg, _sql) = database_with(PgOptions::default().wal_level("replica"), SCHEMA).await;
    let err = Mode::Replication.start_error(config(&pg, RULES)).await;
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
    let (pg, sql) = database(SCHEMA).await;
    let server = LetheServer::start().await;
    let url = server.url.as_str();
    let client = redis::Client::open(url).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let rules = format!(
        "{RULES}\n[[table]]\ntable = \"products\"\nname = \"search\"\nprefixes = [\"search:\"]\n"
    );
    let target = RespTarget::new([url]).unwrap();
    let cdc = Running::start(config(&pg, &rules), vec![Box::new(target)]);
    cdc.connected().await;
    // Set after the start: the first start flushed the server, having created the slot.
    assert_eq!(cdc.flushes(FlushReason::SlotCreated), 1);
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
    server.stop().await;
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
    let (pg, sql) = database(SCHEMA).await;
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
    let err = Mode::Replication.start_error(config).await;
    assert_eq!(err.kind(), ErrorKind::Setting, "{err}");
    assert!(err.to_string().contains("password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_tables_are_seen_under_their_own_name() {
    let (pg, sql) = database(PARTITIONED).await;
    let (cache, cdc) = embedded(Mode::Replication, &pg, PARTITIONED_RULES).await;
    partitions_are_seen_as_their_table(Mode::Replication, &sql, &cache).await;
    cdc.stop().await.unwrap();
}

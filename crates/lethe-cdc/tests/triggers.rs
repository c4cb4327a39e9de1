//! Trigger mode against a real PostgreSQL: triggers installed from the configuration, real SQL,
//! notifications listened to and applied to an embedded cache.

mod common;

use common::*;
use lethe_cdc::testing::{PgCluster, PgOptions};
use lethe_cdc::{ErrorKind, FlushReason, install_triggers, trigger_sql, uninstall_triggers};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

const TRIGGER: Mode = Mode::Trigger;

async fn trigger_count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::text::regclass \
             AND tgname LIKE 'lethe_notify%'",
            &[&table],
        )
        .await
        .unwrap()
        .get(0)
}

/// A plain LISTEN connection on channel `lethe`, to look at the notifications themselves.
async fn raw_listen(pg: &PgCluster) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut conn) = tokio_postgres::connect(&pg.connection_string(), NoTls)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    client.batch_execute("LISTEN lethe").await.unwrap();
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_changes_invalidate_exactly_their_entries() {
    // No logical replication at all.
    let (pg, sql) = database_with(PgOptions::default().wal_level("replica"), TRIGGER_SCHEMA).await;
    let report = install_triggers(&config(&pg, RULES)).await.unwrap();
    assert_eq!(report.channel, "lethe");
    assert_eq!(report.tables.len(), 2);
    assert_eq!(report.functions, ["\"public\".\"lethe_notify\""]);

    let (cache, listener) = embedded(TRIGGER, &pg, RULES).await;
    // The first connect flushed (the then empty cache) once.
    assert_eq!(listener.flushes(FlushReason::NotifyReconnect), 1);
    common::row_changes_invalidate_exactly_their_entries(TRIGGER, &sql, &cache, &listener).await;
    let m = listener.metrics.snapshot();
    assert_eq!(m.flushes(FlushReason::NotifyReconnect), 1, "{m:?}");
    assert!(m.invalidations >= 10 && m.transactions >= 8, "{m:?}");
    assert_eq!(m.rejected_messages, 0, "{m:?}");
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_transactions_notify_nothing_and_commits_apply_at_commit() {
    let (pg, sql) = database(TRIGGER_SCHEMA).await;
    let (cache, listener) = embedded(TRIGGER, &pg, RULES).await;

    put(&cache, "product:2", &[]);
    put(&cache, "home", &[]);
    put(&cache, "list:5", &["category:5"]);
    let mut other = pg.client().await;

    // Rolled back: neither the row change nor the explicit notification is ever applied.
    let tx = other.transaction().await.unwrap();
    tx.batch_execute(
        r#"UPDATE products SET price = 99 WHERE id = 2;
           SELECT pg_notify('lethe', '{"keys":["home"]}');"#,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "product:2"), "a rolled-back update was applied");
    assert!(
        has(&cache, "home"),
        "a rolled-back notification was applied"
    );
    assert!(has(&cache, "list:5"));

    // Open: nothing yet, even once later commits are applied; then all of it at commit.
    let tx = other.transaction().await.unwrap();
    tx.batch_execute(
        r#"UPDATE products SET price = 98 WHERE id = 2;
           SELECT pg_notify('lethe', '{"keys":["home"]}');"#,
    )
    .await
    .unwrap();
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "product:2") && has(&cache, "home") && has(&cache, "list:5"));
    tx.commit().await.unwrap();
    gone(&cache, "product:2").await;
    gone(&cache, "list:5").await;
    gone(&cache, "home").await;

    // Garbage on the channel is counted and skipped; the listener carries on.
    exec(&sql, "SELECT pg_notify('lethe', 'not json')").await;
    notify_barrier(&sql, &cache).await;
    assert_eq!(listener.metrics.snapshot().rejected_messages, 1);
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_uninstall_removes_everything() {
    let (pg, sql) = database(TRIGGER_SCHEMA).await;
    let config = config(&pg, RULES);

    let first = install_triggers(&config).await.unwrap();
    let second = install_triggers(&config).await.unwrap();
    assert_eq!(first, second);
    // Replaced, not duplicated: a row trigger and a truncate trigger per table.
    assert_eq!(trigger_count(&sql, "products").await, 2);
    assert_eq!(trigger_count(&sql, "settings").await, 2);
    // The printed SQL is what was installed: running it by hand is just as idempotent.
    exec(&sql, &trigger_sql(&config).unwrap()).await;
    assert_eq!(trigger_count(&sql, "products").await, 2);

    // One change, one notification, with text values (numeric spelling kept).
    let (listen_client, mut notes) = raw_listen(&pg).await;
    exec(&sql, "UPDATE products SET price = 10.50 WHERE id = 1").await;
    exec(&sql, "SELECT pg_notify('lethe', 'end')").await;
    let mut got = Vec::new();
    loop {
        let note = tokio::time::timeout(WAIT, notes.recv())
            .await
            .expect("notifications arrive")
            .expect("listening");
        if note == "end" {
            break;
        }
        got.push(note);
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let payload: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(payload["table"], "public.products");
    assert_eq!(payload["op"], "update");
    assert_eq!(payload["old"]["price"], "10");
    assert_eq!(payload["new"]["price"], "10.50");
    assert_eq!(payload["new"]["category_id"], "5");
    drop(listen_client);

    // Rules changed since the install (a new column read, a rule now firing on deletes only
    // where it did not before): the listener says so instead of missing changes.
    let changed = format!(
        "{RULES}\n[[table]]\ntable = \"products\"\nname = \"names\"\nkeys = [\"name:{{name}}\"]\n"
    );
    let err = TRIGGER.start_error(common::config(&pg, &changed)).await;
    assert_eq!(err.kind(), ErrorKind::Setting);
    assert!(
        err.to_string().contains("installed from other rules"),
        "{err}"
    );

    let removed = uninstall_triggers(&config).await.unwrap();
    assert_eq!(removed.tables, first.tables);
    assert_eq!(trigger_count(&sql, "products").await, 0);
    assert_eq!(trigger_count(&sql, "settings").await, 0);
    let functions: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE proname = 'lethe_notify'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(functions, 0);
    // Again: nothing left to remove is not an error.
    uninstall_triggers(&config).await.unwrap();
    // Writes work without the triggers.
    exec(&sql, "UPDATE products SET price = 12 WHERE id = 1").await;

    // A listener refuses to start without its triggers rather than listen to nothing.
    let err = TRIGGER.start_error(config.clone()).await;
    assert_eq!(err.kind(), ErrorKind::Setting);
    let text = err.to_string();
    assert!(
        text.contains("lethe_notify") && text.contains("install-triggers"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_naming_missing_columns_or_tables_fail_at_install() {
    let (pg, sql) = database(TRIGGER_SCHEMA).await;

    let err = install_triggers(&config(
        &pg,
        "[[table]]\ntable = \"products\"\ntags = [\"c:{new.categry_id}\"]\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Catalog);
    assert!(err.to_string().contains("column `categry_id`"), "{err}");
    assert!(err.to_string().contains("public.products"), "{err}");

    let err = install_triggers(&config(
        &pg,
        "[[table]]\ntable = \"products\"\nchanged = [\"prise\"]\nkeys = [\"p:{id}\"]\n",
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("column `prise`"), "{err}");

    let err = install_triggers(&config(
        &pg,
        "[[table]]\ntable = \"public.prodcts\"\nkeys = [\"p:{id}\"]\n",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Catalog);
    assert!(err.to_string().contains("public.prodcts"), "{err}");

    // Checked before anything was created.
    assert_eq!(trigger_count(&sql, "products").await, 0);
    // And what replication mode would refuse for lack of REPLICA IDENTITY FULL is fine here.
    install_triggers(&config(
        &pg,
        "[[table]]\ntable = \"settings\"\nkeys = [\"s:{old.value}\"]\n",
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_reconnects_flushes_and_carries_on() {
    let (mut pg, sql) = database(TRIGGER_SCHEMA).await;
    let (cache, listener) = embedded(TRIGGER, &pg, RULES).await;
    exec(&sql, "UPDATE products SET name = 'before' WHERE id = 2").await;
    put(&cache, "cached-before-restart", &[]);
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "cached-before-restart"));
    assert_eq!(listener.flushes(FlushReason::NotifyReconnect), 1);

    drop(sql);
    tokio::task::block_in_place(|| pg.restart());

    // Whatever was notified while nobody listened is lost, so the reconnect flushes.
    listener
        .until("no reconnect and flush", |s| {
            s.connected && s.reconnects >= 1 && s.flushes(FlushReason::NotifyReconnect) == 2
        })
        .await;
    assert!(!has(&cache, "cached-before-restart"), "not flushed");

    // Changes after the reconnect are applied as before.
    let sql = pg.client().await;
    put(&cache, "product:1", &[]);
    put(&cache, "list:5", &["category:5"]);
    put(&cache, "keep", &[]);
    exec(&sql, "UPDATE products SET category_id = 9 WHERE id = 1").await;
    gone(&cache, "product:1").await;
    gone(&cache, "list:5").await;
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "keep"));
    assert_eq!(listener.flushes(FlushReason::NotifyReconnect), 2);
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_too_large_for_a_notification_are_trimmed_or_flush() {
    let (pg, sql) = database(
        "CREATE TABLE docs (doc_id int PRIMARY KEY, category int NOT NULL, body text NOT NULL);
         INSERT INTO docs VALUES (1, 3, 'small');",
    )
    .await;
    // `{id}` here is the primary key `doc_id`, which a trimmed row must still carry.
    let slim = "[[table]]\ntable = \"docs\"\nkeys = [\"doc:{id}\"]\ntags = [\"cat:{category}\"]\n";
    let (cache, listener) = embedded(TRIGGER, &pg, slim).await;

    // A 20 kB body: the row does not fit in a notification, the columns the rules read do.
    put(&cache, "doc:1", &[]);
    put(&cache, "list", &["cat:3"]);
    put(&cache, "unrelated", &[]);
    exec(
        &sql,
        "UPDATE docs SET body = repeat('x', 20000) WHERE doc_id = 1",
    )
    .await;
    gone(&cache, "doc:1").await;
    gone(&cache, "list").await;
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "unrelated"));
    assert_eq!(listener.flushes(FlushReason::NotifyOverflow), 0);
    listener.stop().await.unwrap();

    // A rule reading the large column: even the trimmed row is too large, so the listener
    // flushes rather than miss it.
    let fat = format!(
        "{slim}\n[[table]]\ntable = \"docs\"\nname = \"bodies\"\nkeys = [\"body:{{body}}\"]\n"
    );
    install_triggers(&config(&pg, &fat)).await.unwrap();
    let listener = TRIGGER.start(config(&pg, &fat), cache_target(&cache));
    listener.connected().await;
    put(&cache, "unrelated", &[]);
    exec(&sql, "UPDATE docs SET category = 4 WHERE doc_id = 1").await;
    gone(&cache, "unrelated").await;
    let m = listener.metrics.snapshot();
    assert_eq!(m.flushes(FlushReason::NotifyOverflow), 1, "{m:?}");
    // Small rows still go through normally.
    put(&cache, "doc:2", &[]);
    put(&cache, "unrelated", &[]);
    exec(&sql, "INSERT INTO docs VALUES (2, 4, 'short')").await;
    gone(&cache, "doc:2").await;
    notify_barrier(&sql, &cache).await;
    assert!(has(&cache, "unrelated"));
    assert_eq!(listener.flushes(FlushReason::NotifyOverflow), 1);
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_tables_are_reported_under_their_own_name() {
    let (pg, sql) = database(PARTITIONED).await;
    let (cache, listener) = embedded(TRIGGER, &pg, PARTITIONED_RULES).await;
    partitions_are_seen_as_their_table(TRIGGER, &sql, &cache).await;
    // A partition created after the install gets the (cloned) row trigger too.
    exec(
        &sql,
        "CREATE TABLE orders_ap PARTITION OF orders FOR VALUES IN (3)",
    )
    .await;
    put(&cache, "asia", &["region:3"]);
    exec(&sql, "INSERT INTO orders VALUES (5, 3, 10)").await;
    gone(&cache, "asia").await;
    // Truncating the partitioned table: its rules need rows, so everything goes.
    exec(&sql, "TRUNCATE orders").await;
    gone(&cache, "other").await;
    assert_eq!(listener.flushes(FlushReason::Truncate), 1);
    listener.stop().await.unwrap();
}

//! Trigger mode against a real PostgreSQL: triggers installed from the configuration, real SQL,
//! notifications listened to and applied to an embedded cache.

mod common;

use common::{RULES, WAIT, config, exec, gone, has, init_tracing, new_cache, put};
use lethe::Cache;
use lethe_cdc::testing::{PgCluster, PgOptions, eventually};
use lethe_cdc::{
    CdcConfig, CdcMetrics, EmbeddedTarget, ErrorKind, FlushReason, TriggerListener,
    install_triggers, trigger_sql, uninstall_triggers,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// Like the replication tests' schema, but without `REPLICA IDENTITY FULL`: triggers see the
/// whole old row anyway, so rules reading `{old.category_id}` need nothing more.
const SCHEMA: &str = "
    CREATE TABLE products (
        id int PRIMARY KEY,
        category_id int NOT NULL,
        price numeric NOT NULL,
        name text NOT NULL
    );
    CREATE TABLE settings (name text PRIMARY KEY, value text);
    INSERT INTO products VALUES (1, 5, 10, 'one'), (2, 5, 20, 'two'), (3, 7, 30, 'three');
";

/// A running listener: its task, a way to stop it, its metrics.
struct Listening {
    task: JoinHandle<lethe_cdc::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
    metrics: Arc<CdcMetrics>,
}

impl Listening {
    fn start(config: CdcConfig, cache: &Cache<String, String>) -> Listening {
        let listener = TriggerListener::new(config).expect("configuration compiles");
        let metrics = listener.metrics();
        let (tx, rx) = oneshot::channel();
        let target = Box::new(EmbeddedTarget::new(cache.clone()));
        let task = tokio::spawn(listener.run(vec![target], async move {
            let _ = rx.await;
        }));
        Listening {
            task,
            stop: Some(tx),
            metrics,
        }
    }

    async fn connected(&self) {
        let m = Arc::clone(&self.metrics);
        assert!(
            eventually(WAIT, || m.snapshot().connected).await,
            "listener never connected: {:?}",
            self.metrics.snapshot()
        );
    }

    async fn stop(mut self) -> lethe_cdc::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("listener stops promptly")
            .expect("listener task did not panic")
    }
}

/// Everything committed before this call has been applied once it returns: notifications
/// arrive in commit order, so an explicit invalidation of a fresh key sent last is applied last.
async fn barrier(client: &tokio_postgres::Client, cache: &Cache<String, String>) {
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!("barrier:{}", N.fetch_add(1, Ordering::Relaxed));
    put(cache, &key, &[]);
    exec(
        client,
        &format!("SELECT pg_notify('lethe', '{{\"keys\":[\"{key}\"]}}')"),
    )
    .await;
    let c = cache.clone();
    assert!(
        eventually(WAIT, || !has(&c, &key)).await,
        "barrier {key} never applied"
    );
}

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
    init_tracing();
    // No logical replication at all.
    let pg = PgCluster::start_with(PgOptions::default().wal_level("replica"));
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    let report = install_triggers(&config(&pg, RULES)).await.unwrap();
    assert_eq!(report.channel, "lethe");
    assert_eq!(report.tables.len(), 2);
    assert_eq!(report.functions, ["\"public\".\"lethe_notify\""]);

    let cache = new_cache();
    let listener = Listening::start(config(&pg, RULES), &cache);
    listener.connected().await;
    // The first connect flushed (the then empty cache) once.
    assert_eq!(
        listener
            .metrics
            .snapshot()
            .flushes(FlushReason::NotifyReconnect),
        1
    );

    for (key, tags) in [
        ("product:1", vec![]),
        ("product:2", vec![]),
        ("product:4", vec![]),
        ("price:1", vec![]),
        ("list:5", vec!["category:5"]),
        ("list:6", vec!["category:6"]),
        ("list:7", vec!["category:7"]),
        ("list:8", vec!["category:8"]),
        ("unrelated", vec![]),
    ] {
        put(&cache, key, &tags);
    }

    // Insert: the new product's key and its category's listing, nothing else.
    exec(&sql, "INSERT INTO products VALUES (4, 8, 40, 'four')").await;
    gone(&cache, "product:4").await;
    gone(&cache, "list:8").await;
    barrier(&sql, &cache).await;
    for k in [
        "product:1",
        "product:2",
        "price:1",
        "list:5",
        "list:6",
        "list:7",
        "unrelated",
    ] {
        assert!(has(&cache, k), "{k} was invalidated by an unrelated insert");
    }

    // A category move: the old and the new category's listings both go; the price did not
    // change, so the price list stays.
    exec(&sql, "UPDATE products SET category_id = 6 WHERE id = 1").await;
    gone(&cache, "product:1").await;
    gone(&cache, "list:5").await;
    gone(&cache, "list:6").await;
    barrier(&sql, &cache).await;
    for k in ["product:2", "price:1", "list:7", "unrelated"] {
        assert!(has(&cache, k), "{k} was invalidated by an unrelated update");
    }

    // A price change reaches the price list (`changed = ["price"]`).
    exec(&sql, "UPDATE products SET price = 11 WHERE id = 1").await;
    gone(&cache, "price:1").await;

    // Delete: the old row's key and category.
    put(&cache, "list:5", &["category:5"]);
    exec(&sql, "DELETE FROM products WHERE id = 3").await;
    gone(&cache, "list:7").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "product:2") && has(&cache, "list:5"));

    // Several rows in one transaction.
    put(&cache, "product:1", &[]);
    exec(
        &sql,
        "BEGIN; UPDATE products SET name = 'x' WHERE id = 1; DELETE FROM products WHERE id = 2; COMMIT;",
    )
    .await;
    gone(&cache, "product:1").await;
    gone(&cache, "product:2").await;

    // Truncating a table whose rules are literal: only that tag.
    put(&cache, "config", &["settings"]);
    put(&cache, "product:9", &[]);
    exec(&sql, "TRUNCATE settings").await;
    gone(&cache, "config").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "product:9") && has(&cache, "unrelated"));
    assert_eq!(
        listener.metrics.snapshot().flushes(FlushReason::Truncate),
        0
    );

    // Truncating products, whose rules need rows: the whole keyspace goes.
    exec(&sql, "TRUNCATE products").await;
    gone(&cache, "unrelated").await;
    let m = listener.metrics.snapshot();
    assert_eq!(m.flushes(FlushReason::Truncate), 1, "{m:?}");
    assert_eq!(m.flushes(FlushReason::NotifyReconnect), 1, "{m:?}");
    assert!(m.invalidations >= 10 && m.transactions >= 8, "{m:?}");
    assert_eq!(m.rejected_messages, 0, "{m:?}");
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_transactions_notify_nothing_and_commits_apply_at_commit() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    install_triggers(&config(&pg, RULES)).await.unwrap();
    let cache = new_cache();
    let listener = Listening::start(config(&pg, RULES), &cache);
    listener.connected().await;

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
    barrier(&sql, &cache).await;
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
    barrier(&sql, &cache).await;
    assert!(has(&cache, "product:2") && has(&cache, "home") && has(&cache, "list:5"));
    tx.commit().await.unwrap();
    gone(&cache, "product:2").await;
    gone(&cache, "list:5").await;
    gone(&cache, "home").await;

    // Garbage on the channel is counted and skipped; the listener carries on.
    exec(&sql, "SELECT pg_notify('lethe', 'not json')").await;
    barrier(&sql, &cache).await;
    assert_eq!(listener.metrics.snapshot().rejected_messages, 1);
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_uninstall_removes_everything() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
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
    let err = tokio::time::timeout(
        WAIT,
        TriggerListener::new(common::config(&pg, &changed))
            .unwrap()
            .run(Vec::new(), std::future::pending::<()>()),
    )
    .await
    .expect("fails promptly")
    .unwrap_err();
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
    let err = tokio::time::timeout(
        WAIT,
        TriggerListener::new(config.clone())
            .unwrap()
            .run(Vec::new(), std::future::pending::<()>()),
    )
    .await
    .expect("fails promptly")
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Setting);
    let text = err.to_string();
    assert!(
        text.contains("lethe_notify") && text.contains("install-triggers"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_naming_missing_columns_or_tables_fail_at_install() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;

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
    init_tracing();
    let mut pg = PgCluster::start();
    let sql = pg.client().await;
    exec(&sql, SCHEMA).await;
    install_triggers(&config(&pg, RULES)).await.unwrap();
    let cache = new_cache();
    let listener = Listening::start(config(&pg, RULES), &cache);
    listener.connected().await;
    exec(&sql, "UPDATE products SET name = 'before' WHERE id = 2").await;
    put(&cache, "cached-before-restart", &[]);
    barrier(&sql, &cache).await;
    assert!(has(&cache, "cached-before-restart"));
    assert_eq!(
        listener
            .metrics
            .snapshot()
            .flushes(FlushReason::NotifyReconnect),
        1
    );

    drop(sql);
    tokio::task::block_in_place(|| pg.restart());

    // Whatever was notified while nobody listened is lost, so the reconnect flushes.
    let m = Arc::clone(&listener.metrics);
    assert!(
        eventually(WAIT, || {
            let s = m.snapshot();
            s.connected && s.reconnects >= 1 && s.flushes(FlushReason::NotifyReconnect) == 2
        })
        .await,
        "no reconnect and flush: {:?}",
        listener.metrics.snapshot()
    );
    assert!(!has(&cache, "cached-before-restart"), "not flushed");

    // Changes after the reconnect are applied as before.
    let sql = pg.client().await;
    put(&cache, "product:1", &[]);
    put(&cache, "list:5", &["category:5"]);
    put(&cache, "keep", &[]);
    exec(&sql, "UPDATE products SET category_id = 9 WHERE id = 1").await;
    gone(&cache, "product:1").await;
    gone(&cache, "list:5").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "keep"));
    assert_eq!(
        listener
            .metrics
            .snapshot()
            .flushes(FlushReason::NotifyReconnect),
        2
    );
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_too_large_for_a_notification_are_trimmed_or_flush() {
    init_tracing();
    let pg = PgCluster::start();
    let sql = pg.client().await;
    exec(
        &sql,
        "CREATE TABLE docs (doc_id int PRIMARY KEY, category int NOT NULL, body text NOT NULL);
         INSERT INTO docs VALUES (1, 3, 'small');",
    )
    .await;
    // `{id}` here is the primary key `doc_id`, which a trimmed row must still carry.
    let slim = "[[table]]\ntable = \"docs\"\nkeys = [\"doc:{id}\"]\ntags = [\"cat:{category}\"]\n";
    install_triggers(&config(&pg, slim)).await.unwrap();
    let cache = new_cache();
    let listener = Listening::start(config(&pg, slim), &cache);
    listener.connected().await;

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
    barrier(&sql, &cache).await;
    assert!(has(&cache, "unrelated"));
    assert_eq!(
        listener
            .metrics
            .snapshot()
            .flushes(FlushReason::NotifyOverflow),
        0
    );
    listener.stop().await.unwrap();

    // A rule reading the large column: even the trimmed row is too large, so the listener
    // flushes rather than miss it.
    let fat = format!(
        "{slim}\n[[table]]\ntable = \"docs\"\nname = \"bodies\"\nkeys = [\"body:{{body}}\"]\n"
    );
    install_triggers(&config(&pg, &fat)).await.unwrap();
    let listener = Listening::start(config(&pg, &fat), &cache);
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
    barrier(&sql, &cache).await;
    assert!(has(&cache, "unrelated"));
    assert_eq!(
        listener
            .metrics
            .snapshot()
            .flushes(FlushReason::NotifyOverflow),
        1
    );
    listener.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_tables_are_reported_under_their_own_name() {
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
    install_triggers(&config(&pg, rules)).await.unwrap();
    let cache = new_cache();
    let listener = Listening::start(config(&pg, rules), &cache);
    listener.connected().await;
    put(&cache, "order:1", &[]);
    put(&cache, "list", &["region:2"]);
    put(&cache, "other", &["region:1"]);
    exec(&sql, "INSERT INTO orders VALUES (1, 2, 10)").await;
    gone(&cache, "order:1").await;
    gone(&cache, "list").await;
    barrier(&sql, &cache).await;
    assert!(has(&cache, "other"));
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
    assert_eq!(
        listener.metrics.snapshot().flushes(FlushReason::Truncate),
        1
    );
    listener.stop().await.unwrap();
}

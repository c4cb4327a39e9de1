//! Shared test setup: a cluster with a `products` table, a cache, and a running [`Cdc`].

#![allow(dead_code)]

use lethe::{Cache, InsertOptions};
use lethe_cdc::testing::{PgCluster, eventually};
use lethe_cdc::{Cdc, CdcConfig, CdcMetrics, EmbeddedTarget, Target};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lethe_cdc=info".into()),
        )
        .with_test_writer()
        .try_init();
}

pub const SCHEMA: &str = "
    CREATE TABLE products (
        id int PRIMARY KEY,
        category_id int NOT NULL,
        price numeric NOT NULL,
        name text NOT NULL
    );
    ALTER TABLE products REPLICA IDENTITY FULL;
    CREATE TABLE settings (name text PRIMARY KEY, value text);
    INSERT INTO products VALUES (1, 5, 10, 'one'), (2, 5, 20, 'two'), (3, 7, 30, 'three');
";

/// The rules most tests use: product pages by id, category listings by tag (old and new),
/// price lists only when the price changes, settings by a literal tag.
pub const RULES: &str = r#"
[[table]]
table = "public.products"
keys = ["product:{id}"]
tags = ["category:{old.category_id}", "category:{new.category_id}"]

[[table]]
table = "products"
name = "prices"
operations = ["update"]
changed = ["price"]
keys = ["price:{id}"]

[[table]]
table = "settings"
tags = ["settings"]
"#;

pub fn config(pg: &PgCluster, rules: &str) -> CdcConfig {
    let mut config = CdcConfig::from_toml(&format!(
        "connection = \"{}\"\nreconnect_min_ms = 50\nreconnect_max_ms = 1000\nstatus_interval_ms = 500\n{rules}",
        pg.connection_string()
    ))
    .expect("test configuration parses");
    config.slot = "lethe".into();
    config
}

/// A running CDC: its task, a way to stop it, its metrics.
pub struct Running {
    pub task: JoinHandle<lethe_cdc::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
    pub metrics: Arc<CdcMetrics>,
}

impl Running {
    pub fn start(config: CdcConfig, targets: Vec<Box<dyn Target>>) -> Running {
        let cdc = Cdc::new(config).expect("configuration compiles");
        let metrics = cdc.metrics();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(cdc.run(targets, async move {
            let _ = rx.await;
        }));
        Running {
            task,
            stop: Some(tx),
            metrics,
        }
    }

    pub fn embedded(config: CdcConfig, cache: &Cache<String, String>) -> Running {
        Running::start(config, vec![Box::new(EmbeddedTarget::new(cache.clone()))])
    }

    /// Waits until the stream is up.
    pub async fn connected(&self) {
        let m = Arc::clone(&self.metrics);
        assert!(
            eventually(WAIT, || m.snapshot().connected).await,
            "CDC never connected: {:?}",
            self.metrics.snapshot()
        );
    }

    pub async fn stop(mut self) -> lethe_cdc::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("CDC stops promptly")
            .expect("CDC task did not panic")
    }
}

pub async fn exec(client: &tokio_postgres::Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub fn put(cache: &Cache<String, String>, key: &str, tags: &[&str]) {
    let mut options = InsertOptions::new();
    for t in tags {
        options = options.tag(*t);
    }
    cache.insert_with_options(key.to_owned(), "v".to_owned(), &options);
}

pub fn has(cache: &Cache<String, String>, key: &str) -> bool {
    cache.get(key).is_some()
}

/// Everything committed before this call has been applied once it returns: a transaction
/// emitting an invalidation of a fresh key is committed, and its effect awaited.
pub async fn barrier(client: &tokio_postgres::Client, cache: &Cache<String, String>) {
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!("barrier:{}", N.fetch_add(1, Ordering::Relaxed));
    put(cache, &key, &[]);
    exec(
        client,
        &format!("SELECT pg_logical_emit_message(true, 'lethe', '{{\"keys\":[\"{key}\"]}}')"),
    )
    .await;
    let c = cache.clone();
    assert!(
        eventually(WAIT, || !has(&c, &key)).await,
        "barrier {key} never applied"
    );
}

/// Waits until `key` is gone from the cache.
pub async fn gone(cache: &Cache<String, String>, key: &str) {
    let c = cache.clone();
    assert!(
        eventually(WAIT, || !has(&c, key)).await,
        "{key} was never invalidated"
    );
}

pub fn new_cache() -> Cache<String, String> {
    Cache::builder().max_capacity(10_000).build()
}

//! Shared test setup for both modes: a cluster with a `products` table, a cache, a running
//! [`Cdc`] or [`TriggerListener`], barriers, a Lethe server to invalidate, and the scenarios
//! both modes must pass alike.

#![allow(dead_code)]

use lethe::{Cache, InsertOptions};
use lethe_cdc::testing::{PgCluster, PgOptions, eventually};
use lethe_cdc::{
    Cdc, CdcConfig, CdcMetrics, EmbeddedTarget, FlushReason, MetricsSnapshot, Target,
    TriggerListener, install_triggers,
};
use std::net::SocketAddr;
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

/// The tables both modes' tests use, as a literal (for `concat!`).
macro_rules! tables {
    () => {
        "
    CREATE TABLE products (
        id int PRIMARY KEY,
        category_id int NOT NULL,
        price numeric NOT NULL,
        name text NOT NULL
    );
    CREATE TABLE settings (name text PRIMARY KEY, value text);
    INSERT INTO products VALUES (1, 5, 10, 'one'), (2, 5, 20, 'two'), (3, 7, 30, 'three');
"
    };
}

/// The replication tests' schema: `REPLICA IDENTITY FULL` on products, since the rules read
/// `{old.category_id}`.
pub const SCHEMA: &str = concat!(tables!(), "ALTER TABLE products REPLICA IDENTITY FULL;\n");

/// The trigger tests' schema: the same without `REPLICA IDENTITY FULL`, since triggers see the
/// whole old row anyway.
pub const TRIGGER_SCHEMA: &str = tables!();

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

/// A table partitioned by region, seen under its own name in both modes.
pub const PARTITIONED: &str = "
    CREATE TABLE orders (id int, region int, total int, PRIMARY KEY (id, region))
        PARTITION BY LIST (region);
    CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN (1);
    CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN (2);
";

pub const PARTITIONED_RULES: &str =
    "[[table]]\ntable = \"orders\"\nkeys = [\"order:{id}\"]\ntags = [\"region:{region}\"]\n";

pub fn config(pg: &PgCluster, rules: &str) -> CdcConfig {
    let mut config = CdcConfig::from_toml(&format!(
        "connection = \"{}\"\nreconnect_min_ms = 50\nreconnect_max_ms = 1000\nstatus_interval_ms = 500\n{rules}",
        pg.connection_string()
    ))
    .expect("test configuration parses");
    config.slot = "lethe".into();
    config
}

/// A started cluster with `schema` applied, and a client on it.
pub async fn database(schema: &str) -> (PgCluster, tokio_postgres::Client) {
    database_with(PgOptions::default(), schema).await
}

/// [`database`] with other server options.
pub async fn database_with(
    options: PgOptions,
    schema: &str,
) -> (PgCluster, tokio_postgres::Client) {
    init_tracing();
    let pg = PgCluster::start_with(options);
    let sql = pg.client().await;
    exec(&sql, schema).await;
    (pg, sql)
}

/// How changes reach the targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Logical replication: [`Cdc`].
    Replication,
    /// Triggers and `LISTEN`: [`TriggerListener`].
    Trigger,
}

impl Mode {
    /// SQL sending an explicit invalidation (a JSON body) on channel/prefix `lethe`.
    pub fn emit(self, body: &str) -> String {
        match self {
            Mode::Replication => format!("SELECT pg_logical_emit_message(true, 'lethe', '{body}')"),
            Mode::Trigger => format!("SELECT pg_notify('lethe', '{body}')"),
        }
    }

    /// Starts this mode with `targets` (not waiting for it to connect).
    pub fn start(self, config: CdcConfig, targets: Vec<Box<dyn Target>>) -> Running {
        match self {
            Mode::Replication => Running::start(config, targets),
            Mode::Trigger => Running::listen(config, targets),
        }
    }

    /// Runs this mode until it fails, which it must do promptly (a setup error at start).
    pub async fn start_error(self, config: CdcConfig) -> lethe_cdc::Error {
        let never = std::future::pending::<()>();
        let run = async move {
            match self {
                Mode::Replication => Cdc::new(config).unwrap().run(Vec::new(), never).await,
                Mode::Trigger => {
                    let listener = TriggerListener::new(config).unwrap();
                    listener.run(Vec::new(), never).await
                }
            }
        };
        tokio::time::timeout(WAIT, run)
            .await
            .expect("fails promptly")
            .unwrap_err()
    }

    /// Everything committed before this call has been applied once it returns: changes are
    /// applied in commit order, so an explicit invalidation of a fresh key sent last is
    /// applied last.
    pub async fn barrier(self, client: &tokio_postgres::Client, cache: &Cache<String, String>) {
        static N: AtomicU64 = AtomicU64::new(0);
        let key = format!("barrier:{}", N.fetch_add(1, Ordering::Relaxed));
        put(cache, &key, &[]);
        exec(client, &self.emit(&format!("{{\"keys\":[\"{key}\"]}}"))).await;
        let c = cache.clone();
        assert!(
            eventually(WAIT, || !has(&c, &key)).await,
            "barrier {key} never applied"
        );
    }
}

/// A connected `mode` over `rules` (with its triggers installed, in trigger mode) applying to
/// a new embedded cache.
pub async fn embedded(mode: Mode, pg: &PgCluster, rules: &str) -> (Cache<String, String>, Running) {
    if mode == Mode::Trigger {
        install_triggers(&config(pg, rules)).await.unwrap();
    }
    let cache = new_cache();
    let running = mode.start(config(pg, rules), cache_target(&cache));
    running.connected().await;
    (cache, running)
}

pub fn cache_target(cache: &Cache<String, String>) -> Vec<Box<dyn Target>> {
    vec![Box::new(EmbeddedTarget::new(cache.clone()))]
}

/// A running CDC or trigger listener: its task, a way to stop it, its metrics.
pub struct Running {
    pub task: JoinHandle<lethe_cdc::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
    pub metrics: Arc<CdcMetrics>,
    /// What runs, for failure messages.
    what: &'static str,
}

impl Running {
    /// Replication mode.
    pub fn start(config: CdcConfig, targets: Vec<Box<dyn Target>>) -> Running {
        let cdc = Cdc::new(config).expect("configuration compiles");
        let metrics = cdc.metrics();
        Running::spawn("CDC", metrics, |stop| cdc.run(targets, stop))
    }

    /// Trigger mode.
    pub fn listen(config: CdcConfig, targets: Vec<Box<dyn Target>>) -> Running {
        let listener = TriggerListener::new(config).expect("configuration compiles");
        let metrics = listener.metrics();
        Running::spawn("listener", metrics, |stop| listener.run(targets, stop))
    }

    fn spawn<F>(
        what: &'static str,
        metrics: Arc<CdcMetrics>,
        run: impl FnOnce(oneshot::Receiver<()>) -> F,
    ) -> Running
    where
        F: Future<Output = lethe_cdc::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        Running {
            task: tokio::spawn(run(rx)),
            stop: Some(tx),
            metrics,
            what,
        }
    }

    /// Replication mode into an embedded cache.
    pub fn embedded(config: CdcConfig, cache: &Cache<String, String>) -> Running {
        Running::start(config, cache_target(cache))
    }

    /// Waits until `check` holds for the metrics, failing with `what` and the metrics if it
    /// never does.
    pub async fn until(&self, what: &str, check: impl Fn(&MetricsSnapshot) -> bool) {
        let m = Arc::clone(&self.metrics);
        assert!(
            eventually(WAIT, || check(&m.snapshot())).await,
            "{what}: {:?}",
            self.metrics.snapshot()
        );
    }

    /// Waits until the stream (or `LISTEN`) is up.
    pub async fn connected(&self) {
        let what = format!("{} never connected", self.what);
        self.until(&what, |s| s.connected).await;
    }

    /// How many flushes for `reason` so far.
    pub fn flushes(&self, reason: FlushReason) -> u64 {
        self.metrics.snapshot().flushes(reason)
    }

    pub async fn stop(mut self) -> lethe_cdc::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let what = self.what;
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("{what} did not stop promptly"))
            .unwrap_or_else(|e| panic!("{what} task panicked: {e}"))
    }
}

/// A Lethe server on a local port, for `RespTarget`s.
pub struct LetheServer {
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl LetheServer {
    pub async fn start() -> LetheServer {
        LetheServer::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// On a port chosen before (see [`unused_port`]).
    pub async fn start_on(port: u16) -> LetheServer {
        LetheServer::on(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap(),
        )
    }

    fn on(listener: tokio::net::TcpListener) -> LetheServer {
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(lethe_server::server::run(listener, async move {
            let _ = stopped.await;
        }));
        LetheServer {
            url: format!("redis://{addr}"),
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// A local port nothing listens on (yet), and its `redis://` URL.
pub fn unused_port() -> (u16, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, format!("redis://127.0.0.1:{port}"))
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

/// [`Mode::barrier`] in replication mode.
pub async fn barrier(client: &tokio_postgres::Client, cache: &Cache<String, String>) {
    Mode::Replication.barrier(client, cache).await;
}

/// [`Mode::barrier`] in trigger mode.
pub async fn notify_barrier(client: &tokio_postgres::Client, cache: &Cache<String, String>) {
    Mode::Trigger.barrier(client, cache).await;
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

/// Inserts, updates, deletes, a transaction of several rows and truncates through [`RULES`]
/// (on the tables of [`SCHEMA`] or [`TRIGGER_SCHEMA`]): each invalidates exactly its entries,
/// and a truncate flushes only where the rules need rows.
pub async fn row_changes_invalidate_exactly_their_entries(
    mode: Mode,
    sql: &tokio_postgres::Client,
    cache: &Cache<String, String>,
    running: &Running,
) {
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
        put(cache, key, &tags);
    }

    // Insert: the new product's key and its category's listing, nothing else.
    exec(sql, "INSERT INTO products VALUES (4, 8, 40, 'four')").await;
    gone(cache, "product:4").await;
    gone(cache, "list:8").await;
    mode.barrier(sql, cache).await;
    for k in [
        "product:1",
        "product:2",
        "price:1",
        "list:5",
        "list:6",
        "list:7",
        "unrelated",
    ] {
        assert!(has(cache, k), "{k} was invalidated by an unrelated insert");
    }

    // A category move: the old and the new category's listings both go; the price did not
    // change, so the price list stays.
    exec(sql, "UPDATE products SET category_id = 6 WHERE id = 1").await;
    gone(cache, "product:1").await;
    gone(cache, "list:5").await;
    gone(cache, "list:6").await;
    mode.barrier(sql, cache).await;
    for k in ["product:2", "price:1", "list:7", "unrelated"] {
        assert!(has(cache, k), "{k} was invalidated by an unrelated update");
    }

    // A price change reaches the price list (`changed = ["price"]`).
    exec(sql, "UPDATE products SET price = 11 WHERE id = 1").await;
    gone(cache, "price:1").await;

    // Delete: the old row's key and category.
    put(cache, "list:5", &["category:5"]);
    exec(sql, "DELETE FROM products WHERE id = 3").await;
    gone(cache, "list:7").await;
    mode.barrier(sql, cache).await;
    assert!(has(cache, "product:2") && has(cache, "list:5"));

    // A transaction touching several rows applies all of them at its commit.
    put(cache, "product:1", &[]);
    exec(
        sql,
        "BEGIN; UPDATE products SET name = 'x' WHERE id = 1; DELETE FROM products WHERE id = 2; COMMIT;",
    )
    .await;
    gone(cache, "product:1").await;
    gone(cache, "product:2").await;

    // Truncating a table whose rules only have literal templates: just that tag.
    put(cache, "config", &["settings"]);
    put(cache, "product:9", &[]);
    exec(sql, "INSERT INTO settings VALUES ('a', 'b')").await;
    gone(cache, "config").await;
    put(cache, "config", &["settings"]);
    exec(sql, "TRUNCATE settings").await;
    gone(cache, "config").await;
    mode.barrier(sql, cache).await;
    assert!(has(cache, "product:9") && has(cache, "unrelated"));
    assert_eq!(running.flushes(FlushReason::Truncate), 0);

    // Truncating products, whose rules need rows: the whole keyspace is flushed.
    exec(sql, "TRUNCATE products").await;
    gone(cache, "unrelated").await;
    assert_eq!(running.flushes(FlushReason::Truncate), 1);
}

/// A change to a partition of [`PARTITIONED`] is seen as one to `orders`, with
/// [`PARTITIONED_RULES`].
pub async fn partitions_are_seen_as_their_table(
    mode: Mode,
    sql: &tokio_postgres::Client,
    cache: &Cache<String, String>,
) {
    put(cache, "order:1", &[]);
    put(cache, "list", &["region:2"]);
    put(cache, "other", &["region:1"]);
    exec(sql, "INSERT INTO orders VALUES (1, 2, 10)").await;
    gone(cache, "order:1").await;
    gone(cache, "list").await;
    mode.barrier(sql, cache).await;
    assert!(has(cache, "other"));
}

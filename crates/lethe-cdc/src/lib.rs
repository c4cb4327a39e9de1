//! PostgreSQL committed changes turned into Lethe invalidations, through logical replication
//! with the built-in `pgoutput` plugin.
//!
//! [`Cdc`] creates (or reuses) a publication and a logical replication slot, streams inserts,
//! updates, deletes and truncates with their old and new column values, turns each row change
//! into a [`lethe::event::Event`] for the table rules (`[[table]]`, compiled into the engine's
//! [`lethe::rules::RuleSet`]), and applies each transaction's invalidations to every
//! [`Target`] at that transaction's commit. Applications can also invalidate explicitly from
//! inside a transaction:
//!
//! ```sql
//! SELECT pg_logical_emit_message(true, 'lethe', '{"tags":["category:5"],"keys":["home"],"prefixes":["search:"]}');
//! ```
//!
//! which is applied when (and only if) that transaction commits. `globs` is accepted too.
//!
//! # Guarantees
//!
//! - **Applied once visible.** A transaction's invalidations are applied only once the
//!   transaction is visible to new snapshots of other sessions: each decoded commit is held
//!   until `pg_current_snapshot()`, on an ordinary side connection, no longer lists it as
//!   running (one query answers for every held commit; rechecked after 250 µs, doubling up to
//!   10 ms). PostgreSQL streams a commit record as soon as it is flushed, before the committing
//!   backend leaves the running set (for as long as a synchronous standby takes to acknowledge),
//!   and an invalidation applied in that window could be followed by a read of the old row and
//!   a fill of it that nothing invalidates again. Hence: **every read of the database started
//!   after an invalidation was applied sees the change**, so a cache filled under a lease
//!   ([`lethe::Cache::lease`]) never keeps a value older than an applied invalidation. Commits
//!   are applied and confirmed in stream order. The cost: normally the commit is already
//!   visible, and the check adds one query round trip per batch of commits (0.33 ms mean in
//!   `lethe-bench consistency`'s `leases` case, BENCHMARKS.md, 2026-12-03 run); behind a synchronous standby, the invalidation waits as
//!   long as the commit (measured: [`MetricsSnapshot::visibility_wait_us`],
//!   [`MetricsSnapshot::visibility_wait_max_us`]). `apply_after_visible = false` turns it off,
//!   only to measure the difference. One exception keeps the database live: if
//!   `synchronous_standby_names` makes change capture's own connection (application name
//!   `lethe-cdc`, or `*`) a synchronous standby, commits wait for change capture to confirm
//!   them; a commit still invisible after 1 s triggers that check, and then the held commits
//!   are applied without waiting, with an error logged naming the setting
//!   ([`MetricsSnapshot::visibility_bypassed`]).
//! - **Version fences.** A `[[table]]` rule with `version = "col"` (an integer column that rises
//!   with every change of a row) fences every key it invalidates at the row's new version (the
//!   old one + 1 on a delete, when the old row is sent) for `fence_hold_ms` (default 10 s),
//!   before invalidating it: a fill or versioned write carrying an older version is refused
//!   ([`lethe::Cache::fence`], [`lethe::version::RejectReason::Fenced`]) whatever the timing, in both
//!   modes. Fences reach [`EmbeddedTarget`], the server's own capture (`lethe serve --cdc`) and
//!   servers behind [`RespTarget`] (as `LETHE.FENCE`, ahead of the invalidations). Tags and
//!   prefixes are not fenced.
//! - **At commit, nothing lost.** Changes are buffered per transaction and applied once its
//!   Commit arrived and is visible (above); its end LSN is confirmed to PostgreSQL (standby status update) only after
//!   every target acknowledged it. A dropped connection, a PostgreSQL restart or a restart of
//!   the runner replays from the slot; replays are harmless because invalidating is idempotent.
//! - **Reconnects** use exponential backoff with jitter, bounded by `reconnect_max_ms`.
//! - **A lost slot** (dropped while we were away, or invalidated because its WAL was removed)
//!   is recreated and every target is flushed (its whole keyspace), since the changes in
//!   between are unknown; the flush is logged at warn level and counted by reason in
//!   [`CdcMetrics`]. A truncate whose rules need row values flushes too (reason `truncate`),
//!   and so does a start that has to create the slot (reason `slot_created`, since nothing
//!   covered the targets before; `flush_on_slot_create = false` turns it off).
//! - **Checks at start**, each failing with an error naming the setting and the fix:
//!   `wal_level = logical`, a free `max_replication_slots`, `max_wal_senders`, the user's
//!   `REPLICATION` attribute, every table and column the rules name, each table having a
//!   replica identity (publishing one without makes PostgreSQL refuse its updates and
//!   deletes), `{id}` resolvable (a
//!   one-column primary key or an `id` column), `REPLICA IDENTITY FULL` where a rule reads old
//!   values of non-identity columns (`{old.col}`, `changed`, a bare `{col}` on delete), and a
//!   reused publication covering every table and operation.
//!
//! # Configuration
//!
//! [`CdcConfig`] deserializes from TOML, standalone or as a `[cdc]` section:
//!
//! ```toml
//! [cdc]
//! connection = "host=127.0.0.1 port=5432 user=app dbname=shop"   # libpq style or a URL
//! slot = "lethe"                 # default "lethe"
//! publication = "lethe"          # default "lethe"; created FOR TABLE the rules' tables
//! create_publication = true      # default
//! flush_on_slot_create = true    # default: flush targets when the slot has to be created
//! message_prefix = "lethe"       # pg_logical_emit_message prefix; default "lethe"
//! apply_after_visible = true     # default: hold commits until visible to other sessions
//! fence_hold_ms = 10000          # how long fences of `version` rules last; default 10 s
//! status_interval_ms = 10000     # idle progress reports; default 10 s
//! reconnect_min_ms = 100         # backoff bounds
//! reconnect_max_ms = 10000
//!
//! # A product: its page, and the listing of its category; on a move between categories
//! # both the old and the new category go (the old value needs REPLICA IDENTITY FULL).
//! [[cdc.table]]
//! table = "public.products"      # or "products" for schema public
//! entity = "products"            # optional; default: the table name (schema-qualified outside public)
//! keys = ["product:{id}"]
//! tags = ["category:{old.category_id}", "category:{new.category_id}"]
//!
//! # Only price changes reach the price lists.
//! [[cdc.table]]
//! table = "products"
//! name = "price lists"
//! operations = ["update"]        # insert, update, delete, truncate; default all
//! changed = ["price"]
//! prefixes = ["prices:{category_id}:"]
//! ```
//!
//! The template and `when` syntax is the engine's (see [`lethe::rules`]).
//!
//! # Running it
//!
//! ```no_run
//! use lethe::Cache;
//! use lethe_cdc::{Cdc, CdcConfig, EmbeddedTarget, RespTarget, Target};
//!
//! # async fn example() -> Result<(), lethe_cdc::Error> {
//! let config = CdcConfig::from_file("lethe.toml")?;
//! let cache: Cache<String, String> = Cache::builder().max_capacity(10_000).build();
//! let targets: Vec<Box<dyn Target>> = vec![
//!     Box::new(EmbeddedTarget::new(cache.clone())),
//!     Box::new(RespTarget::new(["redis://127.0.0.1:6380"])?),
//! ];
//! let cdc = Cdc::new(config)?;
//! let metrics = cdc.metrics(); // snapshot() for INFO or /metrics
//! cdc.run(targets, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # drop(metrics);
//! # Ok(()) }
//! ```
//!
//! # Choice of replication client
//!
//! The maintained Rust replication clients were evaluated first. `pgwire-replication` (0.5)
//! decodes pgoutput over its own wire client, but requires Rust 1.88 and the workspace's
//! `rust-version` is 1.85; `pg_walstream` (0.10) requires 1.87 and, by default, builds
//! `aws-lc-rs` (a C/assembly build) for TLS, or else links libpq. `tokio-postgres` has no
//! replication mode. So this crate uses `tokio-postgres` (0.7, MSRV 1.85) for ordinary SQL
//! (checks, catalog, publication, slot management) and its protocol crate `postgres-protocol`
//! (0.6, MSRV 1.85) for the replication session's message framing, authentication
//! (cleartext, MD5, SCRAM-SHA-256) and error fields; the CopyBoth loop, the standby status
//! updates and the pgoutput decoder (protocol version 1, text tuples) are written here, in
//! [`pgoutput`] and `replication`. TLS is not supported yet: connect over a
//! trusted network or a local socket.
//!
//! # Trigger mode
//!
//! Where logical replication is not allowed, [`install_triggers`] puts an `AFTER` row trigger
//! (and a `TRUNCATE` statement trigger) on each rule's table, from the same configuration,
//! calling a PL/pgSQL function that sends the old and new row as JSON with `pg_notify` on the
//! channel `message_prefix` (default `lethe`); [`TriggerListener`] `LISTEN`s and applies the
//! same rules to the same targets ([`trigger_sql`] prints the SQL, [`uninstall_triggers`]
//! removes it). Notifications arrive at commit, in commit order, but **at most once**: those
//! sent while the listener is disconnected are lost, so every (re)connect flushes every target
//! ([`FlushReason::NotifyReconnect`]). It has no visibility gap: PostgreSQL delivers a
//! notification to a listener only once the sending transaction is visible to it (tested with
//! a commit held by a synchronous standby). Payloads are limited to 8000 bytes: larger rows are
//! trimmed to the columns the rules read, or else flush ([`FlushReason::NotifyOverflow`]).
//! It needs no `wal_level`, slot, publication, `REPLICATION` attribute or replica identity, and
//! costs the writing transactions a trigger per row. Details on [`TriggerListener`].
//!
//! # Modules
//!
//! - `apply`: how invalidations reach targets, for both modes: retry with backoff, flush of
//!   every target, dropping items no target can apply; the reconnect loop around sessions;
//! - `config`: [`CdcConfig`], [`TableRule`];
//! - `rules`: table rules compiled into the engine's rule set, catalog checks, row → event;
//! - `checks`: server settings, privilege, catalog, publication and slot management (SQL);
//! - `replication`: the replication connection and CopyBoth stream;
//! - [`pgoutput`]: decoding of the stream's messages;
//! - `runner`: [`Cdc`], the session loop, transactions, confirmation, reconnects;
//! - `visibility`: when a decoded commit may be applied (snapshot checks);
//! - `target`: [`Target`], [`EmbeddedTarget`], [`RespTarget`];
//! - `trigger`: trigger mode: [`TriggerListener`], [`install_triggers`], [`trigger_sql`];
//! - `metrics`: [`CdcMetrics`], [`MetricsSnapshot`];
//! - `error`: [`Error`], [`ErrorKind`];
//! - `testing` (feature `testing`): a throwaway PostgreSQL cluster for tests and benchmarks.

#![forbid(unsafe_code)]

mod apply;
mod checks;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod metrics;
pub mod pgoutput;
mod replication;
mod rules;
mod runner;
mod target;
#[cfg(feature = "testing")]
pub mod testing;
mod trigger;
mod visibility;

pub use config::{CdcConfig, TableRule};
pub use error::{Error, ErrorKind, Result};
pub use metrics::{CdcMetrics, FlushReason, MetricsSnapshot};
pub use rules::TableName;
pub use runner::Cdc;
pub use target::{Batch, BoxFuture, EmbeddedTarget, Fence, RespTarget, Target};
pub use trigger::{
    InstallReport, TriggerListener, install_triggers, trigger_sql, uninstall_sql,
    uninstall_triggers,
};

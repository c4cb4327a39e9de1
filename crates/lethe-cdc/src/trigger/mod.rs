//! Trigger mode: invalidations from PostgreSQL triggers and `LISTEN`/`NOTIFY`, for databases
//! where logical replication is not available (managed services without `wal_level = logical`,
//! users without the `REPLICATION` attribute). This module owns the trigger SQL
//! ([`trigger_sql`], [`install_triggers`], [`uninstall_triggers`]) and the listening client
//! ([`TriggerListener`]).
//!
//! From the same [`CdcConfig`] and `[[table]]` rules as replication mode, each rule's table
//! gets an `AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW` trigger and an `AFTER TRUNCATE
//! ... FOR EACH STATEMENT` trigger (only for the operations some rule fires on) calling a
//! PL/pgSQL function that sends `pg_notify(channel, payload)`:
//!
//! ```json
//! {"table": "public.products", "op": "update",
//!  "old": {"id": "1", "category_id": "5", "price": "10.50"},
//!  "new": {"id": "1", "category_id": "6", "price": "10.50"}}
//! ```
//!
//! Values are PostgreSQL's text forms of the columns (via `jsonb_each_text`), so numbers keep
//! their exact spelling; booleans arrive as `true`/`false` and are mapped; date and time types
//! arrive in JSON's ISO 8601 form (`2024-05-01T10:00:00`), not the `DateStyle` text replication
//! mode sees, so a template rendering such a column differs between the modes.
//!
//! The **channel** is the configuration's `message_prefix` (default `lethe`); the function is
//! `"<schema>"."<channel>_notify"()` in each schema holding a rule's table, and the triggers are
//! `"<channel>_notify"` and `"<channel>_notify_truncate"`. Applications can also invalidate
//! explicitly, transactionally, on the same channel:
//!
//! ```sql
//! SELECT pg_notify('lethe', '{"tags":["category:5"],"keys":["home"],"prefixes":["search:"]}');
//! ```
//!
//! # Guarantees, and how they differ from replication mode
//!
//! - **At commit, in commit order.** PostgreSQL delivers notifications when (and only if) the
//!   notifying transaction commits, in commit order; a rolled-back transaction notifies
//!   nothing. Each notification's invalidations are applied to every target (retried with
//!   backoff while a target fails) before later ones.
//! - **At most once.** Unlike a replication slot, `LISTEN` keeps nothing for a listener that is
//!   not connected: notifications sent while the listener is disconnected (a network failure,
//!   a PostgreSQL restart, the listener's own restart) are lost, and so are notifications
//!   received but not yet applied when the process dies. To stay correct anyway, the listener
//!   **flushes every target** after each (re)connect, once `LISTEN` is in effect
//!   ([`FlushReason::NotifyReconnect`](crate::FlushReason::NotifyReconnect), logged at warn
//!   level and counted in [`CdcMetrics`](crate::CdcMetrics)).
//!   The first connect flushes too (entries cached before it are covered by nothing), unless
//!   `flush_on_slot_create = false`. A flush is the price of every disconnection.
//! - **Payload limit.** PostgreSQL refuses notification payloads of 8000 bytes or more. A row
//!   whose JSON is too large is sent with only the columns the rules read (and the primary
//!   key); if even that is too large, with no values at all, and the listener flushes every
//!   target ([`FlushReason::NotifyOverflow`](crate::FlushReason::NotifyOverflow)).
//! - **Bounded backlog.** Notifications received but not yet applied (a target failing under
//!   heavy writes) are held up to 65,536; beyond that they are dropped and every target is
//!   flushed once the targets accept again (also `NotifyOverflow`). The connection keeps
//!   being read meanwhile, so PostgreSQL's notification queue does not fill.
//! - **Truncate** applies the rules' literal templates, and flushes every target (the whole
//!   keyspace, not only the table's entries: which entries came from the table is not known)
//!   when a rule firing on truncate has templates that need a row, as in replication mode.
//!   Truncating a partition directly fires no trigger of its partitioned table.
//! - **No replication prerequisites**: any `wal_level`, no slot, no publication, no
//!   `REPLICATION` attribute, no `REPLICA IDENTITY FULL` (a trigger sees the whole old row).
//!   Installing needs the right to create triggers on the tables and functions in their
//!   schemas; listening needs only a login.
//! - **Cost on the writer**: the trigger runs inside every writing transaction (a JSON
//!   conversion and a queued notification per row). Notifications wait in a server queue (8 GB
//!   by default) until every listening session has read them; a session that listens but
//!   stops reading (a frozen process whose connection stays open) eventually fills it, and
//!   then committing transactions that notify fail, which is worse for the application than
//!   replication mode's retained WAL. The listener reads continuously (see the backlog above).
//! - In trigger mode [`MetricsSnapshot`](crate::MetricsSnapshot)'s `transactions` counts
//!   notifications (one per row change), LSNs and `lag_*` stay 0, and [`Batch`](crate::Batch)es
//!   carry LSN 0.
//!
//! ```no_run
//! use lethe::Cache;
//! use lethe_cdc::{CdcConfig, EmbeddedTarget, Target, TriggerListener, install_triggers};
//!
//! # async fn example() -> Result<(), lethe_cdc::Error> {
//! let config = CdcConfig::from_file("lethe.toml")?;
//! install_triggers(&config).await?; // or apply `trigger_sql(&config)?` with psql
//! let cache: Cache<String, String> = Cache::builder().max_capacity(10_000).build();
//! let targets: Vec<Box<dyn Target>> = vec![Box::new(EmbeddedTarget::new(cache.clone()))];
//! let listener = TriggerListener::new(config)?;
//! let metrics = listener.metrics();
//! listener.run(targets, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # drop(metrics);
//! # Ok(()) }
//! ```

mod listen;
mod sql;

pub use listen::TriggerListener;

use crate::checks;
use crate::config::CdcConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::rules::{CompiledRules, TableCatalog, TableName};
use std::collections::HashMap;
use tracing::info;

/// A validated notification channel (the configuration's `message_prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Channel(String);

impl Channel {
    /// Trigger and function names append up to 16 bytes to the channel and PostgreSQL cuts
    /// identifiers at 63 bytes, so longer channels would silently collide.
    const MAX_LEN: usize = 63 - "_notify_truncate".len();

    pub fn new(name: &str) -> Result<Channel> {
        if name.is_empty() || name.len() > Channel::MAX_LEN || name.contains('\0') {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "trigger mode uses message_prefix `{name}` as its NOTIFY channel and in \
                     trigger names: use 1 to {} bytes",
                    Channel::MAX_LEN
                ),
            ));
        }
        Ok(Channel(name.to_owned()))
    }

    pub fn of(config: &CdcConfig) -> Result<Channel> {
        Channel::new(&config.message_prefix)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`install_triggers`] or [`uninstall_triggers`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstallReport {
    /// The `LISTEN` channel the triggers notify.
    pub channel: String,
    /// The tables given triggers (or, for an uninstall, whose triggers were dropped if present).
    pub tables: Vec<TableName>,
    /// The notifying functions created or replaced (or dropped), schema-qualified and quoted.
    pub functions: Vec<String>,
}

/// The SQL [`install_triggers`] runs, for review or to apply by hand (`psql -f`): one
/// transaction, safe to run again. Needs no database, so it does not check the rules against
/// the catalog (installing does).
pub fn trigger_sql(config: &CdcConfig) -> Result<String> {
    let channel = Channel::of(config)?;
    let rules = CompiledRules::compile(&config.tables)?;
    Ok(sql::install(&rules, &channel))
}

/// The SQL [`uninstall_triggers`] runs.
pub fn uninstall_sql(config: &CdcConfig) -> Result<String> {
    let channel = Channel::of(config)?;
    let rules = CompiledRules::compile(&config.tables)?;
    let tables: Vec<TableName> = rules.table_names().cloned().collect();
    Ok(sql::uninstall(&tables, &channel))
}

/// Checks the rules against the database catalog with the same errors as replication mode (a
/// missing table or column, an unresolvable `{id}`), then installs the triggers and functions
/// of [`trigger_sql`] in one transaction. Running it again replaces them, so it is also how a
/// changed configuration is applied.
pub async fn install_triggers(config: &CdcConfig) -> Result<InstallReport> {
    config.validate()?;
    let channel = Channel::of(config)?;
    let mut rules = CompiledRules::compile(&config.tables)?;
    let client = checks::connect(&config.pg_config()?).await?;
    check_catalog(&client, &mut rules).await?;
    let script = sql::install(&rules, &channel);
    client
        .batch_execute(&script)
        .await
        .map_err(|e| Error::connection("installing the triggers", e))?;
    let report = report(&rules, &channel);
    info!(
        channel = channel.as_str(),
        tables = report.tables.len(),
        "installed Lethe triggers"
    );
    Ok(report)
}

/// Drops the triggers of every rule table (those that exist) and the notifying functions, in
/// one transaction.
pub async fn uninstall_triggers(config: &CdcConfig) -> Result<InstallReport> {
    config.validate()?;
    let channel = Channel::of(config)?;
    let rules = CompiledRules::compile(&config.tables)?;
    let tables: Vec<TableName> = rules.table_names().cloned().collect();
    let client = checks::connect(&config.pg_config()?).await?;
    client
        .batch_execute(&sql::uninstall(&tables, &channel))
        .await
        .map_err(|e| Error::connection("removing the triggers", e))?;
    info!(channel = channel.as_str(), "removed Lethe triggers");
    Ok(report(&rules, &channel))
}

fn report(rules: &CompiledRules, channel: &Channel) -> InstallReport {
    let names = sql::Names::new(channel);
    let mut functions: Vec<String> = rules
        .table_names()
        .map(|t| names.function_in(&t.schema))
        .collect();
    functions.sort();
    functions.dedup();
    InstallReport {
        channel: channel.as_str().to_owned(),
        tables: rules.table_names().cloned().collect(),
        functions,
    }
}

/// The replication-mode catalog check, as it applies to triggers: a trigger sees the whole old
/// row, which is what `REPLICA IDENTITY FULL` means to the checks, so every table is checked as
/// if it had it. Tables, columns and `{id}` are checked exactly as in replication mode; the
/// check also fills in each table's id column for the listener.
pub(crate) async fn check_catalog(
    client: &tokio_postgres::Client,
    rules: &mut CompiledRules,
) -> Result<HashMap<TableName, TableCatalog>> {
    let names: Vec<TableName> = rules.table_names().cloned().collect();
    let mut catalog = checks::load_catalog(client, names.iter()).await?;
    for table in catalog.values_mut() {
        table.replica_identity = 'f';
    }
    rules.check_catalog(&catalog)?;
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_bounded() {
        assert!(Channel::new("lethe").is_ok());
        let long = "c".repeat(48);
        let err = Channel::new(&long).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("1 to 47 bytes"), "{err}");
        assert!(Channel::new(&long[..47]).is_ok());
    }

    #[test]
    fn sql_needs_no_database_but_checks_rules() {
        let config = CdcConfig::from_toml(
            "connection = \"host=x\"\n[[table]]\ntable = \"products\"\nkeys = [\"p:{id}\"]\n",
        )
        .unwrap();
        let sql = trigger_sql(&config).unwrap();
        assert!(sql.contains("ON \"public\".\"products\""));
        let removal = uninstall_sql(&config).unwrap();
        assert!(removal.contains("DROP FUNCTION IF EXISTS \"public\".\"lethe_notify\"();"));
        let bad = CdcConfig::from_toml(
            "connection = \"host=x\"\n[[table]]\ntable = \"products\"\noperations = [\"upsert\"]\nkeys = [\"k\"]\n",
        )
        .unwrap();
        assert_eq!(trigger_sql(&bad).unwrap_err().kind(), ErrorKind::Rule);
    }
}

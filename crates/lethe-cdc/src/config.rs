//! The configuration: where PostgreSQL is, which slot and publication to use, how to retry, and
//! the table rules. Deserializable from TOML on its own or as a `[cdc]` section of a larger file
//! (embed [`CdcConfig`] as a field named `cdc` in a server configuration struct).
//!
//! ```
//! use lethe_cdc::CdcConfig;
//!
//! let config = CdcConfig::from_toml(r#"
//! [cdc]
//! connection = "host=127.0.0.1 port=5432 user=app dbname=shop"
//! slot = "lethe"
//! publication = "lethe"
//!
//! [[cdc.table]]
//! table = "public.products"
//! keys = ["product:{id}"]
//! tags = ["category:{old.category_id}", "category:{new.category_id}"]
//!
//! [[cdc.table]]
//! table = "public.products"
//! name = "price list"
//! operations = ["update"]
//! changed = ["price"]
//! prefixes = ["prices:{category_id}:"]
//! "#)?;
//! assert_eq!(config.slot, "lethe");
//! assert_eq!(config.tables.len(), 2);
//! # Ok::<(), lethe_cdc::Error>(())
//! ```

use crate::error::{Error, ErrorKind, Result};
use serde::Deserialize;
use std::time::Duration;

/// Everything [`crate::Cdc`] needs. Field names are the TOML keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CdcConfig {
    /// A libpq-style connection string, `key=value` pairs or a `postgresql://` URL. The user
    /// needs the `REPLICATION` attribute (or superuser). TLS is not supported yet: use a
    /// trusted network or a local socket (`host=/var/run/postgresql`).
    pub connection: String,
    /// The logical replication slot; created with the `pgoutput` plugin if missing.
    #[serde(default = "default_name")]
    pub slot: String,
    /// The publication; created `FOR TABLE` the rules' tables (with
    /// `publish_via_partition_root`, so a partitioned table's changes carry its name) if
    /// missing (see `create_publication`), reused if present: it must then cover every rule's
    /// table and publish every operation, and a partitioned table needs
    /// `publish_via_partition_root = true`.
    #[serde(default = "default_name")]
    pub publication: String,
    /// Whether a missing publication may be created. When false a missing one is an error.
    #[serde(default = "yes")]
    pub create_publication: bool,
    /// Whether to flush the targets when the runner starts and has to create the slot. A
    /// runner cannot tell a first run from a slot dropped while it was not running, and
    /// entries cached before the slot existed are covered by nothing, so the safe default is
    /// to flush (an in-process cache is empty at start anyway). Turn off when the targets are
    /// known to be empty or consistent at first start.
    #[serde(default = "yes")]
    pub flush_on_slot_create: bool,
    /// Hold each decoded commit until other sessions can see it (a fresh snapshot on a side
    /// connection no longer lists its transaction as running) before applying it. On by
    /// default: without it, an invalidation can reach the cache while the commit is still
    /// invisible (for as long as a synchronous standby takes to acknowledge it), and a reader
    /// can then cache the old row after the invalidation. Turning it off trades that guarantee
    /// for one query round trip per batch of commits; it exists to measure the difference.
    #[serde(default = "yes")]
    pub apply_after_visible: bool,
    /// How long a fence set by a rule's `version` column lasts, in milliseconds: it must
    /// outlast the longest time between a reader's database read and its fill. Fences are
    /// kept per key for this long, so memory is the change rate times this.
    #[serde(default = "default_fence_hold_ms")]
    pub fence_hold_ms: u64,
    /// The prefix of `pg_logical_emit_message` messages that carry explicit invalidations.
    #[serde(default = "default_name")]
    pub message_prefix: String,
    /// How often to report progress to PostgreSQL even when idle, in milliseconds. Must stay
    /// well under the server's `wal_sender_timeout` (60 s by default).
    #[serde(default = "default_status_interval_ms")]
    pub status_interval_ms: u64,
    /// First reconnect delay, in milliseconds; doubled per failed attempt.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Longest reconnect (and target retry) delay, in milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// The table rules, `[[table]]` (or `[[cdc.table]]` inside a larger file).
    #[serde(default, rename = "table")]
    pub tables: Vec<TableRule>,
}

/// One `[[table]]` entry: changes to a table, turned into invalidations.
///
/// | key | required | meaning |
/// |---|---|---|
/// | `table` | yes | `schema.table`, or `table` for the `public` schema |
/// | `entity` | no | the entity type of the events (default: the table name, schema-qualified outside `public`) |
/// | `name` | no | named in errors and logs (default: `table #n`) |
/// | `operations` | no | any of `insert`, `update`, `delete`, `truncate`; absent means all |
/// | `changed` | no | columns; on an update, fire only if one of them changed |
/// | `when` | no | column conditions, as in the engine's `[[rule]]` |
/// | `keys`, `tags`, `prefixes`, `globs` | at least one | templates over the row: `{col}` (new value, or old on a delete), `{old.col}`, `{new.col}`, `{id}` (a one-column primary key) |
/// | `version` | no | an integer column that rises with every change of a row: each key the rule invalidates is also *fenced* at the new value (on a delete, the old value + 1, when known) for `fence_hold_ms`, so a fill or versioned write carrying an older version is refused ([`lethe::Cache::fence`]) |
///
/// Several entries may name the same table; each fires on its own.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableRule {
    /// `schema.table` or `table` (schema `public`).
    pub table: String,
    /// The entity type events about this table carry; all entries for one table must agree.
    pub entity: Option<String>,
    /// A unique name for errors and logs.
    pub name: Option<String>,
    /// The operations this rule fires on.
    pub operations: Option<Vec<String>>,
    /// Only fire on updates changing one of these columns.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Conditions on column values, in the engine's `when` syntax.
    pub when: Option<toml::Table>,
    /// Key templates.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Tag templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Key prefix templates.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Glob templates.
    #[serde(default)]
    pub globs: Vec<String>,
    /// A version column: the keys this rule invalidates are fenced at the row's new version.
    pub version: Option<String>,
}

impl TableRule {
    /// A rule for `table` with nothing to invalidate yet.
    pub fn new(table: impl Into<String>) -> TableRule {
        TableRule {
            table: table.into(),
            ..TableRule::default()
        }
    }
}

fn default_name() -> String {
    "lethe".to_owned()
}

fn yes() -> bool {
    true
}

fn default_fence_hold_ms() -> u64 {
    10_000
}

fn default_status_interval_ms() -> u64 {
    10_000
}

fn default_reconnect_min_ms() -> u64 {
    100
}

fn default_reconnect_max_ms() -> u64 {
    10_000
}

impl CdcConfig {
    /// A configuration with defaults for everything but the connection string.
    pub fn new(connection: impl Into<String>) -> CdcConfig {
        CdcConfig {
            connection: connection.into(),
            slot: default_name(),
            publication: default_name(),
            create_publication: true,
            flush_on_slot_create: true,
            apply_after_visible: true,
            fence_hold_ms: default_fence_hold_ms(),
            message_prefix: default_name(),
            status_interval_ms: default_status_interval_ms(),
            reconnect_min_ms: default_reconnect_min_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            tables: Vec::new(),
        }
    }

    /// Parses a TOML document that is either the configuration itself or holds it under
    /// `[cdc]`, and validates it.
    pub fn from_toml(text: &str) -> Result<CdcConfig> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::new(ErrorKind::Config, format!("CDC configuration: {e}"))
        })?;
        let section = match doc.remove("cdc") {
            Some(toml::Value::Table(t)) => t,
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "CDC configuration: `cdc` must be a table",
                ));
            }
            None => doc,
        };
        let config: CdcConfig = section
            .try_into()
            .map_err(|e: toml::de::Error| Error::new(ErrorKind::Config, format!("[cdc]: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file with [`CdcConfig::from_toml`].
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<CdcConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read CDC configuration {}", path.display()),
            )
            .with_source(e)
        })?;
        CdcConfig::from_toml(&text)
    }

    /// Adds a table rule.
    pub fn table(mut self, rule: TableRule) -> CdcConfig {
        self.tables.push(rule);
        self
    }

    /// Checks what can be checked without a database: names are valid identifiers, intervals
    /// are positive, the connection string parses. Table rules are compiled (and checked) by
    /// [`crate::Cdc::new`].
    pub fn validate(&self) -> Result<()> {
        // Slot names are restricted by PostgreSQL to these characters; checking here turns a
        // confusing server error into a clear one, and lets the name be spliced into commands.
        let slot_ok = !self.slot.is_empty()
            && self.slot.len() <= 63
            && self
                .slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !slot_ok {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "slot name `{}` is invalid: use 1 to 63 lowercase letters, digits or `_`",
                    self.slot
                ),
            ));
        }
        if self.publication.is_empty() || self.publication.contains('\0') {
            return Err(Error::new(
                ErrorKind::Config,
                "publication name must be non-empty",
            ));
        }
        if self.message_prefix.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "message_prefix must be non-empty",
            ));
        }
        if self.status_interval_ms == 0 || self.reconnect_min_ms == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "status_interval_ms and reconnect_min_ms must be positive",
            ));
        }
        if self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(Error::new(
                ErrorKind::Config,
                "reconnect_max_ms must be at least reconnect_min_ms",
            ));
        }
        let pg = self.pg_config()?;
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::new(
                ErrorKind::Config,
                "sslmode=require: TLS is not supported yet; connect over a trusted network or a \
                 local socket (host=/path/to/socket/dir)",
            ));
        }
        Ok(())
    }

    pub(crate) fn pg_config(&self) -> Result<tokio_postgres::Config> {
        self.connection.parse().map_err(|e: tokio_postgres::Error| {
            Error::new(
                ErrorKind::Config,
                format!("connection string does not parse: {e}"),
            )
        })
    }

    pub(crate) fn fence_hold(&self) -> Duration {
        Duration::from_millis(self.fence_hold_ms)
    }

    pub(crate) fn status_interval(&self) -> Duration {
        Duration::from_millis(self.status_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_and_section_forms_parse_alike() {
        let body =
            "connection = \"host=localhost\"\n[[table]]\ntable = \"t\"\nkeys = [\"k:{id}\"]\n";
        let a = CdcConfig::from_toml(body).unwrap();
        let b = CdcConfig::from_toml(
            "[server]\nport = 1\n[cdc]\nconnection = \"host=localhost\"\n[[cdc.table]]\ntable = \"t\"\nkeys = [\"k:{id}\"]\n",
        )
        .unwrap();
        assert_eq!(a.tables.len(), 1);
        assert_eq!(b.tables.len(), 1);
        assert_eq!(a.slot, "lethe");
        assert_eq!(b.publication, "lethe");
    }

    #[test]
    fn unknown_keys_and_bad_slots_are_refused() {
        let err = CdcConfig::from_toml("connection = \"host=x\"\nslott = \"a\"\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("slott"), "{err}");
        let err = CdcConfig::from_toml("connection = \"host=x\"\nslot = \"A-b\"\n").unwrap_err();
        assert!(err.to_string().contains("slot name `A-b`"), "{err}");
        let err = CdcConfig::from_toml("connection = \"host=x sslmode=require\"\n").unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}

//! The SQL side: a regular `tokio-postgres` connection used to check what logical replication
//! needs before streaming (server settings, privilege, catalog), and to manage the publication
//! and the slot. Every failed check says which setting is missing and how to fix it.

use crate::error::{Error, ErrorKind, Result};
use crate::pgoutput::{Lsn, parse_lsn};
use crate::rules::{TableCatalog, TableName, quote_ident};
use std::collections::HashMap;
use tokio_postgres::{Client, NoTls};
use tracing::warn;

/// A connected SQL client; the connection task ends when the client is dropped.
pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::connection("cannot connect to PostgreSQL", e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "PostgreSQL control connection ended");
        }
    });
    Ok(client)
}

fn query_err(what: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::connection(what, e)
}

/// Settings and privileges: `wal_level`, `max_replication_slots`, `max_wal_senders`, and the
/// user's `REPLICATION` attribute. `slot_exists` tells whether a free slot is needed.
pub(crate) async fn check_server(client: &Client, slot_exists: bool) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), \
                    current_setting('max_replication_slots')::int, \
                    current_setting('max_wal_senders')::int, \
                    (SELECT count(*)::int FROM pg_replication_slots), \
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
                    current_user::text",
            &[],
        )
        .await
        .map_err(query_err("reading server settings"))?;
    let wal_level: String = row.get(0);
    let max_slots: i32 = row.get(1);
    let max_senders: i32 = row.get(2);
    let used_slots: i32 = row.get(3);
    let can_replicate: Option<bool> = row.get(4);
    let user: String = row.get(5);
    if wal_level != "logical" {
        return Err(Error::new(
            ErrorKind::Setting,
            format!(
                "wal_level is `{wal_level}`, but logical replication needs `logical`: set \
                 `wal_level = logical` in postgresql.conf (or run `ALTER SYSTEM SET wal_level = \
                 logical`) and restart PostgreSQL"
            ),
        ));
    }
    if max_slots == 0 || (!slot_exists && used_slots >= max_slots) {
        return Err(Error::new(
            ErrorKind::Setting,
            format!(
                "max_replication_slots is {max_slots} with {used_slots} in use, so no \
                 replication slot can be created: raise `max_replication_slots` in \
                 postgresql.conf (or drop an unused slot) and restart PostgreSQL"
            ),
        ));
    }
    if max_senders == 0 {
        return Err(Error::new(
            ErrorKind::Setting,
            "max_wal_senders is 0, so no replication connection is accepted: set \
             `max_wal_senders = 10` in postgresql.conf and restart PostgreSQL",
        ));
    }
    if can_replicate != Some(true) {
        return Err(Error::new(
            ErrorKind::Setting,
            format!(
                "user `{user}` lacks the REPLICATION attribute: run `ALTER ROLE {} REPLICATION` \
                 as a superuser (and allow it in pg_hba.conf for `replication` connections)",
                quote_ident(&user)
            ),
        ));
    }
    Ok(())
}

/// The catalog entries of the given tables; tables that do not exist are absent.
pub(crate) async fn load_catalog<'a>(
    client: &Client,
    tables: impl Iterator<Item = &'a TableName>,
) -> Result<HashMap<TableName, TableCatalog>> {
    let mut out = HashMap::new();
    for table in tables {
        let row = client
            .query_opt(
                "SELECT c.oid, c.relreplident::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                &[&table.schema, &table.name],
            )
            .await
            .map_err(query_err("reading the catalog"))?;
        let Some(row) = row else { continue };
        let oid: u32 = row.get(0);
        let identity: String = row.get(1);
        let columns = client
            .query(
                "SELECT attname::text FROM pg_attribute \
                 WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(query_err("reading the catalog"))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let index_columns = |flag: &'static str| {
            let sql = format!(
                "SELECT a.attname::text FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = $1 AND i.{flag} ORDER BY k.ord"
            );
            async move {
                client
                    .query(&sql, &[&oid])
                    .await
                    .map_err(query_err("reading the catalog"))
                    .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
            }
        };
        let primary_key = index_columns("indisprimary").await?;
        let identity_index = index_columns("indisreplident").await?;
        out.insert(
            table.clone(),
            TableCatalog {
                columns,
                primary_key,
                replica_identity: identity.chars().next().unwrap_or('d'),
                identity_index,
            },
        );
    }
    Ok(out)
}

/// Makes sure the publication exists (creating it when allowed) and covers every table with
/// every operation.
pub(crate) async fn ensure_publication(
    client: &Client,
    publication: &str,
    tables: &[TableName],
    create: bool,
) -> Result<()> {
    let row = client
        .query_opt(
            "SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication \
             WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(query_err("reading publications"))?;
    let Some(row) = row else {
        if !create {
            return Err(Error::new(
                ErrorKind::Setting,
                format!(
                    "publication `{publication}` does not exist and create_publication is \
                     false: create it with `CREATE PUBLICATION {} FOR TABLE ...`",
                    quote_ident(publication)
                ),
            ));
        }
        let list: Vec<String> = tables.iter().map(TableName::quoted).collect();
        let sql = if list.is_empty() {
            // A publication needs at least one table to be useful, but an empty one still
            // carries logical messages.
            format!("CREATE PUBLICATION {}", quote_ident(publication))
        } else {
            // Via the partition root, so changes to a partitioned table's partitions arrive
            // under the table's own name, which is what rules name; no effect otherwise.
            format!(
                "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)",
                quote_ident(publication),
                list.join(", ")
            )
        };
        client
            .batch_execute(&sql)
            .await
            .map_err(query_err("creating the publication"))?;
        return Ok(());
    };
    let ops = [
        ("insert", row.get::<_, bool>(0)),
        ("update", row.get(1)),
        ("delete", row.get(2)),
        ("truncate", row.get(3)),
    ];
    if let Some((op, _)) = ops.iter().find(|(_, on)| !on) {
        return Err(Error::new(
            ErrorKind::Setting,
            format!(
                "publication `{publication}` does not publish {op}s: run `ALTER PUBLICATION {} \
                 SET (publish = 'insert, update, delete, truncate')`",
                quote_ident(publication)
            ),
        ));
    }
    for table in tables {
        let covered = client
            .query_opt(
                "SELECT 1 FROM pg_publication_tables \
                 WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                &[&publication, &table.schema, &table.name],
            )
            .await
            .map_err(query_err("reading publications"))?
            .is_some();
        if !covered {
            return Err(Error::new(
                ErrorKind::Setting,
                format!(
                    "publication `{publication}` does not include table {table}: run `ALTER \
                     PUBLICATION {} ADD TABLE {}`",
                    quote_ident(publication),
                    table.quoted()
                ),
            ));
        }
    }
    Ok(())
}

/// The slot as PostgreSQL sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// No slot of that name.
    Missing,
    /// Usable; changes resume after `confirmed`.
    Ready { confirmed: Option<Lsn> },
    /// Present but unusable: its WAL was removed (`wal_status = lost`), so changes were lost.
    Invalid,
}

pub(crate) async fn slot_state(client: &Client, slot: &str) -> Result<SlotState> {
    let row = client
        .query_opt(
            "SELECT s.plugin::text, s.slot_type, d.datname::text, s.wal_status, \
                    s.confirmed_flush_lsn::text, current_database()::text \
             FROM pg_replication_slots s LEFT JOIN pg_database d ON d.oid = s.datoid \
             WHERE s.slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(query_err("reading replication slots"))?;
    let Some(row) = row else {
        return Ok(SlotState::Missing);
    };
    let plugin: Option<String> = row.get(0);
    let kind: Option<String> = row.get(1);
    let db: Option<String> = row.get(2);
    let wal_status: Option<String> = row.get(3);
    let confirmed: Option<String> = row.get(4);
    let current_db: String = row.get(5);
    if kind.as_deref() != Some("logical")
        || plugin.as_deref() != Some("pgoutput")
        || db.as_deref() != Some(current_db.as_str())
    {
        return Err(Error::new(
            ErrorKind::Setting,
            format!(
                "replication slot `{slot}` exists but is not a pgoutput logical slot of database \
                 `{current_db}` (type {}, plugin {}, database {}): choose another slot name",
                kind.as_deref().unwrap_or("?"),
                plugin.as_deref().unwrap_or("?"),
                db.as_deref().unwrap_or("?")
            ),
        ));
    }
    if wal_status.as_deref() == Some("lost") {
        return Ok(SlotState::Invalid);
    }
    Ok(SlotState::Ready {
        confirmed: confirmed.as_deref().and_then(parse_lsn),
    })
}

/// Creates the slot with the pgoutput plugin; returns its consistent point.
pub(crate) async fn create_slot(client: &Client, slot: &str) -> Result<Lsn> {
    let row = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await
        .map_err(query_err("creating the replication slot"))?;
    let lsn: String = row.get(0);
    parse_lsn(&lsn).ok_or_else(|| Error::protocol(format!("bad LSN `{lsn}` from slot creation")))
}

pub(crate) async fn drop_slot(client: &Client, slot: &str) -> Result<()> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(query_err("dropping the invalid replication slot"))?;
    Ok(())
}

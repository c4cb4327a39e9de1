//! The `LISTEN` side of trigger mode: [`TriggerListener`] keeps a connection listening on the
//! channel (reconnecting with backoff), decodes each notification into a row change and then,
//! through the table rules, into invalidations, and applies them to every target. Every
//! (re)connect flushes the targets, because notifications sent while nobody listened are gone
//! (see the module docs of `trigger` for the guarantees).

use super::sql::{Expected, Names};
use super::{Channel, check_catalog};
use crate::apply::{self, Backoff, Explicit, Sessions, Stop};
use crate::config::CdcConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{CdcMetrics, FlushReason};
use crate::rules::{self, Column, CompiledRules, TableSpec, quote_ident};
use crate::target::{Batch, Fence, Target};
use lethe::Invalidation;
use lethe::event::Operation;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};
use tracing::{debug, info, warn};

/// At most this many notifications already received are applied as one batch: fewer round
/// trips to remote targets for a transaction touching many rows, bounded latency for the rest.
const MAX_BATCH: usize = 512;

/// Notifications received and not yet applied, at most: beyond it (targets failing for long
/// under heavy writes) they are dropped and every target flushed once the targets recover.
const BACKLOG: usize = 65_536;

/// A liveness query in flight.
type Ping<'a> = Pin<
    Box<
        dyn Future<
                Output = std::result::Result<
                    Vec<tokio_postgres::SimpleQueryMessage>,
                    tokio_postgres::Error,
                >,
            > + Send
            + 'a,
    >,
>;

/// Invalidations from trigger notifications (`LISTEN`), for databases without logical
/// replication. Install the triggers first ([`crate::install_triggers`]), then
/// [`TriggerListener::run`] until shutdown.
///
/// The channel is the configuration's `message_prefix` (default `lethe`); applications can
/// send explicit invalidations on it too:
/// `SELECT pg_notify('lethe', '{"keys":["home"],"tags":["category:5"]}')`.
///
/// # Guarantees
///
/// - Notifications arrive when (and only if) their transaction commits, in commit order; each
///   one's invalidations reach every target (retried with backoff) before later ones.
/// - **At most once**: notifications sent while the listener is disconnected (or received but
///   not applied when the process dies) are lost, so after every (re)connect, once `LISTEN` is
///   in effect, every target is flushed ([`FlushReason::NotifyReconnect`], logged at warn; the
///   first connect too unless `flush_on_slot_create = false`). Replication mode
///   ([`crate::Cdc`]) replays from its slot instead and flushes only when the slot is lost.
/// - Payloads are limited by PostgreSQL to 8000 bytes: a larger row is sent with only the
///   columns the rules read and the primary key, or if still too large without values, and
///   then every target is flushed ([`FlushReason::NotifyOverflow`]).
/// - A truncate applies the rules' literal templates, or flushes the whole keyspace when a rule
///   needs row values ([`FlushReason::Truncate`]).
/// - Dates and times arrive in JSON's ISO 8601 form (`2024-05-01T10:00:00`), not the text form
///   replication mode sees; other values are PostgreSQL's text forms, as in replication mode.
/// - The start fails with a setup error (not retried) when a rule names a missing table or
///   column, or the triggers are missing or were installed from other rules.
#[derive(Debug)]
pub struct TriggerListener {
    config: CdcConfig,
    channel: Channel,
    rules: CompiledRules,
    metrics: Arc<CdcMetrics>,
    /// Whether a session has listened in this process: a failure after that is retried, while
    /// a setup problem before it (a missing table, triggers not installed) stops the run.
    listened: bool,
}

/// Column type OIDs of one rule table, loaded at each connect, so text values are typed the way
/// replication mode types them.
type ColumnTypes = HashMap<String, u32>;

/// What one notification asks for.
#[derive(Debug, PartialEq)]
enum Decoded {
    Items(Vec<Invalidation<String>>),
    /// A row change: its invalidations, and the fences of rules with a `version` column.
    Row(Vec<Invalidation<String>>, Vec<Fence>),
    Flush(FlushReason, String),
    Nothing,
}

/// Aborts the connection task when a session ends, whichever way it ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TriggerListener {
    /// Validates the configuration and compiles the table rules; nothing connects yet.
    pub fn new(config: CdcConfig) -> Result<TriggerListener> {
        config.validate()?;
        let channel = Channel::of(&config)?;
        let rules = CompiledRules::compile(&config.tables)?;
        Ok(TriggerListener {
            config,
            channel,
            rules,
            metrics: Arc::new(CdcMetrics::new()),
            listened: false,
        })
    }

    /// The live metrics, shareable with an `INFO` command or a `/metrics` endpoint.
    pub fn metrics(&self) -> Arc<CdcMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The `LISTEN` channel (the configuration's `message_prefix`).
    pub fn channel(&self) -> &str {
        self.channel.as_str()
    }

    /// Listens until `shutdown` completes, applying every notification's invalidations to
    /// every target. Returns `Ok` on shutdown, or the first error when the setup is wrong at
    /// start (a table or column the rules name, triggers not installed, a privilege); later
    /// failures and connection failures at any time are logged and retried with backoff.
    pub async fn run<F>(self, targets: Vec<Box<dyn Target>>, shutdown: F) -> Result<()>
    where
        F: Future + Send,
    {
        apply::run_sessions(self, targets, shutdown).await
    }

    /// One session: connect, check, LISTEN, flush, then apply notifications until an error or
    /// shutdown (`Ok`).
    async fn session(
        &mut self,
        targets: &[Box<dyn Target>],
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let pg = self.config.pg_config()?;
        let (client, mut connection) = tokio::select! {
            r = pg.connect(NoTls) => r.map_err(|e| Error::connection("cannot connect to PostgreSQL", e))?,
            () = stop.as_mut() => return Ok(()),
        };
        // The connection is driven by its own task, which forwards notifications and never
        // waits on this loop: the liveness check's answer comes through it, and the server's
        // notification queue is better drained than filled (a full one makes the
        // application's commits fail). While a target is failing the backlog is bounded:
        // past BACKLOG, notifications are dropped and `lost` asks for a flush instead.
        let (tx, mut rx) = mpsc::channel(BACKLOG);
        let lost = Arc::new(AtomicBool::new(false));
        let lost_in_driver = Arc::clone(&lost);
        let _driver = AbortOnDrop(tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => match tx.try_send(Ok(n)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            lost_in_driver.store(true, Ordering::Release);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    },
                    Some(Ok(_)) => {} // notices
                    Some(Err(e)) => {
                        // Waiting is fine here: nothing more will be read anyway.
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    None => return,
                }
            }
        }));

        check_catalog(&client, &mut self.rules).await?;
        self.check_triggers(&client).await?;
        let types = self.column_types(&client).await?;
        client
            .batch_execute(&format!("LISTEN {}", quote_ident(self.channel.as_str())))
            .await
            .map_err(|e| Error::connection("LISTEN", e))?;
        // Only now that LISTEN is in effect: anything committed before it is covered by the
        // flush, anything after it is notified.
        let first = !self.listened;
        if !first || self.config.flush_on_slot_create {
            if first {
                info!(
                    channel = self.channel.as_str(),
                    "listening: flushing every target once"
                );
            } else {
                warn!(
                    channel = self.channel.as_str(),
                    "reconnected: notifications sent while disconnected are lost, flushing \
                     every target"
                );
            }
            apply::flush_all(
                &self.metrics,
                targets,
                FlushReason::NotifyReconnect,
                stop,
                backoff,
            )
            .await?;
        }
        info!(channel = self.channel.as_str(), "listening for changes");
        self.listened = true;
        self.metrics.set_connected(true);
        backoff.reset();

        let interval = self.config.status_interval();
        let limit = interval * 3 + Duration::from_secs(5);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        // The liveness check in flight, polled alongside the notifications so that a slow
        // answer never holds them up.
        let mut ping: Option<Ping<'_>> = None;
        let mut ping_sent = tokio::time::Instant::now();
        loop {
            if lost.swap(false, Ordering::Acquire) {
                warn!(
                    backlog = BACKLOG,
                    "notifications were dropped while targets lagged: flushing every target"
                );
                apply::flush_all(
                    &self.metrics,
                    targets,
                    FlushReason::NotifyOverflow,
                    stop,
                    backoff,
                )
                .await?;
            }
            tokio::select! {
                m = rx.recv() => {
                    let first = match m {
                        Some(Ok(n)) => n,
                        Some(Err(e)) => return Err(Error::connection("LISTEN connection failed", e)),
                        None => {
                            return Err(Error::new(
                                ErrorKind::Connection,
                                "PostgreSQL closed the LISTEN connection",
                            ));
                        }
                    };
                    let mut batch = vec![first];
                    // An error queued behind these is seen on the next turn, after they are
                    // applied: they were committed and received.
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Ok(n)) => batch.push(n),
                            _ => break,
                        }
                    }
                    self.process(&batch, &types, targets, stop, backoff).await?;
                }
                _ = ticker.tick() => {
                    // An idle LISTEN connection gets no traffic, so a dead one (a silent
                    // network failure) would go unnoticed without asking something.
                    if ping.is_none() {
                        ping = Some(Box::pin(client.simple_query("SELECT 1")));
                        ping_sent = tokio::time::Instant::now();
                    } else if ping_sent.elapsed() > limit {
                        return Err(Error::new(
                            ErrorKind::Connection,
                            format!("no answer from PostgreSQL in {limit:?}; the connection is presumed dead"),
                        ));
                    }
                }
                r = async { ping.as_mut().expect("guarded").await }, if ping.is_some() => {
                    ping = None;
                    r.map_err(|e| Error::connection("LISTEN liveness check", e))?;
                }
                () = stop.as_mut() => return Ok(()),
            }
        }
    }

    /// Fails, naming the table and the fix, when a trigger the rules need is not installed, or
    /// was installed from other rules (other events or columns): listening then would look
    /// healthy and miss changes.
    async fn check_triggers(&self, client: &Client) -> Result<()> {
        let names = Names::new(&self.channel);
        for spec in &self.rules.tables {
            let expected = Expected::of(&self.rules, spec, &self.channel);
            let wanted = [
                (
                    !expected.row_ops.is_empty(),
                    &names.row_trigger,
                    expected.row_tgtype(),
                    Expected::tgargs(&expected.args),
                ),
                (
                    expected.truncate,
                    &names.truncate_trigger,
                    Expected::TRUNCATE_TGTYPE,
                    Expected::tgargs(&expected.args[..2]),
                ),
            ];
            for (needed, trigger, tgtype, tgargs) in wanted {
                if !needed {
                    continue;
                }
                let row = client
                    .query_opt(
                        "SELECT tgtype::int, tgargs FROM pg_trigger \
                         WHERE tgrelid = to_regclass($1)::oid AND tgname = $2",
                        &[&spec.table.quoted(), trigger],
                    )
                    .await
                    .map_err(|e| Error::connection("reading triggers", e))?;
                let problem = match row {
                    None => "is not installed",
                    Some(r) if r.get::<_, i32>(0) != tgtype || r.get::<_, Vec<u8>>(1) != tgargs => {
                        "was installed from other rules (its events or columns differ)"
                    }
                    Some(_) => continue,
                };
                return Err(Error::new(
                    ErrorKind::Setting,
                    format!(
                        "trigger `{trigger}` of table {} (channel `{}`) {problem}: install the \
                         triggers (`lethe cdc install-triggers`, or the SQL of `trigger_sql`)",
                        spec.table,
                        self.channel.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Column types of every rule table, in the order of `rules.tables`.
    async fn column_types(&self, client: &Client) -> Result<Vec<ColumnTypes>> {
        let mut out = Vec::with_capacity(self.rules.tables.len());
        for spec in &self.rules.tables {
            let rows = client
                .query(
                    "SELECT attname::text, atttypid FROM pg_attribute \
                     WHERE attrelid = to_regclass($1)::oid AND attnum > 0 AND NOT attisdropped",
                    &[&spec.table.quoted()],
                )
                .await
                .map_err(|e| Error::connection("reading column types", e))?;
            out.push(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, u32>(1)))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// Applies a run of notifications in order: invalidations are gathered and applied together,
    /// except that a flush empties what was gathered before it (the flush covers it).
    async fn process(
        &self,
        notes: &[Notification],
        types: &[ColumnTypes],
        targets: &[Box<dyn Target>],
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let mut pending = Vec::new();
        let mut seen = HashSet::new();
        let mut fences = Vec::new();
        for note in notes {
            match self.decode(note.payload(), types) {
                Decoded::Row(items, row_fences) => {
                    fences.extend(row_fences);
                    for item in items {
                        if seen.insert(item.clone()) {
                            pending.push(item);
                        }
                    }
                }
                Decoded::Items(items) => {
                    for item in items {
                        if seen.insert(item.clone()) {
                            pending.push(item);
                        }
                    }
                }
                Decoded::Flush(reason, table) => {
                    warn!(
                        table,
                        reason = reason.as_str(),
                        "a change cannot be mapped to entries: flushing every target"
                    );
                    pending.clear();
                    seen.clear();
                    fences.clear();
                    apply::flush_all(&self.metrics, targets, reason, stop, backoff).await?;
                }
                Decoded::Nothing => {}
            }
        }
        let count = pending.len();
        if count > 0 {
            let batch = Batch::new(0, 0, pending).with_fences(fences);
            apply::apply_all(&self.metrics, targets, &batch, stop, backoff).await?;
        }
        // One "transaction" per notification; the invalidations are counted once.
        self.metrics.applied(0, count, 0);
        for _ in 1..notes.len() {
            self.metrics.applied(0, 0, 0);
        }
        Ok(())
    }

    /// One notification's payload to what it asks for. A malformed payload is logged, counted
    /// and skipped: retrying cannot fix it.
    fn decode(&self, payload: &str, types: &[ColumnTypes]) -> Decoded {
        let reject = |why: &str| {
            warn!(payload, why, "ignoring a malformed notification");
            self.metrics.rejected_message();
            Decoded::Nothing
        };
        let value: Value = match serde_json::from_str(payload) {
            Ok(v) => v,
            Err(_) => return reject("not JSON"),
        };
        let Some(obj) = value.as_object() else {
            return reject("not a JSON object");
        };
        let Some(table) = obj.get("table") else {
            return match serde_json::from_value::<Explicit>(value.clone()) {
                Ok(e) => Decoded::Items(e.items(&self.metrics)),
                Err(_) => reject("neither a row change nor keys/tags/prefixes/globs"),
            };
        };
        let Some(table) = table.as_str() else {
            return reject("`table` is not a string");
        };
        let Some(index) = self
            .rules
            .tables
            .iter()
            .position(|t| t.table.to_string() == table)
        else {
            // Another installation's table on a shared channel, or triggers left from an older
            // configuration: not ours to act on.
            debug!(table, "notification for a table without rules");
            return Decoded::Nothing;
        };
        let spec = &self.rules.tables[index];
        let op = match obj.get("op").and_then(Value::as_str) {
            Some("insert") => Operation::Create,
            Some("update") => Operation::Update,
            Some("delete") => Operation::Delete,
            Some("truncate") => {
                let (items, needs_flush) = self.rules.truncate_targets(spec);
                if needs_flush {
                    return Decoded::Flush(FlushReason::Truncate, table.to_owned());
                }
                return Decoded::Items(
                    items
                        .into_iter()
                        .filter(|t| apply::valid(&self.metrics, t))
                        .collect(),
                );
            }
            _ => return reject("unknown `op`"),
        };
        let fires = spec
            .rules
            .iter()
            .any(|&i| self.rules.rules.rules()[i].applies_to(op));
        if !fires {
            return Decoded::Nothing;
        }
        if obj.get("overflow").and_then(Value::as_bool) == Some(true) {
            return Decoded::Flush(FlushReason::NotifyOverflow, table.to_owned());
        }
        let types = types.get(index);
        let (items, fences) = self.row_items(
            spec,
            op,
            types,
            obj.get("old").and_then(Value::as_object),
            obj.get("new").and_then(Value::as_object),
        );
        Decoded::Row(items, fences)
    }

    /// A row change through the rules, via the same event mapping as replication mode.
    fn row_items(
        &self,
        spec: &TableSpec,
        op: Operation,
        types: Option<&ColumnTypes>,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
    ) -> (Vec<Invalidation<String>>, Vec<Fence>) {
        let mut columns: Vec<(String, u32)> = Vec::new();
        for name in old.into_iter().chain(new).flat_map(|m| m.keys()) {
            if !columns.iter().any(|(n, _)| n == name) {
                // A column added since the connect has no known type: text, as an unknown
                // type is in replication mode.
                let oid = types.and_then(|t| t.get(name)).copied().unwrap_or(0);
                columns.push((name.clone(), oid));
            }
        }
        let side = |row: Option<&Map<String, Value>>| -> Vec<Column> {
            columns
                .iter()
                .map(|(name, oid)| match row.and_then(|r| r.get(name)) {
                    // Left out of a trimmed row: unknown, not null.
                    None => Column::Unknown,
                    Some(Value::Null) => Column::Null,
                    Some(Value::String(s)) => Column::Text(text_form(*oid, s)),
                    Some(other) => Column::Text(other.to_string()),
                })
                .collect()
        };
        let old_cols = matches!(op, Operation::Update | Operation::Delete).then(|| side(old));
        let new_cols = matches!(op, Operation::Create | Operation::Update).then(|| side(new));
        let event = rules::row_event(spec, op, &columns, old_cols.as_deref(), new_cols.as_deref());
        let hold = self.config.fence_hold();
        let fences = self
            .rules
            .fences(spec, &event)
            .into_iter()
            .map(|(key, version)| Fence::new(key, version, hold))
            .collect();
        let items = self.rules.rules.evaluate(&event);
        let items = items
            .into_iter()
            .filter(|t| apply::valid(&self.metrics, t))
            .collect();
        (items, fences)
    }
}

impl Sessions for TriggerListener {
    const CANNOT_START: &'static str = "trigger listener cannot start";
    const ENDED: &'static str = "LISTEN session ended; reconnecting";

    fn started(&self) -> bool {
        self.listened
    }

    fn session_config(&self) -> &CdcConfig {
        &self.config
    }

    fn session_metrics(&self) -> &CdcMetrics {
        &self.metrics
    }

    async fn run_session(
        &mut self,
        targets: &[Box<dyn Target>],
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        self.session(targets, stop, backoff).await
    }
}

/// JSON spells booleans `true`/`false` where PostgreSQL's text form (what replication mode
/// decodes) is `t`/`f`.
fn text_form(type_oid: u32, text: &str) -> String {
    const BOOL: u32 = 16;
    match (type_oid, text) {
        (BOOL, "true") => "t".to_owned(),
        (BOOL, "false") => "f".to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{TableCatalog, TableName};

    fn listener(rules: &str) -> TriggerListener {
        let config = CdcConfig::from_toml(&format!("connection = \"host=x\"\n{rules}")).unwrap();
        let mut l = TriggerListener::new(config).unwrap();
        let catalog = HashMap::from([(
            TableName::parse("products").unwrap(),
            TableCatalog {
                columns: vec![
                    "id".into(),
                    "category_id".into(),
                    "price".into(),
                    "live".into(),
                ],
                primary_key: vec!["id".into()],
                replica_identity: 'f',
                identity_index: vec![],
            },
        )]);
        l.rules.check_catalog(&catalog).unwrap();
        l
    }

    fn types() -> Vec<ColumnTypes> {
        vec![HashMap::from([
            ("id".to_owned(), 23),
            ("category_id".to_owned(), 23),
            ("price".to_owned(), 1700),
            ("live".to_owned(), 16),
        ])]
    }

    const RULES: &str = "[[table]]\ntable = \"products\"\nkeys = [\"product:{id}\"]\n\
        tags = [\"category:{old.category_id}\", \"category:{new.category_id}\"]\n\
        [[table]]\ntable = \"products\"\nname = \"prices\"\noperations = [\"update\"]\n\
        changed = [\"price\"]\nwhen = { live = true }\nkeys = [\"price:{id}:{price}\"]\n";

    fn items(d: Decoded) -> Vec<String> {
        match d {
            Decoded::Items(v) | Decoded::Row(v, _) => v.iter().map(crate::apply::text).collect(),
            other => panic!("expected items, got {other:?}"),
        }
    }

    #[test]
    fn row_changes_go_through_the_rules() {
        let l = listener(RULES);
        let t = types();
        let moved = r#"{"table":"public.products","op":"update",
            "old":{"id":"1","category_id":"5","price":"10.50","live":"true"},
            "new":{"id":"1","category_id":"6","price":"10.50","live":"true"}}"#;
        assert_eq!(
            items(l.decode(moved, &t)),
            ["product:1", "category:5", "category:6"]
        );
        // A price change on a live product, with the exact numeric spelling.
        let priced = r#"{"table":"public.products","op":"update",
            "old":{"id":"1","category_id":"5","price":"10.50","live":"true"},
            "new":{"id":"1","category_id":"5","price":"11.00","live":"true"}}"#;
        let got = items(l.decode(priced, &t));
        assert!(got.contains(&"price:1:11.00".to_owned()), "{got:?}");
        // `live` is a boolean column: "false" must not satisfy `live = true`.
        let hidden = priced.replace("\"true\"", "\"false\"");
        let got = items(l.decode(&hidden, &t));
        assert!(!got.iter().any(|k| k.starts_with("price:")), "{got:?}");
        let deleted = r#"{"table":"public.products","op":"delete",
            "old":{"id":"3","category_id":"7","price":"1","live":"false"},"new":null}"#;
        assert_eq!(items(l.decode(deleted, &t)), ["product:3", "category:7"]);
    }

    #[test]
    fn overflow_truncate_explicit_and_garbage() {
        let l = listener(RULES);
        let t = types();
        assert_eq!(
            l.decode(
                r#"{"table":"public.products","op":"insert","overflow":true}"#,
                &t
            ),
            Decoded::Flush(FlushReason::NotifyOverflow, "public.products".into())
        );
        // Rules with row templates: a truncate flushes.
        assert_eq!(
            l.decode(r#"{"table":"public.products","op":"truncate"}"#, &t),
            Decoded::Flush(FlushReason::Truncate, "public.products".into())
        );
        assert_eq!(
            items(l.decode(r#"{"keys":["home"],"tags":["category:5"]}"#, &t)),
            ["home", "category:5"]
        );
        assert_eq!(
            l.decode(r#"{"table":"public.other","op":"insert"}"#, &t),
            Decoded::Nothing
        );
        assert_eq!(l.metrics.snapshot().rejected_messages, 0);
        for bad in [
            "not json",
            "[1]",
            r#"{"kyes":["a"]}"#,
            r#"{"table":"public.products","op":"upsert"}"#,
        ] {
            assert_eq!(l.decode(bad, &t), Decoded::Nothing, "{bad}");
        }
        assert_eq!(l.metrics.snapshot().rejected_messages, 4);
    }

    #[test]
    fn trimmed_rows_leave_missing_columns_unknown() {
        let l = listener(RULES);
        // A partial payload with only the columns the rules read still renders them.
        let partial = r#"{"table":"public.products","op":"insert","partial":true,
            "old":null,"new":{"id":"9","category_id":"2"}}"#;
        assert_eq!(
            items(l.decode(partial, &types())),
            ["product:9", "category:2"]
        );
    }
}

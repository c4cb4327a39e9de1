//! The runner: [`Cdc`] checks the database, keeps a replication session streaming (reconnecting
//! with backoff), buffers each transaction's invalidations until its commit, hands them to every
//! target, and only then confirms the transaction to PostgreSQL.
//!
//! A decoded commit is held until other sessions can see it (see `visibility`), then applied;
//! commits are applied and confirmed in stream order, so a commit that is still invisible holds
//! back the ones after it (they wait for the same synchronous standby anyway).
//!
//! Ordering is what makes it lossless: a transaction's end LSN is reported as flushed only
//! after every target applied it, so a crash, a lost connection or a PostgreSQL restart replays
//! from the slot whatever was not yet acknowledged everywhere (replays are harmless, since
//! invalidating twice is the same as once). The one case the slot cannot cover, the slot itself
//! disappearing, flushes every target before streaming from a new slot.

use crate::apply::{self, Backoff, Explicit, Sessions, Stop};
use crate::checks::{self, SlotState};
use crate::config::CdcConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{CdcMetrics, FlushReason};
use crate::pgoutput::{self, Logical, Lsn, ServerMessage, format_lsn};
use crate::replication::ReplicationConn;
use crate::rules::{self, CompiledRules};
use crate::target::{Batch, Fence, Target};
use crate::visibility;
use lethe::Invalidation;
use lethe::event::Operation;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// Change data capture from PostgreSQL into Lethe targets. Build with [`Cdc::new`], then
/// [`Cdc::run`] until shutdown.
#[derive(Debug)]
pub struct Cdc {
    config: CdcConfig,
    rules: CompiledRules,
    metrics: Arc<CdcMetrics>,
    /// Whether a replication session has streamed in this process: a slot missing after that
    /// was dropped under us, while a slot missing before it is a first start.
    streamed: bool,
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
}

impl Cdc {
    /// Validates the configuration and compiles the table rules (nothing connects yet; the
    /// catalog checks run at the start of [`Cdc::run`] and in [`Cdc::check`]).
    pub fn new(config: CdcConfig) -> Result<Cdc> {
        config.validate()?;
        let rules = CompiledRules::compile(&config.tables)?;
        Ok(Cdc {
            config,
            rules,
            metrics: Arc::new(CdcMetrics::new()),
            streamed: false,
        })
    }

    /// The live metrics, shareable with an `INFO` command or a `/metrics` endpoint.
    pub fn metrics(&self) -> Arc<CdcMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The configuration in use.
    pub fn config(&self) -> &CdcConfig {
        &self.config
    }

    /// Runs every start-up check without creating or streaming anything: settings, privilege,
    /// tables and columns, replica identity, and the publication when it exists.
    pub async fn check(&mut self) -> Result<()> {
        let pg = self.config.pg_config()?;
        let client = checks::connect(&pg).await?;
        let state = checks::slot_state(&client, &self.config.slot).await?;
        checks::check_server(&client, state != SlotState::Missing).await?;
        self.check_catalog(&client).await?;
        let tables: Vec<_> = self.rules.table_names().cloned().collect();
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_publication WHERE pubname = $1",
                &[&self.config.publication],
            )
            .await
            .map_err(|e| Error::connection("reading publications", e))?
            .is_some();
        if exists {
            checks::ensure_publication(&client, &self.config.publication, &tables, false).await?;
        }
        Ok(())
    }

    async fn check_catalog(&mut self, client: &tokio_postgres::Client) -> Result<()> {
        let names: Vec<_> = self.rules.table_names().cloned().collect();
        let catalog = checks::load_catalog(client, names.iter()).await?;
        self.rules.check_catalog(&catalog)
    }

    /// Streams until `shutdown` completes, applying every committed transaction's
    /// invalidations to every target. Returns `Ok` on shutdown, or the first error when the
    /// setup is wrong at start (a setting, privilege, table or column); later failures are
    /// logged and retried with backoff, as are connection failures at any time.
    pub async fn run<F>(self, targets: Vec<Box<dyn Target>>, shutdown: F) -> Result<()>
    where
        F: Future + Send,
    {
        apply::run_sessions(self, targets, shutdown).await
    }

    /// One session: checks, slot, stream until error or shutdown.
    async fn session(
        &mut self,
        targets: &[Box<dyn Target>],
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<SessionEnd> {
        let pg = self.config.pg_config()?;
        let client = tokio::select! {
            r = checks::connect(&pg) => r?,
            () = stop.as_mut() => return Ok(SessionEnd::Shutdown),
        };
        let slot = self.config.slot.clone();
        let state = checks::slot_state(&client, &slot).await?;
        checks::check_server(&client, state != SlotState::Missing).await?;
        self.check_catalog(&client).await?;
        let tables: Vec<_> = self.rules.table_names().cloned().collect();
        checks::ensure_publication(
            &client,
            &self.config.publication,
            &tables,
            self.config.create_publication,
        )
        .await?;
        let (flush, start) = match state {
            SlotState::Ready { confirmed } => {
                debug!(slot, confirmed = ?confirmed.map(format_lsn), "resuming from slot");
                (None, confirmed.unwrap_or(0))
            }
            SlotState::Missing => {
                let lsn = checks::create_slot(&client, &slot).await?;
                info!(slot, lsn = %format_lsn(lsn), "created replication slot");
                // Created before the flush, so nothing committed between the two is missed.
                let reason = if self.streamed {
                    Some(FlushReason::SlotMissing)
                } else {
                    self.config
                        .flush_on_slot_create
                        .then_some(FlushReason::SlotCreated)
                };
                (reason, lsn)
            }
            SlotState::Invalid => {
                checks::drop_slot(&client, &slot).await?;
                let lsn = checks::create_slot(&client, &slot).await?;
                info!(slot, lsn = %format_lsn(lsn), "recreated invalid replication slot");
                (Some(FlushReason::SlotInvalid), lsn)
            }
        };
        if let Some(reason) = flush {
            if reason == FlushReason::SlotCreated {
                info!(slot, "new replication slot: flushing every target once");
            } else {
                warn!(
                    slot,
                    reason = reason.as_str(),
                    "replication slot was lost: changes may have been missed, flushing every \
                     target"
                );
            }
            if let Err(e) = apply::flush_all(&self.metrics, targets, reason, stop, backoff).await {
                // Stopped before every target was flushed: a slot left behind would let the
                // next start resume without the flush, so drop it and let that start redo both.
                if let Err(drop_err) = checks::drop_slot(&client, &slot).await {
                    error!(
                        slot,
                        error = %drop_err,
                        "stopped before the flush completed and could not drop the new slot: \
                         flush the targets by hand"
                    );
                }
                return Err(e);
            }
        }
        // Kept as the side connection the visibility checks run on.
        let side = client;

        let mut conn = tokio::select! {
            r = ReplicationConn::connect(&pg) => r?,
            () = stop.as_mut() => return Ok(SessionEnd::Shutdown),
        };
        conn.start_replication(&slot, &self.config.publication, 0)
            .await?;
        info!(
            slot,
            publication = self.config.publication,
            "streaming changes"
        );
        self.streamed = true;
        self.metrics.set_connected(true);
        backoff.reset();
        let mut stream = Stream {
            cdc: self,
            targets,
            relations: HashMap::new(),
            tx: None,
            side,
            pending: VecDeque::new(),
            recheck: None,
            recheck_step: RECHECK_MIN,
            self_wait_checked: None,
            // Already confirmed (or the new slot's start): reporting it again is harmless,
            // and metrics start from a real position.
            confirmed: start,
            reported: 0,
        };
        self.metrics.confirmed(start);
        let result = stream.run(&mut conn, stop, backoff).await;
        if matches!(result, Ok(SessionEnd::Shutdown)) {
            // Report the final position so a restart replays as little as possible.
            let _ = conn
                .send(pgoutput::status_update(stream.confirmed, false))
                .await;
            conn.close().await;
        }
        result
    }
}

impl Sessions for Cdc {
    const CANNOT_START: &'static str = "CDC cannot start";
    const ENDED: &'static str = "CDC session ended; reconnecting";

    fn started(&self) -> bool {
        self.streamed
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
        let SessionEnd::Shutdown = self.session(targets, stop, backoff).await?;
        Ok(())
    }
}

/// A relation as the stream described it, and the rules' spec for it if any.
struct Relation {
    spec: Option<usize>,
    columns: Vec<(String, u32)>,
}

/// The transaction being received.
struct Tx {
    xid: u32,
    items: Vec<Invalidation<String>>,
    fences: Vec<Fence>,
    seen: HashSet<Invalidation<String>>,
    flush: Option<FlushReason>,
}

impl Tx {
    fn push(&mut self, item: Invalidation<String>) {
        if self.seen.insert(item.clone()) {
            self.items.push(item);
        }
    }
}

/// A decoded commit waiting to be visible to other sessions before it is applied.
struct Committed {
    xid: u32,
    commit_lsn: Lsn,
    end_lsn: Lsn,
    commit_time: i64,
    items: Vec<Invalidation<String>>,
    fences: Vec<Fence>,
    flush: Option<FlushReason>,
    decoded: Instant,
}

/// First delay before looking again at a commit that was not visible yet; doubled per look.
const RECHECK_MIN: Duration = Duration::from_micros(250);
/// Longest delay between looks: the most a commit waits past its visibility.
const RECHECK_MAX: Duration = Duration::from_millis(10);
/// Commits held at most; past this the stream is not read until some become visible.
const MAX_PENDING: usize = 50_000;
/// A snapshot query slower than this ends the session (the side connection is presumed dead).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(30);

/// One streaming session's state.
struct Stream<'a> {
    cdc: &'a Cdc,
    targets: &'a [Box<dyn Target>],
    relations: HashMap<u32, Relation>,
    tx: Option<Tx>,
    /// An ordinary connection for the visibility checks.
    side: tokio_postgres::Client,
    /// Decoded commits not applied yet, in stream order.
    pending: VecDeque<Committed>,
    /// When to look at the oldest pending commit's visibility again (`None`: at once).
    recheck: Option<Instant>,
    recheck_step: Duration,
    /// When it was last checked whether the primary waits on this session (see
    /// `visibility::waited_on`).
    self_wait_checked: Option<Instant>,
    /// Everything up to here is applied by every target (or needed nothing).
    confirmed: Lsn,
    /// The last position sent to PostgreSQL.
    reported: Lsn,
}

impl Stream<'_> {
    async fn run(
        &mut self,
        conn: &mut ReplicationConn,
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<SessionEnd> {
        let interval = self.cdc.config.status_interval();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Periodic updates ask for a reply, so a healthy server is never silent for long; a
        // silent one is a dead connection that TCP alone may take many minutes to notice.
        let silence_limit = interval * 3 + Duration::from_secs(5);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            // Held commits are looked at once nothing more can be read at once (so one
            // snapshot answers for a whole burst), or when too many are held.
            let due = self.recheck.is_none_or(|t| Instant::now() >= t);
            if !self.pending.is_empty()
                && due
                && (!conn.has_buffered_message() || self.pending.len() >= MAX_PENDING)
            {
                self.apply_visible(stop, backoff).await?;
            }
            while self.pending.len() >= MAX_PENDING {
                // Back-pressure: stop reading until the oldest commits become visible.
                tokio::select! {
                    () = tokio::time::sleep(self.recheck_step) => {}
                    () = stop.as_mut() => return Ok(SessionEnd::Shutdown),
                }
                self.apply_visible(stop, backoff).await?;
            }
            // Confirm promptly when there is nothing more to read right now; under load,
            // confirmations are batched by the ticker instead.
            if self.confirmed > self.reported && !conn.has_buffered_message() {
                self.report(conn, false).await?;
            }
            let recheck = self.recheck.unwrap_or_else(Instant::now);
            let data = tokio::select! {
                r = conn.recv() => r?,
                () = tokio::time::sleep_until(recheck), if !self.pending.is_empty() => continue,
                _ = ticker.tick() => {
                    if last_heard.elapsed() > silence_limit {
                        return Err(Error::new(
                            ErrorKind::Connection,
                            format!(
                                "nothing from PostgreSQL for {:?}; the connection is presumed dead",
                                last_heard.elapsed()
                            ),
                        ));
                    }
                    self.report(conn, true).await?;
                    continue;
                }
                () = stop.as_mut() => return Ok(SessionEnd::Shutdown),
            };
            last_heard = tokio::time::Instant::now();
            let Some(data) = data else {
                return Err(Error::new(
                    ErrorKind::Connection,
                    "PostgreSQL ended the replication stream",
                ));
            };
            match pgoutput::decode_server_message(data)? {
                ServerMessage::Keepalive { wal_end, reply } => {
                    self.cdc.metrics.server_position(wal_end);
                    if self.tx.is_none() && self.pending.is_empty() && wal_end > self.confirmed {
                        // Between transactions, everything the server has sent was applied:
                        // WAL up to here held nothing for us (or only what was applied).
                        self.confirmed = wal_end;
                        self.cdc.metrics.caught_up(wal_end);
                    }
                    if reply {
                        self.report(conn, false).await?;
                    }
                }
                ServerMessage::XLogData { wal_end, data } => {
                    self.cdc.metrics.server_position(wal_end);
                    let msg = pgoutput::decode_logical(data)?;
                    self.handle(msg, stop, backoff).await?;
                }
            }
        }
    }

    async fn report(&mut self, conn: &mut ReplicationConn, reply: bool) -> Result<()> {
        conn.send(pgoutput::status_update(self.confirmed, reply))
            .await?;
        self.reported = self.confirmed;
        self.cdc.metrics.confirmed(self.confirmed);
        Ok(())
    }

    async fn handle(
        &mut self,
        msg: Logical,
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let rules = &self.cdc.rules;
        match msg {
            Logical::Begin { xid, .. } => {
                self.tx = Some(Tx {
                    xid,
                    items: Vec::new(),
                    fences: Vec::new(),
                    seen: HashSet::new(),
                    flush: None,
                });
            }
            Logical::Relation {
                id,
                schema,
                name,
                columns,
            } => {
                let spec = rules
                    .tables
                    .iter()
                    .position(|t| t.table.schema == schema && t.table.name == name);
                let columns = columns.into_iter().map(|c| (c.name, c.type_oid)).collect();
                self.relations.insert(id, Relation { spec, columns });
            }
            Logical::Insert { relation, new } => {
                self.row(relation, Operation::Create, None, Some(&new))?;
            }
            Logical::Update { relation, old, new } => {
                self.row(relation, Operation::Update, old.as_deref(), Some(&new))?;
            }
            Logical::Delete { relation, old } => {
                self.row(relation, Operation::Delete, Some(&old), None)?;
            }
            Logical::Truncate { relations } => {
                for id in relations {
                    let Some(spec) = self.relations.get(&id).and_then(|r| r.spec) else {
                        continue;
                    };
                    let spec = &rules.tables[spec];
                    let (items, needs_flush) = rules.truncate_targets(spec);
                    let tx = self.tx_mut()?;
                    for item in items {
                        tx.push(item);
                    }
                    if needs_flush {
                        tx.flush = Some(FlushReason::Truncate);
                    }
                }
            }
            Logical::Message {
                transactional,
                lsn,
                prefix,
                content,
            } => {
                if prefix != self.cdc.config.message_prefix {
                    return Ok(());
                }
                let items = self.explicit(&content);
                if transactional {
                    let tx = self.tx_mut()?;
                    for item in items {
                        tx.push(item);
                    }
                } else if !items.is_empty() {
                    // Not part of a transaction: applied as it arrives. Its position is not
                    // confirmed on its own, since a transaction may be open around it.
                    let batch = Batch::new(lsn, lsn, items);
                    apply::apply_all(&self.cdc.metrics, self.targets, &batch, stop, backoff)
                        .await?;
                }
            }
            Logical::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
            } => {
                let tx = self
                    .tx
                    .take()
                    .ok_or_else(|| Error::protocol("pgoutput: commit without begin"))?;
                let committed = Committed {
                    xid: tx.xid,
                    commit_lsn,
                    end_lsn,
                    commit_time,
                    items: tx.items,
                    fences: tx.fences,
                    flush: tx.flush,
                    decoded: Instant::now(),
                };
                if self.cdc.config.apply_after_visible {
                    self.pending.push_back(committed);
                } else {
                    self.apply(committed, stop, backoff).await?;
                }
            }
            Logical::Other => {}
        }
        Ok(())
    }

    /// Applies the held commits that a fresh snapshot shows visible, oldest first, stopping at
    /// the first one still running; schedules the next look if any is left.
    async fn apply_visible(&mut self, stop: &mut Stop<'_>, backoff: &Backoff) -> Result<()> {
        let snapshot = tokio::select! {
            r = tokio::time::timeout(SNAPSHOT_TIMEOUT, visibility::current(&self.side)) => {
                r.map_err(|_| {
                    Error::new(
                        ErrorKind::Connection,
                        format!("no snapshot from PostgreSQL within {SNAPSHOT_TIMEOUT:?}"),
                    )
                })??
            }
            () = stop.as_mut() => return Err(Error::new(ErrorKind::Shutdown, "stopped")),
        };
        tracing::trace!(?snapshot, pending = self.pending.len(), "visibility check");
        let mut applied = false;
        while self
            .pending
            .front()
            .is_some_and(|c| snapshot.is_visible(c.xid))
        {
            let committed = self.pending.pop_front().expect("front checked");
            self.cdc.metrics.visible_after(committed.decoded.elapsed());
            self.apply(committed, stop, backoff).await?;
            applied = true;
        }
        let stuck = self
            .pending
            .front()
            .is_some_and(|c| c.decoded.elapsed() >= visibility::SELF_WAIT_CHECK)
            && self
                .self_wait_checked
                .is_none_or(|t| t.elapsed() >= visibility::SELF_WAIT_CHECK);
        if stuck {
            self.self_wait_checked = Some(Instant::now());
            if visibility::waited_on(&self.side, &self.cdc.config.slot).await? {
                error!(
                    slot = self.cdc.config.slot,
                    held = self.pending.len(),
                    "synchronous_standby_names makes change capture (application_name \
                     lethe-cdc) a synchronous standby: commits wait for it to confirm them, so \
                     it cannot wait for them to become visible; applying them now, before they \
                     are visible (a reader may cache an old row meanwhile). Remove lethe-cdc \
                     (or `*`) from synchronous_standby_names"
                );
                while let Some(committed) = self.pending.pop_front() {
                    self.cdc.metrics.visibility_bypassed();
                    self.apply(committed, stop, backoff).await?;
                }
            }
        }
        if self.pending.is_empty() {
            self.recheck = None;
            self.recheck_step = RECHECK_MIN;
        } else {
            if applied {
                self.recheck_step = RECHECK_MIN;
            }
            self.recheck = Some(Instant::now() + self.recheck_step);
            self.recheck_step = (self.recheck_step * 2).min(RECHECK_MAX);
        }
        Ok(())
    }

    /// Applies one committed transaction to every target, then counts it as confirmable.
    async fn apply(
        &mut self,
        committed: Committed,
        stop: &mut Stop<'_>,
        backoff: &Backoff,
    ) -> Result<()> {
        let Committed {
            commit_lsn,
            end_lsn,
            commit_time,
            items,
            fences,
            flush,
            ..
        } = committed;
        if let Some(reason) = flush {
            warn!(
                lsn = %format_lsn(commit_lsn),
                reason = reason.as_str(),
                "a truncate cannot be mapped to entries: flushing every target"
            );
            apply::flush_all(&self.cdc.metrics, self.targets, reason, stop, backoff).await?;
        }
        let count = items.len();
        if count > 0 {
            let batch = Batch::new(commit_lsn, end_lsn, items).with_fences(fences);
            apply::apply_all(&self.cdc.metrics, self.targets, &batch, stop, backoff).await?;
        }
        let lag_ms = (pgoutput::pg_now() - commit_time).max(0) as u64 / 1000;
        self.cdc.metrics.applied(end_lsn, count, lag_ms);
        self.confirmed = self.confirmed.max(end_lsn);
        Ok(())
    }

    fn tx_mut(&mut self) -> Result<&mut Tx> {
        self.tx
            .as_mut()
            .ok_or_else(|| Error::protocol("pgoutput: change outside a transaction"))
    }

    fn row(
        &mut self,
        relation: u32,
        op: Operation,
        old: Option<&[rules::Column]>,
        new: Option<&[rules::Column]>,
    ) -> Result<()> {
        let rel = self.relations.get(&relation).ok_or_else(|| {
            Error::protocol(format!("pgoutput: change to unknown relation {relation}"))
        })?;
        let Some(spec) = rel.spec else {
            return Ok(());
        };
        let rules = &self.cdc.rules;
        let event = rules::row_event(&rules.tables[spec], op, &rel.columns, old, new);
        let hold = self.cdc.config.fence_hold();
        let fences: Vec<_> = rules
            .fences(&rules.tables[spec], &event)
            .into_iter()
            .map(|(key, version)| Fence::new(key, version, hold))
            .collect();
        let items = rules.rules.evaluate(&event);
        let metrics = &self.cdc.metrics;
        let items: Vec<_> = items
            .into_iter()
            .filter(|t| apply::valid(metrics, t))
            .collect();
        let tx = self.tx_mut()?;
        for item in items {
            tx.push(item);
        }
        tx.fences.extend(fences);
        Ok(())
    }

    /// Parses an explicit invalidation message; a malformed one is logged, counted, dropped
    /// (retrying cannot fix it).
    fn explicit(&self, content: &[u8]) -> Vec<Invalidation<String>> {
        let parsed: Explicit = match serde_json::from_slice(content) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "ignoring a malformed invalidation message");
                self.cdc.metrics.rejected_message();
                return Vec::new();
            }
        };
        parsed.items(&self.cdc.metrics)
    }
}

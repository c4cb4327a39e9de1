//! Counters and gauges of a running [`crate::Cdc`], as atomics so readers (an `INFO` command, a
//! `/metrics` endpoint) never wait on the replication loop. [`CdcMetrics::snapshot`] copies
//! them into a plain struct.

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Why the keyspace was flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlushReason {
    /// The slot did not exist when this runner started, so it was created: whatever the
    /// targets cached before is not covered by any slot (off with `flush_on_slot_create`).
    SlotCreated,
    /// The slot disappeared (dropped) while we were away: changes in between are unknown.
    SlotMissing,
    /// The slot exists but PostgreSQL removed WAL it needed (`wal_status = lost`).
    SlotInvalid,
    /// A table was truncated and a rule for it has templates that need a row.
    Truncate,
    /// Trigger mode: the LISTEN session (re)connected. Notifications sent while nobody
    /// listened are lost, so the keyspace is flushed (also at the first connect, unless
    /// `flush_on_slot_create = false`).
    NotifyReconnect,
    /// Trigger mode: notifications could not carry what the rules need: a row change too
    /// large for a notification (8000 bytes) was sent without values, or notifications were
    /// dropped because too many waited while a target was failing.
    NotifyOverflow,
}

impl FlushReason {
    /// Every reason, in declaration order.
    pub const ALL: [FlushReason; 6] = [
        FlushReason::SlotCreated,
        FlushReason::SlotMissing,
        FlushReason::SlotInvalid,
        FlushReason::Truncate,
        FlushReason::NotifyReconnect,
        FlushReason::NotifyOverflow,
    ];

    /// The snake_case name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FlushReason::SlotCreated => "slot_created",
            FlushReason::SlotMissing => "slot_missing",
            FlushReason::SlotInvalid => "slot_invalid",
            FlushReason::Truncate => "truncate",
            FlushReason::NotifyReconnect => "notify_reconnect",
            FlushReason::NotifyOverflow => "notify_overflow",
        }
    }
}

impl std::fmt::Display for FlushReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live metrics. Shared as `Arc<CdcMetrics>` from [`crate::Cdc::metrics`].
#[derive(Debug, Default)]
pub struct CdcMetrics {
    lag_bytes: AtomicU64,
    lag_ms: AtomicU64,
    invalidations: AtomicU64,
    transactions: AtomicU64,
    last_applied_lsn: AtomicU64,
    last_confirmed_lsn: AtomicU64,
    server_wal_end: AtomicU64,
    flushes: [AtomicU64; FlushReason::ALL.len()],
    reconnects: AtomicU64,
    target_retries: AtomicU64,
    rejected_messages: AtomicU64,
    connected: AtomicU64,
    visible_commits: AtomicU64,
    visibility_wait_us: AtomicU64,
    visibility_wait_max_us: AtomicU64,
    visibility_bypassed: AtomicU64,
    /// Start of the window the invalidation rate is measured over, and the count then.
    rate_window: Mutex<Option<(Instant, u64)>>,
}

/// A copy of [`CdcMetrics`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Bytes of WAL the server has sent past the last applied transaction.
    pub lag_bytes: u64,
    /// Milliseconds between the last applied transaction's commit and its application (0 when
    /// idle and caught up).
    pub lag_ms: u64,
    /// Invalidations (keys, tags, prefixes, globs) applied to the targets.
    pub invalidations: u64,
    /// Transactions applied (those with nothing to invalidate included).
    pub transactions: u64,
    /// End LSN of the last transaction every target applied.
    pub last_applied_lsn: u64,
    /// The LSN last reported to PostgreSQL as flushed (the slot may discard WAL before it).
    pub last_confirmed_lsn: u64,
    /// Flushes of the keyspace, by reason.
    pub flushes: Vec<(FlushReason, u64)>,
    /// Reconnections after a lost or failed session.
    pub reconnects: u64,
    /// Target applications that failed and were retried.
    pub target_retries: u64,
    /// Logical messages with the configured prefix that were not valid invalidation requests.
    pub rejected_messages: u64,
    /// Whether a replication session is streaming now.
    pub connected: bool,
    /// Invalidations applied per second, over the time since the previous snapshot at least
    /// a second ago (0 for the first snapshot).
    pub invalidations_per_sec: u64,
    /// Commits held until a snapshot showed them visible to other sessions, then applied.
    pub visible_commits: u64,
    /// Their total time between decoding and being seen visible, in microseconds (the latency
    /// the visibility check adds; divide by `visible_commits` for the mean).
    pub visibility_wait_us: u64,
    /// The longest such wait, in microseconds.
    pub visibility_wait_max_us: u64,
    /// Commits applied before they were visible, because the primary waited on change capture
    /// itself as a synchronous standby (an error is logged; fix `synchronous_standby_names`).
    pub visibility_bypassed: u64,
}

impl MetricsSnapshot {
    /// Flushes for one reason.
    pub fn flushes(&self, reason: FlushReason) -> u64 {
        self.flushes
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Every value as a flat `(name, value)` list, names prefixed `cdc_`, flushes as
    /// `cdc_flushes_<reason>`: ready for an `INFO` section or a metrics exporter.
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = [
            ("cdc_connected", u64::from(self.connected)),
            ("cdc_lag_bytes", self.lag_bytes),
            ("cdc_lag_ms", self.lag_ms),
            ("cdc_invalidations", self.invalidations),
            ("cdc_invalidations_per_sec", self.invalidations_per_sec),
            ("cdc_transactions", self.transactions),
            ("cdc_last_applied_lsn", self.last_applied_lsn),
            ("cdc_last_confirmed_lsn", self.last_confirmed_lsn),
            ("cdc_reconnects", self.reconnects),
            ("cdc_target_retries", self.target_retries),
            ("cdc_rejected_messages", self.rejected_messages),
            ("cdc_visible_commits", self.visible_commits),
            ("cdc_visibility_wait_us", self.visibility_wait_us),
            ("cdc_visibility_wait_max_us", self.visibility_wait_max_us),
            ("cdc_visibility_bypassed", self.visibility_bypassed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (reason, n) in &self.flushes {
            out.push((format!("cdc_flushes_{reason}"), *n));
        }
        out
    }
}

impl CdcMetrics {
    /// All zero.
    pub fn new() -> CdcMetrics {
        CdcMetrics::default()
    }

    /// A consistent-enough copy (each value is read atomically; they are not read together).
    pub fn snapshot(&self) -> MetricsSnapshot {
        let invalidations = self.invalidations.load(Relaxed);
        let invalidations_per_sec = {
            let mut window = self.rate_window.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match *window {
                Some((since, count)) => {
                    let secs = now.duration_since(since).as_secs_f64();
                    let rate = if secs > 0.0 {
                        (invalidations.saturating_sub(count) as f64 / secs) as u64
                    } else {
                        0
                    };
                    // A new window once this one is a second old, so the rate follows changes.
                    if secs >= 1.0 {
                        *window = Some((now, invalidations));
                    }
                    rate
                }
                None => {
                    *window = Some((now, invalidations));
                    0
                }
            }
        };
        MetricsSnapshot {
            lag_bytes: self.lag_bytes.load(Relaxed),
            lag_ms: self.lag_ms.load(Relaxed),
            invalidations,
            invalidations_per_sec,
            transactions: self.transactions.load(Relaxed),
            last_applied_lsn: self.last_applied_lsn.load(Relaxed),
            last_confirmed_lsn: self.last_confirmed_lsn.load(Relaxed),
            flushes: FlushReason::ALL
                .iter()
                .map(|&r| (r, self.flushes[r as usize].load(Relaxed)))
                .collect(),
            reconnects: self.reconnects.load(Relaxed),
            target_retries: self.target_retries.load(Relaxed),
            rejected_messages: self.rejected_messages.load(Relaxed),
            connected: self.connected.load(Relaxed) != 0,
            visible_commits: self.visible_commits.load(Relaxed),
            visibility_wait_us: self.visibility_wait_us.load(Relaxed),
            visibility_wait_max_us: self.visibility_wait_max_us.load(Relaxed),
            visibility_bypassed: self.visibility_bypassed.load(Relaxed),
        }
    }

    pub(crate) fn applied(&self, end_lsn: u64, invalidations: usize, lag_ms: u64) {
        self.transactions.fetch_add(1, Relaxed);
        self.invalidations.fetch_add(invalidations as u64, Relaxed);
        self.last_applied_lsn.fetch_max(end_lsn, Relaxed);
        self.lag_ms.store(lag_ms, Relaxed);
        self.update_lag_bytes();
    }

    /// The server's WAL end, from a keepalive or a data message.
    pub(crate) fn server_position(&self, wal_end: u64) {
        self.server_wal_end.fetch_max(wal_end, Relaxed);
        self.update_lag_bytes();
    }

    /// Idle and caught up: nothing is waiting, whatever the last transaction's lag was.
    pub(crate) fn caught_up(&self, lsn: u64) {
        self.last_applied_lsn.fetch_max(lsn, Relaxed);
        self.lag_ms.store(0, Relaxed);
        self.update_lag_bytes();
    }

    fn update_lag_bytes(&self) {
        let end = self.server_wal_end.load(Relaxed);
        let applied = self.last_applied_lsn.load(Relaxed);
        self.lag_bytes.store(end.saturating_sub(applied), Relaxed);
    }

    pub(crate) fn confirmed(&self, lsn: u64) {
        self.last_confirmed_lsn.fetch_max(lsn, Relaxed);
    }

    pub(crate) fn flushed(&self, reason: FlushReason) {
        self.flushes[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub(crate) fn target_retry(&self) {
        self.target_retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected_message(&self) {
        self.rejected_messages.fetch_add(1, Relaxed);
    }

    /// A held commit was seen visible `wait` after it was decoded.
    pub(crate) fn visible_after(&self, wait: std::time::Duration) {
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.visible_commits.fetch_add(1, Relaxed);
        self.visibility_wait_us.fetch_add(us, Relaxed);
        self.visibility_wait_max_us.fetch_max(us, Relaxed);
    }

    /// A held commit was applied before it was visible (see `visibility_bypassed`).
    pub(crate) fn visibility_bypassed(&self) {
        self.visibility_bypassed.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_connected(&self, on: bool) {
        self.connected.store(u64::from(on), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reports_lag_and_flushes_by_reason() {
        let m = CdcMetrics::new();
        m.server_position(1_000);
        m.applied(600, 3, 7);
        m.flushed(FlushReason::SlotMissing);
        m.flushed(FlushReason::SlotMissing);
        let s = m.snapshot();
        assert_eq!((s.lag_bytes, s.lag_ms, s.invalidations), (400, 7, 3));
        assert_eq!(s.flushes(FlushReason::SlotMissing), 2);
        assert_eq!(s.flushes(FlushReason::Truncate), 0);
        m.caught_up(1_000);
        let s = m.snapshot();
        assert_eq!((s.lag_bytes, s.lag_ms, s.last_applied_lsn), (0, 0, 1_000));
        let fields = s.fields();
        assert!(fields.contains(&("cdc_flushes_slot_missing".to_owned(), 2)));
        assert!(fields.contains(&("cdc_transactions".to_owned(), 1)));
    }
}

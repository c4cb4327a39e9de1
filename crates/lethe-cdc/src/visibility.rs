//! When a decoded commit may be applied: only once other sessions can see it.
//!
//! PostgreSQL writes and flushes a transaction's commit record, and the walsender decodes and
//! streams it, *before* the committing backend leaves the set of running transactions. In
//! between (microseconds normally; as long as a synchronous standby takes to acknowledge, with
//! `synchronous_commit` and `synchronous_standby_names`) every new snapshot still treats the
//! transaction as running and reads the old rows. An invalidation applied in that window can be
//! followed by a read of the old row and a fill of it that nothing will ever invalidate. So the
//! runner holds each decoded commit until a fresh snapshot taken on an ordinary side connection
//! (`pg_current_snapshot()`) shows its transaction as finished: from then on every new
//! snapshot, hence every read a cache filler starts afterwards, sees the new row.
//!
//! One exception keeps the database live: when `synchronous_standby_names` makes change
//! capture's own connection a synchronous standby, commits wait for change capture to confirm
//! them, which would wait for them forever. A commit still invisible after [`SELF_WAIT_CHECK`]
//! makes the runner ask whether that is the case; if so it logs an error naming the setting and
//! applies the held commits without waiting (counted in `visibility_bypassed`).
//!
//! One query answers for every pending commit at once: a transaction is visible in a snapshot
//! when its id is below `xmin`, or below `xmax` and not in the in-progress list. The stream
//! carries 32-bit transaction ids; the snapshot's 64-bit `xmax` supplies the epoch.

use crate::error::{Error, Result};
use std::time::Duration;

/// How long a held commit waits before the runner checks whether the primary waits on it.
pub(crate) const SELF_WAIT_CHECK: Duration = Duration::from_secs(1);

/// A snapshot as `pg_current_snapshot()` reports it (`xmin:xmax:xip,...`), 64-bit ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    xmin: u64,
    xmax: u64,
    /// In progress, sorted.
    xip: Vec<u64>,
}

impl Snapshot {
    /// Parses the text form (`10:20:12,15`, the list possibly empty).
    pub(crate) fn parse(text: &str) -> Result<Snapshot> {
        let bad = || Error::protocol(format!("unexpected snapshot `{text}`"));
        let mut parts = text.trim().splitn(3, ':');
        let id = |p: Option<&str>| p.and_then(|s| s.parse::<u64>().ok()).ok_or_else(bad);
        let xmin = id(parts.next())?;
        let xmax = id(parts.next())?;
        let mut xip = Vec::new();
        for x in parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
        {
            xip.push(x.parse::<u64>().map_err(|_| bad())?);
        }
        xip.sort_unstable();
        Ok(Snapshot { xmin, xmax, xip })
    }

    /// The 64-bit id of a 32-bit `xid` the stream carried: the one nearest `xmax`. A decoded
    /// transaction is recent: it may still be running, with an id at or past `xmax` (which is
    /// one past the latest *completed* transaction), or have completed, below it; either way it
    /// is far less than 2^31 ids away.
    pub(crate) fn full_xid(&self, xid: u32) -> u64 {
        let candidate = (self.xmax & !0xffff_ffff) | u64::from(xid);
        const HALF: u64 = 1 << 31;
        if candidate > self.xmax.saturating_add(HALF) && candidate >= 1 << 32 {
            candidate - (1 << 32)
        } else if candidate.saturating_add(HALF) < self.xmax {
            candidate + (1 << 32)
        } else {
            candidate
        }
    }

    /// Whether transaction `xid`, known to have committed, is visible to this snapshot (and
    /// so to every snapshot taken after it).
    pub(crate) fn is_visible(&self, xid: u32) -> bool {
        let full = self.full_xid(xid);
        full < self.xmin || (full < self.xmax && self.xip.binary_search(&full).is_err())
    }
}

/// A fresh snapshot of the primary, on an ordinary connection.
pub(crate) async fn current(client: &tokio_postgres::Client) -> Result<Snapshot> {
    let row = client
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await
        .map_err(|e| Error::connection("reading the current snapshot", e))?;
    Snapshot::parse(row.get(0))
}

/// Whether the primary counts this slot's own walsender as a synchronous standby
/// (`synchronous_standby_names` matching `lethe-cdc`, or `*`): commits then wait for change
/// capture to confirm them, while change capture waits for them to be visible, and neither
/// would ever proceed.
pub(crate) async fn waited_on(client: &tokio_postgres::Client, slot: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT coalesce(bool_or(r.sync_state IN ('sync', 'quorum')), false) \
             FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid \
             WHERE s.slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| Error::connection("reading pg_stat_replication", e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_text_form() {
        let s = Snapshot::parse("100:110:105,101").unwrap();
        assert_eq!(
            (s.xmin, s.xmax, s.xip.as_slice()),
            (100, 110, &[101, 105][..])
        );
        assert_eq!(Snapshot::parse("7:7:").unwrap().xip, Vec::<u64>::new());
        assert!(Snapshot::parse("7:x:").is_err());
        assert!(Snapshot::parse("7").is_err());
        assert!(Snapshot::parse("1:2:3,y").is_err());
    }

    #[test]
    fn running_and_future_transactions_are_not_visible() {
        let s = Snapshot::parse("100:110:101,105").unwrap();
        assert!(s.is_visible(99));
        assert!(s.is_visible(100));
        assert!(!s.is_visible(101));
        assert!(s.is_visible(104));
        assert!(!s.is_visible(105));
        assert!(s.is_visible(109));
        // At or past xmax: not completed when the snapshot was taken (a transaction waiting
        // for a synchronous standby can be there, with no id in the in-progress list).
        assert!(!s.is_visible(110));
        assert!(!s.is_visible(111));
    }

    #[test]
    fn the_epoch_comes_from_xmax() {
        let epoch = 3u64 << 32;
        let s = Snapshot::parse(&format!("{}:{}:{}", epoch + 5, epoch + 20, epoch + 10)).unwrap();
        assert_eq!(s.full_xid(10), epoch + 10);
        assert!(!s.is_visible(10));
        assert!(s.is_visible(7));
        // Just before the wrap: an id near 2^32 is the previous epoch's.
        assert_eq!(s.full_xid(u32::MAX - 1), epoch - 2);
        assert!(s.is_visible(u32::MAX - 1));
        // A snapshot right after the wrap still places the previous epoch's running ids.
        let s = Snapshot::parse(&format!("{}:{}:{}", epoch - 3, epoch + 2, epoch - 2)).unwrap();
        assert_eq!(s.full_xid(u32::MAX - 1), epoch - 2);
        assert!(!s.is_visible(u32::MAX - 1));
        assert!(s.is_visible(u32::MAX - 3));
        // And a snapshot right before it places a running id of the next epoch past xmax.
        let s = Snapshot::parse(&format!("{}:{}:", epoch - 3, epoch - 1)).unwrap();
        assert_eq!(s.full_xid(1), epoch + 1);
        assert!(!s.is_visible(1));
    }
}

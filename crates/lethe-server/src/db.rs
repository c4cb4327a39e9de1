//! The keyspace: Redis values stored in a Lethe [`Cache`], with Redis's type checks.
//!
//! Keys are kept in the engine's ordered index (`index_keys`), so `KEYS` and `SCAN MATCH` with a
//! literal prefix visit only the matching range. Entries are weighed by their bytes, so the
//! capacity is a memory budget; eviction is the engine's (W-TinyLFU), not Redis's LRU.
//!
//! The engine is safe for concurrent use, but a Redis command that reads a value and writes a new
//! one (INCR, APPEND, HSET, RENAME, ...) must not interleave with another write, or a concurrent
//! SET or DEL could be lost or undone. Every writing command therefore runs under
//! [`Db::write_lock`] (taken by the dispatcher); reads do not take it and see each write whole,
//! since the engine replaces values atomically.
//!
//! Besides the keyspace, the Db owns the server-side state of the `LETHE.*` commands: the loaded
//! invalidation rules (swapped whole by `LETHE.RULES LOAD`) and the outstanding leases. The
//! engine's [`Lease`] cannot be rebuilt from its token, so a lease handed to a client as a token
//! stays here until it is filled or times out. It also carries the pub/sub registry and the
//! connected clients, so every connection reaches all shared state through one handle.

use crate::clients::Clients;
use crate::cmd::{CommandError, ErrorKind};
use crate::pubsub::PubSub;
use crate::tag_stats::TagStats;
use crate::tracking::{FlushScope, Origin, Tracking};
use bytes::Bytes;
use indexmap::IndexMap;
use lethe::rules::RuleSet;
use lethe::{
    Applied, Cache, InsertOptions, Inserted, Invalidation, KeyTtl, Lease, LeaseOutcome, Rejected,
    RemovalCause, Timestamp,
};
use lethe_cdc::CdcMetrics;
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Bookkeeping charged per hash field on top of its bytes, so many tiny fields still count.
const FIELD_OVERHEAD: usize = 16;
/// Bookkeeping charged per entry on top of its bytes.
const ENTRY_OVERHEAD: usize = 96;
/// How long a lease granted by `LETHE.LEASE` stays valid (the engine's lease timeout).
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Above this many outstanding leases, granting one first drops those past their timeout, so
/// clients that never fill cannot grow the table without bound.
const LEASE_TABLE_PRUNE: usize = 1024;

/// A hash's fields in insertion order, which is the order Redis replies in for small hashes.
pub type HashFields = IndexMap<Bytes, Bytes>;

/// A stored value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (also integers and floats, as in Redis).
    Str(Bytes),
    /// A hash, shared so reads clone a pointer.
    Hash(Arc<HashFields>),
}

impl Value {
    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
        }
    }

    fn byte_size(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| k.len() + v.len() + FIELD_OVERHEAD)
                .sum(),
        }
    }
}

/// The keyspace shared by every connection.
#[derive(Debug)]
pub struct Db {
    cache: Cache<Bytes, Value>,
    write_lock: Mutex<()>,
    rules: RwLock<Arc<RuleSet>>,
    /// Outstanding leases by key (the engine grants at most one per key at a time), with when
    /// they were granted.
    leases: Mutex<HashMap<Bytes, (Lease<Bytes>, Instant)>>,
    /// Pub/sub subscribers: not keyspace, but shared by every connection just the same.
    pubsub: PubSub,
    /// Connected clients, for CLIENT LIST/KILL and INFO.
    clients: Arc<Clients>,
    /// Client-side caching: who caches which keys. The engine's removal listener and
    /// subscriber report to it.
    tracking: Arc<Tracking>,
    /// Change capture's metrics, when it feeds this keyspace (INFO, `/metrics`).
    cdc: OnceLock<Arc<CdcMetrics>>,
    /// Invalidations by tag, for `LETHE.STATS TAG`.
    tag_stats: Arc<TagStats>,
}

impl Db {
    /// A keyspace holding at most about `capacity_bytes` of keys and values.
    pub fn new(capacity_bytes: u64) -> Db {
        let clients = Arc::new(Clients::new());
        let tracking = Arc::new(Tracking::new());
        let (heard, to) = (tracking.clone(), clients.clone());
        let queue = tracking.clone();
        let tag_stats = Arc::new(TagStats::new());
        let counted = tag_stats.clone();
        let cache = Cache::builder()
            .max_weight(capacity_bytes)
            .weigher(|k: &Bytes, v: &Value| weight(k, v))
            .index_keys()
            .lease_timeout(LEASE_TIMEOUT)
            // Every removal may make a client's cached copy wrong. Explicit removals and
            // replacements come from the running command (NOLOOP applies); the rest is the
            // cache's own doing.
            .removal_listener(move |key: &Bytes, _: &Value, cause: RemovalCause| {
                if heard.active() {
                    let origin = match cause {
                        RemovalCause::Explicit | RemovalCause::Replaced => Origin::Command,
                        _ => Origin::Cache,
                    };
                    heard.key_changed(key, origin, &to);
                }
            })
            // A tag invalidation hides entries without removing them; the keys are looked up
            // once the invalidating call returned (the subscriber must not call the cache).
            .subscriber(move |applied: &Applied<Bytes>| {
                if let Invalidation::Tag(tag) = &applied.invalidation {
                    counted.invalidated(tag, now_millis());
                    queue.tag_invalidated(tag);
                }
            })
            .build();
        Db {
            cache,
            write_lock: Mutex::new(()),
            rules: RwLock::new(Arc::new(RuleSet::new())),
            leases: Mutex::new(HashMap::new()),
            pubsub: PubSub::new(),
            clients,
            tracking,
            cdc: OnceLock::new(),
            tag_stats,
        }
    }

    /// The loaded invalidation rules and data policies (empty until `LETHE.RULES LOAD`).
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().clone()
    }

    /// Replaces the rules as a whole; readers see the old set or the new one, never a mix.
    pub fn set_rules(&self, rules: RuleSet) {
        *self.rules.write() = Arc::new(rules);
    }

    /// Reads `key` or takes its lease; a granted lease is kept here under its key, replacing
    /// any earlier one for the key (which the engine only grants again once that one lapsed).
    pub fn lease(&self, key: &Bytes) -> LeaseOutcome<Bytes, Value> {
        let outcome = self.cache.lease(key);
        if let LeaseOutcome::Granted(lease) = &outcome {
            let mut leases = self.leases.lock();
            if leases.len() >= LEASE_TABLE_PRUNE {
                leases.retain(|_, (_, at)| at.elapsed() < LEASE_TIMEOUT);
            }
            leases.insert(key.clone(), (lease.clone(), Instant::now()));
        }
        outcome
    }

    /// Fills `key` under the lease with `token`: `None` when no such lease is outstanding
    /// here (never granted, already used, or superseded), else the engine's verdict.
    pub fn fill(
        &self,
        key: &[u8],
        token: u64,
        value: Value,
        options: &InsertOptions<Bytes>,
    ) -> Result<Option<Result<Inserted, Rejected>>, CommandError> {
        let key = Bytes::copy_from_slice(key);
        self.check_fits(&key, &value)?;
        let lease = {
            let mut leases = self.leases.lock();
            match leases.get(&key) {
                Some((lease, _)) if lease.token() == token => leases.remove(&key).map(|(l, _)| l),
                _ => None,
            }
        };
        Ok(lease.map(|lease| self.cache.fill(lease, value, options)))
    }

    /// Stores `value` with `options`, returning the engine's verdict (why a condition refused it).
    pub fn try_set(
        &self,
        key: Bytes,
        value: Value,
        options: &InsertOptions<Bytes>,
    ) -> Result<Result<Inserted, Rejected>, CommandError> {
        self.check_fits(&key, &value)?;
        Ok(self.cache.try_insert(key, value, options))
    }

    /// The pub/sub registry.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    /// The connected clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Records the metrics of the change capture feeding this keyspace (once).
    pub fn set_cdc_metrics(&self, metrics: Arc<CdcMetrics>) {
        let _ = self.cdc.set(metrics);
    }

    /// The metrics of the change capture feeding this keyspace, if any.
    pub fn cdc_metrics(&self) -> Option<Arc<CdcMetrics>> {
        self.cdc.get().cloned()
    }

    /// Invalidations by tag.
    pub fn tag_stats(&self) -> &TagStats {
        &self.tag_stats
    }

    /// Client-side caching state.
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// Sends the invalidations that tag invalidations since the last call owe to tracking
    /// clients: the keys each tag hid. Called after every command and HTTP request that may
    /// invalidate, before its reply, and by the maintenance tick for anything else.
    pub fn settle_tracking(&self) {
        if !self.tracking.active() {
            return;
        }
        for tag in self.tracking.take_tags() {
            for key in self.cache.keys_hidden_by_tag(&tag) {
                self.tracking
                    .key_changed(&key, Origin::Cache, &self.clients);
            }
        }
    }

    /// Empties the keyspace; tracking clients get one flush message rather than one per key.
    pub fn flush(&self) {
        {
            let _quiet = FlushScope::enter();
            self.cache.clear();
        }
        self.tracking.flushed(&self.clients);
    }

    /// Background upkeep, run periodically: expires entries whose deadline passed and
    /// reclaims invalidated ones (so their removal is reported, to tracking clients too, as
    /// Redis's active expiry does), then settles tracking.
    pub fn maintain(&self) {
        self.cache.run_pending_tasks();
        self.settle_tracking();
    }

    /// The engine underneath.
    pub fn cache(&self) -> &Cache<Bytes, Value> {
        &self.cache
    }

    /// Serializes writing commands; held across a command's reads and writes. Not reentrant.
    pub fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock()
    }

    /// The live value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Value> {
        self.cache.get(key)
    }

    /// Stores `value` with `options`; false if a write condition refused it.
    pub fn set(
        &self,
        key: Bytes,
        value: Value,
        options: &InsertOptions<Bytes>,
    ) -> Result<bool, CommandError> {
        self.check_fits(&key, &value)?;
        Ok(self.cache.try_insert(key, value, options).is_ok())
    }

    /// Replaces the value of `key`, keeping its TTL (what APPEND, INCR, HSET... do).
    pub fn replace(&self, key: Bytes, value: Value) -> Result<(), CommandError> {
        self.check_fits(&key, &value)?;
        self.cache
            .insert_with_options(key, value, &InsertOptions::new().keep_ttl());
        Ok(())
    }

    /// The engine drops an entry heavier than one shard's share of the capacity (reporting it
    /// as evicted); refusing it up front lets the client know, with Redis's out-of-memory error.
    fn check_fits(&self, key: &Bytes, value: &Value) -> Result<(), CommandError> {
        if weight(key, value) as u64 > self.cache.max_entry_weight() {
            return Err(CommandError::new(
                ErrorKind::OutOfMemory,
                "OOM command not allowed when used memory > 'maxmemory'.",
            ));
        }
        Ok(())
    }

    /// Removes `key`; true if it was live.
    pub fn remove(&self, key: &[u8]) -> bool {
        self.cache.remove(key).is_some()
    }

    /// The current [`WatchStamp`] of `key` (not counted as an access).
    pub fn watch_stamp(&self, key: &[u8]) -> WatchStamp {
        self.cache
            .metadata(key)
            .map(|m| (m.version, m.created, m.updated, m.expires_at))
    }

    /// The remaining TTL of `key`.
    pub fn ttl(&self, key: &[u8]) -> KeyTtl {
        self.cache.ttl(key)
    }

    /// The absolute expiry of `key` in Unix milliseconds: -2 missing, -1 no TTL.
    pub fn expire_time_millis(&self, key: &[u8]) -> i64 {
        match self.cache.get_with_metadata(key) {
            None => -2,
            Some(found) => match found.metadata.expires_at {
                None => -1,
                Some(at) => i64::try_from(at.as_nanos() / 1_000_000).unwrap_or(i64::MAX),
            },
        }
    }
}

/// What WATCH remembers of a key: its version and write times, or `None` when it is absent.
/// Any write, delete, expiry or TTL change makes the stamp differ.
pub type WatchStamp = Option<(u64, Timestamp, Timestamp, Option<Timestamp>)>;

/// An entry's weight: its bytes plus bookkeeping.
fn weight(key: &Bytes, value: &Value) -> u32 {
    u32::try_from(key.len() + value.byte_size() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

/// Wall-clock time now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A Unix time in milliseconds as an engine timestamp (times before the epoch clamp to it).
pub fn timestamp_millis(ms: i64) -> Timestamp {
    Timestamp(u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000))
}

/// Milliseconds as a duration (negative clamps to zero).
pub fn duration_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_too_big_for_a_shard_are_refused_not_silently_dropped() {
        let db = Db::new(64 * 1024);
        let big = Value::Str(Bytes::from(vec![b'x'; 128 * 1024]));
        let err = db
            .set(Bytes::from_static(b"k"), big, &InsertOptions::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory);
        assert!(db.get(b"k").is_none());
        let small = Value::Str(Bytes::from_static(b"v"));
        assert_eq!(
            db.set(Bytes::from_static(b"k"), small, &InsertOptions::new()),
            Ok(true)
        );
        assert!(db.get(b"k").is_some());
    }

    #[test]
    fn expire_time_reports_missing_persistent_and_deadline() {
        let db = Db::new(1 << 20);
        assert_eq!(db.expire_time_millis(b"k"), -2);
        db.set(
            Bytes::from_static(b"k"),
            Value::Str(Bytes::new()),
            &InsertOptions::new(),
        )
        .unwrap();
        assert_eq!(db.expire_time_millis(b"k"), -1);
        let at = now_millis() + 60_000;
        db.cache().expire_at(
            &b"k"[..],
            timestamp_millis(at),
            lethe::ExpireCondition::Always,
        );
        assert!((db.expire_time_millis(b"k") - at).abs() <= 1);
    }
}

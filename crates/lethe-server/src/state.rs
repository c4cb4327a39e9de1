//! What every connection shares: the [`Keyspace`] and the server's state around it.
//!
//! The keyspace (values, atomicity) is its own module; this is the rest, kept apart from it:
//! the loaded invalidation rules, outstanding leases, pub/sub, the connected clients, client
//! tracking, change capture's metrics and per-tag statistics. Data flows one way: commands and
//! other sources (HTTP purges, change capture) act on the keyspace; the engine reports what it
//! removed on its own (listener) and every invalidation it applied (subscriber) to tracking and
//! the tag statistics; commands report what they changed to tracking after they ran. Nothing
//! below calls back up.
//!
//! Invalidations that come without a database (HTTP purges, change capture) apply to every
//! database that was ever written ([`ServerState::invalidate`]); those a client sends apply to
//! its database.

use crate::clients::Clients;
use crate::cluster::remote_deps::RemoteDependents;
use crate::cmd::{CommandError, ErrorKind};
use crate::keyspace::{
    Changes, DATABASES, Keyspace, SmallBytes, Store, Value, key_name, stored_key,
};
use crate::pubsub::PubSub;
use crate::tag_stats::TagStats;
use crate::tracking::Tracking;
use bytes::Bytes;
use lethe::history::{HistoryConfig, Origin};
use lethe::rules::RuleSet;
use lethe::{
    Cache, InsertOptions, Invalidation, RemovalCause, invalidate::Applied, lease::Lease,
    lease::LeaseOutcome, listener::RemovalListener, version::Inserted, version::Rejected,
};
use lethe_cdc::CdcMetrics;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a lease granted by `LETHE.LEASE` stays valid (the engine's lease timeout).
pub const LEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Above this many outstanding leases, granting one first drops those past their timeout, so
/// clients that never fill cannot grow the table without bound.
const LEASE_TABLE_PRUNE: usize = 1024;

/// The server's form of an invalidation from rules or change capture: the engine's own type,
/// with the key as a client would give it (without database; keys rendered as text become
/// bytes). `None` for a version floor, which neither produces and which has no server-wide
/// form (floors are set per key with `LETHE.FENCE`; [`ServerState::invalidate`] refuses them).
pub fn server_form(i: &Invalidation<String>) -> Option<Invalidation<Bytes>> {
    match i {
        Invalidation::PrefixFloor(..) | Invalidation::TagFloor(..) => None,
        other => Some(other.clone().map_key(|k| Bytes::from(k.into_bytes()))),
    }
}

/// Which databases an invalidation applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Databases {
    /// One (a client's).
    One(u8),
    /// Every database ever written (sources that know no database).
    InUse,
}

/// Hears the engine's own removals (expiry, eviction, invalidations) for client tracking.
/// Explicit removals and replacements come from commands, which report their changes
/// themselves, and from key invalidations, which the subscriber reports.
struct RemovalsToTracking {
    tracking: Arc<Tracking>,
    clients: Arc<Clients>,
    /// Keys other cluster nodes depend on: their removals are published.
    remote_deps: Arc<RemoteDependents>,
}

impl RemovalListener<SmallBytes, Value> for RemovalsToTracking {
    fn on_removal(&self, key: &SmallBytes, _: &Value, cause: RemovalCause) {
        if matches!(cause, RemovalCause::Explicit | RemovalCause::Replaced) {
            return;
        }
        self.remote_deps.key_changed(key);
        if self.tracking.active() {
            self.tracking.key_changed(key_name(key), 0, &self.clients);
        }
    }
}

/// The server state shared by every connection.
#[derive(Debug)]
pub struct ServerState {
    keyspace: Keyspace,
    rules: RwLock<Arc<RuleSet>>,
    /// Outstanding leases by stored key (the engine grants at most one per key at a time),
    /// with when they were granted: the engine's [`Lease`] cannot be rebuilt from its token.
    leases: Mutex<HashMap<SmallBytes, (Lease<SmallBytes>, Instant)>>,
    pubsub: PubSub,
    clients: Arc<Clients>,
    tracking: Arc<Tracking>,
    cdc: OnceLock<Arc<CdcMetrics>>,
    bus: OnceLock<crate::bus::BusLink>,
    /// This server's node of a Redis Cluster, in cluster mode ([`crate::cluster`]).
    cluster: OnceLock<Arc<crate::cluster::Cluster>>,
    /// Keys other cluster nodes have dependents on ([`crate::cluster::remote_deps`]).
    remote_deps: Arc<RemoteDependents>,
    tag_stats: Arc<TagStats>,
    /// Databases ever written, one bit each.
    databases_used: AtomicU16,
    /// Whether the engine keeps a per-key history.
    history_on: bool,
}

impl ServerState {
    /// A server whose keyspace holds at most about `capacity_bytes` of memory, with the
    /// server's default history setting (none: see [`crate::config::Config`]).
    pub fn new(capacity_bytes: u64) -> ServerState {
        ServerState::with_history(capacity_bytes, crate::config::Config::default().history())
    }

    /// A server whose keyspace holds at most about `capacity_bytes` of memory, keeping a
    /// per-key history within `history` (none: `LETHE.WHY` shows only a key's state).
    pub fn with_history(capacity_bytes: u64, history: Option<HistoryConfig>) -> ServerState {
        let clients = Arc::new(Clients::new());
        let tracking = Arc::new(Tracking::new());
        let tag_stats = Arc::new(TagStats::new());
        let remote_deps = Arc::new(RemoteDependents::default());
        let watched = remote_deps.clone();
        let (queue, counted, heard, to) = (
            tracking.clone(),
            tag_stats.clone(),
            tracking.clone(),
            clients.clone(),
        );
        let mut builder = Cache::builder();
        if let Some(h) = history {
            builder = builder.history(h);
        }
        let cache: Store = builder
            .max_weight(capacity_bytes)
            .weigher(Keyspace::weigh)
            .lease_timeout(LEASE_TIMEOUT)
            .removal_listener(RemovalsToTracking {
                tracking: tracking.clone(),
                clients: clients.clone(),
                remote_deps: remote_deps.clone(),
            })
            .subscriber(move |applied: &Applied<SmallBytes>| {
                counted.applied(&applied.invalidation);
                match &applied.invalidation {
                    // A tag invalidation hides entries without removing them; the keys are looked
                    // up once the invalidating call returned (the subscriber must not call the
                    // cache), by `settle_tag_invalidations`.
                    Invalidation::Tag(tag) => {
                        counted.invalidated(tag, crate::keyspace::now_millis());
                        if queue.active() || watched.any() {
                            queue.tag_invalidated(tag);
                        }
                    }
                    // Key invalidations remove as explicit removals, which the listener leaves to
                    // whoever reports them: this is where they are reported.
                    Invalidation::Key(key) => {
                        watched.key_changed(key);
                        if heard.active() {
                            heard.key_changed(key_name(key), 0, &to);
                        }
                    }
                    _ => {}
                }
            })
            .build();
        ServerState {
            keyspace: Keyspace::new(cache),
            rules: RwLock::new(Arc::new(RuleSet::new())),
            leases: Mutex::new(HashMap::new()),
            pubsub: PubSub::new(),
            clients,
            tracking,
            cdc: OnceLock::new(),
            bus: OnceLock::new(),
            cluster: OnceLock::new(),
            remote_deps,
            tag_stats,
            databases_used: AtomicU16::new(1),
            history_on: history.is_some(),
        }
    }

    /// The keyspace.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// The engine underneath the keyspace.
    pub fn cache(&self) -> &Store {
        self.keyspace.cache()
    }

    /// Whether the engine keeps a per-key history (so an origin is worth building).
    pub fn keeps_history(&self) -> bool {
        self.history_on
    }

    /// Records that database `db` holds (or held) keys.
    #[inline]
    pub fn note_database(&self, db: u8) {
        let bit = 1u16 << db;
        if self.databases_used.load(Ordering::Relaxed) & bit == 0 {
            self.databases_used.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// The database numbers whose stored prefixes were ever written, in order (INFO).
    pub fn database_numbers_in_use(&self) -> Vec<u8> {
        let map = self.keyspace.databases();
        let mut dbs: Vec<u8> = self
            .databases(Databases::InUse)
            .map(|p| map.database(p))
            .collect();
        dbs.sort_unstable();
        dbs
    }

    /// The database prefixes ever written, in order.
    pub fn databases_in_use(&self) -> Vec<u8> {
        self.databases(Databases::InUse).collect()
    }

    fn databases(&self, which: Databases) -> impl Iterator<Item = u8> {
        let used = match which {
            Databases::One(db) => 1u16 << self.keyspace.databases().prefix(db),
            Databases::InUse => self.databases_used.load(Ordering::Relaxed),
        };
        (0..DATABASES).filter(move |db| used & (1 << db) != 0)
    }

    /// The loaded invalidation rules and data policies (empty until `LETHE.RULES LOAD`).
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().clone()
    }

    /// Replaces the rules as a whole; readers see the old set or the new one, never a mix.
    pub fn set_rules(&self, rules: RuleSet) {
        *self.rules.write() = Arc::new(rules);
    }

    /// Applies `what` to the databases `which`: returns the entries removed (keys, prefixes,
    /// globs) or, for tags, the live keys under them just before. Clients tracking the keys are
    /// told before this returns. A malformed tag fails the whole call with nothing applied.
    ///
    /// For sources outside the command dispatcher (HTTP purges, change capture): it holds the
    /// keyspace's gate shared, so no transaction that holds the keyspace whole sees it half
    /// applied. Commands, which run under the gate already, use [`Self::invalidate_held`].
    pub fn invalidate(
        &self,
        what: &[Invalidation<Bytes>],
        which: Databases,
        origin: Option<Arc<Origin>>,
    ) -> Result<usize, String> {
        let _gate = self.keyspace.gate().shared();
        self.invalidate_held(what, which, origin)
    }

    /// [`Self::invalidate`] for a caller already holding the gate (a command: the dispatcher
    /// holds it shared, an EXEC of whole-keyspace commands exclusively; taking it again here
    /// would wait on itself).
    pub(crate) fn invalidate_held(
        &self,
        what: &[Invalidation<Bytes>],
        which: Databases,
        origin: Option<Arc<Origin>>,
    ) -> Result<usize, String> {
        let n = self.apply_invalidations(what, which, origin)?;
        // Applied here first, then sent to the other members of the bus, if any.
        if let Some(bus) = self.bus.get() {
            bus.publish(what, which);
        }
        Ok(n)
    }

    /// [`Self::invalidate`] of what another member of the bus published: applied here and
    /// not published again.
    pub(crate) fn invalidate_unpublished(
        &self,
        what: &[Invalidation<Bytes>],
        which: Databases,
        origin: Option<Arc<Origin>>,
    ) -> Result<usize, String> {
        let _gate = self.keyspace.gate().shared();
        self.apply_invalidations(what, which, origin)
    }

    fn apply_invalidations(
        &self,
        what: &[Invalidation<Bytes>],
        which: Databases,
        origin: Option<Arc<Origin>>,
    ) -> Result<usize, String> {
        let cache = self.cache();
        // With no history kept, the origin would be dropped anyway.
        let origin = origin.filter(|_| self.keeps_history());
        let run = |inv: Invalidation<SmallBytes>| -> usize {
            let applied = match &origin {
                Some(o) => cache.invalidate_from(inv, o.clone()),
                None => cache.invalidate(inv),
            };
            // Keys, prefixes and globs are never refused.
            applied.ok().and_then(|a| a.removed).unwrap_or(0)
        };
        let tags: Vec<&str> = what
            .iter()
            .filter_map(|w| match w {
                Invalidation::Tag(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        if let Some(floor) = what.iter().find(|w| {
            matches!(
                w,
                Invalidation::PrefixFloor(..) | Invalidation::TagFloor(..)
            )
        }) {
            return Err(format!(
                "no server-wide form for {floor:?}: version floors are set per key with LETHE.FENCE"
            ));
        }
        let mut n = 0;
        if !tags.is_empty() {
            // The engine hides tagged entries without counting them; the count is of the live
            // keys under the tags just before (O(keys under the tags)).
            let mut under = std::collections::HashSet::new();
            for t in &tags {
                under.extend(cache.keys_with_tag(t));
            }
            match &origin {
                Some(o) => cache.invalidate_tags_from(&tags, o.clone()),
                None => cache.invalidate_tags(&tags),
            }
            .map_err(|e| e.to_string())?;
            n += under.len();
        }
        for w in what {
            for db in self.databases(which) {
                n += match w {
                    Invalidation::Key(k) => run(Invalidation::Key(stored_key(db, k))),
                    Invalidation::Prefix(p) => {
                        run(Invalidation::Prefix(stored_key(db, p).as_bytes().to_vec()))
                    }
                    Invalidation::Glob(g) => {
                        run(Invalidation::Glob(stored_key(db, g).as_bytes().to_vec()))
                    }
                    // Tags were applied above; floors were refused.
                    _ => 0,
                };
            }
        }
        self.settle_tag_invalidations();
        Ok(n)
    }

    /// Reads `key` (stored form) or takes its lease; a granted lease is kept here under its
    /// key, replacing any earlier one for the key (which the engine only grants again once that
    /// one lapsed).
    pub fn lease(&self, key: &SmallBytes) -> LeaseOutcome<SmallBytes, Value> {
        let outcome = self.cache().lease(key);
        if let LeaseOutcome::Granted(lease) = &outcome {
            let mut leases = self.leases.lock();
            if leases.len() >= LEASE_TABLE_PRUNE {
                leases.retain(|_, (_, at)| at.elapsed() < LEASE_TIMEOUT);
            }
            leases.insert(key.clone(), (lease.clone(), Instant::now()));
        }
        outcome
    }

    /// Fills `key` (stored form) under the lease with `token`: `None` when no such lease is
    /// outstanding here (never granted, already used, or superseded), else the engine's
    /// verdict; a stored value is recorded in `changes`.
    pub fn fill(
        &self,
        key: &SmallBytes,
        token: u64,
        value: Value,
        options: &InsertOptions<SmallBytes>,
        changes: &mut Changes,
    ) -> Result<Option<Result<Inserted, Rejected>>, CommandError> {
        self.check_fits(key, &value)?;
        let lease = {
            let mut leases = self.leases.lock();
            match leases.get(key) {
                Some((lease, _)) if lease.token() == token => leases.remove(key).map(|(l, _)| l),
                _ => None,
            }
        };
        let filled = lease.map(|lease| self.cache().fill(lease, value, options));
        if matches!(filled, Some(Ok(_))) {
            changes.record(key);
        }
        Ok(filled)
    }

    /// Stores `value` with `options` through the engine's full write path (tags, dependencies,
    /// versions), returning its verdict; a stored value is recorded in `changes`.
    pub fn try_set(
        &self,
        key: SmallBytes,
        value: Value,
        options: &InsertOptions<SmallBytes>,
        changes: &mut Changes,
    ) -> Result<Result<Inserted, Rejected>, CommandError> {
        self.check_fits(&key, &value)?;
        self.note_database(key[0]);
        let result = self.cache().try_insert(key.clone(), value, options);
        if result.is_ok() {
            changes.record(&key);
        }
        Ok(result)
    }

    /// The engine drops an entry heavier than one shard's share of the capacity (reporting it
    /// as evicted); refusing it up front lets the client know, with Redis's out-of-memory error.
    ///
    /// The error is distinct from Redis's maxmemory OOM (which means "the cache is full"): this
    /// value could never be stored under the current `--max-memory`, however empty the cache.
    pub fn check_fits(&self, key: &SmallBytes, value: &Value) -> Result<(), CommandError> {
        self.fits(u64::from(Keyspace::weigh(key, value)))
    }

    fn fits(&self, weight: u64) -> Result<(), CommandError> {
        let max = self.keyspace.max_entry_weight();
        if weight > max {
            return Err(CommandError::new(
                ErrorKind::OutOfMemory,
                format!(
                    "ERR value too large for this cache: the entry takes {weight} bytes, one \
                     entry may take at most {max} (one shard's share of maxmemory {}); raise \
                     --max-memory to store it",
                    self.cache().capacity()
                ),
            ));
        }
        Ok(())
    }

    /// [`Self::check_fits`] for a collection about to grow in place by at most `extra` heap
    /// bytes: refused before the change, since the engine would otherwise evict the whole
    /// collection once it is past one shard's share.
    pub fn check_grows(
        &self,
        key: &SmallBytes,
        value: &Value,
        extra: usize,
    ) -> Result<(), CommandError> {
        self.fits(u64::from(Keyspace::weigh(key, value)).saturating_add(extra as u64))
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

    /// Fences `key` at `version` for `hold` in every database in use ([`lethe::Cache::fence`]):
    /// change capture's protection of a changed row against a fill that read it before.
    pub fn fence_everywhere(&self, key: &[u8], version: u64, hold: Duration) {
        for db in self.databases_in_use() {
            self.cache().fence(&stored_key(db, key), version, hold);
        }
    }

    /// Joins this keyspace to the invalidation bus (once; see [`crate::bus::join`]).
    pub(crate) fn set_bus(&self, link: crate::bus::BusLink) {
        let _ = self.bus.set(link);
    }

    /// The bus link, when this server is a member of one.
    pub fn bus(&self) -> Option<&crate::bus::BusLink> {
        self.bus.get()
    }

    /// This server's cluster node, in cluster mode.
    #[inline]
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::Cluster>> {
        self.cluster.get()
    }

    /// Puts the keyspace in cluster mode as `cluster`; false if it already is.
    pub(crate) fn set_cluster(&self, cluster: Arc<crate::cluster::Cluster>) -> bool {
        self.cluster.set(cluster).is_ok()
    }

    /// Invalidations by tag.
    pub fn tag_stats(&self) -> &TagStats {
        &self.tag_stats
    }

    /// Client-side caching state.
    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// A record for the keys one command changes: kept only while someone needs them.
    #[inline]
    pub fn changes(&self) -> Changes {
        Changes::new(self.records_changes())
    }

    /// Whether commands must record the keys they change: for client tracking, to publish
    /// them on the bus (`publish-writes`), or because other cluster nodes depend on some keys.
    #[inline]
    pub fn records_changes(&self) -> bool {
        self.tracking.active()
            || self.bus.get().is_some_and(|b| b.publishes_writes())
            || self.remote_deps.any()
    }

    /// The keys other cluster nodes have dependents on.
    pub fn remote_dependents(&self) -> &Arc<RemoteDependents> {
        &self.remote_deps
    }

    /// Tells tracking clients about the keys a command of `client` changed (`NOLOOP` skips the
    /// client itself), then about the keys tag invalidations hid meanwhile.
    pub fn report_changes(&self, changes: &mut Changes, client: u64) {
        let keys = changes.take();
        if self.remote_deps.any() {
            for key in &keys {
                self.remote_deps.key_changed(key);
            }
        }
        if let Some(bus) = self.bus.get().filter(|b| b.publishes_writes()) {
            let databases = self.keyspace.databases();
            bus.publish_writes(keys.iter().map(|k| (databases.database(k[0]), key_name(k))));
        }
        if self.tracking.active() {
            for key in keys {
                self.tracking
                    .key_changed(key_name(&key), client, &self.clients);
            }
        }
        self.settle_tag_invalidations();
    }

    /// Reports the keys each tag invalidation since the last call hid: to tracking clients, and
    /// to other cluster nodes whose dependents watch them. Called after every command and HTTP
    /// request that may invalidate, before its reply, and by the maintenance tick for anything
    /// else. Without it a remote dependent would outlive its tag-invalidated dependency until
    /// reclamation removed the entry (whose removal is then published again: harmless, as an
    /// invalidation of a key already gone).
    pub fn settle_tag_invalidations(&self) {
        let (tracking, remote) = (self.tracking.active(), self.remote_deps.any());
        if !tracking && !remote {
            return;
        }
        for tag in self.tracking.take_tags() {
            for key in self.cache().keys_hidden_by_tag(&tag) {
                if remote {
                    self.remote_deps.key_changed(&key);
                }
                if tracking {
                    self.tracking.key_changed(key_name(&key), 0, &self.clients);
                }
            }
        }
    }

    /// Empties the keyspace; tracking clients get one flush message rather than one per key
    /// (the listener leaves explicit removals alone).
    pub fn flush(&self) {
        self.cache().clear();
        self.tracking.flushed(&self.clients);
    }

    /// Empties database `db`; tracking clients get one flush message, as for FLUSHALL.
    pub fn flush_db(&self, db: u8) {
        let db = self.keyspace.databases().prefix(db);
        if self.databases(Databases::InUse).all(|d| d == db) {
            return self.flush();
        }
        self.cache().invalidate_prefix([db]);
        self.tracking.flushed(&self.clients);
    }

    /// The live keys of database `db`.
    pub fn db_size(&self, db: u8) -> usize {
        // The engine counts expired entries until reclaimed; Redis's count excludes them.
        self.cache().run_pending_tasks();
        let db = self.keyspace.databases().prefix(db);
        if self.databases(Databases::InUse).all(|d| d == db) {
            self.cache().len()
        } else {
            self.cache().keys_with_prefix([db]).len()
        }
    }

    /// Background upkeep, run periodically: expires entries whose deadline passed and
    /// reclaims invalidated ones (so their removal is reported, to tracking clients too, as
    /// Redis's active expiry does), then settles tracking.
    pub fn maintain(&self) {
        self.cache().run_pending_tasks();
        self.sweep_hash_fields();
        self.settle_tag_invalidations();
    }

    /// Removes hash fields past their deadline (and hashes left without fields) from keys
    /// nobody writes, as Redis 7.4's active expiry of fields: at most [`FIELD_SWEEP_KEYS`]
    /// keys per call, soonest due first. Tracking clients hear of each key changed.
    pub fn sweep_hash_fields(&self) {
        let ks = self.keyspace();
        let now = crate::keyspace::now_millis();
        let due = ks.field_expiry().take_due(now, FIELD_SWEEP_KEYS);
        if due.is_empty() {
            return;
        }
        let _gate = ks.gate().shared();
        let mut changes = Changes::new(self.tracking.active());
        for key in due {
            let mut lock = ks.lock(std::slice::from_ref(&key));
            let mut t = crate::keyspace::Txn::new(&mut lock, key[0], &mut changes, ks.blocking());
            let next = t.compute(key_name(&key), |e| {
                // Changed (and reported) only if a field is really due: the registered time
                // may be an early bound.
                match e.get() {
                    Some(Value::Hash(h)) if h.has_due(now) => {}
                    Some(Value::Hash(h)) => return h.exact_next_deadline(),
                    _ => return None,
                }
                let Some(Value::Hash(h)) = e.get_mut() else {
                    return None;
                };
                h.purge_expired(now);
                if h.is_empty() {
                    e.remove();
                    return None;
                }
                // Exact after the purge.
                h.next_deadline()
            });
            if let Some(at) = next {
                ks.field_expiry().register(&key, at);
            }
        }
        self.report_changes(&mut changes, 0);
    }
}

/// Keys the active sweep of hash fields handles per maintenance tick (every 100 ms): bounded
/// work per step, as Redis's active expiry bounds its own.
const FIELD_SWEEP_KEYS: usize = 256;

/// The error of a write the engine refused, naming the cause (`ERR stale version: stored 7`)
/// rather than replying nil: a client that asked for a conditional write needs to know why it
/// lost.
pub fn refused(r: Rejected) -> CommandError {
    use lethe::version::RejectReason;
    let stored = r
        .current_version
        .map_or_else(|| "none".to_string(), |v| v.to_string());
    CommandError::err(&match r.reason {
        RejectReason::NotNewer => format!("stale version: stored {stored}"),
        RejectReason::VersionMismatch => format!("version mismatch: stored {stored}"),
        RejectReason::Missing => "no such key".to_string(),
        RejectReason::Exists => "key exists".to_string(),
        RejectReason::BelowFloor => "version below floor".to_string(),
        RejectReason::LeaseInvalid => "fill refused: lease invalid".to_string(),
        RejectReason::InvalidatedSinceLease => "fill refused: invalidated since lease".to_string(),
        RejectReason::BadTag => "invalid tag".to_string(),
        RejectReason::Fenced => format!(
            "write refused: below the version fence of a newer committed change (stored {stored})"
        ),
        _ => r.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_too_big_for_a_shard_are_refused_not_silently_dropped() {
        let state = ServerState::new(64 * 1024);
        let big = Value::string(&vec![b'x'; 128 * 1024]);
        let key = stored_key(0, b"k");
        let err = state
            .try_set(
                key.clone(),
                big,
                &InsertOptions::new(),
                &mut Changes::default(),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfMemory);
        assert!(state.cache().get(&key).is_none());
        let small = Value::string(b"v");
        assert!(
            state
                .try_set(
                    key.clone(),
                    small,
                    &InsertOptions::new(),
                    &mut Changes::default()
                )
                .unwrap()
                .is_ok()
        );
        assert!(state.cache().get(&key).is_some());
    }

    #[test]
    fn invalidations_without_a_database_reach_every_database_in_use() {
        let state = ServerState::new(1 << 20);
        for db in [0, 3] {
            state
                .try_set(
                    stored_key(db, b"user:1"),
                    Value::Int(1),
                    &InsertOptions::new(),
                    &mut Changes::default(),
                )
                .unwrap()
                .unwrap();
        }
        let n = state
            .invalidate(
                &[Invalidation::Key(Bytes::from_static(b"user:1"))],
                Databases::One(3),
                None,
            )
            .unwrap();
        assert_eq!(n, 1);
        assert!(state.cache().contains(&stored_key(0, b"user:1")));
        state
            .try_set(
                stored_key(3, b"user:1"),
                Value::Int(1),
                &InsertOptions::new(),
                &mut Changes::default(),
            )
            .unwrap()
            .unwrap();
        let n = state
            .invalidate(
                &[Invalidation::Prefix(b"user:".to_vec())],
                Databases::InUse,
                None,
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(state.cache().len(), 0);
        let err = state
            .invalidate(&[Invalidation::Tag("a::b".into())], Databases::InUse, None)
            .unwrap_err();
        assert!(err.contains("tag"), "{err}");
        // A version floor has no server-wide form: refused whole, nothing applied.
        state
            .try_set(
                stored_key(0, b"user:3"),
                Value::Int(1),
                &InsertOptions::new(),
                &mut Changes::default(),
            )
            .unwrap()
            .unwrap();
        let err = state
            .invalidate(
                &[
                    Invalidation::Key(Bytes::from_static(b"user:3")),
                    Invalidation::TagFloor("user".into(), 9),
                ],
                Databases::InUse,
                None,
            )
            .unwrap_err();
        assert!(err.contains("LETHE.FENCE"), "{err}");
        assert_eq!(state.cache().len(), 1);
        assert_eq!(
            server_form(&Invalidation::PrefixFloor(b"user:".to_vec(), 9)),
            None
        );
        assert_eq!(
            server_form(&Invalidation::Key("user:3".to_string())),
            Some(Invalidation::Key(Bytes::from_static(b"user:3")))
        );
    }
}

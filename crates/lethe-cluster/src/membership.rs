//! A node taking part in the cluster: it heartbeats, puts itself in the slot map, follows the
//! map, and fails over the slots of nodes whose heartbeat is gone.
//!
//! Two background tasks run per member:
//! - the heartbeat writes this node's key every third of the heartbeat TTL;
//! - the follower reads every new map (a key-value watch, plus a read every third of the TTL
//!   in case the watch stalls), publishes it on [`Membership::map`] when its epoch is higher,
//!   re-adds this node when a map lacks it, and runs failover.
//!
//! Failover: a node that serves slots and has no live heartbeat is dead; its slots are spread
//! evenly over the nodes of the map whose heartbeat is live (this one included), by one
//! compare-and-set on the map. Of several members doing it at once one wins; the others re-read,
//! find the node serving nothing and write nothing. Two rules keep a member from moving slots
//! away from nodes that are alive:
//! - it judges others only once its own heartbeats have been accepted for a whole TTL without
//!   a gap, so after a NATS outage (when every heartbeat may have aged out) each live node has
//!   beaten again before anyone is judged;
//! - a node it has never seen a heartbeat from is judged only after
//!   [`ClusterConfig::join_grace`](crate::ClusterConfig::join_grace), since nodes named in a
//!   new map may still be starting.

use crate::store::{ClusterStore, Heartbeat};
use crate::{ClusterError, ClusterErrorKind, NodeInfo, SlotMap};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Counters of a member, for INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Heartbeats written and acknowledged.
    pub heartbeats_sent: u64,
    /// Heartbeat writes that failed (NATS unreachable or refusing).
    pub heartbeat_failures: u64,
    /// Dead nodes whose slots this member moved (each one compare-and-set it won).
    pub failovers: u64,
    /// Newer maps this member took (from the watch or a read).
    pub map_updates_seen: u64,
    /// The epoch of the map this member follows.
    pub epoch: u64,
}

impl MembershipStats {
    /// The counters as INFO fields (`cluster_heartbeats_sent:12` ...), in a fixed order.
    pub fn info_fields(&self) -> [(&'static str, u64); 5] {
        [
            ("cluster_heartbeats_sent", self.heartbeats_sent),
            ("cluster_heartbeat_failures", self.heartbeat_failures),
            ("cluster_failovers", self.failovers),
            ("cluster_map_updates_seen", self.map_updates_seen),
            ("cluster_epoch", self.epoch),
        ]
    }
}

#[derive(Default)]
struct Counters {
    heartbeats_sent: AtomicU64,
    heartbeat_failures: AtomicU64,
    failovers: AtomicU64,
    map_updates_seen: AtomicU64,
}

/// When this member's heartbeats have been accepted without a gap.
#[derive(Default)]
struct Lease {
    /// Start of the current unbroken run of accepted heartbeats.
    since: Option<Instant>,
    /// The last accepted heartbeat.
    last_ok: Option<Instant>,
}

impl Lease {
    fn accepted(&mut self, now: Instant, ttl: Duration) {
        // A beat after a silence longer than the TTL starts a new run: the key aged out between.
        if self.last_ok.is_none_or(|t| now - t >= ttl) || self.since.is_none() {
            self.since = Some(now);
        }
        self.last_ok = Some(now);
    }

    fn failed(&mut self) {
        self.since = None;
    }

    /// Whether this member may judge others: beating for a whole TTL, and the last beat fresh.
    fn held(&self, now: Instant, ttl: Duration) -> bool {
        self.since.is_some_and(|s| now - s >= ttl) && self.last_ok.is_some_and(|t| now - t < ttl)
    }
}

struct Shared {
    me: NodeInfo,
    store: ClusterStore,
    ttl: Duration,
    join_grace: Duration,
    joined: Instant,
    counters: Counters,
    lease: Mutex<Lease>,
    map_tx: watch::Sender<Arc<SlotMap>>,
}

/// This node's membership in the cluster. Dropping it stops the tasks without deleting the
/// heartbeat (the key then ages out); [`Membership::leave`] deletes it so the others fail this
/// node over at once.
pub struct Membership {
    shared: Arc<Shared>,
    map_rx: watch::Receiver<Arc<SlotMap>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("me", &self.shared.me)
            .field("epoch", &self.map_rx.borrow().epoch())
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Joins the cluster held in `store` as `me`: writes a first heartbeat (failing when NATS
    /// refuses it), adds `me` to the map when it is not there (serving no slots) or updates its
    /// address, and starts heartbeating, following the map and failing over dead nodes. With no
    /// map yet, the member follows an empty one and adds itself once a map is created.
    pub async fn join(store: ClusterStore, me: NodeInfo) -> Result<Membership, ClusterError> {
        // The same checks the map applies to a node, before anything is written under the name.
        SlotMap::empty().add_node(me.clone())?;
        let ttl = store.heartbeat_ttl();
        let join_grace = store.config().join_grace;
        let heartbeat = Heartbeat::now(me.host.clone(), me.port);
        store.beat(&me.name, &heartbeat).await?;
        let initial = match ensure_member(&store, &me).await {
            Ok(map) => map,
            Err(e) if e.kind() == ClusterErrorKind::NoMap => {
                tracing::info!(node = %me.name, "no slot map yet: waiting for one");
                SlotMap::empty()
            }
            Err(e) => return Err(e),
        };
        let (map_tx, map_rx) = watch::channel(Arc::new(initial));
        let now = Instant::now();
        let mut lease = Lease::default();
        lease.accepted(now, ttl);
        let shared = Arc::new(Shared {
            me,
            store,
            ttl,
            join_grace,
            joined: now,
            counters: Counters::default(),
            lease: Mutex::new(lease),
            map_tx,
        });
        shared
            .counters
            .heartbeats_sent
            .fetch_add(1, Ordering::Relaxed);
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(heartbeat_task(shared.clone(), heartbeat, stop_rx.clone())),
            tokio::spawn(follow_task(shared.clone(), stop_rx)),
        ];
        tracing::info!(
            node = %shared.me.name,
            address = %shared.me.address(),
            heartbeat_ttl = ?ttl,
            epoch = map_rx.borrow().epoch(),
            "joined the cluster"
        );
        Ok(Membership {
            shared,
            map_rx,
            stop,
            tasks,
        })
    }

    /// The map this member follows: the newest it has seen, never an older epoch than before.
    pub fn map(&self) -> watch::Receiver<Arc<SlotMap>> {
        self.map_rx.clone()
    }

    /// This node.
    pub fn me(&self) -> &NodeInfo {
        &self.shared.me
    }

    /// The store this member works on.
    pub fn store(&self) -> &ClusterStore {
        &self.shared.store
    }

    /// The heartbeat TTL in force (the nodes bucket's max age).
    pub fn heartbeat_ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// The counters now.
    pub fn stats(&self) -> MembershipStats {
        let c = &self.shared.counters;
        MembershipStats {
            heartbeats_sent: c.heartbeats_sent.load(Ordering::Relaxed),
            heartbeat_failures: c.heartbeat_failures.load(Ordering::Relaxed),
            failovers: c.failovers.load(Ordering::Relaxed),
            map_updates_seen: c.map_updates_seen.load(Ordering::Relaxed),
            epoch: self.map_rx.borrow().epoch(),
        }
    }

    /// Leaves cleanly: stops heartbeating and following, then deletes this node's heartbeat so
    /// the others fail it over without waiting for the key to age out.
    pub async fn leave(mut self) -> Result<(), ClusterError> {
        let _ = self.stop.send(true);
        // The heartbeat task is awaited so no beat of ours can follow the deletion; the
        // follower may be waiting on NATS and has nothing to finish (a compare-and-set it was
        // making either landed or did not).
        let mut tasks = self.tasks.drain(..);
        if let Some(heartbeat) = tasks.next() {
            let _ = heartbeat.await;
        }
        for task in tasks {
            task.abort();
        }
        self.shared
            .store
            .remove_heartbeat(&self.shared.me.name)
            .await?;
        tracing::info!(node = %self.shared.me.name, "left the cluster");
        Ok(())
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Puts `me` in the map (serving nothing) when absent, or updates its address; returns the map.
async fn ensure_member(store: &ClusterStore, me: &NodeInfo) -> Result<SlotMap, ClusterError> {
    let out = store
        .update(|map| {
            if map.node(&me.name) != Some(me) {
                map.add_node(me.clone())?;
            }
            Ok(())
        })
        .await?;
    if out.written {
        tracing::info!(node = %me.name, epoch = out.map.epoch(), "added this node to the slot map");
    }
    Ok(out.map)
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn heartbeat_task(
    shared: Arc<Shared>,
    heartbeat: Heartbeat,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(round(shared.ttl));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = tick.tick() => {}
        }
        let result = tokio::select! {
            _ = stopped(&mut stop) => return,
            r = shared.store.beat(&shared.me.name, &heartbeat) => r,
        };
        let now = Instant::now();
        match result {
            Ok(_) => {
                shared
                    .counters
                    .heartbeats_sent
                    .fetch_add(1, Ordering::Relaxed);
                lock(&shared.lease).accepted(now, shared.ttl);
            }
            Err(e) => {
                shared
                    .counters
                    .heartbeat_failures
                    .fetch_add(1, Ordering::Relaxed);
                lock(&shared.lease).failed();
                tracing::warn!(node = %shared.me.name, error = %e, "heartbeat not written");
            }
        }
    }
}

/// How often heartbeats and rounds run: a third of the TTL, so two may be lost before the key
/// ages out (never under 100 ms, whatever the bucket says).
fn round(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(100))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes `map` when newer than the one followed; re-adds this node when the map lacks it.
async fn take(shared: &Shared, map: SlotMap) {
    let lacks_me = map.epoch() > 0 && map.node(&shared.me.name) != Some(&shared.me);
    let mut map = Some(map);
    let advanced = shared.map_tx.send_if_modified(|current| {
        let newer = map.as_ref().is_some_and(|m| m.epoch() > current.epoch());
        if newer {
            if let Some(m) = map.take() {
                *current = Arc::new(m);
            }
        }
        newer
    });
    if advanced {
        shared
            .counters
            .map_updates_seen
            .fetch_add(1, Ordering::Relaxed);
        let map = shared.map_tx.borrow().clone();
        tracing::debug!(node = %shared.me.name, epoch = map.epoch(), "new slot map");
        if lacks_me {
            match ensure_member(&shared.store, &shared.me).await {
                Ok(m) => Box::pin(take(shared, m)).await,
                Err(e) => tracing::warn!(error = %e, "cannot add this node to the slot map"),
            }
        }
    }
}

async fn follow_task(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(round(shared.ttl));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nodes this member has seen a heartbeat from.
    let mut seen: HashSet<String> = HashSet::new();
    let mut watch = None;
    loop {
        if watch.is_none() {
            match shared.store.watch().await {
                Ok(w) => watch = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the slot map: reading it instead")
                }
            }
        }
        tokio::select! {
            _ = stopped(&mut stop) => return,
            item = async {
                match watch.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            } => match item {
                Some(Ok((map, _))) => take(&shared, map).await,
                Some(Err(e)) => tracing::warn!(error = %e, "slot map watch"),
                None => {
                    tracing::debug!("slot map watch ended: watching again");
                    watch = None;
                }
            },
            _ = tick.tick() => {
                match shared.store.load().await {
                    Ok(Some((map, _))) => take(&shared, map).await,
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot read the slot map"),
                }
                failover(&shared, &mut seen).await;
            }
        }
    }
}

/// One failover round: finds the dead nodes that still serve slots and moves their slots to
/// the live nodes of the map, by compare-and-set.
async fn failover(shared: &Shared, seen: &mut HashSet<String>) {
    let now = Instant::now();
    if !lock(&shared.lease).held(now, shared.ttl) {
        return;
    }
    let map = shared.map_tx.borrow().clone();
    let mut live: Vec<String> = vec![shared.me.name.clone()];
    let mut dead: Vec<String> = Vec::new();
    for node in map.nodes() {
        if node.name == shared.me.name {
            continue;
        }
        match shared.store.heartbeat(&node.name).await {
            Ok(Some(_)) => {
                seen.insert(node.name.clone());
                live.push(node.name.clone());
            }
            Ok(None) => {
                let judged = seen.contains(&node.name) || now - shared.joined >= shared.join_grace;
                if judged && !map.slots_of(&node.name).is_empty() {
                    dead.push(node.name.clone());
                }
            }
            // NATS is not answering: judge nobody this round.
            Err(e) => {
                tracing::debug!(error = %e, "cannot read heartbeats: no failover this round");
                return;
            }
        }
    }
    if dead.is_empty() {
        return;
    }
    live.sort();
    let result = shared
        .store
        .update(|m| {
            let mut moved: Vec<(String, usize)> = Vec::new();
            for d in &dead {
                if m.slots_of(d).is_empty() {
                    continue;
                }
                let targets: Vec<&str> = live
                    .iter()
                    .map(String::as_str)
                    .filter(|t| m.node(t).is_some())
                    .collect();
                if targets.is_empty() {
                    break;
                }
                let n = m.reassign(d, &targets)?;
                moved.push((d.clone(), n));
            }
            Ok(moved)
        })
        .await;
    match result {
        Ok(out) if out.written => {
            for (node, slots) in &out.value {
                tracing::warn!(
                    dead = %node,
                    slots,
                    to = ?live,
                    epoch = out.map.epoch(),
                    "failed over the slots of a node whose heartbeat is gone"
                );
            }
            shared
                .counters
                .failovers
                .fetch_add(out.value.len() as u64, Ordering::Relaxed);
            take(shared, out.map).await;
        }
        Ok(out) => take(shared, out.map).await,
        Err(e) => tracing::warn!(error = %e, "failover not done"),
    }
}

//! Cluster mode: this server as one node of a Redis Cluster, so stock cluster clients (redis-py
//! `RedisCluster`, redis-rs `cluster`, ...) shard their keys over a set of Lethe servers.
//!
//! This module owns the node's side of the slot map: which node this server is
//! ([`ClusterView`]: its name and the [`watch`] channel the membership publishes
//! [`SlotMap`]s on), the map the dispatcher routes by ([`Cluster::map`]), and what happens when
//! the map changes ([`follow`]): keys of the slots this node no longer serves are dropped (a
//! cache needs no migration: a slot starts empty on its new owner), tracking clients hear of
//! each, and the count shows in INFO and the metrics as `cluster_slot_keys_dropped`.
//!
//! The routing itself (MOVED, CROSSSLOT, CLUSTERDOWN) is done by the dispatcher
//! (`cmd::cluster`), against the map applied here, while the command holds the keyspace's gate
//! shared. A new map is made current under the gate held exclusively, so once it is current no
//! command routed by the old one is still running; the keys of the slots lost are then dropped
//! and no later command can write them again. Slots gained are emptied before they are served,
//! in case anything was left in them from an earlier time.
//!
//! Wiring: with `lethe_cluster::Membership` (joined before the server runs, its `me()` the
//! node announced), the view is `ClusterView::new(membership.me().name.clone(),
//! membership.map())`; the membership keeps sending each new map on that channel. Any other
//! source of maps does the same with a channel of its own:
//!
//! ```no_run
//! # async fn wire(listener: tokio::net::TcpListener, first: lethe_cluster::SlotMap) {
//! use lethe_server::cluster::ClusterView;
//! use std::sync::Arc;
//! let (maps, receiver) = tokio::sync::watch::channel(Arc::new(first));
//! let server = lethe_server::Server::builder(listener)
//!     .cluster(ClusterView::new("node-1", receiver))
//!     .build();
//! // The membership keeps `maps` and calls `maps.send_replace(Arc::new(newer))` on changes.
//! server.run(std::future::pending::<()>()).await;
//! # }
//! ```
//!
//! Without a [`ClusterView`] (the server built without [`crate::server::Builder::cluster`])
//! none of this exists and the dispatcher pays one `OnceLock` read per command.

pub mod remote_deps;

use crate::keyspace::key_name;
use crate::state::ServerState;
use lethe_cluster::{NodeInfo, SLOTS, SlotMap, key_slot};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tracing::{info, warn};

pub use lethe_cluster;

/// Which node this server is, and where the cluster's slot map comes from: the membership
/// publishes every new map on the channel; the server follows it.
#[derive(Debug, Clone)]
pub struct ClusterView {
    name: String,
    map: watch::Receiver<Arc<SlotMap>>,
}

impl ClusterView {
    /// Node `name` (as it appears in the maps) following the maps published on `map`.
    pub fn new(name: impl Into<String>, map: watch::Receiver<Arc<SlotMap>>) -> ClusterView {
        ClusterView {
            name: name.into(),
            map,
        }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A cluster node's live state, shared by every connection ([`ServerState::cluster`]).
#[derive(Debug)]
pub struct Cluster {
    name: String,
    /// The map commands are routed by; replaced only under the gate held exclusively.
    applied: RwLock<Arc<SlotMap>>,
    /// One bit per slot, set where `applied` gives the slot to this node: what a command's
    /// check reads (a plain load of a word no one writes meanwhile, where the map's lock
    /// would be a counter every core writes). Changed with `applied`, under the exclusive
    /// gate, so a command (which holds the gate shared) sees both of one map.
    mine: Box<[AtomicU64]>,
    /// Keys dropped because their slot was not (or no longer) served here.
    dropped: AtomicU64,
}

impl Cluster {
    /// Node `name`, routing by `map` until [`follow`] applies another.
    pub fn new(name: impl Into<String>, map: Arc<SlotMap>) -> Cluster {
        let cluster = Cluster {
            name: name.into(),
            mine: (0..usize::from(SLOTS) / 64)
                .map(|_| AtomicU64::new(0))
                .collect(),
            applied: RwLock::new(map.clone()),
            dropped: AtomicU64::new(0),
        };
        cluster.set_mine(&map);
        cluster
    }

    fn set_mine(&self, map: &SlotMap) {
        for (w, word) in self.mine.iter().enumerate() {
            let bits = (0..64u16)
                .filter(|b| map.serves(&self.name, w as u16 * 64 + b))
                .fold(0u64, |acc, b| acc | 1 << b);
            word.store(bits, Ordering::Relaxed);
        }
    }

    /// Whether this node serves `slot` by the map applied now (the dispatcher's check).
    #[inline]
    pub fn is_mine(&self, slot: u16) -> bool {
        let word = &self.mine[usize::from(slot / 64)];
        word.load(Ordering::Relaxed) & (1 << (slot % 64)) != 0
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The map applied now.
    pub fn map(&self) -> Arc<SlotMap> {
        self.applied.read().clone()
    }

    /// Runs `f` on the map applied now without cloning it.
    #[inline]
    pub(crate) fn with_map<R>(&self, f: impl FnOnce(&SlotMap) -> R) -> R {
        f(&self.applied.read())
    }

    /// This node as the map knows it; a node missing from the map (not yet announced) is
    /// shown with its name only.
    pub fn me(&self, map: &SlotMap) -> NodeInfo {
        map.node(&self.name)
            .cloned()
            .unwrap_or_else(|| NodeInfo::new(self.name.clone(), "", 0))
    }

    /// Keys dropped so far because their slot was not served here.
    pub fn keys_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Makes `new` the map commands are routed by: empties the slots it gains first, swaps
    /// under the exclusive gate, then drops every key in a slot it does not serve. Returns
    /// how many keys were dropped.
    pub fn apply(&self, state: &ServerState, new: Arc<SlotMap>) -> u64 {
        let old = self.map();
        let mut gained = vec![false; usize::from(SLOTS)];
        let mut any_gained = false;
        for slot in 0..SLOTS {
            if new.serves(&self.name, slot) && !old.serves(&self.name, slot) {
                gained[usize::from(slot)] = true;
                any_gained = true;
            }
        }
        let mut n = 0;
        if any_gained {
            n += self.drop_where(state, |slot| gained[usize::from(slot)]);
        }
        {
            let _exclusive = state.keyspace().gate().exclusive();
            *self.applied.write() = new.clone();
            self.set_mine(&new);
        }
        n += self.drop_where(state, |slot| !new.serves(&self.name, slot));
        // Dependents of keys whose slot changed owner go: the new owner watches nothing.
        let deps = state.remote_dependents();
        deps.forget_slots(|slot| !new.serves(&self.name, slot));
        let moved = remote_deps::moved_slot_tags(&old, &new);
        if !moved.is_empty() {
            let _gate = state.keyspace().gate().shared();
            for tag in &moved {
                state.cache().invalidate_tag(tag);
            }
            state.settle_tag_invalidations();
        }
        // Clients blocked on keys of slots that left are redirected when they look again.
        state.keyspace().blocking().wake_all();
        if n > 0 || new.epoch() != old.epoch() {
            info!(
                node = %self.name,
                epoch = new.epoch(),
                slots = new.slots_of(&self.name).len(),
                dropped = n,
                "cluster slot map applied"
            );
        }
        n
    }

    /// Drops (as invalidations, which tracking clients hear of) every key of every database
    /// whose slot matches. O(keys): map changes are rare, and nothing per write is kept for it.
    fn drop_where(&self, state: &ServerState, doomed: impl Fn(u16) -> bool) -> u64 {
        let _gate = state.keyspace().gate().shared();
        let cache = state.cache();
        let mut n = 0u64;
        for prefix in state.databases_in_use() {
            for key in cache.keys_with_prefix([prefix]) {
                if doomed(key_slot(key_name(&key))) && cache.invalidate_key(&key) {
                    n += 1;
                }
            }
        }
        state.settle_tag_invalidations();
        self.dropped.fetch_add(n, Ordering::Relaxed);
        n
    }
}

/// Follows the maps published on `view`'s channel until `stop` turns true or the channel
/// closes: each is applied ([`Cluster::apply`]) on a blocking thread, in order; a map
/// published while one is being applied is taken next (intermediate ones may be skipped: only
/// the latest matters).
pub(crate) async fn follow(
    state: Arc<ServerState>,
    cluster: Arc<Cluster>,
    mut maps: watch::Receiver<Arc<SlotMap>>,
    mut stop: watch::Receiver<bool>,
) {
    // The first map was current when the server started; anything stored in slots it does
    // not give this node goes now.
    let mut next = Some(maps.borrow_and_update().clone());
    loop {
        if let Some(map) = next.take() {
            let (state, cluster) = (state.clone(), cluster.clone());
            if tokio::task::spawn_blocking(move || cluster.apply(&state, map))
                .await
                .is_err()
            {
                warn!("applying a cluster slot map failed");
            }
        }
        tokio::select! {
            changed = maps.changed() => {
                if changed.is_err() {
                    warn!("the cluster slot map channel closed: keeping the last map");
                    return;
                }
                next = Some(maps.borrow_and_update().clone());
            }
            _ = stop.changed() => return,
        }
    }
}

/// Sets `view` up on `state`: the map current now is routed by at once, and the returned
/// future follows the later ones (the server spawns it).
pub(crate) fn install(
    state: &Arc<ServerState>,
    view: ClusterView,
    stop: watch::Receiver<bool>,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let current = view.map.borrow().clone();
    let cluster = Arc::new(Cluster::new(view.name, current));
    if !state.set_cluster(cluster.clone()) {
        warn!("this keyspace already serves a cluster node: ignoring the second cluster view");
        return None;
    }
    let watches = state.bus().map(|bus| {
        // Whatever other nodes registered with an earlier run of this node is not watched
        // any more: their dependents on its keys go.
        bus.publish(
            &[lethe::Invalidation::Tag(remote_deps::owner_tag(
                cluster.name(),
            ))],
            crate::state::Databases::InUse,
        );
        watch_for_others(state.clone(), cluster.clone(), stop.clone())
    });
    let follow = follow(state.clone(), cluster, view.map, stop);
    Some(async move {
        match watches {
            Some(watches) => {
                tokio::join!(follow, watches);
            }
            None => follow.await,
        }
    })
}

/// Answers other nodes' watch requests for keys of this node's slots, and publishes the
/// changes of watched keys on the bus, until `stop`.
async fn watch_for_others(
    state: Arc<ServerState>,
    cluster: Arc<Cluster>,
    mut stop: watch::Receiver<bool>,
) {
    use futures_util::StreamExt;
    let Some(bus) = state.bus() else { return };
    let nats = bus.nats().clone();
    let mut requests = match nats.subscribe(remote_deps::subject(cluster.name())).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot answer dependency watches: dependents on this node's keys will be refused");
            return;
        }
    };
    let deps = state.remote_dependents().clone();
    loop {
        tokio::select! {
            request = requests.next() => {
                let Some(request) = request else { return };
                let answer = remote_deps::answer(&deps, |slot| cluster.is_mine(slot), &request.payload);
                if let Some(reply) = request.reply {
                    if let Err(e) = nats.publish(reply, answer.into()).await {
                        warn!(error = %e, "cannot answer a dependency watch");
                    }
                }
            }
            changed = deps.next_changes() => {
                let keys: Vec<_> = changed.into_iter().map(lethe::Invalidation::Key).collect();
                if let Some(bus) = state.bus() {
                    bus.publish(&keys, crate::state::Databases::One(0));
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Before a write with dependencies runs in cluster mode: asks the owners of the ones on
/// other nodes to watch them ([`remote_deps`]), and notes the confirmed watches in the
/// session for the command to check. `Some(error reply)` when the write must not run (an
/// owner unreachable, no bus to hear owners on); inside MULTI that poisons the transaction,
/// as any command refused while queueing does.
pub(crate) async fn before_write(
    state: &ServerState,
    session: &mut crate::cmd::Session,
    args: &[bytes::Bytes],
) -> Option<crate::frame::Frame> {
    let cluster = state.cluster()?;
    // Every command passes here in cluster mode: the rest only for the writes that can carry
    // dependencies.
    let name = args.first()?;
    if !crate::cmd::lethe::DEPENDENT_WRITES
        .iter()
        .any(|w| name.eq_ignore_ascii_case(w.as_bytes()))
    {
        return None;
    }
    let (deps, lives) = crate::cmd::lethe::dependencies_of(args, &state.rules())?;
    if session.tx.queue.is_none() {
        session.dependency_watches.clear();
    }
    let map = cluster.map();
    let remote = deps
        .iter()
        .any(|d| !map.serves(cluster.name(), key_slot(d)));
    let result = match state.bus() {
        _ if !remote => return None,
        None => Err(
            "CLUSTERDOWN A dependency on another node's key needs the bus (serve --bus)"
                .to_string(),
        ),
        Some(bus) => remote_deps::register(bus.nats(), cluster.name(), &map, &deps, lives).await,
    };
    match result {
        Ok(watched) => {
            session.dependency_watches.extend(watched);
            None
        }
        Err(text) => {
            if session.tx.queue.is_some() {
                session.tx.failed = true;
            }
            Some(crate::frame::Frame::Error(text))
        }
    }
}

//! Lethe's cluster: the keyspace sharded over nodes the way Redis Cluster shards it, so stock
//! cluster clients (redis-py `RedisCluster`, redis-rs cluster, Jedis, Lettuce, go-redis) use a
//! set of Lethe servers unchanged.
//!
//! - [`slots`]: the 16,384 hash slots, CRC16 of a key or of its `{hash tag}`, and the
//!   [`SlotMap`] that says which node serves each slot (a pure value, versioned by an epoch).
//! - [`store`]: [`ClusterStore`], the cluster's shared state in two NATS JetStream key-value
//!   buckets: `LETHE_CLUSTER` holds the slot map (key `slots`, JSON), `LETHE_NODES` holds one
//!   heartbeat per live node and forgets it after the heartbeat TTL (the bucket's max age).
//! - [`membership`]: [`Membership`], a node taking part: heartbeating, joining the map,
//!   following it, and failing over the slots of nodes whose heartbeat is gone.
//! - [`admin`]: the node and slot lists operators type and the `lethe cluster status` report.
//!
//! A cache needs no replication: a slot that moves starts empty on its new node.
//!
//! # Guarantees
//! - Every change to the slot map is a compare-and-set on the key's JetStream revision,
//!   retried on conflict from a fresh read: two writers never both win with stale input, and no
//!   accepted change is lost. Each change raises the map's epoch, so "newer" is well defined.
//! - A member's map ([`Membership::map`]) only moves forward in epoch.
//! - The slots of a node whose heartbeat is gone are given to the live nodes by exactly one
//!   survivor: the others' compare-and-set fails, they re-read, find nothing left to move and
//!   write nothing. Every slot the dead node had ends up on a node whose heartbeat was live
//!   when the survivor looked.
//! - A node that stops heartbeating is failed over about one TTL after its last heartbeat
//!   (when the server drops the key) plus up to a third of the TTL (the survivors' round); one
//!   that leaves cleanly ([`Membership::leave`]) within a round. A member fails over a node it
//!   has never seen alive only after [`ClusterConfig::join_grace`].
//! - A node that comes back after its slots were moved joins with no slots; it serves again
//!   only when given some (`lethe cluster move`, or a later failover). One that restarts before
//!   its heartbeat aged out keeps its slots (and serves them empty, as any restarted cache).
//!
//! # What this does not guarantee
//! NATS is the single source of truth, and there is no fencing. A node cut off from NATS keeps
//! the last map it saw and keeps serving its slots: it cannot learn that the others moved them
//! after its heartbeat aged out, so for as long as the partition lasts two nodes may answer for
//! the same slots: clients that reach only the cut-off node read and write there, the new
//! owner never sees those writes, and the cut-off node also misses invalidations (see
//! `lethe-bus` for how that staleness is bounded). When it reaches NATS again it reads the
//! current map and stops serving what it lost; what it held for those slots is no longer
//! served. Failure detection is only as good as the heartbeat TTL: a node paused
//! for longer than the TTL is declared dead even though it is not. While NATS itself is
//! unreachable nothing changes: no map update, no failover.
#![forbid(unsafe_code)]

pub mod admin;
pub mod membership;
pub mod slots;
pub mod store;

pub use membership::{Membership, MembershipStats};
pub use slots::{NodeInfo, SLOTS, SlotMap, SlotMapError, key_slot};
pub use store::{ClusterStore, Heartbeat, MapItem, MapWatch, Updated};

use std::fmt;
use std::time::Duration;

/// Where the cluster's state lives and how quickly a silent node is declared dead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The bucket holding the slot map (`LETHE_CLUSTER`).
    pub map_bucket: String,
    /// The bucket holding the heartbeats (`LETHE_NODES`).
    pub nodes_bucket: String,
    /// How long a heartbeat lives: the nodes bucket's max age. Nodes beat every third of it.
    /// Used when this opener creates the bucket; an existing bucket's own max age wins (all
    /// nodes must agree, and they share the bucket), see [`ClusterStore::set_heartbeat_ttl`].
    pub heartbeat_ttl: Duration,
    /// How long a member waits, after joining, before it fails over a node it has never seen
    /// a heartbeat from (nodes named in a new map may still be starting). A node it has seen
    /// alive is failed over as soon as its heartbeat is gone.
    pub join_grace: Duration,
}

impl Default for ClusterConfig {
    /// Buckets `LETHE_CLUSTER` and `LETHE_NODES`, heartbeat TTL 6 s, join grace 30 s.
    fn default() -> ClusterConfig {
        ClusterConfig {
            map_bucket: "LETHE_CLUSTER".into(),
            nodes_bucket: "LETHE_NODES".into(),
            heartbeat_ttl: Duration::from_secs(6),
            join_grace: Duration::from_secs(30),
        }
    }
}

impl ClusterConfig {
    /// Checks the bucket names and durations.
    pub fn validate(&self) -> Result<(), ClusterError> {
        for b in [&self.map_bucket, &self.nodes_bucket] {
            let ok = !b.is_empty()
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
            if !ok {
                return Err(ClusterError::config(format!(
                    "bad bucket name {b:?}: letters, digits, '-' or '_'"
                )));
            }
        }
        if self.map_bucket == self.nodes_bucket {
            return Err(ClusterError::config(
                "the map and nodes buckets must differ".into(),
            ));
        }
        if self.heartbeat_ttl < Duration::from_millis(300) {
            return Err(ClusterError::config(format!(
                "heartbeat TTL {:?} is too short (at least 300 ms)",
                self.heartbeat_ttl
            )));
        }
        Ok(())
    }
}

/// What kind of failure a [`ClusterError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterErrorKind {
    /// The configuration is invalid.
    Config,
    /// NATS could not be reached, or refused.
    Connect,
    /// A JetStream or key-value request failed.
    JetStream,
    /// There is no slot map yet (`lethe cluster create` makes one).
    NoMap,
    /// A slot map exists already and was not to be replaced.
    MapExists,
    /// The stored map is unreadable, or a change to it is invalid.
    Map,
    /// The compare-and-set kept losing to other writers (bounded retries).
    Contention,
}

/// A cluster error: its kind and a message for people.
#[derive(Clone, Debug)]
pub struct ClusterError {
    kind: ClusterErrorKind,
    message: String,
}

impl ClusterError {
    pub(crate) fn new(kind: ClusterErrorKind, message: String) -> ClusterError {
        ClusterError { kind, message }
    }

    pub(crate) fn config(message: String) -> ClusterError {
        ClusterError::new(ClusterErrorKind::Config, message)
    }

    pub(crate) fn jetstream(message: String) -> ClusterError {
        ClusterError::new(ClusterErrorKind::JetStream, message)
    }

    /// What failed.
    pub fn kind(&self) -> ClusterErrorKind {
        self.kind
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClusterError {}

impl From<SlotMapError> for ClusterError {
    fn from(e: SlotMapError) -> ClusterError {
        ClusterError::new(ClusterErrorKind::Map, e.0)
    }
}

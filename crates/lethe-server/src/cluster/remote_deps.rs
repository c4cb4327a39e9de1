//! Dependencies across shards: an entry on one node that depends on a key another node owns
//! still goes when that key changes.
//!
//! The dependent's node (A) stores the entry with the dependency, as on one node, and asks the
//! owner (B) to watch the key *before* the write is acknowledged: a NATS request on
//! `lethe.cluster.deps.<B>`, answered once B has the key in its watch set. From then on, every
//! change B sees to the key (a command writing or deleting it, an expiry, an eviction, a tag,
//! pattern or dependency invalidation) is published on the bus as a key invalidation; every
//! node applies it, and on A the engine cascades it to the dependents, as it does for a local
//! key that is not cached. A watch lasts as long as the longest-lived dependent registered
//! with it (forever for one without a TTL), so a change after the write is never missed, and
//! a change before it is what a single node would miss too (the application read the old
//! value; a lease fill with the dependency refuses it).
//!
//! What a watch cannot survive is the owner itself changing. So each dependent is also tagged
//! `lethe-cluster:<owner>:<slot>` (hierarchical, so `lethe-cluster:<owner>` covers them all):
//! - when a map moves a slot to another owner, every node invalidates
//!   `lethe-cluster:<old owner>:<slot>` locally (the new owner starts the slot empty and
//!   watches nothing in it);
//! - when a node starts in cluster mode it publishes the invalidation of
//!   `lethe-cluster:<itself>`: the watches of its previous run are gone.
//!
//! Dependencies on keys this node owns get the same tag, for the day their slot moves.
//! Without a bus there is no way to hear the owner, so a write with a dependency on another
//! node's key is refused.

use crate::keyspace::key_name;
use bytes::Bytes;
use lethe_cluster::{SlotMap, key_slot};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The root of the tags dependents carry: `lethe-cluster:<owner>:<slot>`.
pub const TAG_ROOT: &str = "lethe-cluster";

/// How long a node waits for an owner to confirm a watch before refusing the write.
pub(crate) const REGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// The most keys one node watches for others: beyond it, registrations are refused (memory
/// stays bounded whatever clients send).
pub(crate) const MAX_WATCHED: usize = 1 << 20;

/// The tag of a dependent whose dependency lives in `slot`, owned by `owner`.
pub fn dependency_tag(owner: &str, slot: u16) -> String {
    format!("{TAG_ROOT}:{owner}:{slot}")
}

/// The tag covering every dependent of `owner`'s keys.
pub fn owner_tag(owner: &str) -> String {
    format!("{TAG_ROOT}:{owner}")
}

/// The NATS subject `node` answers watch requests on.
pub(crate) fn subject(node: &str) -> String {
    format!("lethe.cluster.deps.{node}")
}

/// A watch request: keys (base64, as they are bytes) and how long the dependent may live.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WatchRequest {
    pub keys: Vec<String>,
    /// Milliseconds the dependent lives at most; `None`: no deadline.
    pub ttl_ms: Option<u64>,
}

/// The keys this node watches for dependents on other nodes, and the changes to publish.
#[derive(Debug, Default)]
pub struct RemoteDependents {
    /// Key name (database 0, the only one in cluster mode) -> when the watch ends.
    watched: Mutex<HashMap<Bytes, Option<Instant>>>,
    /// Set while `watched` is not empty: what the write path reads (one load).
    any: AtomicBool,
    /// Changed watched keys waiting to be published.
    changed: Mutex<Vec<Bytes>>,
    wake: Notify,
    registered: AtomicU64,
    published: AtomicU64,
}

impl RemoteDependents {
    /// Whether any key is watched.
    #[inline]
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Watches `keys` until `until` (or for good), extending earlier watches. False when the
    /// watch set is full.
    pub(crate) fn watch(
        &self,
        keys: impl IntoIterator<Item = Bytes>,
        until: Option<Instant>,
    ) -> bool {
        let mut watched = self.watched.lock();
        for key in keys {
            if watched.len() >= MAX_WATCHED && !watched.contains_key(&key) {
                return false;
            }
            let end = watched.entry(key).or_insert(until);
            *end = match (*end, until) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            self.registered.fetch_add(1, Ordering::Relaxed);
        }
        self.any.store(!watched.is_empty(), Ordering::Relaxed);
        true
    }

    /// A stored key (database byte first) changed or left: queued for publishing if watched.
    pub(crate) fn key_changed(&self, stored: &[u8]) {
        if !self.any() || stored.first() != Some(&0) {
            return;
        }
        let name = key_name(stored);
        let mut watched = self.watched.lock();
        let Some(end) = watched.get(name).copied() else {
            return;
        };
        if end.is_some_and(|e| e < Instant::now()) {
            watched.remove(name);
            self.any.store(!watched.is_empty(), Ordering::Relaxed);
            return;
        }
        drop(watched);
        self.changed.lock().push(Bytes::copy_from_slice(name));
        self.wake.notify_one();
    }

    /// Forgets the watches of slots this node no longer serves (their dependents are dropped
    /// by the tag of the slot's old owner on every node).
    pub(crate) fn forget_slots(&self, lost: impl Fn(u16) -> bool) {
        let mut watched = self.watched.lock();
        watched.retain(|k, _| !lost(key_slot(k)));
        self.any.store(!watched.is_empty(), Ordering::Relaxed);
    }

    /// Takes the changes queued since the last call, waiting for one if there are none.
    pub(crate) async fn next_changes(&self) -> Vec<Bytes> {
        loop {
            let notified = self.wake.notified();
            let batch = std::mem::take(&mut *self.changed.lock());
            if !batch.is_empty() {
                self.published
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return batch;
            }
            notified.await;
        }
    }

    /// (keys watched now, watch registrations, changes published) for INFO.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.watched.lock().len() as u64,
            self.registered.load(Ordering::Relaxed),
            self.published.load(Ordering::Relaxed),
        )
    }
}

/// The tags invalidated locally when the map goes from `old` to `new`: one per slot whose
/// owner changed, naming the old owner.
pub(crate) fn moved_slot_tags(old: &SlotMap, new: &SlotMap) -> Vec<String> {
    (0..lethe_cluster::SLOTS)
        .filter_map(|slot| {
            let before = old.owner(slot)?;
            let moved = new.owner(slot).is_none_or(|n| n.name != before.name);
            moved.then(|| dependency_tag(&before.name, slot))
        })
        .collect()
}

/// Dependencies of one write, grouped by the node owning them (this node included).
pub(crate) fn by_owner<'k>(
    map: &SlotMap,
    deps: impl IntoIterator<Item = &'k [u8]>,
) -> Result<HashMap<String, Vec<Bytes>>, u16> {
    let mut out: HashMap<String, Vec<Bytes>> = HashMap::new();
    for d in deps {
        let slot = key_slot(d);
        let owner = map.owner(slot).ok_or(slot)?;
        out.entry(owner.name.clone())
            .or_default()
            .push(Bytes::copy_from_slice(d));
    }
    Ok(out)
}

/// Asks the owners of `deps` (other than `me`) to watch them for a dependent living at most
/// `ttl`, and waits for every confirmation. Returns the (key, owner) pairs confirmed; an error
/// text (for a `-CLUSTERDOWN` or `-TRYAGAIN` reply) when an owner is unknown, unreachable or
/// refused.
pub(crate) async fn register(
    nats: &async_nats::Client,
    me: &str,
    map: &SlotMap,
    deps: &[Bytes],
    ttl: Option<Duration>,
) -> Result<Vec<(Bytes, String)>, String> {
    use base64::Engine as _;
    let groups = by_owner(map, deps.iter().map(|d| d.as_ref()))
        .map_err(|slot| format!("CLUSTERDOWN Hash slot {slot} of a dependency is not served"))?;
    let mut confirmed = Vec::new();
    for (owner, keys) in groups {
        if owner == me {
            continue;
        }
        let request = WatchRequest {
            keys: keys
                .iter()
                .map(|k| base64::engine::general_purpose::STANDARD.encode(k))
                .collect(),
            ttl_ms: ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        let body: Bytes = serde_json::to_vec(&request)
            .map_err(|e| format!("ERR {e}"))?
            .into();
        // "No responders" while the owner is still starting (subscribing) is retried, within
        // the same time bound.
        let ask = async {
            loop {
                match nats.request(subject(&owner), body.clone()).await {
                    Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => return other,
                }
            }
        };
        let reply = tokio::time::timeout(REGISTER_TIMEOUT, ask).await;
        match reply {
            Ok(Ok(m)) if m.payload.as_ref() == b"OK" => {
                confirmed.extend(keys.into_iter().map(|k| (k, owner.clone())));
            }
            Ok(Ok(m)) => {
                return Err(format!(
                    "TRYAGAIN Node {owner} did not watch a dependency: {}",
                    String::from_utf8_lossy(&m.payload)
                ));
            }
            Ok(Err(e)) => {
                return Err(format!(
                    "CLUSTERDOWN Node {owner}, owner of a dependency, is unreachable ({e})"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "CLUSTERDOWN Node {owner}, owner of a dependency, did not answer in time"
                ));
            }
        }
    }
    Ok(confirmed)
}

/// What a watch request gets back: `OK` once watched, else why not.
pub(crate) fn answer(
    deps: &RemoteDependents,
    is_mine: impl Fn(u16) -> bool,
    body: &[u8],
) -> &'static str {
    use base64::Engine as _;
    let Ok(request) = serde_json::from_slice::<WatchRequest>(body) else {
        return "ERR unreadable watch request";
    };
    let mut keys = Vec::with_capacity(request.keys.len());
    for k in &request.keys {
        let Ok(key) = base64::engine::general_purpose::STANDARD.decode(k) else {
            return "ERR unreadable key";
        };
        if !is_mine(key_slot(&key)) {
            return "MOVED the slot is not served here";
        }
        keys.push(Bytes::from(key));
    }
    let until = request
        .ttl_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    if deps.watch(keys, until) {
        "OK"
    } else {
        "FULL too many keys watched for other nodes"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_cluster::NodeInfo;

    #[test]
    fn watches_extend_and_expire_and_queue_changes() {
        let r = RemoteDependents::default();
        assert!(!r.any());
        let soon = Instant::now() + Duration::from_secs(60);
        assert!(r.watch([Bytes::from_static(b"k")], Some(soon)));
        assert!(r.watch([Bytes::from_static(b"k")], None));
        assert!(r.any());
        r.key_changed(b"\0k");
        r.key_changed(b"\0other");
        r.key_changed(b"\x01k"); // another database: not cluster keys
        assert_eq!(*r.changed.lock(), vec![Bytes::from_static(b"k")]);
        // Still watched after a change: the next one is published too.
        r.key_changed(b"\0k");
        assert_eq!(r.changed.lock().len(), 2);
        let past = Instant::now() - Duration::from_secs(1);
        assert!(r.watch([Bytes::from_static(b"old")], Some(past)));
        r.key_changed(b"\0old");
        assert_eq!(
            r.changed.lock().len(),
            2,
            "an ended watch publishes nothing"
        );
        r.forget_slots(|_| true);
        assert!(!r.any());
    }

    #[test]
    fn moved_slots_name_their_old_owner() {
        let nodes = vec![
            NodeInfo::new("a", "127.0.0.1", 1),
            NodeInfo::new("b", "127.0.0.1", 2),
        ];
        let old = SlotMap::even(nodes).unwrap();
        let mut new = old.clone();
        new.assign(&[0, 1], "b").unwrap();
        assert_eq!(
            moved_slot_tags(&old, &new),
            vec!["lethe-cluster:a:0".to_string(), "lethe-cluster:a:1".into()]
        );
        let groups = by_owner(&new, [b"{x}1".as_slice()]).unwrap();
        assert_eq!(groups.len(), 1);
    }
}

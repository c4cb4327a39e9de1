//! Client-side caching: which clients cache which keys, and the invalidation messages they get
//! when those keys change (`CLIENT TRACKING`, as in Redis 6+).
//!
//! Two modes, as in Redis:
//! - **default**: the server remembers the keys each tracking client read (read-only commands;
//!   with `OPTIN`/`OPTOUT` only the commands `CLIENT CACHING` selects) and, when such a key
//!   changes, tells those clients once and forgets them for that key until they read it again;
//! - **broadcast** (`BCAST`): nothing is remembered; every change of a key that starts with one
//!   of the client's prefixes (every key without prefixes) is sent.
//!
//! A change is anything that makes a cached copy wrong: a write or delete by a command (each
//! command records the keys it changed, and the dispatcher reports them with the client's id,
//! for `NOLOOP`), and every removal the engine makes on its own, heard through its removal
//! listener and subscriber: expiry, eviction, and Lethe's invalidations by key, tag, pattern,
//! dependency, version floor and rule. Tag invalidations hide entries without removing them;
//! the engine's subscriber queues the tag here and
//! [`crate::state::ServerState::settle_tag_invalidations`] turns it into the keys it hid before the
//! command's reply goes out. Keys are reported by name: tracking does not distinguish
//! databases, as in Redis.
//!
//! Messages go to the client itself (RESP3 `invalidate` pushes) or to the client named by
//! `REDIRECT`; a RESP2 redirect target gets them as `message`s on `__redis__:invalidate` if it is
//! in pub/sub mode, as Redis sends them. A flush sends one message with a null key list.
//!
//! Cost: nothing when no client tracks (one atomic load per command). The table holds at most
//! [`MAX_TRACKED_KEYS`] keys; past that, arbitrary keys are dropped from it and invalidated, so
//! clients never keep a copy the server stopped watching.

use crate::clients::Clients;
use crate::frame::Frame;
use bytes::Bytes;
use indexmap::IndexMap;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys the default-mode table remembers at most (Redis's `tracking-table-max-keys` default).
pub const MAX_TRACKED_KEYS: usize = 1_000_000;

/// The pub/sub channel RESP2 redirect targets receive invalidations on.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// How a client asked to be tracked (`CLIENT TRACKING ON ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// Client that receives the messages; 0 for the client itself.
    pub redirect: u64,
    /// Broadcast mode.
    pub bcast: bool,
    /// Broadcast prefixes (empty: every key).
    pub prefixes: Vec<Bytes>,
    /// Track only the commands after `CLIENT CACHING yes`.
    pub optin: bool,
    /// Track all but the commands after `CLIENT CACHING no`.
    pub optout: bool,
    /// Do not tell the client about its own changes.
    pub noloop: bool,
}

#[derive(Debug)]
struct Tracked {
    mode: Mode,
    /// The redirect target went away; reported once to the client, then nothing is sent.
    broken: bool,
}

#[derive(Debug, Default)]
struct Table {
    clients: HashMap<u64, Tracked>,
    /// Default mode: key -> clients that read it since its last change.
    keys: IndexMap<Bytes, HashSet<u64>>,
    /// Broadcast clients (few; scanned per change).
    bcast: Vec<u64>,
}

/// The tracking state shared by every connection.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Clients with tracking on: when 0, nothing here is consulted.
    active: AtomicUsize,
    table: Mutex<Table>,
    /// Tags invalidated since the last [`Tracking::take_tags`], in order.
    tags: Mutex<Vec<String>>,
}

impl Tracking {
    /// No client tracks anything.
    pub fn new() -> Tracking {
        Tracking::default()
    }

    /// Whether any client has tracking on.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Turns tracking on for `client` with `mode` (replacing an earlier mode).
    pub fn enable(&self, client: u64, mode: Mode) {
        let mut t = self.table.lock();
        let bcast = mode.bcast;
        if t.clients
            .insert(
                client,
                Tracked {
                    mode,
                    broken: false,
                },
            )
            .is_none()
        {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        t.bcast.retain(|&id| id != client);
        if bcast {
            t.bcast.push(client);
        }
    }

    /// Turns tracking off for `client` (also when it disconnects). Its remembered keys are
    /// dropped lazily, when they change.
    pub fn disable(&self, client: u64) {
        let mut t = self.table.lock();
        if t.clients.remove(&client).is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        t.bcast.retain(|&id| id != client);
    }

    /// The mode of `client`, if it tracks, and whether its redirect is broken.
    pub fn mode(&self, client: u64) -> Option<(Mode, bool)> {
        let t = self.table.lock();
        t.clients.get(&client).map(|c| (c.mode.clone(), c.broken))
    }

    /// Remembers that `client` read `keys` (default mode). Past [`MAX_TRACKED_KEYS`], keys are
    /// dropped from the table and invalidated at their readers.
    pub fn remember(&self, client: u64, keys: &[Bytes], clients: &Clients) {
        let mut overflow = Vec::new();
        {
            let mut t = self.table.lock();
            for key in keys {
                t.keys.entry(key.clone()).or_default().insert(client);
            }
            while t.keys.len() > MAX_TRACKED_KEYS {
                // As Redis: an arbitrary key goes (the first slot, O(1) to take).
                if let Some((key, readers)) = t.keys.swap_remove_index(0) {
                    overflow.push((key, readers));
                }
            }
        }
        for (key, readers) in overflow {
            self.send_to(&readers, Some(&[key]), 0, clients);
        }
    }

    /// Reports that `key` changed or left the cache; `from` is the client whose command changed
    /// it (0 when the cache did), which `NOLOOP` spares.
    pub fn key_changed(&self, key: &[u8], from: u64, clients: &Clients) {
        if !self.active() {
            return;
        }
        let mut targets: HashSet<u64> = {
            let mut t = self.table.lock();
            let mut targets = t.keys.swap_remove(key).unwrap_or_default();
            for &id in &t.bcast {
                let matches = t.clients.get(&id).is_some_and(|c| {
                    c.mode.prefixes.is_empty() || c.mode.prefixes.iter().any(|p| key.starts_with(p))
                });
                if matches {
                    targets.insert(id);
                }
            }
            targets
        };
        targets.remove(&0);
        if !targets.is_empty() {
            let key = Bytes::copy_from_slice(key);
            self.send_to(&targets, Some(std::slice::from_ref(&key)), from, clients);
        }
    }

    /// Reports that the whole keyspace was emptied: every tracking client gets one message
    /// with a null key list, and the table is cleared.
    pub fn flushed(&self, clients: &Clients) {
        if !self.active() {
            return;
        }
        let targets: HashSet<u64> = {
            let mut t = self.table.lock();
            t.keys.clear();
            t.clients.keys().copied().collect()
        };
        self.send_to(&targets, None, 0, clients);
    }

    /// Queues an invalidated tag for [`crate::state::ServerState::settle_tag_invalidations`]
    /// (called by the engine's subscriber, which must not call back into the cache, when a
    /// client tracks or another cluster node watches keys here).
    pub fn tag_invalidated(&self, tag: &str) {
        self.tags.lock().push(tag.to_owned());
    }

    /// Takes the queued tags.
    pub fn take_tags(&self) -> Vec<String> {
        let mut tags = self.tags.lock();
        if tags.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut *tags)
        }
    }

    /// Sends one invalidation message (`keys`, or a null list for a flush) to each client in
    /// `readers`, through its redirect target, skipping `noloop` clients for their own change.
    fn send_to(
        &self,
        readers: &HashSet<u64>,
        keys: Option<&[Bytes]>,
        from: u64,
        clients: &Clients,
    ) {
        let mut broken = Vec::new();
        let mut deliveries = Vec::new();
        {
            let t = self.table.lock();
            for id in readers {
                let Some(c) = t.clients.get(id) else {
                    continue;
                };
                if c.mode.noloop && *id == from && from != 0 {
                    continue;
                }
                let target = if c.mode.redirect == 0 {
                    *id
                } else {
                    c.mode.redirect
                };
                deliveries.push((*id, target, c.broken));
            }
        }
        for (id, target, was_broken) in deliveries {
            match clients.get(target) {
                Some(info) => {
                    let (resp, pubsub) = info.protocol_and_pubsub();
                    let frame = if resp >= 3 {
                        Some(Frame::Push(vec![
                            Frame::Bulk(Bytes::from_static(b"invalidate")),
                            key_list(keys),
                        ]))
                    } else if target != id && pubsub {
                        Some(Frame::Push(vec![
                            Frame::Bulk(Bytes::from_static(b"message")),
                            Frame::Bulk(Bytes::from_static(INVALIDATE_CHANNEL.as_bytes())),
                            match keys {
                                Some(_) => key_list(keys),
                                None => Frame::Null,
                            },
                        ]))
                    } else {
                        // RESP2 without a subscribed redirect target: RESP2 has no way to
                        // tell a push from a reply on the same connection, so nothing is sent.
                        None
                    };
                    if let Some(frame) = frame {
                        info.push(frame);
                    }
                }
                None if !was_broken => broken.push((id, target)),
                None => {}
            }
        }
        if broken.is_empty() {
            return;
        }
        let mut t = self.table.lock();
        for (id, target) in broken {
            if let Some(c) = t.clients.get_mut(&id) {
                c.broken = true;
            }
            // Only a RESP3 client can be told; Redis sends the same push.
            if let Some(info) = clients.get(id) {
                if info.protocol_and_pubsub().0 >= 3 {
                    info.push(Frame::Push(vec![
                        Frame::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                        Frame::Integer(target as i64),
                    ]));
                }
            }
        }
    }

    /// Keys the default-mode table remembers now (INFO's `tracking_total_keys`).
    pub fn tracked_keys(&self) -> usize {
        self.table.lock().keys.len()
    }

    /// Clients with tracking on (INFO's `tracking_clients`).
    pub fn tracking_clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Broadcast prefixes in use (INFO's `tracking_total_prefixes`).
    pub fn tracked_prefixes(&self) -> usize {
        let t = self.table.lock();
        t.bcast
            .iter()
            .filter_map(|id| t.clients.get(id))
            .map(|c| c.mode.prefixes.len())
            .sum()
    }
}

fn key_list(keys: Option<&[Bytes]>) -> Frame {
    match keys {
        Some(keys) => Frame::Array(keys.iter().cloned().map(Frame::Bulk).collect()),
        None => Frame::NullArray,
    }
}

//! The hash slots and the map of which node serves each one.
//!
//! A key's slot is CRC16 (XMODEM, as Redis Cluster's specification defines it) of the key,
//! modulo 16,384; when the key holds a non-empty `{...}` section, only the part between the
//! first `{` and the next `}` is hashed, so keys sharing that *hash tag* share a slot.
//!
//! [`SlotMap`] is a plain value: nodes (name, announced host and port) and an owner per slot,
//! with an `epoch` raised by every change so that a newer map is recognised. It is stored as
//! JSON (slot ranges, not 16,384 entries) in the cluster's key-value bucket.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How many hash slots the keyspace has.
pub const SLOTS: u16 = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), bitwise-built table.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16/XMODEM of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The part of `key` that is hashed: its hash tag when it has a non-empty one, else all of it.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS - 1)
}

/// A node of the cluster: its name (the server's `--node-id`) and where clients reach it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name, unique in the cluster.
    pub name: String,
    /// The host clients connect to (announced in CLUSTER SLOTS and MOVED replies).
    pub host: String,
    /// The RESP port clients connect to.
    pub port: u16,
}

impl NodeInfo {
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    /// The node's 40-hex-digit id as Redis Cluster shows it (CLUSTER MYID, NODES, SLOTS),
    /// derived from the name so every node and tool computes the same one.
    pub fn cluster_id(&self) -> String {
        let mut out = String::with_capacity(40);
        for seed in 0..3u64 {
            // FNV-1a with a per-word seed: stable and spread; not a security boundary.
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for &b in self.name.as_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= h >> 29;
            h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h ^= h >> 32;
            out.push_str(&format!("{h:016x}"));
        }
        out.truncate(40);
        out
    }

    /// `host:port`, as MOVED replies give it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What is wrong with a slot map or a change to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMapError(pub String);

impl fmt::Display for SlotMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SlotMapError {}

/// Which node serves each slot. Every slot is served by one node or by none (unassigned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    epoch: u64,
    nodes: Vec<NodeInfo>,
    /// Per slot, the index in `nodes` of its owner.
    owners: Vec<Option<u16>>,
}

/// The stored form: ranges of slots per node.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    epoch: u64,
    nodes: Vec<NodeInfo>,
    /// `[first, last, node index]`, inclusive.
    ranges: Vec<[u32; 3]>,
}

impl SlotMap {
    /// An empty cluster: no nodes, no slot served.
    pub fn empty() -> SlotMap {
        SlotMap {
            epoch: 0,
            nodes: Vec::new(),
            owners: vec![None; usize::from(SLOTS)],
        }
    }

    /// `nodes` with the slots split evenly in contiguous ranges, in the order given (as
    /// `redis-cli --cluster create` does). Names must be unique and the list non-empty.
    pub fn even(nodes: Vec<NodeInfo>) -> Result<SlotMap, SlotMapError> {
        if nodes.is_empty() {
            return Err(SlotMapError("a cluster needs at least one node".into()));
        }
        if nodes.len() > usize::from(SLOTS) {
            return Err(SlotMapError("more nodes than slots".into()));
        }
        let mut map = SlotMap::empty();
        for n in nodes {
            map.add_node(n)?;
        }
        let count = map.nodes.len();
        for slot in 0..usize::from(SLOTS) {
            map.owners[slot] = Some((slot * count / usize::from(SLOTS)) as u16);
        }
        map.epoch = 1;
        Ok(map)
    }

    /// Raised by every change; a map with a higher epoch is newer.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Raises the epoch above `epoch` (kept when already above): a map that replaces another
    /// one wholesale (`lethe cluster create --force`) must still read as newer to every node.
    pub fn raise_epoch_above(&mut self, epoch: u64) {
        self.epoch = self.epoch.max(epoch.saturating_add(1));
    }

    /// The nodes, serving slots or not.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node serving `slot`, if any.
    pub fn owner(&self, slot: u16) -> Option<&NodeInfo> {
        self.owners
            .get(usize::from(slot))
            .copied()
            .flatten()
            .map(|i| &self.nodes[usize::from(i)])
    }

    /// Whether node `name` serves `slot`.
    pub fn serves(&self, name: &str, slot: u16) -> bool {
        self.owner(slot).is_some_and(|n| n.name == name)
    }

    /// Contiguous ranges `(first, last, node)` of served slots, in slot order.
    pub fn ranges(&self) -> Vec<(u16, u16, &NodeInfo)> {
        let mut out: Vec<(u16, u16, &NodeInfo)> = Vec::new();
        for (slot, owner) in self.owners.iter().enumerate() {
            let Some(i) = owner else { continue };
            let node = &self.nodes[usize::from(*i)];
            match out.last_mut() {
                Some((_, last, n)) if usize::from(*last) + 1 == slot && n.name == node.name => {
                    *last = slot as u16;
                }
                _ => out.push((slot as u16, slot as u16, node)),
            }
        }
        out
    }

    /// The slots node `name` serves, ascending.
    pub fn slots_of(&self, name: &str) -> Vec<u16> {
        (0..SLOTS).filter(|&s| self.serves(name, s)).collect()
    }

    /// How many slots are served by some node.
    pub fn assigned(&self) -> usize {
        self.owners.iter().filter(|o| o.is_some()).count()
    }

    /// Adds a node serving no slot yet, or updates the address of a known one. Raises the
    /// epoch.
    pub fn add_node(&mut self, node: NodeInfo) -> Result<(), SlotMapError> {
        validate_name(&node.name)?;
        match self.nodes.iter_mut().find(|n| n.name == node.name) {
            Some(known) => *known = node,
            None => {
                if self.nodes.len() >= usize::from(SLOTS) {
                    return Err(SlotMapError("too many nodes".into()));
                }
                self.nodes.push(node);
            }
        }
        self.epoch += 1;
        Ok(())
    }

    /// Removes node `name`, which must serve no slot (move them first). Raises the epoch.
    pub fn remove_node(&mut self, name: &str) -> Result<(), SlotMapError> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| SlotMapError(format!("no node called {name:?} in the cluster")))?;
        let serving = self.slots_of(name).len();
        if serving > 0 {
            return Err(SlotMapError(format!(
                "{name:?} serves {serving} slots: move them to other nodes first"
            )));
        }
        self.nodes.remove(i);
        let removed = i as u16;
        for owner in self.owners.iter_mut().flatten() {
            if *owner > removed {
                *owner -= 1;
            }
        }
        self.epoch += 1;
        Ok(())
    }

    /// Gives `slots` to node `to` (known to the map). Raises the epoch.
    pub fn assign(&mut self, slots: &[u16], to: &str) -> Result<(), SlotMapError> {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == to)
            .ok_or_else(|| SlotMapError(format!("no node called {to:?} in the cluster")))?;
        if let Some(bad) = slots.iter().find(|&&s| s >= SLOTS) {
            return Err(SlotMapError(format!(
                "slot {bad} is out of range (0-16383)"
            )));
        }
        for &s in slots {
            self.owners[usize::from(s)] = Some(i as u16);
        }
        self.epoch += 1;
        Ok(())
    }

    /// Spreads the slots of node `from` evenly over `to` (names known to the map, `from` not
    /// among them), in contiguous runs. Raises the epoch. Returns how many slots moved.
    pub fn reassign(&mut self, from: &str, to: &[&str]) -> Result<usize, SlotMapError> {
        if to.is_empty() {
            return Err(SlotMapError("no node to take the slots".into()));
        }
        if to.contains(&from) {
            return Err(SlotMapError(format!("{from:?} cannot take its own slots")));
        }
        let slots = self.slots_of(from);
        let n = slots.len();
        for (k, target) in to.iter().enumerate() {
            let part = &slots[k * n / to.len()..(k + 1) * n / to.len()];
            self.assign(part, target)?;
        }
        Ok(n)
    }

    /// The map as stored in the cluster bucket.
    pub fn to_json(&self) -> String {
        let ranges = self
            .ranges()
            .into_iter()
            .map(|(a, b, n)| {
                let i = self
                    .nodes
                    .iter()
                    .position(|m| m.name == n.name)
                    .unwrap_or(0);
                [u32::from(a), u32::from(b), i as u32]
            })
            .collect();
        let stored = Stored {
            version: 1,
            epoch: self.epoch,
            nodes: self.nodes.clone(),
            ranges,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads a stored map, checking it whole (unknown version, bad ranges, duplicate names).
    pub fn from_json(text: &[u8]) -> Result<SlotMap, SlotMapError> {
        let stored: Stored = serde_json::from_slice(text)
            .map_err(|e| SlotMapError(format!("unreadable slot map: {e}")))?;
        if stored.version != 1 {
            return Err(SlotMapError(format!(
                "slot map version {} is not supported (this build reads 1)",
                stored.version
            )));
        }
        let mut map = SlotMap::empty();
        for n in stored.nodes {
            validate_name(&n.name)?;
            if map.node(&n.name).is_some() {
                return Err(SlotMapError(format!("node {:?} appears twice", n.name)));
            }
            map.nodes.push(n);
        }
        for [a, b, i] in stored.ranges {
            if a > b || b >= u32::from(SLOTS) || i as usize >= map.nodes.len() {
                return Err(SlotMapError(format!("bad slot range [{a}, {b}, {i}]")));
            }
            for s in a..=b {
                map.owners[s as usize] = Some(i as u16);
            }
        }
        map.epoch = stored.epoch;
        Ok(map)
    }
}

/// Node names travel in KV keys and JetStream consumer names: letters, digits, `-`, `_`.
fn validate_name(name: &str) -> Result<(), SlotMapError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SlotMapError(format!(
            "bad node name {name:?}: 1-64 letters, digits, '-' or '_'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from Redis's CLUSTER KEYSLOT (and the specification's CRC16 check value).
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
    }

    fn three() -> SlotMap {
        SlotMap::even(vec![
            NodeInfo::new("a", "127.0.0.1", 7000),
            NodeInfo::new("b", "127.0.0.1", 7001),
            NodeInfo::new("c", "127.0.0.1", 7002),
        ])
        .unwrap()
    }

    #[test]
    fn even_split_is_contiguous_like_redis_cli() {
        let m = three();
        let r: Vec<_> = m
            .ranges()
            .iter()
            .map(|(a, b, n)| (*a, *b, n.name.clone()))
            .collect();
        assert_eq!(
            r,
            vec![
                (0, 5461, "a".to_string()),
                (5462, 10922, "b".into()),
                (10923, 16383, "c".into())
            ]
        );
        assert_eq!(m.assigned(), 16384);
    }

    #[test]
    fn reassign_and_round_trip() {
        let mut m = three();
        let e = m.epoch();
        assert_eq!(m.reassign("b", &["a", "c"]).unwrap(), 5461);
        assert!(m.epoch() > e);
        assert!(m.slots_of("b").is_empty());
        assert_eq!(m.slots_of("a").len() + m.slots_of("c").len(), 16384);
        let back = SlotMap::from_json(m.to_json().as_bytes()).unwrap();
        assert_eq!(back, m);
        assert!(SlotMap::from_json(br#"{"version":2,"epoch":1,"nodes":[],"ranges":[]}"#).is_err());
        assert!(
            SlotMap::from_json(br#"{"version":1,"epoch":1,"nodes":[],"ranges":[[0,1,0]]}"#)
                .is_err()
        );
    }

    #[test]
    fn remove_node_keeps_the_others_slots() {
        let mut m = three();
        assert!(m.remove_node("b").is_err(), "b serves slots");
        assert!(m.remove_node("zz").is_err());
        m.reassign("a", &["b"]).unwrap();
        let (b, c) = (m.slots_of("b"), m.slots_of("c"));
        let e = m.epoch();
        m.remove_node("a").unwrap();
        assert!(m.epoch() > e);
        assert!(m.node("a").is_none());
        assert_eq!((m.slots_of("b"), m.slots_of("c")), (b, c));
        assert_eq!(m.assigned(), 16384);
        assert_eq!(SlotMap::from_json(m.to_json().as_bytes()).unwrap(), m);
    }

    #[test]
    fn ids_are_stable_hex() {
        let id = NodeInfo::new("a", "h", 1).cluster_id();
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, NodeInfo::new("a", "x", 2).cluster_id());
        assert_ne!(id, NodeInfo::new("b", "h", 1).cluster_id());
    }
}

//! Lethe's cluster: the keyspace sharded over nodes the way Redis Cluster shards it, so stock
//! cluster clients (redis-py `RedisCluster`, redis-rs cluster, Jedis, Lettuce, go-redis) use a
//! set of Lethe servers unchanged.
//!
//! - [`slots`]: the 16,384 hash slots, CRC16 of a key or of its `{hash tag}`, and the
//!   [`SlotMap`] that says which node serves each slot (a pure value, versioned by an epoch).
//!
//! A cache needs no replication: a slot that moves starts empty on its new node.
#![forbid(unsafe_code)]

pub mod slots;

pub use slots::{NodeInfo, SLOTS, SlotMap, SlotMapError, key_slot};

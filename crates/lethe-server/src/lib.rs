//! Lethe over the Redis protocol: a server speaking RESP2 and RESP3 with Redis 7's replies and
//! error texts, storing its keyspace in the Lethe engine.
//!
//! The shape follows a classic Tokio server: [`request`] (the incremental request parser),
//! [`frame`] (replies and their encoding), [`connection`] (buffered I/O per client, over TCP or
//! [`tls`]), [`parse`] (argument cursor), [`cmd`] (one module per command family), [`keyspace`]
//! (Redis values in the engine, atomic per command without a global lock), [`state`] (what every
//! connection shares) and [`server`] (accept loop and shutdown). Beside it, [`http`] is the
//! optional HTTP admin API (metrics, health, purges, conditional reads) with its live
//! [`dashboard`], [`metrics`] the
//! server's own counters and [`pubsub`] the channel registry and [`clients`] the connected
//! clients; [`limits`] holds the limits and safety settings (password, protected mode,
//! maxclients, timeouts, request and output buffer sizes) and [`descriptors`] fits `maxclients`
//! to the descriptor limit; [`local`] runs commands for an in-process client without a socket;
//! [`cluster`] makes the server a node of a Redis Cluster (slot routing, CLUSTER commands).
//! The `lethe` binary wraps it with configuration and signals.

#![forbid(unsafe_code)]

pub mod allocator;
pub mod bus;
pub mod cdc;
pub(crate) mod clients;
pub mod cluster;
pub(crate) mod cmd;
pub mod config;
pub mod connection;
pub mod dashboard;
pub mod descriptors;
pub mod frame;
pub mod http;
pub mod keyspace;
pub mod limits;
pub mod local;
pub mod metrics;
pub(crate) mod parse;
pub(crate) mod pubsub;
pub mod request;
pub mod server;
pub mod state;
pub(crate) mod tag_stats;
pub mod tls;
pub(crate) mod tracking;
pub mod why;

pub use server::{Server, run, run_with};

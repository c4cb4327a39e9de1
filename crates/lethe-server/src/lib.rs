//! Lethe over the Redis protocol: a server speaking RESP2 and RESP3 with Redis 7's replies and
//! error texts, storing its keyspace in the Lethe engine.
//!
//! The shape follows a classic Tokio server: [`frame`] (the wire format), [`connection`]
//! (buffered I/O per client), [`parse`] (argument cursor), [`cmd`] (one module per command
//! family), [`keyspace`] (Redis values in the engine, atomic per command without a global lock),
//! [`state`] (what every connection shares) and [`server`] (accept loop and shutdown).
//! Beside it, [`http`] is the optional HTTP admin API (metrics, health, purges, conditional
//! reads), [`metrics`] the server's own counters and [`pubsub`] the channel registry and
//! [`clients`] the connected clients; [`limits`] holds the limits and safety settings
//! (password, protected mode, maxclients, timeouts, request and output buffer sizes). The `lethe` binary wraps it with
//! configuration and signals.

#![forbid(unsafe_code)]

pub mod allocator;
pub mod cdc;
pub(crate) mod clients;
pub(crate) mod cmd;
pub mod config;
pub mod connection;
pub mod frame;
pub mod http;
pub mod keyspace;
pub mod limits;
pub(crate) mod metrics;
pub(crate) mod parse;
pub(crate) mod pubsub;
pub mod server;
pub mod state;
pub(crate) mod tag_stats;
pub(crate) mod tracking;

pub use server::{run, run_with, run_with_http, run_with_limits, run_with_metrics};

//! The benchmark suites. Each one builds its caches through [`crate::systems`] and reports
//! through [`crate::report`]. The invalidation suite reuses the throughput suite's measurement
//! loop for its tagged-throughput case; otherwise suites know nothing about each other. The
//! invalidation and server suites start their servers through [`crate::redis_server`] and
//! [`crate::lethe_server`]; the cdc and consistency suites start their own PostgreSQL through `lethe_cdc::testing`, the bus
//! suite its nats-server through `lethe_bus::testing`.

pub mod bus;
mod bus_cluster;
pub mod cdc;
pub mod consistency;
pub mod hitratio;
pub mod invalidation;
pub mod memory;
pub mod robustness;
pub mod server;
pub mod server_memory;
pub mod throughput;

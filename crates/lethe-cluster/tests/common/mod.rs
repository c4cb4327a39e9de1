//! Shared test support: a nats-server of the test's own, stores on it, bounded waits.
#![allow(dead_code)]

use lethe_bus::testing::NatsServer;
use lethe_cluster::{ClusterConfig, ClusterStore, NodeInfo};
use std::time::{Duration, Instant};

/// The heartbeat TTL tests run with: short, so expiry is seen quickly, yet long enough that a
/// loaded machine does not starve a live member's heartbeat past it.
pub const TTL: Duration = Duration::from_secs(2);

pub fn config(join_grace: Duration) -> ClusterConfig {
    ClusterConfig {
        heartbeat_ttl: TTL,
        join_grace,
        ..ClusterConfig::default()
    }
}

pub async fn store(nats: &NatsServer, join_grace: Duration) -> ClusterStore {
    ClusterStore::connect(&nats.url(), config(join_grace))
        .await
        .expect("open the cluster store on the test's nats-server")
}

pub fn node(name: &str, port: u16) -> NodeInfo {
    NodeInfo::new(name, "127.0.0.1", port)
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

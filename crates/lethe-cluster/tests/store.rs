//! The cluster store on a real nats-server: creating and loading the map, compare-and-set
//! under conflict, the map watch, heartbeats and their expiry.

mod common;

use common::{TTL, node, store, until};
use futures_util::StreamExt;
use lethe_bus::testing::NatsServer;
use lethe_cluster::{ClusterConfig, ClusterErrorKind, ClusterStore, Heartbeat, SlotMap};
use std::time::Duration;

fn three() -> SlotMap {
    SlotMap::even(vec![node("a", 7000), node("b", 7001), node("c", 7002)]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_load_refuse_and_force() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    assert!(s.load().await.unwrap().is_none());
    let err = s.update(|_| Ok(())).await.unwrap_err();
    assert_eq!(err.kind(), ClusterErrorKind::NoMap);

    let (stored, rev) = s.create(three(), false).await.unwrap();
    let (loaded, loaded_rev) = s.load().await.unwrap().unwrap();
    assert_eq!(loaded, stored);
    assert_eq!(loaded_rev, rev);

    let two = SlotMap::even(vec![node("x", 1), node("y", 2)]).unwrap();
    let err = s.create(two.clone(), false).await.unwrap_err();
    assert_eq!(err.kind(), ClusterErrorKind::MapExists, "{err}");
    assert_eq!(
        s.load().await.unwrap().unwrap().0,
        stored,
        "refused create changed the map"
    );

    let (forced, _) = s.create(two.clone(), true).await.unwrap();
    assert!(
        forced.epoch() > stored.epoch(),
        "a forced map must read as newer"
    );
    let (loaded, _) = s.load().await.unwrap().unwrap();
    assert_eq!(loaded, forced);
    assert_eq!(loaded.nodes(), two.nodes());
}

/// Two writers from the same revision: the second's compare-and-set fails, it re-reads and
/// applies its change to the first's map, so both changes are in the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_updates_are_retried_not_lost() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    let (base, _) = s.create(three(), false).await.unwrap();
    let url = nats.url();
    let mut interfered = false;
    let out = s
        .update(|m| {
            if !interfered {
                interfered = true;
                // Another writer, on its own connection, changes the map after this one read it.
                let url = url.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let other = ClusterStore::connect(&url, common::config(TTL))
                            .await
                            .unwrap();
                        let done = other
                            .update(|m| m.assign(&[1], "c").map_err(Into::into))
                            .await;
                        assert!(done.unwrap().written);
                    });
                })
                .join()
                .unwrap();
            }
            m.assign(&[0], "b")?;
            Ok(())
        })
        .await
        .unwrap();
    assert!(out.written);
    assert_eq!(out.attempts, 2, "the first write had to lose the race");
    let (m, rev) = s.load().await.unwrap().unwrap();
    assert_eq!(rev, out.revision);
    assert!(m.serves("b", 0), "this writer's change is there");
    assert!(m.serves("c", 1), "the other writer's change was not lost");
    assert_eq!(m.epoch(), base.epoch() + 2);
}

/// Many concurrent writers on separate connections: every change lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_all_land() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    let (base, _) = s.create(three(), false).await.unwrap();
    let writers = 16u16;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let s = store(&nats, TTL).await;
        tasks.push(tokio::spawn(async move {
            s.update(move |m| m.assign(&[i], "c").map_err(Into::into))
                .await
                .unwrap()
        }));
    }
    let mut attempts = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert!(out.written);
        attempts += out.attempts;
    }
    let (m, _) = s.load().await.unwrap().unwrap();
    for i in 0..writers {
        assert!(m.serves("c", i), "change to slot {i} lost");
    }
    assert_eq!(m.epoch(), base.epoch() + u64::from(writers));
    assert!(attempts >= u32::from(writers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_the_map_then_every_change() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    let (first, _) = s.create(three(), false).await.unwrap();
    let mut w = s.watch().await.unwrap();
    let (seen, _) = next(&mut w).await;
    assert_eq!(seen, first);
    for slot in [5u16, 6] {
        let out = s
            .update(|m| m.assign(&[slot], "a").map_err(Into::into))
            .await
            .unwrap();
        let (seen, rev) = next(&mut w).await;
        assert_eq!(rev, out.revision);
        assert_eq!(seen, out.map);
        assert!(seen.serves("a", slot));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_live_expire_and_delete() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    assert_eq!(s.heartbeat_ttl(), TTL);
    let hb = Heartbeat::now("127.0.0.1", 7000);
    s.beat("a", &hb).await.unwrap();
    s.beat("b", &Heartbeat::now("127.0.0.1", 7001))
        .await
        .unwrap();
    assert_eq!(s.heartbeat("a").await.unwrap(), Some(hb.clone()));
    let live = s.live_nodes().await.unwrap();
    let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);

    s.remove_heartbeat("b").await.unwrap();
    assert_eq!(s.heartbeat("b").await.unwrap(), None);

    // Nobody beats "a" again: the server drops it one TTL after its last write.
    until(
        TTL * 5,
        "a heartbeat older than the TTL is gone",
        || async { s.heartbeat("a").await.unwrap().is_none() },
    )
    .await;
    assert!(s.live_nodes().await.unwrap().is_empty());
}

/// The heartbeat TTL is the bucket's: a later opener with another setting adopts it, and
/// changing it is explicit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_decides_the_heartbeat_ttl() {
    let nats = NatsServer::start();
    let first = store(&nats, TTL).await;
    assert_eq!(first.heartbeat_ttl(), TTL);
    let mut later = ClusterStore::connect(&nats.url(), ClusterConfig::default())
        .await
        .unwrap();
    assert_eq!(later.heartbeat_ttl(), TTL);
    later
        .set_heartbeat_ttl(Duration::from_secs(4))
        .await
        .unwrap();
    let again = store(&nats, TTL).await;
    assert_eq!(again.heartbeat_ttl(), Duration::from_secs(4));
    assert!(later.set_heartbeat_ttl(Duration::ZERO).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_nats_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = ClusterStore::connect(
        &format!("nats://127.0.0.1:{port}"),
        ClusterConfig::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ClusterErrorKind::Connect);
    assert!(err.to_string().contains("cannot reach NATS"), "{err}");
}

async fn next(w: &mut lethe_cluster::MapWatch) -> (SlotMap, u64) {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("the watch delivered nothing")
        .expect("the watch ended")
        .expect("the watch failed")
}

/// Failover's write, from two survivors at once, on separate connections: whatever the
/// interleaving, exactly one writes; the other finds the dead node serving nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_failover_writes_once() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    let survivors = [store(&nats, TTL).await, store(&nats, TTL).await];
    for round in 0..5 {
        let (_, rev) = admin.create(three(), true).await.unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = survivors
            .iter()
            .cloned()
            .map(|s| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    s.update(|m| {
                        if m.slots_of("c").is_empty() {
                            return Ok(0);
                        }
                        Ok(m.reassign("c", &["a", "b"])?)
                    })
                    .await
                    .unwrap()
                })
            })
            .collect();
        let mut written = 0;
        for t in tasks {
            let out = t.await.unwrap();
            if out.written {
                written += 1;
                assert_eq!(out.value, 5461);
            }
        }
        assert_eq!(written, 1, "round {round}: one survivor writes");
        let (m, now) = admin.load().await.unwrap().unwrap();
        assert_eq!(now, rev + 1, "round {round}: one write");
        assert!(m.slots_of("c").is_empty());
        assert_eq!(m.assigned(), usize::from(lethe_cluster::SLOTS));
    }
}

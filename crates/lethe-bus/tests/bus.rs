//! The bus against a real nats-server -js the tests start themselves: invalidations of every
//! kind reach every member, a member cut off (through a TCP proxy) catches up without a flush,
//! a member whose missed messages are gone flushes once, a partition past the bound flushes,
//! a restart of nats-server loses nothing, and unreadable messages flush.

use lethe::{Cache, InsertOptions};
use lethe_bus::testing::{NatsServer, Proxy};
use lethe_bus::{Attached, BusConfig, FlushReason, attach};
use std::time::{Duration, Instant};

fn cache() -> Cache<String, String> {
    Cache::builder().max_capacity(100_000).index_keys().build()
}

fn config(url: &str, node: &str) -> BusConfig {
    BusConfig::new(url, node)
}

/// Polls `check` every 10 ms for up to 20 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fill(c: &Cache<String, String>, keys: impl IntoIterator<Item = String>) {
    for k in keys {
        c.insert(k.clone(), k);
    }
}

async fn published(a: &Attached<String, String>, items: u64) {
    eventually("published", || {
        a.outbox_stats()
            .items
            .load(std::sync::atomic::Ordering::Relaxed)
            >= items
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_invalidation_reaches_every_member() {
    let nats = NatsServer::start();
    let (ca, cb) = (cache(), cache());
    let a = attach(&ca, config(&nats.url(), "a")).await.unwrap();
    let b = attach(&cb, config(&nats.url(), "b")).await.unwrap();
    for c in [&ca, &cb] {
        c.insert_with_options(
            "profile:42".into(),
            "Ada".into(),
            &InsertOptions::new().tag("user:42"),
        );
        fill(
            c,
            [
                "k1",
                "session:1",
                "session:2",
                "page:1:x",
                "page:2:x",
                "other",
            ]
            .map(String::from),
        );
    }
    a.invalidate_tag("user").unwrap();
    a.invalidate_key(&"k1".to_string());
    a.invalidate_prefix(b"session:");
    b.invalidate_glob(b"page:*:x");
    for (name, c) in [("a", &ca), ("b", &cb)] {
        eventually(&format!("everything invalidated on {name}"), || {
            [
                "profile:42",
                "k1",
                "session:1",
                "session:2",
                "page:1:x",
                "page:2:x",
            ]
            .iter()
            .all(|k| !c.contains(*k))
        })
        .await;
        assert!(c.contains("other"), "{name} lost a key nobody invalidated");
    }
    // Each applied the other's messages and skipped its own.
    let stats = b.member_stats();
    assert!(stats.applied.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(stats.own.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(stats.flushes_total(), 0);
    assert_eq!(a.member_stats().flushes_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_catches_up_in_order_without_a_flush() {
    let nats = NatsServer::start();
    let proxy = Proxy::start(nats.port());
    let (ca, cb) = (cache(), cache());
    let a = attach(&ca, config(&nats.url(), "a")).await.unwrap();
    let b = attach(&cb, config(&proxy.url(), "b")).await.unwrap();
    fill(&cb, (0..1000).map(|i| format!("k{i}")));
    cb.insert("kept".into(), "v".into());
    proxy.cut();
    eventually("b notices the cut", || {
        !b.member_stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    for i in 0..1000 {
        a.invalidate_key(&format!("k{i}"));
    }
    published(&a, 1000).await;
    // Cut off, b still serves what it holds (within the partition bound).
    assert!(cb.contains("k0"));
    proxy.restore();
    eventually("b applies what it missed", || {
        (0..1000).all(|i| !cb.contains(&format!("k{i}")))
    })
    .await;
    assert!(cb.contains("kept"));
    let stats = b.member_stats();
    assert_eq!(stats.flushes_total(), 0, "catching up must not flush");
    eventually("b counts the reconnect", || {
        stats.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_missed_messages_are_gone_flushes_once() {
    let nats = NatsServer::start();
    let proxy = Proxy::start(nats.port());
    let mut small = config(&nats.url(), "a");
    small.max_messages = 50;
    let (ca, cb) = (cache(), cache());
    let a = attach(&ca, small.clone()).await.unwrap();
    let mut cfg_b = small.clone();
    cfg_b.url = proxy.url();
    cfg_b.node_id = "b".into();
    let b = attach(&cb, cfg_b).await.unwrap();
    cb.insert("stale".into(), "v".into());
    proxy.cut();
    eventually("b notices the cut", || {
        !b.member_stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    // 200 messages into a stream that keeps 50: b's next message is gone. Invalidate `stale`
    // first, so only a flush can drop it.
    a.invalidate_key(&"stale".to_string());
    published(&a, 1).await;
    for i in 0..200 {
        a.invalidate_key(&format!("x{i}"));
        published(&a, 2 + i).await;
    }
    proxy.restore();
    eventually("b flushes for the gap", || {
        b.member_stats().flushes_for(FlushReason::Gap) == 1
    })
    .await;
    assert!(!cb.contains("stale"), "a stale entry survived a gap");
    // And it goes on applying after the gap.
    cb.insert("later".into(), "v".into());
    a.invalidate_key(&"later".to_string());
    eventually("b applies after the gap", || !cb.contains("later")).await;
    assert_eq!(b.member_stats().flushes_total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_longer_than_the_bound_flushes() {
    let nats = NatsServer::start();
    let proxy = Proxy::start(nats.port());
    let mut cfg = config(&proxy.url(), "b");
    cfg.partition_bound = Duration::from_millis(300);
    let cb = cache();
    let b = attach(&cb, cfg).await.unwrap();
    cb.insert("held".into(), "v".into());
    proxy.cut();
    eventually("a partition flush", || {
        b.member_stats().flushes_for(FlushReason::Partition) >= 1
    })
    .await;
    assert!(!cb.contains("held"));
    // Still cut off: what is cached meanwhile is flushed again within the bound.
    cb.insert("meanwhile".into(), "v".into());
    eventually("a second partition flush", || !cb.contains("meanwhile")).await;
    proxy.restore();
    eventually("b reconnects", || {
        b.member_stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_nothing() {
    let mut nats = NatsServer::start();
    let (ca, cb) = (cache(), cache());
    let a = attach(&ca, config(&nats.url(), "a")).await.unwrap();
    let b = attach(&cb, config(&nats.url(), "b")).await.unwrap();
    fill(&cb, (0..200).map(|i| format!("k{i}")));
    for i in 0..100 {
        a.invalidate_key(&format!("k{i}"));
    }
    published(&a, 100).await;
    nats.stop();
    for i in 100..200 {
        a.invalidate_key(&format!("k{i}"));
    }
    nats.restart();
    published(&a, 200).await;
    eventually("everything applied after the restart", || {
        (0..200).all(|i| !cb.contains(&format!("k{i}")))
    })
    .await;
    assert_eq!(b.member_stats().flushes_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_flushes() {
    let nats = NatsServer::start();
    let cb = cache();
    let b = attach(&cb, config(&nats.url(), "b")).await.unwrap();
    cb.insert("held".into(), "v".into());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish("lethe.inv.default", r#"{"v":99}"#.into())
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("an unreadable flush", || {
        b.member_stats().flushes_for(FlushReason::Unreadable) == 1
    })
    .await;
    assert!(!cb.contains("held"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_stream_or_a_deleted_consumer_is_noticed() {
    let nats = NatsServer::start();
    let (ca, cb) = (cache(), cache());
    let a = attach(&ca, config(&nats.url(), "a")).await.unwrap();
    let b = attach(&cb, config(&nats.url(), "b")).await.unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);

    // The consumer deleted while the stream still holds what follows: recreated, no flush.
    cb.insert("kept".into(), "v".into());
    js.get_stream("LETHE")
        .await
        .unwrap()
        .delete_consumer("b")
        .await
        .unwrap();
    cb.insert("k1".into(), "v".into());
    a.invalidate_key(&"k1".to_string());
    eventually("b applies after its consumer came back", || {
        !cb.contains("k1")
    })
    .await;
    assert!(cb.contains("kept"));
    assert_eq!(b.member_stats().flushes_total(), 0);

    // The stream deleted (and recreated by the next publisher): b cannot know what it missed.
    cb.insert("stale".into(), "v".into());
    js.delete_stream("LETHE").await.unwrap();
    a.invalidate_key(&"x".to_string());
    eventually("b flushes for the recreated stream", || {
        b.member_stats().flushes_for(FlushReason::StreamRecreated) == 1
    })
    .await;
    assert!(!cb.contains("stale"));
    // And it applies what comes after.
    cb.insert("later".into(), "v".into());
    a.invalidate_key(&"later".to_string());
    eventually("b applies on the new stream", || !cb.contains("later")).await;
}

//! Members on a real nats-server: joining, following the map, failing over a dead node once,
//! a restarted node joining with no slots, clean leaving.

mod common;

use common::{TTL, node, store, until};
use lethe_bus::testing::NatsServer;
use lethe_cluster::{Heartbeat, Membership, SLOTS, SlotMap};
use std::time::Duration;

/// Bound on how long anything driven by heartbeats may take: expiry (one TTL), a member's
/// round (a third of it), its lease (one TTL) and slack for a loaded machine.
const SETTLE: Duration = Duration::from_secs(40);

async fn slots_of(m: &Membership, name: &str) -> usize {
    m.map().borrow().slots_of(name).len()
}

/// Waits until `m` has held its heartbeat long enough to judge others and has run a round
/// since (its heartbeats counted past the lease).
async fn settled(m: &Membership) {
    until(
        SETTLE,
        "a member heartbeats for more than a TTL",
        || async { m.stats().heartbeats_sent >= 6 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_adds_the_node_with_no_slots_and_leaving_deletes_its_heartbeat() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    admin
        .create(SlotMap::even(vec![node("a", 7000)]).unwrap(), false)
        .await
        .unwrap();
    let a = Membership::join(store(&nats, TTL).await, node("a", 7000))
        .await
        .unwrap();
    let b = Membership::join(store(&nats, TTL).await, node("b", 7001))
        .await
        .unwrap();
    let (stored, _) = admin.load().await.unwrap().unwrap();
    assert_eq!(stored.node("b"), Some(&node("b", 7001)));
    assert!(stored.slots_of("b").is_empty());
    assert_eq!(stored.slots_of("a").len(), usize::from(SLOTS));
    assert_eq!(*b.map().borrow().as_ref(), stored);
    until(SETTLE, "a follows the map with b in it", || async {
        a.map().borrow().node("b").is_some()
    })
    .await;
    assert!(a.stats().map_updates_seen >= 1);
    let fields = a.stats().info_fields();
    assert_eq!(fields[0].0, "cluster_heartbeats_sent");
    assert!(fields[0].1 >= 1);
    assert_eq!(fields[4], ("cluster_epoch", a.map().borrow().epoch()));
    assert!(admin.heartbeat("b").await.unwrap().is_some());

    b.leave().await.unwrap();
    assert!(admin.heartbeat("b").await.unwrap().is_none());
    a.leave().await.unwrap();
    assert!(admin.live_nodes().await.unwrap().is_empty());
}

/// A node that moved to another port rejoins under its name with the new address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoining_updates_the_address() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    admin
        .create(SlotMap::even(vec![node("a", 7000)]).unwrap(), false)
        .await
        .unwrap();
    let a = Membership::join(store(&nats, TTL).await, node("a", 7100))
        .await
        .unwrap();
    let (stored, _) = admin.load().await.unwrap().unwrap();
    assert_eq!(stored.node("a").unwrap().port, 7100);
    assert_eq!(stored.slots_of("a").len(), usize::from(SLOTS), "slots kept");
    a.leave().await.unwrap();
}

/// Three members; one dies without leaving. The two survivors both notice, exactly one of them
/// moves its slots, every slot ends on a live node, and the dead node, restarted, joins with
/// no slots and keeps none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_survivors_fail_over_once_and_the_restarted_node_has_no_slots() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    let (created, created_rev) = admin
        .create(
            SlotMap::even(vec![node("a", 7000), node("b", 7001), node("c", 7002)]).unwrap(),
            false,
        )
        .await
        .unwrap();
    let a = Membership::join(store(&nats, TTL).await, node("a", 7000))
        .await
        .unwrap();
    let b = Membership::join(store(&nats, TTL).await, node("b", 7001))
        .await
        .unwrap();
    let c = Membership::join(store(&nats, TTL).await, node("c", 7002))
        .await
        .unwrap();
    settled(&a).await;
    settled(&b).await;
    assert_eq!(
        admin.load().await.unwrap().unwrap().0,
        created,
        "no failover while everyone is alive"
    );
    let c_slots = created.slots_of("c").len();

    // c crashes: its tasks stop, its heartbeat is left to age out.
    drop(c);
    for m in [&a, &b] {
        until(SETTLE, "the survivors see c's slots moved", || async {
            slots_of(m, "c").await == 0
        })
        .await;
    }
    let (after, after_rev) = admin.load().await.unwrap().unwrap();
    assert_eq!(
        a.stats().failovers + b.stats().failovers,
        1,
        "exactly one survivor moved c's slots"
    );
    // The map key is the bucket's only key, so its revision counts every write: one.
    assert_eq!(after_rev, created_rev + 1, "one write to the map");
    assert_eq!(after.assigned(), usize::from(SLOTS));
    for slot in 0..SLOTS {
        let owner = &after.owner(slot).unwrap().name;
        assert!(owner == "a" || owner == "b", "slot {slot} on {owner}");
    }
    let gained_a = after.slots_of("a").len() - created.slots_of("a").len();
    let gained_b = after.slots_of("b").len() - created.slots_of("b").len();
    assert_eq!(gained_a + gained_b, c_slots);
    assert!(
        gained_a.abs_diff(gained_b) <= 1,
        "spread evenly: {gained_a} vs {gained_b}"
    );
    assert_eq!(after.node("c"), Some(&node("c", 7002)), "c stays known");

    // c comes back: it joins with no slots, and nobody gives it any or moves anything.
    let c = Membership::join(store(&nats, TTL).await, node("c", 7002))
        .await
        .unwrap();
    assert!(c.map().borrow().slots_of("c").is_empty());
    assert_eq!(c.map().borrow().epoch(), after.epoch());
    settled(&c).await;
    let (later, _) = admin.load().await.unwrap().unwrap();
    assert_eq!(later, after, "a live node with no slots is left alone");
    assert_eq!(
        a.stats().failovers + b.stats().failovers + c.stats().failovers,
        1
    );
    for m in [a, b, c] {
        m.leave().await.unwrap();
    }
}

/// A member sees a silent node's heartbeat expire and fails it over within the TTL plus its
/// rounds; a node that leaves cleanly is failed over without waiting for expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_and_clean_leave_are_detected() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    admin
        .create(
            SlotMap::even(vec![node("a", 7000), node("x", 7001), node("b", 7002)]).unwrap(),
            false,
        )
        .await
        .unwrap();
    // "x" is a node this test beats by hand; the grace is long so only its expiry counts.
    let grace = Duration::from_secs(3600);
    admin
        .beat("x", &Heartbeat::now("127.0.0.1", 7001))
        .await
        .unwrap();
    let a = Membership::join(store(&nats, grace).await, node("a", 7000))
        .await
        .unwrap();
    let b = Membership::join(store(&nats, grace).await, node("b", 7002))
        .await
        .unwrap();
    for _ in 0..8 {
        admin
            .beat("x", &Heartbeat::now("127.0.0.1", 7001))
            .await
            .unwrap();
        tokio::time::sleep(TTL / 3).await;
    }
    assert!(
        slots_of(&a, "x").await > 0,
        "x is alive and keeps its slots"
    );
    // x stops beating: gone one TTL after its last beat, failed over at a's next round.
    until(
        TTL * 4,
        "x's slots moved after its heartbeat expired",
        || async { slots_of(&a, "x").await == 0 },
    )
    .await;
    assert_eq!(
        a.map().borrow().slots_of("a").len() + slots_of(&a, "b").await,
        usize::from(SLOTS)
    );

    // b leaves cleanly: its heartbeat is deleted and a takes its slots.
    let b_failovers = b.stats().failovers;
    b.leave().await.unwrap();
    until(TTL * 6, "b's slots moved after it left", || async {
        slots_of(&a, "b").await == 0
    })
    .await;
    assert_eq!(slots_of(&a, "a").await, usize::from(SLOTS));
    assert_eq!(a.stats().failovers + b_failovers, 2, "x, then b");
    a.leave().await.unwrap();
}

/// A node named in the map that never heartbeats is failed over only after the join grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_seen_nodes_get_the_join_grace() {
    let nats = NatsServer::start();
    let admin = store(&nats, TTL).await;
    admin
        .create(
            SlotMap::even(vec![node("a", 7000), node("ghost", 7001)]).unwrap(),
            false,
        )
        .await
        .unwrap();
    let grace = TTL * 8;
    let a = Membership::join(store(&nats, grace).await, node("a", 7000))
        .await
        .unwrap();
    settled(&a).await;
    // Past the lease, before the grace: the ghost keeps its slots.
    assert!(
        slots_of(&a, "ghost").await > 0,
        "failed over before the grace"
    );
    until(
        SETTLE,
        "the ghost's slots moved after the grace",
        || async { slots_of(&a, "ghost").await == 0 },
    )
    .await;
    assert_eq!(a.stats().failovers, 1);
    a.leave().await.unwrap();
}

/// A member started before any map follows an empty one, then adds itself to the map made
/// without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_waits_for_the_map_and_adds_itself() {
    let nats = NatsServer::start();
    let a = Membership::join(store(&nats, TTL).await, node("a", 7000))
        .await
        .unwrap();
    assert_eq!(a.map().borrow().epoch(), 0);
    let admin = store(&nats, TTL).await;
    admin
        .create(SlotMap::even(vec![node("b", 7001)]).unwrap(), false)
        .await
        .unwrap();
    let mut rx = a.map();
    let mut epochs = vec![rx.borrow_and_update().epoch()];
    until(SETTLE, "a added itself to the new map", || {
        if rx.has_changed().unwrap_or(false) {
            epochs.push(rx.borrow_and_update().epoch());
        }
        let found = rx.borrow().node("a").is_some();
        async move { found }
    })
    .await;
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs went back: {epochs:?}"
    );
    let (stored, _) = admin.load().await.unwrap().unwrap();
    assert_eq!(stored.node("a"), Some(&node("a", 7000)));
    assert!(stored.slots_of("a").is_empty());
    a.leave().await.unwrap();
}

#[test]
fn a_membership_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Membership>();
    shareable::<lethe_cluster::ClusterStore>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_are_refused_before_anything_is_written() {
    let nats = NatsServer::start();
    let s = store(&nats, TTL).await;
    let err = Membership::join(s.clone(), node("bad.name", 7000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bad node name"), "{err}");
    assert!(s.live_nodes().await.unwrap().is_empty());
}

/// A member cut off from NATS: the others fail it over once its heartbeat ages out, while it
/// (knowing nothing) keeps the map it had; back on NATS it takes the new map and serves
/// nothing. This is the documented partition behaviour, not a fencing guarantee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_member_is_failed_over_and_learns_it_on_return() {
    let nats = NatsServer::start();
    let proxy = lethe_bus::testing::Proxy::start(nats.port());
    let admin = store(&nats, TTL).await;
    admin
        .create(
            SlotMap::even(vec![node("a", 7000), node("p", 7001)]).unwrap(),
            false,
        )
        .await
        .unwrap();
    let a = Membership::join(store(&nats, TTL).await, node("a", 7000))
        .await
        .unwrap();
    let p_store = lethe_cluster::ClusterStore::connect(&proxy.url(), common::config(TTL))
        .await
        .unwrap();
    let p = Membership::join(p_store, node("p", 7001)).await.unwrap();
    settled(&a).await;
    settled(&p).await;
    let p_slots = slots_of(&p, "p").await;
    assert!(p_slots > 0);

    proxy.cut();
    until(SETTLE, "a fails p over", || async {
        slots_of(&a, "p").await == 0
    })
    .await;
    assert_eq!(slots_of(&a, "a").await, usize::from(SLOTS));
    assert_eq!(a.stats().failovers, 1);
    // p cannot know: it still holds its old map.
    assert_eq!(slots_of(&p, "p").await, p_slots);
    until(SETTLE, "p counts failed heartbeats", || async {
        p.stats().heartbeat_failures > 0
    })
    .await;

    proxy.restore();
    until(Duration::from_secs(30), "p learns the new map", || async {
        slots_of(&p, "p").await == 0
    })
    .await;
    assert_eq!(p.stats().failovers, 0);
    until(SETTLE, "p heartbeats again", || async {
        admin.heartbeat("p").await.unwrap().is_some()
    })
    .await;
    let (stored, _) = admin.load().await.unwrap().unwrap();
    assert!(
        stored.slots_of("p").is_empty(),
        "p does not take its slots back"
    );
    assert_eq!(stored.slots_of("a").len(), usize::from(SLOTS));
    p.leave().await.unwrap();
    a.leave().await.unwrap();
}

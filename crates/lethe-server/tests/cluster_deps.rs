//! Dependencies across shards: three in-process cluster nodes on one bus (a nats-server the
//! test starts). An entry on one node that depends on a key another node owns goes when that
//! key is written, deleted or invalidated there, and when the key's slot moves to another
//! owner; without a bus such a write is refused.

mod common;

use common::{Client, Lethe};
use lethe_bus::BusConfig;
use lethe_bus::testing::NatsServer;
use lethe_cluster::{NodeInfo, SlotMap, key_slot};
use lethe_server::Server;
use lethe_server::cluster::ClusterView;
use lethe_server::state::ServerState;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const NAMES: [&str; 3] = ["a", "b", "c"];

struct Trio {
    nodes: Vec<Lethe>,
    feeds: Vec<watch::Sender<Arc<SlotMap>>>,
    map: SlotMap,
    // Kept for the bus links' tasks; dropped last.
    _nats: Option<NatsServer>,
    _rt: tokio::runtime::Runtime,
}

impl Trio {
    /// Three nodes with the even split; on a bus unless `bus` is false.
    fn start(bus: bool) -> Trio {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let nats = bus.then(NatsServer::start);
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let infos: Vec<NodeInfo> = listeners
            .iter()
            .zip(NAMES)
            .map(|(l, n)| NodeInfo::new(n, "127.0.0.1", l.local_addr().unwrap().port()))
            .collect();
        let map = SlotMap::even(infos).unwrap();
        let mut nodes = Vec::new();
        let mut feeds = Vec::new();
        for (listener, name) in listeners.into_iter().zip(NAMES) {
            let state = Arc::new(ServerState::new(64 << 20));
            if let Some(nats) = &nats {
                rt.block_on(lethe_server::bus::join(
                    &state,
                    BusConfig::new(nats.url(), name),
                ))
                .unwrap();
            }
            let (tx, rx) = watch::channel(Arc::new(map.clone()));
            feeds.push(tx);
            nodes.push(Lethe::start_built(listener, move |l| {
                Server::builder(l)
                    .db(state)
                    .cluster(ClusterView::new(name, rx))
                    .build()
            }));
        }
        Trio {
            nodes,
            feeds,
            map,
            _nats: nats,
            _rt: rt,
        }
    }

    fn client(&self, name: &str) -> Client {
        Client::connect(self.map.node(name).unwrap().port)
    }

    /// Publishes `map` to every node and waits (bounded) until each routes by it.
    fn publish(&mut self, map: SlotMap) {
        for f in &self.feeds {
            f.send_replace(Arc::new(map.clone()));
        }
        for name in NAMES {
            let mut c = self.client(name);
            let want = format!("cluster_my_epoch:{}\r\n", map.epoch());
            eventually(&format!("{name} applies the map"), || {
                c.cmd(&["CLUSTER", "INFO"]).contains(&want)
            });
        }
        self.map = map;
    }
}

impl Drop for Trio {
    fn drop(&mut self) {
        for n in self.nodes.drain(..) {
            n.shutdown();
        }
    }
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A key whose slot node `name` serves in `map`, made from `stem`.
fn key_on(map: &SlotMap, name: &str, stem: &str) -> String {
    (0..10_000)
        .map(|i| format!("{stem}{i}"))
        .find(|k| map.serves(name, key_slot(k.as_bytes())))
        .unwrap()
}

fn exists(c: &mut Client, key: &str) -> bool {
    c.cmd(&["EXISTS", key]) == ":1\r\n"
}

#[test]
fn a_dependent_goes_when_its_dependency_changes_on_another_node() {
    let trio = Trio::start(true);
    let (mut a, mut b, mut c) = (trio.client("a"), trio.client("b"), trio.client("c"));
    let dep = key_on(&trio.map, "b", "profile:");
    let page = key_on(&trio.map, "a", "page:");
    let marker = key_on(&trio.map, "a", "marker:");
    // The bus is ordered: once a marker invalidation from b has reached a, so have b's earlier
    // messages. A dependent set while an earlier change of its dependency is still on its way
    // would be dropped by it (safe, but not what a step here means to test), so each step
    // waits for b's earlier messages first.
    let settle = |a: &mut Client, b: &mut Client| {
        assert_eq!(a.cmd(&["SET", &marker, "1"]), "+OK\r\n");
        assert_eq!(
            b.cmd(&["LETHE.INVALIDATE", "KEY", &marker]),
            ":0\r\n",
            "b holds no copy of a's key"
        );
        eventually("the marker reaches a", || !exists(a, &marker));
    };
    let set_page = |a: &mut Client, b: &mut Client| {
        settle(a, b);
        assert_eq!(
            a.cmd(&["LETHE.SET", &page, "<h1>", "DEPENDS", "1", &dep]),
            "+OK\r\n"
        );
        assert!(exists(a, &page));
    };

    // A plain write of the dependency on its owner.
    assert_eq!(b.cmd(&["SET", &dep, "v1"]), "+OK\r\n");
    set_page(&mut a, &mut b);
    assert_eq!(b.cmd(&["SET", &dep, "v2"]), "+OK\r\n");
    eventually("a write on b drops the dependent on a", || {
        !exists(&mut a, &page)
    });

    // The watch outlives one change: the next write after a new dependent drops it too.
    set_page(&mut a, &mut b);
    assert_eq!(b.cmd(&["DEL", &dep]), ":1\r\n");
    eventually("a delete on b drops the dependent on a", || {
        !exists(&mut a, &page)
    });

    // A tag invalidation sent to a third node reaches b through the bus; b's removal of the
    // dependency reaches a.
    assert_eq!(
        b.cmd(&["LETHE.SET", &dep, "v3", "TAGS", "1", "user:1"]),
        "+OK\r\n"
    );
    set_page(&mut a, &mut b);
    assert_eq!(c.cmd(&["LETHE.INVALIDATE", "TAG", "user:1"]), ":0\r\n");
    eventually("b drops the tagged dependency", || !exists(&mut b, &dep));
    eventually(
        "a tag invalidation through c drops the dependent on a",
        || !exists(&mut a, &page),
    );

    // An unrelated write on b leaves the dependent alone. The dependent here watches a fresh
    // key: `dep`'s reclamation after the tag invalidation is published once more (a harmless
    // second invalidation) whenever b's upkeep gets to it.
    let fresh = key_on(&trio.map, "b", "settings:");
    assert_eq!(b.cmd(&["SET", &fresh, "v1"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&["LETHE.SET", &page, "<h1>", "DEPENDS", "1", &fresh]),
        "+OK\r\n"
    );
    let other = key_on(&trio.map, "b", "other:");
    assert_eq!(b.cmd(&["SET", &other, "x"]), "+OK\r\n");
    settle(&mut a, &mut b);
    assert!(
        exists(&mut a, &page),
        "an unrelated write dropped the dependent"
    );

    // INFO shows the watches on the owner's side.
    let info = b.cmd(&["INFO", "cluster"]);
    assert!(
        info.contains("cluster_watched_keys:2"),
        "b watches two keys for others: {info}"
    );
}

#[test]
fn a_dependent_goes_when_the_slot_of_its_dependency_moves() {
    let mut trio = Trio::start(true);
    let mut a = trio.client("a");
    let dep = key_on(&trio.map, "b", "profile:");
    let local_dep = key_on(&trio.map, "a", "local:");
    let page = key_on(&trio.map, "a", "page:");
    let other_page = key_on(&trio.map, "a", "other-page:");
    assert_eq!(
        a.cmd(&["LETHE.SET", &page, "<h1>", "DEPENDS", "1", &dep]),
        "+OK\r\n"
    );
    assert_eq!(
        a.cmd(&["LETHE.SET", &other_page, "<h2>", "DEPENDS", "1", &local_dep]),
        "+OK\r\n"
    );
    // b's slot of the dependency moves to c: c watches nothing, so the dependent goes.
    let mut moved = trio.map.clone();
    moved.assign(&[key_slot(dep.as_bytes())], "c").unwrap();
    trio.publish(moved.clone());
    assert!(
        !exists(&mut a, &page),
        "the dependent outlived its dependency's move"
    );
    assert!(
        exists(&mut a, &other_page),
        "a dependent of an unmoved slot went"
    );
    // a's own slot of the local dependency moves to b: that dependent goes too.
    moved
        .assign(&[key_slot(local_dep.as_bytes())], "b")
        .unwrap();
    trio.publish(moved);
    assert!(!exists(&mut a, &other_page));
}

#[test]
fn without_a_bus_a_dependency_on_another_node_is_refused() {
    let trio = Trio::start(false);
    let mut a = trio.client("a");
    let dep = key_on(&trio.map, "b", "profile:");
    let local = key_on(&trio.map, "a", "local:");
    let page = key_on(&trio.map, "a", "page:");
    assert_eq!(
        a.cmd(&["LETHE.SET", &page, "x", "DEPENDS", "1", &dep]),
        "-CLUSTERDOWN A dependency on another node's key needs the bus (serve --bus)\r\n"
    );
    assert!(!exists(&mut a, &page));
    // Local dependencies need nothing of anyone.
    assert_eq!(a.cmd(&["SET", &local, "0"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&["LETHE.SET", &page, "x", "DEPENDS", "1", &local]),
        "+OK\r\n"
    );
    assert_eq!(a.cmd(&["SET", &local, "1"]), "+OK\r\n");
    assert!(!exists(&mut a, &page));
}

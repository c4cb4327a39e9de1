//! Cluster mode: three in-process Lethe nodes, each following its own slot map channel fed by
//! the test, as the cluster's membership would feed it. Routing errors (MOVED, CROSSSLOT,
//! CLUSTERDOWN) and the CLUSTER commands, checked as replies and against a real
//! `redis-server --cluster-enabled yes`; redis-py's `RedisCluster` and redis-rs's cluster
//! client used unchanged; and slots moving under a running client: their keys are gone or
//! current on the new owner, never stale, and tracking clients of the old owner hear of them.

mod common;

use common::{Client, Lethe, Redis};
use lethe_cluster::{NodeInfo, SlotMap, key_slot};
use lethe_server::Server;
use lethe_server::cluster::ClusterView;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const NAMES: [&str; 3] = ["a", "b", "c"];

/// Three nodes serving the even split of `SlotMap::even`, and the channels feeding them.
struct Trio {
    nodes: Vec<Lethe>,
    feeds: Vec<watch::Sender<Arc<SlotMap>>>,
    map: SlotMap,
}

impl Trio {
    fn start() -> Trio {
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
            let (tx, rx) = watch::channel(Arc::new(map.clone()));
            feeds.push(tx);
            nodes.push(Lethe::start_built(listener, move |l| {
                Server::builder(l)
                    .cluster(ClusterView::new(name, rx))
                    .build()
            }));
        }
        Trio { nodes, feeds, map }
    }

    /// Publishes `map` to every node and waits (bounded) until each routes by it.
    fn publish(&mut self, map: SlotMap) {
        for f in &self.feeds {
            f.send_replace(Arc::new(map.clone()));
        }
        for (node, name) in self.nodes.iter().zip(NAMES) {
            let mut c = node.client();
            let want = format!("cluster_my_epoch:{}\r\n", map.epoch());
            let applied = (0..500).any(|_| {
                let info = c.cmd(&["CLUSTER", "INFO"]);
                if info.contains(&want) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
                false
            });
            assert!(applied, "node {name} did not apply epoch {}", map.epoch());
        }
        self.map = map;
    }

    fn port(&self, name: &str) -> u16 {
        self.map.node(name).unwrap().port
    }

    fn client(&self, name: &str) -> Client {
        Client::connect(self.port(name))
    }
}

/// A key whose slot node `name` serves in `map`, made from `stem`.
fn key_on(map: &SlotMap, name: &str, stem: &str) -> String {
    (0..10_000)
        .map(|i| format!("{stem}{i}"))
        .find(|k| map.serves(name, key_slot(k.as_bytes())))
        .unwrap()
}

#[test]
fn routing_follows_redis_cluster() {
    let trio = Trio::start();
    let mut a = trio.client("a");
    // foo is in slot 12182, served by c.
    assert_eq!(
        a.cmd(&["SET", "foo", "1"]),
        format!("-MOVED 12182 127.0.0.1:{}\r\n", trio.port("c"))
    );
    assert_eq!(
        a.cmd(&["GET", "foo"]),
        format!("-MOVED 12182 127.0.0.1:{}\r\n", trio.port("c"))
    );
    let mut c = trio.client("c");
    assert_eq!(c.cmd(&["SET", "foo", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "foo"]), "$1\r\n1\r\n");
    // bar is in slot 5061, served by a.
    assert_eq!(a.cmd(&["SET", "bar", "2"]), "+OK\r\n");
    let cross = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
    assert_eq!(a.cmd(&["MSET", "bar", "1", "foo", "2"]), cross);
    assert_eq!(a.cmd(&["MGET", "bar", "zap"]), cross);
    assert_eq!(a.cmd(&["DEL", "bar", "foo"]), cross);
    // Hash tags keep keys together, wherever their slot is.
    let tag = key_on(&trio.map, "a", "user");
    let (k1, k2) = (format!("{{{tag}}}:name"), format!("{{{tag}}}:mail"));
    assert_eq!(a.cmd(&["MSET", &k1, "Ada", &k2, "ada@x"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&["MGET", &k1, &k2]),
        "*2\r\n$3\r\nAda\r\n$5\r\nada@x\r\n"
    );
    assert_eq!(a.cmd(&["RENAME", &k1, &k2]), "+OK\r\n");
    // A container's keys route too (OBJECT ENCODING key).
    assert_eq!(
        a.cmd(&["OBJECT", "ENCODING", "foo"]),
        format!("-MOVED 12182 127.0.0.1:{}\r\n", trio.port("c"))
    );
    // Keyless commands run anywhere; only database 0 exists.
    assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    assert!(a.cmd(&["DBSIZE"]).starts_with(':'));
    assert_eq!(a.cmd(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&["SELECT", "1"]),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(
        a.cmd(&["MOVE", "bar", "1"]),
        "-ERR MOVE is not allowed in cluster mode\r\n"
    );
    assert_eq!(
        a.cmd(&["SWAPDB", "0", "1"]),
        "-ERR SWAPDB is not allowed in cluster mode\r\n"
    );
    for cmd in ["ASKING", "READONLY", "READWRITE"] {
        assert_eq!(a.cmd(&[cmd]), "+OK\r\n");
    }
    // MULTI: each command is checked when queued; a refusal aborts EXEC.
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "bar", "3"]), "+QUEUED\r\n");
    assert!(a.cmd(&["SET", "foo", "3"]).starts_with("-MOVED 12182 "));
    assert_eq!(
        a.cmd(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // So does a redirected WATCH inside MULTI (refused there anyway).
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert!(a.cmd(&["WATCH", "foo"]).starts_with("-MOVED 12182 "));
    assert_eq!(
        a.cmd(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    // Commands of two slots both served here: EXEC refuses and discards the transaction.
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", "bar", "3"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["SET", &k1, "3"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), cross);
    assert_eq!(a.cmd(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(a.cmd(&["GET", "bar"]), "$1\r\n2\r\n");
    // One slot: runs.
    assert_eq!(a.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&["SET", &k1, "x"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["GET", &k2]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&["EXEC"]), "*2\r\n+OK\r\n$3\r\nAda\r\n");
    // Sharded pub/sub channels live in their slot too.
    assert!(
        a.cmd(&["SPUBLISH", "foo", "m"])
            .starts_with("-MOVED 12182 ")
    );
    assert_eq!(a.cmd(&["SPUBLISH", "bar", "m"]), ":0\r\n");
}

#[test]
fn unassigned_slots_are_cluster_down() {
    let mut trio = Trio::start();
    let nodes: Vec<String> = trio
        .map
        .nodes()
        .iter()
        .map(|n| {
            format!(
                r#"{{"name":"{}","host":"127.0.0.1","port":{}}}"#,
                n.name, n.port
            )
        })
        .collect();
    // c's slots (10923-16383) unassigned.
    let json = format!(
        r#"{{"version":1,"epoch":5,"nodes":[{}],"ranges":[[0,5461,0],[5462,10922,1]]}}"#,
        nodes.join(",")
    );
    trio.publish(SlotMap::from_json(json.as_bytes()).unwrap());
    let mut a = trio.client("a");
    assert_eq!(
        a.cmd(&["GET", "foo"]),
        "-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert!(
        a.cmd(&["CLUSTER", "INFO"])
            .contains("cluster_state:fail\r\n")
    );
    assert!(
        a.cmd(&["CLUSTER", "INFO"])
            .contains("cluster_slots_assigned:10923\r\n")
    );
}

#[test]
fn cluster_commands_describe_the_map() {
    let trio = Trio::start();
    let (pa, pb, pc) = (trio.port("a"), trio.port("b"), trio.port("c"));
    let id = |n: &str| trio.map.node(n).unwrap().cluster_id();
    let mut a = trio.client("a");
    let node = |p: u16, n: &str| {
        format!(
            "*4\r\n$9\r\n127.0.0.1\r\n:{p}\r\n$40\r\n{}\r\n{{}}\r\n",
            id(n)
        )
    };
    let slots = format!(
        "*3\r\n*3\r\n:0\r\n:5461\r\n{}*3\r\n:5462\r\n:10922\r\n{}*3\r\n:10923\r\n:16383\r\n{}",
        node(pa, "a"),
        node(pb, "b"),
        node(pc, "c")
    );
    assert_eq!(a.cmd(&["CLUSTER", "SLOTS"]), slots.replace("{}", "*0"));
    assert_eq!(a.cmd(&["HELLO", "3"]).chars().next(), Some('%'));
    assert_eq!(a.cmd(&["CLUSTER", "SLOTS"]), slots.replace("{}", "%0"));
    assert_eq!(a.cmd(&["HELLO", "2"]).chars().next(), Some('*'));
    assert_eq!(
        a.cmd(&["CLUSTER", "MYID"]),
        format!("$40\r\n{}\r\n", id("a"))
    );
    let nodes = a.cmd(&["CLUSTER", "NODES"]);
    assert!(
        nodes.contains(&format!(
            "{} 127.0.0.1:{pa}@0 myself,master - 0 0 1 connected 0-5461\n",
            id("a")
        )),
        "{nodes}"
    );
    assert!(nodes.contains(" master - 0 "), "{nodes}");
    assert!(nodes.contains(" connected 10923-16383\n"), "{nodes}");
    let shards = a.cmd(&["CLUSTER", "SHARDS"]);
    assert!(shards.starts_with("*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5461\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n"), "{shards}");
    assert!(
        shards.contains(&format!("$4\r\nport\r\n:{pb}\r\n")),
        "{shards}"
    );
    assert!(
        shards.contains("$6\r\nhealth\r\n$6\r\nonline\r\n"),
        "{shards}"
    );
    assert_eq!(a.cmd(&["CLUSTER", "KEYSLOT", "foo"]), ":12182\r\n");
    assert_eq!(
        a.cmd(&["CLUSTER", "KEYSLOT", "{user1000}.following"]),
        format!(":{}\r\n", key_slot(b"user1000"))
    );
    // Keys per slot: those stored here, in that slot.
    let tag = key_on(&trio.map, "a", "t");
    let slot = key_slot(tag.as_bytes()).to_string();
    for i in 0..5 {
        assert_eq!(a.cmd(&["SET", &format!("{{{tag}}}{i}"), "v"]), "+OK\r\n");
    }
    assert_eq!(a.cmd(&["SET", "bar", "v"]), "+OK\r\n");
    assert_eq!(a.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), ":5\r\n");
    assert_eq!(a.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "5061"]), ":1\r\n");
    assert_eq!(a.cmd(&["CLUSTER", "COUNTKEYSINSLOT", "12182"]), ":0\r\n");
    let got = a.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "3"]);
    assert!(got.starts_with("*3\r\n"), "{got}");
    assert_eq!(got.matches(&format!("{{{tag}}}")).count(), 3, "{got}");
    assert_eq!(
        a.cmd(&["CLUSTER", "GETKEYSINSLOT", "5061", "10"]),
        "*1\r\n$3\r\nbar\r\n"
    );
    let info = a.cmd(&["CLUSTER", "INFO"]);
    for line in [
        "cluster_state:ok",
        "cluster_slots_assigned:16384",
        "cluster_known_nodes:3",
        "cluster_size:3",
        "cluster_slot_keys_dropped:0",
    ] {
        assert!(info.contains(&format!("{line}\r\n")), "{info}");
    }
    let server_info = a.cmd(&["INFO", "cluster"]);
    assert!(
        server_info.contains("# Cluster\r\ncluster_enabled:1\r\n"),
        "{server_info}"
    );
    assert!(
        a.cmd(&["INFO", "server"])
            .contains("redis_mode:cluster\r\n")
    );
    assert!(
        a.cmd(&["COMMAND", "INFO", "cluster"])
            .contains("cluster|getkeysinslot")
    );

    // A standalone server refuses them as Redis does.
    let solo = Lethe::start();
    let mut s = solo.client();
    let disabled = "-ERR This instance has cluster support disabled\r\n";
    for args in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "KEYSLOT", "foo"],
        &["READONLY"],
        &["ASKING"],
    ] {
        assert_eq!(s.cmd(args), disabled, "{args:?}");
    }
    assert!(
        s.cmd(&["INFO", "cluster"])
            .contains("cluster_enabled:0\r\n")
    );
    assert_eq!(s.cmd(&["SELECT", "1"]), "+OK\r\n");
    assert_eq!(s.cmd(&["MSET", "foo", "1", "bar", "2"]), "+OK\r\n");
}

/// The same request to a Redis Cluster node serving every slot and to a Lethe node serving
/// every slot: the same reply, in RESP2 and RESP3.
#[test]
fn errors_and_keyslots_match_redis_cluster() {
    let dir = std::env::temp_dir().join(format!("lethe-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nodes.conf");
    let _ = std::fs::remove_file(&conf);
    let conf = conf.to_str().unwrap().to_string();
    let redis =
        Redis::start_with(&["--cluster-enabled", "yes", "--cluster-config-file", &conf]).unwrap();
    let mut r = redis.client();
    assert_eq!(
        r.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]),
        "+OK\r\n"
    );
    let ok = (0..500).any(|_| {
        if r.cmd(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
        false
    });
    assert!(ok, "redis-server's cluster did not come up");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let map = SlotMap::even(vec![NodeInfo::new("solo", "127.0.0.1", port)]).unwrap();
    let (_feed, rx) = watch::channel(Arc::new(map));
    let lethe = Lethe::start_built(listener, move |l| {
        Server::builder(l)
            .cluster(ClusterView::new("solo", rx))
            .build()
    });
    let mut l = lethe.client();

    // The shape of SLOTS and SHARDS, ports and ids aside (Redis's replication offset moves
    // with writes: compared first).
    let redis_id = r.cmd(&["CLUSTER", "MYID"]);
    let lethe_id = l.cmd(&["CLUSTER", "MYID"]);
    assert_eq!(redis_id.len(), lethe_id.len());
    let norm = |s: String, id: &str, port: u16| {
        s.replace(id.trim_end().rsplit("\r\n").next().unwrap(), "ID")
            .replace(&format!(":{port}\r\n"), ":PORT\r\n")
    };
    for proto in ["2", "3"] {
        r.cmd(&["HELLO", proto]);
        l.cmd(&["HELLO", proto]);
        for sub in ["SLOTS", "SHARDS"] {
            // A lone Redis node never heard its address from a peer: it shows none.
            let want = norm(r.cmd(&["CLUSTER", sub]), &redis_id, redis.port)
                .replace("$0\r\n\r\n", "$9\r\n127.0.0.1\r\n");
            let got = norm(l.cmd(&["CLUSTER", sub]), &lethe_id, port);
            assert_eq!(got, want, "CLUSTER {sub} in RESP{proto}");
        }
        // INFO's and NODES's reply types and CLUSTER INFO's fields.
        let (ri, li) = (r.cmd(&["CLUSTER", "INFO"]), l.cmd(&["CLUSTER", "INFO"]));
        assert_eq!(ri.as_bytes()[0], li.as_bytes()[0], "CLUSTER INFO type");
        let fields = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(k, _)| k.trim_start_matches("txt:").to_string())
                })
                .filter(|k| k != "cluster_slot_keys_dropped")
                .collect()
        };
        assert_eq!(fields(&li), fields(&ri));
        let (rn, ln) = (r.cmd(&["CLUSTER", "NODES"]), l.cmd(&["CLUSTER", "NODES"]));
        assert_eq!(rn.as_bytes()[0], ln.as_bytes()[0], "CLUSTER NODES type");
    }

    let solo_slot = key_slot(b"solo").to_string();
    let cases: &[&[&str]] = &[
        &["CLUSTER", "KEYSLOT", "foo"],
        &["CLUSTER", "KEYSLOT", "{user1000}.following"],
        &["CLUSTER", "KEYSLOT", "foo{}{bar}"],
        &["CLUSTER", "KEYSLOT", "foo{{bar}}zap"],
        &["CLUSTER", "KEYSLOT", "foo{bar}{zap}"],
        &["CLUSTER", "KEYSLOT", ""],
        &["CLUSTER", "KEYSLOT"],
        &["CLUSTER", "KEYSLOT", "a", "b"],
        &["CLUSTER", "NOSUCH"],
        &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
        &["CLUSTER", "COUNTKEYSINSLOT", "-1"],
        &["CLUSTER", "COUNTKEYSINSLOT", "x"],
        &["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "x"],
        &["MSET", "a", "1", "b", "2"],
        &["MSET", "{a}1", "1", "{a}2", "2"],
        &["MGET", "{a}1", "{a}2"],
        &["MGET", "a", "b"],
        &["DEL", "x", "y", "z"],
        &["EXISTS", "{a}1", "{a}2", "a"],
        &["RENAME", "{a}1", "b"],
        &["SINTERSTORE", "a", "b"],
        &["ZUNIONSTORE", "out", "2", "a", "b"],
        &["ZUNIONSTORE", "{a}out", "2", "{a}x", "{a}y"],
        &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["BLPOP", "a", "b", "0"],
        &["SORT", "{a}1", "STORE", "b"],
        &["SPUBLISH", "{a}1", "x"],
        &["SSUBSCRIBE", "a", "b"],
        &["SUNSUBSCRIBE", "a", "b"],
        &["PUBLISH", "a", "x"],
        &["OBJECT", "ENCODING", "nosuch"],
        &["COPY", "{a}1", "b"],
        &["SMOVE", "a", "b", "m"],
        &["GEORADIUS", "a", "0", "0", "1", "km", "STORE", "b"],
        &["LMPOP", "2", "a", "b", "LEFT"],
        &["ZINTERCARD", "2", "a", "b"],
        &["SINTERCARD", "2", "a", "b"],
        &["BITOP", "AND", "a", "b"],
        &["PFMERGE", "a", "b"],
        &["PFCOUNT", "a", "b"],
        &["MSETNX", "a", "1", "b", "2"],
        &["RENAMENX", "a", "b"],
        &["BLMPOP", "0.01", "2", "a", "b", "LEFT"],
        &["SORT_RO", "{a}1"],
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
        &["CLUSTER", "COUNTKEYSINSLOT", "15495"],
        // Several keys of a slot come in each server's own order: one key, or none.
        &["CLUSTER", "GETKEYSINSLOT", "15495", "0"],
        &["SET", "solo", "1"],
        &["CLUSTER", "GETKEYSINSLOT", &solo_slot, "10"],
        &["CLUSTER", "COUNTKEYSINSLOT", &solo_slot],
        &["SELECT", "0"],
        &["SELECT", "1"],
        &["SELECT", "99"],
        &["MOVE", "a", "1"],
        &["SWAPDB", "0", "1"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["SET", "b", "1"],
        &["EXEC"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "{a}1", "1"],
        &["MSET", "a", "1", "b", "2"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "{a}1", "2"],
        &["GET", "{a}1"],
        &["EXEC"],
        &["WATCH", "a", "b"],
        &["MULTI"],
        &["WATCH", "a", "b"],
        &["SET", "{a}1", "2"],
        &["EXEC"],
    ];
    for proto in ["2", "3"] {
        r.cmd(&["HELLO", proto]);
        l.cmd(&["HELLO", proto]);
        r.cmd(&["FLUSHALL"]);
        l.cmd(&["FLUSHALL"]);
        for args in cases {
            assert_eq!(l.cmd(args), r.cmd(args), "{args:?} in RESP{proto}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without cluster mode, the cluster commands are refused as a standalone Redis refuses them.
#[test]
fn standalone_refuses_cluster_commands_as_redis() {
    let redis = Redis::start().unwrap();
    let lethe = Lethe::start();
    let (mut r, mut l) = (redis.client(), lethe.client());
    let cases: &[&[&str]] = &[
        &["CLUSTER", "INFO"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "MYID"],
        &["CLUSTER", "KEYSLOT", "foo"],
        &["CLUSTER", "KEYSLOT"],
        &["CLUSTER", "COUNTKEYSINSLOT", "1"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "1"],
        &["CLUSTER", "NOSUCH"],
        &["CLUSTER"],
        &["ASKING"],
        &["READONLY"],
        &["READWRITE"],
        &["MSET", "a", "1", "b", "2"],
        &["SELECT", "1"],
        &["SELECT", "0"],
    ];
    for proto in ["2", "3"] {
        r.cmd(&["HELLO", proto]);
        l.cmd(&["HELLO", proto]);
        for args in cases {
            assert_eq!(l.cmd(args), r.cmd(args), "{args:?} in RESP{proto}");
        }
    }
}

#[test]
fn redis_py_cluster_client_spreads_keys() {
    let trio = Trio::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/redis_py_cluster.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(trio.port("b").to_string())
        .output()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    assert!(
        out.status.success(),
        "redis-py cluster script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

fn dbsize(port: u16) -> i64 {
    let reply = Client::connect(port).cmd(&["DBSIZE"]);
    reply.trim().trim_start_matches(':').parse().unwrap()
}

#[test]
fn redis_rs_cluster_client_spreads_keys() {
    use redis::Commands;
    let trio = Trio::start();
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", trio.port("a"))])
            .unwrap();
    let mut con = client.get_connection().unwrap();
    const N: usize = 10_000;
    for i in 0..N {
        let _: () = con.set(format!("key:{i}"), i).unwrap();
    }
    for i in (0..N).step_by(3) {
        let v: usize = con.get(format!("key:{i}")).unwrap();
        assert_eq!(v, i);
    }
    let sizes: Vec<i64> = NAMES.iter().map(|n| dbsize(trio.port(n))).collect();
    assert_eq!(sizes.iter().sum::<i64>(), N as i64, "{sizes:?}");
    for s in &sizes {
        assert!((2800..3900).contains(s), "{sizes:?}");
    }
    // Each key is on the node serving its slot.
    for k in ["key:1", "key:2", "key:3"] {
        let owner = trio.map.owner(key_slot(k.as_bytes())).unwrap().port;
        assert_eq!(
            Client::connect(owner).cmd(&["EXISTS", k]),
            ":1\r\n",
            "{k} not on its slot's owner"
        );
    }
}

/// Slots move while a cluster client writes: the client follows MOVED, and a key of a moved
/// slot reads as the value last written or as missing (the slot started empty on its new
/// owner), never as an older value. Tracking clients of the old owner are told the keys went.
#[test]
fn moved_slots_are_empty_or_current_never_stale() {
    use redis::Commands;
    let mut trio = Trio::start();
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", trio.port("a"))])
            .unwrap();
    let mut con = client.get_connection().unwrap();
    const N: usize = 600;
    let keys: Vec<String> = (0..N).map(|i| format!("k:{i}")).collect();
    for k in &keys {
        let _: () = con.set(k, 0u64).unwrap();
    }
    // A tracking client on b, which is about to lose its slots, reads a key of b's that
    // nobody else writes: only the drop can invalidate it.
    let on_b = key_on(&trio.map, "b", "tracked:");
    let mut tracker = trio.client("b");
    tracker.cmd(&["HELLO", "3"]);
    assert_eq!(tracker.cmd(&["SET", &on_b, "t"]), "+OK\r\n");
    assert_eq!(tracker.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    assert_eq!(tracker.cmd(&["GET", &on_b]), "$1\r\nt\r\n");
    let b_keys = dbsize(trio.port("b"));
    assert!(b_keys > 1);
    // A client blocked on a list of b's, with no timeout.
    let list = key_on(&trio.map, "b", "list:");
    let mut blocked = trio.client("b");
    blocked.set_read_timeout(Duration::from_secs(30));
    blocked.send(&common::encode(&["BLPOP", &list, "0"]));

    // b's slots go to a and c while a second connection of the client keeps writing, round
    // after round, through its slot table (which still sends b's slots to b).
    let mut moved = trio.map.clone();
    moved.reassign("b", &["a", "c"]).unwrap();
    let published = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rounds = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (keys, published, rounds) = (keys.clone(), published.clone(), rounds.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            let mut con = client.get_connection().unwrap();
            let mut last = vec![0u64; keys.len()];
            let mut after = 0;
            for round in 1..=1000u64 {
                let moved_before = published.load(SeqCst);
                for (i, k) in keys.iter().enumerate() {
                    let _: () = con.set(k, round).unwrap();
                    last[i] = round;
                }
                rounds.store(round, SeqCst);
                if moved_before {
                    after += 1;
                    if after == 2 {
                        break;
                    }
                }
            }
            (con, last)
        })
    };
    let started = (0..1000).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        rounds.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    assert!(started, "the writer did not get going");
    trio.publish(moved.clone());
    published.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut con2, written) = writer.join().unwrap();
    // Every key holds what the writer wrote last, or is gone (its last write landed on b
    // just before b dropped the slot): never an older value.
    for (i, k) in keys.iter().enumerate() {
        let v: Option<u64> = con2.get(k).unwrap();
        assert!(
            v.is_none() || v == Some(written[i]),
            "{k}: read {v:?}, last written {}",
            written[i]
        );
    }
    // b serves nothing now and holds nothing; its keys were counted as dropped.
    assert_eq!(dbsize(trio.port("b")), 0);
    let info = Client::connect(trio.port("b")).cmd(&["INFO", "cluster"]);
    let dropped: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("cluster_slot_keys_dropped:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(dropped >= b_keys, "dropped {dropped}, b held {b_keys}");
    // The tracking client heard that its key went.
    let push = String::from_utf8_lossy(&tracker.read_reply()).into_owned();
    assert!(
        push.starts_with(">2\r\n$10\r\ninvalidate\r\n") && push.contains(&on_b),
        "{push}"
    );
    // The blocked client is redirected to the list's new owner, as Redis does.
    let slot = key_slot(list.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&blocked.read_reply()),
        format!("-MOVED {slot} {}\r\n", moved.owner(slot).unwrap().address())
    );
    // The new owner starts the slot empty.
    let owner = moved.owner(key_slot(on_b.as_bytes())).unwrap();
    assert_eq!(Client::connect(owner.port).cmd(&["GET", &on_b]), "$-1\r\n");
    // Keys of b's old slots, read through b, are redirected to their new owner.
    let reply = Client::connect(trio.port("b")).cmd(&["GET", &on_b]);
    assert_eq!(
        reply,
        format!(
            "-MOVED {} {}\r\n",
            key_slot(on_b.as_bytes()),
            owner.address()
        )
    );
    // And the cluster client keeps working after the move: fresh writes read back.
    for k in &keys {
        let _: () = con.set(k, 9u64).unwrap();
        let v: u64 = con.get(k).unwrap();
        assert_eq!(v, 9);
    }
    assert_eq!(dbsize(trio.port("b")), 0);
}

/// Keys a node holds in slots it does not serve go when it starts in cluster mode, and a slot
/// it gains is emptied before it serves it: whatever it still held there cannot come back.
#[test]
fn startup_and_gained_slots_start_empty() {
    use lethe_server::keyspace::{Changes, Value, stored_key};
    use lethe_server::state::ServerState;
    let db = Arc::new(ServerState::new(1 << 26));
    let put = |name: &str, v: &str| {
        db.try_set(
            stored_key(0, name.as_bytes()),
            Value::string(v.as_bytes()),
            &lethe::InsertOptions::new(),
            &mut Changes::default(),
        )
        .unwrap()
        .unwrap();
    };
    let keys: Vec<String> = (0..300).map(|i| format!("s:{i}")).collect();
    for k in &keys {
        put(k, "old");
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // a serves b's first half of the slots; b (never started) the rest.
    let mut map = SlotMap::even(vec![
        NodeInfo::new("a", "127.0.0.1", port),
        NodeInfo::new("b", "127.0.0.1", 1),
    ])
    .unwrap();
    let (feed, rx) = watch::channel(Arc::new(map.clone()));
    let served = keys
        .iter()
        .filter(|k| map.serves("a", key_slot(k.as_bytes())))
        .count();
    let node = Lethe::start_built(listener, {
        let db = db.clone();
        move |l| {
            Server::builder(l)
                .db(db)
                .cluster(ClusterView::new("a", rx))
                .build()
        }
    });
    let settled = (0..500).any(|_| {
        if dbsize(port) == served as i64 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
        false
    });
    assert!(settled, "keys outside a's slots were not dropped at start");
    let mut c = node.client();
    let mine = keys
        .iter()
        .find(|k| map.serves("a", key_slot(k.as_bytes())))
        .unwrap();
    assert_eq!(c.cmd(&["GET", mine]), "$3\r\nold\r\n");
    // Something left behind in b's slots (as if from an earlier time a served them).
    let theirs: Vec<&String> = keys
        .iter()
        .filter(|k| map.serves("b", key_slot(k.as_bytes())))
        .collect();
    for k in &theirs {
        put(k, "stale");
    }
    map.reassign("b", &["a"]).unwrap();
    feed.send_replace(Arc::new(map.clone()));
    let want = format!("cluster_my_epoch:{}\r\n", map.epoch());
    let applied = (0..500).any(|_| {
        if c.cmd(&["CLUSTER", "INFO"]).contains(&want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
        false
    });
    assert!(applied);
    for k in &theirs {
        assert_eq!(c.cmd(&["GET", k]), "$-1\r\n", "{k} came back stale");
    }
    assert_eq!(c.cmd(&["GET", mine]), "$3\r\nold\r\n");
    assert_eq!(dbsize(port), served as i64);
    let info = c.cmd(&["INFO", "cluster"]);
    let dropped = 2 * theirs.len();
    assert!(
        info.contains(&format!("cluster_slot_keys_dropped:{dropped}\r\n")),
        "{info}"
    );
    // The Prometheus metrics count them too.
    let registry = lethe_server::metrics::Metrics::new().registry(db.clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(&format!("cluster_slot_keys_dropped_total {dropped}\n")),
        "{text}"
    );
    assert_eq!(c.cmd(&["SET", theirs[0], "new"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", theirs[0]]), "$3\r\nnew\r\n");
}

/// redis-py's `RedisCluster` keeps working when a node's slots move to the others: it follows
/// MOVED, and the keys of the moved slots read as missing, never as anything stale.
#[test]
fn redis_py_cluster_client_follows_a_slot_move() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut trio = Trio::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/redis_py_cluster_move.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(trio.port("a").to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let status = child.wait_with_output().unwrap();
        panic!(
            "redis-py script did not get ready: {line}\n{}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    let mut moved = trio.map.clone();
    moved.reassign("b", &["a", "c"]).unwrap();
    trio.publish(moved);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "moved").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait_with_output().unwrap();
    assert!(
        status.status.success() && rest.starts_with("ok "),
        "redis-py script failed: {rest}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(dbsize(trio.port("b")), 0);
}

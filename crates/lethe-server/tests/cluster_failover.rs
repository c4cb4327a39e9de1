//! `lethe serve --cluster` end to end: three server processes and a nats-server of the
//! test's own, the map made by `lethe cluster create`; the redis-rs cluster client writes and
//! reads across them; a node killed with SIGKILL has its slots given to the survivors within
//! the heartbeat TTL plus a margin, and the same client carries on without a restart.

mod common;

use lethe_bus::testing::NatsServer;
use lethe_cluster::key_slot;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lethe");

/// A `lethe serve --cluster` process, killed on drop.
struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(bus: &str, name: &str) -> Node {
    let (child, listening) = common::spawn_listening(
        Command::new(BIN)
            .args(["serve", "--port", "0", "--bus", bus, "--node-id", name])
            .arg("--cluster")
            .env("LETHE_LOG", "warn")
            .stderr(Stdio::null()),
        false,
    );
    Node {
        child,
        port: listening.port,
    }
}

fn lethe(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run lethe");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The node serving `slot` per CLUSTER SLOTS of the node on `port`.
fn owner_port(port: u16, slot: u16) -> Option<u16> {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .ok()?
        .get_connection()
        .ok()?;
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).ok()?;
    for range in slots {
        let redis::Value::Array(items) = range else {
            continue;
        };
        let (Some(redis::Value::Int(a)), Some(redis::Value::Int(b))) =
            (items.first(), items.get(1))
        else {
            continue;
        };
        if (*a..=*b).contains(&i64::from(slot)) {
            if let Some(redis::Value::Array(node)) = items.get(2) {
                if let Some(redis::Value::Int(p)) = node.get(1) {
                    return u16::try_from(*p).ok();
                }
            }
        }
    }
    None
}

#[test]
fn a_killed_node_is_failed_over_and_clients_carry_on() {
    use redis::Commands;
    let nats = NatsServer::start();
    let bus = nats.url();
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
        .into_iter()
        .map(|n| serve(&bus, n))
        .collect();
    let list = nodes
        .iter()
        .zip(["n1", "n2", "n3"])
        .map(|(n, name)| format!("{name}=127.0.0.1:{}", n.port))
        .collect::<Vec<_>>()
        .join(",");
    let created = lethe(&["cluster", "create", "--bus", &bus, "--nodes", &list]);
    assert!(created.contains("n1"), "{created}");
    // Every node follows the new map: each reports all slots served.
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in &nodes {
        while owner_port(n.port, 16383).is_none() || owner_port(n.port, 0).is_none() {
            assert!(
                Instant::now() < deadline,
                "node {} never took the map",
                n.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", nodes[0].port)])
            .unwrap();
    let mut con = client.get_connection().unwrap();
    const N: usize = 3_000;
    for i in 0..N {
        let _: () = con.set(format!("k:{i}"), i).unwrap();
    }
    let dbsize = |port: u16| -> i64 {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("DBSIZE").query(&mut c).unwrap()
    };
    let sizes: Vec<i64> = nodes.iter().map(|n| dbsize(n.port)).collect();
    assert_eq!(sizes.iter().sum::<i64>(), N as i64, "{sizes:?}");
    assert!(sizes.iter().all(|&s| s > 600), "keys not spread: {sizes:?}");

    // Kill n3 without warning: its heartbeat ages out (6 s by default) and a survivor gives
    // its slots to the others.
    let dead = nodes.pop().unwrap();
    let dead_port = dead.port;
    let victim_slot = key_slot(b"k:0");
    drop(dead);
    let killed = Instant::now();
    let survivor = nodes[0].port;
    let deadline = killed + Duration::from_secs(30);
    loop {
        let all_live = (0..16384u16)
            .step_by(97)
            .chain([16383])
            .all(|s| owner_port(survivor, s).is_some_and(|p| p != dead_port));
        if all_live {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead node's slots were not failed over"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = killed.elapsed();
    // The heartbeat TTL (6 s) plus its beat interval and a generous margin for a loaded
    // machine: a bound on correctness (the slots do move), not a performance claim.
    assert!(took < Duration::from_secs(25), "failover took {took:?}");

    // The same client carries on. redis-rs's asynchronous cluster client refreshes its slots
    // when a node stops answering (its synchronous one only on MOVED, so it would keep asking
    // the dead node); a request that still meets the dead node fails and the application
    // retries, as with Redis Cluster. Every key reads as written or as missing (a failed-over
    // slot starts empty), and writes land again.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut errors = 0;
    let mut missing = 0;
    rt.block_on(async {
        use redis::AsyncCommands;
        let mut con = client.get_async_connection().await.unwrap();
        for i in 0..N {
            let key = format!("k:{i}");
            let mut done = false;
            for _ in 0..100 {
                let got: redis::RedisResult<Option<usize>> = con.get(&key).await;
                let set: redis::RedisResult<()> = match got {
                    Ok(Some(v)) => {
                        assert_eq!(v, i, "{key} read stale");
                        con.set(&key, i + 1).await
                    }
                    Ok(None) => {
                        missing += 1;
                        con.set(&key, i + 1).await
                    }
                    Err(e) => Err(e),
                };
                if set.is_ok() {
                    done = true;
                    break;
                }
                errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(done, "the client did not recover ({errors} errors)");
        }
        for i in (0..N).step_by(7) {
            let v: usize = con.get(format!("k:{i}")).await.unwrap();
            assert_eq!(v, i + 1);
        }
    });
    assert!(
        errors < 100,
        "{errors} failed requests before the client recovered"
    );
    assert!(missing > 0, "the dead node's keys cannot have survived it");
    assert!(owner_port(survivor, victim_slot).is_some());
    let status = lethe(&["cluster", "status", "--bus", &bus]);
    assert!(status.contains("n3"), "{status}");
}

//! The three-node clusters the bus suite measures, and the clients that watch them.
//!
//! - Lethe: a nats-server with JetStream of the suite's own (`lethe_bus::testing`) and three
//!   release `lethe serve --bus .. --node-id node-N` processes; node 3 reaches NATS through a
//!   [`Proxy`] the partition case cuts.
//! - Redis pub/sub, the way invalidations were fanned out before the bus: three
//!   `redis-server`s; the origin deletes on node 1 and `PUBLISH`es the keys on node 1's
//!   channel; one subscriber per other node (a thread here, as an application process would
//!   run it) receives each message and `DEL`s the keys on its node. Node 3's subscriber reaches
//!   node 1 through the [`Proxy`]; cut off, it reconnects and subscribes again, as such a
//!   subscriber does, and whatever was published meanwhile is gone.
//!
//! On every node a RESP3 client with `CLIENT TRACKING on BCAST PREFIX bus:` records when each
//! `bus:<id>` key left that node (the push is sent when the key is removed), into [`Stamps`]:
//! the same observer for both systems, so their latencies are measured identically.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lethe_bus::testing::{NatsServer, Proxy};

use crate::lethe_server::LetheServer;
use crate::redis_server::RedisServer;
use crate::resp::{self, Frame, Invalidation};

pub const NODES: usize = 3;
/// Keys with this prefix are watched by the tracking clients.
pub const TRACKED_PREFIX: &str = "bus:";
/// The pub/sub channel of the Redis fan-out.
const CHANNEL: &str = "lethe-bench-inv";
/// Lethe's keyspace budget per node: far above what the suite stores, so nothing is evicted.
const MAX_MEMORY: u64 = 2 << 30;
/// Keys per MSET / EXISTS command when loading and checking.
const CHUNK: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lethe,
    Redis,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lethe => "lethe",
            Kind::Redis => "redis-pubsub",
        }
    }
}

/// When each tracked key left each node, in nanoseconds since `epoch` (0: not yet).
#[derive(Debug)]
pub struct Stamps {
    epoch: Instant,
    nodes: Vec<Vec<AtomicU64>>,
    /// Stamps before this instant are from before the case started.
    armed: AtomicU64,
    /// Pushes that said "everything was flushed".
    pub flushes: AtomicU64,
}

impl Stamps {
    fn new(keys: usize) -> Stamps {
        Stamps {
            epoch: Instant::now(),
            nodes: (0..NODES)
                .map(|_| (0..keys).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            armed: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// `t` in the stamps' clock (never 0, which means "not yet").
    pub fn nanos(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    /// When `id` left `node` after [`Stamps::arm`] (0: not yet).
    pub fn at(&self, node: usize, id: usize) -> u64 {
        let at = self.nodes[node][id].load(Ordering::Relaxed);
        if at < self.armed.load(Ordering::SeqCst) {
            0
        } else {
            at
        }
    }

    /// From now on only pushes that arrive later count: the ones loading the keys caused
    /// (tracking reports every change of a key, its creation too) are overwritten.
    pub fn arm(&self) {
        self.armed
            .store(self.nanos(Instant::now()), Ordering::SeqCst);
    }

    fn record(&self, node: usize, id: usize, at: u64) {
        let armed = self.armed.load(Ordering::SeqCst);
        if let Some(slot) = self.nodes[node].get(id) {
            // The first push after arming counts.
            let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == 0 || cur < armed).then_some(at)
            });
        }
    }
}

/// The id of a tracked key `bus:<id>`.
pub fn tracked_id(key: &[u8]) -> Option<usize> {
    std::str::from_utf8(key.strip_prefix(TRACKED_PREFIX.as_bytes())?)
        .ok()?
        .parse()
        .ok()
}

/// A numeric field of an INFO reply.
pub fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k == name {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// A running cluster; everything is stopped on drop.
#[derive(Debug)]
pub struct Cluster {
    pub kind: Kind,
    pub ports: [u16; NODES],
    pub stamps: Arc<Stamps>,
    /// Cuts node 3 off: from NATS (Lethe) or from node 1's channel (Redis).
    pub proxy: Proxy,
    /// Redis: whether each subscriber (nodes 2 and 3) is subscribed right now.
    subscribed: Arc<[AtomicBool; 2]>,
    /// Redis: times a subscriber lost its connection and subscribed again.
    pub resubscribes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    // Servers last, Lethe's before NATS: fields drop in declaration order.
    lethe: Vec<LetheServer>,
    redis: Vec<RedisServer>,
    nats: Option<NatsServer>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.sockets.lock().expect("not poisoned").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Whether a nats-server binary is installed where `lethe_bus::testing` looks for it.
pub fn nats_available() -> bool {
    Path::new("/usr/sbin/nats-server").is_file()
        || std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|p| p.join("nats-server").is_file())
        })
}

fn deadline_loop(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("{what} within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

impl Cluster {
    fn empty(kind: Kind, proxy: Proxy, tracked: usize) -> Cluster {
        Cluster {
            kind,
            ports: [0; NODES],
            stamps: Arc::new(Stamps::new(tracked)),
            proxy,
            subscribed: Arc::new([AtomicBool::new(false), AtomicBool::new(false)]),
            resubscribes: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            sockets: Arc::default(),
            lethe: Vec::new(),
            redis: Vec::new(),
            nats: None,
        }
    }

    /// Three Lethe nodes on one nats-server; `tracked` keys `bus:0..` are watched.
    pub fn lethe(binary: &Path, tracked: usize) -> Result<Cluster, String> {
        let nats = NatsServer::start();
        let mut c = Cluster::empty(Kind::Lethe, Proxy::start(nats.port()), tracked);
        for n in 0..NODES {
            let url = if n == NODES - 1 {
                c.proxy.url()
            } else {
                nats.url()
            };
            let node_id = format!("node-{}", n + 1);
            let extra: Vec<std::ffi::OsString> = vec![
                "--bus".into(),
                url.into(),
                "--node-id".into(),
                node_id.into(),
            ];
            let server = LetheServer::start_with(binary, MAX_MEMORY, &extra)?;
            c.ports[n] = server.port();
            c.lethe.push(server);
        }
        c.nats = Some(nats);
        for n in 0..NODES {
            deadline_loop(
                &format!("lethe node {} did not report bus_connected:1", n + 1),
                Duration::from_secs(20),
                || info_field(&c.info(n), "bus_connected") == Some(1),
            )?;
        }
        c.start_trackers()?;
        Ok(c)
    }

    /// Three redis-servers with the pub/sub fan-out; `tracked` keys `bus:0..` are watched.
    pub fn redis(tracked: usize) -> Result<Cluster, String> {
        let servers = (0..NODES)
            .map(|_| RedisServer::start())
            .collect::<Result<Vec<_>, _>>()?;
        let hub = servers[0].port();
        let mut c = Cluster::empty(Kind::Redis, Proxy::start(hub), tracked);
        for (n, s) in servers.iter().enumerate() {
            c.ports[n] = s.port();
        }
        c.redis = servers;
        for (i, node) in [1, 2].into_iter().enumerate() {
            let hub_port = if node == NODES - 1 {
                proxy_port(&c.proxy)
            } else {
                hub
            };
            c.start_subscriber(i, hub_port, c.ports[node])?;
        }
        deadline_loop(
            "the Redis subscribers did not subscribe",
            Duration::from_secs(10),
            || c.subscribed.iter().all(|s| s.load(Ordering::SeqCst)),
        )?;
        c.start_trackers()?;
        Ok(c)
    }

    fn connect(&self, port: u16) -> Result<TcpStream, String> {
        let s = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
        let _ = s.set_nodelay(true);
        if let Ok(c) = s.try_clone() {
            self.sockets.lock().expect("not poisoned").push(c);
        }
        Ok(s)
    }

    fn start_trackers(&self) -> Result<(), String> {
        for node in 0..NODES {
            let stream = self.connect(self.ports[node])?;
            let mut w = stream.try_clone().map_err(|e| e.to_string())?;
            let mut r = BufReader::new(stream);
            let mut cmd = Vec::new();
            resp::encode(&mut cmd, &["HELLO", "3"]);
            resp::encode(
                &mut cmd,
                &[
                    "CLIENT",
                    "TRACKING",
                    "on",
                    "BCAST",
                    "PREFIX",
                    TRACKED_PREFIX,
                ],
            );
            w.write_all(&cmd).map_err(|e| e.to_string())?;
            for what in ["HELLO 3", "CLIENT TRACKING"] {
                match resp::read_frame(&mut r) {
                    Ok(Frame::Error(e)) => return Err(format!("{what} on node {}: {e}", node + 1)),
                    Err(e) => return Err(format!("{what} on node {}: {e}", node + 1)),
                    Ok(_) => {}
                }
            }
            let stamps = self.stamps.clone();
            std::thread::spawn(move || {
                while let Ok(frame) = resp::read_frame(&mut r) {
                    match resp::invalidated_keys(&frame) {
                        Some(Invalidation::Keys(keys)) => {
                            let now = stamps.nanos(Instant::now());
                            for k in keys {
                                if let Some(id) = tracked_id(&k) {
                                    stamps.record(node, id, now);
                                }
                            }
                        }
                        Some(Invalidation::All) => {
                            stamps.flushes.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {}
                    }
                }
            });
        }
        Ok(())
    }

    /// Subscriber `i` (for a node other than 1): receives node 1's messages through
    /// `hub_port` and deletes their keys on `node_port`.
    fn start_subscriber(&self, i: usize, hub_port: u16, node_port: u16) -> Result<(), String> {
        let node = self.connect(node_port)?;
        // DELs are written as messages arrive; their replies are read on another thread so
        // a burst of messages is not serialised on round trips.
        let mut drain = BufReader::new(node.try_clone().map_err(|e| e.to_string())?);
        std::thread::spawn(move || while resp::read_frame(&mut drain).is_ok() {});
        let mut node = node;
        let (stop, subscribed, resubscribes, sockets) = (
            self.stop.clone(),
            self.subscribed.clone(),
            self.resubscribes.clone(),
            self.sockets.clone(),
        );
        std::thread::spawn(move || {
            let mut first = true;
            let mut buf = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                if !first {
                    std::thread::sleep(Duration::from_millis(20));
                }
                first = false;
                let Ok(hub) = TcpStream::connect(("127.0.0.1", hub_port)) else {
                    continue;
                };
                if let Ok(c) = hub.try_clone() {
                    sockets.lock().expect("not poisoned").push(c);
                }
                let mut w = match hub.try_clone() {
                    Ok(w) => w,
                    Err(_) => continue,
                };
                let mut r = BufReader::new(hub);
                let mut cmd = Vec::new();
                resp::encode(&mut cmd, &["SUBSCRIBE", CHANNEL]);
                if w.write_all(&cmd).is_err() || resp::read_frame(&mut r).is_err() {
                    continue;
                }
                subscribed[i].store(true, Ordering::SeqCst);
                while let Ok(frame) = resp::read_frame(&mut r) {
                    let Some(payload) = resp::pubsub_message(&frame) else {
                        continue;
                    };
                    let mut args: Vec<&[u8]> = vec![b"DEL"];
                    args.extend(payload.split(|&b| b == b' ').filter(|k| !k.is_empty()));
                    buf.clear();
                    resp::encode(&mut buf, &args);
                    if node.write_all(&buf).is_err() {
                        return;
                    }
                }
                subscribed[i].store(false, Ordering::SeqCst);
                resubscribes.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(())
    }

    /// A synchronous connection to node `n` (0-based).
    pub fn conn(&self, n: usize) -> Result<redis::Connection, String> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.ports[n]))
            .and_then(|c| c.get_connection())
            .map_err(|e| format!("connecting to node {}: {e}", n + 1))
    }

    /// INFO of node `n` (empty when it cannot be read).
    pub fn info(&self, n: usize) -> String {
        self.conn(n)
            .ok()
            .and_then(|mut c| redis::cmd("INFO").arg("bus").query(&mut c).ok())
            .unwrap_or_default()
    }

    /// Stores every key (value `v`) on every node.
    pub fn preload(&self, keys: &[String]) -> Result<(), String> {
        for n in 0..NODES {
            let mut c = self.conn(n)?;
            let mut pipe = redis::pipe();
            for chunk in keys.chunks(CHUNK) {
                let mut cmd = redis::cmd("MSET");
                for k in chunk {
                    cmd.arg(k).arg("v");
                }
                pipe.add_command(cmd).ignore();
            }
            pipe.query::<()>(&mut c)
                .map_err(|e| format!("loading node {}: {e}", n + 1))?;
        }
        Ok(())
    }

    /// How many of `keys` node `n` holds.
    pub fn present(&self, n: usize, keys: &[String]) -> Result<usize, String> {
        let mut c = self.conn(n)?;
        let mut total = 0;
        for chunk in keys.chunks(CHUNK) {
            let k: usize = redis::cmd("EXISTS")
                .arg(chunk)
                .query(&mut c)
                .map_err(|e| format!("EXISTS on node {}: {e}", n + 1))?;
            total += k;
        }
        Ok(total)
    }

    pub fn dbsize(&self, c: &mut redis::Connection) -> Result<u64, String> {
        redis::cmd("DBSIZE")
            .query(c)
            .map_err(|e| format!("DBSIZE: {e}"))
    }

    /// Whether node 3 is connected again and has caught up with everything published.
    pub fn member3_caught_up(&self) -> bool {
        match self.kind {
            Kind::Lethe => {
                // Node 1 published everything, node 2 (never cut off) applied it, and node 3
                // is connected, without lag, and as far in the stream as node 2.
                let (origin, peer, member) = (self.info(0), self.info(1), self.info(NODES - 1));
                let seq = |info: &str| info_field(info, "bus_applied_seq");
                info_field(&origin, "bus_publish_queued") == Some(0)
                    && info_field(&peer, "bus_lag_messages") == Some(0)
                    && info_field(&member, "bus_connected") == Some(1)
                    && info_field(&member, "bus_lag_messages") == Some(0)
                    && seq(&member).is_some()
                    && seq(&member) >= seq(&peer)
            }
            Kind::Redis => self.subscribed[1].load(Ordering::SeqCst),
        }
    }

    /// Flushes node `n` did to stay safe (Lethe's `bus_flushes_*`; the fan-out has none).
    pub fn member_flushes(&self, n: usize) -> u64 {
        self.info(n)
            .lines()
            .filter(|l| l.starts_with("bus_flushes_"))
            .filter_map(|l| l.split_once(':')?.1.trim().parse::<u64>().ok())
            .sum()
    }

    /// A connection to node 1 that sends invalidations open-loop.
    pub fn origin(&self) -> Result<Origin, String> {
        let w = self.connect(self.ports[0])?;
        let mut r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
        let replies = Arc::new(AtomicU64::new(0));
        let error: Arc<Mutex<Option<String>>> = Arc::default();
        let (count, err) = (replies.clone(), error.clone());
        std::thread::spawn(move || {
            while let Ok(frame) = resp::read_frame(&mut r) {
                if let Frame::Error(e) = frame {
                    err.lock().expect("not poisoned").get_or_insert(e);
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Origin {
            kind: self.kind,
            w,
            replies,
            error,
            sent: 0,
        })
    }
}

fn proxy_port(p: &Proxy) -> u16 {
    p.url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the proxy URL ends with its port")
}

/// The application issuing invalidations on node 1.
#[derive(Debug)]
pub struct Origin {
    kind: Kind,
    w: TcpStream,
    replies: Arc<AtomicU64>,
    error: Arc<Mutex<Option<String>>>,
    /// Replies expected so far.
    sent: u64,
}

impl Origin {
    /// Appends the invalidation of `keys` to `buf`: `LETHE.INVALIDATE KEY k..` on Lethe;
    /// `DEL k..` then `PUBLISH <channel> "k1 k2 .."` on Redis.
    pub fn encode(&mut self, buf: &mut Vec<u8>, keys: &[String]) {
        match self.kind {
            Kind::Lethe => {
                let mut args: Vec<&str> = vec!["LETHE.INVALIDATE", "KEY"];
                args.extend(keys.iter().map(String::as_str));
                resp::encode(buf, &args);
                self.sent += 1;
            }
            Kind::Redis => {
                let mut args: Vec<&str> = vec!["DEL"];
                args.extend(keys.iter().map(String::as_str));
                resp::encode(buf, &args);
                resp::encode(buf, &["PUBLISH", CHANNEL, &keys.join(" ")]);
                self.sent += 2;
            }
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> Result<(), String> {
        self.w
            .write_all(buf)
            .map_err(|e| format!("sending to node 1: {e}"))
    }

    /// Waits until node 1 answered everything sent; an error reply fails the case.
    pub fn finish(self, limit: Duration) -> Result<(), String> {
        let result = deadline_loop("node 1 did not answer every invalidation", limit, || {
            self.replies.load(Ordering::Relaxed) >= self.sent
        });
        let _ = self.w.shutdown(Shutdown::Both);
        result?;
        match self.error.lock().expect("not poisoned").take() {
            Some(e) => Err(format!(
                "node 1 answered an invalidation with an error: {e}"
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_ids_and_info_fields() {
        assert_eq!(tracked_id(b"bus:0"), Some(0));
        assert_eq!(tracked_id(b"bus:12345"), Some(12_345));
        for other in [&b"bulk:1"[..], b"bus:", b"bus:x", b"part:3", b"bus:-1"] {
            assert_eq!(tracked_id(other), None, "{other:?}");
        }
        let info = "# Bus\r\nbus_node_id:node-2\r\nbus_connected:1\r\nbus_lag_messages:12\r\n\
                    bus_lag_ms:3\r\n";
        assert_eq!(info_field(info, "bus_connected"), Some(1));
        assert_eq!(info_field(info, "bus_lag_messages"), Some(12));
        assert_eq!(info_field(info, "bus_lag"), None);
        assert_eq!(info_field(info, "bus_node_id"), None);
    }

    #[test]
    fn the_first_removal_counts() {
        let s = Stamps::new(4);
        s.record(1, 2, 50);
        s.record(1, 2, 90);
        s.record(1, 9, 10); // beyond the watched ids: ignored
        assert_eq!(s.at(1, 2), 50);
        assert_eq!(s.at(0, 2), 0);
        // Loading the keys caused pushes; once armed they no longer count, later ones do.
        std::thread::sleep(Duration::from_millis(1));
        s.arm();
        assert_eq!(s.at(1, 2), 0);
        let later = s.nanos(Instant::now());
        s.record(1, 2, later);
        s.record(1, 2, later + 5);
        assert_eq!(s.at(1, 2), later);
    }
}

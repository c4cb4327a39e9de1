//! The registry of connected clients, for the commands that look at other connections
//! (`CLIENT LIST`, `CLIENT KILL`) and for `INFO`'s counts.
//!
//! Each connection registers a [`ClientInfo`] for its lifetime. What CLIENT LIST shows of a
//! client lives in its own [`crate::cmd::Session`]; the connection loop copies the visible part
//! here around each command (a short lock per command), so other clients can read it without
//! reaching into that task. Killing a client sets a flag and wakes its connection loop, which
//! then closes the socket between commands, as Redis does.
//!
//! The registry also holds what acts on every client at once: `CLIENT PAUSE` (connection loops
//! wait in [`Clients::wait_unpaused`] before running a command it holds back) and, per client,
//! the `CLIENT UNBLOCK` request a blocked client's loop waits on.

use crate::frame::Frame;
use crate::pubsub::Pushes;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::Notify;

/// Every connected client, by id, plus server-wide counters.
#[derive(Debug)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    started: Instant,
    connections: AtomicU64,
    commands: AtomicU64,
    /// The pause in force (CLIENT PAUSE), watched by the clients it holds back.
    pause: tokio::sync::watch::Sender<Option<Pause>>,
    /// Whether a pause may be in force: the check every command makes, without a lock.
    pausing: AtomicBool,
}

/// A `CLIENT PAUSE`: until when, and whether it holds back every command (`ALL`) or only
/// those that write (`WRITE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    /// When it ends.
    pub until: Instant,
    /// `ALL` rather than `WRITE`.
    pub all: bool,
}

impl Default for Clients {
    fn default() -> Self {
        Clients::new()
    }
}

impl Clients {
    /// An empty registry; its creation time is the server's start for `INFO`'s uptime.
    pub fn new() -> Clients {
        Clients {
            map: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
            connections: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            pause: tokio::sync::watch::Sender::new(None),
            pausing: AtomicBool::new(false),
        }
    }

    /// Pauses clients until `until`; `all` holds back every command, else only writes. A
    /// pause already in force keeps the later end and the stricter mode, as Redis's does.
    pub fn pause(&self, until: Instant, all: bool) {
        self.pause.send_modify(|p| {
            let now = Instant::now();
            *p = Some(match p.filter(|p| p.until > now) {
                Some(cur) => Pause {
                    until: cur.until.max(until),
                    all: cur.all || all,
                },
                None => Pause { until, all },
            });
        });
        self.pausing.store(true, Ordering::Release);
    }

    /// Ends the pause (CLIENT UNPAUSE): the clients it held back go on at once.
    pub fn unpause(&self) {
        self.pause.send_replace(None);
        self.pausing.store(false, Ordering::Release);
    }

    /// The pause that holds back a command (`write`: whether it counts as a write), if any.
    fn pause_for(&self, write: bool) -> Option<Pause> {
        let p = (*self.pause.borrow())?;
        (p.until > Instant::now() && (p.all || write)).then_some(p)
    }

    /// Whether a pause holds back a command now; cheap when no pause was ever set.
    pub fn holds_back(&self, write: bool) -> bool {
        self.pausing.load(Ordering::Acquire) && self.pause_for(write).is_some()
    }

    /// Waits until no pause holds back a command (`write`: whether it counts as a write): the
    /// pause ends, is lifted, or is relaxed to `WRITE` for a read.
    pub async fn wait_unpaused(&self, write: bool) {
        let mut rx = self.pause.subscribe();
        loop {
            rx.borrow_and_update();
            let Some(p) = self.pause_for(write) else {
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(p.until.into()) => {}
                r = rx.changed() => if r.is_err() { return },
            }
        }
    }

    /// Registers a new connection.
    pub fn register(&self, info: Arc<ClientInfo>) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(info.id, info);
    }

    /// The connected client with `id`.
    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().get(&id).filter(|c| !c.is_killed()).cloned()
    }

    /// Removes a connection that ended.
    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// The connected clients in id order. A killed client is left out at once, although its
    /// connection closes a moment later: for CLIENT LIST and KILL it is gone, as in Redis.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map
            .lock()
            .values()
            .filter(|c| !c.is_killed())
            .cloned()
            .collect()
    }

    /// Counts a processed command.
    pub fn command_processed(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands processed since start.
    pub fn commands_processed(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Connections accepted since start.
    pub fn connections_received(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// When the registry (and so the server) started.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// One connected client as others see it.
#[derive(Debug)]
pub struct ClientInfo {
    /// The client id.
    pub id: u64,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The local address the client connected to.
    pub laddr: SocketAddr,
    /// The socket's file descriptor (-1 where there is none to show).
    pub fd: i64,
    /// Where messages for this client go (pub/sub, invalidations); its connection writes them.
    pushes: Pushes,
    created: Instant,
    state: Mutex<ClientState>,
    killed: AtomicBool,
    kill: Notify,
    /// Whether the client is blocked (BLPOP, ...) and the CLIENT UNBLOCK asked of it, if any
    /// (true: with an error).
    blocking: Mutex<(bool, Option<bool>)>,
    unblock: Notify,
}

/// The part of a client that changes with its commands.
#[derive(Clone, Debug)]
pub struct ClientState {
    /// The name set with CLIENT SETNAME or HELLO.
    pub name: Option<Bytes>,
    /// Channels subscribed to.
    pub sub: usize,
    /// Patterns subscribed to.
    pub psub: usize,
    /// Shard channels subscribed to.
    pub ssub: usize,
    /// Commands queued in MULTI, or -1 outside a transaction.
    pub multi: i64,
    /// Protocol version (2 or 3).
    pub resp: i64,
    /// Client-side caching: `None` when off, else the redirect target (0: none).
    pub tracking: Option<u64>,
    /// The last command run (`client|list` for subcommands).
    pub cmd: String,
    /// When that command started.
    pub last_active: Instant,
    /// CLIENT NO-EVICT (the `e` flag).
    pub no_evict: bool,
    /// CLIENT NO-TOUCH (the `T` flag).
    pub no_touch: bool,
    /// CLIENT SETINFO LIB-NAME and LIB-VER.
    pub lib_name: Option<Bytes>,
    /// See `lib_name`.
    pub lib_ver: Option<Bytes>,
}

impl ClientInfo {
    /// A newly connected client.
    pub fn new(
        id: u64,
        addr: SocketAddr,
        laddr: SocketAddr,
        fd: i64,
        pushes: Pushes,
    ) -> ClientInfo {
        let now = Instant::now();
        ClientInfo {
            id,
            addr,
            laddr,
            fd,
            pushes,
            created: now,
            state: Mutex::new(ClientState {
                name: None,
                sub: 0,
                psub: 0,
                ssub: 0,
                multi: -1,
                resp: 2,
                tracking: None,
                cmd: "NULL".into(),
                last_active: now,
                no_evict: false,
                no_touch: false,
                lib_name: None,
                lib_ver: None,
            }),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            blocking: Mutex::new((false, None)),
            unblock: Notify::new(),
        }
    }

    /// Queues `frame` for the client's connection, which writes it between commands. Never
    /// waits; a client that is gone just does not get it.
    pub fn push(&self, frame: Frame) {
        let _ = self.pushes.send(frame);
    }

    /// The protocol the client speaks and whether it is in pub/sub mode, without copying the
    /// rest of its state.
    pub fn protocol_and_pubsub(&self) -> (i64, bool) {
        let s = self.state.lock();
        (s.resp, ClientInfo::is_pubsub(&s))
    }

    /// A copy of the changing state.
    pub fn state(&self) -> ClientState {
        self.state.lock().clone()
    }

    /// Changes the state.
    pub fn update(&self, f: impl FnOnce(&mut ClientState)) {
        f(&mut self.state.lock());
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        // `notify_one` keeps a permit when the loop is not waiting yet, so no kill is lost.
        self.kill.notify_one();
    }

    /// Whether the client was killed.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Completes once the client is killed.
    pub async fn killed(&self) {
        self.kill.notified().await;
    }

    /// Marks the client blocked in a blocking command, or no longer; either way forgets an
    /// earlier CLIENT UNBLOCK.
    pub fn set_blocked(&self, blocked: bool) {
        *self.blocking.lock() = (blocked, None);
    }

    /// Whether the client is blocked in a blocking command.
    pub fn is_blocked(&self) -> bool {
        self.blocking.lock().0
    }

    /// CLIENT UNBLOCK: ends the client's wait if it is blocked (`error`: with the UNBLOCKED
    /// error, else as a timeout); false if it was not blocked.
    pub fn unblock(&self, error: bool) -> bool {
        let mut b = self.blocking.lock();
        if !b.0 || b.1.is_some() {
            return false;
        }
        b.1 = Some(error);
        drop(b);
        self.unblock.notify_one();
        true
    }

    /// Completes when CLIENT UNBLOCK asks this blocked client to stop waiting: true for an
    /// error reply, false for its timeout reply.
    pub async fn unblocked(&self) -> bool {
        loop {
            // A wake-up left over from an earlier wait finds no request and waits on.
            self.unblock.notified().await;
            if let Some(error) = self.blocking.lock().1 {
                return error;
            }
        }
    }

    /// Whether the client counts as a pub/sub client (CLIENT LIST TYPE, the `P` flag).
    pub fn is_pubsub(state: &ClientState) -> bool {
        state.sub + state.psub + state.ssub > 0
    }

    /// The client's CLIENT LIST line (with its trailing newline), in Redis 7.0's field order.
    /// Memory and buffer fields Lethe does not track are shown as 0.
    pub fn line(&self) -> String {
        let s = self.state();
        let now = Instant::now();
        let mut flags = String::new();
        if ClientInfo::is_pubsub(&s) {
            flags.push('P');
        }
        if s.multi >= 0 {
            flags.push('x');
        }
        if self.is_blocked() {
            flags.push('b');
        }
        if s.tracking.is_some() {
            flags.push('t');
        }
        if s.no_evict {
            flags.push('e');
        }
        if s.no_touch {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let name = s
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} \
             ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
             omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} \
             lib-ver={}\n",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(s.last_active).as_secs(),
            flags,
            s.sub,
            s.psub,
            s.ssub,
            s.multi,
            s.cmd,
            s.tracking.map_or(-1, |r| r as i64),
            s.resp,
            lossy(s.lib_name.as_deref()),
            lossy(s.lib_ver.as_deref()),
        )
    }
}

/// A client-supplied text for CLIENT LIST (empty when unset).
fn lossy(b: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b.unwrap_or_default())
}

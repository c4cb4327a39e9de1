//! The accept loop: one task per connection, and graceful shutdown.
//!
//! [`Server::builder`] takes the listeners the caller bound; [`Server::run`] takes the future
//! that starts shutdown. On shutdown the listeners stop accepting, each connection finishes the
//! command it is running (a command is never interrupted between its read and its reply), sends
//! what it has buffered and closes. Connections still open after the shutdown timeout (a client
//! that does not read its replies, or sends half a request) are closed: nothing a client does can
//! hold the process.
//!
//! Between commands a connection also waits on its pub/sub channel (published messages are
//! written as soon as they arrive) and on its kill switch (`CLIENT KILL` from another client).
//!
//! The limits of [`crate::limits`] are enforced here: `maxclients` and protected mode when a
//! client connects (Redis's error line, then close), the request size limits while reading
//! (`proto-max-bulk-len`, and the small requests an unauthenticated client may send), the idle
//! `timeout` between commands, and the output buffer limit, which closes a client that does not
//! read its pushes, also while its connection is blocked writing to it.

use crate::clients::ClientInfo;
use crate::cmd::{Blocked, Ctx, Session, dispatch_command};
use crate::connection::{Connection, FLUSH_AT, Request};
use crate::frame::Frame;
use crate::http::HttpOptions;
use crate::keyspace::Changes;
use crate::limits::{ConnectionGuard, Limits};
use crate::metrics::Metrics;
use crate::pubsub::PushReceiver;
use crate::request::ParseLimits;
use crate::state::ServerState;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// Default keyspace budget when the caller gives none: 1 GiB of keys and values.
pub const DEFAULT_CAPACITY_BYTES: u64 = 1 << 30;
/// How long connections may take to finish once shutdown begins, unless configured.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves clients on `listener` with a fresh keyspace of the default capacity until `shutdown`
/// completes.
pub async fn run(listener: TcpListener, shutdown: impl Future) {
    Server::builder(listener).build().run(shutdown).await;
}

/// [`run`] over a given keyspace.
pub async fn run_with(listener: TcpListener, db: Arc<ServerState>, shutdown: impl Future) {
    Server::builder(listener).db(db).build().run(shutdown).await;
}

/// A configured server: RESP on a listener, optionally the HTTP admin API on another, over
/// one keyspace, one set of limits and one set of metrics. Built with [`Server::builder`];
/// [`Server::run`] serves until the caller's shutdown future completes.
pub struct Server {
    listener: TcpListener,
    http: Option<(TcpListener, HttpOptions)>,
    db: Arc<ServerState>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    tls: Option<TlsAcceptor>,
    shutdown_timeout: Duration,
    cluster: Option<crate::cluster::ClusterView>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("http", &self.http)
            .field("tls", &self.tls.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("cluster", &self.cluster.as_ref().map(|c| c.name()))
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Server`] before it runs. Every setting has a default: a fresh keyspace of
/// [`DEFAULT_CAPACITY_BYTES`], Redis's default limits, no HTTP, no TLS and
/// [`DEFAULT_SHUTDOWN_TIMEOUT`].
#[derive(Debug)]
pub struct Builder {
    server: Server,
}

impl Server {
    /// A server for RESP clients accepted on `listener` (the caller binds it, so it chooses the
    /// address and may use port 0).
    pub fn builder(listener: TcpListener) -> Builder {
        Builder {
            server: Server {
                listener,
                http: None,
                db: Arc::new(ServerState::new(DEFAULT_CAPACITY_BYTES)),
                limits: Arc::new(Limits::new()),
                metrics: Arc::new(Metrics::new()),
                tls: None,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                cluster: None,
            },
        }
    }

    /// Serves until `shutdown` completes, then stops accepting on both ports and lets open
    /// connections finish what they are doing; whatever is still open after the shutdown
    /// timeout is closed. Returns once every connection is gone, so at most about the timeout
    /// after `shutdown` completed.
    pub async fn run(self, shutdown: impl Future) {
        let Server {
            listener,
            http,
            db,
            limits,
            metrics,
            tls,
            shutdown_timeout,
            cluster,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Routed by the current map from the first command on; later maps are followed.
        let cluster = cluster
            .and_then(|view| crate::cluster::install(&db, view, stop_rx.clone()))
            .map(tokio::spawn);
        let http = http.map(|(l, options)| {
            tokio::spawn(crate::http::serve(
                l,
                crate::http::Shared {
                    db: db.clone(),
                    metrics: metrics.clone(),
                    limits: limits.clone(),
                    tls: tls.clone(),
                },
                options,
                stop_rx.clone(),
                shutdown_timeout,
            ))
        });
        let upkeep = tokio::spawn(maintenance(db.clone(), stop_rx.clone()));
        let shared = Shared {
            db,
            metrics,
            limits,
            tls,
        };
        accept_loop(
            listener,
            shared,
            stop_rx,
            shutdown,
            shutdown_timeout,
            stop_tx,
        )
        .await;
        if let Some(task) = http {
            if let Err(e) = task.await {
                warn!(error = %e, "HTTP server task failed");
            }
        }
        let _ = upkeep.await;
        if let Some(task) = cluster {
            let _ = task.await;
        }
    }
}

impl Builder {
    /// Serve this keyspace (shared with the caller, which may feed it directly).
    pub fn db(mut self, db: Arc<ServerState>) -> Builder {
        self.server.db = db;
        self
    }

    /// Enforce these limits (which CONFIG SET may change while serving).
    pub fn limits(mut self, limits: Arc<Limits>) -> Builder {
        self.server.limits = limits;
        self
    }

    /// Count clients and commands here.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Builder {
        self.server.metrics = metrics;
        self
    }

    /// Also serve the HTTP admin API ([`crate::http`]) on `listener`.
    pub fn http(mut self, listener: TcpListener, options: HttpOptions) -> Builder {
        self.server.http = Some((listener, options));
        self
    }

    /// Speak TLS on both ports (RESP and HTTP) with this configuration.
    pub fn tls(mut self, tls: TlsAcceptor) -> Builder {
        self.server.tls = Some(tls);
        self
    }

    /// How long open connections get to finish once shutdown begins.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Builder {
        self.server.shutdown_timeout = timeout;
        self
    }

    /// Run as node `view.name()` of a Redis Cluster whose slot map arrives on `view`'s
    /// channel ([`crate::cluster`]): commands are routed by slot (MOVED, CROSSSLOT,
    /// CLUSTERDOWN), CLUSTER answers, and keys of slots this node stops serving are dropped.
    /// Without it the server is a standalone Redis (cluster support disabled).
    pub fn cluster(mut self, view: crate::cluster::ClusterView) -> Builder {
        self.server.cluster = Some(view);
        self
    }

    /// The server, ready to [`Server::run`].
    pub fn build(self) -> Server {
        self.server
    }
}

/// What every RESP connection shares.
#[derive(Clone)]
struct Shared {
    db: Arc<ServerState>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    tls: Option<TlsAcceptor>,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Shared,
    stop_rx: watch::Receiver<bool>,
    shutdown: impl Future,
    shutdown_timeout: Duration,
    stop_tx: watch::Sender<bool>,
) {
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    // A descriptor kept in reserve: when accepting fails for want of descriptors, it is freed
    // for long enough to accept the waiting client and tell it why it is refused (otherwise it
    // would wait in the backlog with no answer, and the accept loop would spin on the error).
    let mut reserve = crate::descriptors::Reserve::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let guard = shared.limits.connection();
                    if shared.limits.connected() as u64 > shared.limits.max_clients() {
                        debug!(%peer, "refusing a client: maxclients reached");
                        shared.limits.rejected();
                        connections.spawn(refuse(socket, MAX_CLIENTS_REACHED, guard));
                        continue;
                    }
                    next_id += 1;
                    debug!(%peer, id = next_id, "client connected");
                    let client = Client { limits: shared.limits.clone(), id: next_id, _guard: guard };
                    connections.spawn(serve_client(socket, shared.clone(), stop_rx.clone(), client));
                }
                Err(e) if crate::descriptors::is_exhausted(&e) => {
                    if reserve.release() {
                        if let Ok((socket, peer)) = listener.accept().await {
                            warn!(%peer, "out of file descriptors: refusing a client");
                            shared.limits.rejected();
                            let guard = shared.limits.connection();
                            // A few bytes into a fresh socket's empty buffer: this does not wait.
                            refuse(socket, MAX_CLIENTS_REACHED, guard).await;
                        }
                    } else {
                        warn!(error = %e, "accept failed: out of file descriptors");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    reserve.restore();
                }
                // The listener itself is fine: keep going after a pause rather than spinning.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow with every client ever seen.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    info!(
        connections = connections.len(),
        timeout_ms = shutdown_timeout.as_millis() as u64,
        "shutting down: letting open connections finish"
    );
    let _ = stop_tx.send(true);
    drain(&mut connections, shutdown_timeout, "RESP").await;
}

/// Waits for `tasks` to finish, at most `timeout`; then aborts the rest (a client that does not
/// read its replies, or sends half a request, cannot hold the process).
pub(crate) async fn drain(tasks: &mut JoinSet<()>, timeout: Duration, what: &str) {
    let drained = tokio::time::timeout(timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            connections = tasks.len(),
            "{what}: closing connections still open after the shutdown timeout"
        );
        tasks.shutdown().await;
    }
}

/// Redis's refusal of a client beyond `maxclients` (or beyond the descriptors available).
const MAX_CLIENTS_REACHED: &str = "-ERR max number of clients reached\r\n";

/// How often the keyspace is tidied in the background.
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Expires and reclaims entries in the background ([`ServerState::maintain`]), as Redis's active expiry
/// does, so expired keys leave memory and tracking clients hear of them without waiting for a
/// write. The work runs on a blocking thread: reclaiming a large invalidation can take long.
async fn maintenance(db: Arc<ServerState>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let db = db.clone();
        if tokio::task::spawn_blocking(move || db.maintain())
            .await
            .is_err()
        {
            warn!("keyspace maintenance failed");
        }
    }
}

/// Sends a refusal line (`-ERR max number of clients reached`) and closes, as Redis does for
/// a client it will not serve.
async fn refuse(mut socket: TcpStream, line: &'static str, _guard: ConnectionGuard) {
    let write = async {
        let _ = socket.write_all(line.as_bytes()).await;
        let _ = socket.shutdown().await;
    };
    // A client that does not read its refusal does not keep its descriptor.
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, write).await;
}

/// How long a TLS handshake (or a refusal's write) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection admitted by the accept loop: its id, and its place under `maxclients`.
struct Client {
    limits: Arc<Limits>,
    id: u64,
    _guard: ConnectionGuard,
}

async fn serve_client(
    socket: TcpStream,
    shared: Shared,
    stop: watch::Receiver<bool>,
    client: Client,
) {
    let _connected = shared.metrics.client_connected();
    let id = client.id;
    if let Err(e) = client_loop(socket, &shared, stop, client).await {
        debug!(id, error = %e, "client connection ended with an error");
    }
}

async fn client_loop(
    socket: TcpStream,
    shared: &Shared,
    stop: watch::Receiver<bool>,
    admitted: Client,
) -> io::Result<()> {
    let (id, limits, db) = (admitted.id, admitted.limits.clone(), &*shared.db);
    let _ = socket.set_nodelay(true);
    let unknown = || std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let addr = socket.peer_addr().unwrap_or_else(|_| unknown());
    let laddr = socket.local_addr().unwrap_or_else(|_| unknown());
    #[cfg(unix)]
    let fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(&socket));
    #[cfg(not(unix))]
    let fd = -1;
    let mut conn = match &shared.tls {
        None => Connection::new(socket),
        Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(socket)).await {
            Ok(Ok(stream)) => Connection::new(stream),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake")),
        },
    };
    if crate::limits::protected_refuses(&limits, addr.ip()) {
        debug!(%addr, "refusing a non-loopback client: protected mode");
        limits.rejected();
        conn.queue_raw(crate::limits::DENIED.as_bytes());
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.shutdown()).await;
        return Ok(());
    }
    let (pushes, push_rx) = crate::pubsub::channel(limits.clone());
    let info = Arc::new(ClientInfo::new(id, addr, laddr, fd, pushes.clone()));
    db.clients().register(info.clone());
    let mut session = Session::new(info, pushes, limits);
    let result = serve_requests(conn, db, &shared.metrics, stop, &mut session, push_rx).await;
    // However the connection ended, publishers and CLIENT LIST must stop finding it.
    session.leave_pubsub(db);
    db.tracking().disable(id);
    db.clients().unregister(id);
    result
}

/// What the connection loop woke up for.
enum Event {
    Request(Request),
    Push(Frame),
    Stop,
    /// The client went over its output buffer limit.
    Overflow,
    /// Idle past `timeout`.
    Idle,
    /// A setting changed: recompute the idle deadline.
    Recheck,
}

/// When an idle client is closed: never with `timeout` 0, and never for a pub/sub client
/// (which may legitimately wait long for messages), as in Redis.
fn idle_deadline(timeout: u64, last_io: Instant, subscribed: bool) -> Option<Instant> {
    (timeout > 0 && !subscribed).then(|| last_io + std::time::Duration::from_secs(timeout))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

async fn serve_requests(
    mut conn: Connection,
    db: &ServerState,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
    session: &mut Session,
    mut push_rx: PushReceiver,
) -> io::Result<()> {
    let client = session.client.clone();
    let limits = session.limits.clone();
    let mut changes = limits.changes();
    // The keys each command changes, for client tracking (reused across commands).
    let mut written = Changes::default();
    // A client that stops reading blocks writes to it; going over its output buffer limit
    // meanwhile must still close it, so writes race this.
    let overflow = push_rx.overflow_watch();
    let mut last_io = Instant::now();
    // The `cmd=` of CLIENT LIST for the running command, rebuilt in place for each command.
    let mut label = String::new();
    // A request read while the client was blocked (BLPOP, ...), served next.
    let mut pending: Option<Request> = None;
    loop {
        if *stop.borrow() || client.is_killed() {
            break;
        }
        let parse = ParseLimits {
            max_bulk: i64::try_from(limits.proto_max_bulk_len()).unwrap_or(i64::MAX),
            unauthenticated: session.auth_required(),
        };
        // A request already buffered (the rest of a pipeline) is served without waiting on
        // anything; pushes that arrived meanwhile still go first (below).
        let event = if let Some(request) = pending.take() {
            Event::Request(request)
        } else if let Some(request) = conn.try_read_request(parse) {
            Event::Request(request)
        } else {
            let idle = idle_deadline(limits.timeout(), last_io, session.subscribed());
            // Reading a request is cancel-safe (bytes read stay in the connection's buffer),
            // so a published message can interrupt the wait and go out at once. Pushes are
            // checked first: a message published before a command arrived goes out before its
            // reply.
            tokio::select! {
                biased;
                frame = push_rx.recv() => frame.map_or(Event::Overflow, Event::Push),
                r = conn.read_request(parse) => Event::Request(r?),
                _ = stop.changed() => Event::Stop,
                _ = client.killed() => Event::Stop,
                _ = changes.changed() => Event::Recheck,
                _ = sleep_until(idle) => Event::Idle,
            }
        };
        let request = match event {
            Event::Request(request) => {
                // Reading may have waited (flushing earlier replies) after the channel was
                // checked: messages that arrived meanwhile still precede this command's reply.
                while let Some(frame) = push_rx.try_recv() {
                    conn.queue_frame(&frame, session.protocol);
                    if conn.queued() >= FLUSH_AT {
                        tokio::select! {
                            r = conn.flush() => r?,
                            _ = overflow.wait() => return over_limit(session.id),
                        }
                    }
                }
                request
            }
            Event::Push(frame) => {
                let write = async {
                    conn.write_frame(&frame, session.protocol).await?;
                    // Write whatever else is already queued in one go, then send it.
                    while let Some(frame) = push_rx.try_recv() {
                        conn.write_frame(&frame, session.protocol).await?;
                    }
                    conn.flush().await
                };
                tokio::select! {
                    r = write => r?,
                    _ = overflow.wait() => return over_limit(session.id),
                }
                last_io = Instant::now();
                continue;
            }
            Event::Stop => break,
            // Closed at once, without writing what is queued: that is what went over.
            Event::Overflow => return over_limit(session.id),
            // Part of a request may have arrived meanwhile: that is activity too.
            Event::Idle if conn.last_read() > last_io => {
                last_io = conn.last_read();
                continue;
            }
            Event::Idle => {
                debug!(id = session.id, "closing idle client");
                break;
            }
            Event::Recheck => continue,
        };
        match request {
            Request::Command(args) => {
                // CLIENT PAUSE holds the command back (in its place: later requests wait
                // behind it) until the pause ends; a stop or kill still ends the connection.
                if let Some(write) = crate::cmd::pause_class(&args, session) {
                    if db.clients().holds_back(write) {
                        tokio::select! {
                            _ = db.clients().wait_unpaused(write) => {}
                            _ = stop.changed() => break,
                            _ = client.killed() => break,
                        }
                    }
                }
                // Timed here rather than in the dispatcher: the same span, kept out of the
                // command table's code.
                let started = Instant::now();
                command_label(&mut label, &args);
                // CLIENT LIST and CLIENT INFO show the client's own running command, so
                // publish it first for those; for the rest it is published with the state the
                // command leaves (one lock per command).
                if args[0].eq_ignore_ascii_case(b"client") {
                    client.update(|s| {
                        s.cmd.clone_from(&label);
                        s.last_active = started;
                    });
                }
                // In cluster mode a write depending on other nodes' keys first has their
                // owners watch them (a NATS round trip), so it is awaited here, not in the
                // command.
                let refused = match db.cluster() {
                    Some(_) => crate::cluster::before_write(db, session, &args).await,
                    None => None,
                };
                written.reset(db.records_changes());
                let (reply, command) = match refused {
                    Some(error) => (error, crate::cmd::command_id(&args[0])),
                    None => dispatch_command(args, &mut Ctx::new(db, session, &mut written)),
                };
                let reply = match session.blocked.take() {
                    None => reply,
                    Some(blocked) => {
                        // Earlier replies go out before the client waits.
                        tokio::select! {
                            r = conn.flush() => r?,
                            _ = overflow.wait() => return over_limit(session.id),
                        }
                        let waited = wait_blocked(
                            blocked,
                            &mut conn,
                            db,
                            session,
                            &mut written,
                            &mut stop,
                            &client,
                            parse,
                            &mut pending,
                        );
                        match waited.await? {
                            Some(reply) => reply,
                            None => break,
                        }
                    }
                };
                let finished = Instant::now();
                session.publish_state_and(|s| {
                    if s.cmd != label {
                        s.cmd.clone_from(&label);
                    }
                    s.last_active = started;
                });
                db.clients().command_processed();
                metrics.command_ran(command, finished.saturating_duration_since(started));
                // CLIENT REPLY OFF or SKIP: the command ran, its reply is dropped.
                if !session.reply_silenced() {
                    conn.queue_frame(&reply, session.protocol);
                }
                last_io = finished;
                if conn.queued() >= FLUSH_AT {
                    tokio::select! {
                        r = conn.flush() => r?,
                        _ = overflow.wait() => return over_limit(session.id),
                    }
                    last_io = Instant::now();
                }
                // A client that killed itself (CLIENT KILL) still gets the reply.
                if session.quit || client.is_killed() {
                    break;
                }
            }
            Request::Closed => break,
            Request::ProtocolError(text) => {
                debug!(
                    id = session.id,
                    text = %String::from_utf8_lossy(&text),
                    "closing client after a protocol error"
                );
                conn.queue_raw_error(&text);
                break;
            }
        }
    }
    conn.shutdown().await
}

/// A blocked client's registration, given up however its wait ends (served, timed out,
/// disconnected, killed, an I/O error), which passes any wake-up on to the next client.
struct Registration<'a> {
    blocking: &'a crate::keyspace::Blocking,
    waiter: Arc<crate::keyspace::Waiter>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.blocking.unregister(&self.waiter);
    }
}

/// Waits for a blocked client (BLPOP, ...) to be served, retrying its command on every
/// wake-up: its reply, or `None` when the connection must close (the client went away, was
/// killed, or the server is stopping). The next request the client sends meanwhile is read (so
/// that a client that disconnects is noticed and never served an element it cannot receive)
/// and kept in `pending`.
#[allow(clippy::too_many_arguments)]
async fn wait_blocked(
    mut blocked: Blocked,
    conn: &mut Connection,
    db: &ServerState,
    session: &mut Session,
    written: &mut Changes,
    stop: &mut watch::Receiver<bool>,
    client: &ClientInfo,
    parse: ParseLimits,
    pending: &mut Option<Request>,
) -> io::Result<Option<Frame>> {
    let waiter = blocked.waiter.clone();
    let _registered = Registration {
        blocking: db.keyspace().blocking(),
        waiter: waiter.clone(),
    };
    let deadline = blocked.deadline;
    // CLIENT UNBLOCK may end the wait from now until it ends, however it ends.
    client.set_blocked(true);
    let _unblockable = Unblockable(client);
    loop {
        tokio::select! {
            error = client.unblocked() => {
                return Ok(Some(if error {
                    Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
                } else {
                    std::mem::replace(&mut blocked.timeout_reply, Frame::Null)
                }));
            }
            _ = waiter.ready() => {
                written.reset(db.records_changes());
                if let Some(reply) = blocked.retry(&mut Ctx::new(db, session, written)) {
                    return Ok(Some(reply));
                }
            }
            _ = sleep_until(deadline) => {
                return Ok(Some(std::mem::replace(&mut blocked.timeout_reply, Frame::Null)));
            }
            _ = stop.changed() => return Ok(None),
            _ = client.killed() => return Ok(None),
            r = conn.read_request(parse), if pending.is_none() => match r? {
                Request::Closed => return Ok(None),
                other => *pending = Some(other),
            },
        }
    }
}

/// Marks a client no longer blocked when its wait ends, however it ends.
struct Unblockable<'a>(&'a ClientInfo);

impl Drop for Unblockable<'_> {
    fn drop(&mut self) {
        self.0.set_blocked(false);
    }
}

/// Logs a client closed for going over its output buffer limit (counted where it happened,
/// in [`crate::pubsub::Pushes::send`]).
fn over_limit(id: u64) -> io::Result<()> {
    warn!(
        id,
        "client closed for overcoming of output buffer limits (client-output-buffer-limit)"
    );
    Ok(())
}

/// The `cmd=` of CLIENT LIST, written over `out`: the lowercase name, with the subcommand for
/// container commands.
fn command_label(out: &mut String, args: &[bytes::Bytes]) {
    // Mostly the same command as the last one: then only a container's label can change.
    if out.as_bytes().eq_ignore_ascii_case(&args[0]) && !matches!(out.as_str(), "client" | "config")
    {
        return;
    }
    out.clear();
    push_lowercase(out, &args[0]);
    match args.get(1) {
        Some(sub) if matches!(out.as_str(), "client" | "config") => {
            out.push('|');
            push_lowercase(out, sub);
        }
        _ => {}
    }
}

/// Appends `bytes` to `out` as `String::from_utf8_lossy(bytes).to_ascii_lowercase()` would.
fn push_lowercase(out: &mut String, bytes: &[u8]) {
    let start = out.len();
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
    out[start..].make_ascii_lowercase();
}

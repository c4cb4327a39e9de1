//! The accept loop: one task per connection, and graceful shutdown.
//!
//! On shutdown the listener stops accepting, each connection finishes the command it is running
//! (a command is never interrupted between its read and its reply), sends what it has buffered
//! and closes; `run` returns once every connection has.
//!
//! Between commands a connection also waits on its pub/sub channel (published messages are
//! written as soon as they arrive) and on its kill switch (`CLIENT KILL` from another client).

use crate::clients::ClientInfo;
use crate::cmd::{Ctx, Session, dispatch};
use crate::connection::{Connection, Request};
use crate::db::Db;
use crate::frame::Frame;
use crate::metrics::Metrics;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Default keyspace budget when the caller gives none: 1 GiB of keys and values.
pub const DEFAULT_CAPACITY_BYTES: u64 = 1 << 30;

/// Serves clients on `listener` with a fresh keyspace of the default capacity until `shutdown`
/// completes.
pub async fn run(listener: TcpListener, shutdown: impl Future) {
    run_with(
        listener,
        Arc::new(Db::new(DEFAULT_CAPACITY_BYTES)),
        shutdown,
    )
    .await;
}

/// [`run`] over a given keyspace.
pub async fn run_with(listener: TcpListener, db: Arc<Db>, shutdown: impl Future) {
    run_with_metrics(listener, db, Arc::new(Metrics::new()), shutdown).await;
}

/// [`run_with`], counting clients and commands in `metrics`.
pub async fn run_with_metrics(
    listener: TcpListener,
    db: Arc<Db>,
    metrics: Arc<Metrics>,
    shutdown: impl Future,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    next_id += 1;
                    debug!(%peer, id = next_id, "client connected");
                    let (db, stop) = (db.clone(), stop_rx.clone());
                    connections.spawn(serve_client(socket, db, metrics.clone(), stop, next_id));
                }
                // Out of file descriptors and the like: the listener itself is fine, so keep
                // going after a pause rather than spinning.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
        "shutting down: waiting for open connections"
    );
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Serves RESP on `listener` and, when `http` is given, the HTTP admin API on it
/// ([`crate::http`]), over one keyspace and one set of metrics, until `shutdown` completes; both
/// then stop accepting and drain, and this returns once both have.
pub async fn run_with_http(
    listener: TcpListener,
    http: Option<TcpListener>,
    db: Arc<Db>,
    shutdown: impl Future,
) {
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let http = http.map(|l| {
        tokio::spawn(crate::http::serve(
            l,
            db.clone(),
            metrics.clone(),
            async move {
                // An error means the sender is gone, which only happens once RESP stopped.
                let _ = stop_rx.wait_for(|stop| *stop).await;
            },
        ))
    });
    run_with_metrics(listener, db, metrics, async {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(task) = http {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "HTTP server failed"),
            Err(e) => warn!(error = %e, "HTTP server task failed"),
        }
    }
}

async fn serve_client(
    socket: TcpStream,
    db: Arc<Db>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
    id: u64,
) {
    let _connected = metrics.client_connected();
    if let Err(e) = client_loop(socket, &db, &metrics, stop, id).await {
        debug!(id, error = %e, "client connection ended with an error");
    }
}

async fn client_loop(
    socket: TcpStream,
    db: &Db,
    metrics: &Metrics,
    stop: watch::Receiver<bool>,
    id: u64,
) -> io::Result<()> {
    let _ = socket.set_nodelay(true);
    let unknown = || std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let addr = socket.peer_addr().unwrap_or_else(|_| unknown());
    let laddr = socket.local_addr().unwrap_or_else(|_| unknown());
    #[cfg(unix)]
    let fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(&socket));
    #[cfg(not(unix))]
    let fd = -1;
    let info = Arc::new(ClientInfo::new(id, addr, laddr, fd));
    db.clients().register(info.clone());
    let conn = Connection::new(socket);
    let (pushes, push_rx) = mpsc::unbounded_channel();
    let mut session = Session::new(info, pushes);
    let result = serve_requests(conn, db, metrics, stop, &mut session, push_rx).await;
    // However the connection ended, publishers and CLIENT LIST must stop finding it.
    session.leave_pubsub(db);
    db.clients().unregister(id);
    result
}

/// What the connection loop woke up for.
enum Event {
    Request(Request),
    Push(Frame),
    Stop,
}

async fn serve_requests(
    mut conn: Connection,
    db: &Db,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
    session: &mut Session,
    mut push_rx: mpsc::UnboundedReceiver<Frame>,
) -> io::Result<()> {
    let client = session.client.clone();
    loop {
        if *stop.borrow() || client.is_killed() {
            break;
        }
        // Reading a request is cancel-safe (bytes read stay in the connection's buffer), so a
        // published message can interrupt the wait and go out at once. Pushes are checked
        // first: a message published before a command arrived goes out before its reply.
        let event = tokio::select! {
            biased;
            Some(frame) = push_rx.recv() => Event::Push(frame),
            r = conn.read_request() => Event::Request(r?),
            _ = stop.changed() => Event::Stop,
            _ = client.killed() => Event::Stop,
        };
        let request = match event {
            Event::Request(request) => {
                // Reading may have waited (flushing earlier replies) after the channel was
                // checked: messages that arrived meanwhile still precede this command's reply.
                while let Ok(frame) = push_rx.try_recv() {
                    conn.write_frame(&frame, session.protocol).await?;
                }
                request
            }
            Event::Push(frame) => {
                conn.write_frame(&frame, session.protocol).await?;
                // Write whatever else is already queued in one go, then send it.
                while let Ok(frame) = push_rx.try_recv() {
                    conn.write_frame(&frame, session.protocol).await?;
                }
                conn.flush().await?;
                continue;
            }
            Event::Stop => break,
        };
        match request {
            Request::Command(args) => {
                // Timed here rather than in the dispatcher: the same span, kept out of the
                // command table's code. A cheap clone (a reference count) of the name.
                let name = args.first().cloned().unwrap_or_default();
                let started = Instant::now();
                client.update(|s| {
                    s.cmd = command_label(&args);
                    s.last_active = started;
                });
                let reply = dispatch(args, &mut Ctx { db, session });
                session.publish_state();
                db.clients().command_processed();
                metrics.command(&name, &reply, started.elapsed());
                conn.write_frame(&reply, session.protocol).await?;
                // A client that killed itself (CLIENT KILL) still gets the reply.
                if session.quit || client.is_killed() {
                    break;
                }
            }
            Request::Closed => break,
            Request::ProtocolError(text) => {
                debug!(id = session.id, %text, "closing client after a protocol error");
                conn.write_frame(&Frame::error(format!("ERR {text}")), session.protocol)
                    .await?;
                break;
            }
        }
    }
    conn.flush().await
}

/// The `cmd=` of CLIENT LIST: the lowercase name, with the subcommand for container commands.
fn command_label(args: &[bytes::Bytes]) -> String {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    match args.get(1) {
        Some(sub) if matches!(name.as_str(), "client" | "config") => {
            format!(
                "{name}|{}",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            )
        }
        _ => name,
    }
}

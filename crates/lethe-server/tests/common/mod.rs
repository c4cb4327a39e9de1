//! Test support: Lethe in-process on an ephemeral port, a real `redis-server` for differential
//! tests, and a blocking client that sends raw RESP and reads one raw reply at a time.

#![allow(dead_code)] // each test binary uses part of this module

pub mod differential;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lethe running in-process; shut down (gracefully) and joined on drop.
pub struct Lethe {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Lethe {
    pub fn start() -> Lethe {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Lethe::serve(listener, |listener, stopped| {
            Box::pin(lethe_server::run(listener, async {
                let _ = stopped.await;
            }))
        })
    }

    /// Lethe over a given keyspace, shared with the test (which may feed it directly).
    pub fn start_over(db: std::sync::Arc<lethe_server::state::ServerState>) -> Lethe {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Lethe::serve(listener, move |listener, stopped| {
            Box::pin(lethe_server::run_with(listener, db, async {
                let _ = stopped.await;
            }))
        })
    }

    /// Lethe on `addr` (port 0 for any) with the given limits and keyspace capacity.
    pub fn start_with(
        addr: &str,
        limits: std::sync::Arc<lethe_server::limits::Limits>,
        capacity: u64,
    ) -> Lethe {
        let listener = TcpListener::bind(addr).unwrap();
        Lethe::serve(listener, move |listener, stopped| {
            let db = std::sync::Arc::new(lethe_server::state::ServerState::new(capacity));
            Box::pin(
                lethe_server::Server::builder(listener)
                    .db(db)
                    .limits(limits)
                    .build()
                    .run(async {
                        let _ = stopped.await;
                    }),
            )
        })
    }

    /// Lethe as `build` configures it on `listener` (bound by the test, so it knows the port
    /// before the server runs: a cluster's slot map names it).
    pub fn start_built(
        listener: TcpListener,
        build: impl FnOnce(tokio::net::TcpListener) -> lethe_server::Server + Send + 'static,
    ) -> Lethe {
        Lethe::serve(listener, move |listener, stopped| {
            Box::pin(build(listener).run(async {
                let _ = stopped.await;
            }))
        })
    }

    fn serve(
        listener: TcpListener,
        run: impl FnOnce(
            tokio::net::TcpListener,
            tokio::sync::oneshot::Receiver<()>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        + Send
        + 'static,
    ) -> Lethe {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                run(listener, stopped).await;
            });
        });
        Lethe {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Triggers shutdown and waits for `run` to return.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Lethe {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A real Redis on a free port, killed on drop (also when the test panics).
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    /// Starts `/usr/bin/redis-server` on a free loopback port. A missing redis-server fails
    /// the test with a clear message (scripts/test-all installs it): a differential test must
    /// never pass without its reference. Always `Some`.
    pub fn start() -> Option<Redis> {
        Redis::start_with(&[])
    }

    /// [`Redis::start`] with extra command-line arguments.
    pub fn start_with(extra: &[&str]) -> Option<Redis> {
        let bin = "/usr/bin/redis-server";
        assert!(
            std::path::Path::new(bin).exists(),
            "redis-server is not installed at {bin}: the differential tests need it \
             (scripts/test-all installs it from Debian's packages)"
        );
        // The port is free when picked but not held, so another test's server may take it
        // first: a redis-server that cannot bind exits, and one answering on our port must be
        // ours (its process id), or a neighbour's ending would reset our connection.
        for _ in 0..8 {
            let port = loop {
                let p = TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                if p != 6379 {
                    break p;
                }
            };
            let child = Command::new(bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut redis = Redis { port, child };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = redis.child.try_wait() {
                    break; // could not bind: try another port
                }
                if probe_pid(port) == Some(redis.child.id()) {
                    return Some(redis);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start on a free port in 8 tries");
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }
}

/// The process id of the Redis answering on `port`, if one answers; errors mean "not yet".
fn probe_pid(port: u16) -> Option<u32> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut w = s.try_clone().ok()?;
    w.write_all(&encode(&["INFO", "server"])).ok()?;
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).ok()?;
    let len: usize = head.strip_prefix('$')?.trim().parse().ok()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking RESP client that returns raw reply bytes.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::from_stream(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    /// Connects to `ip:port` (a non-loopback address, for protected mode).
    pub fn connect_to(ip: std::net::IpAddr, port: u16) -> Client {
        Client::from_stream(TcpStream::connect((ip, port)).unwrap())
    }

    /// Reads whatever the server sends until it closes the connection, and returns it; panics
    /// if the connection stays open past the read timeout (so a passing test proves a close).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.reader.read_to_end(&mut out) {
            Ok(_) => out,
            Err(e) => panic!("connection not closed ({e}); read so far: {out:?}"),
        }
    }

    /// Sets how long reads wait before failing.
    pub fn set_read_timeout(&mut self, d: Duration) {
        self.writer.set_read_timeout(Some(d)).unwrap();
    }

    /// Wraps a stream the test already wrote to.
    pub fn from_tcp(s: TcpStream) -> Client {
        Client::from_stream(s)
    }

    fn from_stream(s: TcpStream) -> Client {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    /// Whether a reply (or any byte) arrives within `d`, without consuming it; the read
    /// timeout goes back to 5 s after.
    #[allow(dead_code)] // not every test binary uses it
    pub fn replies_within(&mut self, d: Duration) -> bool {
        self.set_read_timeout(d);
        let got = matches!(self.reader.fill_buf(), Ok(b) if !b.is_empty());
        self.set_read_timeout(Duration::from_secs(5));
        got
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends a command as a multibulk request and returns its raw reply.
    pub fn raw(&mut self, args: &[&str]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply()
    }

    /// Like [`Self::raw`], as a string for readable assertions.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.raw(args)).into_owned()
    }

    /// Reads exactly one reply (nested aggregates included).
    pub fn read_reply(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_one(&mut out);
        out
    }

    /// True when the server closed the connection (reads end of stream).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    fn read_one(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        let n = self.reader.read_until(b'\n', out).unwrap();
        assert!(n > 0, "connection closed while reading a reply");
        let line = String::from_utf8_lossy(&out[start + 1..out.len() - 2]).into_owned();
        match out[start] {
            b'$' | b'=' | b'!' => {
                let len: i64 = line.parse().unwrap();
                if len >= 0 {
                    let mut body = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut body).unwrap();
                    out.extend_from_slice(&body);
                }
            }
            b'*' | b'~' | b'>' | b'%' => {
                let len: i64 = line.parse().unwrap();
                let items = if out[start] == b'%' { len * 2 } else { len };
                for _ in 0..items.max(0) {
                    self.read_one(out);
                }
            }
            _ => {}
        }
    }
}

/// A command as a RESP multibulk request.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where a `lethe serve` child listens, read from the lines it prints at start.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The RESP port.
    pub port: u16,
    /// The HTTP admin port, when one was asked for.
    pub http_port: Option<u16>,
}

/// Spawns `cmd` (a `lethe serve` with `--port 0`, and `--http-port 0` when `http`) with its
/// stdout piped, and reads where it listens from what it prints. Port 0 lets the OS pick a
/// port the server holds from the start: no other test can take it in between, as it could
/// a port picked free and then passed. Panics (with the child killed) if it exits first.
pub fn spawn_listening(cmd: &mut Command, http: bool) -> (Child, Listening) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn lethe serve");
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let port_after = |line: &str, marker: &str| -> Option<u16> {
        let rest = &line[line.find(marker)? + marker.len()..];
        let addr = rest.split_whitespace().next()?;
        addr.rsplit(':').next()?.trim_end_matches(')').parse().ok()
    };
    let mut listening = Listening {
        port: 0,
        http_port: None,
    };
    // Bounded: the server prints a handful of lines at start, and EOF ends the loop.
    for _ in 0..32 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let status = child.wait();
            panic!("lethe serve exited before it listened ({status:?})");
        }
        if let Some(p) = port_after(&line, "listening on ") {
            listening.port = p;
        }
        if let Some(p) = port_after(&line, "HTTP admin API on ") {
            listening.http_port = Some(p);
        }
        if listening.port != 0 && (!http || listening.http_port.is_some()) {
            // Keep draining stdout so later lines never block the server on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return (child, listening);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("lethe serve did not say where it listens");
}

/// A loopback port that was free a moment ago, for the tests whose subject is the port
/// setting itself (flags, environment, config file). It is not held, so another process may
/// take it before the server binds it; everywhere else a server is started on port 0
/// ([`spawn_listening`], [`Lethe::start`]) or retried on another port ([`Redis::start`]).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

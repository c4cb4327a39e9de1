//! A private `redis-server` for the suites that compare against Redis.
//!
//! The harness starts its own server on a free loopback port (never 6379, so a Redis the user
//! runs is never touched), with persistence off, and kills it when the [`RedisServer`] guard is
//! dropped, which also happens when a suite panics. Nothing is written to disk.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for a started server to answer `PING`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports to try, in case another process takes the free port between our probe and the bind.
const ATTEMPTS: usize = 3;

/// A server process the harness started, with a client for it: what `redis-server` and
/// `lethe serve` have in common. Each owner decides how to stop it.
#[derive(Debug)]
pub struct ServerProcess {
    pub child: Child,
    port: u16,
    client: redis::Client,
    name: &'static str,
}

impl ServerProcess {
    /// Runs `make(port)` on a free port (retrying on another port if it fails) and waits until
    /// the server answers `PING`. Output is discarded; the child is killed on every error path.
    pub fn start(
        name: &'static str,
        mut make: impl FnMut(u16) -> Command,
    ) -> Result<ServerProcess, String> {
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            let mut cmd = make(port);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("could not run {name}: {e}"))?;
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .map_err(|e| format!("bad {name} address: {e}"))?;
            let mut server = ServerProcess {
                child,
                port,
                client,
                name,
            };
            match wait_for_ping(&mut server.child, &server.client, name, port) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let _ = server.child.kill();
                    let _ = server.child.wait();
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, for reading its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new synchronous connection.
    pub fn connection(&self) -> redis::Connection {
        self.client
            .get_connection()
            .unwrap_or_else(|e| panic!("cannot connect to {} on {}: {e}", self.name, self.port))
    }
}

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`. The error says why it could not be
    /// started (binary missing, never answered, ...), for the suite to report and skip.
    pub fn start() -> Result<Self, String> {
        let binary = find_binary().ok_or_else(|| {
            "redis-server not found (looked for /usr/bin/redis-server and on PATH); install it \
             with `apt-get install redis-server`"
                .to_string()
        })?;
        let process = ServerProcess::start("redis-server", |port| {
            let mut cmd = Command::new(&binary);
            cmd.args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .args(["--daemonize", "no"]);
            cmd
        })?;
        Ok(RedisServer { process })
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The server's process id, for reading its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A new synchronous connection.
    pub fn connection(&self) -> redis::Connection {
        self.process.connection()
    }

    /// The server's version string, for the report.
    pub fn version(&self) -> String {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query(&mut self.connection())
            .unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map_or_else(|| "unknown".into(), |v| v.trim().to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }
}

fn find_binary() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/redis-server");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// Waits (at most [`STARTUP_TIMEOUT`]) until the server `child` answers `PING` through
/// `client`. `name` names the server in the error.
fn wait_for_ping(
    child: &mut Child,
    client: &redis::Client,
    name: &str,
    port: u16,
) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{name} exited during startup on port {port} ({status})"
            ));
        }
        let pong = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        match pong {
            Ok(p) if p == "PONG" => return Ok(()),
            Ok(p) => return Err(format!("{name} answered PING with {p:?}")),
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(format!(
                    "{name} on port {port} did not answer PING within {} s: {e}",
                    STARTUP_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// A loopback port that was free a moment ago (the OS picks it), never 6379 (Redis's default)
/// or 6380 (Lethe's), so a server the user runs is never touched.
fn free_port() -> Result<u16, String> {
    for _ in 0..16 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free loopback port: {e}"))?
            .port();
        if port != 6379 && port != 6380 {
            return Ok(port);
        }
    }
    Err("the OS kept offering port 6379 or 6380".into())
}

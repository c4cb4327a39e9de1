//! A private `lethe serve` for the suites that drive Lethe's server over the network.
//!
//! Like [`crate::redis_server`]: the server listens on a free loopback port (never 6379 or
//! 6380), and the [`LetheServer`] guard stops it when dropped, which also happens when a suite
//! panics: SIGTERM first (the server exits gracefully on it), SIGKILL if it has not exited
//! within [`STOP_TIMEOUT`].
//!
//! Which binary: the suite runs `cargo build --release -p lethe-server` with the target
//! directory of the running `lethe-bench` executable (the parent of the directory holding
//! `std::env::current_exe()`), then runs `<target dir>/release/lethe`. Building every time
//! (a no-op when nothing changed) means the server measured is always the one in the working
//! tree, never a stale binary; and it is always a release build, even when `lethe-bench`
//! itself is not. When cargo cannot be run but the binary exists, it is used with a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::ServerProcess;
use crate::report::workspace_root;

/// How long a stopped server gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `lethe serve`, stopped on drop.
#[derive(Debug)]
pub struct LetheServer {
    process: ServerProcess,
}

impl LetheServer {
    /// Starts `binary serve` with a keyspace budget of `max_memory` bytes and waits until it
    /// answers `PING`.
    pub fn start(binary: &Path, max_memory: u64) -> Result<Self, String> {
        LetheServer::start_with(binary, max_memory, &[])
    }

    /// [`LetheServer::start`] with more `serve` arguments (e.g. `--cdc FILE`).
    pub fn start_with(
        binary: &Path,
        max_memory: u64,
        extra: &[std::ffi::OsString],
    ) -> Result<Self, String> {
        let process = ServerProcess::start("lethe serve", |port| {
            let mut cmd = Command::new(binary);
            cmd.arg("serve")
                .args(["--bind", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--max-memory", &max_memory.to_string()])
                .args(extra);
            // Settings the user's environment might carry must not leak into the measurement.
            for var in [
                "LETHE_CONFIG",
                "LETHE_HTTP_PORT",
                "LETHE_BIND",
                "LETHE_PORT",
                "LETHE_MAX_MEMORY",
                "LETHE_LOG",
            ] {
                cmd.env_remove(var);
            }
            cmd
        })?;
        Ok(LetheServer { process })
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
}

impl Drop for LetheServer {
    fn drop(&mut self) {
        // No libc in this crate: `kill(1)` sends the SIGTERM.
        let child = &mut self.process.child;
        let termed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Builds (if needed) and locates the release `lethe` binary; see the module documentation.
pub fn binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate lethe-bench: {e}"))?;
    let mut dir = exe
        .parent()
        .ok_or("lethe-bench has no parent directory")?
        .to_path_buf();
    // Test binaries live in `<target>/<profile>/deps`.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let target_dir = dir
        .parent()
        .ok_or("lethe-bench is not inside a cargo target directory")?
        .to_path_buf();
    let bin = target_dir.join("release").join("lethe");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    say!(
        "[server] building lethe-server (release) into {}",
        target_dir.display()
    );
    let built = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", "lethe-server"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(workspace_root())
        // Cargo's progress goes to stderr with the rest of the human output; stdout stays JSON.
        .stdout(Stdio::null())
        .status();
    match built {
        Ok(s) if s.success() => Ok(bin),
        outcome if bin.is_file() => {
            let why = match outcome {
                Ok(s) => format!("exited with {s}"),
                Err(e) => e.to_string(),
            };
            say!(
                "[server] warning: `cargo build --release -p lethe-server` failed ({why}); using \
                 the existing {}, which may be stale",
                bin.display()
            );
            Ok(bin)
        }
        Ok(s) => Err(format!(
            "`cargo build --release -p lethe-server` exited with {s}"
        )),
        Err(e) => Err(format!("cannot run cargo to build lethe-server: {e}")),
    }
}

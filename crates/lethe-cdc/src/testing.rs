//! Test support (feature `testing`): a throwaway PostgreSQL cluster configured for logical
//! replication, started from the installed server binaries, for integration tests, fault tests
//! and benchmarks.
//!
//! Each [`PgCluster`] lives in its own temporary directory (data, socket, log), listens only on
//! 127.0.0.1 on a free port, trusts every local connection including replication ones, and is
//! stopped and removed on drop. When the process runs as root, the server commands run as the
//! `postgres` OS user, since PostgreSQL refuses to run as root.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Settings of a cluster to start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PgOptions {
    /// `wal_level` (`logical` unless a test checks the error for another value).
    pub wal_level: String,
    /// `max_replication_slots`.
    pub max_replication_slots: u32,
    /// `max_wal_senders`.
    pub max_wal_senders: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            wal_level: "logical".into(),
            max_replication_slots: 10,
            max_wal_senders: 10,
        }
    }
}

impl PgOptions {
    /// Sets `wal_level`.
    pub fn wal_level(mut self, level: &str) -> Self {
        self.wal_level = level.into();
        self
    }
}

/// A running (or stopped) PostgreSQL cluster in a temporary directory.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    running: bool,
    as_postgres: bool,
}

/// The newest installed server's `bin` directory (`/usr/lib/postgresql/<version>/bin`).
pub fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn free_port() -> u16 {
    // Binding port 0 lets the OS pick a free port; the small window before PostgreSQL binds it
    // is acceptable for tests.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// Initializes and starts a cluster with default options. Panics with the server's log
    /// when anything fails: this is test support.
    pub fn start() -> PgCluster {
        PgCluster::start_with(PgOptions::default())
    }

    /// Initializes and starts a cluster with `options`.
    pub fn start_with(options: PgOptions) -> PgCluster {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let bin = find_bin().expect("no PostgreSQL server under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!(
            "lethe-cdc-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create cluster directory");
        let as_postgres = is_root();
        let mut cluster = PgCluster {
            bin,
            dir,
            port: free_port(),
            running: false,
            as_postgres,
        };
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let data = cluster.data_dir();
        cluster.run_ok(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             wal_level = {}\nmax_replication_slots = {}\nmax_wal_senders = {}\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = 16MB\n\
             wal_sender_timeout = 60s\n",
            cluster.port,
            cluster.dir.display(),
            options.wal_level,
            options.max_replication_slots,
            options.max_wal_senders
        );
        append(&data.join("postgresql.conf"), &conf);
        append(
            &data.join("pg_hba.conf"),
            "\nlocal all all trust\nlocal replication all trust\n\
             host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n",
        );
        // The port was free when picked, not held: another test's server may have taken it.
        // A later `port =` line overrides the earlier one, so a conflict is retried elsewhere.
        for _ in 0..8 {
            if cluster.try_start_server() {
                return cluster;
            }
            if !cluster.log().contains("could not bind") {
                break;
            }
            cluster.port = free_port();
            append(
                &data.join("postgresql.conf"),
                &format!("\nport = {}\n", cluster.port),
            );
        }
        panic!("PostgreSQL did not start:\n{}", cluster.log());
    }

    /// Starts the server; false (with the reason in its log) when it did not start.
    fn try_start_server(&mut self) -> bool {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let ok = self
            .command("pg_ctl")
            .args([
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-t",
                "60",
                "start",
            ])
            .current_dir(&self.dir)
            .output()
            .is_ok_and(|o| o.status.success());
        self.running = ok;
        ok
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for the `postgres` superuser and database over TCP.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5",
            self.port
        )
    }

    /// A SQL client (its connection runs on a spawned task).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) =
            tokio_postgres::connect(&self.connection_string(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test cluster");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// Stops the server (`-m fast`: disconnects clients, clean shutdown).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data_dir();
            self.run_ok("pg_ctl", &["-D", path(&data), "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    /// Kills the server the way a crash would (`-m immediate`: no shutdown checkpoint, so
    /// recovery runs at the next start and slots come back at their last saved position).
    pub fn crash(&mut self) {
        if self.running {
            let data = self.data_dir();
            self.run_ok(
                "pg_ctl",
                &["-D", path(&data), "-m", "immediate", "-w", "stop"],
            );
            self.running = false;
        }
    }

    /// Starts a stopped server on the same port.
    pub fn start_server(&mut self) {
        if !self.running {
            let data = self.data_dir();
            let log = self.dir.join("server.log");
            self.run_ok(
                "pg_ctl",
                &[
                    "-D",
                    path(&data),
                    "-l",
                    path(&log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            self.running = true;
        }
    }

    /// Puts `lines` at the top of `pg_hba.conf` (first match wins, so they override the
    /// trust-everything defaults) and reloads the server.
    pub fn hba_first(&self, lines: &str) {
        let file = self.data_dir().join("pg_hba.conf");
        let old = std::fs::read_to_string(&file).expect("read pg_hba.conf");
        std::fs::write(&file, format!("{lines}\n{old}")).expect("write pg_hba.conf");
        if self.running {
            let data = self.data_dir();
            self.run_ok("pg_ctl", &["-D", path(&data), "reload"]);
        }
    }

    /// Stops and starts the server.
    pub fn restart(&mut self) {
        self.stop();
        self.start_server();
    }

    /// The server log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

/// A synchronous standby that only receives WAL (`pg_receivewal --synchronous`), named
/// `application_name` in `synchronous_standby_names`. While it is [paused](SyncStandby::pause),
/// commits on the primary wait after flushing their WAL, invisible to other sessions, while
/// logical decoding already streams them: the situation a slow synchronous replica creates in
/// production, made deterministic. Killed on drop.
#[derive(Debug)]
pub struct SyncStandby {
    child: std::process::Child,
    dir: PathBuf,
    paused: bool,
}

impl SyncStandby {
    /// Whether the receiver is stopped now.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stops the receiver (SIGSTOP): it acknowledges nothing until [`SyncStandby::resume`].
    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = true;
    }

    /// Lets the receiver run again (SIGCONT); waiting commits complete.
    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
    }

    fn signal(&self, which: &str) {
        let status = Command::new("kill")
            .arg(which)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {which} of pg_receivewal failed");
    }
}

impl Drop for SyncStandby {
    fn drop(&mut self) {
        if self.paused {
            self.signal("-CONT");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl PgCluster {
    /// Starts a [`SyncStandby`] and makes it the synchronous standby (`synchronous_standby_names`,
    /// reloaded), waiting until the primary reports it `sync`. From then on every commit waits
    /// for it.
    pub async fn sync_standby(&self) -> SyncStandby {
        const NAME: &str = "lethe_sync_standby";
        let dir = self.dir.join("receivewal");
        std::fs::create_dir_all(&dir).expect("create the receiver's directory");
        let child = Command::new(self.bin.join("pg_receivewal"))
            .arg("-d")
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres application_name={NAME}",
                self.port
            ))
            .arg("-D")
            .arg(&dir)
            .args(["--synchronous", "--no-loop", "-s", "1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pg_receivewal");
        let standby = SyncStandby {
            child,
            dir,
            paused: false,
        };
        let sql = self.client().await;
        // One statement per call: ALTER SYSTEM refuses to run in a multi-statement batch.
        for stmt in [
            format!("ALTER SYSTEM SET synchronous_standby_names = '{NAME}'"),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            sql.batch_execute(&stmt)
                .await
                .expect("set synchronous_standby_names");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = sql
                .query_opt(
                    "SELECT 1 FROM pg_stat_replication WHERE application_name = $1 \
                     AND sync_state = 'sync'",
                    &[&NAME],
                )
                .await
                .expect("read pg_stat_replication");
            if row.is_some() {
                return standby;
            }
            assert!(
                Instant::now() < deadline,
                "pg_receivewal never became the synchronous standby; server log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops waiting for a synchronous standby (commits complete at once again).
    pub async fn no_sync_standby(&self) {
        let sql = self.client().await;
        for stmt in [
            "ALTER SYSTEM RESET synchronous_standby_names",
            "SELECT pg_reload_conf()",
        ] {
            sql.batch_execute(stmt)
                .await
                .expect("reset synchronous_standby_names");
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self
                .command("pg_ctl")
                .args(["-D", path(&data), "-m", "fast", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
    f.write_all(text.as_bytes())
        .expect("append to configuration");
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

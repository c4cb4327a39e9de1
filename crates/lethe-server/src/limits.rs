//! The server's runtime limits and safety settings, shared by the accept loop, every connection
//! and CONFIG GET/SET: `requirepass`, `protected-mode`, `maxclients`, `timeout`,
//! `proto-max-bulk-len` and `client-output-buffer-limit`, with Redis's defaults, value syntax
//! (`512mb`, `pubsub 32mb 8mb 60`) and CONFIG SET error texts. Also the counters INFO shows for
//! them (`rejected_connections`, `client_output_buffer_limit_disconnections`).
//!
//! Settings are read on every check (atomics, or a short lock for the password and the buffer
//! limits), so a CONFIG SET takes effect for connected clients at once, as in Redis; idle
//! connections wait on [`Limits::changes`] to pick up a new `timeout`.

use bytes::Bytes;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio::sync::watch;

/// Redis's default `maxclients`.
pub const DEFAULT_MAX_CLIENTS: u64 = 10_000;
/// Redis's default `proto-max-bulk-len`: 512 MiB.
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// Redis's default `client-output-buffer-limit`.
pub const DEFAULT_OUTPUT_BUFFER_LIMIT: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub \
                                               33554432 8388608 60";

/// The classes `client-output-buffer-limit` configures. Lethe has no replicas, but the
/// `slave` class is kept so the setting reads and writes as Redis's does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientClass {
    /// Every client that is not subscribed.
    Normal,
    /// Replicas (none in Lethe).
    Replica,
    /// Clients with channel or pattern subscriptions.
    PubSub,
}

const CLASS_NAMES: [&str; 3] = ["normal", "slave", "pubsub"];

/// One class's output buffer limit: disconnect above `hard` bytes at once, or above `soft`
/// bytes for more than `soft_seconds`; 0 disables either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimit {
    /// Bytes above which the client is disconnected at once.
    pub hard: u64,
    /// Bytes above which the client is disconnected after `soft_seconds`.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_seconds: u64,
}

/// The shared, runtime-changeable limits, plus their counters.
#[derive(Debug)]
pub struct Limits {
    requirepass: RwLock<Option<Bytes>>,
    protected_mode: AtomicBool,
    max_clients: AtomicU64,
    timeout: AtomicU64,
    proto_max_bulk_len: AtomicU64,
    output_buffer: RwLock<[OutputBufferLimit; 3]>,
    connected: AtomicUsize,
    rejected: AtomicU64,
    output_buffer_disconnections: AtomicU64,
    changes: watch::Sender<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        let limits = Limits {
            requirepass: RwLock::new(None),
            protected_mode: AtomicBool::new(true),
            max_clients: AtomicU64::new(DEFAULT_MAX_CLIENTS),
            timeout: AtomicU64::new(0),
            proto_max_bulk_len: AtomicU64::new(DEFAULT_PROTO_MAX_BULK_LEN),
            output_buffer: RwLock::new(
                [OutputBufferLimit {
                    hard: 0,
                    soft: 0,
                    soft_seconds: 0,
                }; 3],
            ),
            connected: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            output_buffer_disconnections: AtomicU64::new(0),
            changes: watch::channel(0).0,
        };
        limits
            .set_output_buffer_limits(DEFAULT_OUTPUT_BUFFER_LIMIT)
            .expect("the default output buffer limits parse");
        limits
    }
}

/// The CONFIG names and values Lethe's limits have, in CONFIG GET's order.
pub const CONFIG_NAMES: [&str; 6] = [
    "requirepass",
    "protected-mode",
    "maxclients",
    "timeout",
    "proto-max-bulk-len",
    "client-output-buffer-limit",
];

impl Limits {
    /// Default limits (Redis's defaults).
    pub fn new() -> Limits {
        Limits::default()
    }

    /// The password every client must give with AUTH, if any.
    pub fn requirepass(&self) -> Option<Bytes> {
        self.requirepass.read().clone()
    }

    /// Sets or (with an empty password, as in Redis) clears the password.
    pub fn set_requirepass(&self, pass: &[u8]) {
        *self.requirepass.write() = (!pass.is_empty()).then(|| Bytes::copy_from_slice(pass));
    }

    /// Whether non-loopback clients are refused while no password is set.
    pub fn protected_mode(&self) -> bool {
        self.protected_mode.load(Ordering::Relaxed)
    }

    /// Changes protected mode.
    pub fn set_protected_mode(&self, on: bool) {
        self.protected_mode.store(on, Ordering::Relaxed);
    }

    /// Most clients connected at once.
    pub fn max_clients(&self) -> u64 {
        self.max_clients.load(Ordering::Relaxed)
    }

    /// Changes `maxclients` (at least 1).
    pub fn set_max_clients(&self, n: u64) {
        self.max_clients.store(n.max(1), Ordering::Relaxed);
    }

    /// Idle seconds after which a (non pub/sub) client is closed; 0 never.
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    /// Changes `timeout` and wakes idle connections to re-arm their timers.
    pub fn set_timeout(&self, secs: u64) {
        self.timeout.store(secs, Ordering::Relaxed);
        self.changes.send_modify(|v| *v += 1);
    }

    /// Largest bulk string a request may carry.
    pub fn proto_max_bulk_len(&self) -> u64 {
        self.proto_max_bulk_len.load(Ordering::Relaxed)
    }

    /// Changes `proto-max-bulk-len`.
    pub fn set_proto_max_bulk_len(&self, n: u64) {
        self.proto_max_bulk_len.store(n, Ordering::Relaxed);
    }

    /// The output buffer limit of `class`.
    pub fn output_buffer_limit(&self, class: ClientClass) -> OutputBufferLimit {
        self.output_buffer.read()[class as usize]
    }

    /// Sets limits from Redis's syntax, `class hard soft seconds` repeated (`pubsub 32mb 8mb
    /// 60`); classes not named keep theirs. On error nothing changes and the text is Redis's.
    pub fn set_output_buffer_limits(&self, text: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        if words.len() % 4 != 0 {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut new = *self.output_buffer.read();
        for w in words.chunks(4) {
            let class = match w[0].to_ascii_lowercase().as_str() {
                "normal" => ClientClass::Normal,
                "slave" | "replica" => ClientClass::Replica,
                "pubsub" => ClientClass::PubSub,
                _ => return Err("Invalid client class specified in buffer limit configuration."),
            };
            let bad = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let hard = parse_memory(w[1]).ok_or(bad)?;
            let soft = parse_memory(w[2]).ok_or(bad)?;
            let soft_seconds = w[3].parse::<u64>().map_err(|_| bad)?;
            new[class as usize] = OutputBufferLimit {
                hard,
                soft,
                soft_seconds,
            };
        }
        *self.output_buffer.write() = new;
        Ok(())
    }

    /// `client-output-buffer-limit` as CONFIG GET shows it.
    pub fn output_buffer_limits_text(&self) -> String {
        let limits = self.output_buffer.read();
        CLASS_NAMES
            .iter()
            .zip(limits.iter())
            .map(|(n, l)| format!("{n} {} {} {}", l.hard, l.soft, l.soft_seconds))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A receiver that changes whenever a setting connections wait on (`timeout`) does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Counts a connection in; the guard counts it out when dropped.
    pub fn connection(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.connected.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Connections open now (including those being refused).
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Counts a connection refused (maxclients, protected mode).
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections refused since start (INFO `rejected_connections`).
    pub fn rejected_connections(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Counts a client closed for exceeding its output buffer limit.
    pub fn output_buffer_disconnection(&self) {
        self.output_buffer_disconnections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Clients closed for exceeding their output buffer limit since start.
    pub fn output_buffer_disconnections(&self) -> u64 {
        self.output_buffer_disconnections.load(Ordering::Relaxed)
    }

    /// The value CONFIG GET shows for `name` (one of [`CONFIG_NAMES`]).
    pub fn config_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "requirepass" => self
                .requirepass()
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default(),
            "protected-mode" => if self.protected_mode() { "yes" } else { "no" }.into(),
            "maxclients" => self.max_clients().to_string(),
            "timeout" => self.timeout().to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len().to_string(),
            "client-output-buffer-limit" => self.output_buffer_limits_text(),
            _ => return None,
        })
    }

    /// CONFIG SET of one of [`CONFIG_NAMES`]; the error is the text after Redis's
    /// `CONFIG SET failed (possibly related to argument '...') - `.
    pub fn config_set(&self, name: &str, value: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(value);
        let int = |min: u64, max: u64| -> Result<u64, String> {
            let n: i128 = text
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if n < i128::from(min) || n > i128::from(max) {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(n as u64)
        };
        match name {
            "requirepass" => self.set_requirepass(value),
            "protected-mode" => match text.to_ascii_lowercase().as_str() {
                "yes" => self.set_protected_mode(true),
                "no" => self.set_protected_mode(false),
                _ => return Err("argument must be 'yes' or 'no'".into()),
            },
            "maxclients" => self.set_max_clients(int(1, u64::from(u32::MAX))?),
            "timeout" => self.set_timeout(int(0, i32::MAX as u64)?),
            "proto-max-bulk-len" => {
                let n = parse_memory(&text)
                    .ok_or_else(|| "argument must be a memory value".to_string())?;
                if n < 1024 * 1024 || n > i64::MAX as u64 {
                    return Err(format!(
                        "argument must be between 1048576 and {} inclusive",
                        i64::MAX
                    ));
                }
                self.set_proto_max_bulk_len(n);
            }
            "client-output-buffer-limit" => self.set_output_buffer_limits(&text)?,
            _ => return Err("Unknown option".into()),
        }
        Ok(())
    }
}

/// Holds one connection's place in [`Limits::connected`].
#[derive(Debug)]
pub struct ConnectionGuard(std::sync::Arc<Limits>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Redis's memory values: digits with an optional unit, `b`, `k` (1000), `kb` (1024), `m`,
/// `mb`, `g`, `gb`, any case.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

/// Redis's protected-mode refusal, sent to a non-loopback client while no password is set.
pub const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is \
enabled and no password is set for the default user. In this mode connections are only accepted \
from the loopback interface. If you want to connect from external computers to Redis you may \
adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG \
SET protected-mode no' from the loopback interface by connecting to Redis from the same host the \
server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. \
Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the \
protected mode by editing the Redis configuration file, and setting the protected mode option to \
'no', and then restarting the server. 3) If you started the server manually just for testing, \
restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the \
default user. NOTE: You only need to do one of the above things in order for the server to start \
accepting connections from the outside.\r\n";

/// Whether protected mode refuses a client from `peer` under `limits`.
pub fn protected_refuses(limits: &Limits, peer: std::net::IpAddr) -> bool {
    limits.protected_mode() && limits.requirepass().is_none() && !peer.to_canonical().is_loopback()
}

/// Whether invalidating by `prefix` would remove every key (the empty prefix). Such a purge
/// must be asked for explicitly (FLUSHALL, or `"all": true` over HTTP): a prefix built from an
/// empty variable must not silently empty the cache.
pub fn prefix_matches_everything(prefix: &[u8]) -> bool {
    prefix.is_empty()
}

/// Whether the glob `pattern` matches every key (only `*`s), with the same rule as
/// [`prefix_matches_everything`].
pub fn glob_matches_everything(pattern: &[u8]) -> bool {
    !pattern.is_empty() && pattern.iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_match_everything_purges_are_flagged() {
        assert!(prefix_matches_everything(b""));
        assert!(!prefix_matches_everything(b"a"));
        assert!(glob_matches_everything(b"*"));
        assert!(glob_matches_everything(b"***"));
        for g in [&b""[..], b"a*", b"*a", b"?", b"\\*"] {
            assert!(!glob_matches_everything(g), "{g:?}");
        }
    }

    #[test]
    fn memory_values_take_redis_units() {
        assert_eq!(parse_memory("512mb"), Some(512 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("7"), Some(7));
        for bad in ["", "mb", "1tb", "-1", "1.5mb"] {
            assert_eq!(parse_memory(bad), None, "{bad}");
        }
    }

    #[test]
    fn output_buffer_limits_read_and_write_like_redis() {
        let l = Limits::new();
        assert_eq!(l.output_buffer_limits_text(), DEFAULT_OUTPUT_BUFFER_LIMIT);
        l.set_output_buffer_limits("pubsub 64kb 32kb 10").unwrap();
        assert_eq!(
            l.output_buffer_limit(ClientClass::PubSub),
            OutputBufferLimit {
                hard: 65536,
                soft: 32768,
                soft_seconds: 10
            }
        );
        assert!(l.set_output_buffer_limits("pubsub 1 2").is_err());
        assert!(l.set_output_buffer_limits("foo 1 2 3").is_err());
        assert_eq!(l.output_buffer_limit(ClientClass::PubSub).hard, 65536);
    }

    #[test]
    fn protected_mode_refuses_only_remote_clients_without_a_password() {
        let l = Limits::new();
        let remote: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        assert!(protected_refuses(&l, remote));
        assert!(!protected_refuses(&l, "127.0.0.1".parse().unwrap()));
        assert!(!protected_refuses(&l, "::1".parse().unwrap()));
        assert!(!protected_refuses(&l, "::ffff:127.0.0.1".parse().unwrap()));
        l.set_requirepass(b"pw");
        assert!(!protected_refuses(&l, remote));
        l.set_requirepass(b"");
        l.set_protected_mode(false);
        assert!(!protected_refuses(&l, remote));
    }
}

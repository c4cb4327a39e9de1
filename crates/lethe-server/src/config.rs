//! Server configuration: defaults, an optional TOML file, then flags and environment variables,
//! each layer overriding the one before. The limits (`requirepass`, `protected-mode`,
//! `max-clients`, `timeout`, `proto-max-bulk-len`, `client-output-buffer-limit`) start here and
//! become a [`Limits`] that CONFIG SET may change at run time.

use crate::limits::{self, Limits};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// Where the server listens and how much it stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to bind.
    pub bind: String,
    /// TCP port.
    pub port: u16,
    /// Keyspace budget in bytes of keys and values (plus a fixed overhead per entry).
    pub max_memory: u64,
    /// TCP port of the HTTP admin API, on the same address; off when `None`.
    pub http_port: Option<u16>,
    /// The password clients must AUTH with; none when `None`.
    pub requirepass: Option<String>,
    /// Refuse non-loopback clients while no password is set.
    pub protected_mode: bool,
    /// Most clients connected at once.
    pub max_clients: u64,
    /// Idle seconds before a client is closed (0: never).
    pub timeout: u64,
    /// Largest bulk string in a request, in bytes.
    pub proto_max_bulk_len: u64,
    /// Output buffer limits in Redis's syntax (`pubsub 32mb 8mb 60`), over Redis's defaults.
    pub client_output_buffer_limit: Option<String>,
    /// Address the HTTP admin API binds (its own, loopback unless asked otherwise).
    pub http_bind: String,
    /// Most HTTP connections at once.
    pub http_max_clients: usize,
    /// Seconds an HTTP request's headers, then its body, may take; also the keep-alive idle
    /// time.
    pub http_timeout: u64,
    /// Largest HTTP request body in bytes.
    pub http_max_body: usize,
    /// PEM certificate chain: with `tls_key_file`, both ports speak TLS only.
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Seconds open connections get to finish once shutdown begins.
    pub shutdown_timeout: u64,
    /// Records `LETHE.WHY` returns per key.
    pub history_records: usize,
    /// Bytes the per-key history may hold, apart from `max_memory` (0, the default: no
    /// history).
    pub history_memory: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            // 6379 belongs to Redis; Lethe sits next to it.
            port: 6380,
            max_memory: crate::server::DEFAULT_CAPACITY_BYTES,
            // An admin API is opt-in: nothing listens that the operator did not ask for.
            http_port: None,
            requirepass: None,
            protected_mode: true,
            max_clients: limits::DEFAULT_MAX_CLIENTS,
            timeout: 0,
            proto_max_bulk_len: limits::DEFAULT_PROTO_MAX_BULK_LEN,
            client_output_buffer_limit: None,
            // The admin port can purge and read everything: loopback, whatever `bind` says.
            http_bind: "127.0.0.1".into(),
            http_max_clients: crate::http::DEFAULT_MAX_CLIENTS,
            http_timeout: crate::http::DEFAULT_TIMEOUT.as_secs(),
            http_max_body: crate::http::DEFAULT_MAX_BODY,
            tls_cert_file: None,
            tls_key_file: None,
            shutdown_timeout: crate::server::DEFAULT_SHUTDOWN_TIMEOUT.as_secs(),
            history_records: 16,
            // Opt-in: it costs writes (see lethe::history), and not every server wants that.
            history_memory: 0,
        }
    }
}

/// Settings that may each be absent: one layer (file, or flags and environment).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Overrides {
    /// Address to bind.
    pub bind: Option<String>,
    /// TCP port.
    pub port: Option<u16>,
    /// Keyspace budget in bytes.
    pub max_memory: Option<u64>,
    /// HTTP admin API port.
    pub http_port: Option<u16>,
    /// AUTH password (empty: none).
    pub requirepass: Option<String>,
    /// Protected mode.
    pub protected_mode: Option<bool>,
    /// `maxclients`.
    pub max_clients: Option<u64>,
    /// Idle client timeout in seconds.
    pub timeout: Option<u64>,
    /// `proto-max-bulk-len` in bytes.
    pub proto_max_bulk_len: Option<u64>,
    /// `client-output-buffer-limit`, Redis's syntax.
    pub client_output_buffer_limit: Option<String>,
    /// HTTP admin API address.
    pub http_bind: Option<String>,
    /// Most HTTP connections at once.
    pub http_max_clients: Option<usize>,
    /// HTTP header and body timeout in seconds.
    pub http_timeout: Option<u64>,
    /// Largest HTTP request body in bytes.
    pub http_max_body: Option<usize>,
    /// TLS certificate chain (PEM).
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Shutdown drain deadline in seconds.
    pub shutdown_timeout: Option<u64>,
    /// Records `LETHE.WHY` returns per key.
    pub history_records: Option<usize>,
    /// Bytes of per-key history (0: none).
    pub history_memory: Option<u64>,
    /// The `[cdc]` section: change capture into this server, read by `lethe_cdc::CdcConfig`
    /// from the same file (here only so the section is not an unknown setting).
    pub cdc: Option<toml::Table>,
    /// The `[bus]` section: membership of the invalidation bus.
    pub bus: Option<BusSection>,
}

/// The `[bus]` section of the configuration file (`--bus` and `--node-id` override its `url`
/// and `node-id`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BusSection {
    /// NATS URL (`nats://127.0.0.1:4222`).
    pub url: Option<String>,
    /// This node's name on the bus.
    pub node_id: Option<String>,
    /// JetStream stream name [default: LETHE].
    pub stream: Option<String>,
    /// Subject namespace [default: default].
    pub namespace: Option<String>,
    /// Seconds the stream keeps a message [default: 86400].
    pub max_age: Option<u64>,
    /// Most messages the stream keeps [default: 10000000].
    pub max_messages: Option<i64>,
    /// Seconds this node serves while NATS is unreachable before it flushes [default: 30].
    pub partition_bound: Option<u64>,
    /// Publish every key a command writes or deletes as a key invalidation [default: false].
    pub publish_writes: Option<bool>,
}

impl BusSection {
    /// The bus settings, when a URL is given (`url` and `node_id` from the flags win).
    pub fn to_config(
        &self,
        url: Option<String>,
        node_id: Option<String>,
    ) -> Result<Option<lethe_bus::BusConfig>, ConfigError> {
        let Some(url) = url.or_else(|| self.url.clone()) else {
            return Ok(None);
        };
        let node_id = node_id
            .or_else(|| self.node_id.clone())
            .ok_or_else(|| ConfigError {
                kind: ConfigErrorKind::Invalid,
                message: "the bus needs this node's name: --node-id NAME or node-id in [bus]"
                    .into(),
            })?;
        let mut c = lethe_bus::BusConfig::new(url, node_id);
        if let Some(s) = &self.stream {
            c.stream = s.clone();
        }
        if let Some(n) = &self.namespace {
            c.namespace = n.clone();
        }
        if let Some(a) = self.max_age {
            c.max_age = std::time::Duration::from_secs(a);
        }
        if let Some(m) = self.max_messages {
            c.max_messages = m;
        }
        if let Some(b) = self.partition_bound {
            c.partition_bound = std::time::Duration::from_secs(b);
        }
        Ok(Some(c))
    }
}

impl Config {
    /// This configuration with the settings present in `o` replaced.
    pub fn apply(mut self, o: Overrides) -> Config {
        if let Some(b) = o.bind {
            self.bind = b;
        }
        if let Some(p) = o.port {
            self.port = p;
        }
        if let Some(m) = o.max_memory {
            self.max_memory = m;
        }
        if let Some(p) = o.http_port {
            self.http_port = Some(p);
        }
        if let Some(p) = o.requirepass {
            // An empty password means none, as with Redis's `requirepass ""`.
            self.requirepass = (!p.is_empty()).then_some(p);
        }
        if let Some(b) = o.protected_mode {
            self.protected_mode = b;
        }
        if let Some(n) = o.max_clients {
            self.max_clients = n;
        }
        if let Some(n) = o.timeout {
            self.timeout = n;
        }
        if let Some(n) = o.proto_max_bulk_len {
            self.proto_max_bulk_len = n;
        }
        if let Some(l) = o.client_output_buffer_limit {
            self.client_output_buffer_limit = Some(l);
        }
        if let Some(b) = o.http_bind {
            self.http_bind = b;
        }
        if let Some(n) = o.http_max_clients {
            self.http_max_clients = n;
        }
        if let Some(n) = o.http_timeout {
            self.http_timeout = n;
        }
        if let Some(n) = o.http_max_body {
            self.http_max_body = n;
        }
        if let Some(p) = o.tls_cert_file {
            self.tls_cert_file = Some(p);
        }
        if let Some(p) = o.tls_key_file {
            self.tls_key_file = Some(p);
        }
        if let Some(n) = o.shutdown_timeout {
            self.shutdown_timeout = n;
        }
        if let Some(n) = o.history_records {
            self.history_records = n;
        }
        if let Some(n) = o.history_memory {
            self.history_memory = n;
        }
        self
    }

    /// The engine's history settings (`None` when `history_memory` is 0).
    pub fn history(&self) -> Option<lethe::history::HistoryConfig> {
        (self.history_memory > 0 && self.history_records > 0).then(|| {
            lethe::history::HistoryConfig {
                records_per_key: self.history_records,
                memory_budget: usize::try_from(self.history_memory).unwrap_or(usize::MAX),
            }
        })
    }

    /// The runtime limits these settings describe; the error says which setting is invalid
    /// and why (Redis's reasons).
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let l = Limits::new();
        let check = |name: &str, value: String| {
            l.config_set(name, value.as_bytes())
                .map_err(|why| ConfigError {
                    kind: ConfigErrorKind::Invalid,
                    message: format!("{name}: {why}"),
                })
        };
        check("requirepass", self.requirepass.clone().unwrap_or_default())?;
        l.set_protected_mode(self.protected_mode);
        check("maxclients", self.max_clients.to_string())?;
        check("timeout", self.timeout.to_string())?;
        check("proto-max-bulk-len", self.proto_max_bulk_len.to_string())?;
        if let Some(text) = &self.client_output_buffer_limit {
            check("client-output-buffer-limit", text.clone())?;
        }
        Ok(l)
    }
}

impl Config {
    /// The HTTP admin API's bounds; the error names an out-of-range setting.
    pub fn http_options(&self) -> Result<crate::http::HttpOptions, ConfigError> {
        let invalid = |message: &str| ConfigError {
            kind: ConfigErrorKind::Invalid,
            message: message.into(),
        };
        if self.http_max_clients == 0 {
            return Err(invalid("http-max-clients: must be at least 1"));
        }
        if self.http_timeout == 0 {
            return Err(invalid("http-timeout: must be at least 1 second"));
        }
        Ok(crate::http::HttpOptions {
            max_clients: self.http_max_clients,
            timeout: std::time::Duration::from_secs(self.http_timeout),
            max_body: self.http_max_body,
        })
    }

    /// The TLS acceptor, when both files are given; an error when only one is, or when they
    /// do not load.
    pub fn tls(&self) -> Result<Option<tokio_rustls::TlsAcceptor>, ConfigError> {
        let invalid = |message: String| ConfigError {
            kind: ConfigErrorKind::Invalid,
            message,
        };
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => crate::tls::acceptor(cert, key)
                .map(Some)
                .map_err(|e| invalid(format!("TLS: {e}"))),
            _ => Err(invalid(
                "TLS needs both tls-cert-file and tls-key-file".into(),
            )),
        }
    }
}

/// The kind of a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML or has unknown or mistyped settings.
    Parse,
    /// A setting's value is out of range or malformed.
    Invalid,
}

/// A configuration file that could not be used.
#[derive(Debug)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
}

impl ConfigError {
    /// What went wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a TOML configuration (`bind`, `port`, `max-memory`, `http-port`, and the limits).
pub fn parse_toml(text: &str) -> Result<Overrides, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError {
        kind: ConfigErrorKind::Parse,
        message: e.to_string(),
    })
}

/// Reads and parses a TOML configuration file.
pub fn load(path: &Path) -> Result<Overrides, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        kind: ConfigErrorKind::Io,
        message: format!("{}: {e}", path.display()),
    })?;
    parse_toml(&text).map_err(|e| ConfigError {
        kind: e.kind,
        message: format!("{}: {}", path.display(), e.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        let file = parse_toml("bind = \"0.0.0.0\"\nport = 7000\n").unwrap();
        let flags = Overrides {
            port: Some(7001),
            ..Overrides::default()
        };
        let c = Config::default().apply(file).apply(flags);
        assert_eq!(c.bind, "0.0.0.0");
        assert_eq!(c.port, 7001);
        assert_eq!(c.max_memory, Config::default().max_memory);
        assert_eq!(c.http_port, None);
    }

    #[test]
    fn http_port_is_read_from_the_file() {
        let file = parse_toml("http-port = 9090\n").unwrap();
        assert_eq!(Config::default().apply(file).http_port, Some(9090));
    }

    #[test]
    fn limits_come_from_the_file_and_are_checked() {
        let file = parse_toml(
            "requirepass = \"pw\"\nprotected-mode = false\nmax-clients = 5\ntimeout = 30\n\
             proto-max-bulk-len = 2097152\nclient-output-buffer-limit = \"pubsub 1mb 0 0\"\n",
        )
        .unwrap();
        let l = Config::default().apply(file).limits().unwrap();
        assert_eq!(l.requirepass().as_deref(), Some(&b"pw"[..]));
        assert!(!l.protected_mode());
        assert_eq!(l.max_clients(), 5);
        assert_eq!(l.timeout(), 30);
        assert_eq!(l.proto_max_bulk_len(), 2 << 20);
        assert_eq!(
            l.output_buffer_limit(crate::limits::ClientClass::PubSub)
                .hard,
            1 << 20
        );
        let bad = Config {
            proto_max_bulk_len: 10,
            ..Config::default()
        };
        let err = bad.limits().unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Invalid);
        assert!(err.to_string().contains("proto-max-bulk-len"), "{err}");
        let defaults = Config::default().limits().unwrap();
        assert_eq!(defaults.requirepass(), None);
        assert_eq!(defaults.max_clients(), 10_000);
    }

    #[test]
    fn http_and_tls_settings_are_read_and_checked() {
        let c = Config::default();
        assert_eq!(c.http_bind, "127.0.0.1");
        assert_eq!(
            c.http_options().unwrap(),
            crate::http::HttpOptions::default()
        );
        let file = parse_toml(
            "bind = \"0.0.0.0\"\nhttp-max-clients = 3\nhttp-timeout = 2\nhttp-max-body = 10\n\
             shutdown-timeout = 1\ntls-cert-file = \"c.pem\"\n",
        )
        .unwrap();
        let c = Config::default().apply(file);
        // Binding RESP everywhere does not expose the admin port.
        assert_eq!(c.http_bind, "127.0.0.1");
        let o = c.http_options().unwrap();
        assert_eq!((o.max_clients, o.timeout.as_secs(), o.max_body), (3, 2, 10));
        assert_eq!(c.shutdown_timeout, 1);
        let Err(err) = c.tls() else {
            panic!("a certificate without a key is refused")
        };
        assert!(err.to_string().contains("tls-key-file"), "{err}");
        let zero = Config {
            http_max_clients: 0,
            ..Config::default()
        };
        assert!(zero.http_options().is_err());
    }

    #[test]
    fn unknown_settings_are_rejected() {
        let err = parse_toml("prot = 1").unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Parse);
        assert!(err.to_string().contains("prot"), "{err}");
    }
}

//! Server configuration: defaults, an optional TOML file, then flags and environment variables,
//! each layer overriding the one before.

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
        }
    }
}

/// Settings that may each be absent: one layer (file, or flags and environment).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
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
        self
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

/// Parses a TOML configuration (`bind`, `port`, `max-memory`, `http-port`).
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
    fn unknown_settings_are_rejected() {
        let err = parse_toml("prot = 1").unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Parse);
        assert!(err.to_string().contains("prot"), "{err}");
    }
}

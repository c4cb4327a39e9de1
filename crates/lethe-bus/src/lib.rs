//! Lethe's invalidation bus: every invalidation reaches every node and every embedded cache
//! through one NATS JetStream stream, with nothing lost, or a counted, safe flush.
//!
//! A cache that misses an invalidation serves stale data until the entry expires; pub/sub
//! without storage (Redis `PUBLISH`) loses every message sent while a subscriber is away.
//! JetStream keeps the stream on disk, gives each member a durable consumer that resumes where
//! it stopped, and deduplicates publishes by message id, so retries and replays apply once.
//! This crate uses it through the maintained `async-nats` client and only features of
//! nats-server 2.9 (streams with limits retention and a duplicate window, durable pull
//! consumers with explicit acks).
//!
//! - [`schema`]: the versioned message format (keys, tags, prefixes, globs, flushes; origin
//!   node and sequence; commit LSN when from PostgreSQL).
//! - [`Bus`]: the connection and the stream ([`Bus::connect`] creates the stream when missing).
//! - [`Outbox`]: publishing from synchronous code: invalidations queue in order and a task
//!   batches them into messages, retrying with the same message id until JetStream acknowledges.
//! - [`Member`]: consuming: one durable consumer per node, messages applied in stream order
//!   through an [`Apply`] implementation and acknowledged after applying; gaps (retention,
//!   a recreated stream, a deleted consumer, an unreadable message) and partitions longer than
//!   [`BusConfig::partition_bound`] flush instead (counted by [`FlushReason`]).
//! - [`attach`]: an in-process [`lethe::Cache`] as a member (a near cache).
//! - `testing` (feature `testing`): a nats-server of the test's own and a TCP proxy to cut.
//!
//! # Guarantees
//! A member applies every message of the stream after the point it joined, in stream order,
//! except its own (it applied those before publishing). When it cannot (the stream no longer
//! holds what it missed), it flushes its cache. While it cannot reach NATS it keeps serving
//! for at most `partition_bound`, then flushes, and flushes again every `partition_bound` until
//! it reaches NATS again, so what it serves is never older than that bound plus the time a
//! fill takes: an unbounded partition never means unbounded staleness.
#![forbid(unsafe_code)]

mod embedded;
mod member;
mod outbox;
pub mod schema;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;

pub use embedded::{Attached, BusKey, attach};
pub use member::{Apply, FlushReason, Member, MemberStats};
pub use outbox::{MAX_ITEMS, Outbox, OutboxStats};
pub use schema::{Data, Item, Message, SCHEMA_VERSION};
pub use stream::Bus;

use std::fmt;
use std::time::Duration;

/// Where the bus is and how this member takes part.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// NATS server URL (`nats://127.0.0.1:4222`).
    pub url: String,
    /// This member's name: its durable consumer's name and the `origin` of what it publishes.
    /// Letters, digits, `-` and `_` only (it names a JetStream consumer).
    pub node_id: String,
    /// The JetStream stream (`LETHE`).
    pub stream: String,
    /// Subjects are `<subject_prefix>.<namespace>`; the stream holds `<subject_prefix>.>`.
    pub subject_prefix: String,
    /// This member's namespace (the last subject token).
    pub namespace: String,
    /// How long the stream keeps a message. A member away for longer finds a gap and flushes.
    pub max_age: Duration,
    /// How many messages the stream keeps at most (older ones are dropped first).
    pub max_messages: i64,
    /// How long a member that cannot reach NATS keeps serving before it flushes.
    pub partition_bound: Duration,
}

impl BusConfig {
    /// The defaults for `url` and `node_id`: stream `LETHE`, subjects `lethe.inv.default`,
    /// messages kept 24 h (at most 10 million), partition bound 30 s.
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> BusConfig {
        BusConfig {
            url: url.into(),
            node_id: node_id.into(),
            stream: "LETHE".into(),
            subject_prefix: "lethe.inv".into(),
            namespace: "default".into(),
            max_age: Duration::from_secs(24 * 3600),
            max_messages: 10_000_000,
            partition_bound: Duration::from_secs(30),
        }
    }

    /// The subject this member publishes to.
    pub fn subject(&self) -> String {
        format!("{}.{}", self.subject_prefix, self.namespace)
    }

    fn validate(&self) -> Result<(), BusError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.node_id) {
            return Err(BusError::config(format!(
                "node id {:?} must be 1-64 letters, digits, '-' or '_'",
                self.node_id
            )));
        }
        if !name_ok(&self.stream) {
            return Err(BusError::config(format!(
                "stream name {:?} must be 1-64 letters, digits, '-' or '_'",
                self.stream
            )));
        }
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
                })
        };
        if !token_ok(&self.subject_prefix) || !token_ok(&self.namespace) {
            return Err(BusError::config(format!(
                "subject {:?} is not a valid NATS subject (no wildcards, no empty tokens)",
                self.subject()
            )));
        }
        if self.partition_bound.is_zero() {
            return Err(BusError::config(
                "the partition bound must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusErrorKind {
    /// The configuration is invalid.
    Config,
    /// NATS could not be reached, or refused.
    Connect,
    /// A JetStream request (stream, consumer, publish) failed.
    JetStream,
}

/// A bus error: its kind and a message for people.
#[derive(Debug, Clone)]
pub struct BusError {
    kind: BusErrorKind,
    message: String,
}

impl BusError {
    fn config(message: String) -> BusError {
        BusError {
            kind: BusErrorKind::Config,
            message,
        }
    }

    fn connect(message: String) -> BusError {
        BusError {
            kind: BusErrorKind::Connect,
            message,
        }
    }

    fn jetstream(message: String) -> BusError {
        BusError {
            kind: BusErrorKind::JetStream,
            message,
        }
    }

    /// What failed.
    pub fn kind(&self) -> BusErrorKind {
        self.kind
    }
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BusError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked() {
        assert!(
            BusConfig::new("nats://127.0.0.1:4222", "node-1")
                .validate()
                .is_ok()
        );
        for bad in ["", "a.b", "a b", "a*", &"x".repeat(65)] {
            let e = BusConfig::new("nats://x", bad).validate().unwrap_err();
            assert_eq!(e.kind(), BusErrorKind::Config, "{bad:?}");
        }
        let mut c = BusConfig::new("nats://x", "n");
        c.namespace = "a.>".into();
        assert!(c.validate().is_err());
        c.namespace = "orders".into();
        assert_eq!(c.subject(), "lethe.inv.orders");
        c.partition_bound = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}

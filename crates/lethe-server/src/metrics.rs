//! Server-side counters for `GET /metrics`, and the Prometheus registry that exposes them with
//! the engine's statistics.
//!
//! The engine counts what happens to entries ([`lethe::Cache::stats`]); what only the server
//! sees (clients, commands and how long they take) is counted here. Both are read at scrape
//! time: the server's counters are prometheus-client metrics (atomics, updated by the
//! connection tasks), while the engine's are a [`Collector`] that snapshots
//! [`lethe::stats::Stats`] once per scrape, so the read path pays nothing for metrics it already keeps.

use crate::frame::Frame;
use crate::state::ServerState;
use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::encoding::{MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The label of `lethe_commands_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: String,
}

/// What the RESP server counts: shared by every connection task and read by `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    clients: Gauge,
    connections: Counter,
    commands: Family<CommandLabel, Counter>,
    /// The counters of `commands` by position in the command table (the last one: `unknown`),
    /// each taken from the family the first time its command runs, so counting a command is
    /// one atomic increment rather than a lookup by name.
    by_position: Box<[OnceLock<Counter>]>,
    latency: Arc<LatencyHistogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            clients: Gauge::default(),
            connections: Counter::default(),
            commands: Family::default(),
            by_position: (0..=crate::cmd::command_count())
                .map(|_| OnceLock::new())
                .collect(),
            latency: Arc::new(LatencyHistogram::new()),
        }
    }
}

/// Buckets of `lethe_command_duration_seconds` (upper bounds, the last one +Inf).
const LATENCY_BUCKETS: usize = 12;

/// The command latency histogram: a Prometheus histogram kept in atomics, so observing is a
/// few relaxed increments instead of a lock. Buckets go from 1 µs to about 1 s in powers of
/// four: commands are in-memory, so most land in the first few buckets and the tail shows lock
/// contention or huge values.
#[derive(Debug)]
struct LatencyHistogram {
    bounds: [f64; LATENCY_BUCKETS],
    counts: [AtomicU64; LATENCY_BUCKETS],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    fn new() -> Self {
        let mut bounds = [f64::MAX; LATENCY_BUCKETS];
        for (b, v) in bounds.iter_mut().zip(exponential_buckets(1e-6, 4.0, 11)) {
            *b = v;
        }
        LatencyHistogram {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        // The first bucket whose bound is at least the value, as Prometheus's histogram does.
        let i = self
            .bounds
            .iter()
            .position(|&b| b >= secs)
            .unwrap_or(LATENCY_BUCKETS - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// The histogram as registered: the registry keeps its own handle.
#[derive(Debug)]
struct SharedLatency(Arc<LatencyHistogram>);

impl TypedMetric for SharedLatency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for SharedLatency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        let buckets: Vec<(f64, u64)> = h
            .bounds
            .iter()
            .zip(&h.counts)
            .map(|(&b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|b| b.1).sum();
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Counts a client as connected until dropped.
#[derive(Debug)]
pub struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Fresh counters.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A client connected; it counts as connected until the guard is dropped.
    pub fn client_connected(&self) -> ClientGuard {
        self.connections.inc();
        self.clients.inc();
        ClientGuard(self.clients.clone())
    }

    /// One command ran: `name` as the client sent it, its reply, and how long it took.
    ///
    /// Names are lowercased (Redis's names are case-insensitive), and every name the server
    /// did not know is counted as `unknown`, so a client sending garbage cannot grow the label
    /// set without bound. The dispatcher owns the command table, so an unknown command is
    /// recognised by its reply.
    pub fn command(&self, name: &Bytes, reply: &Frame, took: Duration) {
        let unknown =
            matches!(reply, Frame::Error(text) if text.starts_with("ERR unknown command"));
        let command = if unknown {
            "unknown".to_owned()
        } else {
            String::from_utf8_lossy(name).to_ascii_lowercase()
        };
        self.commands.get_or_create(&CommandLabel { command }).inc();
        self.latency.observe(took);
    }

    /// [`Self::command`] for a command the dispatcher identified: `None` for a name it did not
    /// know (counted as `unknown`).
    pub fn command_ran(&self, command: Option<crate::cmd::CommandId>, took: Duration) {
        let position = command.map_or(self.by_position.len() - 1, |c| c.index());
        self.by_position[position]
            .get_or_init(|| {
                let command = command.map_or("unknown", crate::cmd::command_name);
                self.commands
                    .get_or_create(&CommandLabel {
                        command: command.to_owned(),
                    })
                    .clone()
            })
            .inc();
        self.latency.observe(took);
    }

    /// Commands processed so far by family ([`crate::cmd::command_family`]; names the server
    /// did not know as `unknown`), in the command table's order of first appearance. Read from
    /// the per-command counters, so counting by family costs the command path nothing more.
    pub fn commands_by_family(&self) -> Vec<(&'static str, u64)> {
        let mut families: Vec<(&'static str, u64)> = Vec::new();
        let unknown = self.by_position.len() - 1;
        for (i, counter) in self.by_position.iter().enumerate() {
            let Some(counter) = counter.get() else {
                continue;
            };
            let family = if i == unknown {
                "unknown"
            } else {
                crate::cmd::command_family(crate::cmd::CommandId(i))
            };
            match families.iter_mut().find(|(f, _)| *f == family) {
                Some((_, n)) => *n += counter.get(),
                None => families.push((family, counter.get())),
            }
        }
        families
    }

    /// Clients connected now.
    pub fn connected_clients(&self) -> i64 {
        self.clients.get()
    }

    /// A registry exposing these counters and `db`'s engine statistics, all prefixed `lethe_`.
    pub fn registry(&self, db: Arc<ServerState>) -> Registry {
        let mut r = Registry::with_prefix("lethe");
        r.register(
            "connected_clients",
            "Clients connected to the RESP server",
            self.clients.clone(),
        );
        r.register(
            "connections",
            "Client connections accepted by the RESP server",
            self.connections.clone(),
        );
        r.register(
            "commands",
            "Commands processed, by lowercase name (unknown names as `unknown`)",
            self.commands.clone(),
        );
        r.register_with_unit(
            "command_duration",
            "Time to run a command, from parsed request to reply (excluding network I/O)",
            Unit::Seconds,
            SharedLatency(self.latency.clone()),
        );
        r.register_collector(Box::new(CacheStats(db)));
        r
    }
}

/// The engine's statistics, snapshotted once per scrape.
#[derive(Debug)]
struct CacheStats(Arc<ServerState>);

impl Collector for CacheStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.0.cache().stats();
        // Help texts end with a period, as the registry writes them for registered metrics.
        let counters: [(&str, &str, u64); 7] = [
            ("cache_hits", "Reads that found a live entry.", s.hits),
            ("cache_misses", "Reads that found nothing.", s.misses),
            ("cache_inserts", "Writes that created an entry.", s.inserts),
            (
                "cache_updates",
                "Writes that replaced a live entry.",
                s.updates,
            ),
            (
                "cache_invalidations",
                "Invalidations applied (keys, tags, patterns, floors): the latest sequence number.",
                s.invalidations,
            ),
            (
                "cache_leases_granted",
                "Fill leases granted on misses.",
                s.leases_granted,
            ),
            (
                "cache_fills_refused",
                "Lease fills refused because something they covered was invalidated.",
                s.fills_refused,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }

        // Cluster mode only: keys dropped because their slot left this node.
        if let Some(cluster) = self.0.cluster() {
            let counter = ConstCounter::new(cluster.keys_dropped());
            counter.encode(encoder.encode_descriptor(
                "cluster_slot_keys_dropped",
                "Keys dropped because their hash slot is not (or no longer) served by this node.",
                None,
                counter.metric_type(),
            )?)?;
        }

        // One family, so evictions, expiries and each kind of invalidation can be compared and
        // summed in queries.
        let family = ConstCounter::new(0u64);
        let mut removals = encoder.encode_descriptor(
            "cache_removals",
            "Entries removed, by cause (a replaced value is a removal with cause `replaced`).",
            None,
            family.metric_type(),
        )?;
        for (cause, n) in s.removals.iter() {
            ConstCounter::new(n).encode(removals.encode_family(&[("cause", cause.as_str())])?)?;
        }

        let gauges: [(&str, &str, Option<&Unit>, u64); 5] = [
            (
                "cache_entries",
                "Entries stored, including expired or invalidated ones not yet reclaimed.",
                None,
                s.entries,
            ),
            (
                "cache_weight",
                "Bytes of keys and values stored, with per-entry overhead.",
                Some(&Unit::Bytes),
                s.weight,
            ),
            (
                "cache_capacity",
                "Keyspace budget (max-memory).",
                Some(&Unit::Bytes),
                s.capacity,
            ),
            ("cache_tags", "Tag names in use.", None, s.tags),
            (
                "cache_dependency_edges",
                "Dependency edges (dependency -> dependent).",
                None,
                s.dependency_edges,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::command_id;

    #[test]
    fn commands_are_summed_by_family() {
        let m = Metrics::new();
        let took = Duration::from_micros(1);
        for name in ["get", "set", "get", "hset", "lethe.invalidate"] {
            m.command_ran(Some(command_id(name.as_bytes()).unwrap()), took);
        }
        m.command_ran(None, took);
        let families: std::collections::HashMap<_, _> =
            m.commands_by_family().into_iter().collect();
        assert_eq!(families.get("string"), Some(&3));
        assert_eq!(families.get("hash"), Some(&1));
        assert_eq!(families.get("lethe"), Some(&1));
        assert_eq!(families.get("unknown"), Some(&1));
        assert_eq!(families.len(), 4);
    }
}

//! PostgreSQL change capture feeding this server's keyspace (`lethe serve --cdc FILE`, or a
//! `[cdc]` section in the configuration file), and its observability: the `cdc` section of
//! INFO and the `lethe_cdc_*` metrics.
//!
//! Change capture itself (the replication stream, rules, the at-commit and nothing-lost
//! guarantees) is the `lethe-cdc` crate; this module only gives it a [`lethe_cdc::Target`]
//! writing into the [`ServerState`]. Invalidations go through the same path as
//! `LETHE.INVALIDATE` ([`ServerState::invalidate`]), to every database in use, and clients
//! caching the keys (CLIENT TRACKING) are told before the transaction counts as applied.

use crate::state::{Databases, ServerState, server_form};
use lethe::Invalidation;
use lethe_cdc::{Batch, BoxFuture, Cdc, CdcConfig, CdcMetrics, FlushReason, Target};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::Arc;
use tracing::warn;

/// The server's own keyspace as a change-capture target.
pub struct DbTarget {
    db: Arc<ServerState>,
}

impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbTarget")
    }
}

impl DbTarget {
    /// A target writing into `db`.
    pub fn new(db: Arc<ServerState>) -> DbTarget {
        DbTarget { db }
    }
}

impl Target for DbTarget {
    fn name(&self) -> &str {
        "server"
    }

    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, lethe_cdc::Result<()>> {
        Box::pin(async move {
            // Fences first: from before the invalidation on, a fill of an older version is
            // refused. Set in every database in use, as the invalidation is.
            for f in &batch.fences {
                self.db
                    .fence_everywhere(f.key.as_bytes(), f.version, f.hold);
            }
            // Other members of the bus get the fences before the invalidations they go with.
            if let Some(bus) = self.db.bus() {
                bus.publish_fences(&batch.fences);
            }
            // The keys' history names the transaction behind each invalidation.
            let origin = self.db.keeps_history().then(|| {
                Arc::new(
                    lethe::history::Origin::default()
                        .with_change(format!("change capture, commit lsn {}", batch.commit_lsn)),
                )
            });
            for item in &batch.invalidations {
                // Tags were validated when the batch was built; what the engine still refuses
                // cannot be fixed by retrying, so it is logged, not retried.
                let Some(what) = server_form(item) else {
                    warn!(invalidation = ?item, "not applied: the server has no form for it");
                    continue;
                };
                if let Err(e) = self
                    .db
                    .invalidate(&[what], Databases::InUse, origin.clone())
                {
                    warn!(error = %e, invalidation = ?item, "invalidation refused");
                }
            }
            Ok(())
        })
    }

    fn flush(&self, _reason: FlushReason) -> BoxFuture<'_, lethe_cdc::Result<()>> {
        Box::pin(async move {
            self.db.flush();
            Ok(())
        })
    }
}

/// The invalidation bus as a change-capture target (`lethe cdc --target nats://..`): each
/// committed transaction's fences and invalidations are one message, published with a message
/// id derived from its commit LSN, and the transaction counts as applied (its LSN may be
/// confirmed to PostgreSQL) only once JetStream acknowledged it. A replay after a restart
/// carries the same id, which JetStream's duplicate window drops.
#[derive(Debug)]
pub struct BusTarget {
    name: String,
    outbox: lethe_bus::Outbox,
}

impl BusTarget {
    /// Connects to the bus (creating the stream when missing) and starts publishing.
    pub async fn connect(config: lethe_bus::BusConfig) -> Result<BusTarget, lethe_bus::BusError> {
        let name = config.url.clone();
        let bus = lethe_bus::Bus::connect(config).await?;
        Ok(BusTarget {
            name,
            outbox: lethe_bus::Outbox::start(&bus),
        })
    }

    async fn publish(
        &self,
        id: String,
        lsn: Option<String>,
        items: Vec<lethe_bus::Item>,
    ) -> lethe_cdc::Result<()> {
        self.outbox
            .publish_acked(id, lsn, items)
            .await
            .map(|_| ())
            .map_err(|e| {
                lethe_cdc::Error::new(
                    lethe_cdc::ErrorKind::Target,
                    format!("the bus at {}: {e}", self.name),
                )
            })
    }
}

impl Target for BusTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, lethe_cdc::Result<()>> {
        Box::pin(async move {
            let mut items = crate::bus::fence_items(&batch.fences);
            items.extend(batch.invalidations.iter().filter_map(|t| match t {
                Invalidation::Key(k) => Some(lethe_bus::Item::Key {
                    key: k.as_str().into(),
                    db: None,
                }),
                Invalidation::Tag(t) => Some(lethe_bus::Item::Tag { tag: t.clone() }),
                Invalidation::Prefix(p) => Some(lethe_bus::Item::Prefix {
                    prefix: p.as_slice().into(),
                    db: None,
                }),
                Invalidation::Glob(g) => Some(lethe_bus::Item::Glob {
                    glob: g.as_slice().into(),
                    db: None,
                }),
                // Version floors have no bus item (fences travel as fence items, above).
                other => {
                    warn!(invalidation = ?other, "not published: the bus has no item for it");
                    None
                }
            }));
            if items.is_empty() {
                return Ok(());
            }
            let at = lsn(batch.commit_lsn);
            self.publish(format!("lsn.{at}"), Some(at), items).await
        })
    }

    fn flush(&self, reason: FlushReason) -> BoxFuture<'_, lethe_cdc::Result<()>> {
        Box::pin(async move {
            // Every member flushes: change capture cannot say what it missed.
            let id = format!("flush.{}.{:016x}", reason.as_str(), fastrand::u64(..));
            self.publish(id, None, vec![lethe_bus::Item::Flush { db: None }])
                .await
        })
    }
}

/// Checks `config` against the database (settings, privileges, tables and columns the rules
/// name) and returns change capture ready to run into `db`, its metrics registered there for
/// INFO and `/metrics`. An error names what is wrong; the server should not start with it.
pub async fn prepare(db: &ServerState, config: CdcConfig) -> lethe_cdc::Result<Cdc> {
    let mut cdc = Cdc::new(config)?;
    cdc.check().await?;
    db.set_cdc_metrics(cdc.metrics());
    Ok(cdc)
}

/// Runs `cdc` into `db` until `shutdown` completes.
pub async fn run(
    cdc: Cdc,
    db: Arc<ServerState>,
    shutdown: impl Future + Send,
) -> lethe_cdc::Result<()> {
    cdc.run(vec![Box::new(DbTarget::new(db))], shutdown).await
}

/// PostgreSQL's text form of an LSN (`16/B374D848`).
fn lsn(v: u64) -> String {
    format!("{:X}/{:X}", v >> 32, v & 0xffff_ffff)
}

/// The `# CDC` section of INFO, when change capture runs.
pub fn info_section(metrics: &CdcMetrics, out: &mut String) {
    let s = metrics.snapshot();
    out.push_str("# CDC\r\n");
    let mut kv = |k: &str, v: &dyn fmt::Display| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    kv("cdc_connected", &u8::from(s.connected));
    kv("cdc_lag_bytes", &s.lag_bytes);
    kv("cdc_lag_ms", &s.lag_ms);
    kv("cdc_transactions", &s.transactions);
    kv("cdc_invalidations", &s.invalidations);
    kv("cdc_invalidations_per_sec", &s.invalidations_per_sec);
    kv("cdc_last_applied_lsn", &lsn(s.last_applied_lsn));
    kv("cdc_last_confirmed_lsn", &lsn(s.last_confirmed_lsn));
    kv("cdc_reconnects", &s.reconnects);
    kv("cdc_target_retries", &s.target_retries);
    kv("cdc_rejected_messages", &s.rejected_messages);
    kv("cdc_visible_commits", &s.visible_commits);
    kv("cdc_visibility_wait_us", &s.visibility_wait_us);
    kv("cdc_visibility_wait_max_us", &s.visibility_wait_max_us);
    kv("cdc_visibility_bypassed", &s.visibility_bypassed);
    for (reason, n) in &s.flushes {
        kv(&format!("cdc_flushes_{}", reason.as_str()), n);
    }
}

/// Registers the change-capture metrics of `db` (if it has any) in `registry`.
pub fn register(registry: &mut Registry, db: &Arc<ServerState>) {
    if let Some(m) = db.cdc_metrics() {
        registry.register_collector(Box::new(CdcCollector(m)));
    }
}

#[derive(Debug)]
struct CdcCollector(Arc<CdcMetrics>);

impl Collector for CdcCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let s = self.0.snapshot();
        let counters: [(&str, &str, u64); 5] = [
            (
                "cdc_transactions",
                "Committed transactions applied by change capture.",
                s.transactions,
            ),
            (
                "cdc_invalidations",
                "Invalidations (keys, tags, prefixes, globs) applied by change capture.",
                s.invalidations,
            ),
            (
                "cdc_reconnects",
                "Replication sessions restarted after a failure.",
                s.reconnects,
            ),
            (
                "cdc_target_retries",
                "Applications to a target that failed and were retried.",
                s.target_retries,
            ),
            (
                "cdc_rejected_messages",
                "Emitted messages that were not valid invalidation requests.",
                s.rejected_messages,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let family = ConstCounter::new(0u64);
        let mut flushes = encoder.encode_descriptor(
            "cdc_flushes",
            "Keyspace flushes by change capture, by reason (changes may have been missed).",
            None,
            family.metric_type(),
        )?;
        for (reason, n) in &s.flushes {
            ConstCounter::new(*n).encode(flushes.encode_family(&[("reason", reason.as_str())])?)?;
        }
        let gauges: [(&str, &str, Option<&Unit>, u64); 5] = [
            (
                "cdc_lag",
                "WAL the server sent past the last applied transaction.",
                Some(&Unit::Bytes),
                s.lag_bytes,
            ),
            (
                "cdc_lag_milliseconds",
                "Time from the last applied transaction's commit to its application.",
                None,
                s.lag_ms,
            ),
            (
                "cdc_last_applied_lsn",
                "End LSN of the last transaction applied to every target.",
                None,
                s.last_applied_lsn,
            ),
            (
                "cdc_last_confirmed_lsn",
                "LSN last confirmed to PostgreSQL.",
                None,
                s.last_confirmed_lsn,
            ),
            (
                "cdc_connected",
                "1 while a replication session streams.",
                None,
                u64::from(s.connected),
            ),
        ];
        for (name, help, unit, value) in gauges {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, unit, g.metric_type())?)?;
        }
        Ok(())
    }
}

//! This server as a member of the invalidation bus (`lethe serve --bus nats://.. --node-id N`,
//! or `[bus]` in the configuration file; the lethe-bus crate holds the bus itself).
//!
//! Invalidations that originate here (LETHE.INVALIDATE, LETHE.EVENT rules, HTTP purges,
//! change capture into this server) are applied here first, then queued for the stream by
//! [`crate::state::ServerState::invalidate`]; what other members publish is applied through
//! [`ServerApply`], which does not publish again. A gap or a partition past the bound flushes
//! the keyspace (every database); tracking clients get the flush message.

use crate::state::{Databases, ServerState};
use bytes::Bytes;
use lethe::Invalidation;
use lethe_bus::{
    Apply, Bus, BusConfig, BusError, FlushReason, Item, Member, MemberStats, Message, Outbox,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// The server's link to the bus: where its invalidations go and what it applied.
#[derive(Debug)]
pub struct BusLink {
    config: BusConfig,
    bus: Bus,
    publish_writes: bool,
    outbox: Outbox,
    member: Member,
}

impl BusLink {
    /// Queues what this server invalidated in databases `which` for every other member.
    pub(crate) fn publish(&self, what: &[Invalidation<Bytes>], which: Databases) {
        let db = match which {
            Databases::One(db) => Some(db),
            Databases::InUse => None,
        };
        let items = what
            .iter()
            .filter_map(|w| {
                Some(match w {
                    Invalidation::Key(k) => Item::Key {
                        key: k.as_ref().into(),
                        db,
                    },
                    Invalidation::Tag(t) => Item::Tag { tag: t.clone() },
                    Invalidation::Prefix(p) => Item::Prefix {
                        prefix: p.as_slice().into(),
                        db,
                    },
                    Invalidation::Glob(g) => Item::Glob {
                        glob: g.as_slice().into(),
                        db,
                    },
                    // Floors are refused before anything is published.
                    _ => return None,
                })
            })
            .collect();
        self.outbox.send(items);
    }

    /// The NATS connection (cluster nodes send each other dependency watches over it).
    pub(crate) fn nats(&self) -> &async_nats::Client {
        self.bus.client()
    }

    /// Whether plain writes and deletes are published as key invalidations.
    pub(crate) fn publishes_writes(&self) -> bool {
        self.publish_writes
    }

    /// Queues the keys a command wrote or deleted (database, name) as key invalidations, for
    /// deployments that keep copies of a key on several nodes (`publish-writes`).
    pub(crate) fn publish_writes<'k>(&self, keys: impl Iterator<Item = (u8, &'k [u8])>) {
        let items: Vec<Item> = keys
            .map(|(db, k)| Item::Key {
                key: k.into(),
                db: Some(db),
            })
            .collect();
        self.outbox.send(items);
    }

    /// Queues version fences this server set (before the invalidations they go with).
    pub(crate) fn publish_fences(&self, fences: &[lethe_cdc::Fence]) {
        self.outbox.send(fence_items(fences));
    }

    /// The member's counters.
    pub fn member_stats(&self) -> &Arc<MemberStats> {
        self.member.stats()
    }

    /// The `# Bus` section of INFO.
    pub fn info_section(&self, out: &mut String) {
        let m = self.member.stats();
        let o = self.outbox.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# Bus\r\n");
        let mut kv = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(out, "{k}:{v}\r\n");
        };
        kv("bus_node_id", &self.config.node_id);
        kv("bus_stream", &self.config.stream);
        kv("bus_subject", &self.config.subject());
        kv("bus_publish_writes", &u8::from(self.publish_writes));
        kv(
            "bus_connected",
            &u8::from(m.connected.load(Ordering::Relaxed)),
        );
        kv("bus_applied_seq", &load(&m.applied_seq));
        kv("bus_lag_messages", &load(&m.lag_messages));
        kv("bus_lag_ms", &load(&m.lag_ms));
        kv("bus_applied_messages", &load(&m.applied));
        kv("bus_applied_items", &load(&m.applied_items));
        kv("bus_own_messages", &load(&m.own));
        kv("bus_published_messages", &load(&o.published));
        kv("bus_published_items", &load(&o.items));
        kv("bus_publish_queued", &load(&o.queued));
        kv("bus_publish_retries", &load(&o.retries));
        kv("bus_reconnects", &load(&m.reconnects));
        for reason in FlushReason::ALL {
            kv(
                &format!("bus_flushes_{}", reason.name()),
                &m.flushes_for(reason),
            );
        }
    }
}

/// Applies other members' messages to a server's keyspace.
struct ServerApply(Weak<ServerState>);

impl Apply for ServerApply {
    fn apply(&self, message: &Message) {
        let Some(state) = self.0.upgrade() else {
            return;
        };
        // The keys' history names the member that published the message.
        let origin = state.keeps_history().then(|| {
            let mut o = lethe::history::Origin::default().with_node(message.origin.clone());
            if let Some(lsn) = &message.lsn {
                o = o.with_change(format!("change capture, commit lsn {lsn}"));
            }
            Arc::new(o)
        });
        for item in &message.items {
            let (what, db) = match item {
                Item::Key { key, db } => (Invalidation::Key(bytes(key.as_bytes())), *db),
                Item::Tag { tag } => (Invalidation::Tag(tag.clone()), None),
                Item::Prefix { prefix, db } => {
                    (Invalidation::Prefix(prefix.as_bytes().to_vec()), *db)
                }
                Item::Glob { glob, db } => (Invalidation::Glob(glob.as_bytes().to_vec()), *db),
                Item::Fence {
                    key,
                    version,
                    hold_ms,
                } => {
                    state.fence_everywhere(
                        key.as_bytes(),
                        *version,
                        std::time::Duration::from_millis(*hold_ms),
                    );
                    continue;
                }
                Item::Flush { db: Some(db) } => {
                    if usize::from(*db) < crate::keyspace::DATABASES as usize {
                        state.flush_db(*db);
                    }
                    continue;
                }
                Item::Flush { db: None } => {
                    state.flush();
                    continue;
                }
            };
            let which = match db {
                Some(db) if usize::from(db) < crate::keyspace::DATABASES as usize => {
                    Databases::One(db)
                }
                // A database this server does not have holds nothing to invalidate.
                Some(_) => continue,
                None => Databases::InUse,
            };
            if let Err(e) =
                state.invalidate_unpublished(std::slice::from_ref(&what), which, origin.clone())
            {
                // Only a malformed tag fails; no entry here can carry it.
                tracing::debug!("bus: item not applied: {e}");
            }
        }
    }

    fn flush(&self, _: FlushReason) {
        if let Some(state) = self.0.upgrade() {
            state.flush();
        }
    }
}

/// Change capture's version fences as bus items.
pub(crate) fn fence_items(fences: &[lethe_cdc::Fence]) -> Vec<Item> {
    fences
        .iter()
        .map(|f| Item::Fence {
            key: f.key.as_str().into(),
            version: f.version,
            hold_ms: u64::try_from(f.hold.as_millis()).unwrap_or(u64::MAX),
        })
        .collect()
}

fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// Joins `state` to the bus: connects, creates the stream when missing, starts consuming at
/// its tail and publishing this server's invalidations. Fails (and the server should not
/// start) when NATS cannot be reached.
pub async fn join(state: &Arc<ServerState>, config: BusConfig) -> Result<(), BusError> {
    join_with(state, config, false).await
}

/// [`join`], publishing every key a command writes or deletes as a key invalidation too when
/// `publish_writes` (for deployments that keep copies of a key on several nodes: a write on one
/// node drops the others' copies).
pub async fn join_with(
    state: &Arc<ServerState>,
    config: BusConfig,
    publish_writes: bool,
) -> Result<(), BusError> {
    let bus = Bus::connect(config.clone()).await?;
    let member = Member::start(&bus, Arc::new(ServerApply(Arc::downgrade(state)))).await?;
    let outbox = Outbox::start(&bus);
    state.set_bus(BusLink {
        config,
        bus: bus.clone(),
        publish_writes,
        outbox,
        member,
    });
    Ok(())
}

/// Registers the bus metrics of `db` (if it is a member) in `registry`.
pub fn register(registry: &mut Registry, db: &Arc<ServerState>) {
    if let Some(bus) = db.bus() {
        registry.register_collector(Box::new(BusCollector {
            member: bus.member.stats().clone(),
            outbox: bus.outbox.clone(),
        }));
    }
}

#[derive(Debug)]
struct BusCollector {
    member: Arc<MemberStats>,
    outbox: Outbox,
}

impl Collector for BusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (m, o) = (&self.member, self.outbox.stats());
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 7] = [
            (
                "bus_applied_messages",
                "Bus messages from other members applied.",
                load(&m.applied),
            ),
            (
                "bus_applied_items",
                "Invalidations in the bus messages applied.",
                load(&m.applied_items),
            ),
            (
                "bus_own_messages",
                "Bus messages of this member skipped (applied before publishing).",
                load(&m.own),
            ),
            (
                "bus_published_messages",
                "Bus messages published and acknowledged by JetStream.",
                load(&o.published),
            ),
            (
                "bus_published_items",
                "Invalidations in the bus messages published.",
                load(&o.items),
            ),
            (
                "bus_publish_retries",
                "Publishes that failed and were retried.",
                load(&o.retries),
            ),
            (
                "bus_reconnects",
                "Times the member got NATS back after losing it.",
                load(&m.reconnects),
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let family = ConstCounter::new(0u64);
        let mut flushes = encoder.encode_descriptor(
            "bus_flushes",
            "Keyspace flushes by the bus member, by reason (invalidations may have been missed).",
            None,
            family.metric_type(),
        )?;
        for reason in FlushReason::ALL {
            ConstCounter::new(m.flushes_for(reason))
                .encode(flushes.encode_family(&[("reason", reason.name())])?)?;
        }
        let gauges: [(&str, &str, u64); 5] = [
            (
                "bus_applied_seq",
                "Stream sequence of the last bus message applied.",
                load(&m.applied_seq),
            ),
            (
                "bus_lag_messages",
                "Bus messages in the stream not yet applied.",
                load(&m.lag_messages),
            ),
            (
                "bus_lag_milliseconds",
                "Time from the last applied message's publication to its application.",
                load(&m.lag_ms),
            ),
            (
                "bus_publish_queued",
                "Invalidations queued for the bus, not yet acknowledged.",
                load(&o.queued),
            ),
            (
                "bus_connected",
                "1 while the member reaches NATS.",
                u64::from(m.connected.load(Ordering::Relaxed)),
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

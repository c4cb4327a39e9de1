//! Publishing from synchronous code. Callers (a command, an HTTP purge, change capture, an
//! embedded cache's invalidation) must not wait on the network, yet what they publish must
//! reach the stream in their order and exactly once. [`Outbox::send`] queues the items; one
//! task drains the queue into messages of up to [`MAX_ITEMS`] items, publishes each with the
//! message id `<node>.<incarnation>.<seq>` and retries with the same id until JetStream
//! acknowledges (its duplicate window drops a retry that had in fact been stored). The random
//! incarnation keeps a restarted member's ids apart from its earlier life's.

use crate::schema::{Item, Message, SCHEMA_VERSION};
use crate::{Bus, BusError};
use async_nats::jetstream::message::PublishMessage;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Items per message at most: what one message costs to apply on a member stays small.
pub const MAX_ITEMS: usize = 1_000;

/// One queued publish: items, and the commit LSN when they come from change capture.
#[derive(Debug)]
enum Queued {
    Items(Vec<Item>),
    /// Published alone, with message id `<id>.<chunk>`, and waited for.
    Acked {
        id: String,
        lsn: Option<String>,
        items: Vec<Item>,
        done: tokio::sync::oneshot::Sender<Result<u64, BusError>>,
    },
}

/// Counters of an outbox.
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Messages JetStream acknowledged.
    pub published: AtomicU64,
    /// Items in them.
    pub items: AtomicU64,
    /// Publish attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Items queued and not yet acknowledged.
    pub queued: AtomicU64,
}

/// The publishing side of a member; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    stats: Arc<OutboxStats>,
}

impl Outbox {
    /// Starts the publishing task on the current tokio runtime.
    pub fn start(bus: &Bus) -> Outbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(OutboxStats::default());
        tokio::spawn(run(bus.clone(), rx, stats.clone()));
        Outbox { tx, stats }
    }

    /// Queues `items` for publishing, after everything queued before; returns at once.
    pub fn send(&self, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        self.stats
            .queued
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        // The receiver lives as long as the runtime; after shutdown there is nobody to tell.
        let _ = self.tx.send(Queued::Items(items));
    }

    /// Publishes one committed transaction's items with a message id derived from its LSN (a
    /// replay after a restart is dropped by JetStream), and resolves once JetStream
    /// acknowledged it, with the stream sequence: only then may change capture confirm the LSN.
    /// The LSN's text must be the same on a replay (PostgreSQL's `16/B374D848` form).
    pub async fn publish_lsn(&self, lsn: String, items: Vec<Item>) -> Result<u64, BusError> {
        self.publish_acked(format!("lsn.{lsn}"), Some(lsn), items)
            .await
    }

    /// Publishes `items` after everything queued before, with the message id `id` (the caller
    /// makes it the same on a retry or replay of the same items, and unique otherwise), and
    /// resolves once JetStream acknowledged them.
    pub async fn publish_acked(
        &self,
        id: String,
        lsn: Option<String>,
        items: Vec<Item>,
    ) -> Result<u64, BusError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.stats
            .queued
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        self.tx
            .send(Queued::Acked {
                id,
                lsn,
                items,
                done,
            })
            .map_err(|_| BusError::jetstream("the bus outbox has stopped".into()))?;
        wait.await
            .map_err(|_| BusError::jetstream("the bus outbox has stopped".into()))?
    }

    /// The outbox's counters.
    pub fn stats(&self) -> &OutboxStats {
        &self.stats
    }
}

async fn run(bus: Bus, mut rx: mpsc::UnboundedReceiver<Queued>, stats: Arc<OutboxStats>) {
    let incarnation = fastrand::u64(..);
    let subject = bus.config.subject();
    let mut seq = 0u64;
    let mut held: Option<Queued> = None;
    loop {
        let first = match held.take() {
            Some(q) => q,
            None => match rx.recv().await {
                Some(q) => q,
                None => return,
            },
        };
        let (fixed_id, lsn, mut items, done) = match first {
            Queued::Items(items) => (None, None, items, None),
            Queued::Acked {
                id,
                lsn,
                items,
                done,
            } => (Some(id), lsn, items, Some(done)),
        };
        // Batch what else is already queued (plain items only; an acked message stands alone).
        if fixed_id.is_none() {
            while items.len() < MAX_ITEMS {
                match rx.try_recv() {
                    Ok(Queued::Items(more)) => items.extend(more),
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let chunks: Vec<Vec<Item>> = if items.len() > MAX_ITEMS {
            items.chunks(MAX_ITEMS).map(<[Item]>::to_vec).collect()
        } else {
            vec![items]
        };
        let mut result = Ok(0);
        for (i, chunk) in chunks.into_iter().enumerate() {
            seq += 1;
            let count = chunk.len() as u64;
            let id = match &fixed_id {
                Some(id) => format!("{id}.{i}"),
                None => format!("{}.{incarnation:016x}.{seq}", bus.config.node_id),
            };
            let message = Message {
                v: SCHEMA_VERSION,
                origin: bus.config.node_id.clone(),
                origin_seq: seq,
                lsn: lsn.clone(),
                items: chunk,
            };
            let stream_seq =
                publish_until_acked(&bus, &subject, &id, message.encode(), &stats).await;
            stats.published.fetch_add(1, Ordering::Relaxed);
            stats.items.fetch_add(count, Ordering::Relaxed);
            stats.queued.fetch_sub(count, Ordering::Relaxed);
            result = Ok(stream_seq);
        }
        if let Some(done) = done {
            let _ = done.send(result);
        }
    }
}

/// Publishes until JetStream acknowledges, backing off up to 1 s between attempts. It never
/// gives up: an invalidation dropped here would be lost for every other member.
async fn publish_until_acked(
    bus: &Bus,
    subject: &str,
    id: &str,
    payload: Vec<u8>,
    stats: &OutboxStats,
) -> u64 {
    let payload = bytes::Bytes::from(payload);
    let mut backoff = Duration::from_millis(10);
    loop {
        let attempt = async {
            let ack = bus
                .js
                .send_publish(
                    subject.to_owned(),
                    PublishMessage::build()
                        .payload(payload.clone())
                        .message_id(id),
                )
                .await
                .map_err(|e| e.to_string())?;
            ack.await.map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(ack) => return ack.sequence,
            Err(e) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("bus: publishing {id} failed, retrying: {e}");
                // The stream may have been deleted; recreate it (members will see the gap).
                let _ = bus.ensure_stream().await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

//! Consuming the stream: one durable pull consumer per member, every message applied in stream
//! order and acknowledged after applying, and every way of missing a message turned into a
//! counted flush.
//!
//! A member joins at the stream's tail (the consumer is recreated at start: a process that
//! starts holds nothing older). While it runs, the consumer remembers its position, so a member
//! cut off from NATS resumes where it stopped. It detects what it cannot resume from:
//! - **gap**: the next message's stream sequence is not one more than the last applied (the
//!   stream dropped messages under its retention limits before this member read them);
//! - **stream recreated**: the stream's creation time changed;
//! - **consumer lost**: the consumer was deleted and the stream no longer holds the message
//!   after the last applied one (when it does, the consumer is recreated there and nothing is
//!   flushed);
//! - **unreadable**: a message of an unknown schema version or malformed;
//! - **partition**: no answer from NATS for [`BusConfig::partition_bound`] (then again every
//!   bound until NATS answers).

use crate::schema::Message;
use crate::{Bus, BusConfig, BusError};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Messages asked for per pull.
const PULL_BATCH: usize = 512;
/// How long each outstanding pull request lasts (the client renews them ahead of expiry).
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// Idle heartbeat asked of the server; also how often an idle member checks its connection.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// Applies what the bus carries to one member's cache.
///
/// # Contract
/// - [`Apply::apply`] is called once per message of the stream after the member joined (except
///   the member's own), in stream order, from one task at a time; the message is acknowledged
///   only after it returns, so a member that dies mid-message sees it again on no one's behalf
///   (it restarts empty).
/// - [`Apply::flush`] must drop everything the member caches (a gap or a partition means it
///   cannot know what changed). It may be called from another task than `apply`, concurrently.
/// - Neither may block for long: the member's consumer waits on them.
pub trait Apply: Send + Sync + 'static {
    /// Applies one message's items, in order.
    fn apply(&self, message: &Message);
    /// Drops everything cached, because of `reason`.
    fn flush(&self, reason: FlushReason);
}

/// Why a member flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushReason {
    /// The stream dropped messages before this member read them.
    Gap,
    /// The stream was deleted and created again.
    StreamRecreated,
    /// The member's consumer was deleted and the stream no longer holds where it stopped.
    ConsumerLost,
    /// A message this member cannot read.
    Unreadable,
    /// NATS did not answer for the partition bound.
    Partition,
}

impl FlushReason {
    /// Every reason, in the order of [`MemberStats::flushes`].
    pub const ALL: [FlushReason; 5] = [
        FlushReason::Gap,
        FlushReason::StreamRecreated,
        FlushReason::ConsumerLost,
        FlushReason::Unreadable,
        FlushReason::Partition,
    ];

    /// The name used in INFO and metrics.
    pub fn name(self) -> &'static str {
        match self {
            FlushReason::Gap => "gap",
            FlushReason::StreamRecreated => "stream_recreated",
            FlushReason::ConsumerLost => "consumer_lost",
            FlushReason::Unreadable => "unreadable",
            FlushReason::Partition => "partition",
        }
    }

    fn index(self) -> usize {
        FlushReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("listed")
    }
}

/// What a member has done, for INFO and metrics.
#[derive(Debug, Default)]
pub struct MemberStats {
    /// Stream sequence of the last message applied (or skipped as the member's own).
    pub applied_seq: AtomicU64,
    /// Messages in the stream after it, as of the last message read.
    pub lag_messages: AtomicU64,
    /// Milliseconds between the last applied message's publication and its application.
    pub lag_ms: AtomicU64,
    /// Messages applied.
    pub applied: AtomicU64,
    /// Items in them.
    pub applied_items: AtomicU64,
    /// Messages skipped because this member published them (it applied them before).
    pub own: AtomicU64,
    /// Flushes, by [`FlushReason::ALL`] order.
    pub flushes: [AtomicU64; 5],
    /// Times the member got NATS back after losing it.
    pub reconnects: AtomicU64,
    /// Whether the last request to NATS succeeded.
    pub connected: AtomicBool,
}

impl MemberStats {
    /// Flushes for `reason`.
    pub fn flushes_for(&self, reason: FlushReason) -> u64 {
        self.flushes[reason.index()].load(Ordering::Relaxed)
    }

    /// Flushes for every reason.
    pub fn flushes_total(&self) -> u64 {
        self.flushes.iter().map(|f| f.load(Ordering::Relaxed)).sum()
    }
}

/// A running member: its consumer task and partition watchdog. Dropping it stops both.
#[derive(Debug)]
pub struct Member {
    stats: Arc<MemberStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Consuming {
    bus: Bus,
    apply: Arc<dyn Apply>,
    stats: Arc<MemberStats>,
    /// When NATS last answered.
    contact: Arc<Mutex<Instant>>,
    consumer: PullConsumer,
    created: time::OffsetDateTime,
    last_seq: u64,
    /// Whether the last attempt to consume failed (the next success counts a reconnect).
    failing: bool,
}

impl Member {
    /// Joins the stream at its tail and starts applying through `apply` (on the current tokio
    /// runtime). Returns once the consumer exists: every message published after this returns
    /// reaches `apply`.
    pub async fn start(bus: &Bus, apply: Arc<dyn Apply>) -> Result<Member, BusError> {
        let mut stream = bus.ensure_stream().await?;
        let info = stream.info().await.map_err(js_error)?.clone();
        let _ = stream.delete_consumer(&bus.config.node_id).await;
        let last_seq = info.state.last_sequence;
        let consumer = create_consumer(bus, last_seq + 1).await?;
        let stats = Arc::new(MemberStats::default());
        stats.applied_seq.store(last_seq, Ordering::Relaxed);
        stats.connected.store(true, Ordering::Relaxed);
        let contact = Arc::new(Mutex::new(Instant::now()));
        let watchdog = tokio::spawn(watch_partition(
            bus.config.clone(),
            apply.clone(),
            stats.clone(),
            contact.clone(),
        ));
        let consuming = Consuming {
            bus: bus.clone(),
            apply,
            stats: stats.clone(),
            contact,
            consumer,
            created: info.created,
            last_seq,
            failing: false,
        };
        let consumer = tokio::spawn(consuming.run());
        Ok(Member {
            stats,
            tasks: vec![consumer, watchdog],
        })
    }

    /// The member's counters.
    pub fn stats(&self) -> &Arc<MemberStats> {
        &self.stats
    }
}

fn js_error(e: impl std::fmt::Display) -> BusError {
    BusError::jetstream(format!("JetStream request failed: {e}"))
}

/// The member's durable consumer, delivering from stream sequence `start`.
async fn create_consumer(bus: &Bus, start: u64) -> Result<PullConsumer, BusError> {
    let stream = bus.ensure_stream().await?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(bus.config.node_id.clone()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start.max(1),
            },
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await
        .map_err(js_error)
}

fn flush(apply: &dyn Apply, stats: &MemberStats, reason: FlushReason) {
    tracing::warn!("bus: flushing the cache ({})", reason.name());
    apply.flush(reason);
    // Counted once done: whoever sees the count sees the flushed cache.
    stats.flushes[reason.index()].fetch_add(1, Ordering::Relaxed);
}

/// Flushes when NATS has not answered for the bound, and again every bound while it stays so.
async fn watch_partition(
    config: BusConfig,
    apply: Arc<dyn Apply>,
    stats: Arc<MemberStats>,
    contact: Arc<Mutex<Instant>>,
) {
    let bound = config.partition_bound;
    let tick = (bound / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
    let mut flushed_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        let last = *contact.lock().expect("not poisoned");
        let since = flushed_at.map_or(last, |f| f.max(last));
        if since.elapsed() >= bound {
            flush(&*apply, &stats, FlushReason::Partition);
            flushed_at = Some(Instant::now());
        }
    }
}

impl Consuming {
    async fn run(mut self) {
        loop {
            let Err(e) = self.consume().await;
            if !self.failing {
                tracing::warn!("bus: {e}");
            }
            self.failing = true;
            self.stats.connected.store(false, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Err(e) = self.recover().await {
                tracing::debug!("bus: not recovered yet: {e}");
            }
        }
    }

    /// Consumes until the stream of messages fails: applies each message as it arrives and
    /// acknowledges it. The client keeps pull requests outstanding ahead of need (with
    /// heartbeats), so a message is delivered as soon as it is stored, never waiting for a
    /// pull to expire. While idle, NATS counts as reachable as long as the connection is up
    /// and heartbeats arrive (a missed heartbeat ends the stream with an error).
    async fn consume(&mut self) -> Result<std::convert::Infallible, BusError> {
        let mut messages = self
            .consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .expires(PULL_EXPIRES)
            .heartbeat(HEARTBEAT)
            .messages()
            .await
            .map_err(js_error)?;
        self.touch();
        loop {
            match tokio::time::timeout(HEARTBEAT, messages.next()).await {
                Ok(Some(Ok(msg))) => {
                    self.touch();
                    if self.handle(&msg) {
                        msg.ack().await.map_err(js_error)?;
                    }
                }
                Ok(Some(Err(e))) => return Err(js_error(e)),
                Ok(None) => return Err(BusError::jetstream("the consumer's stream ended".into())),
                Err(_idle) => {
                    if self.bus.client.connection_state()
                        != async_nats::connection::State::Connected
                    {
                        return Err(BusError::connect("NATS connection lost".into()));
                    }
                    self.touch();
                }
            }
        }
    }

    /// NATS answered: the partition clock restarts, and a member that was failing counts a
    /// reconnect.
    fn touch(&mut self) {
        *self.contact.lock().expect("not poisoned") = Instant::now();
        if self.failing {
            self.failing = false;
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            self.stats.connected.store(true, Ordering::Relaxed);
        }
    }

    /// Applies one message; false when it was a redelivery of one already applied.
    fn handle(&mut self, msg: &async_nats::jetstream::Message) -> bool {
        let Ok(info) = msg.info() else {
            return false;
        };
        let seq = info.stream_sequence;
        if seq <= self.last_seq {
            return false;
        }
        if seq != self.last_seq + 1 {
            flush(&*self.apply, &self.stats, FlushReason::Gap);
        }
        let lag = (time::OffsetDateTime::now_utc() - info.published)
            .whole_milliseconds()
            .max(0) as u64;
        let pending = info.pending;
        self.last_seq = seq;
        match Message::decode(&msg.payload) {
            Ok(m) if m.origin == self.bus.config.node_id => {
                self.stats.own.fetch_add(1, Ordering::Relaxed);
            }
            Ok(m) => {
                self.apply.apply(&m);
                self.stats.applied.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .applied_items
                    .fetch_add(m.items.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!("bus: message {seq}: {e}");
                flush(&*self.apply, &self.stats, FlushReason::Unreadable);
            }
        }
        self.stats.applied_seq.store(seq, Ordering::Relaxed);
        self.stats.lag_messages.store(pending, Ordering::Relaxed);
        self.stats.lag_ms.store(lag, Ordering::Relaxed);
        true
    }

    /// After a failed pull: when the stream or the consumer is gone, put them back, flushing
    /// when what this member missed cannot be read any more.
    async fn recover(&mut self) -> Result<(), BusError> {
        let mut stream = match self.bus.js.get_stream(&self.bus.config.stream).await {
            Ok(s) => s,
            Err(e) => {
                if !self.stream_missing(&e.to_string()) {
                    return Err(js_error(e));
                }
                self.bus.ensure_stream().await?
            }
        };
        let info = stream.info().await.map_err(js_error)?.clone();
        if info.created != self.created {
            flush(&*self.apply, &self.stats, FlushReason::StreamRecreated);
            self.created = info.created;
            self.last_seq = info.state.last_sequence;
            let _ = stream.delete_consumer(&self.bus.config.node_id).await;
            self.consumer = create_consumer(&self.bus, self.last_seq + 1).await?;
            self.stats
                .applied_seq
                .store(self.last_seq, Ordering::Relaxed);
            return Ok(());
        }
        let exists = stream
            .get_consumer::<pull::Config>(&self.bus.config.node_id)
            .await
            .is_ok();
        if !exists {
            if info.state.first_sequence > self.last_seq + 1 && info.state.messages > 0 {
                flush(&*self.apply, &self.stats, FlushReason::ConsumerLost);
                self.last_seq = info.state.first_sequence - 1;
            }
            self.consumer = create_consumer(&self.bus, self.last_seq + 1).await?;
        }
        Ok(())
    }

    fn stream_missing(&self, error: &str) -> bool {
        error.contains("not found") || error.contains("10059")
    }
}

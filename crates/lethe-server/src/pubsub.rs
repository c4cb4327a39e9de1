//! The pub/sub registry shared by every connection: which clients listen on which channels and
//! patterns, and delivery of published messages to them.
//!
//! Each connection owns a channel of push frames ([`Pushes`], read through [`PushReceiver`]);
//! subscribing registers its sender here under the client id, and `PUBLISH` sends the
//! `message`/`pmessage` frame down every matching sender. The connection loop writes those frames
//! between commands, encoded in the protocol the client speaks at that moment (arrays in RESP2,
//! `>` pushes in RESP3). Client-side caching's invalidation messages use the same channel.
//!
//! Sending never waits: a publisher must not stall on a slow subscriber. Instead, as Redis does
//! with a client's output buffer, the channel counts the bytes queued and, past the client's
//! `client-output-buffer-limit` (hard, or soft for longer than its seconds; the `pubsub` class
//! while the client has subscriptions, `normal` otherwise), refuses further frames and marks
//! the client for disconnection, which its connection loop carries out.

use crate::frame::Frame;
use crate::limits::{ClientClass, Limits};
use bytes::Bytes;
use lethe::pattern::Glob;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The sending half of a connection's push channel: a cheap, cloneable handle whose
/// [`Pushes::send`] never blocks.
#[derive(Clone, Debug)]
pub struct Pushes {
    shared: Arc<Shared>,
}

/// The connection's end of its push channel.
#[derive(Debug)]
pub struct PushReceiver {
    rx: UnboundedReceiver<(Frame, usize)>,
    shared: Arc<Shared>,
}

/// Frames with their estimated size, so the receiver can count them out.
type Sender = UnboundedSender<(Frame, usize)>;

#[derive(Debug)]
struct Shared {
    limits: Arc<Limits>,
    /// The sender (taken on overflow, which closes the channel) and since when the soft limit
    /// has been exceeded.
    state: Mutex<(Option<Sender>, Option<Instant>)>,
    /// Estimated encoded bytes queued and not yet taken by the connection.
    queued: AtomicUsize,
    /// Whether the client counts as a pub/sub client for its limit.
    pubsub: AtomicBool,
    overflowed: AtomicBool,
    overflow: Notify,
}

/// A new push channel whose limits are `limits`' output buffer limits.
pub fn channel(limits: Arc<Limits>) -> (Pushes, PushReceiver) {
    let (tx, rx) = unbounded_channel();
    let shared = Arc::new(Shared {
        limits,
        state: Mutex::new((Some(tx), None)),
        queued: AtomicUsize::new(0),
        pubsub: AtomicBool::new(false),
        overflowed: AtomicBool::new(false),
        overflow: Notify::new(),
    });
    (
        Pushes {
            shared: shared.clone(),
        },
        PushReceiver { rx, shared },
    )
}

impl Pushes {
    /// Queues `frame` for the client without waiting. Returns false when it was dropped: the
    /// connection is gone, or this frame took the client over its output buffer limit (the
    /// client is then disconnected and everything after it dropped too).
    pub fn send(&self, frame: Frame) -> bool {
        let size = frame.approx_size();
        let class = if self.shared.pubsub.load(Ordering::Relaxed) {
            ClientClass::PubSub
        } else {
            ClientClass::Normal
        };
        let limit = self.shared.limits.output_buffer_limit(class);
        let mut state = self.shared.state.lock();
        if state.0.is_none() {
            return false;
        }
        let queued = (self.shared.queued.load(Ordering::Relaxed) + size) as u64;
        let over_hard = limit.hard > 0 && queued > limit.hard;
        let over_soft = limit.soft > 0 && queued > limit.soft;
        // As Redis: the soft limit must be exceeded continuously for longer than its seconds.
        let soft_expired = if over_soft {
            let since = *state.1.get_or_insert_with(Instant::now);
            // Whole seconds, as Redis counts them: with 0 seconds, a burst within a second
            // is tolerated.
            since.elapsed().as_secs() > limit.soft_seconds
        } else {
            state.1 = None;
            false
        };
        if over_hard || soft_expired {
            // Dropping the only sender closes the channel; the flag and the notification make
            // the connection close without draining what is queued.
            state.0 = None;
            self.shared.overflowed.store(true, Ordering::Release);
            self.shared.overflow.notify_one();
            self.shared.limits.output_buffer_disconnection();
            return false;
        }
        self.shared.queued.fetch_add(size, Ordering::Relaxed);
        state
            .0
            .as_ref()
            .is_some_and(|tx| tx.send((frame, size)).is_ok())
    }

    /// Tells the channel which output buffer class applies: `pubsub` while subscribed.
    pub fn set_pubsub(&self, subscribed: bool) {
        self.shared.pubsub.store(subscribed, Ordering::Relaxed);
    }

    /// Estimated bytes queued and not yet written (CLIENT LIST `omem`-like).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }
}

impl PushReceiver {
    fn took(&self, item: (Frame, usize)) -> Frame {
        self.shared.queued.fetch_sub(item.1, Ordering::Relaxed);
        item.0
    }

    /// The next frame; `None` once the client went over its output buffer limit (and must be
    /// closed without writing what is queued).
    pub async fn recv(&mut self) -> Option<Frame> {
        if self.overflowed() {
            return None;
        }
        let item = self.rx.recv().await?;
        if self.overflowed() {
            return None;
        }
        Some(self.took(item))
    }

    /// A frame already queued, if any (and the client is within its limit).
    pub fn try_recv(&mut self) -> Option<Frame> {
        if self.overflowed() {
            return None;
        }
        let item = self.rx.try_recv().ok()?;
        Some(self.took(item))
    }

    /// Whether the client went over its output buffer limit.
    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// A handle that waits for the overflow, usable while the receiver is borrowed (the
    /// connection waits on it while blocked writing to a slow client).
    pub fn overflow_watch(&self) -> OverflowWatch {
        OverflowWatch(self.shared.clone())
    }
}

/// Completes when a client goes over its output buffer limit.
#[derive(Debug)]
pub struct OverflowWatch(Arc<Shared>);

impl OverflowWatch {
    /// Waits for the overflow (at once if it already happened).
    pub async fn wait(&self) {
        while !self.0.overflowed.load(Ordering::Acquire) {
            self.0.overflow.notified().await;
        }
    }
}

/// Subscribers by channel and by pattern.
#[derive(Debug, Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, Pushes>>,
    patterns: HashMap<Bytes, (Glob, HashMap<u64, Pushes>)>,
    /// Shard channels (SSUBSCRIBE): a namespace of their own, which patterns do not match.
    /// One server is the whole cluster's only shard, so every shard channel is local.
    shard: HashMap<Bytes, HashMap<u64, Pushes>>,
}

/// Registers `id` under `name` in `map`.
fn add(map: &mut HashMap<Bytes, HashMap<u64, Pushes>>, name: &Bytes, id: u64, tx: &Pushes) {
    map.entry(name.clone()).or_default().insert(id, tx.clone());
}

/// Removes `id` from `name` in `map`, dropping the entry once nobody is left, so the registry
/// does not grow with every channel ever used.
fn drop_from(map: &mut HashMap<Bytes, HashMap<u64, Pushes>>, name: &[u8], id: u64) {
    if let Some(subs) = map.get_mut(name) {
        subs.remove(&id);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

/// The names in `map` matching `pattern` (all without one).
fn matching(map: &HashMap<Bytes, HashMap<u64, Pushes>>, pattern: Option<&[u8]>) -> Vec<Bytes> {
    let glob = pattern.map(Glob::new);
    map.keys()
        .filter(|name| glob.as_ref().is_none_or(|g| g.matches(name)))
        .cloned()
        .collect()
}

impl PubSub {
    /// An empty registry.
    pub fn new() -> PubSub {
        PubSub::default()
    }

    /// Registers client `id` on `channel`.
    pub fn subscribe(&self, channel: &Bytes, id: u64, tx: &Pushes) {
        add(&mut self.inner.lock().channels, channel, id, tx);
    }

    /// Removes client `id` from `channel`.
    pub fn unsubscribe(&self, channel: &[u8], id: u64) {
        drop_from(&mut self.inner.lock().channels, channel, id);
    }

    /// Registers client `id` on shard channel `channel`.
    pub fn ssubscribe(&self, channel: &Bytes, id: u64, tx: &Pushes) {
        add(&mut self.inner.lock().shard, channel, id, tx);
    }

    /// Removes client `id` from shard channel `channel`.
    pub fn sunsubscribe(&self, channel: &[u8], id: u64) {
        drop_from(&mut self.inner.lock().shard, channel, id);
    }

    /// Channels with subscribers, matching `pattern` if given (PUBSUB CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        matching(&self.inner.lock().channels, pattern)
    }

    /// Shard channels with subscribers, matching `pattern` if given (PUBSUB SHARDCHANNELS).
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        matching(&self.inner.lock().shard, pattern)
    }

    /// Subscribers of `channel` (patterns not counted) or, with `shard`, of the shard channel.
    pub fn numsub(&self, channel: &[u8], shard: bool) -> usize {
        let inner = self.inner.lock();
        let map = if shard { &inner.shard } else { &inner.channels };
        map.get(channel).map_or(0, HashMap::len)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.inner.lock().patterns.len()
    }

    /// Sends `message` to every subscriber of shard channel `channel` as `smessage`; returns
    /// how many got it.
    pub fn spublish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let inner = self.inner.lock();
        let Some(subs) = inner.shard.get(channel) else {
            return 0;
        };
        for tx in subs.values() {
            let _ = tx.send(Frame::Push(vec![
                Frame::bulk("smessage"),
                Frame::Bulk(channel.clone()),
                Frame::Bulk(message.clone()),
            ]));
        }
        subs.len()
    }

    /// Registers client `id` on `pattern`.
    pub fn psubscribe(&self, pattern: &Bytes, id: u64, tx: &Pushes) {
        let mut inner = self.inner.lock();
        inner
            .patterns
            .entry(pattern.clone())
            .or_insert_with(|| (Glob::new(pattern), HashMap::new()))
            .1
            .insert(id, tx.clone());
    }

    /// Removes client `id` from `pattern`.
    pub fn punsubscribe(&self, pattern: &[u8], id: u64) {
        let mut inner = self.inner.lock();
        if let Some((_, subs)) = inner.patterns.get_mut(pattern) {
            subs.remove(&id);
            if subs.is_empty() {
                inner.patterns.remove(pattern);
            }
        }
    }

    /// Sends `message` to every subscriber of `channel` and of a pattern matching it; returns
    /// how many deliveries were made (a client on the channel and on two matching patterns
    /// counts three times, as in Redis).
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let inner = self.inner.lock();
        let mut receivers = 0;
        if let Some(subs) = inner.channels.get(channel) {
            for tx in subs.values() {
                let frame = Frame::Push(vec![
                    Frame::bulk("message"),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                // A closed receiver is a client on its way out; it unregisters itself.
                let _ = tx.send(frame);
                receivers += 1;
            }
        }
        for (pattern, (glob, subs)) in &inner.patterns {
            if !glob.matches(channel) {
                continue;
            }
            for tx in subs.values() {
                let frame = Frame::Push(vec![
                    Frame::bulk("pmessage"),
                    Frame::Bulk(pattern.clone()),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                let _ = tx.send(frame);
                receivers += 1;
            }
        }
        receivers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_counts_channel_and_pattern_deliveries() {
        let ps = PubSub::new();
        let (tx, mut rx) = channel(Arc::new(Limits::new()));
        let ch = Bytes::from_static(b"news.tech");
        ps.subscribe(&ch, 1, &tx);
        ps.psubscribe(&Bytes::from_static(b"news.*"), 1, &tx);
        ps.psubscribe(&Bytes::from_static(b"sport.*"), 1, &tx);
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"hi")), 2);
        assert!(matches!(rx.try_recv(), Some(Frame::Push(f)) if f.len() == 3));
        assert!(matches!(rx.try_recv(), Some(Frame::Push(f)) if f.len() == 4));
        ps.unsubscribe(&ch, 1);
        ps.punsubscribe(b"news.*", 1);
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"hi")), 0);
        assert!(ps.inner.lock().channels.is_empty());
    }

    #[test]
    fn shard_channels_are_a_namespace_of_their_own() {
        let ps = PubSub::new();
        let (tx, mut rx) = channel(Arc::new(Limits::new()));
        let ch = Bytes::from_static(b"orders");
        ps.ssubscribe(&ch, 1, &tx);
        ps.psubscribe(&Bytes::from_static(b"*"), 2, &tx);
        // PUBLISH does not reach shard subscribers, nor SPUBLISH pattern subscribers.
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"a")), 1);
        assert!(matches!(rx.try_recv(), Some(Frame::Push(f)) if f[0] == Frame::bulk("pmessage")));
        assert_eq!(ps.spublish(&ch, &Bytes::from_static(b"b")), 1);
        assert!(matches!(rx.try_recv(), Some(Frame::Push(f)) if f[0] == Frame::bulk("smessage")));
        assert_eq!(
            (ps.numsub(b"orders", true), ps.numsub(b"orders", false)),
            (1, 0)
        );
        assert_eq!(ps.shard_channels(Some(b"ord*")), vec![ch.clone()]);
        assert!(ps.shard_channels(Some(b"x*")).is_empty());
        assert!(ps.channels(None).is_empty());
        assert_eq!(ps.numpat(), 1);
        ps.sunsubscribe(b"orders", 1);
        assert_eq!(ps.spublish(&ch, &Bytes::from_static(b"c")), 0);
        assert!(ps.inner.lock().shard.is_empty());
    }

    #[test]
    fn over_the_hard_limit_the_channel_refuses_and_reports_overflow() {
        let limits = Arc::new(Limits::new());
        limits.set_output_buffer_limits("pubsub 1000 0 0").unwrap();
        let (tx, mut rx) = channel(limits.clone());
        let frame = || Frame::Push(vec![Frame::bulk(vec![b'x'; 300])]);
        // A normal client has no limit by default.
        for _ in 0..10 {
            assert!(tx.send(frame()));
        }
        while rx.try_recv().is_some() {}
        assert_eq!(tx.queued_bytes(), 0);
        tx.set_pubsub(true);
        assert!(tx.send(frame()));
        assert!(tx.send(frame()));
        assert!(tx.send(frame()));
        assert!(!rx.overflowed());
        assert!(!tx.send(frame()), "the fourth frame goes over 1000 bytes");
        assert!(rx.overflowed());
        assert!(!tx.send(frame()));
        assert_eq!(
            rx.try_recv(),
            None,
            "nothing queued is written after overflow"
        );
        assert_eq!(limits.output_buffer_disconnections(), 1);
    }

    #[test]
    fn taking_frames_frees_room_under_the_limit() {
        let limits = Arc::new(Limits::new());
        limits.set_output_buffer_limits("normal 1000 0 0").unwrap();
        let (tx, mut rx) = channel(limits);
        for _ in 0..100 {
            assert!(tx.send(Frame::bulk(vec![b'x'; 300])));
            assert!(rx.try_recv().is_some());
        }
        assert!(!rx.overflowed());
    }

    #[test]
    fn the_soft_limit_allows_a_burst_until_its_seconds_pass() {
        let limits = Arc::new(Limits::new());
        limits.set_output_buffer_limits("normal 0 500 0").unwrap();
        let (tx, mut rx) = channel(limits);
        let frame = || Frame::bulk(vec![b'x'; 300]);
        assert!(tx.send(frame()));
        // Over the soft limit: tolerated for now (for 0 whole seconds).
        assert!(tx.send(frame()));
        // Back under it resets the clock.
        while rx.try_recv().is_some() {}
        assert!(tx.send(frame()));
        assert!(tx.send(frame()));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(
            !tx.send(frame()),
            "still over the soft limit a second later"
        );
        assert!(rx.overflowed());
    }
}

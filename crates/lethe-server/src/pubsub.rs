//! The pub/sub registry shared by every connection: which clients listen on which channels and
//! patterns, and delivery of published messages to them.
//!
//! Each connection owns an unbounded channel of push frames ([`Pushes`]); subscribing registers
//! its sender here under the client id, and `PUBLISH` sends the `message`/`pmessage` frame down
//! every matching sender. The connection loop writes those frames between commands, encoded in
//! the protocol the client speaks at that moment (arrays in RESP2, `>` pushes in RESP3). The
//! channel is unbounded because a publisher must never wait on a slow subscriber; Redis bounds
//! the subscriber's output buffer instead and disconnects it, which is not reproduced here.

use crate::frame::Frame;
use bytes::Bytes;
use lethe::Glob;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::mpsc::UnboundedSender;

/// The sending half of a connection's push channel.
pub type Pushes = UnboundedSender<Frame>;

/// Subscribers by channel and by pattern.
#[derive(Debug, Default)]
pub struct PubSub {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    channels: HashMap<Bytes, HashMap<u64, Pushes>>,
    patterns: HashMap<Bytes, (Glob, HashMap<u64, Pushes>)>,
}

impl PubSub {
    /// An empty registry.
    pub fn new() -> PubSub {
        PubSub::default()
    }

    /// Registers client `id` on `channel`.
    pub fn subscribe(&self, channel: &Bytes, id: u64, tx: &Pushes) {
        let mut inner = self.inner.lock();
        inner
            .channels
            .entry(channel.clone())
            .or_default()
            .insert(id, tx.clone());
    }

    /// Removes client `id` from `channel`.
    pub fn unsubscribe(&self, channel: &[u8], id: u64) {
        let mut inner = self.inner.lock();
        if let Some(subs) = inner.channels.get_mut(channel) {
            subs.remove(&id);
            // Drop empty entries so the registry does not grow with every channel ever used.
            if subs.is_empty() {
                inner.channels.remove(channel);
            }
        }
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
    use tokio::sync::mpsc::unbounded_channel;

    #[test]
    fn publish_counts_channel_and_pattern_deliveries() {
        let ps = PubSub::new();
        let (tx, mut rx) = unbounded_channel();
        let ch = Bytes::from_static(b"news.tech");
        ps.subscribe(&ch, 1, &tx);
        ps.psubscribe(&Bytes::from_static(b"news.*"), 1, &tx);
        ps.psubscribe(&Bytes::from_static(b"sport.*"), 1, &tx);
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"hi")), 2);
        assert!(matches!(rx.try_recv(), Ok(Frame::Push(f)) if f.len() == 3));
        assert!(matches!(rx.try_recv(), Ok(Frame::Push(f)) if f.len() == 4));
        ps.unsubscribe(&ch, 1);
        ps.punsubscribe(b"news.*", 1);
        assert_eq!(ps.publish(&ch, &Bytes::from_static(b"hi")), 0);
        assert!(ps.inner.lock().channels.is_empty());
    }
}

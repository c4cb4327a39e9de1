//! Clients blocked on list and sorted set keys (BLPOP, BLMOVE, BZPOPMIN, BZMPOP, ...), and
//! waking them when a list or sorted set appears under one of their keys.
//!
//! A blocked client registers a [`Waiter`] on its keys while it holds their locks (so no push
//! can fall between its last look and its registration) and stays registered, in arrival
//! order, until it is served, times out or goes away. A write that leaves a list or sorted set at a key
//! ([`Blocking::signal`], called by the keyspace's write path) wakes the longest-waiting client
//! on that key only; a client leaving the queue, served or not, passes the wake-up on to the
//! next one. So clients are served first come, first served, as in Redis, and a push of one
//! element wakes one client, not all of them.

use super::SmallBytes;
type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One blocked client's registration.
#[derive(Debug)]
pub struct Waiter {
    id: u64,
    /// Stored keys; SWAPDB changes their database prefix.
    keys: Mutex<Vec<SmallBytes>>,
    notify: tokio::sync::Notify,
}

impl Waiter {
    /// Resolves once a list may be ready at one of the keys (a wake-up that came before the
    /// call is kept for it).
    pub async fn ready(&self) {
        self.notify.notified().await;
    }
}

/// The queues of blocked clients, by stored key.
#[derive(Debug, Default)]
pub struct Blocking {
    /// Registered waiters, so that writes skip the lock when nobody is blocked.
    waiting: AtomicUsize,
    next: AtomicU64,
    queues: Mutex<HashMap<SmallBytes, VecDeque<Arc<Waiter>>>>,
}

impl Blocking {
    /// Registers a client blocked on `keys` (stored form), behind those already waiting.
    pub fn register(&self, keys: Vec<SmallBytes>) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            keys: Mutex::new(keys),
            notify: tokio::sync::Notify::new(),
        });
        let mut queues = self.queues.lock();
        for key in waiter.keys.lock().iter() {
            let queue = queues.entry(key.clone()).or_default();
            if !queue.iter().any(|w| w.id == waiter.id) {
                queue.push_back(waiter.clone());
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        waiter
    }

    /// Removes `waiter` from every queue and passes a wake-up on to the next client of each of
    /// its keys (whatever it left there may serve them).
    pub fn unregister(&self, waiter: &Arc<Waiter>) {
        let mut queues = self.queues.lock();
        for key in waiter.keys.lock().iter() {
            if let Some(queue) = queues.get_mut(key) {
                queue.retain(|w| w.id != waiter.id);
                match queue.front() {
                    Some(next) => next.notify.notify_one(),
                    None => {
                        queues.remove(key);
                    }
                }
            }
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// A list or sorted set is now at `key` (stored form): wakes the client that has waited longest on it.
    #[inline]
    pub fn signal(&self, key: &[u8]) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(first) = self.queues.lock().get(key).and_then(VecDeque::front) {
            first.notify.notify_one();
        }
    }

    /// SWAPDB traded the contents of database prefixes `a` and `b`: a client blocked on a key
    /// of one now waits on the same name in the other, and is woken to look again (as Redis
    /// wakes a client whose key exists in the database swapped in; a wake-up that finds
    /// nothing leaves it waiting in its place).
    pub fn swap_prefixes(&self, a: u8, b: u8) {
        if a == b || self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let swap = |key: &SmallBytes| -> Option<SmallBytes> {
            let other = match key.first() {
                Some(&p) if p == a => b,
                Some(&p) if p == b => a,
                _ => return None,
            };
            Some(SmallBytes::with_prefix(other, &key[1..]))
        };
        let mut queues = self.queues.lock();
        let moved: Vec<SmallBytes> = queues
            .keys()
            .filter(|k| swap(k).is_some())
            .cloned()
            .collect();
        let mut taken: Vec<(SmallBytes, VecDeque<Arc<Waiter>>)> = moved
            .iter()
            .filter_map(|k| queues.remove(k).map(|q| (k.clone(), q)))
            .collect();
        for (key, queue) in taken.drain(..) {
            for w in &queue {
                let mut keys = w.keys.lock();
                for k in keys.iter_mut() {
                    if *k == key {
                        *k = swap(&key).unwrap_or_else(|| key.clone());
                    }
                }
            }
            if let Some(first) = queue.front() {
                first.notify.notify_one();
            }
            queues.insert(swap(&key).unwrap_or(key), queue);
        }
    }

    /// Wakes every blocked client to look again (the cluster's slot map changed: one whose
    /// key's slot left this node is answered with a redirection instead of waiting on).
    pub fn wake_all(&self) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        for queue in self.queues.lock().values() {
            for w in queue {
                w.notify.notify_one();
            }
        }
    }

    /// Clients blocked (INFO's `blocked_clients`).
    pub fn blocked(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SmallBytes {
        SmallBytes::new(s.as_bytes())
    }

    #[tokio::test]
    async fn the_longest_waiting_client_is_woken_and_leaving_passes_it_on() {
        let b = Blocking::default();
        let first = b.register(vec![key("k"), key("j")]);
        let second = b.register(vec![key("k")]);
        assert_eq!(b.blocked(), 2);
        b.signal(b"k");
        // Only the first is woken.
        tokio::time::timeout(std::time::Duration::from_secs(5), first.ready())
            .await
            .unwrap();
        let second_woken =
            tokio::time::timeout(std::time::Duration::from_millis(50), second.ready()).await;
        assert!(second_woken.is_err());
        // The first leaves (served): the second is woken in its turn.
        b.unregister(&first);
        tokio::time::timeout(std::time::Duration::from_secs(5), second.ready())
            .await
            .unwrap();
        b.unregister(&second);
        assert_eq!(b.blocked(), 0);
        assert!(b.queues.lock().is_empty());
        b.signal(b"k");
    }
}

//! Which keys hold hashes with field deadlines (HEXPIRE and relatives), by their earliest
//! deadline, so the server's active sweep finds the fields due without scanning the keyspace.
//!
//! Commands register a key when they give one of its fields a deadline (and when RENAME, COPY
//! or MOVE put such a hash under a new key). The index may name keys that have since changed
//! or gone: the sweep checks each key it takes under the key's lock, removes the fields due
//! (and the key once no field is left), and registers the key again at its next deadline if it
//! still has one. A key is taken when its registered deadline passes, in deadline order, and at
//! most a fixed number of keys per sweep, so one sweep's work is bounded.

use super::SmallBytes;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};

/// The index of keys with field deadlines.
#[derive(Debug, Default)]
pub struct FieldExpiry {
    inner: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    /// (earliest deadline in Unix ms, stored key), in deadline order.
    due: BTreeSet<(i64, SmallBytes)>,
    /// Each registered key's entry in `due`.
    at: HashMap<SmallBytes, i64>,
}

impl FieldExpiry {
    /// Notes that `key` (stored form) has a field due at `deadline` (Unix ms); an earlier
    /// registration of the key is kept if it is due sooner.
    pub fn register(&self, key: &SmallBytes, deadline: i64) {
        let mut idx = self.inner.lock();
        match idx.at.get(key) {
            Some(&old) if old <= deadline => {}
            Some(&old) => {
                idx.due.remove(&(old, key.clone()));
                idx.due.insert((deadline, key.clone()));
                idx.at.insert(key.clone(), deadline);
            }
            None => {
                idx.due.insert((deadline, key.clone()));
                idx.at.insert(key.clone(), deadline);
            }
        }
    }

    /// Takes up to `max` keys whose registered deadline is before `now`, soonest first.
    pub fn take_due(&self, now: i64, max: usize) -> Vec<SmallBytes> {
        let mut idx = self.inner.lock();
        let mut out = Vec::new();
        while out.len() < max {
            let Some((at, _)) = idx.due.first() else {
                break;
            };
            if *at >= now {
                break;
            }
            let (_, key) = idx.due.pop_first().expect("checked above");
            idx.at.remove(&key);
            out.push(key);
        }
        out
    }

    /// Keys registered (for tests and INFO-like introspection).
    pub fn len(&self) -> usize {
        self.inner.lock().at.len()
    }

    /// Whether no key is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_due_in_deadline_order_at_most_max_at_a_time() {
        let fe = FieldExpiry::default();
        let k = |s: &str| SmallBytes::new(s.as_bytes());
        fe.register(&k("a"), 30);
        fe.register(&k("b"), 10);
        fe.register(&k("c"), 20);
        // A later deadline does not postpone an earlier one; an earlier one advances it.
        fe.register(&k("b"), 50);
        fe.register(&k("a"), 5);
        assert_eq!(fe.len(), 3);
        assert!(fe.take_due(5, 10).is_empty());
        assert_eq!(fe.take_due(100, 2), vec![k("a"), k("b")]);
        assert_eq!(fe.take_due(100, 2), vec![k("c")]);
        assert!(fe.is_empty());
    }
}

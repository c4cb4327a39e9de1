//! The refresh workers' queue: background reloads for refresh-ahead and
//! stale-while-revalidate, run on a few std threads so the reader that noticed the need never
//! waits for the source.
//!
//! Refreshes are an optimisation, so the queue is bounded and drops rather than blocks: a
//! reader must never wait for room. A job carries its flight's leader, so a job that is
//! dropped (queue full, or shutdown) abandons its flight and anyone who joined it loads for
//! themselves.

use super::single_flight::Leader;
// Paired with a condvar, and loader threads are outside the Shuttle tests (see crate::sync).
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;

/// Jobs queued per worker thread before more are dropped.
pub(crate) const JOBS_PER_THREAD: usize = 256;

/// Why a key is refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefreshKind {
    /// The entry is live and early expiration said to refresh it: a compare-and-set on its
    /// version replaces it.
    Early,
    /// The entry expired and its stale value is being served: a lease fill replaces it.
    Stale,
}

/// One background refresh.
#[derive(Debug)]
pub(crate) struct Job<K: Hash + Eq, V: Clone, E> {
    pub(crate) leader: Leader<K, V, E>,
    pub(crate) kind: RefreshKind,
}

struct State<T> {
    jobs: VecDeque<T>,
    closing: bool,
}

/// A bounded job queue for the worker threads.
pub(crate) struct RefreshQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
}

impl<T> fmt::Debug for RefreshQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("RefreshQueue")
            .field("jobs", &st.jobs.len())
            .field("capacity", &self.capacity)
            .field("closing", &st.closing)
            .finish()
    }
}

impl<T> RefreshQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        RefreshQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closing: false,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// Queues `job`, or hands it back when the queue is full or closed.
    pub(crate) fn push(&self, job: T) -> Result<(), T> {
        let mut st = self.state.lock();
        if st.closing || st.jobs.len() >= self.capacity {
            return Err(job);
        }
        st.jobs.push_back(job);
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job; `None` once closed.
    pub(crate) fn next(&self) -> Option<T> {
        let mut st = self.state.lock();
        loop {
            if st.closing {
                return None;
            }
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            self.ready.wait(&mut st);
        }
    }

    /// Stops the workers; jobs not started are dropped (outside the lock, since dropping a
    /// job ends its flight).
    pub(crate) fn close(&self) {
        let dropped = {
            let mut st = self.state.lock();
            st.closing = true;
            std::mem::take(&mut st.jobs)
        };
        self.ready.notify_all();
        drop(dropped);
    }
}

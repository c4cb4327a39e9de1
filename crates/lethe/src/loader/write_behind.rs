//! Write-behind: acknowledged writes queued in memory and applied to the source in batches by
//! one flusher thread.
//!
//! What it promises, and how:
//! - **Per-key order.** Ops enter one FIFO queue in acknowledgement order (the loader
//!   serialises writes to a key around the cache update and the enqueue) and one thread
//!   writes batches one after another, each retried to completion or given up on before the
//!   next. Within a batch, consecutive ops on a key are coalesced into the last one, which
//!   leaves the source in the same state with fewer writes.
//! - **Bounded memory, backpressure.** At most `queue_capacity` ops are acknowledged and not
//!   yet written (queued or in the batch being written); a writer finding the queue full
//!   waits, or with the `try_` forms gets an error.
//! - **Retries.** A failing batch is retried whole with exponential backoff; if it still
//!   fails, its ops are tried one at a time so one bad op does not fail the others; what
//!   still fails goes to the dead-letter list and to the [`DeadLetter`] handler, and the key
//!   is invalidated in the cache so the cache stops claiming a write the source never got.
//! - **Nothing acknowledged is lost on shutdown.** Closing stops new writes, then the flusher
//!   writes everything queued (and anything a writer had reserved room for) before it exits;
//!   the loader joins it.
//! - **Read your writes.** Until an op is written, a load of its key answers from the queue
//!   (the latest pending op) rather than from the source, so an evicted entry is not refilled
//!   with the value the write is about to replace.

use super::source::WriteOp;
use super::stats::{WriteCounters, add, bump};
use crate::collections::HashMap;
// Paired with a condvar, and loader threads are outside the Shuttle tests (see crate::sync).
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// How write-behind batches, bounds and retries; see [`super::WriteMode::Behind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteBehindConfig {
    /// Most ops acknowledged but not yet written (queued or being written). Default 1024.
    pub queue_capacity: usize,
    /// Most ops per batch. Default 64.
    pub max_batch: usize,
    /// Longest an op waits for its batch to fill before the batch is written anyway (real
    /// time, not the cache's clock). Default 10 ms.
    pub max_delay: Duration,
    /// Retries of a failing batch.
    pub retry: RetryPolicy,
}

impl Default for WriteBehindConfig {
    fn default() -> Self {
        WriteBehindConfig {
            queue_capacity: 1024,
            max_batch: 64,
            max_delay: Duration::from_millis(10),
            retry: RetryPolicy::default(),
        }
    }
}

impl WriteBehindConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Self::queue_capacity`].
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// Sets [`Self::max_batch`].
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// Sets [`Self::max_delay`].
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Sets [`Self::retry`].
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }
}

/// How often, and how patiently, a failing write-behind batch is retried.
///
/// A batch is tried `attempts` times in all; before try `n + 1` the flusher sleeps `backoff ×
/// 2^(n-1)`, capped at 64 × `backoff`. If the last try fails and the batch holds several
/// ops, each is tried once more on its own before it is given up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Tries per batch, at least 1. Default 5.
    pub attempts: u32,
    /// Wait before the first retry. Default 10 ms.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(10),
        }
    }
}

impl RetryPolicy {
    /// `attempts` tries in all, the first retry after `backoff`.
    pub fn new(attempts: u32, backoff: Duration) -> Self {
        RetryPolicy { attempts, backoff }
    }

    fn delay(&self, retry: u32) -> Duration {
        self.backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(6))
    }
}

/// A write-behind op given up on after its retries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedWrite<K, V> {
    /// The op, as it would have been written.
    pub op: WriteOp<K, V>,
    /// The last error, as the source's error displayed it.
    pub error: String,
    /// Tries made (batch tries plus the final one on its own).
    pub attempts: u32,
}

/// Hears of every write-behind op given up on, as it happens: the way to learn of failures
/// when the loader is dropped rather than shut down (see [`super::Loader::shutdown`]).
///
/// # Contract
/// - Called once per failed op, on the flusher thread, after the key was invalidated in the
///   cache (unless a later write to it is pending) and before [`super::Loader::flush`] calls
///   waiting for that op return.
/// - Must not write through the same loader (the flusher would wait for itself when the
///   queue is full); hand the op to another thread or a durable log instead.
pub trait DeadLetter<K, V>: Send + Sync + 'static {
    /// `failed` will not be retried.
    fn on_failed(&self, failed: &FailedWrite<K, V>);
}

impl<K, V, F> DeadLetter<K, V> for F
where
    F: Fn(&FailedWrite<K, V>) + Send + Sync + 'static,
{
    fn on_failed(&self, failed: &FailedWrite<K, V>) {
        self(failed)
    }
}

/// What the flusher writes to and reports failures to.
pub(crate) trait Sink<K, V>: Send + Sync {
    /// Writes one batch; the error as displayed.
    fn write_batch(&self, batch: &[WriteOp<K, V>]) -> Result<(), String>;
    /// An op was given up on; `superseded` says a later op on its key is still pending.
    fn failed(&self, failed: &FailedWrite<K, V>, superseded: bool);
}

/// Why a write could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

struct Queued<K, V> {
    seq: u64,
    op: WriteOp<K, V>,
    at: Instant,
}

struct State<K, V> {
    queue: VecDeque<Queued<K, V>>,
    /// Room promised to writers that have not pushed yet.
    reserved: usize,
    /// Ops taken by the flusher and not yet written or given up on.
    in_flight: usize,
    closing: bool,
    /// Sequence number of the latest op pushed.
    pushed: u64,
    /// Every op up to this sequence number is written or given up on.
    done: u64,
    /// A flush wants ops up to here written without waiting for `max_delay`.
    flush_to: u64,
    /// Latest pending op per key, for reads: its sequence number and value (`None`: delete).
    pending: HashMap<K, (u64, Option<V>)>,
    dead: Vec<FailedWrite<K, V>>,
}

/// The queue and its flusher's state.
pub(crate) struct WriteBehind<K, V> {
    config: WriteBehindConfig,
    state: Mutex<State<K, V>>,
    /// Room became free (or the queue closed).
    room: Condvar,
    /// Work for the flusher (or the queue closed).
    work: Condvar,
    /// `done` advanced.
    progress: Condvar,
    pub(crate) counters: WriteCounters,
}

impl<K, V> fmt::Debug for WriteBehind<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("WriteBehind")
            .field("config", &self.config)
            .field("queued", &st.queue.len())
            .field("in_flight", &st.in_flight)
            .field("closing", &st.closing)
            .field("dead", &st.dead.len())
            .finish()
    }
}

/// Room for one op, taken before the cache is updated so that a full queue leaves the cache
/// untouched; given back if dropped unused.
pub(crate) struct Reservation<'a, K: Hash + Eq + Clone, V: Clone> {
    wb: &'a WriteBehind<K, V>,
    used: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Reservation<'_, K, V> {
    /// Queues `op`: from here it is acknowledged.
    pub(crate) fn push(mut self, op: WriteOp<K, V>) {
        self.used = true;
        let mut st = self.wb.state.lock();
        st.reserved -= 1;
        st.pushed += 1;
        let seq = st.pushed;
        st.pending
            .insert(op.key().clone(), (seq, op.value().cloned()));
        st.queue.push_back(Queued {
            seq,
            op,
            at: Instant::now(),
        });
        drop(st);
        bump(&self.wb.counters.queued);
        self.wb.work.notify_one();
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Reservation<'_, K, V> {
    fn drop(&mut self) {
        if !self.used {
            self.wb.state.lock().reserved -= 1;
            self.wb.room.notify_one();
            // A closing flusher waits for outstanding reservations.
            self.wb.work.notify_one();
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> WriteBehind<K, V> {
    pub(crate) fn new(config: WriteBehindConfig) -> Self {
        WriteBehind {
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                reserved: 0,
                in_flight: 0,
                closing: false,
                pushed: 0,
                done: 0,
                flush_to: 0,
                pending: HashMap::default(),
                dead: Vec::new(),
            }),
            room: Condvar::new(),
            work: Condvar::new(),
            progress: Condvar::new(),
            counters: WriteCounters::default(),
        }
    }

    /// Room for one op; waits for it when `wait`, else fails with [`Refused::Full`].
    pub(crate) fn reserve(&self, wait: bool) -> Result<Reservation<'_, K, V>, Refused> {
        let mut st = self.state.lock();
        loop {
            if st.closing {
                return Err(Refused::Closed);
            }
            if st.queue.len() + st.in_flight + st.reserved < self.config.queue_capacity {
                st.reserved += 1;
                return Ok(Reservation {
                    wb: self,
                    used: false,
                });
            }
            if !wait {
                return Err(Refused::Full);
            }
            self.room.wait(&mut st);
        }
    }

    /// The latest op on `key` not yet written: `Some(None)` for a pending delete.
    pub(crate) fn pending(&self, key: &K) -> Option<Option<V>> {
        self.state.lock().pending.get(key).map(|(_, v)| v.clone())
    }

    /// Waits until every op pushed before the call is written or given up on.
    pub(crate) fn flush(&self) {
        let mut st = self.state.lock();
        let target = st.pushed;
        if st.done >= target {
            return;
        }
        st.flush_to = st.flush_to.max(target);
        self.work.notify_one();
        while st.done < target {
            self.progress.wait(&mut st);
        }
    }

    /// Refuses new writes; the flusher drains the queue and returns.
    pub(crate) fn close(&self) {
        self.state.lock().closing = true;
        self.room.notify_all();
        self.work.notify_all();
    }

    /// The dead-letter list.
    pub(crate) fn failed(&self) -> Vec<FailedWrite<K, V>> {
        self.state.lock().dead.clone()
    }

    /// The flusher: writes batches until closed and drained.
    pub(crate) fn run(&self, sink: &dyn Sink<K, V>) {
        while let Some(batch) = self.next_batch() {
            let last = batch.last().map_or(0, |q| q.seq);
            let (written, failed) = self.write_out(batch, sink);
            // Forget the pending reads of what is now in the source; a later op on the same
            // key keeps its own.
            let mut report = Vec::with_capacity(failed.len());
            {
                let mut st = self.state.lock();
                for (key, seq) in written {
                    if st.pending.get(&key).is_some_and(|&(s, _)| s <= seq) {
                        st.pending.remove(&key);
                    }
                }
                for (f, seq) in failed {
                    let key = f.op.key();
                    let superseded = st.pending.get(key).is_some_and(|&(s, _)| s > seq);
                    if !superseded {
                        st.pending.remove(key);
                    }
                    report.push((f, superseded));
                }
            }
            // Before `done` moves, so a flush returns only once failures are handled.
            for (f, superseded) in &report {
                sink.failed(f, *superseded);
            }
            let mut st = self.state.lock();
            st.dead.extend(report.into_iter().map(|(f, _)| f));
            st.in_flight = 0;
            st.done = last;
            drop(st);
            self.room.notify_all();
            self.progress.notify_all();
        }
    }

    /// Waits for a batch to be due and takes it; `None` once closed and drained.
    fn next_batch(&self) -> Option<Vec<Queued<K, V>>> {
        let cfg = &self.config;
        let mut st = self.state.lock();
        loop {
            match st.queue.front() {
                Some(first) => {
                    let due = first.at + cfg.max_delay;
                    if st.closing
                        || st.queue.len() >= cfg.max_batch
                        || st.flush_to >= first.seq
                        || Instant::now() >= due
                    {
                        break;
                    }
                    self.work.wait_until(&mut st, due);
                }
                None if st.closing && st.reserved == 0 => return None,
                None => self.work.wait(&mut st),
            }
        }
        let n = st.queue.len().min(cfg.max_batch.max(1));
        st.in_flight = n;
        Some(st.queue.drain(..n).collect())
    }

    /// Writes a batch with retries. Returns the keys written and the ops given up on, each
    /// with the sequence number of the op that stood for its key.
    #[allow(clippy::type_complexity)]
    fn write_out(
        &self,
        batch: Vec<Queued<K, V>>,
        sink: &dyn Sink<K, V>,
    ) -> (Vec<(K, u64)>, Vec<(FailedWrite<K, V>, u64)>) {
        let (seqs, ops, dropped) = coalesce(batch);
        add(&self.counters.coalesced, dropped as u64);
        let retry = self.config.retry;
        let attempts = retry.attempts.max(1);
        let mut error = String::new();
        for n in 1..=attempts {
            if n > 1 {
                bump(&self.counters.retries);
                std::thread::sleep(retry.delay(n - 1));
            }
            match try_write(sink, &ops) {
                Ok(()) => {
                    add(&self.counters.written, ops.len() as u64);
                    let keys = ops.into_iter().map(|op| op.key().clone());
                    return (keys.zip(seqs).collect(), Vec::new());
                }
                Err(e) => error = e,
            }
        }
        let mut written = Vec::new();
        let mut failed = Vec::new();
        let single = ops.len() > 1;
        for (op, seq) in ops.into_iter().zip(seqs) {
            let result = if single {
                try_write(sink, std::slice::from_ref(&op))
            } else {
                Err(error.clone())
            };
            match result {
                Ok(()) => {
                    bump(&self.counters.written);
                    written.push((op.key().clone(), seq));
                }
                Err(e) => {
                    bump(&self.counters.failed);
                    let f = FailedWrite {
                        op,
                        error: e,
                        attempts: attempts + u32::from(single),
                    };
                    failed.push((f, seq));
                }
            }
        }
        (written, failed)
    }
}

/// One try, with a panic in the source turned into a failure.
fn try_write<K, V>(sink: &dyn Sink<K, V>, ops: &[WriteOp<K, V>]) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| sink.write_batch(ops))) {
        Ok(r) => r,
        Err(_) => Err("the source panicked while writing".to_owned()),
    }
}

/// Keeps the last op per key, at its position; returns the kept ops' sequence numbers, the
/// ops, and how many were dropped.
fn coalesce<K: Hash + Eq, V>(batch: Vec<Queued<K, V>>) -> (Vec<u64>, Vec<WriteOp<K, V>>, usize) {
    let keep: Vec<bool> = {
        let mut last: HashMap<&K, usize> = HashMap::default();
        for (i, q) in batch.iter().enumerate() {
            last.insert(q.op.key(), i);
        }
        let mut keep = vec![false; batch.len()];
        for i in last.into_values() {
            keep[i] = true;
        }
        keep
    };
    let batch_len = batch.len();
    let mut seqs = Vec::with_capacity(batch.len());
    let mut ops = Vec::with_capacity(batch.len());
    for (q, k) in batch.into_iter().zip(keep) {
        if k {
            seqs.push(q.seq);
            ops.push(q.op);
        }
    }
    let dropped = batch_len - ops.len();
    (seqs, ops, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(seq: u64, k: u32, v: Option<u32>) -> Queued<u32, u32> {
        Queued {
            seq,
            op: match v {
                Some(v) => WriteOp::Put(k, v),
                None => WriteOp::Delete(k),
            },
            at: Instant::now(),
        }
    }

    #[test]
    fn coalescing_keeps_the_last_op_per_key_in_order() {
        let (seqs, ops, dropped) = coalesce(vec![
            q(1, 1, Some(10)),
            q(2, 2, Some(20)),
            q(3, 1, None),
            q(4, 3, Some(30)),
            q(5, 1, Some(11)),
        ]);
        assert_eq!(seqs, vec![2, 4, 5]);
        assert_eq!(
            ops,
            vec![
                WriteOp::Put(2, 20),
                WriteOp::Put(3, 30),
                WriteOp::Put(1, 11)
            ]
        );
        assert_eq!(dropped, 2);
    }

    #[test]
    fn retry_delays_double_and_are_capped() {
        let r = RetryPolicy::new(10, Duration::from_millis(1));
        assert_eq!(r.delay(1), Duration::from_millis(1));
        assert_eq!(r.delay(2), Duration::from_millis(2));
        assert_eq!(r.delay(3), Duration::from_millis(4));
        assert_eq!(r.delay(20), Duration::from_millis(64));
    }
}

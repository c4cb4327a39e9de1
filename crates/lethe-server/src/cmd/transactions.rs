//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI makes the dispatcher queue commands instead of running them (replying `QUEUED`); a
//! command rejected while queueing (unknown, wrong arity) poisons the transaction so EXEC
//! answers `EXECABORT`. In cluster mode EXEC also requires the whole queue to be in one slot
//! served here (checked under the gate, where a slot map change cannot slip in).
//!
//! EXEC is atomic and isolated without stopping the server: when every queued command names
//! its keys (its key specs), EXEC locks the shards of all of them plus the watched keys, in the
//! engine's fixed shard order, checks the watches and runs the queue under those locks, so no
//! other client sees or changes those keys in between, and commands on other keys go on in
//! parallel. A queue holding a whole-keyspace command (FLUSHALL, KEYS, SELECT, the LETHE.*
//! commands that go through the engine's own write path) holds the keyspace's gate
//! exclusively instead, which no other command runs without.
//!
//! WATCH records a [`WatchStamp`] per key: the engine's version and write times for the entry,
//! or its absence. EXEC aborts (nil reply) if any stamp changed, which covers every way Redis
//! aborts: a write by anyone (each write bumps the version), a delete, an expiry or eviction,
//! a TTL change, a flush; and, like Redis, a write that changed nothing (a refused SET NX) does
//! not count.

use super::{Command, CommandError, Ctx, Reply, execute_queued, lockable_keys};
use crate::frame::Frame;
use crate::keyspace::{SmallBytes, WatchStamp, stored_key};
use crate::parse::Parse;
use bytes::Bytes;

/// A client's transaction state.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Commands queued since MULTI, names first; `None` outside MULTI.
    pub queue: Option<Vec<Vec<Bytes>>>,
    /// A command was rejected while queueing: EXEC must refuse.
    pub failed: bool,
    /// Watched keys (stored form: database and name) with their state when watched.
    pub watched: Vec<(SmallBytes, WatchStamp)>,
}

impl Transaction {
    /// Forgets the queue and the watched keys (EXEC, DISCARD, RESET).
    pub fn clear(&mut self) {
        *self = Transaction::default();
    }
}

#[derive(Debug)]
pub struct Multi;

impl Command for Multi {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Multi)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let tx = &mut cx.session.tx;
        if tx.queue.is_some() {
            return Err(CommandError::err("MULTI calls can not be nested"));
        }
        tx.queue = Some(Vec::new());
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Exec;

impl Command for Exec {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Exec)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let tx = std::mem::take(&mut cx.session.tx);
        let Some(queue) = tx.queue else {
            // Outside MULTI the watched keys stay watched.
            cx.session.tx = tx;
            return Err(CommandError::err("EXEC without MULTI"));
        };
        // In cluster mode the queue must fit one slot served here; a refusal discards the
        // transaction, before its earlier errors are considered, as in Redis. Checked again
        // under the gate below, where a slot map change cannot slip in between.
        let cluster = cx.state.cluster().cloned();
        if let Some(c) = &cluster {
            super::cluster::route_queue(c, &queue)?;
        }
        if tx.failed {
            return Err(CommandError::new(
                super::ErrorKind::Other,
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let keyspace = cx.state.keyspace();
        let db = cx.session.db;
        // Watched keys are kept as database number and name; their stored form is taken now.
        let mut keys: Vec<SmallBytes> = tx
            .watched
            .iter()
            .map(|(k, _)| keyspace.key(k[0], &k[1..]))
            .collect();
        for args in &queue {
            let Some((names, _)) = lockable_keys(args) else {
                let _exclusive = keyspace.gate().exclusive();
                if let Some(c) = &cluster {
                    super::cluster::route_queue(c, &queue)?;
                }
                return Ok(run_queue(cx, queue, &tx.watched));
            };
            keys.extend(names.iter().map(|n| keyspace.key(db, n)));
        }
        // Shared like any command, plus the locks of every key the queue names (write locks:
        // its commands may read and write the same key).
        let _gate = keyspace.gate().shared();
        if let Some(c) = &cluster {
            super::cluster::route_queue(c, &queue)?;
        }
        cx.hold(keyspace.lock(&keys));
        let replies = run_queue(cx, queue, &tx.watched);
        cx.release();
        Ok(replies)
    }
}

/// Checks the watches, then runs the queue: a nil reply if a watched key changed.
fn run_queue(
    cx: &mut Ctx<'_>,
    queue: Vec<Vec<Bytes>>,
    watched: &[(SmallBytes, WatchStamp)],
) -> Frame {
    if watched
        .iter()
        .any(|(key, stamp)| cx.watch_stamp(key) != *stamp)
    {
        return Frame::NullArray;
    }
    let replies = queue
        .into_iter()
        .map(|args| execute_queued(args, cx).unwrap_or_else(|e| Frame::Error(e.text)))
        .collect();
    Frame::Array(replies)
}

#[derive(Debug)]
pub struct Discard;

impl Command for Discard {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Discard)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if cx.session.tx.queue.is_none() {
            return Err(CommandError::err("DISCARD without MULTI"));
        }
        cx.session.tx.clear();
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Watch(Vec<Bytes>);

impl Command for Watch {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Watch(std::iter::from_fn(|| args.try_next()).collect()))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if cx.session.tx.queue.is_some() {
            return Err(CommandError::err("WATCH inside MULTI is not allowed"));
        }
        for name in self.0 {
            // Kept as database number and name (not the stored prefix), so that EXEC after
            // a SWAPDB checks the key now in that database, as Redis does.
            let key = stored_key(cx.session.db, &name);
            // Watching a key twice keeps the first stamp, as Redis keeps the first watch.
            if !cx.session.tx.watched.iter().any(|(k, _)| *k == key) {
                let stamp = cx.state.keyspace().watch_stamp(&cx.stored_key(&name));
                cx.session.tx.watched.push((key, stamp));
            }
        }
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Unwatch;

impl Command for Unwatch {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Unwatch)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.session.tx.watched.clear();
        Ok(Frame::ok())
    }
}

//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! MULTI makes the dispatcher queue commands instead of running them (replying `QUEUED`); a
//! command rejected while queueing (unknown, wrong arity) poisons the transaction so EXEC
//! answers `EXECABORT`. EXEC runs the queue under the keyspace's write lock, so no other
//! client's write lands between its commands (reads take no lock but see each write whole).
//!
//! WATCH records a [`WatchStamp`] per key: the engine's version and write times for the entry,
//! or its absence. EXEC aborts (nil reply) if any stamp changed, which covers every way Redis
//! aborts: a write by anyone (each write bumps the version), a delete, an expiry or eviction,
//! a TTL change, a flush; and, like Redis, a write that changed nothing (a refused SET NX) does
//! not count.

use super::{Command, CommandError, Ctx, Reply, execute_locked};
use crate::db::WatchStamp;
use crate::frame::Frame;
use crate::parse::Parse;
use bytes::Bytes;

/// A client's transaction state.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Commands queued since MULTI, names first; `None` outside MULTI.
    pub queue: Option<Vec<Vec<Bytes>>>,
    /// A command was rejected while queueing: EXEC must refuse.
    pub failed: bool,
    /// Watched keys with their state when watched.
    pub watched: Vec<(Bytes, WatchStamp)>,
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
        if tx.failed {
            return Err(CommandError::new(
                super::ErrorKind::Other,
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        let db = cx.db;
        let _guard = db.write_lock();
        if tx
            .watched
            .iter()
            .any(|(key, stamp)| db.watch_stamp(key) != *stamp)
        {
            return Ok(Frame::NullArray);
        }
        let replies = queue
            .into_iter()
            .map(|args| execute_locked(args, cx).unwrap_or_else(|e| Frame::Error(e.text)))
            .collect();
        Ok(Frame::Array(replies))
    }
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
        let tx = &mut cx.session.tx;
        if tx.queue.is_some() {
            return Err(CommandError::err("WATCH inside MULTI is not allowed"));
        }
        for key in self.0 {
            // Watching a key twice keeps the first stamp, as Redis keeps the first watch.
            if !tx.watched.iter().any(|(k, _)| *k == key) {
                let stamp = cx.db.watch_stamp(&key);
                tx.watched.push((key, stamp));
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

//! The write path: how [`super::Loader::insert`] and [`super::Loader::remove`] reach the
//! cache and the source in each [`super::WriteMode`], and the write-behind flusher's hooks.
//!
//! Writes to one key are serialised on the key's stripe lock, held from the source write (or
//! the enqueue) through the cache update. Without it two writers could reach the source in
//! one order and the cache in the other, leaving the cache disagreeing with the source until
//! the entry expires. Removal listeners and dependency cascades that the cache update
//! triggers run under that lock, so they must not write through the same loader (reading
//! through it is fine: loads take no stripe lock). The stripe also counts writes, which is
//! how a load that read "absent" learns that a write raced it (see `read.rs`).
//!
//! The cache update is a plain insert, which revokes the key's lease: a load in flight for
//! the key cannot overwrite the write with what it read before.

use super::error::{WriteError, WriteErrorKind};
use super::source::{Source, WriteOp};
use super::write_behind::{FailedWrite, Refused, Sink};
use super::{Core, Writes};
use crate::sync::Ordering;
use std::hash::{BuildHasher, Hash};

impl<K, V, Src, S> Core<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: Source<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Writes `value` (`None`: deletes) under `key`; `wait` for room in a full write-behind
    /// queue, or fail.
    pub(super) fn write(
        &self,
        key: K,
        value: Option<V>,
        wait: bool,
    ) -> Result<(), WriteError<Src::Error>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(WriteError::new(WriteErrorKind::Closed));
        }
        match &self.writes {
            Writes::CacheOnly => {
                let _serial = self.stripe(&key).lock.lock();
                self.apply(&key, value);
                self.forget_absent(&key);
            }
            Writes::Through(source) => {
                let _serial = self.stripe(&key).lock.lock();
                match &value {
                    Some(v) => source.write(&key, v),
                    None => source.delete(&key),
                }
                .map_err(WriteError::source)?;
                self.apply(&key, value);
                self.forget_absent(&key);
            }
            Writes::Behind(_, queue) => {
                // Room first, outside the stripe: a writer waiting for room must not hold up
                // writers of other keys, and a full queue must leave the cache untouched.
                let room = queue.reserve(wait).map_err(|r| {
                    WriteError::new(match r {
                        Refused::Full => WriteErrorKind::Full,
                        Refused::Closed => WriteErrorKind::Closed,
                    })
                })?;
                let _serial = self.stripe(&key).lock.lock();
                let op = match &value {
                    Some(v) => WriteOp::Put(key.clone(), v.clone()),
                    None => WriteOp::Delete(key.clone()),
                };
                self.apply(&key, value);
                room.push(op);
                self.forget_absent(&key);
            }
        }
        Ok(())
    }

    /// Makes the cache agree with a write.
    fn apply(&self, key: &K, value: Option<V>) {
        match value {
            Some(v) => {
                let opts = self.options_for(key, &v);
                if self.cache.try_insert(key.clone(), v, &opts).is_err() {
                    // Refused by a condition or a version floor: whatever the cache holds is
                    // older than the write, so it must not stay.
                    self.cache.invalidate_key(key);
                }
            }
            None => {
                self.cache.invalidate_key(key);
            }
        }
    }

    /// Retires what loads may have concluded about `key`'s absence. Runs after the write
    /// reached the source (or the write-behind queue, where loads look first), in this
    /// order: see `remember_absent` in `read.rs`.
    fn forget_absent(&self, key: &K) {
        self.stripe(key).writes.fetch_add(1, Ordering::SeqCst);
        if let Some(negatives) = &self.negatives {
            negatives.remove(key);
        }
    }

    /// The write-behind flusher thread.
    pub(super) fn flusher(&self) {
        if let Some(wb) = self.write_behind() {
            wb.run(self);
        }
    }
}

impl<K, V, Src, S> Sink<K, V> for Core<K, V, Src, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Src: Source<K, V>,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn write_batch(&self, batch: &[WriteOp<K, V>]) -> Result<(), String> {
        match &self.writes {
            Writes::Behind(source, _) | Writes::Through(source) => {
                source.write_batch(batch).map_err(|e| e.to_string())
            }
            Writes::CacheOnly => Ok(()),
        }
    }

    fn failed(&self, failed: &FailedWrite<K, V>, superseded: bool) {
        if !superseded {
            // The cache holds (or held) a value the source never got; reads must go to the
            // source again.
            self.cache.invalidate_key(failed.op.key());
        }
        if let Some(handler) = &self.dead_letter {
            handler.on_failed(failed);
        }
    }
}

//! The plug points between a [`super::Loader`] and the system of record: [`Source`] for reads,
//! [`WritableSource`] for writes, and [`WriteOp`], the unit of a write-behind batch.
//!
//! Reads and writes are separate traits so that a read-only source (a remote service, a
//! computed value) need not invent write methods that fail: the loader's write modes are only
//! offered for sources that implement [`WritableSource`], which the compiler checks.

use crate::entry::InsertOptions;

/// Where a [`super::Loader`] reads values it does not have cached.
///
/// # Contract
/// - **Thread-safety.** Methods are called from many threads at once: from every caller of
///   [`super::Loader::get`] that leads a load, and from the loader's refresh workers. The
///   loader guarantees that at most one [`Self::load`] per key is running *within one loader*
///   at a time (single flight); loads of different keys run concurrently, and another cache
///   handle or another process may load the same key concurrently.
/// - **Errors** are returned to the caller (and to every caller that waited for the same
///   load), counted, and never cached. With [`super::LoaderBuilder::stale_if_error`] the
///   stale value is served instead while it is within its grace.
/// - **Absence.** `Ok(None)` means the source has no such row. It is returned to callers as
///   `Ok(None)` and cached only with [`super::LoaderBuilder::negative_ttl`].
/// - **Panics** in `load` propagate to the calling thread (or are caught and counted on a
///   refresh worker); threads waiting for that load get a [`super::LoadErrorKind::Panicked`]
///   error, never a hang, and the key's lease is released.
/// - **Duration.** A load that takes longer than the cache's lease timeout
///   ([`crate::CacheBuilder::lease_timeout`]) still returns its value to its caller, but the
///   fill is refused and nothing is cached.
pub trait Source<K, V>: Send + Sync + 'static {
    /// What a failed read or write reports.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads the current value of `key`; `Ok(None)` if the source has none.
    fn load(&self, key: &K) -> Result<Option<V>, Self::Error>;

    /// The options `value` is cached with, given the loader's defaults
    /// ([`super::LoaderBuilder::insert_options`]). Override to attach tags, dependencies or a
    /// version taken from the row, so that invalidations by tag or dependency reach loaded
    /// entries. Called for values loaded and, in the write modes, for values written.
    ///
    /// The loader may set [`InsertOptions::retain_stale`] (to at least its stale grace) and
    /// [`InsertOptions::condition`] (a refresh of a live entry is a compare-and-set on its
    /// version) on what this returns. The default returns `defaults` unchanged.
    fn load_options(&self, key: &K, value: &V, defaults: InsertOptions<K>) -> InsertOptions<K> {
        let _ = (key, value);
        defaults
    }
}

/// A [`Source`] that can also be written: needed for write-through and write-behind
/// ([`super::WriteMode`]).
///
/// # Contract
/// - **Thread-safety.** In write-through mode `write`/`delete` are called by the inserting
///   threads, concurrently for different keys; writes to one key are serialised by the
///   loader. In write-behind mode only [`Self::write_batch`] is called, from the loader's
///   single flusher thread, one batch at a time.
/// - **Success is durable.** `Ok` means the write is applied: the loader then forgets it. A
///   write-behind batch that returned `Ok` is never sent again.
/// - **Idempotence.** A failed batch is retried whole, then op by op (see
///   [`super::RetryPolicy`]), so an op may be applied more than once, including after a
///   partial failure of its batch. Writes must therefore be idempotent (a put of the same
///   value, a delete of a missing row, must succeed).
/// - **Ordering given.** Within a batch, ops are in acknowledgement order per key, and at
///   most one op per key appears (consecutive ops on one key are coalesced into the last). A
///   later op on a key is never sent before an earlier one has been written or given up on.
///   No order is promised between different keys.
pub trait WritableSource<K, V>: Source<K, V> {
    /// Stores `value` under `key`.
    fn write(&self, key: &K, value: &V) -> Result<(), Self::Error>;

    /// Deletes `key`; deleting a missing key must succeed.
    fn delete(&self, key: &K) -> Result<(), Self::Error>;

    /// Applies `batch` in order. The default calls [`Self::write`] and [`Self::delete`] one
    /// op at a time and stops at the first error; override it to use one round trip or one
    /// transaction per batch.
    fn write_batch(&self, batch: &[WriteOp<K, V>]) -> Result<(), Self::Error> {
        for op in batch {
            match op {
                WriteOp::Put(k, v) => self.write(k, v)?,
                WriteOp::Delete(k) => self.delete(k)?,
            }
        }
        Ok(())
    }
}

/// One write on its way to a [`WritableSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp<K, V> {
    /// Store the value.
    Put(K, V),
    /// Delete the key.
    Delete(K),
}

impl<K, V> WriteOp<K, V> {
    /// The key written.
    pub fn key(&self) -> &K {
        match self {
            WriteOp::Put(k, _) | WriteOp::Delete(k) => k,
        }
    }

    /// The value stored, `None` for a delete.
    pub fn value(&self) -> Option<&V> {
        match self {
            WriteOp::Put(_, v) => Some(v),
            WriteOp::Delete(_) => None,
        }
    }
}

/// The writes of a [`WritableSource`], with its type erased: the loader keeps one only when
/// a write mode was chosen, so [`super::Loader`] itself needs no `WritableSource` bound.
pub(crate) trait SourceWrites<K, V, E>: Send + Sync {
    fn write(&self, key: &K, value: &V) -> Result<(), E>;
    fn delete(&self, key: &K) -> Result<(), E>;
    fn write_batch(&self, batch: &[WriteOp<K, V>]) -> Result<(), E>;
}

/// [`SourceWrites`] through a shared source.
pub(crate) struct Via<Src>(pub(crate) std::sync::Arc<Src>);

impl<K, V, Src> SourceWrites<K, V, Src::Error> for Via<Src>
where
    Src: WritableSource<K, V>,
{
    fn write(&self, key: &K, value: &V) -> Result<(), Src::Error> {
        self.0.write(key, value)
    }

    fn delete(&self, key: &K) -> Result<(), Src::Error> {
        self.0.delete(key)
    }

    fn write_batch(&self, batch: &[WriteOp<K, V>]) -> Result<(), Src::Error> {
        self.0.write_batch(batch)
    }
}

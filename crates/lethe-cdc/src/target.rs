//! Where invalidations go: the [`Target`] trait, a cache in this process ([`EmbeddedTarget`]),
//! and Lethe servers over RESP ([`RespTarget`]).
//!
//! The contract every target keeps is on [`Target`].

use crate::error::{Error, ErrorKind, Result};
use crate::metrics::FlushReason;
use crate::pgoutput::Lsn;
use lethe::{Cache, Invalidation};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use tokio::sync::Mutex;
use tracing::warn;

/// A boxed, sendable future, so targets can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One committed transaction's invalidations, deduplicated, in the order rules and messages
/// produced them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batch {
    /// The transaction's commit LSN.
    pub commit_lsn: Lsn,
    /// The LSN just past the commit: the position confirmed once every target applied it.
    pub end_lsn: Lsn,
    /// What to invalidate: keys, tags, prefixes, globs, as the engine's [`lethe::Invalidation`]
    /// with the rendered text as key.
    pub invalidations: Vec<Invalidation<String>>,
    /// Version fences to set before invalidating (rules with a `version` column): key, the
    /// row's new version, and how long the fence holds ([`lethe::Cache::fence`]).
    pub fences: Vec<Fence>,
}

/// A version fence on one key: writes of it carrying an older version are refused for `hold`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fence {
    /// The key.
    pub key: String,
    /// The row's new version.
    pub version: u64,
    /// How long the fence holds.
    pub hold: std::time::Duration,
}

impl Fence {
    /// A fence on `key` at `version` for `hold`.
    pub fn new(key: impl Into<String>, version: u64, hold: std::time::Duration) -> Fence {
        Fence {
            key: key.into(),
            version,
            hold,
        }
    }
}

impl Batch {
    /// A batch with these invalidations (for tests and callers feeding targets directly).
    pub fn new(commit_lsn: Lsn, end_lsn: Lsn, invalidations: Vec<Invalidation<String>>) -> Batch {
        Batch {
            commit_lsn,
            end_lsn,
            invalidations,
            fences: Vec::new(),
        }
    }

    /// The same batch with version fences to set before its invalidations.
    pub fn with_fences(mut self, fences: Vec<Fence>) -> Batch {
        self.fences = fences;
        self
    }
}

/// A destination for invalidations.
///
/// # Contract
///
/// [`Target::apply`] receives one committed transaction's invalidations as a [`Batch`] and
/// must:
///
/// - set its [`Batch::fences`] (where the target supports them) before invalidating, so no
///   fill slips in between;
/// - apply all of them, **idempotently**: the same batch may arrive again after a reconnect or
///   restart (PostgreSQL replays from the slot's confirmed position), and applying it twice must
///   be harmless, which invalidation naturally is;
/// - return `Ok` only once they are applied (for a remote cache: acknowledged by it), because
///   the runner then tells PostgreSQL the transaction may be forgotten;
/// - return `Err` for anything that should be retried; the runner retries the same batch with
///   backoff and does not move past it. Problems retrying cannot fix (a malformed tag) are
///   filtered out before a batch is built, so a target should not reject a batch for them.
///
/// [`Target::flush`] empties the whole keyspace, under the same rules: used when changes may
/// have been missed or were never covered (the slot was lost, or had to be created) or cannot
/// be mapped to entries (a truncate whose rules need rows).
pub trait Target: Send + Sync + fmt::Debug {
    /// A short name for logs (`embedded`, a server address).
    fn name(&self) -> &str;

    /// Applies one transaction's invalidations; `Ok` only when applied, `Err` to be retried.
    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>>;

    /// Empties the keyspace; `Ok` only when done, `Err` to be retried.
    fn flush(&self, reason: FlushReason) -> BoxFuture<'_, Result<()>>;
}

/// A [`lethe::Cache`] in this process. Keys are built from the rendered text
/// (`K: From<String>`), so `Cache<String, _>` and the server's `Cache<Bytes, _>` both work.
pub struct EmbeddedTarget<K, V, S = lethe::builder::DefaultHashBuilder> {
    cache: Cache<K, V, S>,
}

impl<K, V, S> fmt::Debug for EmbeddedTarget<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedTarget").finish_non_exhaustive()
    }
}

impl<K, V, S> EmbeddedTarget<K, V, S> {
    /// Invalidates in `cache` (a clone of the handle; the cache itself is shared).
    pub fn new(cache: Cache<K, V, S>) -> Self {
        EmbeddedTarget { cache }
    }
}

impl<K, V, S> Target for EmbeddedTarget<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + From<String> + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        "embedded"
    }

    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for f in &batch.fences {
                self.cache.fence(&K::from(f.key.clone()), f.version, f.hold);
            }
            for item in &batch.invalidations {
                // Tags were validated when the batch was built; an error here cannot be fixed
                // by retrying, so it is reported and skipped rather than blocking the stream.
                if let Err(e) = self.cache.invalidate(item.clone().map_key(K::from)) {
                    let target = crate::apply::text(item);
                    warn!(error = %e, target, "invalidation refused by the cache");
                }
            }
            Ok(())
        })
    }

    fn flush(&self, _reason: FlushReason) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.cache.clear();
            Ok(())
        })
    }
}

/// One or more Lethe servers, sent `LETHE.FENCE` (version fences, first) and
/// `LETHE.INVALIDATE` over RESP (and `FLUSHALL` to flush), in one pipeline per server. A batch
/// counts as applied when every server acknowledged it.
pub struct RespTarget {
    name: String,
    servers: Vec<Server>,
}

struct Server {
    client: redis::Client,
    /// Reconnected lazily after a failure: the multiplexed connection is dropped on error and
    /// the next attempt opens a new one.
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl fmt::Debug for RespTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RespTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RespTarget {
    /// Servers by URL (`redis://127.0.0.1:6380`, `redis://:password@host:port/0`). Nothing
    /// connects until the first batch.
    pub fn new<I, U>(urls: I) -> Result<RespTarget>
    where
        I: IntoIterator<Item = U>,
        U: AsRef<str>,
    {
        let mut servers = Vec::new();
        let mut names = Vec::new();
        for url in urls {
            let url = url.as_ref();
            let client = redis::Client::open(url).map_err(|e| {
                Error::new(ErrorKind::Config, format!("bad server URL `{url}`")).with_source(e)
            })?;
            names.push(url.to_owned());
            servers.push(Server {
                client,
                conn: Mutex::new(None),
            });
        }
        if servers.is_empty() {
            return Err(Error::new(ErrorKind::Config, "RespTarget needs a server"));
        }
        Ok(RespTarget {
            name: names.join(","),
            servers,
        })
    }

    async fn run(&self, pipe: &redis::Pipeline) -> Result<()> {
        for server in &self.servers {
            let mut slot = server.conn.lock().await;
            if slot.is_none() {
                let conn = server
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| resp_err(&server.client, e))?;
                *slot = Some(conn);
            }
            let conn = slot.as_mut().expect("connected above");
            let result: redis::RedisResult<()> = pipe.query_async(conn).await;
            if let Err(e) = result {
                *slot = None;
                return Err(resp_err(&server.client, e));
            }
        }
        Ok(())
    }
}

fn resp_err(client: &redis::Client, e: redis::RedisError) -> Error {
    Error::new(
        ErrorKind::Target,
        format!("Lethe server {:?}", client.get_connection_info().addr()),
    )
    .with_source(e)
}

impl Target for RespTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut tags = Vec::new();
            let mut pipe = redis::pipe();
            // Fences before the invalidations: a fill racing them is refused either way.
            for f in &batch.fences {
                let hold_ms = u64::try_from(f.hold.as_millis()).unwrap_or(u64::MAX).max(1);
                pipe.cmd("LETHE.FENCE")
                    .arg(&f.key)
                    .arg(f.version)
                    .arg(hold_ms)
                    .ignore();
            }
            for item in &batch.invalidations {
                match item {
                    Invalidation::Key(k) => keys.push(k.as_str()),
                    Invalidation::Tag(t) => tags.push(t.as_str()),
                    // The command takes one prefix or pattern at a time.
                    Invalidation::Prefix(p) => {
                        pipe.cmd("LETHE.INVALIDATE").arg("PREFIX").arg(p).ignore();
                    }
                    Invalidation::Glob(g) => {
                        pipe.cmd("LETHE.INVALIDATE").arg("GLOB").arg(g).ignore();
                    }
                    // Version floors have no LETHE.INVALIDATE form; rules and messages never
                    // produce them, and a batch carries version fences in `fences` instead.
                    other => warn!(invalidation = ?other, "not sent: no command for it"),
                }
            }
            if !keys.is_empty() {
                pipe.cmd("LETHE.INVALIDATE").arg("KEY").arg(&keys).ignore();
            }
            if !tags.is_empty() {
                // One command: the server applies several tags as one step.
                pipe.cmd("LETHE.INVALIDATE").arg("TAG").arg(&tags).ignore();
            }
            if batch.invalidations.is_empty() && batch.fences.is_empty() {
                return Ok(());
            }
            self.run(&pipe).await
        })
    }

    fn flush(&self, _reason: FlushReason) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.cmd("FLUSHALL").ignore();
            self.run(&pipe).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use lethe::InsertOptions;

    #[tokio::test]
    async fn embedded_target_applies_every_kind_to_a_bytes_cache() {
        // The server's keyspace type: keys built from rendered text.
        let cache: Cache<Bytes, String> = Cache::builder().max_capacity(100).build();
        let put = |k: &'static str, tag: Option<&str>| {
            let mut o = InsertOptions::new();
            if let Some(t) = tag {
                o = o.tag(t);
            }
            cache.insert_with_options(Bytes::from_static(k.as_bytes()), "v".into(), &o);
        };
        for (k, t) in [
            ("product:1", None),
            ("card", Some("category:5")),
            ("search:a", None),
            ("feed:x:42", None),
            ("keep", None),
        ] {
            put(k, t);
        }
        let target: Box<dyn Target> = Box::new(EmbeddedTarget::new(cache.clone()));
        let batch = Batch::new(
            1,
            2,
            vec![
                Invalidation::Key("product:1".into()),
                Invalidation::Tag("category:5".into()),
                Invalidation::Prefix(b"search:".to_vec()),
                Invalidation::Glob(b"feed:*:42".to_vec()),
            ],
        );
        target.apply(&batch).await.unwrap();
        // Applying again is harmless.
        target.apply(&batch).await.unwrap();
        for k in ["product:1", "card", "search:a", "feed:x:42"] {
            assert!(cache.get(k.as_bytes()).is_none(), "{k} survived");
        }
        assert!(cache.get(b"keep".as_slice()).is_some());
        target.flush(FlushReason::SlotMissing).await.unwrap();
        assert!(cache.get(b"keep".as_slice()).is_none());
    }
}

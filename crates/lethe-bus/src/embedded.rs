//! An in-process [`lethe::Cache`] as a member of the bus: an application instance's near cache
//! drops what any node, any other instance or the database invalidated, and what it
//! invalidates itself (through [`Attached`]) reaches everybody else.
//!
//! Invalidations made through the attachment are applied to the local cache first, then
//! queued for the stream; the member skips them when they come back. Invalidations made on the
//! cache directly, not through the attachment, stay local: the engine's own subscribers cannot
//! tell a local invalidation from one the bus applied, and publishing the latter again would
//! echo every message. Server databases do not exist here: items naming a database apply to
//! the whole cache. A flush (gap, partition) is [`lethe::Cache::clear`], which also revokes the
//! leases of fills in flight, so a fill that read before the flush cannot store after it.

use crate::member::{Apply, FlushReason, Member, MemberStats};
use crate::outbox::{Outbox, OutboxStats};
use crate::schema::{Data, Item, Message};
use crate::{Bus, BusConfig, BusError};
use lethe::Cache;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A key type the bus can carry: its bytes go on the wire.
pub trait BusKey: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + 'static {
    /// The key for bytes read off the bus; `None` when these bytes cannot be a key of this
    /// type (such an item is skipped: no key of this cache can match it).
    fn from_bus(bytes: &[u8]) -> Option<Self>;
}

impl BusKey for String {
    fn from_bus(bytes: &[u8]) -> Option<String> {
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }
}

impl BusKey for Vec<u8> {
    fn from_bus(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }
}

struct CacheApply<K, V, S>(Cache<K, V, S>);

impl<K, V, S> Apply for CacheApply<K, V, S>
where
    K: BusKey,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    fn apply(&self, message: &Message) {
        for item in &message.items {
            apply_item(&self.0, item);
        }
    }

    fn flush(&self, _: FlushReason) {
        self.0.clear();
    }
}

fn apply_item<K, V, S>(cache: &Cache<K, V, S>, item: &Item)
where
    K: BusKey,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    match item {
        Item::Key { key, .. } => {
            if let Some(k) = K::from_bus(key.as_bytes()) {
                cache.invalidate_key(&k);
            }
        }
        Item::Tag { tag } => {
            // A tag this engine refuses cannot tag any of its entries.
            let _ = cache.try_invalidate_tag(tag);
        }
        Item::Prefix { prefix, .. } => {
            cache.invalidate_prefix(prefix.as_bytes());
        }
        Item::Glob { glob, .. } => {
            cache.invalidate_glob(glob.as_bytes());
        }
        Item::Fence {
            key,
            version,
            hold_ms,
        } => {
            if let Some(k) = K::from_bus(key.as_bytes()) {
                cache.fence(&k, *version, std::time::Duration::from_millis(*hold_ms));
            }
        }
        Item::Flush { .. } => cache.clear(),
    }
}

/// An attached cache: invalidate through it to reach every member. Dropping it leaves the bus.
#[derive(Debug)]
pub struct Attached<K, V, S = lethe::builder::DefaultHashBuilder> {
    cache: Cache<K, V, S>,
    outbox: Outbox,
    member: Member,
}

/// Joins `cache` to the bus described by `config` (on the current tokio runtime): from when
/// this returns, every invalidation published by any member reaches it.
pub async fn attach<K, V, S>(
    cache: &Cache<K, V, S>,
    config: BusConfig,
) -> Result<Attached<K, V, S>, BusError>
where
    K: BusKey,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    let bus = Bus::connect(config).await?;
    let member = Member::start(&bus, Arc::new(CacheApply(cache.clone()))).await?;
    Ok(Attached {
        cache: cache.clone(),
        outbox: Outbox::start(&bus),
        member,
    })
}

impl<K, V, S> Attached<K, V, S>
where
    K: BusKey,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Applies `items` here, then publishes them to every other member.
    pub fn invalidate(&self, items: Vec<Item>) {
        for item in &items {
            apply_item(&self.cache, item);
        }
        self.outbox.send(items);
    }

    /// Invalidates one key everywhere.
    pub fn invalidate_key(&self, key: &K) {
        self.invalidate(vec![Item::Key {
            key: Data(key.as_ref().to_vec()),
            db: None,
        }]);
    }

    /// Invalidates a tag (and its subtree) everywhere.
    pub fn invalidate_tag(&self, tag: &str) -> Result<(), lethe::Error> {
        self.cache.try_invalidate_tag(tag)?;
        self.outbox.send(vec![Item::Tag { tag: tag.into() }]);
        Ok(())
    }

    /// Invalidates every key starting with `prefix`, everywhere.
    pub fn invalidate_prefix(&self, prefix: &[u8]) {
        self.invalidate(vec![Item::Prefix {
            prefix: prefix.into(),
            db: None,
        }]);
    }

    /// Invalidates every key matching the Redis-style `glob`, everywhere.
    pub fn invalidate_glob(&self, glob: &[u8]) {
        self.invalidate(vec![Item::Glob {
            glob: glob.into(),
            db: None,
        }]);
    }

    /// The attached cache.
    pub fn cache(&self) -> &Cache<K, V, S> {
        &self.cache
    }

    /// What this member applied and flushed.
    pub fn member_stats(&self) -> &Arc<MemberStats> {
        self.member.stats()
    }

    /// What this member published.
    pub fn outbox_stats(&self) -> &OutboxStats {
        self.outbox.stats()
    }
}

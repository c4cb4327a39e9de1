//! Invalidation: by key, tag, prefix and glob; the dependency cascade; subscribers.
//!
//! Every invalidation entry point is here, on [`Cache`]. What each costs:
//!
//! | operation | cost |
//! |---|---|
//! | [`Cache::invalidate_key`] | one shard write, plus the dependency cascade |
//! | [`Cache::invalidate_tag`] | one lock hold per shard, marking the tag sets that carry the tag or a tag below it: O(shards + sets), independent of the number of entries; entries are hidden at once and reclaimed by later writes (at most 32 entries or 10 µs per write) or [`Cache::run_pending_tasks`] (at most 64 entries or 5 µs per hold of a shard's lock) |
//! | [`Cache::invalidate_prefix`] | with [`crate::CacheBuilder::index_keys`]: one ordered-index range per shard, O(matches); without: a scan of every entry |
//! | [`Cache::invalidate_glob`] | as a prefix invalidation of the glob's literal prefix, plus a match per candidate key (see [`Glob`]) |
//!
//! Each applied invalidation is passed to the subscribers with a sequence number that increases
//! by one per invalidation: the hook for server-side pushes and for fan-out between nodes.
//! Removals themselves (with their causes) go to the removal listener, as every removal does;
//! the dependency cascade runs after shard locks are released, on the invalidating thread.

use crate::cache::Cache;
use crate::collections::HashSet;
use crate::history::{Context, Matched, Origin};
use crate::listener::{Pending, RemovalCause};
use crate::pattern::Glob;
use crate::shard::Shard;
use crate::sync::Arc;
use crate::sync::Mutex;
use crate::tag_registry::{TagNode, validate_tag};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// One invalidation, as applied and as passed to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalidation<K> {
    /// One key.
    Key(K),
    /// A tag and its subtree (`user:42` covers `user:42:profile`).
    Tag(String),
    /// Every key starting with these bytes.
    Prefix(Vec<u8>),
    /// Every key matching a Redis-style glob.
    Glob(Vec<u8>),
    /// A version floor on a key prefix: stored entries below it were removed, older writes
    /// are refused from now on.
    PrefixFloor(Vec<u8>, u64),
    /// A version floor on a tag (and its subtree).
    TagFloor(String, u64),
}

/// An invalidation that was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied<K> {
    /// Position in the cache's sequence of invalidations: increases by one each time.
    pub seq: u64,
    /// What was invalidated.
    pub invalidation: Invalidation<K>,
    /// Entries removed by the call itself (before any dependency cascade). `None` for tag
    /// invalidations, which hide entries at once and reclaim them later (a tag floor removes
    /// the entries below it at once, and counts them).
    pub removed: Option<usize>,
}

/// Hears every applied invalidation, in sequence order.
///
/// # Contract
/// - Called once per invalidation, with `seq` one greater than the previous call's, after the
///   invalidation is visible to readers.
/// - Called on the invalidating thread while the cache's subscriber lock is held (that is
///   what keeps the sequence in order): it must not invalidate in this cache itself (that
///   would deadlock); hand off to a queue instead. Reading and writing entries is fine.
pub trait Subscriber<K>: Send + Sync + 'static {
    /// One invalidation was applied.
    fn on_invalidation(&self, applied: &Applied<K>);
}

impl<K, F> Subscriber<K> for F
where
    F: Fn(&Applied<K>) + Send + Sync + 'static,
{
    fn on_invalidation(&self, applied: &Applied<K>) {
        self(applied)
    }
}

struct SubscriberList<K> {
    next_seq: u64,
    list: Vec<Box<dyn Subscriber<K>>>,
}

/// The subscribers of one cache and the sequence counter.
pub(crate) struct Subscribers<K> {
    inner: Mutex<SubscriberList<K>>,
}

impl<K> fmt::Debug for Subscribers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Subscribers")
            .field("count", &inner.list.len())
            .field("next_seq", &inner.next_seq)
            .finish()
    }
}

impl<K: 'static> Subscribers<K> {
    pub(crate) fn new(list: Vec<Box<dyn Subscriber<K>>>) -> Self {
        Subscribers {
            inner: Mutex::new(SubscriberList { next_seq: 1, list }),
        }
    }

    fn publish(&self, invalidation: Invalidation<K>, removed: Option<usize>) -> Applied<K>
    where
        K: Clone,
    {
        let mut inner = self.inner.lock();
        let applied = Applied {
            seq: inner.next_seq,
            invalidation,
            removed,
        };
        inner.next_seq += 1;
        for s in &inner.list {
            s.on_invalidation(&applied);
        }
        applied
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Handles removals collected under a lock: tells the listener, unlinks the removed entries'
    /// dependency edges, and invalidates their dependents, transitively.
    pub(crate) fn finish(&self, pending: Pending<K, V>) {
        if pending.is_empty() {
            return;
        }
        let cascade = self.inner.graph.is_active();
        let mut work = Vec::new();
        for key in pending.modified {
            if let Some(l) = &self.inner.listener {
                l.on_modified(&key);
            }
            if cascade {
                work.push(key);
            }
        }
        for r in pending.items {
            if let Some(l) = &self.inner.listener {
                l.on_removal(&r.key, &r.value, r.cause);
            }
            if let Some(deps) = &r.deps {
                self.inner.graph.unlink(&r.key, deps, &[]);
            }
            if cascade {
                work.push(r.key);
            }
        }
        if !work.is_empty() {
            self.cascade(work, &pending.context);
        }
    }

    /// Invalidates everything depending on `roots`, breadth first; each key is visited once,
    /// so cycles end. `ctx` says who asked, for the dependents' history.
    fn cascade(&self, roots: Vec<K>, ctx: &Context<K>) {
        let mut seen: HashSet<K> = HashSet::default();
        let mut work = roots;
        while let Some(k) = work.pop() {
            if !seen.insert(k.clone()) {
                continue;
            }
            let dependents = self.inner.graph.take_dependents(&k);
            // Only the history reads what the removals matched.
            let because = if self.inner.history.is_some() && !dependents.is_empty() {
                ctx.matching(Matched::Dependency(k.clone()))
            } else {
                Context::default()
            };
            for d in dependents {
                let hash = self.hash(&d);
                let (removed, mut pending) = self.write_collect(hash, |shard, now, pending| {
                    pending.context.clone_from(&because);
                    shard.remove(hash, &d, now, pending, RemovalCause::Dependency)
                });
                self.inner.invalidation.log_removal(hash);
                if let Some(r) = removed {
                    pending.items.push(r);
                }
                for r in pending.items {
                    if let Some(l) = &self.inner.listener {
                        l.on_removal(&r.key, &r.value, r.cause);
                    }
                    if let Some(deps) = &r.deps {
                        self.inner.graph.unlink(&r.key, deps, &[]);
                    }
                    work.push(r.key);
                }
            }
        }
    }

    /// Removes, under `cause`, the entries each shard names (`candidates`, under its lock) whose
    /// version `drop_if` accepts, and returns how many. Entries already gone for another reason
    /// are reclaimed under that reason and not counted. Cascades run after every shard was
    /// visited, so an entry that qualifies itself is removed (and counted) as such, not as a
    /// dependency of another.
    pub(crate) fn remove_in_every_shard(
        &self,
        ctx: &Context<K>,
        cause: RemovalCause,
        drop_if: impl Fn(u64) -> bool,
        mut candidates: impl FnMut(&mut Shard<K, V>) -> Vec<u32>,
    ) -> usize {
        let mut removed = 0;
        let mut all = Vec::with_capacity(self.inner.shards.len());
        for cell in self.inner.shards.iter() {
            let mut pending = self.pending();
            pending.context.clone_from(ctx);
            {
                let mut shard = cell.write();
                let now = self.now();
                for idx in candidates(&mut shard) {
                    match shard.slots.dead_cause(idx, now) {
                        Some(dead) if dead != cause => shard.discard(idx, dead, &mut pending),
                        _ if drop_if(shard.slots.get(idx).version) => {
                            shard.discard(idx, cause, &mut pending);
                            removed += 1;
                        }
                        _ => {}
                    }
                }
            }
            all.push(pending);
        }
        for pending in all {
            self.finish(pending);
        }
        removed
    }

    /// Removes `key` and, transitively, what depends on it. Returns whether it was cached.
    pub fn invalidate_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.apply_key(key.to_owned(), &Context::default()).removed == Some(1)
    }

    fn apply_key(&self, key: K, ctx: &Context<K>) -> Applied<K> {
        let removed = self
            .remove_in_context(&key, RemovalCause::Explicit, ctx)
            .is_some();
        if !removed && self.inner.graph.is_active() {
            // Dependents may be cached even when the key itself is not.
            self.cascade(vec![key.clone()], ctx);
        }
        self.inner
            .subscribers
            .publish(Invalidation::Key(key), Some(usize::from(removed)))
    }

    /// Invalidates a tag and every tag below it (`user:42` covers `user:42:profile`, not
    /// `user:420`). O(1) in the number of tagged entries: they are hidden at once and
    /// reclaimed by later writes. Returns the sequence number of the invalidation.
    ///
    /// # Panics
    /// If `tag` is malformed (empty, or an empty level); use [`Self::try_invalidate_tag`] for
    /// an error instead.
    pub fn invalidate_tag(&self, tag: &str) -> u64 {
        match self.try_invalidate_tag(tag) {
            Ok(seq) => seq,
            Err(e) => panic!("lethe: {e}"),
        }
    }

    /// [`Self::invalidate_tag`], with an error for a malformed tag.
    pub fn try_invalidate_tag(&self, tag: &str) -> Result<u64, crate::Error> {
        self.apply_tag(tag, &Context::default()).map(|a| a.seq)
    }

    fn apply_tag(&self, tag: &str, ctx: &Context<K>) -> Result<Applied<K>, crate::Error> {
        validate_tag(tag).map_err(|m| crate::Error::new(crate::ErrorKind::InvalidTag, m))?;
        self.log_tag_invalidation(tag, ctx);
        let state = &self.inner.invalidation;
        let epoch = state.next_epoch();
        if let Some(node) = state.tags.invalidate(tag, epoch) {
            self.kill_tags(&[node], epoch);
        }
        Ok(self
            .inner
            .subscribers
            .publish(Invalidation::Tag(tag.to_owned()), None))
    }

    /// Tells the history a tag is being invalidated, before any entry is hidden, so the
    /// reclamations that follow find it.
    fn log_tag_invalidation(&self, tag: &str, ctx: &Context<K>) {
        if let Some(h) = &self.inner.history {
            h.tag_invalidated(tag, ctx.origin.clone());
        }
    }

    /// Marks the tag sets carrying `nodes` (or tags below them) dead in every shard, each
    /// shard under one hold of its lock. O(shards + sets carrying the tags), whatever the number
    /// of entries; the entries are reclaimed by later writes.
    fn kill_tags(&self, nodes: &[Arc<TagNode>], epoch: u64) {
        if !self.inner.invalidation.is_tagged() {
            return;
        }
        let subtrees: Vec<Vec<Arc<TagNode>>> = nodes
            .iter()
            .map(|n| {
                if n.has_children() {
                    n.subtree()
                } else {
                    vec![n.clone()]
                }
            })
            .collect();
        for cell in self.inner.shards.iter() {
            let mut shard = cell.write();
            for subtree in &subtrees {
                shard.kill_tags(subtree, epoch);
            }
        }
    }

    /// Invalidates several tags (each with its subtree) as one epoch: a reader of any entry sees
    /// either none or all of them applied. Returns the sequence number of the last one.
    pub fn invalidate_tags<T: AsRef<str>>(&self, tags: &[T]) -> Result<u64, crate::Error> {
        self.apply_tags(tags, &Context::default())
    }

    /// [`Self::invalidate_tags`], naming who asked (see [`Self::invalidate_from`]).
    pub fn invalidate_tags_from<T: AsRef<str>>(
        &self,
        tags: &[T],
        origin: Arc<Origin>,
    ) -> Result<u64, crate::Error> {
        self.apply_tags(tags, &Context::from_origin(Some(origin)))
    }

    fn apply_tags<T: AsRef<str>>(&self, tags: &[T], ctx: &Context<K>) -> Result<u64, crate::Error> {
        for t in tags {
            validate_tag(t.as_ref())
                .map_err(|m| crate::Error::new(crate::ErrorKind::InvalidTag, m))?;
        }
        for t in tags {
            self.log_tag_invalidation(t.as_ref(), ctx);
        }
        let state = &self.inner.invalidation;
        let epoch = state.next_epoch();
        let mut seq = 0;
        let nodes: Vec<Arc<TagNode>> = tags
            .iter()
            .filter_map(|t| state.tags.invalidate(t.as_ref(), epoch))
            .collect();
        self.kill_tags(&nodes, epoch);
        for t in tags {
            seq = self
                .inner
                .subscribers
                .publish(Invalidation::Tag(t.as_ref().to_owned()), None)
                .seq;
        }
        Ok(seq)
    }

    /// Keys of entries that can be served and carry `tag` or a tag below it, including entries
    /// that carry it through a dependency (an invalidation of the tag would remove them too).
    /// Visits the tag's subtree in each shard's tag index: no scan of the entries.
    pub fn keys_with_tag(&self, tag: &str) -> Vec<K> {
        let Some(node) = self.inner.invalidation.tags.get(tag) else {
            return Vec::new();
        };
        let nodes = node.subtree();
        let now = self.now();
        let mut out = Vec::new();
        for cell in self.inner.shards.iter() {
            cell.read().keys_tagged(&nodes, now, false, &mut out);
        }
        out
    }

    /// Keys of entries that carry `tag` or a tag below it and are hidden by a tag invalidation
    /// but not reclaimed yet (reclamation reports them to the removal listener with
    /// [`RemovalCause::Tag`]). Together the two tell a [`Subscriber`] which keys an
    /// [`Invalidation::Tag`] took away, for pushing to clients that cache them: an entry is
    /// either still listed here or was already heard by the listener. Entries hidden by an
    /// earlier invalidation of the same tags are listed too. O(entries the tag's subtree
    /// carries), through the tag index.
    pub fn keys_hidden_by_tag(&self, tag: &str) -> Vec<K> {
        let Some(node) = self.inner.invalidation.tags.get(tag) else {
            return Vec::new();
        };
        let nodes = node.subtree();
        let now = self.now();
        let mut out = Vec::new();
        for cell in self.inner.shards.iter() {
            cell.read().keys_tagged(&nodes, now, true, &mut out);
        }
        out
    }

    /// Tags of `key`'s entry (as given on insert), if it can be served.
    pub fn tags_of<Q>(&self, key: &Q) -> Option<Vec<String>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |shard, idx, _| {
            let mut names = Vec::new();
            shard.tag_names(idx, false, &mut names);
            names
        })
    }

    /// Number of tag names in use (each level of a hierarchical tag counts).
    pub fn tag_count(&self) -> usize {
        self.inner.invalidation.tags.len()
    }

    /// Keys this key's entry depends on (as given on insert).
    pub fn dependencies_of<Q>(&self, key: &Q) -> Vec<K>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.peek(key, |shard, idx, _| {
            shard
                .slots
                .rare(idx)
                .and_then(|r| r.deps())
                .map(<[K]>::to_vec)
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// Keys whose entries depend directly on `key`.
    pub fn dependents_of(&self, key: &K) -> Vec<K> {
        self.inner.graph.dependents(key)
    }

    /// Everything an invalidation of `key` would cascade to, directly or transitively.
    pub fn dependency_chain(&self, key: &K) -> Vec<K> {
        self.inner.graph.transitive_dependents(key)
    }
}

/// Pattern invalidations need to see keys as bytes.
impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    pub(crate) fn key_bytes(&self) -> fn(&K) -> &[u8] {
        *self
            .inner
            .key_bytes
            .get_or_init(|| <K as AsRef<[u8]>>::as_ref)
    }

    /// Removes, under `cause`, the entries matching `glob` whose version `drop_if` accepts.
    pub(crate) fn remove_matching(
        &self,
        ctx: &Context<K>,
        glob: &Glob,
        cause: RemovalCause,
        drop_if: impl Fn(u64) -> bool,
    ) -> usize {
        let bytes = self.key_bytes();
        self.remove_in_every_shard(ctx, cause, drop_if, |shard| {
            shard.revoke_leases_matching(glob, bytes);
            shard.matching(glob, bytes)
        })
    }

    /// Removes every key starting with `prefix` (and their dependents). Returns how many were
    /// removed. O(matches) with [`crate::CacheBuilder::index_keys`], a scan without.
    pub fn invalidate_prefix(&self, prefix: impl AsRef<[u8]>) -> usize {
        self.apply_prefix(prefix.as_ref().to_vec(), &Context::default())
            .removed
            .unwrap_or(0)
    }

    fn apply_prefix(&self, prefix: Vec<u8>, ctx: &Context<K>) -> Applied<K> {
        let mut shown = prefix.clone();
        shown.push(b'*');
        let ctx = ctx.matching(Matched::Pattern(shown));
        let n = self.remove_matching(&ctx, &Glob::prefix(&prefix), RemovalCause::Pattern, |_| {
            true
        });
        self.publish(Invalidation::Prefix(prefix), Some(n))
    }

    fn apply_glob(&self, glob: Vec<u8>, ctx: &Context<K>) -> Applied<K> {
        let ctx = ctx.matching(Matched::Pattern(glob.clone()));
        let n = self.remove_matching(&ctx, &Glob::new(&glob), RemovalCause::Pattern, |_| true);
        self.publish(Invalidation::Glob(glob), Some(n))
    }

    /// Removes every key matching a Redis-style glob (`user:*:session`, `?`, `[abc]`). Returns
    /// how many were removed. Cost: see [`Glob`].
    pub fn invalidate_glob(&self, glob: impl AsRef<[u8]>) -> usize {
        self.apply_glob(glob.as_ref().to_vec(), &Context::default())
            .removed
            .unwrap_or(0)
    }

    /// Keys that can be served and match a Redis-style glob (Redis `KEYS`). Cost: see [`Glob`].
    pub fn keys_matching(&self, glob: impl AsRef<[u8]>) -> Vec<K> {
        self.keys_for(&Glob::new(glob.as_ref()))
    }

    /// Keys that can be served and start with `prefix`. O(matches) with
    /// [`crate::CacheBuilder::index_keys`], a scan without.
    pub fn keys_with_prefix(&self, prefix: impl AsRef<[u8]>) -> Vec<K> {
        self.keys_for(&Glob::prefix(prefix))
    }

    fn keys_for(&self, g: &Glob) -> Vec<K> {
        let bytes = self.key_bytes();
        let now = self.now();
        let mut out = Vec::new();
        for cell in self.inner.shards.iter() {
            let shard = cell.read();
            out.extend(
                shard
                    .matching(g, bytes)
                    .into_iter()
                    .filter(|&i| shard.slots.dead_cause(i, now).is_none())
                    .map(|i| shard.slots.get(i).key.clone()),
            );
        }
        out
    }

    /// Applies any [`Invalidation`]; returns it as applied, with its sequence number.
    pub fn invalidate(&self, invalidation: Invalidation<K>) -> Result<Applied<K>, crate::Error> {
        self.apply(invalidation, &Context::default())
    }

    /// [`Self::invalidate`], naming who asked: the removals it causes (and, for a tag, the
    /// reclamations that follow it) carry `origin` in the keys' history
    /// ([`crate::CacheBuilder::history`]).
    pub fn invalidate_from(
        &self,
        invalidation: Invalidation<K>,
        origin: Arc<Origin>,
    ) -> Result<Applied<K>, crate::Error> {
        self.apply(invalidation, &Context::from_origin(Some(origin)))
    }

    fn apply(
        &self,
        invalidation: Invalidation<K>,
        ctx: &Context<K>,
    ) -> Result<Applied<K>, crate::Error> {
        Ok(match invalidation {
            Invalidation::Key(k) => self.apply_key(k, ctx),
            Invalidation::Tag(t) => self.apply_tag(&t, ctx)?,
            Invalidation::Prefix(p) => self.apply_prefix(p, ctx),
            Invalidation::Glob(g) => self.apply_glob(g, ctx),
            Invalidation::PrefixFloor(p, v) => self.apply_prefix_floor(&p, v, ctx),
            Invalidation::TagFloor(t, v) => self.apply_tag_floor(&t, v, ctx)?,
        })
    }
}

impl<K: 'static, V, S> Cache<K, V, S> {
    /// Sequence number of the latest applied invalidation (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.inner.subscribers.inner.lock().next_seq - 1
    }

    pub(crate) fn publish(
        &self,
        invalidation: Invalidation<K>,
        removed: Option<usize>,
    ) -> Applied<K>
    where
        K: Clone,
    {
        self.inner.subscribers.publish(invalidation, removed)
    }
}

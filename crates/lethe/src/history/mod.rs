//! Per-key history: what happened to a key, when, why and on whose behalf — the answer to
//! "why was this key (not) forgotten?".
//!
//! Opt-in ([`crate::CacheBuilder::history`]): when on, the engine keeps for each key that had an
//! event its latest [`Record`]s — every write (with its version and tags), every change in
//! place, and every removal with its [`RemovalCause`], what it matched (the tag or pattern
//! invalidated, the dependency it cascaded from, the version floor) and its [`Origin`] (who
//! asked: a client, a rule, a change in the database, another node). Reads record nothing.
//! [`crate::Cache::why`] adds, for a cached key, why it is still there (time left, tags,
//! dependencies, version).
//!
//! This module holds the types callers see; its private `keeping` module holds where records
//! are kept (a journal per shard) and how the budget is held.
//!
//! # Where the facts come from
//! Records are taken where the shard makes the change, under the lock it holds anyway: the
//! write, the change in place or the removal of the slot. A tag invalidation hides its entries
//! at once and reclaims them later, during whatever write happens to come by; so the history
//! does not attribute a tag removal to the writer that reclaimed it: it keeps a short log of
//! recent tag invalidations (tag, time, origin) and matches the removed key's last written tags
//! (and those it inherited from its dependencies) against it, recording the invalidation's own
//! time and origin. An entry hidden by an invalidation older than the log (4,096 tag
//! invalidations) is recorded with its cause and no match. Asking why about a key that is
//! hidden but not yet reclaimed ([`crate::Cache::why`]) reclaims it then, so the answer shows
//! the removal; [`crate::Cache::history`] is a pure read.
//!
//! # Cost
//! Off by default. On, every write, change in place and removal appends a record to its
//! shard's journal, linked to the previous record of the same stay of the key, under the lock
//! the change holds anyway: no second table is probed and no other lock is taken.
//! `lethe-bench invalidation`'s `history_throughput` case measures it against the same cache
//! without history (BENCHMARKS.md).
//!
//! # Bounds
//! [`HistoryConfig::memory_budget`] bounds the bytes in all, estimated per record (its size
//! plus the heap of its strings; a key's own heap is not counted) and split evenly over the
//! shards: over it, a shard's journal forgets its oldest records first, whatever their key.
//! [`crate::Cache::history`] returns at most [`HistoryConfig::records_per_key`] records for a
//! key, newest first, over its current stay and its earlier ones still kept; that bounds what a
//! read returns, not what the journal holds, so a key written far more often than the others
//! takes a larger share of the budget. Apart from the budget, each slot of the cache keeps the
//! 8-byte link to its key's newest record, counted as [`HistoryStats::slot_bytes`].
//! [`HistoryStats`] counts keys, records, bytes, departed keys forgotten and records not kept.

pub(crate) mod keeping;

use crate::clock::Timestamp;
use crate::listener::RemovalCause;
use crate::sync::Arc;
use std::fmt;
use std::mem::size_of;

/// How much history to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Records returned per key, newest first (at least 1).
    pub records_per_key: usize,
    /// Bytes, estimated, the whole history may hold.
    pub memory_budget: usize,
}

impl Default for HistoryConfig {
    /// 16 records per key, 16 MiB in all.
    fn default() -> Self {
        HistoryConfig {
            records_per_key: 16,
            memory_budget: 16 << 20,
        }
    }
}

/// Who or what asked for a change: whichever parts the caller knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Origin {
    /// The client, e.g. `id=7 addr=127.0.0.1:50212` or `http 127.0.0.1:40100`.
    pub client: Option<String>,
    /// The invalidation rule that turned an event into this invalidation.
    pub rule: Option<String>,
    /// The change in the source of truth, e.g. `lsn 0/16B3748 table public.users update`.
    pub change: Option<String>,
    /// The node the invalidation came from, when it came over the bus.
    pub node: Option<String>,
}

impl Origin {
    /// An origin naming a client.
    pub fn client(client: impl Into<String>) -> Self {
        Origin {
            client: Some(client.into()),
            ..Origin::default()
        }
    }

    /// Names the rule.
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Names the change in the source of truth.
    pub fn with_change(mut self, change: impl Into<String>) -> Self {
        self.change = Some(change.into());
        self
    }

    /// Names the node.
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Names the client.
    pub fn with_client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    fn heap(&self) -> usize {
        [&self.client, &self.rule, &self.change, &self.node]
            .iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, part) in [
            ("client", &self.client),
            ("rule", &self.rule),
            ("change", &self.change),
            ("node", &self.node),
        ] {
            if let Some(p) = part {
                write!(f, "{sep}{name} {p}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

/// What happened to the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Happened {
    /// A value was stored (new, or replacing the previous one).
    Written,
    /// The value was changed in place (an atomic update, e.g. Redis `INCR` or `HSET`).
    Modified,
    /// The entry left the cache.
    Removed(RemovalCause),
}

impl Happened {
    /// `write`, `modified` or `removed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Happened::Written => "write",
            Happened::Modified => "modified",
            Happened::Removed(_) => "removed",
        }
    }

    /// The removal's cause, for a removal.
    pub const fn cause(self) -> Option<RemovalCause> {
        match self {
            Happened::Removed(c) => Some(c),
            _ => None,
        }
    }
}

/// What a removal matched.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Matched<K> {
    /// This tag was invalidated (the entry carried it or a tag below it).
    Tag(String),
    /// This prefix (given as a glob ending in `*`) or glob was invalidated.
    Pattern(Vec<u8>),
    /// This key, which the entry depended on, went.
    Dependency(K),
    /// A version floor on this prefix or tag.
    Floor {
        /// The prefix (a glob ending in `*`) or the tag (`tag:<name>`).
        on: String,
        /// The floor.
        version: u64,
    },
}

impl<K: fmt::Debug> fmt::Display for Matched<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::Tag(t) => write!(f, "tag {t}"),
            Matched::Pattern(p) => write!(f, "pattern {}", String::from_utf8_lossy(p)),
            Matched::Dependency(k) => write!(f, "dependency {k:?}"),
            Matched::Floor { on, version } => write!(f, "floor {version} on {on}"),
        }
    }
}

/// One thing that happened to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record<K> {
    /// When, on the cache's clock (for a tag removal: when the tag was invalidated).
    pub at: Timestamp,
    /// What.
    pub happened: Happened,
    /// The version written (writes only).
    pub version: Option<u64>,
    /// Who asked, when the caller said.
    pub origin: Option<Arc<Origin>>,
    /// Tags and what a removal matched: boxed, since most records (untagged writes,
    /// evictions, expiries) have neither, and a small record keeps the table small.
    detail: Option<Box<Detail<K>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Detail<K> {
    tags: Vec<String>,
    /// Tags a write inherited from its dependencies (an invalidation of one hides the entry
    /// with the dependency as its cause).
    inherited: Vec<String>,
    matched: Option<Matched<K>>,
}

impl<K> Record<K> {
    pub(crate) fn new(at: Timestamp, happened: Happened) -> Self {
        Record {
            at,
            happened,
            version: None,
            origin: None,
            detail: None,
        }
    }

    /// The tags written (writes only).
    pub fn tags(&self) -> &[String] {
        self.detail.as_ref().map_or(&[], |d| &d.tags)
    }

    /// What a removal matched, when the engine knows.
    pub fn matched(&self) -> Option<&Matched<K>> {
        self.detail.as_ref().and_then(|d| d.matched.as_ref())
    }

    pub(crate) fn inherited(&self) -> &[String] {
        self.detail.as_ref().map_or(&[], |d| &d.inherited)
    }

    fn detail(&mut self) -> &mut Detail<K> {
        self.detail.get_or_insert_with(|| {
            Box::new(Detail {
                tags: Vec::new(),
                inherited: Vec::new(),
                matched: None,
            })
        })
    }

    pub(crate) fn set_tags(&mut self, tags: &[String], inherited: &[String]) {
        if !tags.is_empty() || !inherited.is_empty() {
            let d = self.detail();
            d.tags = tags.to_vec();
            d.inherited = inherited.to_vec();
        }
    }

    pub(crate) fn set_matched(&mut self, matched: Option<Matched<K>>) {
        if matched.is_some() {
            self.detail().matched = matched;
        }
    }

    /// What the record costs, as the budget counts it.
    pub(crate) fn bytes(&self) -> usize {
        let detail = self.detail.as_ref().map_or(0, |d| {
            let matched = match &d.matched {
                Some(Matched::Tag(t)) => t.len(),
                Some(Matched::Pattern(p)) => p.len(),
                Some(Matched::Floor { on, .. }) => on.len(),
                Some(Matched::Dependency(_)) | None => 0,
            };
            size_of::<Detail<K>>()
                + d.tags
                    .iter()
                    .chain(&d.inherited)
                    .map(|t| t.len() + size_of::<String>())
                    .sum::<usize>()
                + matched
        });
        // An origin is shared by every record it caused; each pays its strings once.
        let origin = self.origin.as_ref().map_or(0, |o| o.heap());
        size_of::<Self>() + detail + origin
    }
}

/// Why a key is (or is not) in the cache: its recent history and, when cached, its state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Why<K> {
    /// Whether the key has a value that can be served.
    pub cached: bool,
    /// Time left before it expires (`None`: no deadline, or not cached).
    pub ttl: Option<std::time::Duration>,
    /// Its tags, when cached.
    pub tags: Vec<String>,
    /// The keys it depends on, when cached.
    pub dependencies: Vec<K>,
    /// Its version, when cached.
    pub version: Option<u64>,
    /// Its history, newest first (empty when history is off or the key had no event kept).
    pub history: Vec<Record<K>>,
}

/// What the history holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Keys with records kept: each cached key with at least one, and each earlier stay of a
    /// key (up to its removal) whose removal record is still kept.
    pub keys: usize,
    /// Records kept.
    pub records: usize,
    /// Bytes held, estimated as the budget counts them.
    pub bytes: usize,
    /// The budget.
    pub budget: usize,
    /// Earlier stays of keys (up to their removal) whose last record the budget pushed out,
    /// since the cache was built. A cached key losing its oldest records is not counted.
    pub keys_dropped: u64,
    /// Records not kept because they were larger than a shard's share of the budget.
    pub records_refused: u64,
    /// Bytes of the link each slot keeps to its key's newest record (8 per slot): the cache's
    /// size, not the history's, so outside the budget.
    pub slot_bytes: usize,
}

/// Why the entries a call removes go: handed from an invalidation down to the removals it
/// makes, so their records say what they matched and who asked.
#[derive(Clone, Debug)]
pub(crate) struct Context<K> {
    pub(crate) matched: Option<Matched<K>>,
    pub(crate) origin: Option<Arc<Origin>>,
    /// When the call began, if it read the clock already (saves the history a read).
    pub(crate) at: Option<Timestamp>,
}

impl<K> Default for Context<K> {
    fn default() -> Self {
        Context {
            matched: None,
            origin: None,
            at: None,
        }
    }
}

impl<K> Context<K> {
    pub(crate) fn from_origin(origin: Option<Arc<Origin>>) -> Self {
        Context {
            origin,
            ..Context::default()
        }
    }

    pub(crate) fn matching(&self, matched: Matched<K>) -> Self {
        Context {
            matched: Some(matched),
            origin: self.origin.clone(),
            at: None,
        }
    }
}

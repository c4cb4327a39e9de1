//! Lethe's engine: a bounded, concurrent, in-process cache whose point is precise invalidation.
//!
//! Lethe's purpose is invalidation: forgetting exactly what changed, as soon as it changed, and
//! nothing else. This crate is the engine the rest stands on: storage, eviction, expiry, the
//! invalidation model (tags, patterns, dependencies, versions, leases, rules), removal
//! notifications and statistics, with no networking.
//!
//! # Cache-aside with tags, a dependency cascade and a lease-protected fill
//! ```
//! use lethe::{Cache, InsertOptions, lease::LeaseOutcome, version::RejectReason, RemovalCause};
//! use std::sync::{Arc, Mutex};
//!
//! let removed = Arc::new(Mutex::new(Vec::new()));
//! let log = removed.clone();
//! let cache: Cache<String, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .removal_listener(move |k: &String, _: &String, cause: RemovalCause| {
//!         log.lock().unwrap().push((k.clone(), cause));
//!     })
//!     .build();
//!
//! // Tags are hierarchical: `user:42` covers `user:42:profile`, not `user:420`.
//! cache.insert_with_options("profile:42".into(), "Ada".into(), &InsertOptions::new().tag("user:42:profile"));
//! cache.insert_with_options("profile:420".into(), "Bob".into(), &InsertOptions::new().tag("user:420:profile"));
//! // A rendered page depends on the profile: when the profile goes, the page goes.
//! cache.insert_with_options(
//!     "page:/u/42".into(),
//!     "<h1>Ada</h1>".into(),
//!     &InsertOptions::new().depends_on("profile:42".into()),
//! );
//!
//! cache.invalidate_tag("user:42"); // constant time: hidden at once, reclaimed after
//! assert_eq!(cache.get("profile:42"), None);
//! assert_eq!(cache.get("profile:420").as_deref(), Some("Bob"));
//! cache.run_pending_tasks(); // reclaim now (writes also do it as they go)
//! assert_eq!(cache.get("page:/u/42"), None); // cascaded from profile:42
//! let mut heard = removed.lock().unwrap().clone();
//! heard.sort_by(|a, b| a.0.cmp(&b.0));
//! assert_eq!(
//!     heard,
//!     vec![("page:/u/42".to_string(), RemovalCause::Dependency), ("profile:42".to_string(), RemovalCause::Tag)]
//! );
//!
//! // Cache-aside with a lease: a miss takes the lease, the database is read, and the fill is
//! // stored only if nothing it covers was invalidated meanwhile.
//! let LeaseOutcome::Granted(lease) = cache.lease(&"profile:42".to_string()) else { unreachable!() };
//! let from_db = "Ada".to_string(); // ... read while the row is being updated ...
//! cache.invalidate_tag("user:42"); // ... and the update's invalidation arrives first.
//! let fill = cache.fill(lease, from_db, &InsertOptions::new().tag("user:42:profile"));
//! assert_eq!(fill.unwrap_err().reason, RejectReason::InvalidatedSinceLease);
//! assert_eq!(cache.get("profile:42"), None); // the stale read was not cached
//! ```
//!
//! # Basics
//! ```
//! use lethe::{Cache, InsertOptions, RemovalCause};
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let removed = Arc::new(Mutex::new(Vec::new()));
//! let log = removed.clone();
//! let cache: Cache<String, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(300))
//!     .removal_listener(move |k: &String, _v: &String, cause: RemovalCause| {
//!         log.lock().unwrap().push((k.clone(), cause));
//!     })
//!     .build();
//!
//! cache.insert("user:42".into(), "Ada".into());
//! // Per-entry choice: time to idle instead of the default TTL.
//! cache.insert_with_options("session:9".into(), "token".into(), &InsertOptions::new().idle(Duration::from_secs(60)));
//! assert_eq!(cache.get("user:42").as_deref(), Some("Ada"));
//!
//! let meta = cache.get_with_metadata("user:42").unwrap().metadata;
//! assert!(meta.remaining().unwrap() <= Duration::from_secs(300));
//!
//! cache.insert("user:42".into(), "Ada Lovelace".into());
//! cache.remove("session:9");
//! assert_eq!(
//!     *removed.lock().unwrap(),
//!     vec![("user:42".to_string(), RemovalCause::Replaced), ("session:9".to_string(), RemovalCause::Explicit)]
//! );
//! assert_eq!(cache.stats().hits, 2);
//! ```
//!
//! # Invalidation model
//! - **Tags** ([`InsertOptions::tag`], [`Cache::invalidate_tag`], [`Cache::invalidate_tags`],
//!   [`Cache::keys_with_tag`], [`Cache::tags_of`]): hierarchical on `:`. Entries with the same
//!   tags share a tag set; an invalidation marks the sets carrying the tag (or a tag below it)
//!   dead, so its cost grows with the number of shards and sets, not entries, and a read checks
//!   one byte. Hidden entries are reclaimed by later writes to each shard (at most 32 per
//!   write, and no more than 10 µs of work) or [`Cache::run_pending_tasks`] (in holds of a
//!   shard's lock of at most 64 entries or 5 µs), and what they free (keys, values, the
//!   sets' member lists) is dropped after the lock is released, so a reader never waits long
//!   behind reclamation, whatever the number of entries an invalidation hid: the total work is
//!   proportional to the entries reclaimed, the wait of a reader to one hold.
//! - **Patterns** ([`Cache::invalidate_prefix`], [`Cache::invalidate_glob`],
//!   [`pattern::Glob`]): Redis `KEYS` syntax; O(matches) with [`CacheBuilder::index_keys`], a
//!   scan without.
//! - **Dependencies** ([`InsertOptions::depends_on`], [`Cache::dependents_of`],
//!   [`Cache::dependency_chain`]): when a key is invalidated, replaced, removed, expires or is
//!   evicted, its dependents go too, transitively; cycles end. Optional co-access tracking
//!   ([`CacheBuilder::track_co_access`]) suggests dependencies.
//! - **Versions** ([`Cache::insert_if_newer`], [`Cache::compare_and_set`],
//!   [`version::WriteCondition`], [`Cache::set_version_floor_prefix`],
//!   [`Cache::set_version_floor_tag`], [`version::ETag`], [`Cache::get_if_none_match`],
//!   [`Cache::is_fresh`]).
//! - **Leases** ([`Cache::lease`], [`Cache::fill`]): see the `lease` module's docs for the race
//!   they close; stale values within a grace ([`InsertOptions::retain_stale`],
//!   [`Cache::get_stale`]) serve waiting missers.
//! - **Subscribers** ([`CacheBuilder::subscriber`]): every applied [`Invalidation`] with a
//!   sequence number increasing by one.
//!
//! Every removal reaches the removal listener and the stats with its own [`RemovalCause`]
//! (`Tag`, `Pattern`, `Dependency`, `Stale` besides the engine's own).
//!
//! - **History** (opt-in, [`CacheBuilder::history`]): a bounded ring per key of its writes and
//!   removals, each removal with what it matched (the tag, pattern, dependency or floor) and
//!   who asked ([`history::Origin`], given with [`InsertOptions::origin`],
//!   [`compute::KeyLock::set_origin`], [`Cache::invalidate_from`]); [`Cache::why`] adds what
//!   keeps a cached key. See [`history`].
//!
//! # Atomic updates
//! [`Cache::compute`] runs a closure on a key's value under the key's shard lock: it may read
//! the value, change it in place, replace, create or remove it, and set its deadline, and the
//! engine then re-weighs the entry and tells the listener, leases, dependents and statistics
//! what an insert or remove would have told them. [`Cache::lock`] holds several keys' shards
//! at once (taken in shard order, so overlapping locks cannot deadlock) for changes that must
//! be all or nothing; [`Cache::lock_read`] holds them for a consistent multi-key read. See the
//! [`compute`] module for the rules (the closure must not call back into the cache).
//!
//! # Expiry
//! Per entry, or by a default on the builder: fixed TTL, sliding TTL (time to idle), adaptive TTL
//! (grows with reads, shrinks with updates, clamped; see [`expiry::AdaptiveTtl`]), jitter (see
//! [`expiry::ExpiryPolicy::jitter`]), and probabilistic early refresh
//! ([`expiry::EarlyRefresh`], XFetch) which sets [`entry::EntryMetadata::refresh`] on a read so
//! one caller refreshes before expiry. Redis semantics where they overlap: [`Cache::expire`]
//! with [`expiry::ExpireCondition`] (NX/XX/GT/LT), [`Cache::expire_at`], [`Cache::persist`],
//! [`Cache::ttl`] with the -2/-1 distinction ([`expiry::KeyTtl`]). Time is read through a
//! [`clock::Clock`]; tests use [`clock::ManualClock`].
//!
//! An expired entry is never returned: reads compare its deadline. Memory is reclaimed by a
//! hierarchical timer wheel per shard, advanced by every write to that shard (and by a read that
//! meets an expired entry), so reclamation costs amortised O(1) per entry, never a scan, and needs
//! no background thread. [`Cache::run_pending_tasks`] forces it.
//!
//! # Eviction policy
//! W-TinyLFU with an adaptive window, shaped so reads never take a write lock: a small FIFO
//! window admits new keys; a CLOCK ring holds the rest; when full, the window's oldest entry gets
//! into the main ring only if a count-min frequency sketch says it is clearly (by two counts)
//! more popular than the CLOCK's victim. The window size follows two small ghost tables, the
//! fingerprints of the candidates admission just turned away and of the main victims just
//! evicted: a miss on a recent one of the first grows the window by one entry, a miss on a
//! recent one of the second shrinks it (from one entry up to 80 % of the capacity). Reads only
//! bump a 3-bit counter in the entry (and stop writing once it saturates, so hot keys read from
//! many cores do not bounce cache lines); the ghosts cost two table probes per miss.
//!
//! Why this policy, as measured with `lethe-bench hitratio` (BENCHMARKS.md, 2026-12-05 08:06
//! run): exact LRU scores 0 % on the LIRS loop trace at every size, while TinyLFU admission
//! keeps a stable resident set there (25.2 %, 50.3 % and 75.2 % at 256, 512 and 768 entries,
//! within 0.6 points of moka); on the ARC OLTP trace it is 2.7 to 4.9 points above the better
//! of moka and quick_cache at every size, and on zigzag, where exact LRU is best, within 1.1
//! points of it (0.8 in the previous run: the hashers are seeded per process).
//! Hill climbing on the hit ratio (Caffeine's way of sizing the window) walked on noise when
//! sampled often enough to move within a trace; the ghosts measure both sides of the boundary
//! over the same accesses instead. A turned-away candidate that comes straight back also ages
//! the frequency sketch sooner, so long-idle keys with saturated counts stop blocking newcomers
//! in large caches. Where it loses: quick_cache is 2.3 (P3) and 2.8 (P6) points better at the
//! largest size (131072 entries), where its ghost-admitted main queue keeps more of the
//! long-reuse keys than frequency admission does, and moka or quick_cache is 0.1 to 0.9 points
//! better on loop@512/768, multi1, multi2, zigzag@1000, 2_pools@1000 and P6@32768.
//!
//! # Concurrency
//! The key space is split into shards (sixteen per core by default, fewer for small caches so the
//! policy sees at least 2048 entries each), each a hash table of slot indices plus slots, policy state and
//! timer wheel under one `RwLock`. Reads take the read lock; writes take the write lock of one
//! shard. Removal listeners run, and removed keys and values are dropped, after the lock is
//! released. The engine's own batched work (tag reclamation) is bounded in time per hold, so a
//! reader that finds a shard write-locked spins for it (up to 50 µs) rather than sleeping on the
//! lock, which on a busy machine can cost a whole scheduler slice.
//!
//! # Memory overhead per entry
//! Beyond the key and value themselves, an entry costs:
//!
//! | part | bytes | what |
//! |---|---|---|
//! | slot | 48 | hash, deadline, version, write time (8 bytes each), creation and last-access seconds (4 each), weight (4), hit counter, tag set id and a flag for rare state (4); an empty slot costs the same (a niche in the creation time), no tag byte |
//! | hash table | 5.7 to 11.4 | a 4-byte slot index and a control byte per bucket, at 7/8 to 7/16 load |
//! | policy links | 8 | window/main ring links (the region in a top bit), in a vector parallel to the slots |
//! | frequency sketch | 8 | one 8-byte word of 4-bit counters per entry of capacity |
//! | window ghosts | 1.3 to 2.6 | two tables of 8-byte fingerprints, 8 slots per 1 % of the entries, rounded up to a power of two |
//! | timer links | 12 | only in shards that have scheduled a deadline |
//!
//! about 71 to 90 bytes in all, by the table. Measured by `lethe-bench memory` (BENCHMARKS.md,
//! 2026-12-05 08:06 run): 82.2 bytes per entry beyond the payload (130.2 with it; 142.7 with
//! 12-byte links and a power-of-two sketch, 184.7 with the earlier split slot and an eagerly
//! allocated lease log) for 1M entries of 16-byte keys
//! and 32-byte values, allocator-counted, so including vector growth slack; at that size
//! (just above 2^20) the table and the ghosts sit at the top of their ranges. The first lease
//! allocates the lease removal log: 8 bytes per entry of capacity, at most 8 MiB. State only some entries have lives in
//! a map beside the slots, keyed by slot (about 24 bytes per entry that has any, plus what
//! follows): entries with sliding or adaptive TTL or early refresh add a 104-byte box. A tagged entry adds 8 bytes to its tag
//! set's member list (16 until compaction); each distinct tag set in a shard costs about 120
//! bytes, and each tag name in use about 100 bytes plus the name, once in the registry and once per shard using it. Entries with dependencies, a stale grace
//! or a source last-modified time add a 40-byte box, plus their dependency keys (in the box and,
//! for the reverse edge, in the dependency graph). With [`CacheBuilder::index_keys`], a copy of
//! each key's bytes and about 40 bytes of B-tree per entry.
//!
//! # Where things are
//! The root holds what nearly every user names: [`Cache`], [`CacheBuilder`], [`InsertOptions`],
//! [`Invalidation`], [`RemovalCause`], [`Error`] and [`ErrorKind`]. The rest lives in the module
//! that owns it: [`expiry`] (TTL strategies), [`version`] (conditional writes, ETags),
//! [`lease`], [`invalidate`] (applied invalidations, subscribers), [`history`] (why a key is or
//! is not cached), [`tag_registry`] (the tag model), [`pattern`] (globs), [`compute`] (atomic
//! updates, multi-key locks), [`entry`] (metadata), [`listener`], [`stats`], [`clock`],
//! [`weigher`], [`coaccess`], [`event`] and [`template`] (change events and the templates rules
//! render).
//!
//! # Features
//! Both on by default; with `default-features = false` the crate is the engine alone, without
//! serde or toml and without threads of its own.
//! - `rules`: [`rules`], declarative invalidation rules and data policies loaded from TOML
//!   ([`Cache::apply_event`], [`Cache::insert_with_policy`], [`CacheBuilder::data_policies`]).
//! - `loader`: [`loader`], read-through, write-through and write-behind loading, with its worker
//!   threads.

#![forbid(unsafe_code)]

// The API is grouped by module; the root re-exports only what nearly every user names.
pub mod builder;
pub mod cache;
pub mod clock;
pub mod coaccess;
mod collections;
pub mod compute;
mod deps;
pub mod entry;
mod error;
pub mod event;
mod eviction;
pub mod expiry;
pub mod history;
pub mod invalidate;
mod invalidation_state;
pub mod lease;
pub mod listener;
#[cfg(feature = "loader")]
pub mod loader;
pub mod pattern;
#[cfg(feature = "rules")]
pub mod rules;
mod shard;
mod sketch;
pub mod stats;
mod sync;
mod tag_index;
pub mod tag_registry;
pub mod template;
mod timer;
pub mod version;
pub mod weigher;

pub use builder::CacheBuilder;
pub use cache::Cache;
pub use entry::InsertOptions;
pub use error::{Error, ErrorKind};
pub use invalidate::Invalidation;
pub use listener::RemovalCause;

/// The README's Rust examples, compiled and run as doc tests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

//! Model-based property test: random operation sequences run against the engine and against a
//! plain `HashMap` model, checked after every operation.
//!
//! Every removal is reported to the listener synchronously (before the call that caused it
//! returns), so the model learns about evictions from the notifications and can stay *exact*:
//! it holds precisely the entries the engine stores, expired-but-unreclaimed ones included. That
//! gives strictly stronger checks than a one-sided model:
//!
//! - a read returns a value iff the model has a live entry for the key, and it is the model's
//!   latest value (never an absent, expired or stale one);
//! - every notification names a value that was inserted for that key and not yet reported, with
//!   a cause the operation allows (`Replaced` only for the value an insert overwrote, `Explicit`
//!   only from `remove`/`clear`, `Expired` only once the deadline has passed, `Evicted` only from
//!   inserts and, with one shard, only when the cache was over capacity);
//! - after every operation the unreported values are exactly the stored ones, so each value is
//!   reported at most once, and after the final `clear` exactly once;
//! - `len`, `weighted_size`, `stats()` and `iter()` agree with the model.

use lethe::{
    Cache, InsertOptions, RemovalCause, clock::ManualClock, clock::Timestamp, expiry::AdaptiveTtl,
    expiry::ExpireCondition, expiry::ExpiryPolicy, expiry::KeyTtl, expiry::Ttl,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
/// A realistic start on the clock's timeline (November 2023), so the timer wheel's high levels
/// see real bit patterns.
const START: u64 = 1_700_000_000 * S;
const KEYS: u32 = 32;
const NEVER: u64 = u64::MAX;

/// Per-insert TTL choice.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TtlKind {
    /// Leave the choice to the cache default.
    Default,
    /// Explicitly no expiry (overrides a cache default).
    Never,
    /// Fixed TTL, in nanoseconds.
    Fixed(u64),
    /// Sliding TTL (time to idle), in nanoseconds.
    Sliding(u64),
    /// Adaptive TTL: base, min, max in nanoseconds.
    Adaptive(Adaptive),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Adaptive {
    base: u64,
    min: u64,
    max: u64,
}

impl Adaptive {
    fn to_engine(self) -> AdaptiveTtl {
        AdaptiveTtl::new(
            Duration::from_nanos(self.base),
            Duration::from_nanos(self.min),
            Duration::from_nanos(self.max),
        )
    }

    /// The documented formula:
    /// `clamp(base × (1 + log2(1 + reads)) × min(1, update_interval / base), min, max)`.
    fn ttl(self, reads: u32, update_interval: Option<u64>) -> u64 {
        let base = self.base as f64;
        let boost = 1.0 + (1.0 + f64::from(reads)).log2();
        let damp = match update_interval {
            Some(iv) if self.base > 0 => (iv as f64 / base).min(1.0),
            _ => 1.0,
        };
        let ttl = (base * boost * damp) as u64;
        ttl.clamp(self.min, self.max.max(self.min))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Get(u32),
    GetWithMetadata(u32),
    Insert {
        key: u32,
        ttl: TtlKind,
        keep_ttl: bool,
        version: Option<u64>,
        weight: u32,
    },
    Remove(u32),
    Expire {
        key: u32,
        nanos: u64,
        cond: ExpireCondition,
    },
    ExpireAt {
        key: u32,
        offset_nanos: i64,
        cond: ExpireCondition,
    },
    Persist(u32),
    Ttl(u32),
    Contains(u32),
    /// Moves the clock forward by this many nanoseconds (generated on a millisecond scale).
    AdvanceClock(u64),
    /// Moves the clock to the key's deadline plus `delta` nanoseconds, to hit the boundary.
    AdvanceToDeadline {
        key: u32,
        delta: i8,
    },
    Clear,
    RunPendingTasks,
    Iter,
}

#[derive(Debug, Clone)]
struct Config {
    shards: usize,
    /// Capacity of each shard; the cache's capacity is `shards * per_shard`, so every shard has
    /// the same capacity and the model knows exactly which inserts are too heavy.
    per_shard: u64,
    weighted: bool,
    default_ttl: TtlKind,
}

impl Config {
    fn capacity(&self) -> u64 {
        self.per_shard * self.shards as u64
    }
}

fn duration() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0u64),
        10 => 1..=200 * MS,
        3 => (1u64..=30).prop_map(|ms| ms * MS),
        2 => 1..=1_000 * S,
        // Hours to weeks: the timer wheel's upper levels.
        1 => 3_600 * S..=30 * 86_400 * S,
    ]
}

fn advance() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..=50 * MS,
        3 => 50 * MS..=500 * MS,
        1 => S..=2_000 * S,
        1 => 3_600 * S..=10 * 86_400 * S,
    ]
}

fn cond() -> impl Strategy<Value = ExpireCondition> {
    prop_oneof![
        Just(ExpireCondition::Always),
        Just(ExpireCondition::Nx),
        Just(ExpireCondition::Xx),
        Just(ExpireCondition::Gt),
        Just(ExpireCondition::Lt),
    ]
}

fn adaptive(allow_inverted: bool) -> impl Strategy<Value = Adaptive> {
    (
        MS..=100 * MS,
        0u64..=100,
        100u64..=500,
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(base, min_pct, max_pct, invert)| {
            let (min, max) = (base * min_pct / 100, base * max_pct / 100);
            if invert && allow_inverted {
                // Per insert nothing validates min <= max; the engine clamps to min.
                Adaptive {
                    base,
                    min: max,
                    max: min,
                }
            } else {
                Adaptive { base, min, max }
            }
        })
}

fn ttl_kind() -> impl Strategy<Value = TtlKind> {
    prop_oneof![
        4 => Just(TtlKind::Default),
        1 => Just(TtlKind::Never),
        3 => duration().prop_map(TtlKind::Fixed),
        2 => duration().prop_map(TtlKind::Sliding),
        2 => adaptive(true).prop_map(TtlKind::Adaptive),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let default_ttl = prop_oneof![
        3 => Just(TtlKind::Never),
        1 => (MS..=300 * MS).prop_map(TtlKind::Fixed),
        1 => (MS..=300 * MS).prop_map(TtlKind::Sliding),
        1 => adaptive(false).prop_map(TtlKind::Adaptive),
    ];
    (
        prop_oneof![Just(1usize), Just(2), Just(4)],
        any::<bool>(),
        default_ttl,
    )
        .prop_flat_map(|(shards, weighted, default_ttl)| {
            let per_shard = if weighted {
                (4u64..=40).boxed()
            } else {
                // Count caches of 1..=24 entries in total.
                (1u64..=(24 / shards as u64)).boxed()
            };
            per_shard.prop_map(move |per_shard| Config {
                shards,
                per_shard,
                weighted,
                default_ttl,
            })
        })
}

fn op(cfg: &Config) -> impl Strategy<Value = Op> + use<> {
    // Half the keys come from a hot subset, so reads hit and writes replace.
    let key = prop_oneof![0..KEYS / 4, 0..KEYS];
    // Weights up to a little above a shard's capacity, so some inserts are too heavy.
    let max_weight = if cfg.weighted {
        (cfg.per_shard + 8) as u32
    } else {
        1
    };
    let weight = prop_oneof![
        1 => Just(0u32),
        8 => 1..=max_weight.max(1),
    ];
    let version = prop_oneof![
        4 => Just(None),
        1 => (0u64..1_000).prop_map(Some),
    ];
    prop_oneof![
        15 => key.clone().prop_map(Op::Get),
        8 => key.clone().prop_map(Op::GetWithMetadata),
        25 => (key.clone(), ttl_kind(), prop::bool::weighted(0.15), version, weight).prop_map(
            |(key, ttl, keep_ttl, version, weight)| Op::Insert { key, ttl, keep_ttl, version, weight }
        ),
        6 => key.clone().prop_map(Op::Remove),
        6 => (key.clone(), duration(), cond()).prop_map(|(key, nanos, cond)| Op::Expire { key, nanos, cond }),
        3 => (key.clone(), -(200 * MS as i64)..=(200 * MS as i64), cond())
            .prop_map(|(key, offset_nanos, cond)| Op::ExpireAt { key, offset_nanos, cond }),
        3 => key.clone().prop_map(Op::Persist),
        5 => key.clone().prop_map(Op::Ttl),
        5 => key.clone().prop_map(Op::Contains),
        10 => advance().prop_map(Op::AdvanceClock),
        3 => (key, -1i8..=1).prop_map(|(key, delta)| Op::AdvanceToDeadline { key, delta }),
        1 => Just(Op::Clear),
        2 => Just(Op::RunPendingTasks),
        2 => Just(Op::Iter),
    ]
}

fn scenario() -> impl Strategy<Value = (Config, Vec<Op>)> {
    config().prop_flat_map(|cfg| {
        let ops = prop::collection::vec(op(&cfg), 1..200);
        (Just(cfg), ops)
    })
}

/// What the model knows about one stored value.
#[derive(Debug, Clone)]
struct Rec {
    key: u32,
    weight: u32,
    deadline: Option<u64>,
    idle: Option<u64>,
    /// Adaptive TTL parameters, while the entry follows them.
    adaptive: Option<Adaptive>,
    /// The entry carries moving-deadline state (sliding or adaptive): an adaptive rewrite then
    /// learns the update interval and read count from it.
    has_state: bool,
    /// Adaptive bookkeeping: reads since the last write, reads between the two writes before,
    /// time between the last two writes.
    reads: u32,
    prior_reads: u32,
    interval: Option<u64>,
    created: u64,
    updated: u64,
    version: u64,
    /// Index of the operation that wrote it.
    born: usize,
}

impl Rec {
    fn live(&self, now: u64) -> bool {
        self.deadline.is_none_or(|d| d > now)
    }
    fn expired(&self, now: u64) -> bool {
        !self.live(now)
    }
    fn clear_state(&mut self) {
        self.idle = None;
        self.adaptive = None;
        self.has_state = false;
    }

    fn key_ttl(&self, now: u64) -> KeyTtl {
        match self.deadline {
            None => KeyTtl::Persistent,
            Some(d) => KeyTtl::Expires(Duration::from_nanos(d - now)),
        }
    }
}

/// What an operation allows the listener to report.
#[derive(Debug, Default)]
struct Allowed {
    /// `Explicit` for this value (a `remove` of a live key).
    explicit: Option<u64>,
    /// `Explicit` for everything (`clear`).
    explicit_all: bool,
    /// `Replaced` for this value (the live value an insert overwrote).
    replaced: Option<u64>,
    /// `Evicted` may happen (inserts only).
    evictions: bool,
    /// This value must be reported `Evicted` (too heavy for a shard).
    rejected: Option<u64>,
    /// The weight the insert brings in, for the "only evict when over capacity" check.
    incoming_weight: u64,
}

fn cause_index(c: RemovalCause) -> usize {
    RemovalCause::ALL
        .iter()
        .position(|&x| x == c)
        .expect("known cause")
}

fn allows(cond: ExpireCondition, current: u64, new: u64) -> bool {
    match cond {
        ExpireCondition::Always => true,
        ExpireCondition::Nx => current == NEVER,
        ExpireCondition::Xx => current != NEVER,
        ExpireCondition::Gt => current != NEVER && new > current,
        ExpireCondition::Lt => new < current,
    }
}

type Log = Arc<Mutex<Vec<(u32, u64, RemovalCause)>>>;

struct Harness {
    cfg: Config,
    cache: Cache<u32, u64>,
    clock: Arc<ManualClock>,
    log: Log,
    now: u64,
    /// key -> the value the engine stores for it (live or expired but not yet reclaimed).
    current: HashMap<u32, u64>,
    /// value -> record, for every value inserted and not yet reported.
    stored: HashMap<u64, Rec>,
    /// Values already reported, with their cause.
    reported: HashMap<u64, RemovalCause>,
    next_seq: u64,
    insert_calls: u64,
    hits: u64,
    misses: u64,
    inserts: u64,
    updates: u64,
    removals: [u64; RemovalCause::ALL.len()],
    op_index: usize,
}

impl Harness {
    fn new(cfg: Config) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp(START)));
        let log: Log = Arc::default();
        let sink = log.clone();
        let mut b = Cache::<u32, u64>::builder()
            .shards(cfg.shards)
            .clock(clock.clone())
            .removal_listener(move |k: &u32, v: &u64, c: RemovalCause| {
                sink.lock().unwrap().push((*k, *v, c));
            });
        b = if cfg.weighted {
            b.max_weight(cfg.capacity())
                .weigher(|_: &u32, v: &u64| (*v & 0xFF) as u32)
        } else {
            b.max_capacity(cfg.capacity())
        };
        b = match cfg.default_ttl {
            TtlKind::Fixed(d) => b.time_to_live(Duration::from_nanos(d)),
            TtlKind::Sliding(d) => b.time_to_idle(Duration::from_nanos(d)),
            TtlKind::Adaptive(a) => b.expiry(ExpiryPolicy {
                ttl: Ttl::Adaptive(a.to_engine()),
                ..ExpiryPolicy::default()
            }),
            TtlKind::Default | TtlKind::Never => b,
        };
        let cache = b.try_build().expect("valid configuration");
        Harness {
            cfg,
            cache,
            clock,
            log,
            now: START,
            current: HashMap::new(),
            stored: HashMap::new(),
            reported: HashMap::new(),
            next_seq: 1,
            insert_calls: 0,
            hits: 0,
            misses: 0,
            inserts: 0,
            updates: 0,
            removals: [0; RemovalCause::ALL.len()],
            op_index: 0,
        }
    }

    /// The model's entry for `key`, live or not.
    fn entry(&self, key: u32) -> Option<(u64, &Rec)> {
        self.current.get(&key).map(|v| (*v, &self.stored[v]))
    }

    fn live_value(&self, key: u32) -> Option<u64> {
        self.entry(key)
            .filter(|(_, r)| r.live(self.now))
            .map(|(v, _)| v)
    }

    fn weight_of_stored(&self) -> u64 {
        self.current
            .values()
            .map(|v| u64::from(self.stored[v].weight))
            .sum()
    }

    fn run(&mut self, ops: &[Op]) {
        for (i, op) in ops.iter().enumerate() {
            self.op_index = i;
            self.step(op);
        }
        // Final accounting: reclaim, clear, and everything ever inserted has been reported once.
        self.op_index = ops.len();
        self.step(&Op::RunPendingTasks);
        self.op_index += 1;
        self.step(&Op::Clear);
        assert!(
            self.stored.is_empty(),
            "unreported values: {:?}",
            self.stored
        );
        assert_eq!(self.reported.len() as u64, self.insert_calls);
        assert_eq!(self.cache.len(), 0);
        assert_eq!(self.cache.weighted_size(), 0);
        assert_eq!(self.cache.scheduled_timers(), 0);
        let s = self.cache.stats();
        assert_eq!(s.removals.total(), self.insert_calls);
    }

    fn step(&mut self, op: &Op) {
        let stored_before: Vec<u64> = self.current.values().copied().collect();
        let mut allowed = Allowed::default();
        // Keys whose shard the operation wrote to (its maintenance reclaims expired entries).
        let mut wrote_key: Option<u32> = None;
        let mut wrote_all = false;
        let now = self.now;
        match *op {
            Op::Get(k) => {
                let got = self.cache.get(&k);
                self.check_read(k, got, None);
                if self.entry(k).is_some_and(|(_, r)| r.expired(now)) {
                    wrote_key = Some(k);
                }
            }
            Op::GetWithMetadata(k) => {
                let got = self.cache.get_with_metadata(&k);
                let (value, meta) = match got {
                    Some(l) => (Some(l.value), Some(l.metadata)),
                    None => (None, None),
                };
                self.check_read(k, value, meta);
                if self.entry(k).is_some_and(|(_, r)| r.expired(now)) {
                    wrote_key = Some(k);
                }
            }
            Op::Insert {
                key,
                ttl,
                keep_ttl,
                version,
                weight,
            } => {
                wrote_key = Some(key);
                self.insert(key, ttl, keep_ttl, version, weight, &mut allowed);
            }
            Op::Remove(k) => {
                wrote_key = Some(k);
                let got = self.cache.remove(&k);
                let live = self.live_value(k);
                assert_eq!(got, live, "remove({k}) at {now}");
                if let Some(v) = live {
                    allowed.explicit = Some(v);
                    self.current.remove(&k);
                }
            }
            Op::Expire { key, nanos, cond } => {
                wrote_key = Some(key);
                let got = self.cache.expire(&key, Duration::from_nanos(nanos), cond);
                self.apply_expire(key, now + nanos, cond, got);
            }
            Op::ExpireAt {
                key,
                offset_nanos,
                cond,
            } => {
                wrote_key = Some(key);
                let at = now.saturating_add_signed(offset_nanos);
                let got = self.cache.expire_at(&key, Timestamp(at), cond);
                self.apply_expire(key, at, cond, got);
            }
            Op::Persist(k) => {
                wrote_key = Some(k);
                let got = self.cache.persist(&k);
                let expected = match self.live_value(k) {
                    Some(v) => {
                        let r = self.stored.get_mut(&v).unwrap();
                        let had = r.deadline.is_some();
                        r.deadline = None;
                        r.clear_state();
                        had
                    }
                    None => false,
                };
                assert_eq!(got, expected, "persist({k})");
            }
            Op::Ttl(k) => {
                let got = self.cache.ttl(&k);
                let expected = match self.live_value(k) {
                    Some(v) => self.stored[&v].key_ttl(now),
                    None => KeyTtl::Missing,
                };
                assert_eq!(got, expected, "ttl({k})");
                let redis = got.as_redis_seconds();
                match expected {
                    KeyTtl::Missing => assert_eq!(redis, -2),
                    KeyTtl::Persistent => assert_eq!(redis, -1),
                    KeyTtl::Expires(_) => assert!(redis >= 0),
                }
            }
            Op::Contains(k) => {
                assert_eq!(
                    self.cache.contains(&k),
                    self.live_value(k).is_some(),
                    "contains({k})"
                );
            }
            Op::AdvanceClock(n) => {
                self.clock.advance(Duration::from_nanos(n));
                self.now += n;
            }
            Op::AdvanceToDeadline { key, delta } => {
                if let Some(d) = self.entry(key).and_then(|(_, r)| r.deadline) {
                    let target = d.saturating_add_signed(i64::from(delta));
                    if target > self.now {
                        self.clock.set(Timestamp(target));
                        self.now = target;
                    }
                }
            }
            Op::Clear => {
                wrote_all = true;
                allowed.explicit_all = true;
                self.cache.clear();
            }
            Op::RunPendingTasks => {
                wrote_all = true;
                self.cache.run_pending_tasks();
            }
            Op::Iter => {
                let got: HashSet<(u32, u64)> = self.cache.iter().collect();
                let expected: HashSet<(u32, u64)> = self
                    .current
                    .iter()
                    .filter(|(_, v)| self.stored[*v].live(now))
                    .map(|(k, v)| (*k, *v))
                    .collect();
                assert_eq!(got, expected, "iter()");
            }
        }
        assert_eq!(self.clock_now(), self.now);
        self.process_notifications(op, &allowed, &stored_before);
        self.check_invariants(op, wrote_key, wrote_all);
    }

    fn clock_now(&self) -> u64 {
        use lethe::clock::Clock;
        self.clock.now().as_nanos()
    }

    fn check_read(&mut self, k: u32, got: Option<u64>, meta: Option<lethe::entry::EntryMetadata>) {
        let now = self.now;
        match self.live_value(k) {
            Some(v) => {
                assert_eq!(got, Some(v), "read of live key {k} at {now}");
                self.hits += 1;
                let r = self.stored.get_mut(&v).unwrap();
                if let (Some(idle), Some(d)) = (r.idle, r.deadline) {
                    // Time to idle: a read moves the deadline to now + idle (never earlier).
                    r.deadline = Some(d.max(now + idle));
                }
                if let (Some(a), Some(d)) = (r.adaptive, r.deadline) {
                    // Adaptive: the read counts, and the lifetime from the last write grows.
                    r.reads += 1;
                    let ttl = a.ttl(r.reads.max(r.prior_reads), r.interval);
                    r.deadline = Some(d.max(r.updated + ttl));
                }
                if let Some(m) = meta {
                    assert_eq!(m.ttl, r.key_ttl(now), "metadata ttl of {k}");
                    assert_eq!(m.expires_at, r.deadline.map(Timestamp));
                    assert_eq!(
                        m.remaining(),
                        r.deadline.map(|d| Duration::from_nanos(d - now))
                    );
                    assert_eq!(m.version, r.version, "version of {k}");
                    // Creation and later reads are kept to the second; the write to the
                    // nanosecond.
                    let second = |t: u64| t - t % 1_000_000_000;
                    assert_eq!(m.created, Timestamp(second(r.created)), "created of {k}");
                    assert_eq!(m.updated, Timestamp(r.updated), "updated of {k}");
                    assert_eq!(
                        m.last_access,
                        Timestamp(second(now).max(r.updated)),
                        "last access of {k}"
                    );
                    assert_eq!(m.weight, r.weight);
                    assert!(!m.refresh, "no early refresh configured");
                }
            }
            None => {
                assert_eq!(
                    got,
                    None,
                    "read of key {k} at {now}; model has {:?}",
                    self.entry(k)
                );
                self.misses += 1;
            }
        }
    }

    fn apply_expire(&mut self, key: u32, deadline: u64, cond: ExpireCondition, got: bool) {
        let now = self.now;
        let expected = match self.live_value(key) {
            Some(v) => {
                let r = self.stored.get_mut(&v).unwrap();
                let ok = allows(cond, r.deadline.unwrap_or(NEVER), deadline);
                if ok {
                    // A deadline at or before now removes the entry (reported as expired);
                    // otherwise it replaces any sliding behaviour.
                    r.deadline = Some(deadline);
                    r.clear_state();
                }
                ok
            }
            None => false,
        };
        assert_eq!(
            got, expected,
            "expire({key}, deadline {deadline}, {cond:?}) at {now}"
        );
    }

    fn insert(
        &mut self,
        key: u32,
        ttl: TtlKind,
        keep_ttl: bool,
        version: Option<u64>,
        weight: u32,
        allowed: &mut Allowed,
    ) {
        let now = self.now;
        let weight = if self.cfg.weighted { weight } else { 1 };
        let value = (self.next_seq << 8) | u64::from(weight);
        self.next_seq += 1;
        self.insert_calls += 1;

        let mut opts = InsertOptions::new();
        match ttl {
            TtlKind::Default => {}
            TtlKind::Never => opts = opts.expiry(Ttl::Never),
            TtlKind::Fixed(d) => opts = opts.ttl(Duration::from_nanos(d)),
            TtlKind::Sliding(d) => opts = opts.idle(Duration::from_nanos(d)),
            TtlKind::Adaptive(a) => opts = opts.expiry(Ttl::Adaptive(a.to_engine())),
        }
        if keep_ttl {
            opts = opts.keep_ttl();
        }
        if let Some(v) = version {
            opts = opts.version(v);
        }

        let old = self.entry(key).map(|(v, r)| (v, r.clone()));
        let old_live = old.as_ref().filter(|(_, r)| r.live(now)).cloned();
        let rejected = u64::from(weight) > self.cfg.per_shard;

        let replaced = self.cache.insert_with_options(key, value, &opts);
        assert_eq!(replaced, old_live.is_some(), "insert({key}) return value");

        let effective = match ttl {
            TtlKind::Default => self.cfg.default_ttl,
            other => other,
        };
        let mut rec = Rec {
            key,
            weight,
            deadline: None,
            idle: None,
            adaptive: None,
            has_state: false,
            reads: 0,
            prior_reads: 0,
            interval: None,
            created: old_live.as_ref().map_or(now, |(_, r)| r.created),
            updated: now,
            version: version.unwrap_or(
                old_live
                    .as_ref()
                    .map_or(1, |(_, r)| r.version.wrapping_add(1)),
            ),
            born: self.op_index,
        };
        match (&old_live, keep_ttl) {
            // KEEPTTL on a live entry keeps its deadline and its expiry state as they are.
            (Some((_, r)), true) => {
                rec.deadline = r.deadline;
                rec.idle = r.idle;
                rec.adaptive = r.adaptive;
                rec.has_state = r.has_state;
                rec.reads = r.reads;
                rec.prior_reads = r.prior_reads;
                rec.interval = r.interval;
            }
            _ => match effective {
                TtlKind::Default | TtlKind::Never => {}
                TtlKind::Fixed(d) => rec.deadline = Some(now + d),
                TtlKind::Sliding(d) => {
                    rec.deadline = Some(now + d);
                    rec.idle = Some(d);
                    rec.has_state = true;
                }
                TtlKind::Adaptive(a) => {
                    // A rewrite of a live entry with state learns from it: the reads it served
                    // and the time since it was written.
                    let (reads, interval) = match &old_live {
                        Some((_, r)) if r.has_state => (r.reads, Some(now - r.updated)),
                        _ => (0, None),
                    };
                    rec.deadline = Some(now + a.ttl(reads, interval));
                    rec.adaptive = Some(a);
                    rec.has_state = true;
                    rec.prior_reads = reads;
                    rec.interval = interval;
                }
            },
        }
        self.stored.insert(value, rec);
        // The old value, live or expired, leaves the engine during this call (replaced, or
        // reclaimed as expired): the orphan check after the call makes sure it was reported.
        self.current.remove(&key);
        allowed.replaced = old_live.as_ref().map(|(v, _)| *v);
        allowed.evictions = true;
        // A write over a live entry is an update even when the new value is refused as too
        // heavy: the old value was replaced all the same.
        if old_live.is_some() {
            self.updates += 1;
        }
        if rejected {
            allowed.rejected = Some(value);
        } else {
            self.current.insert(key, value);
            allowed.incoming_weight = u64::from(weight);
            if old_live.is_none() {
                self.inserts += 1;
            }
        }
    }

    fn process_notifications(&mut self, op: &Op, allowed: &Allowed, stored_before: &[u64]) {
        let now = self.now;
        let events: Vec<_> = std::mem::take(&mut *self.log.lock().unwrap());
        let mut evicted = Vec::new();
        let mut gone_before_eviction = HashSet::new();
        for &(k, v, cause) in &events {
            let Some(rec) = self.stored.remove(&v) else {
                panic!(
                    "{op:?}: notification ({k}, {v}, {cause:?}) for a value not stored; \
                     earlier report: {:?}",
                    self.reported.get(&v)
                );
            };
            assert_eq!(rec.key, k, "{op:?}: value {v} reported under the wrong key");
            match cause {
                RemovalCause::Expired => assert!(
                    rec.expired(now),
                    "{op:?}: ({k}, {v}) reported expired at {now}, deadline {:?}",
                    rec.deadline
                ),
                RemovalCause::Replaced => assert_eq!(
                    allowed.replaced,
                    Some(v),
                    "{op:?}: unexpected Replaced ({k}, {v})"
                ),
                RemovalCause::Explicit => assert!(
                    allowed.explicit_all || allowed.explicit == Some(v),
                    "{op:?}: unexpected Explicit ({k}, {v})"
                ),
                RemovalCause::Evicted => {
                    assert!(
                        allowed.evictions,
                        "{op:?}: ({k}, {v}) evicted outside an insert"
                    );
                    evicted.push(v);
                }
                other => panic!("unknown cause {other:?}"),
            }
            if matches!(cause, RemovalCause::Expired | RemovalCause::Replaced) {
                gone_before_eviction.insert(v);
            }
            if let Some(r) = allowed.rejected {
                if v == r {
                    assert_eq!(cause, RemovalCause::Evicted, "{op:?}: too heavy an entry");
                }
            }
            if self.current.get(&k) == Some(&v) {
                self.current.remove(&k);
            }
            self.reported.insert(v, cause);
            self.removals[cause_index(cause)] += 1;
        }

        // With one shard the model knows the shard's weight: the policy must only evict when the
        // weight after the write (expired entries reclaimed first) exceeds the capacity.
        let spontaneous: Vec<u64> = evicted
            .iter()
            .copied()
            .filter(|v| Some(*v) != allowed.rejected)
            .collect();
        if self.cfg.shards == 1 && !spontaneous.is_empty() {
            let before: u64 = stored_before
                .iter()
                .filter(|v| !gone_before_eviction.contains(v))
                .map(|v| {
                    let r = self.stored.get(v).map(|r| r.weight).unwrap_or_else(|| {
                        // Reported during this op: weight encoded in the value.
                        (*v & 0xFF) as u32
                    });
                    if self.cfg.weighted { u64::from(r) } else { 1 }
                })
                .sum();
            let pressure = before + allowed.incoming_weight;
            assert!(
                pressure > self.cfg.capacity(),
                "{op:?}: evicted {spontaneous:?} although weight {pressure} fits capacity {}",
                self.cfg.capacity()
            );
        }
    }

    fn check_invariants(&mut self, op: &Op, wrote_key: Option<u32>, wrote_all: bool) {
        let now = self.now;
        // No orphans: every unreported value is the stored value of its key.
        assert_eq!(
            self.stored.len(),
            self.current.len(),
            "{op:?}: values left the engine without a notification: {:?}",
            self.stored
                .iter()
                .filter(|(v, r)| self.current.get(&r.key) != Some(*v))
                .collect::<Vec<_>>()
        );
        for (k, v) in &self.current {
            assert_eq!(self.stored[v].key, *k);
        }

        // Maintenance reclaims every expired entry of the shards a write touched (entries
        // written already expired, e.g. with a zero TTL, wait for the next write).
        let stale: Vec<(u32, u64)> = self
            .current
            .iter()
            .filter(|(k, v)| {
                let r = &self.stored[*v];
                let touched = wrote_all
                    || (self.cfg.shards == 1 && wrote_key.is_some())
                    || wrote_key == Some(**k);
                touched && r.expired(now) && r.born != self.op_index
            })
            .map(|(k, v)| (*k, *v))
            .collect();
        assert!(
            stale.is_empty(),
            "{op:?}: expired entries not reclaimed by the write: {stale:?}"
        );
        if matches!(op, Op::Clear) {
            assert!(self.current.is_empty());
        }

        // Sizes.
        let len = self.cache.len();
        let weight = self.cache.weighted_size();
        assert_eq!(len, self.current.len(), "{op:?}: len");
        assert_eq!(
            weight,
            self.weight_of_stored_effective(),
            "{op:?}: weighted_size"
        );
        assert!(
            weight <= self.cfg.capacity(),
            "{op:?}: weight {weight} over capacity"
        );
        if !self.cfg.weighted {
            assert!(
                len as u64 <= self.cfg.capacity(),
                "{op:?}: len {len} over capacity"
            );
        }
        assert_eq!(self.cache.is_empty(), len == 0);
        // The timer wheels hold exactly the stored entries that have a deadline.
        let with_deadline = self
            .current
            .values()
            .filter(|v| self.stored[*v].deadline.is_some())
            .count();
        assert_eq!(
            self.cache.scheduled_timers(),
            with_deadline,
            "{op:?}: scheduled timers"
        );

        // Statistics.
        let s = self.cache.stats();
        assert_eq!(s.hits, self.hits, "{op:?}: hits");
        assert_eq!(s.misses, self.misses, "{op:?}: misses");
        assert_eq!(s.requests(), self.hits + self.misses);
        assert_eq!(s.inserts, self.inserts, "{op:?}: inserts");
        assert_eq!(s.updates, self.updates, "{op:?}: updates");
        for (i, cause) in RemovalCause::ALL.iter().enumerate() {
            assert_eq!(
                s.removals.get(*cause),
                self.removals[i],
                "{op:?}: removals by {cause:?}"
            );
        }
        assert_eq!(s.entries, len as u64);
        assert_eq!(s.weight, weight);
        assert_eq!(s.capacity, self.cfg.capacity());
    }

    fn weight_of_stored_effective(&self) -> u64 {
        if self.cfg.weighted {
            self.weight_of_stored()
        } else {
            self.current.len() as u64
        }
    }
}

proptest! {
    // PROPTEST_CASES overrides the default of 512 cases for longer bug hunts.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn engine_matches_model((cfg, ops) in scenario()) {
        Harness::new(cfg).run(&ops);
    }
}

/// A few fixed sequences that exercise specific paths, so they run even if the random
/// generator never lines them up.
#[test]
fn model_fixed_sequences() {
    let count = |shards, per_shard| Config {
        shards,
        per_shard,
        weighted: false,
        default_ttl: TtlKind::Never,
    };
    let ins = |key, ttl| Op::Insert {
        key,
        ttl,
        keep_ttl: false,
        version: None,
        weight: 1,
    };
    // Zero TTL insert, read at the boundary, reclaim on the next write.
    Harness::new(count(1, 4)).run(&[
        ins(1, TtlKind::Fixed(0)),
        Op::Get(1),
        ins(2, TtlKind::Fixed(10 * MS)),
        Op::AdvanceToDeadline { key: 2, delta: -1 },
        Op::GetWithMetadata(2),
        Op::AdvanceClock(1),
        Op::Get(2),
        Op::Ttl(2),
    ]);
    // Sliding entry kept alive by reads across wheel ticks, then left idle.
    Harness::new(count(1, 4)).run(&[
        ins(3, TtlKind::Sliding(5 * MS)),
        Op::AdvanceClock(4 * MS),
        Op::Get(3),
        Op::AdvanceClock(4 * MS),
        Op::GetWithMetadata(3),
        Op::AdvanceClock(4 * MS),
        Op::RunPendingTasks,
        Op::Get(3),
        Op::AdvanceClock(6 * MS),
        Op::RunPendingTasks,
        Op::Contains(3),
    ]);
    // Eviction pressure with replacement, removal and clear.
    let mut ops = Vec::new();
    for k in 0..20 {
        ops.push(ins(k, TtlKind::Default));
        ops.push(Op::Get(k / 2));
        ops.push(ins(k / 3, TtlKind::Fixed(S)));
    }
    ops.push(Op::Remove(1));
    ops.push(Op::Iter);
    ops.push(Op::Clear);
    Harness::new(count(2, 3)).run(&ops);
    // Weighted: an entry too heavy for its shard replaces (and drops) the live one.
    Harness::new(Config {
        shards: 1,
        per_shard: 10,
        weighted: true,
        default_ttl: TtlKind::Never,
    })
    .run(&[
        Op::Insert {
            key: 1,
            ttl: TtlKind::Default,
            keep_ttl: false,
            version: None,
            weight: 4,
        },
        Op::Insert {
            key: 1,
            ttl: TtlKind::Default,
            keep_ttl: false,
            version: None,
            weight: 11,
        },
        Op::Get(1),
    ]);
}

//! Per-entry expiry: the TTL strategies, jitter, probabilistic early refresh, and the Redis
//! `EXPIRE` conditions.
//!
//! An entry carries one absolute deadline (nanoseconds on the clock's timeline). Strategies differ
//! only in how that deadline is set and moved:
//!
//! | strategy | deadline set on write | moved on read |
//! |---|---|---|
//! | [`Ttl::Never`] | none | no |
//! | [`Ttl::Fixed`] | `now + ttl` | no |
//! | [`Ttl::Sliding`] | `now + idle` | to `now + idle` (time to idle) |
//! | [`Ttl::Adaptive`] | `now + f(reads, update interval)` | grows as reads accumulate |
//!
//! Jitter scales the TTL computed at write time by a uniform factor in `1 ± fraction`.
//! Early refresh (XFetch) never moves a deadline; it only tells a reader "refresh now".

use crate::clock::{Timestamp, duration_nanos};
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Deadline value meaning "no expiry".
pub(crate) const NEVER: u64 = u64::MAX;

/// How long an entry lives.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Ttl {
    /// The entry lives until removed, replaced, invalidated or evicted.
    #[default]
    Never,
    /// Expires a fixed time after it was written (time to live).
    Fixed(Duration),
    /// Expires when not read for this long (time to idle); every read restarts the countdown.
    Sliding(Duration),
    /// A TTL that grows with the entry's reads and shrinks with its update rate; see
    /// [`AdaptiveTtl`].
    Adaptive(AdaptiveTtl),
}

/// Parameters of [`Ttl::Adaptive`].
///
/// The TTL at any moment is
///
/// ```text
/// ttl = clamp(base × (1 + log2(1 + reads)) × min(1, update_interval / base), min, max)
/// ```
///
/// where `reads` is the larger of the reads served since the last write and the reads served
/// between the two writes before it (so a hot entry keeps its long TTL across an update), and
/// `update_interval` is the time between the last two writes (absent on the first write, when
/// the factor is 1). Read-heavy entries therefore live longer, frequently updated ones shorter,
/// always within `[min, max]`. Reads can only lengthen the current lifetime, never shorten it.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveTtl {
    /// TTL of an entry with no reads and no update history.
    pub base: Duration,
    /// Lower bound.
    pub min: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl AdaptiveTtl {
    /// Adaptive TTL around `base`, clamped to `[min, max]`.
    pub fn new(base: Duration, min: Duration, max: Duration) -> Self {
        AdaptiveTtl { base, min, max }
    }

    pub(crate) fn ttl(&self, reads: u32, update_interval: Option<u64>) -> u64 {
        let base = duration_nanos(self.base) as f64;
        let boost = 1.0 + (1.0 + f64::from(reads)).log2();
        let damp = match update_interval {
            Some(iv) if base > 0.0 => (iv as f64 / base).min(1.0),
            _ => 1.0,
        };
        let ttl = (base * boost * damp) as u64;
        ttl.clamp(
            duration_nanos(self.min),
            duration_nanos(self.max).max(duration_nanos(self.min)),
        )
    }
}

/// Probabilistic early expiration (XFetch: Vattani, Chierichetti and Lowenstein, "Optimal
/// Probabilistic Cache Stampede Prevention", VLDB 2015).
///
/// A read at time `now` of an entry expiring at `deadline` is told to refresh when
/// `now - delta × beta × ln(u) >= deadline` for a fresh uniform `u` in (0, 1]. `delta` is how long
/// a recomputation takes; `beta` > 1 refreshes earlier, < 1 later (1.0 is the paper's optimum).
/// The probability rises smoothly to 1 at the deadline, so among many concurrent readers of a hot
/// key, one refreshes a little early instead of all of them at once after expiry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyRefresh {
    /// Eagerness; 1.0 is the paper's recommended value.
    pub beta: f64,
    /// Expected time to recompute the value.
    pub delta: Duration,
}

impl EarlyRefresh {
    /// XFetch with the given eagerness and recompute time.
    pub fn new(beta: f64, delta: Duration) -> Self {
        EarlyRefresh { beta, delta }
    }

    pub(crate) fn should_refresh(&self, now: u64, deadline: u64, uniform: f64) -> bool {
        if deadline == NEVER {
            return false;
        }
        if now >= deadline {
            return true;
        }
        let u = uniform.clamp(f64::MIN_POSITIVE, 1.0);
        let gap = -(duration_nanos(self.delta) as f64) * self.beta * u.ln();
        now as f64 + gap >= deadline as f64
    }
}

/// The expiry a cache applies to an insert that does not choose its own.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExpiryPolicy {
    /// TTL strategy.
    pub ttl: Ttl,
    /// Jitter fraction in `[0, 1)`: the TTL computed at write time is multiplied by a uniform
    /// factor in `[1 - jitter, 1 + jitter]`, so keys written together do not expire together.
    pub jitter: f64,
    /// Probabilistic early refresh hints on reads, if wanted.
    pub early_refresh: Option<EarlyRefresh>,
}

/// Condition of an expire call, as Redis `EXPIRE key seconds [NX | XX | GT | LT]`.
///
/// As in Redis, an entry without a TTL counts as having an infinite one: `Gt` never applies to
/// it and `Lt` always does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExpireCondition {
    /// Always set the TTL.
    #[default]
    Always,
    /// Only when the entry has no TTL.
    Nx,
    /// Only when the entry has a TTL.
    Xx,
    /// Only when the new deadline is later than the current one.
    Gt,
    /// Only when the new deadline is earlier than the current one.
    Lt,
}

impl ExpireCondition {
    pub(crate) fn allows(self, current: u64, new: u64) -> bool {
        match self {
            ExpireCondition::Always => true,
            ExpireCondition::Nx => current == NEVER,
            ExpireCondition::Xx => current != NEVER,
            ExpireCondition::Gt => current != NEVER && new > current,
            ExpireCondition::Lt => new < current,
        }
    }
}

/// Remaining lifetime of a key, with Redis's distinction between "no TTL" and "missing".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// No such key (Redis `TTL` replies -2).
    Missing,
    /// The key exists and never expires (Redis replies -1).
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

impl KeyTtl {
    /// The Redis `PTTL` reply: -2, -1, or milliseconds left (rounded up, as Redis does).
    pub fn as_redis_millis(self) -> i64 {
        match self {
            KeyTtl::Missing => -2,
            KeyTtl::Persistent => -1,
            KeyTtl::Expires(d) => {
                i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX)
            }
        }
    }

    /// The Redis `TTL` reply: -2, -1, or whole seconds left (rounded to nearest, as Redis does).
    pub fn as_redis_seconds(self) -> i64 {
        match self {
            KeyTtl::Expires(d) => i64::try_from((d.as_millis() + 500) / 1000).unwrap_or(i64::MAX),
            other => other.as_redis_millis(),
        }
    }
}

/// Per-entry state for strategies that move the deadline after the write. Boxed behind an
/// `Option` in the entry so entries with a plain or no TTL pay one pointer.
#[derive(Debug)]
pub(crate) struct ExpiryState {
    pub(crate) ttl: Ttl,
    pub(crate) early_refresh: Option<EarlyRefresh>,
    /// Reads since the last write (adaptive).
    pub(crate) reads: AtomicU32,
    /// Reads between the two previous writes (adaptive).
    pub(crate) prior_reads: u32,
    /// Time between the two last writes (adaptive).
    pub(crate) update_interval: Option<u64>,
    /// Jitter factor chosen at write time, re-applied when the deadline moves.
    pub(crate) jitter_factor: f64,
}

impl ExpiryState {
    /// Whether the entry needs this state at all.
    pub(crate) fn needed(ttl: &Ttl, early: &Option<EarlyRefresh>) -> bool {
        matches!(ttl, Ttl::Sliding(_) | Ttl::Adaptive(_)) || early.is_some()
    }

    /// State for an entry with a plain deadline that still gives early-refresh hints.
    pub(crate) fn early_only(early: EarlyRefresh) -> Box<Self> {
        Box::new(ExpiryState {
            ttl: Ttl::Never,
            early_refresh: Some(early),
            reads: AtomicU32::new(0),
            prior_reads: 0,
            update_interval: None,
            jitter_factor: 1.0,
        })
    }

    /// The deadline a read at `now` moves the entry to, given when it was written; `None` when
    /// reads do not move it.
    pub(crate) fn on_read(&self, now: u64, written: u64) -> Option<u64> {
        match &self.ttl {
            Ttl::Sliding(idle) => Some(now.saturating_add(self.scaled(duration_nanos(*idle)))),
            Ttl::Adaptive(a) => {
                let reads = self.reads.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                let ttl = a.ttl(reads.max(self.prior_reads), self.update_interval);
                Some(written.saturating_add(self.scaled(ttl)))
            }
            _ => None,
        }
    }

    fn scaled(&self, ttl: u64) -> u64 {
        (ttl as f64 * self.jitter_factor) as u64
    }
}

/// Computes the deadline of a write at `now`, and the state to keep, from the entry's expiry
/// choice and (for adaptive TTL) its previous state and write time.
pub(crate) fn on_write(
    ttl: &Ttl,
    jitter: f64,
    early: Option<EarlyRefresh>,
    now: u64,
    previous: Option<(&ExpiryState, u64)>,
) -> (u64, Option<Box<ExpiryState>>) {
    // Most writes: no deadline and no state, whatever the jitter (it scales nothing).
    if matches!(ttl, Ttl::Never) && early.is_none() {
        return (NEVER, None);
    }
    let jitter_factor = if jitter > 0.0 {
        let j = jitter.min(0.999);
        1.0 + j * (fastrand::f64() * 2.0 - 1.0)
    } else {
        1.0
    };
    let scale = |t: u64| (t as f64 * jitter_factor) as u64;
    let (deadline, prior_reads, update_interval) = match ttl {
        Ttl::Never => (NEVER, 0, None),
        Ttl::Fixed(d) | Ttl::Sliding(d) => (now.saturating_add(scale(duration_nanos(*d))), 0, None),
        Ttl::Adaptive(a) => {
            let (reads, interval) = match previous {
                Some((st, written)) => (
                    st.reads.load(Ordering::Relaxed),
                    Some(now.saturating_sub(written)),
                ),
                None => (0, None),
            };
            (
                now.saturating_add(scale(a.ttl(reads, interval))),
                reads,
                interval,
            )
        }
    };
    let state = ExpiryState::needed(ttl, &early).then(|| {
        Box::new(ExpiryState {
            ttl: ttl.clone(),
            early_refresh: early,
            reads: AtomicU32::new(0),
            prior_reads,
            update_interval,
            jitter_factor,
        })
    });
    (deadline, state)
}

/// Stores `new` into `deadline` if it is later; sliding and adaptive reads only ever extend.
pub(crate) fn extend(deadline: &AtomicU64, new: u64) {
    deadline.fetch_max(new, Ordering::Relaxed);
}

/// Remaining time from `now` to `deadline` as a [`KeyTtl`] of an existing key.
pub(crate) fn remaining(deadline: u64, now: Timestamp) -> KeyTtl {
    if deadline == NEVER {
        KeyTtl::Persistent
    } else {
        KeyTtl::Expires(Duration::from_nanos(deadline.saturating_sub(now.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn adaptive_grows_with_reads_and_shrinks_with_updates() {
        let a = AdaptiveTtl::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::from_secs(100),
        );
        let cold = a.ttl(0, None);
        let hot = a.ttl(1000, None);
        assert_eq!(cold, 10 * S);
        assert!(hot > 50 * S && hot <= 100 * S, "{hot}");
        let churned = a.ttl(0, Some(2 * S));
        assert_eq!(churned, 2 * S);
        assert_eq!(a.ttl(0, Some(1)), S, "clamped to min");
        assert_eq!(a.ttl(u32::MAX, None), 100 * S, "clamped to max");
    }

    #[test]
    fn xfetch_probability_rises_towards_deadline() {
        let e = EarlyRefresh::new(1.0, Duration::from_secs(1));
        let deadline = 100 * S;
        let rate = |now: u64| {
            let mut rng = fastrand::Rng::with_seed(7);
            (0..10_000)
                .filter(|_| e.should_refresh(now, deadline, rng.f64()))
                .count()
        };
        let far = rate(90 * S);
        let near = rate(99 * S);
        let nearer = rate(deadline - S / 10);
        assert!(far < 10, "{far}");
        assert!(
            near > 3000 && near < 4500,
            "P = e^-1 ~ 0.37 at one delta: {near}"
        );
        assert!(nearer > 8500, "{nearer}");
        assert!(e.should_refresh(deadline, deadline, 0.99));
        assert!(!e.should_refresh(0, NEVER, 0.0001));
    }

    #[test]
    fn expire_conditions_follow_redis() {
        assert!(ExpireCondition::Nx.allows(NEVER, 5));
        assert!(!ExpireCondition::Nx.allows(7, 5));
        assert!(ExpireCondition::Xx.allows(7, 5));
        assert!(!ExpireCondition::Xx.allows(NEVER, 5));
        assert!(
            !ExpireCondition::Gt.allows(NEVER, 5),
            "no TTL counts as infinite"
        );
        assert!(ExpireCondition::Gt.allows(4, 5));
        assert!(ExpireCondition::Lt.allows(NEVER, 5));
        assert!(!ExpireCondition::Lt.allows(4, 5));
    }

    #[test]
    fn redis_ttl_replies() {
        assert_eq!(KeyTtl::Missing.as_redis_seconds(), -2);
        assert_eq!(KeyTtl::Persistent.as_redis_millis(), -1);
        assert_eq!(
            KeyTtl::Expires(Duration::from_micros(1500)).as_redis_millis(),
            2
        );
        assert_eq!(
            KeyTtl::Expires(Duration::from_millis(9_600)).as_redis_seconds(),
            10
        );
    }

    #[test]
    fn jitter_spreads_deadlines_within_bounds() {
        let ttl = Ttl::Fixed(Duration::from_secs(100));
        let ds: Vec<u64> = (0..200)
            .map(|_| on_write(&ttl, 0.1, None, 0, None).0)
            .collect();
        assert!(ds.iter().all(|d| (90 * S..=110 * S).contains(d)));
        let distinct: std::collections::HashSet<_> = ds.iter().collect();
        assert!(distinct.len() > 150);
    }
}

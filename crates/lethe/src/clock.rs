//! Time, as the engine sees it.
//!
//! Expiry, access times and the timer wheel all read time through the [`Clock`] trait so that
//! tests can move time by hand ([`ManualClock`]) instead of sleeping. The engine's timeline is
//! nanoseconds since the Unix epoch: [`SystemClock`] anchors a monotonic clock to the wall clock
//! once, at start, so deadlines never jump when the wall clock is adjusted, and absolute times
//! (Redis `EXPIREAT`) still mean what the caller expects.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point on the engine's timeline: nanoseconds since the Unix epoch, as told by the cache's
/// [`Clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }

    /// The timestamp of a [`SystemTime`]; times before the epoch clamp to zero.
    pub fn from_system_time(t: SystemTime) -> Self {
        Timestamp(t.duration_since(UNIX_EPOCH).map_or(0, duration_nanos))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of time for a cache.
///
/// # Contract
/// - `now` never goes backwards: each call returns a value `>=` every earlier call's value, from
///   any thread. The timer wheel and every TTL decision rely on this.
/// - `now` is cheap: it is called on every write and on every read of an entry that has a
///   deadline.
/// - The unit is nanoseconds since the Unix epoch (see [`Timestamp`]); a clock may start anywhere
///   on that line, but absolute expiry (`expire_at`) is only meaningful if it tracks wall time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The default clock: the CPU's invariant time-stamp counter (through `quanta`), anchored once
/// to the wall clock.
///
/// Why not `Instant::now()`: on x86 Linux it reads the TSC with a fence that stops the CPU from
/// overlapping the read with the cache misses around it; measured in `lethe-bench throughput`,
/// that fence alone cost a third of the write throughput. `quanta` reads the counter without the
/// fence, and falls back to the operating system's monotonic clock where the TSC is not
/// invariant or not synchronised across cores.
#[derive(Debug, Clone)]
pub struct SystemClock {
    clock: quanta::Clock,
    origin_raw: u64,
    origin_unix_nanos: u64,
}

/// Calibrating the TSC takes a few milliseconds; do it once per process.
fn shared_quanta() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// The time-stamp counter, for budgeting work done under a lock in real time whatever clock
/// the cache was built with (a [`ManualClock`] does not move while a batch runs).
pub(crate) fn work_clock() -> &'static quanta::Clock {
    shared_quanta()
}

impl SystemClock {
    /// A clock anchored at the current wall-clock time.
    pub fn new() -> Self {
        let clock = shared_quanta().clone();
        SystemClock {
            origin_raw: clock.raw(),
            origin_unix_nanos: Timestamp::from_system_time(SystemTime::now()).0,
            clock,
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.clock.delta_as_nanos(self.origin_raw, self.clock.raw());
        Timestamp(self.origin_unix_nanos.saturating_add(elapsed))
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            nanos: AtomicU64::new(start.0),
        }
    }

    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.nanos.fetch_add(duration_nanos(d), Ordering::SeqCst);
    }

    /// Moves time to `t`; a `t` earlier than now is ignored (time never goes backwards).
    pub fn set(&self, t: Timestamp) {
        self.nanos.fetch_max(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::SeqCst))
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_near_wall_time() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let wall = Timestamp::from_system_time(SystemTime::now());
        assert!(
            wall.0.abs_diff(a.0) < 5_000_000_000,
            "anchored to wall time"
        );
    }

    #[test]
    fn system_clock_advances_at_real_time_rate() {
        // The TSC is scaled to nanoseconds by a calibrated factor; a wrong factor would make
        // every TTL too long or too short.
        let c = SystemClock::new();
        let before = c.now();
        let start = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let real = start.elapsed();
        let measured = c.now().saturating_duration_since(before);
        assert!(
            measured >= Duration::from_millis(45),
            "{measured:?} vs {real:?}"
        );
        assert!(
            measured <= real + Duration::from_millis(20),
            "{measured:?} vs {real:?}"
        );
    }

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new(Timestamp(100));
        c.advance(Duration::from_nanos(50));
        assert_eq!(c.now(), Timestamp(150));
        c.set(Timestamp(120));
        assert_eq!(c.now(), Timestamp(150));
        c.set(Timestamp(1_000));
        assert_eq!(c.now(), Timestamp(1_000));
    }
}

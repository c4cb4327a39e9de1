//! Single flight: at most one load per key at a time within a loader; concurrent missers of
//! the key wait for that load's outcome instead of loading too.
//!
//! The cache's leases already give one *fill* per key per lease window across every handle,
//! but a caller that finds the lease taken can only poll. Within one process a condition
//! variable does better: the flight map (key → flight) lets waiters sleep until the leader
//! publishes, and hands them its outcome, error included, so N concurrent missers cost one
//! source read.
//!
//! A leader is a guard: dropped without publishing (a panic in the source, a refresh job
//! discarded at shutdown) it publishes [`Outcome::Panicked`] or [`Outcome::Abandoned`], so a
//! waiter can never hang on a load that will not finish.
//!
//! Flights are numbered in creation order. A waiter compares the number with the count it saw
//! when its own call started: a load whose flight began after that read the source during the
//! call, so its value may be returned even when its fill was refused.

use crate::collections::HashMap;
use crate::sync::{Arc, AtomicU64, Ordering};
// Paired with a condvar, and loader threads are outside the Shuttle tests (see crate::sync).
use parking_lot::{Condvar, Mutex};
use std::hash::Hash;

/// How a flight ended.
#[derive(Debug)]
pub(crate) enum Outcome<V, E> {
    /// The source's answer (or the cache's, if the key was filled meanwhile). `current` says
    /// the value was still current when the flight ended: it was cached, or nothing wrote or
    /// invalidated the key during the load. A value that is not current is only good for
    /// callers that started before the flight did.
    Loaded { value: Option<V>, current: bool },
    /// A stale value, served while someone else refreshes.
    Stale(V),
    /// The source failed.
    Failed(Arc<E>),
    /// The leader panicked.
    Panicked,
    /// The leader gave up without loading (a background refresh that was not run, or that
    /// found another holder of the key's lease); waiters should try again themselves.
    Abandoned,
}

impl<V: Clone, E> Clone for Outcome<V, E> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Loaded { value, current } => Outcome::Loaded {
                value: value.clone(),
                current: *current,
            },
            Outcome::Stale(v) => Outcome::Stale(v.clone()),
            Outcome::Failed(e) => Outcome::Failed(e.clone()),
            Outcome::Panicked => Outcome::Panicked,
            Outcome::Abandoned => Outcome::Abandoned,
        }
    }
}

/// One load in progress, shared by its leader and waiters.
#[derive(Debug)]
pub(crate) struct Flight<V, E> {
    id: u64,
    outcome: Mutex<Option<Outcome<V, E>>>,
    done: Condvar,
}

impl<V: Clone, E> Flight<V, E> {
    /// The flight's number; see the module docs.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Blocks until the leader publishes.
    pub(crate) fn wait(&self) -> Outcome<V, E> {
        let mut outcome = self.outcome.lock();
        loop {
            if let Some(o) = &*outcome {
                return o.clone();
            }
            self.done.wait(&mut outcome);
        }
    }

    fn publish(&self, o: Outcome<V, E>) {
        *self.outcome.lock() = Some(o);
        self.done.notify_all();
    }
}

#[derive(Debug)]
struct FlightMap<K, V, E> {
    flights: Mutex<HashMap<K, Arc<Flight<V, E>>>>,
    issued: AtomicU64,
}

/// The flights of one loader.
#[derive(Debug)]
pub(crate) struct Flights<K, V, E> {
    map: Arc<FlightMap<K, V, E>>,
}

/// What joining a key's flight made of the caller.
#[derive(Debug)]
pub(crate) enum Joined<K: Hash + Eq, V: Clone, E> {
    /// No flight was running: the caller leads a new one.
    Leader(Leader<K, V, E>),
    /// A flight was running: the caller waits for it.
    Waiter(Arc<Flight<V, E>>),
}

impl<K, V, E> Flights<K, V, E>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    pub(crate) fn new() -> Self {
        Flights {
            map: Arc::new(FlightMap {
                flights: Mutex::new(HashMap::default()),
                issued: AtomicU64::new(0),
            }),
        }
    }

    /// Flights created so far; every flight created after this call has a greater id.
    pub(crate) fn issued(&self) -> u64 {
        self.map.issued.load(Ordering::SeqCst)
    }

    /// Joins `key`'s flight, or starts one.
    pub(crate) fn join(&self, key: &K) -> Joined<K, V, E> {
        let mut flights = self.map.flights.lock();
        if let Some(f) = flights.get(key) {
            return Joined::Waiter(f.clone());
        }
        Joined::Leader(self.start(&mut flights, key))
    }

    /// Starts a flight for `key` unless one is running.
    pub(crate) fn lead(&self, key: &K) -> Option<Leader<K, V, E>> {
        let mut flights = self.map.flights.lock();
        if flights.contains_key(key) {
            return None;
        }
        Some(self.start(&mut flights, key))
    }

    fn start(&self, flights: &mut HashMap<K, Arc<Flight<V, E>>>, key: &K) -> Leader<K, V, E> {
        let flight = Arc::new(Flight {
            id: self.map.issued.fetch_add(1, Ordering::SeqCst) + 1,
            outcome: Mutex::new(None),
            done: Condvar::new(),
        });
        flights.insert(key.clone(), flight.clone());
        Leader {
            map: self.map.clone(),
            key: key.clone(),
            flight,
            detached: false,
            published: false,
        }
    }

    /// Flights running.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.flights.lock().len()
    }
}

/// The caller responsible for a flight; see the module docs for what dropping one does.
#[derive(Debug)]
pub(crate) struct Leader<K: Hash + Eq, V: Clone, E> {
    map: Arc<FlightMap<K, V, E>>,
    key: K,
    flight: Arc<Flight<V, E>>,
    detached: bool,
    published: bool,
}

impl<K: Hash + Eq, V: Clone, E> Leader<K, V, E> {
    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    /// Takes the flight out of the map, so later missers no longer join it. Done before the
    /// loaded value is stored: a caller that joined earlier started before the store, so if
    /// the store is accepted the value was current during that caller's call.
    pub(crate) fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        let mut flights = self.map.flights.lock();
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.key);
        }
    }

    /// Ends the flight, waking its waiters with `outcome`.
    pub(crate) fn complete(mut self, outcome: Outcome<V, E>) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome<V, E>) {
        self.detach();
        self.published = true;
        self.flight.publish(outcome);
    }
}

impl<K: Hash + Eq, V: Clone, E> Drop for Leader<K, V, E> {
    fn drop(&mut self) {
        if !self.published {
            let outcome = if std::thread::panicking() {
                Outcome::Panicked
            } else {
                Outcome::Abandoned
            };
            self.finish(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    type F = Flights<u32, u32, std::io::Error>;

    #[test]
    fn waiters_get_the_leaders_outcome_and_the_flight_ends() {
        let flights = F::new();
        let Joined::Leader(leader) = flights.join(&1) else {
            panic!("first caller leads")
        };
        let Joined::Waiter(w) = flights.join(&1) else {
            panic!("second caller waits")
        };
        assert!(flights.lead(&1).is_none());
        assert_eq!(w.id(), 1);
        leader.complete(Outcome::Loaded {
            value: Some(7),
            current: true,
        });
        assert!(matches!(
            w.wait(),
            Outcome::Loaded {
                value: Some(7),
                current: true
            }
        ));
        assert_eq!(flights.len(), 0);
        assert!(flights.issued() == 1);
    }

    #[test]
    fn a_panicking_leader_wakes_its_waiters_and_a_dropped_one_abandons() {
        let flights = Arc::new(F::new());
        let barrier = Arc::new(Barrier::new(2));
        let (f, b) = (flights.clone(), barrier.clone());
        let t = std::thread::spawn(move || {
            let Joined::Leader(_leader) = f.join(&1) else {
                unreachable!()
            };
            b.wait();
            b.wait();
            panic!("source exploded");
        });
        barrier.wait();
        let Joined::Waiter(w) = flights.join(&1) else {
            panic!("leader is running")
        };
        barrier.wait();
        assert!(matches!(w.wait(), Outcome::Panicked));
        assert!(t.join().is_err());

        let leader = flights.lead(&2).unwrap();
        let Joined::Waiter(w) = flights.join(&2) else {
            unreachable!()
        };
        drop(leader);
        assert!(matches!(w.wait(), Outcome::Abandoned));
        assert_eq!(flights.len(), 0);
    }
}

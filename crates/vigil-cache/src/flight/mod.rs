//! Loads in flight: one loader per key, whichever loading method calls it,
//! and the ordering between a load and the writes made while it runs.
//!
//! Every `*get_with*` call that misses looks up its key here (one of a few
//! locked shards). If a load of the key is in flight, the call waits for
//! it; otherwise its [`Flight`] becomes the key's, and its caller the
//! loader. A flight records where its load began ([`Since`]) and goes
//! through these phases:
//!
//! - `Loading`: the loader runs. A write to the key (`insert*`,
//!   `invalidate`) made now supersedes the flight: it leaves the map (later
//!   calls start a new load), its waiters start over, and its value will
//!   not be stored.
//! - `Committing`: the loader registers its entry (checking it against
//!   `invalidate_all` and tag invalidations begun since `Since`) and stores
//!   it in moka. A write to the key made now waits for the commit to end,
//!   so it lands after the loaded entry, never under it.
//! - an outcome: the entry stored (waiters return its value if it is still
//!   alive, and load again otherwise), the loader's error
//!   (waiters whose loaders have the same error type return it), or "start
//!   over" (superseded, stale, abandoned: waiters load again).
//!
//! Writers find flights through a count of flights in the map: a write made
//! while no load is in flight costs one atomic load.
//!
//! Waiting is blocking (a condition variable) for the sync cache and a
//! future for the async one. A wait limit ([`CacheBuilder::load_timeout`])
//! is measured on the cache's clock, re-read at least every [`SLICE`] of
//! real time (so that a mock clock, which advances without notice, is
//! noticed); the async flavour's timed waits are woken by one shared timer
//! thread, started by the first of them.
//!
//! [`CacheBuilder::load_timeout`]: crate::CacheBuilder::load_timeout

use std::any::Any;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
#[cfg(feature = "future")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use crate::padded::CachePadded;
use crate::shared::Since;

#[cfg(feature = "future")]
mod wait_async;

/// A loader's error, shared with the waiters whose loaders have its type.
pub(crate) type ErrorObject = Arc<dyn Any + Send + Sync>;

/// The longest a timed wait goes without re-reading the cache's clock.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

const SHARDS: usize = 16;

/// Every critical section here leaves plain data consistent: a poisoned
/// lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Phase<V> {
    Loading,
    Committing,
    Done(Outcome<V>),
}

/// How a flight ended, as its waiters see it.
pub(crate) enum Outcome<V> {
    /// The loaded entry, stored in the cache (a waiter checks that it is
    /// still alive before returning it).
    Stored(V),
    /// The loader's error.
    Failed(ErrorObject),
    /// Nothing stored: superseded by a write, stale, abandoned or taken
    /// over. Waiters load again.
    Retry,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Stored(value) => Self::Stored(value.clone()),
            Self::Failed(error) => Self::Failed(Arc::clone(error)),
            Self::Retry => Self::Retry,
        }
    }
}

/// What a waiter got.
pub(crate) enum Waited<V> {
    Done(Outcome<V>),
    /// The wait limit passed while the loader was still loading.
    TimedOut,
}

struct State<V> {
    phase: Phase<V>,
    /// Async waiters, by waiter id (a waiter polled again replaces its
    /// waker).
    wakers: Vec<(u64, Waker)>,
}

/// One load of one key.
pub(crate) struct Flight<V> {
    since: Since,
    state: Mutex<State<V>>,
    changed: Condvar,
}

impl<V: Clone> Flight<V> {
    fn new(since: Since) -> Self {
        Self {
            since,
            state: Mutex::new(State {
                phase: Phase::Loading,
                wakers: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// Where the load began.
    pub(crate) fn since(&self) -> Since {
        self.since
    }

    /// Loading -> Committing; false if the flight was superseded (or taken
    /// over) meanwhile, so its value must not be stored.
    pub(crate) fn begin_commit(&self) -> bool {
        let mut state = lock(&self.state);
        if matches!(state.phase, Phase::Loading) {
            state.phase = Phase::Committing;
            return true;
        }
        false
    }

    /// Sets the outcome (unless it has one) and wakes every waiter.
    fn end(&self, outcome: Outcome<V>) {
        let wakers = {
            let mut state = lock(&self.state);
            if matches!(state.phase, Phase::Done(_)) {
                return;
            }
            state.phase = Phase::Done(outcome);
            std::mem::take(&mut state.wakers)
        };
        self.changed.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Ends a flight still loading with `Retry`; true if it did.
    fn supersede(&self) -> bool {
        let wakers = {
            let mut state = lock(&self.state);
            if !matches!(state.phase, Phase::Loading) {
                return false;
            }
            state.phase = Phase::Done(Outcome::Retry);
            std::mem::take(&mut state.wakers)
        };
        self.changed.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
        true
    }

    fn outcome(state: &State<V>) -> Option<Outcome<V>> {
        match &state.phase {
            Phase::Done(outcome) => Some(outcome.clone()),
            _ => None,
        }
    }

    /// Blocks until the flight has an outcome, or until `deadline` on
    /// `clock` has passed while it is still loading (a commit is always
    /// waited for: it is short and bounded).
    #[cfg(feature = "sync")]
    pub(crate) fn wait(&self, deadline: Option<(&quanta::Clock, quanta::Instant)>) -> Waited<V> {
        let mut state = lock(&self.state);
        loop {
            if let Some(outcome) = Self::outcome(&state) {
                return Waited::Done(outcome);
            }
            match deadline {
                None => {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some((clock, at)) => {
                    let loading = matches!(state.phase, Phase::Loading);
                    let Some(slice) = nap(loading, clock.now(), at) else {
                        return Waited::TimedOut;
                    };
                    state = self
                        .changed
                        .wait_timeout(state, slice)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}

/// How long a timed waiter sleeps before it reads the cache's clock again
/// (at most [`SLICE`]); `None` once its limit `at` has passed while the
/// flight is still loading.
fn nap(loading: bool, now: quanta::Instant, at: quanta::Instant) -> Option<Duration> {
    if !loading {
        return Some(SLICE);
    }
    if now >= at {
        return None;
    }
    let left = at.saturating_duration_since(now);
    Some(left.clamp(Duration::from_micros(100), SLICE))
}

/// What a missing caller is to do.
pub(crate) enum Role<V> {
    /// Run the loader: the key's flight is this one.
    Lead(Arc<Flight<V>>),
    /// Wait for this flight.
    Wait(Arc<Flight<V>>),
}

/// One shard's flights.
type FlightMap<K, V> = HashMap<K, Arc<Flight<V>>>;
type Shard<K, V> = CachePadded<Mutex<FlightMap<K, V>>>;

/// The flights of one cache, by key.
pub(crate) struct Flights<K, V> {
    /// Flights in the maps: writers look no further when it is zero.
    active: CachePadded<AtomicUsize>,
    hasher: RandomState,
    shards: Box<[Shard<K, V>]>,
    #[cfg(feature = "future")]
    next_waiter: AtomicU64,
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            active: CachePadded(AtomicUsize::new(0)),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| CachePadded(Mutex::new(HashMap::new())))
                .collect(),
            #[cfg(feature = "future")]
            next_waiter: AtomicU64::new(0),
        }
    }

    /// Whether any load is in flight.
    pub(crate) fn loading(&self) -> bool {
        self.active.load(Ordering::SeqCst) > 0
    }

    /// Counts as a load in flight until dropped (so that a tag
    /// invalidation records even a tag no entry holds yet): for a write
    /// whose value is checked against invalidations like a load's. Take
    /// its `Since` after this.
    #[cfg(all(feature = "future", feature = "redis"))]
    pub(crate) fn pending(&self) -> Pending<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        Pending(&self.active)
    }
}

/// See [`Flights::pending`].
#[cfg(all(feature = "future", feature = "redis"))]
pub(crate) struct Pending<'a>(&'a CachePadded<AtomicUsize>);

#[cfg(all(feature = "future", feature = "redis"))]
impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    fn shard<Q>(&self, key: &Q) -> &Mutex<FlightMap<K, V>>
    where
        Q: Hash + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    /// A fresh id for an async waiter's waker slot.
    #[cfg(feature = "future")]
    pub(crate) fn waiter_id(&self) -> u64 {
        self.next_waiter.fetch_add(1, Ordering::Relaxed)
    }

    /// Joins the key's flight, or starts one (taking `since` under the
    /// shard's lock, after the flight counts as active: a write that does
    /// not see it began before the load).
    pub(crate) fn join(&self, key: &K, since: impl FnOnce() -> Since) -> Role<V> {
        let mut map = lock(self.shard(key));
        if let Some(flight) = map.get(key) {
            return Role::Wait(Arc::clone(flight));
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let flight = Arc::new(Flight::new(since()));
        map.insert(key.clone(), Arc::clone(&flight));
        Role::Lead(flight)
    }

    /// Removes `flight` from the map if it is still the key's.
    fn remove(&self, map: &mut FlightMap<K, V>, key: &K, flight: &Arc<Flight<V>>) {
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(key);
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Ends the loader's flight with `outcome` (a no-op on the outcome if
    /// the flight was superseded) and lets later calls start a new one.
    pub(crate) fn finish(&self, key: &K, flight: &Arc<Flight<V>>, outcome: Outcome<V>) {
        self.remove(&mut lock(self.shard(key)), key, flight);
        flight.end(outcome);
    }

    /// A waiter's wait limit passed while `flight` was loading: supersedes
    /// it (if it is still the key's and still loading), so that the caller
    /// (and the flight's other waiters) start over with a new load.
    pub(crate) fn take_over(&self, key: &K, flight: &Arc<Flight<V>>) {
        let mut map = lock(self.shard(key));
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) && flight.supersede() {
            self.remove(&mut map, key, flight);
        }
    }

    /// Called by a write to `key` before it reaches moka: supersedes a
    /// flight still loading; returns a flight that is committing, which
    /// the write must wait for (and then call this again).
    pub(crate) fn before_write<Q>(&self, key: &Q) -> Option<Arc<Flight<V>>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.active.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut map = lock(self.shard(key));
        let flight = Arc::clone(map.get(key)?);
        if flight.supersede() {
            map.remove(key);
            self.active.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(flight)
    }
}

/// The loader's hold on its flight. Dropped without [`finish`](Self::finish)
/// (the loader panicked, or its future was dropped), it ends the flight
/// with `Retry`, so that its waiters load again.
pub(crate) struct Lead<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    key: &'a K,
    flight: Arc<Flight<V>>,
    finished: bool,
}

impl<'a, K: Hash + Eq + Clone, V: Clone> Lead<'a, K, V> {
    pub(crate) fn new(flights: &'a Flights<K, V>, key: &'a K, flight: Arc<Flight<V>>) -> Self {
        Self {
            flights,
            key,
            flight,
            finished: false,
        }
    }

    pub(crate) fn flight(&self) -> &Flight<V> {
        &self.flight
    }

    pub(crate) fn finish(mut self, outcome: Outcome<V>) {
        self.finished = true;
        self.flights.finish(self.key, &self.flight, outcome);
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Lead<'_, K, V> {
    fn drop(&mut self) {
        if !self.finished {
            self.flights.finish(self.key, &self.flight, Outcome::Retry);
        }
    }
}

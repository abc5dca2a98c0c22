//! What the cache stores in moka for each entry: the user's value plus what
//! is needed to decide, on each read, whether the entry is still alive.

use std::cell::Cell;
#[cfg(feature = "future")]
use std::future::Future;
#[cfg(feature = "future")]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;

use crate::tag::Stamps;

/// The longest time to live handed to moka (whose builder rejects more than
/// 1000 years); longer ones are clamped. The logical expiry is unaffected.
const MAX_PHYSICAL_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One entry as moka holds it. moka clones it on every read, so everything
/// the liveness check needs is inline and plain data: a read touches no
/// other allocation and writes no reference count (unless the entry has
/// more than two tags).
pub(crate) struct Stored<V> {
    pub(crate) value: V,
    /// Unique per insert: tells this entry from a later one under the same
    /// key, so that removals aimed at it never hit its successor.
    pub(crate) id: u64,
    /// The cache's `invalidate_all` epoch at insert.
    pub(crate) epoch: u64,
    /// Logical expiry by the cache's `quanta::Clock`; `None` = never.
    pub(crate) expires_at: Option<quanta::Instant>,
    pub(crate) stamps: Stamps,
}

impl<V: Clone> Clone for Stored<V> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            id: self.id,
            epoch: self.epoch,
            expires_at: self.expires_at,
            stamps: self.stamps.clone(),
        }
    }
}

/// Whether a stored entry may be returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    Expired,
    /// Dropped by `invalidate_all` or `invalidate_tag(s)`.
    Invalidated,
}

/// Physical expiry in moka, on real time: each entry lives for what is left
/// of its time to live by the cache's clock when moka stores it (an update
/// restarts it with the new entry's).
///
/// moka calls it on the thread that stores an entry, right after putting it
/// in its map: it tells a [`Landing`] watch that the entry it waits for was
/// stored.
pub(crate) struct EntryExpiry {
    pub(crate) clock: quanta::Clock,
    /// The cache's identity (the address of its `Shared`), for the watch.
    pub(crate) cache: usize,
}

/// The entry the future being polled on this thread waits for moka to
/// store, and whether moka stored it during this poll.
#[derive(Clone, Copy)]
struct Watch {
    cache: usize,
    id: Option<u64>,
    landed: bool,
}

const UNWATCHED: Watch = Watch {
    cache: 0,
    id: None,
    landed: false,
};

thread_local! {
    static WATCH: Cell<Watch> = const { Cell::new(UNWATCHED) };
}

/// Whether moka stored an entry that a future registered and handed it:
/// the future is polled with this thread's watch on the entry (nested
/// watches are saved and restored).
///
/// Atomics only so that the futures holding it stay `Send`: it is only
/// touched by the task polling them.
#[cfg(feature = "future")]
pub(crate) struct Landing {
    cache: usize,
    /// The watched entry's id.
    id: AtomicU64,
    landed: AtomicBool,
}

#[cfg(feature = "future")]
const NO_ID: u64 = u64::MAX;

#[cfg(feature = "future")]
impl Landing {
    pub(crate) fn new(cache: usize, id: u64) -> Self {
        Self {
            cache,
            id: AtomicU64::new(id),
            landed: AtomicBool::new(false),
        }
    }

    pub(crate) fn landed(&self) -> bool {
        self.landed.load(Ordering::Relaxed)
    }

    /// Polls `future` to completion with the watch set on every poll.
    pub(crate) async fn watch<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let id = self.id.load(Ordering::Relaxed);
            let watch = Watch {
                cache: self.cache,
                id: (id != NO_ID).then_some(id),
                landed: false,
            };
            let saved = WATCH.replace(watch);
            let poll = future.as_mut().poll(cx);
            let watch = WATCH.replace(saved);
            self.id.store(watch.id.unwrap_or(NO_ID), Ordering::Relaxed);
            if watch.landed {
                self.landed.store(true, Ordering::Relaxed);
            }
            poll
        })
        .await
    }
}

impl EntryExpiry {
    fn mark_landed<V>(&self, stored: &Stored<V>) {
        let _ = WATCH.try_with(|watch| {
            let mut current = watch.get();
            if current.cache == self.cache && current.id == Some(stored.id) {
                current.landed = true;
                watch.set(current);
            }
        });
    }

    fn remaining<V>(&self, stored: &Stored<V>) -> Option<Duration> {
        stored.expires_at.map(|at| {
            at.saturating_duration_since(self.clock.now())
                .min(MAX_PHYSICAL_TTL)
        })
    }
}

impl<K, V> Expiry<K, Stored<V>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Stored<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.mark_landed(value);
        self.remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Stored<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.mark_landed(value);
        self.remaining(value)
    }
}

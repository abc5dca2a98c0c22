//! The flavour-independent half of a cache: configuration, the tag index,
//! counters, the liveness check every read runs, and the eviction listener
//! moka calls. `sync::TaggedCache` and `future::TaggedCache` each pair one
//! `Shared` with their own moka cache.
//!
//! The moka listener holds an `Arc<Shared>`, never the moka cache itself, so
//! there is no reference cycle.
//!
//! Tag invalidations are logical and immediate (a version bump), and count
//! the live entries they hide from the tag index alone; the physical
//! removals they imply wait in a queue that later writes drain in bounded
//! batches and `run_pending_tasks` drains entirely.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::builder::{CacheBuilder, Listener};
use crate::entry::{Freshness, Stored};
use crate::padded::CachePadded;
use crate::stats::{Counters, Hot};
use crate::tag::{Life, TagIndex};
use crate::{CacheStats, EntryOptions, RemovalCause};

pub(crate) struct Shared<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) capacity: Option<u64>,
    default_ttl: Option<Duration>,
    pub(crate) clock: quanta::Clock,
    /// Bumped by `invalidate_all`; entries stamped with an older epoch are
    /// dead. Read by every `get`, written almost never.
    epoch: AtomicU64,
    /// Written by every insert: kept off the lines `get` reads.
    next_id: CachePadded<AtomicU64>,
    pub(crate) tags: TagIndex<K>,
    pub(crate) counters: Counters,
    listener: Option<Listener<K, V>>,
    /// Entries hidden by tag invalidations, waiting to be removed from moka.
    pending: CachePadded<Pending<K>>,
}

/// The removal queue: (key, entry id) pairs. Removing one only if moka still
/// holds that very entry never touches a newer entry under the same key.
struct Pending<K> {
    queue: Mutex<Vec<(K, u64)>>,
    /// `queue.len()`, read without the lock by every write.
    len: AtomicUsize,
}

/// How many queued removals one write performs (a few milliseconds at
/// most): the queue drains at this rate per write, and entirely in
/// `run_pending_tasks`.
pub(crate) const REMOVALS_PER_WRITE: usize = 256;

impl<K, V> Shared<K, V> {
    pub(crate) fn new<C>(builder: &CacheBuilder<K, V, C>) -> Self {
        Self {
            name: builder.name.clone(),
            capacity: builder.max_capacity,
            default_ttl: builder.default_ttl,
            clock: builder.clock.clone(),
            epoch: AtomicU64::new(0),
            next_id: CachePadded(AtomicU64::new(0)),
            tags: TagIndex::new(),
            counters: Counters::new(),
            listener: builder.eviction_listener.clone(),
            pending: CachePadded(Pending {
                queue: Mutex::new(Vec::new()),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// Wraps a new value for moka and registers it with its tags (before
    /// moka sees it, so a concurrent tag invalidation either finds its
    /// membership or the entry carries the bumped version).
    pub(crate) fn make_stored(&self, key: &K, value: V, options: &EntryOptions) -> Stored<V>
    where
        K: Clone,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let expires_at = options
            .ttl_value()
            .or(self.default_ttl)
            .and_then(|ttl| self.clock.now().checked_add(ttl));
        let tags = options.tag_values();
        let stamps = if tags.is_empty() {
            Default::default()
        } else {
            self.tags.stamp(tags, id, key, Life { epoch, expires_at })
        };
        Stored {
            value,
            id,
            epoch,
            expires_at,
            stamps,
        }
    }

    /// Hot path: one atomic load for the epoch, two per tag, and a clock
    /// read only for entries with a TTL. No lock, no hashing, no write.
    #[inline]
    pub(crate) fn freshness(&self, stored: &Stored<V>) -> Freshness {
        if stored.epoch != self.epoch.load(Ordering::Acquire) {
            return Freshness::Invalidated;
        }
        if !stored
            .stamps
            .as_slice()
            .iter()
            .all(|stamp| self.tags.is_current(stamp))
        {
            return Freshness::Invalidated;
        }
        match stored.expires_at {
            Some(at) if self.clock.now() >= at => Freshness::Expired,
            _ => Freshness::Fresh,
        }
    }

    #[inline]
    pub(crate) fn is_fresh(&self, stored: &Stored<V>) -> bool {
        self.freshness(stored) == Freshness::Fresh
    }

    fn unexpired(&self, stored: &Stored<V>) -> bool {
        stored.expires_at.is_none_or(|at| self.clock.now() < at)
    }

    /// Invalidates every entry carrying any of `tags` and returns how many
    /// of them were live. O(entries with those tags), without touching
    /// moka: bumps the tags' versions (from then on no read returns an
    /// older entry with them), counts the members that were live (same
    /// `invalidate_all` epoch, unexpired, not taken by an earlier tag
    /// invalidation; replaced, removed and evicted entries have already left
    /// the index) and queues them all for physical removal.
    pub(crate) fn invalidate_tags<'t>(&self, tags: impl IntoIterator<Item = &'t str>) -> u64 {
        let Some(mut invalidation) = self.tags.invalidate(tags) else {
            return 0;
        };
        let epoch = self.epoch.load(Ordering::Acquire);
        let now = self.clock.now();
        let mut live = 0;
        let mut doomed = Vec::with_capacity(invalidation.members.len());
        for (id, member) in invalidation.members.drain() {
            if !member.take() {
                continue;
            }
            if member.epoch == epoch && member.expires_at.is_none_or(|at| now < at) {
                live += 1;
            }
            doomed.push((member.key, id));
        }
        self.tags.release(invalidation);
        self.queue_removals(doomed);
        Counters::add(&self.counters.rare().tag_invalidations, live);
        live
    }

    fn queue_removals(&self, mut doomed: Vec<(K, u64)>) {
        if doomed.is_empty() {
            return;
        }
        let mut queue = self.lock_pending();
        if queue.is_empty() {
            std::mem::swap(&mut *queue, &mut doomed);
        } else {
            queue.append(&mut doomed);
        }
        self.pending.len.store(queue.len(), Ordering::Release);
    }

    /// Takes up to `max` queued removals (the caller removes each key from
    /// moka if it still holds that entry id). Without a lock when the queue
    /// is empty.
    pub(crate) fn take_removals(&self, max: usize) -> Vec<(K, u64)> {
        if self.pending.len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut queue = self.lock_pending();
        let batch = match queue.len().checked_sub(max) {
            Some(at) if at > 0 => queue.split_off(at),
            _ => std::mem::take(&mut *queue),
        };
        self.pending.len.store(queue.len(), Ordering::Release);
        batch
    }

    /// Puts back removals taken but not performed (a cancelled drain).
    pub(crate) fn requeue_removals(&self, removals: Vec<(K, u64)>) {
        self.queue_removals(removals);
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<(K, u64)>> {
        // Critical sections only move plain data: a poisoned queue is
        // consistent.
        self.pending
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts an `invalidate_all`: from now on every entry stored before is
    /// dead. Returns the epoch those entries carry.
    pub(crate) fn bump_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel)
    }

    /// Whether `stored` was alive just before the epoch `before` ended.
    pub(crate) fn was_live_in_epoch(&self, stored: &Stored<V>, before: u64) -> bool {
        stored.epoch == before
            && stored
                .stamps
                .as_slice()
                .iter()
                .all(|stamp| self.tags.is_current(stamp))
            && self.unexpired(stored)
    }

    /// moka's eviction listener: drops the entry's tag memberships, counts
    /// evictions by cause, and calls the user's listener.
    pub(crate) fn on_removal(&self, key: Arc<K>, stored: Stored<V>, cause: RemovalCause) {
        if !stored.stamps.is_empty() {
            self.tags.forget(&stored.stamps, stored.id);
        }
        let cause = match self.freshness(&stored) {
            Freshness::Fresh => cause,
            Freshness::Expired => RemovalCause::Expired,
            Freshness::Invalidated => RemovalCause::Explicit,
        };
        let rare = self.counters.rare();
        let counter = match cause {
            RemovalCause::Size => Some(&rare.evicted_size),
            RemovalCause::Expired => Some(&rare.evicted_expired),
            RemovalCause::Replaced => Some(&rare.evicted_replaced),
            // Counted where the invalidation happens, live entries only.
            RemovalCause::Explicit => None,
        };
        if let Some(counter) = counter {
            Counters::add(counter, 1);
        }
        if let Some(listener) = &self.listener {
            // A panic escaping into moka would disable this listener for
            // good, and with it the tag bookkeeping above.
            let _ = catch_unwind(AssertUnwindSafe(|| listener(key, stored.value, cause)));
        }
    }

    #[inline]
    pub(crate) fn bump(&self, which: Hot) {
        self.counters.bump(which);
    }

    pub(crate) fn stats(&self, entry_count: u64, weighted_size: u64) -> CacheStats {
        self.counters.snapshot(
            self.name.as_deref(),
            entry_count,
            weighted_size,
            self.capacity,
        )
    }
}

/// The error type that stands for "the loader returned `None`" when
/// `optionally_get_with` runs through moka's fallible loader.
#[derive(Debug)]
pub(crate) struct NoValue;

/// How many times a loader call retries after finding a dead entry before
/// it runs its loader without coalescing (only reachable when other threads
/// keep inserting entries that are dead on arrival).
pub(crate) const LOAD_ATTEMPTS: usize = 8;

//! The flavour-independent half of a cache: configuration, the tag index,
//! the exact live counts, counters, the liveness check every read runs, and
//! the eviction listener moka calls. `sync::TaggedCache` and
//! `future::TaggedCache` each pair one `Shared` with their own moka cache.
//!
//! The moka listener holds an `Arc<Shared>`, never the moka cache itself, so
//! there is no reference cycle.
//!
//! Tag invalidations are logical and immediate (a version bump), and take
//! the count of the live entries they hide from the tag's generation; the
//! physical removals they imply wait in a queue that later writes drain in
//! bounded batches and `run_pending_tasks` drains entirely.
//!
//! # Live entries
//! An entry is live from the moment an insert (or a loader) registers it,
//! just before moka stores it, until the first of: it is replaced or
//! removed (moka reports both at once); moka evicts it for size, or for
//! `time_to_idle` (when its maintenance applies the eviction); its time to
//! live runs out on the cache's clock (exactly: an entry expiring at `t` is
//! not live at `t`); a tag invalidation or `invalidate_all` covers it. Each
//! of those events uncounts the entry once, whichever comes first: tag
//! invalidations in bulk (a generation), expiries through the expiry
//! records, removals through the listener; `entry_count` and every
//! invalidation first take the expiry records that are due.

use std::collections::VecDeque;
use std::collections::hash_map;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::builder::{CacheBuilder, Listener};
use crate::entry::{Freshness, Stored};
use crate::flight::Flights;
use crate::live::{Counted, Expiries, Untagged};
use crate::padded::CachePadded;
use crate::stats::{Counters, Hot, Rare};
use crate::tag::{Invalidation, Stamps, TagIndex};
use crate::{CacheStats, EntryOptions, RemovalCause};

pub(crate) struct Shared<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) capacity: Option<u64>,
    /// Whether a weigher was given: capacity and size are weights.
    pub(crate) weighed: bool,
    default_ttl: Option<Duration>,
    pub(crate) clock: quanta::Clock,
    /// Bumped by `invalidate_all`; entries stamped with an older epoch are
    /// dead. Read by every `get`, written almost never.
    epoch: AtomicU64,
    /// Written by every insert: kept off the lines `get` reads.
    next_id: CachePadded<AtomicU64>,
    pub(crate) tags: TagIndex<K>,
    /// Live untagged entries.
    untagged: Untagged,
    /// Live tagged entries: those with one tag (also counted in their tag's
    /// generation) and those with several. Wrapping arithmetic: a removal
    /// may be applied just before the insert it follows on another thread.
    tagged: CachePadded<AtomicU64>,
    expiries: Expiries,
    pub(crate) counters: Counters,
    listener: Option<Listener<K, V>>,
    /// Entries hidden by tag invalidations, waiting to be removed from moka.
    pending: CachePadded<Pending<K>>,
    /// Loads in flight, by key.
    pub(crate) flights: Flights<K, Stored<V>>,
    /// How long a caller waits for another caller's load of the same key
    /// before it loads itself (`CacheBuilder::load_timeout`).
    pub(crate) load_timeout: Option<Duration>,
}

/// Removals queued by one invalidation, consumed a batch at a time: a
/// whole generation's map is queued as is, in O(1).
enum Removals<K> {
    Generation(hash_map::IntoIter<u64, K>),
    List(std::vec::IntoIter<(K, u64)>),
}

impl<K> Removals<K> {
    fn len(&self) -> usize {
        match self {
            Self::Generation(entries) => entries.len(),
            Self::List(entries) => entries.len(),
        }
    }

    fn next(&mut self) -> Option<(K, u64)> {
        match self {
            Self::Generation(entries) => entries.next().map(|(id, key)| (key, id)),
            Self::List(entries) => entries.next(),
        }
    }
}

/// The removal queue: (key, entry id) pairs. Removing one only if moka still
/// holds that very entry never touches a newer entry under the same key.
struct Pending<K> {
    queue: Mutex<VecDeque<Removals<K>>>,
    /// Removals queued, read without the lock by every write.
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
            weighed: builder.weigher.is_some(),
            default_ttl: builder.default_ttl,
            clock: builder.clock.clone(),
            epoch: AtomicU64::new(0),
            next_id: CachePadded(AtomicU64::new(0)),
            tags: TagIndex::new(),
            untagged: Untagged::new(),
            tagged: CachePadded(AtomicU64::new(0)),
            expiries: Expiries::new(builder.clock.now()),
            counters: Counters::new(),
            listener: builder.eviction_listener.clone(),
            pending: CachePadded(Pending {
                queue: Mutex::new(VecDeque::new()),
                len: AtomicUsize::new(0),
            }),
            flights: Flights::new(),
            load_timeout: builder.load_timeout,
        }
    }

    /// Wraps a new value for moka and registers it (counted as live unless
    /// its time to live is zero) with its tags, or its untagged cell, and
    /// its expiry record. Before moka sees it, so a concurrent tag
    /// invalidation either counts it or leaves it in the next generation,
    /// whose version it then carries.
    pub(crate) fn make_stored(&self, key: &K, value: V, options: &EntryOptions) -> Stored<V>
    where
        K: Clone,
    {
        self.register(key, value, options, None).0
    }

    /// Where a load begins: what [`make_loaded`](Self::make_loaded) checks
    /// its entry against.
    pub(crate) fn since(&self) -> Since {
        Since {
            epoch: self.epoch.load(Ordering::SeqCst),
            tags: self.tags.sequence(),
        }
    }

    /// [`make_stored`](Self::make_stored) for the value of a load that
    /// began at `since`: `None` (nothing registered, nothing counted) if
    /// `invalidate_all` or an invalidation of one of its tags began after
    /// the load did, so the value may predate it. Checked as the entry
    /// joins (under each tag's lock): an invalidation that comes later
    /// finds the entry registered, and hides and counts it as usual.
    pub(crate) fn make_loaded(
        &self,
        key: &K,
        value: V,
        options: &EntryOptions,
        since: Since,
    ) -> Option<Stored<V>>
    where
        K: Clone,
    {
        let (stored, stale) = self.register(key, value, options, Some(since));
        if !stale {
            return Some(stored);
        }
        // Registered, maybe already taken by an invalidation: undone as if
        // never inserted, unless something ended it (and counted that end),
        // in which case its insert is counted too.
        if !self.retire(&Registration::of(&stored)) {
            self.bump(Hot::Insert);
        }
        None
    }

    /// Registers a new entry; with `since`, also tells whether it is stale
    /// (see `make_loaded`).
    fn register(
        &self,
        key: &K,
        value: V,
        options: &EntryOptions,
        since: Option<Since>,
    ) -> (Stored<V>, bool)
    where
        K: Clone,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.capacity == Some(0) {
            // moka with `max_capacity(0)` drops every insert without
            // calling the listener: nothing to register, and it ends at
            // once, for size.
            self.counters.add(Rare::EvictedSize, 1);
            let stored = Stored {
                value,
                id,
                epoch: self.epoch.load(Ordering::Acquire),
                expires_at: None,
                stamps: Stamps::None,
            };
            return (stored, false);
        }
        let now = self.clock.now();
        let expires_at = options
            .ttl_value()
            .or(self.default_ttl)
            .and_then(|ttl| now.checked_add(ttl));
        let live = expires_at.is_none_or(|at| now < at);
        if !live {
            // Dead on arrival: its insert is counted, so is its end.
            self.counters.add(Rare::EvictedExpired, 1);
        }
        let tags = options.tag_values();
        let mut stale = false;
        let (stamps, epoch, counted) = if tags.is_empty() {
            let epoch = self.untagged.join(id, live);
            (Stamps::None, epoch, Counted::Untagged { epoch })
        } else {
            if live {
                // Before joining: whatever uncounts it must find it counted.
                self.tagged.fetch_add(1, Ordering::Relaxed);
            }
            let joined = self.tags.stamp(tags, id, key, live, since.map(|s| s.tags));
            stale = joined.stale;
            // Read after joining: an `invalidate_all` that bumped the epoch
            // before one of the joins also ended that tag's generation
            // (counting the entry there), and one that ended them all
            // before the joins bumped the epoch before this load.
            let epoch = self.epoch.load(Ordering::Acquire);
            (joined.stamps, epoch, joined.counted)
        };
        if live && let Some(at) = expires_at {
            self.expiries.add(at, id, counted);
        }
        // An `invalidate_all` since the load began: the entry joined a
        // later epoch than the load's (or the old one, which it ends).
        stale |= since.is_some_and(|since| since.epoch != epoch);
        let stored = Stored {
            value,
            id,
            epoch,
            expires_at,
            stamps,
        };
        (stored, stale)
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

    /// Uncounts `n` tagged entries; true (for chaining after the check
    /// that they were counted).
    fn uncount_tagged(&self, n: u64) -> bool {
        if n > 0 {
            self.tagged.fetch_sub(n, Ordering::Relaxed);
        }
        true
    }

    /// Uncounts every entry whose time to live has run out on the cache's
    /// clock (each once, through its expiry record). One atomic load per
    /// shard when none is due.
    pub(crate) fn expire_due(&self) {
        self.expiries.due(self.clock.now(), |id, counted| {
            let ended = match counted {
                Counted::Untagged { epoch } => self.untagged.leave(id, epoch),
                Counted::Single(stamp) => self.tags.expire_single(&stamp) && self.uncount_tagged(1),
                Counted::Multi(taken) => {
                    !taken.swap(true, Ordering::AcqRel) && self.uncount_tagged(1)
                }
            };
            if ended {
                self.counters.add(Rare::EvictedExpired, 1);
            }
        });
    }

    /// The live entries (see the module documentation), exact once
    /// concurrent writes have returned.
    pub(crate) fn entry_count(&self) -> u64 {
        self.expire_due();
        // Reinterpreted as signed: see `tagged`.
        let tagged = self.tagged.load(Ordering::Relaxed) as i64;
        self.untagged.live() + tagged.max(0) as u64
    }

    /// Invalidates every entry carrying any of `tags` and returns how many
    /// of them were live, without touching moka: bumps the tags' versions
    /// (from then on no read returns an older entry with them) and takes
    /// their generations whole, with their exact live counts, in O(1) per
    /// tag; entries that also carry other tags are walked (each counts
    /// once, whichever invalidation takes it first). The generations' keys
    /// are queued for physical removal as they are.
    pub(crate) fn invalidate_tags<'t>(&self, tags: impl IntoIterator<Item = &'t str>) -> u64 {
        self.expire_due();
        let loading = || self.flights.loading();
        let Some(invalidation) = self.tags.invalidate(tags, loading) else {
            return 0;
        };
        let live = self.end_generations(invalidation, true);
        self.counters.add(Rare::TagInvalidations, live);
        live
    }

    /// Uncounts the live entries of ended generations and returns how many
    /// there were; queues their keys for physical removal if `queue`.
    fn end_generations(&self, invalidation: Invalidation<K>, queue: bool) -> u64 {
        // The ended tags' slots stay registered, with empty generations,
        // until a sweep frees them (amortized over new tags, and in
        // `run_pending_tasks`): no write lock here.
        let Invalidation {
            bumped: _,
            live: singles_live,
            singles,
            multi,
        } = invalidation;
        self.uncount_tagged(singles_live);
        let mut several = Vec::new();
        for members in multi {
            for (id, member) in members {
                if member.take() {
                    several.push((member.key, id));
                }
            }
        }
        let several_live = several.len() as u64;
        self.uncount_tagged(several_live);
        if queue {
            let batches = singles
                .into_iter()
                .map(|s| Removals::Generation(s.into_iter()));
            let batches =
                batches.chain((!several.is_empty()).then(|| Removals::List(several.into_iter())));
            self.queue_removals(batches);
        }
        singles_live + several_live
    }

    fn queue_removals(&self, batches: impl IntoIterator<Item = Removals<K>>) {
        let mut queue = self.lock_pending();
        let mut added = 0;
        for batch in batches {
            added += batch.len();
            queue.push_back(batch);
        }
        if added > 0 {
            self.pending.len.fetch_add(added, Ordering::Release);
        }
    }

    /// Takes up to `max` queued removals (the caller removes each key from
    /// moka if it still holds that entry id). Without a lock when the queue
    /// is empty.
    pub(crate) fn take_removals(&self, max: usize) -> Vec<(K, u64)> {
        let waiting = self.pending.len.load(Ordering::Acquire);
        if waiting == 0 {
            return Vec::new();
        }
        let mut queue = self.lock_pending();
        let mut batch = Vec::with_capacity(max.min(waiting));
        while batch.len() < max {
            let Some(front) = queue.front_mut() else {
                break;
            };
            match front.next() {
                Some(removal) => batch.push(removal),
                None => {
                    queue.pop_front();
                }
            }
        }
        if queue.front().is_some_and(|front| front.len() == 0) {
            queue.pop_front();
        }
        self.pending.len.fetch_sub(batch.len(), Ordering::Release);
        batch
    }

    /// Puts back removals taken but not performed (a cancelled drain).
    #[cfg(feature = "future")]
    pub(crate) fn requeue_removals(&self, removals: Vec<(K, u64)>) {
        if !removals.is_empty() {
            self.queue_removals([Removals::List(removals.into_iter())]);
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, VecDeque<Removals<K>>> {
        // Critical sections only move plain data: a poisoned queue is
        // consistent.
        self.pending
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The logical half of `invalidate_all`: from now on every entry stored
    /// before is dead. Ends the epoch and every tag's generation (O(tags in
    /// use) plus the entries with several tags), counts the live entries
    /// that was into the statistics and returns it. The caller then has
    /// moka drop the entries physically.
    pub(crate) fn invalidate_all(&self) -> u64 {
        self.expire_due();
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let untagged = self.untagged.end_epoch(epoch);
        let tagged = self.end_generations(self.tags.invalidate_every(), false);
        self.tags.sweep();
        let live = untagged + tagged;
        self.counters.add(Rare::Invalidations, live);
        live
    }

    /// moka's eviction listener: uncounts the entry if it was still counted
    /// and then counts its end by cause, drops its tag memberships, and
    /// calls the user's listener.
    ///
    /// An end is counted once, where the entry stops counting as live: here
    /// (`size`, `replaced`, `expired` if its time to live had run out, or
    /// `invalidations` for a removal by key), by the expiry records
    /// (`expired`), by a tag invalidation (`tag_invalidations`) or by
    /// `invalidate_all` (`invalidations`). So, once concurrent calls have
    /// returned, `inserts` minus every end equals `entry_count`.
    pub(crate) fn on_removal(&self, key: Arc<K>, stored: Stored<V>, cause: RemovalCause) {
        let ended = self.retire(&Registration::of(&stored));
        let freshness = self.freshness(&stored);
        if ended {
            let counter = match (freshness, cause) {
                (Freshness::Expired, _) | (_, RemovalCause::Expired) => Rare::EvictedExpired,
                (_, RemovalCause::Size) => Rare::EvictedSize,
                (_, RemovalCause::Replaced) => Rare::EvictedReplaced,
                (_, RemovalCause::Explicit) => Rare::Invalidations,
            };
            self.counters.add(counter, 1);
        }
        if let Some(listener) = &self.listener {
            let cause = match freshness {
                Freshness::Fresh => cause,
                Freshness::Expired => RemovalCause::Expired,
                Freshness::Invalidated => RemovalCause::Explicit,
            };
            // A panic escaping into moka would disable this listener for
            // good, and with it the bookkeeping above.
            let _ = catch_unwind(AssertUnwindSafe(|| listener(key, stored.value, cause)));
        }
    }

    /// The entry left moka (or never reached it): it leaves the tag index
    /// and stops counting, unless something else (its expiry record, an
    /// invalidation) already ended it. True if this ended it.
    fn retire(&self, entry: &Registration) -> bool {
        // Whether this removal may end the entry's life, rather than its
        // expiry record having done so already (or its being dead on
        // arrival, with no record).
        let owns = entry
            .expires_at
            .is_none_or(|at| self.expiries.remove(at, entry.id));
        match &entry.stamps {
            Stamps::None => owns && self.untagged.leave(entry.id, entry.epoch),
            Stamps::One(stamp) => {
                self.tags.remove_single(stamp, entry.id, owns) && self.uncount_tagged(1)
            }
            Stamps::Two(_) | Stamps::Many(_) => {
                self.tags
                    .remove_multi(&entry.stamps, entry.id)
                    .is_some_and(|taken| owns && !taken.swap(true, Ordering::AcqRel))
                    && self.uncount_tagged(1)
            }
        }
    }

    /// An entry registered by `make_stored` whose store into moka was
    /// abandoned (the future was dropped) before moka stored it: it stops
    /// counting. Its insert is counted, and its end (as an invalidation)
    /// unless something else had ended it and counted that.
    #[cfg(feature = "future")]
    pub(crate) fn unregister(&self, entry: &Registration) {
        if self.retire(entry) {
            self.counters.add(Rare::Invalidations, 1);
        }
        self.bump(Hot::Insert);
    }

    #[inline]
    pub(crate) fn bump(&self, which: Hot) {
        self.counters.bump(which);
    }

    /// The statistics; `weighted_size` is moka's.
    pub(crate) fn stats(&self, weighted_size: u64) -> CacheStats {
        self.counters.snapshot(
            self.name.as_deref(),
            self.entry_count(),
            weighted_size,
            self.capacity,
        )
    }
}

/// The state a load began from: the `invalidate_all` epoch and the tag
/// invalidation sequence number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Since {
    epoch: u64,
    tags: u64,
}

/// What it takes to retire an entry registered by `make_stored`.
pub(crate) struct Registration {
    pub(crate) id: u64,
    epoch: u64,
    expires_at: Option<quanta::Instant>,
    stamps: Stamps,
}

impl Registration {
    pub(crate) fn of<V>(stored: &Stored<V>) -> Self {
        Self {
            id: stored.id,
            epoch: stored.epoch,
            expires_at: stored.expires_at,
            stamps: stored.stamps.clone(),
        }
    }
}

/// The error type that stands for "the loader returned `None`" when
/// `optionally_get_with` runs through moka's fallible loader.
#[derive(Debug)]
pub(crate) struct NoValue;

impl<K, V> Shared<K, V> {
    /// The instant a caller that starts waiting for another caller's load
    /// now stops waiting, if there is a wait limit.
    pub(crate) fn wait_deadline(&self) -> Option<(&quanta::Clock, quanta::Instant)> {
        let limit = self.load_timeout?;
        let now = self.clock.now();
        // A limit too far to represent is no limit.
        now.checked_add(limit).map(|at| (&self.clock, at))
    }
}

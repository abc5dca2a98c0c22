//! Statistics: the serde-friendly [`CacheStats`] snapshot, and the counters
//! behind it.
//!
//! Hits, misses and inserts happen on every call, so they live in a sharded
//! counter: one 128-byte-aligned slot per CPU (a thread picks its slot once),
//! so concurrent readers never write the same cache line. Everything else is
//! rare (invalidations, evictions) and uses plain atomics. Totals are summed
//! on read.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::padded::CachePadded;

/// A snapshot of a cache's statistics, from `TaggedCache::stats`.
///
/// Counters are totals since the cache was built. `entry_count` is the
/// exact number of live entries (see the crate documentation); each end of
/// an entry's life is counted once, where it stops being live, so that
/// once no call is running `inserts` minus `evictions`, `invalidations` and
/// `tag_invalidations` equals `entry_count`. `weighted_size` comes from
/// moka: it lags behind recent writes until moka's maintenance has run
/// (`run_pending_tasks`) and includes entries that are dead but not yet
/// removed.
///
/// ```
/// # #[cfg(feature = "sync")] {
/// use vigil_cache::sync::TaggedCache;
///
/// let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
/// cache.insert(1, 10);
/// assert_eq!(cache.get(&1), Some(10));
/// assert_eq!(cache.get(&2), None);
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
/// assert_eq!(stats.hit_ratio, 0.5);
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// The cache's name, if it was built with one.
    pub name: Option<String>,
    /// Reads answered with a value.
    pub hits: u64,
    /// Reads answered without a value (including reads of expired or
    /// invalidated entries, and loader calls that ran the loader).
    pub misses: u64,
    /// `hits / (hits + misses)`, 0.0 when there were no reads.
    pub hit_ratio: f64,
    /// Entries inserted (by `insert*`, loaders and warming).
    pub inserts: u64,
    /// Live entries removed by `invalidate` / `invalidate_all`.
    pub invalidations: u64,
    /// Live entries invalidated by `invalidate_tag(s)`.
    pub tag_invalidations: u64,
    /// Entries removed by the cache itself, by cause.
    pub evictions: Evictions,
    /// Live entries, exactly (see the type's documentation).
    pub entry_count: u64,
    /// Total weight held: the sum of the weigher's values, or the entry
    /// count without a weigher.
    pub weighted_size: u64,
    /// The configured `max_capacity` (entries, or weight with a weigher);
    /// `None` when unbounded.
    pub capacity: Option<u64>,
    /// `weighted_size / capacity`, 0.0 when unbounded.
    pub utilization: f64,
    /// Whether the cache has a second level in Redis
    /// (`CacheBuilder::redis`); the `l2_*`
    /// figures are 0 without one.
    #[serde(default)]
    pub l2_enabled: bool,
    /// Reads of the second level (after a local miss) that found a current
    /// entry: the loader did not run.
    #[serde(default)]
    pub l2_hits: u64,
    /// Reads of the second level that found no current entry (absent,
    /// older than an invalidation, or undecodable): the loader ran.
    #[serde(default)]
    pub l2_misses: u64,
    /// Failed Redis operations (connecting, timeouts, lost connections,
    /// server errors) and undecodable values: the sum of
    /// [`l2_error_kinds`](Self::l2_error_kinds).
    #[serde(default)]
    pub l2_errors: u64,
    /// [`l2_errors`](Self::l2_errors) by kind.
    #[serde(default)]
    pub l2_error_kinds: L2Errors,
}

/// Errors of a cache's second level by kind: the `kind` label of
/// `cache_l2_errors_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Errors {
    /// Connecting, subscribing or resynchronising failed (including a URL
    /// that does not parse).
    pub connect: u64,
    /// No answer within the command timeout.
    pub timeout: u64,
    /// The connection broke (counted once per loss, by the link that
    /// reconnects).
    pub io: u64,
    /// Redis answered with an error.
    pub server: u64,
    /// A value (or a key in an invalidation) read from Redis did not
    /// decode: another version's type, or another schema.
    pub decode: u64,
}

impl L2Errors {
    /// Every kind together.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.io + self.server + self.decode
    }

    /// `(kind label, count)` for each kind.
    pub fn by_kind(&self) -> [(&'static str, u64); 5] {
        [
            ("connect", self.connect),
            ("timeout", self.timeout),
            ("io", self.io),
            ("server", self.server),
            ("decode", self.decode),
        ]
    }
}

/// Entries removed by the cache itself, by cause (explicit invalidations are
/// counted in [`CacheStats::invalidations`] and
/// [`CacheStats::tag_invalidations`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evictions {
    /// Evicted to stay within the capacity.
    pub size: u64,
    /// Whose time to live ran out on the cache's clock (counted by the
    /// first statistics read, entry count or invalidation after it), or
    /// removed by moka's time to idle.
    pub expired: u64,
    /// Overwritten by an insert under the same key.
    pub replaced: u64,
}

/// The outcome of `warm` / `warm_with`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmReport {
    /// Entries inserted.
    pub loaded: u64,
    /// Keys whose loader returned an error (nothing was inserted for them).
    pub failed: u64,
}

/// Which sharded counter to bump.
#[derive(Clone, Copy)]
pub(crate) enum Hot {
    Hit = 0,
    Miss = 1,
    Insert = 2,
}

const HOT_COUNTERS: usize = 3;

/// One shard: the hot counters of one thread group, alone on its cache
/// lines.
type Slot = CachePadded<[AtomicU64; HOT_COUNTERS]>;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard index (reduced modulo each cache's shard count).
    static THREAD_SLOT: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// Counters of one cache.
pub(crate) struct Counters {
    slots: Box<[Slot]>,
    mask: usize,
    /// Written by invalidations and the eviction listener: kept off the
    /// lines `get` reads.
    rare: CachePadded<[AtomicU64; RARE_COUNTERS]>,
}

/// Which counter bumped off the read path to add to.
#[derive(Clone, Copy)]
pub(crate) enum Rare {
    Invalidations,
    TagInvalidations,
    EvictedSize,
    EvictedExpired,
    EvictedReplaced,
}

const RARE_COUNTERS: usize = 5;

impl Counters {
    pub(crate) fn new() -> Self {
        static SHARDS: OnceLock<usize> = OnceLock::new();
        // Twice the CPUs, so that worker threads plus a few others rarely
        // share a slot. `available_parallelism` reads cgroup files: once.
        let shards = *SHARDS.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
            (cpus * 2).next_power_of_two().clamp(4, 128)
        });
        Self {
            slots: (0..shards).map(|_| Slot::default()).collect(),
            mask: shards - 1,
            rare: CachePadded::default(),
        }
    }

    /// Hot path: a thread-local read and one uncontended atomic add.
    #[inline]
    pub(crate) fn bump(&self, which: Hot) {
        let slot = THREAD_SLOT.try_with(|s| *s).unwrap_or(0) & self.mask;
        self.slots[slot][which as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn total(&self, which: Hot) -> u64 {
        self.slots
            .iter()
            .map(|slot| slot[which as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Off the read path: one shared atomic add (none for 0).
    pub(crate) fn add(&self, which: Rare, n: u64) {
        if n > 0 {
            self.rare[which as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    fn rare_total(&self, which: Rare) -> u64 {
        self.rare[which as usize].load(Ordering::Relaxed)
    }

    /// Snapshot, given the figures only the moka cache knows.
    pub(crate) fn snapshot(
        &self,
        name: Option<&str>,
        entry_count: u64,
        weighted_size: u64,
        capacity: Option<u64>,
    ) -> CacheStats {
        let hits = self.total(Hot::Hit);
        let misses = self.total(Hot::Miss);
        let reads = hits + misses;
        CacheStats {
            name: name.map(str::to_owned),
            hits,
            misses,
            hit_ratio: if reads == 0 {
                0.0
            } else {
                hits as f64 / reads as f64
            },
            inserts: self.total(Hot::Insert),
            invalidations: self.rare_total(Rare::Invalidations),
            tag_invalidations: self.rare_total(Rare::TagInvalidations),
            evictions: Evictions {
                size: self.rare_total(Rare::EvictedSize),
                expired: self.rare_total(Rare::EvictedExpired),
                replaced: self.rare_total(Rare::EvictedReplaced),
            },
            entry_count,
            weighted_size,
            capacity,
            utilization: match capacity {
                Some(0) => 1.0,
                Some(capacity) => weighted_size as f64 / capacity as f64,
                None => 0.0,
            },
            l2_enabled: false,
            l2_hits: 0,
            l2_misses: 0,
            l2_errors: 0,
            l2_error_kinds: L2Errors::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_counts_sum_across_threads() {
        let counters = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.bump(Hot::Hit);
                    }
                    counters.bump(Hot::Miss);
                });
            }
        });
        assert_eq!(counters.total(Hot::Hit), 8000);
        assert_eq!(counters.total(Hot::Miss), 8);
        assert_eq!(counters.total(Hot::Insert), 0);
    }

    #[test]
    fn slots_are_padded_to_their_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 128);
        assert_eq!(std::mem::size_of::<Slot>(), 128);
    }

    #[test]
    fn snapshot_derives_ratios() {
        let counters = Counters::new();
        for hot in [Hot::Hit, Hot::Hit, Hot::Hit, Hot::Miss] {
            counters.bump(hot);
        }
        let stats = counters.snapshot(Some("c"), 5, 5, Some(10));
        assert_eq!(stats.hit_ratio, 0.75);
        assert_eq!(stats.utilization, 0.5);
        assert_eq!(stats.name.as_deref(), Some("c"));
        let empty = Counters::new().snapshot(None, 0, 0, None);
        assert_eq!((empty.hit_ratio, empty.utilization), (0.0, 0.0));
    }
}

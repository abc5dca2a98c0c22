//! Export to the `metrics` facade, off the hot path.
//!
//! Reads never touch the facade: they bump the cache's sharded counters.
//! [`publish_metrics`](crate::publish_metrics) (or a cache's own
//! `publish_metrics`) copies the totals into the current recorder with
//! `Counter::absolute` / `Gauge::set`, once per scrape or upkeep tick. Named
//! caches register here as `Weak` references, so a dropped cache simply
//! disappears from the registry.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use ::metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use crate::CacheStats;

/// Counter of reads, labelled `cache` and `result` = `hit` | `miss`: reads
/// of the local level. A cache with a Redis level also has the series
/// labelled `level="l2"`: reads of Redis after a local miss.
pub const REQUESTS_TOTAL: &str = "cache_requests_total";
/// Counter of a Redis level's errors, labelled `cache` and `kind` =
/// `connect` | `timeout` | `io` | `server` | `decode` (see
/// [`L2Errors`](crate::L2Errors)).
pub const L2_ERRORS_TOTAL: &str = "cache_l2_errors_total";
/// Counter of removals, labelled `cache` and `cause` = `size` | `expired` |
/// `replaced` | `explicit` (explicit = invalidations, including by tag).
pub const EVICTIONS_TOTAL: &str = "cache_evictions_total";
/// Gauge of the live entries of a cache (exact: invalidated and expired
/// entries stop counting at once), labelled `cache`.
pub const ENTRIES: &str = "cache_entries";
/// Gauge of the total weight held, labelled `cache`.
pub const WEIGHTED_SIZE: &str = "cache_weighted_size";

/// Something that can report a named cache's statistics.
pub(crate) trait Source: Send + Sync {
    fn stats(&self) -> CacheStats;
}

static LIVE: Mutex<Vec<Weak<dyn Source>>> = Mutex::new(Vec::new());

/// Adds a named cache to the global registry (and prunes dropped ones).
pub(crate) fn register(source: Weak<dyn Source>) {
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    live.retain(|cache| cache.strong_count() > 0);
    live.push(source);
}

/// Publishes the statistics of every live named cache to the current
/// `metrics` recorder.
///
/// Sets, per cache (label `cache` = its name): the counters
/// `cache_requests_total{result="hit"|"miss"}` and
/// `cache_evictions_total{cause="size"|"expired"|"replaced"|"explicit"}`
/// (through `Counter::absolute`, so a recorder keeps the running totals),
/// and the gauges `cache_entries` and `cache_weighted_size`. The vigil
/// facade calls this on every upkeep tick and before rendering `/metrics`.
/// Two live caches with the same name overwrite each other's series.
///
/// ```
/// # #[cfg(feature = "sync")] {
/// use vigil_cache::sync::TaggedCache;
///
/// let cache: TaggedCache<u32, u32> = TaggedCache::builder().name("users").build();
/// cache.insert(1, 1);
/// cache.get(&1);
/// vigil_cache::publish_metrics(); // no-op without an installed recorder
/// # }
/// ```
pub fn publish_metrics() {
    let live: Vec<Arc<dyn Source>> = {
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|cache| cache.strong_count() > 0);
        live.iter().filter_map(Weak::upgrade).collect()
    };
    describe();
    for cache in live {
        publish_stats(&cache.stats());
    }
}

fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Cache reads by result (hit or miss)."
    );
    describe_counter!(
        EVICTIONS_TOTAL,
        Unit::Count,
        "Entries removed from a cache by cause: size, expired, replaced, or explicit (invalidations, including by tag)."
    );
    describe_counter!(
        L2_ERRORS_TOTAL,
        Unit::Count,
        "Errors of a cache's Redis level by kind: connect, timeout, io, server, decode."
    );
    describe_gauge!(
        ENTRIES,
        Unit::Count,
        "Live entries of a cache (invalidated and expired ones excluded)."
    );
    describe_gauge!(
        WEIGHTED_SIZE,
        "Total weight of the entries held by a cache (entries without a weigher)."
    );
}

/// Publishes one cache's statistics (nothing for an unnamed cache).
pub(crate) fn publish(stats: &CacheStats) {
    describe();
    publish_stats(stats);
}

fn publish_stats(stats: &CacheStats) {
    let Some(name) = &stats.name else { return };
    let name = ::metrics::SharedString::from(name.clone());
    let requests = [("hit", stats.hits), ("miss", stats.misses)];
    for (result, total) in requests {
        counter!(REQUESTS_TOTAL, "cache" => name.clone(), "result" => result).absolute(total);
    }
    if stats.l2_enabled {
        let requests = [("hit", stats.l2_hits), ("miss", stats.l2_misses)];
        for (result, total) in requests {
            counter!(REQUESTS_TOTAL, "cache" => name.clone(), "result" => result, "level" => "l2")
                .absolute(total);
        }
        for (kind, total) in stats.l2_error_kinds.by_kind() {
            counter!(L2_ERRORS_TOTAL, "cache" => name.clone(), "kind" => kind).absolute(total);
        }
    }
    let evictions = [
        ("size", stats.evictions.size),
        ("expired", stats.evictions.expired),
        ("replaced", stats.evictions.replaced),
        ("explicit", stats.invalidations + stats.tag_invalidations),
    ];
    for (cause, total) in evictions {
        counter!(EVICTIONS_TOTAL, "cache" => name.clone(), "cause" => cause).absolute(total);
    }
    gauge!(ENTRIES, "cache" => name.clone()).set(stats.entry_count as f64);
    gauge!(WEIGHTED_SIZE, "cache" => name).set(stats.weighted_size as f64);
}

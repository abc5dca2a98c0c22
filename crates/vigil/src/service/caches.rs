//! The registered caches: their figures together and by name, and clearing
//! them by name and tags.

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_cache::{CacheAdmin, CacheStats};
use vigil_service::recommend::CacheUsage;

use super::{CacheReport, CacheTotals};
use crate::Error;

/// The caches registered with `MonitorBuilder::cache`, by name.
pub(super) type Caches = BTreeMap<String, Arc<dyn CacheAdmin>>;

/// `part` over `whole` in percent, 0 when `whole` is 0.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

impl CacheTotals {
    /// The totals of one cache's statistics.
    fn of(cache: &dyn CacheAdmin, stats: &CacheStats) -> Self {
        let mut totals = Self::default();
        totals.add(cache, stats);
        totals.max_size = cache.max_capacity();
        totals.finish();
        totals
    }

    fn add(&mut self, cache: &dyn CacheAdmin, stats: &CacheStats) {
        self.hits += stats.hits;
        self.misses += stats.misses;
        self.entry_count += stats.entry_count;
        // The weight where a weigher gives one, else the exact live count.
        self.total_size += if cache.weighed() {
            stats.weighted_size
        } else {
            stats.entry_count
        };
        self.evictions += stats.evictions.size + stats.evictions.expired;
    }

    /// Derives the percentages.
    fn finish(&mut self) {
        self.hit_rate = percent(self.hits, self.hits + self.misses);
        self.utilization = match self.max_size {
            Some(max) => percent(self.total_size, max),
            None => 0.0,
        };
    }
}

/// Refuses a cache registered under a name other than the one it was built
/// with (or built without one): `/metrics` shows it under its own name.
pub(super) fn check_names(caches: &Caches) -> Result<(), Error> {
    for (registered, cache) in caches {
        let reason = match cache.name() {
            Some(name) if name == registered => continue,
            Some(name) => format!(
                "the cache registered as {registered:?} is named {name:?}: /metrics shows it as \
                 cache={name:?}; register it as {name:?} or build it with .name({registered:?})"
            ),
            None => format!(
                "the cache registered as {registered:?} has no name: /metrics does not show it; \
                 build it with .name({registered:?})"
            ),
        };
        return Err(Error::Setting {
            setting: "cache",
            reason,
        });
    }
    Ok(())
}

/// Every cache's figures, together and by name.
pub(super) fn report(caches: &Caches) -> CacheReport {
    let mut report = CacheReport {
        totals: CacheTotals {
            max_size: Some(0),
            ..CacheTotals::default()
        },
        caches: BTreeMap::new(),
    };
    for (name, cache) in caches {
        let stats = cache.stats();
        report.totals.add(cache.as_ref(), &stats);
        report.totals.max_size = report
            .totals
            .max_size
            .zip(cache.max_capacity())
            .map(|(a, b)| a.saturating_add(b));
        report
            .caches
            .insert(name.clone(), CacheTotals::of(cache.as_ref(), &stats));
    }
    if caches.is_empty() {
        report.totals.max_size = None;
    }
    report.totals.finish();
    report
}

/// Each cache's reads, for the recommendations.
pub(super) fn usage(caches: &Caches) -> Vec<CacheUsage> {
    caches
        .iter()
        .map(|(name, cache)| {
            let stats = cache.stats();
            CacheUsage {
                name: name.clone(),
                hits: stats.hits,
                misses: stats.misses,
            }
        })
        .collect()
}

/// Hits per read over every cache, and the reads; `None` without reads.
pub(super) fn hit_ratio(caches: &Caches) -> (Option<f64>, u64) {
    let (hits, reads) = caches.values().fold((0, 0), |(hits, reads), cache| {
        let stats = cache.stats();
        (hits + stats.hits, reads + stats.hits + stats.misses)
    });
    ((reads > 0).then(|| hits as f64 / reads as f64), reads)
}

/// Clears the entries with any of `tags` (every entry when `None`, none
/// when empty) of the cache named `name`, or of every cache without a
/// name; the exact number removed.
pub(super) async fn clear(
    caches: &Caches,
    name: Option<&str>,
    tags: Option<&[String]>,
) -> Result<u64, Error> {
    let chosen: Vec<&Arc<dyn CacheAdmin>> = match name {
        Some(name) => {
            let cache = caches.get(name).ok_or_else(|| Error::UnknownCache {
                name: name.to_owned(),
                known: caches.keys().cloned().collect(),
            })?;
            vec![cache]
        }
        None => caches.values().collect(),
    };
    let mut cleared = 0;
    for cache in chosen {
        cleared += match tags {
            None => cache.clear_all().await,
            Some([]) => 0,
            Some(tags) => cache.clear_tags(tags).await,
        };
    }
    Ok(cleared)
}

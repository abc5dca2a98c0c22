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
        if stats.l2_enabled {
            let add = |total: &mut Option<u64>, n: u64| *total = Some(total.unwrap_or(0) + n);
            add(&mut self.l2_hits, stats.l2_hits);
            add(&mut self.l2_misses, stats.l2_misses);
            add(&mut self.l2_errors, stats.l2_errors);
        }
    }

    /// Derives the percentages.
    fn finish(&mut self) {
        self.hit_rate = percent(self.hits, self.hits + self.misses);
        if let (Some(hits), Some(misses)) = (self.l2_hits, self.l2_misses) {
            self.l2_hit_rate = Some(percent(hits, hits + misses));
        }
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

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;
    use vigil_cache::sync::TaggedCache;

    #[test]
    fn the_report_has_l2_fields_only_for_caches_with_a_redis_level() {
        let plain: TaggedCache<u32, u32> = TaggedCache::builder().name("plain").build();
        // Nothing listens on port 1: the level stays down, and the loader
        // answers.
        let shared: TaggedCache<u32, u32> = TaggedCache::builder()
            .name("shared")
            .redis("redis://127.0.0.1:1/")
            .build();
        assert_eq!(shared.get_with(1, || 1), 1);
        let caches: Caches = [
            ("plain".to_string(), plain.clone_admin()),
            ("shared".to_string(), shared.clone_admin()),
        ]
        .into();
        let report = report(&caches);
        let (plain, shared) = (&report.caches["plain"], &report.caches["shared"]);
        assert_eq!((plain.l2_hits, plain.l2_errors), (None, None));
        assert_eq!(
            (shared.l2_hits, shared.l2_misses, shared.l2_hit_rate),
            (Some(0), Some(0), Some(0.0))
        );
        assert_eq!(report.totals.l2_hits, Some(0));
        let json = serde_json::to_value(plain).expect("serializable");
        assert!(json.get("l2_hits").is_none(), "{json}");
        let json = serde_json::to_value(shared).expect("serializable");
        assert!(json.get("l2_errors").is_some(), "{json}");
    }
}

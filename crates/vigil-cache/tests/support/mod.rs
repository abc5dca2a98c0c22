//! Shared by the count tests: the balance every cache's statistics keep.

use vigil_cache::CacheStats;

/// Inserts minus every way an entry's life ends (size eviction, expiry,
/// replacement, invalidation by key or tag): each end is counted once, so
/// this equals the live entries once no call is running.
pub fn reconciled(stats: &CacheStats) -> u64 {
    let ends = stats.evictions.size
        + stats.evictions.expired
        + stats.evictions.replaced
        + stats.invalidations
        + stats.tag_invalidations;
    stats.inserts - ends
}

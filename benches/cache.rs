//! `TaggedCache` against raw `moka` (same policy) and `quick_cache`, in one
//! run: `get` hit, `get` miss and `insert`; and dropping 10% of a
//! 1 000 000-entry cache by tag against moka's `invalidate_entries_if`.
//!
//! ```text
//! cargo bench --bench cache
//! python3 scripts/bench-report cache moka_get_hit
//! python3 scripts/bench-report cache_invalidation moka_invalidate_entries_if
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;

/// Keys cached in the get/insert rows.
const KEYS: u64 = 100_000;
/// Entries in the invalidation rows; 10% carry the tag.
const BIG: u64 = 1_000_000;

/// Random keys (xorshift) below `limit`, plus `offset`.
struct Keys(u64);

impl Keys {
    #[inline]
    fn next(&mut self, limit: u64, offset: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        offset + self.0 % limit
    }
}

fn access(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache");

    let vigil: TaggedCache<u64, u64> = TaggedCache::builder().max_capacity(2 * KEYS).build();
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::builder()
        .max_capacity(2 * KEYS)
        .eviction_policy(moka::policy::EvictionPolicy::tiny_lfu())
        .build();
    let quick = quick_cache::sync::Cache::<u64, u64>::new(2 * KEYS as usize);
    for key in 0..KEYS {
        vigil.insert(key, key);
        moka.insert(key, key);
        quick.insert(key, key);
    }
    vigil.run_pending_tasks();
    moka.run_pending_tasks();

    let mut keys = Keys(0x2545_F491_4F6C_DD1D);
    group.bench_function("vigil_get_hit", |b| {
        b.iter(|| black_box(vigil.get(&keys.next(KEYS, 0))))
    });
    group.bench_function("moka_get_hit", |b| {
        b.iter(|| black_box(moka.get(&keys.next(KEYS, 0))))
    });
    group.bench_function("quick_cache_get_hit", |b| {
        b.iter(|| black_box(quick.get(&keys.next(KEYS, 0))))
    });
    group.bench_function("vigil_get_miss", |b| {
        b.iter(|| black_box(vigil.get(&keys.next(KEYS, KEYS))))
    });
    group.bench_function("moka_get_miss", |b| {
        b.iter(|| black_box(moka.get(&keys.next(KEYS, KEYS))))
    });
    group.bench_function("quick_cache_get_miss", |b| {
        b.iter(|| black_box(quick.get(&keys.next(KEYS, KEYS))))
    });
    group.bench_function("vigil_insert", |b| {
        b.iter(|| {
            let key = keys.next(4 * KEYS, 0);
            vigil.insert(key, key);
        })
    });
    group.bench_function("vigil_insert_tagged", |b| {
        b.iter(|| {
            let key = keys.next(4 * KEYS, 0);
            vigil.insert_with(key, key, EntryOptions::default().tag("bench"));
        })
    });
    group.bench_function("moka_insert", |b| {
        b.iter(|| {
            let key = keys.next(4 * KEYS, 0);
            moka.insert(key, key);
        })
    });
    group.bench_function("quick_cache_insert", |b| {
        b.iter(|| {
            let key = keys.next(4 * KEYS, 0);
            quick.insert(key, key);
        })
    });
    group.finish();
}

fn tagged_cache() -> TaggedCache<u64, u64> {
    let cache = TaggedCache::builder().max_capacity(2 * BIG).build();
    for key in 0..BIG {
        if key.is_multiple_of(10) {
            cache.insert_with(key, key, EntryOptions::default().tag("stale"));
        } else {
            cache.insert(key, key);
        }
    }
    cache.run_pending_tasks();
    cache
}

fn moka_cache() -> moka::sync::Cache<u64, u64> {
    let cache = moka::sync::Cache::builder()
        .max_capacity(2 * BIG)
        .support_invalidation_closures()
        .build();
    for key in 0..BIG {
        cache.insert(key, key);
    }
    cache.run_pending_tasks();
    cache
}

fn invalidation(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_invalidation");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(1));
    group.warm_up_time(Duration::from_millis(500));

    // Time until every tagged entry is gone: invalidate_tag returns after
    // the logical cut (one version bump) and the physical removals.
    group.bench_function("vigil_invalidate_tag", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = tagged_cache();
                let start = Instant::now();
                let removed = cache.invalidate_tag("stale");
                total += start.elapsed();
                assert_eq!(removed, BIG / 10);
            }
            total
        })
    });
    // moka: register the predicate, then run maintenance until the entries
    // it matches are gone.
    group.bench_function("moka_invalidate_entries_if", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = moka_cache();
                let start = Instant::now();
                cache
                    .invalidate_entries_if(|key, _| key.is_multiple_of(10))
                    .expect("invalidation closures are enabled");
                while cache.entry_count() > BIG - BIG / 10 {
                    cache.run_pending_tasks();
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();

    // What a read costs right after the invalidation, before maintenance.
    let mut group = c.benchmark_group("cache_read_after_invalidation");
    let vigil = tagged_cache();
    vigil.invalidate_tag("stale");
    let moka = moka_cache();
    moka.invalidate_entries_if(|key, _| key.is_multiple_of(10))
        .expect("invalidation closures are enabled");
    let plain = moka_cache();
    let mut keys = Keys(0x9E37_79B9_7F4A_7C15);
    group.bench_function("moka_get_no_predicate", |b| {
        b.iter(|| black_box(plain.get(&keys.next(BIG, 0))))
    });
    group.bench_function("vigil_get", |b| {
        b.iter(|| black_box(vigil.get(&keys.next(BIG, 0))))
    });
    group.bench_function("moka_get_with_pending_predicate", |b| {
        b.iter(|| black_box(moka.get(&keys.next(BIG, 0))))
    });
    group.finish();
}

criterion_group!(benches, access, invalidation);
criterion_main!(benches);

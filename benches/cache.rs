//! `TaggedCache` against raw `moka` (same policy) and `quick_cache`, in one
//! run: `get` hit, `get` miss and `insert`; dropping a tag of 100 000 (and
//! of 1 000) entries from a 1 000 000-entry cache against moka's
//! `invalidate_entries_if`; and reads right after those invalidations.
//!
//! ```text
//! cargo bench -p vigil-benches --bench cache
//! cargo bench -p vigil-benches --bench cache -- cache_invalidation
//! python3 scripts/bench-report cache moka_get_hit
//! python3 scripts/bench-report cache_read_after_invalidation moka_get_no_predicate
//! ```
//!
//! `cache_invalidation` times single calls (criterion cannot: every call
//! needs a fresh 1 000 000-entry cache), each on its own cache, and prints
//! a table of medians with the ratio to moka measured in the same run.
//! `VIGIL_BENCH_REPS` sets the number of caches built per row (default 7).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
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

/// Entries tagged `stale` (every 10th key) and `small` (every 1000th key
/// that is not a multiple of 10).
const STALE: u64 = BIG / 10;
const SMALL: u64 = 1_000;

fn is_small(key: u64) -> bool {
    key % 1_000 == 1
}

/// 1 000 000 entries: 100 000 tagged `stale`, 1 000 tagged `small`, the
/// rest untagged. Maintenance has run only if `maintained`.
fn tagged_cache(maintained: bool) -> TaggedCache<u64, u64> {
    let cache = TaggedCache::builder().max_capacity(2 * BIG).build();
    for key in 0..BIG {
        if key.is_multiple_of(10) {
            cache.insert_with(key, key, EntryOptions::default().tag("stale"));
        } else if is_small(key) {
            cache.insert_with(key, key, EntryOptions::default().tag("small"));
        } else {
            cache.insert(key, key);
        }
    }
    if maintained {
        cache.run_pending_tasks();
    }
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

/// The filters given on the command line (criterion's, reused here).
fn filters() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect()
}

/// Whether a group runs under the command line's filters (substrings).
fn selected(group: &str) -> bool {
    let filters = filters();
    filters.is_empty() || filters.iter().any(|f| group.contains(f.as_str()))
}

fn reps() -> usize {
    std::env::var("VIGIL_BENCH_REPS")
        .ok()
        .and_then(|reps| reps.parse().ok())
        .filter(|&reps| reps > 0)
        .unwrap_or(7)
}

/// One row: the durations of `reps` single timed calls.
struct Row {
    name: &'static str,
    times: Vec<Duration>,
}

impl Row {
    fn median(&self) -> Duration {
        let mut times = self.times.clone();
        times.sort();
        times[times.len() / 2]
    }
}

fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// A service's steady state: one 1 000 000-entry cache; each round writes
/// 100 000 entries (over the keys of `stale`: replacing them), `tagged` of
/// them under the round's own tag, and invalidates that tag right after the
/// last write (or after `run_pending_tasks` if `maintained`). The removals
/// each invalidation queues are drained by the next round's writes.
///
/// With `warm`, a tag of one entry (written before the round's writes) is
/// invalidated just before the timed call, so that the call's code and the
/// index's shared lines are in the CPU's caches: what the call itself
/// costs, without the misses of a first touch.
fn time_after_writes(name: &'static str, tagged: u64, maintained: bool, warm: bool) -> Row {
    let cache = tagged_cache(false);
    let every = STALE / tagged;
    let times = (0..reps())
        .map(|round| {
            let tag = format!("round:{round}");
            let warm_up = format!("warm-up:{round}");
            if warm {
                cache.insert_with(BIG + 1, 0, EntryOptions::default().tag(warm_up.as_str()));
            }
            for j in 0..STALE {
                let key = j * 10;
                if (j + 1) % every == 0 {
                    cache.insert_with(key, key, EntryOptions::default().tag(tag.as_str()));
                } else {
                    cache.insert(key, key);
                }
            }
            if maintained {
                cache.run_pending_tasks();
            }
            if warm {
                assert_eq!(cache.invalidate_tag(&warm_up), 1);
            }
            let start = Instant::now();
            let removed = cache.invalidate_tag(&tag);
            let elapsed = start.elapsed();
            assert_eq!(removed, tagged);
            assert_eq!(cache.entry_count(), BIG - tagged);
            elapsed
        })
        .collect();
    Row { name, times }
}

/// The first call on a cache just built (1 000 000 writes, no
/// maintenance), on a fresh cache each time: every line it touches has
/// been evicted from the CPU's caches and TLB by the writes. With `drain`,
/// `run_pending_tasks` follows on a maintained cache, until the entries
/// are physically gone.
fn time_first_call(name: &'static str, drain: bool) -> Row {
    let times = (0..reps())
        .map(|_| {
            let cache = tagged_cache(drain);
            let start = Instant::now();
            let removed = cache.invalidate_tag("stale");
            if drain {
                cache.run_pending_tasks();
            }
            let elapsed = start.elapsed();
            assert_eq!(removed, STALE);
            assert_eq!(cache.entry_count(), BIG - STALE);
            elapsed
        })
        .collect();
    Row { name, times }
}

fn invalidation() {
    if !selected("cache_invalidation") {
        return;
    }
    let mut rows = vec![
        time_after_writes(
            "vigil_invalidate_tag_100k_after_writes",
            STALE,
            false,
            false,
        ),
        time_after_writes("vigil_invalidate_tag_1k_after_writes", SMALL, false, false),
        time_after_writes(
            "vigil_invalidate_tag_100k_after_writes_warm",
            STALE,
            false,
            true,
        ),
        time_after_writes(
            "vigil_invalidate_tag_1k_after_writes_warm",
            SMALL,
            false,
            true,
        ),
        time_after_writes(
            "vigil_invalidate_tag_100k_after_maintenance",
            STALE,
            true,
            false,
        ),
        time_after_writes(
            "vigil_invalidate_tag_1k_after_maintenance",
            SMALL,
            true,
            false,
        ),
        time_first_call("vigil_invalidate_tag_100k_first_call", false),
        time_first_call("vigil_invalidate_tag_100k_then_run_pending_tasks", true),
    ];
    // moka: the first `get` on a cache just built (the floor of any first
    // call), then register the predicate and run maintenance until the
    // entries it matches are gone.
    let (mut first_get, mut to_completion) = (Vec::new(), Vec::new());
    for _ in 0..reps() {
        let cache = moka_cache();
        let start = Instant::now();
        black_box(cache.get(&5));
        first_get.push(start.elapsed());
        let start = Instant::now();
        cache
            .invalidate_entries_if(|key, _| key.is_multiple_of(10))
            .expect("invalidation closures are enabled");
        while cache.entry_count() > BIG - STALE {
            cache.run_pending_tasks();
        }
        to_completion.push(start.elapsed());
    }
    rows.push(Row {
        name: "moka_get_first_call",
        times: first_get,
    });
    rows.push(Row {
        name: "moka_invalidate_entries_if",
        times: to_completion,
    });
    let baseline = rows.last().map(Row::median).unwrap_or_default();
    println!();
    println!(
        "| cache_invalidation (1 000 000 entries, {} runs) | median | min | max | x moka_invalidate_entries_if | moka / this |",
        reps()
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        let median = row.median();
        let ratio = median.as_secs_f64() / baseline.as_secs_f64();
        println!(
            "| `{}` | {} | {} | {} | {:.7} | {:.0} |",
            row.name,
            format_duration(median),
            format_duration(*row.times.iter().min().expect("at least one run")),
            format_duration(*row.times.iter().max().expect("at least one run")),
            ratio,
            1.0 / ratio
        );
    }
    println!();
}

/// What a read costs right after the invalidation, before maintenance.
fn read_after_invalidation(c: &mut Criterion) {
    if !selected("cache_read_after_invalidation") {
        return;
    }
    let mut group = c.benchmark_group("cache_read_after_invalidation");
    let vigil = tagged_cache(true);
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

criterion_group!(benches, access, read_after_invalidation);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    invalidation();
}

//! Exact live counts under concurrency: threads insert (with zero, one or
//! several tags, some with a time to live), replace, evict (a small
//! capacity), invalidate by key and by tag while the mock clock moves.
//! Once they are done, every count agrees: `entry_count` with the entries
//! `iter` shows, each tag's `invalidate_tag` with the live entries carrying
//! it, and inserts minus every counted end with `entry_count`.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use support::reconciled;
use vigil_cache::EntryOptions;
use vigil_cache::sync::TaggedCache;

const TAGS: [&str; 3] = ["a", "b", "c"];

/// Values carry their tags as a bit mask in the low bits, so the test can
/// tell from `iter` which live entries a tag covers.
fn options(mask: u32, ttl: Option<u64>) -> EntryOptions {
    let mut options = EntryOptions::default().tags(
        TAGS.iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, tag)| *tag),
    );
    if let Some(ttl) = ttl {
        options = options.ttl(Duration::from_secs(ttl));
    }
    options
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        key: u16,
        mask: u32,
        ttl: Option<u64>,
    },
    Get(u16),
    Invalidate(u16),
    InvalidateTag(usize),
    InvalidateTags(usize, usize),
    Advance(u64),
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..keys, 0..8u32, proptest::option::of(1..30u64))
            .prop_map(|(key, mask, ttl)| Op::Insert { key, mask, ttl }),
        3 => (0..keys).prop_map(Op::Get),
        2 => (0..keys).prop_map(Op::Invalidate),
        2 => (0..TAGS.len()).prop_map(Op::InvalidateTag),
        1 => (0..TAGS.len(), 0..TAGS.len()).prop_map(|(a, b)| Op::InvalidateTags(a, b)),
        1 => (1..10u64).prop_map(Op::Advance),
    ]
}

fn run(cache: &TaggedCache<u16, u32>, mock: &quanta::Mock, ops: &[Op], returned: &AtomicU64) {
    for op in ops {
        match *op {
            Op::Insert { key, mask, ttl } => cache.insert_with(key, mask, options(mask, ttl)),
            Op::Get(key) => {
                if let Some(mask) = cache.get(&key) {
                    assert!(mask < 8, "a value is its tag mask");
                }
            }
            Op::Invalidate(key) => cache.invalidate(&key),
            Op::InvalidateTag(tag) => {
                returned.fetch_add(cache.invalidate_tag(TAGS[tag]), Ordering::Relaxed);
            }
            Op::InvalidateTags(a, b) => {
                returned.fetch_add(
                    cache.invalidate_tags(&[TAGS[a], TAGS[b]]),
                    Ordering::Relaxed,
                );
            }
            Op::Advance(secs) => mock.increment(Duration::from_secs(secs)),
        }
    }
}

/// With no call running, every count agrees; then each tag's invalidation
/// returns exactly its live entries, and `invalidate_all` the rest.
fn check_quiescent(cache: &TaggedCache<u16, u32>, returned: u64) {
    for round in 0..2 {
        let live: Vec<u32> = cache.iter().map(|(_, mask)| mask).collect();
        let stats = cache.stats();
        assert_eq!(
            stats.entry_count,
            live.len() as u64,
            "round {round}: {stats:?}"
        );
        assert_eq!(cache.entry_count(), live.len() as u64, "round {round}");
        assert_eq!(
            reconciled(&stats),
            stats.entry_count,
            "round {round}: {stats:?}"
        );
        assert_eq!(stats.tag_invalidations, returned, "round {round}");
        // Removals and evictions applied by maintenance change none of it.
        cache.run_pending_tasks();
    }
    let mut remaining: Vec<u32> = cache.iter().map(|(_, mask)| mask).collect();
    for (i, tag) in TAGS.iter().enumerate() {
        let carrying = remaining
            .iter()
            .filter(|mask| *mask & (1 << i) != 0)
            .count();
        assert_eq!(cache.invalidate_tag(tag), carrying as u64, "tag {tag}");
        remaining.retain(|mask| mask & (1 << i) == 0);
        assert_eq!(
            cache.entry_count(),
            remaining.len() as u64,
            "after tag {tag}"
        );
    }
    let before = cache.stats().invalidations;
    cache.invalidate_all();
    assert_eq!(cache.stats().invalidations - before, remaining.len() as u64);
    assert_eq!(cache.entry_count(), 0);
    let stats = cache.stats();
    assert_eq!(reconciled(&stats), 0, "{stats:?}");
}

fn mocked(capacity: u64) -> (TaggedCache<u16, u32>, std::sync::Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let cache = TaggedCache::builder()
        .max_capacity(capacity)
        .clock(clock)
        .build();
    (cache, mock)
}

/// Four threads, 20 000 operations each, on a cache whose capacity forces
/// evictions all along.
#[test]
fn concurrent_inserts_evictions_and_invalidations_reconcile() {
    let (cache, mock) = mocked(100);
    let returned = AtomicU64::new(0);
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            let (cache, mock, returned) = (&cache, &mock, &returned);
            s.spawn(move || {
                let mut state = 0x9E37_79B9_7F4A_7C15 ^ (thread + 1);
                let mut next = |limit: u64| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state % limit
                };
                let ops: Vec<Op> = (0..20_000)
                    .map(|_| match next(100) {
                        0..70 => Op::Insert {
                            key: next(2_000) as u16,
                            mask: next(8) as u32,
                            ttl: (next(4) == 0).then(|| 1 + next(60)),
                        },
                        70..82 => Op::Get(next(2_000) as u16),
                        82..90 => Op::Invalidate(next(2_000) as u16),
                        90..97 => Op::InvalidateTag(next(3) as usize),
                        97..98 => Op::InvalidateTags(next(3) as usize, next(3) as usize),
                        _ => Op::Advance(1 + next(5)),
                    })
                    .collect();
                run(cache, mock, &ops, returned);
            });
        }
    });
    let stats = cache.stats();
    assert!(stats.evictions.size > 0, "the capacity evicted: {stats:?}");
    assert!(stats.evictions.expired > 0, "entries expired: {stats:?}");
    assert!(stats.tag_invalidations > 0, "{stats:?}");
    check_quiescent(&cache, returned.load(Ordering::Relaxed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operations on three threads at once; whatever the
    /// interleaving, the counts agree once they are done.
    #[test]
    fn concurrent_operations_keep_counts_exact(
        threads in proptest::collection::vec(proptest::collection::vec(op(40), 1..200), 3),
        capacity in 1..30u64,
    ) {
        let (cache, mock) = mocked(capacity);
        let returned = AtomicU64::new(0);
        std::thread::scope(|s| {
            for ops in &threads {
                let (cache, mock, returned) = (&cache, &mock, &returned);
                s.spawn(move || run(cache, mock, ops, returned));
            }
        });
        check_quiescent(&cache, returned.load(Ordering::Relaxed));
    }
}

#[test]
fn entry_count_is_zero_right_after_invalidating_every_entry_by_tag() {
    let (cache, _mock) = mocked(100);
    for key in 0..5 {
        cache.insert_with(key, 1, EntryOptions::default().tag("all"));
    }
    assert_eq!(cache.entry_count(), 5);
    assert_eq!(cache.invalidate_tag("all"), 5);
    assert_eq!(cache.entry_count(), 0, "before any removal or maintenance");
    assert_eq!(cache.stats().entry_count, 0);
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn entry_count_is_zero_once_the_ttl_runs_out_on_the_cache_clock() {
    let (cache, mock) = mocked(100);
    for key in 0..5 {
        let options = EntryOptions::default()
            .tag("t")
            .ttl(Duration::from_secs(30));
        cache.insert_with(key, 1, options);
    }
    cache.insert_with(5, 0, EntryOptions::default().ttl(Duration::from_secs(30)));
    mock.increment(Duration::from_secs(29));
    assert_eq!(cache.entry_count(), 6);
    mock.increment(Duration::from_secs(1));
    // moka expires them on real time, 30 s from now: they are still held.
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.stats().evictions.expired, 6);
    assert_eq!(cache.invalidate_tag("t"), 0, "expired entries are not live");
}

#[test]
fn an_eviction_reported_after_its_tag_was_invalidated_leaves_the_new_generation_alone() {
    // Capacity 1: moka evicts on its next maintenance, which runs after the
    // tag's generation has changed.
    let (cache, _mock) = mocked(1);
    cache.insert_with(1, 1, EntryOptions::default().tag("t"));
    cache.run_pending_tasks();
    cache.insert_with(2, 1, EntryOptions::default().tag("t"));
    assert_eq!(cache.invalidate_tag("t"), 2);
    cache.insert_with(3, 1, EntryOptions::default().tag("t"));
    cache.run_pending_tasks();
    let live = cache.iter().count() as u64;
    assert_eq!(cache.entry_count(), live);
    assert_eq!(cache.invalidate_tag("t"), live);
    let stats = cache.stats();
    assert_eq!(reconciled(&stats), 0, "{stats:?}");
}
